"""How close a synthesised map is to an original: power spectra, pixel distributions, Gaussian counterparts.

These are the checks a physicist runs on a synthesis: the power spectrum in
octave bands of wavenumber (the scales the WST's dyadic wavelets see), the
distribution of pixel values, and, as the yardstick of non-Gaussianity, a
Gaussian random field with exactly the original's power spectrum.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy import stats

from .. import defaults


def _wavenumbers(size: int) -> np.ndarray:
    """``|k|`` of every Fourier mode of a size x size map, in cycles per map side."""
    k = np.fft.fftfreq(size) * size
    return np.hypot(k[:, None], k[None, :])


def octave_edges(size: int) -> np.ndarray:
    """Band edges 1, 2, 4, ..., size/2 in cycles per map side (the last band ends at the Nyquist wavenumber)."""
    return 2.0 ** np.arange(0, int(np.log2(size // 2)) + 1)


def in_reach(size: int, J: int = defaults.J) -> np.ndarray:
    """Which octave bands of :func:`octave_edges` the WST constrains: lower edge at least ``size / 2**(J + 1)``.

    The largest wavelet (scale ``2**(J - 1)``, peak near ``3 size / 2**(J + 2)``
    cycles per map) sees nothing of wavelengths much beyond ``2**(J + 1)``
    pixels, and the normalised vector carries no low-pass information but
    the mean; so a synthesis of a map larger than ``2**(J + 1)`` pixels keeps
    in those bands only what its initial noise had there.
    """
    return octave_edges(size)[:-1] >= size / 2 ** (J + 1)


def band_power(image: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean power ``|FFT|^2 / n^2`` of the modes with ``edges[i] <= |k| < edges[i + 1]`` (the last band closed).

    ``image`` may hold several maps (..., n, n); their powers are summed (for
    Q and U: the total polarised power, E plus B).
    """
    image = np.asarray(image, dtype=np.float64)
    size = image.shape[-1]
    power = np.abs(np.fft.fft2(image)) ** 2 / size**2
    power = power.reshape(-1, size, size).sum(axis=0)
    k = _wavenumbers(size)
    out = np.empty(len(edges) - 1)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (k >= lo) & ((k < hi) if i < len(edges) - 2 else (k <= hi))
        out[i] = power[inside].mean()
    return out


