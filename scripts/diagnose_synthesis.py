"""Why syntheses lose the non-Gaussianity of their originals: starts, loss weights and what the WST sees.

Run: ``.venv/bin/python scripts/diagnose_synthesis.py [--size 64] [--maps 2] [--steps 300]``.

For simulated maps of each sky model (log-normal turbulence with
``intensity_sigma`` 1, filaments; periodic, seeds 0, 1, ...), the
normalised WST vector of the map is the target, and this measures:

* how far the WST puts the original from two maps that share its power
  spectrum or its parameters: its Gaussian counterpart (every Fourier phase
  randomised) and an independent realisation of the same parameters (log2
  RMSE over the whole vector, the S1 and the S2/S1 blocks). When the
  Gaussian counterpart is as close as another realisation, the vector does
  not tell the non-Gaussianity apart from sample noise;
* the excess kurtosis of Q and U together and the pixel distance (W1, in
  units of the original's std) of syntheses made in several ways: L-BFGS from
  white noise (the default), from the Gaussian counterpart (the original's
  spectrum, no phases), with the first-layer coefficients weighted 16 times
  (as much weight in S1 as in the 640 S2/S1 per field), and with more
  iterations.

With ``--envelopes STARTS`` it measures instead whether the envelope
statistics (:mod:`dustvae.synthesis.envelopes`: how the wavelet envelopes of
scales and fields line up, and each scale's sparsity) bring the tails back:
each map is synthesised from STARTS white-noise starts matching the WST
vector alone and the vector with the original's envelope statistics, and
the excess kurtosis of Q, U and P = sqrt(Q**2 + U**2) of every synthesis is
set against the original's and its Gaussian counterpart's.

Writes docs/_generated/diagnose_synthesis_<size>.rst (with --envelopes:
diagnose_envelopes_<size>.rst) and, with --output, a JSON file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _bench import machine, write_page
from dustvae.numerics import rmse
from dustvae.synthesis import synthesize
from dustvae.synthesis.compare import excess_kurtosis, gaussian_counterpart, pixel_distance, pixel_moments
from dustvae.wst.transform import normalise, prepare, scattering_means

from validate_synthesis import FIELDS, simulate, target_of

#: Layer-1 weight that gives S1 as much of the loss as S2/S1 (40 against 640 coefficients per field).
S1_WEIGHT = 16.0


def vector_of(maps: np.ndarray, layout) -> np.ndarray:
    """The normalised WST vector of (F, n, n) maps, periodic boundary."""
    x, _ = prepare(maps[None], FIELDS)
    means = scattering_means(x, boundary="periodic")
    return normalise(means.s1, means.s2, layout)[0]


def distances(a: np.ndarray, b: np.ndarray, layer: np.ndarray) -> dict:
    return {"all": rmse(a, b), "s1": rmse(a[layer == 1], b[layer == 1]), "s2": rmse(a[layer == 2], b[layer == 2])}


def diagnose(sky: str, size: int, seed: int, steps: int) -> dict:
    original = simulate(sky, size, seed, 1.0)
    target = target_of(original)
    layer = target.layout.layer
    gaussian = gaussian_counterpart(original, seed + 1000)
    twin = simulate(sky, size, seed + 7919, 1.0)  # the same parameters, another random draw
    row = {"sky": sky, "size": size, "seed": seed, "kurtosis_original": excess_kurtosis(original),
           "kurtosis_gaussian": excess_kurtosis(gaussian),
           "wst_distance": {"gaussian": distances(vector_of(gaussian, target.layout), target.vector, layer),
                            "same_parameters": distances(vector_of(twin, target.layout), target.vector, layer)},
           "syntheses": {}}
    variants = {
        "white": {},
        "gaussian start": {"initial": gaussian / target.amplitude},
        f"S1 weight {S1_WEIGHT:g}": {"weights": np.where(layer == 1, S1_WEIGHT, 1.0)},
        f"white, {4 * steps} iterations": {"steps": 4 * steps},
    }
    for name, options in variants.items():
        tic = time.perf_counter()
        result = synthesize(target, steps=options.pop("steps", steps), seed=seed + 10, progress=False, **options)
        row["syntheses"][name] = {"kurtosis": excess_kurtosis(result.maps), "pixel_distance": pixel_distance(original, result.maps),
                                  "wst_rmse": rmse(result.vector, target.vector), "iterations": result.iterations,
                                  "seconds": time.perf_counter() - tic}
    return row


def envelope_study(sky: str, size: int, seed: int, steps: int, starts: int) -> dict:
    """Kurtosis of Q, U, P of syntheses from several starts, matching the WST alone and with the envelope statistics."""
    original = simulate(sky, size, seed, 1.0)
    target = target_of(original)
    row = {"sky": sky, "size": size, "seed": seed, "original": pixel_moments(original)["kurtosis"],
           "gaussian": pixel_moments(gaussian_counterpart(original, seed + 1000))["kurtosis"], "syntheses": {}}
    for constraints in ("wst", "wst+envelopes"):
        runs = []
        for start in range(starts):
            tic = time.perf_counter()
            result = synthesize(target, steps=steps, seed=100 * seed + start, progress=False, constraints=constraints)
            runs.append({"kurtosis": pixel_moments(result.maps)["kurtosis"], "pixel_distance": pixel_distance(original, result.maps),
                         "wst_rmse": rmse(result.vector, target.vector), "envelope_rmse": result.envelope_rmse,
                         "seconds": time.perf_counter() - tic})
        row["syntheses"][constraints] = runs
    return row


def _qup(values) -> str:
    return " ".join(f"{v:6.2f}" for v in values)


def envelope_page(rows: list[dict], args: argparse.Namespace) -> str:
    title = f"Do the envelope statistics bring the tails back? ({args.size} px)"
    lines = [title, "^" * len(title), "",
             f"``scripts/diagnose_synthesis.py --size {args.size} --maps {args.maps} --steps {args.steps} "
             f"--envelopes {args.envelopes}``: {machine()}.", "",
             "Excess kurtosis of Q, U and P of the original, of its Gaussian counterpart, and of syntheses from "
             f"{args.envelopes} white-noise starts matching the WST vector alone (``wst``) or with the original's "
             "envelope statistics (``wst+envelopes``): median over the starts, then [lowest, highest]; W1 (pixel "
             "distance over the original's std) and WST RMSE are medians:", "", "::", ""]
    for r in rows:
        lines.append(f"    {r['sky']:<10} seed {r['seed']}   Q / U / P   original {_qup(r['original'])}   "
                     f"Gaussian {_qup(r['gaussian'])}")
        for name, runs in r["syntheses"].items():
            k = np.array([run["kurtosis"] for run in runs])
            spread = " ".join(f"[{lo:.1f}, {hi:.1f}]" for lo, hi in zip(k.min(0), k.max(0)))
            lines.append(f"        {name:<14} {_qup(np.median(k, 0))}  {spread}  W1 "
                         f"{np.median([run['pixel_distance'] for run in runs]):.3f}  WST RMSE "
                         f"{np.median([run['wst_rmse'] for run in runs]):.4f}")
    return "\n".join(lines) + "\n"


def page(rows: list[dict], args: argparse.Namespace) -> str:
    title = f"Why syntheses lose the non-Gaussianity ({args.size} px)"
    lines = [title, "^" * len(title), "",
             f"``scripts/diagnose_synthesis.py --size {args.size} --maps {args.maps} --steps {args.steps}``: {machine()}.", "",
             "WST distance (log2 RMSE: whole vector / S1 / S2 over S1) from the original to its Gaussian counterpart "
             "(same spectrum, random phases) and to another realisation of its parameters; excess kurtosis (Q and U) "
             "and pixel W1 of syntheses:", "", "::", ""]
    for r in rows:
        d = r["wst_distance"]
        lines.append(f"    {r['sky']:<10} {r['size']:>4} px seed {r['seed']}: kurtosis {r['kurtosis_original']:6.2f} "
                     f"(Gaussian counterpart {r['kurtosis_gaussian']:5.2f})")
        for key in ("gaussian", "same_parameters"):
            v = d[key]
            lines.append(f"        WST distance to {key.replace('_', ' '):<16} {v['all']:.3f} / {v['s1']:.3f} / {v['s2']:.3f}")
        for name, s in r["syntheses"].items():
            lines.append(f"        synthesis, {name:<22} kurtosis {s['kurtosis']:6.2f}  W1 {s['pixel_distance']:.3f}  "
                         f"WST RMSE {s['wst_rmse']:.4f}  ({s['iterations']} it., {s['seconds']:.0f} s)")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--maps", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--skies", default="turbulence,filaments")
    parser.add_argument("--envelopes", type=int, default=0, metavar="STARTS",
                        help="compare syntheses with and without the envelope statistics, from STARTS starts each")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    study, render, stem = ((lambda sky, seed: envelope_study(sky, args.size, seed, args.steps, args.envelopes)),
                           envelope_page, "diagnose_envelopes") if args.envelopes else (
        (lambda sky, seed: diagnose(sky, args.size, seed, args.steps)), page, "diagnose_synthesis")
    rows = []
    for sky in args.skies.split(","):
        for seed in range(args.maps):
            rows.append(study(sky, seed))
            print(render(rows[-1:], args).split("::\n\n", 1)[1], end="", flush=True)
    write_page(f"{stem}_{args.size}", render(rows, args), args.output, rows)


if __name__ == "__main__":
    main()
