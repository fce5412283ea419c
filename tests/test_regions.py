"""Splits of one sky by region: every region in one split, a guard band between splits, and why it matters."""

from __future__ import annotations

import numpy as np
import pytest

from dustvae.io.maps import write_flat_map
from dustvae.io.store import read_store
from dustvae.sky.regions import GUARD, GUARD_WIDTHS, TEST, TRAIN, VALIDATION, region_split
from dustvae.sky.simulate import DustParams, simulate_flat

from conftest import assert_user_error, run_here


def _grid(n: int, stride: float) -> np.ndarray:
    rows, cols = np.meshgrid(np.arange(n) * stride, np.arange(n) * stride, indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], -1) + stride / 2


def _closest_other_split(points: np.ndarray, codes: np.ndarray, distance) -> float:
    kept = codes != GUARD
    p, c = points[kept], codes[kept]
    d = distance(p[:, None], p[None])
    return float(d[c[:, None] != c[None]].min())


def test_flat_region_split_keeps_a_patch_width_of_sky_between_splits():
    width = 32.0
    centers = _grid(24, width / 2)  # overlapping patches: centres half a width apart
    codes, info = region_split(centers, "pixel", width, seed=3)
    assert set(np.unique(codes)) == {TRAIN, VALIDATION, TEST, GUARD}
    chebyshev = lambda a, b: np.abs(a - b).max(-1)  # noqa: E731
    assert _closest_other_split(centers, codes, chebyshev) >= GUARD_WIDTHS * width
    # each region (a block of the grid) holds one split, guard patches aside
    side = info["split_region_widths"] * width
    blocks = [tuple(b) for b in np.floor(centers / side).astype(int)]
    for block in set(blocks):
        inside = codes[[b == block for b in blocks]]
        assert len(set(inside[inside != GUARD])) <= 1
    again, _ = region_split(centers, "pixel", width, seed=3)
    other, _ = region_split(centers, "pixel", width, seed=4)
    assert np.array_equal(codes, again) and not np.array_equal(codes, other)


def test_sphere_region_split_measures_angles():
    import healpy as hp

    lon, lat = hp.pix2ang(16, np.arange(hp.nside2npix(16)), lonlat=True)
    centers = np.stack([lon, lat], -1)
    width = 4.0  # degrees; centres are 3.7 deg apart
    codes, info = region_split(centers, "galactic", width, seed=0)
    assert info["split_regions"] >= 6 and (codes == TEST).any() and (codes == VALIDATION).any()
    vec = hp.ang2vec(lon, lat, lonlat=True)
    angle = lambda a, b: np.degrees(np.arccos(np.clip((a * b).sum(-1), -1, 1)))  # noqa: E731
    assert _closest_other_split(vec, codes, angle) >= GUARD_WIDTHS * width - 1e-6


def test_a_random_split_of_one_sky_flatters_and_the_region_split_does_not():
    """Neighbouring patches of one sky are near copies: memorising the training rows looks perfect under a random split."""
    width = 32.0
    centers = _grid(32, width / 4)  # strongly overlapping patches
    rng = np.random.default_rng(0)
    phases = rng.uniform(0, 2 * np.pi, 64)
    scales = rng.uniform(2, 6, 64) * width  # the sky varies on scales of a few patches
    vectors = np.sin(centers @ np.stack([np.cos(phases), np.sin(phases)]) / scales + phases)
    vectors += 1e-3 * rng.normal(size=vectors.shape)

    def memorised_error(train: np.ndarray, test: np.ndarray) -> float:
        """RMSE of predicting each held-out row by its nearest training row (what a memorising model does)."""
        d = ((vectors[test][:, None] - vectors[train][None]) ** 2).sum(-1)
        return float(np.sqrt(np.mean((vectors[test] - vectors[train][d.argmin(1)]) ** 2)))

    order = rng.permutation(len(centers))
    random_error = memorised_error(order[: int(0.7 * len(order))], order[int(0.85 * len(order)):])
    codes, _ = region_split(centers, "pixel", width, seed=0)
    region_error = memorised_error(np.flatnonzero(codes == TRAIN), np.flatnonzero(codes == TEST))
    assert random_error < 0.05 < 0.2 < region_error  # measured: 0.032 and 0.38


def test_compute_wst_writes_a_region_split_and_evaluate_names_it(tmp_path):
    maps = simulate_flat(512, DustParams(seed=5))
    sky = write_flat_map(tmp_path / "sky.fits", maps, pixel_scale_arcmin=5.0)
    out = tmp_path / "c.h5"
    proc = run_here("compute-wst", sky, "-o", out, "--patch-size", 32, "--split", "regions", "--quiet")
    assert proc.returncode == 0 and "split by 16 sky regions" in proc.stdout, proc.stderr
    store = read_store(out)
    assert store.attrs["split_kind"] == "regions" and store.attrs["split_regions"] == 16
    assert set(np.unique(store.split)) == {TRAIN, VALIDATION, TEST, GUARD}
    from dustvae.analysis.evaluate import split_description

    assert split_description(store).startswith("store split by sky region (16 regions")
    # training on the store uses its train and validation rows only
    from dustvae.models.train import training_split

    train, val = training_split(store)
    assert set(store.split[train]) == {TRAIN} and set(store.split[val]) == {VALIDATION}


def test_one_sky_without_a_split_trains_on_regions(tmp_path):
    """A store of one map and no split: training's own split is by region, never a neighbour on both sides."""
    from dustvae.models.train import training_split

    maps = simulate_flat(512, DustParams(seed=6))
    sky = write_flat_map(tmp_path / "sky.fits", maps, pixel_scale_arcmin=5.0)
    out = tmp_path / "c.h5"
    assert run_here("compute-wst", sky, "-o", out, "--patch-size", 32, "--quiet").returncode == 0
    store = read_store(out)
    assert store.split is None and len(np.unique(store.map_index)) == 1
    train, val = training_split(store)
    gap = np.abs(store.centers[train][:, None] - store.centers[val][None]).max(-1).min()
    assert gap >= GUARD_WIDTHS * 32 and len(train) + len(val) < len(store)  # guard rows left out


def test_too_small_a_sky_for_a_region_split_is_one_line(tmp_path, flat_file):
    proc = run_here("compute-wst", flat_file, "-o", tmp_path / "c.h5", "--patch-size", 64, "--split", "regions")
    assert_user_error(proc, "too few to split by region")
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("bad", [np.nan, 0.0])
def test_region_split_needs_a_width(bad):
    from dustvae.errors import DustvaeError

    with pytest.raises(DustvaeError, match="width"):
        region_split(_grid(8, 16.0), "pixel", bad)
