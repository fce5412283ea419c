"""Validate synthesis at 128-256 px: simulated maps rebuilt from their own WST, compared with the originals.

Run: ``.venv/bin/python scripts/validate_synthesis.py [--size 128] [--sky turbulence|filaments] [--maps 3]
[--constraints wst|wst+envelopes]``.

For each simulated map (seeds 0, 1, ...): its normalised WST is the target;
a map is synthesised from white noise (L-BFGS, periodic boundary); then

* the loss reduction (initial over final loss);
* the log2 RMSE between the target and the WST of the result, recomputed
  with Kymatio's own transform;
* the power spectrum per octave band of wavenumber, as log2 of the
  synthesis's band power over the original's;
* the pixel distribution: Wasserstein-1 distance to the original's pixel
  values (in units of their std) of the synthesis and of Gaussian random
  fields with exactly the original's power spectrum (five phase
  randomisations), and the excess kurtosis of all three;
* the goals of fidelity: every constrained octave's power within 15 % of
  the original's, and the excess kurtosis and skewness of Q, U and
  P = sqrt(Q**2 + U**2) within 30 % of the original's (relative to the
  original's value), with the medians over maps and the worst map.

``--constraints wst+envelopes`` also matches the original's envelope
statistics (:mod:`dustvae.synthesis.envelopes`). Prints one row per map and
the checks, writes docs/_generated/validate_synthesis_<sky>[_envelopes][_<size>].rst
(no size suffix at 128 px) and, with --output, a JSON file of every number.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _bench import Report
from dustvae import defaults
from dustvae.io.atomic import atomic_path
from dustvae.numerics import rmse
from dustvae.sky.filaments import FilamentParams, simulate_filaments
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.synthesis import Target, synthesize
from dustvae.synthesis.compare import (excess_kurtosis, gaussian_counterpart, in_reach, octave_edges, pixel_distance,
                                       pixel_moments, spectrum_error)
from dustvae.wst.layout import CoefficientLayout
from dustvae.devices import resolve_device
from dustvae.wst.transform import normalise, prepare, scattering_means

#: The thresholds of tests/test_synthesis.py.
LOSS_FACTOR, WST_RMSE, SPECTRUM_LOG2 = 300, 0.05, 0.5
#: The goals of fidelity: power per constrained octave within 15 %, moments of Q, U and P within 30 %.
POWER_GOAL, MOMENT_GOAL = 0.15, 0.30
PARTS = ("Q", "U", "P")
FIELDS = ("Q", "U")


def simulate(sky: str, size: int, seed: int, intensity_sigma: float) -> np.ndarray:
    """Q and U (2, size, size) of the chosen sky model."""
    field = DustParams(seed=seed, intensity_sigma=intensity_sigma)
    maps = simulate_filaments(size, FilamentParams(field=field)) if sky == "filaments" else simulate_flat(size, field)
    return np.stack([maps[f] for f in FIELDS])


def target_of(original: np.ndarray) -> Target:
    x, amp = prepare(original[None], FIELDS)
    means = scattering_means(x, boundary="periodic")
    layout = CoefficientLayout(fields=FIELDS)
    return Target(normalise(means.s1, means.s2, layout)[0], layout, original.shape[-1], amplitude=float(amp[0]),
                  mean=means.s0[0], original=original.astype(np.float64))


def relative_errors(synthesis: dict, original: dict) -> dict[str, list[float]]:
    """``|synthesis - original| / |original|`` of each moment of :func:`~dustvae.synthesis.compare.pixel_moments`."""
    return {k: [abs(s - o) / abs(o) for s, o in zip(synthesis[k], original[k])] for k in original}


def validate(original: np.ndarray, steps: int, device, seed: int, constraints: str = "wst") -> dict:
    target = target_of(original)
    result = synthesize(target, steps=steps, seed=seed, device=device, progress=True, constraints=constraints)
    x = (result.maps / target.amplitude)[None].astype(np.float32)
    means = scattering_means(x, boundary="periodic", engine="kymatio")
    error = rmse(normalise(means.s1, means.s2, target.layout)[0], target.vector)
    gaussians = [gaussian_counterpart(original, s) for s in range(5)]
    return {
        "iterations": result.iterations,
        "seconds": result.seconds,
        "loss_factor": result.initial_loss / result.final_loss,
        "wst_rmse_log2": error,
        "spectrum_log2_ratio": spectrum_error(original, result.maps).tolist(),
        "pixel_distance": pixel_distance(original, result.maps),
        "pixel_distance_gaussian": [pixel_distance(original, g) for g in gaussians],
        "kurtosis_original": excess_kurtosis(original),
        "kurtosis_synthesis": excess_kurtosis(result.maps),
        "kurtosis_gaussian": [excess_kurtosis(g) for g in gaussians],
        "moments_original": pixel_moments(original),
        "moments_synthesis": pixel_moments(result.maps),
        "moments_gaussian": pixel_moments(gaussians[0]),
        "envelope_rmse": result.envelope_rmse,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sky", choices=("turbulence", "filaments"), default="turbulence")
    parser.add_argument("--intensity-sigma", type=float, default=1.0, help="Log-intensity spread of the field's layers.")
    parser.add_argument("--maps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--constraints", choices=defaults.SYNTHESIS_CONSTRAINTS, default=defaults.SYNTHESIS_CONSTRAINTS[0])
    parser.add_argument("--output", type=Path, default=None, help="JSON file of every number.")
    args = parser.parse_args()
    device = resolve_device(args.device)
    edges = octave_edges(args.size)
    reach = in_reach(args.size)
    bands = " ".join(f"{(f'k{int(lo)}-{int(hi)}' if ok else f'(k{int(lo)}-{int(hi)})'):>7}"
                     for lo, hi, ok in zip(edges[:-1], edges[1:], reach))
    envelopes = args.constraints == "wst+envelopes"
    stem = f"validate_synthesis_{args.sky}" + ("_envelopes" if envelopes else "") + ("" if args.size == 128 else f"_{args.size}")
    report = Report(stem, f"Synthesis validation ({args.sky}, {args.size} px{', WST and envelope statistics' if envelopes else ''})",
                    f"{'map':>3} {'it':>4} {'s':>6} {'loss/':>8} {'WST':>8} {bands} {'W1 syn':>7} {'W1 GRF':>7}"
                    f"  kurtosis orig/syn/GRF")
    rows = []
    for seed in range(args.maps):
        tic = time.perf_counter()
        original = simulate(args.sky, args.size, seed, args.intensity_sigma)
        row = validate(original, args.steps, device, seed, args.constraints)
        row["map_seed"], row["wall_seconds"] = seed, time.perf_counter() - tic
        rows.append(row)
        spec = " ".join(f"{e:>7.2f}" for e in row["spectrum_log2_ratio"])
        report.add(f"{seed:>3} {row['iterations']:>4} {row['seconds']:>6.0f} {row['loss_factor']:>8.2g} "
                   f"{row['wst_rmse_log2']:>8.2g} {spec} {row['pixel_distance']:>7.3f} "
                   f"{np.mean(row['pixel_distance_gaussian']):>7.3f}  {row['kurtosis_original']:.2f}/"
                   f"{row['kurtosis_synthesis']:.2f}/{np.mean(row['kurtosis_gaussian']):.2f}")
    checks = {
        f"loss falls >= {LOSS_FACTOR}-fold": all(r["loss_factor"] >= LOSS_FACTOR for r in rows),
        f"WST RMSE <= {WST_RMSE} log2": all(r["wst_rmse_log2"] <= WST_RMSE for r in rows),
        f"every octave in the WST's reach ``|log2 ratio|`` <= {SPECTRUM_LOG2}":
            all(np.abs(np.array(r["spectrum_log2_ratio"])[reach]).max() <= SPECTRUM_LOG2 for r in rows),
        "pixel W1 below every Gaussian field's": all(r["pixel_distance"] < min(r["pixel_distance_gaussian"]) for r in rows),
    }
    # The goals of fidelity, per map: the largest power error over the constrained octaves, each moment's error.
    power = [float(np.abs(2.0 ** np.array(r["spectrum_log2_ratio"])[reach] - 1).max()) for r in rows]
    errors = [relative_errors(r["moments_synthesis"], r["moments_original"]) for r in rows]
    gauss_errors = [relative_errors(r["moments_gaussian"], r["moments_original"]) for r in rows]
    goal_lines = [f"Goals (medians over the {len(rows)} maps, then the worst map; the Gaussian counterpart in brackets):",
                  f"largest power error over the constrained octaves {np.median(power):.0%}, worst {max(power):.0%} "
                  f"(goal {POWER_GOAL:.0%})"]
    for kind in ("kurtosis", "skewness"):
        for k, part in enumerate(PARTS):
            e = [err[kind][k] for err in errors]
            g = [err[kind][k] for err in gauss_errors]
            o = [r["moments_original"][kind][k] for r in rows]
            sv = [r["moments_synthesis"][kind][k] for r in rows]
            goal_lines.append(f"{kind} of {part}: original median {np.median(o):.2f}, synthesis {np.median(sv):.2f}; "
                              f"relative error median {np.median(e):.0%}, worst {max(e):.0%} [{np.median(g):.0%}]")
    checks[f"power within {POWER_GOAL:.0%} in every constrained octave"] = max(power) <= POWER_GOAL
    checks[f"kurtosis and skewness of Q, U, P within {MOMENT_GOAL:.0%}"] = all(
        v <= MOMENT_GOAL for err in errors for kind in err.values() for v in kind)
    for line in goal_lines:
        print(line)
    for name, ok in checks.items():
        print(f"{'pass' if ok else 'FAIL'}: {name}")
    notes = [
        f"{args.maps} maps of the {args.sky} model (intensity_sigma {args.intensity_sigma}), each synthesised from its "
        f"own normalised WST{' and envelope statistics' if envelopes else ''} with {args.steps} L-BFGS iterations "
        f"from white noise on {device} "
        f"({defaults.SYNTHESIS_THREADS} CPU thread). "
        "'loss/' is the initial over the final loss; 'WST' the log2 RMSE of the result's WST (recomputed with "
        "Kymatio's transform) against the target; the octave columns give log2 of the synthesis's power over the "
        "original's in bands of ``|k|`` (cycles per map), in parentheses the bands beyond the WST's reach (wavelengths "
        "above 2**(J+1) pixels, which the vector does not constrain and the synthesis leaves as its initial white "
        "noise had them); W1 is the Wasserstein-1 distance of pixel values to the "
        "original's, over their std, for the synthesis and (mean of five) Gaussian fields with the original's exact "
        "spectrum; kurtosis is excess kurtosis.",
        "",
        goal_lines[0],
        "",
        *[f"* {line}" for line in goal_lines[1:]],
        "",
        "Checks: " + "; ".join(f"{name}: {'pass' if ok else 'FAIL'}" for name, ok in checks.items()) + ".",
    ]
    report.write(notes)
    if args.output is not None:
        with atomic_path(args.output) as tmp:
            tmp.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "maps": rows,
                                       "checks": checks}, indent=2))
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
