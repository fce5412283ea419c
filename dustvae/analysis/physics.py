"""Physics in the codes: how well a compressor's code predicts the simulation labels, on held-out maps.

No reconstruction error says whether a compression keeps what a physicist
wants from the statistics (spectral slope, turbulence level, field
orientation, ...). Here each label is regressed on the code (VAE posterior
means, PCA coefficients, RWST parameters) with regressors fitted on the
training split only and scored by R^2 on the test split; the same
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
the sine of twice the angle, which are continuous across 0/180.
"""

from __future__ import annotations


import numpy as np
from threadpoolctl import threadpool_limits

#: Labels that are not physical parameters, with the reason they are not regressed.
NOT_PHYSICAL = {"seed": "a random seed, not a physical parameter"}
#: Regressors, with the description results carry.
REGRESSORS = {"ridge": "ridge regression on standardised codes, penalty by leave-one-out CV on the training rows",
              "boosting": "histogram gradient boosting, 100 trees of at most 15 leaves"}
#: How orientations enter, as results state it.
ORIENTATIONS = "labels whose names end in 'angle' (degrees) enter as cos and sin of twice the angle"


def is_orientation(name: str) -> bool:
    """True for labels that are orientations in degrees, defined modulo 180 (names ending in ``angle``)."""
    return name.endswith("angle")


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
        One per label; orientations give ``cos2_NAME`` and ``sin2_NAME``.
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
    """Held-out R^2 of each target regressed on the codes, per regressor.

    Regressors are fitted on ``train_codes`` only, each target on the rows
    where it is finite. R^2 is ``1 - SS_res / SS_tot`` on the test rows
    where the target is finite (0: no better than the test mean; negative:
    worse). A target with fewer than :data:`MIN_TRAIN_ROWS` finite training
    rows, or constant on its training or test rows, gets ``None`` (nothing
    to learn, or R^2 undefined).

    Returns
    -------
    dict
        ``{regressor: {target: r2 or None}}``.
    """
    from sklearn.metrics import r2_score

    X_train = np.asarray(train_codes, np.float64)
    X_test = np.asarray(test_codes, np.float64)
    out: dict[str, dict[str, float | None]] = {r: {t: None for t in train_targets} for r in regressors}
    groups: dict[bytes, list[str]] = {}  # targets finite on the same rows are fitted together
    for t in train_targets:
        tr, te = np.isfinite(train_targets[t]), np.isfinite(test_targets[t])
        if tr.sum() >= MIN_TRAIN_ROWS and te.sum() >= 2 and np.ptp(train_targets[t][tr]) > 0 and np.ptp(test_targets[t][te]) > 0:
            groups.setdefault(tr.tobytes() + te.tobytes(), []).append(t)
    with threadpool_limits(1):  # OpenMP's spinning threads slow boosting many times over on a busy machine
        for names in groups.values():
            tr, te = np.isfinite(train_targets[names[0]]), np.isfinite(test_targets[names[0]])
            Y_train = np.column_stack([train_targets[t][tr] for t in names])
            Y_test = np.column_stack([test_targets[t][te] for t in names])
            for regressor in regressors:
                pred = _predict(regressor, X_train[tr], Y_train, X_test[te])
                for k, t in enumerate(names):
                    out[regressor][t] = float(r2_score(Y_test[:, k], pred[:, k]))
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
