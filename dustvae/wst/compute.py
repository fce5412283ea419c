"""Patches to a coefficient store, resumably.

Each finished batch is saved atomically as its own small file in a hidden
work folder beside the output (``.OUT.h5.partial/``). A run that is
interrupted (Ctrl-C or killed outright) leaves no output file; the same
command run again reuses the finished batches and writes a store identical
to an uninterrupted run. The work folder is removed once the store is
written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import defaults
from .._version import __version__
from ..errors import DustvaeError
from ..io.atomic import atomic_path
from ..io.patchfile import PatchSet
from ..io.store import CoefficientStore
from ..io.store_writer import write_store
from .layout import NORMALISATION, CoefficientLayout
from ..devices import resolve_device
from .transform import auto_batch_size, check_transform, normalise, prepare, scattering_means



def work_dir_for(output: Path) -> Path:
    """The hidden folder where finished batches of ``output`` are kept."""
    return output.with_name(f".{output.name}.partial")


def _fingerprint(patch_set: PatchSet, config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(patch_set.patches).tobytes())
    return digest.hexdigest()


def _save_atomic(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _load_part(path: Path, rows: int) -> tuple[np.ndarray, ...] | None:
    """A finished batch (s0, s1, s2, amp), or None when the file is unreadable or of another size (then redone)."""
    try:
        with np.load(path) as saved:
            arrays = tuple(saved[k] for k in ("s0", "s1", "s2", "amp"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return arrays if all(len(a) == rows for a in arrays) else None


def _pending_batches(done: np.ndarray, batch: int):
    """``(start, stop)`` batches of at most ``batch`` rows covering the rows not ``done``, in order."""
    edges = np.flatnonzero(np.diff(np.concatenate([[1], done.astype(np.int8), [1]])))
    for first, last in zip(edges[::2], edges[1::2]):  # each run of pending rows
        for start in range(int(first), int(last), batch):
            yield start, min(start + batch, int(last))


def compute_store(
    patch_set: PatchSet,
    output: str | Path | None = None,
    *,
    J: int = defaults.J,
    L: int = defaults.L,
    boundary: str = defaults.BOUNDARY,
    device: str = "auto",
    batch_size: int | None = None,
    progress: bool = True,
    extra_attrs: dict | None = None,
    split: np.ndarray | None = None,
    engine: str = defaults.ENGINE,
) -> CoefficientStore:
    """Compute the WST of every patch and (when ``output`` is given) write the store.

    Parameters
    ----------
    patch_set : PatchSet
        Patches with NaN where masked.
    output : path, optional
        Store to write; when given, finished batches are kept in a work
        folder so that an interrupted run resumes.
    J, L, boundary, device, batch_size, engine
        Transform settings (see :func:`~dustvae.wst.transform.means_operator`);
        ``batch_size=None`` picks one that fits memory.
    progress : bool
        Show a progress bar with patches per second.
    extra_attrs : dict, optional
        More provenance attributes for the store.
    split : array of int8, optional
        Train/validation/test assignment to store with the coefficients.

    Returns
    -------
    CoefficientStore
    """
    from kymatio import __version__ as kymatio_version

    fields = tuple(patch_set.fields)
    layout = CoefficientLayout(fields=fields, J=J, L=L)
    torch_device = resolve_device(device)
    check_transform(patch_set.patch_size, J, L, boundary, engine)
    n = len(patch_set)
    if n == 0:
        raise DustvaeError("no patches to transform; check the patch options (`b_min`, `max_masked`)")
    batch = int(batch_size if batch_size is not None else
                auto_batch_size(patch_set.patch_size, len(fields), J, torch_device, engine, L, boundary))
    if batch < 1:
        raise DustvaeError(f"batch size {batch} must be positive")
    # The batch size is not part of the work's identity: it may be chosen from free (GPU) memory, and a
    # resumed run keeps every finished row whatever batches it then uses.
    config = {"J": J, "L": L, "fields": list(fields), "boundary": boundary, "engine": engine, "n": n,
              "size": patch_set.patch_size, "version": __version__}
    work = None
    if output is not None:
        output = Path(output)
        work = work_dir_for(output)
        stamp = _fingerprint(patch_set, config)
        stamp_file = work / "fingerprint"
        if work.exists() and (not stamp_file.exists() or stamp_file.read_text() != stamp):
            shutil.rmtree(work)  # finished batches of other inputs or settings: not ours to reuse
        work.mkdir(parents=True, exist_ok=True)
        with atomic_path(stamp_file) as tmp:
            tmp.write_text(stamp)

    s0 = np.empty((n, len(fields)), np.float32)
    s1 = np.empty((n, len(fields), layout.n_s1), np.float32)
    s2 = np.empty((n, len(fields), layout.n_s2), np.float32)
    amp = np.empty(n, np.float64)
    bar = tqdm(total=n, unit="patch", desc="WST", disable=not progress, smoothing=0.1)
    done = np.zeros(n, bool)
    for part in sorted(work.glob("rows_*.npz")) if work is not None else ():
        start, stop = (int(v) for v in part.stem.split("_")[1:3])
        saved = _load_part(part, stop - start) if 0 <= start < stop <= n else None
        if saved is None:  # unreadable or foreign: those rows are computed again
            part.unlink(missing_ok=True)
            continue
        s0[start:stop], s1[start:stop], s2[start:stop], amp[start:stop] = saved
        done[start:stop] = True
    resumed = int(done.sum())
    bar.update(resumed)
    for start, stop in _pending_batches(done, batch):
        x, amp[start:stop] = prepare(patch_set.patches[start:stop], fields)
        means = scattering_means(x, J, L, boundary, torch_device, engine)
        s0[start:stop], s1[start:stop], s2[start:stop] = means.s0, means.s1, means.s2
        if work is not None:
            _save_atomic(work / f"rows_{start:09d}_{stop:09d}.npz", s0=s0[start:stop], s1=s1[start:stop],
                         s2=s2[start:stop], amp=amp[start:stop])
        bar.update(stop - start)
    bar.close()
    if resumed and progress:
        tqdm.write(f"resumed: {resumed} of {n} patches were already done", file=sys.stderr)

    coeffs = normalise(s1.astype(np.float64), s2.astype(np.float64), layout)
    if not np.isfinite(coeffs).all():
        rows = np.flatnonzero(~np.isfinite(coeffs).all(axis=1))
        if work is not None:  # the same inputs would fail the same way: keep nothing of this run
            shutil.rmtree(work, ignore_errors=True)
        raise DustvaeError(f"{rows.size} patch(es) gave zero scattering coefficients, whose log is undefined (first: patch "
                           f"{int(rows[0])}): a field is constant over the patch; transform only the fields that vary "
                           f"(`fields`) or cut patches elsewhere")
    attrs = {
        **layout.to_attrs(),
        "boundary": boundary,
        "wst_engine": engine,
        "normalisation": NORMALISATION,
        "patch_size": patch_set.patch_size,
        "pixel_scale_arcmin": float(patch_set.pixel_scale_arcmin),
        "center_frame": patch_set.center_frame,
        "n_dropped": int(patch_set.n_dropped),
        "source_name": patch_set.source_name,
        "source_sha256": patch_set.source_sha256,
        "dustvae_version": __version__,
        "kymatio_version": kymatio_version,
        **(extra_attrs or {}),
    }
    store = CoefficientStore(
        coeffs=coeffs, s0=s0, s1=s1, s2=s2, amplitude=amp, centers=patch_set.centers,
        masked_fraction=patch_set.masked_fraction, map_index=patch_set.map_index,
        theta=layout.angles, attrs=attrs, labels=dict(patch_set.labels), split=split,
    )
    if output is not None:
        write_store(output, store)
        shutil.rmtree(work, ignore_errors=True)
    return store
