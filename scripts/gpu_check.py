"""The GPU check: every CUDA path of dustvae, run and measured in one command of a few minutes.

Run on a machine with a GPU (from the repository root)::

    .venv/bin/python scripts/gpu_check.py            # writes docs/_generated/gpu_check.{json,rst}

Without CUDA it says so in one line, runs the same code on the CPU at tiny
sizes (``tests/test_gpu_check.py`` does, so the script cannot rot) and
writes only where ``--out`` says. Checks, each recorded even when another
fails:

* ``doctor``: ``dustvae doctor`` on every device (versions, self-tests);
* ``equality``: the WST of the same patches on the GPU and the CPU, both
  engines and both boundaries, each against Kymatio's own transform on the
  CPU, within float32 tolerances stated in :data:`TOLERANCES`;
* ``throughput``: the batched engine against raw Kymatio on the same GPU,
  patches/s and peak allocator memory per batch at 128, 256 and 512 px,
  with the automatic batch sizes (:func:`~dustvae.wst.transform.auto_batch_size`);
* ``training``: VAE-1 and VAE-2 training steps per second, float32 and
  bfloat16 autocast (the trainer's own step);
* ``resume``: a 2-epoch training on the device, killed right after its
  first epoch was saved and resumed, against an uninterrupted one;
* ``synthesis``: seconds to synthesise one 256-px map (default iterations);
* ``torchrun``: with more than one GPU, ``torchrun --nproc-per-node <GPUs>``
  training against one GPU (as ``tests/test_distributed.py`` compares).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from _bench import DOCS, best_time, machine
from bench_synthesis import target_of
from bench_train import train_rate
from bench_wst import peak_bytes, run
from dustvae import defaults
from dustvae.analysis.tables import Column, Table, render
from dustvae.io.atomic import atomic_path
from dustvae.io.maps import FlatMap
from dustvae.io.store import read_store
from dustvae.models.checkpoint import load_checkpoint
from dustvae.models.train import ModelConfig, TrainConfig, train
from dustvae.models.vae import INPUT_LENGTH, DilatedConvVAE
from dustvae.sky.patches import flat_patches
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.synthesis import synthesize
from dustvae.threads import apply_thread_budget
from dustvae.wst.compute import compute_store
from dustvae.wst.engine import footprint
from dustvae.wst.transform import auto_batch_size, means_operator, padded_size, prepare

#: Largest differences allowed between two float32 computations of the same transform (both engines,
#: both devices): S1 and S2 relative (the batched engine's CPU test, tests/test_engine.py, uses 1e-5),
#: S0 absolute (a low-passed mean near zero of amplitude-normalised pixels of rms ~1: 40 float32 epsilons;
#: measured 1.4e-6 between the engines on 32-px patches), the log2 vector absolute (two relative errors
#: of 1e-5 in a log2 ratio: 2 * 1e-5 / ln 2).
TOLERANCES = {"s1_rel": 1e-5, "s2_rel": 1e-5, "s0_abs": 5e-6, "coeffs_abs": 3e-5}
#: A resumed or multi-rank run against an uninterrupted one-process run: weight distance over how far
#: training moved the weights, and each epoch's validation RMSE, relative (tests/test_distributed.py).
WEIGHT_TOLERANCE, RMSE_TOLERANCE = 0.1, 1e-4


@dataclass(frozen=True)
class Plan:
    """Sizes of the checks: the GPU's, or tiny ones that run the same code on a CPU in seconds."""

    equality_size: int = 128
    throughput_patches: dict = field(default_factory=lambda: {128: 1024, 256: 256, 512: 64})
    train_batches: tuple = (defaults.TRAIN_BATCH_SIZE, 1024)
    train_steps: int = 40
    dataset: tuple = ("--maps", "64", "--map-size", "128", "--patch-size", "64")
    train_args: tuple = ("--latent", "85", "--batch-size", "32", "--warmup", "1", "--patience", "1000", "--augment")
    synthesis_size: int = 256
    synthesis_steps: int = defaults.SYNTHESIS_STEPS
    #: Validation RMSE of ranks against one process, relative. In tiny mode two one-thread Gloo ranks meet a
    #: two-thread process on a handful of 32-px validation patches: on the 2-core development machine they
    #: differed by 2.5e-4 after two epochs (the same at this check's earlier version), with weights 0.038 of
    #: their movement apart, inside WEIGHT_TOLERANCE.
    ranks_rmse_tolerance: float = RMSE_TOLERANCE

    @classmethod
    def tiny(cls) -> "Plan":
        return cls(equality_size=32, throughput_patches={32: 4, 64: 2}, train_batches=(8,), train_steps=2,
                   dataset=("--maps", "6", "--map-size", "64", "--patch-size", "32"),
                   train_args=("--latent", "16", "--batch-size", "4", "--warmup", "1", "--patience", "1000", "--augment"),
                   synthesis_size=32, synthesis_steps=3, ranks_rmse_tolerance=1e-3)


