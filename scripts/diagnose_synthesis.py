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

Writes docs/_generated/diagnose_synthesis_<size>.rst and, with --output, a JSON file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _bench import DOCS, machine
from dustvae.io.atomic import atomic_path
from dustvae.numerics import rmse
from dustvae.synthesis import synthesize
from dustvae.synthesis.compare import excess_kurtosis, gaussian_counterpart, pixel_distance
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
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for sky in args.skies.split(","):
        for seed in range(args.maps):
            rows.append(diagnose(sky, args.size, seed, args.steps))
            print(page(rows[-1:], args).split("::\n\n", 1)[1], end="", flush=True)
    text = page(rows, args)
    page_path = DOCS / f"diagnose_synthesis_{args.size}.rst"
    with atomic_path(page_path) as tmp:
        tmp.write_text(text)
    if args.output:
        with atomic_path(args.output) as tmp:
            tmp.write_text(json.dumps(rows, indent=1))
    print(f"wrote {page_path}")


if __name__ == "__main__":
    main()
