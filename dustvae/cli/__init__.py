"""The ``dustvae`` command. Thin: it parses options and calls the library; nothing imports it.

One module per command group: :mod:`.data` (simulate, plot-map, patches,
compute-wst, make-dataset, merge), :mod:`.models` (train, encode,
reconstruct, sample, fit-prior, interpolate), :mod:`.results` (evaluate,
figures, demo, doctor), :mod:`.synthesis` (synthesize); the options they
share are in :mod:`.options`, the group and the entry point in :mod:`.main`.
"""

from . import data, models, results, synthesis  # noqa: F401  (each registers its commands)
from .main import _asked, cli, main

__all__ = ["cli", "main", "_asked"]