def dustvae_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "dustvae", *map(str, args)]


def run_command(*args: str) -> tuple[int, str]:
    """``dustvae ARGS`` through the command line's entry point, in this process: its exit status and output.

    Where the process itself does not matter, this saves a process start and
    torch's import (seconds each); the killed, resumed and torchrun runs are
    processes of their own.
    """
    import contextlib
    import io

    from dustvae.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = main([str(a) for a in args])
    return status, out.getvalue()


def patches_of(size: int, count: int):
    """``count`` Q, U patches of side ``size``: 16 cut from one simulated map, repeated (content does not change speed)."""
    maps = simulate_flat(4 * size, DustParams(seed=size))
    patch_set = flat_patches(FlatMap(fields={"Q": maps["Q"], "U": maps["U"]}), size)
    x, _ = prepare(patch_set.patches, patch_set.fields)
    return patch_set, np.resize(x, (count,) + x.shape[1:])


def check_doctor(plan: Plan, device: torch.device, work: Path) -> dict:
    status, output = run_command("doctor", "--device", "all" if device.type == "cuda" else "cpu")
    return {"passed": status == 0, "exit_status": status, "lines": output.strip().splitlines()}


def _differences(a, b) -> dict:
    rel = lambda x, y: float(np.abs(np.asarray(x, np.float64) / np.asarray(y, np.float64) - 1).max())  # noqa: E731
    return {"s1_rel": rel(a.s1, b.s1), "s2_rel": rel(a.s2, b.s2),
            "s0_abs": float(np.abs(a.s0.astype(np.float64) - b.s0).max()),
            "coeffs_abs": float(np.abs(a.coeffs.astype(np.float64) - b.coeffs).max())}


def check_equality(plan: Plan, device: torch.device, work: Path) -> dict:
    """compute-wst's transform (``compute_store``) of the same patches on each device and engine, against Kymatio on the CPU."""
    patch_set, _ = patches_of(plan.equality_size, 16)
    rows = []
    for boundary in defaults.BOUNDARIES:
        reference = compute_store(patch_set, None, boundary=boundary, device="cpu", engine="kymatio", progress=False)
        for engine in defaults.ENGINES:
            for where in dict.fromkeys([str(device), "cpu"]):
                if where == "cpu" and engine == "kymatio":
                    continue  # the reference itself
                store = compute_store(patch_set, None, boundary=boundary, device=where, engine=engine, progress=False)
                diff = _differences(store, reference)
                rows.append({"boundary": boundary, "engine": engine, "device": where, **diff,
                             "passed": all(diff[k] <= TOLERANCES[k] for k in TOLERANCES)})
    return {"passed": all(r["passed"] for r in rows), "patches": len(patch_set), "size": plan.equality_size,
            "tolerances": TOLERANCES, "rows": rows}


def check_throughput(plan: Plan, device: torch.device, work: Path) -> dict:
    """Forward WST, patches/s and peak memory of one automatic-size batch, per engine and size."""
    rows = []
    for size, count in plan.throughput_patches.items():
        _, x = patches_of(size, count)
        for engine in defaults.ENGINES:
            op = means_operator(size, device=device, engine=engine)
            batch = min(count, auto_batch_size(size, 2, defaults.J, device, engine))
            run(op, x[:batch], batch, device, False)  # warm-up: filters on the device, FFT plans, allocator
            seconds = best_time(lambda: run(op, x, batch, device, False), repeat=2)
            peak = peak_bytes(lambda: run(op, x[:batch], batch, device, False), device)
            counted = 2 * footprint(padded_size(size, defaults.J, defaults.BOUNDARY), defaults.J, defaults.L)
            rows.append({"size": size, "engine": engine, "patches": count, "batch": batch,
                         "patches_per_s": count / seconds, "peak_mib": peak / 2**20,
                         "peak_mib_per_patch": peak / 2**20 / batch,
                         "counted_mib_per_patch": counted / 2**20 if engine == "batched" else None})
        by_engine = {r["engine"]: r for r in rows[-2:]}
        by_engine["batched"]["speedup_over_kymatio"] = by_engine["batched"]["patches_per_s"] / by_engine["kymatio"]["patches_per_s"]
    return {"passed": all(math.isfinite(r["patches_per_s"]) for r in rows), "rows": rows}


