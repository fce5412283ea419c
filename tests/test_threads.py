"""Thread budgets: the affinity mask, SLURM's and the user's caps, shared by local ranks and workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dustvae.errors import DustvaeError
from dustvae.threads import cpu_budget, threads_per_process

CORES = len(os.sched_getaffinity(0))


def test_budget_follows_the_affinity_mask_and_caps():
    assert cpu_budget({}) == CORES
    assert cpu_budget({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert cpu_budget({"DUSTVAE_THREADS": "1", "SLURM_CPUS_PER_TASK": str(CORES)}) == 1
    assert cpu_budget({"SLURM_CPUS_PER_TASK": str(CORES + 8)}) == CORES  # a cap never adds cores


def test_processes_and_local_ranks_share_the_budget():
    env = {"SLURM_CPUS_PER_TASK": "8"}
    if CORES < 8:
        env = {"DUSTVAE_THREADS": str(CORES)}
    total = cpu_budget(env)
    assert threads_per_process(1, env) == total
    assert threads_per_process(2, env) == max(1, total // 2)
    assert threads_per_process(1, {**env, "LOCAL_WORLD_SIZE": "2"}) == max(1, total // 2)
    assert threads_per_process(64, env) == 1  # never zero


@pytest.mark.parametrize("value", ["0", "two", "-3"])
def test_bad_values_are_one_line_errors(value):
    with pytest.raises(DustvaeError, match="DUSTVAE_THREADS"):
        cpu_budget({"DUSTVAE_THREADS": value})


def test_a_command_runs_with_its_share():
    """The real command sets torch's threads from the budget (here one thread)."""
    code = ("import sys, torch; from dustvae.cli import main; main(['simulate', '--help']); "
            "print('threads', torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "DUSTVAE_THREADS": "1"}, capture_output=True,
                         text=True, timeout=120)
    assert "threads 1" in out.stdout, out.stderr



#: A parent that starts workers as make-dataset does, prints their pids, and waits to be killed.
POOL_PARENT = """
import multiprocessing, os, time
from concurrent.futures import ProcessPoolExecutor
from dustvae.threads import start_worker
if __name__ == "__main__":
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker,
                               initargs=(1, os.getpid()))
    pids = {pool.submit(os.getpid).result() for _ in range(4)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
"""


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's exit may wait for its new parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_end_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(POOL_PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert workers and all(_running(pid) for pid in workers)
    finally:
        parent.kill()
        parent.wait(timeout=30)
    deadline = time.time() + 20
    while any(_running(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers), "workers outlived their killed parent"
