"""The results file of ``dustvae evaluate``: its schema, one writer and one reader.

A results file is a JSON object tagged ``"format": "dustvae-results"`` and
``"format_version"`` (:data:`RESULTS_VERSION`), like every other file
dustvae writes (the coefficient store's ``STORE_FORMAT``). The figures, the
paper tables (``scripts/make_paper_tables.py``) and the demo read results
only through :func:`read_results`, which checks what they use and says in
one line what is wrong with a file that lacks it.

Versions:

1. untagged files written before the tag existed; read as they are (they
   carry no bootstrap intervals, and the sentences built from them say so);
2. the tag, and the same sections as version 1;
3. adds ``"bootstrap"``: intervals over test maps of each compressor's
   figures and paired differences between compressors
   (:mod:`dustvae.analysis.bootstrap`);
4. the map-level target is the leave-one-out map mean (the other test
   patches of the patch's map; ``test.map_mean_target`` says so), where
   versions 1-3 included the patch itself (read as they are, with
   ``test.map_mean_target`` set to :data:`INCLUSIVE_MAP_MEAN`); adds the
   ``identity`` reference row, ``pca-sym-D`` rows and ``pca_sym_curve``,
   ``linear_baseline`` (which linear baseline each size is paired with),
   ``bootstrap.identity``, and label scores that are ROC AUC for binary
   labels (``label_regression.scores``) and use ``|g|`` for inclinations;
5. adds the map-target models (``vae-D+map``, ``vae-D+rrr+map``, paired
   with ``rrr-D`` too), ``test.resampled`` (``map`` or ``patch``: the
   bootstrap's unit) and, for ``evaluate --on``, ``inputs.scored_store*``;
   and the optional ``rate_distortion`` section (test RMSE against latent
   size per family and target, :mod:`dustvae.analysis.rate_distortion`),
   checked here when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import DustvaeError
from ..io.atomic import atomic_path

RESULTS_FORMAT = "dustvae-results"
RESULTS_VERSION = 6
#: What ``test.map_mean_target`` reads for files of versions 1-3, whose map mean included the patch itself.
INCLUSIVE_MAP_MEAN = "the mean of all test patches of the patch's map, the patch itself included"
#: Top-level sections every version holds, and their JSON types.
SECTIONS: dict[str, type] = {"compressors": dict, "inputs": dict, "examples": dict, "test": dict}
#: Keys of each compressor row that the tables and figures read.
ROW_KEYS = ("latent", "rmse_log2", "rel_err_s1", "rel_err_s2_over_s1", "encode_ms_per_patch", "per_layer",
            "per_field_layer", "per_j1", "per_pair")
#: Keys of the ``test`` section.
TEST_KEYS = ("n_patches", "n_maps", "split")
#: Keys of the ``bootstrap`` section (version 3 on).
BOOTSTRAP_KEYS = ("n_resamples", "seed", "level", "metrics", "intervals", "paired")


def write_results(path: str | Path, results: Mapping[str, Any]) -> Path:
    """Tag ``results`` with the format and version, check it, and write it atomically as JSON.

    Parameters
    ----------
    path : path
        Where to write (replaced atomically: a reader never sees half a file).
    results : mapping
        What :func:`dustvae.analysis.evaluate.evaluate` returns (plus any
        sections a script adds).

    Returns
    -------
    Path
        ``path``.
    """
    tagged = {"format": RESULTS_FORMAT, "format_version": RESULTS_VERSION,
              **{k: v for k, v in results.items() if k not in ("format", "format_version")}}
    validate_results(tagged, str(path))  # a writer that cannot be read back is a bug; say so here, not later
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(tagged, indent=1))
    return Path(path)


def read_results(path: str | Path) -> dict:
    """Read and check a results file; one-line :class:`DustvaeError` messages otherwise.

    Untagged files are read as version 1; files of a newer version than
    this dustvae knows are refused.

    Parameters
    ----------
    path : path
        A file written by ``dustvae evaluate``.

    Returns
    -------
    dict
        The results, with ``format_version`` set (1 for untagged files).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DustvaeError(f"{path}: no such results file; run `dustvae evaluate` first") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise DustvaeError(f"{path}: cannot read it as a results file ({exc.__class__.__name__})") from None
    try:
        results = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DustvaeError(f"{path}: not a results file written by `dustvae evaluate` (not JSON: {exc})") from None
    return validate_results(results, str(path))


