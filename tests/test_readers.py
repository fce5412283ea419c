"""The readers of stores, patch, latent, prior and checkpoint files against crafted files: one line, exit status 2.

Each test builds the crafted file in a temporary directory and runs the real
command (in this process, where only the exit status and message matter);
nothing is written, and no file of the user's is changed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dustvae.io import store as store_module
from dustvae.io.latents import LatentSet, write_latents
from dustvae.io.patchfile import PatchSet, write_patches
from dustvae.io.store import open_store, read_store
from dustvae.io.store_writer import write_store
from dustvae.models.checkpoint import load_checkpoint, save_checkpoint
from dustvae.models.train import ModelConfig, TrainConfig, train

from conftest import assert_user_error, run_here
from helpers import synthetic_store, write_synthetic_store


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny trained run (latent 8, two epochs) and the store it was trained on."""
    root = tmp_path_factory.mktemp("run")
    store = write_synthetic_store(root / "c.h5")
    train(read_store(store), root / "run", TrainConfig(ModelConfig(8), epochs=2, batch_size=32), device="cpu", progress=False)
    return root / "run"


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _crafted(tmp_path: Path, edit, name: str = "crafted.h5", **store_kwargs) -> Path:
    """A synthetic store written normally, then changed by ``edit(h5)``."""
    path = write_synthetic_store(tmp_path / name, **store_kwargs)
    with h5py.File(path, "r+") as h5:
        edit(h5)
    return path


def _replace(name: str, data):
    def edit(h5):
        del h5[name]
        h5[name] = data
    return edit


def _external_storage(h5):
    raw = Path(h5.filename).with_name("elsewhere.bin")
    np.ones((96, 1360), np.float32).tofile(raw)
    del h5["coeffs"]
    h5.create_dataset("coeffs", shape=(96, 1360), dtype="f4", external=[(str(raw), 0, raw.stat().st_size)])


def _other_file(h5) -> str:
    other = Path(h5.filename).with_name("elsewhere.h5")
    with h5py.File(other, "w") as o:
        o["coeffs"] = np.ones((96, 1360), np.float32)
    return str(other)


def _external_link(h5):
    other = _other_file(h5)
    del h5["coeffs"]
    h5["coeffs"] = h5py.ExternalLink(other, "/coeffs")


def _virtual(h5):
    layout = h5py.VirtualLayout(shape=(96, 1360), dtype="f4")
    layout[...] = h5py.VirtualSource(_other_file(h5), "coeffs", shape=(96, 1360))
    del h5["coeffs"]
    h5.create_virtual_dataset("coeffs", layout)


def _soft_link(h5):
    h5["vectors"] = h5["coeffs"][...]
    del h5["coeffs"]
    h5["coeffs"] = h5py.SoftLink("/vectors")


def _label_link(h5):  # a link deeper in the file, where the reader does not look by name
    h5["labels/elsewhere"] = h5py.ExternalLink(_other_file(h5), "/coeffs")


@pytest.mark.parametrize("edit, fragment", [
    (_external_storage, "keeps its data in another file"),
    (_external_link, "is a link to"),
    (_virtual, "virtual dataset"),
    (_soft_link, "soft link"),
    (_label_link, "labels/elsewhere is a link"),
])
def test_a_store_that_reads_other_files_is_refused(tmp_path, run, edit, fragment):
    store = _crafted(tmp_path, edit)
    before = _snapshot(tmp_path)
    assert_user_error(run_here("encode", run, store, "-o", tmp_path / "z.h5"), fragment, "inside the file")
    assert _snapshot(tmp_path) == before


def _patch_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_patches(path, PatchSet(patches=rng.normal(size=(4, 2, 32, 32)).astype(np.float32), fields=("Q", "U"),
                                        centers=np.zeros((4, 2)), center_frame="pixel",
                                        masked_fraction=np.zeros(4, np.float32)))


def test_patch_and_latent_files_that_read_other_files_are_refused(tmp_path, run):
    patches = _patch_file(tmp_path / "p.h5")
    with h5py.File(patches, "r+") as h5:
        h5["labels/x"] = h5py.ExternalLink(_other_file(h5), "/coeffs")
    before = _snapshot(tmp_path)
    proc = run_here("compute-wst", patches, "-o", tmp_path / "c.h5", "--quiet", "--device", "cpu")
    assert_user_error(proc, "labels/x is a link to", "inside the file")

    latents = write_latents(tmp_path / "z.h5", LatentSet(np.zeros((3, 8)), np.zeros((3, 8)), {"model": "vae-8"}))
    with h5py.File(latents, "r+") as h5:
        layout = h5py.VirtualLayout(shape=(3, 8), dtype="f4")
        layout[...] = h5py.VirtualSource(_other_file(h5), "coeffs", shape=(96, 1360))[:3, :8]
        del h5["mean"]
        h5.create_virtual_dataset("mean", layout)
    before = _snapshot(tmp_path)
    proc = run_here("synthesize", "--model", run, "--latent-file", latents, "-o", tmp_path / "s.fits", "--quiet")
    assert_user_error(proc, "virtual dataset")
    assert _snapshot(tmp_path) == before


