"""Training: Adam, KL warm-up, early stopping on validation loss, resumable checkpoints.

A run directory holds ``last.pt`` (after every epoch), ``best.pt`` (lowest
validation loss), ``metrics.jsonl`` (one line per epoch) and
``config.json``. Every random draw comes from generators whose states are
saved in ``last.pt``, so a run killed at any moment and restarted with
``resume=True`` ends with the same weights as an uninterrupted run (on CPU,
same thread count).

Guards against the two failure modes of VAEs:

* Posterior collapse: the KL weight rises linearly from beta/warmup to
  beta over the first ``warmup_epochs`` (Bowman et al. 2016), so the
  decoder learns to use z before the KL term pushes q(z|x) to the prior.
  Early stopping only counts epochs after the warm-up, when the objective
  no longer changes.
* Blow-up: the log-variance is clamped to [-12, 8] in the encoder, so
  ``exp(logvar)`` can neither overflow nor make the KL infinite; gradients
  are clipped at norm 10 against rare large steps.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import defaults
from ..errors import DustvaeError
from ..io.atomic import atomic_path
from ..io.store import CoefficientStore
from ..wst.transform import resolve_device
from .checkpoint import load_checkpoint, save_checkpoint
from .loss import KL_FORMS, negative_elbo
from .vae import INPUT_LENGTH, DilatedConvVAE, model_name

#: Default KL weight (a balanced Keras-style 5e-5 corresponds to 0.034; see dustvae.models.loss).
DEFAULT_BETA = defaults.TRAIN_BETA


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

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
    grad_clip: float = 10.0

    def __post_init__(self) -> None:
        if self.kl_form not in KL_FORMS:
            raise DustvaeError(f"unknown KL form {self.kl_form!r}; use analytic or mc")
        for name in ("epochs", "batch_size", "latent_dim"):
            if getattr(self, name) < 1:
                raise DustvaeError(f"--{name.replace('_', '-')} must be positive")
        if not (self.lr > 0 and self.beta >= 0):
            raise DustvaeError("--lr must be positive and --beta non-negative")
        if self.latent_dim > INPUT_LENGTH:
            raise DustvaeError(f"--latent {self.latent_dim} is larger than the {INPUT_LENGTH} inputs; use e.g. 85 or 170")


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def check_vae_store(store: CoefficientStore, source: str = "store") -> None:
    """The family is built for 1360-long vectors; refuse anything else in one line."""
    length = store.coeffs.shape[1]
    if length != INPUT_LENGTH:
        raise DustvaeError(
            f"{source}: vectors have {length} coefficients but the VAEs take {INPUT_LENGTH} "
            f"(fields Q,U with J=5, L=8); compute the store with those settings"
        )


def training_split(store: CoefficientStore, seed: int = 0, validation_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Row indices for training and validation; test rows are never returned.

    Uses the store's split when it has one; otherwise makes one, seeded: by
    map when the store holds several maps, else by patch.
    """
    if store.split is not None:
        train, val = np.flatnonzero(store.split == 0), np.flatnonzero(store.split == 1)
    else:
        rng = np.random.default_rng(seed)
        groups = np.unique(store.map_index)
        if len(groups) >= 3:
            chosen = rng.permutation(groups)[: max(1, int(round(validation_fraction * len(groups))))]
            is_val = np.isin(store.map_index, chosen)
        else:
            is_val = np.zeros(len(store), bool)
            is_val[rng.permutation(len(store))[: max(1, int(round(validation_fraction * len(store))))]] = True
        train, val = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(train) < 2 or len(val) < 1:
        raise DustvaeError(f"too few patches to train ({len(train)} train, {len(val)} validation); use a larger store")
    return train, val


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    with atomic_path(run_dir / "metrics.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in history))


def _evaluate(model: DilatedConvVAE, x_std: torch.Tensor, beta: float, batch: int = 512) -> dict:
    """Validation loss with z = posterior mean (deterministic) and the analytic KL."""
    model.eval()
    rec_sum = kl_sum = 0.0
    with torch.inference_mode():
        for start in range(0, len(x_std), batch):
            xb = x_std[start : start + batch]
            mean, logvar = model.encode_standardised(xb)
            _, rec, kl = negative_elbo(xb, model.decode_standardised(mean), mean, logvar, None, beta)
            rec_sum += rec.item() * len(xb)
            kl_sum += kl.item() * len(xb)
    rec, kl = rec_sum / len(x_std), kl_sum / len(x_std)
    return {"val_loss": rec + beta * kl, "val_rec": rec, "val_kl": kl,
            "val_rmse_std": math.sqrt(2 * rec / x_std.shape[1])}


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
        ``auto``, ``cpu`` or ``cuda``; mixed precision (bfloat16) on CUDA only.
    resume : bool
        Continue from ``run_dir/last.pt``.
    """
    check_vae_store(store)
    run_dir = Path(run_dir)
    torch_device = resolve_device(device)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if not resume and last_path.exists():
        raise DustvaeError(f"{run_dir}: holds a run already; pass --resume to continue it or choose another -o")
    run_dir.mkdir(parents=True, exist_ok=True)

    train_idx, val_idx = training_split(store, config.seed)
    x_train = torch.from_numpy(store.coeffs[train_idx]).float()
    x_val = torch.from_numpy(store.coeffs[val_idx]).float()
    mean, std = x_train.mean(0), x_train.std(0)

    torch.manual_seed(config.seed)
    model = DilatedConvVAE(config.latent_dim, config.first_channels, config.linear_path)
    model.set_standardisation(mean, std)
    model.to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    shuffle = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    best_loss, best_epoch, bad_epochs, start_epoch = math.inf, -1, 0, 0
    fingerprint = store.fingerprint()
    layout_attrs = {k: store.attrs[k] for k in ("J", "L", "fields", "vector_length", "normalisation", "boundary") if k in store.attrs}

    if resume:
        if not last_path.exists():
            raise DustvaeError(f"{run_dir}: nothing to resume (no last.pt); run without --resume")
        state = load_checkpoint(last_path)
        saved = state["train_config"]
        changed = [k for k, v in asdict(config).items() if k != "epochs" and saved.get(k) != v]
        if changed:
            raise DustvaeError(f"{run_dir}: --resume with different settings ({', '.join(changed)}); use the original ones")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        history = list(state["history"])
        best_loss, best_epoch, bad_epochs = state["best_loss"], state["best_epoch"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        if state.get("finished"):
            return TrainResult(run_dir, best_epoch, best_loss, start_epoch, state.get("stopped_early", False), history)

    (run_dir / "config.json").write_text(json.dumps({"train": asdict(config), "layout": layout_attrs,
                                                   "n_train": len(train_idx), "n_validation": len(val_idx)}, indent=2))
    x_train_std = model.standardise(x_train.to(torch_device))
    x_val_std = model.standardise(x_val.to(torch_device))
    use_amp = torch_device.type == "cuda"
    stopped_early = False
    epoch = start_epoch - 1

    def checkpoint_payload(epoch: int, finished: bool) -> dict:
        return {
            "model": model.state_dict(), "model_config": model.config(), "optimizer": optimizer.state_dict(),
            "train_config": asdict(config), "layout": layout_attrs, "epoch": epoch, "history": history,
            "best_loss": best_loss, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
            "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(), "finished": finished,
            "stopped_early": stopped_early, "train_rows": len(train_idx), "validation_rows": len(val_idx),
            "store_fingerprint": fingerprint,
        }

    bar = tqdm(range(start_epoch, config.epochs), desc=f"train {model_name(config.latent_dim, config.linear_path)}", unit="epoch",
               disable=not progress, initial=start_epoch, total=config.epochs)
    for epoch in bar:
        model.train()
        tic = time.perf_counter()
        beta_now = config.beta * min(1.0, (epoch + 1) / max(1, config.warmup_epochs))
        order = torch.randperm(len(x_train_std), generator=shuffle).to(torch_device)
        sums = np.zeros(3)
        for start in range(0, len(order), config.batch_size):
            xb = x_train_std[order[start : start + config.batch_size]]
            if len(xb) < 2:  # BatchNorm needs two samples
                continue
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                recon, mu, logvar, z = model(xb)
            loss, rec, kl = negative_elbo(xb, recon.float(), mu.float(), logvar.float(), z.float(), beta_now, config.kl_form)
            if not torch.isfinite(loss):
                raise DustvaeError(f"training diverged at epoch {epoch + 1} (loss {loss.item()}); lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            sums += np.array([loss.item(), rec.item(), kl.item()]) * len(xb)
        elapsed = time.perf_counter() - tic
        row = {"epoch": epoch + 1, "beta": beta_now, "train_loss": sums[0] / len(order),
               "train_rec": sums[1] / len(order), "train_kl": sums[2] / len(order),
               **_evaluate(model, x_val_std, config.beta), "seconds": elapsed,
               "samples_per_s": len(order) / elapsed}
        row = {k: (v if k == "epoch" else float(v)) for k, v in row.items()}  # plain floats: weights_only loads
        history.append(row)
        past_warmup = epoch + 1 >= config.warmup_epochs
        if row["val_loss"] < best_loss or not past_warmup:
            best_loss, best_epoch, bad_epochs = row["val_loss"], epoch + 1, 0
            save_checkpoint(best_path, checkpoint_payload(epoch, False))
        else:
            bad_epochs += 1
        stopped_early = past_warmup and bad_epochs >= config.patience
        done = stopped_early or epoch + 1 == config.epochs
        save_checkpoint(last_path, checkpoint_payload(epoch, done))
        _write_metrics(run_dir, history)
        bar.set_postfix(loss=f"{row['train_loss']:.1f}", val=f"{row['val_loss']:.1f}", kl=f"{row['train_kl']:.1f}")
        if stopped_early:
            break
    bar.close()
    return TrainResult(run_dir, best_epoch, best_loss, epoch + 1, stopped_early, history)
