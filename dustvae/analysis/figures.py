"""Paper figures from a results file (``dustvae evaluate``) and the inputs it records.

Each figure is written as PDF and PNG. Colours follow Okabe & Ito (2008),
safe for colour-blind readers and distinct in greyscale by line style.
Numbers drawn come from the results file, or are computed here from the
store and checkpoints the results file names (latent projections,
interpolation, prior samples); sweep figures read ``sweeps.json`` beside it
when ``scripts/make_figures.py`` has written one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import DustvaeError  # noqa: E402
from ..models.vae import model_name  # noqa: E402
from ..plotting import STYLE, save_figure  # noqa: E402
from ..progress import Stages  # noqa: E402
from . import registry  # noqa: E402
from .physics import NOT_PHYSICAL, is_orientation  # noqa: E402
from .registry import OKABE_ITO  # noqa: E402
from .results import read_results  # noqa: E402
from ..wst.layout import CoefficientLayout  # noqa: E402

_look = registry.style


def _label(name: str, results: dict | None = None) -> str:
    """The registry's label, with the latent count from the results row when there is one."""
    row = (results or {}).get("compressors", {}).get(name)
    return registry.label(name, row.get("latent") if row else None)


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    return save_figure(fig, out_dir / name)


def _resolve(path: str | None, base: Path) -> Path | None:
    if not path:
        return None
    p = Path(path)
    for candidate in (p, base / p, base / p.name):
        if candidate.exists():
            return candidate
    return None


# -- individual figures ------------------------------------------------------------------------

def fig_training_curves(runs: dict[str, Path]):
    """Reconstruction RMSE (the reported metric), KL and total loss per epoch, train and validation, per VAE run.

    The epoch kept (lowest validation RMSE after the KL warm-up, ``best.pt``) is marked on the RMSE curve.
    """
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.5), constrained_layout=True)
    for name, run_dir in runs.items():
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        epoch = [r["epoch"] for r in rows]
        look = _look(name)
        for ax, key in zip(axes, ("rmse_log2", "kl", "loss")):
            ax.plot(epoch, [r[f"train_{key}"] for r in rows], color=look["color"], ls="-", lw=1.0, label=f"{_label(name)} train")
            ax.plot(epoch, [r[f"val_{key}"] for r in rows], color=look["color"], ls="--", lw=1.0, label=f"{_label(name)} validation")
        best = _best_row(run_dir, rows)
        if best is not None:
            axes[0].plot([best["epoch"]], [best["val_rmse_log2"]], marker="o", ms=3.5, color=look["color"], ls="none")
    titles = ("reconstruction RMSE", "KL$(q(z|x)\\,\\|\\,p(z))$", "loss (MSE + $\\beta$ KL)")
    for ax, title in zip(axes, titles):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.set_yscale("log")
    axes[0].set_ylabel("$\\log_2$ units (dot: epoch kept)")
    axes[1].set_ylabel("nats per sample")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False, fontsize=7)
    return fig


def _best_row(run_dir: Path, rows: list[dict]) -> dict | None:
    """The metrics row of the epoch ``best.pt`` holds (from the last checkpoint's progress record)."""
    from ..models.checkpoint import load_checkpoint

    last = run_dir / "last.pt"
    if not last.exists():
        return None
    best_epoch = load_checkpoint(last).get("best_epoch")
    return next((r for r in rows if r["epoch"] == best_epoch), None)


