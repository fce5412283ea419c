"""Error metrics (docs/conventions.rst), computed with the coefficient layout.

All inputs are normalised log2 vectors; ``delta = reconstruction - truth``.
``rmse_log2`` is the root-mean-square of delta; the relative error of a
coefficient is ``|2**delta - 1|`` (of S1 on the first layer, of S2/S1 on the
second), averaged.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from ..numerics import leave_one_out_means, rmse  # noqa: F401 (leave_one_out_means: imported from here too)
from ..wst.layout import CoefficientLayout

__all__ = ["energy_distance", "generative_metrics", "leave_one_out_means", "map_means", "noise_floor",
           "reconstruction_metrics", "rmse", "standardised_rmse"]


def _summary(delta: np.ndarray) -> dict:
    return {
        "rmse_log2": rmse(delta, 0.0),
        "mean_rel_err": float(np.mean(np.abs(np.exp2(delta) - 1.0))),
    }


def reconstruction_metrics(truth: np.ndarray, recon: np.ndarray, layout: CoefficientLayout) -> dict:
    """RMSE and relative errors overall, per field, per layer, per ``j1`` and per ``(j1, j2)``."""
    delta = np.asarray(recon, np.float64) - np.asarray(truth, np.float64)
    s1, s2 = layout.select(layer=1), layout.select(layer=2)
    out = {
        "rmse_log2": rmse(delta, 0.0),
        "rel_err_s1": float(np.mean(np.abs(np.exp2(delta[:, s1]) - 1.0))),
        "rel_err_s2_over_s1": float(np.mean(np.abs(np.exp2(delta[:, s2]) - 1.0))),
        "rmse_per_patch_median": float(np.median(rmse(delta, 0.0, axis=1))),
        "per_field": {f: _summary(delta[:, layout.select(field=f)]) for f in layout.fields},
        "per_layer": {str(k): _summary(delta[:, layout.select(layer=k)]) for k in (1, 2)},
        "per_field_layer": {f"{f}{k}": _summary(delta[:, layout.select(field=f, layer=k)]) for f in layout.fields for k in (1, 2)},
        "per_j1": {str(j): _summary(delta[:, layout.select(layer=1, j1=j)]) for j in range(layout.J)},
        "per_pair": {f"{j1}-{j2}": _summary(delta[:, layout.select(layer=2, j1=j1, j2=j2)])
                     for j1 in range(layout.J) for j2 in range(j1 + 1, layout.J)},
    }
    return out


def map_means(X: np.ndarray, map_index: np.ndarray) -> np.ndarray:
    """Each row's map mean, the row itself included (N, D): the centre of the within-map scatter; the map-level target is
    :func:`leave_one_out_means`."""
    X = np.asarray(X, np.float64)
    maps, inverse = np.unique(np.asarray(map_index), return_inverse=True)
    sums = np.zeros((len(maps), X.shape[1]))
    np.add.at(sums, inverse, X)
    return (sums / np.bincount(inverse)[:, None])[inverse]


def noise_floor(X: np.ndarray, map_index: np.ndarray, layout: CoefficientLayout,
                scale: np.ndarray | None = None) -> dict | None:
    """Within-map scatter of the vectors: the part of a patch no compressor of that patch alone can predict.

    For each map with at least two patches, the per-coefficient variance of
    its patches around the map's mean vector, unbiased (``n - 1``
    denominator, so that maps of few patches are not favoured); the scatter
    is the root of its mean over coefficients and maps (an RMS over maps,
    each map weighted equally). With the leave-one-out convention of the
    map-level target (:func:`leave_one_out_means`) this is the same
    estimator: ``SS / (n - 1) = (n - 1) / n * mean_i |x_i - loo_i|**2`` per
    map, so the patch itself scored against its leave-one-out target (the
    identity row) has squared RMSE ``n / (n - 1)`` times the scatter's. ``rmse_std`` divides each coefficient by
    ``scale`` (the training spread) first. None when no map has two patches.
    """
    X = np.asarray(X, np.float64)
    _, inverse, counts = np.unique(np.asarray(map_index), return_inverse=True, return_counts=True)
    keep = counts[inverse] >= 2
    if not keep.any():
        return None
    residual = (X - map_means(X, map_index))[keep]
    groups, rows = np.unique(inverse[keep], return_inverse=True)
    n = counts[groups].astype(np.float64)

    def floor(resid: np.ndarray, cols=slice(None)) -> float:
        ss = np.zeros((len(groups), resid[:1, cols].shape[1]))
        np.add.at(ss, rows, resid[:, cols] ** 2)  # sum of squares per map and coefficient
        return float(np.sqrt(np.mean(ss / (n - 1)[:, None])))

    out = {"rmse_log2": floor(residual),
           "per_layer": {str(k): floor(residual, layout.select(layer=k)) for k in (1, 2)},
           "per_field_layer": {f"{f}{k}": floor(residual, layout.select(field=f, layer=k))
                               for f in layout.fields for k in (1, 2)},
           "n_maps": int(len(groups)), "patches_per_map": {"min": int(n.min()), "max": int(n.max())}}
    if scale is not None:
        out["rmse_std"] = floor(residual / np.asarray(scale, np.float64))
    return out


def standardised_rmse(truth: np.ndarray, recon: np.ndarray, scale: np.ndarray) -> float:
    """RMSE after dividing each coefficient's error by ``scale`` (the training split's std)."""
    scale = np.asarray(scale, np.float64)
    return rmse(np.asarray(recon, np.float64) / scale, np.asarray(truth, np.float64) / scale)


def energy_distance(a: np.ndarray, b: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """Energy distance (Székely & Rizzo 2013) between two samples of vectors.

    ``2 E|A - B| - E|A - A'| - E|B - B'|`` with Euclidean norms: zero if and
    only if the distributions are equal, parameter-free (no kernel width to
    choose) and sensitive to location, spread and shape in many dimensions,
    which is what a check of generated coefficient vectors needs. Samples
    larger than ``max_points`` are subsampled, seeded.
    """
    rng = np.random.default_rng(seed)
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if len(a) > max_points:
        a = a[rng.choice(len(a), max_points, replace=False)]
    if len(b) > max_points:
        b = b[rng.choice(len(b), max_points, replace=False)]

    def mean_dist(x, y, same):
        d = cdist(x, y)  # direct differences: no cancellation in |x|^2 + |y|^2 - 2 x.y
        n = len(x)
        return d.sum() / (n * (n - 1)) if same else d.mean()

    return float(2 * mean_dist(a, b, False) - mean_dist(a, a, True) - mean_dist(b, b, True))


def generative_metrics(samples: np.ndarray, test: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> dict:
    """Prior samples against the test set, in units of the training spread ``scale`` per coefficient.

    ``reference`` is another sample of real vectors (the training set): its
    distance to the test set is the floor that a perfect generator reaches.
    """
    s, t, r = samples / scale, test / scale, reference / scale
    return {
        "mean_abs_mean_diff": float(np.mean(np.abs(s.mean(0) - t.mean(0)))),
        "median_std_ratio": float(np.median(s.std(0) / t.std(0))),
        "energy_distance": energy_distance(s, t),
        "energy_distance_train_vs_test": energy_distance(r, t),
        "n_samples": int(len(samples)),
    }
