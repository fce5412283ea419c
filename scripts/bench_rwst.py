"""Our RWST fit against pywst's RWSTOp on the same coefficient vectors: patches/s, ratio, residuals.

Run: ``.venv/bin/python scripts/bench_rwst.py [--patches 200] [--pywst-patches 10]``.
Writes docs/_generated/bench_rwst.rst.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from _bench import Report, best_time
from dustvae.baselines import RWSTCompressor
from dustvae.baselines.pywst_compat import pywst_rwst
from dustvae.io.maps import FlatMap
from dustvae.sky.patches import flat_patches
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.wst.compute import compute_store
from dustvae.wst.layout import CoefficientLayout


def coefficient_vectors(count: int) -> np.ndarray:
    """Real WST vectors of simulated 64-px patches (several maps, varied parameters)."""
    sets = []
    for seed in range(int(np.ceil(count / 16))):
        maps = simulate_flat(256, DustParams(seed=seed, slope=2.0 + 0.1 * (seed % 10), turbulence=0.4 + 0.1 * (seed % 8)))
        sets.append(flat_patches(FlatMap(fields={"Q": maps["Q"], "U": maps["U"]}), 64))
    from dustvae.io.patchfile import PatchSet

    store = compute_store(PatchSet.concatenate(sets), None, progress=False)
    return store.coeffs[:count].astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=192)
    parser.add_argument("--pywst-patches", type=int, default=8)
    args = parser.parse_args()
    X = coefficient_vectors(args.patches)
    layout = CoefficientLayout()
    report = Report("bench_rwst", "RWST fit: ours against pywst",
                    f"{'model':>6} {'ours patches/s':>15} {'pywst patches/s':>16} {'speed-up':>9} "
                    f"{'RSS ours':>10} {'RSS pywst':>10} {'ours <= pywst':>14}")
    for model in (1, 2):
        ours = RWSTCompressor(model, layout)
        t_ours = best_time(lambda: ours.reconstruct(X))
        sub = X[: args.pywst_patches]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_py = best_time(lambda: pywst_rwst(sub, layout, model), repeat=1)
            theirs = pywst_rwst(sub, layout, model)
        rss_ours = ((ours.reconstruct(sub) - sub) ** 2).sum(1)
        rss_py = ((theirs - sub) ** 2).sum(1)
        rate_ours, rate_py = len(X) / t_ours, len(sub) / t_py
        row = (f"{model:>6} {rate_ours:>15.1f} {rate_py:>16.2f} {rate_ours / rate_py:>9.0f} {rss_ours.sum():>10.4f} "
               f"{rss_py.sum():>10.4f} {str(bool((rss_ours <= rss_py * (1 + 1e-9)).all())):>14}")
        report.add(row)
    notes = [f"Vectors: {len(X)} WST vectors (Q and U, 1360 each) of simulated 64-px patches; pywst timed on the first "
             f"{args.pywst_patches}. RSS = residual sum of squares over those, in log2 units squared. Target: >= 100x faster "
             "with equal or lower residual."]
    report.write(notes)


if __name__ == "__main__":
    main()
