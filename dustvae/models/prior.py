"""Densities over a latent space to sample from: the N(0, I) prior, or a Gaussian mixture fitted ex post.

A VAE trained with a small KL weight has an aggregate posterior far from
N(0, I): decoding N(0, I) draws then gives vectors whose spread is far from
the data's. Ex-post density estimation (Ghosh et al. 2020, "From
variational to deterministic autoencoders") fits a density to the training
posterior means after training and samples from it instead; the model is
untouched.

The fitted density is a Gaussian mixture with full covariances
(scikit-learn's ``GaussianMixture``). Its number of components is the
Bayesian information criterion's choice among :data:`MIXTURE_COMPONENTS`
unless given: one component already captures the latents' covariance; more
capture clusters (e.g. of maps with different physical parameters), and the
BIC stops where the data cannot support the extra ``d (d + 3) / 2``
parameters each one costs.

The mixture is stored as plain arrays (weights, means, covariances) in an
``.npz`` file read with ``allow_pickle=False``, and sampled with NumPy from a
seeded generator; no scikit-learn object is pickled. This module knows
nothing of models: :mod:`dustvae.models.apply` fits a prior to a model and
decodes its draws.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import defaults
from ..errors import DustvaeError
from ..io.archive import check_stored_zip
from ..io.atomic import atomic_path

#: Latent densities ``dustvae sample --prior`` offers.
PRIORS = defaults.PRIORS
#: Numbers of mixture components the BIC chooses among.
MIXTURE_COMPONENTS = (1, 2, 4, 8, 16)
PRIOR_FORMAT = "dustvae-latent-prior"


@dataclass(frozen=True)
class LatentPrior:
    """A Gaussian mixture over latent vectors.

    Attributes
    ----------
    weights : array (K,)
    means : array (K, d)
    covariances : array (K, d, d)
    meta : dict
        JSON-able provenance: the model's name and weight fingerprint, the
        number of training rows, the BIC of each candidate, the seed.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        k, d = self.means.shape
        if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
            raise DustvaeError(f"inconsistent mixture: weights {self.weights.shape}, means {self.means.shape}, "
                               f"covariances {self.covariances.shape}")
        if not (np.all(np.isfinite(self.weights)) and np.all(self.weights >= 0) and abs(self.weights.sum() - 1) < 1e-6):
            raise DustvaeError("mixture weights must be non-negative and sum to 1")
        try:
            np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError as exc:
            raise DustvaeError("mixture covariances must be positive definite") from exc

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    def draw(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` latent vectors (float32), reproducible for a given ``seed``."""
        rng = np.random.default_rng(seed)
        component = rng.choice(self.n_components, size=n, p=self.weights)
        eps = rng.standard_normal((n, self.latent_dim))
        z = np.empty((n, self.latent_dim))
        for k in range(self.n_components):
            rows = component == k
            z[rows] = self.means[k] + eps[rows] @ np.linalg.cholesky(self.covariances[k]).T
        return z.astype(np.float32)

    def summary(self) -> str:
        """One line: components and how they were chosen."""
        bic = self.meta.get("bic") or {}
        how = f"BIC's choice among {', '.join(bic)}" if len(bic) > 1 else "fixed"
        return f"{self.n_components}-component Gaussian mixture ({how}) over {self.meta.get('n_train', '?')} training posterior means"


def fit_mixture(latents: np.ndarray, components: int | Sequence[int] = MIXTURE_COMPONENTS, seed: int = 0,
                meta: dict | None = None) -> LatentPrior:
    """Fit a full-covariance Gaussian mixture to latent vectors (N, d).

    Parameters
    ----------
    latents : array (N, d)
        Typically the posterior means of the training split.
    components : int or sequence of int
        A number of components, or candidates among which the lowest BIC
        wins (candidates above N are skipped).
    seed : int
        Seeds the k-means initialisation.
    meta : dict, optional
        Provenance stored with the mixture.
    """
    from sklearn.mixture import GaussianMixture

    z = np.asarray(latents, np.float64)
    if z.ndim != 2 or len(z) < 2 or not np.all(np.isfinite(z)):
        raise DustvaeError(f"a latent density needs at least 2 finite latent vectors; got shape {z.shape}")
    candidates = [int(components)] if np.isscalar(components) else sorted({int(k) for k in components})
    if any(k < 1 for k in candidates):
        raise DustvaeError(f"mixture components must be positive, got {candidates}")
    candidates = [k for k in candidates if k <= len(z)]
    if not candidates:
        raise DustvaeError(f"{len(z)} latent vectors are too few for {components} mixture components")
    best, bic = None, {}
    for k in candidates:
        gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-6, max_iter=500, random_state=seed).fit(z)
        bic[str(k)] = float(gmm.bic(z))
        if best is None or bic[str(k)] < bic[str(best.n_components)]:
            best = gmm
    info = {**(meta or {}), "bic": bic, "n_train": int(len(z)), "seed": int(seed)}
    weights = best.weights_ / best.weights_.sum()
    return LatentPrior(weights, best.means_, best.covariances_, info)


def save_prior(path: str | Path, prior: LatentPrior) -> Path:
    """Write a mixture as plain arrays (``.npz``), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, format=np.array(PRIOR_FORMAT), weights=prior.weights, means=prior.means,
                 covariances=prior.covariances, meta=np.array(json.dumps(prior.meta)))
    return Path(path)


def load_prior(path: str | Path) -> LatentPrior:
    """Read a mixture written by :func:`save_prior`; one-line errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise DustvaeError(f"{path}: no such latent prior file")
    check_stored_zip(path, "dustvae latent prior", "fit it again")  # save_prior writes its arrays uncompressed
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != PRIOR_FORMAT:
                raise DustvaeError(f"{path}: not a dustvae latent prior")
            return LatentPrior(data["weights"], data["means"], data["covariances"], json.loads(str(data["meta"])))
    except DustvaeError:
        raise
    except Exception as exc:  # zip, pickle-refusal, key and JSON errors all mean the same thing here
        raise DustvaeError(f"{path}: not a readable dustvae latent prior ({type(exc).__name__}); fit it again") from exc
