"""dustvae evaluate and figures: results on the test split only, table, unsplit stores, figure files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dustvae.analysis.evaluate import evaluate
from dustvae.analysis.metrics import energy_distance, reconstruction_metrics
from dustvae.io.store import read_store, write_store
from dustvae.wst.layout import CoefficientLayout

from conftest import assert_user_error, run_cli
from helpers import synthetic_store, write_synthetic_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("eval")
    data = write_synthetic_store(work / "data.h5", n=160, n_maps=16)
    run_cli("train", data, "--latent", 85, "--epochs", 2, "--batch-size", 32, "--quiet", "-o", work / "vae-85", check=True)
    return work, data


def test_metrics_on_known_errors():
    layout = CoefficientLayout()
    truth = np.zeros((3, 1360))
    recon = np.zeros((3, 1360))
    recon[:, layout.select(layer=1)] = 1.0  # S1 off by a factor 2 everywhere, S2/S1 exact
    m = reconstruction_metrics(truth, recon, layout)
    assert m["rel_err_s1"] == pytest.approx(1.0) and m["rel_err_s2_over_s1"] == 0
    assert m["rmse_log2"] == pytest.approx(np.sqrt(80 / 1360))
    assert m["per_pair"]["0-1"]["rmse_log2"] == 0 and m["per_j1"]["3"]["rmse_log2"] == 1.0
    rng = np.random.default_rng(0)
    same = energy_distance(rng.normal(size=(300, 5)), rng.normal(size=(300, 5)))
    shifted = energy_distance(rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) + 1)
    assert abs(same) < 0.1 < shifted


def test_evaluate_writes_results_and_table(trained, tmp_path):
    work, data = trained
    out = tmp_path / "results.json"
    proc = run_cli("evaluate", data, "--model", work / "vae-85", "-o", out, check=True)
    assert "| compressor |" in proc.stdout and "vae-85" in proc.stdout and "rwst1" in proc.stdout
    results = json.loads(out.read_text())
    names = set(results["compressors"])
    assert names == {"vae-85", "rwst1", "rwst2", "pca-85"}
    for name, row in results["compressors"].items():
        assert isinstance(row["latent"], int) and row["rmse_log2"] > 0
    assert results["compressors"]["rwst1"]["latent"] == 130 and results["compressors"]["rwst2"]["latent"] == 170
    assert "energy_distance" in results["compressors"]["vae-85"]["generative"]
    store = read_store(data)
    assert results["test"]["n_patches"] == int((store.split == 2).sum())
    assert results["inputs"]["store_sha256"] and results["versions"]["dustvae"]


def test_only_test_rows_are_reconstructed(trained):
    work, data = trained
    store = read_store(data)
    results = evaluate(store, [], ["rwst1"])
    test_rows = np.flatnonzero(store.split == 2)
    np.testing.assert_allclose(results["examples"]["truth"][0], store.coeffs[test_rows[0]], rtol=1e-6)


def test_unsplit_store_is_all_test_and_skips_pca(tmp_path):
    path = tmp_path / "plain.h5"
    write_store(path, synthetic_store(n=20, split=False))
    proc = run_cli("evaluate", path, "-o", tmp_path / "r.json", check=True)
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results["compressors"]) == {"rwst1", "rwst2"} and results["test"]["n_patches"] == 20
    assert "pca skipped" in proc.stdout


def test_evaluate_bad_input(trained, tmp_path):
    work, data = trained
    assert_user_error(run_cli("evaluate", data, "--baselines", "rwst3", "-o", tmp_path / "r.json"), "unknown baseline")
    assert_user_error(run_cli("evaluate", tmp_path / "missing.h5"), "no such file")


def test_figures_are_written(trained, tmp_path):
    work, data = trained
    results = work / "results.json"
    run_cli("evaluate", data, "--model", work / "vae-85" / "best.pt", "-o", results, "--overwrite", check=True)
    out = tmp_path / "figs"
    proc = run_cli("figures", results, "-o", out, check=True)
    for name in ("training_curves", "coefficients", "error_per_pair", "error_per_layer", "error_vs_latent",
                 "latent_space", "interpolation", "prior_samples"):
        for ext in ("pdf", "png"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000, name
    assert "wrote 8 figures" in proc.stdout
    assert_user_error(run_cli("figures", tmp_path / "none.json"), "no such results file")
