"""How many CPU threads a dustvae process may use, so that processes sharing a machine never oversubscribe it.

A process may use the cores of its CPU affinity mask (which ``taskset``,
cgroups and SLURM set), at most ``SLURM_CPUS_PER_TASK`` of them under
SLURM, and ``DUSTVAE_THREADS`` when that is set (for several jobs started
by hand on one machine). Processes that share that budget (the ranks a
``torchrun`` starts on one node, ``LOCAL_WORLD_SIZE``; a dataset
generator's workers) divide it between them. Torch's default, one thread
per core for every process, made two concurrent jobs on two cores several
times slower each than one alone.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Mapping

from .errors import DustvaeError


def _positive(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise DustvaeError(f"{name}={value!r} is not a whole number of threads") from None
    if number < 1:
        raise DustvaeError(f"{name}={value} must be at least 1")
    return number


def cpu_budget(environ: Mapping[str, str] = os.environ) -> int:
    """Cores this process may use: its affinity mask, capped by ``SLURM_CPUS_PER_TASK`` and ``DUSTVAE_THREADS``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    for name in ("SLURM_CPUS_PER_TASK", "DUSTVAE_THREADS"):
        cap = _positive(environ, name)
        if cap is not None:
            cores = min(cores, cap)
    return max(1, cores)


def budget_source(environ: Mapping[str, str] = os.environ) -> str:
    """Where :func:`cpu_budget` comes from, in words (for ``dustvae doctor`` and bug reports)."""
    try:
        source = f"affinity mask of {len(os.sched_getaffinity(0))} cores"
    except AttributeError:
        source = f"{os.cpu_count() or 1} cores"
    caps = [f"{name}={environ[name]}" for name in ("SLURM_CPUS_PER_TASK", "DUSTVAE_THREADS", "LOCAL_WORLD_SIZE")
            if environ.get(name)]
    return source + (", " + ", ".join(caps) if caps else "")


def cores_per_rank(environ: Mapping[str, str] = os.environ) -> int:
    """This process's share of :func:`cpu_budget` when ``LOCAL_WORLD_SIZE`` torchrun ranks share the node's budget."""
    ranks = _positive(environ, "LOCAL_WORLD_SIZE") or 1
    return max(1, cpu_budget(environ) // ranks)


def threads_per_process(processes: int = 1, environ: Mapping[str, str] = os.environ) -> int:
    """Threads for each of ``processes`` processes of this one (and of each local torchrun rank): the budget divided."""
    return max(1, cores_per_rank(environ) // max(1, processes))


def apply_thread_budget(processes: int = 1, environ: Mapping[str, str] = os.environ) -> int:
    """Give torch (and the OpenMP libraries loaded later) :func:`threads_per_process` threads; return the count.

    Torch is configured directly when it is already imported, and through
    ``OMP_NUM_THREADS`` for one imported later (unless the user set it).
    """
    threads = threads_per_process(processes, environ)
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    else:
        threads = min(threads, _positive(os.environ, "OMP_NUM_THREADS") or threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    return threads


def _exit_with(parent: int) -> None:
    """End this worker once its parent is gone (killed outright, its workers would otherwise wait forever)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def start_worker(threads: int, parent: int) -> None:
    """Initializer of a worker process: ``threads`` threads for torch and the numerical libraries; ends with ``parent``.

    For :class:`concurrent.futures.ProcessPoolExecutor` (``initargs=(threads, os.getpid())``). The parent's
    pid comes from the parent: read here, it would already be init's if the parent died before the worker started.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    threadpool_limits(threads)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
