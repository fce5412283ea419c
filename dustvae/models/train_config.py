"""The settings of one training run, checked when made, and the schedules they define.

Choices, and why:

* A cosine learning rate from ``lr`` to ``lr * TRAIN_LR_FLOOR`` over
  ``epochs`` (:meth:`TrainConfig.learning_rate`); the optimizer is AdamW
  (:mod:`dustvae.models.train`).
* Posterior collapse: the KL weight rises linearly from beta/warmup to beta
  over the first ``warmup_epochs`` (Bowman et al. 2016;
  :meth:`TrainConfig.kl_weight`). How warm-up epochs are kept as best is in
  :meth:`dustvae.models.train_state.Progress.record`.
* A linear start (``pca_init``) gets no KL warm-up unless asked: its
  latents are already whitened scores, so the KL starts small, and a
  warm-up would keep its early epochs as best whatever their RMSE.
* ``target="map"``: each training patch is reconstructed towards the
  leave-one-out mean of the other training patches of its map
  (:mod:`dustvae.models.train`).
* Every setting is checked here, once, so that a bad one is refused in one
  line before any data is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import defaults
from ..errors import DustvaeError
from .loss import KL_FORMS
from .vae import INPUT_LENGTH, OUTPUT_STAGES, TARGETS, model_name

#: Default KL weight (see dustvae.models.loss for its meaning and how earlier weights map to it).
DEFAULT_BETA = defaults.TRAIN_BETA


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults in :mod:`dustvae.defaults`).

    ``warmup_epochs=None`` is resolved when the configuration is made:
    0 for a linear start (``pca_init``), :data:`dustvae.defaults.TRAIN_WARMUP_EPOCHS`
    otherwise. ``target`` is one of :data:`dustvae.models.vae.TARGETS`.
    """

    latent_dim: int = defaults.LATENT_VAE2
    epochs: int = defaults.TRAIN_EPOCHS
    batch_size: int = defaults.TRAIN_BATCH_SIZE
    lr: float = defaults.TRAIN_LR
    beta: float = DEFAULT_BETA
    kl_form: str = "analytic"
    warmup_epochs: int | None = None
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
    target: str = "patch"

    def __post_init__(self) -> None:
        if self.warmup_epochs is None:  # frozen: the resolved value is set once, here
            object.__setattr__(self, "warmup_epochs", 0 if self.pca_init else defaults.TRAIN_WARMUP_EPOCHS)
        if self.target not in TARGETS:
            raise DustvaeError(f"unknown training target {self.target!r}; use one of {', '.join(TARGETS)}")
        if self.kl_form not in KL_FORMS:
            raise DustvaeError(f"unknown KL form {self.kl_form!r}; use analytic or mc")
        for name in ("epochs", "latent_dim", "patience"):
            if getattr(self, name) < 1:
                raise DustvaeError(f"`{name}` must be positive")
        if self.batch_size < 2:
            raise DustvaeError("`batch_size` must be at least 2 (BatchNorm needs two samples per batch)")
        if self.warmup_epochs < 0:
            raise DustvaeError("`warmup_epochs` must be zero or positive")
        finite = all(math.isfinite(v) for v in (self.lr, self.beta, self.weight_decay))
        if not (finite and self.lr > 0 and self.beta >= 0 and self.weight_decay >= 0 and self.grad_clip > 0):
            raise DustvaeError(f"`lr` ({self.lr}) and `grad_clip` ({self.grad_clip}) must be positive, `beta` ({self.beta}) "
                               f"and `weight_decay` ({self.weight_decay}) non-negative, all but `grad_clip` finite")
        if self.latent_dim > INPUT_LENGTH:
            raise DustvaeError(f"`latent_dim` {self.latent_dim} is larger than the {INPUT_LENGTH} inputs; use e.g. 85 or 170")
        if self.output_stage not in OUTPUT_STAGES:
            raise DustvaeError(f"unknown output stage {self.output_stage!r}; use one of {', '.join(OUTPUT_STAGES)}")
        if self.pca_init and not self.linear_path:
            raise DustvaeError("the PCA start needs the linear paths (`linear_path`)")
        if not (math.isfinite(self.pca_linear_lr_scale) and self.pca_linear_lr_scale > 0):
            raise DustvaeError("`pca_linear_lr_scale` must be positive")

    @property
    def name(self) -> str:
        """Name of the trained model in results (see :func:`dustvae.models.vae.model_name`)."""
        return model_name(self.latent_dim, self.linear_path, self.pca_init, self.output_stage, self.target)

    def learning_rate(self, epoch: int) -> float:
        """Cosine schedule: ``lr`` at epoch 0 down to ``lr * TRAIN_LR_FLOOR`` at the last epoch."""
        floor = self.lr * defaults.TRAIN_LR_FLOOR
        progress = epoch / max(1, self.epochs - 1)
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def kl_weight(self, epoch: int) -> float:
        """beta, ramped linearly over the warm-up: beta * min(1, (epoch + 1) / warmup)."""
        return self.beta * min(1.0, (epoch + 1) / max(1, self.warmup_epochs))