def check_training(plan: Plan, device: torch.device, work: Path) -> dict:
    """Training samples/s of VAE-1 and VAE-2 (the trainer's step), float32 and bfloat16 autocast."""
    rows = []
    precisions = (False, True) if device.type == "cuda" else (False,)
    for batch in plan.train_batches:
        x = torch.randn((max(4 * batch, 256), INPUT_LENGTH), device=device)
        for latent in (defaults.LATENT_VAE1, defaults.LATENT_VAE2):
            for amp in precisions:
                torch.manual_seed(0)
                rate = train_rate(DilatedConvVAE(latent).to(device), x, batch, amp, plan.train_steps)
                rows.append({"latent": latent, "batch": batch, "precision": "bfloat16 autocast" if amp else "float32",
                             "samples_per_s": rate})
    return {"passed": all(math.isfinite(r["samples_per_s"]) for r in rows), "steps": plan.train_steps, "rows": rows}


#: ``dustvae train`` that kills itself (SIGKILL, no clean-up) right after its first epoch is saved.
KILLED_AFTER_ONE_EPOCH = """
import os, signal, sys
import dustvae.models.train
training = sys.modules["dustvae.models.train"]  # the package re-exports the function train under the same name
write = training._write_metrics
def write_then_die(run_dir, history):
    write(run_dir, history)
    os.kill(os.getpid(), signal.SIGKILL)
training._write_metrics = write_then_die
from dustvae.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)["model"]
    return {k: v.double() for k, v in state.items() if v.is_floating_point() and "running" not in k and "data_" not in k}


def _distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float(((a[k] - b[k]) ** 2).sum()) for k in a))


def _compare_runs(one: Path, other: Path, start: dict, rmse_tolerance: float = RMSE_TOLERANCE) -> dict:
    """Weights and per-epoch validation RMSE of two run directories, measured as the tests measure them."""
    mine, theirs = _weights(other / "last.pt"), _weights(one / "last.pt")
    moved = _distance(theirs, {k: start[k] for k in theirs})
    rows = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (one, other)]
    rmse = max(abs(a["val_rmse_log2"] / b["val_rmse_log2"] - 1) for a, b in zip(*rows, strict=True))
    distance = _distance(mine, theirs) / moved
    return {"identical": all(torch.equal(mine[k], theirs[k]) for k in mine), "weight_distance_over_moved": distance,
            "max_abs_weight_difference": max(float((mine[k] - theirs[k]).abs().max()) for k in mine),
            "val_rmse_rel_difference": rmse, "epochs": len(rows[0]),
            "rmse_tolerance": rmse_tolerance, "passed": distance <= WEIGHT_TOLERANCE and rmse <= rmse_tolerance}


def _dataset(plan: Plan, device: torch.device, work: Path) -> Path:
    data = work / "data.h5"
    if not data.exists():
        status, output = run_command("make-dataset", data, *plan.dataset, "--device", device.type, "--quiet")
        if status:
            raise RuntimeError(f"make-dataset failed: {output.strip()[-500:]}")
    return data


def _config(plan: Plan, epochs: int) -> tuple[list[str], TrainConfig]:
    args = list(plan.train_args) + ["--epochs", str(epochs)]
    options = dict(zip(args[::2], args[1::2]))
    config = TrainConfig(ModelConfig(int(options["--latent"])), epochs=epochs, batch_size=int(options["--batch-size"]),
                         warmup_epochs=int(options["--warmup"]), patience=int(options["--patience"]), augment=True)
    return args, config


def _start_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    torch.manual_seed(config.seed)
    return {k: v.double() for k, v in DilatedConvVAE.from_config(config.model).state_dict().items()}


def check_resume(plan: Plan, device: torch.device, work: Path) -> dict:
    """2 epochs in one go against 2 epochs killed (SIGKILL) after the first and resumed, on the device.

    A second uninterrupted run measures how far two runs of the same
    settings land apart on the device (CUDA kernels may sum in another order
    from run to run): a resumed run passes when it is within the tolerance,
    or no further from the uninterrupted run than 1.5 times that.
    """
    data = _dataset(plan, device, work)
    args, config = _config(plan, epochs=2)
    whole, again, killed = work / "whole", work / "again", work / "killed"
    for run_dir in (whole, again):  # through the command's entry point, as the killed and resumed runs
        status, output = run_command("train", data, *args, "--quiet", "--device", str(device), "-o", run_dir)
        if status:
            raise RuntimeError(f"training failed: {output.strip()[-500:]}")
    repeat = _compare_runs(whole, again, _start_weights(config))
    command = [sys.executable, "-c", KILLED_AFTER_ONE_EPOCH, "train", str(data), *args, "--quiet",
               "--device", str(device), "-o", str(killed)]
    died = subprocess.run(command, capture_output=True, text=True, timeout=300)
    epochs_before_kill = len((killed / "metrics.jsonl").read_text().splitlines())
    resumed = subprocess.run(dustvae_command("train", data, *args, "--quiet", "--device", str(device), "-o", killed, "--resume"),
                             capture_output=True, text=True, timeout=300)
    if resumed.returncode:
        raise RuntimeError(f"resume failed: {resumed.stderr.strip()[-500:]}")
    result = _compare_runs(whole, killed, _start_weights(config))
    result.update(killed_status=died.returncode, epochs_before_kill=epochs_before_kill,
                  repeat={k: v for k, v in repeat.items() if k != "passed"})
    close = result["passed"] or (not repeat["identical"] and result["weight_distance_over_moved"]
                                 <= 1.5 * repeat["weight_distance_over_moved"])
    result["passed"] = close and died.returncode == -signal.SIGKILL and epochs_before_kill == 1
    return result


def check_synthesis(plan: Plan, device: torch.device, work: Path) -> dict:
    """One synthesis of a simulated map's WST (periodic), the default L-BFGS iterations, on the device."""
    target = target_of(plan.synthesis_size)
    synthesize(target, steps=1, device=device, progress=False)  # warm-up: filters on the device
    tic = time.perf_counter()
    result = synthesize(target, steps=plan.synthesis_steps, device=device, progress=False)
    seconds = time.perf_counter() - tic
    rmse = result.final_loss ** 0.5
    return {"passed": math.isfinite(rmse) and result.final_loss < result.initial_loss, "size": plan.synthesis_size,
            "seconds": seconds, "iterations": result.iterations, "evaluations": result.evaluations,
            "final_rmse_log2": rmse, "initial_rmse_log2": result.initial_loss ** 0.5}


