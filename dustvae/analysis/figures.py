"""The paper's figures, one function each; :mod:`dustvae.analysis.figure_set` draws them from a results file.

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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import DustvaeError  # noqa: E402
from ..models.vae import model_name  # noqa: E402
from ..plotting import save_figure  # noqa: E402
from . import registry  # noqa: E402
from .figure_data import PERCENTILES, PRIOR_SEP, varying_labels  # noqa: E402
from .physics import is_orientation  # noqa: E402
from .registry import OKABE_ITO  # noqa: E402
from ..wst.layout import CoefficientLayout  # noqa: E402

_look = registry.style


def _label(name: str, results: dict | None = None) -> str:
    """The registry's label, with the latent count from the results row when there is one."""
    row = (results or {}).get("compressors", {}).get(name)
    return registry.label(name, row.get("latent") if row else None)


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    return save_figure(fig, out_dir / name)


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


def fig_latent_space(xy: np.ndarray, labels: dict[str, np.ndarray], model_name: str):
    """Test latents on their two principal axes (:func:`~dustvae.analysis.figure_data.latent_projection`),
    coloured by each varying label."""
    varying = list(varying_labels(labels))
    keys = [k for k in SYMBOLS if k in varying] + sorted(k for k in varying if k not in SYMBOLS)
    if not keys:
        raise DustvaeError("the store has no varying simulation labels to colour the latent space by")
    xy = np.asarray(xy, np.float64)
    cols = 3
    rows = int(np.ceil(len(keys) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(7.2, 2.3 * rows), constrained_layout=True, squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        cmap = "twilight" if is_orientation(key) else "viridis"
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(labels[key]), s=4, cmap=cmap, rasterized=True)
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


def fig_prior_samples(bands: dict[str, dict[str, list]], layout: CoefficientLayout):
    """Per-coefficient distributions: median and 16-84% range of the test set and of prior samples.

    ``bands`` maps ``"data"``, a compressor name (draws from N(0, I)) or
    ``name|fitted`` (draws from the fitted latent prior,
    :mod:`dustvae.models.prior`) to the per-coefficient percentiles of the
    vectors (:func:`~dustvae.analysis.figure_data.percentile_bands`).
    """
    fig, axes = plt.subplots(2, 1, figsize=(7.2, 4.4), constrained_layout=True, sharex=False)
    blocks = [("first layer (field %s)" % layout.fields[0], layout.select(field=layout.fields[0], layer=1)),
              ("second layer, first 160 (field %s)" % layout.fields[0], layout.select(field=layout.fields[0], layer=2)[:160])]
    for ax, (title, idx) in zip(axes, blocks):
        x = np.arange(len(idx))
        for key, band in bands.items():
            name, _, prior = key.partition(PRIOR_SEP)
            look = _look(name)
            if name == "data":
                text = "data (test set)"
            else:
                text = f"{_label(name)}, {'fitted prior' if prior == 'fitted' else 'N(0, I) prior'}"
            ls = (0, (1, 1)) if prior == "fitted" else look["ls"]
            lo, mid, hi = (np.asarray(band[f"p{p}"])[idx] for p in PERCENTILES)
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


def __getattr__(name: str):
    """The driver's names, importable from here as before (their home: :mod:`dustvae.analysis.figure_set`)."""
    if name in ("make_figures", "check_drawable", "FIGURES", "TABLE_PRIOR_FIGURE"):
        from . import figure_set

        return getattr(figure_set, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
