"""Turn a results file into the paper's LaTeX tables and macros and the docs' results page.

Run: ``.venv/bin/python scripts/make_paper_tables.py [runs/default/results.json]``.
Writes ``paper/generated/tables.tex``, ``paper/generated/macros.tex`` and
``docs/_generated/results.rst``. Nothing in them is typed by hand; names,
labels and order come from :mod:`dustvae.analysis.registry`, latent counts
from the results file. Numbers a results file lacks (an older run) are
shown as ``--``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dustvae import defaults
from dustvae.analysis import registry
from dustvae.analysis.results import read_results
from dustvae.analysis.sentences import (against_pca, best_map_mean, best_sentence, comparison_sentence, curve_sentence,
                                        versus, winner_sentence)
from dustvae.analysis.tables import (MISSING, REGRESSOR_NAMES, bootstrap_sentence, curve_table, label, latex_float,
                                     layer_table, learning_table, main_table, names, num, paired_table, r2_table, render,
                                     synthesis_table, tex_escape)
from dustvae.errors import DustvaeError
from dustvae.io.atomic import atomic_path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "Generated from \\texttt{results.json}."


def latex_tables(results: dict) -> str:
    """Every LaTeX table of the paper: main, paired differences, layers, label R^2, synthesis, learning curves."""
    test = results["test"]
    boot = results.get("bootstrap")
    brackets = (f" Brackets: {100 * boot['level']:.0f}\\% bootstrap intervals over the test maps ({boot['n_resamples']} "
                "resamples of whole maps)." if boot else "")
    main = latex_float(main_table(results), (
        f"Reconstruction of the {test['n_patches']} test patches ({test['n_maps']} maps never used in training "
        "or early stopping). RMSE in $\\log_2$ units of the normalised vector, and in units of each coefficient's "
        "training spread (std.; PCA fitted in that space for that column); RMSE of the reconstruction against the "
        "mean vector of the other test patches of the patch's map (leave-one-out: what a compression keeps of the "
        "map's physics, independent of the patch's own sample noise; patches alone in their map left out); mean "
        "relative errors of $S_1$ and $S_2/S_1$; encoding time per patch on the CPU. The within-map scatter is the "
        "unbiased spread of a test map's patches around their map's mean (RMS over maps); the identity row scores "
        f"each patch itself against its leave-one-out map mean.{brackets} {SOURCE}"),
        "tab:main")
    paired = paired_table(results)
    if paired is not None:
        main += "\n\n" + latex_float(paired, (
            "Paired differences (first minus second) of the figures of Table~\\ref{tab:main}, with "
            f"{100 * boot['level']:.0f}\\% bootstrap intervals over the test maps: a difference is a ranking only "
            f"when its interval excludes 0. {SOURCE}"), "tab:paired")
    layers = latex_float(layer_table(results), "Test RMSE ($\\log_2$ units) per field and layer, with the within-map scatter. "
                         + SOURCE, "tab:layers", small=False)
    return (main + "\n\n" + layers + "\n\n" + latex_physics(results) + "\n\n" + latex_synthesis(results) + "\n"
            + latex_learning(results) + latex_curve(results))


#: What each target's curve measures, for captions.
CURVE_CAPTIONS = {"patch": "the test patch's own vector", "map": "the leave-one-out mean of the other test patches of its map"}


def latex_curve(results: dict) -> str:
    """The rate-distortion tables (one per target), when the results carry the curve; a stub table otherwise."""
    section = results.get("rate_distortion")
    out = []
    for target, what in CURVE_CAPTIONS.items():
        table = curve_table(section, target) if section else None
        if table is None:
            out.append("\n".join(["\\begin{table}", "\\centering", f"\\caption{{Rate-distortion curve ({target} target): "
                                  "not computed for this results file.}", f"\\label{{tab:curve-{target}}}", "\\end{table}"]))
            continue
        out.append(latex_float(table, (
            f"Test RMSE ($\\log_2$) against {what}, by latent size $k$ and compressor family, with 95\\% bootstrap "
            "intervals over test maps; RWST Models 1 and 2 below the rule at their own sizes. Learned families are "
            "started at their linear optimum (symmetric PCA for the patch target, RRR for the map target) and trained "
            "with the grid's symmetries. Generated from \\texttt{rate\\_distortion.json}."), f"tab:curve-{target}"))
    return "\n\n".join(out) + "\n"


def latex_physics(results: dict) -> str:
    """Table of held-out R^2 per label and code, or a stub table saying why there is none."""
    table = r2_table(results)
    if table is None:
        return "\n".join(["\\begin{table}", "\\centering", "\\caption{Label regression: not run on this results file.}",
                          "\\label{tab:physics}", "\\end{table}"])
    skipped = results["label_regression"].get("skipped") or {}
    skipped_text = ("; not regressed: " + "; ".join(f"{tex_escape(k)} ({v})" for k, v in skipped.items())) if skipped else ""
    return latex_float(table, (
        "How well each code predicts the simulation parameters: $R^2$ on the test maps of a "
        f"{REGRESSOR_NAMES['ridge']} / {REGRESSOR_NAMES['boosting']} regression fitted on the training maps' codes "
        "(VAE posterior means, PCA coefficients, RWST parameters; the full coefficient vector for reference). "
        "1 is perfect, 0 no better than the mean; orientations enter as $\\cos 2\\chi$ and $\\sin 2\\chi$, "
        "the inclination as $|\\gamma_0|$ (its sign does not change the emission); labels marked AUC are classes, "
        "scored by the ROC AUC of the regression's output (0.5 is chance)"
        f"{skipped_text}. {SOURCE}"), "tab:physics")


def transfer_sentence(summary: dict | None) -> str:
    """'fitted on turbulence maps and scored on filament maps, ... grows by 8.1\\% (PCA-85), ...' from transfer.json."""
    if not summary or not summary.get("growth"):
        return "the transfer between sky models was not measured for this results file"
    parts = []
    for direction, growth in summary["growth"].items():
        fit, other = (d.strip() for d in direction.split("->"))
        items = ", ".join(f"{registry.label(n)} {100 * (g - 1):+.1f}\\%" for n, g in
                          sorted(growth.items(), key=lambda kv: registry.sort_key(kv[0])))
        parts.append(f"fitted on {fit.removesuffix('s')} maps and scored on {other.removesuffix('s')} maps, "
                     f"the test RMSE changes by {items}")
    return "; ".join(parts)


def map_target_claims(results: dict, curve: dict | None) -> dict[str, str]:
    """The map-level target at the tables' sizes, one sentence per macro, from the curve's evaluation when there is one.

    ``MapTarget*``: the RRR-started variant against the stronger of RRR and symmetric RRR; ``TableMap*``: the
    tables' architecture trained on the map target against the same; ``TableMapPatch*``: against itself trained
    on the patch.
    """
    where = curve or results  # the map-target models are compared in the curve's evaluation
    metric, what = "rmse_to_map_mean_log2", "test RMSE to the map mean"
    claims = {}
    for size, word in ((85, "EightyFive"), (170, "OneSeventy")):
        linear = [n for n in (f"rrr-{size}", f"rrr-sym-{size}") if where["compressors"].get(n, {}).get(metric)]
        stronger = min(linear, key=lambda n: where["compressors"][n][metric]) if linear else f"rrr-{size}"
        claims[f"MapTarget{word}"] = versus(where, f"vae-{size}+rrr+map", stronger, metric, what)
        claims[f"TableMap{word}"] = versus(where, f"vae-{size}+map", stronger, metric, what)
        claims[f"TableMapPatch{word}"] = versus(where, f"vae-{size}+map", f"vae-{size}", metric, what)
    return claims


def latex_macros(results: dict, curve: dict | None = None, transfer: dict | None = None) -> str:
    """Every macro the paper's text uses, defined whether or not this run has its number (``--`` then).

    ``curve`` is the results file of ``scripts/rate_distortion.py`` (the map-target models are compared there).
    """
    comp = results["compressors"]
    lines = ["% Generated by scripts/make_paper_tables.py from results.json; do not edit."]
    macro = lambda name, value: lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")  # noqa: E731
    # Switches for the paragraphs whose runs are optional (synthesis, learning curves, rate-distortion, transfer).
    present = {"synthesis": bool(results.get("synthesis")), "learning": bool((results.get("learning_curves") or {}).get("points")),
               "curve": bool(results.get("rate_distortion")), "transfer": bool(transfer and transfer.get("growth"))}
    for name, on in present.items():
        lines += [f"\\newif\\if{name}", f"\\{name}{'true' if on else 'false'}"]
    test = results["test"]
    macro("NTest", test["n_patches"])
    macro("NTestMaps", test["n_maps"])
    macro("NTrain", results["inputs"].get("n_train", 0))
    floor = results.get("noise_floor") or {}
    macro("NoiseFloor", num(floor.get("rmse_log2"), 3))
    macro("NoiseFloorStd", num(floor.get("rmse_std"), 3))
    energy_floor = MISSING
    every = registry.paper_set() + [n for n in names(results) if n not in registry.paper_set()]
    for n in every:
        stem, r = registry.macro_stem(n), comp.get(n) or {}
        macro(f"Rmse{stem}", num(r.get("rmse_log2"), 3))
        macro(f"RmseStd{stem}", num(r.get("rmse_std"), 3))
        macro(f"RmseMapMean{stem}", num(r.get("rmse_to_map_mean_log2"), 3))
        macro(f"RelSone{stem}", num(r.get("rel_err_s1"), 1, 100))
        macro(f"RelStwo{stem}", num(r.get("rel_err_s2_over_s1"), 1, 100))
        if registry.is_vae(n):
            g = r.get("generative") or {}
            macro(f"Energy{stem}", num(g.get("energy_distance"), 2))
            macro(f"StdRatio{stem}", num(g.get("median_std_ratio"), 2))
            if g:
                energy_floor = f"{g['energy_distance_train_vs_test']:.2f}"
            f = r.get("generative_fitted") or {}
            macro(f"EnergyFitted{stem}", num(f.get("energy_distance"), 2))
            macro(f"StdRatioFitted{stem}", num(f.get("median_std_ratio"), 2))
            macro(f"PriorComponents{stem}", f.get("components", MISSING))
    macro("EnergyFloor", energy_floor)
    for vae in ("vae-170", "vae-85", "vae-170+pca", "vae-85+pca"):
        stem = registry.macro_stem(vae)
        macro(f"Compare{stem}", comparison_sentence(results, vae))
        epoch = comp.get(vae, {}).get("best_epoch")
        macro(f"BestEpoch{stem}", epoch if epoch is not None else MISSING)
    for layer, name in (("1", "BestLayerOne"), ("2", "BestLayerTwo")):
        macro(name, best_sentence(results, f"rmse_log2_layer{layer}", digits=3))
    macro("BestName", best_sentence(results))
    for size, word in ((170, "OneSeventy"), (85, "EightyFive")):
        macro(f"Winner{word}", winner_sentence(results, size))
    for vae in ("vae-170", "vae-85", "vae-170+pca", "vae-85+pca"):
        macro(f"AgainstPCA{registry.macro_stem(vae)}", against_pca(results, vae))
    macro("BestMapMean", best_map_mean(results))
    macro("Transfer", transfer_sentence(transfer))
    section = results.get("rate_distortion")
    for target, word in (("patch", "Patch"), ("map", "Map")):
        macro(f"Curve{word}", curve_sentence(section, target))
    claims = [curve_sentence(section, t) for t in ("patch", "map")] if section else []
    macro("ClaimCurve", (" Across latent sizes, " + "; ".join(claims) + ".") if claims else "")
    for vae in ("vae-170", "vae-85"):
        macro(f"AgainstRWST{registry.macro_stem(vae)}", versus(results, vae, "rwst2"))
    chosen = (results.get("linear_baseline") or {}).get("chosen") or {}
    for size, word in ((170, "OneSeventy"), (85, "EightyFive")):
        start = f"vae-{size}+pca"
        linear = chosen.get(str(size), f"pca-sym-{size}")
        macro(f"StartAgainstLinear{word}", versus(results, start, linear))
    for name, sentence in map_target_claims(results, curve).items():
        macro(name, sentence)
    synthesis = (results.get("synthesis") or {}).get("compressors", {})
    for n in ["wst", "gaussian", *every]:
        stem = SYNTHESIS_STEMS.get(n) or registry.macro_stem(n)
        row = synthesis.get(n) or {}
        macro(f"SynthSpec{stem}", num(row.get("spectrum_rms_log2"), 2))
        macro(f"SynthPix{stem}", num(row.get("pixel_distance"), 3))
    macro("SynthN", (results.get("synthesis") or {}).get("rows") and len(results["synthesis"]["rows"]) or MISSING)
    macro("SynthSteps", (results.get("synthesis") or {}).get("steps", MISSING))
    curves = results.get("learning_curves") or {}
    points = curves.get("points") or []
    share = {int(k): v for k, v in (results.get("noise_share") or {}).items()}
    for size, word in ((64, "SixtyFour"), (128, "OneTwentyEight"), (256, "TwoFiftySix")):
        macro(f"NoiseShare{word}", num(share[size]["all"], 0, 100) if size in share else MISSING)
    macro("LearnSmallest", points[0]["train_patches"] if points else MISSING)
    macro("LearnLargest", points[-1]["train_patches"] if points else MISSING)
    return "\n".join(lines) + "\n"


#: Macro stems of the synthesis rows that are not compressors.
SYNTHESIS_STEMS = {"wst": "WST", "gaussian": "Gauss"}


def latex_synthesis(results: dict) -> str:
    """Table of the syntheses' power-spectrum and pixel-distribution errors, when the run has them."""
    table = synthesis_table(results)
    if table is None:
        return ""
    synthesis = results["synthesis"]
    return latex_float(table, (
        f"Maps synthesised from WST vectors, against the {len(synthesis['rows'])} original test patches "
        f"({synthesis['patch_size']} px; {synthesis['steps']} L-BFGS iterations from the same noise; periodic boundary): "
        "RMS over the octave bands the WST constrains of $\\log_2$ of the power ratio; Wasserstein-1 distance of the "
        "pixel values in units of the original's std; excess kurtosis of the pixels (originals: "
        f"{num(synthesis.get('kurtosis_original'), 2)}). {SOURCE}"), "tab:synthesis") + "\n"


