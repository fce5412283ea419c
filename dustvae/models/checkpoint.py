"""Checkpoints: plain tensors and Python values, written atomically, read with weights_only=True."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from .._version import __version__
from ..errors import DustvaeError
from ..io.atomic import write_bytes_atomic
from .vae import DilatedConvVAE

CHECKPOINT_FORMAT = "dustvae-checkpoint"


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "dustvae_version": __version__, **payload}
    buffer = io.BytesIO()  # serialised in memory, so that a full disk is one OSError, not a torch traceback
    torch.save(payload, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint as data (never code); one-line errors for missing or corrupt files."""
    path = Path(path)
    if not path.exists():
        raise DustvaeError(f"{path}: no such checkpoint; train one with `dustvae train`")
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).exists():
                return load_checkpoint(path / name, map_location)
        raise DustvaeError(f"{path}: run directory holds no best.pt or last.pt")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds on damaged or foreign files
        raise DustvaeError(f"{path}: not a readable dustvae checkpoint ({type(exc).__name__}); it is damaged or of another program") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DustvaeError(f"{path}: not a dustvae checkpoint")
    return payload


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[DilatedConvVAE, dict]:
    """The trained model (in eval mode) and its checkpoint payload."""
    payload = load_checkpoint(path, device)
    try:
        model = DilatedConvVAE(**payload["model_config"])
        model.load_state_dict(payload["model"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise DustvaeError(f"{path}: checkpoint does not hold a matching model ({exc.__class__.__name__}); it is damaged") from exc
    return model.to(device).eval(), payload
