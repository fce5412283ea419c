"""Sky maps in FITS: HEALPix binary tables (Planck's layout and healpy's) and flat images.

Every reader returns float arrays in native byte order with missing pixels
(HEALPix ``UNSEEN`` or NaN) set to NaN, so that downstream code has a single
notion of "masked": ``~np.isfinite(pixels)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .. import defaults
from ..errors import DustvaeError, DustvaeFileError
from .fits_files import note, open_fits, write_flat_map, write_healpix_map  # noqa: F401  (the writers: read and written here)
from .healpix_header import FRAMES, common_unit, explicit_pixels, healpix_frame, nside_from_header

#: Column and extension names accepted for each Stokes field, most specific first.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "I": ("I_STOKES", "TEMPERATURE", "I", "T", "TEMP", "INTENSITY"),
    "Q": ("Q_STOKES", "Q_POLARISATION", "Q_POLARIZATION", "Q-POLARISATION", "Q"),
    "U": ("U_STOKES", "U_POLARISATION", "U_POLARIZATION", "U-POLARISATION", "U"),
}
#: FITS STOKES axis values (FITS standard, Greisen & Calabretta 2002).
STOKES_CODES = {1: "I", 2: "Q", 3: "U", 4: "V"}
#: A partial-sky (EXPLICIT) map is expanded to full-sky arrays only below this size; above it the
#: map stays sparse (values at its listed pixels), so a tiny file claiming a huge NSIDE costs no memory.
DENSE_PARTIAL_LIMIT_BYTES = 2**30


@dataclass
class HealpixMap:
    """Full-sky HEALPix fields.

    Attributes
    ----------
    fields : dict of str to ndarray
        Pixel values per field name (``"I"``, ``"Q"``, ``"U"``), NaN where
        masked: full-sky arrays, or when ``pixels`` is set the values at
        those pixels only.
    nside : int
        HEALPix resolution parameter.
    nest : bool
        True for NESTED ordering, False for RING.
    units : dict of str to str
        Unit string per field, from TUNITn (after any conversion to a common unit).
    coordsys : str
        Frame of the pixels and of the Q/U basis, a healpy letter: ``"G"``
        Galactic, ``"C"`` celestial (equatorial), ``"E"`` ecliptic.
    polconv : str
        Polarization convention, ``"COSMO"`` (HEALPix and Planck) or ``"IAU"``.
    header : dict
        Other header cards (for example simulation parameters).
    pixels : ndarray of int or None
        Sorted pixel indices of a sparse partial-sky map (every other
        pixel is masked); None for full-sky arrays.
    frame_assumed : bool
        True when the file named no frame and Galactic was assumed.
    """

    fields: dict[str, np.ndarray]
    nside: int
    nest: bool = False
    units: dict[str, str] = field(default_factory=dict)
    coordsys: str = "G"
    polconv: str = "COSMO"
    header: dict = field(default_factory=dict)
    pixels: np.ndarray | None = None
    frame_assumed: bool = False

    @property
    def frame(self) -> str:
        """The frame's name: ``"galactic"``, ``"celestial"`` or ``"ecliptic"``."""
        return next((name for name, letter in FRAMES.items() if letter == self.coordsys), self.coordsys)

    @property
    def resolution_arcmin(self) -> float:
        """Mean pixel spacing in arcminutes."""
        import healpy as hp

        return float(hp.nside2resol(self.nside, arcmin=True))


@dataclass
class FlatMap:
    """Flat (projected or simulated) square or rectangular maps.

    Attributes
    ----------
    fields : dict of str to ndarray
        2D arrays per field name, NaN where masked.
    wcs : astropy.wcs.WCS or None
        Celestial WCS when the file has one.
    pixel_scale_arcmin : float or None
        Pixel side in arcminutes when known (from the WCS or PIXSCALE).
    units : dict of str to str
        Unit string per field, from BUNIT.
    header : dict
        Other header cards.
    """

    fields: dict[str, np.ndarray]
    wcs: WCS | None = None
    pixel_scale_arcmin: float | None = None
    units: dict[str, str] = field(default_factory=dict)
    header: dict = field(default_factory=dict)
    periodic: bool = False


