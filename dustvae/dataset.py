"""The embedded default training data: many simulated maps, their patches and WST.

Each map comes from one sky model (``turbulence``, ``filaments``, or, for a
``mixed`` dataset, either at random with equal odds), draws its field
parameters uniformly from :data:`PARAM_RANGES` (chosen around the fits of
Vansyngel et al. 2017: alpha_M ~ 2.5, f_M ~ 0.9, N ~ 4-7 layers) and, for
filaments, its population from :data:`FILAMENT_RANGES` (around Huffenberger
et al. 2020 and DustFilaments: gamma ~ 2.4, epsilon 0.16-0.25, misalignment
10-50 degrees). It is cut into patches, and the whole set is transformed
into one store whose labels are the parameters. Maps, not patches, are split
into train / validation / test, so no map straddles two splits.

Simulation runs in worker processes (one map each); the transform then
uses torch's threads on all the cores this process may use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence
from pathlib import Path

import json
import os
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import numpy as np
from tqdm.auto import tqdm

from . import defaults
from .errors import DustvaeError
from .io.maps import FlatMap
from .io.patchfile import PatchSet
from .io.store import CoefficientStore
from .sky.filaments import FilamentParams
from .sky.models import DATASET_MODELS, SkyParams, label_names, labels_of, model_of, simulate_flat_model
from .sky.patches import flat_patches
from .sky.simulate import DustParams
from .threads import cores_per_rank, start_worker
from .wst.compute import compute_store
from .wst.shard import Shard

#: Ranges the simulation parameters are drawn from, uniformly, one draw per map.
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "slope": (2.0, 3.2),
    "turbulence": (0.3, 1.5),
    "n_layers": (2, 7),
    "intensity_sigma": (0.2, 0.8),
    "mean_field_angle": (0.0, 180.0),
    "mean_field_inclination": (-60.0, 60.0),
}

#: Ranges of the filament population, drawn uniformly per filament map.
FILAMENT_RANGES: dict[str, tuple[float, float]] = {
    "size_slope": (2.1, 3.0),
    "axis_ratio": (0.12, 0.5),
    "misalignment": (0.0, 50.0),
    "filling": (1.0, 4.0),
    "diffuse_weight": (0.0, 0.5),
}


@dataclass(frozen=True)
class DatasetSpec:
    """Size, sky model and seed of the default dataset.

    The defaults (800 mixed maps of 256 px cut into 128-px patches: 3200
    patches) take a few minutes on 2 CPU cores; raise ``n_maps``,
    ``map_size`` or ``patch_size`` on bigger machines.
    """

    n_maps: int = defaults.DATASET_MAPS
    model: str = defaults.DATASET_MODEL
    map_size: int = defaults.DATASET_MAP_SIZE
    patch_size: int = defaults.DATASET_PATCH_SIZE
    pixel_scale_arcmin: float = defaults.FLAT_PIXEL_SCALE_ARCMIN
    validation_fraction: float = defaults.VALIDATION_FRACTION
    test_fraction: float = defaults.TEST_FRACTION
    seed: int = 0
    J: int = defaults.J
    L: int = defaults.L

    def __post_init__(self) -> None:
        if self.model not in DATASET_MODELS:
            raise DustvaeError(f"unknown sky model {self.model!r}; use one of {', '.join(DATASET_MODELS)}")
        if self.n_maps < 3:
            raise DustvaeError("a dataset needs at least 3 maps (train, validation, test)")
        if self.map_size < self.patch_size:
            raise DustvaeError(f"map size {self.map_size} is smaller than the patch size {self.patch_size}")
        if not (0 < self.validation_fraction < 1 and 0 < self.test_fraction < 1
                and self.validation_fraction + self.test_fraction < 1):
            raise DustvaeError("validation and test fractions must be in (0, 1) and sum below 1")


def draw_params(spec: DatasetSpec) -> list[SkyParams]:
    """One parameter set per map, from :data:`PARAM_RANGES`, :data:`FILAMENT_RANGES` and the spec's seed."""
    rng = np.random.default_rng(spec.seed)
    params: list[SkyParams] = []
    for index in range(spec.n_maps):
        values = {k: rng.uniform(lo, hi) for k, (lo, hi) in PARAM_RANGES.items()}
        values["n_layers"] = int(rng.integers(PARAM_RANGES["n_layers"][0], PARAM_RANGES["n_layers"][1] + 1))
        field = DustParams(**values, seed=int(spec.seed * 1_000_003 + index))
        filaments = spec.model == "filaments" or (spec.model == "mixed" and rng.uniform() < 0.5)
        if filaments:
            population = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in FILAMENT_RANGES.items()}
            params.append(FilamentParams(**population, max_length=min(FilamentParams.max_length, 2.0 * spec.map_size),
                                         field=field))
        else:
            params.append(field)
    return params


def split_by_map(n_maps: int, spec: DatasetSpec) -> np.ndarray:
    """Split code (:data:`dustvae.defaults.SPLIT_NAMES`: train, validation, test) for each map, seeded."""
    order = np.random.default_rng(spec.seed + 1).permutation(n_maps)
    n_test = max(1, int(round(spec.test_fraction * n_maps)))
    n_val = max(1, int(round(spec.validation_fraction * n_maps)))
    code = np.full(n_maps, defaults.TRAIN, np.int8)
    code[order[:n_test]] = defaults.TEST
    code[order[n_test:n_test + n_val]] = defaults.VALIDATION
    return code


