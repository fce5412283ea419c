"""dustvae evaluate and figures: results on the test split only, numbers equal to a direct computation,
the within-map scatter and the leave-one-out map mean, labels read from the codes, tables, unsplit stores, figure files."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA

from dustvae.analysis import registry
from dustvae.analysis.evaluate import evaluate
from dustvae.analysis.metrics import energy_distance, leave_one_out_means, noise_floor, reconstruction_metrics
from dustvae.analysis.physics import label_r2, label_targets
from dustvae.analysis.results import RESULTS_VERSION
from dustvae.baselines import RWSTCompressor
from dustvae.io.store import read_store
from dustvae.io.store_writer import write_store
from dustvae.models.apply import decode_array, encode_array
from dustvae.models.checkpoint import load_model
from dustvae.wst.layout import CoefficientLayout

from conftest import assert_user_error, run_here
from helpers import synthetic_store, write_synthetic_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("eval")
    data = write_synthetic_store(work / "data.h5", n=160, n_maps=16)
    run_here("train", data, "--latent", 85, "--epochs", 2, "--batch-size", 32, "--quiet", "-o", work / "vae-85", check=True)
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
    proc = run_here("evaluate", data, "--model", work / "vae-85", "-o", out, check=True)
    assert "| compressor |" in proc.stdout and "| VAE-2 |" in proc.stdout and "| RWST Model 1 |" in proc.stdout
    results = json.loads(out.read_text())
    assert results["format"] == "dustvae-results" and results["format_version"] == RESULTS_VERSION
    names = set(results["compressors"])
    assert names == {"vae-85", "rwst1", "rwst2", "pca-85", "pca-sym-85"}
    for name, row in results["compressors"].items():
        assert isinstance(row["latent"], int) and row["rmse_log2"] > 0
        assert row["rmse_std"] > 0 and row["rmse_to_map_mean_log2"] > 0 and "label_r2" in row
    assert results["noise_floor"]["rmse_log2"] > 0 and "| Within-map scatter |" in proc.stdout
    assert "RMSE to LOO map mean" in proc.stdout
    assert results["identity"]["rmse_to_map_mean_log2"] > 0 and "| Identity (the patch itself) |" in proc.stdout
    # the store has a validation split: one linear baseline per size, chosen there, and the VAE paired with it alone
    chosen = results["linear_baseline"]["chosen"]["85"]
    scores = results["linear_baseline"]["validation_rmse_log2"]
    assert chosen == min(("pca-85", "pca-sym-85"), key=scores.__getitem__)
    assert f"Linear baselines paired with: {registry.label(chosen)} at 85" in proc.stdout
    assert results["compressors"]["rwst1"]["latent"] == 130 and results["compressors"]["rwst2"]["latent"] == 170
    assert "energy_distance" in results["compressors"]["vae-85"]["generative"]
    store = read_store(data)
    assert results["test"]["n_patches"] == int((store.split == 2).sum())
    assert results["inputs"]["store_sha256"] and results["versions"]["dustvae"]
    # every stage timed: the within-map scatter, the label targets, the PCA fits, and each compressor's scoring
    stages = results["timings"]["stages_seconds"]
    assert {"within-map scatter", "label targets", "PCA fits", "vae-85", "vae-85 generative", "pca-85 label regression"} <= set(stages)
    assert results["timings"]["total_seconds"] == pytest.approx(sum(stages.values()))


def test_nothing_is_fitted_on_the_test_rows():
    """Test vectors replaced by others: every fitted compressor's score is that of its fit on the training rows alone."""
    from dustvae.baselines.pca import PCACompressor, SymmetricPCACompressor
    from dustvae.baselines.rrr import ReducedRankRegression
    from dustvae.numerics import leave_one_out_means, rmse
    from dustvae.wst.symmetry import exact_symmetry_permutations

    store = synthetic_store(n=240, n_maps=24, rank=12)
    test = store.split == 2
    other = synthetic_store(n=240, n_maps=24, rank=12, seed=9).coeffs
    moved = dataclasses.replace(store, coeffs=np.where(test[:, None], other, store.coeffs).astype(np.float32))
    results = evaluate(moved, [], ["pca", "pca-sym", "rrr"], labels=False, n_resamples=10)
    train, scored = store.subset("train").coeffs, moved.subset("test").coeffs
    np.testing.assert_allclose(results["examples"]["truth"][0], scored[0], rtol=1e-6)
    target = leave_one_out_means(train, store.subset("train").map_index)
    expected = {"pca-85": PCACompressor(85).fit(train),
                "pca-sym-85": SymmetricPCACompressor(85, exact_symmetry_permutations(CoefficientLayout())).fit(train),
                "rrr-85": ReducedRankRegression(85).fit(train, target)}
    for name, fitted in expected.items():
        assert results["compressors"][name]["rmse_log2"] == pytest.approx(rmse(fitted.reconstruct(scored), scored), rel=1e-6)


