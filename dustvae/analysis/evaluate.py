"""The comparison: every compressor on the held-out test split, one results file.

PCA and symmetric PCA are fitted on the training split (:mod:`.linear`),
and reduced-rank regression on its vectors and their leave-one-out map means;
RWST fits each vector alone; the VAEs arrive trained (on the train split,
early-stopped on validation); the regressors that read simulation labels
from the codes are fitted on the training split's codes. The validation
split is read once, to choose which linear baseline of each size the
learned compressors are paired with; the test split is only ever
reconstructed and scored, never fitted nor used to choose.

With ``on`` (``dustvae evaluate COEFFS --on OTHER``), everything is fitted
and chosen on COEFFS as above, and scored on every row of OTHER instead of
COEFFS's test split: a store from another simulator, an MHD simulation or
the real sky. Its intervals resample OTHER's maps when it has several, its
patches otherwise.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import defaults
from .._version import __version__
from ..baselines import PCACompressor, ReducedRankRegression, RWSTCompressor, SymmetricReducedRankRegression
from ..compressor import Compressor
from ..errors import DustvaeError
from ..io.atomic import sha256sum
from ..io.store import CoefficientStore
from ..models.checkpoint import load_model
from ..models.compressor import VAECompressor
from ..models.apply import check_compatible, fit_latent_prior
from ..progress import Stages
from ..wst.symmetry import exact_symmetry_permutations
from ..wst.layout import CoefficientLayout
from . import registry
from .bootstrap import N_RESAMPLES, bootstrap, floor_terms, row_terms
from .figure_data import PRIOR_SEP, figure_data
from .linear import FAMILIES, PCA_CURVE_SIZES, PCAFits, choose_linear, family_of, make, pca_rmse_curve
from .metrics import generative_metrics, leave_one_out_means, noise_floor, reconstruction_metrics, rmse, standardised_rmse
from .physics import label_regression, label_targets
from .results import write_results
from .scored_rows import ScoredRows, check_scored_store, split_description, split_rows
from .tables import markdown_table

# write_results and markdown_table live in .results and .tables; the command line imports them from here too.
__all__ = ["evaluate", "markdown_table", "pca_rmse_curve", "write_results"]

BASELINES = ("rwst1", "rwst2", "pca", "pca-sym", "rrr", "rrr-sym")
DEFAULT_BASELINES = defaults.EVALUATE_BASELINES
#: Test patches whose reconstructions are kept for figures.
N_EXAMPLES = 4

#: What the map-level target is, as results state it.
MAP_MEAN_TARGET = ("leave-one-out: the mean vector of the other test patches of the patch's map "
                   "(maps with one test patch have none)")


def _timed(func, *args):
    tic = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - tic


def _compressors(store: CoefficientStore, split: ScoredRows, checkpoints, baselines, device: str,
                 notes: list[str], inputs: dict, sizes: Sequence[int] | None = None) -> list[tuple[Compressor, dict]]:
    layout = CoefficientLayout.from_attrs(store.attrs)
    fingerprint = store.fingerprint()
    found: list[tuple[Compressor, dict]] = []
    for ckpt in checkpoints:
        model, payload = load_model(ckpt, device)
        check_compatible(store, payload, str(ckpt))
        trained_on = payload.get("store_fingerprint")
        held_out = True
        if trained_on is not None and trained_on != fingerprint:
            notes.append(f"{model.name} was trained on another store than the one evaluated; its test split may not be held out")
        elif trained_on == fingerprint and store.split is None:
            notes.append(f"NOT HELD OUT: {model.name} was trained on rows of this unsplit store, all of which are "
                         "evaluated as test rows; its numbers measure fit, not generalisation")
            held_out = False
        found.append((VAECompressor(model), {"checkpoint": str(ckpt), "best_epoch": payload.get("best_epoch"),
                                             "model_config": payload.get("model_config"),
                                             "train_config": payload.get("train_config"), "held_out": held_out}))
        best = ckpt if Path(ckpt).is_file() else Path(ckpt) / "best.pt"
        inputs["checkpoints"][model.name] = {"path": str(ckpt), "sha256": sha256sum(best)}
    if "rwst1" in baselines:
        found.append((RWSTCompressor(1, layout), {}))
    if "rwst2" in baselines:
        found.append((RWSTCompressor(2, layout), {}))
    if sizes is None:
        sizes = {c.latent_dim for c, _ in found if registry.is_vae(c.name)} or set(registry.REFERENCE_SIZES)
    sizes = sorted(set(sizes), reverse=True)
    for family in [b for b in baselines if b in FAMILIES]:
        if split.train is None:
            notes.append(f"{family} skipped: the store has no training split to fit it on")
            continue
        too_big = [d for d in sizes if d > min(split.train.coeffs.shape)]
        if too_big:
            notes.append(f"{family}-{f', {family}-'.join(map(str, too_big))} skipped: the training split has only "
                         f"{len(split.train)} vectors")
        found.extend((make(family, d, layout), {}) for d in sizes if d not in too_big)
    map_sizes = {c.latent_dim for c, _ in found if isinstance(c, VAECompressor) and c.model.target == "map"}
    permutations = exact_symmetry_permutations(layout)
    for family, kind in (("rrr", ReducedRankRegression), ("rrr-sym", SymmetricReducedRankRegression)):
        rrr_sizes = (set(sizes) if family in baselines else set()) | map_sizes
        if map_sizes - (set(sizes) if family in baselines else set()):
            notes.append(f"{family} added at the sizes of the map-target models: a linear optimum they are paired with")
        if split.train is not None:  # the linear optimum for the map-level target (with the symmetries: rrr-sym)
            found.extend((kind(d) if kind is ReducedRankRegression else kind(d, permutations), {})
                         for d in sorted(rrr_sizes, reverse=True) if d <= min(split.train.coeffs.shape))
    rank = {c.name: registry.sort_key(c.name) for c, _ in found}
    return sorted(found, key=lambda item: rank[item[0].name])


def evaluate(store: CoefficientStore, checkpoints: Sequence[str | Path] = (), baselines: Sequence[str] = DEFAULT_BASELINES,
             *, store_path: str | Path | None = None, device: str = "cpu", seed: int = 0,
             notes: list[str] | None = None, labels: bool = True, progress: bool = False,
             n_resamples: int = N_RESAMPLES, on: CoefficientStore | None = None,
             on_path: str | Path | None = None, sizes: Sequence[int] | None = None, generative: bool = True) -> dict:
    """Compare compressors on the store's test split; return the results dictionary.

    Every compressor gets, on the test rows: RMSE in log2 units and in the
    per-coefficient standardised space (training split's mean and spread;
    a PCA row's standardised RMSE is that of the PCA fitted in that space,
    recorded with the log2 fit's under ``fits``), RMSE against each patch's
    leave-one-out map mean (the mean of the other test patches of its map:
    physics kept rather than the patch's own noise; patches alone in their
    map left out), relative errors per field, layer and scale, and timings
    (rows of one PCA family share one SVD, whose time each reports as
    ``fit_seconds``); VAEs also the generative check. Beside them: the
    within-map scatter of the test vectors (``noise_floor``,
    :func:`~dustvae.analysis.metrics.noise_floor`), the identity row (each
    patch itself against its leave-one-out map mean), the linear baseline
    each size is paired with (``linear_baseline``,
    :func:`~dustvae.analysis.linear.choose_linear`) and, when the store has
    labels and a training split, the held-out score (R^2, or ROC AUC for
    binary labels) of each label regressed on each compressor's code
    (:mod:`dustvae.analysis.physics`). When the test rows come from two maps
    or more, ``bootstrap`` holds intervals over test maps of each
    compressor's figures, of the within-map scatter and of the identity
    row, and paired differences between compressors
    (:mod:`dustvae.analysis.bootstrap`).

    Parameters
    ----------
    store : CoefficientStore
        A split store (``make-dataset``) or an unsplit one (all test data;
        PCA and the label regression are then skipped, as they have nothing
        to train on).
    checkpoints : paths
        Trained VAE checkpoints; PCA runs at each of their latent sizes.
    baselines : names
        Any of ``rwst1``, ``rwst2``, ``pca``, ``pca-sym`` (PCA fitted with the
        grid's exact symmetries, :mod:`dustvae.analysis.linear`), ``rrr``
        (reduced-rank regression to the leave-one-out map mean,
        :mod:`dustvae.baselines.rrr`), ``rrr-sym`` (the same fitted with the
        grid's symmetries). Map-target models bring ``rrr`` and ``rrr-sym``
        at their sizes.
    seed : int
        Seed of the prior samples and of the bootstrap's resamples.
    labels : bool
        Regress the store's labels on the codes (default). Off for quick
        evaluations such as latent-size sweeps.
    progress : bool
        Show a progress bar over the stages (the seconds of each are
        recorded under ``timings`` whether shown or not).
    n_resamples : int
        Bootstrap resamples of the test maps.
    on : CoefficientStore, optional
        Score on every row of this store instead of the test split
        (another simulator, an MHD simulation, the real sky); everything is
        still fitted and chosen on ``store``. Its layout must be ``store``'s.
    on_path : path, optional
        Where ``on`` was read from, for the record.
    sizes : ints, optional
        Latent sizes of the linear baselines [default: those of the VAEs
        given, or 170 and 85 without one].
    generative : bool
        Run the VAEs' generative check (default). Off for rate-distortion curves.
    """
    if n_resamples < 1:
        raise DustvaeError(f"the bootstrap needs at least one resample, not {n_resamples}")
    notes = notes if notes is not None else []
    bad = ~np.isfinite(store.coeffs).all(axis=1)
    if bad.any():
        raise DustvaeError(f"the store holds NaN or inf in {int(bad.sum())} vector(s) (first: row {int(np.flatnonzero(bad)[0])}); "
                           "recompute it or drop those patches")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise DustvaeError(f"unknown baseline(s) {', '.join(unknown)}; choose among {', '.join(BASELINES)}")
    layout = CoefficientLayout.from_attrs(store.attrs)
    if on is not None:
        check_scored_store(store, on, notes)
    split = split_rows(store, notes, on)
    train = split.train
    inputs = {"checkpoints": {}}
    compressors = _compressors(store, split, checkpoints, baselines, device, notes, inputs, sizes)
    if not compressors:  # refused before any work: a results file must compare something
        raise DustvaeError("nothing to compare: no model given and no baseline left"
                           + (f" ({'; '.join(notes)})" if notes else "") + "; pass `model` or `baselines`")
    pca_sizes = [c.latent_dim for c, _ in compressors if isinstance(c, PCACompressor)]
    families = [b for b in baselines if b in FAMILIES] if train is not None else []
    curve_sizes = [d for d in PCA_CURVE_SIZES if d <= min(train.coeffs.shape)] if families else []
    has_labels = labels and train is not None and bool(label_targets(store.labels)[0])
    n_vaes = sum(isinstance(c, VAECompressor) for c, _ in compressors) if generative else 0
    resampled = bool(compressors) and len(np.unique(split.groups)) > 1
    stages = Stages(2 + labels + bool(pca_sizes or curve_sizes) + bool(curve_sizes) + resampled
                    + len(compressors) * (1 + has_labels) + n_vaes, "evaluate", progress)
    with stages:
        results = _evaluate(store, split, layout, compressors, pca_sizes, curve_sizes, families, labels, notes, seed,
                            stages, n_resamples if resampled else 0, on is not None, generative)
    scored = {}
    if on is not None:
        scored = {"scored_store": str(on_path) if on_path else None,
                  "scored_store_sha256": sha256sum(on_path) if on_path else None,
                  "scored_store_fingerprint": on.fingerprint()}
    return {**results, "inputs": {"store": str(store_path) if store_path else None,
                                  "store_sha256": sha256sum(store_path) if store_path else None, **scored,
                                  "store_fingerprint": store.fingerprint(), "layout": layout.to_attrs(),
                                  "n_train": int(len(train)) if train is not None else 0, **inputs},
            "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "device": device},
            "timings": {"stages_seconds": stages.seconds, "total_seconds": sum(stages.seconds.values())}}


def _evaluate(store: CoefficientStore, split: ScoredRows, layout: CoefficientLayout, compressors: list, pca_sizes: list[int],
              curve_sizes: list[int], families: list[str], labels: bool, notes: list[str], seed: int, stages: Stages,
              n_resamples: int, scored: bool = False, generative: bool = True) -> dict:
    """The work of :func:`evaluate`, stage by stage (no bootstrap when ``n_resamples`` is 0)."""
    test, train = split.test, split.train
    with stages.stage("within-map scatter"):
        floor = noise_floor(test.coeffs, test.map_index, layout, split.scale)
    if floor is None:
        notes.append("within-map scatter and errors against the map mean skipped: no test map has two patches")
    elif len(np.unique(test.map_index)) == 1:
        notes.append("the test rows come from one map: the within-map scatter then holds the physical variation "
                     "across that map as well as realisation noise")
    lone = int((~np.isfinite(split.map_mean).all(1)).sum())
    if floor is not None and lone:
        notes.append(f"{lone} test patch(es) are their map's only test patch: they have no leave-one-out map mean "
                     "and are left out of the errors against the map mean")
    identity = None
    if floor is not None:  # the patch itself against its leave-one-out target, measured like every compressor
        identity = row_terms(test.coeffs, test.coeffs, layout, split.scale, split.map_mean)
    regression = None
    if labels:
        with stages.stage("label targets"):
            regression = label_regression(store, split.train, notes, test if scored else None)

    results: dict[str, dict] = {}
    examples = {"test_rows": list(range(min(N_EXAMPLES, len(test)))), "truth": test.coeffs[:N_EXAMPLES].tolist()}
    recon_examples: dict[str, list] = {}
    samples: dict[str, np.ndarray] = {}  # the prior samples scored, kept (as bands) for the prior-sample figure
    vae_codes: dict[str, np.ndarray] = {}
    terms: dict[str, dict] = {}  # per-row sums of each figure, for the bootstrap
    pcas, linear = None, None
    if pca_sizes or curve_sizes:
        with stages.stage("PCA fits"):
            pcas = PCAFits.fit(train.coeffs.astype(np.float64), split.standardise, pca_sizes + curve_sizes, families, layout)
            linear = choose_linear(pcas, sorted(set(pca_sizes)), split.validation)
    for compressor, extra in compressors:
        with stages.stage(compressor.name):
            row, latent, recon, compressor, terms[compressor.name] = _score(compressor, extra, split, layout, floor, pcas)
        if isinstance(compressor, VAECompressor):
            vae_codes[compressor.name] = latent  # posterior means: the latent-space figure's points
        if isinstance(compressor, VAECompressor) and generative:
            with stages.stage(f"{compressor.name} generative"):
                row.update(_generative(compressor, split, seed, samples))
        if regression is not None:
            with stages.stage(f"{compressor.name} label regression"):
                row["label_r2"] = regression.r2(compressor.encode(train.coeffs), latent)
        results[compressor.name] = row
        recon_examples[compressor.name] = np.asarray(recon[:N_EXAMPLES], np.float64).tolist()
    examples["reconstructions"] = recon_examples
    vaes = {c.name: c for c, _ in compressors if isinstance(c, VAECompressor)}
    with stages.stage("figure data"):
        figures = figure_data(vaes, vae_codes, test.coeffs, test.labels, samples)
    boot = None
    if n_resamples:
        with stages.stage("bootstrap"):
            boot = bootstrap(terms, split.groups, {n: r["latent"] for n, r in results.items()},
                             # the scatter's terms are per map: no interval when patches are the unit
                             floor_terms(test.coeffs, test.map_index, split.scale)
                             if floor is not None and np.array_equal(split.groups, test.map_index) else None,
                             n_resamples=n_resamples, seed=seed, identity=identity,
                             linear={int(k): v for k, v in linear["chosen"].items()} if linear else None,
                             **({} if np.array_equal(split.groups, test.map_index) else {"unit": "scored patch"}))
    elif results:
        notes.append("bootstrap intervals skipped: the test rows come from one map, and maps are what it resamples")
    curves: dict[str, dict] = {}
    if curve_sizes:
        with stages.stage("PCA curve"):
            for family in pcas.log2:
                key = "pca" if family == "pca" else family.replace("-", "_")
                curves[f"{key}_curve"] = pca_rmse_curve(pcas.log2[family], test.coeffs, curve_sizes)
                curves[f"{key}_curve_std"] = pca_rmse_curve(pcas.standardised[family], split.standardise(test.coeffs),
                                                            curve_sizes)

    import kymatio
    import sklearn
    import torch

    return {
        "compressors": results,
        "test": {"n_patches": len(test), "n_maps": int(len(np.unique(test.map_index))),
                 "split": split_description(store, scored), "map_mean_target": MAP_MEAN_TARGET,
                 "resampled": "map" if np.array_equal(split.groups, test.map_index) else "patch",
                 "patches_with_map_mean": int(len(test) - lone)},
        "noise_floor": floor,
        "identity": _identity_row(identity) if identity is not None else None,
        "linear_baseline": linear,
        "bootstrap": boot,
        "label_regression": regression.summary() if regression is not None else None,
        "versions": {"dustvae": __version__, "kymatio": kymatio.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "notes": notes,
        "pca_curve": curves.get("pca_curve", {}),
        "pca_curve_std": curves.get("pca_curve_std", {}),
        **{k: v for k, v in curves.items() if not k.startswith("pca_curve")},
        "examples": examples,
        "figure_data": figures,
    }


def _score(compressor: Compressor, extra: dict, split: ScoredRows, layout: CoefficientLayout, floor: dict | None,
           pcas: "PCAFits | None") -> tuple[dict, np.ndarray, np.ndarray, Compressor, dict]:
    """One compressor's metrics and timings on the test rows.

    Returns (row, codes, reconstructions, the fitted compressor, the per-row
    sums of its figures for the bootstrap).
    """
    test, train = split.test, split.train
    fit_seconds = 0.0
    family = family_of(compressor) if isinstance(compressor, PCACompressor) else None
    if family is not None:
        compressor, fit_seconds = pcas.row(family, compressor.latent_dim)
    elif isinstance(compressor, ReducedRankRegression):  # regressed on the training rows' leave-one-out map means
        target = leave_one_out_means(train.coeffs, train.map_index)
        has = np.isfinite(target).all(1)
        _, fit_seconds = _timed(compressor.fit, train.coeffs[has], target[has])
    elif compressor.needs_training:
        _, fit_seconds = _timed(compressor.fit, train.coeffs)
    latent, encode_seconds = _timed(compressor.encode, test.coeffs)
    recon, decode_seconds = _timed(compressor.decode, latent)
    row = {"latent": int(compressor.latent_dim), **reconstruction_metrics(test.coeffs, recon, layout),
           "rmse_std": standardised_rmse(test.coeffs, recon, split.scale)}
    has = np.isfinite(split.map_mean).all(1)  # rows with a leave-one-out target
    if floor is not None and has.any():
        row["rmse_to_map_mean_log2"] = rmse(recon[has], split.map_mean[has])
        row["rmse_to_map_mean_std"] = standardised_rmse(split.map_mean[has], recon[has], split.scale)
    recon_std_fit = None
    if family is not None:
        recon_std_fit = pcas.standardised_recon(family, compressor.latent_dim, test.coeffs.astype(np.float64),
                                                split.mean, split.scale)
        std_fit = {"rmse_log2": rmse(recon_std_fit, test.coeffs),
                   "rmse_std": standardised_rmse(test.coeffs, recon_std_fit, split.scale)}
        row["fits"] = {"log2": {"rmse_log2": row["rmse_log2"], "rmse_std": row["rmse_std"]}, "standardised": std_fit}
        row["rmse_std"] = std_fit["rmse_std"]
        if floor is not None and has.any():
            row["rmse_to_map_mean_std"] = standardised_rmse(split.map_mean[has], recon_std_fit[has], split.scale)
    row.update({"fit_seconds": fit_seconds, "encode_ms_per_patch": 1e3 * encode_seconds / len(test),
                "decode_ms_per_patch": 1e3 * decode_seconds / len(test), **extra})
    terms = row_terms(test.coeffs, recon, layout, split.scale, split.map_mean if floor is not None else None, recon_std_fit)
    return row, latent, recon, compressor, terms


def _identity_row(identity: dict) -> dict:
    """The identity reference row: each test patch itself scored against its leave-one-out map mean."""
    out = {}
    for key in ("rmse_to_map_mean_log2", "rmse_to_map_mean_std"):
        sums, count = identity[key]
        out[key] = float(np.sqrt(sums.sum() / np.sum(count))) if np.sum(count) else None
    return out


def _generative(compressor: VAECompressor, split: ScoredRows, seed: int, samples: dict[str, np.ndarray]) -> dict:
    """The generative check of a VAE: prior samples against the test vectors, with N(0, I) and the fitted prior.

    The samples are added to ``samples`` (``name``, ``name|fitted``) for the figures.
    """
    test, train = split.test, split.train
    name = compressor.name
    samples[name] = compressor.sample(len(test), seed)
    reference = train.coeffs if train is not None else test.coeffs
    out = {"generative": generative_metrics(samples[name], test.coeffs, reference, split.scale)}
    if train is not None:  # the ex-post density of the training posterior means (dustvae fit-prior)
        fitted = fit_latent_prior(compressor.model, train.coeffs, seed=seed)
        samples[name + PRIOR_SEP + "fitted"] = compressor.sample(len(test), seed, fitted)
        out["generative_fitted"] = {**generative_metrics(samples[name + PRIOR_SEP + "fitted"], test.coeffs,
                                                         reference, split.scale),
                                    "prior": fitted.summary(), "components": fitted.n_components}
    return out