def check_torchrun(plan: Plan, device: torch.device, work: Path) -> dict:
    """``torchrun --nproc-per-node <GPUs>`` training against one process (two Gloo ranks on a CPU in tiny mode)."""
    ranks = torch.cuda.device_count() if device.type == "cuda" else 2
    if ranks < 2:
        return {"passed": None, "skipped": f"{ranks} GPU: nothing to compare"}
    data = _dataset(plan, device, work)
    args, config = _config(plan, epochs=2)
    one, ranked = work / "one", work / "ranked"
    train(read_store(data), one, config, device=str(device), progress=False)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
               "-m", "dustvae", "train", str(data), *args, "--quiet", "--device", device.type, "-o", str(ranked)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if done.returncode:
        raise RuntimeError(f"torchrun failed: {done.stderr.strip()[-500:]}")
    return {"ranks": ranks, **_compare_runs(one, ranked, _start_weights(config), plan.ranks_rmse_tolerance)}


CHECKS = {"doctor": check_doctor, "equality": check_equality, "throughput": check_throughput,
          "training": check_training, "resume": check_resume, "synthesis": check_synthesis, "torchrun": check_torchrun}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else str(value)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    """An RST simple table of ``rows`` (the package's table renderer), then a blank line."""
    table = Table([Column(c, align="l") for c in columns], [[_cell(row.get(c)) for c in columns] for row in rows])
    return render(table, "rst").splitlines() + [""]


