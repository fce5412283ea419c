"""What a HEALPix header says: NSIDE, the pixels of a partial sky, the frame, and the units of its fields.

Each reader here checks one header fact and refuses, in one line, a value
it cannot trust (:mod:`dustvae.io.maps` reads the maps with them).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.io import fits

from .. import defaults
from ..errors import DustvaeError, DustvaeFileError

#: Frames of HEALPix maps, by the name ``--frame`` takes, and their healpy letter.
FRAMES = dict(zip(defaults.HEALPIX_FRAMES, ("G", "C", "E")))
#: COORDSYS values read (the HEALPix letters G, C, Q, E and the long names), by healpy letter.
_COORDSYS = {
    **dict.fromkeys(("G", "GAL", "GALACTIC"), "G"),
    **dict.fromkeys(("C", "Q", "CEL", "CELESTIAL", "EQU", "EQUATORIAL", "ICRS", "FK5", "J2000"), "C"),
    **dict.fromkeys(("E", "ECL", "ECLIPTIC"), "E"),
}

#: Largest HEALPix NSIDE (2**29: pixel indices still fit in 64 bits).
MAX_NSIDE = 2**29

def nside_from_header(path: Path, hdr: fits.Header, nest: bool) -> int | None:
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


def explicit_pixels(path: Path, hdu: fits.BinTableHDU, names: list[str], nside: int, nrows: int) -> np.ndarray:
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


def healpix_frame(path: Path, hdr: fits.Header, frame: str | None) -> tuple[str, bool]:
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
                               f"EQUATORIAL, E/ECLIPTIC); fix the header, or remove the card and give `frame`")
    if frame is not None and FRAMES[frame] != letter:
        named = next(name for name, code in FRAMES.items() if code == letter)
        raise DustvaeError(f"{path}: COORDSYS = {raw!r} says {named} but `frame` says {frame}; "
                           f"drop `frame` or fix the header")
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
            raise DustvaeFileError(f"{path}: {key} = {hdr[key]!r} is not a frequency; fix the card or give `freq` GHZ")
        if match["unit"]:
            return value * {"HZ": 1e-9, "KHZ": 1e-6, "MHZ": 1e-3, "GHZ": 1.0}[match["unit"].upper()]
        return value * (1e-9 if key == "RESTFRQ" or value >= 1e6 else 1.0)
    return None


def common_unit(path: Path, hdr: fits.Header, units: dict[str, str], freq_ghz: float | None) -> tuple[str, dict[str, float]]:
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
        raise DustvaeError(f"{path}: the header gives {stated:g} GHz but `freq` says {freq_ghz:g}; drop `freq` or fix the header")
    for name in names:
        if units[name] == target:
            factors[name] = 1.0
            continue
        source = _unit_scale(units[name]) if units[name] else None
        if source is None or to is None or ("K" in (source[0], to[0]) and source[0] != to[0]):
            raise DustvaeError(f"{path}: fields are in different units ({listing}) that dustvae cannot convert "
                               f"(it converts K_CMB, K_RJ and MJy/sr, with prefixes); give a map whose fields share "
                               f"one unit, or read only those that do with `fields`")
        if source[0] == to[0]:
            factors[name] = source[1] / to[1]
            continue
        freq = freq_ghz if freq_ghz is not None else stated
        if freq is None:
            raise DustvaeError(f"{path}: fields are in different units ({listing}); converting them needs the "
                               f"frequency: give `freq` GHZ (or a FREQ header card), or read fields of one unit with `fields`")
        factors[name] = source[1] * _mjy_per_sr(source[0], freq) / (to[1] * _mjy_per_sr(to[0], freq))
    return target, factors
