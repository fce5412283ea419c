"""What the model figures draw, computed once by the evaluation and kept in the results file.

The latent-space, interpolation and prior-sample figures show a VAE's
codes, a path decoded between two codes, and the spread of vectors decoded
from prior draws. The evaluation already holds the models, the test codes
and the prior samples it scores, so it keeps what those figures need
(section ``figure_data`` of results.json, version 6 on) and
:func:`dustvae.analysis.figure_set.make_figures` only draws: it loads no
model and computes nothing again.

Vectors are kept to 1e-4 (log2 units): far below what a figure resolves.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .physics import NOT_PHYSICAL

#: Percentiles of the per-coefficient bands the prior-sample figure draws (the median and a 68 % range).
PERCENTILES = (16, 50, 84)
#: Points on the decoded latent line between two test patches (ends included).
INTERPOLATION_STEPS = 9
#: How prior-sample entries are keyed: ``NAME`` for N(0, I) draws, ``NAME + PRIOR_SEP + "fitted"`` for the fitted prior.
PRIOR_SEP = "|"
#: Decimals kept of log2 vectors.
DECIMALS = 4


def main_vae(names) -> str:
    """The VAE the latent-space and interpolation figures show: VAE-2 (``vae-85``) when present."""
    names = list(names)
    return "vae-85" if "vae-85" in names else sorted(names)[0]


def _rounded(values: np.ndarray) -> list:
    return np.round(np.asarray(values, np.float64), DECIMALS).tolist()


def percentile_bands(vectors: np.ndarray) -> dict[str, list]:
    """Per-coefficient percentiles (:data:`PERCENTILES`) of ``(N, D)`` vectors: ``{"p16": [...], ...}``."""
    bands = np.percentile(np.asarray(vectors, np.float64), PERCENTILES, axis=0)
    return {f"p{p}": _rounded(band) for p, band in zip(PERCENTILES, bands)}


def latent_projection(means: np.ndarray) -> np.ndarray:
    """Latent means ``(N, d)`` projected on their two principal axes ``(N, 2)``."""
    centered = np.asarray(means, np.float64) - np.mean(means, axis=0)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[:2].T


def varying_labels(labels: Mapping[str, np.ndarray]) -> dict[str, list]:
    """The physical labels that vary over the rows, as lists (what the latent-space figure colours by)."""
    return {k: np.asarray(v, np.float64).tolist() for k, v in labels.items()
            if k not in NOT_PHYSICAL and np.ptp(np.asarray(v, np.float64)) > 0}


def interpolation_ends(test: np.ndarray) -> tuple[int, int]:
    """The first test row and the one most different from it: the ends of the drawn latent line."""
    return 0, int(np.argmax(np.linalg.norm(test - test[0], axis=1)))


def figure_data(vaes: Mapping[str, object], codes: Mapping[str, np.ndarray], test_coeffs: np.ndarray,
                test_labels: Mapping[str, np.ndarray], samples: Mapping[str, np.ndarray]) -> dict:
    """The ``figure_data`` section: latent projection and interpolation of the main VAE, prior-sample bands.

    Empty without VAEs.

    Parameters
    ----------
    vaes : mapping
        Name -> :class:`~dustvae.models.compressor.VAECompressor` of the evaluated VAEs.
    codes : mapping
        Name -> the posterior means of the scored vectors, as the evaluation encoded them.
    test_coeffs : ndarray (N, D)
        The scored vectors.
    test_labels : mapping
        Their simulation labels (may be empty).
    samples : mapping
        ``name`` (N(0, I) draws) or ``name`` + :data:`PRIOR_SEP` + ``fitted`` (fitted-prior draws) ->
        decoded vectors, as the evaluation scored them.
    """
    from ..models.apply import interpolate_array

    if not vaes:  # nothing of a model to draw
        return {}
    out: dict = {"prior_samples": {"percentiles": list(PERCENTILES), "data": percentile_bands(test_coeffs),
                                   **{k: percentile_bands(v) for k, v in samples.items()}}}
    name = main_vae(vaes)
    model = vaes[name].model
    labels = varying_labels(test_labels)
    if labels:
        out["latent_space"] = {"model": name, "xy": _rounded(latent_projection(codes[name])), "labels": labels}
    a, b = interpolation_ends(test_coeffs)
    path, weights = interpolate_array(model, test_coeffs[[a, b]], INTERPOLATION_STEPS)
    out["interpolation"] = {"model": name, "rows": [a, b], "weights": np.asarray(weights, np.float64).tolist(),
                            "path": _rounded(path), "ends": _rounded(test_coeffs[[a, b]])}
    return out
