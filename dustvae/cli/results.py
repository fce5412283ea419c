"""Commands that compare and report: evaluate, figures, demo, doctor."""

from __future__ import annotations

from pathlib import Path

import click

from .. import defaults
from .main import cli
from .options import SEED, check_output

@cli.command()
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--model", "checkpoints", multiple=True, type=click.Path(path_type=Path),
              help="A trained checkpoint or run directory; repeat for several.")
@click.option("--baselines", default=",".join(defaults.EVALUATE_BASELINES), show_default=True,
              help="Comma-separated baselines among rwst1, rwst2, pca, pca-sym (PCA fitted with the grid's exact "
                   "symmetries), rrr (reduced-rank regression to the leave-one-out map mean; not in the default); "
                   "'none' for none.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("results.json"), show_default=True)
@click.option("--on", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Score on every row of this other store (another simulator, an MHD simulation, the real sky) instead"
                   " of the test split of COEFFS; everything is still fitted on COEFFS.")
@click.option("--device", default="cpu", show_default=True, help="Device for the VAEs (timings are reported with it).")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the prior samples of the generative check and of the bootstrap over test maps.")
@click.option("--overwrite", is_flag=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(coeffs, checkpoints, baselines, on, output, device, seed, overwrite, quiet):
    """Compare VAEs, RWST and PCA on the test split of COEFFS (or on every row of --on); write results JSON and print a table."""
    from ..analysis.evaluate import evaluate as run_evaluation, markdown_table, write_results
    from ..io.store import read_store
    from ..models.train import check_not_training
    from ..devices import resolve_device

    check_output(output, overwrite, coeffs, on, *checkpoints)
    for ckpt in checkpoints:
        check_not_training(ckpt)
    store = read_store(coeffs, columns=("coeffs", "map_index"), splits=("train", "validation", "test"),
                       finite=True)  # validation: picks the paired linear baseline
    other = read_store(on, columns=("coeffs", "map_index"), finite=True) if on else None
    names = [] if baselines.strip().lower() == "none" else [b.strip().lower() for b in baselines.split(",") if b.strip()]
    results = run_evaluation(store, checkpoints, names, store_path=coeffs, device=str(resolve_device(device)), seed=seed,
                             progress=not quiet, on=other, on_path=on)
    write_results(output, results)
    click.echo(markdown_table(results))
    click.echo(f"\nwrote {output}")


@cli.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("figures"), show_default=True)
@click.option("--runs", "run_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the VAE run directories and sweeps.json are [default: beside RESULTS].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def figures(results, out_dir, run_root, quiet):
    """Draw the paper figures (PDF and PNG) from RESULTS (written by `dustvae evaluate`)."""
    from ..analysis.figure_set import make_figures

    made = make_figures(results, out_dir, run_root=run_root, say=click.echo, progress=not quiet)
    click.echo(f"wrote {len(made) // 2} figures (PDF and PNG) to {out_dir}")


@cli.command()
@click.option("-o", "--output", "out", type=click.Path(file_okay=False, path_type=Path), default=Path(defaults.DEMO_RUN), show_default=True)
@click.option("--quick", is_flag=True, help="A first look in a few minutes: fewer maps and epochs.")
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out, quick, device, quiet):
    """The whole chain on simulated data: dataset, VAE-2 and VAE-1, evaluation, figures.

    Everything goes under OUTPUT; run again, it reuses what is done.
    """
    from ..pipeline import DemoPlan, run_demo
    from ..devices import resolve_device

    resolve_device(device)
    run_demo(out, DemoPlan.quick() if quick else DemoPlan(), device=device, progress=not quiet, say=click.echo)
    click.echo(f"\nresults: {out / 'results.json'}\nfigures: {out / 'figures'}")


@cli.command()
@click.option("--device", default="all", show_default=True,
              help="Devices to self-test: all (the CPU and every GPU torch sees), cpu, cuda or cuda:N.")
def doctor(device):
    """Versions, thread budget and devices, then a short self-test on each device; quote it in bug reports.

    Exit status 0 when every check passes, 2 when one fails.
    """
    from .. import doctor as checkup

    status = checkup.main(checkup.parse_devices(device), echo=lambda line: click.echo(line))
    if status:
        raise click.exceptions.Exit(status)
