"""Compressor names: how each is ordered, labelled, drawn and named in the paper's macros.

A compressor's name in results is its identity (``vae-170``, ``vae-85``,
``vae-85+lin``, ``vae-85+pca``, ``rwst1``, ``rwst2``, ``pca-170``,
``pca-sym-170`` (PCA fitted with the grid's symmetries), ``rrr-85``
(reduced-rank regression to the map-level target), ...);
everything shown to a reader derives from the name here, and latent counts
always come from the compressor (the ``latent`` of its results row), never
from this module. Nothing here imports matplotlib: styles are plain keyword
dictionaries that the figures pass to it.

Names follow ``family-size[+variant]`` for the VAE family, PCA and
symmetric PCA (family ``pca-sym``), and
``rwstM`` for RWST Model M. Names that do not parse keep working: they are
ordered last, labelled by themselves and drawn in a colour derived from
the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..plotting import OKABE_ITO  # noqa: F401  (the palette's home; importing it loads no matplotlib)

#: Latent sizes of the original tables and the names they carry there.
TABLE_VAES = {170: "VAE-1", 85: "VAE-2"}
#: Reference sizes at which PCA is always compared (the VAE tables' sizes), largest first.
REFERENCE_SIZES = (170, 85)
#: What each variant suffix means, for captions and tables (a name may carry several: ``vae-85+pca+linout``).
VARIANTS = {"lin": "linear path", "pca": "PCA start", "rrr": "RRR start", "linout": "linear output", "wideout": "wide output",
            "map": "map target"}

#: Fixed styles; names not listed derive theirs (see :func:`style`).
_STYLES = {
    "data": dict(color=OKABE_ITO[0], ls="-", lw=1.6),
    "vae-170": dict(color=OKABE_ITO[5], ls="-", lw=1.2),
    "vae-85": dict(color=OKABE_ITO[2], ls="--", lw=1.2),
    "rwst1": dict(color=OKABE_ITO[6], ls=":", lw=1.2),
    "rwst2": dict(color=OKABE_ITO[7], ls="-.", lw=1.2),
    "pca-170": dict(color=OKABE_ITO[3], ls="-", lw=1.0),
    "pca-85": dict(color=OKABE_ITO[1], ls="--", lw=1.0),
    "pca-sym-170": dict(color=OKABE_ITO[3], ls=(0, (5, 2)), lw=1.6),
    "pca-sym-85": dict(color=OKABE_ITO[1], ls=(0, (5, 2)), lw=1.6),
}
#: Line styles of variants, so that a variant is told from its base in greyscale too.
_VARIANT_LS = {"lin": (0, (1, 1)), "pca": (0, (3, 1, 1, 1)), "rrr": (0, (3, 1, 1, 1, 1, 1)), "map": (0, (2, 2))}
#: Macro stems of the paper's fixed set (kept stable: the paper's text uses them).
_MACROS = {"vae-170": "VAEone", "vae-85": "VAEtwo", "rwst1": "RWSTone", "rwst2": "RWSTtwo",
           "pca-170": "PCAoneseventy", "pca-85": "PCAeightyfive"}
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FAMILY_RANK = {"vae": 0, "rwst": 1, "pca": 2, "pca-sym": 3, "rrr": 4, "rrr-sym": 5}
#: Families of several latent sizes (named ``family-size``) and their labels' stems.
_SIZED = {"vae": None, "pca": "PCA", "pca-sym": "sym. PCA", "rrr": "RRR", "rrr-sym": "sym. RRR"}
_PATTERN = re.compile(r"^(?P<family>vae|pca-sym|pca|rrr-sym|rrr)-(?P<size>\d+)(?:\+(?P<variant>[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*))?$"
                      r"|^rwst(?P<model>[12])$")


@dataclass(frozen=True)
class ParsedName:
    """The parts of a compressor name.

    Attributes
    ----------
    family : str
        ``vae``, ``pca``, ``pca-sym``, ``rwst``, or ``other`` for a name that does not parse.
    size : int or None
        Latent size in the name (VAE, PCA) or the RWST model number.
    variant : str or None
        Everything after the first ``+`` (``lin``, ``pca``, ``pca+linout``, ...).
    """

    family: str
    size: int | None = None
    variant: str | None = None


def parse(name: str) -> ParsedName:
    """Split a compressor name into family, size (or RWST model) and variant."""
    match = _PATTERN.match(name)
    if match is None:
        return ParsedName("other")
    if match["model"]:
        return ParsedName("rwst", int(match["model"]))
    return ParsedName(match["family"], int(match["size"]), match["variant"])


def is_vae(name: str) -> bool:
    """True for every member of the VAE family, variants included."""
    return parse(name).family == "vae"


def sort_key(name: str) -> tuple:
    """Order of rows and legends: VAE-1, VAE-2, their variants, other VAE sizes, RWST 1 and 2, PCA, symmetric PCA."""
    p = parse(name)
    if p.family == "other":
        return (len(_FAMILY_RANK), 0, 0, 0, name)
    if p.family == "rwst":
        return (_FAMILY_RANK["rwst"], 0, 0, p.size, "")
    nonstandard = p.size not in REFERENCE_SIZES
    return (_FAMILY_RANK[p.family], int(nonstandard), int(p.variant is not None), -p.size, p.variant or "")


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` in the registry's order."""
    return sorted(names, key=sort_key)