SkyMap = HealpixMap | FlatMap


def _native_masked(values: np.ndarray) -> np.ndarray:
    """Native-order float copy with UNSEEN and non-finite pixels set to NaN."""
    arr = np.asarray(values)
    dtype = np.float64 if arr.dtype.itemsize > 4 else np.float32
    out = np.array(arr, dtype=dtype)  # astype to a native dtype converts byte order
    unseen = np.abs(out - defaults.UNSEEN) <= 1e-5 * abs(defaults.UNSEEN)
    out[unseen | ~np.isfinite(out)] = np.nan
    return out




def _is_healpix(hdu: fits.hdu.base.ExtensionHDU) -> bool:
    if not isinstance(hdu, fits.BinTableHDU):
        return False
    hdr = hdu.header
    return str(hdr.get("PIXTYPE", "")).upper() == "HEALPIX" or "NSIDE" in hdr or "ORDERING" in hdr


def _resolve_field(name: str, available: Sequence[str]) -> str | None:
    upper = {a.upper(): a for a in available}
    for alias in FIELD_ALIASES.get(name, (name,)):
        if alias in upper:
            return upper[alias]
    return None


def _check_fields(fields: Sequence[str]) -> list[str]:
    out = [f.strip().upper() for f in fields]
    unknown = [f for f in out if f not in FIELD_ALIASES]
    if unknown or not out:
        raise DustvaeError(
            f"unknown field(s) {', '.join(unknown) or '(none)'}; choose among I, Q, U"
        )
    return out


def read_map(path: str | Path, fields: Sequence[str] = defaults.FIELDS, *, frame: str | None = None,
             freq_ghz: float | None = None) -> SkyMap:
    """Read a HEALPix or flat map from a FITS file.

    Parameters
    ----------
    path : str or Path
        FITS file. HEALPix maps are binary tables (Planck's ``I_STOKES``,
        ``Q_STOKES``, ``U_STOKES`` columns or healpy's ``TEMPERATURE``,
        ``Q_POLARISATION``, ...), RING or NESTED from ``ORDERING``, full sky
        (``IMPLICIT``) or partial (``EXPLICIT`` with a ``PIXEL`` column),
        in the frame COORDSYS names (Galactic, celestial or ecliptic).
        Flat maps are image HDUs named by EXTNAME (``I``, ``Q``, ``U``), or a
        cube whose third axis has ``CTYPE3 = 'STOKES'``.
    fields : sequence of str
        Field names to read, for example ``("Q", "U")``.
    frame : {"galactic", "celestial", "ecliptic"}, optional
        The frame of a HEALPix map whose header has no COORDSYS (one that
        has must agree). Without either, Galactic is assumed and a note
        says so on stderr. Ignored for flat maps.
    freq_ghz : float, optional
        Frequency in GHz at which fields in different units (K_CMB, K_RJ,
        MJy/sr) are converted to the first field's unit, when the header
        has no FREQ card (one that has must agree).

    Returns
    -------
    HealpixMap or FlatMap

    Raises
    ------
    DustvaeFileError
        (an :class:`OSError` and a :class:`DustvaeError`) When the file is
        missing, not FITS, truncated, has a header card astropy can neither
        parse nor fix, or an invalid pixel count, NSIDE, pixel index,
        ordering, frame or polarization convention.
    DustvaeError
        When it lacks a requested field, its header disagrees with
        ``frame`` or ``freq_ghz``, or it holds fields in units that cannot
        be brought to one.

    Notes
    -----
    Header cards astropy can fix (a value in a non-standard format, for
    example) are fixed as the file is read, and astropy's warnings other
    than truncation do not stop the read; each is said once on stderr.
    """
    path = Path(path)
    wanted = _check_fields(fields)
    if frame is not None and frame not in FRAMES:
        raise DustvaeError(f"frame {frame!r} is not one of {', '.join(FRAMES)}")
    if freq_ghz is not None and not (np.isfinite(freq_ghz) and freq_ghz > 0):
        raise DustvaeError(f"`freq` {freq_ghz} must be a positive frequency in GHz")
    hdul = open_fits(path)
    with hdul:
        healpix = [hdu for hdu in hdul[1:] if _is_healpix(hdu)]
        if healpix:
            return _read_healpix(path, healpix[0], wanted, frame, freq_ghz)
        images = [hdu for hdu in hdul if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2]
        if images:
            return _read_flat(path, images, wanted)
    raise DustvaeFileError(
        f"{path}: holds neither a HEALPix table nor a 2D image; give a HEALPix or flat FITS map"
    )




