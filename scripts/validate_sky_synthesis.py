"""Syntheses of sky patches: the periodic operator against the reflection-padded one that made the vector.

Run: ``.venv/bin/python scripts/validate_sky_synthesis.py [runs/default/data.h5] [--patches 4] [--steps 300]``.

The patches of a ``make-dataset`` store are cut from larger maps and
transformed with Kymatio's reflection padding, so their vectors describe a
patch with reflected borders, not a periodic tile. For ``--patches`` test
patches (one per test map, filament and turbulence maps alternating, as
``scripts/synthesis_figure.py`` chooses them) the original is simulated
again from the store's recorded spec, and its stored vector is synthesised
from the same white noise (seed = row) three ways:

* ``periodic``: the periodic operator at the patch size (what every
  synthesis did before the target carried its boundary);
* ``reflect``: the store's own operator (the default now);
* ``reflect+envelopes``: the same, also matching the original's envelope
  statistics (:mod:`dustvae.synthesis.envelopes`).

Each is compared with the original (pixel W1 over the original's std, of
the maps and of the maps without the octave beyond the WST's reach,
:func:`~dustvae.synthesis.compare.within_reach`, whose power the vector does
not hold and a Gaussian field of the original's exact spectrum does;
excess kurtosis of Q, U and P; RMS over the constrained octaves of log2 of
the power ratio; log2 RMSE of its WST under the store's operator) and with
Gaussian fields of the original's spectrum (mean of five), the reference a
statistics-free model reaches. Writes
docs/_generated/validate_synthesis_sky.rst and, with --output, a JSON file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _bench import machine, write_page
from dustvae import defaults
from dustvae.dataset import regenerate_patches
from dustvae.io.store import read_store
from dustvae.numerics import rmse
from dustvae.synthesis import synthesize, targets_from_store
from dustvae.synthesis.compare import compare, gaussian_counterpart, pixel_distance, pixel_moments, within_reach
from dustvae.wst.transform import normalise, prepare, scattering_means

from synthesis_figure import choose_rows

VARIANTS = {"periodic": {"boundary": "periodic"}, "reflect": {"boundary": "reflect"},
            "reflect+envelopes": {"boundary": "reflect", "constraints": "wst+envelopes"}}


def store_vector(maps: np.ndarray, fields: tuple[str, ...], layout, boundary: str) -> np.ndarray:
    """The normalised vector of (F, n, n) maps under the store's operator."""
    x, _ = prepare(maps[None], fields)
    means = scattering_means(x, boundary=boundary)
    return normalise(means.s1, means.s2, layout)[0]


def validate_row(store, row: int, original: np.ndarray, steps: int) -> dict:
    (target,) = targets_from_store(store, [row])
    target.original = original
    fields = target.layout.fields
    gaussians = [gaussian_counterpart(original, seed) for seed in range(5)]
    J = target.layout.J
    reach = within_reach(original, J)
    out = {"row": row, "filaments": float(store.labels.get("filaments", np.full(len(store), np.nan))[row]),
           "kurtosis_original": pixel_moments(original)["kurtosis"],
           "gaussian_pixel_distance": float(np.mean([pixel_distance(original, g) for g in gaussians])),
           "gaussian_pixel_distance_in_reach": float(np.mean([pixel_distance(reach, within_reach(g, J)) for g in gaussians])),
           "gaussian_kurtosis": np.mean([pixel_moments(g)["kurtosis"] for g in gaussians], axis=0).tolist(), "syntheses": {}}
    for name, options in VARIANTS.items():
        tic = time.perf_counter()
        result = synthesize(target, steps=steps, seed=row, progress=False, **options)
        c = compare(original, result.maps, target.layout.J)
        out["syntheses"][name] = {
            "pixel_distance": c["pixel_distance"], "spectrum_rms_log2": c["spectrum_rms_log2"],
            "pixel_distance_in_reach": pixel_distance(reach, within_reach(result.maps, J)),
            "kurtosis": pixel_moments(result.maps)["kurtosis"],
            "wst_rmse_store_operator": rmse(store_vector(result.maps, fields, target.layout, target.boundary), target.vector),
            "iterations": result.iterations, "seconds": time.perf_counter() - tic}
    return out


def page(rows: list[dict], args: argparse.Namespace, size: int, boundary: str) -> str:
    title = f"Synthesis validation (sky patches, {size} px, {boundary} store)"
    lines = [title, "^" * len(title), "",
             f"``scripts/validate_sky_synthesis.py {args.store} --patches {args.patches} --steps {args.steps}``: "
             f"{machine()}.", "",
             "Per test patch: pixel W1 (over the original's std) of the syntheses and of Gaussian fields with the "
             "original's spectrum, of the maps and (in reach) of the maps without the octave beyond the WST's reach; "
             "log2 RMSE of the synthesis's WST under the store's operator; RMS log2 power ratio "
             "over the octaves the WST constrains; excess kurtosis of Q / U / P:", "", "::", ""]
    for r in rows:
        kind = "filaments" if r["filaments"] == 1 else "turbulence"
        k = r["kurtosis_original"]
        lines.append(f"    row {r['row']:>5} ({kind:<10})  original kurtosis {k[0]:6.2f} {k[1]:6.2f} {k[2]:6.2f}   "
                     f"Gaussian W1 {r['gaussian_pixel_distance']:.3f}, in reach {r['gaussian_pixel_distance_in_reach']:.3f}")
        for name, s in r["syntheses"].items():
            q = s["kurtosis"]
            lines.append(f"        {name:<18} W1 {s['pixel_distance']:.3f}, in reach "
                         f"{s['pixel_distance_in_reach']:.3f}  WST {s['wst_rmse_store_operator']:.4f}  "
                         f"power {s['spectrum_rms_log2']:.2f}  kurtosis {q[0]:6.2f} {q[1]:6.2f} {q[2]:6.2f}  "
                         f"({s['iterations']} it., {s['seconds']:.0f} s)")
    for key, what in (("pixel_distance", "W1"), ("pixel_distance_in_reach", "W1 in reach")):
        gauss = "gaussian_" + key
        lines += ["", f"{what}, means over the patches: " + "; ".join(
            f"{name} {np.mean([r['syntheses'][name][key] for r in rows]):.3f}" for name in VARIANTS)
            + f"; Gaussian fields {np.mean([r[gauss] for r in rows]):.3f}. Patches where the synthesis is closer than "
            "the Gaussian fields: " + ", ".join(
            f"{name} {sum(r['syntheses'][name][key] < r[gauss] for r in rows)} of {len(rows)}" for name in VARIANTS) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", default=str(Path(defaults.DEMO_RUN) / "data.h5"))
    parser.add_argument("--patches", type=int, default=4)
    parser.add_argument("--steps", type=int, default=defaults.SYNTHESIS_STEPS)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    store = read_store(args.store)
    rows = choose_rows(store, args.patches)
    originals = regenerate_patches(store, rows)
    results = []
    for row, original in zip(rows, originals):
        results.append(validate_row(store, row, np.asarray(original, np.float64), args.steps))
        print(page(results[-1:], args, original.shape[-1], str(store.attrs["boundary"])).split("::\n\n", 1)[1]
              .split("\n\nW1, means")[0], flush=True)
    write_page("validate_synthesis_sky", page(results, args, int(store.attrs["patch_size"]), str(store.attrs["boundary"])),
               args.output, results)


if __name__ == "__main__":
    main()