def fig_coefficients(results: dict, layout: CoefficientLayout, names: list[str], patches: int = 2):
    """Data against reconstructions: log2 S1 by (j1, theta1) and angle-averaged log2 S2/S1 by (j1, j2), field Q."""
    ex = results["examples"]
    truth = np.asarray(ex["truth"])
    fig, axes = plt.subplots(patches, 2, figsize=(7.2, 2.3 * patches), constrained_layout=True, squeeze=False)
    s1 = layout.select(field=layout.fields[0], layer=1)
    pairs = [(j1, j2) for j1 in range(layout.J) for j2 in range(j1 + 1, layout.J)]
    pair_index = [layout.select(field=layout.fields[0], layer=2, j1=a, j2=b) for a, b in pairs]
    for row in range(min(patches, len(truth))):
        series = {"data": truth[row]} | {n: np.asarray(ex["reconstructions"][n][row]) for n in names}
        for name, vec in series.items():
            look = _look(name)
            axes[row, 0].plot(np.arange(len(s1)), vec[s1], label=_label(name, results), **look)
            axes[row, 1].plot(np.arange(len(pairs)), [vec[i].mean() for i in pair_index], marker="o", ms=2.5,
                              label=_label(name, results), **look)
        axes[row, 0].set_ylabel(f"test patch {ex['test_rows'][row]}\n$\\log_2 S_1$")
        axes[row, 1].set_ylabel("$\\langle \\log_2 S_2/S_1 \\rangle_{\\theta_1,\\theta_2}$")
        axes[row, 0].set_xticks(np.arange(layout.J) * layout.L + layout.L / 2 - 0.5, [f"$j_1$={j}" for j in range(layout.J)])
        axes[row, 1].set_xticks(np.arange(len(pairs)), [f"{a},{b}" for a, b in pairs], rotation=45)
    axes[-1, 0].set_xlabel("first layer: $j_1$, then $\\theta_1$ within each group of %d" % layout.L)
    axes[-1, 1].set_xlabel("second layer: $(j_1, j_2)$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
    fig.suptitle(f"Field {layout.fields[0]}: WST coefficients (dimensionless) and their reconstructions")
    return fig


def fig_error_per_pair(results: dict, layout: CoefficientLayout, names: list[str]):
    """RMSE per (j1, j2) of the second layer (upper triangle) and per j1 of the first (diagonal)."""
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.3 * rows), constrained_layout=True, squeeze=False)
    vmax = max(max(v["rmse_log2"] for v in results["compressors"][n]["per_pair"].values()) for n in names)
    image = None
    for ax, name in zip(axes.ravel(), names):
        row = results["compressors"][name]
        grid = np.full((layout.J, layout.J), np.nan)
        for j in range(layout.J):
            grid[j, j] = row["per_j1"][str(j)]["rmse_log2"]
        for key, value in row["per_pair"].items():
            a, b = map(int, key.split("-"))
            grid[a, b] = value["rmse_log2"]
        image = ax.imshow(grid, cmap="cividis", vmin=0, vmax=vmax, origin="upper")
        for (a, b), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(b, a, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if value < 0.6 * vmax else "black")
        ax.set_title(_label(name, results))
        ax.set_xlabel("$j_2$ (diagonal: $S_1$ at $j_1$)")
        ax.set_ylabel("$j_1$")
        ax.set_xticks(range(layout.J))
        ax.set_yticks(range(layout.J))
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label="RMSE [log$_2$ units]")
    return fig


def fig_error_per_layer(results: dict, layout: CoefficientLayout, names: list[str]):
    """Grouped bars: RMSE per field and layer for each compressor; the within-map scatter as a dashed line per group."""
    groups = [f"{f}{k}" for f in layout.fields for k in (1, 2)]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(7.2, 2.6), constrained_layout=True)
    for i, name in enumerate(names):
        values = [results["compressors"][name]["per_field_layer"][g]["rmse_log2"] for g in groups]
        look = _look(name)
        ax.bar(np.arange(len(groups)) + (i - (len(names) - 1) / 2) * width, values, width, color=look["color"],
               label=_label(name, results), edgecolor="black", linewidth=0.3, hatch=["", "//", "..", "xx", "\\\\", "oo"][i % 6])
    floor = results.get("noise_floor")
    if floor:
        ax.hlines([floor["per_field_layer"][g] for g in groups], np.arange(len(groups)) - 0.45, np.arange(len(groups)) + 0.45,
                  colors="black", linestyles="--", lw=1.0, label="within-map scatter")
    ax.set_xticks(np.arange(len(groups)), [f"{g[0]}, layer {g[1]}" for g in groups])
    ax.set_ylabel("test RMSE [log$_2$ units]")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    return fig