def render_rst(report: dict) -> str:
    """The docs page of one run."""
    checks = report["checks"]
    status = lambda c: {True: "passed", False: "FAILED", None: "skipped"}[c.get("passed")]  # noqa: E731
    lines = ["GPU check", "^^^^^^^^^", "", f"``scripts/gpu_check.py`` on {report['machine']}, {report['date']} "
             f"({report['mode']}, {report['seconds']:.0f} s in all).", ""]
    lines += _table([{"check": name, "result": status(c), "note": c.get("error") or c.get("skipped")}
                     for name, c in checks.items()], ["check", "result", "note"])
    if "lines" in checks.get("doctor", {}):
        lines += ["``dustvae doctor``::", ""] + ["    " + line for line in checks["doctor"]["lines"]] + [""]
    if "rows" in checks.get("equality", {}):
        eq = checks["equality"]
        lines += [f"The same {eq['patches']} patches of {eq['size']} px against Kymatio's own transform on the CPU "
                  f"(largest differences; allowed: {', '.join(f'{k} {v:.0e}' for k, v in eq['tolerances'].items())}):", ""]
        lines += _table(eq["rows"], ["boundary", "engine", "device", "s1_rel", "s2_rel", "s0_abs", "coeffs_abs", "passed"])
    if "rows" in checks.get("throughput", {}):
        lines += ["Forward WST of Q, U patches (J = 5, L = 8, reflect), automatic batch sizes; peak is the CUDA "
                  "allocator's growth during one batch, 'counted' the batched engine's own count per patch:", ""]
        lines += _table(checks["throughput"]["rows"], ["size", "engine", "patches", "batch", "patches_per_s",
                                                        "speedup_over_kymatio", "peak_mib", "peak_mib_per_patch",
                                                        "counted_mib_per_patch"])
    if "rows" in checks.get("training", {}):
        lines += [f"Training throughput ({checks['training']['steps']} steps of the trainer's own step after a warm-up):", ""]
        lines += _table(checks["training"]["rows"], ["latent", "batch", "precision", "samples_per_s"])
    for name, title in (("resume", "Killed after epoch 1 and resumed, against 2 epochs in one go"),
                        ("torchrun", "Ranks against one process")):
        c = checks.get(name, {})
        if "weight_distance_over_moved" in c:
            lines += [f"{title}: weights {'bit-identical' if c['identical'] else 'not bit-identical'}; distance "
                      f"{c['weight_distance_over_moved']:.2g} of how far training moved them (allowed "
                      f"{WEIGHT_TOLERANCE}); largest weight difference {c['max_abs_weight_difference']:.2g}; "
                      f"validation RMSE {c['val_rmse_rel_difference']:.2g} relative (allowed "
                      f"{c.get('rmse_tolerance', RMSE_TOLERANCE):.0e}).", ""]
            if "repeat" in c:
                r = c["repeat"]
                lines += [f"Two uninterrupted runs of the same settings: {'bit-identical' if r['identical'] else 'not bit-identical'}; "
                          f"distance {r['weight_distance_over_moved']:.2g} of how far training moved them.", ""]
    if "seconds" in checks.get("synthesis", {}):
        s = checks["synthesis"]
        lines += [f"Synthesis of one {s['size']}-px Q, U map: {s['seconds']:.1f} s for {s['iterations']} L-BFGS "
                  f"iterations ({s['evaluations']} evaluations), RMSE {s['initial_rmse_log2']:.3g} -> "
                  f"{s['final_rmse_log2']:.2g} log2.", ""]
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "gpu_check.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=float))
    with atomic_path(out / "gpu_check.rst") as tmp:
        tmp.write_text(render_rst(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="Folder of gpu_check.json and gpu_check.rst [default: docs/_generated with a GPU; none without].")
    parser.add_argument("--only", nargs="+", choices=list(CHECKS), default=list(CHECKS), help="Run only these checks.")
    args = parser.parse_args(argv)
    apply_thread_budget()  # as every dustvae command: this process's share of the cores
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    plan = Plan() if cuda else Plan.tiny()
    out = args.out or (DOCS if cuda else None)
    if not cuda:
        print("gpu_check: no CUDA GPU is visible; running the same checks on the CPU at tiny sizes", flush=True)
    report = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "mode": "cuda" if cuda else "cpu, tiny sizes",
              "plan": asdict(plan), "seconds": 0.0, "checks": {}}
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for name in args.only:
            start = time.perf_counter()
            try:
                result = CHECKS[name](plan, device, Path(tmp))
            except Exception as exc:  # record and go on: GPU time is short, every other check still counts
                result = {"passed": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                          "traceback": traceback.format_exc()[-2000:]}
            result["seconds"] = time.perf_counter() - start
            report["checks"][name] = result
            report["seconds"] = time.perf_counter() - tic
            verdict = {True: "passed", False: "FAILED", None: "skipped"}[result["passed"]]
            print(f"{name}: {verdict} ({result['seconds']:.1f} s){' ' + result['error'] if 'error' in result else ''}", flush=True)
            if out:
                write_report(report, out)  # after every check: a run cut short keeps what it measured
    failed = [n for n, c in report["checks"].items() if c["passed"] is False]
    print(f"gpu_check: {len(report['checks']) - len(failed)} of {len(report['checks'])} checks passed or skipped"
          + (f"; FAILED: {', '.join(failed)}" if failed else "") + (f"; wrote {out}" if out else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
