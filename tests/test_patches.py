"""Patch cutting from HEALPix and flat maps, and the patch file."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest

from dustvae.io.maps import HealpixMap, read_map
from dustvae.io.patchfile import read_patches
from dustvae.sky.patches import cut_patches, healpix_patches
from dustvae.sky.simulate import DustParams, simulate_healpix

from conftest import assert_user_error, run_cli, run_here


def test_healpix_patches_centers_and_cut(healpix_file):
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
        center = angle[:, 16:17, 16:17]
        return np.median(np.degrees(np.abs(np.angle(np.exp(2j * (angle - center))) / 2)).max(axis=(1, 2)))

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
    proc = run_cli("patches", healpix_file, "-o", out, "--patch-size", 32, check=True)  # the real command, end to end
    assert "patches" in proc.stdout
    patches = read_patches(out)
    assert patches.patches.shape[1:] == (2, 32, 32)
    assert patches.centers.shape == (len(patches), 2)
    assert patches.source_name == healpix_file.name and len(patches.source_sha256) == 64
    assert_user_error(run_here("patches", healpix_file, "-o", out), "exists")
    assert_user_error(run_here("patches", healpix_file, "-o", tmp_path / "q.h5", "--patch-size", 40), "multiple of 2**J")


def _uniform_angle_sky(nside: int, psi_deg: float, polconv: str) -> HealpixMap:
    """Polarization at angle psi from local north toward east everywhere (IAU sense), in the given convention."""
    npix = hp.nside2npix(nside)
    lon, lat = hp.pix2ang(nside, np.arange(npix), lonlat=True)
    q = np.full(npix, np.cos(2 * np.radians(psi_deg)))
    u = np.full(npix, np.sin(2 * np.radians(psi_deg))) * (1 if polconv == "IAU" else -1)
    # I is the latitude and T the longitude (no wrap inside the patches the test keeps)
    return HealpixMap(fields={"I": lat, "T": lon, "Q": q, "U": u}, nside=nside, polconv=polconv)


@pytest.mark.parametrize("polconv", ["IAU", "COSMO"])
def test_patch_frame_orientation_and_polarization_convention(polconv):
    """Rows run north, columns west; a known angle is kept in the patch frame, in the map's own convention."""
    sky = _uniform_angle_sky(64, 30.0, polconv)
    patches = healpix_patches(sky, 32, b_min=30, pixel_scale_arcmin=15)
    keep = (np.abs(patches.centers[:, 1]) <= 70) & (patches.centers[:, 0] > 20) & (patches.centers[:, 0] < 340)
    lat, lon, q, u = (patches.patches[keep, patches.fields.index(k)] for k in ("I", "T", "Q", "U"))
    assert (np.diff(lat[:, :, 16], axis=1) > 0).all()  # rows run toward north
    assert (np.diff(lon[:, 16, :], axis=1) < 0).all()  # columns run toward west (east on the left)
    sign = 1 if polconv == "IAU" else -1
    psi = np.degrees(0.5 * np.arctan2(sign * u, q))  # back to the IAU angle from the patch's vertical axis
    center = psi[:, 15:17, 15:17]
    np.testing.assert_allclose(center, 30.0, atol=1.0)  # the local frame and the patch frame agree at the centre
    # Away from the centre the local meridians turn with respect to the patch's vertical axis by about
    # the meridian convergence, delta_lon * sin(b); the angle stays within it (plus 1.5 deg for the
    # first-order formula).
    convergence = np.abs(lon - lon[:, 15:17, 15:17].mean(axis=(1, 2), keepdims=True)) * np.sin(np.radians(np.abs(lat)))
    assert (np.abs(psi - 30.0) <= convergence + 1.5).all()
    assert np.abs(psi - 30.0).max() > 3.0  # and the rotation is really exercised


def test_nested_and_ring_maps_give_the_same_patches(healpix_maps):
    ring = HealpixMap(fields={k: healpix_maps[k] for k in ("Q", "U")}, nside=32)
    nested = HealpixMap(fields={k: hp.reorder(healpix_maps[k], r2n=True) for k in ("Q", "U")}, nside=32, nest=True)
    a, b = healpix_patches(ring, 32, b_min=30), healpix_patches(nested, 32, b_min=30)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_allclose(a.patches, b.patches, rtol=1e-5, atol=1e-6 * np.abs(a.patches).max())


def test_partial_sky_explicit_map(tmp_path, healpix_maps):
    """An EXPLICIT (partial-sky) file: uncovered pixels are masked; patches inside the covered cap match the full sky."""
    from astropy.io import fits

    nside = 32
    cap = np.sort(hp.query_disc(nside, hp.ang2vec(0, 60, lonlat=True), np.radians(35)))
    columns = [fits.Column(name="PIXEL", format="J", array=cap)]
    columns += [fits.Column(name=f"{k}_STOKES", format="E", array=healpix_maps[k][cap].astype(np.float32)) for k in ("I", "Q", "U")]
    hdu = fits.BinTableHDU.from_columns(columns)
    for key, value in (("PIXTYPE", "HEALPIX"), ("ORDERING", "RING"), ("NSIDE", nside), ("INDXSCHM", "EXPLICIT"),
                       ("OBJECT", "PARTIAL"), ("COORDSYS", "G")):
        hdu.header[key] = value
    path = tmp_path / "partial.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    sky = read_map(path, ["Q", "U"])
    covered = np.zeros(hp.nside2npix(nside), bool)
    covered[cap] = True
    assert np.isnan(sky.fields["Q"][~covered]).all() and np.isfinite(sky.fields["Q"][covered]).all()
    np.testing.assert_allclose(sky.fields["U"][cap], healpix_maps["U"][cap], rtol=1e-6)
    partial = healpix_patches(sky, 32, b_min=0, pixel_scale_arcmin=30, max_masked_fraction=0.5)
    full = healpix_patches(HealpixMap(fields={k: healpix_maps[k] for k in ("Q", "U")}, nside=nside), 32, b_min=0, pixel_scale_arcmin=30)
    assert 0 < len(partial) < len(full)  # patches outside the cap are dropped as masked
    rows = [int(np.flatnonzero((full.centers == c).all(axis=1))[0]) for c in partial.centers]
    inside = partial.masked_fraction == 0
    assert inside.any()
    np.testing.assert_allclose(partial.patches[inside], full.patches[rows][inside], rtol=1e-5, atol=1e-6)
