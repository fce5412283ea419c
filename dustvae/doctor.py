"""``dustvae doctor``: what this installation is, and a short self-test on every device it can use.

The first command to run on a new machine, and the one a bug report
quotes. It reports the versions of dustvae and of the libraries it rests
on, the CPU thread budget and where it comes from (:mod:`dustvae.threads`),
the devices torch sees, and then, on each device, three checks of a few
seconds each:

* the WST of the stored reference map (``data/reference_map.fits``, in a
  source checkout) against its stored coefficients
  (``data/reference_coeffs.h5``), with the regression test's tolerance;
* one VAE-2 training step, forward and backward, with the trainer's own
  step function and precision;
* a coefficient store written and read back.
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import defaults, threads
from ._version import __version__
from .errors import DustvaeError

#: The regression reference (scripts/make_reference.py writes it; tests/test_regression.py checks it).
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data"
REFERENCE_MAP = REFERENCE_DIR / "reference_map.fits"
REFERENCE_COEFFS = REFERENCE_DIR / "reference_coeffs.h5"
#: Patch side and batch of the reference store (scripts/make_reference.py writes it with these).
REFERENCE_PATCH_SIZE, REFERENCE_BATCH = 32, 4
#: Largest |difference| in log2 units from the stored coefficients: float32 round-off across CPUs, BLAS
#: and GPUs is ~1e-6; a change of convention moves coefficients by 1e-2 or more (tests/test_regression.py).
REFERENCE_TOLERANCE = 1e-4

LIBRARIES = ("torch", "kymatio", "numpy", "scipy", "healpy", "astropy", "h5py")


@dataclass
class CheckResult:
    """One self-test: its device and name, whether it passed (None: skipped), what it saw, and its time."""

    device: str
    name: str
    ok: bool | None
    detail: str
    seconds: float

    def line(self) -> str:
        status = {True: "ok", False: "FAIL", None: "skip"}[self.ok]
        return f"{status:<4} {self.device:<7} {self.name}: {self.detail} ({self.seconds:.1f} s)"


def library_versions() -> dict[str, str]:
    """Installed versions of dustvae's main dependencies (``"missing"`` where one is not installed)."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def torch_build() -> str:
    """Torch's build in words: its CUDA (or ROCm) version, or "CPU build"."""
    if torch.version.cuda:
        return f"CUDA {torch.version.cuda} build"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip} build"
    return "CPU build"


def visible_devices() -> list[torch.device]:
    """The CPU and every CUDA device torch sees."""
    return [torch.device("cpu")] + [torch.device("cuda", i) for i in range(torch.cuda.device_count())]


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{device} {props.name} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor})"
    return f"cpu ({platform.processor() or platform.machine()})"


def header_lines() -> list[str]:
    """Versions, thread budget and devices, one fact per line."""
    libs = library_versions()
    lines = [f"dustvae {__version__} (Python {platform.python_version()}, {platform.system()} {platform.machine()})"]
    lines.append("libraries: " + ", ".join(f"{name} {v}" + (f" ({torch_build()})" if name == "torch" else "")
                                           for name, v in libs.items()))
    lines.append(f"threads: torch uses {torch.get_num_threads()}; budget {threads.cpu_budget()} "
                 f"({threads.budget_source()})")
    lines.append("devices: " + "; ".join(describe_device(d) for d in visible_devices()))
    return lines


def _timed(device: torch.device, name: str, check: Callable[[torch.device], tuple[bool | None, str]]) -> CheckResult:
    tic = time.perf_counter()
    try:
        ok, detail = check(device)
    except Exception as exc:  # a self-test reports what broke instead of stopping the others
        ok, detail = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return CheckResult(str(device), name, ok, detail, time.perf_counter() - tic)


def check_reference_wst(device: torch.device) -> tuple[bool | None, str]:
    """The stored reference map's WST on ``device`` against the stored coefficients."""
    from .io.maps import read_map
    from .io.store import read_store
    from .sky.patches import cut_patches
    from .wst.compute import compute_store

    if not (REFERENCE_MAP.exists() and REFERENCE_COEFFS.exists()):
        return None, f"no reference data at {REFERENCE_DIR} (it ships with a source checkout)"
    stored = read_store(REFERENCE_COEFFS)
    patch_set = cut_patches(read_map(REFERENCE_MAP), REFERENCE_PATCH_SIZE)
    again = compute_store(patch_set, None, device=str(device), batch_size=REFERENCE_BATCH, progress=False)
    if again.coeffs.shape != stored.coeffs.shape:
        return False, f"{again.coeffs.shape} coefficients, the reference has {stored.coeffs.shape}"
    diff = float(np.abs(again.coeffs.astype(np.float64) - stored.coeffs).max())
    return diff <= REFERENCE_TOLERANCE, (f"{len(again)} patches x {again.coeffs.shape[1]}, largest difference "
                                         f"{diff:.1e} log2 (tolerance {REFERENCE_TOLERANCE:.0e})")


