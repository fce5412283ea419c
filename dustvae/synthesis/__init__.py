"""Maps from WST vectors: gradient descent on a periodic map until its normalised WST matches a target.

``targets`` turns stores, maps and trained models into :class:`Target`
vectors; :func:`synthesize` fits a map to one (L-BFGS or Adam, autograd
through the WST of :mod:`.vector`); ``output`` writes FITS files; ``compare``
measures a synthesis against its original (:mod:`dustvae.analysis.synthesis_figure` draws them side by side).
"""

from .optimize import OPTIMIZERS, Synthesis, synthesize
from .targets import (Target, targets_from_latents, targets_from_map_file, targets_from_prior,
                      targets_from_reconstruction, targets_from_store, targets_from_store_file)
from .vector import WSTVector

__all__ = [
    "OPTIMIZERS", "Synthesis", "Target", "WSTVector", "synthesize", "targets_from_latents",
    "targets_from_map_file", "targets_from_prior", "targets_from_reconstruction", "targets_from_store",
    "targets_from_store_file",
]
