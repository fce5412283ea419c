"""The comparison: every compressor on the held-out test split, one results file.

PCA is fitted on the training split; RWST fits each vector alone; the VAEs
arrive trained (on the train split, early-stopped on validation). Nothing
here reads the validation split, and the test split is only ever
reconstructed, never fitted.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .._version import __version__
from ..baselines import PCACompressor, RWSTCompressor
from ..compressor import Compressor
from ..errors import DustvaeError
from ..io.atomic import atomic_path, sha256sum
from ..io.store import CoefficientStore
from ..models.checkpoint import load_model
from ..models.compressor import VAECompressor
from ..models.apply import check_compatible
from ..wst.layout import CoefficientLayout
from .metrics import generative_metrics, reconstruction_metrics

BASELINES = ("rwst1", "rwst2", "pca")
#: Test patches whose reconstructions are kept for figures.
N_EXAMPLES = 4


#: Latent sizes of the PCA curve in the error-against-latent-size figure.
PCA_CURVE_SIZES = (4, 8, 16, 32, 64, 85, 128, 170, 256, 340)


def pca_rmse_curve(train: np.ndarray, test: np.ndarray, sizes=PCA_CURVE_SIZES) -> dict[str, float]:
    """Test RMSE (log2) of PCA fitted on ``train``, at each size (one SVD, truncated)."""
    sizes = [d for d in sizes if d <= min(train.shape)]
    if not sizes:
        return {}
    pca = PCACompressor(max(sizes)).fit(train)._fitted()
    centred = test.astype(np.float64) - pca.mean_
    curve = {}
    for d in sizes:
        basis = pca.components_[:d]
        residual = centred - (centred @ basis.T) @ basis
        curve[str(d)] = float(np.sqrt(np.mean(residual**2)))
    return curve


def _timed(func, *args):
    tic = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - tic


def evaluate(store: CoefficientStore, checkpoints: Sequence[str | Path] = (), baselines: Sequence[str] = BASELINES,
             *, store_path: str | Path | None = None, device: str = "cpu", seed: int = 0,
             notes: list[str] | None = None) -> dict:
    """Compare compressors on the store's test split; return the results dictionary.

    Parameters
    ----------
    store : CoefficientStore
        A split store (``make-dataset``) or an unsplit one (all test data;
        PCA is then skipped, as it has nothing to train on).
    checkpoints : paths
        Trained VAE checkpoints; PCA runs at each of their latent sizes.
    baselines : names
        Any of ``rwst1``, ``rwst2``, ``pca``.
    """
    notes = notes if notes is not None else []
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise DustvaeError(f"unknown baseline(s) {', '.join(unknown)}; choose among {', '.join(BASELINES)}")
    layout = CoefficientLayout.from_attrs(store.attrs)
    test = store.subset("test")
    if len(test) == 0:
        raise DustvaeError("the store's test split is empty; nothing to evaluate")
    train = store.subset("train") if store.split is not None else None

    compressors: list[tuple[Compressor, dict]] = []
    inputs = {"checkpoints": {}}
    fingerprint = store.fingerprint()
    for ckpt in checkpoints:
        model, payload = load_model(ckpt, device)
        check_compatible(store, payload, str(ckpt))
        trained_on = payload.get("store_fingerprint")
        if trained_on is not None and trained_on != fingerprint:
            notes.append(f"{model.name} was trained on another store than the one evaluated; its test split may not be held out")
        compressors.append((VAECompressor(model), {"checkpoint": str(ckpt), "best_epoch": payload.get("best_epoch"),
                                                   "train_config": payload.get("train_config")}))
        inputs["checkpoints"][model.name] = {"path": str(ckpt), "sha256": sha256sum(ckpt if Path(ckpt).is_file() else Path(ckpt) / "best.pt")}
    if "rwst1" in baselines:
        compressors.append((RWSTCompressor(1, layout), {}))
    if "rwst2" in baselines:
        compressors.append((RWSTCompressor(2, layout), {}))
    if "pca" in baselines:
        sizes = sorted({c.latent_dim for c, _ in compressors if c.name.startswith("vae-")}, reverse=True) or [85, 170]
        if train is None:
            notes.append("pca skipped: the store has no training split to fit it on")
        else:
            compressors.extend((PCACompressor(d), {}) for d in sizes)

    results: dict[str, dict] = {}
    examples = {"test_rows": list(range(min(N_EXAMPLES, len(test)))), "truth": test.coeffs[:N_EXAMPLES].tolist()}
    recon_examples: dict[str, list] = {}
    train_scale = train.coeffs.std(0) if train is not None else test.coeffs.std(0)
    for compressor, extra in compressors:
        fit_seconds = 0.0
        if compressor.needs_training:
            _, fit_seconds = _timed(compressor.fit, train.coeffs)
        latent, encode_seconds = _timed(compressor.encode, test.coeffs)
        recon, decode_seconds = _timed(compressor.decode, latent)
        row = {"latent": int(compressor.latent_dim), **reconstruction_metrics(test.coeffs, recon, layout),
               "fit_seconds": fit_seconds, "encode_ms_per_patch": 1e3 * encode_seconds / len(test),
               "decode_ms_per_patch": 1e3 * decode_seconds / len(test), **extra}
        if isinstance(compressor, VAECompressor):
            samples = compressor.sample(len(test), seed)
            reference = train.coeffs if train is not None else test.coeffs
            row["generative"] = generative_metrics(samples, test.coeffs, reference, train_scale)
        results[compressor.name] = row
        recon_examples[compressor.name] = np.asarray(recon[:N_EXAMPLES], np.float64).tolist()
    examples["reconstructions"] = recon_examples
    pca_curve = pca_rmse_curve(train.coeffs, test.coeffs) if train is not None and "pca" in baselines else {}

    import kymatio
    import sklearn
    import torch

    return {
        "compressors": results,
        "test": {"n_patches": len(test), "n_maps": int(len(np.unique(test.map_index))),
                 "split": "store split (by map)" if store.split is not None else "whole store (no split)"},
        "inputs": {"store": str(store_path) if store_path else None,
                   "store_sha256": sha256sum(store_path) if store_path else None,
                   "store_fingerprint": fingerprint, "layout": layout.to_attrs(),
                   "n_train": int(len(train)) if train is not None else 0, **inputs},
        "versions": {"dustvae": __version__, "kymatio": kymatio.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "device": device},
        "notes": notes,
        "pca_curve": pca_curve,
        "examples": examples,
    }


def write_results(path: str | Path, results: dict) -> Path:
    """Write results JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(results, indent=1))
    return Path(path)


def markdown_table(results: dict) -> str:
    """The headline numbers as a Markdown table, best RMSE first."""
    rows = sorted(results["compressors"].items(), key=lambda item: item[1]["rmse_log2"])
    lines = ["| compressor | latents | RMSE (log2) | mean rel. err. S1 | mean rel. err. S2/S1 | encode ms/patch |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows:
        lines.append(f"| {name} | {row['latent']} | {row['rmse_log2']:.4f} | {row['rel_err_s1']:.4f} | "
                     f"{row['rel_err_s2_over_s1']:.4f} | {row['encode_ms_per_patch']:.3f} |")
    test = results["test"]
    lines.append("")
    lines.append(f"Test set: {test['n_patches']} patches from {test['n_maps']} maps ({test['split']}).")
    for note in results.get("notes", []):
        lines.append(f"Note: {note}")
    return "\n".join(lines)
