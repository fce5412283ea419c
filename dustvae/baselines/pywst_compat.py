"""Run pywst's reference RWST fit on our vectors (for validation and benchmarks only).

pywst (PyPI ``pywst``) is a test-time dependency, imported lazily. Its
angle index is one step ahead of Kymatio's (ours ``l`` is pywst's
``(l + 1) % L``); its coefficient order is otherwise Kymatio's.
"""

from __future__ import annotations

import numpy as np

from ..wst.layout import CoefficientLayout


def to_pywst_order(X: np.ndarray, layout: CoefficientLayout, field: str) -> np.ndarray:
    """One field's normalised coefficients as pywst's (1 + n_s1 + n_s2, N) array (S0 row set to 0)."""
    L = layout.L
    out = np.zeros((1 + layout.per_field, len(X)))
    shift = lambda l: (l + 1) % L  # noqa: E731
    for i in layout.select(field=field):
        if layout.layer[i] == 1:
            k = 1 + layout.j1[i] * L + shift(layout.l1[i])
        else:
            k = layout.index(field, 2, layout.j1[i], shift(layout.l1[i]), layout.j2[i], shift(layout.l2[i]))
            k = 1 + k - layout.fields.index(field) * layout.per_field
        out[k] = X[:, i]
    return out


def from_pywst_order(coeffs: np.ndarray, layout: CoefficientLayout, field: str) -> np.ndarray:
    """Inverse of :func:`to_pywst_order`: (N, per_field) in our order."""
    L = layout.L
    single = CoefficientLayout(fields=(field,), J=layout.J, L=layout.L)
    out = np.zeros((coeffs.shape[1], single.per_field))
    shift = lambda l: (l + 1) % L  # noqa: E731
    for i in range(single.per_field):
        if single.layer[i] == 1:
            k = 1 + single.j1[i] * L + shift(single.l1[i])
        else:
            k = 1 + single.index(field, 2, single.j1[i], shift(single.l1[i]), single.j2[i], shift(single.l2[i]))
        out[:, i] = coeffs[k]
    return out


def pywst_rwst(X: np.ndarray, layout: CoefficientLayout, model: int = 1, size: int = 64) -> np.ndarray:
    """pywst's RWST fit and ``to_wst()`` reconstruction of our vectors, field by field: (N, D)."""
    import pywst
    from pywst.rwst_models import RWSTModel1, RWSTModel2

    model_cls = RWSTModel1 if model == 1 else RWSTModel2
    op = pywst.RWSTOp(size, size, layout.J, layout.L, model_cls=model_cls)
    parts = []
    for field in layout.fields:
        wst = pywst.WST(layout.J, layout.L, to_pywst_order(np.asarray(X, np.float64), layout, field))
        wst.log2vals, wst.normalized = True, True
        rwst = op.apply(wst)
        parts.append(from_pywst_order(np.asarray(rwst.to_wst().coeffs), layout, field))
    return np.concatenate(parts, axis=1)
