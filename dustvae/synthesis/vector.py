"""The normalised WST vector of maps as a differentiable torch function, either boundary.

Synthesis needs the gradient, with respect to the pixels, of exactly the
vector the store keeps: per field ``log2 S1`` then ``log2 S2/S1(j1, theta1)``
(:func:`dustvae.wst.transform.normalise`), of the spatial means that
:func:`dustvae.wst.transform.means_operator` computes. Either engine of
that operator serves: Kymatio's own transform, or the batched one that
gives the same numbers from the same filters (:mod:`dustvae.wst.engine`),
much faster when the gradient is needed hundreds of times.
"""

from __future__ import annotations

import torch

from .. import defaults
from ..errors import DustvaeError
from ..wst.layout import CoefficientLayout
from ..wst.transform import means_operator


class WSTVector:
    """Normalised log2 WST vectors of ``(N, F, size, size)`` maps, differentiable.

    Parameters
    ----------
    size : int
        Map side in pixels, a multiple of ``2**J``.
    J, L : int
        Scales and angles, as in the store.
    device : torch.device or str
    engine : {"batched", "kymatio"}
        How the scattering means are computed (``defaults.ENGINES``).
    boundary : {"periodic", "reflect"}
        The operator's boundary: periodic (filters at the map size), or
        Kymatio's reflection padding, as sky patches are transformed.
    """

    def __init__(self, size: int, J: int = defaults.J, L: int = defaults.L, device: torch.device | str = "cpu",
                 engine: str = defaults.ENGINE, boundary: str = "periodic"):
        self.size, self.engine, self.boundary = size, engine, boundary
        self.device = torch.device(device)
        self.op = means_operator(size, J, L, boundary, self.device, engine)
        one = CoefficientLayout(fields=("Q",), J=J, L=L)
        self._parent = torch.from_numpy(one.parent_s1()[one.n_s1 :]).to(self.device)

    def means(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spatial means ``(s0, s1, s2)``: (N, F), (N, F, J*L), (N, F, n_s2) in Kymatio's order."""
        if x.ndim != 4 or x.shape[-2:] != (self.size, self.size):
            raise DustvaeError(f"maps of shape (N, F, {self.size}, {self.size}) expected, got {tuple(x.shape)}")
        return self.op(x.contiguous())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised vectors (N, F * per_field), as :func:`~dustvae.wst.transform.normalise` computes them."""
        _, s1, s2 = self.means(x)
        log_s1 = torch.log2(s1)
        log_ratio = torch.log2(s2) - log_s1[..., self._parent]
        return torch.cat([log_s1, log_ratio], dim=-1).reshape(len(x), -1)
