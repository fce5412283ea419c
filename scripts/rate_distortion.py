"""The rate-distortion curve: test RMSE against latent size on the patch and the map-level target, with intervals.

At each latent size the script trains (or reuses, under ``--runs``) the
learned families asked for, then evaluates them with the linear baselines
at the same sizes (PCA, symmetric PCA, reduced-rank regression to the
leave-one-out map mean, plain and with the grid's symmetries) and RWST Models 1 and 2 on the store's test split,
with bootstrap intervals over test maps, and writes one results file whose
``rate_distortion`` section (:mod:`dustvae.analysis.rate_distortion`)
arranges it by family and size (also added, as a section, to the
``results.json`` beside the store when there is one), plus one figure per target:

    python scripts/rate_distortion.py runs/default/data.h5 --runs runs/default/curve \
        -o runs/default/rate_distortion.json --figures runs/default/figures

Learned families (``--families``):

* ``pca-start``: ``vae-D+pca``, started at symmetric PCA (epoch 0 kept as a
  candidate), trained with the grid's symmetries, no KL warm-up;
* ``map``: ``vae-D+rrr+map``, the same started at the reduced-rank
  regression and trained on the map-level target;
* ``table``: ``vae-D``, the tables' architecture trained as the demo trains it
  (its epochs and patience; minutes per size on 2 CPU cores);
* ``table-map``: ``vae-D+map``, the tables' architecture and schedule trained
  on the map-level target.

``--sizes-of FAMILY=SIZES`` restricts a family to some of the sizes (the
table families are costly: ``--sizes-of table=85,170``).

Every choice is made on the validation split; the test split is read once,
by the evaluation. Training times are recorded in the section.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dustvae.analysis.evaluate import evaluate
from dustvae.analysis.rate_distortion import CURVE_SIZES, curve_section, verdict
from dustvae.analysis.results import read_results, write_results
from dustvae.io.store import read_store
from dustvae.models.train import ModelConfig, TrainConfig, train_unless_finished
from dustvae.pipeline import DemoPlan

FAMILIES = ("pca-start", "map", "table", "table-map")


def config_for(family: str, size: int, epochs: int, patience: int) -> TrainConfig:
    """The training configuration of one learned family at one size."""
    if family in ("table", "table-map"):
        plan = DemoPlan()
        return TrainConfig(ModelConfig(size, target="map" if family == "table-map" else "patch"), epochs=plan.epochs,
                           patience=plan.patience)
    return TrainConfig(ModelConfig(size, linear_path=True, pca_init=True, target="map" if family == "map" else "patch"),
                       epochs=epochs, patience=patience, augment=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--runs", type=Path, default=None, help="run directories [default: STORE's folder / curve]")
    parser.add_argument("--sizes", default=",".join(map(str, CURVE_SIZES)))
    parser.add_argument("--families", default="pca-start,map", help=f"comma-separated among {', '.join(FAMILIES)}")
    parser.add_argument("--epochs", type=int, default=DemoPlan().variant_epochs)
    parser.add_argument("--patience", type=int, default=DemoPlan().variant_patience)
    parser.add_argument("--sizes-of", action="append", default=[], metavar="FAMILY=SIZES",
                        help="train FAMILY at these of the sizes only (repeatable)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="results file [default: STORE's folder / rate_distortion.json]")
    parser.add_argument("--figures", type=Path, default=None, help="where the two figures go [default: none drawn]")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; choose among {', '.join(FAMILIES)}")
    only = {}
    for item in args.sizes_of:
        fam, _, listed = item.partition("=")
        if fam not in families or not listed:
            parser.error(f"--sizes-of {item!r}: give FAMILY=SIZES with FAMILY among --families ({', '.join(families)})")
        only[fam] = {int(s) for s in listed.split(",") if s.strip()}
    runs = args.runs or args.store.parent / "curve"
    output = args.output or args.store.parent / "rate_distortion.json"

    store = read_store(args.store)
    checkpoints, seconds = [], {}
    for size in sizes:
        for fam in families:
            if fam in only and size not in only[fam]:
                continue
            config = config_for(fam, size, args.epochs, args.patience)
            tic = time.perf_counter()
            best, trained = train_unless_finished(store, runs / config.name, config, device=args.device, progress=False)
            seconds[config.name] = time.perf_counter() - tic if trained else None
            print(f"{config.name}: {'trained' if trained else 'reused'} in {time.perf_counter() - tic:.0f} s", flush=True)
            checkpoints.append(best)
    tic = time.perf_counter()
    results = evaluate(store, checkpoints, ("rwst1", "rwst2", "pca", "pca-sym", "rrr", "rrr-sym"), store_path=args.store,
                       sizes=sizes, labels=False, generative=False, device="cpu")
    section = curve_section(results)
    section.update({"learned_families": families, "train_seconds": seconds, "evaluate_seconds": time.perf_counter() - tic,
                    "settings": {"epochs": args.epochs, "patience": args.patience, "runs": str(runs)}})
    results["rate_distortion"] = section
    write_results(output, results)
    print(f"wrote {output}")
    main_results = args.store.parent / "results.json"
    if main_results.exists() and main_results.resolve() != output.resolve():  # the demo's results carry the curve too
        write_results(main_results, {**read_results(main_results), "rate_distortion": section})
        print(f"added the section to {main_results}")
    for fam, by_size in section["paired"].items():
        for size, targets in sorted(by_size.items(), key=lambda kv: int(kv[0])):
            for target, entry in targets.items():
                interval = entry["interval"] or [float("nan")] * 2
                print(f"{fam:>14} {size:>4} {target:>5}: {verdict(entry):>5} against {entry['against']:<12} "
                      f"{100 * entry['relative']:+6.2f} % [{interval[0]:+.4f}, {interval[1]:+.4f}] log2")
    if args.figures is not None:
        from dustvae.analysis.curve_figure import draw_rate_distortion

        for path in draw_rate_distortion(section, args.figures):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
