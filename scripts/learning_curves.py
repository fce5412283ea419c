"""Test RMSE of PCA and the VAEs against the size of the training set.

The training split of a dataset is thinned by map (1/8, 1/4, 1/2 and all of
its training maps, nested, seeded), while the validation split (early
stopping) and the test split (the reported number) stay whole and fixed.
PCA-85, PCA-170, VAE-2 and VAE-1 are fitted on each subset; the RMSE of the
normalised log2 vector on the test split goes to ``learning_curves.json``
and the figure ``learning_curves.pdf/png``.

    python scripts/learning_curves.py runs/default/data.h5 -o runs/default/learning

The VAEs are trained as the demo trains them (its epochs and patience). The
whole training split is the demo's own run: with ``--full-runs`` (default:
the store's directory) its finished ``vae-85``/``vae-170`` are used for the
last point instead of being trained again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dustvae import defaults
from dustvae.baselines.pca import PCACompressor
from dustvae.io.atomic import atomic_path
from dustvae.io.store import read_store
from dustvae.models.apply import decode_array, encode_array
from dustvae.models.checkpoint import load_model
from dustvae.models.train import ModelConfig, TrainConfig, train_unless_finished
from dustvae.numerics import rmse
from dustvae.pipeline import DemoPlan

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
LATENTS = (defaults.LATENT_VAE2, defaults.LATENT_VAE1)


def training_subset(store, fraction: float, seed: int = 0):
    """The store with only ``fraction`` of its training maps (nested across fractions: one permutation)."""
    train_maps = np.unique(store.map_index[store.split == 0])
    order = np.random.default_rng(seed).permutation(train_maps)
    kept = set(order[: max(1, int(round(fraction * train_maps.size)))].tolist())
    keep = (store.split != 0) | np.isin(store.map_index, list(kept))
    return store.subset(keep), len(kept)


def plot(results: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    sizes = [row["train_patches"] for row in results["points"]]
    styles = {"PCA-85": ("C0", "--"), "PCA-170": ("C1", "--"), "VAE-2": ("C0", "-"), "VAE-1": ("C1", "-")}
    for name, (colour, line) in styles.items():
        ax.plot(sizes, [row["rmse_log2"][name] for row in results["points"]], marker="o", color=colour, ls=line, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training patches")
    ax.set_ylabel("test RMSE [log2]")
    ax.legend(frameon=False, ncol=2)
    fig.tight_layout()
    for suffix in ("pdf", "png"):
        with atomic_path(out_dir / f"learning_curves.{suffix}") as tmp:
            fig.savefig(tmp, format=suffix, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path(defaults.DEMO_RUN) / "learning")
    parser.add_argument("--epochs", type=int, default=DemoPlan.epochs)
    parser.add_argument("--patience", type=int, default=DemoPlan.patience)
    parser.add_argument("--full-runs", type=Path, default=None,
                        help="Where the runs on the whole training split are [default: beside the store].")
    parser.add_argument("--fractions", type=float, nargs="*", default=list(FRACTIONS))
    args = parser.parse_args()
    store = read_store(args.store)
    test = store.subset("test").coeffs
    args.output.mkdir(parents=True, exist_ok=True)
    full_runs = args.full_runs or args.store.parent
    results = {"store": str(args.store), "epochs": args.epochs, "patience": args.patience, "test_patches": len(test), "points": []}
    for fraction in args.fractions:
        subset, n_maps = training_subset(store, fraction)
        train_x = subset.subset("train").coeffs
        row = {"fraction": fraction, "train_maps": n_maps, "train_patches": len(train_x), "rmse_log2": {}}
        for latent, name in zip(LATENTS, ("VAE-2", "VAE-1")):
            pca = PCACompressor(latent).fit(train_x)
            row["rmse_log2"][f"PCA-{latent}"] = rmse(pca.decode(pca.encode(test)), test)
            config = TrainConfig(ModelConfig(latent), epochs=args.epochs, patience=args.patience)
            run_dir = full_runs / config.name if fraction == 1.0 else args.output / f"frac{fraction:g}" / config.name
            tic = time.perf_counter()
            _, trained = train_unless_finished(subset, run_dir, config, progress=False)
            if trained:
                print(f"trained {name} on {len(train_x)} patches in {time.perf_counter() - tic:.0f} s", flush=True)
            row.setdefault("runs", {})[name] = str(run_dir)
            model, _ = load_model(run_dir / "best.pt")
            mean, _ = encode_array(model, test)
            row["rmse_log2"][name] = rmse(decode_array(model, mean), test)
        results["points"].append(row)
        print(json.dumps(row), flush=True)
        with atomic_path(args.output / "learning_curves.json") as tmp:
            tmp.write_text(json.dumps(results, indent=1))
    plot(results, args.output)


if __name__ == "__main__":
    main()
