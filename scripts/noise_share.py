"""How much of the WST vectors' variance is realisation noise within a map, per patch size.

For patch sides of 64, 128 and 256 px cut from the *validation* maps of a
dataset specification whose maps are twice the patch side (four patches a
map, as the default dataset cuts its 256-px maps into 128-px patches), this
computes the normalised log2 WST vectors and, per layer and field, the share
of their variance that lies between patches of one map:

    share = mean over maps of the unbiased within-map variance / total variance,

summed over the coefficients of the layer (within a map the variance has
denominator n - 1, as the evaluation's within-map scatter does, so that four
patches a map do not understate it). A share near 1 means a patch's
vector is mostly sample noise of its map; the physics (the map's parameters)
is the rest. Writes ``docs/_generated/noise_share.rst`` and a JSON file.

    python scripts/noise_share.py [--maps 80] [--model mixed] [--out runs/noise_share.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dustvae.io.atomic import atomic_path
from dustvae.wst.compute import compute_store
from dustvae.dataset import DatasetSpec, _simulate_map, draw_params, split_by_map
from dustvae.sky.models import label_names, model_of
from dustvae.io.patchfile import PatchSet
from dustvae.wst.layout import CoefficientLayout

from _bench import DOCS, machine


def within_map_share(vectors: np.ndarray, map_index: np.ndarray) -> float:
    """Within-map variance over total variance, both summed over the coefficients given."""
    total = vectors.var(axis=0, ddof=1).sum()
    within = np.mean([vectors[map_index == m].var(axis=0, ddof=1).sum() for m in np.unique(map_index)])
    return float(within / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=80, help="maps in the specification (15%% are validation maps)")
    parser.add_argument("--map-size", type=int, default=None, help="side of the maps [default: twice the patch side]")
    parser.add_argument("--model", default="mixed")
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--out", type=Path, default=Path("runs/noise_share.json"))
    args = parser.parse_args()

    results = {"machine": machine(), "maps": args.maps, "map_size": args.map_size, "model": args.model, "sizes": {}}
    for patch_size in [int(s) for s in args.sizes.split(",")]:
        spec = DatasetSpec(n_maps=args.maps, map_size=args.map_size or 2 * patch_size, patch_size=patch_size, model=args.model)
        params = draw_params(spec)
        validation = np.flatnonzero(split_by_map(spec.n_maps, spec) == 1)
        names = label_names(tuple(sorted({model_of(p) for p in params})))
        tic = time.perf_counter()
        patch_set = PatchSet.concatenate([_simulate_map(spec, params[i], names) for i in validation])
        store = compute_store(patch_set, None, progress=False)
        seconds = time.perf_counter() - tic
        layout = CoefficientLayout.from_attrs(store.attrs)
        row = {"patches": len(store), "maps": int(validation.size), "seconds": round(seconds, 1)}
        row["all"] = within_map_share(store.coeffs, store.map_index)
        for field in layout.fields:
            for layer in (1, 2):
                row[f"{field} S{layer}"] = within_map_share(store.coeffs[:, layout.select(field=field, layer=layer)], store.map_index)
        results["sizes"][str(patch_size)] = row
        print(patch_size, json.dumps(row), flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    columns = ["all"] + [f"{f} S{k}" for f in ("Q", "U") for k in (1, 2)]
    table = ["patch px   patches  maps   " + "  ".join(f"{c:>7}" for c in columns)]
    for size, row in results["sizes"].items():
        table.append(f"{size:>8}   {row['patches']:>7}  {row['maps']:>4}   " + "  ".join(f"{row[c]:7.3f}" for c in columns))
    DOCS.mkdir(parents=True, exist_ok=True)
    lines = ["Within-map share of the WST variance", "^" * 36, "",
             f"``scripts/noise_share.py --maps {args.maps} --model {args.model}``"
             + (f" with maps of {args.map_size} px" if args.map_size else ", maps twice the patch side (four patches a map)")
             + f": validation maps only, unbiased within-map variance, {machine()}.", "", "::", ""]
    lines += ["    " + line for line in table] + [""]
    with atomic_path(DOCS / "noise_share.rst") as tmp:
        tmp.write_text("\n".join(lines))
    print("\n".join(table))


if __name__ == "__main__":
    main()
