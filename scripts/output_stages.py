"""Validation RMSE of VAE-2 with each decoder output stage (the tables' single ReLU channel, linear, wide).

Run: ``.venv/bin/python scripts/output_stages.py [runs/default/data.h5] [--epochs 10] [--workers 3]``.

Every run has the same settings but ``output_stage`` and the same number of
epochs (the cosine schedule over that length); the validation split alone
is read. Runs go to ``runs/output_stages/`` (reused when finished) in
one-thread worker processes; the table goes to
``docs/_generated/output_stages.rst`` and ``runs/output_stages/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from _bench import Report
from dustvae import defaults
from dustvae.io.atomic import atomic_path
from dustvae.models.vae import OUTPUT_STAGES


def _train(job: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    from dustvae.io.store import read_store
    from dustvae.models.train import ModelConfig, TrainConfig, train_unless_finished

    store_path, out, latent, stage, epochs = job
    config = TrainConfig(ModelConfig(latent, output_stage=stage), epochs=epochs, patience=epochs)
    best, _ = train_unless_finished(read_store(store_path), Path(out) / config.name, config, progress=False)
    history = [json.loads(line) for line in (best.parent / "metrics.jsonl").read_text().splitlines()]
    best_row = min(history, key=lambda r: r["val_rmse_log2"])
    return {"name": config.name, "output_stage": stage, "best_val_rmse_log2": best_row["val_rmse_log2"],
            "best_epoch": best_row["epoch"], "last_train_rmse_log2": history[-1]["train_rmse_log2"],
            "seconds_per_epoch": sum(r["seconds"] for r in history) / len(history)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, nargs="?", default=Path(defaults.DEMO_RUN) / "data.h5")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/output_stages"))
    parser.add_argument("--latent", type=int, default=85)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=len(OUTPUT_STAGES))
    args = parser.parse_args()
    jobs = [(str(args.store), str(args.output), args.latent, stage, args.epochs) for stage in OUTPUT_STAGES]
    report = Report("output_stages", f"Decoder output stages, VAE family at {args.latent} latents (validation split)",
                    f"{'model':>16} {'stage':>7} {'best val RMSE':>14} {'best epoch':>11} {'last train RMSE':>16} {'s/epoch':>8}")
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(_train, jobs))
    for r in rows:
        report.add(f"{r['name']:>16} {r['output_stage']:>7} {r['best_val_rmse_log2']:>14.4f} {r['best_epoch']:>11} "
                   f"{r['last_train_rmse_log2']:>16.4f} {r['seconds_per_epoch']:>8.1f}")
    with atomic_path(args.output / "summary.json") as tmp:
        tmp.write_text(json.dumps({"store": str(args.store), "epochs": args.epochs, "runs": rows}, indent=1))
    report.write([f"``scripts/output_stages.py {args.store} --epochs {args.epochs}``: every run {args.epochs} epochs "
                  "(cosine schedule over that length), default settings otherwise, one torch thread per run, "
                  f"{args.workers} runs at a time. RMSE in log2 units of the normalised vector."])


if __name__ == "__main__":
    main()
