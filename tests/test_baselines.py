"""RWST Models 1 and 2 and PCA: exact recovery, noise, the least-squares optimum, agreement with pywst."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dustvae.baselines import PCACompressor, RWSTCompressor, SymmetricPCACompressor
from dustvae.baselines.rwst import n_params
from dustvae.wst.layout import CoefficientLayout

from helpers import synthetic_store

LAYOUT = CoefficientLayout()


def random_parameters(model: int, n: int, rng) -> np.ndarray:
    """Parameters drawn at random, in the encoder's convention (b >= 0, ref2 in [0, pi/2))."""
    k1, k2 = n_params(model)
    per_field = []
    for _ in LAYOUT.fields:
        p1 = rng.normal(size=(n, 5, k1)) * 0.3
        p1[..., 0] -= 3
        p1[..., 1] = np.abs(p1[..., 1]) + 0.05
        p1[..., 2] = rng.uniform(-np.pi / 2, np.pi / 2, (n, 5))
        p2 = rng.normal(size=(n, 10, k2)) * 0.3
        p2[..., 4] = rng.uniform(0, np.pi / 2, (n, 10))
        per_field.append(np.concatenate([p1.reshape(n, -1), p2.reshape(n, -1)], axis=1))
    return np.concatenate(per_field, axis=1)


@pytest.mark.parametrize("model, size", [(1, 130), (2, 170)])
def test_noise_free_parameters_recovered_exactly(model, size):
    rng = np.random.default_rng(model)
    rwst = RWSTCompressor(model, LAYOUT)
    assert rwst.latent_dim == size
    truth = random_parameters(model, 20, rng)
    X = rwst.decode(truth)
    found = rwst.encode(X)
    # The angle is found to ~sqrt(machine epsilon) (a minimum is flat to second
    # order), so coefficients agree to ~1e-8; 1e-6 leaves margin.
    np.testing.assert_allclose(rwst.decode(found), X, atol=1e-6)
    np.testing.assert_allclose(found, truth, atol=1e-6)


def test_noisy_parameters_recovered_within_noise():
    rng = np.random.default_rng(3)
    rwst = RWSTCompressor(1, LAYOUT)
    truth = random_parameters(1, 50, rng)
    sigma = 0.01
    X = rwst.decode(truth) + sigma * rng.normal(size=(50, 1360))
    found = rwst.encode(X)
    residual = X - rwst.decode(found)
    # least squares: residual variance is sigma**2 * (1 - params / points) per block
    dof = 1 - rwst.latent_dim / 1360
    assert np.sqrt((residual**2).mean() / dof) == pytest.approx(sigma, rel=0.05)
    iso = np.r_[0:15:3]  # the isotropic S1 terms a(j1) of field Q, 8 points each
    assert np.abs(found[:, iso] - truth[:, iso]).max() < 6 * sigma / np.sqrt(8)


def test_fit_is_the_least_squares_optimum():
    # Brute force over the reference angle: no angle on a fine grid does better.
    from dustvae.baselines.rwst import fit_layer2

    rng = np.random.default_rng(5)
    idx = LAYOUT.select(field="Q", layer=2, j1=0, j2=2)
    t1, t2 = LAYOUT.theta1[idx], LAYOUT.theta2[idx]
    y = rng.normal(size=(30, 64))
    coef, ref = fit_layer2(y, t1, t2, 1)
    model = lambda c, r: (c[:, :1] + c[:, 1:2] * np.cos(2 * (t1 - t2)) + c[:, 2:3] * np.cos(2 * (t1 - r[:, None]))  # noqa: E731
                          + c[:, 3:4] * np.cos(2 * (t2 - r[:, None])))
    ours = ((y - model(coef, ref)) ** 2).sum(1)
    for r in np.linspace(0, np.pi, 721):
        A = np.stack([np.ones_like(t1), np.cos(2 * (t1 - t2)), np.cos(2 * (t1 - r)), np.cos(2 * (t2 - r))], -1)
        brute = ((y - y @ np.linalg.pinv(A).T @ A.T) ** 2).sum(1)
        assert (ours <= brute + 1e-9).all()


@pytest.mark.parametrize("model", [1, 2])
def test_agrees_with_pywst(model):
    pytest.importorskip("pywst")
    from dustvae.baselines.pywst_compat import pywst_rwst

    X = synthetic_store(n=6, seed=8).coeffs.astype(np.float64)
    X += np.random.default_rng(0).normal(size=X.shape) * 0.05  # not exactly representable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = pywst_rwst(X, LAYOUT, model)
    ours = RWSTCompressor(model, LAYOUT).reconstruct(X)
    ours_rss, their_rss = ((X - ours) ** 2).sum(1), ((X - theirs) ** 2).sum(1)
    assert (ours_rss <= their_rss * (1 + 1e-9) + 1e-12).all()
    converged = their_rss <= ours_rss * (1 + 1e-6)  # where pywst reached the same optimum...
    assert converged.any()
    np.testing.assert_allclose(ours[converged], theirs[converged], atol=1e-4)  # ...the models agree


def test_pca_round_trip_and_errors():
    store = synthetic_store(n=80, rank=6)
    pca = PCACompressor(6).fit(store.coeffs)
    X = store.coeffs[:10]
    assert pca.encode(X).shape == (10, 6)
    assert np.sqrt(((pca.reconstruct(X) - X) ** 2).mean()) < 0.02  # rank-6 data plus 0.01 noise
    from dustvae.errors import DustvaeError

    with pytest.raises(DustvaeError, match="not fitted"):
        PCACompressor(4).encode(X)
    with pytest.raises(DustvaeError, match="at least 170"):
        PCACompressor(170).fit(store.coeffs)


