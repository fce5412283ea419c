"""The paper's figures from one results file: which ones it allows, and drawing them all (``dustvae figures``).

:func:`make_figures` draws each figure of :mod:`dustvae.analysis.figures`
that the results file and the inputs it records allow. It only draws: the
latent-space, interpolation and prior-sample figures read what the
evaluation kept of the models (``figure_data``, :mod:`.figure_data`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np

from ..errors import DustvaeError
from ..plotting import STYLE
from ..progress import Stages
from ..wst.layout import CoefficientLayout
from . import registry
from .figures import (PRIOR_SEP, _save, fig_beta_tradeoff, fig_coefficients, fig_error_per_layer, fig_error_per_pair,
                      fig_error_vs_latent, fig_interpolation, fig_label_r2, fig_latent_space, fig_prior_samples,
                      fig_training_curves)
from .results import read_results


# -- individual figures ------------------------------------------------------------------------

#: Models whose fitted-prior samples the prior-sample figure shows beside their N(0, I) ones.
TABLE_PRIOR_FIGURE = ("vae-85", "vae-170")


# -- the driver ---------------------------------------------------------------------------------

FIGURES = ("training_curves", "coefficients", "error_per_pair", "error_per_layer", "error_vs_latent",
           "label_r2", "latent_space", "interpolation", "prior_samples", "beta_tradeoff")
#: The figures the paper includes, copied by paper/Makefile: those every results file gives, then those
#: that other scripts draw when they have run (synthesis_figure.py, rate_distortion.py, make_figures.py's sweeps).
PAPER_FIGURES = ("training_curves", "coefficients", "error_per_pair", "error_per_layer", "error_vs_latent",
                 "latent_space", "interpolation", "prior_samples")
OPTIONAL_PAPER_FIGURES = ("beta_tradeoff", "label_r2", "synthesis", "rate_distortion_patch", "rate_distortion_map")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_drawable(results: dict, where: str) -> CoefficientLayout:
    """Check what the figures read beyond the results schema; return the coefficient layout.

    Every compressor needs its error tables (``per_pair``, ``per_j1``,
    ``per_field_layer``, keyed as the layout says) and its example
    reconstructions, shaped like the examples' truth: a compressor renamed
    by hand in one place but not the other is refused in one line.
    """
    redo = "write the file again with `dustvae evaluate`"
    try:
        layout = CoefficientLayout.from_attrs(results["inputs"]["layout"])
        length = len(layout)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DustvaeError(f"{where}: the coefficient layout under 'inputs' is incomplete ({exc!r}); {redo}") from None
    tables = {"per_pair": [f"{a}-{b}" for a in range(layout.J) for b in range(a + 1, layout.J)],
              "per_j1": [str(j) for j in range(layout.J)],
              "per_field_layer": [f"{f}{k}" for f in layout.fields for k in (1, 2)]}
    examples = results["examples"]
    try:
        truth_shape = np.asarray(examples["truth"], dtype=float).shape
        reconstructions = dict(examples["reconstructions"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DustvaeError(f"{where}: the 'examples' section lacks the truth or reconstructions ({exc!r}); {redo}") from None
    if len(truth_shape) != 2 or truth_shape[1] != length:
        raise DustvaeError(f"{where}: the example vectors have shape {truth_shape}, not (N, {length}); {redo}")
    for name, row in results["compressors"].items():
        if not (_is_number(row.get("rmse_log2")) and _is_number(row.get("latent"))):
            raise DustvaeError(f"{where}: compressor {name!r} has no numeric rmse_log2 and latent; {redo}")
        for table, keys in tables.items():
            entries = row.get(table)
            bad = next((k for k in keys if not (isinstance(entries, dict) and isinstance(entries.get(k), dict)
                                                 and _is_number(entries[k].get("rmse_log2")))), None)
            if bad is not None:
                raise DustvaeError(f"{where}: compressor {name!r} has no {table} entry {bad!r} with an rmse_log2; {redo}")
        if name not in reconstructions:
            raise DustvaeError(f"{where}: compressor {name!r} has no example reconstructions (was it renamed in one "
                               f"place only?); {redo}")
        try:
            shape = np.asarray(reconstructions[name], dtype=float).shape
        except (TypeError, ValueError):
            shape = None
        if shape != truth_shape:
            raise DustvaeError(f"{where}: the example reconstructions of {name!r} have shape {shape}, not {truth_shape}; {redo}")
    return layout


def make_figures(results_path: str | Path, out_dir: str | Path, *, run_root: str | Path | None = None,
                 skip_existing: bool = False, say: Callable[[str], None] = print, progress: bool = False) -> list[Path]:
    """Draw every figure the inputs allow; return the written paths.

    ``run_root`` is where VAE run directories (``vae-85/``, ``vae-170/``) and
    ``sweeps.json`` are looked for (default: beside the results file).
    ``progress`` shows a bar over the figures.
    """
    results_path = Path(results_path)
    results = read_results(results_path)
    compressors = results["compressors"]
    run_root = Path(run_root) if run_root else results_path.parent
    layout = check_drawable(results, str(results_path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sweeps_path = run_root / "sweeps.json"
    sweeps = json.loads(sweeps_path.read_text()) if sweeps_path.exists() else None
    order = registry.ordered(compressors)
    vaes = [n for n in order if registry.is_vae(n)]
    written: list[Path] = []
    runs = {n: run_root / n for n in vaes if (run_root / n / "metrics.jsonl").exists()}
    data = results.get("figure_data")
    if vaes and data is None:
        say(f"figures: {results_path} was written before the evaluation kept the models' figure data; "
            "evaluate again to draw the latent-space, interpolation and prior-sample figures")

    def files(name: str) -> list[Path]:
        return [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]

    def draw(name: str, build):
        with stages.stage(name):
            if skip_existing and all(f.exists() for f in files(name)):
                written.extend(files(name))
                return
            with plt.rc_context(STYLE):
                fig = build()
                if fig is not None:
                    written.extend(_save(fig, out_dir, name))

    planned = 4 + bool(runs) + bool(results.get("label_regression")) + bool(sweeps and "beta" in sweeps)
    planned += sum(key in (data or {}) for key in ("latent_space", "interpolation", "prior_samples")) if vaes else 0
    stages = Stages(planned, "figures", progress)
    with stages:
        _draw_all(draw, results, layout, order, runs, sweeps, data if vaes else None)
    return written


def _draw_all(draw, results: dict, layout: CoefficientLayout, order: list[str], runs: dict, sweeps: dict | None,
              data: dict | None) -> None:
    """Every figure of :func:`make_figures`, in order; the model figures when the results keep their data."""
    if runs:
        draw("training_curves", lambda: fig_training_curves(runs))
    draw("coefficients", lambda: fig_coefficients(results, layout, order))
    draw("error_per_pair", lambda: fig_error_per_pair(results, layout, order))
    draw("error_per_layer", lambda: fig_error_per_layer(results, layout, order))
    draw("error_vs_latent", lambda: fig_error_vs_latent(results, sweeps))
    if results.get("label_regression"):
        draw("label_r2", lambda: fig_label_r2(results, order))
    if sweeps and "beta" in sweeps:
        draw("beta_tradeoff", lambda: fig_beta_tradeoff(sweeps["beta"]))
    if data is None:
        return
    if "latent_space" in data:
        space = data["latent_space"]
        draw("latent_space", lambda: fig_latent_space(space["xy"], space["labels"], space["model"]))
    if "interpolation" in data:
        line = data["interpolation"]
        draw("interpolation", lambda: fig_interpolation(np.asarray(line["path"]), np.asarray(line["weights"]),
                                                        np.asarray(line["ends"]), layout, line["model"]))
    if "prior_samples" not in data:
        return
    bands = data["prior_samples"]
    shown = {"data": bands["data"]}
    for name in registry.ordered([k for k in bands if k in results["compressors"]]):
        shown[name] = bands[name]
        if name in TABLE_PRIOR_FIGURE and name + PRIOR_SEP + "fitted" in bands:  # the fitted prior beside N(0, I)
            shown[name + PRIOR_SEP + "fitted"] = bands[name + PRIOR_SEP + "fitted"]
    draw("prior_samples", lambda: fig_prior_samples(shown, layout))
