"""How much memory this process may still take, checked before large allocations.

A small file can declare arrays far larger than itself (compressed zeros,
rows never written, a huge ``--size``). Readers and simulators compute what
their inputs ask for and call :func:`check_memory` before allocating, so that
the user gets one line naming the amount instead of a ``MemoryError`` or the
kernel's out-of-memory killer.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from .errors import DustvaeError


def format_bytes(n: float) -> str:
    """``n`` bytes in the largest binary unit that keeps it at 1 or more (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None  # cgroup's "max" means no limit


def available_bytes() -> int:
    """Memory this process can still allocate: the least of the free RAM, its cgroup's and its address-space limit's room.

    Falls back to the total RAM where ``/proc`` is missing.
    """
    room = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                room.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        room.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        room.append(limit - used)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)  # `ulimit -v`: counts address space, not resident pages
    if soft != resource.RLIM_INFINITY:
        pages = _read_int("/proc/self/statm")
        room.append(soft - (pages or 0) * os.sysconf("SC_PAGE_SIZE"))
    return max(0, min(room))


def check_memory(nbytes: float, what: str, remedy: str) -> None:
    """Refuse, in one line, work that needs more than :func:`available_bytes`.

    Parameters
    ----------
    nbytes : float
        Bytes the work will allocate (an estimate is fine: it is compared with what is free).
    what : str
        What asks for it, e.g. ``"store.h5: reading 400000 rows"``.
    remedy : str
        What the user can do, e.g. ``"choose a smaller --size"``.
    """
    free = available_bytes()
    if nbytes > free:
        raise DustvaeError(f"{what}: {format_bytes(nbytes)} of memory needed, {format_bytes(free)} free; {remedy}")
