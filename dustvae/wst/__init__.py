"""The wavelet scattering transform: Kymatio wrapper, coefficient layout, normalisation."""

from .layout import CoefficientLayout, kymatio_angles
from .transform import denormalise, normalise, prepare, scattering_means, scattering_operator

__all__ = [
    "CoefficientLayout",
    "kymatio_angles",
    "denormalise",
    "normalise",
    "prepare",
    "scattering_means",
    "scattering_operator",
]
