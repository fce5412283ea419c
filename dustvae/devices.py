"""Which torch device a command runs on: the one device policy of the package."""

from __future__ import annotations

import torch

from .errors import DustvaeError


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DustvaeError("`device` cuda was asked for but no CUDA GPU is visible; use `device` cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise DustvaeError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)