def fig_error_vs_latent(results: dict, sweeps: dict | None):
    """Test RMSE against the number of latents: VAE family, PCA and symmetric PCA, RWST Models 1 and 2, the within-map scatter."""
    fig, ax = plt.subplots(figsize=(3.6, 2.8), constrained_layout=True)
    for key, text, ls in (("pca_curve", "PCA", "-"), ("pca_sym_curve", "sym. PCA (grid symmetries)", "--")):
        pca = results.get(key, {})
        if pca:
            sizes = sorted(int(k) for k in pca)
            ax.plot(sizes, [pca[str(s)] for s in sizes], color=OKABE_ITO[3], ls=ls, marker="s", ms=3, label=text)
    parsed = {name: registry.parse(name) for name in results["compressors"]}
    vae = {row["latent"]: row["rmse_log2"] for name, row in results["compressors"].items()
           if parsed[name].family == "vae" and parsed[name].variant is None}
    if vae:
        sizes = sorted(vae)
        ax.plot(sizes, [vae[s] for s in sizes], color=OKABE_ITO[5], marker="o", ms=4,
                label=f"{', '.join(registry.label(model_name(d)) for d in sorted(registry.TABLE_VAES, reverse=True))} (early-stopped)")
    if sweeps and sweeps.get("latent"):
        short = {int(k): v["rmse_log2"] for k, v in sweeps["latent"].items()}
        sizes = sorted(short)
        ax.plot(sizes, [short[s] for s in sizes], color=OKABE_ITO[5], marker="o", mfc="white", ls="none", ms=4,
                label=f"VAE family, {sweeps.get('epochs', '?')} epochs")
    for name, row in results["compressors"].items():
        if parsed[name].variant is not None:
            ax.plot([row["latent"]], [row["rmse_log2"]], marker="D", ms=4, ls="none", color=_look(name)["color"],
                    label=_label(name, results))
    for name, marker in (("rwst1", "^"), ("rwst2", "v")):
        if name in results["compressors"]:
            row = results["compressors"][name]
            ax.plot([row["latent"]], [row["rmse_log2"]], marker=marker, ls="none", color=_look(name)["color"],
                    label=_label(name, results))
    floor = results.get("noise_floor")
    if floor:
        ax.axhline(floor["rmse_log2"], color="black", ls="--", lw=0.8, label="within-map scatter")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("latent size (numbers per patch)")
    ax.set_ylabel("test RMSE [log$_2$ units]")
    ax.legend(frameon=False)
    return fig


#: Symbols of the simulator's labels; other labels are shown by name.
SYMBOLS = {"slope": "$\\alpha$", "turbulence": "$f_M$", "n_layers": "$N$ layers", "intensity_sigma": "$\\sigma_I$",
           "mean_field_angle": "$\\chi_0$ [deg]", "mean_field_inclination": "$\\gamma_0$ [deg]"}


def _target_label(target: str) -> str:
    """Axis text for a regression target (``cos2_NAME`` / ``sin2_NAME`` for orientations, ``abs_NAME`` for inclinations)."""
    if target.startswith("abs_"):
        symbol = SYMBOLS.get(target[4:], target[4:]).replace(" [deg]", "")
        return f"|{symbol}| [deg]" if target[4:] in SYMBOLS else f"|{symbol}|"
    trig, _, base = target.partition("2_")
    if trig in ("cos", "sin") and base:
        symbol = SYMBOLS.get(base, base).replace(" [deg]", "")
        return f"{trig} 2{symbol}" if symbol.startswith("$") else f"{trig} 2({base})"
    return SYMBOLS.get(target, target)


