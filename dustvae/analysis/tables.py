"""The results tables: one model of each table, rendered to Markdown, LaTeX and reStructuredText.

A :class:`Table` holds its columns (a plain head, and a LaTeX head where
the paper sets one in math), its rows as formatted text, and the reference
rows that follow a rule (the within-map scatter, the identity). The builders below read a
results file (:mod:`dustvae.analysis.results`) and fix columns, number
formats, row order (the registry's) and labels once; :func:`render` writes
any table in any of the three formats, so the command line's table, the
docs' results page and the paper's tables cannot drift apart. When the
results carry bootstrap intervals, a cell reads ``0.1115 [0.1090, 0.1141]``.

The reference rows of the main table: the within-map scatter (results key
``noise_floor``; the unbiased within-map spread of the test vectors) and,
from results format 4 on, the identity (each test patch itself scored
against its leave-one-out map mean, as every compressor is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from . import registry

MISSING = "--"
#: The two regressors of the label regression, as tables and captions name them (:mod:`dustvae.analysis.physics`).
REGRESSOR_NAMES = {"ridge": "linear (ridge)", "boosting": "non-linear (gradient boosting)"}
#: Symbols of the simulator's labels (LaTeX math); other labels are shown by name.
SYMBOLS = {"slope": "\\alpha", "turbulence": "f_M", "n_layers": "N", "intensity_sigma": "\\sigma_I",
           "mean_field_angle": "\\chi_0", "mean_field_inclination": "\\gamma_0"}
#: Rows of the synthesis table that are not compressors.
SYNTHESIS_ROWS = {"wst": "full WST vector", "gaussian": "Gaussian field, same spectrum"}
FORMATS = ("markdown", "latex", "rst")


@dataclass(frozen=True)
class Column:
    """One column: its plain head, its LaTeX head when that differs, and its alignment (``l`` or ``r``)."""

    head: str
    tex: str | None = None
    align: str = "r"


@dataclass
class Table:
    """Columns, rows of formatted cells, and reference rows shown after a rule."""

    columns: Sequence[Column]
    rows: list[list[str]]
    reference: list[list[str]] = field(default_factory=list)


def num(value, digits: int = 4, scale: float = 1.0) -> str:
    """``value`` with ``digits`` decimals (times ``scale``), or ``--`` when it is missing."""
    return MISSING if value is None else f"{scale * value:.{digits}f}"


def interval(value, bounds, digits: int = 4) -> str:
    """``0.1115 [0.1090, 0.1141]``; the value alone when there are no bounds."""
    if value is None or not bounds:
        return num(value, digits)
    return f"{value:.{digits}f} [{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]"


def tex_escape(text: str) -> str:
    """Characters LaTeX reads as commands, escaped."""
    return text.replace("\\", "\\textbackslash ").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")


def target_tex(target: str) -> str:
    """A regression target as a LaTeX head (``cos2_mean_field_angle`` -> ``$\\cos 2\\chi_0$``)."""
    if target.startswith("abs_"):
        base = target[4:]
        return f"$|{SYMBOLS[base]}|$" if base in SYMBOLS else f"|{tex_escape(base)}|"
    trig, _, base = target.partition("2_")
    if trig in ("cos", "sin") and base:
        return f"$\\{trig} 2{SYMBOLS[base]}$" if base in SYMBOLS else f"{trig} 2({tex_escape(base)})"
    return f"${SYMBOLS[target]}$" if target in SYMBOLS else tex_escape(target)


def render(table: Table, fmt: str) -> str:
    """The table as Markdown, LaTeX (a ``tabular``) or reStructuredText (a simple table)."""
    if fmt == "markdown":
        lines = ["| " + " | ".join(c.head for c in table.columns) + " |",
                 "|" + "|".join("---" if c.align == "l" else "---:" for c in table.columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in table.rows + table.reference])
    if fmt == "latex":
        line = lambda cells: " & ".join(cells) + " \\\\"  # noqa: E731
        body = [line(tex_escape(c) for c in r) for r in table.rows]
        if table.reference:
            body += ["\\hline", *(line(tex_escape(c) for c in r) for r in table.reference)]
        return "\n".join(["\\begin{tabular}{" + "".join(c.align for c in table.columns) + "}", "\\hline",
                          line(c.tex or tex_escape(c.head) for c in table.columns), "\\hline", *body, "\\hline",
                          "\\end{tabular}"])
    if fmt == "rst":
        rows = table.rows + table.reference
        header = [c.head for c in table.columns]
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        rule = "  ".join("=" * w for w in widths)
        text = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
        return "\n".join([rule, text(header), rule, *map(text, rows), rule])
    raise ValueError(f"unknown table format {fmt!r}; choose among {', '.join(FORMATS)}")


#: Tables with more columns than this are shrunk to the line width when wider (graphicx's resizebox; never enlarged).
WIDE_COLUMNS = 6


def latex_float(table: Table, caption: str, label: str, small: bool = True) -> str:
    """A LaTeX ``table`` float around the rendered ``tabular``; ``caption`` is LaTeX already."""
    body = render(table, "latex")
    if len(table.columns) > WIDE_COLUMNS:
        body = "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n" + body + "}"
    return "\n".join(["\\begin{table}", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
                      *(["\\small"] if small else []), body, "\\end{table}"])


# -- the tables of a results file -------------------------------------------------------------------

#: The main table's figures: (results key, plain head, LaTeX head, decimals).
MAIN_METRICS = (
    ("rmse_log2", "RMSE (log2)", "RMSE", 4),
    ("rmse_std", "RMSE (std.)", None, 4),
    ("rmse_to_map_mean_log2", "RMSE to map mean", None, 4),
    ("rel_err_s1", "rel. err. S1", "$\\langle|\\Delta S_1/S_1|\\rangle$", 4),
    ("rel_err_s2_over_s1", "rel. err. S2/S1", "$\\langle|\\Delta (S_2/S_1)/(S_2/S_1)|\\rangle$", 4),
)
NOISE_FLOOR = "Within-map scatter"
IDENTITY = "Identity (the patch itself)"
#: Head of the map-mean column by what the map mean is: leave-one-out (format 4 on) or inclusive (before).
MAP_MEAN_HEADS = {True: "RMSE to LOO map mean", False: "RMSE to map mean (incl. patch)"}


def names(results: dict) -> list[str]:
    """The compressors of a results file in the registry's order."""
    return registry.ordered(results["compressors"])