def test_pca_truncation_equals_a_fit_at_that_size():
    store = synthetic_store(n=80, rank=6)
    X = store.coeffs[:10].astype(np.float64)
    big = PCACompressor(20).fit(store.coeffs)
    small = big.truncated(6)
    assert small.name == "pca-6" and small.encode(X).shape == (10, 6)
    np.testing.assert_allclose(small.reconstruct(X), PCACompressor(6).fit(store.coeffs).reconstruct(X), atol=1e-10)
    assert not np.allclose(big.reconstruct(X), small.reconstruct(X), atol=1e-6)  # the sizes do differ


def test_pca_refuses_wrong_lengths_in_one_line():
    from dustvae.errors import DustvaeError

    pca = PCACompressor(4).fit(synthetic_store(n=40).coeffs)
    with pytest.raises(DustvaeError, match="vectors of length 1360 expected"):
        pca.encode(np.zeros((3, 1000)))
    with pytest.raises(DustvaeError, match="codes of length 4 expected"):
        pca.decode(np.zeros((3, 5)))
    with pytest.raises(DustvaeError, match="can give 1 to 4 components"):
        pca.truncated(5)


def test_symmetric_pca_equals_plain_pca_on_an_explicitly_augmented_copy():
    from sklearn.decomposition import PCA

    from dustvae.errors import DustvaeError
    from dustvae.wst.symmetry import exact_symmetry_permutations, symmetry_permutation

    layout = CoefficientLayout()
    store = synthetic_store(n=60, n_maps=6)
    X = store.coeffs.astype(np.float64)
    # the augmented copy built here, one symmetry at a time, by name
    augmented = np.concatenate([X[:, symmetry_permutation(layout, name)]
                                for name in ("identity", "rot90", "mirror", "rot90+mirror")])
    assert augmented.shape == (4 * len(X), X.shape[1])
    reference = PCA(20, svd_solver="full").fit(augmented)
    sym = SymmetricPCACompressor(20, exact_symmetry_permutations(layout)).fit(X)
    assert sym.name == "pca-sym-20"
    np.testing.assert_allclose(sym.mean_, reference.mean_, atol=1e-12)
    test = synthetic_store(n=24, n_maps=3, seed=5).coeffs.astype(np.float64)
    np.testing.assert_allclose(sym.reconstruct(test), reference.inverse_transform(reference.transform(test)), atol=1e-8)
    # the augmented mean is symmetric, and the fit differs from plain PCA on the same rows
    for perm in exact_symmetry_permutations(layout):
        np.testing.assert_allclose(sym.mean_[perm], sym.mean_, atol=1e-12)
    plain = PCACompressor(20).fit(X)
    assert not np.allclose(plain.reconstruct(test), sym.reconstruct(test), atol=1e-6)
    small = sym.truncated(5)
    assert isinstance(small, SymmetricPCACompressor) and small.name == "pca-sym-5"
    np.testing.assert_allclose(small.components_, sym.components_[:5])
    with pytest.raises(DustvaeError, match="length 1360 expected"):
        SymmetricPCACompressor(5, exact_symmetry_permutations(layout)).fit(X[:, :100])


def test_reduced_rank_regression_is_the_projected_least_squares_fit():
    from dustvae.baselines import ReducedRankRegression
    from dustvae.errors import DustvaeError

    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 30))
    Y = X[:, :5] @ rng.normal(size=(5, 30)) + 0.1 * rng.normal(size=(400, 30))
    rrr = ReducedRankRegression(5, ridge=0.0).fit(X, Y)
    assert rrr.name == "rrr-5"
    # by hand: least squares of the centred targets, fitted values projected on their leading 5 right singular vectors
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    B = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    V = np.linalg.svd(Xc @ B, full_matrices=False)[2][:5].T
    np.testing.assert_allclose(rrr.reconstruct(X), Xc @ B @ V @ V.T + Y.mean(0), atol=1e-8)
    assert rrr.encode(X).shape == (400, 5)
    with pytest.raises(DustvaeError, match="needs targets"):
        ReducedRankRegression(5).fit(X)
    with pytest.raises(DustvaeError, match="finite"):
        ReducedRankRegression(5).fit(X, np.where(np.arange(400)[:, None] == 0, np.nan, Y))


def test_symmetric_reduced_rank_regression_is_the_fit_on_every_permuted_pair():
    from dustvae.baselines import ReducedRankRegression, SymmetricReducedRankRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 12))
    Y = X[:, :3] @ rng.normal(size=(3, 12)) + 0.1 * rng.normal(size=(200, 12))
    perms = np.stack([np.arange(12), np.roll(np.arange(12), 4), np.arange(12)[::-1]])
    sym = SymmetricReducedRankRegression(3, perms).fit(X, Y)
    by_hand = ReducedRankRegression(3).fit(np.concatenate([X[:, p] for p in perms]), np.concatenate([Y[:, p] for p in perms]))
    assert sym.name == "rrr-sym-3"
    np.testing.assert_allclose(sym.reconstruct(X), by_hand.reconstruct(X), atol=1e-10)
    assert not np.allclose(sym.reconstruct(X), ReducedRankRegression(3).fit(X, Y).reconstruct(X), atol=1e-3)
