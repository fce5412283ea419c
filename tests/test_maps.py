"""Map I/O: Planck's and healpy's HEALPix layouts, flat images and cubes, masking, bad files."""

from __future__ import annotations

import warnings

import healpy as hp
import numpy as np
import pytest
from astropy.io import fits

from dustvae.errors import DustvaeError
from dustvae.io.maps import FlatMap, HealpixMap, read_map, write_healpix_map

from conftest import assert_user_error, run_here

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
    from dustvae.errors import DustvaeWarning

    with pytest.warns(DustvaeWarning, match="no COORDSYS; Galactic is assumed"):  # healpy writes no frame
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
    assert_user_error(run_here("patches", text, "-o", tmp_path / "p.h5"), "not a readable FITS")

    good = planck_like_file(tmp_path / "good.fits", False, {"Q_STOKES": np.ones(NPIX, np.float32), "U_STOKES": np.ones(NPIX, np.float32)})
    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(good.read_bytes()[: 2880 * 3])
    assert_user_error(run_here("patches", truncated, "-o", tmp_path / "p.h5"), "truncated")

    wrong = tmp_path / "npix.fits"
    cols = [fits.Column(name=n, format="E", array=np.ones(1000, np.float32)) for n in ("Q_STOKES", "U_STOKES")]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["PIXTYPE"] = "HEALPIX"
    hdu.header["ORDERING"] = "RING"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(wrong)
    assert_user_error(run_here("patches", wrong, "-o", tmp_path / "p.h5"), "not a valid HEALPix size")

    assert_user_error(run_here("patches", tmp_path / "absent.fits"), "no such file")
    assert_user_error(run_here("patches", good, "--fields", "Q,X"), "unknown field")


def healpix_table(path, columns: dict[str, np.ndarray], units: dict[str, str] | None = None, **cards):
    """A HEALPix binary table written with astropy: one column per entry, header cards as given (None drops one)."""
    units = units or {}
    cols = [fits.Column(name=name, format="K" if name == "PIXEL" else "E", unit=units.get(name, ""),
                        array=np.asarray(values)) for name, values in columns.items()]
    hdu = fits.BinTableHDU.from_columns(cols)
    defaults = dict(PIXTYPE="HEALPIX", ORDERING="RING", INDXSCHM="IMPLICIT", COORDSYS="GALACTIC", POLCCONV="COSMO")
    for key, value in {**defaults, **cards}.items():
        if value is not None:
            hdu.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _smooth_iqu(nside: int, lmax: int, seed: int) -> np.ndarray:
    """Band-limited Galactic I, Q, U (COSMO), so that rotating it in harmonic space is exact to quadrature error."""
    ell = np.arange(lmax + 1)
    cl = np.exp(-((ell / (lmax / 3)) ** 2))
    cl[:2] = 0
    np.random.seed(seed)  # healpy's synfast draws from numpy's global generator
    return hp.synfast([cl, cl, 0.5 * cl, 0 * cl], nside, lmax=lmax, new=True, pol=True)


