"""Checkpoints: plain tensors and Python values, written atomically, read with weights_only=True.

A checkpoint is checked before any tensor data are read: ``torch.save``
writes an uncompressed zip, so a compressed entry (whose inflated size the
file does not bound) is refused; the tensors are then memory-mapped
(``torch.load(mmap=True)``), and the model's weights must have exactly the
names, shapes and dtypes of the model its ``model_config`` describes (built
on the ``meta`` device, which allocates nothing), with no more tensor data
beside them than an optimizer state and generator states take.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import torch

from .._version import __version__
from ..errors import DustvaeError
from ..io.archive import check_stored_zip
from ..io.atomic import write_bytes_atomic
from ..memory import format_bytes
from .vae import DilatedConvVAE

CHECKPOINT_FORMAT = "dustvae-checkpoint"
#: Tensor data a checkpoint may hold beside the model's weights: Adam's two moments per weight, plus this
#: for the generator states (a few KiB each) and the optimizer's step counters.
_EXTRA_TENSOR_BYTES = 1 << 20


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "dustvae_version": __version__, **payload}
    buffer = io.BytesIO()  # serialised in memory, so that a full disk is one OSError, not a torch traceback
    torch.save(payload, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint as data (never code), checked (see the module docstring); one-line errors otherwise.

    A run directory stands for its ``best.pt`` (``last.pt`` without one).
    Tensors are memory-mapped from the file on the CPU (``map_location`` is
    kept for callers; :func:`load_model` moves the model to its device).
    """
    path = Path(path)
    if not path.exists():
        raise DustvaeError(f"{path}: no such checkpoint; train one with `dustvae train`")
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_dir():
                raise DustvaeError(f"{path / name}: is a directory, not a checkpoint; give a run directory whose "
                                   f"{name} is the file `dustvae train` wrote")
            if (path / name).exists():
                return load_checkpoint(path / name, map_location)
        raise DustvaeError(f"{path}: run directory holds no best.pt or last.pt")
    check_stored_zip(path, "dustvae checkpoint", "it is damaged or of another program")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many kinds on damaged or foreign files
        raise DustvaeError(f"{path}: not a readable dustvae checkpoint ({type(exc).__name__}); "
                           "it is damaged or of another program") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DustvaeError(f"{path}: not a dustvae checkpoint")
    _check_tensors(payload, path)
    return payload


def _tensors(value, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in a payload, with where it is (``model/head.weight``, ``optimizer/state/0/exp_avg``)."""
    if isinstance(value, torch.Tensor):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{where}/{key}".lstrip("/"))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}/{index}".lstrip("/"))


def _check_tensors(payload: dict, path: Path) -> None:
    """The model's weights are those of the model ``model_config`` describes, and little else is there."""
    config, state = payload.get("model_config"), payload.get("model")
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise DustvaeError(f"{path}: checkpoint lacks its model or model_config; it is damaged")
    try:
        with torch.device("meta"):  # shapes and dtypes without allocating a weight
            expected = DilatedConvVAE(**config).state_dict()
    except (DustvaeError, TypeError, ValueError) as exc:
        raise DustvaeError(f"{path}: model_config {config} does not describe a model this dustvae builds "
                           f"({exc}); it is damaged or of another version") from exc
    problem = next((f"no tensor {k}" for k in expected if k not in state), None)
    problem = problem or next((f"an extra entry {k}" for k in state if k not in expected), None)
    problem = problem or next((f"{k} of shape {tuple(state[k].shape)} and {state[k].dtype} where "
                               f"{tuple(v.shape)} and {v.dtype} are needed"
                               for k, v in expected.items()
                               if not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape
                               or state[k].dtype != v.dtype), None)
    if problem:
        raise DustvaeError(f"{path}: its weights are not those of the model it describes ({problem}); "
                           f"it is damaged or not a dustvae checkpoint")
    weights = sum(v.numel() * v.element_size() for v in expected.values())
    storages: dict[int, tuple[str, int]] = {}
    for where, tensor in _tensors(payload):
        storage = tensor.untyped_storage()  # a view's whole storage is what the file holds
        storages.setdefault(storage.data_ptr(), (where, storage.nbytes()))
    held = sum(nbytes for _, nbytes in storages.values())
    allowed = 3 * weights + _EXTRA_TENSOR_BYTES
    if held > allowed:
        where, nbytes = max(storages.values(), key=lambda item: item[1])
        raise DustvaeError(f"{path}: holds {format_bytes(held)} of tensors where the model's weights and optimizer "
                           f"state take at most {format_bytes(allowed)} (the largest: {where}, {format_bytes(nbytes)}); "
                           f"it is not a dustvae checkpoint")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[DilatedConvVAE, dict]:
    """The trained model (in eval mode) and its checkpoint payload."""
    payload = load_checkpoint(path)
    try:
        model = DilatedConvVAE(**payload["model_config"])
        model.load_state_dict(payload["model"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise DustvaeError(f"{path}: checkpoint does not hold a matching model ({exc.__class__.__name__}); it is damaged") from exc
    return model.to(device).eval(), payload
