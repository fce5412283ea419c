"""torchrun: two CPU ranks (Gloo) in real subprocesses train the model one process trains, and resume on one.

Tolerance. The ranks compute the same global batch as one process, with
sums in another order (each rank's half of the gradient, then
DistributedDataParallel's average; BatchNorm's statistics from all-reduced
partial sums): the first step's gradients agree to 8e-6 of each tensor's
largest entry (one process with 1 and with 2 threads: 3e-6). Adam divides
each gradient by its running size, so an entry near zero whose sign the
rounding flips moves by a whole step (the learning rate, 1e-3) the other
way: single weights may differ by a few steps (measured at most 1.8e-3
after 3 epochs), while the weights as a whole stay together. The test
measures the distance between the two runs' weights against how far
training moved them: measured 0.015 here (0.026 with --epochs 3 in one
go; with BatchNorm left per rank, the bug this guards against, 0.62); it
allows 0.1. Each epoch's validation RMSE agrees to 1e-5 (per-rank
BatchNorm: 2e-3), the test allows 1e-4; the training loss (sampled z, a
large KL term) to 2e-4, the test allows 1e-3.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from dustvae.distributed import Ranks, launched_ranks
from dustvae.errors import DustvaeError
from dustvae.models.checkpoint import load_checkpoint
from dustvae.models.train import ModelConfig, TrainConfig, generator_states, restore_generators, train
from dustvae.models.vae import DilatedConvVAE

from conftest import assert_user_error, run_torchrun
from helpers import synthetic_store, write_synthetic_store

WEIGHT_TOLERANCE = 0.1  # |w_ranks - w_one| / |w_one - w_start|
RMSE_TOLERANCE = 1e-4  # relative, each epoch's validation RMSE
CONFIG = TrainConfig(ModelConfig(16), epochs=2, batch_size=16, warmup_epochs=1, patience=1000, augment=True)
ARGS = ["--latent", "16", "--batch-size", "16", "--warmup", "1", "--patience", "1000", "--augment", "--quiet", "--device", "cpu"]


def _weights(path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)["model"]
    return {k: v.double() for k, v in state.items() if v.is_floating_point() and "running" not in k and "data_" not in k}


def _distance(a: dict, b: dict) -> float:
    return math.sqrt(sum(float(((a[k] - b[k]) ** 2).sum()) for k in a))


@pytest.mark.slow
def test_two_ranks_train_what_one_process_trains_and_resume_on_one(tmp_path):
    store_path = write_synthetic_store(tmp_path / "store.h5", n=80, n_maps=10)
    store = synthetic_store(n=80, n_maps=10)  # 64 training rows: batches of 16, each rank takes 8 rows a step
    one, ranked = tmp_path / "one", tmp_path / "ranked"
    train(store, one, CONFIG, device="cpu", progress=False)
    torch.manual_seed(CONFIG.seed)
    start = {k: v.double() for k, v in DilatedConvVAE.from_config(CONFIG.model).state_dict().items()}

    proc = run_torchrun("train", store_path, *ARGS, "--epochs", "2", "-o", ranked)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("best validation RMSE") == 1 and "on 2 ranks" in proc.stdout  # rank 0 alone reports
    assert json.loads((ranked / "config.json").read_text())["ranks"] == 2
    # A third epoch for both, on one process: a run resumes on another number of ranks.
    longer = replace(CONFIG, epochs=3)
    reference = train(store, one, longer, device="cpu", resume=True, progress=False)
    train(store, ranked, longer, device="cpu", resume=True, progress=False)

    rows = [json.loads(line) for line in (ranked / "metrics.jsonl").read_text().splitlines()]
    assert [row["ranks"] for row in rows] == [2, 2, 1]
    for mine, theirs in zip(rows, reference.history, strict=True):
        assert mine["val_rmse_log2"] == pytest.approx(theirs["val_rmse_log2"], rel=RMSE_TOLERANCE)
        assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=10 * RMSE_TOLERANCE)
    ours, theirs = _weights(ranked / "last.pt"), _weights(one / "last.pt")
    assert ours.keys() == theirs.keys()  # the global BatchNorm keeps BatchNorm1d's state
    moved = _distance(theirs, {k: start[k] for k in theirs})
    assert moved > 0.1
    assert _distance(ours, theirs) / moved < WEIGHT_TOLERANCE


def test_ranks_and_shards_together_are_refused(tmp_path):
    store = write_synthetic_store(tmp_path / "s.h5", n=32, n_maps=4)
    proc = subprocess.run([sys.executable, "-m", "dustvae", "compute-wst", str(store), "-o", str(tmp_path / "o.h5"),
                           "--shard", "0/2"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0"))
    assert_user_error(proc, "torchrun ranks", "use one or the other")


def test_rank_variables_are_read_and_checked():
    assert launched_ranks({}) == Ranks(0, 1, 0)
    assert launched_ranks({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == Ranks(3, 4, 1)
    for bad in ({"WORLD_SIZE": "2", "RANK": "2"}, {"WORLD_SIZE": "two"}):
        with pytest.raises(DustvaeError, match="torchrun"):
            launched_ranks(bad)


class _FakeCuda:
    """Stands for torch.cuda on a CPU machine: records which GPU's generator state is read and set."""

    def __init__(self):
        self.states = {1: torch.tensor([7, 8, 9], dtype=torch.uint8)}
        self.set_calls = []

    def get_rng_state(self, device):
        return self.states[device.index].clone()

    def set_rng_state(self, state, device):
        self.set_calls.append((device.index, state.tolist()))

    def set_rng_state_all(self, states):
        self.set_calls.append(("all", len(states)))


def test_the_training_gpus_generator_is_saved_and_restored():
    generator = torch.Generator().manual_seed(3)
    cuda, gpu = _FakeCuda(), torch.device("cuda", 1)
    states = generator_states(generator, gpu, cuda)
    assert states["cuda_rng"].tolist() == [7, 8, 9]
    assert "cuda_rng" not in generator_states(generator, torch.device("cpu"), cuda)

    expected = torch.rand(3, generator=generator)  # the draws after the saved state
    restore_generators(states, generator, gpu, cuda)
    assert torch.equal(torch.rand(3, generator=generator), expected)
    assert cuda.set_calls == [(1, [7, 8, 9])]  # that GPU's generator, on a GPU run resumed on any rank count
    restore_generators({**states, "cuda_rng": [states["cuda_rng"]] * 2}, generator, gpu, cuda)  # older checkpoints
    assert cuda.set_calls[-1] == ("all", 2)