def _stokes_columns(maps: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{k}_STOKES": m.astype(np.float32) for k, m in zip("IQU", maps)}


@pytest.mark.parametrize("coordsys, letter", [("CELESTIAL", "C"), ("E", "E")])
def test_rotated_frame_copy_gives_the_galactic_patches(tmp_path, coordsys, letter):
    """A celestial or ecliptic copy of a Galactic map (rotated by healpy in harmonic space, Q/U included) gives
    the Galactic file's patches at the same Galactic centres, and --b-min 30 keeps the same sky."""
    from dustvae.io.patchfile import read_patches
    from dustvae.sky.patches import healpix_patches

    nside, lmax = 64, 24
    galactic = _smooth_iqu(nside, lmax, seed=3)
    rotated = hp.Rotator(coord=["G", letter]).rotate_map_alms(galactic, lmax=lmax, use_pixel_weights=False)
    gal_file = healpix_table(tmp_path / "gal.fits", _stokes_columns(galactic), COORDSYS="G")
    rot_file = healpix_table(tmp_path / "rot.fits", _stokes_columns(rotated), COORDSYS=coordsys)
    options = ["--fields", "I,Q,U", "--patch-size", 32, "--pixel-scale", 30, "--b-min", 30, "--max-masked", 0]
    for source, out in ((gal_file, "gal.h5"), (rot_file, "rot.h5")):
        proc = run_here("patches", source, "-o", tmp_path / out, *options)
        assert proc.returncode == 0 and "note" not in proc.stderr, proc.stderr
    a, b = read_patches(tmp_path / "gal.h5"), read_patches(tmp_path / "rot.h5")
    assert len(a) == len(b) > 0 and b.center_frame == "galactic"
    assert (a.source_frame, b.source_frame) == ("galactic", "celestial" if letter == "C" else "ecliptic")
    np.testing.assert_array_equal(a.centers, b.centers)  # the same sky kept: Galactic centres, |b| >= 30
    assert (np.abs(b.centers[:, 1]) >= 30).all()
    rms = np.sqrt(np.mean(a.patches.astype(np.float64) ** 2, axis=(0, 2, 3)))
    error = np.abs(a.patches - b.patches).max(axis=(0, 2, 3)) / rms
    # Measured: 1.7-1.9% for I, 0.9-3.5% for Q and U: the two files' bilinear interpolations on different pixel grids.
    assert (error < 0.06).all(), error
    # The test sees the Q/U rotation: the same pixels without it are off by several times the rms.
    plain = healpix_patches(HealpixMap(fields={"A": rotated[1], "B": rotated[2]}, nside=nside, coordsys=letter),
                            32, pixel_scale_arcmin=30, b_min=30, max_masked_fraction=0)
    assert (np.abs(plain.patches - a.patches[:, 1:]).max(axis=(0, 2, 3)) / rms[1:] > 1).all()


def test_frame_note_option_and_conflicts(tmp_path):
    nside = 16
    maps = _smooth_iqu(nside, 12, seed=4)
    rotated = hp.Rotator(coord=["G", "C"]).rotate_map_alms(maps, lmax=12, use_pixel_weights=False)
    stated = healpix_table(tmp_path / "stated.fits", _stokes_columns(rotated), COORDSYS="C")
    bare = healpix_table(tmp_path / "bare.fits", _stokes_columns(rotated), COORDSYS=None)
    options = ["--patch-size", 32, "--pixel-scale", 60, "--b-min", 30]

    proc = run_here("patches", bare, "-o", tmp_path / "assumed.h5", *options)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("dustvae: note:") and "Galactic is assumed" in notes[0], proc.stderr
    assert "--frame" in notes[0]
    assert run_here("patches", bare, "-o", tmp_path / "bare.h5", "--frame", "celestial", *options).returncode == 0
    assert run_here("patches", stated, "-o", tmp_path / "stated.h5", *options).returncode == 0
    from dustvae.io.patchfile import read_patches

    a, b = read_patches(tmp_path / "bare.h5"), read_patches(tmp_path / "stated.h5")
    np.testing.assert_array_equal(a.patches, b.patches)
    assert a.source_frame == "celestial" and read_patches(tmp_path / "assumed.h5").source_frame == "galactic"

    out = tmp_path / "no.h5"
    assert_user_error(run_here("patches", stated, "-o", out, "--frame", "ecliptic", *options), "says celestial",
                      "--frame says ecliptic")
    odd = healpix_table(tmp_path / "odd.fits", _stokes_columns(rotated), COORDSYS="HORIZON")
    assert_user_error(run_here("patches", odd, "-o", out, *options), "COORDSYS", "HORIZON")
    assert_user_error(run_here("patches", stated, "-o", out, "--fields", "Q", *options), "needs the other Stokes field")
    assert not out.exists()

    # compute-wst reads the same options and records the map's frame in the store.
    from dustvae.io.store import read_store

    store = tmp_path / "c.h5"
    proc = run_here("compute-wst", bare, "-o", store, "--frame", "celestial", "--b-min", 60, "--patch-size", 32,
                    "--pixel-scale", 60, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert read_store(store).attrs["source_frame"] == "celestial"


def test_field_units_are_converted_or_refused(tmp_path):
    import astropy.units as u

    rng = np.random.default_rng(5)
    values = {k: rng.normal(size=NPIX).astype(np.float32) for k in ("I_STOKES", "Q_STOKES", "U_STOKES")}
    mixed = {"I_STOKES": "MJy/sr", "Q_STOKES": "K_CMB", "U_STOKES": "K_CMB"}
    out = tmp_path / "p.h5"
    plain = healpix_table(tmp_path / "mixed.fits", values, mixed)
    assert_user_error(run_here("patches", plain, "-o", out, "--fields", "I,Q,U"), "different units", "--freq")
    proc = run_here("patches", plain, "-o", tmp_path / "qu.h5", "--fields", "Q,U", "--patch-size", 32, "--pixel-scale", 60)
    assert proc.returncode == 0, proc.stderr  # Q and U agree
    proc = run_here("patches", plain, "-o", tmp_path / "f.h5", "--fields", "I,Q,U", "--freq", 353, "--patch-size", 32,
                    "--pixel-scale", 60)
    assert proc.returncode == 0, proc.stderr

    factor = (1 * u.K).to(u.MJy / u.sr, equivalencies=u.thermodynamic_temperature(353 * u.GHz)).value
    with_freq = healpix_table(tmp_path / "freq.fits", values, mixed, FREQ="353")
    sky = read_map(with_freq, ["I", "Q", "U"])  # the header's FREQ card serves as --freq
    assert sky.units == {"I": "MJy/sr", "Q": "MJy/sr", "U": "MJy/sr"}
    np.testing.assert_allclose(sky.fields["Q"], values["Q_STOKES"] * factor, rtol=1e-6)
    np.testing.assert_array_equal(sky.fields["I"], values["I_STOKES"])
    assert_user_error(run_here("patches", with_freq, "-o", out, "--fields", "I,Q,U", "--freq", 217), "353", "--freq")

    rj = read_map(healpix_table(tmp_path / "rj.fits", values, {"Q_STOKES": "K_CMB", "U_STOKES": "uK_RJ"}),
                  ["Q", "U"], freq_ghz=353)
    to_rj = factor / (1 * u.K).to(u.MJy / u.sr, equivalencies=u.brightness_temperature(353 * u.GHz)).value
    np.testing.assert_allclose(rj.fields["U"], values["U_STOKES"] * 1e-6 / to_rj, rtol=1e-5)
    micro = read_map(healpix_table(tmp_path / "uk.fits", values, {"Q_STOKES": "K_CMB", "U_STOKES": "uK_CMB"}), ["Q", "U"])
    np.testing.assert_allclose(micro.fields["U"], values["U_STOKES"] * 1e-6, rtol=1e-6)  # a prefix needs no frequency

    beam = healpix_table(tmp_path / "beam.fits", values, {"Q_STOKES": "K_CMB", "U_STOKES": "Jy/beam"}, FREQ="353")
    assert_user_error(run_here("patches", beam, "-o", out), "different units", "cannot convert")
    assert not out.exists()
    for name, units in (("blank", {"Q_STOKES": "K_CMB"}), ("plain_k", {"Q_STOKES": "K", "U_STOKES": "MJy/sr"})):
        path = healpix_table(tmp_path / f"{name}.fits", values, units, FREQ="353")
        with pytest.raises(DustvaeError, match="cannot convert"):  # no unit, and K without CMB or RJ
            read_map(path, ["Q", "U"])


@pytest.mark.parametrize("polconv", ["XYZ", "IAU_FLIPPED"])
def test_unknown_polarization_convention_is_refused(tmp_path, polconv):
    values = {k: np.ones(NPIX, np.float32) for k in ("Q_STOKES", "U_STOKES")}
    path = healpix_table(tmp_path / "pol.fits", values, POLCCONV=polconv)
    assert_user_error(run_here("patches", path, "-o", tmp_path / "p.h5"), "POLCCONV", polconv, "neither COSMO nor IAU")
    assert not (tmp_path / "p.h5").exists()


def _partial(path, pixels, nside=NSIDE, **cards):
    pixels = np.asarray(pixels, dtype=np.int64)
    values = {"PIXEL": pixels, "Q_STOKES": np.ones(pixels.size, np.float32), "U_STOKES": np.zeros(pixels.size, np.float32)}
    return healpix_table(path, values, **{"INDXSCHM": "EXPLICIT", "NSIDE": nside, **cards})


@pytest.mark.parametrize("pixels, cards, fragments", [
    ([3, 4, -5, 6, -7], {}, ("PIXEL index -5", "table row 3", "negative")),
    ([3, NPIX, NPIX + 1], {}, (f"PIXEL index {NPIX} ", "beyond the last pixel", "NSIDE 16")),
    ([3, 9, 4, 9, 4], {}, ("PIXEL index 9 appears twice", "rows 2 and 4", "remove the duplicates")),
    ([1, 2, 3], {"NSIDE": "abc"}, ("NSIDE = 'abc'", "positive integer")),
    ([1, 2, 3], {"NSIDE": 48, "ORDERING": "NESTED"}, ("NSIDE = 48", "power of 2", "NESTED")),
    ([1, 2, 3], {"NSIDE": -4}, ("NSIDE = -4", "positive integer")),
])
def test_bad_partial_sky_maps_are_one_line(tmp_path, pixels, cards, fragments):
    path = _partial(tmp_path / "partial.fits", pixels, **cards)
    before = path.read_bytes()
    out = tmp_path / "p.h5"
    assert_user_error(run_here("patches", path, "-o", out), *fragments)
    assert not out.exists() and path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial.fits"]  # no temporary file left


def test_bad_nside_of_a_full_sky_map_is_one_line(tmp_path):
    values = {k: np.ones(NPIX, np.float32) for k in ("Q_STOKES", "U_STOKES")}
    path = healpix_table(tmp_path / "full.fits", values, NSIDE="abc")
    assert_user_error(run_here("patches", path, "-o", tmp_path / "p.h5"), "NSIDE = 'abc'")
    nested = healpix_table(tmp_path / "n48.fits", {k: np.ones(12 * 48**2, np.float32) for k in ("Q_STOKES", "U_STOKES")},
                           ORDERING="NESTED")
    assert_user_error(run_here("patches", nested, "-o", tmp_path / "p.h5"), "NSIDE 48", "NESTED")
    ring = read_map(healpix_table(tmp_path / "r48.fits", {k: np.ones(12 * 48**2, np.float32) for k in ("Q_STOKES", "U_STOKES")}), ["Q"])
    assert ring.nside == 48  # RING ordering allows any NSIDE


def test_a_tiny_partial_map_at_nside_8192_stays_small(tmp_path):
    """A header claiming NSIDE 8192 costs memory in proportion to the file, not to the 805 million pixels of the sky."""
    import tracemalloc

    from dustvae.sky.patches import healpix_patches

    nside = 8192
    cap = np.sort(hp.query_disc(nside, hp.ang2vec(30, 60, lonlat=True), np.radians(0.3)))
    path = _partial(tmp_path / "tiny.fits", cap, nside=nside)
    tracemalloc.start()
    try:
        sky = read_map(path, ["Q", "U"])
        patch_set = healpix_patches(sky, 32, max_masked_fraction=0.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sky.pixels is not None and sky.fields["Q"].size == cap.size
    assert peak < 300 * 2**20, peak  # a full-sky float32 field alone would be 3.2 GB
    q = patch_set.patches[:, 0]
    assert 0 < len(patch_set) and np.isfinite(q).mean() >= 0.5
    np.testing.assert_allclose(q[np.isfinite(q)], 1.0, atol=1e-3)  # Q = 1, U = 0, turned by under a degree
    proc = run_here("patches", path, "-o", tmp_path / "p.h5", "--patch-size", 32, "--max-masked", 0.5)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(patch_set)} patches" in proc.stdout


def test_sparse_and_dense_partial_maps_give_the_same_patches(tmp_path, healpix_maps, monkeypatch):
    from dustvae.io import maps
    from dustvae.sky.patches import healpix_patches

    nside = 32
    cap = hp.query_disc(nside, hp.ang2vec(0, 60, lonlat=True), np.radians(35))
    columns = {"PIXEL": cap[::-1], **{f"{k}_STOKES": healpix_maps[k][cap[::-1]].astype(np.float32) for k in "QU"}}
    path = healpix_table(tmp_path / "cap.fits", columns, INDXSCHM="EXPLICIT", NSIDE=nside)
    dense = read_map(path, ["Q", "U"])
    monkeypatch.setattr(maps, "DENSE_PARTIAL_LIMIT_BYTES", 0)
    sparse = read_map(path, ["Q", "U"])
    assert dense.pixels is None and sparse.pixels is not None and (np.diff(sparse.pixels) > 0).all()
    a, b = (healpix_patches(m, 32, pixel_scale_arcmin=30, max_masked_fraction=0.3) for m in (dense, sparse))
    assert 0 < len(a) and a.n_dropped == b.n_dropped
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.patches, b.patches)
    # Keeping every patch: the sparse map drops only those without any data, uncut.
    a, b = (healpix_patches(m, 32, pixel_scale_arcmin=30, max_masked_fraction=1.0) for m in (dense, sparse))
    empty = a.masked_fraction == 1
    assert empty.any() and len(b) == (~empty).sum() and b.n_dropped == empty.sum()
    np.testing.assert_array_equal(a.centers[~empty], b.centers)
    np.testing.assert_array_equal(a.patches[~empty], b.patches)



def _replace_card(path, keyword: str, card: str, out):
    """A copy of ``path`` with the first ``keyword`` card of an extension replaced by ``card`` (raw, padded to 80)."""
    raw = bytearray(path.read_bytes())
    at = raw.index(keyword.ljust(8).encode() + b"=", 2880)
    raw[at : at + 80] = card.ljust(80).encode()
    out.write_bytes(bytes(raw))
    return out


def test_headers_astropy_fixes_are_read_with_one_note_each_and_a_truncated_file_is_refused(tmp_path):
    from dustvae.errors import DustvaeFileError

    q, u = np.random.default_rng(4).normal(size=(2, NPIX)).astype(np.float32)
    good = planck_like_file(tmp_path / "good.fits", False, {"Q_STOKES": q, "U_STOKES": u})
    unquoted = _replace_card(good, "TFORM1", "TFORM1  = E", tmp_path / "unquoted.fits")  # a string without quotes
    with warnings.catch_warnings(record=True) as verdict, fits.open(unquoted) as hdul:
        warnings.simplefilter("always")
        hdul.verify("fix+warn")
    assert any("Fixed 'TFORM1' card" in str(w.message) for w in verdict)  # astropy's own verdict: fixable
    simple = tmp_path / "simple.fits"  # SIMPLE's T not in column 30: astropy warns and reads on
    simple.write_bytes(b"SIMPLE  = T".ljust(80) + good.read_bytes()[80:])
    from dustvae.errors import DustvaeWarning

    for path, said in ((unquoted, "Fixed 'TFORM1' card"), (simple, "SIMPLE card")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sky = read_map(path, ["Q", "U"])
        np.testing.assert_array_equal(sky.fields["U"], u.astype(float))
        notes = [str(w.message) for w in caught if issubclass(w.category, DustvaeWarning)]
        assert len(notes) == 1 and said in notes[0] and len(caught) == 1, [str(w.message) for w in caught]

    truncated = tmp_path / "truncated.fits"
    truncated.write_bytes(unquoted.read_bytes()[:-2880])
    with pytest.raises(DustvaeFileError, match="truncated") as caught:
        read_map(truncated, ["Q", "U"])
    assert isinstance(caught.value, OSError) and isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)
    assert_user_error(run_here("patches", truncated, "-o", tmp_path / "p.h5"), "truncated")


def test_a_header_card_astropy_cannot_parse_is_one_line(tmp_path):
    flat = tmp_path / "flat.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((32, 32), np.float32), name="Q"),
                  fits.ImageHDU(np.ones((32, 32), np.float32), name="U")]).writeto(flat)
    bad = _replace_card(flat, "EXTNAME", "EXTNAME = Q", tmp_path / "bad.fits")  # astropy names the HDU before it can fix this
    assert_user_error(run_here("patches", bad, "-o", tmp_path / "p.h5"), "not a readable FITS file", "EXTNAME")


def test_file_errors_are_os_errors_and_the_command_line_says_them_as_user_errors(tmp_path, capsys):
    from dustvae.cli import main
    from dustvae.errors import DustvaeFileError

    assert issubclass(DustvaeError, ValueError) and issubclass(DustvaeFileError, (DustvaeError, OSError))
    with pytest.raises(OSError, match="no such file"):
        read_map(tmp_path / "missing.fits", ["Q", "U"])
    text = tmp_path / "notes.fits"
    text.write_text("this is not a FITS file\n" * 100)
    for path, said in ((tmp_path / "missing.fits", "no such file"), (text, "not a readable FITS file")):
        assert main(["patches", str(path), "-o", str(tmp_path / "p.h5")]) == 2
        lines = capsys.readouterr().err.splitlines()
        # said by the DustvaeError clause, not the one for the file system's own errors
        assert len(lines) == 1 and lines[0].startswith("dustvae: error:") and said in lines[0], lines
        assert "free space" not in lines[0]
