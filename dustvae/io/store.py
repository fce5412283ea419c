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
    split            (N,)  int8       optional: 0 train, 1 validation, 2 test, 3 guard
                                      (left out between the splits of one sky: dustvae.sky.regions)

Attributes: format, format_version, J, L, fields, vector_length, boundary,
normalisation, patch_size, pixel_scale_arcmin, center_frame, n_dropped,
source_name, source_sha256, dustvae_version, kymatio_version, and any extra
provenance the writer passes.

A store is validated once, where it is opened (:func:`open_store`): nothing
outside the file is read (:func:`dustvae.io.hdf5.check_self_contained`), every
dataset is of the schema's kind of numbers and shape, the amplitude is
positive (NaN where unknown), the split holds 0, 1, 2 or 3 and the labels one
value per row. Rows are then read in blocks (:meth:`StoreReader.blocks`), so
that commands which process a store row by row hold one block at a time, or
loaded, after checking that they fit in memory (:meth:`StoreReader.load`,
:func:`read_store`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import h5py
import numpy as np

from .. import defaults
from ..errors import DustvaeError, DustvaeFileError
from ..memory import check_memory
from . import hdf5

STORE_FORMAT = "dustvae-wst"
STORE_VERSION = 1
SPLIT_NAMES = defaults.SPLIT_NAMES
#: Datasets with one entry per row (patch), in the order they are written.
ROW_DATASETS = ("coeffs", "s0", "s1", "s2", "amplitude", "centers", "masked_fraction", "map_index")
_REQUIRED = ROW_DATASETS + ("theta",)
#: Rows per block when a store is read or written in blocks: a multiple of the chunk rows; about 22 MB of vectors.
BLOCK_ROWS = 4096
#: Rows per chunk of the row datasets.
CHUNK_ROWS = 256
_REQUIRED_ATTRS = ("J", "L", "fields", "vector_length", "boundary", "normalisation")


@dataclass
class CoefficientStore:
    """Contents of a coefficient store, in memory.

    See the module docstring for the meaning of each array; ``attrs`` holds
    the file attributes (``fields`` as a comma-separated string). A store
    loaded with only some of its datasets (``read_store(..., columns=...)``)
    has None for the others; one loaded with only some of its splits keeps
    the whole file's fingerprint in ``source_fingerprint``.
    """

    coeffs: np.ndarray
    s0: np.ndarray | None
    s1: np.ndarray | None
    s2: np.ndarray | None
    amplitude: np.ndarray | None
    centers: np.ndarray | None
    masked_fraction: np.ndarray | None
    map_index: np.ndarray | None
    theta: np.ndarray
    attrs: dict
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    split: np.ndarray | None = None
    source_fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.coeffs)

    def fingerprint(self) -> str:
        """SHA-256 of the vectors and split: identifies the data a model was trained on."""
        if self.source_fingerprint is not None:
            return self.source_fingerprint
        digest = hashlib.sha256(np.ascontiguousarray(self.coeffs).tobytes())
        if self.split is not None:
            digest.update(np.ascontiguousarray(self.split).tobytes())
        return digest.hexdigest()

    @property
    def fields(self) -> tuple[str, ...]:
        """Field names in vector order."""
        return tuple(str(self.attrs["fields"]).split(","))

    @property
    def vector_length(self) -> int:
        """Coefficients per vector."""
        return int(self.coeffs.shape[1])

    def read(self, name: str, rows: slice = slice(None)) -> np.ndarray:
        """Rows of one row dataset (the same call as :meth:`StoreReader.read`)."""
        return getattr(self, name)[rows]

    def blocks(self, name: str = "coeffs", size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, rows)`` of one row dataset, ``size`` rows (default :data:`BLOCK_ROWS`) at a time."""
        data = getattr(self, name)
        size = BLOCK_ROWS if size is None else size
        for start in range(0, len(self), size):
            yield start, data[start : start + size]

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
            **{name: take(getattr(self, name)) for name in ROW_DATASETS},
            theta=self.theta, attrs=dict(self.attrs),
            labels={k: v[rows] for k, v in self.labels.items()}, split=take(self.split),
        )


def check_finite_rows(vectors: np.ndarray, source: str = "store", first_row: int = 0, n_rows: int | None = None) -> None:
    """Refuse, in one line, vectors that hold NaN or inf: rows ``first_row`` on of a store of ``n_rows`` (default: these)."""
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        where = "" if n_rows in (None, len(vectors)) else f" of rows {first_row}-{first_row + len(vectors) - 1}"
        raise DustvaeError(f"{source}: {int(bad.sum())} vector(s){where} hold NaN or inf (first: row "
                           f"{first_row + int(np.flatnonzero(bad)[0])}); recompute the store or drop those patches")


def _row_specs(n: int, attrs: Mapping) -> dict[str, tuple[tuple[int, ...], np.dtype, str]]:
    """Shape, dtype written and dtype kinds read of every row dataset of an ``n``-row store of layout ``attrs``."""
    from ..wst.layout import CoefficientLayout  # imported here: dustvae.wst imports this module's users

    layout = CoefficientLayout.from_attrs(attrs)
    f = len(layout.fields)
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)
    return {
        "coeffs": ((n, len(layout)), f32, "f"), "s0": ((n, f), f32, "f"), "s1": ((n, f, layout.n_s1), f32, "f"),
        "s2": ((n, f, layout.n_s2), f32, "f"), "amplitude": ((n,), f64, "f"), "centers": ((n, 2), f64, "f"),
        "masked_fraction": ((n,), f32, "f"), "map_index": ((n,), np.dtype(np.int64), "iu"),
    }


def _plain(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


class StoreReader:
    """An open coefficient store, validated, whose row datasets are read on demand (see :func:`open_store`).

    ``attrs``, ``theta``, ``labels``, ``split`` and ``amplitude`` (one value
    per row, or per angle) are in memory; the other row datasets stay on
    disk until :meth:`read`, :meth:`blocks` or :meth:`load` asks for them.
    """

    def __init__(self, path: Path, h5: h5py.File, expect: Mapping[str, object] | None = None) -> None:
        self.path, self._h5 = path, h5
        self.attrs = self._check_attrs()
        hdf5.check_self_contained(h5, path)
        self._datasets = self._check_datasets()
        self.n_rows = n = self._datasets["coeffs"].shape[0]
        check_memory(n * (8 + 1 + 8 * (len(h5["labels"]) if isinstance(h5.get("labels"), h5py.Group) else 0)),
                     f"{path}: {n} rows", "the store is damaged or too large for this machine")
        self.theta = hdf5.read(hdf5.dataset(h5, "theta", path, "f", (self.attrs["L"],)), path)
        self.amplitude = hdf5.read(self._datasets["amplitude"], path)
        bad = ~(np.isnan(self.amplitude) | (np.isfinite(self.amplitude) & (self.amplitude > 0)))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DustvaeFileError(f"{path}: amplitude of row {row} is {self.amplitude[row]}, not a positive number "
                                   f"(NaN where unknown); the store is damaged")
        self.labels = self._read_labels()
        self.split = self._read_split()
        for key, wanted in (expect or {}).items():
            found = self.attrs.get(key)
            if str(found) != str(wanted):
                raise DustvaeError(
                    f"{path}: {key} is {found} but {wanted} is needed; use a store computed with the same settings"
                )

    def _check_attrs(self) -> dict:
        """The file's attributes, those of the layout checked and converted (J, L, vector_length int; fields text)."""
        h5, path = self._h5, self.path
        if _plain(h5.attrs.get("format")) != STORE_FORMAT:
            raise DustvaeFileError(f"{path}: not a dustvae coefficient store; make one with `dustvae compute-wst MAP.fits`")
        version = hdf5.int_attr(h5.attrs, "format_version", path, default=0)
        if version > STORE_VERSION:
            raise DustvaeError(f"{path}: store format {version} is newer than this dustvae reads ({STORE_VERSION}); upgrade dustvae")
        missing = [k for k in _REQUIRED if k not in h5] + [a for a in _REQUIRED_ATTRS if a not in h5.attrs]
        if missing:
            raise DustvaeFileError(f"{path}: store lacks {', '.join(missing)}; it is damaged, compute it again")
        attrs = {k: _plain(v) for k, v in h5.attrs.items()}
        for key in ("J", "L", "vector_length"):
            attrs[key] = hdf5.int_attr(h5.attrs, key, path)
        for key in ("fields", "boundary", "normalisation"):
            attrs[key] = hdf5.str_attr(h5.attrs, key, path)
        if attrs["J"] < 1 or attrs["L"] < 1:
            raise DustvaeFileError(f"{path}: J = {attrs['J']} and L = {attrs['L']} must be positive; the store is damaged")
        return attrs

    def _check_datasets(self) -> dict[str, h5py.Dataset]:
        """The row datasets, each of the schema's kind of numbers and of the shape the layout gives it."""
        h5, path, length = self._h5, self.path, self.attrs["vector_length"]
        coeffs = hdf5.dataset(h5, "coeffs", path, "f")
        if coeffs.ndim != 2 or coeffs.shape[1] != length:
            columns = coeffs.shape[1] if coeffs.ndim == 2 else f"shape {coeffs.shape}, not 2"
            raise DustvaeFileError(f"{path}: coeffs has {columns} columns but the store says {length}; it is damaged")
        n = coeffs.shape[0]
        specs = _row_specs(n, self.attrs)
        if specs["coeffs"][0][1] != length:
            raise DustvaeFileError(f"{path}: vector_length {length} does not fit J, L and fields "
                                   f"({specs['coeffs'][0][1]}); the store is damaged")
        if any(len(h5[k].shape or ()) == 0 or h5[k].shape[0] != n for k in ROW_DATASETS if isinstance(h5[k], h5py.Dataset)):
            raise DustvaeFileError(f"{path}: datasets have different numbers of rows; the store is damaged")
        return {name: hdf5.dataset(h5, name, path, kinds, shape) for name, (shape, _, kinds) in specs.items()}

    def _read_split(self) -> np.ndarray | None:
        if "split" not in self._h5:
            return None
        split = hdf5.read(hdf5.dataset(self._h5, "split", self.path, "iu", (self.n_rows,)), self.path)
        bad = ~np.isin(split, np.arange(len(SPLIT_NAMES)))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DustvaeFileError(f"{self.path}: split of row {row} is {split[row]}, not 0 (train), 1 (validation), "
                                   f"2 (test) or 3 (guard); the store is damaged")
        return split

    def _read_labels(self) -> dict[str, np.ndarray]:
        return {k: hdf5.read(ds, self.path) for k, ds in hdf5.label_datasets(self._h5, self.path, self.n_rows).items()}

    def __len__(self) -> int:
        return self.n_rows

    @property
    def vector_length(self) -> int:
        """Coefficients per vector."""
        return int(self.attrs["vector_length"])

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._h5.close()

    def nbytes(self, columns: Sequence[str] = ROW_DATASETS, rows: int | None = None) -> int:
        """Bytes that ``rows`` rows (default: all) of ``columns`` take in memory."""
        rows = self.n_rows if rows is None else rows
        return sum(rows * self._datasets[c].dtype.itemsize * int(np.prod(self._datasets[c].shape[1:])) for c in columns)

    def read(self, name: str, rows: slice = slice(None)) -> np.ndarray:
        """Rows of one row dataset (all by default), after checking that they fit in memory."""
        start, stop, _ = rows.indices(self.n_rows)
        check_memory(self.nbytes([name], max(0, stop - start)), f"{self.path}: {name} of {max(0, stop - start)} rows",
                     "read a smaller store, or use a machine with more memory")
        if name == "amplitude":
            return self.amplitude[rows]
        return hdf5.read(self._datasets[name], self.path, rows)

    def blocks(self, name: str = "coeffs", size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, rows)`` of one row dataset, ``size`` rows (default :data:`BLOCK_ROWS`) at a time."""
        size = BLOCK_ROWS if size is None else size
        for start in range(0, self.n_rows, size):
            yield start, self.read(name, slice(start, start + size))

    def load(self, columns: Sequence[str] = ROW_DATASETS, splits: Sequence[str] | None = None,
             finite: bool = False) -> CoefficientStore:
        """The store in memory: the row datasets ``columns`` (``coeffs`` always; None for the others), the rows of ``splits``.

        ``splits`` (e.g. ``("train", "validation")``) keeps the rows of those
        splits of a split store, and every row of a store without a split;
        the result then carries the whole file's fingerprint. With ``finite``,
        vectors holding NaN or inf are refused (:func:`check_finite_rows`).
        Read in blocks, after checking that the result fits in memory.
        """
        columns = [c for c in ROW_DATASETS if c in columns or c == "coeffs"]
        keep = None
        if splits is not None and self.split is not None:
            unknown = [s for s in splits if s not in SPLIT_NAMES]
            if unknown:
                raise DustvaeError(f"unknown split {unknown[0]!r}; use train, validation or test")
            keep = np.isin(self.split, [SPLIT_NAMES.index(s) for s in splits])
        count = self.n_rows if keep is None else int(keep.sum())
        check_memory(self.nbytes(columns, count), f"{self.path}: {count} rows",
                     "read a smaller store, or use a machine with more memory")
        out = {c: np.empty((count,) + self._datasets[c].shape[1:], self._datasets[c].dtype) for c in columns}
        digest = hashlib.sha256() if keep is not None else None
        filled = 0
        for start in range(0, self.n_rows, BLOCK_ROWS):
            rows = slice(start, min(start + BLOCK_ROWS, self.n_rows))
            mine = slice(None) if keep is None else keep[rows]
            taken = 0
            for c in columns:
                block = self.read(c, rows)
                if c == "coeffs" and digest is not None:
                    digest.update(np.ascontiguousarray(block).tobytes())
                if c == "coeffs" and finite:
                    check_finite_rows(block, str(self.path), rows.start, self.n_rows)
                block = block[mine]
                out[c][filled : filled + len(block)] = block
                taken = len(block)
            filled += taken
        fingerprint = None
        if digest is not None:
            digest.update(np.ascontiguousarray(self.split).tobytes())
            fingerprint = digest.hexdigest()
        take = (lambda a: a) if keep is None else (lambda a: a[keep])  # noqa: E731
        return CoefficientStore(
            **{c: out.get(c) for c in ROW_DATASETS}, theta=self.theta, attrs=dict(self.attrs),
            labels={k: take(v) for k, v in self.labels.items()},
            split=None if self.split is None else take(self.split), source_fingerprint=fingerprint,
        )


def open_store(path: str | Path, expect: Mapping[str, object] | None = None) -> StoreReader:
    """Open and validate a coefficient store; its rows are read on demand.

    Parameters
    ----------
    path : str or Path
    expect : mapping, optional
        Attributes the caller needs (for example ``{"J": 5, "L": 8,
        "fields": "Q,U"}``); a mismatch is an error that names both values.

    Raises
    ------
    DustvaeFileError
        (an :class:`OSError` and a :class:`DustvaeError`) When the file is
        missing, not HDF5, not a store, damaged, or reads other files.
    DustvaeError
        When it is of a newer format or of another layout than ``expect``.
    """
    path = Path(path)
    h5 = hdf5.open_hdf5(path, "give a store written by `dustvae compute-wst`")
    try:
        return StoreReader(path, h5, expect)
    except BaseException:
        h5.close()
        raise


def read_store(path: str | Path, expect: Mapping[str, object] | None = None, *, columns: Sequence[str] = ROW_DATASETS,
               splits: Sequence[str] | None = None, finite: bool = False) -> CoefficientStore:
    """Read and validate a coefficient store (see :func:`open_store` and :meth:`StoreReader.load`)."""
    with open_store(path, expect) as reader:
        return reader.load(columns, splits, finite)
