"""The figure that shows what each compression keeps: maps synthesised from its vectors beside the original.

One row of images (the original patch, then one synthesis per entry: the
full WST, each compressor's reconstruction, prior samples), and under it
the power spectra and pixel histograms of them all. The maps come already
synthesised (:func:`dustvae.synthesis.synthesize`); this module only draws.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import DustvaeError  # noqa: E402
from ..plotting import STYLE, save_figure  # noqa: E402,F401  (save_figure: this module's writer too)
from ..synthesis.compare import radial_spectrum  # noqa: E402
from . import registry  # noqa: E402

#: Labels of entries that are not compressors.
SPECIAL_LABELS = {"wst": "full WST"}


def _label(name: str, labels: Mapping[str, str] | None) -> str:
    if labels and name in labels:
        return labels[name]
    if name in SPECIAL_LABELS:
        return SPECIAL_LABELS[name]
    if name.startswith("prior"):
        return name.replace("prior", "prior sample ").replace("  ", " ").strip()
    return registry.label(name)


def _style(name: str) -> dict:
    if name == "wst":
        return dict(color=registry.OKABE_ITO[0], ls=":", lw=1.2)
    if name.startswith("prior"):
        return dict(color="0.55", ls=(0, (3, 1, 1, 1)), lw=0.9)
    return registry.style(name)


def _amplitude(maps: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(np.asarray(maps, dtype=np.float64) ** 2, axis=0))))


def fig_synthesis(original: np.ndarray, syntheses: Mapping[str, np.ndarray], *, fields: tuple[str, ...] = ("Q", "U"),
                  labels: Mapping[str, str] | None = None, normalise: bool = True):
    """Original and synthesised maps, their power spectra and pixel histograms.

    Parameters
    ----------
    original : ndarray (F, n, n)
        The patch (Q and U by default).
    syntheses : mapping of name to ndarray (F, n, n)
        In drawing order. Names of compressors (``vae-85``, ``rwst2``,
        ``pca-85``, ...) take the colours and labels of the other figures;
        ``wst`` is the synthesis from the full vector, names starting with
        ``prior`` are prior samples.
    fields : tuple of str
        Field names of axis 0. With Q and U the images show the polarized
        intensity ``P = sqrt(Q^2 + U^2)``, else the first field.
    labels : mapping, optional
        Labels that replace the default ones.
    normalise : bool
        Divide every map by its own amplitude ``sqrt(mean(Q^2 + U^2))`` first,
        so that prior samples (whose amplitude a model does not know) share
        the axes; the WST vector describes exactly that normalised map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    maps = {"data": np.asarray(original, dtype=np.float64)}
    for name, value in syntheses.items():
        value = np.asarray(value, dtype=np.float64)
        if value.shape != maps["data"].shape:
            raise DustvaeError(f"synthesis {name!r} has shape {value.shape}, the original {maps['data'].shape}")
        maps[name] = value
    if normalise:
        maps = {name: m / _amplitude(m) for name, m in maps.items()}
    polarized = "Q" in fields and "U" in fields

    def image_of(m: np.ndarray) -> np.ndarray:
        return np.hypot(m[fields.index("Q")], m[fields.index("U")]) if polarized else m[0]

    reference = image_of(maps["data"])
    vmin, vmax = np.percentile(reference, [1, 99])
    n = len(maps)
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(max(7.2, 1.05 * n), 1.15 + 2.5), constrained_layout=True)
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.15, 2.5])
        image_axes = top.subplots(1, n)
        for ax, (name, m) in zip(image_axes, maps.items()):
            shown = ax.imshow(image_of(m), origin="lower", cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(_label(name, labels), fontsize=7)
        bar = top.colorbar(shown, ax=image_axes, location="right", shrink=0.9, aspect=12, pad=0.01)
        quantity = "P" if polarized else fields[0]
        bar.set_label(f"{quantity} / A" if normalise else quantity, fontsize=7)
        spec_ax, hist_ax = bottom.subplots(1, 2)
        lo, hi = float(maps["data"].min()), float(maps["data"].max())
        edges = np.linspace(lo - 0.3 * (hi - lo), hi + 0.3 * (hi - lo), 60)
        for name, m in maps.items():
            look = _style(name)
            k, power = radial_spectrum(m)
            spec_ax.loglog(k, power, label=_label(name, labels), **look)
            counts, _ = np.histogram(m.ravel(), bins=edges, density=True)
            hist_ax.step(0.5 * (edges[1:] + edges[:-1]), np.where(counts > 0, counts, np.nan), where="mid", **look)
        spec_ax.set_xlabel("wavenumber k [cycles per patch]")
        spec_ax.set_ylabel("power, fields summed")
        spec_ax.set_title("power spectra")
        hist_ax.set_yscale("log")
        hist_ax.set_xlabel(f"pixel value of {', '.join(fields)}" + (" / A" if normalise else ""))
        hist_ax.set_ylabel("density")
        hist_ax.set_title("pixel distribution")
        spec_ax.legend(loc="lower left", fontsize=6, ncol=2, frameon=False)
    return fig
