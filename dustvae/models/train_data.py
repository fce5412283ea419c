"""What training reads: the store's checks, the train/validation split, and the spread of the data.

Choices, and why:

* The split is the store's when it has one; otherwise it is made here,
  seeded, by map, or for one sky by region with a guard band, so that no
  validation patch overlaps a training one (:func:`training_split`).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import defaults
from ..errors import DustvaeError
from ..numerics import leave_one_out_means
from ..io.store import CoefficientStore, StoreReader, check_finite_rows
from .vae import INPUT_LENGTH


def check_vae_store(store: CoefficientStore | StoreReader, source: str = "store", finite: bool = True) -> None:
    """The family is built for 1360-long finite vectors; refuse anything else in one line.

    ``store`` is in memory or an open :class:`~dustvae.io.store.StoreReader`
    (then read block by block); with ``finite=False`` only the length is
    checked, and the caller checks each block it reads with
    :func:`check_finite_rows`.
    """
    length = store.vector_length
    if length != INPUT_LENGTH:
        raise DustvaeError(
            f"{source}: vectors have {length} coefficients but the VAEs take {INPUT_LENGTH} "
            f"(fields Q,U with J=5, L=8); compute the store with those settings"
        )
    if finite and isinstance(store, StoreReader):
        for start, block in store.blocks("coeffs"):
            check_finite_rows(block, source, start, len(store))
    elif finite:
        check_finite_rows(store.coeffs, source)


def training_split(store: CoefficientStore, seed: int = 0,
                   validation_fraction: float = defaults.VALIDATION_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Row indices for training and validation; test rows are never returned.

    Uses the store's split when it has one; otherwise makes one, seeded: by
    map when the store holds several maps; for one sky, by region with a
    guard band (:func:`dustvae.sky.regions.region_split`), so that no
    validation patch overlaps a training one; by patch only when the
    patches' positions or width are unknown or span too few regions.
    """
    if store.split is not None:
        train, val = np.flatnonzero(store.split == defaults.TRAIN), np.flatnonzero(store.split == defaults.VALIDATION)
    else:
        rng = np.random.default_rng(seed)
        groups = np.unique(store.map_index)
        codes = None if len(groups) >= 3 else _one_sky_split(store, seed, validation_fraction)
        if codes is not None:  # guard patches are in neither
            is_val = codes == defaults.VALIDATION
        elif len(groups) >= 3:
            chosen = rng.permutation(groups)[: max(1, int(round(validation_fraction * len(groups))))]
            is_val = np.isin(store.map_index, chosen)
        else:
            is_val = np.zeros(len(store), bool)
            is_val[rng.permutation(len(store))[: max(1, int(round(validation_fraction * len(store))))]] = True
        train = np.flatnonzero(~is_val if codes is None else codes == defaults.TRAIN)
        val = np.flatnonzero(is_val)
    if len(train) < 2 or len(val) < 1:
        raise DustvaeError(f"too few patches to train ({len(train)} train, {len(val)} validation); use a larger store")
    return train, val


def _one_sky_split(store: CoefficientStore, seed: int, validation_fraction: float) -> np.ndarray | None:
    """Train/validation codes (3: guard) of a one-sky store by region, or None where its geometry does not allow one."""
    from ..sky.regions import patch_width, region_split

    attrs = store.attrs
    if store.centers is None or "patch_size" not in attrs or "center_frame" not in attrs:
        return None
    try:
        width = patch_width(str(attrs["center_frame"]), int(attrs["patch_size"]), float(attrs.get("pixel_scale_arcmin", np.nan)))
        return region_split(store.centers, str(attrs["center_frame"]), width, validation_fraction, 0.0, seed)[0]
    except DustvaeError:
        return None


def mean_variance(x: np.ndarray | torch.Tensor) -> float:
    """Mean over coefficients of the per-coefficient variance (log2 units squared).

    The factor that maps earlier KL weights to beta (see :mod:`dustvae.models.loss`).
    """
    return float(torch.as_tensor(x, dtype=torch.float64).var(0).mean())


def map_targets(coeffs: np.ndarray, map_index: np.ndarray, rows: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The map-level target of each of ``rows``: the leave-one-out mean of the *other* ``rows`` of its map.

    ``coeffs`` and ``map_index`` are the store's; only ``rows`` are read (the targets of training rows never see a
    validation or test patch). Returns the rows that have a target (their
    map holds another of ``rows``) and the targets (float32), in that order.
    """
    target = leave_one_out_means(coeffs[rows], map_index[rows])
    has = np.isfinite(target).all(1)
    if has.sum() < 2:
        raise DustvaeError(f"`target` map needs maps with at least two {what} patches; the {what} split has "
                           f"{int(has.sum())} patch(es) with another of its map")
    return rows[has], target[has].astype(np.float32)
