"""VAE-1 and VAE-2: layer shapes against the tables, loss, training, resume, model commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from dustvae.io.latents import read_latents
from dustvae.io.store import read_store
from dustvae.io.store_writer import write_store
from dustvae import defaults
from dustvae.models import DilatedConvVAE, TrainConfig, kl_divergence, load_model, negative_elbo, train
from dustvae.models.checkpoint import load_checkpoint
from dustvae.models.train import ModelConfig, Progress

from conftest import assert_user_error, run_cli, run_here
from helpers import synthetic_store, write_synthetic_store

# (layer, output (length, channels)) from the VAE-1 / VAE-2 tables, with c1 = 16.
VAE1_ENCODER = [(1360, 16), (680, 128), (170, 32)]
VAE2_ENCODER = VAE1_ENCODER + [(85, 16)]
VAE1_DECODER = [(170, 32), (340, 128), (340, 64), (680, 32), (1360, 1), (1360, 1)]
VAE2_DECODER = [(85, 32), (170, 128), (340, 64), (680, 32), (1360, 1), (1360, 1)]


def layer_shapes(model: DilatedConvVAE) -> tuple[list, list, tuple, tuple]:
    """Output (length, channels) of each block, recorded with forward hooks."""
    seen: dict[str, tuple] = {}
    hooks = []
    for name, module in list(model.encoder.named_children()) + [("head", model.head), ("dense", model.decoder_input)] + [
        ("d" + n, m) for n, m in model.decoder.named_children()
    ]:
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:]))))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(2, 1360))
    for hook in hooks:
        hook.remove()
    enc = [(s[1], s[0]) for n, s in seen.items() if n.isdigit() and len(s) == 2]
    dec = [(s[1], s[0]) for n, s in seen.items() if n.startswith("d") and n[1:].isdigit() and len(s) == 2]
    return enc, dec, seen["head"], seen["dense"]


@pytest.mark.parametrize("latent, encoder, decoder, dense", [
    (170, VAE1_ENCODER, VAE1_DECODER, 5440),
    (85, VAE2_ENCODER, VAE2_DECODER, 2720),
])
def test_every_layer_shape_matches_table(latent, encoder, decoder, dense):
    enc, dec, head, dense_out = layer_shapes(DilatedConvVAE(latent))
    assert enc == encoder
    assert head == (2 * latent,)  # "Dense 340" / "Dense 170": mean and log-variance
    assert dense_out == (dense,)
    # decoder: after the reshape+BN come the transposed-convolution stages; the last is linear
    assert dec[1:] == decoder  # dec[0] is the BatchNorm right after the reshape
    assert dec[0] == decoder[0]


def test_family_and_public_surface():
    torch.manual_seed(0)
    for latent in (16, 85, 128, 170):
        model = DilatedConvVAE(latent).eval()
        x = torch.randn(3, 1360) * 0.3 - 2
        mean, logvar = model.encode(x)
        assert mean.shape == logvar.shape == (3, latent)
        z = model.reparameterize(mean, logvar)
        assert model.decode(z).shape == (3, 1360)
        assert model.sample(5).shape == (5, 1360)


def test_standardisation_is_inside_the_model():
    model = DilatedConvVAE(85).eval()
    mean, std = torch.full((1360,), -3.0), torch.full((1360,), 0.5)
    model.set_standardisation(mean, std)
    torch.testing.assert_close(model.standardise(torch.full((1, 1360), -2.0)), torch.full((1, 1360), 2.0))
    torch.testing.assert_close(model.destandardise(model.standardise(mean[None])), mean[None])


def test_kl_forms_agree_in_expectation():
    torch.manual_seed(1)
    mean, logvar = torch.randn(1, 4).repeat(20000, 1), torch.randn(1, 4).repeat(20000, 1) * 0.5
    z = DilatedConvVAE.reparameterize(mean, logvar)
    analytic = kl_divergence(mean, logvar)[0]
    mc = kl_divergence(mean, logvar, z, "mc").mean()
    assert float(mc) == pytest.approx(float(analytic), rel=0.05)
    assert float(analytic) > 0


def test_reconstruction_term_is_the_squared_log2_error():
    """The loss weighs coefficients as the reported RMSE does: unweighted, in log2 units."""
    torch.manual_seed(2)
    model = DilatedConvVAE(85)
    model.set_standardisation(torch.randn(1360), torch.rand(1360) * 2 + 0.05)  # very unequal scales
    x, x_hat = torch.randn(4, 1360) * 0.3 - 2, torch.randn(4, 1360) * 0.3 - 2
    mean, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    loss, rec, kl = negative_elbo(model.standardise(x), model.standardise(x_hat), mean, logvar, None, 0.5, scale=model.data_std)
    torch.testing.assert_close(rec, ((x - x_hat) ** 2).mean())
    assert float(kl) == 0.0 and float(loss) == pytest.approx(float(rec))
    _, rec_std, _ = negative_elbo(model.standardise(x), model.standardise(x_hat), mean, logvar, None, 0.5)
    assert abs(float(rec_std) - float(rec)) > 0.1 * float(rec)  # standardised units weigh otherwise


def _row(epoch: int, rmse: float) -> dict:
    return {"epoch": epoch, "val_rmse_log2": rmse}


def test_early_stopping_counts_only_after_the_warmup():
    config = TrainConfig(epochs=100, warmup_epochs=3, patience=2)
    progress = Progress()
    # worse and worse within the warm-up: each is still the best (the objective is changing)
    assert all(progress.record(_row(e, 0.5 + 0.1 * e), config) for e in (1, 2, 3))
    assert progress.best_epoch == 3 and not progress.stopped_early
    assert progress.record(_row(4, 0.7), config) and progress.best_epoch == 4  # lower than epoch 3's 0.8
    assert not progress.record(_row(5, 0.7), config)  # equal is no improvement
    assert not progress.stopped_early and not progress.finished
    assert not progress.record(_row(6, 0.75), config)
    assert progress.stopped_early and progress.finished and progress.epochs_done == 6 and progress.best_epoch == 4


def test_training_lowers_validation_rmse_and_records_it(tmp_path):
    store = synthetic_store(n=128, n_maps=16)
    config = TrainConfig(ModelConfig(85), epochs=6, batch_size=16, lr=3e-3, warmup_epochs=2, patience=50)
    result = train(store, tmp_path / "run", config, progress=False)
    rmse = [h["val_rmse_log2"] for h in result.history]
    assert min(rmse) < 0.9 * rmse[0]
    # the warm-up's last epoch (2) and those after it compete; earlier ones had a smaller KL weight
    assert result.best_epoch == 2 + int(np.argmin(rmse[1:])) and result.best_val_rmse == min(rmse[1:])
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 6
    lr = [row["lr"] for row in lines]
    assert lr[0] == pytest.approx(3e-3) and lr[-1] == pytest.approx(3e-3 * defaults.TRAIN_LR_FLOOR) and lr == sorted(lr, reverse=True)
    assert all(0 <= row["clipped_fraction"] <= 1 and row["train_rmse_log2"] > 0 for row in lines)
    payload = load_checkpoint(tmp_path / "run" / "best.pt")
    for key in ("model", "optimizer", "train_config", "layout", "dustvae_version", "store_fingerprint"):
        assert key in payload
    assert payload["layout"]["vector_length"] == 1360
    # the recorded RMSE is the reported metric: log2 units, from the posterior mean, on the validation rows
    model, _ = load_model(tmp_path / "run")
    torch.testing.assert_close(model.data_mean, torch.from_numpy(store.subset("train").coeffs.mean(0)), atol=1e-5, rtol=0)
    val = torch.from_numpy(store.subset("validation").coeffs)
    with torch.no_grad():
        direct = float(torch.sqrt(((model.decode(model.encode(val)[0]) - val) ** 2).mean()))
    assert direct == pytest.approx(result.best_val_rmse, rel=1e-4)
    config_json = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config_json["train"]["lr"] == 3e-3 and config_json["model"] == "vae-85"


def test_killed_training_resumes_to_identical_weights(tmp_path):
    data = write_synthetic_store(tmp_path / "small.h5", n=96, n_maps=16)
    args = ["train", data, "--latent", 85, "--epochs", 4, "--batch-size", 16, "--warmup", 2, "--patience", 100, "--seed", 3,
            "--augment", "--quiet", "--device", "cpu"]
    run_cli(*args, "-o", tmp_path / "whole", check=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "dustvae", *map(str, args), "-o", str(killed)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    time.sleep(0.1)  # land somewhere inside an epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(metrics.read_text().splitlines()) < 4
    run_cli(*args, "-o", killed, "--resume", check=True)

    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "whole" / name)["model"]
        b = load_checkpoint(killed / name)["model"]
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name}:{key}")
    assert (tmp_path / "whole" / "metrics.jsonl").read_text().count("\n") == metrics.read_text().count("\n") == 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("model")
    data = write_synthetic_store(work / "data.h5", n=128, n_maps=16)
    run_here("train", data, "--latent", 85, "--epochs", 3, "--batch-size", 32, "--quiet", "-o", work / "run", check=True)
    return work, data, work / "run" / "best.pt"


def test_model_commands_write_valid_files(trained):
    work, data, ckpt = trained
    assert run_here("encode", ckpt, data, "-o", work / "z.h5").returncode == 0
    latents = read_latents(work / "z.h5")
    assert latents.mean.shape == (128, 85) and np.isfinite(latents.logvar).all()

    proc = run_here("reconstruct", ckpt, data, "-o", work / "r.h5")
    assert proc.returncode == 0 and "RMSE" in proc.stdout, proc.stderr
    rec, original = read_store(work / "r.h5"), read_store(data)
    assert rec.coeffs.shape == original.coeffs.shape and rec.attrs["reconstructed_by"] == "vae-85"
    np.testing.assert_allclose(np.log2(rec.s1[:, 0]), rec.coeffs[:, :40], atol=1e-5)

    assert run_here("sample", ckpt, "-n", 7, "--seed", 2, "-o", work / "s.h5").returncode == 0
    assert run_here("sample", ckpt, "-n", 7, "--seed", 2, "-o", work / "s2.h5").returncode == 0
    np.testing.assert_array_equal(read_store(work / "s.h5").coeffs, read_store(work / "s2.h5").coeffs)

    proc = run_here("interpolate", ckpt, data, "--from", 0, "--to", 5, "--steps", 4, "-o", work / "i.h5")
    assert proc.returncode == 0, proc.stderr
    assert read_store(work / "i.h5").coeffs.shape == (4, 1360) and proc.stdout.count("t=") == 4


def test_model_commands_bad_input(tmp_path, trained):
    work, data, ckpt = trained
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 50)
    assert_user_error(run_here("encode", bad, data, "-o", tmp_path / "z.h5"), "not a readable dustvae checkpoint")
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    assert_user_error(run_here("sample", truncated, "-o", tmp_path / "s.h5"), "checkpoint")
    assert_user_error(run_here("interpolate", ckpt, data, "--from", 0, "--to", 999), "out of range")
    assert_user_error(run_here("train", data, "--latent", 0, "-o", tmp_path / "r"), "latent")
    assert_user_error(run_here("train", data, "--latent", 85, "-o", work / "run"), "--resume")
    assert_user_error(run_here("train", data, "--batch-size", 1, "-o", tmp_path / "r1"), "batch-size")
    assert_user_error(run_here("train", data, "--warmup", -1, "-o", tmp_path / "r1"), "warmup")
    assert not (tmp_path / "r1").exists()

    narrow = synthetic_store(n=32)
    narrow.coeffs = narrow.coeffs[:, :680]
    narrow.s0, narrow.s1, narrow.s2 = narrow.s0[:, :1], narrow.s1[:, :1], narrow.s2[:, :1]  # field Q alone
    narrow.attrs = {**narrow.attrs, "fields": "Q", "vector_length": 680}
    write_store(tmp_path / "q.h5", narrow)
    assert_user_error(run_here("train", tmp_path / "q.h5", "-o", tmp_path / "r2"), "1360")
    assert_user_error(run_here("reconstruct", ckpt, tmp_path / "q.h5", "-o", tmp_path / "r.h5"), "1360")
