"""Atomic file writes: a reader never sees a half-written output."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import h5py


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; flush it to disk and rename it onto ``path`` on success.

    The one writer of every output file. The data reach the disk (fsync)
    before the rename, so that after a crash ``path`` holds either its old
    or its complete new content. On any exception (KeyboardInterrupt included) the temporary file is
    removed and ``path`` is left as it was. A process killed outright leaves
    at most a hidden ``.NAME.tmp-PID`` file, never a truncated ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_path` with plain file I/O.

    A full disk or a file-size limit then raises an ordinary ``OSError``
    (which the command line reports in one line) and leaves ``path`` as it was.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return Path(path)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, **kwargs) -> Iterator["h5py.File"]:
    """An HDF5 file built in memory and written to ``path`` atomically when the block ends.

    HDF5 reports a failed write (full disk) with pages of messages and can
    crash while closing the damaged file; building the file in memory and
    writing its bytes with :func:`write_bytes_atomic` turns that into one
    ``OSError``. Keyword arguments go to :class:`h5py.File`.
    """
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w", **kwargs) as h5:
        yield h5
    write_bytes_atomic(path, buffer.getvalue())


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
