"""Latent priors (N(0, I) and a fitted mixture), sampling and interpolation through models/apply, and their commands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dustvae.analysis.metrics import energy_distance
from dustvae.errors import DustvaeError
from dustvae.io.store import read_store
from dustvae.models.apply import (decode_array, encode_array, fit_latent_prior, fit_store_prior, interpolate_array,
                                  load_fitted_prior, prior_path, sample_array, sample_priors)
from dustvae.models import ModelConfig, TrainConfig, train
from dustvae.models.checkpoint import load_model
from dustvae.models.pca_init import init_from_pca
from dustvae.models.prior import LatentPrior, fit_mixture, load_prior, save_prior
from dustvae.models.vae import DilatedConvVAE

from conftest import assert_user_error, run_here
from helpers import synthetic_store, write_synthetic_store


def _two_clusters(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal([3.0, 0.0, 0.0], [0.5, 1.0, 0.2], size=(n // 2, 3))
    b = rng.normal([-3.0, 1.0, 0.0], [0.5, 0.3, 0.2], size=(n - n // 2, 3))
    return np.concatenate([a, b])


def test_bic_finds_the_clusters_and_draws_reproduce_them():
    z = _two_clusters()
    prior = fit_mixture(z, components=(1, 2, 3, 4), seed=0)
    assert prior.n_components == 2
    assert set(prior.meta["bic"]) == {"1", "2", "3", "4"} and prior.meta["n_train"] == len(z)
    draws = prior.draw(4000, seed=1)
    assert draws.dtype == np.float32 and draws.shape == (4000, 3)
    np.testing.assert_array_equal(draws, prior.draw(4000, seed=1))
    assert not np.array_equal(draws, prior.draw(4000, seed=2))
    np.testing.assert_allclose(draws.mean(0), z.mean(0), atol=0.1)
    np.testing.assert_allclose(draws.std(0), z.std(0), rtol=0.05)
    assert np.mean(np.abs(draws[:, 0]) < 1.5) < 0.02  # bimodal, as the data: little mass between the clusters
    assert fit_mixture(z, components=1).n_components == 1


def test_prior_file_round_trip_and_refusals(tmp_path):
    prior = fit_mixture(_two_clusters(), components=2, meta={"model": "vae-3"})
    path = save_prior(tmp_path / "best.prior.npz", prior)
    assert [p.name for p in tmp_path.iterdir()] == ["best.prior.npz"]  # no temporary left behind
    again = load_prior(path)
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(again, name), getattr(prior, name))
    assert again.meta == prior.meta
    np.testing.assert_array_equal(again.draw(10, 3), prior.draw(10, 3))

    (tmp_path / "text.npz").write_text("not a zip")
    np.savez(tmp_path / "other.npz", weights=np.ones(1))
    np.savez(tmp_path / "pickled.npz", format=np.array("dustvae-latent-prior"), weights=np.ones(1),
             means=np.zeros((1, 2)), covariances=np.eye(2)[None], meta=np.array([{"evil": 1}], dtype=object))
    for name in ("text.npz", "other.npz", "pickled.npz", "missing.npz"):
        with pytest.raises(DustvaeError, match=name):
            load_prior(tmp_path / name)
    with pytest.raises(DustvaeError, match="positive definite"):
        LatentPrior(np.ones(1), np.zeros((1, 2)), -np.eye(2)[None])


@pytest.fixture(scope="module")
def squeezed_model():
    """A model whose aggregate posterior is far from N(0, I): PCA-started, latents shrunk tenfold.

    The decoder is scaled up by the same factor, so reconstructions are PCA's
    and only the latent scale is wrong, as after training with a small beta.
    """
    store = synthetic_store(n=96, n_maps=16, rank=4)
    train, test = store.subset("train").coeffs, store.subset("test").coeffs
    torch.manual_seed(0)
    model = DilatedConvVAE(4, linear_path=True)
    model.set_standardisation(torch.from_numpy(train.mean(0)), torch.from_numpy(train.std(0)))
    init_from_pca(model, train)
    with torch.no_grad():
        model.linear_encoder.weight[:4] *= 0.1
        model.linear_encoder.bias[:4] *= 0.1
        model.linear_decoder.weight *= 10
    return model.eval(), train, test


def test_fitted_prior_restores_the_spread_that_normal_misses(squeezed_model):
    model, train, test = squeezed_model
    fitted = fit_latent_prior(model, train, components=(1, 2, 4), seed=0)
    assert fitted.meta["model_fingerprint"] == model.fingerprint() and fitted.meta["model"] == "vae-4+pca"
    samples = sample_priors(model, 100, seed=0, fitted=fitted)
    assert set(samples) == {"normal", "fitted"}
    scale = train.std(0)
    ratio = {k: np.median(v.std(0) / train.std(0)) for k, v in samples.items()}
    distance = {k: energy_distance(v / scale, train / scale) for k, v in samples.items()}
    assert 0.8 < ratio["fitted"] < 1.2 and ratio["normal"] > 5
    assert distance["fitted"] < 0.1 * distance["normal"]
    np.testing.assert_array_equal(samples["fitted"], sample_array(model, 100, 0, fitted))  # seeded
    with pytest.raises(DustvaeError, match="latent"):
        sample_array(model, 3, 0, fit_mixture(np.random.default_rng(0).normal(size=(50, 2)), components=1))


def test_interpolation_ends_are_the_decoded_posterior_means(squeezed_model):
    model, _, test = squeezed_model
    path, weights = interpolate_array(model, test[[0, 3]], 5)
    np.testing.assert_array_equal(weights, [0, 0.25, 0.5, 0.75, 1])
    ends = decode_array(model, encode_array(model, test[[0, 3]])[0])
    np.testing.assert_allclose(path[[0, -1]], ends, atol=1e-5)
    np.testing.assert_allclose(path[2], 0.5 * (ends[0] + ends[1]), atol=1e-4)  # the decoder is linear here
    with pytest.raises(DustvaeError, match="steps"):
        interpolate_array(model, test[[0, 3]], 1)


def test_wrong_lengths_are_one_line_errors(squeezed_model):
    model = squeezed_model[0]
    with pytest.raises(DustvaeError, match=r"\(N, 1360\)"):
        encode_array(model, np.zeros((2, 680), np.float32))
    with pytest.raises(DustvaeError, match=r"\(N, 4\)"):
        decode_array(model, np.zeros((2, 5), np.float32))


def test_a_stale_prior_is_refused(tmp_path, squeezed_model):
    model, train, _ = squeezed_model
    ckpt = tmp_path / "best.pt"
    assert prior_path(ckpt) == tmp_path / "best.prior.npz"
    with pytest.raises(DustvaeError, match="fit-prior"):
        load_fitted_prior(model, ckpt)
    save_prior(prior_path(ckpt), fit_latent_prior(model, train, components=1))
    assert load_fitted_prior(model, ckpt).n_components == 1
    changed = DilatedConvVAE(**model.config())
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.linear_decoder.bias += 1e-3
    with pytest.raises(DustvaeError, match="other weights"):
        load_fitted_prior(changed, ckpt)


# -- the commands, as a user meets them ---------------------------------------------------------

def test_fit_prior_and_sample_commands(tmp_path):
    store = write_synthetic_store(tmp_path / "d.h5", n=64, n_maps=8)
    run = tmp_path / "run"
    train(read_store(store), run, TrainConfig(ModelConfig(8), epochs=1, batch_size=32), device="cpu", progress=False)
    assert_user_error(run_here("sample", run, "-n", 5, "--prior", "fitted", "-o", tmp_path / "s.h5"), "fit-prior")
    assert not (tmp_path / "s.h5").exists()

    done = run_here("fit-prior", run, store, "--components", 2)
    assert done.returncode == 0 and "2-component" in done.stdout, done.stderr
    assert load_prior(run / "best.prior.npz").meta["n_train"] == int((read_store(store).split == 0).sum())
    assert run_here("sample", run, "-n", 6, "--prior", "fitted", "--seed", 4, "-o", tmp_path / "a.h5").returncode == 0
    model, _ = load_model(run)
    a = read_store(tmp_path / "a.h5")
    assert str(a.attrs["prior"]).startswith("fitted")
    np.testing.assert_allclose(a.coeffs, sample_array(model, 6, 4, load_fitted_prior(model, run)), atol=1e-5)


def test_fit_prior_refuses_another_store(tmp_path, squeezed_model):
    model = squeezed_model[0]
    store = synthetic_store(n=64, n_maps=8)
    payload = {"layout": {"vector_length": 1360}, "store_fingerprint": synthetic_store(n=64, n_maps=8, seed=5).fingerprint()}
    with pytest.raises(DustvaeError, match="not the store"):
        fit_store_prior(model, payload, store)
    payload["store_fingerprint"] = store.fingerprint()
    assert fit_store_prior(model, payload, store, components=1).meta["n_train"] == int((store.split == 0).sum())
