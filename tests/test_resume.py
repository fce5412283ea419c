"""Interrupted compute-wst: no truncated output, and a resumed run equals an uninterrupted one.

These tests kill a real subprocess (SIGKILL, and SIGINT as Ctrl-C does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from dustvae.io.patchfile import write_patches
from dustvae.sky.patches import flat_patches
from dustvae.io.maps import FlatMap
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.wst.compute import work_dir_for

from conftest import run_cli

N_BATCHES = 8


@pytest.fixture(scope="module")
def patch_file(tmp_path_factory) -> Path:
    maps = simulate_flat(128, DustParams(seed=21))
    patch_set = flat_patches(FlatMap(fields={"Q": maps["Q"], "U": maps["U"]}), 32)  # 16 patches
    path = tmp_path_factory.mktemp("resume") / "p.h5"
    write_patches(path, patch_set)
    return path


@pytest.fixture(scope="module")
def reference(patch_file) -> Path:
    out = patch_file.with_name("reference.h5")
    run_cli("compute-wst", patch_file, "-o", out, "--batch-size", 2, "--quiet", check=True)
    return out


def assert_same_store(a: Path, b: Path) -> None:
    with h5py.File(a, "r") as ha, h5py.File(b, "r") as hb:
        assert sorted(ha.attrs) == sorted(hb.attrs)
        for key in ha.attrs:  # NaN-aware: an unknown pixel scale is NaN in both
            np.testing.assert_array_equal(ha.attrs[key], hb.attrs[key], err_msg=key)
        names = _names(ha)
        assert names == _names(hb)
        for name in names:
            if isinstance(ha[name], h5py.Dataset):
                np.testing.assert_array_equal(ha[name][...], hb[name][...], err_msg=name)


def _names(h5) -> list[str]:
    out: list[str] = []
    h5.visit(out.append)
    return sorted(out)


def start_slow_run(patch_file: Path, out: Path) -> subprocess.Popen:
    # --batch-size 2 makes 8 batches, each saved as it finishes.
    return subprocess.Popen(
        [sys.executable, "-m", "dustvae", "compute-wst", str(patch_file), "-o", str(out), "--batch-size", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, DUSTVAE_TEST_BATCH_DELAY="0.3"),
    )


def wait_for_batches(work: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if work.exists() and len(list(work.glob("batch_*.npz"))) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("no batch was written in time")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_interrupted_run_resumes_to_identical_store(tmp_path, patch_file, reference, how):
    out = tmp_path / "c.h5"
    proc = start_slow_run(patch_file, out)
    work = work_dir_for(out)
    wait_for_batches(work, 2, proc)
    proc.send_signal(how)
    _, stderr = proc.communicate(timeout=60)
    if how == signal.SIGINT:
        assert proc.returncode == 130 and "resume" in stderr
    assert not out.exists(), "an interrupted run must not leave an output file"
    done = len(list(work.glob("batch_*.npz")))
    assert 2 <= done < N_BATCHES

    proc = run_cli("compute-wst", patch_file, "-o", out, "--batch-size", 2, check=True)
    assert f"resumed: {2 * done} of 16" in proc.stderr
    assert out.exists() and not work.exists()
    assert_same_store(reference, out)
