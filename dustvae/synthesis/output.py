"""Synthesised maps to flat FITS files, with their seeds and the target's provenance in the header."""

from __future__ import annotations

import math
from pathlib import Path

from ..io.maps import write_flat_map
from .optimize import Synthesis
from .targets import Target


def header_cards(target: Target, result: Synthesis) -> dict:
    """FITS cards that say where a synthesised map comes from and how it was made."""
    cards = dict(target.header)
    cards.update({
        "AMPLITUD": target.scale(),
        "AMPKNOWN": target.amplitude_known,
        "SYNSEED": result.seed,
        "SYNOPT": result.optimizer,
        "SYNITER": result.iterations,
        "SYNLOSS0": result.initial_loss,
        "SYNLOSS": result.final_loss,
        "SYNRMSE": result.rmse(target.vector),  # of the WST vector alone, whatever else the loss held
        "SYNENGIN": result.engine,
        "SYNCONST": result.constraints,
        "SYNOPBND": result.boundary,
        "WSTJ": target.layout.J,
        "WSTL": target.layout.L,
    })
    if result.envelope_rmse is not None:
        cards["SYNENVR"] = result.envelope_rmse
    return cards


def write_synthesis(path: str | Path, target: Target, result: Synthesis, *, overwrite: bool = False) -> Path:
    """Write the Q and U (or other fields) of one synthesis as a periodic flat map; atomic.

    The maps carry the target's amplitude (``AMPKNOWN = F`` means they are in
    amplitude-normalised units); ``SYNSEED`` is the seed of the initial noise
    and the ``SYN*`` cards name the target's source.
    """
    fields = {name: result.maps[i] for i, name in enumerate(target.layout.fields)}
    scale = target.pixel_scale_arcmin if math.isfinite(target.pixel_scale_arcmin) else None
    return write_flat_map(path, fields, pixel_scale_arcmin=scale, periodic=True,
                          extra_header=header_cards(target, result), overwrite=overwrite)


def output_paths(output: str | Path, count: int) -> list[Path]:
    """``OUTPUT`` for one map; ``STEM_0.SUFFIX``, ``STEM_1.SUFFIX``, ... for several."""
    output = Path(output)
    if count == 1:
        return [output]
    width = len(str(count - 1))
    return [output.with_name(f"{output.stem}_{k:0{width}d}{output.suffix}") for k in range(count)]
