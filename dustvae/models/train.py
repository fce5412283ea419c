"""Training: AdamW, cosine learning rate, KL warm-up, early stopping on validation RMSE, exact resume.

A run directory holds ``last.pt`` (after every epoch), ``best.pt`` (lowest
validation reconstruction RMSE in log2 units, the reported metric),
``metrics.jsonl`` (one line per epoch) and ``config.json``. Everything a run
needs to continue lives in one :class:`TrainingState`, which writes the
checkpoint payload and restores from it. Every random draw (shuffling,
augmentation, the reparameterisation noise) comes from generators whose
states it saves, so a run killed at any moment and restarted with
``resume=True`` ends with the same weights as an uninterrupted run (on CPU,
same thread count). A resumed run must see the same store (checked by its
fingerprint) and the same settings, except ``epochs``: a finished run
resumed with a larger ``epochs`` continues to it, with the patience count
restarted and the cosine schedule stretched to the new length.

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

* AdamW (decoupled weight decay, default 1e-4) with a cosine learning rate
  from ``lr`` to ``lr * TRAIN_LR_FLOOR`` over ``epochs``.
* Posterior collapse: the KL weight rises linearly from beta/warmup to beta
  over the first ``warmup_epochs`` (Bowman et al. 2016). Until then every
  epoch replaces ``best.pt`` (the objective is still changing), and
  early stopping only counts epochs after it.
* Gradient clip: with the mean-reduced loss, the gradient norms of VAE-2
  (default settings, batch 64) on an 80-map ``dustvae make-dataset``
  (896 training patches of 64 px) had a largest step of 0.38 over the first
  8 epochs, and per-epoch medians of 0.05-0.32 over four whole runs (36 to
  78 epochs, two seeds, with and without augmentation), in which no step
  reached the clip of :data:`dustvae.defaults.TRAIN_GRAD_CLIP` = 1: it
  guards against rare large steps and does not rescale every step.
  ``metrics.jsonl`` records the fraction of clipped steps.
* ``pca_init``: the linear paths start from PCA and train at
  ``pca_linear_lr_scale`` times the learning rate, without weight decay.
  Adam moves each weight by about the learning rate per step whatever the
  size of its gradient; at the full rate the first epoch alone took the
  PCA start on a small test store from PCA's RMSE (0.0104) to 0.0896.
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

import contextlib
import fcntl
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import defaults, distributed
from ..errors import DustvaeError
from ..io.atomic import atomic_path
from ..io.store import CoefficientStore, StoreReader, check_finite_rows
from ..wst.layout import CoefficientLayout
from ..wst.symmetry import exact_symmetry_permutations
from ..wst.transform import resolve_device
from .checkpoint import load_checkpoint, save_checkpoint
from .loss import KL_FORMS, kl_divergence, negative_elbo, reconstruction_mse
from .vae import INPUT_LENGTH, OUTPUT_STAGES, DilatedConvVAE, model_name

#: Default KL weight (see dustvae.models.loss for its meaning and how earlier weights map to it).
DEFAULT_BETA = defaults.TRAIN_BETA


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults in :mod:`dustvae.defaults`)."""

    latent_dim: int = defaults.LATENT_VAE2
    epochs: int = defaults.TRAIN_EPOCHS
    batch_size: int = defaults.TRAIN_BATCH_SIZE
    lr: float = defaults.TRAIN_LR
    beta: float = DEFAULT_BETA
    kl_form: str = "analytic"
    warmup_epochs: int = defaults.TRAIN_WARMUP_EPOCHS
    patience: int = defaults.TRAIN_PATIENCE
    seed: int = 0
    first_channels: int = 16
    linear_path: bool = False
    grad_clip: float = defaults.TRAIN_GRAD_CLIP
    weight_decay: float = defaults.TRAIN_WEIGHT_DECAY
    augment: bool = False
    output_stage: str = "table"
    pca_init: bool = False
    pca_linear_lr_scale: float = defaults.TRAIN_PCA_LINEAR_LR_SCALE

    def __post_init__(self) -> None:
        if self.kl_form not in KL_FORMS:
            raise DustvaeError(f"unknown KL form {self.kl_form!r}; use analytic or mc")
        for name in ("epochs", "latent_dim", "patience"):
            if getattr(self, name) < 1:
                raise DustvaeError(f"--{name.replace('_', '-').replace('latent-dim', 'latent')} must be positive")
        if self.batch_size < 2:
            raise DustvaeError("--batch-size must be at least 2 (BatchNorm needs two samples per batch)")
        if self.warmup_epochs < 0:
            raise DustvaeError("--warmup must be zero or positive")
        finite = all(math.isfinite(v) for v in (self.lr, self.beta, self.weight_decay))
        if not (finite and self.lr > 0 and self.beta >= 0 and self.weight_decay >= 0 and self.grad_clip > 0):
            raise DustvaeError(f"--lr ({self.lr}) and --grad-clip ({self.grad_clip}) must be positive, --beta ({self.beta}) "
                               f"and --weight-decay ({self.weight_decay}) non-negative, all but --grad-clip finite")
        if self.latent_dim > INPUT_LENGTH:
            raise DustvaeError(f"--latent {self.latent_dim} is larger than the {INPUT_LENGTH} inputs; use e.g. 85 or 170")
        if self.output_stage not in OUTPUT_STAGES:
            raise DustvaeError(f"unknown output stage {self.output_stage!r}; use one of {', '.join(OUTPUT_STAGES)}")
        if self.pca_init and not self.linear_path:
            raise DustvaeError("the PCA start needs the linear paths (--linear-path)")
        if not (math.isfinite(self.pca_linear_lr_scale) and self.pca_linear_lr_scale > 0):
            raise DustvaeError("--pca-linear-lr-scale must be positive")

    @property
    def name(self) -> str:
        """Name of the trained model in results (see :func:`dustvae.models.vae.model_name`)."""
        return model_name(self.latent_dim, self.linear_path, self.pca_init, self.output_stage)

    def learning_rate(self, epoch: int) -> float:
        """Cosine schedule: ``lr`` at epoch 0 down to ``lr * TRAIN_LR_FLOOR`` at the last epoch."""
        floor = self.lr * defaults.TRAIN_LR_FLOOR
        progress = epoch / max(1, self.epochs - 1)
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def kl_weight(self, epoch: int) -> float:
        """beta, ramped linearly over the warm-up: beta * min(1, (epoch + 1) / warmup)."""
        return self.beta * min(1.0, (epoch + 1) / max(1, self.warmup_epochs))


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    best_epoch: int
    best_val_rmse: float
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)
    #: True when ``resume`` found the run finished and trained nothing.
    already_finished: bool = False

    def lower_warmup_epoch(self, warmup_epochs: int) -> dict | None:
        """The metrics row of an epoch with a lower validation RMSE than the kept one, when the kept one is a warm-up epoch.

        Warm-up epochs are kept as best whatever their RMSE (see
        :meth:`Progress.record`); None when the kept epoch is the lowest.
        """
        if self.best_epoch > warmup_epochs or not self.history:
            return None
        lowest = min(self.history, key=lambda row: row["val_rmse_log2"])
        return lowest if lowest["val_rmse_log2"] < self.best_val_rmse else None


