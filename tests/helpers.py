"""Small synthetic coefficient stores for model and evaluation tests (real files, real schema)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dustvae.io.store import CoefficientStore, write_store
from dustvae.wst.layout import CoefficientLayout
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
    attrs = {**layout.to_attrs(), "boundary": "reflect", "normalisation": "log2 S1; log2 S2/S1(j1,theta1); patch divided by amplitude"}
    return CoefficientStore(
        coeffs=coeffs.astype(np.float32), s0=np.zeros((n, 2), np.float32), s1=s1.astype(np.float32),
        s2=s2.astype(np.float32), amplitude=np.ones(n), centers=np.zeros((n, 2)),
        masked_fraction=np.zeros(n, np.float32), map_index=map_index, theta=layout.angles, attrs=attrs,
        labels={"slope": rng.uniform(2, 3, n)}, split=codes[map_index] if split else None,
    )


def write_synthetic_store(path: Path, **kwargs) -> Path:
    return write_store(path, synthetic_store(**kwargs))
