"""FITS files: opened with astropy's checks (truncation refused, fixable cards fixed and noted) and written atomically."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ..errors import DustvaeError, DustvaeFileError, DustvaeWarning
from .atomic import atomic_path

#: The start of astropy's warning for a file shorter than its headers say: the one warning refused as an error.
_TRUNCATED = "File may have been truncated"

#: The lines astropy's verify sets around its findings (each is a warning of its own).
_VERIFY_FRAME = re.compile(r"Verification reported errors:|HDU \d+:|Card \d+:|Note: astropy\.io\.fits uses zero-based indexing\.")


def open_fits(path: Path) -> fits.HDUList:
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
            note(f"{path}: astropy read it with a warning: {text}")
    return hdul

def note(message: str) -> None:
    """Tell the user something they should know but need not fix: a :class:`~dustvae.errors.DustvaeWarning`."""
    warnings.warn(message, DustvaeWarning, stacklevel=3)


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
        raise DustvaeError(f"{path}: exists; choose another name or pass `overwrite`")
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
        raise DustvaeError(f"{path}: exists; choose another name or pass `overwrite`")
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