@dataclass
class Progress:
    """How far a run is and what it has seen: the plain-data part of :class:`TrainingState`.

    ``epoch`` is the 0-based index of the last completed epoch (-1 before the
    first); ``best_epoch`` is 1-based, as in ``metrics.jsonl``.
    """

    epoch: int = -1
    history: list[dict] = field(default_factory=list)
    best_val_rmse: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    finished: bool = False
    stopped_early: bool = False

    @property
    def epochs_done(self) -> int:
        """Completed epochs."""
        return self.epoch + 1

    def record(self, row: dict, config: TrainConfig) -> bool:
        """Add one epoch's metrics; return whether it is the new best.

        Within the KL warm-up every epoch is the best (the objective is still
        changing); after it, an epoch is the best when its validation RMSE is
        lower than every earlier one's, and ``patience`` epochs in a row
        without that stop the run.
        """
        self.history.append(row)
        self.epoch = row["epoch"] - 1
        in_warmup = row["epoch"] <= config.warmup_epochs
        improved = in_warmup or row["val_rmse_log2"] < self.best_val_rmse
        if improved:
            self.best_val_rmse, self.best_epoch, self.bad_epochs = row["val_rmse_log2"], row["epoch"], 0
        else:
            self.bad_epochs += 1
        self.stopped_early = self.bad_epochs >= config.patience
        self.finished = self.stopped_early or self.epochs_done >= config.epochs
        return improved


