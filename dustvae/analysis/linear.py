"""The linear baselines of an evaluation: PCA and symmetric PCA fits, their curves, and which one each size is paired with.

Each kind of PCA is fitted once per space (log2 and standardised) at the
largest size needed; every smaller size truncates that fit. Plain PCA
(``pca-D``) is fitted on the training split, symmetric PCA (``pca-sym-D``)
on the training split augmented by the grid's exact symmetries
(:class:`~dustvae.baselines.pca.SymmetricPCACompressor`). The learned
compressors of a size are paired with the better of the two on the
validation split (never the test split, which would pick the winner on the
data it is scored on); without a validation split both pairs are reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..baselines import PCACompressor, SymmetricPCACompressor
from ..numerics import rmse
from ..wst.layout import CoefficientLayout
from ..wst.symmetry import exact_symmetry_permutations

#: Latent sizes of the PCA curves in the error-against-latent-size figure.
PCA_CURVE_SIZES = (4, 8, 16, 32, 64, 85, 128, 170, 256, 340)
#: Baseline names of ``--baselines`` and the compressor family each adds.
FAMILIES = {"pca": "pca", "pca-sym": "pca-sym"}


def pca_rmse_curve(pca: PCACompressor, test: np.ndarray, sizes=PCA_CURVE_SIZES) -> dict[str, float]:
    """Test RMSE of a fitted PCA truncated to each size, in the units of the arrays it was fitted on."""
    return {str(d): rmse(pca.truncated(d).reconstruct(test), test) for d in sizes if d <= pca.latent_dim}


def make(family: str, latent_dim: int, layout: CoefficientLayout) -> PCACompressor:
    """An unfitted compressor of ``family`` (``pca`` or ``pca-sym``)."""
    if family == "pca-sym":
        return SymmetricPCACompressor(latent_dim, exact_symmetry_permutations(layout))
    return PCACompressor(latent_dim)


@dataclass
class PCAFits:
    """Per family, one SVD per space (log2 and standardised) at the largest size needed.

    Attributes
    ----------
    log2, standardised : {family: fitted compressor}
        Fits on the training vectors and on their standardised values.
    seconds : {family: float}
        Time of the log2 fit, which every log2 row of that family shares.
    """

    log2: dict[str, PCACompressor]
    standardised: dict[str, PCACompressor]
    seconds: dict[str, float]

    @classmethod
    def fit(cls, train: np.ndarray, standardise, sizes: Sequence[int], families: Sequence[str],
            layout: CoefficientLayout) -> "PCAFits":
        """Fit each family on ``train`` (log2) and ``standardise(train)``, at the largest of ``sizes``."""
        largest = max(sizes)
        log2, std, seconds = {}, {}, {}
        # One BLAS thread: these SVDs take seconds at most on one core, while threads competing for
        # busy cores made them 4 to 27 times slower than that in our measurements.
        with threadpool_limits(1, user_api="blas"):
            for family in families:
                tic = time.perf_counter()
                log2[family] = make(family, largest, layout).fit(train)
                seconds[family] = time.perf_counter() - tic
                std[family] = make(family, largest, layout).fit(standardise(train))
        return cls(log2, std, seconds)

    def row(self, family: str, latent_dim: int) -> tuple[PCACompressor, float]:
        """The log2 fit of ``family`` at ``latent_dim``, and the seconds of its fit."""
        return self.log2[family].truncated(latent_dim), self.seconds[family]

    def standardised_recon(self, family: str, latent_dim: int, test: np.ndarray, mean: np.ndarray,
                           scale: np.ndarray) -> np.ndarray:
        """Reconstruction (log2 units) of ``test`` by the fit of ``family`` in the standardised space."""
        recon = self.standardised[family].truncated(latent_dim).reconstruct((test - mean) / scale)
        return recon * scale + mean


def family_of(compressor: PCACompressor) -> str:
    """``pca-sym`` or ``pca``."""
    return "pca-sym" if isinstance(compressor, SymmetricPCACompressor) else "pca"


def choose_linear(fits: PCAFits, sizes: Sequence[int], validation: np.ndarray | None) -> dict:
    """Per size, the linear baseline the learned compressors are paired with, chosen by validation RMSE (log2).

    Returns the results file's ``linear_baseline`` section: ``by`` (how the
    choice was made), ``chosen`` (``{size: name}``, empty without a
    validation split or with one family only) and ``validation_rmse_log2``
    (``{name: rmse}``).
    """
    if validation is None or len(validation) == 0 or len(fits.log2) < 2:
        why = "no validation split" if validation is None or len(validation) == 0 else "one linear family"
        return {"by": f"none ({why}): learned compressors are paired with every linear baseline of their size",
                "chosen": {}, "validation_rmse_log2": {}}
    scores = {f"{family}-{d}": rmse(fit.truncated(d).reconstruct(validation), validation)
              for family, fit in fits.log2.items() for d in sizes if d <= fit.latent_dim}
    chosen = {}
    for d in sizes:
        candidates = [f"{family}-{d}" for family in fits.log2 if f"{family}-{d}" in scores]
        if candidates:
            chosen[str(d)] = min(candidates, key=scores.__getitem__)
    return {"by": "lower RMSE (log2) on the validation split", "chosen": chosen, "validation_rmse_log2": scores}