def _simulate_map(spec: DatasetSpec, params: SkyParams, names: list[str]) -> PatchSet:
    """Simulate one map and cut it into labelled patches (runs in a worker process)."""
    maps = simulate_flat_model(spec.map_size, params)
    sky = FlatMap(fields={f: maps[f] for f in defaults.FIELDS}, pixel_scale_arcmin=spec.pixel_scale_arcmin)
    patch_set = flat_patches(sky, spec.patch_size, J=spec.J)
    patch_set.labels = {k: np.full(len(patch_set), v) for k, v in labels_of(params, names).items()}
    return patch_set


def simulate_patches(spec: DatasetSpec, progress: bool = True, workers: int | None = None,
                     maps: range | None = None) -> PatchSet:
    """Simulate the maps of the spec and cut them into patches (labels attached).

    ``workers`` processes simulate maps in parallel (default: all available
    cores, or this rank's share of them under torchrun); the result does
    not depend on their number. ``maps`` (default: all) simulates only
    those maps, numbered as in the whole dataset (a shard).
    """
    all_params = draw_params(spec)
    names = label_names(tuple(sorted({model_of(p) for p in all_params})))
    maps = maps if maps is not None else range(spec.n_maps)
    chosen = [all_params[i] for i in maps]
    if not chosen:
        raise DustvaeError("this shard holds no map; use fewer shards than maps")
    workers = max(1, min(workers or cores_per_rank(), len(chosen)))
    bar = tqdm(total=len(chosen), desc="simulate", unit="map", disable=not progress)
    if workers == 1:
        sets = []
        for params in chosen:
            sets.append(_simulate_map(spec, params, names))
            bar.update()
    else:
        # "spawn": workers start clean, without the parent's torch thread pool.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker, initargs=(1, os.getpid())) as pool:
            futures = [pool.submit(_simulate_map, spec, params, names) for params in chosen]
            sets = []
            for future in futures:
                sets.append(future.result())
                bar.update()
    bar.close()
    joined = PatchSet.concatenate(sets)
    joined.map_index = joined.map_index + maps.start  # numbered as in the whole dataset
    joined.source_name = f"simulated by dustvae make-dataset ({spec.model})"
    return joined


def make_dataset(output: str | Path, spec: DatasetSpec = DatasetSpec(), *, device: str = "auto",
                 batch_size: int | None = None, progress: bool = True, workers: int | None = None,
                 engine: str = defaults.ENGINE, shard: Shard | None = None) -> CoefficientStore:
    """Simulate, cut, transform and write the labelled, split default dataset.

    Interrupted runs resume (the WST step keeps its finished batches).
    ``workers`` processes simulate the maps (default: all available cores);
    ``engine`` computes the transform (:func:`dustvae.wst.transform.means_operator`).
    With ``shard`` only that shard's span of the maps is simulated and
    transformed; :func:`dustvae.wst.shard.merge_stores` joins the parts.
    """
    maps = range(*shard.span(spec.n_maps)) if shard is not None else None
    patch_set = simulate_patches(spec, progress, workers, maps)
    split = split_by_map(spec.n_maps, spec)[patch_set.map_index]
    extra = {"dataset_spec": json.dumps(asdict(spec)), "param_ranges": json.dumps(PARAM_RANGES),
             "filament_ranges": json.dumps(FILAMENT_RANGES), "sky_model": spec.model, "split_by": "map",
             **(shard.attrs("maps", spec.n_maps) if shard is not None else {})}
    return compute_store(patch_set, output, J=spec.J, L=spec.L, boundary="reflect", device=device,
                         batch_size=batch_size, progress=progress, extra_attrs=extra, split=split, engine=engine)


def regenerate_patches(store: CoefficientStore, rows: Sequence[int]) -> np.ndarray:
    """The patches behind rows of a ``make-dataset`` store, simulated again from its recorded spec.

    Simulation is seeded per map, so the maps come out as they did when the
    store was made; each regenerated patch's polarization amplitude is
    checked against the store's (a store made by another version of the
    simulator is refused rather than silently paired with other maps).

    Parameters
    ----------
    store : CoefficientStore
        Written by :func:`make_dataset` (it records ``dataset_spec``).
    rows : sequence of int
        Rows of the store.

    Returns
    -------
    ndarray (len(rows), F, n, n)
        The patches in the store's fields, in map units (not normalised).
    """
    if "dataset_spec" not in store.attrs:
        raise DustvaeError("this store was not made by make-dataset (no dataset_spec): its maps cannot be regenerated")
    spec = DatasetSpec(**json.loads(store.attrs["dataset_spec"]))
    all_params = draw_params(spec)
    names = label_names(tuple(sorted({model_of(p) for p in all_params})))
    out = []
    for row in rows:
        map_index = int(store.map_index[row])
        position = int(np.sum(store.map_index[:row] == map_index))  # patches of a map are stored in cutting order
        patch = _simulate_map(spec, all_params[map_index], names).patches[position]
        amp = float(np.sqrt(np.mean(np.sum(patch.astype(np.float64) ** 2, axis=0))))
        if not np.isclose(amp, float(store.amplitude[row]), rtol=1e-4):
            raise DustvaeError(f"row {row}: the regenerated patch has amplitude {amp:.6g}, the store {store.amplitude[row]:.6g}; "
                               "the store was made with another simulator version")
        out.append(patch)
    return np.stack(out)
