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

from dustvae.analysis import registry
from dustvae.io.atomic import atomic_path

ROOT = Path(__file__).resolve().parents[1]
MISSING = "--"  # every macro is defined, so the text compiles whatever the run compared
#: Table rows from the two regressors of the label regression (dustvae.analysis.physics).
REGRESSOR_TEXT = {"ridge": "linear (ridge)", "boosting": "non-linear (gradient boosting)"}


def names_in(results: dict) -> list[str]:
    return registry.ordered(results["compressors"])


def label(results: dict, name: str, size: bool = False) -> str:
    row = results["compressors"].get(name)
    return registry.label(name, row["latent"] if size and row else None)


def num(value, digits: int = 4, scale: float = 1.0) -> str:
    return MISSING if value is None else f"{scale * value:.{digits}f}"


#: Symbols of the simulator's labels (math mode); other labels are shown by name.
SYMBOLS = {"slope": "\\alpha", "turbulence": "f_M", "n_layers": "N", "intensity_sigma": "\\sigma_I",
           "mean_field_angle": "\\chi_0", "mean_field_inclination": "\\gamma_0"}


def tex_escape(text: str) -> str:
    return text.replace("_", "\\_")


def target_tex(target: str) -> str:
    """A regression target as a column head (``cos2_mean_field_angle`` -> ``$\\cos 2\\chi_0$``)."""
    trig, _, base = target.partition("2_")
    if trig in ("cos", "sin") and base:
        return f"$\\{trig} 2{SYMBOLS[base]}$" if base in SYMBOLS else f"{trig} 2({tex_escape(base)})"
    return f"${SYMBOLS[target]}$" if target in SYMBOLS else tex_escape(target)


def latex_tables(results: dict) -> str:
    comp = results["compressors"]
    floor = results.get("noise_floor") or {}
    rows = []
    for n in names_in(results):
        r = comp[n]
        rows.append(f"{label(results, n)} & {r['latent']} & {num(r['rmse_log2'])} & {num(r.get('rmse_std'))} & "
                    f"{num(r.get('rmse_to_map_mean_log2'))} & {num(r['rel_err_s1'])} & "
                    f"{num(r['rel_err_s2_over_s1'])} & {num(r['encode_ms_per_patch'], 3)} \\\\")
    if floor:
        rows += ["\\hline", f"Noise floor (within-map scatter) & -- & {num(floor.get('rmse_log2'))} & "
                 f"{num(floor.get('rmse_std'))} & -- & -- & -- & -- \\\\"]
    test = results["test"]
    main = "\n".join([
        "\\begin{table}",
        "\\centering",
        f"\\caption{{Reconstruction of the {test['n_patches']} test patches ({test['n_maps']} maps never used in training "
        "or early stopping). RMSE in $\\log_2$ units of the normalised vector, and in units of each coefficient's "
        "training spread (std.; PCA fitted in that space for that column); RMSE of the reconstruction against the "
        "mean vector of the patch's map (what a compression keeps of the map's physics, as opposed to its sample "
        "noise); mean relative errors of $S_1$ and $S_2/S_1$; encoding time per patch on the CPU. The noise floor "
        "is the scatter of a test map's patches around their map's mean (RMS over maps). "
        "Generated from \\texttt{results.json}.}",
        "\\label{tab:main}",
        "\\small",
        "\\begin{tabular}{lrrrrrrr}",
        "\\hline",
        "Compressor & Latents & RMSE & RMSE (std.) & RMSE to map mean & $\\langle|\\Delta S_1/S_1|\\rangle$ & "
        "$\\langle|\\Delta (S_2/S_1)/(S_2/S_1)|\\rangle$ & ms/patch \\\\",
        "\\hline",
        *rows,
        "\\hline",
        "\\end{tabular}",
        "\\end{table}",
    ])
    keys = sorted(comp[names_in(results)[0]]["per_field_layer"])
    layer_rows = []
    for n in names_in(results):
        r = comp[n]["per_field_layer"]
        layer_rows.append(f"{label(results, n, size=True)} & " + " & ".join(f"{r[k]['rmse_log2']:.3f}" for k in keys) + " \\\\")
    if floor.get("per_field_layer"):
        layer_rows += ["\\hline", "Noise floor & " + " & ".join(num(floor["per_field_layer"].get(k), 3) for k in keys) + " \\\\"]
    layers = "\n".join([
        "\\begin{table}",
        "\\centering",
        "\\caption{Test RMSE ($\\log_2$ units) per field and layer, with the noise floor. Generated from \\texttt{results.json}.}",
        "\\label{tab:layers}",
        "\\begin{tabular}{l" + "r" * len(keys) + "}",
        "\\hline",
        "Compressor & " + " & ".join(f"{k[0]}, layer {k[1]}" for k in keys) + " \\\\",
        "\\hline",
        *layer_rows,
        "\\hline",
        "\\end{tabular}",
        "\\end{table}",
    ])
    return main + "\n\n" + layers + "\n\n" + latex_physics(results) + "\n\n" + latex_synthesis(results) + "\n" + latex_learning(results)