def label(results: dict, name: str, size: bool = False) -> str:
    """The registry's label of ``name``, with its latent count from the results when ``size``."""
    row = results["compressors"].get(name)
    return registry.label(name, row["latent"] if size and row else None)


def _intervals(results: dict, name: str) -> dict:
    return ((results.get("bootstrap") or {}).get("intervals") or {}).get(name) or {}


def _metric_columns(results: dict) -> list[Column]:
    target = results["test"].get("map_mean_target")  # set by evaluate, and by the reader for older files
    loo = target.startswith("leave-one-out") if target else results.get("format_version", 1) >= 4
    return [Column(MAP_MEAN_HEADS[loo] if key == "rmse_to_map_mean_log2" else head, tex)
            for key, head, tex, _ in MAIN_METRICS]


def main_table(results: dict) -> Table:
    """Every compressor's errors (with intervals when the results have them), then the within-map scatter and the identity."""
    comp = results["compressors"]
    columns = [Column("compressor", "Compressor", "l"), Column("latents", "Latents"), *_metric_columns(results),
               Column("encode ms/patch", "ms/patch")]
    rows = []
    for n in names(results):
        row, bounds = comp[n], _intervals(results, n)
        rows.append([label(results, n), str(row["latent"]),
                     *(interval(row.get(key), bounds.get(key), digits) for key, _, _, digits in MAIN_METRICS),
                     num(row["encode_ms_per_patch"], 3)])
    floor = results.get("noise_floor")
    reference = []
    if floor:
        bounds = (results.get("bootstrap") or {}).get("noise_floor") or {}
        reference.append([NOISE_FLOOR, MISSING, interval(floor.get("rmse_log2"), bounds.get("rmse_log2")),
                          interval(floor.get("rmse_std"), bounds.get("rmse_std"))] + [MISSING] * 4)
    identity = results.get("identity")
    if identity:
        bounds = (results.get("bootstrap") or {}).get("identity") or {}
        reference.append([IDENTITY, MISSING, MISSING, MISSING,
                          interval(identity.get("rmse_to_map_mean_log2"), bounds.get("rmse_to_map_mean_log2"))]
                         + [MISSING] * 3)
    return Table(columns, rows, reference)