def _read_healpix(path: Path, hdu: fits.BinTableHDU, wanted: list[str], frame: str | None = None,
                  freq_ghz: float | None = None) -> HealpixMap:
    import healpy as hp

    hdr = hdu.header
    names = list(hdu.columns.names)
    ordering = str(hdr.get("ORDERING", "RING")).strip().upper()
    if ordering not in ("RING", "NESTED"):
        raise DustvaeFileError(f"{path}: ORDERING is {ordering!r}; expected RING or NESTED")
    nest = ordering == "NESTED"
    explicit = str(hdr.get("INDXSCHM", "IMPLICIT")).strip().upper() == "EXPLICIT"
    header_nside = nside_from_header(path, hdr, nest)
    if explicit and header_nside is None:
        raise DustvaeFileError(f"{path}: a partial-sky HEALPix map needs NSIDE in its header")
    polconv = str(hdr.get("POLCCONV", "COSMO")).strip().upper() or "COSMO"
    if polconv not in ("COSMO", "IAU"):
        raise DustvaeFileError(f"{path}: POLCCONV = {hdr['POLCCONV']!r} is neither COSMO nor IAU; set it to the convention "
                               f"of the map's U (HEALPix and Planck maps use COSMO)")
    coordsys, assumed = healpix_frame(path, hdr, frame)
    columns: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for name in wanted:
        col = _resolve_field(name, names)
        if col is None:
            raise DustvaeError(
                f"{path}: no {name} field (columns: {', '.join(names)}); "
                f"choose fields among those present with `fields`"
            )
        columns[name] = _native_masked(np.asarray(hdu.data[col]).ravel())
        units[name] = str(hdr.get(f"TUNIT{names.index(col) + 1}", "")).strip()
    npix_found = len(next(iter(columns.values())))
    unit, factors = common_unit(path, hdr, units, freq_ghz)
    for name, factor in factors.items():
        if factor != 1.0:
            columns[name] = (columns[name] * factor).astype(columns[name].dtype)
    pixels = None
    if explicit:
        nside = header_nside
        pixels = explicit_pixels(path, hdu, names, nside, npix_found)
        order = np.argsort(pixels)
        pixels = pixels[order]
        columns = {name: values[order] for name, values in columns.items()}
        dense_bytes = 12 * nside * nside * sum(v.dtype.itemsize for v in columns.values())
        if dense_bytes <= DENSE_PARTIAL_LIMIT_BYTES:  # small enough: plain full-sky arrays index fastest
            full = {}
            for name, values in columns.items():
                sky = np.full(12 * nside * nside, np.nan, dtype=values.dtype)
                sky[pixels] = values
                full[name] = sky
            columns, pixels = full, None
    else:
        if not hp.isnpixok(npix_found):
            raise DustvaeFileError(
                f"{path}: {npix_found} pixels is not a valid HEALPix size (12 * nside**2); "
                f"the file is damaged or not a full-sky map"
            )
        nside = hp.npix2nside(npix_found)
        if header_nside is not None and header_nside != nside:
            raise DustvaeFileError(
                f"{path}: header NSIDE = {hdr['NSIDE']} but the table holds {npix_found} pixels "
                f"(nside {nside}); the file is damaged"
            )
        if nest and nside & (nside - 1):
            raise DustvaeFileError(f"{path}: {npix_found} pixels is NSIDE {nside}, which NESTED ordering cannot have "
                                   f"(a power of 2 is needed); the file is damaged or its ORDERING is RING")
    if assumed:  # last, so that a file refused above gets its one line only
        note(f"{path}: the header has no COORDSYS; Galactic is assumed (state the frame with `frame`)")
    extra = {k: hdr[k] for k in hdr if k.startswith("SIM")}
    return HealpixMap(
        fields=columns,
        nside=nside,
        nest=nest,
        units={name: unit for name in columns},
        coordsys=coordsys,
        polconv=polconv,
        header=extra,
        pixels=pixels,
        frame_assumed=assumed,
    )


