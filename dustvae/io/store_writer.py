"""Writing a coefficient store (the format :mod:`dustvae.io.store` describes and reads): atomically, block by block."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Mapping

import h5py
import numpy as np

from .atomic import atomic_h5
from .store import CHUNK_ROWS, ROW_DATASETS, SPLIT_NAMES, STORE_FORMAT, STORE_VERSION, CoefficientStore, _row_specs


class StoreWriter:
    """The row datasets of a store being written, filled block by block (see :func:`store_writer`)."""

    def __init__(self, h5: h5py.File, n: int, attrs: Mapping) -> None:
        self.n = n
        self._datasets = {}
        for name, (shape, dtype, _) in _row_specs(n, attrs).items():
            chunks = (min(n, CHUNK_ROWS),) + shape[1:] if n else None
            self._datasets[name] = h5.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks,
                                                     compression="gzip" if n else None, compression_opts=4 if n else None)

    def write(self, start: int, **blocks: np.ndarray) -> None:
        """Write rows ``start, start + 1, ...`` of the row datasets named by the keywords."""
        for name, block in blocks.items():
            if len(block):
                self._datasets[name][start : start + len(block)] = block


@contextlib.contextmanager
def store_writer(path: str | Path, n: int, attrs: Mapping, theta: np.ndarray, *,
                 labels: Mapping[str, np.ndarray] | None = None, split: np.ndarray | None = None) -> Iterator[StoreWriter]:
    """Write an ``n``-row store atomically, its row datasets given block by block to the yielded writer.

    ``attrs`` holds the layout (``J``, ``L``, ``fields``, ``vector_length``)
    and every other attribute; ``theta``, ``labels`` and ``split`` (one value
    per row) are written whole. Chunked by rows, gzip level 4, no timestamps.
    Every row must be written before the block ends.
    """
    with atomic_h5(path, track_order=True) as h5:
        writer = StoreWriter(h5, n, attrs)
        yield writer
        h5["theta"] = np.asarray(theta, dtype=np.float64)
        group = h5.create_group("labels")
        for key in sorted(labels or {}):
            group[key] = np.asarray(labels[key], dtype=np.float64)
        if split is not None:
            h5["split"] = np.asarray(split, dtype=np.int8)
            h5["split"].attrs["names"] = ",".join(SPLIT_NAMES)
        h5.attrs["format"] = STORE_FORMAT
        h5.attrs["format_version"] = STORE_VERSION
        for key in sorted(attrs):
            if key not in ("format", "format_version"):
                h5.attrs[key] = attrs[key]


def write_store(path: str | Path, store: CoefficientStore) -> Path:
    """Write a store atomically (chunked by rows, gzip level 4, no timestamps)."""
    missing = [name for name in ROW_DATASETS if getattr(store, name) is None]
    if missing:
        raise ValueError(f"a store loaded without {', '.join(missing)} cannot be written")
    with store_writer(path, len(store), store.attrs, store.theta, labels=store.labels, split=store.split) as writer:
        writer.write(0, **{name: getattr(store, name) for name in ROW_DATASETS})
    return Path(path)
