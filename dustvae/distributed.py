"""Several processes on one job with torch.distributed: which rank this is, the process group, collectives.

``torchrun`` (or ``srun`` with torchrun's variables) starts one process per
rank and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``LOCAL_WORLD_SIZE``; :func:`init_from_environment` joins the group they
describe, with NCCL when the work runs on CUDA GPUs (each local rank on its
own GPU, ``cuda:LOCAL_RANK``) and Gloo on CPUs. Outside torchrun, or with
one rank, nothing is initialised and every helper here acts as for a single
process, so the code that uses them has one path.

The collectives move plain numbers (sums of metrics, a row of validation
metrics); the model's gradients go through
:class:`torch.nn.parallel.DistributedDataParallel` and its BatchNorm
statistics through :class:`dustvae.models.batchnorm.GlobalBatchNorm1d`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist

from .errors import DustvaeError

#: How long a rank waits for the others at a collective before giving up (a rank that died, a wrong address).
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the job's ranks (rank 0 of 1 for a single process)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and shows progress."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        """More than one rank."""
        return self.world > 1


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DustvaeError(f"{name}={value!r} is not an integer; start the ranks with torchrun") from None


def launched_ranks(environ: Mapping[str, str] = os.environ) -> Ranks:
    """The ranks torchrun's variables describe (one rank when they are absent)."""
    world = _int(environ, "WORLD_SIZE", 1)
    rank, local = _int(environ, "RANK", 0), _int(environ, "LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise DustvaeError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} do not describe a rank; start the ranks with torchrun")
    return Ranks(rank, world, local)


def current() -> Ranks:
    """This process's ranks in the initialised group, or a single rank when there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), launched_ranks().local_rank)


def init_from_environment(device: torch.device) -> Ranks:
    """Join the process group torchrun describes (NCCL for CUDA work, else Gloo); a no-op for one rank.

    With CUDA, each rank's current device becomes ``cuda:LOCAL_RANK``, so
    that plain ``"cuda"`` tensors of every rank land on its own GPU.
    """
    ranks = launched_ranks()
    if not ranks.several or dist.is_initialized():
        return current()
    if not dist.is_available():
        raise DustvaeError("this torch build has no torch.distributed; run one process")
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise DustvaeError("WORLD_SIZE > 1 but no MASTER_ADDR/MASTER_PORT: start the ranks with torchrun")
    if device.type == "cuda":
        if ranks.local_rank >= torch.cuda.device_count():
            raise DustvaeError(f"local rank {ranks.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                               f"start at most that many ranks per node (--nproc-per-node)")
        torch.cuda.set_device(ranks.local_rank)
        dist.init_process_group("nccl", timeout=TIMEOUT, device_id=torch.device("cuda", ranks.local_rank))
    else:
        dist.init_process_group("gloo", timeout=TIMEOUT)
    return current()


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank's work: ``cuda:LOCAL_RANK`` for CUDA under several ranks, else ``device``."""
    ranks = current()
    if device.type == "cuda" and ranks.several:
        return torch.device("cuda", ranks.local_rank)
    return device


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """NCCL moves CUDA tensors only; Gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Element-wise sum over the ranks (float64); the values themselves for one rank."""
    array = np.asarray(values, dtype=np.float64)
    if not current().several:
        return array
    tensor = torch.from_numpy(array.copy()).to(_collective_device())
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable value); ``obj`` itself for one rank."""
    if not current().several:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every rank is here."""
    if current().several:
        dist.barrier()
