"""Throughput and memory of the WST: raw Kymatio, the batched engine and compute-wst end to end, on the same patches.

Run: ``.venv/bin/python scripts/bench_wst.py [--sizes 64 128 256 512] [--device cpu] [--threads 1 2]``.
Prints patches/s and the ratios of one run, and writes docs/_generated/bench_wst_DEVICE.rst.

* Raw Kymatio: the ``Scattering2D`` call and the spatial means on prepared
  float32 batches (filters already built).
* Batched: :class:`dustvae.wst.engine.BatchedScattering` on the same batches.
* End to end: ``compute_store`` with its defaults (batched engine, automatic
  batch size): amplitude normalisation, the transform, log ratios, the
  resumable batch files and the final HDF5 store.
* Forward + backward: the gradient of the sum of log2 S1 and log2 S2 with
  respect to the pixels, as synthesis uses it.
* How close to the limit: the batched engine's floating-point work per
  patch, counted from the FFT and product sizes it performs
  (:func:`dustvae.wst.engine.flops`), its achieved rate, and the rate
  ``torch.fft`` sustains in the same run on the same threads for exactly
  the FFTs the engine performs on one batch (:func:`fft_rate`); their ratio
  is the fraction of the FFT-bound limit the engine reaches (FFTs are most
  of its work and the fastest kernels it calls).
* Memory: peak working memory per patch, from the growth of the peak
  resident set (CPU; Linux; measured in a separate process, see
  :func:`measure_memory`) or of the CUDA allocator's peak between batches
  of 1 and 3 patches, beside the batched engine's own count
  (``footprint``), which the automatic batch size uses.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from _bench import Report, best_time
from dustvae.io.maps import FlatMap
from dustvae.sky.patches import flat_patches
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.wst.compute import compute_store
from dustvae.wst.engine import fft_flops, fft_shapes, flops
from dustvae.devices import resolve_device
from dustvae.wst.transform import auto_batch_size, means_operator, padded_size, prepare

COUNTS = {64: 16, 128: 8, 256: 4, 512: 2}
MEMORY_SIZES = (256, 512)


def patches_of(size: int, count: int):
    tiles = int(np.ceil(np.sqrt(count)))
    maps = simulate_flat(size * tiles, DustParams(seed=size))
    patch_set = flat_patches(FlatMap(fields={"Q": maps["Q"], "U": maps["U"]}), size)
    patch_set.patches = patch_set.patches[:count]
    patch_set.centers, patch_set.masked_fraction, patch_set.map_index = (
        patch_set.centers[:count], patch_set.masked_fraction[:count], patch_set.map_index[:count])
    return patch_set


def run(op, x: np.ndarray, batch: int, device: torch.device, backward: bool) -> None:
    """The transform of all of ``x`` in batches; with ``backward``, also the gradient of the log coefficients."""
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(x[start:start + batch]).to(device)
        if backward:
            xb.requires_grad_()
            _, s1, s2 = op(xb)
            (torch.log2(s1).sum() + torch.log2(s2).sum()).backward()
        else:
            with torch.inference_mode():
                op(xb)
    if device.type == "cuda":
        torch.cuda.synchronize()


def fft_rate(m: int, maps: int, device: torch.device, repeat: int = 3) -> float:
    """FLOP/s of ``torch.fft`` on the FFTs the batched engine performs for ``maps`` padded maps of side ``m``.

    Each FFT of :func:`~dustvae.wst.engine.fft_shapes` runs on a random
    complex64 tensor of its shape, out of place as in the engine; the rate
    is their counted work over the sum of their best times.
    """
    generator = torch.Generator().manual_seed(0)
    seconds = work = 0.0
    for kind, shape in fft_shapes(m, 5, 8, maps):
        z = torch.randn(shape, dtype=torch.complex64, generator=generator).to(device)
        transform = getattr(torch.fft, kind)

        def once(z=z, transform=transform):
            transform(z)
            if device.type == "cuda":
                torch.cuda.synchronize()

        once()
        seconds += best_time(once, repeat)
        work += fft_flops(shape)
        del z
    return work / seconds


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_bytes(func, device: torch.device) -> float:
    """Working memory that ``func()`` adds at its peak: CUDA allocator peak, or resident-set high-water mark (Linux)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        func()
        return float(torch.cuda.max_memory_allocated(device) - base)
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap back to the system, so the baseline is what is alive
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    except OSError:
        return float("nan")
    base = _status_kib("VmRSS")
    func()
    return float(_status_kib("VmHWM") - base) * 1024