@dataclass
class TrainingState:
    """Everything a run needs to continue exactly; the one home of the checkpoint payload.

    :meth:`payload` writes it and :meth:`restore` reads it back: the model
    and optimizer state, the generators (shuffling and augmentation; torch's
    global ones for the reparameterisation noise), the :class:`Progress`, and
    what identifies the run (settings, layout, store fingerprint).
    """

    model: DilatedConvVAE
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    config: TrainConfig
    layout: dict
    store_fingerprint: str
    train_rows: int
    validation_rows: int
    progress: Progress = field(default_factory=Progress)

    def payload(self) -> dict:
        """The checkpoint payload (plain tensors and Python values)."""
        rng = generator_states(self.generator, self.model.data_mean.device)
        return {
            "model": self.model.state_dict(), "model_config": self.model.config(),
            "optimizer": self.optimizer.state_dict(), "train_config": asdict(self.config), "layout": self.layout,
            "store_fingerprint": self.store_fingerprint, "train_rows": self.train_rows,
            "validation_rows": self.validation_rows, **rng, **asdict(self.progress),
        }

    def check_compatible(self, payload: dict, run_dir: Path) -> None:
        """Refuse, in one line, to continue a run on another store or with other settings."""
        if payload.get("store_fingerprint") != self.store_fingerprint:
            raise DustvaeError(f"{run_dir}: was trained on a different store; resume with the store it was trained on, "
                               f"or choose another -o for a new run")
        saved = payload.get("train_config") or {}
        changed = [k for k, v in asdict(self.config).items() if k != "epochs" and saved.get(k) != v]
        if changed:
            raise DustvaeError(f"{run_dir}: --resume with different settings ({', '.join(changed)}); use the original ones")

    def restore(self, payload: dict) -> None:
        """Load a :meth:`payload` into this state (model, optimizer, generators, progress)."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        restore_generators(payload, self.generator, self.model.data_mean.device)
        self.progress = Progress(**{f.name: payload[f.name] for f in fields(Progress)})
        self.progress.history = list(self.progress.history)


def generator_states(generator: torch.Generator, device: torch.device, cuda=torch.cuda) -> dict:
    """The states of a run's generators: shuffling and augmentation, torch's CPU one, and the training GPU's.

    The reparameterisation noise comes from the training device's generator:
    torch's global CPU one, or on CUDA the generator of that GPU (every rank
    of a multi-GPU run draws the same numbers from its own GPU's, so rank 0's
    state is every rank's and a run resumes on any number of GPUs).
    """
    states = {"shuffle_rng": generator.get_state(), "torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda_rng"] = cuda.get_rng_state(device)
    return states


def restore_generators(payload: dict, generator: torch.Generator, device: torch.device, cuda=torch.cuda) -> None:
    """Set the generators from :func:`generator_states` (a checkpoint written on CPU resumes on GPU too)."""
    generator.set_state(payload["shuffle_rng"])
    torch.set_rng_state(payload["torch_rng"])
    saved = payload.get("cuda_rng")
    if saved is not None and device.type == "cuda":
        if isinstance(saved, (list, tuple)):  # older checkpoints: every GPU's state
            cuda.set_rng_state_all(saved)
        else:
            cuda.set_rng_state(saved, device)


def check_vae_store(store: CoefficientStore | StoreReader, source: str = "store", finite: bool = True) -> None:
    """The family is built for 1360-long finite vectors; refuse anything else in one line.

    ``store`` is in memory or an open :class:`~dustvae.io.store.StoreReader`
    (then read block by block); with ``finite=False`` only the length is
    checked, and the caller checks each block it reads with
    :func:`check_finite_rows`.
    """
    length = store.vector_length
    if length != INPUT_LENGTH:
        raise DustvaeError(
            f"{source}: vectors have {length} coefficients but the VAEs take {INPUT_LENGTH} "
            f"(fields Q,U with J=5, L=8); compute the store with those settings"
        )
    if finite and isinstance(store, StoreReader):
        for start, block in store.blocks("coeffs"):
            check_finite_rows(block, source, start, len(store))
    elif finite:
        check_finite_rows(store.coeffs, source)


def training_split(store: CoefficientStore, seed: int = 0, validation_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Row indices for training and validation; test rows are never returned.

    Uses the store's split when it has one; otherwise makes one, seeded: by
    map when the store holds several maps; for one sky, by region with a
    guard band (:func:`dustvae.sky.regions.region_split`), so that no
    validation patch overlaps a training one; by patch only when the
    patches' positions or width are unknown or span too few regions.
    """
    if store.split is not None:
        train, val = np.flatnonzero(store.split == 0), np.flatnonzero(store.split == 1)
    else:
        rng = np.random.default_rng(seed)
        groups = np.unique(store.map_index)
        codes = None if len(groups) >= 3 else _one_sky_split(store, seed, validation_fraction)
        if codes is not None:  # guard patches (3) are in neither
            is_val = codes == 1
        elif len(groups) >= 3:
            chosen = rng.permutation(groups)[: max(1, int(round(validation_fraction * len(groups))))]
            is_val = np.isin(store.map_index, chosen)
        else:
            is_val = np.zeros(len(store), bool)
            is_val[rng.permutation(len(store))[: max(1, int(round(validation_fraction * len(store))))]] = True
        train = np.flatnonzero(~is_val if codes is None else codes == 0)
        val = np.flatnonzero(is_val)
    if len(train) < 2 or len(val) < 1:
        raise DustvaeError(f"too few patches to train ({len(train)} train, {len(val)} validation); use a larger store")
    return train, val