def fig_latent_space(latents: dict[str, np.ndarray], labels: dict[str, np.ndarray], model_name: str):
    """2D projection (principal axes of the latent means) of test latents coloured by each varying label."""
    varying = [k for k in labels if k not in NOT_PHYSICAL and np.ptp(labels[k]) > 0]
    keys = [k for k in SYMBOLS if k in varying] + sorted(k for k in varying if k not in SYMBOLS)
    if not keys:
        raise DustvaeError("the store has no varying simulation labels to colour the latent space by")
    mean = latents["mean"]
    centred = mean - mean.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    cols = 3
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(7.2, 2.3 * rows), constrained_layout=True, squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        cmap = "twilight" if is_orientation(key) else "viridis"
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels[key], s=4, cmap=cmap, rasterized=True)
        fig.colorbar(sc, ax=ax, label=SYMBOLS.get(key, key))
        ax.set_xlabel("latent PC 1")
        ax.set_ylabel("latent PC 2")
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    fig.suptitle(f"{_label(model_name)}: test-patch latent means, coloured by simulation parameter")
    return fig


def fig_label_r2(results: dict, names: list[str]):
    """Held-out R^2 (ROC AUC for binary labels, marked) of each label regressed on each code, one panel per regressor."""
    regression = results["label_regression"]
    targets = regression["targets"]
    rows = [n for n in names if results["compressors"][n].get("label_r2")]
    tables = {n: results["compressors"][n]["label_r2"] for n in rows}
    if regression.get("full_vector"):
        tables["full vector"] = regression["full_vector"]
    regressors = list(next(iter(tables.values()))) if tables else []
    if not regressors:
        return None
    fig, axes = plt.subplots(1, len(regressors), figsize=(3.6 * len(regressors), 0.9 + 0.3 * len(tables)),
                             constrained_layout=True, squeeze=False)
    image = None
    for ax, regressor in zip(axes[0], regressors):
        grid = np.array([[np.nan if tables[n][regressor].get(t) is None else tables[n][regressor][t] for t in targets]
                         for n in tables])
        image = ax.imshow(np.clip(grid, 0, 1), cmap="cividis", vmin=0, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if value < 0.6 else "black")
        auc = {t for t, kind in (regression.get("scores") or {}).items() if kind == "roc_auc"}
        ax.set_xticks(range(len(targets)), [_target_label(t) + (" (AUC)" if t in auc else "") for t in targets],
                      rotation=45, ha="right")
        ax.set_yticks(range(len(tables)), [_label(n, results) if n in results["compressors"] else n for n in tables])
        ax.set_title({"ridge": "linear (ridge)", "boosting": "non-linear (gradient boosting)"}.get(regressor, regressor))
    fig.colorbar(image, ax=axes, shrink=0.9, label="test $R^2$ (negative shown as 0) or ROC AUC")
    return fig


def fig_interpolation(path: np.ndarray, weights: np.ndarray, ends: np.ndarray, layout: CoefficientLayout, model_name: str):
    """Decoded first-layer coefficients along a straight latent line between two test patches."""
    fig, ax = plt.subplots(figsize=(5.0, 2.8), constrained_layout=True)
    s1 = layout.select(field=layout.fields[0], layer=1)
    cmap = plt.get_cmap("cividis")
    for w, vec in zip(weights, path):
        ax.plot(np.arange(len(s1)), vec[s1], color=cmap(w), lw=1.0)
    for vec, ls, text in zip(ends, ("-", "--"), ("data, start patch", "data, end patch")):
        ax.plot(np.arange(len(s1)), vec[s1], color="black", ls=ls, lw=1.4, label=text)
    sm = plt.cm.ScalarMappable(cmap=cmap)
    fig.colorbar(sm, ax=ax, label="interpolation weight $t$")
    ax.set_xticks(np.arange(layout.J) * layout.L + layout.L / 2 - 0.5, [f"$j_1$={j}" for j in range(layout.J)])
    ax.set_ylabel(f"$\\log_2 S_1$ (field {layout.fields[0]})")
    ax.set_xlabel("first layer: $j_1$, then $\\theta_1$ within each group")
    ax.set_title(f"{_label(model_name)}: decoded $z(t) = (1-t) z_A + t z_B$")
    ax.legend(frameon=False)
    return fig


