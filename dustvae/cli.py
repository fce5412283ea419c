"""The ``dustvae`` command. Thin: it parses options and calls the library.

Every failure the user can fix is a :class:`~dustvae.errors.DustvaeError`
(or a click usage error) and is printed as one line, ``dustvae: error: ...``,
with exit status 2. ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path

import click
import numpy as np

from . import defaults
from ._version import __version__
from .errors import DustvaeError
from .threads import apply_thread_budget
from .sky.filaments import FilamentParams
from .sky.simulate import DustParams
from .sky.models import DATASET_MODELS, SKY_MODELS

_DEBUG = {"on": False}
_SIM = DustParams()  # the simulator's defaults, shown by `dustvae simulate --help`


def _fields_option(default: tuple[str, ...] = defaults.FIELDS):
    return click.option(
        "--fields",
        default=",".join(default),
        show_default=True,
        help="Comma-separated Stokes fields to use, in vector order (I, Q, U).",
    )


def _split_fields(text: str) -> tuple[str, ...]:
    return tuple(f.strip().upper() for f in text.split(",") if f.strip())


def _patch_options(func):
    """Options shared by `patches`, `compute-wst` and `make-dataset`."""
    options = [
        click.option("--patch-size", type=int, default=defaults.PATCH_SIZE, show_default=True, help="Patch side in pixels (a multiple of 2**J)."),
        click.option("--pixel-scale", type=float, default=None, help="Patch pixel side in arcmin [default: the map's resolution]."),
        click.option("--centers-nside", type=int, default=None, help="HEALPix nside of the grid of patch centres [default: about one patch apart]."),
        click.option("--b-min", type=float, default=0.0, show_default=True, help="Keep patches with Galactic |b| >= B_MIN degrees (whatever the map's frame)."),
        click.option("--max-masked", type=float, default=defaults.MAX_MASKED_FRACTION, show_default=True, help="Drop patches with a larger masked fraction."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _map_options(func):
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


def _check_positive_scale(pixel_scale: float | None) -> None:
    if pixel_scale is not None and not (np.isfinite(pixel_scale) and pixel_scale > 0):
        raise DustvaeError(f"--pixel-scale {pixel_scale} must be a positive number of arcmin")


def _patch_kwargs(pixel_scale, centers_nside, b_min, max_masked) -> dict:
    _check_positive_scale(pixel_scale)
    return dict(
        pixel_scale_arcmin=pixel_scale,
        centers_nside=centers_nside,
        b_min=b_min,
        max_masked_fraction=max_masked,
    )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _check_output(path: Path, overwrite: bool, *inputs: Path | None) -> None:
    """Refuse to replace an existing file without --overwrite, and ever to write over one of the inputs."""
    for source in (Path(s) for s in inputs if s is not None):
        candidates = [source, source / "best.pt", source / "last.pt"] if source.is_dir() else [source]  # a run directory
        if any(_same_file(c, path) or c.resolve() == path.resolve() for c in candidates):
            raise DustvaeError(f"{path}: is also an input of this command; choose another output")
    if path.exists() and not overwrite:
        raise DustvaeError(f"{path}: exists; choose another output or pass --overwrite")


@contextlib.contextmanager
def _ranks(device: str):
    """Under torchrun, join the ranks' process group for the command (see dustvae.distributed); yield this rank."""
    from . import distributed
    from .wst.transform import resolve_device

    ranks = distributed.init_from_environment(resolve_device(device))
    try:
        yield ranks
    finally:
        distributed.shutdown()


def _shard_or_ranks(text: str | None):
    """``--shard`` (or the SLURM array task's shard); refused together with torchrun ranks, which split the work themselves."""
    from .distributed import launched_ranks
    from .wst.shard import resolve_shard

    shard = resolve_shard(text)
    if shard is not None and launched_ranks().several:
        raise DustvaeError(f"shard {shard} (from --shard or a SLURM array task) and {launched_ranks().world} torchrun ranks: "
                           f"the ranks split the work themselves; use one or the other")
    return shard


def _sharded(output: Path, shard, compute, device: str, progress: bool):
    """Run ``compute(shard, path, progress)`` for this command: one shard, or split across torchrun's ranks."""
    from .wst.shard import compute_on_ranks

    with _ranks(device) as ranks:
        if not ranks.several:
            return compute(shard, output, progress), ranks
        store = compute_on_ranks(output, lambda part, path: compute(part, path, progress and ranks.is_main), ranks)
    return store, ranks


