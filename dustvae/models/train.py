"""Training: AdamW, cosine learning rate, KL warm-up, early stopping on validation RMSE, exact resume.

A run directory holds ``last.pt`` (after every epoch), ``best.pt`` (lowest
validation reconstruction RMSE in log2 units, the reported metric),
``metrics.jsonl`` (one line per epoch) and ``config.json``. This module
runs the epochs; the parts it is built from each have a module of their
own, and every name is importable from here too:

* :mod:`dustvae.models.train_config`: :class:`TrainConfig`, its checks, the
  learning-rate and KL schedules;
* :mod:`dustvae.models.train_state`: :class:`TrainingState` (the checkpoint
  payload, exact resume), :class:`Progress`, :class:`TrainResult`;
* :mod:`dustvae.models.train_data`: the store's checks, the
  train/validation split and the map-level targets;
* :mod:`dustvae.models.train_step`: one optimisation step, the scoring of
  a split, the optimizer's parameter groups;
* :mod:`dustvae.models.parallel`: several ranks (DistributedDataParallel);
* :mod:`dustvae.models.run_lock`: one run at a time in a run directory.

A finished run resumed with a larger ``epochs`` continues to it, with the
patience count restarted and the cosine schedule stretched to the new
length.

The objective is the negative ELBO of :mod:`dustvae.models.loss`: the mean
squared error in log2 units plus beta times the KL. Each epoch's line in
``metrics.jsonl`` holds, among others:

* ``train_rmse_log2``: root of the mean reconstruction MSE over the epoch's
  steps (training mode, sampled z), and ``val_rmse_log2`` (posterior mean,
  evaluation mode): the metric results report, and the one early stopping
  and ``best.pt`` use. ``val_rmse_std`` is the same in standardised units.
* ``train_rec``/``val_rec``, ``train_kl``/``val_kl``, ``train_loss``/``val_loss``:
  the terms of the objective (``val_loss`` with the full beta).
* ``lr``, ``beta`` (the KL weight used that epoch, ramped in the warm-up),
  ``clipped_fraction`` (steps whose gradient norm exceeded ``grad_clip``)
  and ``grad_norm_median``.

Choices, and why:

* AdamW (decoupled weight decay, default 1e-4), at the cosine learning rate
  of :meth:`TrainConfig.learning_rate`.
* Gradient clip: with the mean-reduced loss, the gradient norms of VAE-2
  (default settings, batch 64) on an 80-map ``dustvae make-dataset``
  (896 training patches of 64 px) had a largest step of 0.38 over the first
  8 epochs, and per-epoch medians of 0.05-0.32 over four whole runs (36 to
  78 epochs, two seeds, with and without augmentation), in which no step
  reached the clip of :data:`dustvae.defaults.TRAIN_GRAD_CLIP` = 1: it
  guards against rare large steps and does not rescale every step.
  ``metrics.jsonl`` records the fraction of clipped steps.
* ``pca_init``: the linear paths start from PCA and train at
  ``pca_linear_lr_scale`` times the learning rate, without weight decay
  (:func:`parameter_groups`).
  Adam moves each weight by about the learning rate per step whatever the
  size of its gradient; at the full rate the first epoch alone took the
  PCA start on a small test store from PCA's RMSE (0.0104) to 0.0896.
* The linear start is epoch 0: a ``pca_init`` run scores it on validation
  before the first step and keeps it as ``best.pt`` unless an epoch does
  better, so the variant never ends above the linear baseline it started
  from (on the validation split). It gets no KL warm-up by default
  (:class:`TrainConfig`).
* ``target="map"`` (noise-to-noise): the reconstruction of each training
  patch is scored against the leave-one-out mean of the *other* training
  patches of its map, whose realisation noise is independent of its own,
  so the minimiser is the map's expected statistics, not the patch's noise
  (:func:`map_targets`). Validation patches are scored the same way
  against the other validation patches of their map; patches alone in
  their map's split are left out. A patch and its target take the same
  symmetry under ``augment``. The linear start is then the reduced-rank
  regression to those targets (``vae-D+rrr+map``).
* Blow-up: the log-variance is clamped to [-12, 8] in the encoder.
* ``augment``: each training vector is replaced, at every step, by one of
  the four symmetry permutations of the patch (90-degree turn, mirror, both,
  none; :mod:`dustvae.wst.symmetry`), drawn from the run's saved generator.
  On the dataset above it lowered VAE-2's best validation RMSE from 0.2873
  to 0.2709 (seed 0) and from 0.2920 to 0.2778 (seed 1), and the runs
  lasted longer (best epochs 63 and 46 against 26 and 21) before
  early stopping.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import defaults, distributed
from ..errors import DustvaeError
from ..io.atomic import atomic_path
from ..io.store import CoefficientStore
from ..wst.layout import CoefficientLayout
from ..wst.symmetry import exact_symmetry_permutations
from ..devices import resolve_device
from .checkpoint import load_checkpoint, save_checkpoint
# The names of the parts not used here are re-exported: callers import every part of training from this module.
from .parallel import _data_parallel, _rank_slice
from .run_lock import check_not_training, locked  # noqa: F401
from .model_config import ModelConfig  # noqa: F401  (with TrainConfig, the configurations callers make)
from .train_config import DEFAULT_BETA, TrainConfig  # noqa: F401
from .train_data import _one_sky_split, check_vae_store, map_targets, mean_variance, training_split  # noqa: F401
from .train_state import Progress, TrainingState, TrainResult, generator_states, restore_generators  # noqa: F401
from .train_step import evaluate_split, parameter_groups, start_row, training_step  # noqa: F401
from .vae import DilatedConvVAE


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    with atomic_path(run_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in history))


def _new_model(config: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor | None,
               symmetries: torch.Tensor | None) -> DilatedConvVAE:
    """The model at step 0: seeded weights, the training set's standardisation, the linear start if asked.

    The start is the linear optimum of the run's target, with the run's
    symmetries (:func:`dustvae.models.pca_init.fit_linear_start`).
    """
    torch.manual_seed(config.seed)
    model = DilatedConvVAE.from_config(config.model)
    model.set_standardisation(x_train.mean(0), x_train.std(0))
    if config.model.pca_init:
        from .pca_init import fit_linear_start, init_from_linear

        x = x_train.double().numpy()
        start = fit_linear_start(config.model.latent_dim, x, None if y_train is None else y_train.double().numpy(),
                                 None if symmetries is None else symmetries.cpu().numpy())
        init_from_linear(model, start, x)
    return model


def train(store: CoefficientStore, run_dir: str | Path, config: TrainConfig = TrainConfig(), *,
          device: str = "auto", resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a :class:`DilatedConvVAE` on the store's training split.

    Parameters
    ----------
    store : CoefficientStore
        Normalised 1360-long vectors; its train and validation splits are used.
    run_dir : path
        Where checkpoints and metrics go.
    config : TrainConfig
    device : str
        ``auto``, ``cpu`` or ``cuda``; float32 everywhere unless ``defaults.TRAIN_BF16_AUTOCAST`` (bfloat16 on CUDA).
    resume : bool
        Continue from ``run_dir/last.pt`` (same store and settings; ``epochs``
        may grow, and a finished run then continues to it).
    progress : bool
        Show a progress bar.
    """
    check_vae_store(store)
    run_dir = Path(run_dir)
    torch_device = distributed.rank_device(resolve_device(device))
    last_path = run_dir / "last.pt"
    if not resume and last_path.exists():
        raise DustvaeError(f"{run_dir}: holds a run already; pass `resume` to continue it or choose another `run_dir`")
    if resume and not last_path.exists():
        raise DustvaeError(f"{run_dir}: nothing to resume (no last.pt); run without `resume`")
    train_idx, val_idx = training_split(store, config.seed)
    symmetries = None
    if config.augment:
        layout = CoefficientLayout.from_attrs(store.attrs)
        symmetries = torch.from_numpy(exact_symmetry_permutations(layout)).to(torch_device)
    ranks = distributed.current()
    if not ranks.is_main:  # rank 0 alone writes into the run directory
        return _train_locked(store, train_idx, val_idx, symmetries, run_dir, config, torch_device, resume, progress)
    new_dir = not run_dir.exists()
    try:
        with locked(run_dir):
            return _train_locked(store, train_idx, val_idx, symmetries, run_dir, config, torch_device, resume, progress)
    except BaseException:
        if new_dir and not (run_dir / "last.pt").exists():  # failed before its first epoch: leave no empty run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train_locked(store: CoefficientStore, train_idx: np.ndarray, val_idx: np.ndarray, symmetries: torch.Tensor | None,
                  run_dir: Path, config: TrainConfig, torch_device: torch.device, resume: bool,
                  progress: bool) -> TrainResult:
    ranks = distributed.current()
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    y_train = y_val = None
    if config.model.target == "map":  # each split's targets from its own rows only
        train_idx, y = map_targets(store.coeffs, store.map_index, train_idx, "training")
        y_train = torch.from_numpy(y)
        val_idx, y = map_targets(store.coeffs, store.map_index, val_idx, "validation")
        y_val = torch.from_numpy(y)
    x_train = torch.from_numpy(store.coeffs[train_idx]).float()
    x_val = torch.from_numpy(store.coeffs[val_idx]).float()
    layout_attrs = {k: store.attrs[k] for k in ("J", "L", "fields", "vector_length", "normalisation", "boundary") if k in store.attrs}

    model = _new_model(config, x_train, y_train, symmetries).to(torch_device)
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.lr)
    state = TrainingState(model, optimizer, torch.Generator().manual_seed(config.seed), config, layout_attrs,
                          store.fingerprint(), len(train_idx), len(val_idx))
    if resume:
        payload = load_checkpoint(last_path)  # on the CPU: generator states must stay there
        state.check_compatible(payload, run_dir)
        try:
            state.restore(payload)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise DustvaeError(f"{last_path}: cannot be resumed from ({type(exc).__name__}); it is damaged: "
                               f"train again with another `run_dir`") from exc
        done = state.progress
        if config.epochs < done.epochs_done:
            raise DustvaeError(f"{run_dir}: `epochs` {config.epochs} is fewer than the {done.epochs_done} epochs this run "
                               f"has done; give `epochs` above {done.epochs_done} to continue it")
        saved_epochs = int(payload["train_config"]["epochs"])
        if config.epochs == done.epochs_done or (done.finished and config.epochs <= saved_epochs):
            return TrainResult(run_dir, done.best_epoch, done.best_val_rmse, done.epochs_done, done.stopped_early,
                               done.history, already_finished=True)
        if done.finished:  # asked for more epochs: continue, patience restarted
            done.finished = done.stopped_early = False
            done.bad_epochs = 0

    if ranks.is_main:
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(json.dumps({"model": config.name, "model_config": asdict(config.model),
                                       "train": config.training_settings(), "layout": layout_attrs, "n_train": len(train_idx),
                                       "n_validation": len(val_idx), "ranks": ranks.world,
                                       "train_mean_variance_log2": mean_variance(x_train)}, indent=2))
    x_train, x_val_std = x_train.to(torch_device), model.standardise(x_val.to(torch_device))
    y_val_std = None if y_val is None else model.standardise(y_val.to(torch_device))
    if y_train is not None:
        y_train = y_train.to(torch_device)
    if config.model.pca_init and state.progress.epochs_done == 0 and not state.progress.history:
        # The linear start is a candidate like every epoch: selection never ends above where it began.
        row = start_row(model, x_train, y_train, x_val_std, y_val_std, config)
        state.progress.record(row, config)
        if ranks.is_main:
            save_checkpoint(best_path, state.payload())
            save_checkpoint(last_path, state.payload())
            _write_metrics(run_dir, state.progress.history)
    use_amp = torch_device.type == "cuda" and defaults.TRAIN_BF16_AUTOCAST
    start = state.progress.epochs_done
    network = _data_parallel(model, torch_device, ranks)

    bar = tqdm(range(start, config.epochs), desc=f"train {config.name}", unit="epoch",
               disable=not (progress and ranks.is_main), initial=start, total=config.epochs)
    for epoch in bar:
        tic = time.perf_counter()
        lr, beta_now = config.learning_rate(epoch), config.kl_weight(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        order = torch.randperm(len(x_train), generator=state.generator)
        sums, norms, seen = np.zeros(3), [], 0
        for first in range(0, len(order), config.batch_size):
            rows = order[first : first + config.batch_size]
            if len(rows) < max(2, ranks.world):  # BatchNorm needs two samples, and every rank one
                continue
            # Every rank draws the whole global batch's randomness, as one process would, and takes its slice.
            codes = None
            if symmetries is not None:  # one exact symmetry per vector, drawn from the saved generator
                codes = torch.randint(len(symmetries), (len(rows),), generator=state.generator)
            noise = torch.randn((len(rows), config.model.latent_dim), device=torch_device)
            mine = _rank_slice(len(rows), ranks)
            xb = x_train[rows[mine].to(torch_device)]
            yb = None if y_train is None else y_train[rows[mine].to(torch_device)]
            if codes is not None:  # the same symmetry of a patch and of its map's mean
                perm = symmetries[codes[mine].to(torch_device)]
                xb = torch.gather(xb, 1, perm)
                yb = None if yb is None else torch.gather(yb, 1, perm)
            share = mine.stop - mine.start
            try:
                loss, rec, kl, norm = training_step(network, optimizer, model.standardise(xb), beta_now, config.kl_form,
                                                    config.grad_clip, use_amp, noise[mine],
                                                    loss_scale=ranks.world * share / len(rows),
                                                    target_std=None if yb is None else model.standardise(yb))
            except DustvaeError as exc:
                raise DustvaeError(f"epoch {epoch + 1}: {exc}") from None
            sums += np.array([loss, rec, kl]) * share
            norms.append(norm)
            seen += share
        loss_sum, rec_sum, kl_sum, seen = distributed.all_sum([*sums, seen])
        elapsed = time.perf_counter() - tic
        validation = distributed.broadcast_from_main(evaluate_split(model, x_val_std, config.beta, target_std=y_val_std)
                                                          if ranks.is_main else None)
        if not math.isfinite(validation["val_rmse_log2"]):  # nothing of this epoch is saved: the checkpoints stay finite
            done = state.progress
            kept = (f"last.pt keeps epoch {done.epochs_done} and best.pt epoch {done.best_epoch}" if done.epochs_done
                    else "nothing was saved")
            raise DustvaeError(f"epoch {epoch + 1}: validation RMSE is {validation['val_rmse_log2']}: training diverged; "
                               f"{kept}; lower `lr` or `grad_clip`")
        row = {"epoch": epoch + 1, "lr": lr, "beta": beta_now, "train_loss": loss_sum / seen,
               "train_rec": rec_sum / seen, "train_kl": kl_sum / seen, "train_rmse_log2": math.sqrt(rec_sum / seen),
               **validation, "clipped_fraction": float(np.mean(np.array(norms) > config.grad_clip)),
               "grad_norm_median": float(np.median(norms)), "seconds": elapsed, "samples_per_s": seen / elapsed}
        row = {k: (v if k == "epoch" else float(v)) for k, v in row.items()}  # plain floats: weights_only loads
        row["ranks"] = ranks.world
        improved = state.progress.record(row, config)
        if ranks.is_main:
            if improved:
                save_checkpoint(best_path, state.payload())
            save_checkpoint(last_path, state.payload())
            _write_metrics(run_dir, state.progress.history)
        bar.set_postfix(val_rmse=f"{row['val_rmse_log2']:.4f}", kl=f"{row['train_kl']:.1f}", lr=f"{lr:.1e}")
        if state.progress.stopped_early:
            break
    bar.close()
    done = state.progress
    return TrainResult(run_dir, done.best_epoch, done.best_val_rmse, done.epochs_done, done.stopped_early, done.history)


def train_unless_finished(store: CoefficientStore, run_dir: str | Path, config: TrainConfig = TrainConfig(), *,
                          device: str = "auto", progress: bool = True,
                          say: Callable[[str], None] | None = None) -> tuple[Path, bool]:
    """Train into ``run_dir`` unless a finished run of ``config`` on ``store`` is there; resume an interrupted one.

    Returns the path of the best checkpoint and whether anything was trained.
    A finished run asked for more epochs than it ran continues to them (as
    ``train --resume --epochs N`` does). A run made on another store or with
    other settings (any but ``epochs``) is not reused: it is moved aside to
    ``RUN_DIR.old`` (``.old2``, ... when taken), ``say`` is told why in one
    line, and the run is trained anew.
    """
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    if last.exists():
        payload = load_checkpoint(last)
        why = stale_reason(payload, store, config)
        if why is not None:
            aside = _aside(run_dir)
            run_dir.rename(aside)
            (say or print)(f"{run_dir}: trained again: {why}; the old run is in {aside}")
        elif payload.get("finished") and config.epochs <= int(payload["train_config"]["epochs"]):
            return run_dir / "best.pt", False
    train(store, run_dir, config, device=device, resume=last.exists(), progress=progress)
    return run_dir / "best.pt", True


def stale_reason(payload: dict, store: CoefficientStore, config: TrainConfig) -> str | None:
    """Why a checkpoint's run is not a run of ``config`` on ``store`` (None when it is, ``epochs`` aside)."""
    if payload.get("store_fingerprint") != store.fingerprint():
        return "it was trained on another store"
    changed = config.changed_from(payload)
    return f"it was trained with other settings ({', '.join(changed)})" if changed else None


def _aside(run_dir: Path) -> Path:
    """A free name beside ``run_dir`` for an old run: ``RUN_DIR.old``, ``RUN_DIR.old2``, ..."""
    for k in range(1, 1000):
        aside = run_dir.with_name(run_dir.name + (".old" if k == 1 else f".old{k}"))
        if not aside.exists():
            return aside
    raise DustvaeError(f"{run_dir}: too many old runs beside it; remove some")
