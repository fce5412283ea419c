"""Physics in the codes: how well a compressor's code predicts the simulation labels, on held-out maps.

No reconstruction error says whether a compression keeps what a physicist
wants from the statistics (spectral slope, turbulence level, field
orientation, ...). Here each label is regressed on the code (VAE posterior
means, PCA coefficients, RWST parameters) with regressors fitted on the
training split only and scored on the test split, by R^2 (a binary label,
such as ``filaments``, by ROC AUC of the regressors' scores); the same
regression on the full coefficient vector is the reference.

Two regressors, both from scikit-learn, because a code may hold a label
linearly or only non-linearly:

* ``ridge``: ridge regression on standardised codes, its penalty chosen per
  label by efficient leave-one-out cross-validation on the training rows
  (``RidgeCV``). It asks whether the label is a linear read-out of the code;
  it is exact, deterministic and cheap (0.2 s for 2240 rows of 170 numbers).
* ``boosting``: histogram gradient boosting (``HistGradientBoostingRegressor``,
  100 trees of at most 15 leaves, no early stopping, seeded). It finds
  non-linear and interacting dependences, is insensitive to the scale of
  each code dimension (codes mix log amplitudes and angles in radians) and
  ignores uninformative dimensions, where k-nearest neighbours, the other
  cheap non-linear choice, degrades with 85 to 1360 dimensions of which few
  matter. Fits run on one thread (see :func:`label_r2`); on 2240 training
  rows we measured about 2 s per label for a 170-number code and about
  20 s for the 1360-long full vector, on a heavily shared 2-core machine.

Labels are handled generically: every label the store carries becomes a
target, except the random ``seed`` and labels that are constant over the
store (nothing to predict). A label that is NaN where it does not apply
(a filament parameter on a turbulence map) is regressed on the rows where
it is finite. An orientation (a
label whose name ends in ``angle``, in degrees, the package's convention)
is defined modulo 180 degrees, so it becomes two targets, the cosine and
the sine of twice the angle, which are continuous across 0/180. An
inclination of the field to the plane of the sky (a label whose name ends
in ``inclination``) enters the emission only through ``B_los**2`` (the
turbulent part of ``B_los`` is symmetric about zero), so ``+g`` and ``-g``
give the same statistics and the sign cannot be read from any code: its
absolute value ``abs_NAME`` is the target. A label taking only the values 0
and 1 (``filaments``: which sky model made the map) is a class, scored by
ROC AUC (:func:`sklearn.metrics.roc_auc_score`) of the regressors' scores:
0.5 is chance, 1 a perfect ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

if TYPE_CHECKING:
    from ..io.store import CoefficientStore

#: Labels that are not physical parameters, with the reason they are not regressed.
NOT_PHYSICAL = {"seed": "a random seed, not a physical parameter"}
#: Regressors, with the description results carry.
REGRESSORS = {"ridge": "ridge regression on standardised codes, penalty by leave-one-out CV on the training rows",
              "boosting": "histogram gradient boosting, 100 trees of at most 15 leaves"}
#: How orientations enter, as results state it.
ORIENTATIONS = "labels whose names end in 'angle' (degrees) enter as cos and sin of twice the angle"
#: How inclinations enter, as results state it.
INCLINATIONS = ("labels whose names end in 'inclination' enter as their absolute value (the sign does not "
                "change the emission)")
#: How binary labels are scored, as results state it.
BINARY = "labels taking only the values 0 and 1 are scored by ROC AUC of the regressors' scores, others by R^2"


def is_orientation(name: str) -> bool:
    """True for labels that are orientations in degrees, defined modulo 180 (names ending in ``angle``)."""
    return name.endswith("angle")


def is_inclination(name: str) -> bool:
    """True for inclinations of the field to the plane of the sky, whose sign is invisible (names ending in ``inclination``)."""
    return name.endswith("inclination")


def is_binary(values: np.ndarray) -> bool:
    """True for a target whose finite values are 0 and 1 only (a class label)."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    return len(finite) > 0 and bool(np.isin(finite, (0.0, 1.0)).all())


def score_kinds(targets: dict[str, np.ndarray]) -> dict[str, str]:
    """How each target is scored: ``roc_auc`` for binary targets, ``r2`` otherwise."""
    return {t: "roc_auc" if is_binary(v) else "r2" for t, v in targets.items()}


