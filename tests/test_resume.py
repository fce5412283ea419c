"""Interrupted and continued runs: compute-wst and training.

compute-wst: no truncated output, and a resumed run equals an uninterrupted
one (a real subprocess is killed with SIGKILL, and SIGINT as Ctrl-C does).
Training: a resumed run must see the same store; a finished run continues
to a larger epoch count; one run per directory. (The kill-and-resume test
of training, to identical weights, is in test_models.py.)
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dustvae.errors import DustvaeError
from dustvae.io.patchfile import write_patches
from dustvae.models import ModelConfig, TrainConfig, train
from dustvae.models.checkpoint import load_checkpoint
from dustvae.sky.patches import flat_patches
from dustvae.io.maps import FlatMap
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.wst.compute import work_dir_for

from conftest import assert_user_error, run_here
from helpers import assert_same_store, synthetic_store, write_synthetic_store

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
    run_here("compute-wst", patch_file, "-o", out, "--batch-size", 2, "--quiet", check=True)
    return out


#: The real command, with a pause after each saved batch so that the test can interrupt it between batches.
SLOW_RUN = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if the test runner ignores Ctrl-C
import dustvae.wst.compute as compute
save = compute._save_atomic
def slow_save(*args, **kwargs):
    save(*args, **kwargs)
    time.sleep(0.6)
compute._save_atomic = slow_save
from dustvae.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start_slow_run(patch_file: Path, out: Path) -> subprocess.Popen:
    # --batch-size 2 makes 8 batches, each saved as it finishes.
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, "compute-wst", str(patch_file), "-o", str(out), "--batch-size", "2", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_batches(work: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if work.exists() and len(list(work.glob("rows_*.npz"))) >= count:
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
    done = len(list(work.glob("rows_*.npz")))
    assert 2 <= done < N_BATCHES

    proc = run_here("compute-wst", patch_file, "-o", out, "--batch-size", 2, check=True)
    assert f"resumed: {2 * done} of 16" in proc.stderr
    assert out.exists() and not work.exists()
    assert_same_store(reference, out)


def test_resume_with_another_batch_size_keeps_finished_rows(tmp_path, patch_file, reference):
    """As on a GPU with less free memory after a restart: the finished rows are kept, the rest done in new batches."""
    out = tmp_path / "c.h5"
    proc = start_slow_run(patch_file, out)
    work = work_dir_for(out)
    wait_for_batches(work, 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    done = len(list(work.glob("rows_*.npz")))
    proc = run_here("compute-wst", patch_file, "-o", out, "--batch-size", 3, check=True)
    assert f"resumed: {2 * done} of 16" in proc.stderr
    assert_same_store(reference, out, rounding=True)  # other batches: equal to float32 rounding


# -- training runs ------------------------------------------------------------------------------

TRAIN_ARGS = ["--latent", 16, "--batch-size", 16, "--warmup", 1, "--quiet", "--device", "cpu"]


def test_training_resume_refuses_another_store(tmp_path):
    a = write_synthetic_store(tmp_path / "a.h5", n=64, n_maps=8)
    b = write_synthetic_store(tmp_path / "b.h5", n=64, n_maps=8, seed=1)
    run_here("train", a, *TRAIN_ARGS, "--epochs", 1, "-o", tmp_path / "run", check=True)
    before = (tmp_path / "run" / "last.pt").read_bytes()
    assert_user_error(run_here("train", b, *TRAIN_ARGS, "--epochs", 2, "-o", tmp_path / "run", "--resume"), "different store")
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_finished_training_continues_to_a_larger_epoch_count(tmp_path):
    store = synthetic_store(n=64, n_maps=8)
    run = tmp_path / "run"
    config = TrainConfig(ModelConfig(16), epochs=2, batch_size=16, warmup_epochs=1, patience=1000)
    first = train(store, run, config, progress=False, device="cpu")
    assert first.epochs_run == 2 and load_checkpoint(run / "last.pt")["finished"]
    metrics = (run / "metrics.jsonl").read_text()

    again = train(store, run, config, resume=True, progress=False, device="cpu")  # nothing more was asked for
    assert again.epochs_run == 2 and (run / "metrics.jsonl").read_text() == metrics

    longer = replace(config, epochs=3)
    more = train(store, run, longer, resume=True, progress=False, device="cpu")
    assert more.epochs_run == 3
    text = (run / "metrics.jsonl").read_text()
    assert text.startswith(metrics) and len(text.splitlines()) == 3
    payload = load_checkpoint(run / "last.pt")
    assert payload["finished"] and payload["epoch"] == 2 and payload["train_config"]["epochs"] == 3
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 3


def test_one_training_run_per_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".lock", "w") as held:  # as a second process training into it would hold it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DustvaeError, match="another training run"):
            train(synthetic_store(n=64, n_maps=8), run, TrainConfig(ModelConfig(16), epochs=1, batch_size=16), progress=False, device="cpu")
    assert not (run / "last.pt").exists()


def test_a_finished_run_is_reused_only_for_its_store_and_settings(tmp_path, one_torch_thread):
    """Same store and settings: reused. Other settings or another store: moved aside, said why, trained anew."""
    from dustvae.models.train import ModelConfig, TrainConfig, train_unless_finished

    from helpers import synthetic_store

    store = synthetic_store(n=96, n_maps=12)
    config = TrainConfig(ModelConfig(4), epochs=1, batch_size=32)
    said: list[str] = []
    run = tmp_path / "run"
    assert train_unless_finished(store, run, config, progress=False, say=said.append)[1]
    assert not train_unless_finished(store, run, config, progress=False, say=said.append)[1] and not said
    other = TrainConfig(ModelConfig(4), epochs=1, batch_size=32, augment=True)
    assert train_unless_finished(store, run, other, progress=False, say=said.append)[1]
    assert said == [f"{run}: trained again: it was trained with other settings (augment); the old run is in {run}.old"]
    assert (tmp_path / "run.old" / "best.pt").exists()
    moved = synthetic_store(n=96, n_maps=12, seed=1)
    assert train_unless_finished(moved, run, other, progress=False, say=said.append)[1]
    assert "another store" in said[-1] and (tmp_path / "run.old2" / "best.pt").exists()