def paired_table(results: dict) -> Table | None:
    """Paired differences (first minus second) with their intervals: each compressor against the linear baseline of
    its size (chosen on the validation split, or both), each table VAE against RWST Model 2; None without a bootstrap."""
    boot = results.get("bootstrap")
    if not boot or not boot.get("paired"):
        return None
    shown = [p for p in boot["paired"] if p.get("reported")]
    if not shown:
        return None
    columns = [Column("difference", "Difference", "l"), *_metric_columns(results)]
    rows = [[f"{label(results, p['a'])} - {label(results, p['b'])}",
             *(interval(p["metrics"].get(key, {}).get("difference"), p["metrics"].get(key, {}).get("interval"), digits)
               for key, _, _, digits in MAIN_METRICS)] for p in shown]
    return Table(columns, rows)


def layer_table(results: dict) -> Table:
    """RMSE per field and layer of every compressor, then the within-map scatter's."""
    comp = results["compressors"]
    keys = sorted(comp[names(results)[0]]["per_field_layer"])
    columns = [Column("compressor", "Compressor", "l"), *(Column(f"{k[0]}, layer {k[1]}") for k in keys)]
    rows = [[label(results, n, size=True), *(num(comp[n]["per_field_layer"][k]["rmse_log2"], 3) for k in keys)]
            for n in names(results)]
    floor = (results.get("noise_floor") or {}).get("per_field_layer")
    reference = [[NOISE_FLOOR, *(num(floor.get(k), 3) for k in keys)]] if floor else []
    return Table(columns, rows, reference)


def r2_table(results: dict) -> Table | None:
    """Held-out R^2 (ROC AUC for binary labels, marked in the head) of each label on each code (ridge / boosting),
    the full vector last; None without labels."""
    regression = results.get("label_regression")
    if not regression:
        return None
    comp = results["compressors"]
    targets = regression["targets"]
    coded = [(label(results, n, size=True), comp[n]["label_r2"]) for n in names(results) if comp[n].get("label_r2")]
    if regression.get("full_vector"):
        coded.append((f"full vector ({results['inputs']['layout'].get('vector_length', 'all')})", regression["full_vector"]))
    rows = [[text, *(f"{num(r2['ridge'].get(t), 2)} / {num(r2['boosting'].get(t), 2)}" for t in targets)]
            for text, r2 in coded]
    auc = {t for t, kind in (regression.get("scores") or {}).items() if kind == "roc_auc"}
    return Table([Column("code", "Code", "l"), *(Column(f"{t} (AUC)" if t in auc else t,
                                                       target_tex(t) + (" (AUC)" if t in auc else ""))
                                                for t in targets)], rows)


def synthesis_table(results: dict) -> Table | None:
    """Errors of maps synthesised from each compressor's vectors; None when the results have no synthesis."""
    synthesis = results.get("synthesis")
    if not synthesis:
        return None
    kurtosis = synthesis.get("kurtosis_synthesis", {})
    rows = [[SYNTHESIS_ROWS.get(n) or label(results, n, size=True), num(r["spectrum_rms_log2"], 3),
             num(r["pixel_distance"], 3), num(kurtosis.get(n), 2)] for n, r in synthesis["compressors"].items()]
    return Table([Column("synthesised from", "Synthesised from", "l"), Column("spectrum error"),
                  Column("pixel W1", "pixel $W_1$"), Column("kurtosis")], rows)


def learning_table(results: dict) -> Table | None:
    """Test RMSE against the number of training patches; None when the results have no learning curves."""
    curves = results.get("learning_curves")
    if not curves or not curves.get("points"):
        return None
    keys = list(curves["points"][0]["rmse_log2"])
    rows = [[f"{p['train_patches']} ({p['train_maps']} maps)" if "train_maps" in p else str(p["train_patches"]),
             *(num(p["rmse_log2"][k]) for k in keys)] for p in curves["points"]]
    return Table([Column("training patches", "Training patches", "l"), *(Column(k) for k in keys)], rows)