def _unwritten_store(path: Path, n: int) -> Path:
    """A store whose row datasets declare ``n`` rows that were never written: a few KiB that ask for gigabytes."""
    like = tmp = write_synthetic_store(path.with_name("like.h5"), split=False)
    with h5py.File(like, "r") as src, h5py.File(path, "w") as h5:
        h5.attrs.update(dict(src.attrs))
        for name in store_module.ROW_DATASETS:
            shape = (n,) + src[name].shape[1:]
            h5.create_dataset(name, shape=shape, dtype=src[name].dtype, chunks=(256,) + shape[1:], compression="gzip",
                              fillvalue=1 if name == "amplitude" else 0)
        h5["theta"] = src["theta"][...]
        h5.create_group("labels")
    tmp.unlink()
    return path


@pytest.mark.parametrize("rows", [400_000, 10_000_000])
def test_a_store_declaring_rows_it_does_not_hold_is_refused_at_once(tmp_path, run, rows):
    store = _unwritten_store(tmp_path / "crafted.h5", rows)
    assert store.stat().st_size < 200_000
    before = _snapshot(tmp_path)
    for command in (["encode", run, store, "-o", tmp_path / "z.h5"],
                    ["train", store, "--latent", 8, "-o", tmp_path / "r", "--quiet"],
                    ["evaluate", store, "-o", tmp_path / "r.json", "--baselines", "rwst1"]):
        assert_user_error(run_here(*command), "stores only part of its data")
    assert _snapshot(tmp_path) == before


def test_commands_read_stores_in_row_blocks(tmp_path, monkeypatch, run):
    """encode and reconstruct hold one block of vectors at a time (only one-number-per-row datasets whole); evaluate reads what it uses."""
    from dustvae.cli import main

    store = write_synthetic_store(tmp_path / "c.h5", n=96)
    monkeypatch.setattr(store_module, "BLOCK_ROWS", 16)
    asked: list[tuple[str, int]] = []
    real_read = store_module.StoreReader.read

    def read(self, name, rows=slice(None)):
        out = real_read(self, name, rows)
        asked.append((name, len(out)))
        return out

    monkeypatch.setattr(store_module.StoreReader, "read", read)
    for command in ("encode", "reconstruct"):
        asked.clear()
        assert main([command, str(run), str(store), "-o", str(tmp_path / f"{command}.h5")]) == 0
        assert asked and max(n for name, n in asked if name in ("coeffs", "s1", "s2")) <= 16, (command, asked)
    asked.clear()
    assert main(["evaluate", str(store), "--model", str(run), "--baselines", "rwst1", "-o", str(tmp_path / "r.json")]) == 0
    assert {name for name, _ in asked} == {"coeffs", "map_index"} and max(n for _, n in asked) <= 16
    # the streamed outputs are those of the in-memory functions
    back = read_store(tmp_path / "reconstruct.h5")
    from dustvae.models.apply import reconstruct_store
    from dustvae.models.checkpoint import load_model

    model, payload = load_model(run)
    expected = reconstruct_store(model, payload, synthetic_store(n=96), "c.h5")
    np.testing.assert_allclose(back.coeffs, expected.coeffs, atol=1e-6)
    np.testing.assert_array_equal(back.amplitude, expected.amplitude)


def test_a_partly_loaded_store_keeps_the_files_fingerprint(tmp_path):
    path = write_synthetic_store(tmp_path / "c.h5")
    whole = read_store(path)
    part = read_store(path, columns=("coeffs",), splits=("train", "validation"))
    assert part.s1 is None and len(part) == int((whole.split != 2).sum())
    assert part.fingerprint() == whole.fingerprint()
    np.testing.assert_array_equal(part.coeffs, whole.coeffs[whole.split != 2])


n = 96
F32 = np.float32


@pytest.mark.parametrize("edit, fragment", [
    (lambda h5: h5.attrs.__setitem__("format_version", "abc"), "format_version is 'abc'"),
    (lambda h5: h5.attrs.__setitem__("vector_length", "abc"), "vector_length is 'abc'"),
    (lambda h5: h5.attrs.__setitem__("J", -1), "must be positive"),
    (_replace("coeffs", np.full((n, 1360), b"x", dtype="S1")), "coeffs holds byte strings"),
    (_replace("coeffs", np.zeros((n, 1360), np.complex64)), "coeffs holds complex numbers"),
    (lambda h5: (h5.__delitem__("s0"), h5.create_group("s0")), "s0 is a group"),
    (lambda h5: h5["labels"].create_group("inner"), "labels/inner is a group"),
    (_replace("labels/slope", np.ones(n - 5)), "labels/slope has shape (91,)"),
    (_replace("labels/slope", np.ones((n, 2))), "labels/slope has shape (96, 2)"),
    (_replace("s1", np.zeros((n, 3), F32)), "s1 has shape"),
    (_replace("s2", np.zeros((n, 2, 639), F32)), "s2 has shape"),
    (_replace("theta", np.zeros(3)), "theta has shape"),
    (_replace("amplitude", -np.ones(n)), "amplitude of row 0 is -1.0"),
    (_replace("amplitude", np.r_[np.ones(n - 1), np.inf]), "amplitude of row 95 is inf"),
    (_replace("split", np.full(n, 7, np.int8)), "split of row 0 is 7"),
    (_replace("split", np.zeros(n - 1, np.int8)), "split has shape (95,)"),
    (_replace("split", np.zeros(n, np.float32)), "split holds real floats"),
    (_replace("map_index", np.zeros(n + 1, np.int64)), "different numbers of rows"),
])
@pytest.mark.parametrize("command", ["encode", "train", "evaluate"])
def test_a_damaged_store_is_one_line(tmp_path, run, edit, fragment, command):
    store = _crafted(tmp_path, edit)
    before = _snapshot(tmp_path)
    args = {"encode": ["encode", run, store, "-o", tmp_path / "z.h5"],
            "train": ["train", store, "--latent", 8, "-o", tmp_path / "r", "--epochs", 1, "--quiet"],
            "evaluate": ["evaluate", store, "-o", tmp_path / "r.json", "--baselines", "rwst1"]}[command]
    assert_user_error(run_here(*args), fragment)
    assert _snapshot(tmp_path) == before