def r2_rows(results: dict) -> list[tuple[str, dict]]:
    """(row label, ``{regressor: {target: r2}}``) for each compressor with label R^2, then the full vector."""
    comp = results["compressors"]
    rows = [(label(results, n, size=True), comp[n]["label_r2"]) for n in names_in(results) if comp[n].get("label_r2")]
    full = (results.get("label_regression") or {}).get("full_vector")
    if full:
        rows.append((f"full vector ({results['inputs']['layout'].get('vector_length', 'all')})", full))
    return rows


def latex_physics(results: dict) -> str:
    """Table of held-out R^2 per label and code, or a stub table saying why there is none."""
    regression = results.get("label_regression")
    head = ["\\begin{table}", "\\centering"]
    if not regression:
        return "\n".join(head + ["\\caption{Label regression: not run on this results file.}", "\\label{tab:physics}",
                                 "\\end{table}"])
    targets = regression["targets"]
    rows = []
    for text, r2 in r2_rows(results):
        cells = [f"{num(r2['ridge'].get(t), 2)} / {num(r2['boosting'].get(t), 2)}" for t in targets]
        rows.append(f"{text} & " + " & ".join(cells) + " \\\\")
    skipped = regression.get("skipped") or {}
    skipped_text = ("; not regressed: " + "; ".join(f"{tex_escape(k)} ({v})" for k, v in skipped.items())) if skipped else ""
    return "\n".join(head + [
        "\\caption{How well each code predicts the simulation parameters: $R^2$ on the test maps of a "
        f"{REGRESSOR_TEXT['ridge']} / {REGRESSOR_TEXT['boosting']} regression fitted on the training maps' codes "
        "(VAE posterior means, PCA coefficients, RWST parameters; the full coefficient vector for reference). "
        "1 is perfect, 0 no better than the mean; orientations enter as $\\cos 2\\chi$ and $\\sin 2\\chi$"
        f"{skipped_text}. Generated from \\texttt{{results.json}}.}}",
        "\\label{tab:physics}",
        "\\small",
        "\\begin{tabular}{l" + "r" * len(targets) + "}",
        "\\hline",
        "Code & " + " & ".join(target_tex(t) for t in targets) + " \\\\",
        "\\hline",
        *rows,
        "\\hline",
        "\\end{tabular}",
        "\\end{table}",
    ])


