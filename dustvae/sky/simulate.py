"""Dust-like polarized emission from a mean plus turbulent magnetic field.

The model follows Vansyngel et al. 2017 (A&A 603, A62) and its predecessors
(Planck Collaboration XLIV 2016; Ghosh et al. 2017): the Galactic magnetic
field along each line of sight is a uniform mean field plus a Gaussian
turbulent component with a power-law spectrum, and the emission is summed
over a few independent layers:

.. math::

    B_i = \\hat B_0 + f_M\\, B_{t,i}, \\qquad
    S_i = \\exp(\\sigma g_i - \\sigma^2/2) / N,

    I = \\sum_i S_i, \\quad
    Q + iU = p_0 \\sum_i S_i \\cos^2\\gamma_i\\, e^{2i\\psi_i},

with :math:`\\gamma_i` the angle between :math:`B_i` and the plane of the
sky and :math:`\\psi_i` the polarization angle, perpendicular to the
plane-of-sky field. Each component of :math:`B_{t,i}` and each log-intensity
:math:`g_i` is an independent unit-variance Gaussian field with power
spectrum :math:`P(k) \\propto k^{-\\alpha}` (flat) or
:math:`C_\\ell \\propto \\ell^{-\\alpha}` (sphere).

Simplifications with respect to Vansyngel et al.: layers are independent
(no correlation between layers), the total intensity omits their small
:math:`p_0(\\cos^2\\gamma - 2/3)` correction, so that :math:`0 \\le p \\le p_0`
holds exactly, and the log-normal intensity is a random field with the same
slope rather than an observed template. Maps are in arbitrary units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Mapping

import numpy as np

from ..errors import DustvaeError

#: FITS header keyword for each simulation parameter (8 characters at most).
HEADER_KEYS = {
    "slope": "SIMSLOPE",
    "turbulence": "SIMFM",
    "n_layers": "SIMNLAYR",
    "p0": "SIMP0",
    "intensity_sigma": "SIMSIGI",
    "mean_field_angle": "SIMB0ANG",
    "mean_field_inclination": "SIMB0INC",
    "seed": "SIMSEED",
}


@dataclass(frozen=True)
class DustParams:
    """Physical parameters of the simulated dust sky.

    Attributes
    ----------
    slope : float
        Spectral index alpha of the turbulent field, ``P(k) ~ k**-alpha``
        (Vansyngel et al. 2017 find alpha_M ~ 2.5).
    turbulence : float
        f_M, the rms of each turbulent component relative to the mean field
        (their best fit is ~0.9).
    n_layers : int
        Number of independent layers summed along the line of sight (~4-7).
    p0 : float
        Intrinsic polarization fraction (~0.26).
    intensity_sigma : float
        Standard deviation of the log-intensity of a layer.
    mean_field_angle : float
        Direction of the mean field in degrees: position angle from north
        toward east on a flat map, Galactic longitude on the sphere.
    mean_field_inclination : float
        Angle of the mean field out of the plane of the sky (flat) or Galactic
        latitude of its direction (sphere), in degrees.
    seed : int
        Random seed; the same parameters and seed give the same map.
    """

    # ``metadata``: the command line's flag and help (dustvae simulate builds its options from them).
    slope: float = field(default=2.5, metadata={
        "flag": "--slope", "help": "Spectral index alpha of the turbulent field, P(k) ~ k^-alpha."})
    turbulence: float = field(default=0.9, metadata={"flag": "--turbulence", "help": "Turbulent-to-mean field ratio f_M."})
    n_layers: int = field(default=4, metadata={"flag": "--layers", "help": "Independent layers along the line of sight."})
    p0: float = field(default=0.26, metadata={"flag": "--p0", "help": "Intrinsic polarization fraction."})
    intensity_sigma: float = field(default=0.4, metadata={
        "flag": "--intensity-sigma", "help": "Std of the log-intensity of a layer."})
    mean_field_angle: float = field(default=0.0, metadata={
        "flag": "--field-angle", "help": "Mean field direction [deg] (flat: position angle; sphere: Galactic longitude)."})
    mean_field_inclination: float = field(default=0.0, metadata={
        "flag": "--field-inclination",
        "help": "Mean field inclination [deg] (flat: out of the sky plane; sphere: Galactic latitude)."})
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (1.0 <= self.slope <= 5.0, "slope must lie in [1, 5]"),
            (0.0 <= self.turbulence <= 10.0, "turbulence must lie in [0, 10]"),
            (1 <= self.n_layers <= 50, "n_layers must lie in [1, 50]"),
            (0.0 < self.p0 <= 1.0, "p0 must lie in (0, 1]"),
            (0.0 <= self.intensity_sigma <= 3.0, "intensity_sigma must lie in [0, 3]"),
        ]
        for ok, message in checks:
            if not ok:
                raise DustvaeError(f"simulation parameter out of range: {message}")

    def to_header(self) -> dict[str, float | int]:
        """FITS header cards that record these parameters."""
        return {HEADER_KEYS[k]: v for k, v in asdict(self).items()}

    @classmethod
    def from_header(cls, header: Mapping[str, object]) -> "DustParams | None":
        """Parameters recorded in a header by :meth:`to_header`, or None."""
        if not all(key in header for key in HEADER_KEYS.values()):
            return None
        types = {f.name: f.type for f in fields(cls)}
        values = {}
        for name, key in HEADER_KEYS.items():
            values[name] = int(header[key]) if types[name] in ("int", int) else float(header[key])
        return cls(**values)

    def labels(self) -> dict[str, float]:
        """Parameters as float labels for a coefficient store."""
        return {k: float(v) for k, v in asdict(self).items()}


def gaussian_field_flat(size: int, slope: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """Periodic unit-variance Gaussian fields with power spectrum ``k**-slope``.

    Returns an array of shape ``(count, size, size)``.
    """
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = np.inf  # no mean: the mean field is added separately
    amplitude = k ** (-slope / 2.0)
    noise = rng.standard_normal((count, size, size))
    fieldmap = np.fft.irfft2(np.fft.rfft2(noise) * amplitude, s=(size, size))
    fieldmap -= fieldmap.mean(axis=(-2, -1), keepdims=True)
    fieldmap /= fieldmap.std(axis=(-2, -1), keepdims=True)
    return fieldmap


def gaussian_field_sphere(nside: int, slope: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian fields on the HEALPix sphere with ``C_ell ~ ell**-slope`` (RING).

    The harmonic coefficients are drawn from ``rng`` (healpy's own synfast
    draws from NumPy's global state, which would not be reproducible here).
    """
    import healpy as hp

    lmax = 3 * nside - 1
    ell = np.arange(lmax + 1, dtype=float)
    cl = np.zeros(lmax + 1)
    cl[2:] = ell[2:] ** (-slope)
    l_index, m_index = hp.Alm.getlm(lmax)
    sigma = np.sqrt(cl[l_index] / 2.0)
    maps = np.empty((count, hp.nside2npix(nside)))
    for n in range(count):
        re, im = rng.standard_normal((2, l_index.size))
        alm = sigma * (re + 1j * im)
        alm[m_index == 0] = np.sqrt(2.0) * sigma[m_index == 0] * re[m_index == 0]
        sky = hp.alm2map(alm, nside, lmax=lmax)
        maps[n] = (sky - sky.mean()) / sky.std()
    return maps