def latex_learning(results: dict) -> str:
    """Table of test RMSE against the number of training patches, when the run has learning curves."""
    table = learning_table(results)
    if table is None:
        return ""
    return latex_float(table, (
        "Test RMSE ($\\log_2$) against the training-set size (nested subsets of the training maps; "
        "validation and test splits fixed; VAEs trained as in the main run). "
        "Generated from \\texttt{learning\\_curves.json}."), "tab:learning") + "\n"


def rst_table(results: dict, curve: dict | None = None) -> str:
    """The docs' results page: the same tables in reStructuredText, with the prose around them."""
    comp = results["compressors"]
    test = results["test"]
    out = [f"Test split: {test['n_patches']} patches from {test['n_maps']} maps ({test['split']}); "
           f"dustvae {results['versions']['dustvae']}, machine: {results['machine']['platform']}.", "",
           render(main_table(results), "rst"), ""]
    floor = results.get("noise_floor")
    if floor:
        out += ["The within-map scatter is the unbiased spread of a test map's patches around their map's mean "
                f"vector (RMS over {floor['n_maps']} maps); \"RMSE to LOO map mean\" compares each reconstruction "
                "with the mean of the other test patches of its map (leave-one-out, so that copying the patch's own "
                "noise earns nothing; patches alone in their map are left out), and the identity row scores the "
                "patch itself against that target. For a map of n patches the identity's squared RMSE is "
                "n / (n - 1) times the scatter's squared.", ""]
    out += [line + "\n" for line in bootstrap_sentence(results)]
    paired = paired_table(results)
    if paired is not None:
        out += ["Paired differences (first minus second); a difference is a ranking only when its interval excludes 0:",
                "", render(paired, "rst"), ""]
    table = r2_table(results)
    if table is not None:
        regression = results["label_regression"]
        out += ["Held-out R^2 (ROC AUC for labels marked AUC) of each simulation label regressed on each code "
                f"({REGRESSOR_NAMES['ridge']} / "
                f"{REGRESSOR_NAMES['boosting']}; fitted on the training split, scored on the test split):", "",
                render(table, "rst"), ""]
        if regression.get("skipped"):
            out += ["Labels not regressed: " + "; ".join(f"{k} ({v})" for k, v in regression["skipped"].items()) + ".", ""]
    for n in names(results):
        if "generative" in comp[n]:
            g = comp[n]["generative"]
            out.append(f"* {label(results, n)} prior samples: energy distance {g['energy_distance']:.2f} to the test set "
                       f"(training vs test: {g['energy_distance_train_vs_test']:.2f}); median spread ratio "
                       f"{g['median_std_ratio']:.2f}" + (
                           f"; from the fitted prior ({comp[n]['generative_fitted']['prior']}): energy distance "
                           f"{comp[n]['generative_fitted']['energy_distance']:.2f}, spread ratio "
                           f"{comp[n]['generative_fitted']['median_std_ratio']:.2f}" if "generative_fitted" in comp[n] else "") + ".")
    table = synthesis_table(results)
    if table is not None:
        synthesis = results["synthesis"]
        out += ["", f"Maps synthesised from WST vectors against {len(synthesis['rows'])} original test patches "
                f"({synthesis['patch_size']} px, {synthesis['steps']} L-BFGS iterations; spectrum error: RMS log2 power "
                "ratio over the octave bands the WST constrains; pixel W1 in units of the original's std):", "",
                render(table, "rst"), "", f"Excess kurtosis of the originals: {num(synthesis.get('kurtosis_original'), 2)}.", ""]
    table = learning_table(results)
    if table is not None:
        out += ["", "Test RMSE (log2) against the number of training patches:", "", render(table, "rst"), ""]
    section = results.get("rate_distortion")
    for target, what in CURVE_CAPTIONS.items():
        table = curve_table(section, target) if section else None
        if table is not None:
            out += ["", f"Rate-distortion curve: test RMSE (log2) against {what}, by latent size k "
                    "(``scripts/rate_distortion.py``; 95% intervals over test maps):", "", render(table, "rst"), "",
                    curve_sentence(section, target).replace("\\%", "%").replace("$k$", "k").capitalize() + ".", ""]
    if section:
        out += ["The map-level target at the tables' sizes (paired intervals over test maps):", ""]
        out += [f"* {sentence.replace(chr(92) + '%', '%')}." for sentence in map_target_claims(results, curve).values()]
        out.append("")
    for note in results.get("notes", []):
        out.append(f"* Note: {note}")
    return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", default=ROOT / defaults.DEMO_RUN / "results.json")
    parser.add_argument("--paper-dir", type=Path, default=ROOT / "paper" / "generated")
    parser.add_argument("--docs-dir", type=Path, default=ROOT / "docs" / "_generated")
    parser.add_argument("--noise-share", type=Path, default=ROOT / "runs" / "noise_share.json",
                        help="Output of scripts/noise_share.py (its numbers are quoted in the paper's Data section).")
    args = parser.parse_args(argv)
    if not args.results.exists():
        parser.exit(2, f"make_paper_tables: {args.results} not found; run `make demo` (or pass a results file) first\n")
    try:
        results = read_results(args.results)
    except DustvaeError as exc:
        parser.exit(2, f"make_paper_tables: error: {exc}\n")
    learning = args.results.parent / "learning" / "learning_curves.json"
    if learning.exists():
        results["learning_curves"] = json.loads(learning.read_text())
    curve_path, curve = args.results.parent / "rate_distortion.json", None
    if curve_path.exists():
        curve = read_results(curve_path)
        results.setdefault("rate_distortion", curve.get("rate_distortion"))
    if args.noise_share.exists():
        results["noise_share"] = json.loads(args.noise_share.read_text())["sizes"]
    _write(args.paper_dir / "tables.tex", latex_tables(results))
    transfer_path = args.results.parent / "transfer" / "transfer.json"
    transfer = json.loads(transfer_path.read_text()) if transfer_path.exists() else None
    _write(args.paper_dir / "macros.tex", latex_macros(results, curve, transfer))
    _write(args.paper_dir / "source.txt", f"{args.results}\n")
    _write(args.docs_dir / "results.rst", rst_table(results, curve))
    print(f"wrote tables.tex, macros.tex in {args.paper_dir} and results.rst in {args.docs_dir} from {args.results}")


if __name__ == "__main__":
    main()
