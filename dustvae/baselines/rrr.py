"""Reduced-rank regression (``rrr-D``): the best linear map of rank D from a patch's vector to a target vector.

With the map-level target (the leave-one-out mean of the other patches of
the patch's map) this is the linear optimum of what the "RMSE to map mean"
column measures: where PCA keeps the directions of largest variance of the
patches, noise included, reduced-rank regression keeps those of largest
variance of what the patch predicts about its map.

The fit (Izenman 1975): the ridge regression ``B`` of the centred targets
on the centred vectors, then the leading ``D`` right singular vectors
``V`` of the fitted values ``X B``; the code is ``(x - mean_x) B V`` and
the reconstruction ``z V^T + mean_y``. The ridge penalty keeps ``B``
defined and stable when the vectors are nearly collinear (1360 correlated
coefficients); it is a multiple of the mean eigenvalue of ``X^T X / N``.
"""

from __future__ import annotations

import numpy as np

from ..compressor import Compressor
from ..errors import DustvaeError


class ReducedRankRegression(Compressor):
    """Rank-``latent_dim`` ridge regression from vectors to targets.

    Parameters
    ----------
    latent_dim : int
        Rank kept (numbers per patch).
    ridge : float
        Penalty as a fraction of the mean eigenvalue of the vectors' covariance.

    Attributes
    ----------
    mean_x_, mean_y_ : ndarray (D,)
        Training means of the vectors and of the targets.
    encoder_ : ndarray (D, latent_dim)
        ``B V``.
    decoder_ : ndarray (latent_dim, D)
        ``V^T``.
    """

    def __init__(self, latent_dim: int, ridge: float = 1e-2):
        self.latent_dim = int(latent_dim)
        self.ridge = float(ridge)
        self.name = f"rrr-{self.latent_dim}"
        self.mean_x_ = self.mean_y_ = self.encoder_ = self.decoder_ = None

    def fit(self, X: np.ndarray, Y: np.ndarray | None = None) -> "ReducedRankRegression":
        """Fit on vectors ``X`` (N, D) and their targets ``Y`` (N, D), rows paired."""
        if Y is None:
            raise DustvaeError(f"{self.name} needs targets to regress on (the leave-one-out map means)")
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        if X.ndim != 2 or Y.shape != X.shape:
            raise DustvaeError(f"{self.name}: vectors and targets must be 2D arrays of one shape, got {X.shape} and {Y.shape}")
        if not 0 < self.latent_dim <= min(X.shape):
            raise DustvaeError(f"{self.name} needs at least {self.latent_dim} training vectors; got {len(X)}")
        if not np.isfinite(Y).all():
            raise DustvaeError(f"{self.name}: targets must be finite (leave out patches alone in their map)")
        self.mean_x_, self.mean_y_ = X.mean(0), Y.mean(0)
        Xc, Yc = X - self.mean_x_, Y - self.mean_y_
        gram = Xc.T @ Xc / len(X)
        penalty = self.ridge * np.trace(gram) / len(gram)
        B = np.linalg.solve(gram + penalty * np.eye(len(gram)), Xc.T @ Yc / len(X))
        _, _, vt = np.linalg.svd(Xc @ B, full_matrices=False)
        V = vt[:self.latent_dim].T
        self.encoder_, self.decoder_ = B @ V, V.T
        return self

    def _fitted(self) -> None:
        if self.encoder_ is None:
            raise DustvaeError(f"{self.name} is not fitted; call fit on the training split first")

    def encode(self, X: np.ndarray) -> np.ndarray:
        self._fitted()
        X = np.asarray(X, np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.mean_x_):
            raise DustvaeError(f"{self.name}: vectors of length {len(self.mean_x_)} expected, got shape {X.shape}")
        return (X - self.mean_x_) @ self.encoder_

    def decode(self, Z: np.ndarray) -> np.ndarray:
        self._fitted()
        Z = np.asarray(Z, np.float64)
        if Z.ndim != 2 or Z.shape[1] != self.latent_dim:
            raise DustvaeError(f"{self.name}: codes of length {self.latent_dim} expected, got shape {Z.shape}")
        return Z @ self.decoder_ + self.mean_y_


class SymmetricReducedRankRegression(ReducedRankRegression):
    """Reduced-rank regression fitted on the pairs under every exact symmetry of the grid (``rrr-sym-D``).

    The map-level target's analogue of symmetric PCA: each training vector
    and its target are permuted alike by each of ``permutations``
    (:func:`~dustvae.wst.symmetry.exact_symmetry_permutations`), which the
    map-target models see as augmentation, so the linear fit has the same
    data they have.
    """

    def __init__(self, latent_dim: int, permutations: np.ndarray, ridge: float = 1e-2):
        super().__init__(latent_dim, ridge)
        self.name = f"rrr-sym-{self.latent_dim}"
        self.permutations = np.asarray(permutations, dtype=np.intp)

    def fit(self, X: np.ndarray, Y: np.ndarray | None = None) -> "SymmetricReducedRankRegression":
        """Fit on vectors ``X`` (N, D) and their targets ``Y`` (N, D), each pair under every permutation."""
        if Y is None:
            raise DustvaeError(f"{self.name} needs targets to regress on (the leave-one-out map means)")
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        return super().fit(np.concatenate([X[:, p] for p in self.permutations]),
                           np.concatenate([Y[:, p] for p in self.permutations]))
