"""The HDF5 coefficient store: one self-describing file per WST run.

Schema (format ``dustvae-wst``, version 1)::

    coeffs           (N, D) float32   normalised log2 vectors (D = 680 per field)
    s0               (N, F) float32   raw spatial means, amplitude-normalised patch
    s1               (N, F, J*L)      raw first layer, Kymatio order
    s2               (N, F, n_s2)     raw second layer, Kymatio order
    amplitude        (N,)  float64    polarization amplitude A divided out
    centers          (N, 2) float64   (l, b) deg or (row, col) pixels
    masked_fraction  (N,)  float32
    map_index        (N,)  int64      source map of each patch
    theta            (L,)  float64    wavelet angles [rad] by Kymatio index
    labels/<name>    (N,)  float64    optional simulation parameters
    split            (N,)  int8       optional: 0 train, 1 validation, 2 test

Attributes: format, format_version, J, L, fields, vector_length, boundary,
normalisation, patch_size, pixel_scale_arcmin, center_frame, n_dropped,
source_name, source_sha256, dustvae_version, kymatio_version, and any extra
provenance the writer passes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from ..errors import DustvaeError
from .atomic import atomic_h5

STORE_FORMAT = "dustvae-wst"
STORE_VERSION = 1
SPLIT_NAMES = ("train", "validation", "test")
_REQUIRED = ("coeffs", "s0", "s1", "s2", "amplitude", "centers", "masked_fraction", "map_index", "theta")
_REQUIRED_ATTRS = ("J", "L", "fields", "vector_length", "boundary", "normalisation")


@dataclass
class CoefficientStore:
    """Contents of a coefficient store, in memory.

    See the module docstring for the meaning of each array; ``attrs`` holds
    the file attributes (``fields`` as a comma-separated string).
    """

    coeffs: np.ndarray
    s0: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    amplitude: np.ndarray
    centers: np.ndarray
    masked_fraction: np.ndarray
    map_index: np.ndarray
    theta: np.ndarray
    attrs: dict
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    split: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.coeffs)

    def fingerprint(self) -> str:
        """SHA-256 of the vectors and split: identifies the data a model was trained on."""
        digest = hashlib.sha256(np.ascontiguousarray(self.coeffs).tobytes())
        if self.split is not None:
            digest.update(np.ascontiguousarray(self.split).tobytes())
        return digest.hexdigest()

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names in vector order."""
        return tuple(str(self.attrs["fields"]).split(","))

    def subset(self, which: str | np.ndarray) -> "CoefficientStore":
        """Rows of one split (``"train"``, ``"validation"``, ``"test"``) or of a boolean/index array.

        A store without a split is all test data: asking it for ``"test"``
        returns everything, for ``"train"`` or ``"validation"`` is an error.
        """
        if isinstance(which, str):
            if which not in SPLIT_NAMES:
                raise DustvaeError(f"unknown split {which!r}; use train, validation or test")
            if self.split is None:
                if which == "test":
                    return self
                raise DustvaeError(f"this store has no {which} split; make one with `dustvae make-dataset` or pass a split store")
            rows = np.flatnonzero(self.split == SPLIT_NAMES.index(which))
        else:
            rows = np.asarray(which)
            rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        take = lambda a: None if a is None else a[rows]  # noqa: E731
        return CoefficientStore(
            coeffs=self.coeffs[rows], s0=self.s0[rows], s1=self.s1[rows], s2=self.s2[rows],
            amplitude=self.amplitude[rows], centers=self.centers[rows],
            masked_fraction=self.masked_fraction[rows], map_index=self.map_index[rows],
            theta=self.theta, attrs=dict(self.attrs),
            labels={k: v[rows] for k, v in self.labels.items()}, split=take(self.split),
        )