def _one_sky_split(store: CoefficientStore, seed: int, validation_fraction: float) -> np.ndarray | None:
    """Train/validation codes (3: guard) of a one-sky store by region, or None where its geometry does not allow one."""
    from ..sky.regions import patch_width, region_split

    attrs = store.attrs
    if store.centers is None or "patch_size" not in attrs or "center_frame" not in attrs:
        return None
    try:
        width = patch_width(str(attrs["center_frame"]), int(attrs["patch_size"]), float(attrs.get("pixel_scale_arcmin", np.nan)))
        return region_split(store.centers, str(attrs["center_frame"]), width, validation_fraction, 0.0, seed)[0]
    except DustvaeError:
        return None


def mean_variance(x: np.ndarray | torch.Tensor) -> float:
    """Mean over coefficients of the per-coefficient variance (log2 units squared).

    The factor that maps earlier KL weights to beta (see :mod:`dustvae.models.loss`).
    """
    return float(torch.as_tensor(x, dtype=torch.float64).var(0).mean())


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x_std: torch.Tensor, beta: float,
                  kl_form: str = "analytic", grad_clip: float = defaults.TRAIN_GRAD_CLIP, amp: bool = False,
                  noise: torch.Tensor | None = None, loss_scale: float = 1.0) -> tuple[float, float, float, float]:
    """One optimisation step on a standardised batch: (loss, reconstruction MSE, KL, gradient norm before clipping).

    ``model`` is a :class:`DilatedConvVAE` or one wrapped in
    DistributedDataParallel; ``noise`` is the reparameterisation draw
    (drawn by the model when None). The gradient is that of ``loss_scale``
    times the batch-mean loss (several ranks scale their slices so that the
    average DistributedDataParallel takes is the global batch's mean).
    Mixed precision (bfloat16) when ``amp`` (CUDA only); the loss is
    computed in float32. A non-finite loss or gradient norm stops the run
    before the step, on every rank alike (the norm is of the all-reduced
    gradient).
    """
    vae = getattr(model, "module", model)
    model.train()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
        recon, mu, logvar, z = model(x_std, noise)
    loss, rec, kl = negative_elbo(x_std, recon.float(), mu.float(), logvar.float(), z.float(), beta, kl_form,
                                  scale=vae.data_std)
    optimizer.zero_grad(set_to_none=True)
    (loss * loss_scale).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if not (torch.isfinite(loss) and torch.isfinite(norm)):
        raise DustvaeError(f"training diverged (loss {loss.item()}, gradient norm {float(norm)}); lower --lr or --grad-clip")
    optimizer.step()
    return loss.item(), rec.item(), kl.item(), float(norm)


