"""Bootstrap over test maps: the vectorised resamples against a loop over the same draws, pairing, seeding,
intervals that shrink with more maps, and the intervals in results, tables and sentences."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from dustvae.analysis import sentences
from dustvae.analysis.bootstrap import bootstrap, by_map, map_counts, reported_pairs, resample_maps, resampled, row_terms
from dustvae.analysis.evaluate import evaluate
from dustvae.analysis.tables import markdown_table
from dustvae.baselines import PCACompressor, RWSTCompressor
from dustvae.numerics import rmse
from dustvae.wst.layout import CoefficientLayout

from helpers import synthetic_store


def split_store(n_maps: int = 24, test_maps: int = 8, per_map: int = 10, seed: int = 0):
    """A synthetic store whose last ``test_maps`` maps are the test split (two before them validation)."""
    store = synthetic_store(n=n_maps * per_map, n_maps=n_maps, seed=seed)
    codes = np.zeros(n_maps, np.int8)
    codes[n_maps - test_maps - 2:] = 1
    codes[n_maps - test_maps:] = 2
    return dataclasses.replace(store, split=codes[store.map_index])


def _percentile(values, level=0.95):
    tail = 100 * (1 - level) / 2
    return list(np.percentile(values, [tail, 100 - tail]))


def test_resampled_figures_equal_a_loop_over_the_same_draws():
    store = split_store()
    results = evaluate(store, [], ["rwst1", "pca"], labels=False, n_resamples=200, seed=3)
    boot, comp = results["bootstrap"], results["compressors"]
    assert boot["n_resamples"] == 200 and boot["seed"] == 3 and boot["n_maps"] == 8

    layout = CoefficientLayout()
    test = store.coeffs[store.split == 2].astype(np.float64)
    maps = store.map_index[store.split == 2]
    train = store.coeffs[store.split == 0].astype(np.float64)
    recon = {"rwst1": RWSTCompressor(1, layout).reconstruct(test),
             "pca-85": PCACompressor(85).fit(train).reconstruct(test)}
    s1 = layout.select(layer=1)
    unique = np.unique(maps)
    draws = resample_maps(len(unique), 200, 3)
    loop = {n: {"rmse_log2": [], "rel_err_s1": []} for n in recon}
    for drawn in draws:  # every resample written out: the patches of each drawn map, maps drawn twice twice
        rows = np.concatenate([np.flatnonzero(maps == unique[m]) for m in drawn])
        for n, r in recon.items():
            loop[n]["rmse_log2"].append(rmse(r[rows], test[rows]))
            loop[n]["rel_err_s1"].append(np.mean(np.abs(np.exp2(r[rows][:, s1] - test[rows][:, s1]) - 1)))
    for n in recon:
        for metric in ("rmse_log2", "rel_err_s1"):
            np.testing.assert_allclose(boot["intervals"][n][metric], _percentile(loop[n][metric]), rtol=1e-6)
        assert comp[n]["rmse_log2"] == pytest.approx(rmse(recon[n], test), rel=1e-6)
    # paired: the same draws for both compressors, differences taken per resample
    pair = next(p for p in boot["paired"] if {p["a"], p["b"]} == {"rwst1", "pca-85"})
    assert (pair["a"], pair["b"]) == ("rwst1", "pca-85") and not pair["reported"]  # sizes differ: not in the tables
    diff = np.subtract(loop["rwst1"]["rmse_log2"], loop["pca-85"]["rmse_log2"])
    np.testing.assert_allclose(pair["metrics"]["rmse_log2"]["interval"], _percentile(diff), rtol=1e-6)
    assert pair["metrics"]["rmse_log2"]["difference"] == pytest.approx(comp["rwst1"]["rmse_log2"] - comp["pca-85"]["rmse_log2"])
    assert results["timings"]["stages_seconds"]["bootstrap"] >= 0


def test_point_values_of_the_resampled_sums_are_the_reported_figures():
    store = split_store()
    results = evaluate(store, [], ["rwst2", "pca"], labels=False, n_resamples=10)
    layout = CoefficientLayout()
    test = store.coeffs[store.split == 2].astype(np.float64)
    maps = store.map_index[store.split == 2]
    recon = RWSTCompressor(2, layout).reconstruct(test)
    scale = store.coeffs[store.split == 0].astype(np.float64).std(0)
    rows = np.arange(len(test))
    mean = np.stack([test[(maps == m) & (rows != i)].mean(0) for i, m in enumerate(maps)])  # leave-one-out
    point = resampled(by_map(row_terms(test, recon, layout, scale, mean), maps), np.ones((1, len(np.unique(maps)))))
    row = results["compressors"]["rwst2"]
    for metric in ("rmse_log2", "rmse_std", "rmse_to_map_mean_log2", "rel_err_s1", "rel_err_s2_over_s1"):
        assert point[metric][0] == pytest.approx(row[metric], rel=1e-6), metric
    assert point["rmse_log2_layer2"][0] == pytest.approx(row["per_layer"]["2"]["rmse_log2"], rel=1e-6)
    lo, hi = results["bootstrap"]["noise_floor"]["rmse_log2"]
    assert lo < results["noise_floor"]["rmse_log2"] < hi


def _fake_terms(n_maps: int, per_map: int, seed: int) -> tuple[dict, np.ndarray]:
    """Squared errors of two compressors whose map-level error varies from map to map."""
    rng = np.random.default_rng(seed)
    maps = np.repeat(np.arange(n_maps), per_map)
    level = rng.gamma(4.0, 0.25, n_maps)[maps]
    terms = {n: {"rmse_log2": (level * scale * rng.chisquare(10, len(maps)), 10)} for n, scale in (("vae-85", 1.1), ("pca-85", 1.0))}
    return terms, maps


def test_intervals_shrink_as_maps_are_added_and_are_seeded():
    widths = []
    for n_maps in (8, 32, 128):
        terms, maps = _fake_terms(n_maps, 5, seed=n_maps)
        boot = bootstrap(terms, maps, {"vae-85": 85, "pca-85": 85}, n_resamples=1000, seed=0)
        lo, hi = boot["intervals"]["pca-85"]["rmse_log2"]
        widths.append(hi - lo)
        assert boot == bootstrap(terms, maps, {"vae-85": 85, "pca-85": 85}, n_resamples=1000, seed=0)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] > 2.5  # about sqrt(16) = 4 for 16 times the maps
    counts = map_counts(resample_maps(7, 1000, 5), 7)
    assert counts.shape == (1000, 7) and (counts.sum(1) == 7).all()


def test_two_thousand_resamples_of_eight_compressors_take_well_under_a_second():
    terms, maps = _fake_terms(120, 4, seed=1)
    many = {f"pca-{d}": terms["pca-85"] for d in (8, 16, 32, 64, 85, 128, 170, 256)}
    tic = time.perf_counter()
    boot = bootstrap(many, maps, {n: int(n.split("-")[1]) for n in many}, n_resamples=2000)
    assert time.perf_counter() - tic < 1.0
    assert len(boot["paired"]) == 8 * 7 // 2


def test_one_test_map_gives_no_intervals_and_says_why():
    store = split_store(test_maps=1)
    results = evaluate(store, [], ["rwst1"], labels=False)
    assert results["bootstrap"] is None
    assert any(note.startswith("bootstrap intervals skipped") for note in results["notes"])


def test_intervals_reach_the_table_and_the_sentences():
    results = evaluate(split_store(n_maps=32), [], ["rwst1", "rwst2", "pca"], labels=False, n_resamples=500)
    text = markdown_table(results)
    assert "2000" not in text and "500 resamples of whole maps" in text
    row = results["compressors"]["rwst2"]
    lo, hi = results["bootstrap"]["intervals"]["rwst2"]["rmse_log2"]
    assert f"| RWST Model 2 | 170 | {row['rmse_log2']:.4f} [{lo:.4f}, {hi:.4f}] |" in text
    assert "| RWST Model 2 - PCA-170 |" in text
    # the synthetic vectors are low-rank: PCA-170 beats RWST Model 2 on every resample
    assert sentences.order(results, "rwst2", "pca-170") == "higher"
    assert sentences.winner_sentence(results, 170).startswith("at 170 numbers the order is PCA-170")
    assert "no bootstrap interval" not in sentences.winner_sentence(results, 170)


def test_paper_tables_and_docs_page_carry_the_intervals(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from dustvae.analysis.results import write_results

    results = evaluate(split_store(n_maps=32), [], ["rwst1", "rwst2", "pca"], labels=False, n_resamples=300)
    path = write_results(tmp_path / "results.json", results)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "scripts" / "make_paper_tables.py"), str(path), "--paper-dir",
                           str(tmp_path / "paper"), "--docs-dir", str(tmp_path / "docs")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    tables = (tmp_path / "paper" / "tables.tex").read_text()
    lo, hi = results["bootstrap"]["intervals"]["pca-85"]["rmse_log2"]
    assert f"PCA-85 & 85 & {results['compressors']['pca-85']['rmse_log2']:.4f} [{lo:.4f}, {hi:.4f}]" in tables
    assert "\\label{tab:paired}" in tables and "RWST Model 2 - PCA-170 &" in tables
    macros = (tmp_path / "paper" / "macros.tex").read_text()
    assert "no bootstrap interval" not in macros
    rst = (tmp_path / "docs" / "results.rst").read_text()
    assert "300 resamples of whole maps" in rst and "RWST Model 2 - PCA-170" in rst


def test_learned_compressors_are_paired_with_the_linear_baseline_chosen_on_validation():
    names = ["vae-85", "rwst2", "pca-85", "pca-sym-85"]
    latents = {"vae-85": 85, "rwst2": 170, "pca-85": 85, "pca-sym-85": 85}
    both = set(reported_pairs(names, latents))
    assert {("vae-85", "pca-85"), ("vae-85", "pca-sym-85"), ("pca-sym-85", "pca-85")} <= both
    chosen = set(reported_pairs(names, latents, {85: "pca-sym-85"}))
    assert ("vae-85", "pca-sym-85") in chosen and ("vae-85", "pca-85") not in chosen
    # in an evaluation: the choice is made on the validation split and recorded
    results = evaluate(split_store(n_maps=32), [], ["rwst2", "pca", "pca-sym"], labels=False, n_resamples=100)
    linear = results["linear_baseline"]
    pick = linear["chosen"]["170"]
    assert pick == min(("pca-170", "pca-sym-170"), key=linear["validation_rmse_log2"].__getitem__)
    shown = {(p["a"], p["b"]) for p in results["bootstrap"]["paired"] if p["reported"]}
    assert ("rwst2", pick) in shown and ("rwst2", ({"pca-170", "pca-sym-170"} - {pick}).pop()) not in shown
    assert ("pca-sym-170", "pca-170") in shown and "pca_sym_curve" in results


def test_reduced_rank_regression_is_scored_against_the_map_level_target():
    store = split_store(n_maps=32)
    results = evaluate(store, [], ["pca", "rrr"], labels=False, n_resamples=100)
    comp = results["compressors"]
    assert {"rrr-85", "rrr-170"} <= set(comp) and comp["rrr-85"]["latent"] == 85
    # fitted to predict the map mean, it is closer to it than PCA, which reproduces the patch with its noise
    assert comp["rrr-85"]["rmse_to_map_mean_log2"] < comp["pca-85"]["rmse_to_map_mean_log2"]
    assert comp["rrr-85"]["rmse_log2"] > comp["pca-85"]["rmse_log2"]