def _stokes_planes(hdu: fits.ImageHDU) -> dict[str, int]:
    hdr = hdu.header
    if hdu.data.ndim != 3 or str(hdr.get("CTYPE3", "")).strip().upper() != "STOKES":
        return {}
    crval, cdelt, crpix = (float(hdr.get(k, d)) for k, d in (("CRVAL3", 1), ("CDELT3", 1), ("CRPIX3", 1)))
    planes = {}
    for index in range(hdu.data.shape[0]):
        code = int(round(crval + (index + 1 - crpix) * cdelt))
        if code in STOKES_CODES:
            planes[STOKES_CODES[code]] = index
    return planes


def _celestial_wcs(header: fits.Header) -> tuple[WCS | None, float | None]:
    scale = header.get("PIXSCALE")  # arcmin, written by our simulator
    if "CTYPE1" not in header:
        return None, float(scale) if scale is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header, naxis=2)
    try:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scales = proj_plane_pixel_scales(wcs)
        if wcs.wcs.cunit[0] and str(wcs.wcs.cunit[0]) == "deg":
            scale = float(np.mean(scales)) * 60.0
    except Exception:  # a non-celestial WCS has no pixel scale in angle
        pass
    return wcs, float(scale) if scale is not None else None


def _read_flat(path: Path, images: list, wanted: list[str]) -> FlatMap:
    by_name = {str(h.header.get("EXTNAME", h.name)).strip().upper(): h for h in images if h.data.ndim == 2}
    fields: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    source_header = images[0].header
    cube = next((h for h in images if _stokes_planes(h)), None)
    for name in wanted:
        key = _resolve_field(name, list(by_name))
        if key is not None:
            hdu = by_name[key]
            fields[name] = _native_masked(hdu.data)
            units[name] = str(hdu.header.get("BUNIT", "")).strip()
            source_header = hdu.header
        elif cube is not None and name in _stokes_planes(cube):
            fields[name] = _native_masked(cube.data[_stokes_planes(cube)[name]])
            units[name] = str(cube.header.get("BUNIT", "")).strip()
            source_header = cube.header
        elif len(images) == 1 and images[0].data.ndim == 2 and len(wanted) == 1 and not by_name.keys() - {"PRIMARY", ""}:
            fields[name] = _native_masked(images[0].data)
            units[name] = str(images[0].header.get("BUNIT", "")).strip()
        else:
            found = sorted(set(by_name) | set(_stokes_planes(cube) if cube is not None else {}))
            raise DustvaeError(
                f"{path}: no {name} image (found: {', '.join(found) or 'unnamed images'}); name image "
                f"HDUs I/Q/U with EXTNAME, use a cube with CTYPE3 = 'STOKES', or choose `fields`"
            )
    shapes = {a.shape for a in fields.values()}
    if len(shapes) != 1:
        raise DustvaeFileError(f"{path}: fields have different shapes {sorted(shapes)}; they must match")
    wcs, scale = _celestial_wcs(source_header)
    extra = {k: source_header[k] for k in source_header if k.startswith("SIM")}
    periodic = bool(source_header.get("PERIODIC", False))
    return FlatMap(fields=fields, wcs=wcs, pixel_scale_arcmin=scale, units=units, header=extra, periodic=periodic)
