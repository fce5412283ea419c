"""Square patches: gnomonic projections of HEALPix maps, tilings of flat maps."""

from __future__ import annotations

import numpy as np

from .. import defaults
from ..errors import DustvaeError
from ..io.maps import FRAMES, FlatMap, HealpixMap
from ..io.patchfile import PatchSet
from .simulate import DustParams

#: Centres are processed in chunks to bound memory on large maps.
_CENTER_CHUNK = 64


def check_patch_size(patch_size: int, J: int = defaults.J, what: str = "patch size", hint: str = "") -> int:
    """The one rule on map and patch sides: a positive multiple of ``2**J`` (the WST subsamples by ``2**J``).

    ``what`` names the value in the message and ``hint`` says which option to change.
    """
    step = 2**J
    if patch_size < step or patch_size % step:
        raise DustvaeError(f"{what} {patch_size} is not a positive multiple of 2**J = {step}; use e.g. {4 * step}"
                           + (f" ({hint})" if hint else ""))
    return int(patch_size)


def default_centers_nside(patch_deg: float) -> int:
    """HEALPix nside whose pixel spacing is closest to the patch width (power of two)."""
    import healpy as hp

    ratio = np.degrees(hp.nside2resol(1)) / patch_deg
    return int(2 ** max(0, int(round(np.log2(max(ratio, 1.0))))))


