"""Baselines that share the compressor interface with the VAEs: RWST (Models 1 and 2), PCA, symmetric PCA and reduced-rank regression."""

from .pca import PCACompressor, SymmetricPCACompressor
from .rrr import ReducedRankRegression, SymmetricReducedRankRegression
from .rwst import RWSTCompressor

__all__ = ["PCACompressor", "RWSTCompressor", "ReducedRankRegression", "SymmetricReducedRankRegression", "SymmetricPCACompressor"]
