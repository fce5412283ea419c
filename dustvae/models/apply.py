"""Using a trained model: encode, reconstruct, sample and interpolate, as stores and latent files.

Reconstructions, samples and interpolations are written as coefficient
stores of the same schema as ``compute-wst`` output, so every tool that reads
coefficients reads them. Their raw ``s1``/``s2`` are recomputed from the
normalised vectors; quantities a model cannot know (``s0``, the amplitude
and centres of a generated sample) are NaN.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DustvaeError
from ..io.latents import LatentSet
from ..io.store import CoefficientStore
from ..wst.layout import CoefficientLayout
from ..wst.transform import denormalise
from .train import check_vae_store
from .vae import DilatedConvVAE

_BATCH = 1024


def _device_of(model: DilatedConvVAE) -> torch.device:
    return model.data_mean.device


def encode_array(model: DilatedConvVAE, coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and log-variance for normalised vectors (N, 1360)."""
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
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(z), _BATCH):
            zb = torch.from_numpy(np.asarray(z[start : start + _BATCH], np.float32)).to(_device_of(model))
            out.append(model.decode(zb).float().cpu().numpy())
    return np.concatenate(out)


def _store_from_vectors(vectors: np.ndarray, attrs: dict, like: CoefficientStore | None = None, **provenance) -> CoefficientStore:
    layout = CoefficientLayout.from_attrs(attrs)
    s1, s2 = denormalise(vectors, layout)
    n, f = len(vectors), len(layout.fields)
    nan = lambda *shape: np.full(shape, np.nan)  # noqa: E731
    base = dict(attrs)
    base.update({k: str(v) for k, v in provenance.items()})
    return CoefficientStore(
        coeffs=vectors.astype(np.float32), s0=like.s0 if like is not None else nan(n, f),
        s1=s1.astype(np.float32), s2=s2.astype(np.float32),
        amplitude=like.amplitude if like is not None else nan(n),
        centers=like.centers if like is not None else nan(n, 2),
        masked_fraction=like.masked_fraction if like is not None else np.zeros(n, np.float32),
        map_index=like.map_index if like is not None else np.full(n, -1),
        theta=layout.angles, attrs=base,
        labels=dict(like.labels) if like is not None else {},
        split=like.split if like is not None else None,
    )


def _layout_attrs(payload: dict) -> dict:
    layout = payload.get("layout") or {}
    if "vector_length" not in layout:
        raise DustvaeError("checkpoint lacks its store layout; it is damaged or too old")
    return {**layout, "format_version": 1}


def check_compatible(store: CoefficientStore, payload: dict, source: str) -> None:
    """The store's layout must be the one the model was trained on."""
    check_vae_store(store, source)
    layout = payload.get("layout", {})
    for key in ("J", "L", "fields", "vector_length", "normalisation"):
        if key in layout and str(store.attrs.get(key)) != str(layout[key]):
            raise DustvaeError(f"{source}: {key} is {store.attrs.get(key)} but the model was trained on {layout[key]}")


def encode_store(model: DilatedConvVAE, payload: dict, store: CoefficientStore, source: str = "store") -> LatentSet:
    """Latent means and log-variances of every patch of a store."""
    check_compatible(store, payload, source)
    mean, logvar = encode_array(model, store.coeffs)
    attrs = {"model": model.name, "latent_dim": model.latent_dim, "source_store": source}
    return LatentSet(mean, logvar, attrs, centers=store.centers, map_index=store.map_index,
                     split=store.split, labels=dict(store.labels))


def reconstruct_store(model: DilatedConvVAE, payload: dict, store: CoefficientStore, source: str = "store") -> CoefficientStore:
    """Decode the posterior mean of every patch: a store of the same schema."""
    check_compatible(store, payload, source)
    mean, _ = encode_array(model, store.coeffs)
    return _store_from_vectors(decode_array(model, mean), store.attrs, like=store,
                               reconstructed_by=model.name, source_store=source)


def sample_store(model: DilatedConvVAE, payload: dict, n: int, seed: int = 0) -> CoefficientStore:
    """``n`` vectors generated from the prior, seeded."""
    if n < 1:
        raise DustvaeError(f"-n must be positive, got {n}")
    z = np.random.default_rng(seed).standard_normal((n, model.latent_dim)).astype(np.float32)
    return _store_from_vectors(decode_array(model, z), _layout_attrs(payload), sampled_by=model.name, seed=seed)


def interpolate_store(model: DilatedConvVAE, payload: dict, store: CoefficientStore, start: int, stop: int,
                      steps: int, source: str = "store") -> tuple[CoefficientStore, np.ndarray]:
    """Decoded points on the straight latent line between the means of patches ``start`` and ``stop``.

    Returns the store of ``steps`` vectors and the interpolation weights (0 to 1).
    """
    check_compatible(store, payload, source)
    for index in (start, stop):
        if not 0 <= index < len(store):
            raise DustvaeError(f"patch index {index} is out of range; the store has {len(store)} patches (0..{len(store) - 1})")
    if steps < 2:
        raise DustvaeError(f"--steps must be at least 2, got {steps}")
    mean, _ = encode_array(model, store.coeffs[[start, stop]])
    weights = np.linspace(0.0, 1.0, steps)
    z = (1 - weights)[:, None] * mean[0] + weights[:, None] * mean[1]
    out = _store_from_vectors(decode_array(model, z), store.attrs, interpolated_by=model.name,
                              source_store=source, endpoints=f"{start},{stop}")
    return out, weights
