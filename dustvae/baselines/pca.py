"""PCA at any latent size, fitted on the training split (scikit-learn, no whitening)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from ..compressor import Compressor
from ..errors import DustvaeError


class PCACompressor(Compressor):
    """Principal components of the training vectors.

    Parameters
    ----------
    latent_dim : int
        Number of components kept.
    """

    def __init__(self, latent_dim: int):
        self.latent_dim = int(latent_dim)
        self.name = f"pca-{self.latent_dim}"
        self._pca: PCA | None = None

    def fit(self, X: np.ndarray) -> "PCACompressor":
        X = np.asarray(X, dtype=np.float64)
        if min(X.shape) < self.latent_dim:
            raise DustvaeError(f"{self.name} needs at least {self.latent_dim} training vectors; got {len(X)}")
        self._pca = PCA(n_components=self.latent_dim, whiten=False, svd_solver="full").fit(X)
        return self

    def _fitted(self) -> PCA:
        if self._pca is None:
            raise DustvaeError(f"{self.name} is not fitted; call fit on the training split first")
        return self._pca

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self._fitted().transform(np.asarray(X, dtype=np.float64))

    def decode(self, Z: np.ndarray) -> np.ndarray:
        return self._fitted().inverse_transform(np.asarray(Z, dtype=np.float64))
