"""Training on the map-level target (``train --target map``) and scoring on another store (``evaluate --on``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dustvae.baselines.rrr import ReducedRankRegression
from dustvae.io.store import CoefficientStore
from dustvae.io.store_writer import write_store
from dustvae.models.train import ModelConfig, TrainConfig, map_targets, train

from conftest import run_here
from helpers import synthetic_store


def _map_store(n_maps: int = 24, per_map: int = 8, seed: int = 0, split: bool = True) -> CoefficientStore:
    """A store whose vectors are a low-rank map-level signal plus independent per-patch noise."""
    base = synthetic_store(n=n_maps * per_map, n_maps=n_maps, rank=24, seed=seed, split=split)
    rng = np.random.default_rng(seed + 100)
    maps = base.map_index
    signal = rng.normal(size=(n_maps, 4)) @ rng.normal(size=(4, base.coeffs.shape[1])) * 0.2
    noise = 0.1 * rng.normal(size=base.coeffs.shape)
    coeffs = (base.coeffs.mean(0) + signal[maps] + noise).astype(np.float32)
    codes = np.where(maps < n_maps * 2 // 3, 0, np.where(maps < n_maps * 5 // 6, 1, 2)).astype(np.int8)  # by map
    return CoefficientStore(**{**base.__dict__, "coeffs": coeffs, "split": codes if split else None})


def _direct_loo(coeffs: np.ndarray, maps: np.ndarray, rows: np.ndarray) -> dict[int, np.ndarray]:
    """Each row's mean of the other ``rows`` of its map, by a plain loop (rows without another: absent)."""
    out = {}
    for i in rows:
        others = [j for j in rows if maps[j] == maps[i] and j != i]
        if others:
            out[int(i)] = coeffs[others].astype(np.float64).mean(0)
    return out


def test_map_targets_are_the_other_rows_of_the_same_split():
    store = _map_store()
    train_rows = np.flatnonzero(store.split == 0)[::2]  # some maps keep one row: left out
    kept, targets = map_targets(store.coeffs, store.map_index, train_rows, "training")
    direct = _direct_loo(store.coeffs, store.map_index, train_rows)
    assert sorted(direct) == kept.tolist()
    for row, target in zip(kept, targets):
        np.testing.assert_allclose(target, direct[int(row)], rtol=0, atol=1e-5)
        assert not np.allclose(target, store.coeffs[row], atol=1e-3)  # the patch is not its own target


@pytest.mark.parametrize("target", ["patch", "map"])
def test_training_never_reads_validation_or_test_patches(tmp_path, one_torch_thread, target):
    """Stores that differ only in validation and test vectors give the same trained weights (last.pt)."""
    store = _map_store()
    other = _map_store(seed=7)
    changed = np.isin(store.split, (1, 2))
    moved = CoefficientStore(**{**store.__dict__, "coeffs": np.where(changed[:, None], other.coeffs, store.coeffs)})
    config = TrainConfig(ModelConfig(4, linear_path=True, pca_init=True, target=target), epochs=2, patience=10, batch_size=32, augment=True)
    assert config.name == {"patch": "vae-4+pca", "map": "vae-4+rrr+map"}[target]
    runs = [train(s, tmp_path / f"run{k}", config, device="cpu", progress=False) for k, s in enumerate((store, moved))]
    weights = [torch.load(r.run_dir / "last.pt", weights_only=False)["model"] for r in runs]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    assert runs[0].history[-1]["val_rmse_log2"] != runs[1].history[-1]["val_rmse_log2"]  # validation was read


def test_the_start_is_the_reduced_rank_regression_to_the_map_mean(tmp_path, one_torch_thread):
    """Epoch 0 of a map-target run scores, on validation, what RRR fitted by hand on the training pairs scores."""
    store = _map_store()
    train_rows, val_rows = np.flatnonzero(store.split == 0), np.flatnonzero(store.split == 1)
    pairs, val_pairs = (_direct_loo(store.coeffs, store.map_index, r) for r in (train_rows, val_rows))
    rrr = ReducedRankRegression(4).fit(store.coeffs[list(pairs)], np.array(list(pairs.values())))
    val_target = np.array(list(val_pairs.values()))
    expected = np.sqrt(np.mean((rrr.reconstruct(store.coeffs[list(val_pairs)]) - val_target) ** 2))
    config = TrainConfig(ModelConfig(4, linear_path=True, pca_init=True, target="map"), epochs=1, batch_size=32)
    result = train(store, tmp_path / "run", config, device="cpu", progress=False)
    assert result.history[0]["epoch"] == 0
    assert result.history[0]["val_rmse_log2"] == pytest.approx(expected, rel=1e-3)
    # Against the map target, RRR beats keeping the patch's own vector (the identity) on this store.
    identity = np.sqrt(np.mean((store.coeffs[list(val_pairs)] - val_target) ** 2))
    assert expected < identity


