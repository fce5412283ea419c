"""The RWST angular fit (Allys et al. 2019; Regaldo-Saint Blancard et al. 2020).

Per field and per patch, with angles in radians (from the layout, never
from index arithmetic):

* Model 1, per ``j1``: ``log2 S1 = a + b cos 2(theta1 - ref1)``;
  per ``j1 < j2``: ``log2 S2/S1 = c1 + c2 cos 2(theta1 - theta2)
  + c3 cos 2(theta1 - ref2) + c4 cos 2(theta2 - ref2)``.
* Model 2 adds ``d4 cos 4 theta1 + d8 cos 8 theta1`` to the first layer and
  ``c5 cos 4(theta1 - theta2)`` to the second.

The fit reaches the unweighted least-squares optimum, not a local one. The
first layer is linear once written as ``a + u cos 2theta + v sin 2theta``
(``b = hypot(u, v)``, ``ref1 = atan2(v, u) / 2``), so it is solved in
closed form. The second layer is linear in every coefficient but ``ref2``:
for each candidate ``ref2`` the coefficients are a linear least-squares
solution, so only ``ref2`` is optimised. Because ``ref2 -> ref2 + pi/2`` with
``(c3, c4) -> (-c3, -c4)`` is the same model, ``ref2`` is searched in
``[0, pi/2)``: a grid of :data:`GRID` angles brackets the global minimum
and a batched golden-section search refines it to 1e-9 rad. The profile
objective is evaluated from four moments per series (see
:func:`fit_layer2`), so all patches and scale pairs are fitted at once.

Parameters are ordered as pywst's (``RWSTModel1``/``RWSTModel2``): per
``j1`` ``[a, b, ref1(, d4, d8)]``, then per pair ``[c1, c2, c3, c4, ref2(, c5)]``;
fields follow one another. ``ref`` angles are in radians.
"""

from __future__ import annotations

import numpy as np

from ..compressor import Compressor
from ..errors import DustvaeError
from ..wst.layout import CoefficientLayout

#: Coarse grid of reference angles in [0, pi/2) before refinement.
GRID = 90
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
_REFINE_STEPS = 36


def n_params(model: int) -> tuple[int, int]:
    """Parameters per ``j1`` and per ``(j1, j2)`` pair for Model 1 or 2."""
    return (3, 5) if model == 1 else (5, 6)


def _layer1_design(theta: np.ndarray, model: int) -> np.ndarray:
    cols = [np.ones_like(theta), np.cos(2 * theta), np.sin(2 * theta)]
    if model == 2:
        cols += [np.cos(4 * theta), np.cos(8 * theta)]
    return np.stack(cols, axis=-1)


