"""Atomic file writes: a reader never sees a half-written output."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator


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


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