def _local_frame(vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """North and east unit vectors at unit vectors ``vec`` (..., 3)."""
    x, y, z = vec[..., 0], vec[..., 1], vec[..., 2]
    rho = np.maximum(np.hypot(x, y), 1e-12)
    east = np.stack([-y / rho, x / rho, np.zeros_like(x)], axis=-1)
    north = np.stack([-z * x / rho, -z * y / rho, rho], axis=-1)
    return north, east


def _axis_angle(vec: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle from local north toward east of the direction ``axis`` takes in the tangent plane at ``vec`` (..., 3).

    The tangent-plane projection of ``axis`` has the same components on the
    local north and east vectors as ``axis`` itself, so none is formed.
    """
    x, y, z = vec[..., 0], vec[..., 1], vec[..., 2]
    ax, ay, az = axis[..., 0], axis[..., 1], axis[..., 2]
    # East and north times rho = hypot(x, y), which leaves the angle unchanged.
    return np.arctan2(x * ay - y * ax, (x * x + y * y) * az - z * (x * ax + y * ay))


def _frame_rotation(sky: HealpixMap) -> np.ndarray | None:
    """Matrix taking Galactic unit vectors to the map's frame (None for a Galactic map)."""
    import healpy as hp

    if sky.coordsys not in FRAMES.values():
        raise DustvaeError(f"map frame {sky.coordsys!r} is not one of G, C, E (galactic, celestial, ecliptic)")
    if sky.coordsys == "G":
        return None
    return np.asarray(hp.Rotator(coord=["G", sky.coordsys]).mat, dtype=np.float64)


def _gather(sky: HealpixMap, values: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """``values[:, pix]``, for full-sky arrays or a sparse map's listed pixels (others NaN)."""
    if sky.pixels is None:
        return values[:, pix]
    if sky.pixels.size == 0:
        return np.full((values.shape[0],) + pix.shape, np.nan, dtype=values.dtype)
    pos = np.minimum(np.searchsorted(sky.pixels, pix), sky.pixels.size - 1)
    out = values[:, pos]
    out[:, sky.pixels[pos] != pix] = np.nan
    return out


def _centers_near_data(sky: HealpixMap, rotation: np.ndarray | None, nside_c: int, reach: float) -> np.ndarray:
    """RING indices of the centres grid within ``reach`` radians of a listed pixel of a sparse map.

    Patches elsewhere are wholly masked; skipping them keeps the work of a
    small partial map small whatever its NSIDE.
    """
    import healpy as hp

    vec = np.stack(hp.pix2vec(sky.nside, sky.pixels, nest=sky.nest), -1)
    if rotation is not None:
        vec = vec @ rotation  # map frame -> Galactic (the matrix is orthogonal)
    cells = np.unique(hp.vec2pix(nside_c, vec[:, 0], vec[:, 1], vec[:, 2]))
    radius = reach + hp.max_pixrad(nside_c)  # a listed pixel lies within max_pixrad of its cell's centre
    near = [hp.query_disc(nside_c, hp.pix2vec(nside_c, int(c)), radius) for c in cells]
    return np.unique(np.concatenate(near)) if near else np.zeros(0, np.int64)


def healpix_patches(
    sky: HealpixMap,
    patch_size: int = defaults.PATCH_SIZE,
    *,
    pixel_scale_arcmin: float | None = None,
    centers_nside: int | None = None,
    b_min: float = 0.0,
    max_masked_fraction: float = defaults.MAX_MASKED_FRACTION,
    J: int = defaults.J,
) -> PatchSet:
    """Cut gnomonic patches centred on a regular HEALPix grid.

    Parameters
    ----------
    sky : HealpixMap
        The map (any field set).
    patch_size : int
        Side in pixels, a multiple of ``2**J``.
    pixel_scale_arcmin : float, optional
        Pixel side; defaults to the map's resolution.
    centers_nside : int, optional
        Centres are the pixel centres of this HEALPix grid; the default
        spaces them by about one patch width.
    b_min : float
        Keep centres with Galactic ``|b| >= b_min`` degrees, whatever the map's frame.
    max_masked_fraction : float
        Drop patches with a larger fraction of masked pixels. Of a sparse
        partial-sky map (``sky.pixels`` set), patches with no data at all
        are dropped even at 1.

    Returns
    -------
    PatchSet
        Rows run toward Galactic north and columns toward west (east on the
        left, as the sky is seen). Values are bilinear interpolations of
        the map; a patch pixel is masked when any of its four HEALPix
        neighbours is. When Q and U are both present, the Q/U of each of
        the four neighbours is rotated from that pixel's local meridian to
        the patch's vertical axis before they are averaged, so the
        polarization angle is measured in one frame across the patch, and
        the interpolation is as good near the poles of the map's frame,
        where the four meridians differ by up to 90 degrees, as elsewhere.

    Notes
    -----
    Centres, patch axes and the Q/U basis are Galactic for every map
    frame. For a celestial or ecliptic map each patch pixel's Galactic
    direction is rotated into the map's frame, where the map is
    interpolated, and the patch's vertical axis is rotated with it; the
    Q/U rotation then goes from the map frame's local meridian straight to
    the patch axis, which includes the angle between the two frames'
    meridians. Rotating per patch pixel interpolates once, as for a
    Galactic map, and costs one 3 x 3 product per pixel, where rotating the
    whole map first would interpolate twice (healpy's ``rotate_map_pixel``)
    or band-limit it (``rotate_map_alms``), at the cost of a full-sky pass.
    """
    import healpy as hp

    check_patch_size(patch_size, J)
    scale = float(pixel_scale_arcmin or sky.resolution_arcmin)
    step = np.radians(scale / 60.0)
    patch_deg = patch_size * scale / 60.0
    if patch_deg >= 90.0:
        raise DustvaeError(f"patch width {patch_deg:.0f} deg is too large for a gnomonic projection; lower `patch_size` or `pixel_scale`")
    nside_c = int(centers_nside or default_centers_nside(patch_deg))
    if nside_c < 1 or nside_c & (nside_c - 1):
        raise DustvaeError(f"centres nside {nside_c} is not a power of 2")
    lon, lat = hp.pix2ang(nside_c, np.arange(hp.nside2npix(nside_c)), lonlat=True)
    keep = np.abs(lat) >= b_min
    if not keep.any():
        raise DustvaeError(f"no patch centre has |b| >= {b_min} deg; lower `b_min`")
    names = list(sky.fields)
    rotation = _frame_rotation(sky)
    if rotation is not None and ("Q" in names) != ("U" in names):
        raise DustvaeError(f"a {sky.frame} map's {'Q' if 'Q' in names else 'U'} needs the other Stokes field to be "
                           f"expressed in Galactic axes; read both Q and U (`fields` Q,U)")
    offsets = (np.arange(patch_size) - (patch_size - 1) / 2.0) * step
    skipped = np.zeros_like(keep)
    if sky.pixels is not None:
        # Half-diagonal of the patch, plus one map pixel for the interpolation's neighbours.
        reach = np.arctan(np.sqrt(2.0) * np.abs(offsets).max()) + hp.max_pixrad(sky.nside)
        near = np.zeros_like(keep)
        near[_centers_near_data(sky, rotation, nside_c, reach)] = True
        skipped = keep & ~near
        keep &= near
    n_skipped = int(skipped.sum())  # wholly masked (no data at all): dropped uncut, whatever max_masked_fraction
    lon, lat = lon[keep], lat[keep]

    y_off, x_off = np.meshgrid(offsets, offsets, indexing="ij")  # rows north, columns west
    values = np.stack([sky.fields[n] for n in names])
    sign = 1.0 if sky.polconv == "IAU" else -1.0
    rotate = "Q" in names and "U" in names
    out_patches, fractions = [np.zeros((0, len(names), patch_size, patch_size), np.float32)], [np.zeros(0)]
    for start in range(0, lon.size, _CENTER_CHUNK):
        c_lon, c_lat = np.radians(lon[start:start + _CENTER_CHUNK]), np.radians(lat[start:start + _CENTER_CHUNK])
        center = np.stack([np.cos(c_lat) * np.cos(c_lon), np.cos(c_lat) * np.sin(c_lon), np.sin(c_lat)], -1)
        c_north, c_east = _local_frame(center)
        # Inverse gnomonic projection: the tangent-plane point, normalised.
        vec = (center[:, None, None, :] + y_off[None, ..., None] * c_north[:, None, None, :]
               - x_off[None, ..., None] * c_east[:, None, None, :])
        vec /= np.linalg.norm(vec, axis=-1, keepdims=True)
        if rotation is not None:  # Galactic directions into the map's frame, where it is sampled
            vec, c_north = vec @ rotation.T, c_north @ rotation.T
        theta = np.arccos(np.clip(vec[..., 2], -1, 1))
        phi = np.arctan2(vec[..., 1], vec[..., 0])
        pix, weights = hp.get_interp_weights(sky.nside, theta.ravel(), phi.ravel(), nest=sky.nest)
        neighbours = _gather(sky, values, pix)  # (fields, 4, pixels)
        if rotate:
            # Each neighbour's Q/U from its own meridian to the patch axis before they are averaged: the
            # meridians of the four turn by up to 90 degrees near the map frame's poles.
            axis = np.broadcast_to(c_north[:, None, None, :], vec.shape).reshape(-1, 3)
            iq, iu = names.index("Q"), names.index("U")
            for k in range(pix.shape[0]):
                delta = _axis_angle(np.stack(hp.pix2vec(sky.nside, pix[k], nest=sky.nest), -1), axis)
                z = (neighbours[iq, k] + 1j * sign * neighbours[iu, k]) * np.exp(-2j * delta)
                neighbours[iq, k], neighbours[iu, k] = z.real, sign * z.imag
        sampled = np.einsum("fkp,kp->fp", neighbours, weights)
        sampled = sampled.reshape((len(names),) + theta.shape).transpose(1, 0, 2, 3)
        masked = np.isnan(sampled).any(axis=1)
        out_patches.append(sampled.astype(np.float32))
        fractions.append(masked.mean(axis=(-2, -1)))
    patches = np.concatenate(out_patches)
    fraction = np.concatenate(fractions)
    good = fraction <= max_masked_fraction
    if sky.pixels is not None:
        good &= fraction < 1.0  # the uncut ones near data, for the same rule
    return PatchSet(
        patches=patches[good],
        fields=tuple(names),
        centers=np.stack([lon, lat], -1)[good],
        center_frame="galactic",
        masked_fraction=fraction[good].astype(np.float32),
        pixel_scale_arcmin=scale,
        n_dropped=int((~good).sum()) + n_skipped,
        source_frame=sky.frame,
    )


def flat_patches(
    sky: FlatMap,
    patch_size: int = defaults.PATCH_SIZE,
    *,
    max_masked_fraction: float = defaults.MAX_MASKED_FRACTION,
    J: int = defaults.J,
) -> PatchSet:
    """Tile a flat map with non-overlapping square patches (row-major order).

    A periodic map exactly one patch wide gives one periodic patch.
    """
    check_patch_size(patch_size, J)
    names = list(sky.fields)
    image = np.stack([sky.fields[n] for n in names])
    rows, cols = image.shape[-2] // patch_size, image.shape[-1] // patch_size
    if rows == 0 or cols == 0:
        raise DustvaeError(f"map of {image.shape[-2]} x {image.shape[-1]} pixels is smaller than one {patch_size}-pixel patch; "
                           "lower `patch_size`")
    tiles = image[:, : rows * patch_size, : cols * patch_size]
    tiles = tiles.reshape(len(names), rows, patch_size, cols, patch_size).transpose(1, 3, 0, 2, 4)
    tiles = tiles.reshape(rows * cols, len(names), patch_size, patch_size)
    center_rows, center_cols = np.meshgrid(
        (np.arange(rows) + 0.5) * patch_size - 0.5, (np.arange(cols) + 0.5) * patch_size - 0.5, indexing="ij"
    )
    fraction = np.isnan(tiles).any(axis=1).mean(axis=(-2, -1))
    good = fraction <= max_masked_fraction
    periodic = sky.periodic and rows == cols == 1 and image.shape[-1] == patch_size == image.shape[-2]
    return PatchSet(
        patches=tiles[good].astype(np.float32),
        fields=tuple(names),
        centers=np.stack([center_rows.ravel(), center_cols.ravel()], -1)[good],
        center_frame="pixel",
        masked_fraction=fraction[good].astype(np.float32),
        pixel_scale_arcmin=float(sky.pixel_scale_arcmin) if sky.pixel_scale_arcmin else float("nan"),
        periodic=periodic,
        n_dropped=int((~good).sum()),
    )


def cut_patches(sky: HealpixMap | FlatMap, patch_size: int = defaults.PATCH_SIZE, **options) -> PatchSet:
    """Cut patches from either geometry; HEALPix-only options are ignored for flat maps."""
    if isinstance(sky, HealpixMap):
        patch_set = healpix_patches(sky, patch_size, **options)
    else:
        flat_options = {k: v for k, v in options.items() if k in ("max_masked_fraction", "J")}
        patch_set = flat_patches(sky, patch_size, **flat_options)
    params = DustParams.from_header(sky.header)
    if params is not None:  # a simulated map: its parameters become per-patch labels
        patch_set.labels = {k: np.full(len(patch_set), v) for k, v in params.labels().items()}
    return patch_set
