"""Patch sets in memory and on disk (HDF5 files written by ``dustvae patches``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from ..errors import DustvaeError, DustvaeFileError
from ..memory import check_memory
from . import hdf5
from .atomic import atomic_h5

PATCH_FORMAT = "dustvae-patches"


@dataclass
class PatchSet:
    """Square patches cut from one or more maps.

    Attributes
    ----------
    patches : ndarray, shape (N, F, n, n)
        Pixel values per patch and field; NaN where masked.
    fields : tuple of str
        Field names, in the order of axis 1.
    centers : ndarray, shape (N, 2)
        Galactic (l, b) in degrees for sky patches; (row, column) pixel
        offsets of the patch centre for flat maps.
    center_frame : str
        ``"galactic"`` or ``"pixel"``.
    masked_fraction : ndarray, shape (N,)
        Fraction of pixels masked in any field.
    pixel_scale_arcmin : float
        Pixel side in arcminutes (NaN when unknown).
    periodic : bool
        True when each patch is a whole periodic box (the WST may then use
        the periodic boundary mode).
    n_dropped : int
        Patches dropped for exceeding the masked-fraction threshold.
    labels : dict of str to ndarray
        Optional per-patch labels (simulation parameters).
    map_index : ndarray of int, shape (N,)
        Which source map each patch came from.
    source_name, source_sha256 : str
        Source file name and checksum, for provenance.
    source_frame : str
        Frame of the HEALPix map the patches were cut from (``"galactic"``,
        ``"celestial"``, ``"ecliptic"``; empty for flat maps). Centres and
        the Q/U basis are Galactic whatever it is.
    """

    patches: np.ndarray
    fields: tuple[str, ...]
    centers: np.ndarray
    center_frame: str
    masked_fraction: np.ndarray
    pixel_scale_arcmin: float = float("nan")
    periodic: bool = False
    n_dropped: int = 0
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    map_index: np.ndarray | None = None
    source_name: str = ""
    source_sha256: str = ""
    source_frame: str = ""

    def __post_init__(self) -> None:
        if self.map_index is None:
            self.map_index = np.zeros(len(self.patches), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.patches)

    @property
    def patch_size(self) -> int:
        """Side of each patch in pixels."""
        return int(self.patches.shape[-1])

    def take(self, rows: slice | np.ndarray) -> "PatchSet":
        """The patches ``rows`` (a slice or indices), with the set's provenance and ``n_dropped`` unchanged."""
        return replace(self, patches=self.patches[rows], centers=self.centers[rows],
                       masked_fraction=self.masked_fraction[rows], map_index=self.map_index[rows],
                       labels={k: v[rows] for k, v in self.labels.items()})

    @classmethod
    def concatenate(cls, sets: list["PatchSet"]) -> "PatchSet":
        """Join patch sets from several maps, numbering their maps in order."""
        if not sets:
            raise DustvaeError("no patches to join")
        first = sets[0]
        labels = {k: np.concatenate([s.labels[k] for s in sets]) for k in first.labels}
        offsets = np.cumsum([0] + [int(s.map_index.max()) + 1 if len(s) else 1 for s in sets])
        return cls(
            patches=np.concatenate([s.patches for s in sets]),
            fields=first.fields,
            centers=np.concatenate([s.centers for s in sets]),
            center_frame=first.center_frame,
            masked_fraction=np.concatenate([s.masked_fraction for s in sets]),
            pixel_scale_arcmin=first.pixel_scale_arcmin,
            periodic=first.periodic,
            n_dropped=sum(s.n_dropped for s in sets),
            labels=labels,
            map_index=np.concatenate([s.map_index + o for s, o in zip(sets, offsets)]),
            source_name=first.source_name,
            source_sha256=first.source_sha256,
            source_frame=first.source_frame,
        )


