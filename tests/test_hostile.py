"""Hostile inputs met as a user meets them: one line, exit status 2, nothing of theirs lost or left behind."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest

from dustvae.errors import DustvaeError
from dustvae.io.patchfile import PatchSet
from dustvae.wst import compute
from dustvae.wst.compute import compute_store, work_dir_for

from conftest import assert_user_error, run_here
from helpers import synthetic_store, write_synthetic_store


def test_output_that_is_an_input_is_refused(tmp_path, healpix_file):
    copy = tmp_path / "sky.fits"
    copy.write_bytes(healpix_file.read_bytes())
    before = copy.read_bytes()
    assert_user_error(run_here("patches", copy, "-o", copy, "--overwrite", "--patch-size", 32), "also an input")
    store = write_synthetic_store(tmp_path / "c.h5")
    assert_user_error(run_here("evaluate", store, "-o", store, "--overwrite", "--baselines", "rwst1"), "also an input")
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
    assert_user_error(run_here("simulate", out, *args), fragment)
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
    assert_user_error(run_here("figures", path, "-o", out), fragment)
    assert not out.exists()  # no empty output folder left behind


def test_evaluate_refuses_a_store_with_inf(tmp_path):
    store = synthetic_store()
    store.coeffs[3, 10] = np.inf
    from dustvae.io.store_writer import write_store

    path = write_store(tmp_path / "bad.h5", store)
    out = tmp_path / "r.json"
    assert_user_error(run_here("evaluate", path, "-o", out, "--baselines", "rwst1"), "inf", "row 3")
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
    with pytest.raises(DustvaeError, match="constant.*`fields`"):
        compute_store(patches, out, batch_size=2, progress=False)
    assert not out.exists() and not work_dir_for(out).exists()


def test_a_run_that_fails_before_its_first_epoch_leaves_no_directory(tmp_path):
    store = write_synthetic_store(tmp_path / "c.h5")
    run = tmp_path / "run"
    proc = run_here("train", store, "--latent", 8, "-o", run, "--lr", "1e30", "--epochs", 1, "--quiet")
    assert_user_error(proc, "diverged")
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
    assert_user_error(run_here("compute-wst", flat_file, "--patch-size", 32, "-o", out, *args), fragment)
    assert_user_error(run_here("make-dataset", tmp_path / "d.h5", "--maps", 3, *args), fragment)
    assert not out.exists() and not work_dir_for(out).exists() and not (tmp_path / "d.h5").exists()


# -- sizes, values and messages: each crafted input or option is one line, exit 2, and nothing is written ----


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A store and a tiny run trained on it for two epochs (latent 8)."""
    from dustvae.io.store import read_store
    from dustvae.models.train import ModelConfig, TrainConfig, train

    root = tmp_path_factory.mktemp("small")
    store = write_synthetic_store(root / "c.h5")
    train(read_store(store), root / "run", TrainConfig(ModelConfig(8), epochs=2, batch_size=32), device="cpu", progress=False)
    return store, root / "run"


@pytest.mark.parametrize("args, fragment", [
    (("simulate", "{out}.fits", "--size", "100000"), "choose a smaller --size"),
    (("simulate", "{out}.fits", "--nside", "8192"), "choose a smaller --nside"),
    (("simulate", "{out}.fits", "--seed", "-1"), "--seed"),
    (("synthesize", "{store}", "-o", "{out}.fits", "--size", "100000", "--quiet"), "choose a smaller --size"),
    (("synthesize", "{store}", "-o", "{out}.fits", "--size", "0", "--quiet"), "map size 0"),
    (("synthesize", "{store}", "-o", "{out}.fits", "--lr", "nan", "--quiet"), "--lr nan"),
    (("synthesize", "{store}", "-o", "{out}.fits", "--lr", "0", "--quiet"), "--lr 0.0"),
    (("sample", "{run}", "-o", "{out}.h5", "--seed", "-1"), "--seed"),
    (("compute-wst", "{store}", "-o", "{out}.h5", "--batch-size", "0"), "--batch-size"),
    (("train", "{store}", "--latent", "8", "-o", "{out}", "--lr", "inf", "--quiet"), "--lr (inf)"),
    (("sample", "{run}", "-n", str(10**12), "-o", "{out}.h5"), "out of memory"),
])
def test_sizes_and_values_that_cannot_work_are_one_line(tmp_path, small_run, args, fragment):
    store, run = small_run
    out = tmp_path / "out"
    args = [a.format(store=store, run=run, out=out) for a in args]
    assert_user_error(run_here(*args), fragment)
    assert list(tmp_path.iterdir()) == []


def test_simulate_checks_its_options_before_its_output(tmp_path):
    out = tmp_path / "s.fits"
    out.write_bytes(b"the user's file")
    assert_user_error(run_here("simulate", out, "--size", "64", "--slope", "9"), "slope")
    assert_user_error(run_here("simulate", out, "--size", "64"), "exists")
    assert out.read_bytes() == b"the user's file"


