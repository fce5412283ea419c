"""Figures of the rate-distortion curve: test RMSE against latent size, one figure per target, intervals as bars."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt

from . import registry
from ..plotting import OKABE_ITO, STYLE, save_figure
from .rate_distortion import TARGET_METRICS

#: Figure names, one per target.
CURVE_FIGURES = {target: f"rate_distortion_{target}" for target in TARGET_METRICS}
_YLABEL = {"patch": "test RMSE to the patch (log2)", "map": "test RMSE to the leave-one-out map mean (log2)"}


def draw_rate_distortion(section: Mapping, out_dir: str | Path) -> list[Path]:
    """Draw ``rate_distortion_patch`` and ``rate_distortion_map`` (PDF and PNG) from a results file's section."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for target, name in CURVE_FIGURES.items():
        with plt.rc_context(STYLE):
            fig, ax = plt.subplots(figsize=(4.6, 3.2))
            ordered = sorted(section["families"].items(), key=lambda kv: registry.sort_key(_example(kv)))
            for k, (fam, points) in enumerate(ordered):
                sizes = sorted((int(k) for k, p in points.items() if target in p))
                if not sizes:
                    continue
                values = [points[str(k)][target]["value"] for k in sizes]
                bars = [points[str(k)][target]["interval"] for k in sizes]
                learned = fam.startswith("vae")  # one colour per family; linear codes dashed, RWST as points
                look = dict(color=OKABE_ITO[1 + k % (len(OKABE_ITO) - 1)], ls="-" if learned else (0, (4, 2)),
                            lw=1.6 if learned else 1.1)
                label = _family_label(fam)
                if all(b is not None for b in bars):
                    err = [[v - b[0] for v, b in zip(values, bars)], [b[1] - v for v, b in zip(values, bars)]]
                    ax.errorbar(sizes, values, yerr=err, label=label, marker="o" if len(sizes) == 1 else ".",
                                ms=4, capsize=2, **look)
                else:
                    ax.plot(sizes, values, label=label, marker=".", **look)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("latent size")
            ax.set_ylabel(_YLABEL[target])
            ax.legend(frameon=False, ncol=2)
            written += save_figure(fig, out_dir / name)
    return written


def _example(item) -> str:
    """A compressor name of the family (its first size), for the registry's order and style."""
    fam, points = item
    size = min(int(k) for k in points)
    if fam.startswith("rwst"):
        return fam
    base, _, variant = fam.partition("+")
    return f"{base}-{size}" + (f"+{variant}" if variant else "")


def _family_label(fam: str) -> str:
    if fam.startswith("rwst"):
        return registry.label(fam)
    base, _, variant = fam.partition("+")
    text = {"vae": "VAE family", "pca": "PCA", "pca-sym": "sym. PCA", "rrr": "RRR", "rrr-sym": "sym. RRR"}.get(base, base)
    return text + "".join(f" + {registry.VARIANTS.get(v, v)}" for v in variant.split("+") if v)
