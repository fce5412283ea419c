"""Using a trained model: encode, reconstruct, sample and interpolate, as arrays, stores and latent files.

This is the one home of these operations: evaluation, figures and the
command line call the array functions (:func:`encode_array`,
:func:`decode_array`, :func:`sample_array`, :func:`interpolate_array`) or
the store functions built on them.

Reconstructions, samples and interpolations are written as coefficient
stores of the same schema as ``compute-wst`` output, so every tool that reads
coefficients reads them. Their raw ``s1``/``s2`` are recomputed from the
normalised vectors; quantities a model cannot know (``s0``, the amplitude
and centres of a generated sample) are NaN.

Samples come from the N(0, I) prior or from a density fitted ex post to the
training posterior means (:mod:`dustvae.models.prior`), stored beside the
checkpoint as ``<checkpoint>.prior.npz`` (:func:`prior_path`) and tied to
its exact weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DustvaeError
from ..io.latents import LatentSet
from ..io.store import CoefficientStore, StoreReader, check_finite_rows
from ..io.store_writer import store_writer
from ..memory import check_memory
from ..wst.layout import CoefficientLayout, normalisation_code
from ..wst.transform import denormalise
from .prior import MIXTURE_COMPONENTS, LatentPrior, fit_mixture, load_prior
from .vae import INPUT_LENGTH, DilatedConvVAE

_BATCH = 1024
#: A store in memory or open on disk: both give ``attrs``, ``len``, ``blocks``, ``read``, ``labels`` and ``split``.
Rows = CoefficientStore | StoreReader


def _device_of(model: DilatedConvVAE) -> torch.device:
    return model.data_mean.device


def _check_shape(array: np.ndarray, length: int, what: str, model: DilatedConvVAE) -> None:
    shape = np.shape(array)
    if len(shape) != 2 or shape[1] != length:
        raise DustvaeError(f"{model.name} takes {what} of shape (N, {length}), got {shape}")


def encode_array(model: DilatedConvVAE, coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and log-variance for normalised vectors (N, 1360)."""
    _check_shape(coeffs, INPUT_LENGTH, "vectors", model)
    model.eval()
    means, logvars = [], []
    with torch.inference_mode():
        for start in range(0, len(coeffs), _BATCH):
            x = torch.from_numpy(np.asarray(coeffs[start : start + _BATCH], np.float32)).to(_device_of(model))
            mean, logvar = model.encode(x)
            means.append(mean.float().cpu().numpy())
            logvars.append(logvar.float().cpu().numpy())
    return np.concatenate(means), np.concatenate(logvars)


def decode_array(model: DilatedConvVAE, z: np.ndarray) -> np.ndarray:
    """Normalised vectors decoded from latents (N, latent_dim)."""
    _check_shape(z, model.latent_dim, "latent vectors", model)
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(z), _BATCH):
            zb = torch.from_numpy(np.asarray(z[start : start + _BATCH], np.float32)).to(_device_of(model))
            out.append(model.decode(zb).float().cpu().numpy())
    return np.concatenate(out)


def sample_array(model: DilatedConvVAE, n: int, seed: int = 0, prior: LatentPrior | None = None) -> np.ndarray:
    """``n`` vectors decoded from latent draws, seeded.

    ``prior=None`` draws from N(0, I); a :class:`~dustvae.models.prior.LatentPrior`
    draws from that density instead.
    """
    if n < 1:
        raise DustvaeError(f"the number of samples (-n) must be positive, got {n}")
    if prior is None:
        z = np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32)
    else:
        if prior.latent_dim != model.latent_dim:
            raise DustvaeError(f"the latent prior is over {prior.latent_dim} latents but {model.name} has {model.latent_dim}")
        z = prior.draw(n, seed)
    return decode_array(model, z)