def label_targets(labels: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Regression targets from a store's labels, and the labels skipped with the reason.

    A label may be NaN where it does not apply (a filament parameter on a
    map of another sky model); it is then a target on the rows where it is
    finite.

    Parameters
    ----------
    labels : dict of name -> array (N,)
        The store's labels, over the whole store (constancy is judged there).

    Returns
    -------
    targets : dict of name -> array (N,)
        One per label; orientations give ``cos2_NAME`` and ``sin2_NAME``,
        inclinations ``abs_NAME``.
    skipped : dict of name -> reason
    """
    targets, skipped = {}, {}
    for name in sorted(labels):
        values = np.asarray(labels[name], np.float64)
        finite = values[np.isfinite(values)]
        if name in NOT_PHYSICAL:
            skipped[name] = NOT_PHYSICAL[name]
        elif len(finite) == 0:
            skipped[name] = "never finite"
        elif np.ptp(finite) == 0:
            skipped[name] = "constant over the store"
        elif is_orientation(name):
            twice = np.deg2rad(2 * values)
            targets[f"cos2_{name}"], targets[f"sin2_{name}"] = np.cos(twice), np.sin(twice)
        elif is_inclination(name):
            targets[f"abs_{name}"] = np.abs(values)
        else:
            targets[name] = values
    return targets, skipped


def _ridge():
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15), alpha_per_target=True))


def _boosting():
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=100, max_leaf_nodes=15, learning_rate=0.1,
                                         early_stopping=False, random_state=0)


#: Fewest training rows on which a target is regressed.
MIN_TRAIN_ROWS = 10


def label_r2(train_codes: np.ndarray, train_targets: dict[str, np.ndarray], test_codes: np.ndarray,
             test_targets: dict[str, np.ndarray], regressors=tuple(REGRESSORS)) -> dict[str, dict[str, float | None]]:
    """Held-out score of each target regressed on the codes, per regressor: R^2, or ROC AUC for binary targets.

    Regressors are fitted on ``train_codes`` only, each target on the rows
    where it is finite. R^2 is ``1 - SS_res / SS_tot`` on the test rows
    where the target is finite (0: no better than the test mean; negative:
    worse). A binary target (:func:`is_binary` on its training rows) is
    scored by the ROC AUC of the regressor's predictions on the test rows
    (0.5: chance). A target with fewer than :data:`MIN_TRAIN_ROWS` finite training
    rows, or constant on its training or test rows, gets ``None`` (nothing
    to learn, or R^2 undefined).

    Returns
    -------
    dict
        ``{regressor: {target: r2 or None}}``.
    """
    from sklearn.metrics import r2_score, roc_auc_score

    scorable = {t for t in train_targets if np.isfinite(test_targets[t]).sum() >= 2
                and np.ptp(test_targets[t][np.isfinite(test_targets[t])]) > 0}
    predictions = label_predictions(train_codes, {t: v for t, v in train_targets.items() if t in scorable}, test_codes,
                                    regressors)
    out: dict[str, dict[str, float | None]] = {r: {t: None for t in train_targets} for r in regressors}
    for regressor, by_target in predictions.items():
        for t, pred in by_target.items():
            if pred is None:
                continue
            te = np.isfinite(test_targets[t])
            score = roc_auc_score if is_binary(train_targets[t][np.isfinite(train_targets[t])]) else r2_score
            out[regressor][t] = float(score(test_targets[t][te], pred[te]))
    return out


def label_predictions(train_codes: np.ndarray, train_targets: dict[str, np.ndarray], test_codes: np.ndarray,
                      regressors=tuple(REGRESSORS)) -> dict[str, dict[str, np.ndarray | None]]:
    """Each target predicted from the codes of every test row, per regressor, fitted on the training rows only.

    The test rows' labels are never read (scoring is :func:`label_r2`'s).
    A target with fewer than :data:`MIN_TRAIN_ROWS` finite training rows,
    or constant on them, gets ``None``.

    Returns
    -------
    dict
        ``{regressor: {target: predictions (len(test_codes),) or None}}``.
    """
    X_train = np.asarray(train_codes, np.float64)
    X_test = np.asarray(test_codes, np.float64)
    out: dict[str, dict[str, np.ndarray | None]] = {r: {t: None for t in train_targets} for r in regressors}
    groups: dict[bytes, list[str]] = {}  # targets finite on the same training rows are fitted together
    for t in train_targets:
        tr = np.isfinite(train_targets[t])
        if tr.sum() >= MIN_TRAIN_ROWS and np.ptp(train_targets[t][tr]) > 0:
            groups.setdefault(tr.tobytes(), []).append(t)
    with threadpool_limits(1):  # OpenMP's spinning threads slow boosting many times over on a busy machine
        for names in groups.values():
            tr = np.isfinite(train_targets[names[0]])
            Y_train = np.column_stack([train_targets[t][tr] for t in names])
            for regressor in regressors:
                pred = _predict(regressor, X_train[tr], Y_train, X_test)
                for k, t in enumerate(names):
                    out[regressor][t] = pred[:, k]
    return out


def _predict(regressor: str, X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    if regressor == "ridge":  # one fit for all targets, the penalty chosen per target
        return _ridge().fit(X_train, Y_train).predict(X_test).reshape(len(X_test), -1)
    if regressor == "boosting":  # one single-threaded fit per target, as many at once as there are cores
        from joblib import Parallel, delayed

        def fit(y: np.ndarray) -> np.ndarray:
            with threadpool_limits(1):  # OpenMP's limit is per thread: set it in each worker thread
                return _boosting().fit(X_train, y).predict(X_test)

        from ..threads import cpu_budget

        return np.column_stack(Parallel(n_jobs=min(cpu_budget(), Y_train.shape[1]), prefer="threads")(delayed(fit)(y) for y in Y_train.T))
    raise ValueError(f"unknown regressor {regressor!r}")


@dataclass
class LabelRegression:
    """Regression targets of the train and test rows, and the reference scores of the full vector."""

    train_targets: dict[str, np.ndarray]
    test_targets: dict[str, np.ndarray]
    skipped: dict[str, str]
    full_vector: dict

    def r2(self, train_codes: np.ndarray, test_codes: np.ndarray) -> dict:
        return label_r2(train_codes, self.train_targets, test_codes, self.test_targets)

    def summary(self) -> dict:
        return {"targets": list(self.train_targets), "skipped": self.skipped, "regressors": dict(REGRESSORS),
                "orientations": ORIENTATIONS, "inclinations": INCLINATIONS, "binary": BINARY,
                "scores": score_kinds(self.train_targets), "full_vector": self.full_vector,
                "test_rows": {t: int(np.isfinite(v).sum()) for t, v in self.test_targets.items()}}


def label_regression(store: "CoefficientStore", train: "CoefficientStore | None", notes: list[str],
                     scored: "CoefficientStore | None" = None) -> LabelRegression | None:
    """Targets from the store's labels, with the full vector's scores; None (and a note) when there is nothing to do.

    ``train`` is the store's training split (None when it has none). The
    regressors are scored on the store's test split, or on every row of
    ``scored`` (another store, ``evaluate --on``) for the labels both carry.
    """
    if train is None:
        notes.append("label regression skipped: the store has no training split to fit the regressors on")
        return None
    targets, skipped = label_targets(store.labels)
    if not targets:
        notes.append("label regression skipped: the store carries no label that varies"
                     + (f" ({', '.join(f'{k}: {v}' for k, v in skipped.items())})" if skipped else ""))
        return None
    from ..io.store import SPLIT_NAMES

    train_rows, test_rows = (np.flatnonzero(store.split == SPLIT_NAMES.index(w)) for w in ("train", "test"))
    train_targets = {t: v[train_rows] for t, v in targets.items()}
    if scored is None:
        test_targets = {t: v[test_rows] for t, v in targets.items()}
        test_coeffs = store.subset("test").coeffs
    else:
        theirs, _ = label_targets(scored.labels)
        test_targets = {t: theirs[t] for t in targets if t in theirs and np.isfinite(theirs[t]).sum() >= 2}
        for t in set(targets) - set(test_targets):
            skipped[t] = "not carried (or constant) in the scored store"
        train_targets = {t: train_targets[t] for t in test_targets}
        if not test_targets:
            notes.append("label regression skipped: the scored store carries none of the training labels that vary")
            return None
        test_coeffs = scored.coeffs
    full = label_r2(train.coeffs, train_targets, test_coeffs, test_targets)
    return LabelRegression(train_targets, test_targets, skipped, full)
