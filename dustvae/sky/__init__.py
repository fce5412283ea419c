"""The sky: simulated dust maps and the patches cut from maps."""

from .patches import cut_patches, flat_patches, healpix_patches
from .simulate import DustParams, simulate_flat, simulate_healpix

__all__ = ["DustParams", "simulate_flat", "simulate_healpix", "cut_patches", "flat_patches", "healpix_patches"]