def write_store(path: str | Path, store: CoefficientStore) -> Path:
    """Write a store atomically (chunked by rows, gzip level 4, no timestamps)."""
    path = Path(path)
    n = len(store)
    with atomic_h5(path, track_order=True) as h5:
        for name in ("coeffs", "s0", "s1", "s2", "amplitude", "centers", "masked_fraction", "map_index"):
            data = getattr(store, name)
            if name in ("coeffs", "s0", "s1", "s2", "masked_fraction"):
                data = np.asarray(data, dtype=np.float32)
            chunks = (min(max(n, 1), 256),) + data.shape[1:] if n else None
            h5.create_dataset(name, data=data, chunks=chunks, compression="gzip" if n else None,
                              compression_opts=4 if n else None)
        h5["theta"] = np.asarray(store.theta, dtype=np.float64)
        group = h5.create_group("labels")
        for key in sorted(store.labels):
            group[key] = np.asarray(store.labels[key], dtype=np.float64)
        if store.split is not None:
            h5["split"] = np.asarray(store.split, dtype=np.int8)
            h5["split"].attrs["names"] = ",".join(SPLIT_NAMES)
        h5.attrs["format"] = STORE_FORMAT
        h5.attrs["format_version"] = STORE_VERSION
        for key in sorted(store.attrs):
            if key not in ("format", "format_version"):
                h5.attrs[key] = store.attrs[key]
    return path


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_store(path: str | Path, expect: Mapping[str, object] | None = None) -> CoefficientStore:
    """Read and validate a coefficient store.

    Parameters
    ----------
    path : str or Path
    expect : mapping, optional
        Attributes the caller needs (for example ``{"J": 5, "L": 8,
        "fields": "Q,U"}``); a mismatch is an error that names both values.

    Raises
    ------
    DustvaeError
        When the file is missing, not HDF5, not a store, of a newer format,
        damaged, or of another layout than ``expect``.
    """
    path = Path(path)
    if not path.exists():
        raise DustvaeError(f"{path}: no such file; check the path")
    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DustvaeError(f"{path}: not an HDF5 file; give a store written by `dustvae compute-wst`") from exc
    with h5:
        if _plain(h5.attrs.get("format")) != STORE_FORMAT:
            raise DustvaeError(f"{path}: not a dustvae coefficient store; make one with `dustvae compute-wst MAP.fits`")
        version = int(h5.attrs.get("format_version", 0))
        if version > STORE_VERSION:
            raise DustvaeError(f"{path}: store format {version} is newer than this dustvae reads ({STORE_VERSION}); upgrade dustvae")
        missing = [k for k in _REQUIRED if k not in h5] + [a for a in _REQUIRED_ATTRS if a not in h5.attrs]
        if missing:
            raise DustvaeError(f"{path}: store lacks {', '.join(missing)}; it is damaged, compute it again")
        attrs = {k: _plain(v) for k, v in h5.attrs.items()}
        try:
            arrays = {k: h5[k][...] for k in _REQUIRED}
            labels = {k: v[...] for k, v in h5["labels"].items()} if "labels" in h5 else {}
            split = h5["split"][...] if "split" in h5 else None
        except (OSError, KeyError) as exc:
            raise DustvaeError(f"{path}: store cannot be read ({exc}); it is damaged, compute it again") from exc
    n, length = arrays["coeffs"].shape if arrays["coeffs"].ndim == 2 else (0, -1)
    if length != int(attrs["vector_length"]):
        raise DustvaeError(f"{path}: coeffs has {length} columns but the store says {attrs['vector_length']}; it is damaged")
    if any(len(a) != n for k, a in arrays.items() if k != "theta"):
        raise DustvaeError(f"{path}: datasets have different numbers of rows; the store is damaged")
    for key, wanted in (expect or {}).items():
        found = attrs.get(key)
        if str(found) != str(wanted):
            raise DustvaeError(
                f"{path}: {key} is {found} but {wanted} is needed; use a store computed with the same settings"
            )
    return CoefficientStore(**arrays, attrs=attrs, labels=labels, split=split)