def test_map_target_needs_maps_with_two_patches(tmp_path):
    store = synthetic_store(n=96, n_maps=96)  # one patch a map
    from dustvae.errors import DustvaeError

    with pytest.raises(DustvaeError, match="at least two training patches"):
        train(store, tmp_path / "run", TrainConfig(ModelConfig(4, target="map"), epochs=1), device="cpu", progress=False)


def test_evaluate_on_another_store_without_a_split(tmp_path):
    """`evaluate --on`: fitted on the first store's training split, scored on every row of an unsplit store."""
    data, other, out = tmp_path / "data.h5", tmp_path / "other.h5", tmp_path / "results.json"
    write_store(data, _map_store())
    write_store(other, _map_store(n_maps=6, seed=3, split=False))
    proc = run_here("evaluate", data, "--on", other, "--baselines", "pca,rrr", "-o", out, "--quiet", check=True)
    results = json.loads(out.read_text())
    assert results["test"]["n_patches"] == 48 and results["test"]["n_maps"] == 6
    assert results["test"]["resampled"] == "map" and "another store" in results["test"]["split"]
    assert results["inputs"]["scored_store"] == str(other)
    # PCA fitted on the first store's training rows, scored on the other store: computed here directly.
    from dustvae.baselines.pca import PCACompressor
    from dustvae.io.store import read_store

    first, scored = read_store(data), read_store(other)
    pca = PCACompressor(85).fit(first.subset("train").coeffs)
    expected = np.sqrt(np.mean((pca.reconstruct(scored.coeffs) - scored.coeffs) ** 2))
    assert results["compressors"]["pca-85"]["rmse_log2"] == pytest.approx(expected, rel=1e-6)
    assert "rrr-85" in results["compressors"] and "pca-85" in results["bootstrap"]["intervals"]
    assert "6 test maps" in proc.stdout


def test_evaluate_on_refuses_the_same_store_and_another_layout(tmp_path):
    data = tmp_path / "data.h5"
    write_store(data, _map_store())
    proc = run_here("evaluate", data, "--on", data, "-o", tmp_path / "r.json")
    assert proc.returncode == 2 and "--on names the store the compressors are fitted on" in proc.stderr
    other = _map_store(seed=2, split=False)
    other = CoefficientStore(**{**other.__dict__, "attrs": {**other.attrs, "normalisation": "raw"}})
    write_store(tmp_path / "other.h5", other)
    proc = run_here("evaluate", data, "--on", tmp_path / "other.h5", "-o", tmp_path / "r.json")
    assert proc.returncode == 2 and "normalisation" in proc.stderr and "Traceback" not in proc.stderr


def test_rate_distortion_section_reads_the_evaluation(tmp_path, one_torch_thread):
    """The curve's points are the evaluation's rows; its paired entries are the bootstrap's, signed learned - linear."""
    from dustvae.analysis.curve_figure import draw_rate_distortion
    from dustvae.analysis.evaluate import evaluate
    from dustvae.analysis.rate_distortion import curve_section, verdict

    store = _map_store()
    config = TrainConfig(ModelConfig(4, linear_path=True, pca_init=True, target="map"), epochs=1, batch_size=32)
    run = train(store, tmp_path / config.name, config, device="cpu", progress=False)
    results = evaluate(store, [run.run_dir / "best.pt"], ("pca", "pca-sym", "rrr"), sizes=(2, 4), labels=False,
                       generative=False, n_resamples=300)
    section = curve_section(results)
    assert section["sizes"] == [2, 4]
    assert set(section["families"]) == {"vae+rrr+map", "pca", "pca-sym", "rrr", "rrr-sym"}  # rrr-sym: brought by the map model
    rows = results["compressors"]
    assert section["families"]["pca"]["2"]["patch"]["value"] == rows["pca-2"]["rmse_log2"]
    assert section["families"]["rrr"]["4"]["map"]["value"] == rows["rrr-4"]["rmse_to_map_mean_log2"]
    entry = section["paired"]["vae+rrr+map"]["4"]["map"]
    stronger = min(("rrr-4", "rrr-sym-4"), key=lambda n: rows[n]["rmse_to_map_mean_log2"])  # the harder comparison
    assert entry["against"] == stronger
    assert entry["difference"] == pytest.approx(rows["vae-4+rrr+map"]["rmse_to_map_mean_log2"]
                                                - rows[stronger]["rmse_to_map_mean_log2"])
    lo, hi = entry["interval"]
    assert lo <= entry["difference"] <= hi and verdict(entry) in ("wins", "ties", "loses")
    assert verdict({"difference": -1.0, "interval": [-2.0, -0.5]}) == "wins"
    assert verdict({"difference": 0.1, "interval": [-0.1, 0.3]}) == "ties"
    assert verdict({"difference": -2e-6, "interval": [-3e-6, -1e-6]}) == "ties"  # float32 rounding is no win
    paths = draw_rate_distortion(section, tmp_path / "figures")
    assert sorted(p.name for p in paths) == ["rate_distortion_map.pdf", "rate_distortion_map.png",
                                             "rate_distortion_patch.pdf", "rate_distortion_patch.png"]