def validate_results(results: Any, where: str = "results") -> dict:
    """Check a results object against its version's schema and return it (version 1 when untagged).

    Parameters
    ----------
    results : object
        Parsed JSON.
    where : str
        How messages name the file.
    """
    what = f"{where}: not a results file written by `dustvae evaluate`"
    if not isinstance(results, dict):
        raise DustvaeError(f"{what} (a JSON {type(results).__name__}, not an object)")
    if "format" not in results and "format_version" not in results:
        results = _from_version_1(results)
    elif results.get("format") != RESULTS_FORMAT:
        raise DustvaeError(f"{what} (format {results.get('format')!r}, expected {RESULTS_FORMAT!r})")
    version = results.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DustvaeError(f"{where}: results format_version {version!r} is not a positive integer")
    if version > RESULTS_VERSION:
        raise DustvaeError(f"{where}: results format {version} is newer than this dustvae reads ({RESULTS_VERSION}); "
                           "upgrade dustvae")
    for key, kind in SECTIONS.items():
        if not isinstance(results.get(key), kind):
            raise DustvaeError(f"{what} (no {key!r} section); write it again with `dustvae evaluate`")
    if not results["compressors"]:
        raise DustvaeError(f"{where}: compares no compressor; nothing to show")
    if not isinstance(results["inputs"].get("layout"), dict):
        raise DustvaeError(f"{what} (no coefficient layout under 'inputs')")
    missing = [k for k in TEST_KEYS if k not in results["test"]]
    if missing:
        raise DustvaeError(f"{where}: the 'test' section lacks {', '.join(missing)}")
    for name, row in results["compressors"].items():
        if not isinstance(row, dict):
            raise DustvaeError(f"{where}: compressor {name!r} is a JSON {type(row).__name__}, not an object")
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            raise DustvaeError(f"{where}: compressor {name!r} lacks {', '.join(missing)}")
    if version >= 3:
        _check_bootstrap(results, where)
    if version < 4:
        results["test"].setdefault("map_mean_target", INCLUSIVE_MAP_MEAN)
    elif results.get("identity") is not None and not isinstance(results["identity"], dict):
        raise DustvaeError(f"{where}: the 'identity' section is a JSON {type(results['identity']).__name__}, not an object")
    if "rate_distortion" in results:
        _check_curve(results["rate_distortion"], where)
    if results.get("figure_data") is not None and not isinstance(results["figure_data"], dict):
        raise DustvaeError(f"{where}: the 'figure_data' section is a JSON {type(results['figure_data']).__name__}, "
                           "not an object")
    return results


def _check_curve(section: Any, where: str) -> None:
    """The ``rate_distortion`` section: families of points by size and target, and paired entries."""
    if not isinstance(section, dict) or not isinstance(section.get("families"), dict) \
            or not isinstance(section.get("paired"), dict):
        raise DustvaeError(f"{where}: the 'rate_distortion' section lacks its 'families' or 'paired' objects")
    for fam, points in section["families"].items():
        for size, point in points.items() if isinstance(points, dict) else [(None, None)]:
            if not (isinstance(point, dict) and all(isinstance(v, dict) and "value" in v for v in point.values())):
                raise DustvaeError(f"{where}: rate_distortion point {fam!r} at {size} is not "
                                   "{target: {value, interval}}")


def _from_version_1(results: dict) -> dict:
    """An untagged file: the sections of version 2 without the tag (nothing to convert), marked as version 1."""
    return {"format": RESULTS_FORMAT, "format_version": 1, **results}


def _check_bootstrap(results: dict, where: str) -> None:
    boot = results.get("bootstrap")
    if boot is None:  # evaluations of a single test map have no interval to give
        return
    if not isinstance(boot, dict):
        raise DustvaeError(f"{where}: the 'bootstrap' section is a JSON {type(boot).__name__}, not an object")
    missing = [k for k in BOOTSTRAP_KEYS if k not in boot]
    if missing:
        raise DustvaeError(f"{where}: the 'bootstrap' section lacks {', '.join(missing)}")
    unknown = sorted(set(boot["intervals"]) - set(results["compressors"]))
    if unknown:
        raise DustvaeError(f"{where}: bootstrap intervals for compressors not in the file: {', '.join(unknown)}")
    for pair in boot["paired"]:
        if not isinstance(pair, dict) or not {"a", "b", "metrics"} <= set(pair):
            raise DustvaeError(f"{where}: a bootstrap 'paired' entry lacks a, b or metrics")