#: How prior-sample entries are keyed: ``NAME`` for N(0, I) draws, ``NAME + PRIOR_SEP + "fitted"`` for the fitted prior.
PRIOR_SEP = "|"


def fig_prior_samples(test: np.ndarray, samples: dict[str, np.ndarray], layout: CoefficientLayout):
    """Per-coefficient distributions: median and 16-84% range of the test set and of prior samples.

    ``samples`` maps a compressor name (draws from N(0, I)) or ``name|fitted``
    (draws from the fitted latent prior, :mod:`dustvae.models.prior`) to decoded vectors.
    """
    fig, axes = plt.subplots(2, 1, figsize=(7.2, 4.4), constrained_layout=True, sharex=False)
    blocks = [("first layer (field %s)" % layout.fields[0], layout.select(field=layout.fields[0], layer=1)),
              ("second layer, first 160 (field %s)" % layout.fields[0], layout.select(field=layout.fields[0], layer=2)[:160])]
    for ax, (title, idx) in zip(axes, blocks):
        x = np.arange(len(idx))
        for key, data in [("data", test)] + list(samples.items()):
            name, _, prior = key.partition(PRIOR_SEP)
            look = _look(name)
            if name == "data":
                text = "data (test set)"
            else:
                text = f"{_label(name)}, {'fitted prior' if prior == 'fitted' else 'N(0, I) prior'}"
            ls = (0, (1, 1)) if prior == "fitted" else look["ls"]
            lo, mid, hi = np.percentile(data[:, idx], [16, 50, 84], axis=0)
            ax.plot(x, mid, color=look["color"], ls=ls, lw=1.0, label=text)
            ax.fill_between(x, lo, hi, color=look["color"], alpha=0.2 if name == "data" else 0.1, lw=0)
        ax.set_title(title)
        ax.set_ylabel("$\\log_2$ coefficient")
    axes[-1].set_xlabel("coefficient index within the block (Kymatio order)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    return fig


def fig_beta_tradeoff(sweep: dict):
    """Validation reconstruction error and KL against beta (autoencoder-like to over-regularised)."""
    betas = sorted(float(b) for b in sweep)
    rows = [sweep[_key(sweep, b)] for b in betas]
    fig, ax = plt.subplots(figsize=(3.8, 2.8), constrained_layout=True)
    ax.plot(betas, [r["val_rmse_log2"] for r in rows], marker="o", color=OKABE_ITO[5], label="reconstruction RMSE")
    ax.set_xscale("log")
    ax.set_xlabel("$\\beta$ (KL weight)")
    ax.set_ylabel("validation RMSE [log$_2$ units]", color=OKABE_ITO[5])
    twin = ax.twinx()
    twin.plot(betas, [r["val_kl"] for r in rows], marker="s", ls="--", color=OKABE_ITO[6], label="KL")
    twin.set_yscale("log")
    twin.set_ylabel("validation KL [nats]", color=OKABE_ITO[6])
    twin.spines["right"].set_visible(True)
    epochs = sorted({r.get("epochs") for r in rows if r.get("epochs")})
    if epochs:
        name = registry.label(model_name(min(registry.TABLE_VAES)))
        ax.set_title(f"{name}, trained {epochs[-1]} epochs each" if len(epochs) == 1 else name)
    return fig


def _key(mapping: dict, value: float) -> str:
    return next(k for k in mapping if float(k) == value)


#: Models whose fitted-prior samples the prior-sample figure shows beside their N(0, I) ones.
TABLE_PRIOR_FIGURE = ("vae-85", "vae-170")


# -- the driver ---------------------------------------------------------------------------------

FIGURES = ("training_curves", "coefficients", "error_per_pair", "error_per_layer", "error_vs_latent",
           "label_r2", "latent_space", "interpolation", "prior_samples", "beta_tradeoff")


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
    ``progress`` shows a bar over the figures and the model work they need.
    """
    results_path = Path(results_path)
    results = read_results(results_path)
    compressors = results["compressors"]
    base = results_path.parent
    run_root = Path(run_root) if run_root else base
    layout = check_drawable(results, str(results_path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sweeps_path = run_root / "sweeps.json"
    sweeps = json.loads(sweeps_path.read_text()) if sweeps_path.exists() else None
    order = registry.ordered(compressors)
    vaes = [n for n in order if registry.is_vae(n)]
    written: list[Path] = []
    runs = {n: run_root / n for n in vaes if (run_root / n / "metrics.jsonl").exists()}
    store_path = _resolve(results["inputs"].get("store"), base)
    ckpts = {n: _resolve(c["path"], base) for n, c in results["inputs"].get("checkpoints", {}).items()}
    ckpts = {n: p for n, p in ckpts.items() if p is not None}
    with_models = store_path is not None and bool(ckpts)
    planned = 4 + bool(runs) + bool(results.get("label_regression")) + bool(sweeps and "beta" in sweeps)
    stages = Stages(planned + (4 + len(ckpts) if with_models else 0), "figures", progress)

    def draw(name: str, build):
        with stages.stage(name):
            if skip_existing and (out_dir / f"{name}.png").exists() and (out_dir / f"{name}.pdf").exists():
                written.extend([out_dir / f"{name}.pdf", out_dir / f"{name}.png"])
                return
            with plt.rc_context(STYLE):
                fig = build()
                if fig is not None:
                    written.extend(_save(fig, out_dir, name))

    with stages:
        _draw_all(draw, stages, results, layout, order, runs, sweeps, store_path, ckpts, say)
    return written


def _draw_all(draw, stages: Stages, results: dict, layout: CoefficientLayout, order: list[str], runs: dict,
              sweeps: dict | None, store_path: Path | None, ckpts: dict[str, Path], say: Callable[[str], None]) -> None:
    """Every figure of :func:`make_figures`, in order; the model-based ones when a store and checkpoints are found."""
    import torch

    from ..io.store import read_store
    from ..models.apply import encode_array, fit_latent_prior, interpolate_array, sample_array
    from ..models.checkpoint import load_model

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

    if store_path is not None and ckpts:
        with stages.stage("store and model"):
            store = read_store(store_path)
            test = store.subset("test")
            main_name = "vae-85" if "vae-85" in ckpts else sorted(ckpts)[0]
            model, _ = load_model(ckpts[main_name], "cpu")
            torch.manual_seed(0)
        if test.labels:
            mean, logvar = encode_array(model, test.coeffs)
            draw("latent_space", lambda: fig_latent_space({"mean": mean, "logvar": logvar}, test.labels, main_name))
        a, b = 0, int(np.argmax(np.linalg.norm(test.coeffs - test.coeffs[0], axis=1)))  # the most different pair
        path, weights = interpolate_array(model, test.coeffs[[a, b]], 9)
        draw("interpolation", lambda: fig_interpolation(path, weights, test.coeffs[[a, b]], layout, main_name))
        samples = {}
        train_rows = store.subset("train").coeffs
        for name in registry.ordered(ckpts):
            with stages.stage(f"{name} samples"):
                vae = load_model(ckpts[name], "cpu")[0]
                samples[name] = sample_array(vae, len(test), 0)
                if name in TABLE_PRIOR_FIGURE:  # the fitted prior beside N(0, I), for the table models
                    samples[name + PRIOR_SEP + "fitted"] = sample_array(vae, len(test), 0, fit_latent_prior(vae, train_rows))
        draw("prior_samples", lambda: fig_prior_samples(test.coeffs, samples, layout))
    else:
        say("figures: no store or checkpoints found; latent-space, interpolation and prior-sample figures skipped")
