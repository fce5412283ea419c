"""Scaling on one machine: torchrun ranks for training and make-dataset, and two concurrent jobs sharing the cores.

Run: ``.venv/bin/python scripts/bench_scale.py [--maps 160] [--epochs 4]``.
Writes docs/_generated/bench_scale.rst. Everything runs as a user runs it:
``dustvae`` commands in subprocesses, ranks started by ``torchrun
--standalone`` on Gloo (CPU). Three tables, each with ratios to a reference
of the same run:

1. training (VAE-2, batch 64): samples/s of one process on one core (the
   reference), of one process on every core, and of one rank per core;
   from ``metrics.jsonl``, the median over the epochs after the first;
2. ``make-dataset``: patches/s (wall time of the command) with one process
   on one core (the reference), one process on every core (its default:
   simulation workers and torch threads), and one rank per core;
3. two training jobs started at once: each one's samples/s against one job
   alone on the machine, with torch's default of one thread per core in
   each (``DUSTVAE_THREADS`` set to the core count: what every process did
   before dustvae shared the budget), and with the cores shared: half the
   cores each by ``DUSTVAE_THREADS``, and each its own core by ``taskset``
   (dustvae follows the affinity mask).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
from _bench import Report
from dustvae.threads import cpu_budget

TRAIN = ["--latent", "85", "--batch-size", "64", "--quiet", "--device", "cpu", "--patience", "1000"]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DUSTVAE_THREADS")}
    return {**env, **extra}


def dustvae(args: list, ranks: int = 0, prefix: tuple = (), **env: str) -> subprocess.Popen:
    """Start ``dustvae ARGS`` (under torchrun with ``ranks`` > 0)."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks), "-m"] if ranks
                else [sys.executable, "-m"])
    return subprocess.Popen([*prefix, *launcher, "dustvae", *map(str, args)], env=_env(**env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"bench_scale: a dustvae command failed:\n{err[-2000:]}")


def samples_per_s(run_dir: Path) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(row["samples_per_s"] for row in rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=160, help="Maps of the make-dataset runs (4 patches each).")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    cores = cpu_budget()
    if cores < 2:
        raise SystemExit("bench_scale: needs at least 2 cores")
    root = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    one_core = {"DUSTVAE_THREADS": "1"}

    # -- make-dataset ------------------------------------------------------------------------------
    report = Report("bench_scale", "Scaling on one machine",
                     f"{'make-dataset':>34} {'wall s':>8} {'patches/s':>10} {'speed-up':>9}")
    runs = {"1 process, 1 core": (0, one_core, ["--workers", 1]), f"1 process, {cores} cores": (0, {}, []),
            f"{cores} ranks, 1 core each": (cores, {}, [])}
    times = {}
    for label, (ranks, env, extra) in runs.items():
        out = root / f"data_{len(times)}.h5"
        tic = time.perf_counter()
        finish(dustvae(["make-dataset", out, "--maps", args.maps, "--quiet", "--device", "cpu", *extra], ranks, **env))
        times[label] = time.perf_counter() - tic
    store = root / "data_0.h5"
    with h5py.File(store, "r") as h5:
        n_patches = len(h5["coeffs"])
    reference = times["1 process, 1 core"]
    for label, seconds in times.items():
        report.add(f"{label:>34} {seconds:>8.1f} {n_patches / seconds:>10.1f} {reference / seconds:>8.2f}x")

    # -- training ----------------------------------------------------------------------------------
    report.add("")
    report.add(f"{'training (VAE-2)':>34} {'':>8} {'samples/s':>10} {'speed-up':>9}")
    runs = {"1 process, 1 core": (0, one_core), f"1 process, {cores} cores": (0, {}), f"{cores} ranks, 1 core each": (cores, {})}
    rates = {}
    for label, (ranks, env) in runs.items():
        run_dir = root / f"train_{len(rates)}"
        finish(dustvae(["train", store, *TRAIN, "--epochs", args.epochs, "-o", run_dir], ranks, **env))
        rates[label] = samples_per_s(run_dir)
    reference = rates["1 process, 1 core"]
    for label, rate in rates.items():
        report.add(f"{label:>34} {'':>8} {rate:>10.1f} {rate / reference:>8.2f}x")

    # -- two concurrent jobs -----------------------------------------------------------------------
    report.add("")
    report.add(f"{'two training jobs at once':>34} {'':>8} {'samples/s':>10} {'vs alone':>9}")
    alone_dir = root / "alone"
    finish(dustvae(["train", store, *TRAIN, "--epochs", args.epochs, "-o", alone_dir]))
    alone = samples_per_s(alone_dir)
    report.add(f"{'one job alone (all cores)':>34} {'':>8} {alone:>10.1f} {1:>8.2f}x")
    share = str(max(1, cores // 2))
    setups = {f"each {cores} threads (torch default)": lambda k: ((), {"DUSTVAE_THREADS": str(cores)}),
              f"each DUSTVAE_THREADS={share}": lambda k: ((), {"DUSTVAE_THREADS": share}),
              "each its own core (taskset)": lambda k: (("taskset", "-c", str(k)), {})}
    for index, (label, setup) in enumerate(setups.items()):
        dirs = [root / f"pair{index}_{k}" for k in range(2)]
        procs = []
        for k, run_dir in enumerate(dirs):
            prefix, env = setup(k)
            procs.append(dustvae(["train", store, *TRAIN, "--epochs", args.epochs, "-o", run_dir], prefix=prefix, **env))
        for proc in procs:
            finish(proc)
        each = [samples_per_s(d) for d in dirs]
        rate = statistics.mean(each)
        report.add(f"{label:>34} {'':>8} {rate:>10.1f} {rate / alone:>8.2f}x")
    report.write([
        f"``scripts/bench_scale.py --maps {args.maps} --epochs {args.epochs}``: make-dataset of {args.maps} mixed maps "
        f"({n_patches} patches of 128 px) and VAE-2 on that store; ranks by ``torchrun --standalone`` (Gloo). "
        "Training samples/s are the median over epochs 2 on (validation excluded); make-dataset patches/s include "
        "starting the processes. The ranks' runs give the weights one process gives (tests/test_distributed.py).",
    ])


if __name__ == "__main__":
    main()
