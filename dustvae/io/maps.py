"""Sky maps in FITS: HEALPix binary tables (Planck's layout and healpy's) and flat images.

Every reader returns float arrays in native byte order with missing pixels
(HEALPix ``UNSEEN`` or NaN) set to NaN, so that downstream code has a single
notion of "masked": ``~np.isfinite(pixels)``.
"""

from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from .. import defaults
from ..errors import DustvaeError, DustvaeFileError
from .atomic import atomic_path

#: Column and extension names accepted for each Stokes field, most specific first.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "I": ("I_STOKES", "TEMPERATURE", "I", "T", "TEMP", "INTENSITY"),
    "Q": ("Q_STOKES", "Q_POLARISATION", "Q_POLARIZATION", "Q-POLARISATION", "Q"),
    "U": ("U_STOKES", "U_POLARISATION", "U_POLARIZATION", "U-POLARISATION", "U"),
}
#: FITS STOKES axis values (FITS standard, Greisen & Calabretta 2002).
STOKES_CODES = {1: "I", 2: "Q", 3: "U", 4: "V"}
#: Frames of HEALPix maps, by the name ``--frame`` takes, and their healpy letter.
FRAMES = dict(zip(defaults.HEALPIX_FRAMES, ("G", "C", "E")))
#: COORDSYS values read (the HEALPix letters G, C, Q, E and the long names), by healpy letter.
_COORDSYS = {
    **dict.fromkeys(("G", "GAL", "GALACTIC"), "G"),
    **dict.fromkeys(("C", "Q", "CEL", "CELESTIAL", "EQU", "EQUATORIAL", "ICRS", "FK5", "J2000"), "C"),
    **dict.fromkeys(("E", "ECL", "ECLIPTIC"), "E"),
}
#: A partial-sky (EXPLICIT) map is expanded to full-sky arrays only below this size; above it the
#: map stays sparse (values at its listed pixels), so a tiny file claiming a huge NSIDE costs no memory.
DENSE_PARTIAL_LIMIT_BYTES = 2**30
#: Largest HEALPix NSIDE (2**29: pixel indices still fit in 64 bits).
MAX_NSIDE = 2**29


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


#: The start of astropy's warning for a file shorter than its headers say: the one warning refused as an error.
_TRUNCATED = "File may have been truncated"

#: The lines astropy's verify sets around its findings (each is a warning of its own).
_VERIFY_FRAME = re.compile(r"Verification reported errors:|HDU \d+:|Card \d+:|Note: astropy\.io\.fits uses zero-based indexing\.")


def _open_fits(path: Path) -> fits.HDUList:
    """Open a FITS file and read every HDU, refusing in one line what astropy cannot read or finds truncated.

    Header cards astropy can fix (a value in a non-standard format, for
    example) are fixed in memory; its warnings other than truncation, the
    fixes among them, do not stop the read and are each said once as a note
    on stderr.
    """
    if not path.exists():
        raise DustvaeFileError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DustvaeFileError(f"{path}: is a directory, not a FITS map")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstropyUserWarning)
            # A truncated file would read as zeros past its end: that alone is an error.
            warnings.filterwarnings("error", message=_TRUNCATED, category=AstropyUserWarning)
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            hdul.verify("fix+warn")  # repair what astropy can (a card's value format, say) before a card is parsed
            for hdu in hdul:  # force reading now, so truncation shows here
                _ = hdu.data
    except DustvaeError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, the truncation warning...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DustvaeFileError(
            f"{path}: not a readable FITS file ({reason}); give a HEALPix or flat FITS map"
        ) from exc
    said = set()
    for warning in caught:
        if not issubclass(warning.category, AstropyUserWarning):  # not astropy's: shown as it would have been
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
            continue
        text = " ".join(str(warning.message).split()) or warning.category.__name__  # one line, a card's padding dropped
        if _VERIFY_FRAME.fullmatch(text):  # verify's headings around each finding: the finding says it all
            continue
        if text not in said:
            said.add(text)
            _note(f"{path}: astropy read it with a warning: {text}")
    return hdul


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
        raise DustvaeError(f"--freq {freq_ghz} must be a positive frequency in GHz")
    hdul = _open_fits(path)
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


def _note(message: str) -> None:
    """One line on stderr for something the user should know but need not fix."""
    print(f"dustvae: note: {message}", file=sys.stderr)