def evaluate_split(model: DilatedConvVAE, x_std: torch.Tensor, beta: float, batch: int = 512) -> dict:
    """Reconstruction from the posterior mean (deterministic) and the analytic KL, averaged over ``x_std``."""
    model.eval()
    sq_log2 = sq_std = kl_sum = 0.0
    with torch.inference_mode():
        for start in range(0, len(x_std), batch):
            xb = x_std[start : start + batch]
            mean, logvar = model.encode_standardised(xb)
            recon = model.decode_standardised(mean)
            sq_log2 += reconstruction_mse(xb, recon, model.data_std).sum().item()
            sq_std += reconstruction_mse(xb, recon).sum().item()
            kl_sum += kl_divergence(mean, logvar).sum().item()
    rec, kl = sq_log2 / len(x_std), kl_sum / len(x_std)
    return {"val_loss": rec + beta * kl, "val_rec": rec, "val_kl": kl,
            "val_rmse_log2": math.sqrt(rec), "val_rmse_std": math.sqrt(sq_std / len(x_std))}


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    with atomic_path(run_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in history))


_LOCK = ".lock"


def check_not_training(path: str | Path) -> None:
    """Refuse, in one line, a run directory (or a checkpoint in one) that a training run is still writing."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    try:
        handle = open(run_dir / _LOCK)
    except OSError:  # no lock file: never trained here, or not a run directory
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DustvaeError(f"{run_dir}: `dustvae train` is still writing this run; wait for it to finish, "
                               f"or give a copy of its best.pt") from None
        fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory, so that two runs cannot write into it at once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / _LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DustvaeError(f"{run_dir}: another training run is using this directory; wait for it or choose another -o") from None
        yield


def parameter_groups(model: DilatedConvVAE, config: TrainConfig) -> list[dict]:
    """AdamW's parameter groups, each with its ``lr_scale`` (the schedule's lr is multiplied by it).

    A PCA-started model's linear paths form a group of their own, with
    ``config.pca_linear_lr_scale`` and no weight decay (decay would pull them
    away from PCA, toward zero); everything else is one group with the
    configured weight decay.
    """
    linear = []
    if config.pca_init and model.linear_path:
        linear = [*model.linear_encoder.parameters(), *model.linear_decoder.parameters()]
    ids = {id(p) for p in linear}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": rest, "weight_decay": config.weight_decay, "lr_scale": 1.0}]
    if linear:
        groups.append({"params": linear, "weight_decay": 0.0, "lr_scale": config.pca_linear_lr_scale})
    return groups


def _new_model(config: TrainConfig, x_train: torch.Tensor) -> DilatedConvVAE:
    """The model at step 0: seeded weights, the training set's standardisation, the PCA start if asked."""
    torch.manual_seed(config.seed)
    model = DilatedConvVAE(config.latent_dim, config.first_channels, config.linear_path,
                           output_stage=config.output_stage, pca_init=config.pca_init)
    model.set_standardisation(x_train.mean(0), x_train.std(0))
    if config.pca_init:
        from .pca_init import init_from_pca  # the linear paths start from the training split's PCA

        init_from_pca(model, x_train)
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
        raise DustvaeError(f"{run_dir}: holds a run already; pass --resume to continue it or choose another -o")
    if resume and not last_path.exists():
        raise DustvaeError(f"{run_dir}: nothing to resume (no last.pt); run without --resume")
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
        with _locked(run_dir):
            return _train_locked(store, train_idx, val_idx, symmetries, run_dir, config, torch_device, resume, progress)
    except BaseException:
        if new_dir and not (run_dir / "last.pt").exists():  # failed before its first epoch: leave no empty run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _data_parallel(model: DilatedConvVAE, device: torch.device, ranks: distributed.Ranks) -> torch.nn.Module:
    """The module the training steps run: ``model`` itself, or under several ranks its DistributedDataParallel.

    The BatchNorm layers then normalise by the global batch's statistics
    (:mod:`dustvae.models.batchnorm`); they update their running statistics
    identically on every rank, so DistributedDataParallel need not sync
    buffers before each forward pass.
    """
    if not ranks.several:
        return model
    from torch.nn.parallel import DistributedDataParallel

    from .batchnorm import globalise_batchnorm

    globalise_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None, forward_sync_buffers=False)