def test_unknown_amplitudes_are_accepted(tmp_path):
    store = synthetic_store()
    store.amplitude[:5] = np.nan  # what a sampled store holds: the amplitude a model cannot know
    back = read_store(write_store(tmp_path / "c.h5", store))
    assert np.isnan(back.amplitude[:5]).all()


def _rezip(src: Path, dst: Path, compression: int) -> Path:
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", compression) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
    return dst


def test_a_checkpoint_holding_more_than_its_model_is_refused(tmp_path, run):
    payload = load_checkpoint(run / "best.pt")
    store = write_synthetic_store(tmp_path / "c.h5")
    # an extra 30M-element zero tensor, deflated: 120 MB inflated from a few hundred KiB
    big = tmp_path / "big.pt"
    torch.save({**payload, "extra": torch.zeros(30_000_000)}, big)
    deflated = _rezip(big, tmp_path / "deflated.pt", zipfile.ZIP_DEFLATED)
    big.unlink()
    assert deflated.stat().st_size < 10_000_000
    before = _snapshot(tmp_path)
    assert_user_error(run_here("encode", deflated, store, "-o", tmp_path / "z.h5"), "is compressed")
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed
    # the same stored plainly: more tensor data than weights and optimizer state take
    save_checkpoint(tmp_path / "extra.pt", {**payload, "extra": torch.zeros(3_000_000)})
    before = _snapshot(tmp_path)
    assert_user_error(run_here("encode", tmp_path / "extra.pt", store, "-o", tmp_path / "z.h5"), "extra")
    assert _snapshot(tmp_path) == before
    # weights that are not the model's: an extra tensor, a tensor of another shape
    model = dict(payload["model"])
    save_checkpoint(tmp_path / "names.pt", {**payload, "model": {**model, "head.extra": torch.zeros(3)}})
    assert_user_error(run_here("encode", tmp_path / "names.pt", store, "-o", tmp_path / "z.h5"), "extra entry head.extra")
    save_checkpoint(tmp_path / "shape.pt", {**payload, "model": {**model, "head.bias": torch.zeros(3)}})
    assert_user_error(run_here("sample", tmp_path / "shape.pt", "-o", tmp_path / "s.h5"), "head.bias of shape (3,)")
    save_checkpoint(tmp_path / "config.pt", {**payload, "model_config": {**payload["model_config"], "latent_dim": 10**9}})
    assert_user_error(run_here("sample", tmp_path / "config.pt", "-o", tmp_path / "s.h5"), "model_config")
    assert not (tmp_path / "z.h5").exists() and not (tmp_path / "s.h5").exists()


def test_a_compressed_prior_file_is_refused(tmp_path, run):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, format=np.array("dustvae-latent-prior"), weights=np.ones(1), means=np.zeros((1, 8)),
                        covariances=np.eye(8)[None], meta=np.array("{}"))
    (copy / "best.prior.npz").write_bytes(buffer.getvalue())
    before = _snapshot(tmp_path)
    proc = run_here("sample", copy, "--prior", "fitted", "-o", tmp_path / "s.h5")
    assert_user_error(proc, "is compressed", "not a dustvae latent prior")
    assert _snapshot(tmp_path) == before


def test_a_run_whose_best_pt_is_a_directory_says_so(tmp_path):
    store = write_synthetic_store(tmp_path / "c.h5")
    (tmp_path / "run" / "best.pt").mkdir(parents=True)
    proc = run_here("encode", tmp_path / "run", store, "-o", tmp_path / "z.h5")
    assert_user_error(proc, "best.pt: is a directory, not a checkpoint")


def test_the_reader_is_closed_after_validation_fails(tmp_path):
    store = _crafted(tmp_path, _replace("split", np.full(96, 9, np.int8)))
    with pytest.raises(Exception, match="split of row 0 is 9"):
        open_store(store)
    with h5py.File(store, "r+"):  # no handle of the failed open keeps the file locked
        pass