def _header_nside(path: Path, hdr: fits.Header, nest: bool) -> int | None:
    """NSIDE from the header, checked: a positive integer, a power of 2 for NESTED (any positive integer is valid RING)."""
    if "NSIDE" not in hdr:
        return None
    raw = hdr["NSIDE"]
    try:
        value = float(str(raw).strip()) if not isinstance(raw, bool) else float("nan")
    except ValueError:
        value = float("nan")
    nside = int(value) if np.isfinite(value) and value == int(value) else 0
    if nside < 1 or nside > MAX_NSIDE or (nest and nside & (nside - 1)):
        need = "a power of 2 up to 2**29, as NESTED ordering needs" if nest else "a positive integer up to 2**29"
        raise DustvaeFileError(f"{path}: header NSIDE = {raw!r} is not {need}; the header is damaged: fix NSIDE "
                               f"(HEALPix maps have NSIDE 1, 2, 4, ..., 8192)")
    return nside


def _explicit_pixels(path: Path, hdu: fits.BinTableHDU, names: list[str], nside: int, nrows: int) -> np.ndarray:
    """The PIXEL column of a partial-sky map, refused (naming the first bad entry) unless each index is in range once."""
    pix_col = next((n for n in names if n.upper() == "PIXEL"), None)
    if pix_col is None:
        raise DustvaeFileError(f"{path}: INDXSCHM is EXPLICIT but there is no PIXEL column; a partial-sky map "
                               f"lists its pixels in one")
    raw = np.asarray(hdu.data[pix_col]).ravel()
    if raw.size != nrows:
        raise DustvaeFileError(f"{path}: the PIXEL column holds {raw.size} indices for {nrows} values per field; "
                               f"a partial-sky map gives one index per value")
    if not np.issubdtype(raw.dtype, np.integer):
        bad = np.flatnonzero(~np.isfinite(raw) | (raw != np.round(raw))) if raw.dtype.kind == "f" else np.arange(raw.size)
        if bad.size:
            raise DustvaeFileError(f"{path}: PIXEL index {raw[bad[0]]!r} (table row {bad[0] + 1}) is not an integer; "
                                   f"the file is damaged")
    pixels = raw.astype(np.int64)
    npix = 12 * nside * nside
    outside = np.flatnonzero((pixels < 0) | (pixels >= npix))
    if outside.size:
        row = int(outside[0])
        what = "negative" if pixels[row] < 0 else f"beyond the last pixel {npix - 1} of NSIDE {nside}"
        raise DustvaeFileError(f"{path}: PIXEL index {pixels[row]} (table row {row + 1}) is {what}; indices run from 0 "
                               f"to 12*NSIDE**2 - 1: the file is damaged or its NSIDE is wrong")
    order = np.argsort(pixels, kind="stable")
    repeated = np.flatnonzero(np.diff(pixels[order]) == 0)
    if repeated.size:
        later = order[repeated + 1]  # stable sort: the later row of each equal pair
        k = int(np.argmin(later))
        row, first = int(later[k]), int(order[repeated[k]])
        raise DustvaeFileError(f"{path}: PIXEL index {pixels[row]} appears twice (table rows {first + 1} and {row + 1}); "
                               f"a partial-sky map lists each pixel once: remove the duplicates")
    return pixels


def _healpix_frame(path: Path, hdr: fits.Header, frame: str | None) -> tuple[str, bool]:
    """The map's frame as a healpy letter, and whether it was assumed (no COORDSYS and no ``frame``)."""
    raw = hdr.get("COORDSYS")
    text = str(raw).strip().upper() if raw is not None else ""
    if not text:
        if frame is None:
            return "G", True
        return FRAMES[frame], False
    letter = _COORDSYS.get(text)
    if letter is None:
        raise DustvaeFileError(f"{path}: COORDSYS = {raw!r} is not a frame dustvae reads (G/GALACTIC, C/CELESTIAL/"
                               f"EQUATORIAL, E/ECLIPTIC); fix the header, or remove the card and give --frame")
    if frame is not None and FRAMES[frame] != letter:
        named = next(name for name, code in FRAMES.items() if code == letter)
        raise DustvaeError(f"{path}: COORDSYS = {raw!r} says {named} but --frame says {frame}; "
                           f"drop --frame or fix the header")
    return letter, False


#: Temperature units: an optional SI prefix, K, and CMB (thermodynamic) or RJ (Rayleigh-Jeans brightness).
_TEMPERATURE = re.compile(r"^(?P<prefix>u|mu|\u00b5|\u03bc|m|n)?K(?:[_ -]?(?P<kind>(?i:cmb|rj|thermo)))?$")
_PREFIX = {None: 1.0, "u": 1e-6, "mu": 1e-6, "\u00b5": 1e-6, "\u03bc": 1e-6, "m": 1e-3, "n": 1e-9}


