"""The whole chain on the default dataset, plus the sweeps behind two figures, then every figure.

Run: ``.venv/bin/python scripts/make_figures.py [-o runs/default] [--sweep-epochs 15]``.

1. ``dustvae demo`` stages (reused when done): dataset, VAE-2, VAE-1 and the
   variants started at symmetric PCA (``vae-85+pca``, ``vae-170+pca``), and
   the evaluation of all four with the baselines into ``results.json``.
2. Latent-size sweep: more members of the VAE family (default 16 and 32 latents),
   trained for ``--sweep-epochs`` (shown as such in the figure), evaluated on the
   test split like VAE-1 and VAE-2.
3. Beta sweep: VAE-2 trained with several KL weights (the default among them),
   all with the same number of epochs; reconstruction error and KL are
   measured on the validation split (a trade-off study, so the test split
   stays unused).
4. ``sweeps.json`` beside ``results.json``, then all figures.
5. The rate-distortion curve (``scripts/rate_distortion.py``: ``rate_distortion.json``
   and its two figures) and the transfer between sky models
   (``scripts/transfer_study.py``), unless ``--no-curve``; then the paper tables.
Each run is skipped when its checkpoint says it finished.

On the 2-core development machine without a GPU, after ``make demo``, the
variants and sweeps take about 40 minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from dustvae import defaults
from dustvae.analysis.evaluate import evaluate
from dustvae.analysis.figure_set import make_figures
from dustvae.analysis.results import RESULTS_VERSION, read_results, write_results
from dustvae.io.atomic import atomic_path
from dustvae.io.store import read_store
from dustvae.models.apply import encode_array, decode_array
from dustvae.models.checkpoint import load_model
from dustvae.models.loss import kl_divergence
from dustvae.models.train import DEFAULT_BETA, ModelConfig, TrainConfig, train_unless_finished
from dustvae.numerics import rmse
from dustvae.pipeline import DemoPlan, run_demo

ROOT = Path(__file__).resolve().parents[1]


def trained(store, run_dir: Path, config: TrainConfig) -> Path:
    print(f"{run_dir.name}: {config.model.latent_dim} latents, beta {config.beta:g}, at most {config.epochs} epochs", flush=True)
    return train_unless_finished(store, run_dir, config, progress=False)[0]


def validation_point(store, ckpt: Path) -> dict:
    import torch

    model, payload = load_model(ckpt)
    val = store.subset("validation").coeffs
    mean, logvar = encode_array(model, val)
    recon = decode_array(model, mean)
    kl = kl_divergence(torch.from_numpy(mean), torch.from_numpy(logvar)).mean().item()
    return {"val_rmse_log2": rmse(recon, val), "val_kl": kl,
            "beta": payload["train_config"]["beta"], "epochs": payload["train_config"]["epochs"],
            "best_epoch": payload["epoch"] + 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / defaults.DEMO_RUN)
    parser.add_argument("--latents", type=int, nargs="*", default=[16, 32])
    # beta = 2 sigma^2 / 1360 for a Gaussian likelihood of noise sigma log2 (dustvae.models.loss): from
    # sigma 0.004 (autoencoder-like) through the default (0.04) to 0.4 (over-regularised).
    parser.add_argument("--betas", type=float, nargs="*", default=[DEFAULT_BETA / 100, DEFAULT_BETA, DEFAULT_BETA * 10, DEFAULT_BETA * 100])
    parser.add_argument("--sweep-epochs", type=int, default=10)
    parser.add_argument("--no-curve", action="store_true", help="skip the rate-distortion curve and the transfer study")
    args = parser.parse_args()
    out = args.output
    plan = DemoPlan()
    run_demo(out, plan, progress=False, figures=False)
    store = read_store(out / "data.h5")
    checkpoints = [out / config.name / "best.pt" for config in plan.configs()]  # trained by the demo
    results = read_results(out / "results.json")
    if (not all(Path(c).parent.name in results["compressors"] for c in checkpoints)
            or "generative_fitted" not in results["compressors"]["vae-85"]
            or results["format_version"] < RESULTS_VERSION):  # an older file: evaluated again, no training needed
        print("evaluating VAE-1, VAE-2, the variants and the baselines on the test split", flush=True)
        fresh = evaluate(store, checkpoints, store_path=out / "data.h5")
        for kept in ("synthesis", "rate_distortion"):  # other scripts' sections depend on their own runs: kept
            if kept in results:
                fresh[kept] = results[kept]
        write_results(out / "results.json", fresh)

    sweeps = {"latent": {}, "beta": {}, "epochs": args.sweep_epochs}
    for latent in args.latents:
        config = TrainConfig(ModelConfig(latent), epochs=args.sweep_epochs, patience=plan.patience)
        ckpt = trained(store, out / "sweep" / config.name, config)
        row = evaluate(store, [ckpt], baselines=(), labels=False)["compressors"][config.name]
        sweeps["latent"][str(latent)] = {"rmse_log2": row["rmse_log2"], "rel_err_s1": row["rel_err_s1"]}
    for beta in args.betas:  # every point trained alike (sweep epochs), the default beta included
        ckpt = trained(store, out / "sweep" / f"vae-85-beta{beta:g}",
                       TrainConfig(beta=beta, epochs=args.sweep_epochs, patience=plan.patience))
        sweeps["beta"][str(beta)] = validation_point(store, ckpt)
    with atomic_path(out / "sweeps.json") as tmp:
        tmp.write_text(json.dumps(sweeps, indent=1))
    made = make_figures(out / "results.json", out / "figures", run_root=out)
    print(f"{len(made) // 2} figures in {out / 'figures'}")
    if not args.no_curve:
        for script, extra in (("rate_distortion.py", ["--figures", str(out / "figures")]), ("transfer_study.py", [])):
            subprocess.run([sys.executable, str(ROOT / "scripts" / script), str(out / "data.h5"), *extra], check=True)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_paper_tables.py"), str(out / "results.json")], check=True)


if __name__ == "__main__":
    main()
