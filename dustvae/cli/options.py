"""What the commands share: options, output checks, torchrun ranks and the shards of long jobs."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
import numpy as np

from .. import defaults
from ..errors import DustvaeError


def fields_option(default: tuple[str, ...] = defaults.FIELDS):
    return click.option(
        "--fields",
        default=",".join(default),
        show_default=True,
        help="Comma-separated Stokes fields to use, in vector order (I, Q, U).",
    )


def split_fields(text: str) -> tuple[str, ...]:
    return tuple(f.strip().upper() for f in text.split(",") if f.strip())


def patch_options(func):
    """Options shared by `patches`, `compute-wst` and `make-dataset`."""
    options = [
        click.option("--patch-size", type=int, default=defaults.PATCH_SIZE, show_default=True,
                     help="Patch side in pixels (a multiple of 2**J)."),
        click.option("--pixel-scale", type=float, default=None, help="Patch pixel side in arcmin [default: the map's resolution]."),
        click.option("--centers-nside", type=int, default=None,
                     help="HEALPix nside of the grid of patch centres [default: about one patch apart]."),
        click.option("--b-min", type=float, default=0.0, show_default=True,
                     help="Keep patches with Galactic |b| >= B_MIN degrees (whatever the map's frame)."),
        click.option("--max-masked", type=float, default=defaults.MAX_MASKED_FRACTION, show_default=True,
                     help="Drop patches with a larger masked fraction."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def map_options(func):
    """How to read a HEALPix map: its frame when the header names none, and the frequency for unit conversions."""
    options = [
        click.option("--frame", type=click.Choice(defaults.HEALPIX_FRAMES), default=None,
                     help="Frame of a HEALPix map whose header has no COORDSYS [default: galactic, with a note]."),
        click.option("--freq", type=float, default=None, metavar="GHZ",
                     help="Frequency for converting fields in different units (K_CMB, K_RJ, MJy/sr) [default: the header's FREQ]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_positive_scale(pixel_scale: float | None) -> None:
    if pixel_scale is not None and not (np.isfinite(pixel_scale) and pixel_scale > 0):
        raise DustvaeError(f"--pixel-scale {pixel_scale} must be a positive number of arcmin")


def patch_kwargs(pixel_scale, centers_nside, b_min, max_masked) -> dict:
    check_positive_scale(pixel_scale)
    return dict(
        pixel_scale_arcmin=pixel_scale,
        centers_nside=centers_nside,
        b_min=b_min,
        max_masked_fraction=max_masked,
    )


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_output(path: Path, overwrite: bool, *inputs: Path | None) -> None:
    """Refuse to replace an existing file without --overwrite, and ever to write over one of the inputs."""
    for source in (Path(s) for s in inputs if s is not None):
        candidates = [source, source / "best.pt", source / "last.pt"] if source.is_dir() else [source]  # a run directory
        if any(same_file(c, path) or c.resolve() == path.resolve() for c in candidates):
            raise DustvaeError(f"{path}: is also an input of this command; choose another output")
    if path.exists() and not overwrite:
        raise DustvaeError(f"{path}: exists; choose another output or pass --overwrite")


@contextlib.contextmanager
def joined_ranks(device: str):
    """Under torchrun, join the ranks' process group for the command (see dustvae.distributed); yield this rank."""
    from .. import distributed
    from ..devices import resolve_device

    ranks = distributed.init_from_environment(resolve_device(device))
    try:
        yield ranks
    finally:
        distributed.shutdown()


def shard_or_ranks(text: str | None):
    """``--shard`` (or the SLURM array task's shard); refused together with torchrun ranks, which split the work themselves."""
    from ..distributed import launched_ranks
    from ..wst.shard import resolve_shard

    shard = resolve_shard(text)
    if shard is not None and launched_ranks().several:
        raise DustvaeError(f"shard {shard} (from --shard or a SLURM array task) and {launched_ranks().world} torchrun ranks: "
                           f"the ranks split the work themselves; use one or the other")
    return shard


