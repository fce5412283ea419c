"""Bootstrap intervals over test maps for the reported figures, and paired differences between compressors.

Patches of one map share its physics and are correlated, so the unit of
resampling is the test map: each resample draws as many maps as there are,
with replacement, and keeps all patches of every map drawn. Every figure
reported for a compressor is a ratio of sums over test rows (a mean of
squared errors under a root, or a mean of relative errors), so one pass
over the rows gives per-map sums, and each resample is a weighted sum of
those: the resamples of every figure of every compressor are one matrix
product with the (resamples x maps) count matrix, and take milliseconds.
All compressors are scored on the same resamples, which pairs them: the
interval of a difference between two compressors is the percentile
interval of that difference over the resamples.
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping

import numpy as np

from ..wst.layout import CoefficientLayout
from . import registry

#: Resamples of the test maps, and the two-sided level of the percentile intervals.
N_RESAMPLES = 2000
LEVEL = 0.95
#: Figures with intervals: row keys of a compressor (``rmse_log2_layerK``: ``per_layer[K]["rmse_log2"]``).
METRICS = ("rmse_log2", "rmse_std", "rmse_to_map_mean_log2", "rmse_to_map_mean_std", "rel_err_s1",
           "rel_err_s2_over_s1", "rmse_log2_layer1", "rmse_log2_layer2")
#: The within-map scatter's figures (results key ``noise_floor``) with intervals.
FLOOR_METRICS = ("rmse_log2", "rmse_std")

#: Per metric, the per-row sums of its terms and the number of terms per row (one number, or one per row).
RowTerms = Mapping[str, tuple[np.ndarray, "int | np.ndarray"]]
#: Figures of the identity reference row (each patch against its leave-one-out map mean).
IDENTITY_METRICS = ("rmse_to_map_mean_log2", "rmse_to_map_mean_std")


def row_terms(truth: np.ndarray, recon: np.ndarray, layout: CoefficientLayout, scale: np.ndarray,
              map_mean: np.ndarray | None = None, recon_std: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, int]]:
    """Per test row, the sums whose ratios over rows are the compressor's figures.

    Parameters
    ----------
    truth, recon : (N, D) arrays
        Test vectors and their reconstructions (log2 units).
    layout : CoefficientLayout
        Where the layers are.
    scale : (D,) array
        The training spread of the standardised figures.
    map_mean : (N, D) array, optional
        Each row's map-level target (leave-one-out map mean, NaN where the
        map has no other patch); without it the map-mean figures are left out.
    recon_std : (N, D) array, optional
        The reconstruction the standardised figures use when it differs
        (PCA fitted in the standardised space).
    """
    truth = np.asarray(truth, np.float64)
    recon = np.asarray(recon, np.float64)
    recon_std = recon if recon_std is None else np.asarray(recon_std, np.float64)
    delta = recon - truth
    s1, s2 = layout.select(layer=1), layout.select(layer=2)
    sq = delta**2
    out = {"rmse_log2": (sq.sum(1), delta.shape[1]),
           "rmse_std": ((((recon_std - truth) / scale) ** 2).sum(1), delta.shape[1]),
           "rel_err_s1": (np.abs(np.exp2(delta[:, s1]) - 1.0).sum(1), len(s1)),
           "rel_err_s2_over_s1": (np.abs(np.exp2(delta[:, s2]) - 1.0).sum(1), len(s2)),
           "rmse_log2_layer1": (sq[:, s1].sum(1), len(s1)), "rmse_log2_layer2": (sq[:, s2].sum(1), len(s2))}
    if map_mean is not None:  # rows without a target (a map's only patch) add nothing, terms nor count
        has = np.isfinite(map_mean).all(1)
        target = np.where(has[:, None], map_mean, 0.0)
        count = has * delta.shape[1]
        out["rmse_to_map_mean_log2"] = (np.where(has, ((recon - target) ** 2).sum(1), 0.0), count)
        out["rmse_to_map_mean_std"] = (np.where(has, (((recon_std - target) / scale) ** 2).sum(1), 0.0), count)
    return out


def floor_terms(truth: np.ndarray, map_index: np.ndarray, scale: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per test map, the unbiased within-map variance (of the within-map scatter) and whether the map counts (two patches or more).

    The floor (:func:`~dustvae.analysis.metrics.noise_floor`) is the root of
    the mean of these over the maps that count; returned as (numerator,
    denominator) per map in the order of ``np.unique(map_index)``.
    """
    truth = np.asarray(truth, np.float64)
    _, inverse, counts = np.unique(map_index, return_inverse=True, return_counts=True)
    means = np.zeros((len(counts), truth.shape[1]))
    np.add.at(means, inverse, truth)
    resid = truth - (means / counts[:, None])[inverse]
    ok = (counts >= 2).astype(np.float64)
    out = {}
    for name, r in (("rmse_log2", resid), ("rmse_std", resid / scale)):
        ss = np.bincount(inverse, weights=(r**2).sum(1), minlength=len(counts))
        out[name] = (ok * ss / (np.maximum(counts - 1, 1) * truth.shape[1]), ok)
    return out