def _unit_scale(text: str) -> tuple[str, float] | None:
    """``(base, scale)``: one ``text`` unit is ``scale`` of ``base`` (K_CMB, K_RJ, K or MJy/sr); None if unknown."""
    import astropy.units as u

    match = _TEMPERATURE.match(text.strip())
    if match:
        kind = (match["kind"] or "").upper()
        base = {"CMB": "K_CMB", "THERMO": "K_CMB", "RJ": "K_RJ"}.get(kind, "K")
        return base, _PREFIX[match["prefix"]]
    try:
        unit = u.Unit(text.strip(), parse_strict="raise")
        return "MJy/sr", float(unit.to(u.MJy / u.sr))
    except (ValueError, TypeError, u.UnitsError):
        return None


def _mjy_per_sr(base: str, freq_ghz: float) -> float:
    """MJy/sr in one unit of ``base`` at ``freq_ghz`` (astropy's monochromatic equivalencies; K_CMB about 2.7255 K)."""
    import astropy.units as u

    if base == "MJy/sr":
        return 1.0
    nu = freq_ghz * u.GHz
    equivalency = u.thermodynamic_temperature(nu) if base == "K_CMB" else u.brightness_temperature(nu)
    return float((1 * u.K).to(u.MJy / u.sr, equivalencies=equivalency).value)


_FREQUENCY = re.compile(r"^\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[kMG]?Hz)?\s*$", re.I)


def _header_freq_ghz(path: Path, hdr: fits.Header) -> float | None:
    """The map's frequency in GHz from FREQ, FREQUENC or RESTFRQ (Hz); a bare FREQ number is GHz below 1e6, else Hz."""
    for key in ("FREQ", "FREQUENC", "RESTFRQ"):
        if key not in hdr:
            continue
        match = _FREQUENCY.match(str(hdr[key]))
        value = float(match["value"]) if match else float("nan")
        if not (np.isfinite(value) and value > 0):
            raise DustvaeFileError(f"{path}: {key} = {hdr[key]!r} is not a frequency; fix the card or give --freq GHZ")
        if match["unit"]:
            return value * {"HZ": 1e-9, "KHZ": 1e-6, "MHZ": 1e-3, "GHZ": 1.0}[match["unit"].upper()]
        return value * (1e-9 if key == "RESTFRQ" or value >= 1e6 else 1.0)
    return None


def _common_unit(path: Path, hdr: fits.Header, units: dict[str, str], freq_ghz: float | None) -> tuple[str, dict[str, float]]:
    """The first field's unit and the factor taking each field to it; refused where no conversion is known."""
    names = list(units)
    target = units[names[0]]
    if all(units[n] == target for n in names):
        return target, {n: 1.0 for n in names}
    listing = ", ".join(f"{n} in {units[n] or 'no unit'}" for n in names)
    to = _unit_scale(target) if target else None
    factors: dict[str, float] = {}
    stated = _header_freq_ghz(path, hdr)
    if freq_ghz is not None and stated is not None and not np.isclose(freq_ghz, stated, rtol=1e-6):
        raise DustvaeError(f"{path}: the header gives {stated:g} GHz but --freq says {freq_ghz:g}; drop --freq or fix the header")
    for name in names:
        if units[name] == target:
            factors[name] = 1.0
            continue
        source = _unit_scale(units[name]) if units[name] else None
        if source is None or to is None or ("K" in (source[0], to[0]) and source[0] != to[0]):
            raise DustvaeError(f"{path}: fields are in different units ({listing}) that dustvae cannot convert "
                               f"(it converts K_CMB, K_RJ and MJy/sr, with prefixes); give a map whose fields share "
                               f"one unit, or read only those that do with --fields")
        if source[0] == to[0]:
            factors[name] = source[1] / to[1]
            continue
        freq = freq_ghz if freq_ghz is not None else stated
        if freq is None:
            raise DustvaeError(f"{path}: fields are in different units ({listing}); converting them needs the "
                               f"frequency: give --freq GHZ (or a FREQ header card), or read fields of one unit with --fields")
        factors[name] = source[1] * _mjy_per_sr(source[0], freq) / (to[1] * _mjy_per_sr(to[0], freq))
    return target, factors


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
    header_nside = _header_nside(path, hdr, nest)
    if explicit and header_nside is None:
        raise DustvaeFileError(f"{path}: a partial-sky HEALPix map needs NSIDE in its header")
    polconv = str(hdr.get("POLCCONV", "COSMO")).strip().upper() or "COSMO"
    if polconv not in ("COSMO", "IAU"):
        raise DustvaeFileError(f"{path}: POLCCONV = {hdr['POLCCONV']!r} is neither COSMO nor IAU; set it to the convention "
                               f"of the map's U (HEALPix and Planck maps use COSMO)")
    coordsys, assumed = _healpix_frame(path, hdr, frame)
    columns: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for name in wanted:
        col = _resolve_field(name, names)
        if col is None:
            raise DustvaeError(
                f"{path}: no {name} field (columns: {', '.join(names)}); "
                f"choose fields among those present with --fields"
            )
        columns[name] = _native_masked(np.asarray(hdu.data[col]).ravel())
        units[name] = str(hdr.get(f"TUNIT{names.index(col) + 1}", "")).strip()
    npix_found = len(next(iter(columns.values())))
    unit, factors = _common_unit(path, hdr, units, freq_ghz)
    for name, factor in factors.items():
        if factor != 1.0:
            columns[name] = (columns[name] * factor).astype(columns[name].dtype)
    pixels = None
    if explicit:
        nside = header_nside
        pixels = _explicit_pixels(path, hdu, names, nside, npix_found)
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
        _note(f"{path}: the header has no COORDSYS; Galactic is assumed (state the frame with --frame)")
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
                f"HDUs I/Q/U with EXTNAME, use a cube with CTYPE3 = 'STOKES', or choose --fields"
            )
    shapes = {a.shape for a in fields.values()}
    if len(shapes) != 1:
        raise DustvaeFileError(f"{path}: fields have different shapes {sorted(shapes)}; they must match")
    wcs, scale = _celestial_wcs(source_header)
    extra = {k: source_header[k] for k in source_header if k.startswith("SIM")}
    periodic = bool(source_header.get("PERIODIC", False))
    return FlatMap(fields=fields, wcs=wcs, pixel_scale_arcmin=scale, units=units, header=extra, periodic=periodic)


