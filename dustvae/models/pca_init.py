"""Start the linear-path VAE where PCA ends (the ``vae-D+pca`` variant).

:func:`init_from_pca` sets the linear encoder and decoder of a
``DilatedConvVAE(linear_path=True)`` from the principal components of the
training vectors, in the normalised log2 space that results are measured in
(the space of the ``pca-D`` baseline), and silences the convolutional paths
by zeroing their last layers. At that point the posterior mean decodes to
exactly PCA's reconstruction, so training can only add what PCA misses; the
zeroed layers still receive gradients (their inputs are not zero), so the
convolutional paths start learning at the first step.

The latent code is PCA's *whitened* scores: each latent coordinate has unit
variance and no correlation over the training set, which is what the N(0, I)
prior asks of the aggregate posterior, so the KL term starts small and
sampling from the prior starts as a Gaussian with PCA's covariance. The
reconstruction does not depend on this choice (the decoder undoes the
scaling).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA

from ..errors import DustvaeError
from .vae import INPUT_LENGTH, DilatedConvVAE

#: Initial posterior log-variance of every latent (see :func:`init_from_pca`).
PCA_INIT_LOGVAR = -6.0


def init_from_pca(model: DilatedConvVAE, x_train: np.ndarray | torch.Tensor,
                  logvar: float = PCA_INIT_LOGVAR) -> PCA:
    """Set ``model``'s linear paths from the PCA of ``x_train``; silence its convolutional paths.

    Call after :meth:`DilatedConvVAE.set_standardisation` (any standardisation
    works: the PCA is done in normalised log2 units and mapped through it).
    Afterwards ``model.decode(model.encode(x)[0])`` equals PCA's
    reconstruction of ``x`` (float32 rounding aside), in eval and in training
    mode, and ``model.name`` is ``vae-D+pca``.

    Parameters
    ----------
    model : DilatedConvVAE
        Built with ``linear_path=True``; changed in place.
    x_train : array (N, 1360)
        Normalised log2 training vectors, N > latent size.
    logvar : float
        Initial log-variance of q(z|x), the same for every input and latent.
        Training-mode reconstructions decode ``z = mean + exp(logvar / 2) eps``,
        which adds ``exp(logvar)`` times PCA's explained variance to the
        squared error; at -6 that is 0.25% of it, while the KL gradient on
        the log-variance (constant in logvar this far below 0) is not cut by
        the clamp at -12.

    Returns
    -------
    sklearn.decomposition.PCA
        The fitted PCA (``n_components`` = latent size, no whitening; same
        settings as the ``pca-D`` baseline).
    """
    if not model.linear_path:
        raise DustvaeError("the PCA start needs the variant with linear paths (linear_path=True)")
    x = np.asarray(x_train.detach().cpu() if isinstance(x_train, torch.Tensor) else x_train, dtype=np.float64)
    d = model.latent_dim
    if x.ndim != 2 or x.shape[1] != INPUT_LENGTH:
        raise DustvaeError(f"the PCA start needs training vectors of shape (N, {INPUT_LENGTH}), got {x.shape}")
    if len(x) <= d:
        raise DustvaeError(f"the PCA start of a {d}-latent model needs more than {d} training vectors; got {len(x)}")
    pca = PCA(n_components=d, whiten=False, svd_solver="full").fit(x)
    components, mu = pca.components_, pca.mean_  # (d, 1360), (1360,)
    scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12 * pca.explained_variance_[0]))  # (d,)
    m = model.data_mean.detach().cpu().double().numpy()
    s = model.data_std.detach().cpu().double().numpy()
    # z = scale^-1 W (x - mu) with x = s * x_std + m; the decoder returns x_std = (mu + W^T scale z - m) / s.
    enc_w = components * s[None, :] / scale[:, None]
    enc_b = components @ (m - mu) / scale
    dec_w = components.T * scale[None, :] / s[:, None]
    dec_b = (mu - m) / s

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
    model.pca_init = True
    return pca
