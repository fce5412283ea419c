"""Hostile inputs met as a user meets them: one line, exit status 2, nothing of theirs lost or left behind."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dustvae.errors import DustvaeError
from dustvae.io.patchfile import PatchSet
from dustvae.wst import compute
from dustvae.wst.compute import compute_store, work_dir_for

from conftest import assert_user_error, run_cli
from helpers import synthetic_store, write_synthetic_store


def test_output_that_is_an_input_is_refused(tmp_path, healpix_file):
    copy = tmp_path / "sky.fits"
    copy.write_bytes(healpix_file.read_bytes())
    before = copy.read_bytes()
    assert_user_error(run_cli("patches", copy, "-o", copy, "--overwrite", "--patch-size", 32), "also an input")
    store = write_synthetic_store(tmp_path / "c.h5")
    assert_user_error(run_cli("evaluate", store, "-o", store, "--overwrite", "--baselines", "rwst1"), "also an input")
    assert copy.read_bytes() == before


@pytest.mark.parametrize("args, fragment", [
    (("--nside", "0"), "--nside 0"),
    (("--nside", "100"), "power of 2"),
    (("--size", "64", "--pixel-scale", "nan"), "--pixel-scale"),
    (("--size", "64", "--pixel-scale", "0"), "--pixel-scale"),
    (("--size", "64", "--pixel-scale", "-1"), "--pixel-scale"),
])
def test_simulate_refuses_bad_values(tmp_path, args, fragment):
    out = tmp_path / "s.fits"
    assert_user_error(run_cli("simulate", out, *args), fragment)
    assert not out.exists()


@pytest.mark.parametrize("content, fragment", [
    ("[1, 2]", "list"),
    (json.dumps({"compressors": {}, "inputs": {"layout": {}}, "examples": {}, "test": {}}), "no compressor"),
    (json.dumps({"compressors": {"pca-8": {"rmse_log2": 0.1, "latent": 8}}}), "inputs"),
    (json.dumps({"compressors": {"pca-8": {"rmse_log2": 0.1, "latent": 8}}, "inputs": {}, "examples": {}, "test": {}}), "layout"),
    ("{not json", "not JSON"),
])
def test_figures_on_malformed_results(tmp_path, content, fragment):
    path = tmp_path / "results.json"
    path.write_text(content)
    out = tmp_path / "figs"
    assert_user_error(run_cli("figures", path, "-o", out), fragment)
    assert not out.exists()  # no empty output folder left behind


def test_evaluate_refuses_a_store_with_inf(tmp_path):
    store = synthetic_store()
    store.coeffs[3, 10] = np.inf
    from dustvae.io.store import write_store

    path = write_store(tmp_path / "bad.h5", store)
    out = tmp_path / "r.json"
    assert_user_error(run_cli("evaluate", path, "-o", out, "--baselines", "rwst1"), "inf", "row 3")
    assert not out.exists()


def _patches(n: int = 8, size: int = 32, seed: int = 0) -> PatchSet:
    rng = np.random.default_rng(seed)
    return PatchSet(patches=rng.normal(size=(n, 2, size, size)).astype(np.float32), fields=("Q", "U"),
                    centers=np.zeros((n, 2)), center_frame="flat", masked_fraction=np.zeros(n, np.float32))


def test_a_damaged_finished_batch_is_redone(tmp_path, monkeypatch, one_torch_thread):
    patches, out = _patches(), tmp_path / "c.h5"
    reference = compute_store(patches, None, batch_size=2, progress=False)
    saved = []
    real_save = compute._save_atomic

    def save_then_stop(path, **arrays):
        real_save(path, **arrays)
        saved.append(path)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(compute, "_save_atomic", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        compute_store(patches, out, batch_size=2, progress=False)
    monkeypatch.setattr(compute, "_save_atomic", real_save)
    saved[0].write_bytes(saved[0].read_bytes()[:40])  # a truncated batch file
    again = compute_store(patches, out, batch_size=2, progress=False)
    np.testing.assert_array_equal(again.coeffs, reference.coeffs)


def test_constant_field_gives_advice_and_leaves_nothing(tmp_path, one_torch_thread):
    patches = _patches(n=4)
    patches.patches[1, 0] = 0.5  # Q constant over patch 1: its scattering coefficients are zero
    out = tmp_path / "c.h5"
    with pytest.raises(DustvaeError, match="constant.*--fields"):
        compute_store(patches, out, batch_size=2, progress=False)
    assert not out.exists() and not work_dir_for(out).exists()


def test_a_run_that_fails_before_its_first_epoch_leaves_no_directory(tmp_path):
    store = write_synthetic_store(tmp_path / "c.h5")
    run = tmp_path / "run"
    assert_user_error(run_cli("train", store, "--latent", 8, "-o", run, "--lr", "1e30", "--epochs", 1, "--quiet"), "diverged")
    assert not run.exists()


def _limited(args: list[str], kib: int) -> subprocess.CompletedProcess:
    """The real command with a file-size limit (``ulimit -f``): writes beyond it fail as on a full disk."""
    script = f"ulimit -f {kib}; exec {sys.executable} -m dustvae " + " ".join(map(str, args))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)


def test_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, healpix_file):
    out = tmp_path / "p.h5"
    out.write_bytes(b"the user's old file")
    proc = _limited(["patches", healpix_file, "-o", out, "--patch-size", 32, "--overwrite"], kib=8)
    assert_user_error(proc, "too large")
    assert out.read_bytes() == b"the user's old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]  # no temporary file left


def test_training_on_a_full_disk_is_one_line(tmp_path):
    store = write_synthetic_store(tmp_path / "c.h5")
    run = tmp_path / "run"
    proc = _limited(["train", store, "--latent", 8, "-o", run, "--epochs", 1, "--quiet"], kib=64)
    assert_user_error(proc, "too large")
    assert not run.exists()


@pytest.mark.parametrize("args, fragment", [(("--J", "0"), "J = 0"), (("--J", "-1"), "J = -1"), (("--L", "0"), "L")])
def test_transform_settings_are_checked_before_any_work(tmp_path, flat_file, args, fragment):
    out = tmp_path / "c.h5"
    assert_user_error(run_cli("compute-wst", flat_file, "--patch-size", 32, "-o", out, *args), fragment)
    assert_user_error(run_cli("make-dataset", tmp_path / "d.h5", "--maps", 3, *args), fragment)
    assert not out.exists() and not work_dir_for(out).exists() and not (tmp_path / "d.h5").exists()