def _emission(b_perp1: np.ndarray, b_perp2: np.ndarray, b_los: np.ndarray, log_i: np.ndarray, p: DustParams):
    """Sum the layers; components are (layer, pixel...) arrays. Returns I, Q, U (IAU).

    ``b_perp1`` points to the reference direction of the polarization angle
    (north), ``b_perp2`` 90 degrees from it toward east.
    """
    s = np.exp(p.intensity_sigma * log_i - p.intensity_sigma**2 / 2.0) / p.n_layers
    q_frac, u_frac = polarization_coefficients(b_perp1, b_perp2, b_los, p.p0)
    return s.sum(axis=0), (q_frac * s).sum(axis=0), (u_frac * s).sum(axis=0)


def layered_field_flat(size: int, params: DustParams) -> dict[str, np.ndarray]:
    """The magnetic field and log-intensity of each layer of a periodic flat box.

    Returns arrays of shape ``(n_layers, size, size)``: ``north``, ``east`` and
    ``los`` components of :math:`B_i = \\hat B_0 + f_M B_{t,i}` and the
    unit-variance log-intensity field ``log_i``. The same parameters and seed
    give the same field, so the filament model (:mod:`dustvae.sky.filaments`)
    and the diffuse emission of :func:`simulate_flat` trace one field.
    """
    if size < 8:
        raise DustvaeError(f"map size {size} is too small; use at least 8 pixels")
    rng = np.random.default_rng(params.seed)
    n = params.n_layers
    turbulent = gaussian_field_flat(size, params.slope, 4 * n, rng).reshape(n, 4, size, size)
    angle = np.radians(params.mean_field_angle)
    inclination = np.radians(params.mean_field_inclination)
    f = params.turbulence
    return {
        "north": np.cos(inclination) * np.cos(angle) + f * turbulent[:, 0],
        "east": np.cos(inclination) * np.sin(angle) + f * turbulent[:, 1],
        "los": np.sin(inclination) + f * turbulent[:, 2],
        "log_i": turbulent[:, 3],
    }


