"""Negative ELBO whose reconstruction term is the reported metric: squared error in log2 units.

The networks see standardised vectors, ``x_std = (x - m) / s`` with the
training set's per-coefficient mean ``m`` and std ``s``, but models are
judged by the RMSE of the normalised log2 vector, unweighted over its 1360
coefficients. So the reconstruction term is measured back in log2 units,
``e_i = s_i (x_std_i - x'_std_i) = x_i - x'_i``, and reduced by the mean:

    loss = rec + beta * KL,    rec = mean_i e_i**2,    KL = sum_k KL_k,

per sample, averaged over the batch. ``sqrt(rec)`` over a data set is the
reported RMSE, and the mean keeps the loss and its gradients of order one
whatever the vector length.

What beta means. A Gaussian likelihood with noise ``sigma`` (log2 units) on
each of the ``n`` coefficients gives a negative ELBO of
``n rec / (2 sigma**2) + KL``, i.e. ``n / (2 sigma**2)`` times the loss above
with ``beta = 2 sigma**2 / n``. beta = 1e-5 is thus the plain ELBO with
sigma = 0.08 log2 (n = 1360), and beta = 1e-4 with sigma = 0.26.

Earlier weights. Before this objective, the term was
``0.5 * sum_i e_std_i**2`` in standardised units, i.e. ``n / 2`` times the
mean, with a KL weight ``beta_old``; Keras-style VAEs use
``mean_i e_std_i**2 + w KL``. When every coefficient has training variance
``v`` (log2**2), the same balance of the two terms is

    beta = beta_old * v / 680 = w * v,

with ``v`` taken as the mean per-coefficient training variance of the data
(:func:`dustvae.models.train_data.mean_variance`, recorded in a run's
``config.json``; 0.17 log2**2 on the training split of an 80-map
``dustvae make-dataset``). With that value the previous default
beta_old = 0.01 is beta = 2.5e-6 (the default now, the plain ELBO with
sigma = 0.04 log2), and the Keras weights 8e-4, 5e-5 and 1e-8 are
beta = 1.4e-4, 8.5e-6 and 1.7e-9. The match is only approximate: the new
term weighs high-variance coefficients more, as the metric does (the
j2 = 4 second-layer block, 38% of the coefficients, holds 67% of the log2
variance on that dataset).

The KL is analytic by default, or the single-sample Monte-Carlo form
``log q(z|x) - log p(z)`` at the drawn z (the "log-normal-pdf" form).
"""

from __future__ import annotations

import math

import torch

from .. import defaults

KL_FORMS = defaults.KL_FORMS


def log_normal_pdf(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Log density of a diagonal Gaussian, summed over the last axis ("log-normal-pdf")."""
    return (-0.5 * ((x - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))).sum(-1)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor | None = None, form: str = "analytic") -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample, summed over the latent dimensions.

    ``form="analytic"``: the closed form. ``form="mc"``: the
    single-sample estimate ``log q(z|x) - log p(z)`` at the drawn ``z``.
    """
    if form == "analytic":
        return -0.5 * (1.0 + logvar - mean**2 - torch.exp(logvar)).sum(-1)
    if form == "mc":
        if z is None:
            raise ValueError("the Monte-Carlo KL needs the sampled z")
        return log_normal_pdf(z, mean, logvar) - log_normal_pdf(z, torch.zeros_like(z), torch.zeros_like(z))
    raise ValueError(f"unknown KL form {form!r}; use one of {KL_FORMS}")


def reconstruction_mse(x_std: torch.Tensor, recon_std: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample mean squared error in log2 units, from standardised vectors.

    ``scale`` is the per-coefficient std ``s`` that standardised the data
    (the model's ``data_std``); ``None`` measures in standardised units.
    """
    error = x_std - recon_std
    if scale is not None:
        error = error * scale
    return (error**2).mean(-1)


def negative_elbo(x_std: torch.Tensor, recon_std: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                  z: torch.Tensor | None, beta: float, kl_form: str = "analytic",
                  scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch means of (loss, reconstruction MSE, KL), the loss being ``rec + beta * KL``.

    Parameters
    ----------
    x_std, recon_std : tensor (N, n)
        Standardised data and reconstruction.
    mean, logvar, z : tensor (N, d)
        Posterior parameters and the drawn latents (``z`` only for ``kl_form="mc"``).
    beta : float
        KL weight (see the module docstring for its meaning).
    scale : tensor (n,), optional
        Per-coefficient std of the standardisation, so that the reconstruction
        is measured in log2 units as the reported RMSE is.
    """
    rec = reconstruction_mse(x_std, recon_std, scale)
    kl = kl_divergence(mean, logvar, z, kl_form)
    return (rec + beta * kl).mean(), rec.mean(), kl.mean()
