"""Small synthetic coefficient stores for model and evaluation tests (real files, real schema)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from dustvae.io.store import CoefficientStore
from dustvae.io.store_writer import write_store
from dustvae.wst.layout import NORMALISATION, CoefficientLayout
from dustvae.wst.transform import denormalise


def synthetic_store(n: int = 96, n_maps: int = 12, seed: int = 0, split: bool = True, rank: int = 6) -> CoefficientStore:
    """Vectors with WST-like structure: smooth in angle and scale, low-rank variation across patches."""
    rng = np.random.default_rng(seed)
    layout = CoefficientLayout()
    base = -2.0 - 0.3 * layout.j1 + 0.2 * np.cos(2 * layout.theta1) - 0.5 * (layout.layer == 2)
    modes = rng.normal(size=(rank, len(layout))) * 0.15
    coeffs = base + rng.normal(size=(n, rank)) @ modes + 0.01 * rng.normal(size=(n, len(layout)))
    s1, s2 = denormalise(coeffs, layout)
    map_index = np.arange(n) % n_maps
    codes = np.zeros(n_maps, np.int8)
    codes[-2] = 1
    codes[-1] = 2
    attrs = {**layout.to_attrs(), "boundary": "reflect", "normalisation": NORMALISATION}
    return CoefficientStore(
        coeffs=coeffs.astype(np.float32), s0=np.zeros((n, 2), np.float32), s1=s1.astype(np.float32),
        s2=s2.astype(np.float32), amplitude=np.ones(n), centers=np.zeros((n, 2)),
        masked_fraction=np.zeros(n, np.float32), map_index=map_index, theta=layout.angles, attrs=attrs,
        labels={"slope": rng.uniform(2, 3, n)}, split=codes[map_index] if split else None,
    )


def write_synthetic_store(path: Path, **kwargs) -> Path:
    return write_store(path, synthetic_store(**kwargs))


#: Datasets computed by the transform: equal to float32 rounding when their batches differ (test_engine.py).
TRANSFORMED = ("coeffs", "s0", "s1", "s2")


def assert_same_store(a: Path, b: Path, rounding: bool = False) -> None:
    """Same attributes and datasets; with ``rounding``, the transform's outputs to float32 rounding only."""
    with h5py.File(a, "r") as ha, h5py.File(b, "r") as hb:
        assert sorted(ha.attrs) == sorted(hb.attrs)
        for key in ha.attrs:  # NaN-aware: an unknown pixel scale is NaN in both
            np.testing.assert_array_equal(ha.attrs[key], hb.attrs[key], err_msg=key)
        names = _names(ha)
        assert names == _names(hb)
        for name in names:
            if isinstance(ha[name], h5py.Dataset):
                if rounding and name in TRANSFORMED:
                    np.testing.assert_allclose(ha[name][...], hb[name][...], rtol=1e-6, atol=1e-6, err_msg=name)
                else:
                    np.testing.assert_array_equal(ha[name][...], hb[name][...], err_msg=name)


def _names(h5) -> list[str]:
    out: list[str] = []
    h5.visit(out.append)
    return sorted(out)
