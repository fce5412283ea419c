"""The default dataset: sky models per map, labels, parallel simulation, the command."""

from __future__ import annotations

import numpy as np

from dustvae.io.store import read_store
from dustvae.sky.filaments import FilamentParams
from dustvae.sky.simulate import DustParams
import pytest

from dustvae.errors import DustvaeError
from dustvae.dataset import DatasetSpec, draw_params, regenerate_patches, simulate_patches

from conftest import assert_user_error, run_here


def test_each_model_draws_its_own_parameters():
    assert all(type(p) is DustParams for p in draw_params(DatasetSpec(n_maps=20, model="turbulence")))
    assert all(type(p) is FilamentParams for p in draw_params(DatasetSpec(n_maps=20, model="filaments")))
    mixed = [type(p) for p in draw_params(DatasetSpec(n_maps=40, model="mixed"))]
    assert 10 <= mixed.count(FilamentParams) <= 30  # equal odds: 20 +- 3 sigma
    # The turbulence maps of a turbulence dataset keep their parameters whatever other models exist.
    assert draw_params(DatasetSpec(n_maps=6, model="turbulence"))[:3] == draw_params(DatasetSpec(n_maps=3, model="turbulence"))


def test_worker_processes_do_not_change_the_patches():
    spec = DatasetSpec(n_maps=4, model="mixed", map_size=64, patch_size=32)
    one = simulate_patches(spec, progress=False, workers=1)
    two = simulate_patches(spec, progress=False, workers=2)
    np.testing.assert_array_equal(one.patches, two.patches)
    np.testing.assert_array_equal(one.map_index, two.map_index)
    assert one.labels.keys() == two.labels.keys()
    for name in one.labels:
        np.testing.assert_array_equal(one.labels[name], two.labels[name])


def test_make_dataset_command_records_model_and_labels(tmp_path):
    out = tmp_path / "data.h5"
    run_here("make-dataset", out, "--maps", 6, "--map-size", 64, "--patch-size", 32, "--model", "mixed",
            "--workers", 1, "--quiet", check=True)  # the real command, end to end
    store = read_store(out)
    assert store.attrs["sky_model"] == "mixed"
    is_filament = store.labels["filaments"] == 1
    assert is_filament.any() and (~is_filament).any()
    # Filament parameters exist for filament maps only; field parameters for every map.
    assert np.isnan(store.labels["axis_ratio"][~is_filament]).all()
    assert np.isfinite(store.labels["axis_ratio"][is_filament]).all()
    assert np.isfinite(store.labels["slope"]).all()
    for m in np.unique(store.map_index):  # no map straddles two splits
        assert np.unique(store.split[store.map_index == m]).size == 1
    # The patches behind any row can be simulated again, and their WST is the stored one.
    rows = [0, len(store) - 1, int(np.flatnonzero(is_filament)[-1])]
    again = regenerate_patches(store, rows)
    direct = simulate_patches(DatasetSpec(n_maps=6, map_size=64, patch_size=32, model="mixed"), progress=False, workers=1)
    np.testing.assert_array_equal(again, direct.patches[rows])
    from dustvae.wst.compute import compute_store
    from dustvae.io.patchfile import PatchSet
    recomputed = compute_store(PatchSet(again, direct.fields, direct.centers[rows], direct.center_frame,
                                        direct.masked_fraction[rows]), None, progress=False)
    np.testing.assert_allclose(recomputed.coeffs, store.coeffs[rows], atol=1e-5)
    tampered = store.subset(np.arange(len(store)))
    tampered.amplitude = tampered.amplitude * 1.01
    with pytest.raises(DustvaeError, match="amplitude"):
        regenerate_patches(tampered, rows[:1])
    assert_user_error(run_here("make-dataset", tmp_path / "x.h5", "--model", "clouds"), "model")
    assert_user_error(run_here("make-dataset", tmp_path / "y.h5", "--workers", 0), "workers")
