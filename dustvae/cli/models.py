"""Commands on trained models: train, encode, reconstruct, sample, fit-prior, interpolate."""

from __future__ import annotations

from pathlib import Path

import click

from .. import defaults
from .main import cli
from .options import (DEVICE_HELP, OVERWRITE_HELP, SEED, check_output, joined_ranks, model_and_open_store,
                      model_and_store, on_ranks)

@cli.command()
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--latent", "latent_dim", type=int, default=defaults.LATENT_VAE2, show_default=True,
              help="Latent size: 170 (VAE-1), 85 (VAE-2) or another member of the family.")
@click.option("-o", "--output", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory [default: runs/MODEL-NAME, e.g. runs/vae-85].")
@click.option("--epochs", type=int, default=defaults.TRAIN_EPOCHS, show_default=True,
              help="Most epochs (the cosine schedule's length); early stopping usually ends sooner.")
@click.option("--batch-size", type=int, default=defaults.TRAIN_BATCH_SIZE, show_default=True)
@click.option("--lr", type=float, default=defaults.TRAIN_LR, show_default=True,
              help="AdamW's peak learning rate; cosine decay to 1/100 of it.")
@click.option("--weight-decay", type=float, default=defaults.TRAIN_WEIGHT_DECAY, show_default=True, help="AdamW's decoupled weight decay.")
@click.option("--beta", type=float, default=defaults.TRAIN_BETA, show_default=True,
              help="KL weight against the mean squared log2 reconstruction error (see dustvae.models.loss).")
@click.option("--kl", "kl_form", type=click.Choice(defaults.KL_FORMS), default=defaults.KL_FORMS[0], show_default=True,
              help="Analytic KL or the single-sample Monte-Carlo estimate.")
@click.option("--warmup", "warmup_epochs", type=int, default=None,
              help=f"Epochs of linear KL warm-up; each is kept as best.pt whatever its validation RMSE (the objective "
                   f"is still changing) [default: {defaults.TRAIN_WARMUP_EPOCHS}; 0 with --pca-init, whose start is "
                   f"already whitened].")
@click.option("--patience", type=int, default=defaults.TRAIN_PATIENCE, show_default=True,
              help="Epochs without a lower validation RMSE before stopping.")
@click.option("--grad-clip", type=float, default=defaults.TRAIN_GRAD_CLIP, show_default=True,
              help="Gradient-norm clip (metrics.jsonl records how often it acts).")
@click.option("--augment", is_flag=True,
              help="Replace each training vector, at every step, by a random exact symmetry of its patch (90-degree "
                   "rotation, mirror).")
@click.option("--linear-path", is_flag=True, help="The variant with linear paths beside the convolutions (named vae-D+lin).")
@click.option("--pca-init", is_flag=True, help="Start the linear paths from the training split's PCA (vae-D+pca; implies --linear-path).")
@click.option("--pca-linear-lr-scale", type=float, default=defaults.TRAIN_PCA_LINEAR_LR_SCALE, show_default=True,
              help="With --pca-init: learning-rate factor of the PCA-started linear paths (no weight decay on them).")
@click.option("--target", type=click.Choice(defaults.TRAIN_TARGETS), default=defaults.TRAIN_TARGETS[0], show_default=True,
              help="What the model learns to reconstruct: the patch's own vector, or its map's statistics (the "
                   "leave-one-out mean of the other training patches of its map; named vae-D+map, with --pca-init "
                   "started from the reduced-rank regression: vae-D+rrr+map).")
@click.option("--output-stage", type=click.Choice(defaults.OUTPUT_STAGES), default=defaults.OUTPUT_STAGES[0], show_default=True,
              help="Decoder's last stage: as in the tables, without its ReLU and BatchNorm, or wider.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--resume", is_flag=True, help="Continue the run in the output directory (with a larger --epochs, also a finished one).")
@click.option("--dry-run", is_flag=True, help="Print the models' layers and parameter counts, and stop.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(coeffs, latent_dim, run_dir, epochs, batch_size, lr, weight_decay, beta, kl_form, warmup_epochs, patience, grad_clip,
          augment, linear_path, pca_init, pca_linear_lr_scale, target, output_stage, seed, device, resume, dry_run, quiet):
    """Train a VAE on the train split of COEFFS (a coefficient store); early stopping on validation RMSE."""
    from ..io.store import read_store
    from dataclasses import replace

    from ..models.train import ModelConfig, TrainConfig, check_vae_store, train as run_training
    from ..analysis import registry
    from ..models.vae import DilatedConvVAE, model_name

    model_config = ModelConfig(latent_dim=latent_dim, linear_path=linear_path or pca_init, output_stage=output_stage,
                               pca_init=pca_init, target=target)
    config = TrainConfig(model_config, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, beta=beta,
                         kl_form=kl_form, warmup_epochs=warmup_epochs, patience=patience, grad_clip=grad_clip,
                         augment=augment, seed=seed, pca_linear_lr_scale=pca_linear_lr_scale)
    if dry_run:
        for d in sorted({defaults.LATENT_VAE1, defaults.LATENT_VAE2, latent_dim}, reverse=True):
            model = DilatedConvVAE.from_config(replace(model_config, latent_dim=d))
            label = f" ({registry.TABLE_VAES[d]})" if d in registry.TABLE_VAES and model.name == model_name(d) else ""
            click.echo(f"{model.name}{label}: {sum(p.numel() for p in model.parameters()):,} parameters")
        click.echo(str(DilatedConvVAE.from_config(model_config)))
        return
    store = read_store(coeffs, columns=("coeffs", "map_index", "centers"), splits=("train", "validation"),
                       finite=True)  # what training reads
    check_vae_store(store, str(coeffs))
    run_dir = run_dir or Path("runs") / config.name
    with joined_ranks(device) as ranks:
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
            click.echo(f"{run_dir}: {kept}; stopped after {result.epochs_run} epochs by {how}{on_ranks(ranks)}; "
                       f"checkpoint {run_dir / 'best.pt'}")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Latent file (HDF5).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def encode(ckpt, coeffs, output, device, overwrite):
    """Posterior means and log-variances of every patch of COEFFS under model CKPT."""
    from ..io.latents import write_latents
    from ..models.apply import encode_store

    check_output(output, overwrite, ckpt, coeffs)
    model, payload, store = model_and_open_store(ckpt, coeffs, device)
    with store:  # read block by block: one block of vectors in memory at a time
        latents = encode_store(model, payload, store, coeffs.name)
    write_latents(output, latents)
    click.echo(f"wrote {output}: {len(latents.mean)} x {model.latent_dim} latent means and log-variances ({model.name})")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Store of reconstructions.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def reconstruct(ckpt, coeffs, output, device, overwrite):
    """Encode and decode every patch of COEFFS (posterior mean) into a store of the same schema."""
    from ..models.apply import reconstruct_to_file

    check_output(output, overwrite, ckpt, coeffs)
    model, payload, store = model_and_open_store(ckpt, coeffs, device)
    with store:  # read and written block by block
        rmse = reconstruct_to_file(model, payload, store, output, coeffs.name)
    click.echo(f"wrote {output}: {len(store)} reconstructions by {model.name}; RMSE {rmse:.4f} (log2 units)")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("-n", "count", type=int, default=100, show_default=True, help="Number of samples.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Store of generated vectors.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--prior", type=click.Choice(defaults.PRIORS), default=defaults.PRIORS[0], show_default=True,
              help="Draw latents from N(0, I), or from the density fitted by `dustvae fit-prior`.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def sample(ckpt, count, output, seed, prior, device, overwrite):
    """Generate coefficient vectors from the prior of model CKPT, seeded."""
    from ..io.store_writer import write_store
    from ..models.apply import load_fitted_prior, sample_store
    from ..models.checkpoint import load_model
    from ..devices import resolve_device

    check_output(output, overwrite, ckpt)
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
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help="Replace the prior file beside CKPT if it exists.")
def fit_prior(ckpt, coeffs, components, seed, device, overwrite):
    """Fit a Gaussian mixture to the training posterior means of model CKPT, for `sample --prior fitted`.

    COEFFS is the store the model was trained on; its training split is used.
    The mixture is written beside the checkpoint (best.pt -> best.prior.npz).
    """
    from ..models.apply import fit_store_prior, prior_path
    from ..models.prior import save_prior

    path = prior_path(ckpt)
    check_output(path, overwrite, ckpt, coeffs)
    model, payload, store = model_and_store(ckpt, coeffs, device)
    density = fit_store_prior(model, payload, store, components, seed, coeffs.name)
    save_prior(path, density)
    click.echo(f"wrote {path}: {density.summary()} of {model.name}")


@cli.command()
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.argument("coeffs", type=click.Path(path_type=Path))
@click.option("--from", "start", type=int, required=True, help="Index of the first patch.")
@click.option("--to", "stop", type=int, required=True, help="Index of the last patch.")
@click.option("--steps", type=int, default=8, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Store of the decoded path [default: print a summary only].")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--overwrite", is_flag=True, help=OVERWRITE_HELP)
def interpolate(ckpt, coeffs, start, stop, steps, output, device, overwrite):
    """Decode the straight latent path between patches --from and --to of COEFFS."""
    from ..io.store_writer import write_store
    from ..models.apply import interpolate_store
    from ..numerics import rmse

    if output is not None:
        check_output(output, overwrite, ckpt, coeffs)
    model, payload, store = model_and_store(ckpt, coeffs, device)
    path, weights = interpolate_store(model, payload, store, start, stop, steps, coeffs.name)
    for w, vec in zip(weights, path.coeffs):
        d0, d1 = rmse(vec, store.coeffs[start]), rmse(vec, store.coeffs[stop])
        click.echo(f"t={w:.3f}  RMSE to patch {start}: {d0:.4f}  to patch {stop}: {d1:.4f}")
    if output is not None:
        write_store(output, path)
        click.echo(f"wrote {output}: {steps} decoded vectors")
