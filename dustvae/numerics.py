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