def resample_maps(n_maps: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """Indices of the maps drawn by each resample, (n_resamples, n_maps), seeded."""
    return np.random.default_rng(seed).integers(0, n_maps, size=(n_resamples, n_maps))


def map_counts(draws: np.ndarray, n_maps: int) -> np.ndarray:
    """How often each map is drawn in each resample, (n_resamples, n_maps) float64."""
    rows = draws + n_maps * np.arange(len(draws))[:, None]
    return np.bincount(rows.ravel(), minlength=len(draws) * n_maps).reshape(len(draws), n_maps).astype(np.float64)


def by_map(terms: RowTerms, map_index: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-row sums added up per map (maps in the order of ``np.unique(map_index)``): (numerator, denominator)."""
    maps, inverse = np.unique(map_index, return_inverse=True)
    per_map = np.bincount(inverse, minlength=len(maps)).astype(np.float64)
    return {k: (np.bincount(inverse, weights=s, minlength=len(maps)),
                per_map * n if np.ndim(n) == 0 else np.bincount(inverse, weights=n, minlength=len(maps)))
            for k, (s, n) in terms.items()}


def resampled(sums: Mapping[str, tuple[np.ndarray, np.ndarray]], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each figure on each resample, (n_resamples,) per metric; RMSEs under their root."""
    out = {}
    for k, (num, den) in sums.items():
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample of only one-patch maps has no target: NaN
            value = (counts @ num) / (counts @ den)
        out[k] = np.sqrt(value) if k.startswith("rmse") else value
    return out


def _bounds(values: np.ndarray, level: float) -> list[float]:
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


#: Families of the linear baselines that learned compressors are paired with.
LINEAR = ("pca", "pca-sym")


def reported_pairs(names: list[str], latents: Mapping[str, int],
                   linear: Mapping[int, str] | None = None) -> list[tuple[str, str]]:
    """The comparisons the tables show.

    Each compressor that is not a linear baseline against the linear
    baseline of its size: the one ``linear`` names for that size (chosen on
    the validation split), else both ``pca-D`` and ``pca-sym-D`` where
    present, and a map-target model (``+map``) also against ``rrr-D``;
    ``pca-sym-D`` against ``pca-D``; each table VAE against RWST
    Model 2.
    """
    linear = {int(k): v for k, v in (linear or {}).items()}
    pairs = []
    for n in names:
        if registry.parse(n).family in LINEAR:
            continue
        size = latents[n]
        chosen = [linear[size]] if size in linear else [f"{family}-{size}" for family in LINEAR]
        if "map" in (registry.parse(n).variant or "").split("+"):  # the map target's linear optima too
            chosen += [f"rrr-{size}", f"rrr-sym-{size}"]
        pairs += [(n, b) for b in chosen if b in names]
    pairs += [(n, f"pca-{latents[n]}") for n in names
              if registry.parse(n).family == "pca-sym" and f"pca-{latents[n]}" in names]
    pairs += [(n, "rwst2") for n in names if n in ("vae-170", "vae-85") and "rwst2" in names]
    return pairs


def bootstrap(terms: Mapping[str, RowTerms], map_index: np.ndarray, latents: Mapping[str, int],
              floor: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None, *, n_resamples: int = N_RESAMPLES,
              seed: int = 0, level: float = LEVEL, identity: RowTerms | None = None,
              linear: Mapping[int, str] | None = None, unit: str = "test map (its patches resampled together)") -> dict:
    """Intervals of every compressor's figures and paired differences of every pair, over resamples of test maps.

    Parameters
    ----------
    terms : {name: row terms}
        :func:`row_terms` of each compressor on the same test rows.
    map_index : (N,) array
        Test map of each row.
    latents : {name: int}
        Latent size of each compressor (pairs with PCA of the same size).
    floor : optional
        :func:`floor_terms` of the test rows, for the within-map scatter's intervals.
    n_resamples, seed, level
        Resamples, their seed and the level of the percentile intervals.
    identity : row terms, optional
        :func:`row_terms` of the test vectors as their own reconstruction,
        for the intervals of the identity reference row.
    linear : {latent size: name}, optional
        The linear baseline each size's compressors are paired with
        (:func:`reported_pairs`).
    unit : str
        What one group of ``map_index`` is, in words (results' ``bootstrap.unit``).

    Returns
    -------
    dict
        The results file's ``bootstrap`` section: ``intervals``
        (``{name: {metric: [lo, hi]}}``), ``noise_floor`` (the within-map
        scatter's, ``{metric: [lo, hi]}``), ``identity`` (``{metric: [lo,
        hi]}``, the map-mean figures only) and ``paired`` (one entry per pair of compressors, the first minus
        the second: ``{"a", "b", "reported", "metrics": {metric:
        {"difference", "interval"}}}``; ``reported`` marks the pairs the
        tables show).
    """
    n_maps = len(np.unique(map_index))
    counts = map_counts(resample_maps(n_maps, n_resamples, seed), n_maps)
    ones = np.ones((1, n_maps))
    names = registry.ordered(terms)
    draws, points = {}, {}
    for n in names:
        sums = by_map(terms[n], map_index)
        draws[n] = resampled(sums, counts)
        points[n] = {k: float(v[0]) for k, v in resampled(sums, ones).items()}
    shown = set(reported_pairs(names, latents, linear))
    paired = []
    for a, b in combinations(names, 2):
        if (b, a) in shown:
            a, b = b, a
        common = [k for k in METRICS if k in draws[a] and k in draws[b]]
        paired.append({"a": a, "b": b, "reported": (a, b) in shown, "metrics": {
            k: {"difference": points[a][k] - points[b][k], "interval": _bounds(draws[a][k] - draws[b][k], level)}
            for k in common}})
    floor_draws = resampled(floor, counts) if floor is not None else {}
    identity_draws = {}
    if identity is not None:
        identity_draws = {k: v for k, v in resampled(by_map(identity, map_index), counts).items() if k in IDENTITY_METRICS}
    return {"n_resamples": int(n_resamples), "seed": int(seed), "level": level, "n_maps": int(n_maps),
            "unit": unit, "metrics": list(METRICS),
            "intervals": {n: {k: _bounds(v, level) for k, v in draws[n].items()} for n in names},
            "noise_floor": {k: _bounds(v, level) for k, v in floor_draws.items()},
            "identity": {k: _bounds(v, level) for k, v in identity_draws.items()},
            "paired": sorted(paired, key=lambda p: not p["reported"])}
