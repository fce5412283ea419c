"""Start the linear-path VAE at the linear optimum of its target (the ``vae-D+pca`` and ``vae-D+rrr+map`` variants).

:func:`init_from_linear` sets the linear encoder and decoder of a
``DilatedConvVAE(linear_path=True)`` from a fitted linear compressor, in
the normalised log2 space that results are measured in, and silences the
convolutional paths by zeroing their last layers. At that point the
posterior mean decodes to exactly that compressor's reconstruction, so
training can only add what it misses; the zeroed layers still receive
gradients (their inputs are not zero), so the convolutional paths start
learning at the first step. :func:`fit_linear_start` fits the start a
configuration asks for:

* patch target: PCA of the training vectors (``pca-D``), or, when training
  uses the grid's symmetries, PCA of the training vectors under every
  exact symmetry (``pca-sym-D``, the better linear baseline of the patch
  target);
* map target: reduced-rank regression from each training vector to its
  leave-one-out map mean (``rrr-D``, the linear optimum of that target),
  fitted on the symmetry-augmented pairs when training uses the symmetries.

The latent code is the start's *whitened* scores: each latent coordinate
has unit variance over the training set (PCA's are also uncorrelated),
which is what the N(0, I) prior asks of the aggregate posterior, so the KL
term starts small and sampling from the prior starts as a Gaussian with
the start's covariance. The reconstruction does not depend on this choice
(the decoder undoes the scaling).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..baselines.pca import PCACompressor, SymmetricPCACompressor
from ..baselines.rrr import ReducedRankRegression, SymmetricReducedRankRegression
from ..compressor import Compressor
from ..errors import DustvaeError
from .vae import INPUT_LENGTH, DilatedConvVAE

#: Initial posterior log-variance of every latent (see :func:`init_from_pca`).
PCA_INIT_LOGVAR = -6.0


def fit_linear_start(latent_dim: int, x_train: np.ndarray, target: np.ndarray | None = None,
                     permutations: np.ndarray | None = None) -> Compressor:
    """The fitted linear compressor a run starts from (see the module docstring).

    Parameters
    ----------
    latent_dim : int
        Latent size of the model.
    x_train : array (N, 1360)
        Normalised log2 training vectors.
    target : array (N, 1360), optional
        Each training vector's map-level target (finite rows only); None for the patch target.
    permutations : int array (P, 1360), optional
        The grid's exact symmetries (:func:`dustvae.wst.symmetry.exact_symmetry_permutations`),
        when training is augmented by them.
    """
    x = _vectors(x_train, latent_dim)
    if target is None:
        start = PCACompressor(latent_dim) if permutations is None else SymmetricPCACompressor(latent_dim, permutations)
        return start.fit(x)
    if permutations is not None:
        return SymmetricReducedRankRegression(latent_dim, permutations).fit(x, target)
    return ReducedRankRegression(latent_dim).fit(x, target)


def init_from_pca(model: DilatedConvVAE, x_train: np.ndarray | torch.Tensor,
                  logvar: float = PCA_INIT_LOGVAR) -> PCACompressor:
    """Set ``model``'s linear paths from the PCA of ``x_train``; silence its convolutional paths.

    Call after :meth:`DilatedConvVAE.set_standardisation` (any standardisation
    works: the PCA is done in normalised log2 units and mapped through it).
    Afterwards ``model.decode(model.encode(x)[0])`` equals PCA's
    reconstruction of ``x`` (float32 rounding aside), in eval and in training
    mode, and ``model.name`` is ``vae-D+pca``.

    Returns the fitted :class:`~dustvae.baselines.pca.PCACompressor` (the
    ``pca-D`` baseline's fit). See :func:`init_from_linear` for ``logvar``.
    """
    x = _vectors(x_train, model.latent_dim, model)
    pca = PCACompressor(model.latent_dim).fit(x)
    init_from_linear(model, pca, x, logvar)
    return pca


def init_from_linear(model: DilatedConvVAE, start: Compressor, x_train: np.ndarray | torch.Tensor,
                     logvar: float = PCA_INIT_LOGVAR) -> None:
    """Set ``model``'s linear paths to the fitted linear compressor ``start``; silence its convolutional paths.

    Parameters
    ----------
    model : DilatedConvVAE
        Built with ``linear_path=True``, its standardisation set; changed in place.
    start : Compressor
        A fitted compressor whose encode and decode are affine (PCA,
        symmetric PCA, reduced-rank regression) with ``model``'s latent size.
        Its affine maps are read off by encoding and decoding unit vectors.
    x_train : array (N, 1360)
        Normalised log2 training vectors: the codes are whitened by their spread over them.
    logvar : float
        Initial log-variance of q(z|x), the same for every input and latent.
        Training-mode reconstructions decode ``z = mean + exp(logvar / 2) eps``,
        which adds ``exp(logvar)`` times the start's explained variance to the
        squared error; at -6 that is 0.25% of it, while the KL gradient on
        the log-variance (constant in logvar this far below 0) is not cut by
        the clamp at -12.
    """
    d = model.latent_dim
    x = _vectors(x_train, d, model)
    if start.latent_dim != d:
        raise DustvaeError(f"a {start.latent_dim}-latent start cannot start a {d}-latent model")
    # The affine maps: code = x @ E + e, reconstruction = code @ D + b.
    e = start.encode(np.zeros((1, INPUT_LENGTH)))[0]
    E = start.encode(np.eye(INPUT_LENGTH)) - e  # (1360, d)
    b = start.decode(np.zeros((1, d)))[0]
    D = start.decode(np.eye(d)) - b  # (d, 1360)
    codes = x @ E + e
    spread = codes.std(0, ddof=1)  # as PCA's explained variance
    scale = np.maximum(spread, 1e-6 * max(spread.max(), 1e-300))  # (d,): whitened latents
    m = model.data_mean.detach().cpu().double().numpy()
    s = model.data_std.detach().cpu().double().numpy()
    center = codes.mean(0)
    # z = (x E + e - centre) / scale with x = s * x_std + m; the decoder returns x_std = ((centre + scale z) D + b - m) / s.
    enc_w = (E * s[:, None] / scale[None, :]).T
    enc_b = (m @ E + e - center) / scale
    dec_w = (D * scale[:, None] / s[None, :]).T
    dec_b = (center @ D + b - m) / s

    def put(param: torch.Tensor, value) -> None:
        param.copy_(torch.as_tensor(value, dtype=param.dtype))

    with torch.no_grad():
        put(model.linear_encoder.weight[:d], enc_w)
        put(model.linear_encoder.bias[:d], enc_b)
        model.linear_encoder.weight[d:].zero_()
        model.linear_encoder.bias[d:].fill_(logvar)
        put(model.linear_decoder.weight, dec_w)
        put(model.linear_decoder.bias, dec_b)
        for layer in (model.head, model.output_conv.conv):  # the ends of the convolutional paths
            layer.weight.zero_()
            layer.bias.zero_()
    model.spec = replace(model.spec, pca_init=True)


def _vectors(x_train, latent_dim: int, model: DilatedConvVAE | None = None) -> np.ndarray:
    """Training vectors as float64, checked for what a linear start of ``latent_dim`` needs."""
    if model is not None and not model.linear_path:
        raise DustvaeError("the PCA start needs the variant with linear paths (linear_path=True)")
    x = np.asarray(x_train.detach().cpu() if isinstance(x_train, torch.Tensor) else x_train, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != INPUT_LENGTH:
        raise DustvaeError(f"the PCA start needs training vectors of shape (N, {INPUT_LENGTH}), got {x.shape}")
    if len(x) <= latent_dim:
        raise DustvaeError(f"the PCA start of a {latent_dim}-latent model needs more than {latent_dim} training vectors; "
                           f"got {len(x)}")
    return x
