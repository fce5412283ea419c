"""Data parallelism for training: the module each rank runs, and its share of a global batch.

Every rank draws the whole global batch's randomness, as one process would,
and takes its contiguous slice (:func:`_rank_slice`), so that a run on any
number of ranks follows the same sequence of random draws.
"""

from __future__ import annotations

import torch

from .. import distributed
from .vae import DilatedConvVAE


def _data_parallel(model: DilatedConvVAE, device: torch.device, ranks: distributed.Ranks) -> torch.nn.Module:
    """The module the training steps run: ``model`` itself, or under several ranks its DistributedDataParallel.

    The BatchNorm layers then normalise by the global batch's statistics
    (:mod:`dustvae.models.batchnorm`); they update their running statistics
    identically on every rank, so DistributedDataParallel need not sync
    buffers before each forward pass.
    """
    if not ranks.several:
        return model
    from torch.nn.parallel import DistributedDataParallel

    from .batchnorm import globalise_batchnorm

    globalise_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None, forward_sync_buffers=False)


def _rank_slice(n: int, ranks: distributed.Ranks) -> slice:
    """This rank's contiguous share of a global batch of ``n`` rows (the shares differ by at most one row)."""
    return slice(ranks.rank * n // ranks.world, (ranks.rank + 1) * n // ranks.world)