def test_label_scores_read_the_test_labels_only_to_score():
    """With the test labels shuffled, each score is that of the predictions made without them."""
    from sklearn.metrics import r2_score, roc_auc_score

    from dustvae.analysis.physics import label_predictions

    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, 6))
    labels = {"a": codes[:, 0] + 0.1 * rng.normal(size=300), "b": np.where(codes[:, 1] > 0, 1.0, 0.0)}
    train = {k: v[:200] for k, v in labels.items()}
    predicted = label_predictions(codes[:200], train, codes[200:])  # never given a test label
    for seed in (1, 2):
        shuffled = {k: np.random.default_rng(seed).permutation(v[200:]) for k, v in labels.items()}
        scores = label_r2(codes[:200], train, codes[200:], shuffled)
        for regressor in predicted:
            assert scores[regressor]["a"] == pytest.approx(r2_score(shuffled["a"], predicted[regressor]["a"]))
            assert scores[regressor]["b"] == pytest.approx(roc_auc_score(shuffled["b"], predicted[regressor]["b"]))
    assert label_r2(codes[:200], train, codes[200:], {k: v[200:] for k, v in labels.items()})["ridge"]["a"] > 0.9


def test_unsplit_store_is_all_test_and_skips_pca(tmp_path):
    path = tmp_path / "plain.h5"
    write_store(path, synthetic_store(n=20, split=False))
    proc = run_here("evaluate", path, "-o", tmp_path / "r.json", check=True)
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results["compressors"]) == {"rwst1", "rwst2"} and results["test"]["n_patches"] == 20
    assert "pca skipped" in proc.stdout


def test_a_model_evaluated_on_its_own_training_rows_is_flagged(trained, tmp_path):
    # A model trained on an unsplit store: every row it saw is then a "test" row of that store.
    from dustvae.models.checkpoint import load_checkpoint, save_checkpoint

    work, data = trained
    plain = dataclasses.replace(read_store(data), split=None)
    payload = load_checkpoint(work / "vae-85" / "best.pt")
    save_checkpoint(tmp_path / "own.pt", {**payload, "store_fingerprint": plain.fingerprint()})
    results = evaluate(plain, [tmp_path / "own.pt"], [], labels=False)
    assert results["compressors"]["vae-85"]["held_out"] is False
    assert any(note.startswith("NOT HELD OUT: vae-85") for note in results["notes"])
    split_results = evaluate(read_store(data), [work / "vae-85" / "best.pt"], [], labels=False)
    assert split_results["compressors"]["vae-85"]["held_out"] is True
    assert not any("NOT HELD OUT" in note for note in split_results["notes"])


def test_evaluate_bad_input(trained, tmp_path):
    work, data = trained
    assert_user_error(run_here("evaluate", data, "--baselines", "rwst3", "-o", tmp_path / "r.json"), "unknown baseline")
    assert_user_error(run_here("evaluate", tmp_path / "missing.h5"), "no such file")


def test_figures_are_written(trained, tmp_path, quick_label_regression, monkeypatch):
    work, data = trained
    results = work / "results.json"
    run_here("evaluate", data, "--model", work / "vae-85" / "best.pt", "-o", results, "--overwrite", check=True)
    # The model figures read what evaluate kept: the prior-sample bands are the percentiles of the samples it scored.
    kept = json.loads(results.read_text())["figure_data"]
    model, _ = load_model(work / "vae-85" / "best.pt", "cpu")
    from dustvae.models.apply import sample_array

    test = read_store(data).subset("test").coeffs
    np.testing.assert_allclose(kept["prior_samples"]["vae-85"]["p50"],
                               np.percentile(sample_array(model, len(test), 0), 50, axis=0), atol=1e-4)
    assert kept["interpolation"]["model"] == "vae-85" and len(kept["interpolation"]["path"]) == 9
    import dustvae.models.checkpoint

    monkeypatch.setattr(dustvae.models.checkpoint, "load_model", lambda *a, **k: pytest.fail("the figures loaded a model"))
    out = tmp_path / "figs"
    proc = run_here("figures", results, "-o", out, check=True)
    for name in ("training_curves", "coefficients", "error_per_pair", "error_per_layer", "error_vs_latent",
                 "label_r2", "latent_space", "interpolation", "prior_samples"):
        for ext in ("pdf", "png"):
            assert (out / f"{name}.{ext}").stat().st_size > 1000, name
    assert "wrote 9 figures" in proc.stdout
    # A file written before the figure data (and no training run beside it): the other figures, and how to get the three
    older = json.loads(results.read_text())
    del older["figure_data"]
    older["format_version"] = 5
    (tmp_path / "old.json").write_text(json.dumps(older))
    proc = run_here("figures", tmp_path / "old.json", "-o", tmp_path / "old", check=True)
    assert "wrote 5 figures" in proc.stdout and "evaluate again to draw the latent-space" in proc.stdout
    assert_user_error(run_here("figures", tmp_path / "none.json"), "no such results file")


