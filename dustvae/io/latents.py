"""Latent files written by ``dustvae encode``: posterior means and log-variances per patch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DustvaeFileError
from ..memory import check_memory
from . import hdf5
from .atomic import atomic_h5

LATENT_FORMAT = "dustvae-latents"


@dataclass
class LatentSet:
    """Posterior parameters of q(z|x) for each patch, with the patches' metadata."""

    mean: np.ndarray
    logvar: np.ndarray
    attrs: dict
    centers: np.ndarray | None = None
    map_index: np.ndarray | None = None
    split: np.ndarray | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)


def write_latents(path: str | Path, latents: LatentSet) -> Path:
    """Write a latent file atomically."""
    with atomic_h5(path) as h5:
        h5["mean"] = latents.mean.astype(np.float32)
        h5["logvar"] = latents.logvar.astype(np.float32)
        for name in ("centers", "map_index", "split"):
            if getattr(latents, name) is not None:
                h5[name] = getattr(latents, name)
        group = h5.create_group("labels")
        for key in sorted(latents.labels):
            group[key] = latents.labels[key]
        h5.attrs["format"] = LATENT_FORMAT
        for key, value in latents.attrs.items():
            h5.attrs[key] = value
    return Path(path)


def read_latents(path: str | Path) -> LatentSet:
    """Read a latent file written by :func:`write_latents`, validated (see :mod:`dustvae.io.hdf5`)."""
    path = Path(path)
    with hdf5.open_hdf5(path, "make one with `dustvae encode`") as h5:
        if hdf5.str_attr_or_none(h5.attrs, "format") != LATENT_FORMAT:
            raise DustvaeFileError(f"{path}: not a dustvae latent file; make one with `dustvae encode`")
        hdf5.check_self_contained(h5, path)
        mean = hdf5.dataset(h5, "mean", path, "f", (None, None))
        n, d = mean.shape
        shapes = {"logvar": ("f", (n, d)), "centers": ("f", (n, 2)), "map_index": ("iu", (n,)), "split": ("iu", (n,))}
        found = {k: hdf5.dataset(h5, k, path, kinds, shape) for k, (kinds, shape) in shapes.items() if k == "logvar" or k in h5}
        labels = hdf5.label_datasets(h5, path, n)
        check_memory(sum(ds.size * ds.dtype.itemsize for ds in [mean, *found.values(), *labels.values()]),
                     f"{path}: {n} latent vectors", "the file is damaged or too large for this machine")
        read = lambda name: hdf5.read(found[name], path) if name in found else None  # noqa: E731
        return LatentSet(
            mean=hdf5.read(mean, path), logvar=read("logvar"), attrs=dict(h5.attrs),
            centers=read("centers"), map_index=read("map_index"), split=read("split"),
            labels={k: hdf5.read(v, path) for k, v in labels.items()},
        )
