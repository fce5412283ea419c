"""Baselines that share the compressor interface with the VAEs: RWST (Models 1 and 2) and PCA."""

from .pca import PCACompressor
from .rwst import RWSTCompressor

__all__ = ["PCACompressor", "RWSTCompressor"]