def fit_layer2(y: np.ndarray, t1: np.ndarray, t2: np.ndarray, model: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of the second-layer model to series ``y`` (M, P) sampled at (t1, t2).

    Returns coefficients (M, k) ordered ``[c1, c2, c3, c4(, c5)]`` and reference
    angles (M,) in ``[0, pi/2)``.

    The angle-free columns ``F`` (1, cos 2(t1 - t2)(, cos 4(t1 - t2))) are
    projected out exactly, once, for every series. What remains is a
    two-column regression on ``u = cos 2(t1 - ref)`` and ``v = cos 2(t2 - ref)``;
    writing ``cos 2(t - ref) = cos 2ref cos 2t + sin 2ref sin 2t``, its 2 x 2
    normal equations depend on each series only through four moments, so
    every candidate angle costs a few multiplications per series.
    """
    fixed = [np.ones_like(t1), np.cos(2 * (t1 - t2))] + ([np.cos(4 * (t1 - t2))] if model == 2 else [])
    F = np.stack(fixed, axis=-1)  # (P, f)
    F_pinv = np.linalg.pinv(F)
    project = lambda a: a - (a @ F_pinv.T) @ F.T  # noqa: E731  (remove the span of F)
    waves = project(np.stack([np.cos(2 * t1), np.sin(2 * t1), np.cos(2 * t2), np.sin(2 * t2)], axis=-1).T).T  # (P, 4)
    K = waves.T @ waves  # (4, 4): Kxx = K[:2, :2], Kzz = K[2:, 2:], Kxz = K[:2, 2:]
    y_free = project(y)
    n = y_free @ waves  # (M, 4) moments

    def normal_equations(ref):
        a = np.stack([np.cos(2 * ref), np.sin(2 * ref)], axis=-1)  # (..., 2)
        quad = lambda B: np.einsum("...i,ij,...j->...", a, B, a)  # noqa: E731
        g11, g22, g12 = quad(K[:2, :2]), quad(K[2:, 2:]), quad(K[:2, 2:])
        return g11, g22, g12, a

    def explained(ref, n_x, n_z):
        g11, g22, g12, a = normal_equations(ref)
        b1, b2 = (n_x * a).sum(-1), (n_z * a).sum(-1)
        return (g22 * b1**2 - 2 * g12 * b1 * b2 + g11 * b2**2) / (g11 * g22 - g12**2)

    grid = np.arange(GRID) * (np.pi / 2) / GRID
    coarse = explained(grid[None, :], n[:, None, :2], n[:, None, 2:])  # (M, G)
    best = np.argmax(coarse, axis=1)
    step = grid[1] - grid[0]
    lo, hi = grid[best] - step, grid[best] + step
    n_x, n_z = n[:, :2], n[:, 2:]
    for _ in range(_REFINE_STEPS):  # golden-section search, all series at once
        a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
        left = explained(a, n_x, n_z) > explained(b, n_x, n_z)
        hi, lo = np.where(left, b, hi), np.where(left, lo, a)
    ref = np.mod(0.5 * (lo + hi), np.pi / 2)

    g11, g22, g12, a = normal_equations(ref)
    b1, b2 = (n_x * a).sum(-1), (n_z * a).sum(-1)
    det = g11 * g22 - g12**2
    c3, c4 = (g22 * b1 - g12 * b2) / det, (g11 * b2 - g12 * b1) / det
    u = np.cos(2 * (t1[None] - ref[:, None]))
    v = np.cos(2 * (t2[None] - ref[:, None]))
    c_fixed = (y - c3[:, None] * u - c4[:, None] * v) @ F_pinv.T  # (M, f): [c1, c2(, c5)]
    coef = np.column_stack([c_fixed[:, 0], c_fixed[:, 1], c3, c4] + ([c_fixed[:, 2]] if model == 2 else []))
    return coef, ref


class RWSTCompressor(Compressor):
    """The RWST fit as a compressor: encode = fitted parameters, decode = the model at every angle.

    Parameters
    ----------
    model : {1, 2}
        RWST Model 1 (65 parameters per field for J = 5) or Model 2 (85).
    layout : CoefficientLayout
        The vectors' layout; angles come from it.
    """

    needs_training = False

    def __init__(self, model: int = 1, layout: CoefficientLayout = CoefficientLayout()):
        if model not in (1, 2):
            raise DustvaeError(f"RWST model must be 1 or 2, got {model}")
        self.model, self.layout = model, layout
        k1, k2 = n_params(model)
        self.n_pairs = layout.J * (layout.J - 1) // 2
        self.per_field = layout.J * k1 + self.n_pairs * k2
        self.latent_dim = self.per_field * len(layout.fields)
        self.name = f"rwst{model}"
        # Index blocks from the layout: (field, j1) -> L indices; (field, j1, j2) -> L*L indices.
        self._s1 = [[layout.select(field=f, layer=1, j1=j) for j in range(layout.J)] for f in layout.fields]
        self._pairs = [(j1, j2) for j1 in range(layout.J) for j2 in range(j1 + 1, layout.J)]
        self._s2 = [[layout.select(field=f, layer=2, j1=j1, j2=j2) for j1, j2 in self._pairs] for f in layout.fields]

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.layout):
            raise DustvaeError(f"{self.name}: vectors of length {len(self.layout)} expected, got shape {X.shape}")
        return X

    def encode(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X)
        n, lay = len(X), self.layout
        k1, k2 = n_params(self.model)
        out = np.empty((n, len(lay.fields), self.per_field))
        for f in range(len(lay.fields)):
            # first layer: one shared design, closed form for all patches and j1
            idx = np.stack(self._s1[f])  # (J, L)
            A = _layer1_design(lay.theta1[idx[0]], self.model)
            coef = X[:, idx] @ np.linalg.pinv(A).T  # (N, J, k1)
            params = np.empty((n, lay.J, k1))
            params[..., 0] = coef[..., 0]
            params[..., 1] = np.hypot(coef[..., 1], coef[..., 2])
            params[..., 2] = 0.5 * np.arctan2(coef[..., 2], coef[..., 1])
            params[..., 3:] = coef[..., 3:]
            out[:, f, : lay.J * k1] = params.reshape(n, -1)
            # second layer: every patch and pair at once
            idx2 = np.stack(self._s2[f])  # (pairs, L*L), same angle pattern for every pair
            t1, t2 = lay.theta1[idx2[0]], lay.theta2[idx2[0]]
            y = X[:, idx2].reshape(-1, idx2.shape[1])
            coef2, ref = fit_layer2(y, t1, t2, self.model)
            params2 = np.empty((len(y), k2))
            params2[:, :4], params2[:, 4] = coef2[:, :4], ref
            if self.model == 2:
                params2[:, 5] = coef2[:, 4]
            out[:, f, lay.J * k1 :] = params2.reshape(n, -1)
        return out.reshape(n, -1)

    def decode(self, Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z, dtype=np.float64)
        lay = self.layout
        n = len(Z)
        if Z.shape[1:] != (self.latent_dim,):
            raise DustvaeError(f"{self.name}: parameter vectors of length {self.latent_dim} expected, got {Z.shape}")
        k1, k2 = n_params(self.model)
        Z = Z.reshape(n, len(lay.fields), self.per_field)
        X = np.empty((n, len(lay)))
        for f in range(len(lay.fields)):
            p1 = Z[:, f, : lay.J * k1].reshape(n, lay.J, k1)
            for j, idx in enumerate(self._s1[f]):
                theta = lay.theta1[idx]
                value = p1[:, j, :1] + p1[:, j, 1:2] * np.cos(2 * (theta - p1[:, j, 2:3]))
                if self.model == 2:
                    value += p1[:, j, 3:4] * np.cos(4 * theta) + p1[:, j, 4:5] * np.cos(8 * theta)
                X[:, idx] = value
            p2 = Z[:, f, lay.J * k1 :].reshape(n, self.n_pairs, k2)
            for p, idx in enumerate(self._s2[f]):
                t1, t2 = lay.theta1[idx], lay.theta2[idx]
                c = p2[:, p]
                value = (c[:, :1] + c[:, 1:2] * np.cos(2 * (t1 - t2)) + c[:, 2:3] * np.cos(2 * (t1 - c[:, 4:5]))
                         + c[:, 3:4] * np.cos(2 * (t2 - c[:, 4:5])))
                if self.model == 2:
                    value += c[:, 5:6] * np.cos(4 * (t1 - t2))
                X[:, idx] = value
        return X