def _on(ranks) -> str:
    return f" on {ranks.world} ranks" if ranks.several else ""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="dustvae")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Wavelet scattering statistics of dust polarization maps, compressed with VAEs.

    Typical run: simulate or bring a map, compute its WST coefficients, train
    VAE-1 (170 latents) and VAE-2 (85 latents), and compare them with the RWST
    and PCA baselines on held-out data.
    """
    _DEBUG["on"] = debug
    apply_thread_budget()  # never more threads than this process's share of the cores (dustvae.threads)


_FIL = FilamentParams()  # the filament model's defaults, shown by `dustvae simulate --help`
#: Peak memory of a simulation per map pixel: measured 520-530 B for flat turbulence and filament maps
#: (512-2048 px) and 570-610 B for HEALPix (nside 256-512), with a margin.
_SIMULATION_BYTES_PER_PIXEL = 700
#: Seeds every generator accepts (NumPy's, scikit-learn's): non-negative 32-bit integers.
_SEED = click.IntRange(0, 2**32 - 1)


@cli.command()
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=click.Choice(SKY_MODELS), default="turbulence", show_default=True,
              help="turbulence: Gaussian mean + turbulent field; filaments: projected 3D filaments along that field.")
@click.option("--nside", type=int, default=None, help="Write a HEALPix map at this nside (Planck's layout; turbulence model).")
@click.option("--size", type=int, default=None, help="Write a flat periodic map of SIZE x SIZE pixels.")
@click.option("--pixel-scale", type=float, default=5.0, show_default=True, help="Flat maps: pixel side in arcmin.")
@click.option("--slope", type=float, default=_SIM.slope, show_default=True, help="Spectral index alpha of the turbulent field, P(k) ~ k^-alpha.")
@click.option("--turbulence", type=float, default=_SIM.turbulence, show_default=True, help="Turbulent-to-mean field ratio f_M.")
@click.option("--layers", "n_layers", type=int, default=_SIM.n_layers, show_default=True, help="Independent layers along the line of sight.")
@click.option("--p0", type=float, default=_SIM.p0, show_default=True, help="Intrinsic polarization fraction.")
@click.option("--intensity-sigma", type=float, default=_SIM.intensity_sigma, show_default=True, help="Std of the log-intensity of a layer.")
@click.option("--field-angle", type=float, default=_SIM.mean_field_angle, show_default=True, help="Mean field direction [deg] (flat: position angle; sphere: Galactic longitude).")
@click.option("--field-inclination", type=float, default=_SIM.mean_field_inclination, show_default=True, help="Mean field inclination [deg] (flat: out of the sky plane; sphere: Galactic latitude).")
@click.option("--size-slope", type=float, default=_FIL.size_slope, show_default=True, help="Filaments: gamma of the length distribution dN/dL ~ L^-gamma.")
@click.option("--axis-ratio", type=float, default=_FIL.axis_ratio, show_default=True, help="Filaments: short-to-long axis ratio epsilon.")
@click.option("--misalignment", type=float, default=_FIL.misalignment, show_default=True, help="Filaments: rms angle [deg] between long axis and local field.")
@click.option("--min-length", type=float, default=_FIL.min_length, show_default=True, help="Filaments: shortest length [px].")
@click.option("--max-length", type=float, default=_FIL.max_length, show_default=True, help="Filaments: longest length [px].")
@click.option("--filling", type=float, default=_FIL.filling, show_default=True, help="Filaments: summed projected area over map area.")
@click.option("--density-index", type=float, default=_FIL.density_index, show_default=True, help="Filaments: eta in rho_0 ~ L^-eta.")
@click.option("--diffuse-weight", type=float, default=_FIL.diffuse_weight, show_default=True, help="Filaments: weight of the diffuse turbulence component, in [0, 1].")
@click.option("--seed", type=_SEED, default=_SIM.seed, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def simulate(output, model, nside, size, pixel_scale, slope, turbulence, n_layers, p0, intensity_sigma, field_angle,
             field_inclination, size_slope, axis_ratio, misalignment, min_length, max_length, filling, density_index,
             diffuse_weight, seed, overwrite):
    """Simulate dust-like polarized I, Q, U maps into OUTPUT (FITS).

    HEALPix with --nside (default 256 when neither is given), or a flat periodic
    map with --size. The filament model makes flat maps only. Every physical
    parameter is written to the FITS header.
    """
    from .io.maps import write_flat_map, write_healpix_map
    from .memory import check_memory
    from .sky.filaments import simulate_filaments
    from .sky.simulate import simulate_flat, simulate_healpix

    if nside is not None and size is not None:
        raise DustvaeError("give either --nside (HEALPix) or --size (flat), not both")
    if model == "filaments" and size is None:
        raise DustvaeError("the filament model makes flat maps: give --size instead of --nside")
    if nside is not None and (nside < 1 or nside & (nside - 1)):
        raise DustvaeError(f"--nside {nside} is not a power of 2 (1, 2, 4, ..., e.g. 256)")
    if size is not None and size < 1:
        raise DustvaeError(f"--size {size} must be a positive number of pixels")
    _check_positive_scale(pixel_scale)
    params = DustParams(slope, turbulence, n_layers, p0, intensity_sigma, field_angle, field_inclination, seed)
    if model == "filaments":
        fil = FilamentParams(size_slope=size_slope, axis_ratio=axis_ratio, misalignment=misalignment,
                             min_length=min_length, max_length=max_length, filling=filling,
                             density_index=density_index, diffuse_weight=diffuse_weight, field=params)
    pixels = size * size if size is not None else 12 * (nside or 256) ** 2
    check_memory(pixels * _SIMULATION_BYTES_PER_PIXEL, f"a map of {pixels:,} pixels",
                 "choose a smaller --size" if size is not None else "choose a smaller --nside")
    _check_output(output, overwrite)  # after every option is checked: a bad option is reported first
    if model == "filaments":
        maps = simulate_filaments(size, fil)
        write_flat_map(output, maps, pixel_scale_arcmin=pixel_scale, periodic=True, extra_header=fil.to_header(), overwrite=True)
        click.echo(f"wrote {output}: flat I, Q, U of filaments, {size} x {size} px, {pixel_scale} arcmin/px")
    elif size is not None:
        maps = simulate_flat(size, params)
        header = {"SIMMODEL": "turbulence", **params.to_header()}
        write_flat_map(output, maps, pixel_scale_arcmin=pixel_scale, periodic=True, extra_header=header, overwrite=True)
        click.echo(f"wrote {output}: flat I, Q, U, {size} x {size} px, {pixel_scale} arcmin/px")
    else:
        nside = nside or 256
        maps = simulate_healpix(nside, params)
        write_healpix_map(output, maps, extra_header={"SIMMODEL": "turbulence", **params.to_header()}, overwrite=True)
        click.echo(f"wrote {output}: HEALPix I, Q, U, nside {nside}, RING, COSMO convention")


@cli.command("plot-map")
@click.argument("map_path", metavar="MAP", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Image file [default: MAP with suffix .png].")
@click.option("--fields", default="I,Q,U", show_default=True,
              help="Comma-separated fields to draw (Q,U for the output of `dustvae synthesize`); "
                   "the polarized intensity P is drawn beside Q and U.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def plot_map(map_path, output, fields, overwrite):
    """Draw I, Q, U (or the --fields given) and the polarized intensity of a flat FITS MAP (a quick look)."""
    from .analysis.mapview import plot_flat_map
    from .io.maps import FlatMap, read_map

    output = output or map_path.with_suffix(".png")
    _check_output(output, overwrite, map_path)
    if not map_path.exists():
        raise DustvaeError(f"{map_path}: no such file; check the path")
    sky = read_map(map_path, _split_fields(fields))
    if not isinstance(sky, FlatMap):
        raise DustvaeError(f"{map_path}: plot-map draws flat maps; use healpy.mollview for HEALPix maps")
    plot_flat_map(sky.fields, output, title=map_path.name)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("map_path", metavar="MAP", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Patch file (HDF5) [default: MAP with suffix .patches.h5].")
@_fields_option()
@_patch_options
@_map_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def patches(map_path, output, fields, patch_size, pixel_scale, centers_nside, b_min, max_masked, frame, freq, overwrite):
    """Cut square patches from MAP (HEALPix or flat FITS) into an HDF5 patch file."""
    from .io.atomic import sha256sum
    from .io.maps import read_map
    from .io.patchfile import write_patches
    from .sky.patches import cut_patches

    output = output or map_path.with_suffix(".patches.h5")
    _check_output(output, overwrite, map_path)
    sky = read_map(map_path, _split_fields(fields), frame=frame, freq_ghz=freq)
    patch_set = cut_patches(sky, patch_size, **_patch_kwargs(pixel_scale, centers_nside, b_min, max_masked))
    patch_set.source_name, patch_set.source_sha256 = map_path.name, sha256sum(map_path)
    if len(patch_set) == 0:
        raise DustvaeError(f"all {patch_set.n_dropped} patches exceed the masked fraction {max_masked}; raise --max-masked")
    write_patches(output, patch_set)
    click.echo(
        f"wrote {output}: {len(patch_set)} patches of {patch_size} px "
        f"({patch_set.pixel_scale_arcmin:.3g} arcmin/px), {patch_set.n_dropped} dropped as masked"
    )


def _load_patch_input(path: Path, fields: str, patch_size: int, patch_kwargs: dict, map_kwargs: dict | None = None):
    """Patches from a patch file, or cut from a FITS map (read with ``map_kwargs``: frame, freq_ghz)."""
    from .io.atomic import sha256sum
    from .io.maps import read_map
    from .io.patchfile import is_patch_file, read_patches
    from .sky.patches import cut_patches

    if not path.exists():
        raise DustvaeError(f"{path}: no such file; check the path")
    if is_patch_file(path):
        return read_patches(path)
    sky = read_map(path, _split_fields(fields), **(map_kwargs or {}))
    patch_set = cut_patches(sky, patch_size, **patch_kwargs)
    patch_set.source_name, patch_set.source_sha256 = path.name, sha256sum(path)
    if len(patch_set) == 0:
        raise DustvaeError(f"all {patch_set.n_dropped} patches exceed the masked fraction; raise --max-masked")
    return patch_set


def _wst_options(func):
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


@cli.command("compute-wst")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Coefficient store (HDF5) [default: INPUT with suffix .wst.h5].")
@_fields_option()
@_patch_options
@_map_options
@_wst_options
@click.option("--boundary", type=click.Choice(("auto",) + defaults.BOUNDARIES), default="auto", show_default=True,
              help="reflect (sky patches) or periodic (periodic boxes); auto picks periodic for whole periodic maps.")
@click.option("--split", type=click.Choice(("none", "regions")), default="none", show_default=True,
              help="regions: store a train/validation/test split of the sky by region, with a guard band of one patch "
                   "width left out between splits (for stores of one map; see docs/formats.rst).")
@click.option("--split-seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the regions' assignment to the splits.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def compute_wst(input_path, output, fields, patch_size, pixel_scale, centers_nside, b_min, max_masked, frame, freq, J, L, device, batch_size, engine, shard, boundary, split, split_seed, overwrite, quiet):
    """WST coefficients of every patch of INPUT (a FITS map or a patch file) into a store.

    Interrupted runs leave no output; run the same command again to resume.
    """
    from .sky.patches import check_patch_size
    from .wst.compute import compute_store
    from .wst.shard import Shard
    from .wst.transform import check_transform, resolve_device

    output = output or input_path.with_suffix(".wst.h5")
    _check_output(output, overwrite, input_path)
    check_patch_size(patch_size, J)
    check_transform(patch_size, J, L, "reflect" if boundary == "auto" else boundary, engine)
    resolve_device(device)
    shard = _shard_or_ranks(shard)
    patch_set = _load_patch_input(input_path, fields, patch_size, _patch_kwargs(pixel_scale, centers_nside, b_min, max_masked),
                                  dict(frame=frame, freq_ghz=freq))
    if boundary == "auto":
        boundary = "periodic" if patch_set.periodic else "reflect"

    codes, split_attrs = None, {}
    if split == "regions":
        from .sky.regions import patch_width, region_split

        width = patch_width(patch_set.center_frame, patch_set.patch_size, patch_set.pixel_scale_arcmin)
        codes, split_attrs = region_split(patch_set.centers, patch_set.center_frame, width, seed=split_seed)

    def compute(part: Shard | None, path: Path, show: bool):
        subset, extra = patch_set, ({"source_frame": patch_set.source_frame} if patch_set.source_frame else {})
        rows = slice(None)
        if part is not None:
            start, stop = part.span(len(patch_set))
            if start == stop:
                raise DustvaeError(f"shard {part} holds no patch ({len(patch_set)} patches); use fewer shards")
            rows = slice(start, stop)
            subset, extra = patch_set.take(rows), {**extra, **part.attrs("patches", len(patch_set))}
        return compute_store(subset, path, J=J, L=L, boundary=boundary, device=device, batch_size=batch_size,
                             progress=show, engine=engine, extra_attrs={**extra, **split_attrs},
                             split=None if codes is None else codes[rows])

    store, ranks = _sharded(output, shard, compute, device, not quiet)
    part = ""
    if shard is not None:
        start, stop = shard.span(len(patch_set))
        part = f" (shard {shard}: patches {start}-{stop - 1} of {len(patch_set)})"
    if ranks.is_main:
        if codes is not None:
            counts = np.bincount(codes, minlength=4)
            part += (f"; split by {split_attrs['split_regions']} sky regions: train/validation/test/guard = "
                     f"{counts[0]}/{counts[1]}/{counts[2]}/{counts[3]}")
        click.echo(f"wrote {output}: {len(store)} patches x {store.coeffs.shape[1]} coefficients ({boundary} boundary){part}{_on(ranks)}")


@cli.command("make-dataset")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--maps", "n_maps", type=int, default=defaults.DATASET_MAPS, show_default=True, help="Number of simulated maps.")
@click.option("--map-size", type=int, default=defaults.DATASET_MAP_SIZE, show_default=True, help="Side of each simulated map in pixels.")
@click.option("--patch-size", type=int, default=defaults.DATASET_PATCH_SIZE, show_default=True, help="Patch side in pixels.")
@click.option("--model", type=click.Choice(DATASET_MODELS), default=defaults.DATASET_MODEL, show_default=True,
              help="Sky model of the maps: turbulence, filaments, or mixed (each map either, at random).")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Processes simulating maps [default: all available cores].")
@_wst_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def make_dataset_cmd(output, n_maps, map_size, patch_size, model, seed, workers, J, L, device, batch_size, engine, shard, overwrite, quiet):
    """Simulate the default training data: labelled WST coefficients split by map into OUTPUT.

    Parameters are drawn per map from documented ranges (see dustvae.wst.dataset).
    Interrupted runs resume.
    """
    from .sky.patches import check_patch_size
    from .wst.dataset import DatasetSpec, make_dataset
    from .wst.shard import Shard
    from .wst.transform import check_transform, resolve_device

    _check_output(output, overwrite)
    check_patch_size(patch_size, J)
    check_transform(patch_size, J, L, "reflect", engine)
    resolve_device(device)
    if workers is not None and workers < 1:
        raise DustvaeError("--workers must be at least 1")
    spec = DatasetSpec(n_maps=n_maps, model=model, map_size=map_size, patch_size=patch_size, seed=seed, J=J, L=L)
    shard = _shard_or_ranks(shard)

    def compute(part: Shard | None, path: Path, show: bool):
        return make_dataset(path, spec, device=device, batch_size=batch_size, progress=show, workers=workers,
                            engine=engine, shard=part)

    store, ranks = _sharded(output, shard, compute, device, not quiet)
    if not ranks.is_main:
        return
    counts = np.bincount(store.split, minlength=3)
    part = f" (shard {shard}: maps {store.attrs['shard_start']}-{store.attrs['shard_stop'] - 1} of {n_maps})" if shard else ""
    click.echo(f"wrote {output}: {len(store)} patches from {len(np.unique(store.map_index))} {model} maps{part}; "
               f"train/validation/test = {counts[0]}/{counts[1]}/{counts[2]}{_on(ranks)}")


@cli.command()
@click.argument("parts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The merged store.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def merge(parts, output, overwrite):
    """Join the shard stores PARTS of one compute-wst or make-dataset run (written with --shard) into OUTPUT.

    The parts must come from the same inputs, settings and versions and hold
    every shard once; the result is the store an unsharded run writes.
    """
    from .io.store import read_store, write_store
    from .wst.shard import merge_stores

    _check_output(output, overwrite, *parts)
    store = merge_stores([read_store(p) for p in parts], [str(p) for p in parts])
    write_store(output, store)
    click.echo(f"wrote {output}: {len(store)} patches from {len(parts)} parts")


@cli.command()
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--latent", "latent_dim", type=int, default=defaults.LATENT_VAE2, show_default=True, help="Latent size: 170 (VAE-1), 85 (VAE-2) or another member of the family.")
@click.option("-o", "--output", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Run directory [default: runs/MODEL-NAME, e.g. runs/vae-85].")
@click.option("--epochs", type=int, default=defaults.TRAIN_EPOCHS, show_default=True, help="Most epochs (the cosine schedule's length); early stopping usually ends sooner.")
@click.option("--batch-size", type=int, default=defaults.TRAIN_BATCH_SIZE, show_default=True)
@click.option("--lr", type=float, default=defaults.TRAIN_LR, show_default=True, help="AdamW's peak learning rate; cosine decay to 1/100 of it.")
@click.option("--weight-decay", type=float, default=defaults.TRAIN_WEIGHT_DECAY, show_default=True, help="AdamW's decoupled weight decay.")
@click.option("--beta", type=float, default=defaults.TRAIN_BETA, show_default=True, help="KL weight against the mean squared log2 reconstruction error (see dustvae.models.loss).")
@click.option("--kl", "kl_form", type=click.Choice(("analytic", "mc")), default="analytic", show_default=True, help="Analytic KL or the single-sample Monte-Carlo estimate.")
@click.option("--warmup", "warmup_epochs", type=int, default=None, help=f"Epochs of linear KL warm-up; each is kept as best.pt whatever its validation RMSE (the objective is still changing) [default: {defaults.TRAIN_WARMUP_EPOCHS}; 0 with --pca-init, whose start is already whitened].")
@click.option("--patience", type=int, default=defaults.TRAIN_PATIENCE, show_default=True, help="Epochs without a lower validation RMSE before stopping.")
@click.option("--grad-clip", type=float, default=defaults.TRAIN_GRAD_CLIP, show_default=True, help="Gradient-norm clip (metrics.jsonl records how often it acts).")
@click.option("--augment", is_flag=True, help="Replace each training vector, at every step, by a random exact symmetry of its patch (90-degree rotation, mirror).")
@click.option("--linear-path", is_flag=True, help="The variant with linear paths beside the convolutions (named vae-D+lin).")
@click.option("--pca-init", is_flag=True, help="Start the linear paths from the training split's PCA (vae-D+pca; implies --linear-path).")
@click.option("--pca-linear-lr-scale", type=float, default=defaults.TRAIN_PCA_LINEAR_LR_SCALE, show_default=True, help="With --pca-init: learning-rate factor of the PCA-started linear paths (no weight decay on them).")
@click.option("--target", type=click.Choice(defaults.TRAIN_TARGETS), default=defaults.TRAIN_TARGETS[0], show_default=True, help="What the model learns to reconstruct: the patch's own vector, or its map's statistics (the leave-one-out mean of the other training patches of its map; named vae-D+map, with --pca-init started from the reduced-rank regression: vae-D+rrr+map).")
@click.option("--output-stage", type=click.Choice(defaults.OUTPUT_STAGES), default=defaults.OUTPUT_STAGES[0], show_default=True, help="Decoder's last stage: as in the tables, without its ReLU and BatchNorm, or wider.")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue the run in the output directory (with a larger --epochs, also a finished one).")
@click.option("--dry-run", is_flag=True, help="Print the models' layers and parameter counts, and stop.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(coeffs, latent_dim, run_dir, epochs, batch_size, lr, weight_decay, beta, kl_form, warmup_epochs, patience, grad_clip,
          augment, linear_path, pca_init, pca_linear_lr_scale, target, output_stage, seed, device, resume, dry_run, quiet):
    """Train a VAE on the train split of COEFFS (a coefficient store); early stopping on validation RMSE."""
    from .io.store import read_store
    from .models.train import TrainConfig, check_vae_store, train as run_training
    from .analysis import registry
    from .models.vae import DilatedConvVAE, model_name

    linear_path = linear_path or pca_init
    config = TrainConfig(latent_dim=latent_dim, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         beta=beta, kl_form=kl_form, warmup_epochs=warmup_epochs, patience=patience, grad_clip=grad_clip,
                         augment=augment, seed=seed, linear_path=linear_path, pca_init=pca_init,
                         pca_linear_lr_scale=pca_linear_lr_scale, output_stage=output_stage, target=target)
    if dry_run:
        for d in sorted({defaults.LATENT_VAE1, defaults.LATENT_VAE2, latent_dim}, reverse=True):
            model = DilatedConvVAE(d, linear_path=linear_path, output_stage=output_stage, pca_init=pca_init)
            label = f" ({registry.TABLE_VAES[d]})" if d in registry.TABLE_VAES and model.name == model_name(d) else ""
            click.echo(f"{model.name}{label}: {sum(p.numel() for p in model.parameters()):,} parameters")
        click.echo(str(DilatedConvVAE(latent_dim, linear_path=linear_path, output_stage=output_stage, pca_init=pca_init)))
        return
    store = read_store(coeffs, columns=("coeffs", "map_index", "centers"), splits=("train", "validation"), finite=True)  # what training reads
    check_vae_store(store, str(coeffs))
    run_dir = run_dir or Path("runs") / config.name
    with _ranks(device) as ranks:
        result = run_training(store, run_dir, config, device=device, resume=resume, progress=not quiet)
    if ranks.is_main:
        how = "early stopping" if result.stopped_early else "the epoch limit"
        kept = f"best validation RMSE {result.best_val_rmse:.4f} (log2) at epoch {result.best_epoch}"
        lower = result.lower_warmup_epoch(config.warmup_epochs)
        if lower is not None:
            kept = (f"kept epoch {result.best_epoch} (validation RMSE {result.best_val_rmse:.4f} log2), as warm-up epochs "
                    f"(the first {config.warmup_epochs}, see --warmup) are kept as best whatever their RMSE; epoch "
                    f"{lower['epoch']} was lower ({lower['val_rmse_log2']:.4f})")
        if result.already_finished:
            click.echo(f"{run_dir}: nothing trained: the run had already stopped after {result.epochs_run} epochs by {how}; "
                       f"{kept}; give a larger --epochs to continue it")
        else:
            click.echo(f"{run_dir}: {kept}; stopped after {result.epochs_run} epochs by {how}{_on(ranks)}; "
                       f"checkpoint {run_dir / 'best.pt'}")


def _model_and_store(ckpt: Path, coeffs: Path, device: str, columns=("coeffs", "map_index")):
    """The model of CKPT and the datasets ``columns`` of the store COEFFS (only what the command uses)."""
    from .io.store import read_store
    from .models.checkpoint import load_model
    from .wst.transform import resolve_device

    model, payload = load_model(ckpt, resolve_device(device))
    return model, payload, read_store(coeffs, columns=columns)


def _model_and_open_store(ckpt: Path, coeffs: Path, device: str):
    """The model of CKPT and the store COEFFS opened for reading block by block (close it after use)."""
    from .io.store import open_store
    from .models.checkpoint import load_model
    from .wst.transform import resolve_device

    model, payload = load_model(ckpt, resolve_device(device))
    return model, payload, open_store(coeffs)


_DEVICE_HELP = "auto (a GPU when there is one), cpu or cuda."
_OVERWRITE_HELP = "Replace OUTPUT if it exists."


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Latent file (HDF5).")
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=_OVERWRITE_HELP)
def encode(ckpt, coeffs, output, device, overwrite):
    """Posterior means and log-variances of every patch of COEFFS under model CKPT."""
    from .io.latents import write_latents
    from .models.apply import encode_store

    _check_output(output, overwrite, ckpt, coeffs)
    model, payload, store = _model_and_open_store(ckpt, coeffs, device)
    with store:  # read block by block: one block of vectors in memory at a time
        latents = encode_store(model, payload, store, coeffs.name)
    write_latents(output, latents)
    click.echo(f"wrote {output}: {len(latents.mean)} x {model.latent_dim} latent means and log-variances ({model.name})")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Store of reconstructions.")
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=_OVERWRITE_HELP)
def reconstruct(ckpt, coeffs, output, device, overwrite):
    """Encode and decode every patch of COEFFS (posterior mean) into a store of the same schema."""
    from .models.apply import reconstruct_to_file

    _check_output(output, overwrite, ckpt, coeffs)
    model, payload, store = _model_and_open_store(ckpt, coeffs, device)
    with store:  # read and written block by block
        rmse = reconstruct_to_file(model, payload, store, output, coeffs.name)
    click.echo(f"wrote {output}: {len(store)} reconstructions by {model.name}; RMSE {rmse:.4f} (log2 units)")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("-n", "count", type=int, default=100, show_default=True, help="Number of samples.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Store of generated vectors.")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--prior", type=click.Choice(("normal", "fitted")), default="normal", show_default=True,
              help="Draw latents from N(0, I), or from the density fitted by `dustvae fit-prior`.")
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=_OVERWRITE_HELP)
def sample(ckpt, count, output, seed, prior, device, overwrite):
    """Generate coefficient vectors from the prior of model CKPT, seeded."""
    from .io.store import write_store
    from .models.apply import load_fitted_prior, sample_store
    from .models.checkpoint import load_model
    from .wst.transform import resolve_device

    _check_output(output, overwrite, ckpt)
    model, payload = load_model(ckpt, resolve_device(device))
    density = load_fitted_prior(model, ckpt) if prior == "fitted" else None
    out = sample_store(model, payload, count, seed, density)
    write_store(output, out)
    which = "N(0, I)" if density is None else f"the fitted prior ({density.summary()})"
    click.echo(f"wrote {output}: {count} samples of {model.name} from {which}")


@cli.command("fit-prior")
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--components", type=click.IntRange(min=1), default=None,
              help="Mixture components [default: the BIC's choice among 1, 2, 4, 8, 16].")
@click.option("--seed", type=_SEED, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help="Replace the prior file beside CKPT if it exists.")
def fit_prior(ckpt, coeffs, components, seed, device, overwrite):
    """Fit a Gaussian mixture to the training posterior means of model CKPT, for `sample --prior fitted`.

    COEFFS is the store the model was trained on; its training split is used.
    The mixture is written beside the checkpoint (best.pt -> best.prior.npz).
    """
    from .models.apply import fit_store_prior, prior_path
    from .models.prior import save_prior

    path = prior_path(ckpt)
    _check_output(path, overwrite, ckpt, coeffs)
    model, payload, store = _model_and_store(ckpt, coeffs, device)
    density = fit_store_prior(model, payload, store, components, seed, coeffs.name)
    save_prior(path, density)
    click.echo(f"wrote {path}: {density.summary()} of {model.name}")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--from", "start", type=int, required=True, help="Index of the first patch.")
@click.option("--to", "stop", type=int, required=True, help="Index of the last patch.")
@click.option("--steps", type=int, default=8, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Store of the decoded path [default: print a summary only].")
@click.option("--device", default="auto", show_default=True, help=_DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=_OVERWRITE_HELP)
def interpolate(ckpt, coeffs, start, stop, steps, output, device, overwrite):
    """Decode the straight latent path between patches --from and --to of COEFFS."""
    from .io.store import write_store
    from .models.apply import interpolate_store
    from .numerics import rmse

    if output is not None:
        _check_output(output, overwrite, ckpt, coeffs)
    model, payload, store = _model_and_store(ckpt, coeffs, device)
    path, weights = interpolate_store(model, payload, store, start, stop, steps, coeffs.name)
    for w, vec in zip(weights, path.coeffs):
        d0, d1 = rmse(vec, store.coeffs[start]), rmse(vec, store.coeffs[stop])
        click.echo(f"t={w:.3f}  RMSE to patch {start}: {d0:.4f}  to patch {stop}: {d1:.4f}")
    if output is not None:
        write_store(output, path)
        click.echo(f"wrote {output}: {steps} decoded vectors")


@cli.command()
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--model", "checkpoints", multiple=True, type=click.Path(path_type=Path), help="A trained checkpoint or run directory; repeat for several.")
@click.option("--baselines", default=",".join(defaults.EVALUATE_BASELINES), show_default=True, help="Comma-separated baselines among rwst1, rwst2, pca, pca-sym (PCA fitted with the grid's exact symmetries), rrr (reduced-rank regression to the leave-one-out map mean; not in the default); 'none' for none.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("results.json"), show_default=True)
@click.option("--on", "scored", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Score on every row of this other store (another simulator, an MHD simulation, the real sky) instead of the test split of COEFFS; everything is still fitted on COEFFS.")
@click.option("--device", default="cpu", show_default=True, help="Device for the VAEs (timings are reported with it).")
@click.option("--seed", type=_SEED, default=0, show_default=True, help="Seed of the prior samples of the generative check and of the bootstrap over test maps.")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(coeffs, checkpoints, baselines, scored, output, device, seed, overwrite, quiet):
    """Compare VAEs, RWST and PCA on the test split of COEFFS (or on every row of --on); write results JSON and print a table."""
    from .analysis.evaluate import evaluate as run_evaluation, markdown_table, write_results
    from .io.store import read_store
    from .models.train import check_not_training
    from .wst.transform import resolve_device

    _check_output(output, overwrite, coeffs, scored, *checkpoints)
    for ckpt in checkpoints:
        check_not_training(ckpt)
    store = read_store(coeffs, columns=("coeffs", "map_index"), splits=("train", "validation", "test"), finite=True)  # validation: picks the paired linear baseline
    other = read_store(scored, columns=("coeffs", "map_index"), finite=True) if scored else None
    names = [] if baselines.strip().lower() == "none" else [b.strip().lower() for b in baselines.split(",") if b.strip()]
    results = run_evaluation(store, checkpoints, names, store_path=coeffs, device=str(resolve_device(device)), seed=seed,
                             progress=not quiet, on=other, on_path=scored)
    write_results(output, results)
    click.echo(markdown_table(results))
    click.echo(f"\nwrote {output}")


@cli.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("figures"), show_default=True)
@click.option("--runs", "run_root", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where the VAE run directories and sweeps.json are [default: beside RESULTS].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def figures(results, out_dir, run_root, quiet):
    """Draw the paper figures (PDF and PNG) from RESULTS (written by `dustvae evaluate`)."""
    from .analysis.figures import make_figures

    made = make_figures(results, out_dir, run_root=run_root, say=click.echo, progress=not quiet)
    click.echo(f"wrote {len(made) // 2} figures (PDF and PNG) to {out_dir}")


@cli.command()
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/default"), show_default=True)
@click.option("--quick", is_flag=True, help="A first look in a few minutes: fewer maps and epochs.")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out, quick, device, quiet):
    """The whole chain on simulated data: dataset, VAE-2 and VAE-1, evaluation, figures.

    Everything goes under OUTPUT; run again, it reuses what is done.
    """
    from .pipeline import DemoPlan, run_demo
    from .wst.transform import resolve_device

    resolve_device(device)
    run_demo(out, DemoPlan.quick() if quick else DemoPlan(), device=device, progress=not quiet, say=click.echo)
    click.echo(f"\nresults: {out / 'results.json'}\nfigures: {out / 'figures'}")


@cli.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FITS file of the flat Q and U maps; several maps go to OUTPUT_0.fits, OUTPUT_1.fits, ...")
@click.option("--row", "rows", type=int, multiple=True, help="Row of SOURCE (store, or patch of a map) or of --latent-file; repeat for several [default: 0].")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Trained run directory or checkpoint: reconstruct SOURCE's rows, or use with --sample / --latent-file.")
@click.option("--sample", type=int, default=None, help="With --model: synthesise SAMPLE vectors drawn from the prior.")
@click.option("--prior", type=click.Choice(("normal", "fitted")), default="normal", show_default=True, help="With --sample: N(0, I) or the prior fitted by `dustvae fit-prior`.")
@click.option("--latent-file", type=click.Path(path_type=Path), default=None, help="With --model: decode the latent means of --row rows of this file (from `dustvae encode`).")
@click.option("--size", type=int, default=None, help=f"Map side in pixels [default: the store's patch size; {defaults.DATASET_PATCH_SIZE} for model vectors].")
@click.option("--patch-size", type=int, default=None, help="FITS maps: patch side [default: a whole flat map; HEALPix: the patches' default].")
@_fields_option()
@_map_options
@click.option("--steps", type=int, default=defaults.SYNTHESIS_STEPS, show_default=True, help="Optimiser iterations (L-BFGS stops sooner when converged).")
@click.option("--optimizer", type=click.Choice(("lbfgs", "adam")), default="lbfgs", show_default=True)
@click.option("--lr", type=float, default=None, help=f"Step size [default: 1 for L-BFGS, {defaults.SYNTHESIS_ADAM_LR} for Adam].")
@click.option("--seed", type=_SEED, default=0, show_default=True, help="Seed of the initial noise (map k uses SEED + k) and of the prior draws.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--threads", type=int, default=defaults.SYNTHESIS_THREADS, show_default=True, help="CPU threads while optimising.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synthesize(source, output, rows, model, sample, prior, latent_file, size, patch_size, fields, frame, freq, steps, optimizer, lr, seed, device, threads, overwrite, quiet):
    """Synthesise periodic Q, U maps whose normalised WST matches a target vector.

    The target is a row of SOURCE (a coefficient store, or a patch of a FITS
    map or patch file), a model's reconstruction of a store row (--model with
    SOURCE), a prior sample (--model --sample N) or a decoded latent (--model
    --latent-file). The amplitude of the patch is restored when known; seeds
    and the target's source are recorded in the FITS header.
    """
    from .synthesis.optimise import synthesize as run_synthesis
    from .synthesis.output import output_paths, write_synthesis
    from .synthesis.targets import resolve_targets
    from .wst.transform import resolve_device

    torch_device = resolve_device(device)
    if sample is not None and sample < 1:
        raise DustvaeError(f"--sample must be positive, got {sample}")
    count = sample if sample is not None else max(1, len(rows))
    paths = output_paths(output, count)
    for path in paths:
        _check_output(path, overwrite, source, model, latent_file)
    targets = resolve_targets(source, rows or (0,), model=model, sample=sample, latent_file=latent_file, seed=seed,
                              prior=prior, size=size, patch_size=patch_size, fields=_split_fields(fields),
                              device=str(torch_device), frame=frame, freq_ghz=freq)
    for k, (target, path) in enumerate(zip(targets, paths)):
        result = run_synthesis(target, steps=steps, optimizer=optimizer, lr=lr, seed=seed + k,
                               device=torch_device, threads=threads, progress=not quiet,
                               description=f"synthesis {k + 1}/{len(targets)}")
        write_synthesis(path, target, result, overwrite=overwrite)
        units = "" if target.amplitude_known else "; amplitude unknown, maps in normalised units"
        click.echo(f"wrote {path}: {', '.join(target.layout.fields)} {target.size} x {target.size} px; loss "
                   f"{result.initial_loss:.3g} -> {result.final_loss:.3g} (RMSE {result.final_loss ** 0.5:.4f} log2) "
                   f"in {result.iterations} {optimizer} iterations, {result.seconds:.1f} s{units}")


@cli.command()
@click.option("--device", default="all", show_default=True,
              help="Devices to self-test: all (the CPU and every GPU torch sees), cpu, cuda or cuda:N.")
def doctor(device):
    """Versions, thread budget and devices, then a short self-test on each device; quote it in bug reports.

    Exit status 0 when every check passes, 2 when one fails.
    """
    from . import doctor as checkup

    status = checkup.main(checkup.parse_devices(device), echo=lambda line: click.echo(line))
    if status:
        raise click.exceptions.Exit(status)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning user errors into one line and exit status 2."""
    try:
        cli.main(args=argv, prog_name="dustvae", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("dustvae: interrupted; nothing written is damaged: run the same command again to resume (for train, add --resume)", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"dustvae: error: {exc.format_message()} (see --help)", err=True)
        return 2
    except DustvaeError as exc:
        if _DEBUG["on"]:
            traceback.print_exc()
        click.echo(f"dustvae: error: {exc}", err=True)
        return 2
    except OSError as exc:  # the file system said no (permissions, full disk): the user's to fix
        if _DEBUG["on"]:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"dustvae: error: {exc.strerror or exc}{where}; check the path and free space", err=True)
        return 2
    except (MemoryError, RuntimeError) as exc:  # an allocation the checks before it did not foresee
        asked = _asked(exc)
        if asked is None:  # a RuntimeError that is not about memory: a bug, shown as one
            raise
        if _DEBUG["on"]:
            traceback.print_exc()
        click.echo(f"dustvae: error: out of memory ({asked}); give smaller inputs or sizes, or use a machine "
                   f"with more memory", err=True)
        return 2
    return 0


def _asked(exc: BaseException) -> str | None:
    """What a failed allocation asked for (NumPy and torch say how much), or None when ``exc`` is not one."""
    import re

    from .memory import format_bytes

    shape, dtype = getattr(exc, "shape", None), getattr(exc, "dtype", None)
    if isinstance(exc, MemoryError) and shape is not None and dtype is not None:  # NumPy's
        return f"{format_bytes(float(np.prod(shape, dtype=float)) * dtype.itemsize)} asked for an array of shape {tuple(shape)}"
    text = str(exc)
    torch_cpu = re.search(r"can't allocate memory: you tried to allocate (\d+) bytes", text)
    if torch_cpu:
        return f"{format_bytes(int(torch_cpu[1]))} asked for a tensor"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch's on a GPU
        return text.splitlines()[0] if text else "an allocation failed"
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
