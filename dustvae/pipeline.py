"""The whole chain on the embedded default data: dataset, VAE-2 and VAE-1, their PCA-started variants, evaluation, figures.

Every stage writes its outputs atomically under one directory and is
skipped when they already exist, so running the demo again reuses what is
done (an interrupted training resumes from its last epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import defaults
from .io.store import read_store


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of a demo run. ``quick`` gives a first look in a few minutes on 2 CPU cores."""

    n_maps: int = defaults.DATASET_MAPS
    patch_size: int = defaults.DATASET_PATCH_SIZE
    model: str = defaults.DATASET_MODEL
    epochs: int = 40
    patience: int = 8
    latents: tuple[int, ...] = (defaults.LATENT_VAE2, defaults.LATENT_VAE1)
    #: The PCA-started variant (``vae-D+pca``: the linear start kept as a candidate, no KL warm-up, trained
    #: with the grid's symmetries) at these sizes; its best epochs come early, so a short patience suffices.
    variant_latents: tuple[int, ...] = (defaults.LATENT_VAE2, defaults.LATENT_VAE1)
    variant_epochs: int = 20
    variant_patience: int = 3

    @classmethod
    def quick(cls) -> "DemoPlan":
        """A first look: 64-px patches of 60 maps (960 patches), a few epochs."""
        return cls(n_maps=60, patch_size=64, epochs=4, patience=4, variant_epochs=2, variant_patience=2)

    def configs(self) -> list:
        """The training configurations of the demo, in the order they run: the table VAEs, then the variants."""
        from .models.model_config import ModelConfig
        from .models.train_config import TrainConfig

        table = [TrainConfig(ModelConfig(d), epochs=self.epochs, patience=self.patience) for d in self.latents]
        started = [TrainConfig(ModelConfig(d, linear_path=True, pca_init=True), epochs=self.variant_epochs,
                               patience=self.variant_patience, augment=True) for d in self.variant_latents]
        return table + started


def run_demo(out: str | Path, plan: DemoPlan = DemoPlan(), *, device: str = "auto", progress: bool = True,
             say: Callable[[str], None] = print, figures: bool = True) -> dict:
    """Run (or resume) the chain under ``out``; return the results dictionary."""
    from .analysis import registry
    from .analysis.evaluate import evaluate
    from .analysis.results import RESULTS_VERSION, read_results, write_results
    from .analysis.tables import markdown_table
    from .models.train import train_unless_finished
    from .dataset import DatasetSpec, make_dataset

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data.h5"
    configs = plan.configs()
    steps = len(configs) + 2
    if data.exists():
        say(f"[1/{steps}] dataset: reusing {data}")
    else:
        say(f"[1/{steps}] dataset: simulating {plan.n_maps} {plan.model} maps, {plan.patch_size}-px patches, "
            f"and computing their WST -> {data}")
        spec = DatasetSpec(n_maps=plan.n_maps, patch_size=plan.patch_size, model=plan.model)
        make_dataset(data, spec, device=device, progress=progress)
    store = read_store(data)

    checkpoints = []
    for step, config in enumerate(configs, start=2):
        run_dir = out / config.name
        say(f"[{step}/{steps}] {registry.label(config.name)}: {config.model.latent_dim} latents (at most {config.epochs} "
            f"epochs) -> {run_dir}")
        best, trained = train_unless_finished(store, run_dir, config, device=device, progress=progress, say=say)
        if not trained:
            say(f"      reusing the finished run in {run_dir}")
        checkpoints.append(best)

    results_path = out / "results.json"
    stale = _stale_results(results_path, store, checkpoints, read_results) if results_path.exists() else None
    if stale is not None:
        aside = results_path.with_name("results.old.json")
        results_path.replace(aside)
        say(f"      {results_path}: evaluated again: {stale}; the old file is {aside}")
    reused = results_path.exists()
    if reused:
        results = read_results(results_path)
        old = results["format_version"] < RESULTS_VERSION  # kept: it may hold rows the demo does not make
        version = results["format_version"]
        lacks = ("without bootstrap intervals" if version < 3 else "its map mean includes the patch" if version < 4
                 else "without the rows of the PCA-started variants" if version < 5
                 else "without the data of the latent-space, interpolation and prior-sample figures")
        say(f"[{steps}/{steps}] evaluation: reusing {results_path}" + (f" (format {results['format_version']}, {lacks}; "
            "delete it to evaluate again)" if old else ""))
    else:
        say(f"[{steps}/{steps}] evaluation on the test split -> {results_path}")
        results = evaluate(store, checkpoints, store_path=data, device="cpu", progress=progress)
        write_results(results_path, results)
    if figures:
        from .analysis.figure_set import make_figures

        fig_dir = out / "figures"
        # Figures drawn from a reused evaluation are kept; a new evaluation draws them all again.
        made = make_figures(results_path, fig_dir, run_root=out, skip_existing=reused, say=say, progress=progress)
        say(f"figures: {len(made)} in {fig_dir}")
    say("")
    say(markdown_table(results))
    return results


def _stale_results(path: Path, store, checkpoints: list[Path], read_results) -> str | None:
    """Why a results file is not the evaluation of ``store`` and ``checkpoints`` (None when it is, or when too old to say)."""
    from .io.atomic import sha256sum

    results = read_results(path)
    inputs = results.get("inputs", {})
    if results["format_version"] < 4:  # older files are kept and reported as such (see run_demo)
        return None
    if inputs.get("store_fingerprint") not in (None, store.fingerprint()):
        return "it was made from another dataset"
    recorded = {Path(c.get("path", "")).parent.name or n: c.get("sha256") for n, c in inputs.get("checkpoints", {}).items()}
    for ckpt in checkpoints:
        name = Path(ckpt).parent.name
        if name not in recorded and name not in results["compressors"]:
            return f"it lacks {name}"
        if recorded.get(name) not in (None, sha256sum(ckpt)):
            return f"{name} was trained again since"
    return None
