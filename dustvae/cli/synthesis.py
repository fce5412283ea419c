"""The synthesize command: maps whose WST matches a target vector."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import click

from .. import defaults
from ..errors import DustvaeError
from .main import cli
from .options import SEED, check_output, fields_option, map_options, split_fields

if TYPE_CHECKING:
    from ..synthesis.targets import Target

@cli.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="FITS file of the flat Q and U maps; several maps go to OUTPUT_0.fits, OUTPUT_1.fits, ...")
@click.option("--row", "rows", type=int, multiple=True,
              help="Row of SOURCE (store, or patch of a map) or of --latent-file; repeat for several [default: 0].")
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="Trained run directory or checkpoint: reconstruct SOURCE's rows, or use with --sample / "
                   "--latent-file.")
@click.option("--sample", type=int, default=None, help="With --model: synthesise SAMPLE vectors drawn from the prior.")
@click.option("--prior", type=click.Choice(defaults.PRIORS), default=defaults.PRIORS[0], show_default=True,
              help="With --sample: N(0, I) or the prior fitted by `dustvae fit-prior`.")
@click.option("--latent-file", type=click.Path(path_type=Path), default=None,
              help="With --model: decode the latent means of --row rows of this file (from `dustvae encode`).")
@click.option("--size", type=int, default=None,
              help=f"Map side in pixels [default: the store's patch size; {defaults.DATASET_PATCH_SIZE} for model "
                   f"vectors].")
@click.option("--patch-size", type=int, default=None,
              help="FITS maps: patch side [default: a whole flat map; HEALPix: the patches' default].")
@fields_option()
@map_options
@click.option("--steps", type=int, default=defaults.SYNTHESIS_STEPS, show_default=True,
              help="Optimiser iterations (L-BFGS stops sooner when converged).")
@click.option("--optimizer", type=click.Choice(defaults.SYNTHESIS_OPTIMIZERS), default=defaults.SYNTHESIS_OPTIMIZERS[0], show_default=True)
@click.option("--lr", type=float, default=None, help=f"Step size [default: 1 for L-BFGS, {defaults.SYNTHESIS_ADAM_LR} for Adam].")
@click.option("--constraints", type=click.Choice(defaults.SYNTHESIS_CONSTRAINTS), default=defaults.SYNTHESIS_CONSTRAINTS[0],
              show_default=True, help="What to match: the WST vector, or also the envelope statistics of the original "
              "map (SOURCE a FITS map or patch file; they bring back much of the tail of P).")
@click.option("--boundary", type=click.Choice(defaults.BOUNDARIES), default=None,
              help="The WST operator's boundary [default: the one the target vector was computed with].")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the initial noise (map k uses SEED + k) and of the prior draws.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--threads", type=int, default=defaults.SYNTHESIS_THREADS, show_default=True, help="CPU threads while optimising.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synthesize(source, output, rows, model, sample, prior, latent_file, size, patch_size, fields, frame, freq, steps, optimizer, lr,
               constraints, boundary, seed, device, threads, overwrite, quiet):
    """Synthesise periodic Q, U maps whose normalised WST matches a target vector.

    The target is a row of SOURCE (a coefficient store, or a patch of a FITS
    map or patch file), a model's reconstruction of a store row (--model with
    SOURCE), a prior sample (--model --sample N) or a decoded latent (--model
    --latent-file). The amplitude of the patch is restored when known; seeds
    and the target's source are recorded in the FITS header.
    """
    from ..synthesis.optimize import synthesize as run_synthesis
    from ..synthesis.output import output_paths, write_synthesis
    from ..devices import resolve_device

    torch_device = resolve_device(device)
    if sample is not None and sample < 1:
        raise DustvaeError(f"--sample must be positive, got {sample}")
    count = sample if sample is not None else max(1, len(rows))
    paths = output_paths(output, count)
    for path in paths:
        check_output(path, overwrite, source, model, latent_file)
    targets = resolve_targets(source, rows or (0,), model=model, sample=sample, latent_file=latent_file, seed=seed,
                              prior=prior, size=size, patch_size=patch_size, fields=split_fields(fields),
                              device=str(torch_device), frame=frame, freq_ghz=freq)
    for k, (target, path) in enumerate(zip(targets, paths)):
        result = run_synthesis(target, steps=steps, optimizer=optimizer, lr=lr, seed=seed + k,
                               device=torch_device, threads=threads, progress=not quiet,
                               description=f"synthesis {k + 1}/{len(targets)}", constraints=constraints,
                               boundary=boundary)
        write_synthesis(path, target, result, overwrite=overwrite)
        units = "" if target.amplitude_known else "; amplitude unknown, maps in normalised units"
        click.echo(f"wrote {path}: {', '.join(target.layout.fields)} {target.size} x {target.size} px; loss "
                   f"{result.initial_loss:.3g} -> {result.final_loss:.3g} (WST RMSE {result.rmse(target.vector):.4f} log2"
                   f"{'' if result.envelope_rmse is None else f', envelope statistics {result.envelope_rmse:.4f}'}) "
                   f"in {result.iterations} {optimizer} iterations, {result.seconds:.1f} s{units}")


# Which targets the options name: here, as the command's own rules, in its flags.
def _is_store(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            return str(h5.attrs.get("format", "")) == "dustvae-wst"
    except (OSError, ValueError):
        return False


def resolve_targets(source: str | Path | None = None, rows: Sequence[int] = (0,), *, model: str | Path | None = None,
                    sample: int | None = None, latent_file: str | Path | None = None, seed: int = 0,
                    prior: str = "normal", size: int | None = None, patch_size: int | None = None,
                    fields: Sequence[str] = defaults.FIELDS, device: str = "cpu", frame: str | None = None,
                    freq_ghz: float | None = None) -> list[Target]:
    """Targets from the inputs ``dustvae synthesize`` accepts, with one-line errors for bad combinations of its options.

    ``source`` alone: rows of a store, or patches of a FITS map or patch file.
    ``source`` (a store) and ``model``: the model's reconstructions of those rows.
    ``model`` and ``sample``: that many draws from ``prior`` (seeded by ``seed``).
    ``model`` and ``latent_file``: the decoded latent means of ``rows``.
    ``frame`` and ``freq_ghz`` say how to read a HEALPix map (see :func:`~dustvae.io.maps.read_map`).
    """
    from ..synthesis.targets import (targets_from_latents, targets_from_map_file, targets_from_prior,
                                     targets_from_reconstruction, targets_from_store_file)

    if sample is not None and latent_file is not None:
        raise DustvaeError("give either --sample or --latent-file, not both")
    if model is None:
        if sample is not None or latent_file is not None:
            raise DustvaeError("--sample and --latent-file need --model RUN_DIR")
        if source is None:
            raise DustvaeError("nothing to synthesise: give a store or map, or --model with --sample N or --latent-file")
        path = Path(source)
        if not path.exists():
            raise DustvaeError(f"{path}: no such file; check the path")
        if _is_store(path):
            return targets_from_store_file(path, rows, size=size)
        return targets_from_map_file(path, rows, fields=fields, patch_size=patch_size, size=size, device=device,
                                     frame=frame, freq_ghz=freq_ghz)
    if sample is not None:
        if source is not None:
            raise DustvaeError("--sample draws from the prior; give no store or map with it")
        return targets_from_prior(model, sample, seed=seed, prior=prior, size=size, device=device)
    if latent_file is not None:
        if source is not None:
            raise DustvaeError("--latent-file decodes latents; give no store or map with it")
        return targets_from_latents(model, latent_file, rows, size=size, device=device)
    if source is None:
        raise DustvaeError("--model needs a store to reconstruct, --sample N or --latent-file")
    if not Path(source).exists():
        raise DustvaeError(f"{source}: no such file; check the path")
    if not _is_store(Path(source)):
        raise DustvaeError(f"{source}: --model reconstructs rows of a coefficient store; compute one with `dustvae compute-wst`")
    return targets_from_reconstruction(model, source, rows, size=size, device=device)