def _header_cards(extra: Mapping[str, object]) -> list[tuple[str, object]]:
    return [(key[:8].upper(), value) for key, value in extra.items()]


def write_healpix_map(
    path: str | Path,
    fields: Mapping[str, np.ndarray],
    *,
    nest: bool = False,
    unit: str = "",
    coordsys: str = "GALACTIC",
    polconv: str = "COSMO",
    extra_header: Mapping[str, object] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a full-sky HEALPix map in Planck's layout (one column per Stokes field).

    Columns are named ``I_STOKES``, ``Q_STOKES``, ``U_STOKES``; the header
    carries PIXTYPE, ORDERING, NSIDE, INDXSCHM, COORDSYS and POLCCONV as
    Planck's PR3 maps do, so :func:`read_map` and :func:`healpy.read_map`
    read it back. The write is atomic.
    """
    import healpy as hp

    path = Path(path)
    if path.exists() and not overwrite:
        raise DustvaeError(f"{path}: exists; choose another name or pass --overwrite")
    npix = len(next(iter(fields.values())))
    nside = hp.npix2nside(npix)
    cols = [
        fits.Column(name=f"{name}_STOKES", format="E", unit=unit, array=np.asarray(values, dtype=np.float32))
        for name, values in fields.items()
    ]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdr = hdu.header
    hdr["PIXTYPE"] = ("HEALPIX", "HEALPIX pixelisation")
    hdr["ORDERING"] = ("NESTED" if nest else "RING", "Pixel ordering scheme")
    hdr["NSIDE"] = (nside, "Resolution parameter of HEALPIX")
    hdr["FIRSTPIX"] = 0
    hdr["LASTPIX"] = npix - 1
    hdr["INDXSCHM"] = ("IMPLICIT", "Indexing: IMPLICIT or EXPLICIT")
    hdr["OBJECT"] = "FULLSKY"
    hdr["COORDSYS"] = coordsys
    hdr["POLCCONV"] = (polconv, "Polarization convention")
    for key, value in _header_cards(extra_header or {}):
        hdr[key] = value
    with atomic_path(path) as tmp:
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
    return path


def write_flat_map(
    path: str | Path,
    fields: Mapping[str, np.ndarray],
    *,
    pixel_scale_arcmin: float | None = None,
    unit: str = "",
    periodic: bool = False,
    extra_header: Mapping[str, object] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write flat maps as one image HDU per field, named by EXTNAME; atomic."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise DustvaeError(f"{path}: exists; choose another name or pass --overwrite")
    hdus: list = [fits.PrimaryHDU()]
    for name, values in fields.items():
        hdu = fits.ImageHDU(np.asarray(values, dtype=np.float32), name=name)
        if unit:
            hdu.header["BUNIT"] = unit
        if pixel_scale_arcmin is not None:
            hdu.header["PIXSCALE"] = (float(pixel_scale_arcmin), "pixel side [arcmin]")
        hdu.header["PERIODIC"] = (bool(periodic), "map is a periodic box")
        for key, value in _header_cards(extra_header or {}):
            hdu.header[key] = value
        hdus.append(hdu)
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return path
