"""Filamentary polarized dust: a population of projected 3D spheroidal filaments.

The model follows Huffenberger, Rotti & Collins 2020 (ApJ 899, 31;
arXiv:1906.10052) and the DustFilaments code of Hervias-Caimapo &
Huffenberger 2022 (ApJ 928, 65; arXiv:2107.08317). The sky is a periodic
box of ``size`` pixels on a side and ``size`` pixels deep, projected along
the line of sight, holding a population of filaments:

* each filament is a prolate spheroid with a Gaussian density profile,
  :math:`\\rho_0 \\exp(-r^T \\Sigma^{-1} r / 2)`, whose long-axis standard
  deviation is :math:`\\sigma_\\parallel = L/4` (the long axis spans
  :math:`L = 4\\sigma_\\parallel` between its 2-sigma ends) and whose short axes are
  :math:`\\sigma_\\perp = \\epsilon\\, \\sigma_\\parallel`;
* lengths follow a truncated power law (Pareto), :math:`dN/dL \\propto
  L^{-\\gamma}` between ``min_length`` and ``max_length`` (DustFilaments:
  :math:`\\gamma = 2.445`);
* the long axis is the direction of the local magnetic field rotated by a
  misalignment angle about a random perpendicular axis; the angle has the
  given root-mean-square (a Rayleigh distribution: the tangent-plane offset
  is an isotropic 2D Gaussian). Huffenberger et al. need about 50 degrees to
  reproduce Planck's TE; DustFilaments uses 10 degrees;
* the local field is the layered mean-plus-turbulent field of
  :mod:`dustvae.sky.simulate` (:func:`~dustvae.sky.simulate.layered_field_flat`),
  read at the filament's centre in the layer that its depth falls in;
* each filament's emission is polarized perpendicular to the plane-of-sky
  component of that field, with fraction :math:`p_0 \\cos^2\\gamma`
  (:math:`\\gamma`: inclination of B to the plane of the sky), uniform over
  the filament;
* the central density scales with length as :math:`\\rho_0 \\propto
  L^{-\\eta}`; the number of filaments is set by a filling factor, the summed
  projected area :math:`\\pi (2\\sigma_a)(2\\sigma_b)` of all filaments over the
  map area.

Scaling argument (Huffenberger et al. 2020, section 5, in this model's
terms). A filament of length L carries flux :math:`f \\propto \\rho_0
\\epsilon^2 L^3 \\propto L^{3-\\eta}` and its profile's Fourier transform
falls off beyond :math:`k \\sim 1/L`. Filaments are placed independently
(Poisson), so the power spectrum is the sum of their squared transforms,

.. math::

    P(k) \\propto \\int dL\\, L^{-\\gamma} f(L)^2 |u(kL)|^2
         \\propto k^{\\gamma - 7 + 2\\eta},

between :math:`1/L_{max}` and :math:`1/(\\epsilon L_{min})`. The default
:math:`\\eta = 1` (peak column density independent of size) gives
:math:`k^{\\gamma - 5} = k^{-2.56}` at :math:`\\gamma = 2.445`, close to
Planck's dust slope (:math:`\\ell^{-2.42}`). The aspect ratio sets the ratio of
B- to E-mode power, and the misalignment the TE correlation (tested in
``tests/test_filaments.py``).

Simplifications with respect to the papers: a flat periodic box instead of
a spherical shell (no distance dependence of angular size), Gaussian
profiles instead of their tapered ones (the papers find their spectra
insensitive to the profile), one field value per filament read from the
layered 2D field instead of a 3D field, and a Gaussian pixel window
(``beam`` pixels rms) added to every projected profile so that the thinnest
filaments are not aliased. An optional diffuse component, the Gaussian
turbulence simulator on the same field, is mixed in with weight
``diffuse_weight`` (both components normalised to a mean intensity of one).
Maps are in arbitrary units.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping

import numpy as np

from ..errors import DustvaeError
from .simulate import DustParams, layered_field_flat, polarization_coefficients, simulate_flat

#: FITS header keyword of each parameter (8 characters at most); the field's
#: parameters keep the keywords of :data:`dustvae.sky.simulate.HEADER_KEYS`.
HEADER_KEYS = {
    "size_slope": "FILGAMMA",
    "axis_ratio": "FILEPS",
    "misalignment": "FILMISAL",
    "min_length": "FILLMIN",
    "max_length": "FILLMAX",
    "filling": "FILFILL",
    "density_index": "FILETA",
    "diffuse_weight": "FILDIFF",
    "beam": "FILBEAM",
}

#: Gaussian standard deviations per filament length (the long axis spans +-2 sigma).
_SIGMAS_PER_LENGTH = 0.25
#: Stamps reach this many standard deviations of the projected profile.
_STAMP_SIGMAS = 4.0
#: Stamp pixels evaluated per vectorised chunk (bounds memory to ~100 MB).
_CHUNK_PIXELS = 4_000_000


@dataclass(frozen=True)
class FilamentParams:
    """Parameters of the filament sky: the population and the magnetic field it follows.

    Attributes
    ----------
    size_slope : float
        gamma of the length distribution ``dN/dL ~ L**-gamma`` (DustFilaments: 2.445).
    axis_ratio : float
        epsilon, short-to-long axis ratio (0.16 in DustFilaments; 0.25 gives
        Planck's BB/EE = 0.5 in Huffenberger et al. 2020).
    misalignment : float
        Root-mean-square angle in degrees between a filament's long axis and
        the local magnetic field.
    min_length, max_length : float
        Range of filament lengths in pixels.
    filling : float
        Summed projected area of the filaments over the map area.
    density_index : float
        eta in ``rho_0 ~ L**-eta``; 1 keeps the peak column density independent of length.
    diffuse_weight : float
        Weight in [0, 1] of the diffuse Gaussian-turbulence component.
    beam : float
        Gaussian pixel window, rms in pixels, added to every projected profile.
    field : DustParams
        Magnetic field (mean direction, turbulent slope and level, layers),
        p0, the diffuse component's log-intensity spread, and the seed.
    """

    # ``metadata``: the command line's flag and help (dustvae simulate builds its options from them).
    size_slope: float = field(default=2.445, metadata={
        "flag": "--size-slope", "help": "gamma of the length distribution dN/dL ~ L^-gamma."})
    axis_ratio: float = field(default=0.25, metadata={"flag": "--axis-ratio", "help": "short-to-long axis ratio epsilon."})
    misalignment: float = field(default=20.0, metadata={
        "flag": "--misalignment", "help": "rms angle [deg] between long axis and local field."})
    min_length: float = field(default=8.0, metadata={"flag": "--min-length", "help": "shortest length [px]."})
    max_length: float = field(default=128.0, metadata={"flag": "--max-length", "help": "longest length [px]."})
    filling: float = field(default=2.0, metadata={"flag": "--filling", "help": "summed projected area over map area."})
    density_index: float = field(default=1.0, metadata={"flag": "--density-index", "help": "eta in rho_0 ~ L^-eta."})
    diffuse_weight: float = field(default=0.0, metadata={
        "flag": "--diffuse-weight", "help": "weight of the diffuse turbulence component, in [0, 1]."})
    beam: float = 0.5
    field: DustParams = DustParams()

    def __post_init__(self) -> None:
        checks = [
            (1.0 < self.size_slope <= 6.0, "size_slope must lie in (1, 6]"),
            (0.02 <= self.axis_ratio <= 1.0, "axis_ratio must lie in [0.02, 1]"),
            (0.0 <= self.misalignment <= 180.0, "misalignment must lie in [0, 180] degrees"),
            (1.0 <= self.min_length < self.max_length, "lengths need 1 <= min_length < max_length"),
            (0.0 < self.filling <= 100.0, "filling must lie in (0, 100]"),
            (-3.0 <= self.density_index <= 3.0, "density_index must lie in [-3, 3]"),
            (0.0 <= self.diffuse_weight <= 1.0, "diffuse_weight must lie in [0, 1]"),
            (0.0 <= self.beam <= 10.0, "beam must lie in [0, 10] pixels"),
        ]
        for ok, message in checks:
            if not ok:
                raise DustvaeError(f"filament parameter out of range: {message}")

    def own(self) -> dict[str, float]:
        """The filament parameters, without the field's."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self) if f.name != "field"}

    def to_header(self) -> dict[str, float | int | str]:
        """FITS header cards recording every parameter, the field's included."""
        cards = {HEADER_KEYS[k]: v for k, v in self.own().items()}
        return {"SIMMODEL": "filaments", **self.field.to_header(), **cards}

    @classmethod
    def from_header(cls, header: Mapping[str, object]) -> "FilamentParams | None":
        """Parameters recorded by :meth:`to_header`, or None."""
        field = DustParams.from_header(header)
        if field is None or not all(key in header for key in HEADER_KEYS.values()):
            return None
        return cls(**{name: float(header[key]) for name, key in HEADER_KEYS.items()}, field=field)

    def labels(self) -> dict[str, float]:
        """Every parameter as a float label for a coefficient store."""
        return {**self.field.labels(), **self.own()}


def draw_lengths(n: int, params: FilamentParams, rng: np.random.Generator) -> np.ndarray:
    """``n`` lengths from the truncated power law ``L**-gamma`` (inverse transform)."""
    a = 1.0 - params.size_slope
    lo, hi = params.min_length**a, params.max_length**a
    return (lo + rng.uniform(size=n) * (hi - lo)) ** (1.0 / a)


def mean_projected_area(params: FilamentParams, samples: int = 20000) -> float:
    """Mean sky area of one filament, ``pi (2 sigma_a)(2 sigma_b)`` of its projection.

    Estimated from a fixed draw of lengths and isotropic orientations, so that
    the filament count depends on the parameters only.
    """
    rng = np.random.default_rng(12345)
    length = draw_lengths(samples, params, rng)
    cos_incl = rng.uniform(-1.0, 1.0, samples)  # isotropic axes: uniform cos(angle to the line of sight)
    long = _SIGMAS_PER_LENGTH * length
    short = params.axis_ratio * long
    projected_long = np.sqrt(short**2 + (long**2 - short**2) * (1.0 - cos_incl**2))
    return float(np.mean(np.pi * 4.0 * projected_long * short))


def _misaligned_axes(b_unit: np.ndarray, rms_degrees: float, rng: np.random.Generator) -> np.ndarray:
    """Rotate unit vectors ``(n, 3)`` by Rayleigh-distributed angles of the given rms about random perpendicular axes."""
    n = len(b_unit)
    helper = np.where(np.abs(b_unit[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    e1 = np.cross(b_unit, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(b_unit, e1)
    # An isotropic 2D Gaussian offset in the tangent plane: its length is the
    # angle (rms = rms_degrees), its direction the axis of the rotation.
    offset = rng.standard_normal((n, 2)) * np.radians(rms_degrees) / np.sqrt(2.0)
    angle = np.hypot(offset[:, 0], offset[:, 1])[:, None]
    direction = (offset[:, :1] * e1 + offset[:, 1:] * e2) / np.maximum(angle, 1e-12)
    return np.cos(angle) * b_unit + np.sin(angle) * direction


def _render(size: int, centers: np.ndarray, cov: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum periodic 2D Gaussians into ``(n_weights, size, size)`` maps.

    ``centres`` (n, 2) in pixels (north, east), ``cov`` (n, 2, 2) their
    covariances, ``weights`` (n_weights, n) the peak value of each Gaussian in
    each output map. Each Gaussian is evaluated on a square stamp reaching
    :data:`_STAMP_SIGMAS` of its widest direction, wrapped periodically.
    Stamps are grouped by half-width so that each group is one array operation.
    """
    out = np.zeros((len(weights), size * size))
    widest = np.sqrt(np.linalg.eigvalsh(cov)[:, -1])
    half = np.minimum(np.ceil(_STAMP_SIGMAS * widest).astype(int), size // 2)
    inverse = np.linalg.inv(cov)
    origin = np.floor(centers).astype(int)
    frac = centers - origin
    for h in np.unique(half):
        members = np.flatnonzero(half == h)
        offsets = np.arange(-h, h + 1)
        width = offsets.size
        per_chunk = max(1, _CHUNK_PIXELS // width**2)
        for start in range(0, members.size, per_chunk):
            idx = members[start:start + per_chunk]
            dy = offsets[None, :, None] - frac[idx, 0, None, None]
            dx = offsets[None, None, :] - frac[idx, 1, None, None]
            a, b, c = inverse[idx, 0, 0, None, None], inverse[idx, 0, 1, None, None], inverse[idx, 1, 1, None, None]
            profile = np.exp(-0.5 * (a * dy**2 + 2.0 * b * dy * dx + c * dx**2))
            rows = (origin[idx, 0, None, None] + offsets[None, :, None]) % size
            cols = (origin[idx, 1, None, None] + offsets[None, None, :]) % size
            pixel = (rows * size + cols).ravel()
            for m, w in enumerate(weights[:, idx]):
                out[m] += np.bincount(pixel, (profile * w[:, None, None]).ravel(), minlength=size * size)
    return out.reshape(len(weights), size, size)


def simulate_filaments(size: int, params: FilamentParams = FilamentParams()) -> dict[str, np.ndarray]:
    """Simulate periodic flat I, Q, U maps of a filament population (IAU convention).

    Rows run toward north, columns toward east, as in
    :func:`dustvae.sky.simulate.simulate_flat`. Lengths are in pixels; the
    box is ``size`` pixels deep. The same parameters give the same maps.

    Parameters
    ----------
    size : int
        Map side in pixels.
    params : FilamentParams
        The population, the field and the seed.

    Returns
    -------
    dict
        ``{"I": ..., "Q": ..., "U": ...}``, each ``(size, size)``.
    """
    if params.max_length > 2 * size:
        raise DustvaeError(f"max_length {params.max_length:g} px exceeds twice the map size {size}; "
                           "lower it or simulate a larger map")
    field_params = params.field
    layers = layered_field_flat(size, field_params)
    n_layers = field_params.n_layers
    rng = np.random.default_rng([field_params.seed, 1])  # a stream of its own, beside the field's

    count = max(1, int(round(params.filling * size * size / mean_projected_area(params))))
    centers = rng.uniform(0.0, size, (count, 2))
    layer = rng.integers(0, n_layers, count)
    length = draw_lengths(count, params, rng)
    row, col = centers.astype(int).T % size
    b = np.stack([layers["north"][layer, row, col], layers["east"][layer, row, col], layers["los"][layer, row, col]], axis=1)
    b_unit = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    axis = _misaligned_axes(b_unit, params.misalignment, rng)

    long = _SIGMAS_PER_LENGTH * length
    short = params.axis_ratio * long
    # 3D covariance short^2 I + (long^2 - short^2) a a^T; its sky block is the
    # projected profile's covariance (integrating a Gaussian along one axis
    # leaves the marginal Gaussian of the other two).
    sky_axis = axis[:, :2]
    cov_sky = (short**2)[:, None, None] * np.eye(2) + ((long**2 - short**2)[:, None, None]
                                                       * sky_axis[:, :, None] * sky_axis[:, None, :])
    det3 = short**4 * long**2
    cov_beam = cov_sky + params.beam**2 * np.eye(2)
    # Column density peak of the beam-smoothed projection: flux / (2 pi sqrt(det)),
    # with flux = rho_0 (2 pi)^(3/2) sqrt(det3) and rho_0 = (L / L_min)^-eta.
    rho0 = (length / params.min_length) ** (-params.density_index)
    peak = rho0 * np.sqrt(2.0 * np.pi) * np.sqrt(det3 / np.linalg.det(cov_beam))
    q_frac, u_frac = polarization_coefficients(b[:, 0], b[:, 1], b[:, 2], field_params.p0)
    i_map, q_map, u_map = _render(size, centers, cov_beam, np.stack([peak, peak * q_frac, peak * u_frac]))

    scale = 1.0 / i_map.mean()
    maps = {"I": i_map * scale, "Q": q_map * scale, "U": u_map * scale}
    if params.diffuse_weight > 0:
        diffuse = simulate_flat(size, field_params)
        w = params.diffuse_weight
        diffuse_scale = 1.0 / diffuse["I"].mean()
        maps = {k: (1.0 - w) * maps[k] + w * diffuse[k] * diffuse_scale for k in maps}
    return maps


def power_spectra_teb(maps: Mapping[str, np.ndarray], bins: np.ndarray) -> dict[str, np.ndarray]:
    """Binned flat-sky TT, EE, BB and TE spectra of periodic I, Q, U maps (IAU).

    E and B follow the flat-sky convention with the wavevector angle
    :math:`\\phi_k` measured from north through east, like the polarization
    angle: :math:`E = Q \\cos 2\\phi_k + U \\sin 2\\phi_k`,
    :math:`B = -Q \\sin 2\\phi_k + U \\cos 2\\phi_k`. A bright stripe polarized
    perpendicular to its length is then pure positive E, as in Planck's
    convention (positive TE).

    Parameters
    ----------
    maps : mapping
        ``I``, ``Q``, ``U`` arrays of one square shape.
    bins : array
        Edges of the ``|k|`` bins, in units of the fundamental mode.

    Returns
    -------
    dict
        ``k`` (bin centres) and ``TT``, ``EE``, ``BB``, ``TE`` (mean power per bin).
    """
    size = maps["Q"].shape[-1]
    k_north = np.fft.fftfreq(size)[:, None] * size
    k_east = np.fft.fftfreq(size)[None, :] * size
    phi = np.arctan2(k_east, k_north)
    k = np.hypot(k_north, k_east)
    t, q, u = (np.fft.fft2(maps[f] - maps[f].mean()) for f in ("I", "Q", "U"))
    e = q * np.cos(2 * phi) + u * np.sin(2 * phi)
    b = -q * np.sin(2 * phi) + u * np.cos(2 * phi)
    index = np.digitize(k.ravel(), bins)
    keep = (index > 0) & (index < len(bins))
    counts = np.bincount(index[keep], minlength=len(bins))[1:]

    def binned(values: np.ndarray) -> np.ndarray:
        return np.bincount(index[keep], values.ravel()[keep], minlength=len(bins))[1:] / np.maximum(counts, 1)

    return {
        "k": binned(k),
        "TT": binned(np.abs(t) ** 2),
        "EE": binned(np.abs(e) ** 2),
        "BB": binned(np.abs(b) ** 2),
        "TE": binned((t * np.conj(e)).real),
    }
