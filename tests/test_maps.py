"""Map I/O: Planck's and healpy's HEALPix layouts, flat images and cubes, masking, bad files."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from dustvae.errors import DustvaeError
from dustvae.io.maps import FlatMap, HealpixMap, read_map, write_healpix_map

from conftest import assert_user_error, run_cli

NSIDE = 16
NPIX = hp.nside2npix(NSIDE)


def planck_like_file(path, nest: bool, values: dict[str, np.ndarray], big_endian: bool = True, rows_of: int = 1):
    """A file in Planck's exact PR3 column layout, written with astropy (not our writer)."""
    cols = []
    for name, data in values.items():
        arr = data.astype(">f4" if big_endian else "<f4").reshape(-1, rows_of)
        fmt = "E" if rows_of == 1 else f"{rows_of}E"
        cols.append(fits.Column(name=name, format=fmt, unit="K_CMB", array=arr))
    hdu = fits.BinTableHDU.from_columns(cols, name="COMP-MAP")
    hdu.header.update(PIXTYPE="HEALPIX", ORDERING="NESTED" if nest else "RING", NSIDE=NSIDE,
                      INDXSCHM="IMPLICIT", COORDSYS="GALACTIC", POLCCONV="COSMO", FIRSTPIX=0, LASTPIX=NPIX - 1)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


@pytest.mark.parametrize("nest", [False, True])
def test_planck_layout_round_trip(tmp_path, nest):
    rng = np.random.default_rng(0)
    values = {c: rng.normal(size=NPIX).astype(np.float32) for c in ("I_STOKES", "Q_STOKES", "U_STOKES")}
    values["Q_STOKES"][5] = hp.UNSEEN
    values["U_STOKES"][9] = np.nan
    path = planck_like_file(tmp_path / "planck.fits", nest, values, rows_of=16)
    sky = read_map(path, ["I", "Q", "U"])
    assert isinstance(sky, HealpixMap)
    assert sky.nside == NSIDE and sky.nest is nest and sky.units["Q"] == "K_CMB"
    assert sky.fields["Q"].dtype.byteorder in ("=", "|")
    assert np.isnan(sky.fields["Q"][5]) and np.isnan(sky.fields["U"][9])
    keep = np.isfinite(sky.fields["Q"])
    np.testing.assert_array_equal(sky.fields["Q"][keep], values["Q_STOKES"][keep])
    np.testing.assert_array_equal(sky.fields["I"], values["I_STOKES"])


def test_healpy_written_map(tmp_path):
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(3, NPIX))
    path = tmp_path / "hp.fits"
    hp.write_map(path, maps, nest=True, column_units="uK_CMB")
    sky = read_map(path, ["Q", "U"])
    assert sky.nest and sky.units["U"] == "uK_CMB"
    np.testing.assert_allclose(sky.fields["U"], maps[2], rtol=1e-6)


def test_our_writer_is_read_by_healpy(tmp_path, healpix_maps):
    path = write_healpix_map(tmp_path / "ours.fits", healpix_maps)
    back = hp.read_map(path, field=(0, 1, 2))
    assert back.shape == (3, hp.nside2npix(32))
    np.testing.assert_allclose(back[1], healpix_maps["Q"], rtol=1e-6)


def test_flat_extnames_and_stokes_cube(tmp_path):
    rng = np.random.default_rng(2)
    q, u = rng.normal(size=(2, 32, 32)).astype(">f8")
    named = tmp_path / "named.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(q, name="Q"), fits.ImageHDU(u, name="U")]).writeto(named)
    sky = read_map(named, ["Q", "U"])
    assert isinstance(sky, FlatMap)
    np.testing.assert_array_equal(sky.fields["U"], u.astype(float))

    cube = np.stack([q * 0 + 1, q, u])
    hdu = fits.PrimaryHDU(cube)
    hdu.header.update(CTYPE1="GLON-TAN", CTYPE2="GLAT-TAN", CDELT1=-0.1, CDELT2=0.1, CRPIX1=16, CRPIX2=16,
                      CRVAL1=0, CRVAL2=60, CUNIT1="deg", CUNIT2="deg", CTYPE3="STOKES", CRVAL3=1, CDELT3=1, CRPIX3=1)
    path = tmp_path / "cube.fits"
    hdu.writeto(path)
    sky = read_map(path, ["Q", "U"])
    np.testing.assert_array_equal(sky.fields["Q"], q.astype(float))
    assert sky.wcs is not None and sky.pixel_scale_arcmin == pytest.approx(6.0)


def test_missing_field_is_named(tmp_path):
    path = planck_like_file(tmp_path / "i.fits", False, {"I_STOKES": np.ones(NPIX, np.float32)})
    with pytest.raises(DustvaeError, match="no Q field"):
        read_map(path, ["Q"])


def test_bad_files_give_one_line_errors(tmp_path):
    text = tmp_path / "notes.fits"
    text.write_text("this is not a FITS file\n" * 100)
    assert_user_error(run_cli("patches", text, "-o", tmp_path / "p.h5"), "not a readable FITS")

    good = planck_like_file(tmp_path / "good.fits", False, {"Q_STOKES": np.ones(NPIX, np.float32), "U_STOKES": np.ones(NPIX, np.float32)})
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[: 2880 * 3])
    assert_user_error(run_cli("patches", truncated, "-o", tmp_path / "p.h5"), "truncated")

    wrong = tmp_path / "npix.fits"
    cols = [fits.Column(name=n, format="E", array=np.ones(1000, np.float32)) for n in ("Q_STOKES", "U_STOKES")]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["PIXTYPE"] = "HEALPIX"
    hdu.header["ORDERING"] = "RING"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(wrong)
    assert_user_error(run_cli("patches", wrong, "-o", tmp_path / "p.h5"), "not a valid HEALPix size")

    assert_user_error(run_cli("patches", tmp_path / "absent.fits"), "no such file")
    assert_user_error(run_cli("patches", good, "--fields", "Q,X"), "unknown field")