def rmse(a, b, scale=1.0) -> float:
    return float(np.sqrt(np.mean(((np.asarray(a, np.float64) - b) / scale) ** 2)))


def test_reported_numbers_equal_a_direct_computation(trained):
    work, data = trained
    store = read_store(data)
    results = evaluate(store, [work / "vae-85" / "best.pt"], ["rwst1", "pca"], labels=False)
    comp = results["compressors"]
    train = store.coeffs[store.split == 0].astype(np.float64)
    test = store.coeffs[store.split == 2].astype(np.float64)
    mean, scale = train.mean(0), train.std(0)

    # PCA: fitted on the training rows only, in each space for its own metric
    recon = PCA(85, svd_solver="full").fit(train).inverse_transform(PCA(85, svd_solver="full").fit(train).transform(test))
    assert comp["pca-85"]["rmse_log2"] == pytest.approx(rmse(recon, test), rel=1e-6)
    everything = store.coeffs.astype(np.float64)
    leaky = PCA(85, svd_solver="full").fit(everything)
    assert abs(rmse(leaky.inverse_transform(leaky.transform(test)), test) / comp["pca-85"]["rmse_log2"] - 1) > 1e-2
    std_pca = PCA(85, svd_solver="full").fit((train - mean) / scale)
    recon_std = std_pca.inverse_transform(std_pca.transform((test - mean) / scale))
    assert comp["pca-85"]["rmse_std"] == pytest.approx(rmse(recon_std, (test - mean) / scale), rel=1e-6)
    assert comp["pca-85"]["fits"]["log2"]["rmse_std"] == pytest.approx(rmse(recon, test, scale), rel=1e-6)

    # RWST and the VAE (posterior mean), in both spaces and against each patch's leave-one-out map mean
    model, _ = load_model(work / "vae-85" / "best.pt")
    direct = {"rwst1": RWSTCompressor(1, CoefficientLayout()).reconstruct(test),
              "vae-85": decode_array(model, encode_array(model, test)[0])}
    test_maps = store.map_index[store.split == 2]
    rows = np.arange(len(test))
    map_mean = np.stack([test[(test_maps == m) & (rows != i)].mean(0) for i, m in enumerate(test_maps)])
    for name, recon in direct.items():
        assert comp[name]["rmse_log2"] == pytest.approx(rmse(recon, test), rel=1e-5), name
        assert comp[name]["rmse_std"] == pytest.approx(rmse(recon, test, scale), rel=1e-5), name
        assert comp[name]["rmse_to_map_mean_log2"] == pytest.approx(rmse(recon, map_mean), rel=1e-5), name

    # the within-map scatter: unbiased within-map variance, RMS over test maps
    var = [test[test_maps == m].var(0, ddof=1).mean() for m in np.unique(test_maps)]
    assert results["noise_floor"]["rmse_log2"] == pytest.approx(np.sqrt(np.mean(var)), rel=1e-6)


