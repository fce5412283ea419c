"""PCA at any latent size, fitted on the training split (scikit-learn's SVD, no whitening).

:class:`SymmetricPCACompressor` (``pca-sym-D``) fits the same PCA on the
training split augmented by the exact symmetries of the pixel grid
(:func:`dustvae.wst.symmetry.exact_symmetry_permutations`): every training
vector enters once per symmetry. The WST statistics of a sky are
symmetric in distribution under those permutations, so the augmented
covariance estimates the same one with four times the rows: the honest
linear baseline at large latent sizes, where the trailing components are
estimated from few effective samples.
"""

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

    Attributes
    ----------
    mean_ : ndarray (D,)
        Training mean, after fitting.
    components_ : ndarray (latent_dim, D)
        Orthonormal principal axes, by decreasing variance, after fitting.
    """

    def __init__(self, latent_dim: int):
        self.latent_dim = int(latent_dim)
        self.name = f"pca-{self.latent_dim}"
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, X: np.ndarray) -> "PCACompressor":
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DustvaeError(f"{self.name}: training vectors must form a 2D array, got shape {X.shape}")
        if min(X.shape) < self.latent_dim:
            raise DustvaeError(f"{self.name} needs at least {self.latent_dim} training vectors; got {len(X)}")
        pca = PCA(n_components=self.latent_dim, whiten=False, svd_solver="full").fit(X)
        self.mean_, self.components_ = pca.mean_, pca.components_
        return self

    def truncated(self, latent_dim: int) -> "PCACompressor":
        """The PCA of ``latent_dim`` components on the same data, from this fit's leading axes (no new SVD)."""
        self._fitted()
        if not 0 < latent_dim <= self.latent_dim:
            raise DustvaeError(f"{self.name} can give 1 to {self.latent_dim} components, not {latent_dim}")
        smaller = PCACompressor(latent_dim)
        smaller.mean_, smaller.components_ = self.mean_, self.components_[:latent_dim]
        return smaller

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.components_ is None:
            raise DustvaeError(f"{self.name} is not fitted; call fit on the training split first")
        return self.mean_, self.components_

    def _check(self, array: np.ndarray, length: int, what: str) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != length:
            raise DustvaeError(f"{self.name}: {what} of length {length} expected, got shape {array.shape}")
        return array

    def encode(self, X: np.ndarray) -> np.ndarray:
        mean, components = self._fitted()
        return (self._check(X, len(mean), "vectors") - mean) @ components.T

    def decode(self, Z: np.ndarray) -> np.ndarray:
        mean, components = self._fitted()
        return self._check(Z, self.latent_dim, "codes") @ components + mean


class SymmetricPCACompressor(PCACompressor):
    """PCA fitted on the training vectors and their images under index permutations (``pca-sym-D``).

    Parameters
    ----------
    latent_dim : int
        Number of components kept.
    permutations : ndarray (P, D) of int
        Index permutations; row ``k`` maps a vector ``x`` to ``x[perm_k]``
        (:func:`~dustvae.wst.symmetry.exact_symmetry_permutations`, whose
        row 0 is the identity). The fit sees every training vector under
        each of them.
    """

    def __init__(self, latent_dim: int, permutations: np.ndarray):
        super().__init__(latent_dim)
        self.name = f"pca-sym-{self.latent_dim}"
        self.permutations = np.asarray(permutations, dtype=np.intp)
        if self.permutations.ndim != 2:
            raise DustvaeError(f"{self.name}: permutations must form a 2D array, got shape {self.permutations.shape}")

    def fit(self, X: np.ndarray) -> "SymmetricPCACompressor":
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.permutations.shape[1]:
            raise DustvaeError(f"{self.name}: training vectors of length {self.permutations.shape[1]} expected, "
                               f"got shape {X.shape}")
        return super().fit(augment(X, self.permutations))

    def truncated(self, latent_dim: int) -> "SymmetricPCACompressor":
        """The symmetric PCA of ``latent_dim`` components, from this fit's leading axes (no new SVD)."""
        plain = super().truncated(latent_dim)
        smaller = SymmetricPCACompressor(latent_dim, self.permutations)
        smaller.mean_, smaller.components_ = plain.mean_, plain.components_
        return smaller


def augment(X: np.ndarray, permutations: np.ndarray) -> np.ndarray:
    """``X`` under each permutation, stacked: (P * N, D), permutation by permutation."""
    return np.concatenate([np.asarray(X)[:, perm] for perm in permutations])
