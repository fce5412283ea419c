"""Transfer between sky models: fitted on turbulence maps only, scored on filament maps, and the reverse.

The default dataset mixes the two sky models (its binary ``filaments``
label says which made each map). This script splits it by that label into
two stores that keep the dataset's split by map, trains the PCA-started
variant (``vae-D+pca``, as the demo trains it) on each store's training
split, and scores every compressor twice with ``dustvae evaluate``'s
library call: on the store's own test split, and with ``on=`` on every row
of the other store (all of its maps are new to the compressors). It
writes ``transfer.json`` (both directions' results and the growth of each
compressor's error under transfer) and ``docs/_generated/transfer.rst``:

    python scripts/transfer_study.py runs/default/data.h5 -o runs/default/transfer

Choices are made on the fitting store's validation split, as everywhere.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dustvae.analysis import registry
from dustvae.analysis.evaluate import evaluate
from dustvae.analysis.results import write_results
from dustvae.analysis.tables import Column, Table, interval, render
from dustvae.io.atomic import atomic_path
from dustvae.io.store import read_store
from dustvae.io.store_writer import write_store
from dustvae.models.train import train_unless_finished
from dustvae.pipeline import DemoPlan

ROOT = Path(__file__).resolve().parents[1]
MODELS = {0: "turbulence", 1: "filaments"}


def split_by_model(store_path: Path, out: Path) -> dict[str, Path]:
    """The dataset's rows of each sky model, as two stores that keep its split by map."""
    store = read_store(store_path)
    if "filaments" not in store.labels:
        raise SystemExit(f"{store_path}: no 'filaments' label; give a mixed dataset (make-dataset --model mixed)")
    paths = {}
    for value, name in MODELS.items():
        path = out / f"{name}.h5"
        if not path.exists():
            write_store(path, store.subset(np.asarray(store.labels["filaments"]) == value))
        paths[name] = path
    return paths


def growth_table(directions: dict) -> Table:
    """Per compressor and direction: RMSE on the own test split, on the other model's maps, and the ratio."""
    columns = [Column("compressor", align="l")]
    for direction in directions:
        columns += [Column(f"{direction}: own test"), Column(f"{direction}: other model"), Column(f"{direction}: growth")]
    names = registry.ordered(set.intersection(*(set(d["own"]["compressors"]) for d in directions.values())))
    rows = []
    for name in names:
        cells = [registry.label(name, directions[next(iter(directions))]["own"]["compressors"][name]["latent"])]
        for d in directions.values():
            own, other = d["own"], d["other"]
            cells += [interval(own["compressors"][name]["rmse_log2"], _bounds(own, name), 4),
                      interval(other["compressors"][name]["rmse_log2"], _bounds(other, name), 4),
                      f"{other['compressors'][name]['rmse_log2'] / own['compressors'][name]['rmse_log2']:.3f}"]
        rows.append(cells)
    return Table(columns, rows)


def _bounds(results: dict, name: str):
    return ((results.get("bootstrap") or {}).get("intervals", {}).get(name) or {}).get("rmse_log2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None, help="[default: STORE's folder / transfer]")
    parser.add_argument("--sizes", default="85,170")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "_generated" / "transfer.rst")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out = args.output or args.store.parent / "transfer"
    out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    paths = split_by_model(args.store, out)
    stores = {name: read_store(path) for name, path in paths.items()}
    plan = DemoPlan()
    directions, seconds = {}, {}
    for fit, other in (("turbulence", "filaments"), ("filaments", "turbulence")):
        checkpoints = []
        for config in plan.configs():
            if config.model.pca_init and config.model.latent_dim in sizes:  # the PCA-started variants, as the demo trains them
                tic = time.perf_counter()
                best, _ = train_unless_finished(stores[fit], out / fit / config.name, config, device=args.device,
                                                progress=False)
                seconds[f"{fit}/{config.name}"] = time.perf_counter() - tic
                checkpoints.append(best)
        common = dict(baselines=("rwst2", "pca", "pca-sym"), sizes=sizes, labels=False, generative=False)
        own = evaluate(stores[fit], checkpoints, store_path=paths[fit], **common)
        scored = evaluate(stores[fit], checkpoints, store_path=paths[fit], on=stores[other], on_path=paths[other], **common)
        for kind, results in (("own", own), ("other", scored)):
            write_results(out / f"{fit}_on_{'own' if kind == 'own' else other}.json", results)
        directions[f"{fit} -> {other}"] = {"own": own, "other": scored}
        print(f"{fit} -> {other}: done", flush=True)
    table = growth_table(directions)
    summary = {"store": str(args.store), "sizes": sizes, "train_seconds": seconds,
               "growth": {d: {n: r["other"]["compressors"][n]["rmse_log2"] / r["own"]["compressors"][n]["rmse_log2"]
                              for n in r["own"]["compressors"] if n in r["other"]["compressors"]}
                          for d, r in directions.items()}}
    with atomic_path(out / "transfer.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    text = ["Test RMSE (log2) of compressors fitted on one sky model's training maps, on that model's own test maps "
            "and on every map of the other model, and the ratio of the two (growth under transfer); brackets: 95% "
            f"bootstrap intervals over maps. Generated by ``scripts/transfer_study.py {args.store}``.", "",
            render(table, "rst"), ""]
    with atomic_path(args.docs) as tmp:
        tmp.write_text("\n".join(text))
    print(render(table, "markdown"))


if __name__ == "__main__":
    main()
