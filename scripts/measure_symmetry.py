"""How close the approximate 45-degree rotation is, next to the exact symmetries and the data's spread.

Run: ``.venv/bin/python scripts/measure_symmetry.py [STORE] [--maps 24]``.

1. Per patch. Simulated periodic 256-px maps (the dataset's turbulence
   model, parameters drawn from its ranges); a 64-px patch A at the centre,
   and patches B turned about the same pixel by 45 and 90 degrees, each
   pixel sampled from the periodic field by cubic-spline interpolation
   (``scipy.ndimage.map_coordinates``, ``mode="grid-wrap"``: the map is a
   periodic box, so every turned pixel has a true value), with Q, U turned
   as a spin-2 field. Every patch is tapered to a central disc (the same
   sky at every angle, no seams) and transformed with the periodic
   boundary. Printed: the RMSE between vector(B) and the permuted
   vector(A) for 45 degrees, and for 90 degrees through the same pipeline
   (exact: it checks the pipeline), beside the patches' spread.
2. In distribution (with a STORE): for each permutation P, the RMS over
   coefficients of mean(P v) - mean(v) across the store, in log2 and in
   units of its standard error. An isotropic sky gives about 1 standard
   error for a permutation that is exact in distribution (patches of one map
   are correlated, so the standard errors, computed as if they were not,
   are too small; compare the permutations with one another).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage

from dustvae.io.store import read_store
from dustvae.numerics import rmse
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.dataset import PARAM_RANGES
from dustvae.wst.layout import CoefficientLayout
from dustvae.wst.symmetry import EXACT_SYMMETRIES, rotate45_permutation, symmetry_permutation
from dustvae.wst.transform import normalise, prepare, scattering_means

LAYOUT = CoefficientLayout()


def rotated_patch(q: np.ndarray, u: np.ndarray, degrees: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` patch of the periodic map turned by ``degrees`` about its pixel (size/2, size/2).

    The patch's pixel (size/2, size/2) sits on the map's pixel (n/2, n/2). A
    radial taper (1 within 0.3 size, cos**2 down to 0 at 0.47 size) keeps
    only a disc, the same region of the sky at every angle, and removes
    the seams of a non-periodic patch, so the periodic transform applies.
    Turning about a pixel whose coordinates are multiples of 2**J keeps
    Kymatio's subsampling grid, so 90 degrees is exact here.
    """
    n = q.shape[0]
    a = np.deg2rad(degrees)
    offset = np.arange(size) - size // 2
    rows, cols = np.meshgrid(offset, offset, indexing="ij")
    # content turned from the row axis toward the column axis: sample the source at R^-1 p
    src_r = n // 2 + np.cos(a) * rows + np.sin(a) * cols
    src_c = n // 2 - np.sin(a) * rows + np.cos(a) * cols
    sample = lambda f: ndimage.map_coordinates(f, [src_r, src_c], order=3, mode="grid-wrap")
    qs, us = sample(q), sample(u)
    c, s = np.cos(2 * a), np.sin(2 * a)  # spin 2: the sign convention is invisible to the WST
    radius = np.hypot(rows, cols) / size
    taper = np.clip((0.47 - radius) / (0.47 - 0.3), 0.0, 1.0)
    window = np.sin(0.5 * np.pi * taper) ** 2
    return window * (c * qs - s * us), window * (s * qs + c * us)


def vectors(maps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    x, _ = prepare(np.stack([np.stack(m) for m in maps]).astype(np.float64), ("Q", "U"))
    s = scattering_means(x, boundary="periodic")
    return normalise(s.s1, s.s2, LAYOUT).astype(np.float64)


def per_patch(n_maps: int, size: int = 64, map_size: int = 256) -> None:
    rng = np.random.default_rng(1)
    originals, turned45, turned90 = [], [], []
    for k in range(n_maps):
        p = DustParams(slope=rng.uniform(*PARAM_RANGES["slope"]), turbulence=rng.uniform(*PARAM_RANGES["turbulence"]),
                       mean_field_angle=rng.uniform(0, 180), seed=1000 + k)
        m = simulate_flat(map_size, p)
        q, u = m["Q"].astype(np.float64), m["U"].astype(np.float64)
        originals.append(rotated_patch(q, u, 0.0, size))
        turned45.append(rotated_patch(q, u, 45.0, size))
        turned90.append(rotated_patch(q, u, 90.0, size))
    v0, v45, v90 = vectors(originals), vectors(turned45), vectors(turned90)
    p45 = rotate45_permutation(LAYOUT)
    e45, e90 = rmse(v45, v0[:, p45], axis=1), rmse(v90, v0[:, symmetry_permutation(LAYOUT, "rot90")], axis=1)
    print(f"per patch ({n_maps} windowed patches of {size} px, periodic transform), RMSE in log2, "
          f"median [16th-84th percentile]:")
    for name, e in (("45 deg, permuted", e45), ("45 deg, not permuted", rmse(v45, v0, axis=1)), ("90 deg, permuted", e90)):
        print(f"  {name:22s} {np.median(e):.4f} [{np.percentile(e, 16):.4f}, {np.percentile(e, 84):.4f}]")
    d = v45 - v0[:, p45]
    for j1 in range(LAYOUT.J):
        rows = LAYOUT.select(j1=j1)
        print(f"  45 deg by j1 = {j1}: RMSE {np.sqrt((d[:, rows] ** 2).mean()):.4f}, mean signed error {d[:, rows].mean():+.4f}")
    print(f"  spread of these patches: rms per-coefficient std {np.sqrt(v0.var(axis=0).mean()):.4f}")


def in_distribution(path: str) -> None:
    store = read_store(path)
    v = store.coeffs.astype(np.float64)
    layout = CoefficientLayout.from_attrs(store.attrs)
    se = v.std(axis=0) / np.sqrt(len(v))
    print(f"in distribution ({path}: {len(v)} patches; rms per-coefficient std {np.sqrt(v.var(axis=0).mean()):.4f}):")
    perms = {name: symmetry_permutation(layout, name) for name in EXACT_SYMMETRIES[1:]}
    perms["rot45"] = rotate45_permutation(layout)
    for name, p in perms.items():
        diff = v[:, p].mean(axis=0) - v.mean(axis=0)
        print(f"  {name:13s} rms of mean difference {np.sqrt((diff ** 2).mean()):.4f} log2 = "
              f"{np.sqrt(((diff / se) ** 2).mean()):.1f} standard errors; per patch rms(Pv - v) "
              f"{np.median(np.sqrt(((v[:, p] - v) ** 2).mean(axis=1))):.4f} (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", help="A coefficient store for the in-distribution check.")
    parser.add_argument("--maps", type=int, default=24, help="Simulated maps for the per-patch check.")
    args = parser.parse_args()
    if args.store:
        in_distribution(args.store)
    per_patch(args.maps)


if __name__ == "__main__":
    main()