def markdown_table(results: dict) -> str:
    """What ``dustvae evaluate`` prints: the main table, paired differences, label R^2 and the notes, in Markdown."""
    test = results["test"]
    lines = [render(main_table(results), "markdown"), "",
             f"Test set: {test['n_patches']} patches from {test['n_maps']} maps ({test['split']})."]
    lines += bootstrap_sentence(results) + linear_sentence(results)
    paired = paired_table(results)
    if paired is not None:
        unit = "scored patches" if str(results["bootstrap"].get("unit", "")).endswith("patch") else "test maps"
        lines += ["", f"Paired differences (first minus second; 95% intervals over {unit}):", "",
                  render(paired, "markdown")]
    r2 = r2_table(results)
    if r2 is not None:
        regression = results["label_regression"]
        lines += ["", f"Held-out R^2 (ROC AUC for labels marked AUC) of each label regressed on the code "
                  f"({REGRESSOR_NAMES['ridge']} / {REGRESSOR_NAMES['boosting']}):", "", render(r2, "markdown")]
        if regression.get("skipped"):
            lines += ["", "Labels not regressed: " + "; ".join(f"{k} ({v})" for k, v in regression["skipped"].items()) + "."]
    lines += [""] * bool(results.get("notes")) + [f"Note: {note}" for note in results.get("notes", [])]
    return "\n".join(lines)


def linear_sentence(results: dict) -> list[str]:
    """One line saying which linear baseline each size is paired with, and how it was chosen; nothing without one."""
    linear = results.get("linear_baseline")
    if not linear:
        return []
    chosen = linear.get("chosen") or {}
    if not chosen:
        return [f"Linear baselines paired with: {linear.get('by', 'every one of the same size')}."]
    picks = ", ".join(f"{registry.label(n)} at {d}" for d, n in sorted(chosen.items(), key=lambda kv: -int(kv[0])))
    return [f"Linear baselines paired with: {picks} ({linear['by']})."]


def bootstrap_sentence(results: dict) -> list[str]:
    """One line saying what the intervals are, or nothing when the results have none."""
    boot = results.get("bootstrap")
    if not boot:
        return []
    if str(boot.get("unit", "")).endswith("patch"):  # one scored map: its patches are the unit
        return [f"Brackets: {100 * boot['level']:.0f}% bootstrap intervals over the {boot.get('n_maps', '?')} scored "
                f"patches of one map ({boot['n_resamples']} resamples of patches, seed {boot['seed']}; patches of one "
                f"sky are correlated, so these are narrower than intervals over maps)."]
    return [f"Brackets: {100 * boot['level']:.0f}% bootstrap intervals over the {boot.get('n_maps', '?')} test maps "
            f"({boot['n_resamples']} resamples of whole maps, seed {boot['seed']})."]


#: Column order of the rate-distortion table: the linear codes, then the learned families.
CURVE_ORDER = ("pca", "pca-sym", "rrr", "rrr-sym", "vae+pca", "vae+rrr+map", "vae", "vae+map")


def curve_table(section: dict, target: str) -> Table | None:
    """Test RMSE against latent size for one target (rows: sizes; columns: families), RWST as reference rows."""
    families = section.get("families") or {}
    sized = [f for f in CURVE_ORDER if f in families] + sorted(
        f for f in families if f not in CURVE_ORDER and not f.startswith("rwst"))
    sized = [f for f in sized if any(target in p for p in families[f].values())]
    if not sized:
        return None
    heads = {"pca": "PCA", "pca-sym": "sym. PCA", "rrr": "RRR", "rrr-sym": "sym. RRR", "vae": "VAE family"}

    def head(fam: str) -> str:
        base, _, variant = fam.partition("+")
        return heads.get(base, base) + "".join(f" + {registry.VARIANTS.get(v, v)}" for v in variant.split("+") if v)

    def cell(point: dict | None) -> str:
        if not point or target not in point:
            return MISSING
        return interval(point[target]["value"], point[target]["interval"], 3)

    sizes = sorted({int(k) for f in sized for k in families[f]})
    rows = [[str(k)] + [cell(families[f].get(str(k))) for f in sized] for k in sizes]
    reference = [[registry.label(f) + f" ({k})"] + [cell(p)] + [""] * (len(sized) - 1)
                 for f in sorted(families) if f.startswith("rwst") for k, p in families[f].items() if target in p]
    return Table([Column("k", align="l")] + [Column(head(f)) for f in sized], rows, reference)