def test_figures_refuse_results_they_cannot_draw(tmp_path, small_run):
    store, run = small_run
    results = tmp_path / "r.json"
    assert run_here("evaluate", store, "--model", run, "--baselines", "rwst1", "-o", results).returncode == 0
    good = json.loads(results.read_text())
    renamed = json.loads(results.read_text())
    renamed["compressors"]["mine"] = renamed["compressors"].pop("vae-8")
    no_pair = json.loads(results.read_text())
    del no_pair["compressors"]["rwst1"]["per_pair"]
    for content, fragment in ((renamed, "'mine' has no example reconstructions"), (no_pair, "'rwst1'")):
        results.write_text(json.dumps(content))
        assert_user_error(run_here("figures", results, "-o", tmp_path / "figs"), fragment,
                          "per_pair" if content is no_pair else "renamed")
        assert not (tmp_path / "figs").exists()
    assert good["compressors"]["vae-8"]["per_pair"]


def _fake_validation(values):
    """A stand-in for the validation pass that reports ``values`` in turn (NaN included)."""
    calls = iter(values)

    def evaluate_split(model, x_std, beta, batch=512, target_std=None):
        rmse = next(calls)
        return {"val_loss": rmse**2, "val_rec": rmse**2, "val_kl": 0.0, "val_rmse_log2": rmse, "val_rmse_std": rmse}
    return evaluate_split


def test_a_run_whose_validation_error_becomes_nan_stops_and_keeps_finite_checkpoints(tmp_path, monkeypatch):
    from dustvae.models.checkpoint import load_checkpoint

    training = importlib.import_module("dustvae.models.train")  # the module, not the function the package exports
    store = write_synthetic_store(tmp_path / "c.h5")
    monkeypatch.setattr(training, "evaluate_split", _fake_validation([0.3, 0.2, float("nan")]))
    run = tmp_path / "run"
    proc = run_here("train", store, "--latent", 8, "-o", run, "--epochs", 5, "--warmup", 0, "--quiet")
    assert_user_error(proc, "epoch 3: validation RMSE is nan", "last.pt keeps epoch 2 and best.pt epoch 2")
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    assert last["epoch"] == 1 and best["best_epoch"] == 2 and best["best_val_rmse"] == 0.2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_kept_warmup_epoch_and_a_resume_that_trains_nothing_are_said(tmp_path, monkeypatch):
    training = importlib.import_module("dustvae.models.train")
    store = write_synthetic_store(tmp_path / "c.h5")
    monkeypatch.setattr(training, "evaluate_split", _fake_validation([0.2, 0.3, 0.4]))
    run = tmp_path / "run"
    proc = run_here("train", store, "--latent", 8, "-o", run, "--epochs", 3, "--warmup", 3, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "kept epoch 3" in proc.stdout and "warm-up epochs (the first 3, see --warmup) are kept as best" in proc.stdout
    assert "epoch 1 was lower (0.2000)" in proc.stdout
    assert "kept as best.pt whatever its validation RMSE" in " ".join(run_here("train", "--help").stdout.split())

    before = _files(run)
    proc = run_here("train", store, "--latent", 8, "-o", run, "--epochs", 2, "--warmup", 3, "--resume", "--quiet")
    assert_user_error(proc, "--epochs 2 is fewer than the 3 epochs")
    proc = run_here("train", store, "--latent", 8, "-o", run, "--epochs", 3, "--warmup", 3, "--resume", "--quiet")
    assert proc.returncode == 0 and "nothing trained: the run had already stopped after 3 epochs" in proc.stdout
    assert _files(run) == before


def test_evaluate_refuses_a_run_that_train_is_writing(tmp_path, small_run):
    import fcntl
    import shutil

    store, run = small_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with open(copy / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as `dustvae train` holds it
        proc = run_here("evaluate", store, "--model", copy, "--baselines", "rwst1", "-o", tmp_path / "r.json")
        assert_user_error(proc, "`dustvae train` is still writing this run")
    assert not (tmp_path / "r.json").exists()
    assert run_here("evaluate", store, "--model", copy, "--baselines", "rwst1", "-o", tmp_path / "r.json").returncode == 0


def test_plot_map_draws_q_and_u_without_i(tmp_path):
    from dustvae.io.maps import write_flat_map

    rng = np.random.default_rng(0)
    path = write_flat_map(tmp_path / "s.fits", {"Q": rng.normal(size=(32, 32)), "U": rng.normal(size=(32, 32))},
                          pixel_scale_arcmin=5.0, periodic=True)
    assert_user_error(run_here("plot-map", path), "--fields")
    assert "--fields" in run_here("plot-map", "--help").stdout
    assert run_here("plot-map", path, "--fields", "Q,U").returncode == 0
    assert (tmp_path / "s.png").stat().st_size > 0


@pytest.mark.parametrize("command", ["encode", "reconstruct", "sample", "interpolate", "fit-prior"])
def test_device_and_overwrite_have_help(command):
    text = " ".join(run_here(command, "--help").stdout.split())
    assert "--device TEXT auto (a GPU when there is one), cpu or cuda." in text
    assert "--overwrite Replace" in text


def test_out_of_memory_says_how_much_was_asked_for():
    import torch

    from dustvae.cli import _asked

    for allocate, fragment in ((lambda: np.empty(2**50), "8.0 PiB asked for an array"),
                               (lambda: torch.empty(2**50), "4.0 PiB asked for a tensor")):
        with pytest.raises((MemoryError, RuntimeError)) as caught:
            allocate()
        assert fragment in _asked(caught.value)
    assert _asked(RuntimeError("a bug, not memory")) is None  # shown as a traceback, as bugs are