def latex_macros(results: dict) -> str:
    comp = results["compressors"]
    lines = ["% Generated by scripts/make_paper_tables.py from results.json; do not edit."]
    macro = lambda name, value: lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")  # noqa: E731
    test = results["test"]
    macro("NTest", test["n_patches"])
    macro("NTestMaps", test["n_maps"])
    macro("NTrain", results["inputs"].get("n_train", 0))
    floor = results.get("noise_floor") or {}
    macro("NoiseFloor", num(floor.get("rmse_log2"), 3))
    macro("NoiseFloorStd", num(floor.get("rmse_std"), 3))
    energy_floor = MISSING
    names = registry.paper_set() + [n for n in names_in(results) if n not in registry.paper_set()]
    for n in names:
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
        best = min(comp, key=lambda n: comp[n]["per_layer"][layer]["rmse_log2"])
        macro(name, f"{label(results, best)} ({comp[best]['latent']} numbers, {comp[best]['per_layer'][layer]['rmse_log2']:.3f})")
    best = min(comp, key=lambda n: comp[n]["rmse_log2"])
    macro("BestName", f"{label(results, best)} ({comp[best]['latent']} latents)")
    for size, word in ((170, "OneSeventy"), (85, "EightyFive")):
        macro(f"Winner{word}", winner_sentence(results, size))
    for vae in ("vae-170", "vae-85", "vae-170+pca", "vae-85+pca"):
        macro(f"AgainstPCA{registry.macro_stem(vae)}", against_pca(results, vae))
    with_mean = [n for n in comp if comp[n].get("rmse_to_map_mean_log2") is not None]
    if with_mean:
        ranked = sorted(with_mean, key=lambda n: comp[n]["rmse_to_map_mean_log2"])
        macro("BestMapMean", ", ".join(f"{label(results, n)} ({comp[n]['rmse_to_map_mean_log2']:.3f})" for n in ranked[:3]))
    else:
        macro("BestMapMean", MISSING)
    synthesis = (results.get("synthesis") or {}).get("compressors", {})
    for n in ["wst", "gaussian", *names]:
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
    synthesis = results.get("synthesis")
    if not synthesis:
        return ""
    rows = []
    for n, row in synthesis["compressors"].items():
        text = {"wst": "full WST vector", "gaussian": "Gaussian field, same spectrum"}.get(n) or label(results, n, size=True)
        kurt = synthesis.get("kurtosis_synthesis", {}).get(n)
        rows.append(f"{text} & {num(row['spectrum_rms_log2'], 3)} & {num(row['pixel_distance'], 3)} & {num(kurt, 2)} \\\\")
    return "\n".join([
        "\\begin{table}",
        "\\centering",
        f"\\caption{{Maps synthesised from WST vectors, against the {len(synthesis['rows'])} original test patches "
        f"({synthesis['patch_size']} px; {synthesis['steps']} L-BFGS iterations from the same noise; periodic boundary): "
        "RMS over the octave bands the WST constrains of $\\log_2$ of the power ratio; Wasserstein-1 distance of the "
        "pixel values in units of the original's std; excess kurtosis of the pixels (originals: "
        f"{num(synthesis.get('kurtosis_original'), 2)}). Generated from \\texttt{{results.json}}.}}",
        "\\label{tab:synthesis}",
        "\\small",
        "\\begin{tabular}{lrrr}",
        "\\hline",
        "Synthesised from & spectrum error & pixel $W_1$ & kurtosis \\\\",
        "\\hline",
        *rows,
        "\\hline",
        "\\end{tabular}",
        "\\end{table}",
    ]) + "\n"


def latex_learning(results: dict) -> str:
    """Table of test RMSE against the number of training patches, when the run has learning curves."""
    curves = results.get("learning_curves")
    if not curves:
        return ""
    names = list(curves["points"][0]["rmse_log2"])
    rows = [f"{p['train_patches']} ({p['train_maps']} maps) & " + " & ".join(num(p["rmse_log2"][n], 4) for n in names) + " \\\\"
            for p in curves["points"]]
    return "\n".join([
        "\\begin{table}",
        "\\centering",
        f"\\caption{{Test RMSE ($\\log_2$) against the training-set size (nested subsets of the training maps; "
        f"validation and test splits fixed; VAEs trained as in the main run). Generated from \\texttt{{learning\\_curves.json}}.}}",
        "\\label{tab:learning}",
        "\\small",
        "\\begin{tabular}{l" + "r" * len(names) + "}",
        "\\hline",
        "Training patches & " + " & ".join(names) + " \\\\",
        "\\hline",
        *rows,
        "\\hline",
        "\\end{tabular}",
        "\\end{table}",
    ]) + "\n"


