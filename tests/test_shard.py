"""Sharded WST for job arrays: the merged parts are the store an unsharded run writes; wrong sets are refused.

Everything but the transform's outputs is identical to the bit; those agree to float32
rounding, as a patch's coefficients do whatever batch it is computed in (test_engine.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dustvae.errors import DustvaeError
from dustvae.wst.shard import Shard, shard_from_environment

from conftest import assert_user_error, run_here, run_torchrun
from helpers import assert_same_store


def test_shard_spans_tile_the_work():
    for total in (1, 7, 16, 801):
        for count in (1, 2, 3, 5):
            spans = [Shard(k, count).span(total) for k in range(count)]
            assert spans[0][0] == 0 and spans[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert Shard.parse(" 2/5 ") == Shard(2, 5)
    for text in ("5/5", "-1/3", "a/b", "3"):
        with pytest.raises(DustvaeError, match="shard"):
            Shard.parse(text)


def test_slurm_array_gives_the_shard():
    env = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "3"}
    assert shard_from_environment(env) == Shard(1, 3)
    assert shard_from_environment({}) is None
    with pytest.raises(DustvaeError, match="step"):
        shard_from_environment({**env, "SLURM_ARRAY_TASK_STEP": "2"})


@pytest.fixture(scope="module")
def parts(tmp_path_factory, flat_file):
    """An unsharded compute-wst of 16 patches and its three shards (the middle one from SLURM's variables)."""
    root = tmp_path_factory.mktemp("shards")
    full = root / "full.h5"
    run_here("compute-wst", flat_file, "--patch-size", 32, "-o", full, "--quiet", check=True)
    paths = []
    for k in range(3):
        out = root / f"part{k}.h5"
        if k == 1:
            env = dict(os.environ, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_COUNT="3")
            proc = subprocess.run([sys.executable, "-m", "dustvae", "compute-wst", str(flat_file), "--patch-size", "32",
                                   "-o", str(out), "--quiet"], capture_output=True, text=True, env=env, timeout=300)
            assert proc.returncode == 0, proc.stderr
            assert "shard 1/3" in proc.stdout
        else:
            run_here("compute-wst", flat_file, "--patch-size", 32, "-o", out, "--shard", f"{k}/3", "--quiet", check=True)
        paths.append(out)
    return full, paths


def test_merged_shards_equal_the_unsharded_store(parts, tmp_path):
    full, paths = parts
    merged = tmp_path / "merged.h5"
    run_here("merge", paths[2], paths[0], paths[1], "-o", merged, check=True)  # any order
    assert_same_store(merged, full, rounding=True)


@pytest.mark.slow
def test_torchrun_ranks_split_the_work_and_rank_0_merges(parts, tmp_path, flat_file):
    full, _ = parts
    out = tmp_path / "ranked.h5"
    proc = run_torchrun("compute-wst", flat_file, "--patch-size", 32, "-o", out, "--quiet", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1 and "on 2 ranks" in proc.stdout
    assert_same_store(out, full, rounding=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranked.h5"]  # the ranks' parts are gone


def test_wrong_sets_of_parts_are_refused(parts, tmp_path, flat_file):
    full, paths = parts
    out = tmp_path / "m.h5"
    assert_user_error(run_here("merge", paths[0], paths[2], "-o", out), "shard 1/3 is missing")
    assert_user_error(run_here("merge", paths[0], paths[1], paths[1], paths[2], "-o", out), "more than once")
    assert_user_error(run_here("merge", paths[0], full, "-o", out), "not a shard store")
    other = tmp_path / "other1.h5"  # a shard of another run: the same input, other settings
    run_here("compute-wst", flat_file, "--patch-size", 32, "--L", 4, "-o", other, "--shard", "1/3", "--quiet", check=True)
    assert_user_error(run_here("merge", paths[0], other, paths[2], "-o", out), "not parts of one run")
    assert not out.exists()
    assert_user_error(run_here("compute-wst", flat_file, "--patch-size", 32, "-o", out, "--shard", "3/3"), "0 <= K < N")


@pytest.mark.slow
def test_make_dataset_shards_merge_to_the_whole_dataset(tmp_path):
    args = ("--maps", 6, "--map-size", 64, "--patch-size", 32, "--model", "mixed", "--workers", 1, "--quiet")
    full = tmp_path / "full.h5"
    run_here("make-dataset", full, *args, check=True)
    paths = [tmp_path / f"d{k}.h5" for k in range(2)]
    for k, path in enumerate(paths):
        proc = run_here("make-dataset", path, *args, "--shard", f"{k}/2", check=True)
        assert f"shard {k}/2: maps {3 * k}-{3 * k + 2} of 6" in proc.stdout
    merged = tmp_path / "merged.h5"
    run_here("merge", *paths, "-o", merged, check=True)
    assert_same_store(merged, full, rounding=True)
    # Two torchrun ranks split the maps the same way and rank 0 merges.
    ranked = tmp_path / "ranked.h5"
    proc = run_torchrun("make-dataset", ranked, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote") == 1 and "on 2 ranks" in proc.stdout
    assert_same_store(ranked, full, rounding=True)
    assert not list(tmp_path.glob(".ranked.h5*"))  # the ranks' parts are gone