def write_patches(path: str | Path, patch_set: PatchSet) -> Path:
    """Write a patch set to HDF5 atomically (chunked, gzip-compressed)."""
    path = Path(path)
    with atomic_h5(path) as h5:
        n = len(patch_set)
        chunk = (1,) + patch_set.patches.shape[1:] if n else None
        h5.create_dataset("patches", data=patch_set.patches.astype(np.float32), chunks=chunk, compression="gzip")
        h5["centers"] = patch_set.centers.astype(np.float64)
        h5["masked_fraction"] = patch_set.masked_fraction.astype(np.float32)
        h5["map_index"] = patch_set.map_index.astype(np.int64)
        group = h5.create_group("labels")
        for key, values in patch_set.labels.items():
            group[key] = np.asarray(values, dtype=np.float64)
        h5.attrs.update(
            format=PATCH_FORMAT,
            format_version=1,
            fields=json.dumps(list(patch_set.fields)),
            center_frame=patch_set.center_frame,
            pixel_scale_arcmin=float(patch_set.pixel_scale_arcmin),
            periodic=bool(patch_set.periodic),
            n_dropped=int(patch_set.n_dropped),
            source_name=patch_set.source_name,
            source_sha256=patch_set.source_sha256,
            source_frame=patch_set.source_frame,
            dustvae_version=__version__,
        )
    return path


def is_patch_file(path: str | Path) -> bool:
    """True when ``path`` is an HDF5 file written by :func:`write_patches` (its format attribute says so)."""
    try:
        with h5py.File(path, "r") as h5:
            return hdf5.str_attr_or_none(h5.attrs, "format") == PATCH_FORMAT
    except (OSError, ValueError):
        return False


def read_patches(path: str | Path) -> PatchSet:
    """Read a patch file written by :func:`write_patches`, validating it (see :mod:`dustvae.io.hdf5`)."""
    path = Path(path)
    if not path.exists():
        raise DustvaeFileError(f"{path}: no such file; check the path")
    if not is_patch_file(path):
        raise DustvaeFileError(f"{path}: not a dustvae patch file; make one with `dustvae patches MAP.fits`")
    with hdf5.open_hdf5(path, "make one with `dustvae patches MAP.fits`") as h5:
        hdf5.check_self_contained(h5, path)
        try:
            fields = json.loads(h5.attrs["fields"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DustvaeFileError(f"{path}: patch file's fields attribute is missing or not a JSON list; it is damaged, "
                                   f"write it again") from exc
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise DustvaeFileError(f"{path}: patch file's fields attribute {fields!r} is not a list of field names; "
                                   f"it is damaged, write it again")
        patches = hdf5.dataset(h5, "patches", path, "f", (None, len(fields), None, None))
        n, _, rows, cols = patches.shape
        if rows != cols:
            raise DustvaeFileError(f"{path}: patches are {rows} x {cols} pixels, not square; the file is damaged")
        columns = {"centers": hdf5.dataset(h5, "centers", path, "f", (n, 2)),
                   "masked_fraction": hdf5.dataset(h5, "masked_fraction", path, "f", (n,)),
                   "map_index": hdf5.dataset(h5, "map_index", path, "iu", (n,))}
        labels = hdf5.label_datasets(h5, path, n)
        check_memory(sum(ds.size * ds.dtype.itemsize for ds in [patches, *columns.values(), *labels.values()]),
                     f"{path}: {n} patches of {rows} px", "the file is damaged or too large for this machine")
        try:
            return PatchSet(
                patches=hdf5.read(patches, path),
                fields=tuple(fields),
                centers=hdf5.read(columns["centers"], path),
                center_frame=str(h5.attrs["center_frame"]),
                masked_fraction=hdf5.read(columns["masked_fraction"], path),
                pixel_scale_arcmin=float(h5.attrs["pixel_scale_arcmin"]),
                periodic=bool(h5.attrs["periodic"]),
                n_dropped=hdf5.int_attr(h5.attrs, "n_dropped", path),
                labels={k: hdf5.read(v, path) for k, v in labels.items()},
                map_index=hdf5.read(columns["map_index"], path),
                source_name=str(h5.attrs["source_name"]),
                source_sha256=str(h5.attrs["source_sha256"]),
                source_frame=str(h5.attrs.get("source_frame", "")),  # absent from older files
            )
        except DustvaeError:  # already one line; a ValueError too, which the clause below would rewrap
            raise
        except KeyError as exc:
            raise DustvaeFileError(f"{path}: patch file lacks {exc}; it is damaged, write it again") from exc
        except (TypeError, ValueError) as exc:
            raise DustvaeFileError(f"{path}: patch file has an attribute of the wrong kind ({exc}); it is damaged, "
                                   f"write it again") from exc