def against_pca(results: dict, vae: str) -> str:
    """'VAE-1's test RMSE is 50.3% above PCA-170's', from the numbers."""
    comp = results["compressors"]
    row = comp.get(vae)
    pca_name = f"pca-{row['latent']}" if row else None
    if not row or pca_name not in comp:
        return f"{registry.label(vae)} was not compared with PCA at its size in this run"
    change = 100 * (row["rmse_log2"] / comp[pca_name]["rmse_log2"] - 1)
    side = "above" if change > 0 else "below"
    return f"{label(results, vae)}'s test RMSE is {abs(change):.1f}\\% {side} {label(results, pca_name)}'s"


def winner_sentence(results: dict, size: int) -> str:
    """'at 85 numbers, X has the lowest test RMSE (0.111), N% below the best table VAE (...)', from the numbers."""
    comp = results["compressors"]
    same = [n for n in names_in(results) if comp[n]["latent"] == size]
    if not same:
        return f"no compressor with {size} numbers was evaluated"
    ranked = sorted(same, key=lambda n: comp[n]["rmse_log2"])
    text = ", ".join(f"{label(results, n)} {comp[n]['rmse_log2']:.3f}" for n in ranked)
    return f"at {size} numbers the order is {text}"


def comparison_sentence(results: dict, vae: str) -> str:
    """'VAE-1 (0.250) has a lower test RMSE than ... and a higher one than ...', from the numbers."""
    comp = results["compressors"]
    if vae not in comp:
        return f"{registry.label(vae)} was not evaluated in this run"
    mine = comp[vae]["rmse_log2"]
    others = [n for n in names_in(results) if not registry.is_vae(n)]
    describe = lambda n: f"{label(results, n)} with {comp[n]['latent']} numbers ({comp[n]['rmse_log2']:.3f})"  # noqa: E731
    better = [describe(n) for n in others if comp[n]["rmse_log2"] > mine]
    worse = [describe(n) for n in others if comp[n]["rmse_log2"] <= mine]
    join = lambda items: ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]  # noqa: E731
    parts = []
    if better:
        parts.append("a lower test RMSE than " + join(better))
    if worse:
        parts.append(("a higher one than " if better else "a higher test RMSE than ") + join(worse))
    return f"{label(results, vae)} ({mine:.3f}) has " + "; ".join(parts)


def _rst_grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return [rule, fmt(header), rule, *map(fmt, rows), rule]


