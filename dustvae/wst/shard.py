"""One run's WST work split into shards (SLURM job arrays, several machines) and the parts merged back.

A shard ``K/N`` (K from 0) takes the K-th of N contiguous, nearly equal
spans of the run's work: patches for ``compute-wst``, maps for
``make-dataset`` (so that each shard simulates only its own maps). Each
shard writes an ordinary store whose attributes say which span it holds;
:func:`merge_stores` checks that a set of parts belongs together (the same
inputs, settings and versions; every span once, no gap or overlap) and
joins them, in span order, into exactly the store an unsharded run writes.

Under SLURM a job array gives the shard without ``--shard``: task
``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` of ``SLURM_ARRAY_TASK_COUNT``
(:func:`shard_from_environment`). Under torchrun, one command splits the
same way across its ranks and rank 0 merges (:func:`compute_on_ranks`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from .. import distributed
from ..errors import DustvaeError
from ..io.store import CoefficientStore, read_store
from ..io.store_writer import write_store

#: Store attributes that describe the shard; every other attribute must agree between parts.
SHARD_KEYS = ("shard_index", "shard_count", "shard_unit", "shard_start", "shard_stop", "shard_total")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise DustvaeError(f"shard {self.index}/{self.count}: need 0 <= K < N (e.g. `shard` 0/4 for the first of four)")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"K/N"`` -> Shard(K, N); one-line errors otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if match is None:
            raise DustvaeError(f"`shard` {text!r}: write K/N, the K-th (from 0) of N shards, e.g. 0/4")
        return cls(int(match[1]), int(match[2]))

    def span(self, total: int) -> tuple[int, int]:
        """The ``[start, stop)`` of ``total`` units this shard takes (the spans of all shards tile ``range(total)``)."""
        return self.index * total // self.count, (self.index + 1) * total // self.count

    def attrs(self, unit: str, total: int) -> dict:
        """The store attributes that record this shard's span of ``total`` ``unit``."""
        start, stop = self.span(total)
        return {"shard_index": self.index, "shard_count": self.count, "shard_unit": unit,
                "shard_start": start, "shard_stop": stop, "shard_total": total}

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_from_environment(environ: Mapping[str, str] = os.environ) -> Shard | None:
    """The shard of a SLURM array task, or None outside one."""
    if "SLURM_ARRAY_TASK_ID" not in environ or "SLURM_ARRAY_TASK_COUNT" not in environ:
        return None
    try:
        task, count = int(environ["SLURM_ARRAY_TASK_ID"]), int(environ["SLURM_ARRAY_TASK_COUNT"])
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
    except ValueError:
        raise DustvaeError("SLURM_ARRAY_TASK_ID/COUNT/MIN are not integers; pass `shard` K/N instead") from None
    if count > 1 and environ.get("SLURM_ARRAY_TASK_STEP", "1") != "1":
        raise DustvaeError("the job array has a step other than 1 (--array=a-b:s); pass `shard` K/N explicitly")
    return Shard(task - first, count)


def resolve_shard(text: str | None, environ: Mapping[str, str] = os.environ) -> Shard | None:
    """``--shard`` when given, else the SLURM array task's shard, else None (one process does everything)."""
    return Shard.parse(text) if text else shard_from_environment(environ)


def _comparable(value):
    return value.tolist() if isinstance(value, np.ndarray) else value


