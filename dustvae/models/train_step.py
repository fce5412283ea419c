"""One optimisation step, one scoring of a split, and the optimizer's parameter groups: the parts of an epoch.

:mod:`dustvae.models.train` runs the epochs with them; every name here is
importable from there too.
"""

from __future__ import annotations

import math
import time

import torch

from .. import defaults, distributed
from ..errors import DustvaeError
from .loss import kl_divergence, negative_elbo, reconstruction_mse
from .train_config import TrainConfig
from .vae import DilatedConvVAE


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x_std: torch.Tensor, beta: float,
                  kl_form: str = "analytic", grad_clip: float = defaults.TRAIN_GRAD_CLIP, amp: bool = False,
                  noise: torch.Tensor | None = None, loss_scale: float = 1.0,
                  target_std: torch.Tensor | None = None) -> tuple[float, float, float, float]:
    """One optimisation step on a standardised batch: (loss, reconstruction MSE, KL, gradient norm before clipping).

    The reconstruction is scored against ``target_std`` (the standardised
    map-level targets of the batch's rows) when given, else against ``x_std``.

    ``model`` is a :class:`DilatedConvVAE` or one wrapped in
    DistributedDataParallel; ``noise`` is the reparameterisation draw
    (drawn by the model when None). The gradient is that of ``loss_scale``
    times the batch-mean loss (several ranks scale their slices so that the
    average DistributedDataParallel takes is the global batch's mean).
    Mixed precision (bfloat16) when ``amp`` (CUDA only); the loss is
    computed in float32. A non-finite loss or gradient norm stops the run
    before the step, on every rank alike (the norm is of the all-reduced
    gradient).
    """
    vae = getattr(model, "module", model)
    model.train()
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
        recon, mu, logvar, z = model(x_std, noise)
    target = x_std if target_std is None else target_std
    loss, rec, kl = negative_elbo(target, recon.float(), mu.float(), logvar.float(), z.float(), beta, kl_form, scale=vae.data_std)
    optimizer.zero_grad(set_to_none=True)
    (loss * loss_scale).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if not (torch.isfinite(loss) and torch.isfinite(norm)):
        raise DustvaeError(f"training diverged (loss {loss.item()}, gradient norm {float(norm)}); lower `lr` or `grad_clip`")
    optimizer.step()
    return loss.item(), rec.item(), kl.item(), float(norm)


def evaluate_split(model: DilatedConvVAE, x_std: torch.Tensor, beta: float, batch: int = 512,
                   target_std: torch.Tensor | None = None) -> dict:
    """Reconstruction from the posterior mean (deterministic) and the analytic KL, averaged over ``x_std``.

    Reconstructions are scored against ``target_std`` when given (the map target), else against ``x_std``.
    """
    model.eval()
    target_std = x_std if target_std is None else target_std
    sq_log2 = sq_std = kl_sum = 0.0
    with torch.inference_mode():
        for start in range(0, len(x_std), batch):
            xb, yb = x_std[start : start + batch], target_std[start : start + batch]
            mean, logvar = model.encode_standardised(xb)
            recon = model.decode_standardised(mean)
            sq_log2 += reconstruction_mse(yb, recon, model.data_std).sum().item()
            sq_std += reconstruction_mse(yb, recon).sum().item()
            kl_sum += kl_divergence(mean, logvar).sum().item()
    rec, kl = sq_log2 / len(x_std), kl_sum / len(x_std)
    return {"val_loss": rec + beta * kl, "val_rec": rec, "val_kl": kl,
            "val_rmse_log2": math.sqrt(rec), "val_rmse_std": math.sqrt(sq_std / len(x_std))}


def parameter_groups(model: DilatedConvVAE, config: TrainConfig) -> list[dict]:
    """AdamW's parameter groups, each with its ``lr_scale`` (the schedule's lr is multiplied by it).

    A PCA-started model's linear paths form a group of their own, with
    ``config.pca_linear_lr_scale`` and no weight decay (decay would pull them
    away from PCA, toward zero); everything else is one group with the
    configured weight decay.
    """
    linear = []
    if config.model.pca_init and model.linear_path:
        linear = [*model.linear_encoder.parameters(), *model.linear_decoder.parameters()]
    ids = {id(p) for p in linear}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": rest, "weight_decay": config.weight_decay, "lr_scale": 1.0}]
    if linear:
        groups.append({"params": linear, "weight_decay": 0.0, "lr_scale": config.pca_linear_lr_scale})
    return groups


def start_row(model: DilatedConvVAE, x_train: torch.Tensor, y_train: torch.Tensor | None, x_val_std: torch.Tensor,
               y_val_std: torch.Tensor | None, config: TrainConfig) -> dict:
    """The metrics row of the linear start (epoch 0): both splits scored from the posterior mean, nothing trained."""
    tic = time.perf_counter()
    fit = evaluate_split(model, model.standardise(x_train), config.beta,
                         target_std=None if y_train is None else model.standardise(y_train))
    row = {"epoch": 0, "lr": 0.0, "beta": config.kl_weight(0), "train_loss": fit["val_loss"], "train_rec": fit["val_rec"],
           "train_kl": fit["val_kl"], "train_rmse_log2": fit["val_rmse_log2"],
           **evaluate_split(model, x_val_std, config.beta, target_std=y_val_std),
           "clipped_fraction": 0.0, "grad_norm_median": 0.0, "seconds": time.perf_counter() - tic, "samples_per_s": 0.0}
    row = {k: (v if k == "epoch" else float(v)) for k, v in row.items()}
    row["ranks"] = distributed.current().world
    return row
