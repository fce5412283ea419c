"""A quick look at a flat map: I, Q, U and the polarized intensity side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..io.atomic import atomic_path


def plot_flat_map(fields: Mapping[str, np.ndarray], output: str | Path, title: str = "") -> Path:
    """Draw I (if present), Q, U and P = sqrt(Q^2 + U^2) of a flat map into an image file.

    Rows run north (up), columns east (left, as on the sky). Colour limits
    are the 1st and 99th percentiles, so a few bright filaments do not wash
    out the rest.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {name: np.asarray(fields[name], float) for name in ("I", "Q", "U") if name in fields}
    if "Q" in panels and "U" in panels:
        panels["P"] = np.hypot(panels["Q"], panels["U"])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, image) in zip(axes[0], panels.items()):
        lo, hi = np.nanpercentile(image, [1, 99])
        cmap = "RdBu_r" if name in ("Q", "U") else "inferno"
        if name in ("Q", "U"):
            lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
        im = ax.imshow(image, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
        ax.invert_xaxis()
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    output = Path(output)
    with atomic_path(output) as tmp:
        fig.savefig(tmp, dpi=110, format=output.suffix.lstrip(".") or "png")
    plt.close(fig)
    return output
