"""Commands that make data: simulate, plot-map, patches, compute-wst, make-dataset, merge."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import click
import numpy as np

from .. import defaults
from ..errors import DustvaeError
from ..sky.filaments import FilamentParams
from ..sky.models import DATASET_MODELS, SKY_MODELS
from ..sky.simulate import DustParams
from .main import cli
from .options import (SEED, check_output, check_positive_scale, dataclass_options, fields_option, load_patch_input, map_options,
                      on_ranks, patch_kwargs, patch_options, shard_or_ranks, sharded, split_fields, wst_options)


#: Peak memory of a simulation per map pixel: measured 520-530 B for flat turbulence and filament maps
#: (512-2048 px) and 570-610 B for HEALPix (nside 256-512), with a margin.
_SIMULATION_BYTES_PER_PIXEL = 700


@cli.command()
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=click.Choice(SKY_MODELS), default="turbulence", show_default=True,
              help="turbulence: Gaussian mean + turbulent field; filaments: projected 3D filaments along that field.")
@click.option("--nside", type=int, default=None, help="Write a HEALPix map at this nside (Planck's layout; turbulence model).")
@click.option("--size", type=int, default=None, help="Write a flat periodic map of SIZE x SIZE pixels.")
@click.option("--pixel-scale", type=float, default=defaults.FLAT_PIXEL_SCALE_ARCMIN, show_default=True,
              help="Flat maps: pixel side in arcmin.")
@dataclass_options(DustParams)
@dataclass_options(FilamentParams, "Filaments: ")
@click.option("--seed", type=SEED, default=DustParams.seed, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def simulate(output, model, nside, size, pixel_scale, seed, overwrite, **physics):
    """Simulate dust-like polarized I, Q, U maps into OUTPUT (FITS).

    HEALPix with --nside (default 256 when neither is given), or a flat periodic
    map with --size. The filament model makes flat maps only. Every physical
    parameter is written to the FITS header.
    """
    from ..io.maps import write_flat_map, write_healpix_map
    from ..memory import check_memory
    from ..sky.filaments import simulate_filaments
    from ..sky.simulate import simulate_flat, simulate_healpix

    if nside is not None and size is not None:
        raise DustvaeError("give either --nside (HEALPix) or --size (flat), not both")
    if model == "filaments" and size is None:
        raise DustvaeError("the filament model makes flat maps: give --size instead of --nside")
    if nside is not None and (nside < 1 or nside & (nside - 1)):
        raise DustvaeError(f"--nside {nside} is not a power of 2 (1, 2, 4, ..., e.g. 256)")
    if size is not None and size < 1:
        raise DustvaeError(f"--size {size} must be a positive number of pixels")
    check_positive_scale(pixel_scale)
    params = DustParams(**{f.name: physics[f.name] for f in fields(DustParams) if f.name in physics}, seed=seed)
    if model == "filaments":
        fil = FilamentParams(**{f.name: physics[f.name] for f in fields(FilamentParams) if f.name in physics}, field=params)
    pixels = size * size if size is not None else 12 * (nside or 256) ** 2
    check_memory(pixels * _SIMULATION_BYTES_PER_PIXEL, f"a map of {pixels:,} pixels",
                 "choose a smaller --size" if size is not None else "choose a smaller --nside")
    check_output(output, overwrite)  # after every option is checked: a bad option is reported first
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
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Image file [default: MAP with suffix .png].")
@click.option("--fields", default="I,Q,U", show_default=True,
              help="Comma-separated fields to draw (Q,U for the output of `dustvae synthesize`); "
                   "the polarized intensity P is drawn beside Q and U.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def plot_map(map_path, output, fields, overwrite):
    """Draw I, Q, U (or the --fields given) and the polarized intensity of a flat FITS MAP (a quick look)."""
    from ..analysis.mapview import plot_flat_map
    from ..io.maps import FlatMap, read_map

    output = output or map_path.with_suffix(".png")
    check_output(output, overwrite, map_path)
    if not map_path.exists():
        raise DustvaeError(f"{map_path}: no such file; check the path")
    sky = read_map(map_path, split_fields(fields))
    if not isinstance(sky, FlatMap):
        raise DustvaeError(f"{map_path}: plot-map draws flat maps; use healpy.mollview for HEALPix maps")
    plot_flat_map(sky.fields, output, title=map_path.name)
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("map_path", metavar="MAP", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Patch file (HDF5) [default: MAP with suffix .patches.h5].")
@fields_option()
@patch_options
@map_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def patches(map_path, output, fields, patch_size, pixel_scale, centers_nside, b_min, max_masked, frame, freq, overwrite):
    """Cut square patches from MAP (HEALPix or flat FITS) into an HDF5 patch file."""
    from ..io.atomic import sha256sum
    from ..io.maps import read_map
    from ..io.patchfile import write_patches
    from ..sky.patches import cut_patches

    output = output or map_path.with_suffix(".patches.h5")
    check_output(output, overwrite, map_path)
    sky = read_map(map_path, split_fields(fields), frame=frame, freq_ghz=freq)
    patch_set = cut_patches(sky, patch_size, **patch_kwargs(pixel_scale, centers_nside, b_min, max_masked))
    patch_set.source_name, patch_set.source_sha256 = map_path.name, sha256sum(map_path)
    if len(patch_set) == 0:
        raise DustvaeError(f"all {patch_set.n_dropped} patches exceed the masked fraction {max_masked}; raise --max-masked")
    write_patches(output, patch_set)
    click.echo(
        f"wrote {output}: {len(patch_set)} patches of {patch_size} px "
        f"({patch_set.pixel_scale_arcmin:.3g} arcmin/px), {patch_set.n_dropped} dropped as masked"
    )


@cli.command("compute-wst")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Coefficient store (HDF5) [default: INPUT with suffix .wst.h5].")
@fields_option()
@patch_options
@map_options
@wst_options
@click.option("--boundary", type=click.Choice(("auto",) + defaults.BOUNDARIES), default="auto", show_default=True,
              help="reflect (sky patches) or periodic (periodic boxes); auto picks periodic for whole periodic maps.")
@click.option("--split", type=click.Choice(defaults.SKY_SPLITS), default=defaults.SKY_SPLITS[0], show_default=True,
              help="regions: store a train/validation/test split of the sky by region, with a guard band of one patch "
                   "width left out between splits (for stores of one map; see docs/formats.rst).")
@click.option("--split-seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the regions' assignment to the splits.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def compute_wst(input_path, output, fields, patch_size, pixel_scale, centers_nside, b_min, max_masked, frame, freq, J, L, device,
                batch_size, engine, shard, boundary, split, split_seed, overwrite, quiet):
    """WST coefficients of every patch of INPUT (a FITS map or a patch file) into a store.

    Interrupted runs leave no output; run the same command again to resume.
    """
    from ..sky.patches import check_patch_size
    from ..wst.compute import compute_store
    from ..wst.shard import Shard
    from ..devices import resolve_device
    from ..wst.transform import check_transform

    output = output or input_path.with_suffix(".wst.h5")
    check_output(output, overwrite, input_path)
    check_patch_size(patch_size, J)
    check_transform(patch_size, J, L, "reflect" if boundary == "auto" else boundary, engine)
    resolve_device(device)
    shard = shard_or_ranks(shard)
    patch_set = load_patch_input(input_path, fields, patch_size, patch_kwargs(pixel_scale, centers_nside, b_min, max_masked),
                                  dict(frame=frame, freq_ghz=freq))
    if boundary == "auto":
        boundary = "periodic" if patch_set.periodic else "reflect"

    codes, split_attrs = None, {}
    if split == "regions":
        from ..sky.regions import patch_width, region_split

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

    store, ranks = sharded(output, shard, compute, device, not quiet)
    part = ""
    if shard is not None:
        start, stop = shard.span(len(patch_set))
        part = f" (shard {shard}: patches {start}-{stop - 1} of {len(patch_set)})"
    if ranks.is_main:
        if codes is not None:
            counts = np.bincount(codes, minlength=4)
            part += (f"; split by {split_attrs['split_regions']} sky regions: train/validation/test/guard = "
                     f"{counts[0]}/{counts[1]}/{counts[2]}/{counts[3]}")
        click.echo(f"wrote {output}: {len(store)} patches x {store.coeffs.shape[1]} coefficients "
                   f"({boundary} boundary){part}{on_ranks(ranks)}")


@cli.command("make-dataset")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--maps", "n_maps", type=int, default=defaults.DATASET_MAPS, show_default=True, help="Number of simulated maps.")
@click.option("--map-size", type=int, default=defaults.DATASET_MAP_SIZE, show_default=True, help="Side of each simulated map in pixels.")
@click.option("--patch-size", type=int, default=defaults.DATASET_PATCH_SIZE, show_default=True, help="Patch side in pixels.")
@click.option("--model", type=click.Choice(DATASET_MODELS), default=defaults.DATASET_MODEL, show_default=True,
              help="Sky model of the maps: turbulence, filaments, or mixed (each map either, at random).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--workers", type=int, default=None, help="Processes simulating maps [default: all available cores].")
@wst_options
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def make_dataset_cmd(output, n_maps, map_size, patch_size, model, seed, workers, J, L, device, batch_size, engine, shard, overwrite, quiet):
    """Simulate the default training data: labelled WST coefficients split by map into OUTPUT.

    Parameters are drawn per map from documented ranges (see dustvae.dataset).
    Interrupted runs resume.
    """
    from ..sky.patches import check_patch_size
    from ..dataset import DatasetSpec, make_dataset
    from ..wst.shard import Shard
    from ..devices import resolve_device
    from ..wst.transform import check_transform

    check_output(output, overwrite)
    check_patch_size(patch_size, J)
    check_transform(patch_size, J, L, "reflect", engine)
    resolve_device(device)
    if workers is not None and workers < 1:
        raise DustvaeError("--workers must be at least 1")
    spec = DatasetSpec(n_maps=n_maps, model=model, map_size=map_size, patch_size=patch_size, seed=seed, J=J, L=L)
    shard = shard_or_ranks(shard)

    def compute(part: Shard | None, path: Path, show: bool):
        return make_dataset(path, spec, device=device, batch_size=batch_size, progress=show, workers=workers,
                            engine=engine, shard=part)

    store, ranks = sharded(output, shard, compute, device, not quiet)
    if not ranks.is_main:
        return
    counts = np.bincount(store.split, minlength=3)
    part = f" (shard {shard}: maps {store.attrs['shard_start']}-{store.attrs['shard_stop'] - 1} of {n_maps})" if shard else ""
    click.echo(f"wrote {output}: {len(store)} patches from {len(np.unique(store.map_index))} {model} maps{part}; "
               f"train/validation/test = {counts[0]}/{counts[1]}/{counts[2]}{on_ranks(ranks)}")


@cli.command()
@click.argument("parts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The merged store.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def merge(parts, output, overwrite):
    """Join the shard stores PARTS of one compute-wst or make-dataset run (written with --shard) into OUTPUT.

    The parts must come from the same inputs, settings and versions and hold
    every shard once; the result is the store an unsharded run writes.
    """
    from ..io.store import read_store
    from ..io.store_writer import write_store
    from ..wst.shard import merge_stores

    check_output(output, overwrite, *parts)
    store = merge_stores([read_store(p) for p in parts], [str(p) for p in parts])
    write_store(output, store)
    click.echo(f"wrote {output}: {len(store)} patches from {len(parts)} parts")
