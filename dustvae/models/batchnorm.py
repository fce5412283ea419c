"""BatchNorm over the global batch of all ranks, on CPUs (Gloo) and GPUs (NCCL) alike.

With several ranks each holds a slice of the global batch; plain BatchNorm
would normalise each slice by its own statistics, so the trained model
would depend on the number of ranks. :class:`GlobalBatchNorm1d` uses the
statistics of the whole global batch instead, with gradients flowing
through them to every rank, which is what one process on the whole batch
computes. torch's own :class:`torch.nn.SyncBatchNorm` does this on GPUs
only; this one is written with torch's differentiable all-reduce (the
functional collectives, whose backward all-reduces the gradient), so CPU
ranks work and both devices run the same code.

The statistics are two-pass (the global mean first, then the global sum of
squared deviations from it), so they stay accurate when the mean is large
against the spread. The running statistics are updated as BatchNorm1d
updates them (unbiased variance, the same momentum), identically on every
rank; the module keeps BatchNorm1d's parameters and buffers, so its state
dict is BatchNorm1d's and checkpoints load into the plain model.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as collectives
from torch import nn


def _several_ranks() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over the ranks, differentiable (the gradient is summed over the ranks too)."""
    return collectives.all_reduce(tensor, "sum", dist.group.WORLD)


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """:class:`torch.nn.BatchNorm1d` whose training statistics are those of the global batch across ranks.

    With one process (or in evaluation mode) it is BatchNorm1d exactly.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _several_ranks()):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, 2] if x.dim() == 3 else [0]
        shape = [1, -1, 1] if x.dim() == 3 else [1, -1]
        x32 = x.float()  # statistics in float32, also under bfloat16 autocast
        local_count = x32.new_tensor([x32.numel() / x32.shape[1]])
        totals = _all_sum(torch.cat([x32.sum(dims), local_count]))
        count = totals[-1].detach()
        mean = totals[:-1] / count
        centerd = x32 - mean.view(shape)
        var = _all_sum(centerd.square().sum(dims)) / count
        y = centerd * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * (count / (count - 1).clamp(min=1))
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return y


def globalise_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every :class:`torch.nn.BatchNorm1d` in ``module`` into a :class:`GlobalBatchNorm1d`, in place.

    The parameters and buffers are kept (the same tensors), so the state
    dict and the optimizer's references are unchanged.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm1d:
            replacement = GlobalBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                            child.track_running_stats)
            replacement.training = child.training
            for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                setattr(replacement, key, getattr(child, key))  # the same tensors, not copies
            setattr(module, name, replacement)
        else:
            globalise_batchnorm(child)
    return module
