"""A trained VAE behind the shared compressor interface: encode = posterior mean."""

from __future__ import annotations

import numpy as np

from ..compressor import Compressor
from .apply import decode_array, encode_array, sample_array
from .prior import LatentPrior
from .vae import DilatedConvVAE


class VAECompressor(Compressor):
    """Wrap a trained :class:`DilatedConvVAE` (already fitted: :meth:`fit` learns nothing more)."""

    needs_training = False

    def __init__(self, model: DilatedConvVAE):
        self.model = model
        self.name = model.name
        self.latent_dim = model.latent_dim

    def encode(self, X: np.ndarray) -> np.ndarray:
        return encode_array(self.model, X)[0]

    def decode(self, Z: np.ndarray) -> np.ndarray:
        return decode_array(self.model, Z)

    def sample(self, n: int, seed: int = 0, prior: LatentPrior | None = None) -> np.ndarray:
        """``n`` vectors decoded from draws of the N(0, I) prior (or of ``prior``, a fitted one), seeded."""
        return sample_array(self.model, n, seed, prior)