def merge_stores(parts: Sequence[CoefficientStore], names: Sequence[str] | None = None) -> CoefficientStore:
    """Join the shard stores of one run into the store an unsharded run writes.

    Parameters
    ----------
    parts : sequence of CoefficientStore
        Every shard of the run, in any order.
    names : sequence of str, optional
        How to name the parts in error messages (their paths).

    Raises
    ------
    DustvaeError
        When a part is not a shard, the parts come from different runs
        (inputs, settings, versions), or a shard is missing or repeated.
    """
    names = list(names) if names is not None else [f"part {k}" for k in range(len(parts))]
    if not parts:
        raise DustvaeError("no parts to merge")
    for part, name in zip(parts, names):
        missing = [k for k in SHARD_KEYS if k not in part.attrs]
        if missing:
            raise DustvaeError(f"{name}: not a shard store (no {missing[0]}); write parts with `shard` K/N")
    first, first_name = parts[0], names[0]
    common = {k: v for k, v in first.attrs.items() if k not in SHARD_KEYS}
    for part, name in zip(parts[1:], names[1:]):
        for key in sorted(set(common) | {k for k in part.attrs if k not in SHARD_KEYS}):
            if _comparable(part.attrs.get(key)) != _comparable(common.get(key)):
                raise DustvaeError(f"{name} and {first_name} differ in {key!r}: they are not parts of one run")
        for key in ("shard_count", "shard_unit", "shard_total"):
            if part.attrs[key] != first.attrs[key]:
                raise DustvaeError(f"{name} and {first_name} differ in {key!r}: they are not parts of one run")
    count = int(first.attrs["shard_count"])
    order = sorted(range(len(parts)), key=lambda k: int(parts[k].attrs["shard_index"]))
    indices = [int(parts[k].attrs["shard_index"]) for k in order]
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if repeated:
        raise DustvaeError(f"shard {repeated[0]}/{count} is given more than once; pass each part once")
    missing = sorted(set(range(count)) - set(indices))
    if missing:
        raise DustvaeError(f"shard {missing[0]}/{count} is missing ({len(indices)} of {count} parts given); "
                           f"merge only when every shard has finished")
    position = 0
    for k in order:
        part = parts[k]
        if int(part.attrs["shard_start"]) != position:
            raise DustvaeError(f"{names[k]}: its span starts at {part.attrs['shard_start']}, not {position}: "
                               f"the parts overlap or leave a gap")
        position = int(part.attrs["shard_stop"])
    if position != int(first.attrs["shard_total"]):
        raise DustvaeError(f"the parts cover {position} of {first.attrs['shard_total']} {first.attrs['shard_unit']}")
    ordered = [parts[k] for k in order]
    join = lambda name: np.concatenate([getattr(p, name) for p in ordered])  # noqa: E731
    return CoefficientStore(
        coeffs=join("coeffs"), s0=join("s0"), s1=join("s1"), s2=join("s2"), amplitude=join("amplitude"),
        centers=join("centers"), masked_fraction=join("masked_fraction"), map_index=join("map_index"),
        theta=first.theta, attrs=common,
        labels={k: np.concatenate([p.labels[k] for p in ordered]) for k in first.labels},
        split=None if first.split is None else join("split"),
    )


def rank_part_path(output: str | Path, shard: Shard) -> Path:
    """Where rank ``shard.index`` of ``shard.count`` writes its part of ``output`` (beside it, hidden)."""
    output = Path(output)
    return output.with_name(f".{output.name}.rank{shard.index}of{shard.count}.h5")


def compute_on_ranks(output: str | Path, compute: Callable[[Shard | None, Path], CoefficientStore],
                     ranks: distributed.Ranks) -> CoefficientStore:
    """Run one sharded job across torchrun's ranks: each computes its shard, rank 0 merges into ``output``.

    Parameters
    ----------
    output : path
        The store an unsharded run writes.
    compute : callable
        ``compute(shard, path)`` computes ``shard`` of the work (all of it
        for None) and writes it to ``path`` (resumable, as a shard run is).
    ranks : Ranks
        This process's ranks; with one rank ``compute(None, output)`` runs.

    Returns
    -------
    CoefficientStore
        The merged store on rank 0, this rank's part on the others.
    """
    if not ranks.several:
        return compute(None, Path(output))
    shards = [Shard(k, ranks.world) for k in range(ranks.world)]
    mine = compute(shards[ranks.rank], rank_part_path(output, shards[ranks.rank]))
    distributed.barrier()  # every part is written
    if ranks.is_main:
        paths = [rank_part_path(output, shard) for shard in shards]
        mine = merge_stores([read_store(p) for p in paths], [str(p) for p in paths])
        write_store(output, mine)
        for path in paths:
            path.unlink()
    distributed.barrier()  # the merged store is there when any rank returns
    return mine
