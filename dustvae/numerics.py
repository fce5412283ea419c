"""Small numerical helpers shared by every layer (no dustvae imports, so any module may use them)."""

from __future__ import annotations

import numpy as np


def rmse(a: np.ndarray, b: np.ndarray, axis: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    """Root-mean-square difference ``sqrt(mean((a - b)**2))``, computed in float64.

    Parameters
    ----------
    a, b : array_like
        Arrays of broadcastable shapes (vectors, or rows of vectors).
    axis : int or tuple of int, optional
        Axes to average over [default: all, giving a float].

    Returns
    -------
    float or ndarray
        A float when ``axis`` is None, else the array of RMSEs along the
        remaining axes.

    Examples
    --------
    >>> rmse([0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0])
    1.0
    >>> rmse([[0.0, 0.0], [1.0, 1.0]], 0.0, axis=1)
    array([0., 1.])
    """
    delta = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    out = np.sqrt(np.mean(delta**2, axis=axis))
    return float(out) if axis is None else out


def leave_one_out_means(X: np.ndarray, map_index: np.ndarray) -> np.ndarray:
    """Each row's map-level target: the mean vector of the *other* rows of its map (N, D).

    ``(sum over the map - x_i) / (n - 1)``: independent of the row's own
    realisation noise, so a compressor cannot score well against it by
    copying that noise. Rows of maps with one row have no other patch; their
    target is NaN.
    """
    X = np.asarray(X, np.float64)
    maps, inverse = np.unique(np.asarray(map_index), return_inverse=True)
    sums = np.zeros((len(maps), X.shape[1]))
    np.add.at(sums, inverse, X)
    others = np.bincount(inverse)[inverse] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (sums[inverse] - X) / others[:, None]
    out[others == 0] = np.nan
    return out
