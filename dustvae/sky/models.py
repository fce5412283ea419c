"""The sky models by name: one place that maps a model name to its parameters and simulator."""

from __future__ import annotations

import numpy as np

from ..errors import DustvaeError
from .filaments import FilamentParams, simulate_filaments
from .simulate import DustParams, simulate_flat

#: Models that ``dustvae simulate --model`` makes.
SKY_MODELS = ("turbulence", "filaments")
#: Models a dataset can draw its maps from; ``mixed`` alternates the two at random.
DATASET_MODELS = SKY_MODELS + ("mixed",)

SkyParams = DustParams | FilamentParams


def model_of(params: SkyParams) -> str:
    """Name of the model that ``params`` parametrise."""
    return "filaments" if isinstance(params, FilamentParams) else "turbulence"


def simulate_flat_model(size: int, params: SkyParams) -> dict[str, np.ndarray]:
    """Periodic flat I, Q, U maps from whichever model ``params`` belongs to."""
    if isinstance(params, FilamentParams):
        return simulate_filaments(size, params)
    if isinstance(params, DustParams):
        return simulate_flat(size, params)
    raise DustvaeError(f"unknown sky parameters {type(params).__name__}")


def label_names(models: tuple[str, ...]) -> list[str]:
    """Every label a dataset of these models carries, in a fixed order.

    ``filaments`` (1 for a filament map, 0 otherwise) joins the physical
    parameters when both models are present; filament parameters are NaN for
    turbulence maps.
    """
    names = list(DustParams().labels())
    if "filaments" in models:
        names += list(FilamentParams().own())
    if len(set(models)) > 1:
        names.append("filaments")
    return names


def labels_of(params: SkyParams, names: list[str]) -> dict[str, float]:
    """The labels of one map, NaN for parameters its model does not have."""
    values = params.labels()
    values["filaments"] = float(isinstance(params, FilamentParams))
    return {name: values.get(name, float("nan")) for name in names}
