"""Patch cutting from HEALPix and flat maps, and the patch file."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from dustvae.io.maps import HealpixMap, read_map
from dustvae.io.patchfile import read_patches
from dustvae.sky.patches import cut_patches, healpix_patches
from dustvae.sky.simulate import DustParams, simulate_healpix

from conftest import assert_user_error, run_cli


def test_healpix_patches_centres_and_cut(healpix_file):
    sky = read_map(healpix_file, ["Q", "U"])
    patches = cut_patches(sky, 32, b_min=30)
    assert patches.patches.shape[1:] == (2, 32, 32)
    assert (np.abs(patches.centers[:, 1]) >= 30).all()
    assert patches.pixel_scale_arcmin == pytest.approx(sky.resolution_arcmin)
    assert np.isfinite(patches.patches).all()
    assert patches.labels["seed"][0] == 7


def test_masked_pixels_drop_patches(healpix_maps):
    fields = {k: healpix_maps[k].copy() for k in ("Q", "U")}
    nside = 32
    north = hp.query_disc(nside, hp.ang2vec(0, 90, lonlat=True), np.radians(40))
    fields["Q"][north] = np.nan
    sky = HealpixMap(fields=fields, nside=nside)
    full = healpix_patches(sky, 32, max_masked_fraction=1.0)
    cut = healpix_patches(sky, 32, max_masked_fraction=0.1)
    assert cut.n_dropped > 0 and len(cut) + cut.n_dropped == len(full)
    assert (cut.masked_fraction <= 0.1).all()
    assert full.masked_fraction.max() > 0.2


def test_polarization_rotated_into_patch_frame():
    # A uniform 3D field seen at high latitude: in each small patch its projected
    # angle is nearly constant in the patch frame, whereas in the local HEALPix
    # frames (converging meridians) it swings. The rotation must reduce the spread.
    maps = simulate_healpix(64, DustParams(turbulence=0.0, mean_field_angle=30, mean_field_inclination=20, seed=1))

    def spread(patch_set):
        angle = 0.5 * np.arctan2(patch_set.patches[:, 1], patch_set.patches[:, 0])
        centre = angle[:, 16:17, 16:17]
        return np.median(np.degrees(np.abs(np.angle(np.exp(2j * (angle - centre))) / 2)).max(axis=(1, 2)))

    rotated = healpix_patches(HealpixMap(fields={"Q": maps["Q"], "U": maps["U"]}, nside=64), 32, b_min=60, pixel_scale_arcmin=15)
    unrotated = healpix_patches(HealpixMap(fields={"Q": maps["Q"], "I": maps["U"]}, nside=64), 32, b_min=60, pixel_scale_arcmin=15)
    assert spread(rotated) < 0.3 * spread(unrotated)


def test_flat_tiling(flat_file):
    sky = read_map(flat_file, ["Q", "U"])
    tiles = cut_patches(sky, 64)
    assert len(tiles) == 4 and tiles.center_frame == "pixel"
    np.testing.assert_array_equal(tiles.centers[1], [31.5, 95.5])
    np.testing.assert_array_equal(tiles.patches[1, 0], sky.fields["Q"][:64, 64:])
    whole = cut_patches(sky, 128)
    assert whole.periodic and len(whole) == 1


def test_cli_patches_round_trip(tmp_path, healpix_file):
    out = tmp_path / "p.h5"
    proc = run_cli("patches", healpix_file, "-o", out, "--patch-size", 32, check=True)
    assert "patches" in proc.stdout
    patches = read_patches(out)
    assert patches.patches.shape[1:] == (2, 32, 32)
    assert patches.centers.shape == (len(patches), 2)
    assert patches.source_name == healpix_file.name and len(patches.source_sha256) == 64
    assert_user_error(run_cli("patches", healpix_file, "-o", out), "exists")
    assert_user_error(run_cli("patches", healpix_file, "-o", tmp_path / "q.h5", "--patch-size", 40), "multiple of 2**J")