def _rank_slice(n: int, ranks: distributed.Ranks) -> slice:
    """This rank's contiguous share of a global batch of ``n`` rows (the shares differ by at most one row)."""
    return slice(ranks.rank * n // ranks.world, (ranks.rank + 1) * n // ranks.world)


def _train_locked(store: CoefficientStore, train_idx: np.ndarray, val_idx: np.ndarray, symmetries: torch.Tensor | None,
                  run_dir: Path, config: TrainConfig, torch_device: torch.device, resume: bool,
                  progress: bool) -> TrainResult:
    ranks = distributed.current()
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    x_train = torch.from_numpy(store.coeffs[train_idx]).float()
    x_val = torch.from_numpy(store.coeffs[val_idx]).float()
    layout_attrs = {k: store.attrs[k] for k in ("J", "L", "fields", "vector_length", "normalisation", "boundary") if k in store.attrs}

    model = _new_model(config, x_train).to(torch_device)
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
                               f"train again with another -o") from exc
        done = state.progress
        if config.epochs < done.epochs_done:
            raise DustvaeError(f"{run_dir}: --epochs {config.epochs} is fewer than the {done.epochs_done} epochs this run "
                               f"has done; give --epochs above {done.epochs_done} to continue it")
        saved_epochs = int(payload["train_config"]["epochs"])
        if config.epochs == done.epochs_done or (done.finished and config.epochs <= saved_epochs):
            return TrainResult(run_dir, done.best_epoch, done.best_val_rmse, done.epochs_done, done.stopped_early,
                               done.history, already_finished=True)
        if done.finished:  # asked for more epochs: continue, patience restarted
            done.finished = done.stopped_early = False
            done.bad_epochs = 0

    if ranks.is_main:
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(json.dumps({"train": asdict(config), "model": config.name, "layout": layout_attrs,
                                       "n_train": len(train_idx), "n_validation": len(val_idx), "ranks": ranks.world,
                                       "train_mean_variance_log2": mean_variance(x_train)}, indent=2))
    x_train, x_val_std = x_train.to(torch_device), model.standardise(x_val.to(torch_device))
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
            noise = torch.randn((len(rows), config.latent_dim), device=torch_device)
            mine = _rank_slice(len(rows), ranks)
            xb = x_train[rows[mine].to(torch_device)]
            if codes is not None:
                xb = torch.gather(xb, 1, symmetries[codes[mine].to(torch_device)])
            share = mine.stop - mine.start
            try:
                loss, rec, kl, norm = training_step(network, optimizer, model.standardise(xb), beta_now, config.kl_form,
                                                    config.grad_clip, use_amp, noise[mine],
                                                    loss_scale=ranks.world * share / len(rows))
            except DustvaeError as exc:
                raise DustvaeError(f"epoch {epoch + 1}: {exc}") from None
            sums += np.array([loss, rec, kl]) * share
            norms.append(norm)
            seen += share
        loss_sum, rec_sum, kl_sum, seen = distributed.all_sum([*sums, seen])
        elapsed = time.perf_counter() - tic
        validation = distributed.broadcast_from_main(evaluate_split(model, x_val_std, config.beta) if ranks.is_main else None)
        if not math.isfinite(validation["val_rmse_log2"]):  # nothing of this epoch is saved: the checkpoints stay finite
            done = state.progress
            kept = (f"last.pt keeps epoch {done.epochs_done} and best.pt epoch {done.best_epoch}" if done.epochs_done
                    else "nothing was saved")
            raise DustvaeError(f"epoch {epoch + 1}: validation RMSE is {validation['val_rmse_log2']}: training diverged; "
                               f"{kept}; lower --lr or --grad-clip")
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
                          device: str = "auto", progress: bool = True) -> tuple[Path, bool]:
    """Train into ``run_dir`` unless a finished run of ``config`` is there; resume an interrupted one.

    Returns the path of the best checkpoint and whether anything was trained.
    A finished run asked for more epochs than it ran continues to them (as
    ``train --resume --epochs N`` does).
    """
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    if last.exists():
        payload = load_checkpoint(last)
        if payload.get("finished") and config.epochs <= int(payload["train_config"]["epochs"]):
            return run_dir / "best.pt", False
    train(store, run_dir, config, device=device, resume=last.exists(), progress=progress)
    return run_dir / "best.pt", True
