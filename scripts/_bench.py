"""Shared helpers of the benchmark scripts: timing, machine description, report files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from dustvae.io.atomic import atomic_path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "_generated"


def best_time(func, repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        func()
        times.append(time.perf_counter() - tic)
    return min(times)


def machine() -> str:
    """One line naming the machine and device the numbers come from."""
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()}: {os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__} with {torch.get_num_threads()} threads, {gpu}"


def write_report(name: str, title: str, table: list[str], notes: list[str]) -> Path:
    """Write an RST page fragment for the docs (the numbers of this run)."""
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{name}.rst"
    underline = "^" * len(title)
    body = [title, underline, "", f"Measured on {machine()}, {time.strftime('%Y-%m-%d')}.", "", "::", ""]
    body += ["    " + line for line in table] + [""] + notes + [""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(body))
    return path


class Report:
    """A benchmark table: rows are printed as they come and written to the docs at the end."""

    def __init__(self, name: str, title: str, header: str):
        self.name, self.title, self.rows = name, title, [header]
        print(machine())
        print(header, flush=True)

    def add(self, row: str) -> None:
        self.rows.append(row)
        print(row, flush=True)

    def write(self, notes: list[str]) -> Path:
        path = write_report(self.name, self.title, self.rows, notes)
        print(f"wrote {path}")
        return path


def write_page(name: str, text: str, output: Path | None = None, payload=None) -> Path:
    """Write the docs page ``name``.rst and, when ``output`` is given, ``payload`` as JSON there; both atomically."""
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / f"{name}.rst"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    if output is not None:
        with atomic_path(output) as tmp:
            tmp.write_text(json.dumps(payload, indent=1))
    print(f"wrote {path}")
    return path
