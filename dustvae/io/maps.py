"""Sky maps in FITS: HEALPix binary tables (Planck's layout and healpy's) and flat images.

Every reader returns float arrays in native byte order with missing pixels
(HEALPix ``UNSEEN`` or NaN) set to NaN, so that downstream code has a single
notion of "masked": ``~np.isfinite(pixels)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS

from .. import defaults
from ..errors import DustvaeError
from .atomic import atomic_path

#: Column and extension names accepted for each Stokes field, most specific first.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "I": ("I_STOKES", "TEMPERATURE", "I", "T", "TEMP", "INTENSITY"),
    "Q": ("Q_STOKES", "Q_POLARISATION", "Q_POLARIZATION", "Q-POLARISATION", "Q"),
    "U": ("U_STOKES", "U_POLARISATION", "U_POLARIZATION", "U-POLARISATION", "U"),
}
#: FITS STOKES axis values (FITS standard, Greisen & Calabretta 2002).
STOKES_CODES = {1: "I", 2: "Q", 3: "U", 4: "V"}


@dataclass
class HealpixMap:
    """Full-sky HEALPix fields.

    Attributes
    ----------
    fields : dict of str to ndarray
        Pixel values per field name (``"I"``, ``"Q"``, ``"U"``), NaN where masked.
    nside : int
        HEALPix resolution parameter.
    nest : bool
        True for NESTED ordering, False for RING.
    units : dict of str to str
        Unit string per field, from TUNITn.
    coordsys : str
        Coordinate system from COORDSYS (``"G"`` for Galactic).
    polconv : str
        Polarization convention, ``"COSMO"`` (HEALPix and Planck) or ``"IAU"``.
    header : dict
        Other header cards (for example simulation parameters).
    """

    fields: dict[str, np.ndarray]
    nside: int
    nest: bool = False
    units: dict[str, str] = field(default_factory=dict)
    coordsys: str = "G"
    polconv: str = "COSMO"
    header: dict = field(default_factory=dict)

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


def _open_fits(path: Path) -> fits.HDUList:
    if not path.exists():
        raise DustvaeError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DustvaeError(f"{path}: is a directory, not a FITS map")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:  # force reading now, so truncation shows here
                _ = hdu.data
    except DustvaeError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, warnings-as-errors...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DustvaeError(
            f"{path}: not a readable FITS file ({reason}); give a HEALPix or flat FITS map"
        ) from exc
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


def read_map(path: str | Path, fields: Sequence[str] = defaults.FIELDS) -> SkyMap:
    """Read a HEALPix or flat map from a FITS file.

    Parameters
    ----------
    path : str or Path
        FITS file. HEALPix maps are binary tables (Planck's ``I_STOKES``,
        ``Q_STOKES``, ``U_STOKES`` columns or healpy's ``TEMPERATURE``,
        ``Q_POLARISATION``, ...), RING or NESTED from ``ORDERING``, full sky
        (``IMPLICIT``) or partial (``EXPLICIT`` with a ``PIXEL`` column).
        Flat maps are image HDUs named by EXTNAME (``I``, ``Q``, ``U``), or a
        cube whose third axis has ``CTYPE3 = 'STOKES'``.
    fields : sequence of str
        Field names to read, for example ``("Q", "U")``.

    Returns
    -------
    HealpixMap or FlatMap

    Raises
    ------
    DustvaeError
        When the file is missing, not FITS, truncated, has an invalid pixel
        count, or lacks a requested field.
    """
    path = Path(path)
    wanted = _check_fields(fields)
    hdul = _open_fits(path)
    with hdul:
        healpix = [hdu for hdu in hdul[1:] if _is_healpix(hdu)]
        if healpix:
            return _read_healpix(path, healpix[0], wanted)
        images = [hdu for hdu in hdul if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2]
        if images:
            return _read_flat(path, images, wanted)
    raise DustvaeError(
        f"{path}: holds neither a HEALPix table nor a 2D image; give a HEALPix or flat FITS map"
    )


def _read_healpix(path: Path, hdu: fits.BinTableHDU, wanted: list[str]) -> HealpixMap:
    import healpy as hp

    hdr = hdu.header
    names = list(hdu.columns.names)
    ordering = str(hdr.get("ORDERING", "RING")).strip().upper()
    if ordering not in ("RING", "NESTED"):
        raise DustvaeError(f"{path}: ORDERING is {ordering!r}; expected RING or NESTED")
    explicit = str(hdr.get("INDXSCHM", "IMPLICIT")).strip().upper() == "EXPLICIT"
    pixel_index = None
    if explicit:
        pix_col = _resolve_field("PIXEL", names) or next((n for n in names if n.upper() == "PIXEL"), None)
        if pix_col is None:
            raise DustvaeError(f"{path}: INDXSCHM is EXPLICIT but there is no PIXEL column")
        pixel_index = np.asarray(hdu.data[pix_col]).ravel().astype(np.int64)
        if "NSIDE" not in hdr:
            raise DustvaeError(f"{path}: a partial-sky HEALPix map needs NSIDE in its header")
    columns: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for name in wanted:
        col = _resolve_field(name, names)
        if col is None:
            raise DustvaeError(
                f"{path}: no {name} field (columns: {', '.join(names)}); "
                f"choose fields among those present with --fields"
            )
        values = _native_masked(np.asarray(hdu.data[col]).ravel())
        columns[name] = values
        units[name] = str(hdr.get(f"TUNIT{names.index(col) + 1}", "")).strip()
    npix_found = len(next(iter(columns.values())))
    if explicit:
        nside = int(hdr["NSIDE"])
        full = {}
        for name, values in columns.items():
            sky = np.full(hp.nside2npix(nside), np.nan, dtype=values.dtype)
            sky[pixel_index] = values
            full[name] = sky
        columns = full
    else:
        if not hp.isnpixok(npix_found):
            raise DustvaeError(
                f"{path}: {npix_found} pixels is not a valid HEALPix size (12 * nside**2); "
                f"the file is damaged or not a full-sky map"
            )
        nside = hp.npix2nside(npix_found)
        if "NSIDE" in hdr and int(hdr["NSIDE"]) != nside:
            raise DustvaeError(
                f"{path}: header NSIDE = {hdr['NSIDE']} but the table holds {npix_found} pixels "
                f"(nside {nside}); the file is damaged"
            )
    coordsys = str(hdr.get("COORDSYS", "G")).strip().upper()[:1] or "G"
    polconv = str(hdr.get("POLCCONV", "COSMO")).strip().upper()
    extra = {k: hdr[k] for k in hdr if k.startswith("SIM")}
    return HealpixMap(
        fields=columns,
        nside=nside,
        nest=ordering == "NESTED",
        units=units,
        coordsys=coordsys,
        polconv=polconv if polconv in ("COSMO", "IAU") else "COSMO",
        header=extra,
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
        raise DustvaeError(f"{path}: fields have different shapes {sorted(shapes)}; they must match")
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