def per_patch_memory(op, x: np.ndarray, device: torch.device, backward: bool) -> float:
    """Bytes per patch: the growth of the peak from one patch to three (constant costs cancel)."""
    one = peak_bytes(lambda: run(op, x[:1], 1, device, backward), device)
    three = peak_bytes(lambda: run(op, x[:3], 3, device, backward), device)
    return (three - one) / 2


def memory_row(size: int, device: torch.device) -> str:
    """The memory table's row for ``size``, measured in this process (see :func:`measure_memory`)."""
    x, _ = prepare(patches_of(size, 3).patches, ("Q", "U"))
    ops = {engine: means_operator(size, device=device, engine=engine) for engine in ("kymatio", "batched")}
    mib = {}
    for engine, op in ops.items():
        run(op, x[:1], 1, device, True)  # warm-up
        for backward in (False, True):
            mib[engine, backward] = per_patch_memory(op, x, device, backward) / 2**20
    counted = {b: 2 * ops["batched"].footprint(grad=b) / 2**20 for b in (False, True)}
    return (f"{size:>5} | {mib['kymatio', False]:>8.0f} {mib['batched', False]:>8.0f} {counted[False]:>9.0f} "
            f"| {mib['kymatio', True]:>8.0f} {mib['batched', True]:>8.0f} {counted[True]:>9.0f}")


def measure_memory(size: int, device: torch.device) -> str:
    """:func:`memory_row` in a fresh process whose large blocks are given back to the system when freed.

    glibc keeps freed blocks of up to 32 MiB for reuse by default, which
    hides or inflates peaks depending on what ran before; a fixed mmap
    threshold makes the resident set follow the live tensors.
    """
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    command = [sys.executable, __file__, "--memory-row", str(size), "--device", str(device),
               "--threads", str(torch.get_num_threads())]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[-1]


