"""Shared fixtures: small maps written to real files, and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dustvae.io.maps import write_flat_map, write_healpix_map
from dustvae.sky.simulate import DustParams, simulate_flat, simulate_healpix
from dustvae.threads import cpu_budget

# One pytest-xdist worker per core: each worker, and every command it starts, gets its share of the cores, as
# concurrent dustvae jobs would (dustvae.threads); torch's default of one thread per core in every process made
# the workers slow each other down. Set before torch is imported (the imports above leave it out), so that its thread pool takes it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("DUSTVAE_THREADS", str(max(1, cpu_budget() // _WORKERS)))
    os.environ.setdefault("OMP_NUM_THREADS", os.environ["DUSTVAE_THREADS"])


def run_cli(*args: str, cwd: Path | None = None, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m dustvae ARGS`` as a user would, capturing output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "dustvae", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dustvae {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def run_here(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``dustvae ARGS`` in this process (the same entry point as :func:`run_cli`), capturing its output.

    A command started here shares the test process's imports, so it costs the command's work only; where the
    process itself matters (signals, the environment a job array sets, bit-identity across processes), tests use
    :func:`run_cli`.
    """
    import contextlib
    import io

    from dustvae.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    proc = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"dustvae {' '.join(map(str, args))} failed ({code}):\n{proc.stderr}")
    return proc


def run_torchrun(*args: str, ranks: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node RANKS -m dustvae ARGS``, as a user starts it on one node (Gloo on CPU)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
               "-m", "dustvae", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dustvae: error:"), lines[0]
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


@pytest.fixture(scope="session")
def healpix_maps() -> dict[str, np.ndarray]:
    """A small simulated HEALPix sky (nside 32), RING, COSMO."""
    return simulate_healpix(32, DustParams(seed=7))


@pytest.fixture(scope="session")
def healpix_file(tmp_path_factory, healpix_maps) -> Path:
    path = tmp_path_factory.mktemp("maps") / "sky.fits"
    write_healpix_map(path, healpix_maps, extra_header=DustParams(seed=7).to_header())
    return path


@pytest.fixture(scope="session")
def flat_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("maps") / "flat.fits"
    maps = simulate_flat(128, DustParams(seed=3))
    write_flat_map(path, maps, pixel_scale_arcmin=5.0, periodic=True, extra_header=DustParams(seed=3).to_header())
    return path


@pytest.fixture
def one_torch_thread():
    """One CPU thread for torch: on a shared machine more threads only slow small transforms."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



@pytest.fixture
def quick_label_regression(monkeypatch):
    """Boosting with 10 rounds in place of 100, for tests of the chain around the label regression.

    Those tests check what is written and reused, not the scores; the tests of the regression itself
    (tests/test_evaluate.py) use the regressor as evaluate builds it. A hundred rounds on 1360-column
    codes are most of an evaluation's time at the tests' sizes.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    from dustvae.analysis import physics

    monkeypatch.setattr(physics, "_boosting", lambda: HistGradientBoostingRegressor(
        max_iter=10, max_leaf_nodes=15, early_stopping=False, random_state=0))
