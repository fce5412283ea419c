"""The paper's sentences that compare compressors, built from a results file (LaTeX text).

Every sentence that ranks two compressors reads their paired bootstrap
interval (:mod:`dustvae.analysis.bootstrap`): one is called lower only
when the interval of the difference excludes 0, and the two are said to
tie when it covers 0. Results without intervals (format versions 1 and 2)
are ranked by their point values and the sentence says that no interval
was computed.
"""

from __future__ import annotations

from . import registry
from .tables import label, names

NO_INTERVAL = " (no bootstrap interval in this results file)"


def paired(results: dict, a: str, b: str, metric: str = "rmse_log2") -> tuple[float, list[float]] | None:
    """Paired difference ``a - b`` of ``metric`` and its interval, or None when the results have none."""
    for pair in (results.get("bootstrap") or {}).get("paired", []):
        entry = pair["metrics"].get(metric)
        if entry is None:
            continue
        if (pair["a"], pair["b"]) == (a, b):
            return entry["difference"], list(entry["interval"])
        if (pair["a"], pair["b"]) == (b, a):
            return -entry["difference"], [-entry["interval"][1], -entry["interval"][0]]
    return None


def order(results: dict, a: str, b: str, metric: str = "rmse_log2") -> str | None:
    """``"lower"``, ``"higher"`` or ``"ties"`` for ``a`` against ``b`` by their paired interval; None without one."""
    found = paired(results, a, b, metric)
    if found is None:
        return None
    _, (lo, hi) = found
    return "lower" if hi < 0 else "higher" if lo > 0 else "ties"


def _value(results: dict, name: str, metric: str) -> float:
    row = results["compressors"][name]
    if metric.startswith("rmse_log2_layer"):
        return row["per_layer"][metric[-1]]["rmse_log2"]
    return row[metric]


def _has_intervals(results: dict) -> bool:
    return bool((results.get("bootstrap") or {}).get("paired"))


def ranked_text(results: dict, ranked: list[str], metric: str, digits: int = 3, paren: bool = False) -> str:
    """``A 0.090 and B 0.092 (tied), C 0.135``: neighbours whose paired interval covers 0 grouped as tied.

    ``paren`` writes ``A (0.090)`` instead.
    """
    groups: list[list[str]] = []
    for n in ranked:
        if groups and order(results, groups[-1][-1], n, metric) == "ties":
            groups[-1].append(n)
        else:
            groups.append([n])
    value = lambda n: f"{_value(results, n, metric):.{digits}f}"  # noqa: E731
    what = lambda n: f"{label(results, n)} ({value(n)})" if paren else f"{label(results, n)} {value(n)}"  # noqa: E731
    text = ", ".join(" and ".join(map(what, g)) + (" (tied)" if len(g) > 1 else "") for g in groups)
    return text + ("" if _has_intervals(results) or len(ranked) < 2 else NO_INTERVAL)


def winner_sentence(results: dict, size: int) -> str:
    """'at 85 numbers the order is PCA-85 0.112, VAE-2 + PCA start 0.115, VAE-2 0.149' (ties grouped)."""
    comp = results["compressors"]
    same = [n for n in names(results) if comp[n]["latent"] == size]
    if not same:
        return f"no compressor with {size} numbers was evaluated"
    ranked = sorted(same, key=lambda n: comp[n]["rmse_log2"])
    return f"at {size} numbers the order is {ranked_text(results, ranked, 'rmse_log2')}"


def against_pca(results: dict, vae: str) -> str:
    """'VAE-1's test RMSE is 50.4\\% above PCA-170's (difference 0.045 [0.040, 0.050])', or a tie.

    The linear baseline is the one the results chose for that size on the validation split
    (``linear_baseline``: PCA or symmetric PCA), else PCA.
    """
    comp = results["compressors"]
    row = comp.get(vae)
    chosen = ((results.get("linear_baseline") or {}).get("chosen") or {}).get(str(row["latent"])) if row else None
    pca_name = (chosen or f"pca-{row['latent']}") if row else None
    if not row or pca_name not in comp:
        return f"{registry.label(vae)} was not compared with PCA at its size in this run"
    return versus(results, vae, pca_name)


def _join(items: list[str]) -> str:
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def comparison_sentence(results: dict, vae: str) -> str:
    """'VAE-1 (0.135) has a lower test RMSE than ...; a higher one than ...; and ties with ...'."""
    comp = results["compressors"]
    if vae not in comp:
        return f"{registry.label(vae)} was not evaluated in this run"
    mine = comp[vae]["rmse_log2"]
    others = [n for n in names(results) if not registry.is_vae(n)]
    describe = lambda n: f"{label(results, n)} with {comp[n]['latent']} numbers ({comp[n]['rmse_log2']:.3f})"  # noqa: E731
    side = {n: order(results, vae, n) or ("lower" if mine < comp[n]["rmse_log2"] else "higher") for n in others}
    lower = [describe(n) for n in others if side[n] == "lower"]
    higher = [describe(n) for n in others if side[n] == "higher"]
    ties = [describe(n) for n in others if side[n] == "ties"]
    parts = []
    if lower:
        parts.append("a lower test RMSE than " + _join(lower))
    if higher:
        parts.append(("a higher one than " if lower else "a higher test RMSE than ") + _join(higher))
    text = "; ".join(parts)
    if ties:
        text += ("; and " if parts else "") + "ties with " + _join(ties)
    if not parts:
        return f"{label(results, vae)} ({mine:.3f}) " + text
    return f"{label(results, vae)} ({mine:.3f}) has " + text + ("" if _has_intervals(results) else NO_INTERVAL)


