"""The one interface every compressor shares (VAEs, PCA, RWST), after scikit-learn's estimators.

All work on normalised log2 vectors (N, D). Evaluation code holds a
``Compressor`` and never asks which kind it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Compressor(ABC):
    """A map from vectors to ``latent_dim`` numbers and back.

    Attributes
    ----------
    name : str
        Name in results (``vae-85``, ``pca-170``, ``rwst1``, ...).
    latent_dim : int
        Numbers kept per vector.
    needs_training : bool
        False when :meth:`fit` learns nothing (RWST fits each vector alone).
    """

    name: str = "compressor"
    latent_dim: int = 0
    needs_training: bool = True

    def fit(self, X: np.ndarray) -> "Compressor":
        """Learn from training vectors (N, D); returns self."""
        return self

    @abstractmethod
    def encode(self, X: np.ndarray) -> np.ndarray:
        """Latent representation (N, latent_dim) of vectors (N, D)."""

    @abstractmethod
    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Vectors (N, D) from latent representations (N, latent_dim)."""

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """``decode(encode(X))``."""
        return self.decode(self.encode(X))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, latent_dim={self.latent_dim})"
