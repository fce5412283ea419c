"""Throughput of compute-wst end to end, of raw Kymatio and of pywst, on the same patches.

Run: ``.venv/bin/python scripts/bench_wst.py [--sizes 64 128 256] [--device cpu]``.
Prints patches/s and the ratios in one run, and writes docs/_generated/bench_wst.rst.
End to end = amplitude normalisation, the transform, log ratios, the
resumable batch files and the final HDF5 store. Raw Kymatio = the
``Scattering2D`` call on prepared float32 batches (filters already built).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from _bench import Report, best_time
from dustvae.io.maps import FlatMap
from dustvae.sky.patches import flat_patches
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.wst.compute import compute_store
from dustvae.wst.transform import auto_batch_size, prepare, resolve_device, scattering_operator

COUNTS = {64: 64, 128: 32, 256: 8}


def patches_of(size: int, count: int):
    tiles = int(np.ceil(np.sqrt(count)))
    maps = simulate_flat(size * tiles, DustParams(seed=size))
    patch_set = flat_patches(FlatMap(fields={"Q": maps["Q"], "U": maps["U"]}), size)
    patch_set.patches = patch_set.patches[:count]
    patch_set.centers, patch_set.masked_fraction, patch_set.map_index = (
        patch_set.centers[:count], patch_set.masked_fraction[:count], patch_set.map_index[:count])
    return patch_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pywst-count", type=int, default=4, help="Patches timed with pywst (it is slow).")
    args = parser.parse_args()
    device = resolve_device(args.device)
    report = Report(f"bench_wst_{device.type}", f"WST throughput ({device.type})",
                    f"{'size':>5} {'N':>4} {'end-to-end/s':>13} {'kymatio/s':>10} {'pywst/s':>8} {'e2e cost / kymatio':>19} {'e2e / pywst':>12}")
    for size in args.sizes:
        count = COUNTS.get(size, 16) * (8 if device.type == "cuda" else 1)
        patch_set = patches_of(size, count)
        batch = auto_batch_size(size, 2, 5, device)
        op = scattering_operator(size, device=device)
        x, _ = prepare(patch_set.patches, patch_set.fields)

        def raw():
            with torch.inference_mode():
                for start in range(0, count, batch):
                    xb = torch.from_numpy(x[start:start + batch]).to(device)
                    op(xb).mean(dim=(-2, -1)).cpu()

        with tempfile.TemporaryDirectory() as tmp:
            def end_to_end():
                out = Path(tmp) / "c.h5"
                out.unlink(missing_ok=True)
                compute_store(patch_set, out, device=str(device), batch_size=batch, progress=False)

            raw()  # warm-up: filters on the device, allocator
            t_e2e = best_time(end_to_end)
            t_raw = best_time(raw)
        try:
            import pywst

            wop = pywst.WSTOp(size, size, 5, 8)
            q = np.ascontiguousarray(patch_set.patches[: args.pywst_count], dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_py = best_time(lambda: [wop.apply(np.ascontiguousarray(img)) for p in q for img in p], repeat=1)
            py_rate = args.pywst_count / t_py
        except ImportError:
            py_rate = float("nan")
        e2e_rate, raw_rate = count / t_e2e, count / t_raw
        row = (f"{size:>5} {count:>4} {e2e_rate:>13.1f} {raw_rate:>10.1f} {py_rate:>8.2f} "
               f"{raw_rate / e2e_rate:>19.2f} {e2e_rate / py_rate:>12.1f}")
        report.add(row)
    notes = ["Patches hold Q and U (two 2D transforms each); J = 5, L = 8, order 2, device "
             f"{device}. 'e2e cost / kymatio' is end-to-end time over raw Kymatio time (target <= 1.2); "
             "'e2e / pywst' is how many times faster than pywst's WSTOp (target > 1)."]
    report.write(notes)


if __name__ == "__main__":
    main()