def test_noise_floor_recovers_the_within_map_spread():
    # Maps with known within-map spread 0.1 and 0.3 (and one lone patch, which cannot count):
    # the floor is the RMS over maps, sqrt((0.1^2 + 0.3^2) / 2), estimated from 30 x 1360 draws per map.
    layout = CoefficientLayout()
    rng = np.random.default_rng(1)
    blocks, maps = [], []
    for m, sigma in enumerate((0.1, 0.3)):
        blocks.append(rng.normal(size=len(layout)) + sigma * rng.normal(size=(30, len(layout))))
        maps += [m] * 30
    blocks.append(rng.normal(size=(1, len(layout))) * 100)
    maps.append(2)
    floor = noise_floor(np.concatenate(blocks), np.array(maps), layout, scale=np.full(len(layout), 0.5))
    assert floor["rmse_log2"] == pytest.approx(np.sqrt((0.1**2 + 0.3**2) / 2), rel=0.01)
    assert floor["rmse_std"] == pytest.approx(2 * floor["rmse_log2"])
    assert floor["n_maps"] == 2 and floor["patches_per_map"] == {"min": 30, "max": 30}
    assert noise_floor(np.zeros((3, len(layout))), np.arange(3), layout) is None


def test_label_targets_and_held_out_r2():
    labels = {"slope": np.linspace(2, 3, 6), "p0": np.full(6, 0.26), "seed": np.arange(6.0),
              "mean_field_angle": np.array([0.0, 45.0, 90.0, 135.0, 180.0, 30.0]),
              "axis_ratio": np.array([0.2, np.nan, 0.3, np.nan, 0.25, 0.2]), "absent": np.full(6, np.nan)}
    targets, skipped = label_targets(labels)
    assert set(targets) == {"slope", "cos2_mean_field_angle", "sin2_mean_field_angle", "axis_ratio"}
    assert set(skipped) == {"p0", "seed", "absent"}
    np.testing.assert_allclose(targets["cos2_mean_field_angle"][:5], [1, 0, -1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(targets["sin2_mean_field_angle"][:5], [0, 1, 0, -1, 0], atol=1e-12)

    # A label linear in one code dimension is found by both regressors; pure noise by neither.
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(600, 12))
    y = {"linear": 2 * codes[:, 3] + 0.05 * rng.normal(size=600), "noise": rng.normal(size=600),
         "step": np.where(codes[:, 5] > 0, 1.0, -1.0),  # two values, not 0 and 1: a regression target
         "constant_in_test": np.r_[rng.normal(size=400), np.ones(200)],
         "partial": np.where(np.arange(600) % 3 == 0, -codes[:, 1], np.nan)}  # defined on a third of the rows
    train, test = {k: v[:400] for k, v in y.items()}, {k: v[400:] for k, v in y.items()}
    r2 = label_r2(codes[:400], train, codes[400:], test)
    assert r2["ridge"]["linear"] > 0.99 and r2["boosting"]["linear"] > 0.9
    assert r2["ridge"]["partial"] > 0.99
    assert r2["ridge"]["noise"] < 0.05 and r2["boosting"]["noise"] < 0.05
    assert r2["boosting"]["step"] > 0.9 > r2["ridge"]["step"]  # non-linear: only boosting reads it fully
    assert r2["ridge"]["constant_in_test"] is None and r2["boosting"]["constant_in_test"] is None


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A store whose labels are: a function of the vectors, a constant, a seed and an orientation; 4 test maps."""
    store = synthetic_store(n=240, n_maps=24)
    codes = np.zeros(24, np.int8)
    codes[16:20], codes[20:] = 1, 2
    split = codes[store.map_index]
    signal = store.coeffs[:, :40].mean(1).astype(np.float64)
    labels = {"signal": signal, "p0": np.full(len(store), 0.26), "seed": store.map_index.astype(float),
              "mean_field_angle": np.rad2deg(np.arctan2(signal - signal.mean(), 0.05)) % 180}
    path = tmp_path_factory.mktemp("labelled") / "labelled.h5"
    write_store(path, dataclasses.replace(store, split=split, labels=labels))
    return path


def test_labels_are_read_from_every_code(labelled, tmp_path):
    results = evaluate(read_store(labelled), [], ["rwst1", "pca"], store_path=labelled)
    regression = results["label_regression"]
    assert regression["targets"] == ["cos2_mean_field_angle", "sin2_mean_field_angle", "signal"]
    assert set(regression["skipped"]) == {"p0", "seed"}
    assert regression["full_vector"]["ridge"]["signal"] > 0.99  # a linear function of the vector
    for name in ("rwst1", "pca-85"):
        r2 = results["compressors"][name]["label_r2"]
        assert set(r2) == {"ridge", "boosting"} and set(r2["ridge"]) == set(regression["targets"])
    assert results["compressors"]["pca-85"]["label_r2"]["ridge"]["signal"] > 0.9
    assert results["noise_floor"]["n_maps"] == 4
    out = tmp_path / "results.json"
    out.write_text(json.dumps(results))
    figs = tmp_path / "figs"
    from dustvae.analysis.figure_set import make_figures

    made = make_figures(out, figs, say=lambda _: None)
    assert figs / "label_r2.png" in made and (figs / "label_r2.png").stat().st_size > 1000


def test_paper_tables_define_every_macro_the_paper_uses(trained, tmp_path):
    work, data = trained
    results = tmp_path / "results.json"
    run_here("evaluate", data, "--model", work / "vae-85", "-o", results, check=True)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "scripts" / "make_paper_tables.py"), str(results),
                           "--paper-dir", str(tmp_path / "paper"), "--docs-dir", str(tmp_path / "docs")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    macros = (tmp_path / "paper" / "macros.tex").read_text()
    defined = set(re.findall(r"\\newcommand\{\\(\w+)\}", macros))
    used = set(re.findall(r"\\([A-Z][A-Za-z]+)", (root / "paper" / "dustvae.tex").read_text())) - {"IfFileExists"}
    assert used <= defined, used - defined
    assert "\\newcommand{\\RmsePCAoneseventy}{--}" in macros  # not compared in this run, still defined
    tables = (tmp_path / "paper" / "tables.tex").read_text()
    assert "Within-map scatter" in tables and "\\label{tab:physics}" in tables and "VAE-2 (85)" in tables
    rst = (tmp_path / "docs" / "results.rst").read_text()
    assert "within-map scatter" in rst and "RWST Model 1" in rst


def test_registry_orders_and_labels_names():
    names = ["pca-85", "rwst2", "vae-85+pca", "vae-16", "vae-85", "vae-170", "pca-170", "rwst1", "mystery"]
    assert registry.ordered(names) == ["vae-170", "vae-85", "vae-85+pca", "vae-16", "rwst1", "rwst2",
                                       "pca-170", "pca-85", "mystery"]
    assert registry.label("vae-170") == "VAE-1" and registry.label("rwst1", 130) == "RWST Model 1 (130)"
    assert registry.label("vae-85+pca", 85) == "VAE-2 + PCA start (85)" and registry.label("pca-85") == "PCA-85"
    assert registry.style("vae-85+pca")["color"] == registry.style("vae-85")["color"]
    assert registry.style("vae-85+pca")["ls"] != registry.style("vae-85")["ls"]
    assert re.fullmatch("[A-Za-z]+", registry.macro_stem("vae-85+pca+linout"))


def test_stages_time_each_stage_and_show_one_bar_on_a_terminal():
    import io

    from dustvae.progress import Stages

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown, hidden = Terminal(), io.StringIO()
    for stream in (shown, hidden):
        with Stages(2, "evaluate", file=stream) as stages:
            for name in ("PCA fits", "vae-85", "PCA fits"):
                with stages.stage(name):
                    pass
        assert list(stages.seconds) == ["PCA fits", "vae-85"] and all(t >= 0 for t in stages.seconds.values())
    assert "evaluate" in shown.getvalue() and "vae-85" in shown.getvalue()
    assert hidden.getvalue() == ""  # captured output and logs get no bar


def test_leave_one_out_map_mean_never_includes_the_patch_itself():
    # map 7: three patches of known vectors; map 9: one patch (no other patch, so no target)
    X = np.array([[1.0, 2.0], [3.0, 6.0], [8.0, 1.0], [5.0, 5.0]])
    maps = np.array([7, 7, 7, 9])
    loo = leave_one_out_means(X, maps)
    by_hand = np.array([[(3 + 8) / 2, (6 + 1) / 2], [(1 + 8) / 2, (2 + 1) / 2], [(1 + 3) / 2, (2 + 6) / 2]])
    np.testing.assert_allclose(loo[:3], by_hand)
    assert np.isnan(loo[3]).all()
    # moving one patch moves every other patch's target, never its own
    moved = X.copy()
    moved[0] += 100.0
    np.testing.assert_allclose(leave_one_out_means(moved, maps)[0], loo[0])
    assert not np.allclose(leave_one_out_means(moved, maps)[1:3], loo[1:3])
    # the identity's squared RMSE is n / (n - 1) times the unbiased within-map variance
    sq = ((X[:3] - loo[:3]) ** 2).mean()
    assert sq == pytest.approx(3 / 2 * X[:3].var(0, ddof=1).mean())


def test_evaluation_scores_against_the_leave_one_out_mean_and_leaves_lone_patches_out():
    store = synthetic_store(n=240, n_maps=24)
    codes = np.zeros(24, np.int8)
    codes[16:20], codes[20:] = 1, 2
    split = codes[store.map_index]
    lone = np.flatnonzero(store.map_index == 23)[1:]  # map 23 keeps one test patch: no leave-one-out target
    keep = np.setdiff1d(np.arange(len(store)), lone)
    store = store.subset(keep)
    store = dataclasses.replace(store, split=split[keep])
    results = evaluate(store, [], ["rwst1", "pca"], labels=False, n_resamples=200)
    test = store.coeffs[store.split == 2].astype(np.float64)
    maps = store.map_index[store.split == 2]
    target = np.stack([test[(maps == m) & (np.arange(len(test)) != i)].mean(0) if (maps == m).sum() > 1
                       else np.full(test.shape[1], np.nan) for i, m in enumerate(maps)])
    has = np.isfinite(target).all(1)
    assert (~has).sum() == 1 and results["test"]["patches_with_map_mean"] == len(test) - 1
    recon = RWSTCompressor(1, CoefficientLayout()).reconstruct(test)
    assert results["compressors"]["rwst1"]["rmse_to_map_mean_log2"] == pytest.approx(rmse(recon[has], target[has]), rel=1e-6)
    assert results["identity"]["rmse_to_map_mean_log2"] == pytest.approx(rmse(test[has], target[has]), rel=1e-9)
    assert any("only test patch" in note for note in results["notes"])
    lo, hi = results["bootstrap"]["identity"]["rmse_to_map_mean_log2"]
    assert lo <= results["identity"]["rmse_to_map_mean_log2"] <= hi
    lo, hi = results["bootstrap"]["intervals"]["rwst1"]["rmse_to_map_mean_log2"]
    assert np.isfinite([lo, hi]).all() and lo < hi


def test_inclination_by_its_absolute_value_and_classes_by_roc_auc_against_sklearn():
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    n = 400
    codes = rng.normal(size=(n, 6))
    inclination = np.where(rng.uniform(size=n) < 0.5, -1, 1) * 40 * np.abs(codes[:, 0])  # the sign is random
    filaments = (codes[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(float)
    targets, _ = label_targets({"mean_field_inclination": inclination, "filaments": filaments})
    assert set(targets) == {"abs_mean_field_inclination", "filaments"}
    np.testing.assert_allclose(targets["abs_mean_field_inclination"], np.abs(inclination))
    train = {k: v[:300] for k, v in targets.items()}
    test = {k: v[300:] for k, v in targets.items()}
    scores = label_r2(codes[:300], train, codes[300:], test)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15), alpha_per_target=True))
    Y = np.column_stack([train["abs_mean_field_inclination"], train["filaments"]])
    pred = ridge.fit(codes[:300], Y).predict(codes[300:])
    assert scores["ridge"]["abs_mean_field_inclination"] == pytest.approx(r2_score(test["abs_mean_field_inclination"], pred[:, 0]))
    assert scores["ridge"]["filaments"] == pytest.approx(roc_auc_score(test["filaments"], pred[:, 1]))
    assert scores["ridge"]["filaments"] > 0.8 and scores["boosting"]["filaments"] > 0.8  # AUC: 0.5 is chance
    assert scores["boosting"]["abs_mean_field_inclination"] > 0.8  # |g| is read; the signed angle is not
    signed = label_r2(codes[:300], {"g": inclination[:300]}, codes[300:], {"g": inclination[300:]})
    assert signed["boosting"]["g"] < 0.2


def test_labelled_store_reports_auc_for_classes(tmp_path):
    store = synthetic_store(n=240, n_maps=24)
    codes = np.zeros(24, np.int8)
    codes[16:20], codes[20:] = 1, 2
    signal = store.coeffs[:, :40].mean(1).astype(np.float64)
    labels = {"filaments": (signal > np.median(signal)).astype(float), "mean_field_inclination": 30 * (signal - signal.mean())}
    store = dataclasses.replace(store, split=codes[store.map_index], labels=labels)
    results = evaluate(store, [], ["pca"], n_resamples=50)
    regression = results["label_regression"]
    assert regression["targets"] == ["filaments", "abs_mean_field_inclination"]  # in the order of the labels
    assert regression["scores"] == {"abs_mean_field_inclination": "r2", "filaments": "roc_auc"}
    from dustvae.analysis.tables import markdown_table

    assert "filaments (AUC)" in markdown_table(results)
