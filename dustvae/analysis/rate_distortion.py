"""The rate-distortion curve: test RMSE against latent size, per compressor family, on both targets, with intervals.

:func:`curve_section` reads what :func:`dustvae.analysis.evaluate.evaluate`
returned for compressors of several sizes (VAE runs of each size, the
linear baselines at the same sizes) and arranges it by family and size:
the results file's ``rate_distortion`` section, which the figures and the
paper read. Families are the compressor names with their size taken out
(``vae``, ``vae+pca``, ``vae+rrr+map``, ``pca``, ``pca-sym``, ``rrr``);
RWST Models 1 and 2 are points at their own sizes (130 and 170 for Q and U).

For each learned family and size it also carries the paired difference
against the best linear baseline of that size and target, with its
interval over test maps: on the patch target the linear baseline chosen
on the validation split (``linear_baseline``), on the map target the
stronger on the test maps of ``rrr-D`` and ``rrr-sym-D`` (the linear
optimum of that target, fitted on the training split's leave-one-out map
means, plain and with the grid's symmetries; choosing the stronger can
only make the learned code look worse). Negative differences mean the
learned code is better; differences within :data:`TIE_TOLERANCE` of 0
are ties.
"""

from __future__ import annotations

from typing import Mapping

from . import registry

#: Latent sizes of the curve (the issue of record: 1 to 340, the tables' 85 and 170 among them).
CURVE_SIZES = (1, 2, 4, 8, 16, 32, 85, 170, 340)
#: The two targets: the results metric each is measured by.
TARGET_METRICS = {"patch": "rmse_log2", "map": "rmse_to_map_mean_log2"}


def family(name: str) -> str:
    """A compressor's family on the curve: its name without the size (``vae-85+pca`` -> ``vae+pca``)."""
    p = registry.parse(name)
    if p.family == "rwst" or p.family == "other":
        return name
    return p.family + (f"+{p.variant}" if p.variant else "")


def is_linear(name: str) -> bool:
    """PCA, symmetric PCA and reduced-rank regression (plain and symmetric)."""
    return registry.parse(name).family in ("pca", "pca-sym", "rrr", "rrr-sym")


def curve_section(results: Mapping) -> dict:
    """The ``rate_distortion`` section built from one evaluation's results.

    Returns ``{"targets": {target: metric}, "families": {family: {size:
    {target: {"value", "interval"}}}}, "paired": {family: {size: {target:
    {"against", "difference", "interval"}}}}, "sizes": [...]}``; sizes are
    strings (JSON keys) and intervals are None where the results have none.
    """
    rows = results["compressors"]
    boot = results.get("bootstrap") or {}
    intervals = boot.get("intervals", {})
    families: dict[str, dict] = {}
    for name, row in rows.items():
        point = {}
        for target, metric in TARGET_METRICS.items():
            if row.get(metric) is not None:
                point[target] = {"value": row[metric], "interval": intervals.get(name, {}).get(metric)}
        families.setdefault(family(name), {})[str(row["latent"])] = point
    chosen = ((results.get("linear_baseline") or {}).get("chosen")) or {}
    paired_rows = {(p["a"], p["b"]): p for p in boot.get("paired", [])}
    paired: dict[str, dict] = {}
    for name, row in rows.items():
        if is_linear(name) or registry.parse(name).family != "vae":
            continue
        size = str(row["latent"])
        maps = [f"{fam}-{size}" for fam in ("rrr", "rrr-sym") if rows.get(f"{fam}-{size}", {}).get("rmse_to_map_mean_log2")]
        against = {"patch": chosen.get(size) or _best_present(rows, size, ("pca-sym", "pca")),
                   # the stronger of the two on the test maps: a choice that can only make the learned code look worse
                   "map": min(maps, key=lambda m: rows[m]["rmse_to_map_mean_log2"]) if maps else None}
        for target, other in against.items():
            if other is None or other not in rows:
                continue
            metric = TARGET_METRICS[target]
            entry = paired_rows.get((name, other)) or paired_rows.get((other, name))
            diff = rows[name].get(metric), rows[other].get(metric)
            if None in diff:
                continue
            interval = None
            if entry is not None and metric in entry["metrics"]:
                interval = list(entry["metrics"][metric]["interval"])
                if entry["a"] != name:  # stored as other - name
                    interval = [-interval[1], -interval[0]]
            paired.setdefault(family(name), {}).setdefault(size, {})[target] = {
                "against": other, "difference": diff[0] - diff[1], "relative": (diff[0] - diff[1]) / diff[1],
                "interval": interval}
    sizes = sorted({int(s) for points in families.values() for s in points})
    return {"targets": dict(TARGET_METRICS), "sizes": sizes, "families": families, "paired": paired}


def _best_present(rows: Mapping, size: str, order: tuple[str, ...]) -> str | None:
    """The first of ``family-size`` in ``order`` that the results hold (no validation choice available)."""
    for fam in order:
        if f"{fam}-{size}" in rows:
            return f"{fam}-{size}"
    return None


#: Paired differences within this many log2 units of 0 are ties whatever their interval: float32 rounding
#: (a model kept at its linear start against that linear code) is of order 1e-6.
TIE_TOLERANCE = 1e-4


def verdict(entry: Mapping) -> str:
    """``wins``, ``loses`` or ``ties`` from a paired entry's interval (its sign alone when it has none)."""
    interval = entry.get("interval")
    if interval is None:
        return "ties" if abs(entry["difference"]) < TIE_TOLERANCE else "wins" if entry["difference"] < 0 else "loses"
    if max(abs(interval[0]), abs(interval[1])) < TIE_TOLERANCE:
        return "ties"
    if interval[1] < 0:
        return "wins"
    if interval[0] > 0:
        return "loses"
    return "ties"