def check_training_step(device: torch.device) -> tuple[bool | None, str]:
    """One VAE-2 training step (forward, backward, optimiser) on a random batch; the loss and gradients finite."""
    from .models.train import training_step
    from .models.vae import INPUT_LENGTH, DilatedConvVAE

    generator = torch.Generator().manual_seed(0)
    model = DilatedConvVAE(defaults.LATENT_VAE2).to(device)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=defaults.TRAIN_LR)
    x = torch.randn((defaults.TRAIN_BATCH_SIZE, INPUT_LENGTH), generator=generator).to(device)
    amp = device.type == "cuda" and defaults.TRAIN_BF16_AUTOCAST  # as training runs
    loss, _, _, norm = training_step(model, optimizer, x, defaults.TRAIN_BETA, amp=amp)
    moved = sum(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    ok = np.isfinite(loss) and np.isfinite(norm) and norm > 0 and moved > 0
    precision = "bfloat16 autocast" if amp else "float32"
    return ok, f"loss {loss:.4g}, gradient norm {norm:.3g}, {moved} of {len(before)} parameter tensors moved ({precision})"


def check_store_round_trip(device: torch.device) -> tuple[bool | None, str]:
    """Coefficients computed on ``device`` for a small simulated map, written to a store and read back unchanged."""
    from .io.maps import FlatMap
    from .io.store import read_store
    from .sky.patches import flat_patches
    from .sky.simulate import DustParams, simulate_flat
    from .wst.compute import compute_store

    maps = simulate_flat(64, DustParams(seed=1))
    patch_set = flat_patches(FlatMap(fields={"Q": maps["Q"], "U": maps["U"]}), 32)
    with tempfile.TemporaryDirectory(prefix="dustvae-doctor-") as tmp:
        path = Path(tmp) / "store.h5"
        written = compute_store(patch_set, path, device=str(device), progress=False)
        back = read_store(path)
        same = all(np.array_equal(getattr(written, k), getattr(back, k)) for k in ("coeffs", "s0", "s1", "s2", "amplitude"))
        size = path.stat().st_size
    return same, f"{len(back)} rows written and read back {'identical' if same else 'CHANGED'} ({size / 1024:.0f} KiB)"


CHECKS: tuple[tuple[str, Callable[[torch.device], tuple[bool | None, str]]], ...] = (
    ("reference WST", check_reference_wst),
    ("VAE-2 training step", check_training_step),
    ("store round trip", check_store_round_trip),
)


def run_checks(devices: list[torch.device] | None = None) -> Iterator[CheckResult]:
    """Every self-test on every device (default: all visible), as each finishes."""
    for device in devices or visible_devices():
        for name, check in CHECKS:
            yield _timed(device, name, check)


def parse_devices(text: str) -> list[torch.device]:
    """``"all"``, ``"cpu"``, ``"cuda"`` (every GPU) or ``"cuda:N"`` -> the devices to test."""
    if text == "all":
        return visible_devices()
    if text == "cpu":
        return [torch.device("cpu")]
    gpus = visible_devices()[1:]
    if text == "cuda" and gpus:
        return gpus
    if text.startswith("cuda:") and torch.device(text) in gpus:
        return [torch.device(text)]
    raise DustvaeError(f"device {text!r} is not visible (torch sees: {', '.join(map(str, visible_devices()))}); "
                       "use all, cpu, cuda or cuda:N")


def main(devices: list[torch.device] | None = None, echo: Callable[[str], None] = print) -> int:
    """Print the report line by line; 0 when every check passed or was skipped, 2 otherwise."""
    for line in header_lines():
        echo(line)
    results = []
    for result in run_checks(devices):
        echo(result.line())
        results.append(result)
    failed = [r for r in results if r.ok is False]
    echo(f"{len(results) - len(failed)} of {len(results)} checks passed"
         + (" or were skipped" if any(r.ok is None for r in results) else "")
         + ("" if not failed else f"; {len(failed)} FAILED"))
    sys.stdout.flush()
    return 2 if failed else 0