def rst_table(results: dict) -> str:
    comp = results["compressors"]
    header = ["compressor", "latents", "RMSE (log2)", "RMSE (std.)", "RMSE to map mean", "rel. err. S1",
              "rel. err. S2/S1", "encode ms/patch"]
    rows = [[label(results, n), str(comp[n]["latent"]), num(comp[n]["rmse_log2"]), num(comp[n].get("rmse_std")),
             num(comp[n].get("rmse_to_map_mean_log2")), num(comp[n]["rel_err_s1"]),
             num(comp[n]["rel_err_s2_over_s1"]), num(comp[n]["encode_ms_per_patch"], 3)] for n in names_in(results)]
    floor = results.get("noise_floor")
    if floor:
        rows.append(["noise floor", "--", num(floor.get("rmse_log2")), num(floor.get("rmse_std")), "--", "--", "--", "--"])
    test = results["test"]
    out = [f"Test split: {test['n_patches']} patches from {test['n_maps']} maps ({test['split']}); "
           f"dustvae {results['versions']['dustvae']}, machine: {results['machine']['platform']}.", "",
           *_rst_grid(header, rows), ""]
    if floor:
        out += ["The noise floor is the scatter of a test map's patches around their map's mean vector (RMS over "
                f"{floor['n_maps']} maps); \"RMSE to map mean\" compares each reconstruction with that mean.", ""]
    regression = results.get("label_regression")
    if regression:
        targets = regression["targets"]
        out += [f"Held-out R^2 of each simulation label regressed on each code ({REGRESSOR_TEXT['ridge']} / "
                f"{REGRESSOR_TEXT['boosting']}; fitted on the training split, scored on the test split):", ""]
        r2 = [[text] + [f"{num(t['ridge'].get(k), 2)} / {num(t['boosting'].get(k), 2)}" for k in targets]
              for text, t in r2_rows(results)]
        out += [*_rst_grid(["code", *targets], r2), ""]
        if regression.get("skipped"):
            out.append("Labels not regressed: " + "; ".join(f"{k} ({v})" for k, v in regression["skipped"].items()) + ".")
            out.append("")
    for n in names_in(results):
        if "generative" in comp[n]:
            g = comp[n]["generative"]
            out.append(f"* {label(results, n)} prior samples: energy distance {g['energy_distance']:.2f} to the test set "
                       f"(training vs test: {g['energy_distance_train_vs_test']:.2f}); median spread ratio "
                       f"{g['median_std_ratio']:.2f}" + (
                           f"; from the fitted prior ({comp[n]['generative_fitted']['prior']}): energy distance "
                           f"{comp[n]['generative_fitted']['energy_distance']:.2f}, spread ratio "
                           f"{comp[n]['generative_fitted']['median_std_ratio']:.2f}" if "generative_fitted" in comp[n] else "") + ".")
    synthesis = results.get("synthesis")
    if synthesis:
        out += ["", f"Maps synthesised from WST vectors against {len(synthesis['rows'])} original test patches "
                f"({synthesis['patch_size']} px, {synthesis['steps']} L-BFGS iterations; spectrum error: RMS log2 power "
                "ratio over the octave bands the WST constrains; pixel W1 in units of the original's std):", ""]
        out += _rst_grid(["synthesised from", "spectrum error", "pixel W1", "kurtosis"],
                         [[{"wst": "full WST", "gaussian": "Gaussian, same spectrum"}.get(n) or label(results, n),
                           num(r["spectrum_rms_log2"], 3), num(r["pixel_distance"], 3),
                           num(synthesis.get("kurtosis_synthesis", {}).get(n), 2)]
                          for n, r in synthesis["compressors"].items()]) + [
            "", f"Excess kurtosis of the originals: {num(synthesis.get('kurtosis_original'), 2)}.", ""]
    curves = results.get("learning_curves")
    if curves:
        names = list(curves["points"][0]["rmse_log2"])
        out += ["", "Test RMSE (log2) against the number of training patches:", ""]
        out += _rst_grid(["training patches", *names],
                         [[str(p["train_patches"]), *(num(p["rmse_log2"][n]) for n in names)] for p in curves["points"]]) + [""]
    for note in results.get("notes", []):
        out.append(f"* Note: {note}")
    return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", default=ROOT / "runs" / "default" / "results.json")
    parser.add_argument("--paper-dir", type=Path, default=ROOT / "paper" / "generated")
    parser.add_argument("--docs-dir", type=Path, default=ROOT / "docs" / "_generated")
    parser.add_argument("--noise-share", type=Path, default=ROOT / "runs" / "noise_share.json",
                        help="Output of scripts/noise_share.py (its numbers are quoted in the paper's Data section).")
    args = parser.parse_args(argv)
    if not args.results.exists():
        parser.exit(2, f"make_paper_tables: {args.results} not found; run `make demo` (or pass a results file) first\n")
    results = json.loads(args.results.read_text())
    learning = args.results.parent / "learning" / "learning_curves.json"
    if learning.exists():
        results["learning_curves"] = json.loads(learning.read_text())
    if args.noise_share.exists():
        results["noise_share"] = json.loads(args.noise_share.read_text())["sizes"]
    _write(args.paper_dir / "tables.tex", latex_tables(results))
    _write(args.paper_dir / "macros.tex", latex_macros(results))
    _write(args.paper_dir / "source.txt", f"{args.results}\n")
    _write(args.docs_dir / "results.rst", rst_table(results))
    print(f"wrote tables.tex, macros.tex in {args.paper_dir} and results.rst in {args.docs_dir} from {args.results}")


if __name__ == "__main__":
    main()
