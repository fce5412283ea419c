"""The embedded default training data: many simulated maps, their patches and WST.

Each map draws its physical parameters uniformly from :data:`PARAM_RANGES`
(chosen around the fits of Vansyngel et al. 2017: alpha_M ~ 2.5, f_M ~ 0.9,
N ~ 4-7 layers), is cut into patches, and the whole set is transformed into
one store whose labels are the parameters. Maps, not patches, are split into
train / validation / test, so no map straddles two splits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import json
import numpy as np
from tqdm.auto import tqdm

from .. import defaults
from ..errors import DustvaeError
from ..io.maps import FlatMap
from ..io.patchfile import PatchSet
from ..io.store import CoefficientStore
from ..sky.patches import flat_patches
from ..sky.simulate import DustParams, simulate_flat
from .compute import compute_store

#: Ranges the simulation parameters are drawn from, uniformly, one draw per map.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "slope": (2.0, 3.2),
    "turbulence": (0.3, 1.5),
    "n_layers": (2, 7),
    "intensity_sigma": (0.2, 0.8),
    "mean_field_angle": (0.0, 180.0),
    "mean_field_inclination": (-60.0, 60.0),
}


@dataclass(frozen=True)
class DatasetSpec:
    """Size and seed of the default dataset.

    The defaults (200 maps of 256 px cut into 64-px patches: 3200 patches)
    take a few minutes on 2 CPU cores; raise ``n_maps``, ``map_size`` or
    ``patch_size`` on bigger machines.
    """

    n_maps: int = defaults.DATASET_MAPS
    map_size: int = defaults.DATASET_MAP_SIZE
    patch_size: int = defaults.DATASET_PATCH_SIZE
    pixel_scale_arcmin: float = 5.0
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    J: int = defaults.J
    L: int = defaults.L

    def __post_init__(self) -> None:
        if self.n_maps < 3:
            raise DustvaeError("a dataset needs at least 3 maps (train, validation, test)")
        if self.map_size < self.patch_size:
            raise DustvaeError(f"map size {self.map_size} is smaller than the patch size {self.patch_size}")
        if not (0 < self.validation_fraction < 1 and 0 < self.test_fraction < 1
                and self.validation_fraction + self.test_fraction < 1):
            raise DustvaeError("validation and test fractions must be in (0, 1) and sum below 1")


def draw_params(spec: DatasetSpec) -> list[DustParams]:
    """One parameter set per map, from :data:`PARAM_RANGES` and the spec's seed."""
    rng = np.random.default_rng(spec.seed)
    params = []
    for index in range(spec.n_maps):
        values = {k: rng.uniform(lo, hi) for k, (lo, hi) in PARAM_RANGES.items()}
        values["n_layers"] = int(rng.integers(PARAM_RANGES["n_layers"][0], PARAM_RANGES["n_layers"][1] + 1))
        params.append(DustParams(**values, seed=int(spec.seed * 1_000_003 + index)))
    return params


def split_by_map(n_maps: int, spec: DatasetSpec) -> np.ndarray:
    """Split code (0 train, 1 validation, 2 test) for each map, seeded."""
    order = np.random.default_rng(spec.seed + 1).permutation(n_maps)
    n_test = max(1, int(round(spec.test_fraction * n_maps)))
    n_val = max(1, int(round(spec.validation_fraction * n_maps)))
    code = np.zeros(n_maps, np.int8)
    code[order[:n_test]] = 2
    code[order[n_test:n_test + n_val]] = 1
    return code


def simulate_patches(spec: DatasetSpec, progress: bool = True) -> PatchSet:
    """Simulate every map of the spec and cut it into patches (labels attached)."""
    sets = []
    for params in tqdm(draw_params(spec), desc="simulate", unit="map", disable=not progress):
        maps = simulate_flat(spec.map_size, params)
        sky = FlatMap(fields={f: maps[f] for f in defaults.FIELDS}, pixel_scale_arcmin=spec.pixel_scale_arcmin)
        patch_set = flat_patches(sky, spec.patch_size, J=spec.J)
        patch_set.labels = {k: np.full(len(patch_set), v) for k, v in params.labels().items()}
        sets.append(patch_set)
    joined = PatchSet.concatenate(sets)
    joined.source_name = "simulated by dustvae make-dataset"
    return joined


def make_dataset(output: str | Path, spec: DatasetSpec = DatasetSpec(), *, device: str = "auto",
                 batch_size: int | None = None, progress: bool = True) -> CoefficientStore:
    """Simulate, cut, transform and write the labelled, split default dataset.

    Interrupted runs resume (the WST step keeps its finished batches).
    """
    patch_set = simulate_patches(spec, progress)
    split = split_by_map(spec.n_maps, spec)[patch_set.map_index]
    extra = {"dataset_spec": json.dumps(asdict(spec)), "param_ranges": json.dumps(PARAM_RANGES),
             "split_by": "map"}
    return compute_store(patch_set, output, J=spec.J, L=spec.L, boundary="reflect", device=device,
                         batch_size=batch_size, progress=progress, extra_attrs=extra, split=split)
