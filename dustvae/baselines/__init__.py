"""Baselines that share the compressor interface with the VAEs: RWST (Models 1 and 2), PCA and symmetric PCA."""

from .pca import PCACompressor, SymmetricPCACompressor
from .rwst import RWSTCompressor

__all__ = ["PCACompressor", "RWSTCompressor", "SymmetricPCACompressor"]
