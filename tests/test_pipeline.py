"""The demo chain on a tiny plan: every stage writes its outputs, and a second run reuses them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dustvae.pipeline import DemoPlan, run_demo


@pytest.mark.slow
def test_demo_chain_and_reuse(tmp_path, quick_label_regression):
    plan = DemoPlan(n_maps=16, patch_size=64, epochs=1, patience=1, variant_epochs=1, variant_patience=1)  # 192 training patches
    said: list[str] = []
    results = run_demo(tmp_path, plan, device="cpu", progress=False, say=said.append)
    assert set(results["compressors"]) == {"vae-85", "vae-170", "vae-85+pca", "vae-170+pca", "rwst1", "rwst2", "pca-85",
                                           "pca-170", "pca-sym-85", "pca-sym-170"}
    for path in ("data.h5", "vae-85/best.pt", "vae-170/best.pt", "vae-85+pca/best.pt", "results.json",
                 "figures/coefficients.png"):
        assert (tmp_path / path).exists(), path
    assert any("| compressor |" in line for line in said)
    stamp = (tmp_path / "results.json").stat().st_mtime_ns

    again: list[str] = []
    run_demo(tmp_path, plan, device="cpu", progress=False, say=again.append)
    assert sum("reusing" in line for line in again) == 6  # the dataset, four runs, the evaluation
    assert (tmp_path / "results.json").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "results.json").read_text())["compressors"]["rwst1"]["latent"] == 130
    assert not any("without bootstrap intervals" in line for line in again)
    _abstract_has_no_placeholder(tmp_path / "results.json", tmp_path)

    # a results file of an older format is kept (it may hold rows the demo does not make), and the demo says so
    old = json.loads((tmp_path / "results.json").read_text())
    for key in ("format", "format_version", "bootstrap"):
        old.pop(key)
    (tmp_path / "results.json").write_text(json.dumps(old))
    third: list[str] = []
    run_demo(tmp_path, plan, device="cpu", progress=False, say=third.append)
    assert any("format 1, without bootstrap intervals; delete it to evaluate again" in line for line in third)


def _abstract_has_no_placeholder(results: Path, tmp_path: Path) -> None:
    """The paper's abstract, with macros made from the demo's results, carries a number or a sentence everywhere."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "scripts" / "make_paper_tables.py"), str(results), "--paper-dir",
                           str(tmp_path / "paper"), "--docs-dir", str(tmp_path / "docs")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    macros = dict(re.findall(r"\\newcommand\{\\(\w+)\}\{(.*)\}", (tmp_path / "paper" / "macros.tex").read_text()))
    text = (root / "paper" / "dustvae.tex").read_text()
    abstract = text[text.index("\\begin{abstract}"): text.index("\\end{abstract}")]
    used = re.findall(r"\\([A-Z][A-Za-z]+)", abstract)
    assert used
    for name in used:
        value = macros[name]
        assert value != "--" and not re.search("not (evaluated|compared|computed)", value), (name, value)
