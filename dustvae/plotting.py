"""The look of every figure dustvae draws, and how figures are written.

Colours follow Okabe & Ito (2008), safe for colour-blind readers; every
figure is written as PDF and PNG, atomically. Importing this module does
not import matplotlib (the names and tables that use the palette load
without it); :func:`save_figure` needs pyplot and imports it.
"""

from __future__ import annotations

from pathlib import Path

from cycler import cycler  # matplotlib's own property cycler (a dependency of matplotlib)

from .io.atomic import atomic_path

#: Okabe & Ito (2008) colours: safe for colour-blind readers.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")

#: Matplotlib rc parameters of every figure (``plt.rc_context(STYLE)``).
STYLE = {
    "figure.dpi": 150, "savefig.dpi": 200, "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
    "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False,
    "axes.spines.right": False, "savefig.bbox": "tight", "axes.prop_cycle": cycler(color=OKABE_ITO[1:]),
}


def save_figure(fig, stem: str | Path) -> list[Path]:
    """Write ``stem.pdf`` and ``stem.png`` atomically, close the figure, return the paths."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    paths = []
    for ext in ("pdf", "png"):
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext)
        paths.append(path)
    plt.close(fig)
    return paths
