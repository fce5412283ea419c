"""The results file: its schema and reader, the one table model in three formats, and the paper's sentences."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from dustvae.analysis import sentences
from dustvae.analysis.results import RESULTS_FORMAT, RESULTS_VERSION, read_results, write_results
from dustvae.analysis.tables import main_table, markdown_table, render
from dustvae.errors import DustvaeError
from dustvae.numerics import rmse
from dustvae.wst.layout import CoefficientLayout


def _row(latent: int, value: float) -> dict:
    """A compressor row with every key the tables read, its errors all ``value``."""
    layout = CoefficientLayout()
    part = {"rmse_log2": value, "mean_rel_err": value / 2}
    return {"latent": latent, "rmse_log2": value, "rmse_std": 3 * value, "rmse_to_map_mean_log2": value + 0.01,
            "rel_err_s1": value / 2, "rel_err_s2_over_s1": value / 3, "encode_ms_per_patch": 0.5,
            "per_layer": {"1": part, "2": part}, "per_field_layer": {f"{f}{k}": part for f in "QU" for k in (1, 2)},
            "per_j1": {str(j): part for j in range(layout.J)},
            "per_pair": {f"{a}-{b}": part for a in range(layout.J) for b in range(a + 1, layout.J)}}


def small_results(**rmses: float) -> dict:
    """A results object of the current version holding the named compressors (``vae_85=0.15``)."""
    layout = CoefficientLayout()
    comp = {}
    for key, value in rmses.items():
        name = key.replace("_", "-")
        latent = {"rwst1": 130, "rwst2": 170}.get(name) or int(name.split("-")[1])
        comp[name] = _row(latent, value)
    return {"format": RESULTS_FORMAT, "format_version": RESULTS_VERSION, "compressors": comp,
            "inputs": {"layout": layout.to_attrs()}, "test": {"n_patches": 40, "n_maps": 8, "split": "store split (by map)"},
            "examples": {"test_rows": [], "truth": [], "reconstructions": {}},
            "noise_floor": {"rmse_log2": 0.2, "rmse_std": 0.6, "n_maps": 8,
                            "per_field_layer": {f"{f}{k}": 0.2 for f in "QU" for k in (1, 2)}},
            "notes": [], "versions": {"dustvae": "0"}, "machine": {"platform": "test"}}


def with_pairs(results: dict, pairs: dict[tuple[str, str], tuple[float, float, float]]) -> dict:
    """``results`` with a bootstrap section whose paired rmse_log2 differences are as given: (difference, lo, hi)."""
    out = copy.deepcopy(results)
    out["bootstrap"] = {"n_resamples": 1000, "seed": 0, "level": 0.95, "n_maps": 8, "metrics": ["rmse_log2"],
                        "intervals": {n: {"rmse_log2": [r["rmse_log2"] - 0.01, r["rmse_log2"] + 0.01]}
                                      for n, r in out["compressors"].items()},
                        "noise_floor": {}, "paired": [
                            {"a": a, "b": b, "reported": True, "metrics": {"rmse_log2": {"difference": d, "interval": [lo, hi]}}}
                            for (a, b), (d, lo, hi) in pairs.items()]}
    return out


def test_rmse_is_the_root_mean_square_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    assert rmse(a, b) == pytest.approx(math.sqrt(((a - b) ** 2).sum() / a.size))
    np.testing.assert_allclose(rmse(a, b, axis=1), [math.sqrt(((x - y) ** 2).mean()) for x, y in zip(a, b)])
    assert isinstance(rmse(a.astype(np.float32), b), float)


def test_written_results_are_tagged_and_read_back(tmp_path):
    results = small_results(vae_85=0.15, pca_85=0.11)
    del results["format"], results["format_version"]
    path = write_results(tmp_path / "r.json", results)
    raw = json.loads(path.read_text())
    assert raw["format"] == RESULTS_FORMAT and raw["format_version"] == RESULTS_VERSION
    assert read_results(path)["compressors"] == results["compressors"]


def test_untagged_files_are_read_as_version_1(tmp_path):
    results = small_results(vae_85=0.15)
    del results["format"], results["format_version"]
    (tmp_path / "old.json").write_text(json.dumps(results))
    read = read_results(tmp_path / "old.json")
    assert read["format_version"] == 1 and read["compressors"] == results["compressors"]
    assert "no bootstrap interval" in sentences.winner_sentence(small_results(vae_85=0.15, pca_85=0.11), 85)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("compressors"), "no 'compressors' section"),
    (lambda r: r.update(format_version=RESULTS_VERSION + 1), "newer than this dustvae reads"),
    (lambda r: r.update(format_version="two"), "is not a positive integer"),
    (lambda r: r.update(format="dustvae-wst"), "format 'dustvae-wst'"),
    (lambda r: r["compressors"]["vae-85"].pop("per_pair"), "compressor 'vae-85' lacks per_pair"),
    (lambda r: r["test"].pop("n_maps"), "'test' section lacks n_maps"),
    (lambda r: r["inputs"].pop("layout"), "no coefficient layout"),
    (lambda r: r.update(compressors={}), "compares no compressor"),
    (lambda r: r.update(bootstrap={"n_resamples": 10}), "'bootstrap' section lacks seed"),
    (lambda r: r.update(bootstrap={**with_pairs(r, {})["bootstrap"], "intervals": {"vae-1": {}}}),
     "bootstrap intervals for compressors not in the file: vae-1"),
])
def test_bad_results_are_one_line_errors(tmp_path, change, message):
    results = small_results(vae_85=0.15)
    change(results)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(results))
    with pytest.raises(DustvaeError, match=message) as err:
        read_results(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_not_json_and_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DustvaeError, match="not JSON"):
        read_results(tmp_path / "x.json")
    with pytest.raises(DustvaeError, match="no such results file"):
        read_results(tmp_path / "none.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DustvaeError, match="a JSON list, not an object"):
        read_results(tmp_path / "list.json")


def test_one_table_model_in_three_formats():
    results = small_results(vae_85=0.15, rwst1=0.14, pca_85=0.11)
    table = main_table(results)
    md, tex, rst = (render(table, f) for f in ("markdown", "latex", "rst"))
    # the same rows in the registry's order, the within-map scatter last, in every format
    for text in (md, tex, rst):
        order = [text.index(s) for s in ("VAE-2", "RWST Model 1", "PCA-85", "Within-map scatter")]
        assert order == sorted(order)
        assert "0.1500" in text and "0.2000" in text
    assert "| VAE-2 | 85 | 0.1500 |" in md
    assert "VAE-2 & 85 & 0.1500" in tex and "\\hline\nWithin-map scatter" in tex and "$\\langle|\\Delta S_1/S_1|\\rangle$" in tex
    assert rst.splitlines()[0] == rst.splitlines()[2] == rst.splitlines()[-1] and "rel. err. S1" in rst
    with_intervals = with_pairs(results, {})
    assert "| VAE-2 | 85 | 0.1500 [0.1400, 0.1600] |" in render(main_table(with_intervals), "markdown")
    assert "Brackets: 95% bootstrap intervals" in markdown_table(with_intervals)


def test_winner_sentence_groups_ties():
    results = small_results(vae_85=0.15, vae_85_pca=0.115, pca_85=0.112)
    results["compressors"]["vae-85+pca"] = results["compressors"].pop("vae-85-pca")
    paired = with_pairs(results, {("vae-85+pca", "pca-85"): (0.003, -0.001, 0.006),
                                  ("vae-85", "vae-85+pca"): (0.035, 0.03, 0.04)})
    assert sentences.winner_sentence(paired, 85) == \
        "at 85 numbers the order is PCA-85 0.112 and VAE-2 + PCA start 0.115 (tied), VAE-2 0.150"
    separated = with_pairs(results, {("vae-85+pca", "pca-85"): (0.003, 0.001, 0.006),
                                     ("vae-85", "vae-85+pca"): (0.035, 0.03, 0.04)})
    assert sentences.winner_sentence(separated, 85) == \
        "at 85 numbers the order is PCA-85 0.112, VAE-2 + PCA start 0.115, VAE-2 0.150"
    assert sentences.winner_sentence(paired, 64) == "no compressor with 64 numbers was evaluated"


def test_against_pca_reads_the_paired_interval():
    results = small_results(vae_85=0.15, pca_85=0.10)
    above = with_pairs(results, {("vae-85", "pca-85"): (0.05, 0.04, 0.06)})
    assert sentences.against_pca(above, "vae-85") == \
        "VAE-2's test RMSE is 50.0\\% above PCA-85's (difference 0.050 [0.040, 0.060])"
    # the pair stored the other way round reads the same
    flipped = with_pairs(results, {("pca-85", "vae-85"): (-0.05, -0.06, -0.04)})
    assert sentences.against_pca(flipped, "vae-85") == sentences.against_pca(above, "vae-85")
    tie = with_pairs(results, {("vae-85", "pca-85"): (0.05, -0.01, 0.11)})
    assert sentences.against_pca(tie, "vae-85").startswith("VAE-2 ties with PCA-85 in test RMSE (+50.0\\%")
    assert "was not compared with PCA" in sentences.against_pca(results, "vae-170")


def test_comparison_and_best_sentences_state_ties():
    results = small_results(vae_85=0.13, rwst1=0.14, rwst2=0.131, pca_85=0.10)
    paired = with_pairs(results, {("vae-85", "rwst1"): (-0.01, -0.02, -0.005), ("vae-85", "rwst2"): (-0.001, -0.004, 0.002),
                                  ("vae-85", "pca-85"): (0.03, 0.02, 0.04), ("pca-85", "rwst2"): (-0.031, -0.04, -0.02)})
    assert sentences.comparison_sentence(paired, "vae-85") == (
        "VAE-2 (0.130) has a lower test RMSE than RWST Model 1 with 130 numbers (0.140); a higher one than PCA-85 "
        "with 85 numbers (0.100); and ties with RWST Model 2 with 170 numbers (0.131)")
    assert sentences.best_sentence(paired) == "PCA-85 (85 latents)"
    tied = with_pairs(results, {("pca-85", "vae-85"): (-0.03, -0.05, 0.01)})
    assert sentences.best_sentence(tied) == "PCA-85 (85 latents), tied with VAE-2 (85 latents)"
    assert sentences.best_map_mean(paired, top=2).startswith("PCA-85 (0.110), VAE-2 (0.140)")


def test_an_evaluation_that_compares_nothing_is_refused():
    from dustvae.analysis.evaluate import evaluate

    from helpers import synthetic_store

    with pytest.raises(DustvaeError, match=r"nothing to compare: .*pca skipped: the store has no training split"):
        evaluate(synthetic_store(n=20, split=False), [], ["pca"])


def test_version_3_files_are_read_with_their_inclusive_map_mean(tmp_path):
    from dustvae.analysis.results import INCLUSIVE_MAP_MEAN

    results = small_results(vae_85=0.15, pca_85=0.11)
    results["format_version"] = 3
    path = tmp_path / "old.json"
    path.write_text(json.dumps(results))
    read = read_results(path)
    assert read["format_version"] == 3 and read["test"]["map_mean_target"] == INCLUSIVE_MAP_MEAN
    heads = [c.head for c in main_table(read).columns]
    assert "RMSE to map mean (incl. patch)" in heads and "RMSE to LOO map mean" not in heads
    current = small_results(vae_85=0.15, pca_85=0.11)
    assert "RMSE to LOO map mean" in [c.head for c in main_table(current).columns]


def test_versus_reads_the_paired_interval_whichever_way_it_is_stored():
    results = with_pairs(small_results(vae_85=0.15, rwst2=0.14, pca_85=0.149),
                         {("vae-85", "rwst2"): (0.01, 0.004, 0.016), ("pca-85", "vae-85"): (-0.001, -0.003, 0.002)})
    assert sentences.versus(results, "vae-85", "rwst2") == (
        "VAE-2's test RMSE is 7.1\\% above RWST Model 2's (difference 0.010 [0.004, 0.016])")
    assert sentences.versus(results, "vae-85", "pca-85").startswith("VAE-2 ties with PCA-85 in test RMSE (+0.7\\%; "
                                                                    "difference 0.001 [-0.002, 0.003]")
    assert "were not both evaluated" in sentences.versus(results, "vae-170", "rwst2")


def test_curve_sentence_groups_sizes_by_their_paired_verdict():
    def entry(diff, lo, hi, base=0.2):
        return {"patch": {"against": "x", "difference": diff, "relative": diff / base, "interval": [lo, hi]}}

    section = {"families": {}, "paired": {
        "vae+pca": {"1": entry(-0.01, -0.012, -0.008), "2": entry(-0.008, -0.01, -0.006), "85": entry(0.0, -0.001, 0.001)},
        "vae": {"1": entry(0.05, 0.04, 0.06), "85": entry(0.02, 0.01, 0.03), "170": entry(0.03, 0.02, 0.04)}}}
    text = sentences.curve_sentence(section, "patch")
    assert text == ("on the patch target the best learned code is below the best linear code at $k$ = 1, 2 (by 4.0--5.0\\%); "
                    "ties with it at $k$ = 85; is above it at $k$ = 170 (by 15.0\\%)")
    only_loses = {"families": {}, "paired": {"vae": {"85": entry(0.02, 0.01, 0.03)}}}
    assert sentences.curve_sentence(only_loses, "patch") == (
        "on the patch target the best learned code is above the best linear code at $k$ = 85 (by 10.0\\%)")
    assert "was not computed" in sentences.curve_sentence(None, "map")