def measure_size(size: int, device: torch.device) -> tuple[str, str]:
    """The throughput row and the limit row of ``size`` at torch's current thread count."""
    threads = torch.get_num_threads()
    count = COUNTS.get(size, 4) * (8 if device.type == "cuda" else 1)
    patch_set = patches_of(size, count)
    x, _ = prepare(patch_set.patches, patch_set.fields)
    ops = {engine: means_operator(size, device=device, engine=engine) for engine in ("kymatio", "batched")}
    batches = {engine: auto_batch_size(size, 2, 5, device, engine) for engine in ops}
    repeat = 3 if size <= 128 else 2
    rate = {}
    for engine, op in ops.items():
        run(op, x[:1], 1, device, False)  # warm-up: filters on the device, FFT plans, allocator
        for backward in (False, True):
            rate[engine, backward] = count / best_time(lambda: run(op, x, batches[engine], device, backward), repeat)
    with tempfile.TemporaryDirectory() as tmp:
        def end_to_end():
            out = Path(tmp) / "c.h5"
            out.unlink(missing_ok=True)
            compute_store(patch_set, out, device=str(device), progress=False)

        e2e = count / best_time(end_to_end, repeat)
    kym, bat = rate["kymatio", False], rate["batched", False]
    kym_b, bat_b = rate["kymatio", True], rate["batched", True]
    padded = padded_size(size, 5, "reflect")
    work = flops(padded, 5, 8)
    per_patch = 2 * work["total"]  # Q and U
    achieved, limit = per_patch * bat, fft_rate(padded, 2 * min(batches["batched"], count), device)
    row = (f"{size:>5} {count:>3} {threads:>3} | {'':<19} {kym:>8.2f} {bat:>8.2f} {e2e:>8.2f} {bat / kym:>11.2f} "
           f"{e2e / kym:>8.2f} | {'':<19} {kym_b:>8.2f} {bat_b:>8.2f} {bat_b / kym_b:>11.2f}")
    limit_row = (f"{size:>5} {padded:>6} {threads:>3} | {per_patch / 1e9:>10.3f} {work['fft'] / work['total']:>9.0%} "
                 f"| {achieved / 1e9:>12.2f} {limit / 1e9:>13.2f} {achieved / limit:>13.0%}")
    return row, limit_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch CPU thread counts, each measured in turn [default: 1 and torch's].")
    parser.add_argument("--memory-row", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    thread_counts = args.threads or sorted({1, torch.get_num_threads()})
    device = resolve_device(args.device)
    if args.memory_row:
        torch.set_num_threads(thread_counts[0])
        print(memory_row(args.memory_row, device))
        return
    report = Report(f"bench_wst_{device.type}", f"WST throughput and memory ({device.type})",
                    f"{'size':>5} {'N':>3} {'thr':>3} | {'forward, patches/s:':<19} {'kymatio':>8} {'batched':>8} {'e2e':>8} "
                    f"{'batched/kym':>11} {'e2e/kym':>8} | {'fwd+bwd, patches/s:':<19} {'kymatio':>8} {'batched':>8} {'batched/kym':>11}")
    memory_rows, limit_rows = [], []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for size in args.sizes:
            row, limit_row = measure_size(size, device)
            report.add(row)
            limit_rows.append(limit_row)
            if size in MEMORY_SIZES and threads == thread_counts[0]:
                memory_rows.append(measure_memory(size, device))
    report.add("")
    report.add(f"{'size':>5} {'padded':>6} {'thr':>3} | {'GFLOP/patch':>10} {'FFT share':>9} | {'engine GFLOP/s':>12} "
               f"{'torch.fft GFLOP/s':>13} {'of torch.fft':>13}")
    for row in limit_rows:
        report.add(row)
    if memory_rows:
        report.add("")
        report.add(f"{'size':>5} | {'forward, MiB per patch:':<26} | {'fwd+bwd, MiB per patch:':<26}")
        report.add(f"{'':>5} | {'kymatio':>8} {'batched':>8} {'(counted)':>9} | {'kymatio':>8} {'batched':>8} {'(counted)':>9}")
        for row in memory_rows:
            report.add(row)
    notes = [
        "Patches hold Q and U (two 2D transforms each); J = 5, L = 8, order 2, reflect boundary, device "
        f"{device}, 'thr' torch threads. 'kymatio' is Kymatio's Scattering2D with spatial means, "
        "'batched' the batched engine (dustvae.wst.engine) on the same batches, 'e2e' compute-wst end to end "
        "(batched engine); the ratios are speed-ups over raw Kymatio (targets on CPU at 128 px and above: "
        ">= 3 forward, >= 2 forward + backward).",
        "",
        "Limit: 'GFLOP/patch' is the batched engine's work per patch counted from the sizes it performs "
        "(dustvae.wst.engine.flops: FFTs at 5 N log2 N, wavelet products and periodisations, moduli, means), "
        "'FFT share' the FFTs' part of it; 'engine GFLOP/s' that work at the forward rate above; 'torch.fft GFLOP/s' "
        "the rate torch.fft sustains in this run, same threads, on exactly the FFTs the engine performs for one "
        "batch; 'of torch.fft' their ratio, the fraction of the FFT-bound limit the engine reaches.",
        "",
        "Memory: peak working memory per patch, the growth of the peak from batches of one to three patches "
        "(resident set on CPU, allocator on CUDA); '(counted)' is the batched engine's own count from its "
        "tensor sizes, which sets the automatic batch size.",
    ]
    report.write(notes)


if __name__ == "__main__":
    main()