def interpolate_array(model: DilatedConvVAE, ends: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoded points on the straight line between the posterior means of two vectors.

    Parameters
    ----------
    ends : array (2, D)
        The two normalised vectors.
    steps : int
        Points on the line, ends included (at least 2).

    Returns
    -------
    vectors : array (steps, D)
        ``decode((1 - t) z_A + t z_B)``; the first and last are the decoded posterior means.
    weights : array (steps,)
        ``t``, from 0 to 1.
    """
    if steps < 2:
        raise DustvaeError(f"`steps` must be at least 2, got {steps}")
    if len(ends) != 2:
        raise DustvaeError(f"interpolation needs exactly two end vectors, got {len(ends)}")
    mean, _ = encode_array(model, ends)
    weights = np.linspace(0.0, 1.0, steps)
    z = (1 - weights)[:, None] * mean[0] + weights[:, None] * mean[1]
    return decode_array(model, z.astype(np.float32)), weights


def fit_latent_prior(model: DilatedConvVAE, train_vectors: np.ndarray,
                     components: int | Sequence[int] = MIXTURE_COMPONENTS, seed: int = 0) -> LatentPrior:
    """A Gaussian mixture fitted to the posterior means of ``train_vectors`` (see :mod:`dustvae.models.prior`).

    The mixture records the model's name and weight fingerprint, so that it
    is never used with other weights.
    """
    mean, _ = encode_array(model, train_vectors)
    return fit_mixture(mean, components, seed, meta={"model": model.name, "model_fingerprint": model.fingerprint()})


def prior_path(ckpt: str | Path) -> Path:
    """Where the fitted prior of a checkpoint lives: ``best.pt`` -> ``best.prior.npz``.

    A run directory stands for its ``best.pt`` (``last.pt`` without one), as
    when the model is loaded.
    """
    ckpt = Path(ckpt)
    if ckpt.is_dir():
        ckpt = ckpt / ("best.pt" if (ckpt / "best.pt").exists() else "last.pt")
    return ckpt.with_name(ckpt.stem + ".prior.npz")


def load_fitted_prior(model: DilatedConvVAE, ckpt: str | Path) -> LatentPrior:
    """The prior fitted to checkpoint ``ckpt`` (whose model is ``model``); one-line errors if absent or stale."""
    path = prior_path(ckpt)
    if not path.exists():
        raise DustvaeError(f"{ckpt}: no fitted prior ({path}); fit one with `dustvae fit-prior {ckpt} COEFFS`")
    prior = load_prior(path)
    if prior.meta.get("model_fingerprint") != model.fingerprint():
        raise DustvaeError(f"{path} was fitted to other weights than those of {ckpt}; "
                           f"fit it again with `dustvae fit-prior {ckpt} COEFFS --overwrite`")
    return prior


def fit_store_prior(model: DilatedConvVAE, payload: dict, store: CoefficientStore,
                    components: int | Sequence[int] | None = None, seed: int = 0, source: str = "store") -> LatentPrior:
    """Fit the latent prior on the training split of the store the model was trained on.

    The split is the one training used (the store's own, or the seeded one
    made from the training seed in the checkpoint); a store other than the
    training store is refused, as its training rows would not be the model's.
    """
    from .train import training_split  # imported here so that train may import this module

    check_compatible(store, payload, source)
    trained_on = payload.get("store_fingerprint")
    if trained_on is not None and trained_on != store.fingerprint():
        raise DustvaeError(f"{source} is not the store {model.name} was trained on; "
                           "the prior is fitted on that store's training split")
    train_rows, _ = training_split(store, int((payload.get("train_config") or {}).get("seed", 0)))
    return fit_latent_prior(model, store.coeffs[train_rows], MIXTURE_COMPONENTS if components is None else components, seed)


def sample_priors(model: DilatedConvVAE, n: int, seed: int = 0, fitted: LatentPrior | None = None) -> dict[str, np.ndarray]:
    """Decoded samples from each available prior: ``{"normal": ..., "fitted": ...}`` (the latter if given).

    Both use the same ``seed``; compare each with held-out vectors, e.g.
    with :func:`dustvae.analysis.metrics.generative_metrics`.
    """
    out = {"normal": sample_array(model, n, seed)}
    if fitted is not None:
        out["fitted"] = sample_array(model, n, seed, fitted)
    return out


def _provenance(attrs: dict, **provenance) -> dict:
    """A store's attributes with the provenance of its vectors (as text) added."""
    return {**attrs, **{k: str(v) for k, v in provenance.items()}}


def _store_from_vectors(vectors: np.ndarray, attrs: dict, like: CoefficientStore | None = None, **provenance) -> CoefficientStore:
    layout = CoefficientLayout.from_attrs(attrs)
    s1, s2 = denormalise(vectors, layout)
    n, f = len(vectors), len(layout.fields)
    nan = lambda *shape: np.full(shape, np.nan)  # noqa: E731
    return CoefficientStore(
        coeffs=vectors.astype(np.float32), s0=like.s0 if like is not None else nan(n, f),
        s1=s1.astype(np.float32), s2=s2.astype(np.float32),
        amplitude=like.amplitude if like is not None else nan(n),
        centers=like.centers if like is not None else nan(n, 2),
        masked_fraction=like.masked_fraction if like is not None else np.zeros(n, np.float32),
        map_index=like.map_index if like is not None else np.full(n, -1),
        theta=layout.angles, attrs=_provenance(attrs, **provenance),
        labels=dict(like.labels) if like is not None else {},
        split=like.split if like is not None else None,
    )


def _layout_attrs(payload: dict) -> dict:
    layout = payload.get("layout") or {}
    if "vector_length" not in layout:
        raise DustvaeError("checkpoint lacks its store layout; it is damaged or too old")
    return {**layout, "format_version": 1}


def check_compatible(store: Rows, payload: dict, source: str, finite: bool = True) -> None:
    """The store's layout must be the one the model was trained on (and, with ``finite``, its vectors finite)."""
    from .train import check_vae_store  # imported here so that train may import this module

    check_vae_store(store, source, finite=finite)
    layout = payload.get("layout", {})
    for key in ("J", "L", "fields", "vector_length", "normalisation"):
        same = (normalisation_code(store.attrs.get(key)) == normalisation_code(layout[key]) if key == "normalisation"
                else str(store.attrs.get(key)) == str(layout[key])) if key in layout else True
        if not same:
            raise DustvaeError(f"{source}: {key} is {store.attrs.get(key)} but the model was trained on {layout[key]}")


def _finite_blocks(store: Rows, source: str):
    """The store's vectors block by block, each refused in one line if it holds NaN or inf."""
    for start, block in store.blocks("coeffs"):
        check_finite_rows(block, source, start, len(store))
        yield start, block


def encode_store(model: DilatedConvVAE, payload: dict, store: Rows, source: str = "store") -> LatentSet:
    """Latent means and log-variances of every patch of a store, in memory or read block by block."""
    check_compatible(store, payload, source, finite=False)
    n = len(store)
    check_memory(n * (8 * model.latent_dim + 24), f"{source}: latents of {n} rows", "encode a smaller store")
    mean = np.empty((n, model.latent_dim), np.float32)
    logvar = np.empty_like(mean)
    for start, block in _finite_blocks(store, source):
        mean[start : start + len(block)], logvar[start : start + len(block)] = encode_array(model, block)
    attrs = {"model": model.name, "latent_dim": model.latent_dim, "source_store": source}
    return LatentSet(mean, logvar, attrs, centers=store.read("centers"), map_index=store.read("map_index"),
                     split=store.split, labels=dict(store.labels))


#: Row datasets a reconstruction copies from the store it reconstructs.
_KEPT = ("s0", "amplitude", "centers", "masked_fraction", "map_index")


def _reconstructed_blocks(model: DilatedConvVAE, store: Rows, source: str):
    """``(first row, row datasets, squared error)`` of the reconstruction of each block of the store."""
    layout = CoefficientLayout.from_attrs(store.attrs)
    for start, block in _finite_blocks(store, source):
        mean, _ = encode_array(model, block)
        vectors = decode_array(model, mean)
        s1, s2 = denormalise(vectors, layout)
        rows = slice(start, start + len(block))
        arrays = {"coeffs": vectors, "s1": s1.astype(np.float32), "s2": s2.astype(np.float32),
                  **{k: store.read(k, rows) for k in _KEPT}}
        yield start, arrays, float(((vectors.astype(np.float64) - block) ** 2).sum())


def reconstruct_store(model: DilatedConvVAE, payload: dict, store: Rows, source: str = "store") -> CoefficientStore:
    """Decode the posterior mean of every patch: a store of the same schema, in memory."""
    check_compatible(store, payload, source, finite=False)
    parts = [arrays for _, arrays, _ in _reconstructed_blocks(model, store, source)]
    joined = {k: np.concatenate([p[k] for p in parts]) if parts else store.read(k, slice(0, 0))
              for k in ("coeffs", "s1", "s2", *_KEPT)}
    layout = CoefficientLayout.from_attrs(store.attrs)
    return CoefficientStore(**joined, theta=layout.angles, labels=dict(store.labels), split=store.split,
                            attrs=_provenance(store.attrs, reconstructed_by=model.name, source_store=source))


def reconstruct_to_file(model: DilatedConvVAE, payload: dict, store: Rows, path: str | Path,
                        source: str = "store") -> float:
    """Write the reconstruction of every patch to the store ``path``, block by block; return its RMSE (log2 units).

    The store may be a :class:`~dustvae.io.store.StoreReader`: one block of
    rows is in memory at a time, besides the compressed output.
    """
    check_compatible(store, payload, source, finite=False)
    layout = CoefficientLayout.from_attrs(store.attrs)
    attrs = _provenance(store.attrs, reconstructed_by=model.name, source_store=source)
    squared = 0.0
    with store_writer(path, len(store), attrs, layout.angles, labels=store.labels, split=store.split) as writer:
        for start, arrays, error in _reconstructed_blocks(model, store, source):
            writer.write(start, **arrays)
            squared += error
    return float(np.sqrt(squared / max(1, len(store) * len(layout))))


def sample_store(model: DilatedConvVAE, payload: dict, n: int, seed: int = 0,
                 prior: LatentPrior | None = None) -> CoefficientStore:
    """``n`` vectors generated from N(0, I) (``prior=None``) or from a fitted prior, seeded."""
    return _store_from_vectors(sample_array(model, n, seed, prior), _layout_attrs(payload), sampled_by=model.name,
                               seed=seed, prior="normal" if prior is None else "fitted: " + prior.summary())


def interpolate_store(model: DilatedConvVAE, payload: dict, store: CoefficientStore, start: int, stop: int,
                      steps: int, source: str = "store") -> tuple[CoefficientStore, np.ndarray]:
    """Decoded points on the straight latent line between the means of patches ``start`` and ``stop``.

    Returns the store of ``steps`` vectors and the interpolation weights (0 to 1).
    """
    check_compatible(store, payload, source)
    for index in (start, stop):
        if not 0 <= index < len(store):
            raise DustvaeError(f"patch index {index} is out of range; the store has {len(store)} patches (0..{len(store) - 1})")
    vectors, weights = interpolate_array(model, store.coeffs[[start, stop]], steps)
    out = _store_from_vectors(vectors, store.attrs, interpolated_by=model.name,
                              source_store=source, endpoints=f"{start},{stop}")
    return out, weights