def polarization_coefficients(b_north: np.ndarray, b_east: np.ndarray, b_los: np.ndarray,
                              p0: float) -> tuple[np.ndarray, np.ndarray]:
    """Q/I and U/I (IAU) of emission from grains in the field B.

    :math:`Q/I = p_0 \\cos^2\\gamma \\cos 2\\psi` and likewise for U, with
    :math:`\\psi` perpendicular to the plane-of-sky field and :math:`\\gamma`
    the inclination of B to the plane of the sky.
    """
    b2 = np.maximum(b_north**2 + b_east**2 + b_los**2, 1e-12)
    # psi = phi_B + 90 deg: cos 2psi = -cos 2phi_B, sin 2psi = -sin 2phi_B, and
    # cos^2(gamma) cos 2phi_B = (B1^2 - B2^2) / |B|^2, cos^2(gamma) sin 2phi_B = 2 B1 B2 / |B|^2.
    return -p0 * (b_north**2 - b_east**2) / b2, -p0 * (2.0 * b_north * b_east) / b2


def simulate_flat(size: int, params: DustParams = DustParams()) -> dict[str, np.ndarray]:
    """Simulate periodic flat I, Q, U maps of ``size`` x ``size`` pixels (IAU convention).

    Rows run toward north, columns toward east; the polarization angle is
    measured from north through east.
    """
    layers = layered_field_flat(size, params)
    i, q, u = _emission(layers["north"], layers["east"], layers["los"], layers["log_i"], params)
    return {"I": i, "Q": q, "U": u}


def simulate_healpix(nside: int, params: DustParams = DustParams()) -> dict[str, np.ndarray]:
    """Simulate full-sky I, Q, U HEALPix maps (RING ordering, COSMO convention as Planck).

    The mean field is the unit vector toward Galactic longitude
    ``mean_field_angle`` and latitude ``mean_field_inclination``.
    """
    import healpy as hp

    if nside < 1 or nside & (nside - 1):
        raise DustvaeError(f"nside {nside} is not a power of 2; use 1, 2, 4, ..., 8192")
    rng = np.random.default_rng(params.seed)
    n = params.n_layers
    turbulent = gaussian_field_sphere(nside, params.slope, 4 * n, rng).reshape(n, 4, -1)
    theta, phi = hp.pix2ang(nside, np.arange(hp.nside2npix(nside)))
    los = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    north = -np.stack([np.cos(theta) * np.cos(phi), np.cos(theta) * np.sin(phi), -np.sin(theta)])
    east = np.stack([-np.sin(phi), np.cos(phi), np.zeros_like(phi)])
    lon, lat = np.radians(params.mean_field_angle), np.radians(params.mean_field_inclination)
    mean = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    f = params.turbulence
    field3d = mean[None, :, None] + f * turbulent[:, :3]  # (layer, xyz, pixel)
    i, q, u = _emission(
        np.einsum("lkp,kp->lp", field3d, north),
        np.einsum("lkp,kp->lp", field3d, east),
        np.einsum("lkp,kp->lp", field3d, los),
        turbulent[:, 3],
        params,
    )
    return {"I": i, "Q": q, "U": -u}  # COSMO: U flips sign with respect to IAU


def power_spectrum_slope(image: np.ndarray, kmin: float = 4.0, kmax: float | None = None) -> float:
    """Log-log slope of the azimuthally averaged power spectrum of a periodic image.

    Wavenumbers are in units of the fundamental mode; the fit uses
    ``kmin <= k <= kmax`` (default: a quarter of the size).
    """
    size = image.shape[-1]
    kmax = kmax if kmax is not None else size / 4.0
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size) * size, np.fft.fftfreq(size) * size, indexing="ij"))
    bins = np.arange(np.floor(kmin), np.ceil(kmax) + 1)
    index = np.digitize(k.ravel(), bins)
    spectrum = np.bincount(index, power.ravel(), minlength=len(bins) + 1)
    counts = np.bincount(index, minlength=len(bins) + 1)
    centers = np.bincount(index, k.ravel(), minlength=len(bins) + 1)
    keep = (counts > 0) & (np.arange(len(counts)) > 0) & (np.arange(len(counts)) < len(bins))
    kk = centers[keep] / counts[keep]
    pk = spectrum[keep] / counts[keep]
    return float(np.polyfit(np.log(kk), np.log(pk), 1)[0])
