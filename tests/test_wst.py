"""compute-wst: the store matches an independent Kymatio computation; store validation."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from dustvae.errors import DustvaeError
from dustvae.io.patchfile import read_patches
from dustvae.io.store import read_store
from dustvae.wst.layout import CoefficientLayout
from dustvae.wst.transform import denormalise, normalise

from conftest import assert_user_error, run_here


@pytest.fixture(scope="module")
def computed(tmp_path_factory, healpix_file):
    work = tmp_path_factory.mktemp("wst")
    patches = work / "p.h5"
    run_here("patches", healpix_file, "-o", patches, "--patch-size", 32, check=True)
    store = work / "c.h5"
    run_here("compute-wst", patches, "-o", store, "--quiet", check=True)
    return patches, store


def test_store_matches_independent_kymatio(computed):
    from kymatio import Scattering2D

    patch_path, store_path = computed
    patches = read_patches(patch_path)
    store = read_store(store_path)
    assert store.coeffs.shape == (len(patches), 1360) and store.coeffs.dtype == np.float32
    assert np.isfinite(store.coeffs).all()
    assert store.attrs["wst_engine"] == "batched"

    # Independent path: amplitude by hand, Kymatio directly with its own path metadata
    # (out_type="list": scales and angle indices per path), means, log ratios.
    x = patches.patches.astype(np.float64)
    amp = np.sqrt(np.mean(x[:, 0] ** 2 + x[:, 1] ** 2, axis=(1, 2)))
    np.testing.assert_allclose(store.amplitude, amp, rtol=1e-6)
    op = Scattering2D(J=5, shape=(32, 32), L=8, frontend="torch", out_type="list")
    with torch.inference_mode():
        paths = op(torch.from_numpy((x / amp[:, None, None, None]).astype(np.float32)))
    means = {(p["j"], p["theta"]): p["coef"].mean(dim=(-2, -1)).double().numpy() for p in paths}  # (N, 2) each
    layout = CoefficientLayout()
    expected = np.full(store.coeffs.shape, np.nan)
    for (j, theta), mean in means.items():
        for f, field in enumerate(layout.fields):
            if len(j) == 1:
                expected[:, layout.index(field, 1, j[0], theta[0])] = np.log2(mean[:, f])
            elif len(j) == 2:
                parent = means[((j[0],), (theta[0],))][:, f]
                expected[:, layout.index(field, 2, j[0], theta[0], j[1], theta[1])] = np.log2(mean[:, f] / parent)
    assert not np.isnan(expected).any()
    # Same float32 filters on the same inputs: agreement to float32 round-off in log2.
    np.testing.assert_allclose(store.coeffs, expected, atol=2e-5)
    # Raw S1 of Q at j1 = 1 sit at 8..15, by angle index.
    np.testing.assert_allclose(store.s1[:, 0, 8:16], np.stack([means[((1,), (t,))][:, 0] for t in range(8)], axis=1), rtol=1e-5)


def test_kymatio_engine_gives_the_same_store(computed, tmp_path):
    patch_path, store_path = computed
    out = tmp_path / "k.h5"
    proc = run_here("compute-wst", patch_path, "-o", out, "--quiet", "--engine", "kymatio")
    assert proc.returncode == 0, proc.stderr
    ours, theirs = read_store(store_path), read_store(out)
    assert theirs.attrs["wst_engine"] == "kymatio"
    np.testing.assert_allclose(ours.coeffs, theirs.coeffs, atol=2e-5, rtol=0)
    np.testing.assert_allclose(ours.s2, theirs.s2, rtol=1e-5)


def test_store_attributes(computed):
    store = read_store(computed[1])
    for key in ("J", "L", "fields", "boundary", "normalisation", "dustvae_version", "kymatio_version", "source_name", "source_sha256"):
        assert key in store.attrs
    assert store.fields == ("Q", "U") and store.attrs["boundary"] == "reflect"
    np.testing.assert_allclose(store.theta, CoefficientLayout().angles)
    assert store.labels["slope"][0] == 2.5


def test_normalise_inverts():
    rng = np.random.default_rng(0)
    layout = CoefficientLayout()
    s1 = rng.uniform(0.1, 1, (3, 2, 40))
    s2 = rng.uniform(0.01, 0.1, (3, 2, 640))
    back1, back2 = denormalise(normalise(s1, s2, layout), layout)
    np.testing.assert_allclose(back1, s1, rtol=1e-6)
    np.testing.assert_allclose(back2, s2, rtol=1e-6)


def test_reader_refuses_foreign_and_mismatched(tmp_path, computed):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(DustvaeError, match="not a dustvae coefficient store"):
        read_store(other)
    with pytest.raises(DustvaeError, match="J is 5 but 4 is needed"):
        read_store(computed[1], expect={"J": 4})
    text = tmp_path / "t.h5"
    text.write_text("nope")
    with pytest.raises(DustvaeError, match="not an HDF5 file"):
        read_store(text)


def test_compute_wst_bad_input(tmp_path, healpix_file, computed):
    assert_user_error(run_here("compute-wst", healpix_file, "-o", computed[1]), "exists")
    assert_user_error(run_here("compute-wst", healpix_file, "-o", tmp_path / "x.h5", "--patch-size", 48),
                      "multiple of 2**J")
    assert_user_error(run_here("compute-wst", healpix_file, "-o", tmp_path / "x.h5", "--patch-size", 32,
                               "--device", "cuda:0" if not torch.cuda.is_available() else "tpu"), "device")
    assert_user_error(run_here("compute-wst", tmp_path / "none.fits"), "no such file")


def test_normalisation_is_a_versioned_code_and_old_spellings_still_match():
    from dustvae.errors import DustvaeError
    from dustvae.models.apply import check_compatible
    from dustvae.wst.layout import NORMALISATION, normalisation_code

    from helpers import synthetic_store

    old = "log2 S1; log2 S2/S1(j1,theta1); patch divided by amplitude"  # what stores and checkpoints recorded before
    assert normalisation_code(old) == NORMALISATION == normalisation_code(NORMALISATION)
    store = synthetic_store()
    layout = {k: store.attrs[k] for k in ("J", "L", "fields", "vector_length")}
    check_compatible(store, {"layout": {**layout, "normalisation": old}}, "model")
    with pytest.raises(DustvaeError, match="normalisation"):
        check_compatible(store, {"layout": {**layout, "normalisation": "raw/1"}}, "model")