def radial_spectrum(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthally averaged power in unit-width rings of ``|k|`` (1 to size/2); fields summed. Returns (k, P)."""
    image = np.asarray(image, dtype=np.float64)
    size = image.shape[-1]
    power = (np.abs(np.fft.fft2(image)) ** 2 / size**2).reshape(-1, size, size).sum(axis=0)
    ring = np.rint(_wavenumbers(size)).astype(int).ravel()
    total = np.bincount(ring, power.ravel())
    counts = np.bincount(ring)
    k = np.arange(1, size // 2 + 1)
    return k.astype(float), total[k] / counts[k]


def spectrum_error(original: np.ndarray, synthesis: np.ndarray) -> np.ndarray:
    """Per octave band, ``log2`` of the synthesis's band power over the original's (0 is a perfect match)."""
    edges = octave_edges(original.shape[-1])
    return np.log2(band_power(synthesis, edges) / band_power(original, edges))


def gaussian_counterpart(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """A Gaussian random field with exactly the power spectrum (and mean) of each map of ``maps`` (..., n, n).

    Every Fourier amplitude is kept and every phase replaced by the phase of
    white noise's transform (so the result is real): the spectrum is
    identical and whatever non-Gaussianity lay in the phases is gone.
    """
    maps = np.asarray(maps, dtype=np.float64)
    size = maps.shape[-1]
    noise = np.fft.rfft2(np.random.default_rng(seed).standard_normal(maps.shape))
    phase = noise / np.maximum(np.abs(noise), 1e-300)
    spectrum = np.fft.rfft2(maps)
    phase[..., 0, 0] = 1.0  # keep the mean
    out = np.fft.irfft2(np.abs(spectrum) * phase, s=(size, size))
    return out + (maps.mean(axis=(-2, -1), keepdims=True) - out.mean(axis=(-2, -1), keepdims=True))


def pixel_distance(original: np.ndarray, other: np.ndarray) -> float:
    """Wasserstein-1 distance between the pixel values of two maps, in units of the original's pixel std.

    Values of all fields are pooled (for Q and U, the distribution of the
    polarization components).
    """
    a = np.asarray(original, dtype=np.float64).ravel()
    b = np.asarray(other, dtype=np.float64).ravel()
    return float(stats.wasserstein_distance(a, b) / a.std())


def within_reach(maps: np.ndarray, J: int = defaults.J) -> np.ndarray:
    """``maps`` (..., n, n) without the Fourier modes the WST does not constrain: ``0 < |k| < n / 2**(J + 1)``.

    The bands beyond the WST's reach (:func:`in_reach`) hold, in a
    synthesis, what its initial noise had there, and on patches with a
    steep spectrum they carry much of the pixel variance; comparing pixel
    distributions of maps filtered this way compares what the vector
    decides. The mean is kept. Nothing is removed when ``n <= 2**(J + 1)``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    k = _wavenumbers(maps.shape[-1])
    modes = np.fft.fft2(maps)
    modes[..., (k > 0) & (k < maps.shape[-1] / 2 ** (J + 1))] = 0
    return np.fft.ifft2(modes).real


def excess_kurtosis(maps: np.ndarray) -> float:
    """Excess kurtosis of the pixel values (0 for a Gaussian), fields pooled after removing each field's mean."""
    maps = np.asarray(maps, dtype=np.float64)
    centerd = maps - maps.mean(axis=(-2, -1), keepdims=True)
    return float(stats.kurtosis(centerd.ravel()))


def pixel_moments(maps: np.ndarray) -> dict[str, list[float]]:
    """Excess kurtosis and skewness of Q, of U and of P = sqrt(Q**2 + U**2), for maps ``(2, n, n)`` (Q, U).

    Returns ``{"kurtosis": [Q, U, P], "skewness": [Q, U, P]}``.
    """
    maps = np.asarray(maps, dtype=np.float64)
    parts = [maps[0], maps[1], np.hypot(maps[0], maps[1])]
    return {"kurtosis": [excess_kurtosis(p[None]) for p in parts], "skewness": [float(stats.skew(p.ravel())) for p in parts]}


def compare(original: np.ndarray, synthesis: np.ndarray, J: int = defaults.J) -> dict:
    """The comparison of one synthesis with its original: spectrum error per band, pixel distance, kurtosis.

    ``spectrum_rms_log2`` is over the bands the WST constrains (:func:`in_reach`).
    """
    error = spectrum_error(original, synthesis)
    reach = in_reach(original.shape[-1], J)
    return {
        "octave_edges": octave_edges(original.shape[-1]).tolist(),
        "spectrum_log2_ratio": error.tolist(),
        "bands_in_reach": reach.tolist(),
        "spectrum_rms_log2": float(np.sqrt(np.mean(error[reach] ** 2))),
        "pixel_distance": pixel_distance(original, synthesis),
        "kurtosis_original": excess_kurtosis(original),
        "kurtosis_synthesis": excess_kurtosis(synthesis),
    }


def summarise(pairs: Iterable[tuple[np.ndarray, np.ndarray]], J: int = defaults.J) -> dict:
    """Means over ``(original, synthesis)`` pairs: per-band and RMS spectrum error, and pixel distance.

    The numbers a results file keeps per compressor (its syntheses against
    the original patches).
    """
    rows = [compare(original, synthesis, J) for original, synthesis in pairs]
    if not rows:
        raise ValueError("no pairs to summarise")
    return {
        "n": len(rows),
        "octave_edges": rows[0]["octave_edges"],
        "bands_in_reach": rows[0]["bands_in_reach"],
        "spectrum_log2_ratio": np.mean([r["spectrum_log2_ratio"] for r in rows], axis=0).tolist(),
        "spectrum_rms_log2": float(np.mean([r["spectrum_rms_log2"] for r in rows])),
        "pixel_distance": float(np.mean([r["pixel_distance"] for r in rows])),
    }
