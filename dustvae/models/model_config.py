"""What a model of the family is: its architecture, its start and its target, checked once, and its name.

:class:`ModelConfig` is what a checkpoint's ``model_config`` holds and
what :class:`~dustvae.models.vae.DilatedConvVAE` is built from; how it is
trained is :class:`~dustvae.models.train_config.TrainConfig`'s. No torch here:
configurations are made, checked and named before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import defaults
from ..errors import DustvaeError

#: Length of the vector the family is built for: Q and U, J = 5, L = 8.
INPUT_LENGTH = 1360
#: Decoder output stages and training targets (their one home is dustvae.defaults).
OUTPUT_STAGES = defaults.OUTPUT_STAGES
TARGETS = defaults.TRAIN_TARGETS


@dataclass(frozen=True)
class ModelConfig:
    """One model of the family (see :class:`~dustvae.models.vae.DilatedConvVAE` for each field's meaning).

    Parameters
    ----------
    latent_dim : int
        Latent size: 170 gives VAE-1, 85 gives VAE-2.
    first_channels : int
        Channels of the first convolution.
    linear_path : bool
        Linear encoder and decoder paths beside the convolutional ones.
    output_stage : {"table", "linear", "wide"}
        The decoder's last stage (:data:`OUTPUT_STAGES`).
    pca_init : bool
        Start at the linear optimum of the target (PCA, or the reduced-rank
        regression for the map target); needs ``linear_path``.
    target : {"patch", "map"}
        What the model reconstructs (:data:`TARGETS`).
    """

    latent_dim: int = defaults.LATENT_VAE2
    first_channels: int = 16
    linear_path: bool = False
    output_stage: str = "table"
    pca_init: bool = False
    target: str = "patch"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise DustvaeError(f"unknown training target {self.target!r}; use one of {', '.join(TARGETS)}")
        if not 1 <= self.latent_dim <= INPUT_LENGTH:
            raise DustvaeError(f"`latent_dim` {self.latent_dim} must be between 1 and the {INPUT_LENGTH} inputs; "
                               f"use e.g. 85 or 170")
        if self.first_channels < 1:
            raise DustvaeError(f"`first_channels` must be positive, got {self.first_channels}")
        if self.output_stage not in OUTPUT_STAGES:
            raise DustvaeError(f"unknown output stage {self.output_stage!r}; use one of {', '.join(OUTPUT_STAGES)}")
        if self.pca_init and not self.linear_path:
            raise DustvaeError("the PCA start needs the linear paths (`linear_path`)")

    @property
    def name(self) -> str:
        """Name in results (see :func:`model_name`)."""
        return model_name(self.latent_dim, self.linear_path, self.pca_init, self.output_stage, self.target)


def model_name(latent_dim: int, linear_path: bool = False, pca_init: bool = False, output_stage: str = "table",
               target: str = "patch") -> str:
    """Name used in results.

    ``vae-170`` is VAE-1 and ``vae-85`` VAE-2; variants append ``+lin``
    (linear paths), ``+pca`` (linear paths started from PCA, in place of
    ``+lin``; ``+rrr`` for the map target, whose linear start is the
    reduced-rank regression), ``+linout`` or ``+wideout`` (output stage),
    and ``+map`` when trained on the map-level target.
    """
    start = "+rrr" if target == "map" else "+pca"
    name = f"vae-{latent_dim}" + (start if pca_init else "+lin" if linear_path else "")
    name += {"table": "", "linear": "+linout", "wide": "+wideout"}[output_stage]
    return name + ("+map" if target == "map" else "")
