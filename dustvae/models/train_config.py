"""The settings of one training run, checked when made, and the schedules they define.

A :class:`TrainConfig` holds the model it trains (a
:class:`~dustvae.models.model_config.ModelConfig`: architecture, start,
target) and how it trains it (epochs, batches, optimiser, schedule, seed);
a checkpoint stores each once (``model_config`` and ``train_config``).

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
from dataclasses import asdict, dataclass, field

from .. import defaults
from ..errors import DustvaeError
from .loss import KL_FORMS
from .model_config import ModelConfig

#: Default KL weight (see dustvae.models.loss for its meaning and how earlier weights map to it).
DEFAULT_BETA = defaults.TRAIN_BETA


@dataclass(frozen=True)
class TrainConfig:
    """The model to train and the hyper-parameters of its training (defaults in :mod:`dustvae.defaults`).

    ``warmup_epochs=None`` is resolved when the configuration is made:
    0 for a linear start (``model.pca_init``), :data:`dustvae.defaults.TRAIN_WARMUP_EPOCHS`
    otherwise.

    Examples
    --------
    >>> config = TrainConfig(ModelConfig(latent_dim=170, linear_path=True, pca_init=True), epochs=20, augment=True)
    >>> config.name, config.warmup_epochs
    ('vae-170+pca', 0)
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = defaults.TRAIN_EPOCHS
    batch_size: int = defaults.TRAIN_BATCH_SIZE
    lr: float = defaults.TRAIN_LR
    beta: float = DEFAULT_BETA
    kl_form: str = "analytic"
    warmup_epochs: int | None = None
    patience: int = defaults.TRAIN_PATIENCE
    seed: int = 0
    grad_clip: float = defaults.TRAIN_GRAD_CLIP
    weight_decay: float = defaults.TRAIN_WEIGHT_DECAY
    augment: bool = False
    pca_linear_lr_scale: float = defaults.TRAIN_PCA_LINEAR_LR_SCALE

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            raise DustvaeError(f"`model` must be a ModelConfig, not {type(self.model).__name__}")
        if self.warmup_epochs is None:  # frozen: the resolved value is set once, here
            object.__setattr__(self, "warmup_epochs", 0 if self.model.pca_init else defaults.TRAIN_WARMUP_EPOCHS)
        if self.kl_form not in KL_FORMS:
            raise DustvaeError(f"unknown KL form {self.kl_form!r}; use analytic or mc")
        for name in ("epochs", "patience"):
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
        if not (math.isfinite(self.pca_linear_lr_scale) and self.pca_linear_lr_scale > 0):
            raise DustvaeError("`pca_linear_lr_scale` must be positive")

    @property
    def name(self) -> str:
        """Name of the trained model in results (:attr:`ModelConfig.name`)."""
        return self.model.name

    def training_settings(self) -> dict:
        """The training hyper-parameters alone (``model`` left out): a checkpoint's ``train_config``."""
        settings = asdict(self)
        settings.pop("model")
        return settings

    def changed_from(self, payload: dict) -> list[str]:
        """Settings of this configuration that a checkpoint's run was not made with, ``epochs`` aside.

        The model's are compared with the checkpoint's ``model_config``, the
        training's with its ``train_config`` (which in checkpoints written
        before the two were split also held the model's; those are ignored there).
        """
        model = payload.get("model_config") or {}
        saved = payload.get("train_config") or {}
        changed = [k for k, v in asdict(self.model).items() if model.get(k) != v]
        return changed + [k for k, v in self.training_settings().items() if k != "epochs" and saved.get(k) != v]

    def learning_rate(self, epoch: int) -> float:
        """Cosine schedule: ``lr`` at epoch 0 down to ``lr * TRAIN_LR_FLOOR`` at the last epoch."""
        floor = self.lr * defaults.TRAIN_LR_FLOOR
        progress = epoch / max(1, self.epochs - 1)
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def kl_weight(self, epoch: int) -> float:
        """beta, ramped linearly over the warm-up: beta * min(1, (epoch + 1) / warmup)."""
        return self.beta * min(1.0, (epoch + 1) / max(1, self.warmup_epochs))
