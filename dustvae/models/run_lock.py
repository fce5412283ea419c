"""The lock on a run directory: one training run writes into it at a time, and readers can tell."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator

from ..errors import DustvaeError

#: The lock file in a run directory, held by the run that writes into it.
_LOCK = ".lock"


def check_not_training(path: str | Path) -> None:
    """Refuse, in one line, a run directory (or a checkpoint in one) that a training run is still writing."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    try:
        handle = open(run_dir / _LOCK)
    except OSError:  # no lock file: never trained here, or not a run directory
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DustvaeError(f"{run_dir}: `dustvae train` is still writing this run; wait for it to finish, "
                               f"or give a copy of its best.pt") from None
        fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory, so that two runs cannot write into it at once."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / _LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DustvaeError(f"{run_dir}: another training run is using this directory; wait for it or choose "
                               f"another `run_dir`") from None
        yield
