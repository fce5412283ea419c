"""Train, validation and test splits of one sky by region, with a guard band between them.

A store cut from a single map (a Planck map, one MHD box) has no map ids to
split by. Split by patch at random, neighbouring patches, which share sky
and overlap when their centres are closer than a patch width, land on both
sides, and validation and test flatter a model that has memorised their
neighbours. Here the sky is cut into regions, HEALPix superpixels at a
coarse NSIDE for patches of the sphere and square blocks of the pixel grid
for flat maps, each at least :data:`REGION_WIDTHS` patch widths across;
each region goes to one split (seeded). A patch whose centre lies within
:data:`GUARD_WIDTHS` patch widths of a patch of a higher split (test above
validation above train) is left out as a guard patch (split code 3), so that
at least one patch width of sky separates the patches of two splits.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .. import defaults
from ..errors import DustvaeError

#: Split codes, as coefficient stores hold them (their home: dustvae.defaults.SPLIT_NAMES).
TRAIN, VALIDATION, TEST, GUARD = defaults.TRAIN, defaults.VALIDATION, defaults.TEST, defaults.GUARD
#: Centres of patches of two splits are at least this many patch widths apart (one width of sky between them).
GUARD_WIDTHS = 2.0
#: Regions are at least this many patch widths across, when the sky allows; never under 2 (the guard's reach).
REGION_WIDTHS = 4.0
#: Fewest occupied regions a split is made from (the splits' shares need several).
MIN_REGIONS = 6


def _unit_vectors(lon_lat_deg: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon_lat_deg[:, 0]), np.radians(lon_lat_deg[:, 1])
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)


def sphere_regions(centers_deg: np.ndarray, width_deg: float) -> tuple[np.ndarray, float]:
    """Region of each patch centre ((lon, lat) in degrees): a HEALPix superpixel; returns (ids, region side in widths).

    The coarsest NSIDE whose pixels are at least :data:`REGION_WIDTHS`
    patch widths across, made finer (down to 2 widths) until the patches
    occupy :data:`MIN_REGIONS` of them.
    """
    import healpy as hp

    nside = 1
    while hp.nside2resol(2 * nside, arcmin=True) / 60 >= REGION_WIDTHS * width_deg:
        nside *= 2
    while True:
        ids = hp.ang2pix(nside, centers_deg[:, 0], centers_deg[:, 1], lonlat=True)
        side = hp.nside2resol(nside, arcmin=True) / 60 / width_deg
        if len(np.unique(ids)) >= MIN_REGIONS or hp.nside2resol(2 * nside, arcmin=True) / 60 < 2 * width_deg:
            return ids, side
        nside *= 2


def grid_regions(centers_px: np.ndarray, width_px: float) -> tuple[np.ndarray, float]:
    """Region of each patch centre ((row, col) in pixels): a square block of the grid; returns (ids, block side in widths)."""
    side = REGION_WIDTHS * width_px
    while True:
        blocks = np.floor(centers_px / side).astype(np.int64)
        ids = blocks[:, 0] * (int(blocks[:, 1].max()) + 1) + blocks[:, 1]
        if len(np.unique(ids)) >= MIN_REGIONS or side / 2 < 2 * width_px:
            return ids, side / width_px
        side /= 2


def patch_width(center_frame: str, patch_size: int, pixel_scale_arcmin: float) -> float:
    """A patch's side in the units of its centres: pixels for flat maps, degrees on the sphere."""
    if center_frame == "pixel":
        return float(patch_size)
    if not (pixel_scale_arcmin > 0 and np.isfinite(pixel_scale_arcmin)):
        raise DustvaeError("the pixel scale of these patches is unknown, so their width on the sky is; "
                           "a region split needs it")
    return patch_size * pixel_scale_arcmin / 60.0


def region_split(centers: np.ndarray, center_frame: str, width: float,
                 validation_fraction: float = defaults.VALIDATION_FRACTION,
                 test_fraction: float = defaults.TEST_FRACTION, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Split codes of patches of one sky by region, with guard patches (code 3) between splits.

    Parameters
    ----------
    centers : (N, 2) array
        Patch centres: (lon, lat) in degrees when ``center_frame`` names a
        sky frame, (row, col) pixels when it is ``"pixel"`` (flat maps).
    center_frame : str
        As a store's ``center_frame`` attribute.
    width : float
        Patch side, in degrees (sphere) or pixels (flat).
    validation_fraction, test_fraction : float
        Shares of the regions; ``test_fraction=0`` makes train and validation only.
    seed : int
        Seed of the regions' assignment.

    Returns
    -------
    codes : (N,) int8
        0 train, 1 validation, 2 test, 3 guard (left out).
    info : dict
        What the split was made of, for the store's attributes.
    """
    centers = np.asarray(centers, np.float64)
    if not (width > 0 and np.isfinite(centers).all()):
        raise DustvaeError("patch centres and width must be finite and the width positive for a region split")
    flat = center_frame == "pixel"
    ids, side = grid_regions(centers, width) if flat else sphere_regions(centers, width)
    regions = np.unique(ids)
    if len(regions) < 3:
        raise DustvaeError(f"the patches cover {len(regions)} region(s) of {side:.1f} patch widths, too few to split "
                           "by region; use a larger map, smaller patches or a store of several maps")
    order = np.random.default_rng(seed).permutation(regions)
    n_test = max(1, int(round(test_fraction * len(regions)))) if test_fraction > 0 else 0
    n_val = max(1, int(round(validation_fraction * len(regions))))
    region_code = dict.fromkeys(order.tolist(), TRAIN)
    region_code.update(dict.fromkeys(order[:n_test].tolist(), TEST))
    region_code.update(dict.fromkeys(order[n_test:n_test + n_val].tolist(), VALIDATION))
    codes = np.array([region_code[i] for i in ids.tolist()], np.int8)

    # Distances: Chebyshev in pixels on a grid (square patches), chords of the angular reach on the sphere.
    points, reach, p = (centers, GUARD_WIDTHS * width, np.inf) if flat else (
        _unit_vectors(centers), 2 * np.sin(np.radians(GUARD_WIDTHS * width) / 2), 2)
    for higher in (TEST, VALIDATION):
        kept = np.flatnonzero(codes == higher)
        lower = np.flatnonzero((codes < higher) & (codes != GUARD))
        if len(kept) == 0 or len(lower) == 0:
            continue
        near = cKDTree(points[kept]).query(points[lower], k=1, p=p, distance_upper_bound=reach)[0]
        codes[lower[np.isfinite(near) & (near < reach)]] = GUARD
    counts = np.bincount(codes, minlength=4)
    if counts[TRAIN] < 2 or counts[VALIDATION] < 1 or (test_fraction > 0 and counts[TEST] < 1):
        raise DustvaeError(f"the region split leaves {counts[TRAIN]} train, {counts[VALIDATION]} validation and "
                           f"{counts[TEST]} test patches ({counts[GUARD]} in guard bands); use a larger map or smaller patches")
    info = {"split_kind": "regions", "split_seed": int(seed), "split_regions": int(len(regions)),
            "split_region_widths": float(side), "split_guard_widths": GUARD_WIDTHS}
    return codes, info
