"""A run's state: what it has done, what it reports, and everything it needs to continue exactly.

Everything a run needs to continue lives in one :class:`TrainingState`,
which writes the checkpoint payload and restores from it. Every random draw
(shuffling, augmentation, the reparameterisation noise) comes from
generators whose states it saves (:func:`generator_states`), so a run
killed at any moment and restarted with ``resume=True`` ends with the same
weights as an uninterrupted run (on CPU, same thread count). A resumed run
must see the same store (checked by its fingerprint) and the same settings,
except ``epochs`` (:meth:`TrainingState.check_compatible`).

Choices, and why:

* Within the KL warm-up every epoch replaces ``best.pt`` (the objective is
  still changing), and early stopping only counts epochs after it
  (:meth:`Progress.record`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from ..errors import DustvaeError
from .train_config import TrainConfig
from .vae import DilatedConvVAE


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
        if warmup_epochs == 0 or self.best_epoch == 0 or self.best_epoch > warmup_epochs or not self.history:
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
            "optimizer": self.optimizer.state_dict(), "train_config": self.config.training_settings(), "layout": self.layout,
            "store_fingerprint": self.store_fingerprint, "train_rows": self.train_rows,
            "validation_rows": self.validation_rows, **rng, **asdict(self.progress),
        }

    def check_compatible(self, payload: dict, run_dir: Path) -> None:
        """Refuse, in one line, to continue a run on another store or with other settings."""
        if payload.get("store_fingerprint") != self.store_fingerprint:
            raise DustvaeError(f"{run_dir}: was trained on a different store; resume with the store it was trained on, "
                               f"or choose another `run_dir` for a new run")
        changed = self.config.changed_from(payload)
        if changed:  # the same rule as dustvae.models.train.stale_reason, which reuses runs
            raise DustvaeError(f"{run_dir}: `resume` with different settings ({', '.join(changed)}); use the original ones")

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
