"""Seconds per synthesised map, against Kymatio's own forward + backward time measured in the same run.

Run: ``.venv/bin/python scripts/bench_synthesis.py [--sizes 128 256] [--steps 10]``.

For each device (the CPU, and CUDA when a GPU is visible), map size and CPU
thread count (one, the synthesis default, and torch's default), it measures:

* Kymatio's forward + backward: the gradient of the summed spatial means of
  Kymatio's ``Scattering2D`` (periodic operator) for one Q, U map, the
  reference every gradient-based synthesis through Kymatio pays per loss
  evaluation;
* a synthesis of ``--steps`` L-BFGS iterations of a simulated map's WST
  (batched engine, the default), as seconds per iteration and per loss
  evaluation; the seconds per map are that per-iteration time times the
  default iteration count (``defaults.SYNTHESIS_STEPS``);
* the same synthesis with ``engine="kymatio"`` (``--kymatio-steps``
  iterations, one run: it is slow), per loss evaluation over the batched
  engine's (per evaluation, because the first iterations from noise need
  more line-search evaluations than later ones).

Writes docs/_generated/bench_synthesis.rst.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _bench import Report, best_time
from dustvae import defaults
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.synthesis import Target, synthesize
from dustvae.wst.layout import CoefficientLayout
from dustvae.wst.transform import normalise, prepare, scattering_means, scattering_operator


def target_of(size: int) -> Target:
    maps = simulate_flat(size, DustParams(seed=size, intensity_sigma=1.0))
    x, amp = prepare(np.stack([maps["Q"], maps["U"]])[None], ("Q", "U"))
    means = scattering_means(x, boundary="periodic")
    layout = CoefficientLayout()
    return Target(normalise(means.s1, means.s2, layout)[0], layout, size, amplitude=float(amp[0]), mean=means.s0[0])


def kymatio_forward_backward(size: int, device: torch.device) -> float:
    op = scattering_operator(size, boundary="periodic", device=device)
    x = torch.randn((1, 2, size, size), generator=torch.Generator().manual_seed(0)).to(device).requires_grad_(True)

    def step():
        x.grad = None
        op(x).mean(dim=(-2, -1)).sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up: filters on the device, allocator
    return best_time(step)


def synthesis_time(target: Target, steps: int, device: torch.device, engine: str, repeat: int = 2) -> tuple[float, float]:
    """Seconds per iteration and per evaluation of the loss and its gradient (best of ``repeat`` runs after a warm-up)."""
    synthesize(target, steps=1, device=device, engine=engine, threads=None, progress=False)
    runs = [synthesize(target, steps=steps, device=device, engine=engine, threads=None, progress=False)
            for _ in range(repeat)]
    best = min(runs, key=lambda r: r.seconds)
    return best.seconds / best.iterations, best.seconds / best.evaluations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=10, help="L-BFGS iterations timed per synthesis.")
    parser.add_argument("--kymatio-steps", type=int, default=2,
                        help="Iterations of the synthesis through Kymatio's own transform (0: skip).")
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    all_threads = torch.get_num_threads()
    report = Report("bench_synthesis", "Synthesis time",
                    f"{'device':>6} {'size':>5} {'threads':>7} {'kymatio f+b s':>13} {'s/iter':>7} {'s/eval':>7} "
                    f"{'s/map':>7} {'kymatio f+b / eval':>18} {'kymatio-engine s/eval / s/eval':>30}")
    for device in devices:
        thread_counts = sorted({1, all_threads}) if device.type == "cpu" else [all_threads]
        for size in args.sizes:
            target = target_of(size)
            for threads in thread_counts:
                torch.set_num_threads(threads)
                reference = kymatio_forward_backward(size, device)
                per_iter, per_eval = synthesis_time(target, args.steps, device, defaults.ENGINE)
                saved = float("nan")
                if args.kymatio_steps > 0:
                    saved = synthesis_time(target, args.kymatio_steps, device, "kymatio", repeat=1)[1] / per_eval
                report.add(f"{device.type:>6} {size:>5} {threads:>7} {reference:>13.3f} {per_iter:>7.3f} {per_eval:>7.3f} "
                           f"{per_iter * defaults.SYNTHESIS_STEPS:>7.1f} {reference / per_eval:>18.2f} {saved:>30.2f}")
    torch.set_num_threads(all_threads)
    notes = [
        "One Q, U map per synthesis, J = 5, L = 8, periodic boundary, L-BFGS. 'kymatio f+b s' is the best time of "
        "the gradient of Kymatio's Scattering2D output means for one map; 's/iter' and 's/eval' are synthesis "
        f"seconds per L-BFGS iteration and per loss evaluation with the batched engine (best of two runs of "
        f"{args.steps} iterations); 's/map' is s/iter times the default {defaults.SYNTHESIS_STEPS} iterations. "
        "'kymatio f+b / eval' is how many times faster one evaluation of the synthesis loss is than Kymatio's own "
        "forward + backward; 'kymatio-engine s/eval / s/eval' is the same synthesis through Kymatio's own "
        f"transform ({args.kymatio_steps} iterations, one run) per evaluation, over the batched engine's. On a shared "
        "machine other jobs change these times from run to run; compare ratios within one row.",
    ]
    report.write(notes)


if __name__ == "__main__":
    main()