def sharded(output: Path, shard, compute, device: str, progress: bool):
    """Run ``compute(shard, path, progress)`` for this command: one shard, or split across torchrun's ranks."""
    from ..wst.shard import compute_on_ranks

    with joined_ranks(device) as ranks:
        if not ranks.several:
            return compute(shard, output, progress), ranks
        store = compute_on_ranks(output, lambda part, path: compute(part, path, progress and ranks.is_main), ranks)
    return store, ranks


def on_ranks(ranks) -> str:
    return f" on {ranks.world} ranks" if ranks.several else ""


#: Seeds every generator accepts (NumPy's, scikit-learn's): non-negative 32-bit integers.
SEED = click.IntRange(0, 2**32 - 1)


def load_patch_input(path: Path, fields: str, patch_size: int, patch_kwargs: dict, map_kwargs: dict | None = None):
    """Patches from a patch file, or cut from a FITS map (read with ``map_kwargs``: frame, freq_ghz)."""
    from ..io.atomic import sha256sum
    from ..io.maps import read_map
    from ..io.patchfile import is_patch_file, read_patches
    from ..sky.patches import cut_patches

    if not path.exists():
        raise DustvaeError(f"{path}: no such file; check the path")
    if is_patch_file(path):
        return read_patches(path)
    sky = read_map(path, split_fields(fields), **(map_kwargs or {}))
    patch_set = cut_patches(sky, patch_size, **patch_kwargs)
    patch_set.source_name, patch_set.source_sha256 = path.name, sha256sum(path)
    if len(patch_set) == 0:
        raise DustvaeError(f"all {patch_set.n_dropped} patches exceed the masked fraction; raise --max-masked")
    return patch_set


def wst_options(func):
    options = [
        click.option("--J", "J", type=int, default=defaults.J, show_default=True, help="Number of dyadic scales."),
        click.option("--L", "L", type=int, default=defaults.L, show_default=True, help="Number of angles in [0, pi)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Patches per transform batch [default: fits memory]."),
        click.option("--engine", type=click.Choice(defaults.ENGINES), default=defaults.ENGINE, show_default=True,
                     help="batched: Kymatio's transform with all paths of a layer at once; kymatio: Kymatio's own loop (same numbers)."),
        click.option("--shard", default=None, metavar="K/N",
                     help="Do only the K-th (from 0) of N equal parts of the work; join the parts with `dustvae merge` "
                          "[default: the SLURM array task's, if any; else all]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def model_and_store(ckpt: Path, coeffs: Path, device: str, columns=("coeffs", "map_index")):
    """The model of CKPT and the datasets ``columns`` of the store COEFFS (only what the command uses)."""
    from ..io.store import read_store
    from ..models.checkpoint import load_model
    from ..devices import resolve_device

    model, payload = load_model(ckpt, resolve_device(device))
    return model, payload, read_store(coeffs, columns=columns)


def model_and_open_store(ckpt: Path, coeffs: Path, device: str):
    """The model of CKPT and the store COEFFS opened for reading block by block (close it after use)."""
    from ..io.store import open_store
    from ..models.checkpoint import load_model
    from ..devices import resolve_device

    model, payload = load_model(ckpt, resolve_device(device))
    return model, payload, open_store(coeffs)


DEVICE_HELP = "auto (a GPU when there is one), cpu or cuda."
OVERWRITE_HELP = "Replace OUTPUT if it exists."


def dataclass_options(cls, help_prefix: str = ""):
    """Options for the fields of a parameter dataclass that name a ``flag`` in their metadata.

    Type and default come from the field, the help from its metadata, so
    the command line never restates the library's parameters. Each option
    passes its value under the field's name.
    """
    from dataclasses import MISSING, fields

    def decorate(func):
        for f in reversed([f for f in fields(cls) if "flag" in f.metadata]):
            default = f.default if f.default is not MISSING else f.default_factory()
            func = click.option(f.metadata["flag"], f.name, type=type(default), default=default, show_default=True,
                                help=help_prefix + f.metadata["help"])(func)
        return func

    return decorate