def label(name: str, latent: int | None = None) -> str:
    """Reader-facing label: ``VAE-1``, ``VAE-2 + linear path``, ``RWST Model 1``, ``PCA-85``, ``sym. PCA-85``, ...

    Parameters
    ----------
    name : str
        Compressor name as in results.
    latent : int, optional
        The compressor's latent count (its results row's ``latent``); when
        given, it is appended in parentheses.
    """
    p = parse(name)
    if name == "data":
        text = "data"
    elif p.family == "rwst":
        text = f"RWST Model {p.size}"
    elif p.family in ("pca", "pca-sym", "rrr", "rrr-sym"):
        text = f"{_SIZED[p.family]}-{p.size}" + _variant_text(p.variant)
    elif p.family == "vae":
        text = TABLE_VAES.get(p.size, f"VAE, d = {p.size}") + _variant_text(p.variant)
    else:
        text = name
    return f"{text} ({latent})" if latent is not None else text


def _variant_text(variant: str | None) -> str:
    return "".join(f" + {VARIANTS.get(part, part)}" for part in variant.split("+")) if variant else ""


def labels_with_sizes(compressors: Mapping[str, Mapping]) -> dict[str, str]:
    """Label with latent count for every row of a results file's ``compressors``."""
    return {n: label(n, row.get("latent")) for n, row in compressors.items()}


def style(name: str) -> dict:
    """Matplotlib keyword arguments (colour, line style, width): fixed per name, variants in their base's colour."""
    if name in _STYLES:
        return dict(_STYLES[name])
    p = parse(name)
    base = f"{p.family}-{p.size}" if p.family in _SIZED else None
    if base in _STYLES:
        return dict(_STYLES[base], ls=_VARIANT_LS.get(p.variant.split("+")[0], (0, (1, 2))), lw=1.4)
    palette = OKABE_ITO[1:]
    return dict(color=palette[sum(map(ord, name)) % len(palette)], ls="-", lw=1.0)


def macro_stem(name: str) -> str:
    """Letters-only stem for LaTeX macros (``VAEone``, ``PCAeightyfive``, ``VAEtwoVarpca``, ``PCAsymeightyfive``, ...)."""
    if name in _MACROS:
        return _MACROS[name]
    p = parse(name)
    if p.family not in _SIZED:
        return _letters(name)
    family = {"pca-sym": "PCAsym", "rrr": "RRR", "rrr-sym": "RRRsym"}.get(p.family, p.family.upper())
    stem = _MACROS.get(f"{p.family}-{p.size}") or family + _letters(str(p.size))
    return stem + ("Var" + _letters(p.variant) if p.variant else "")


def _letters(text: str) -> str:
    """Digits spelt out, anything not a letter dropped (macro names are letters only)."""
    return "".join(_DIGITS[int(c)] if c.isdigit() else c for c in text if c.isalnum())


#: Variants the paper's text names beside the fixed set.
_PAPER_VARIANTS = ("vae-170+pca", "vae-85+pca")


def paper_set() -> list[str]:
    """Names whose macros the paper's text uses; defined whether or not a run compared them."""
    return list(_MACROS) + list(_PAPER_VARIANTS)
