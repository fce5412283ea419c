"""The rows an evaluation scores and what every metric shares: the test split, or every row of another store.

:func:`split_rows` takes a store's test split (or, for ``evaluate --on``,
every row of another store, checked by :func:`check_scored_store`), its
training split, the training statistics of the standardised space, each
scored row's leave-one-out map mean, the validation vectors that choose
the paired linear baseline, and the bootstrap's unit of each row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DustvaeError
from ..io.store import CoefficientStore
from ..numerics import leave_one_out_means
from ..wst.layout import normalisation_code


@dataclass
class ScoredRows:
    """The rows an evaluation uses, and the training statistics every metric shares."""

    test: CoefficientStore
    train: CoefficientStore | None
    groups: np.ndarray  # the bootstrap's unit of each test row (its map, or the row itself)
    mean: np.ndarray  # per-coefficient centre of the standardised space
    scale: np.ndarray  # per-coefficient spread of the standardised space
    map_mean: np.ndarray  # each test row's leave-one-out map mean (NaN for a map's only patch)
    validation: np.ndarray | None  # validation vectors, only to choose the paired linear baseline

    def standardise(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mean) / self.scale


def split_rows(store: CoefficientStore, notes: list[str], on: CoefficientStore | None = None) -> ScoredRows:
    test = store.subset("test") if on is None else on
    if len(test) == 0:
        raise DustvaeError("the store's test split is empty; nothing to evaluate" if on is None else
                           "the store given to `on` holds no patch; nothing to evaluate")
    train = store.subset("train") if store.split is not None else None
    groups = test.map_index
    if on is not None:
        if train is None or len(train) < 2:
            raise DustvaeError("`on` scores compressors fitted on the training split of COEFFS, which has none; "
                               "give a store made by make-dataset or compute-wst --split")
        if len(np.unique(on.map_index)) < 2:
            groups = np.arange(len(on))
            notes.append("the scored store holds one map: intervals resample its patches, which are correlated on "
                         "one sky, so they are narrower than intervals over maps would be")
    reference = (train if train is not None and len(train) > 1 else test).coeffs.astype(np.float64)
    if train is None:
        notes.append("standardised errors use the test set's own mean and spread: the store has no training split")
    scale = reference.std(0)
    if (scale == 0).any():
        notes.append(f"{int((scale == 0).sum())} coefficient(s) are constant in the training split; "
                     "their standardised errors use unit spread")
        scale = np.where(scale > 0, scale, 1.0)
    validation = store.subset("validation").coeffs.astype(np.float64) if store.split is not None else None
    return ScoredRows(test, train, groups, reference.mean(0), scale, leave_one_out_means(test.coeffs, test.map_index),
                  validation if validation is not None and len(validation) else None)


def check_scored_store(store: CoefficientStore, on: CoefficientStore, notes: list[str]) -> None:
    """The store given to ``--on`` must hold vectors of the same layout; a different boundary is noted."""
    for key in ("J", "L", "fields", "vector_length", "normalisation"):
        read = normalisation_code if key == "normalisation" else str
        if read(store.attrs.get(key)) != read(on.attrs.get(key)):
            raise DustvaeError(f"`on`: {key} is {on.attrs.get(key)} in the scored store but {store.attrs.get(key)} in "
                               f"COEFFS; compute both with the same settings")
    if store.fingerprint() == on.fingerprint():
        raise DustvaeError("`on` names the store the compressors are fitted on; score its test split without `on`, "
                           "or give another store")
    if store.attrs.get("boundary") != on.attrs.get("boundary"):
        notes.append(f"the scored store's boundary is {on.attrs.get('boundary')}, the training store's "
                     f"{store.attrs.get('boundary')}: the vectors differ in their largest scales")
    bad = ~np.isfinite(on.coeffs).all(axis=1)
    if bad.any():
        raise DustvaeError(f"`on`: the scored store holds NaN or inf in {int(bad.sum())} vector(s) "
                           f"(first: row {int(np.flatnonzero(bad)[0])}); recompute it or drop those patches")


def split_description(store: CoefficientStore, scored: bool = False) -> str:
    """Which kind of split the test rows come from, in words (results' ``test.split``)."""
    if scored:
        return "every row of another store (`on`); compressors fitted on the training split of the first"
    if store.split is None:
        return "whole store (no split)"
    if store.attrs.get("split_kind") == "regions":
        return (f"store split by sky region ({store.attrs.get('split_regions')} regions, guard band of one patch width "
                f"left out)")
    return "store split (by map)"