def best_sentence(results: dict, metric: str = "rmse_log2", digits: int | None = None) -> str:
    """The lowest ``metric``, with every compressor tied with it: 'PCA-170 (170 latents), tied with ...'."""
    comp = results["compressors"]
    best = min(comp, key=lambda n: _value(results, n, metric))
    tied = [n for n in names(results) if n != best and order(results, best, n, metric) == "ties"]
    unit = "latents" if digits is None else "numbers"
    what = lambda n: (f"{label(results, n)} ({comp[n]['latent']} {unit}"  # noqa: E731
                      + ("" if digits is None else f", {_value(results, n, metric):.{digits}f}") + ")")
    text = what(best) + (", tied with " + _join([what(n) for n in tied]) if tied else "")
    return text + ("" if _has_intervals(results) else NO_INTERVAL)


def best_map_mean(results: dict, top: int = 3) -> str:
    """The lowest errors against the map mean, ties grouped; ``--`` when the results have none."""
    comp = results["compressors"]
    with_mean = [n for n in comp if comp[n].get("rmse_to_map_mean_log2") is not None]
    if not with_mean:
        return "--"
    ranked = sorted(with_mean, key=lambda n: comp[n]["rmse_to_map_mean_log2"])[:top]
    return ranked_text(results, ranked, "rmse_to_map_mean_log2", paren=True)


def _signed(value: float, digits: int, plus: bool = False) -> str:
    """``value`` rounded, never printed as a negative zero."""
    text = f"{value:+.{digits}f}" if plus else f"{value:.{digits}f}"
    return text.replace("-", "", 1) if float(text) == 0 else text


def versus(results: dict, a: str, b: str, metric: str = "rmse_log2", what: str = "test RMSE") -> str:
    """'VAE-1's test RMSE is 8.1\\% above RWST Model 2's (difference 0.021 [0.015, 0.027])', a tie, or why not compared."""
    comp = results["compressors"]
    if a not in comp or b not in comp or comp[a].get(metric) is None or comp[b].get(metric) is None:
        return f"{registry.label(a)} and {registry.label(b)} were not both evaluated in this run"
    change = 100 * (comp[a][metric] / comp[b][metric] - 1)
    found = paired(results, a, b, metric)
    if found is None:
        side = "above" if change > 0 else "below"
        return f"{label(results, a)}'s {what} is {abs(change):.1f}\\% {side} {label(results, b)}'s{NO_INTERVAL}"
    diff, (lo, hi) = found
    bracket = f"difference {_signed(diff, 3)} [{_signed(lo, 3)}, {_signed(hi, 3)}]"
    if lo <= 0 <= hi:
        return (f"{label(results, a)} ties with {label(results, b)} in {what} ({_signed(change, 1, True).replace('+0.0', '0.0')}\\%; "
                f"{bracket}, an interval that covers 0)")
    side = "above" if diff > 0 else "below"
    return f"{label(results, a)}'s {what} is {abs(change):.1f}\\% {side} {label(results, b)}'s ({bracket})"


def curve_sentence(section: dict | None, target: str) -> str:
    """Where the learned codes of a rate-distortion section beat, tie with or lose to the best linear code of their size.

    'on the patch target, the best learned code is below the best linear baseline at k = 1, 2 (by 4.1--5.0\\%), ties
    with it at k = 8, 16 and is above it at k = 85'; each size judged by the paired interval of its best learned
    family (the one with the lowest difference).
    """
    if not section or not section.get("paired"):
        return f"the rate-distortion curve of the {target} target was not computed for this results file"
    from .rate_distortion import verdict

    best: dict[int, dict] = {}
    for fam, by_size in section["paired"].items():
        for size, targets in by_size.items():
            entry = targets.get(target)
            if entry is not None and (int(size) not in best or entry["difference"] < best[int(size)]["difference"]):
                best[int(size)] = entry
    if not best:
        return f"no learned code was compared on the {target} target"
    groups: dict[str, list[int]] = {"wins": [], "ties": [], "loses": []}
    for size in sorted(best):
        groups[verdict(best[size])].append(size)
    parts = []
    for kind, words in (("wins", "is below {}"), ("ties", "ties with {}"), ("loses", "is above {}")):
        sizes = groups[kind]
        if not sizes:
            continue
        rel = [100 * abs(best[s]["relative"]) for s in sizes]
        by = "" if kind == "ties" else (f" (by {min(rel):.1f}--{max(rel):.1f}\\%)" if len(sizes) > 1 else f" (by {rel[0]:.1f}\\%)")
        named = words.format("it" if parts else "the best linear code")
        parts.append(f"{named} at $k$ = {', '.join(map(str, sizes))}{by}")
    return f"on the {target} target the best learned code " + "; ".join(parts)
