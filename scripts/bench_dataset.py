"""Dataset generation with 1 and with all cores: simulation in worker processes, then the WST.

Run: ``.venv/bin/python scripts/bench_dataset.py [--maps 160]``. Writes
docs/_generated/bench_dataset.rst. The simulation step (one map per worker
process, ``spawn``-started) is timed with 1 worker and with every core of
the affinity mask; the WST step with 1 torch thread and with as many as
cores. Ratios are from the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

from _bench import Report
from dustvae.wst.compute import compute_store
from dustvae.threads import cpu_budget
from dustvae.dataset import DatasetSpec, simulate_patches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=160)
    args = parser.parse_args()
    cores = cpu_budget()
    spec = DatasetSpec(n_maps=args.maps)
    report = Report("bench_dataset", "Dataset generation: one core against all",
                    f"{'step':>12} {'1 core, s':>10} {f'{cores} cores, s':>11} {'speed-up':>9} {'patches/s':>10}")
    timings = {}
    for workers in (1, cores):
        tic = time.perf_counter()
        patch_set = simulate_patches(spec, progress=False, workers=workers)
        timings[("simulate", workers)] = time.perf_counter() - tic
    threads_before = torch.get_num_threads()
    for threads in (1, cores):
        torch.set_num_threads(threads)
        tic = time.perf_counter()
        compute_store(patch_set, None, progress=False)
        timings[("WST", threads)] = time.perf_counter() - tic
    torch.set_num_threads(threads_before)
    n = len(patch_set)
    for step in ("simulate", "WST"):
        one, many = timings[(step, 1)], timings[(step, cores)]
        report.add(f"{step:>12} {one:>10.1f} {many:>11.1f} {one / many:>8.2f}x {n / many:>10.1f}")
    one = timings[("simulate", 1)] + timings[("WST", 1)]
    many = timings[("simulate", cores)] + timings[("WST", cores)]
    report.add(f"{'both':>12} {one:>10.1f} {many:>11.1f} {one / many:>8.2f}x {n / many:>10.1f}")
    report.write([f"``scripts/bench_dataset.py --maps {args.maps}``: {args.maps} maps of {spec.map_size} px ({spec.model}), "
                  f"{n} patches of {spec.patch_size} px. Simulation: worker processes; WST: torch threads."])


if __name__ == "__main__":
    main()
