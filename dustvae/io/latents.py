"""Latent files written by ``dustvae encode``: posterior means and log-variances per patch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import DustvaeError
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
    """Read a latent file written by :func:`write_latents`."""
    path = Path(path)
    if not path.exists():
        raise DustvaeError(f"{path}: no such file; check the path")
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != LATENT_FORMAT:
                raise DustvaeError(f"{path}: not a dustvae latent file; make one with `dustvae encode`")
            return LatentSet(
                mean=h5["mean"][...], logvar=h5["logvar"][...], attrs=dict(h5.attrs),
                centers=h5["centers"][...] if "centers" in h5 else None,
                map_index=h5["map_index"][...] if "map_index" in h5 else None,
                split=h5["split"][...] if "split" in h5 else None,
                labels={k: v[...] for k, v in h5["labels"].items()},
            )
    except OSError as exc:
        raise DustvaeError(f"{path}: not an HDF5 file; make one with `dustvae encode`") from exc
