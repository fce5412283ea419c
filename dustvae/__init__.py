"""dustvae: wavelet scattering statistics of dust polarization maps, compressed with VAEs.

The package flows one way: :mod:`dustvae.io` (maps and stores) ->
:mod:`dustvae.sky` (simulation, patches) -> :mod:`dustvae.wst` (Kymatio
transform, coefficient layout) -> :mod:`dustvae.models` and
:mod:`dustvae.baselines` (compressors) -> :mod:`dustvae.analysis`
(metrics, evaluation, figures). :mod:`dustvae.cli` sits on top.
"""

from ._version import __version__
from .errors import DustvaeError

__all__ = ["__version__", "DustvaeError"]
