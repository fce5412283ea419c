"""Envelope statistics: what the WST vector leaves free and the pixel distribution depends on.

The WST vector holds, per field, the spatial means of the wavelet moduli
(S1) and of the moduli of their band-passed envelopes (S2). It does not say
where the envelopes of different scales are large relative to each other:
in an intermittent field the bright structures are bright at every scale
and in every field at once, and that alignment, not the spectrum of each
envelope, makes the heavy tails of the pixel distribution. Syntheses that
match the vector to 1e-5 but place each scale's activity independently
keep an excess kurtosis of 1-2 where the original has 6-12
(``scripts/diagnose_synthesis.py``).

:class:`EnvelopeMoments` measures that alignment, and each scale's
sparsity, on the same wavelets (Kymatio's bank at the map size, periodic):
for the envelopes ``E[f, j] = mean over theta of |x_f * psi(j, theta)|``,

* the correlation over pixels of ``E[f, j]`` with ``E[f, k]``, ``j < k``
  (``F * J * (J - 1) / 2`` numbers),
* the correlation of ``E[f, j]`` with ``E[g, k]`` for fields ``f < g`` and
  every ``j, k`` (``J**2`` per pair of fields: for Q and U, the
  co-location that sets the tail of P),
* ``log2(<|z|**2> / <|z|>**2)`` and ``log2(<|z|**4> / <|z|**2>**2)`` of the
  moduli ``z = x_f * psi(j, theta)``, averaged over theta (``2 * F * J``).

For Q and U at J = 5: 20 + 25 + 20 = 65 numbers, all without units. They are
computed from a map, never from a vector: a synthesis can use them when the
original map is at hand (:func:`~dustvae.synthesis.optimize.synthesize`'s
``constraints="wst+envelopes"``), and they show how much of the pixel
statistics the 1360 coefficients alone leave undetermined.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import defaults
from ..errors import DustvaeError
from ..wst.kymatio_operator import wavelet_bank


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation over the last axis."""
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    return (a * b).mean(-1) / torch.sqrt(a.pow(2).mean(-1) * b.pow(2).mean(-1))


class EnvelopeMoments:
    """Envelope correlations and sparsity of ``(F, n, n)`` maps (module docstring), differentiable, periodic.

    Parameters
    ----------
    size : int
        Map side in pixels.
    J, L : int
        Scales and angles of the wavelets (those of the WST).
    device : torch.device or str
    """

    def __init__(self, size: int, J: int = defaults.J, L: int = defaults.L, device: torch.device | str = "cpu"):
        self.size, self.J = size, J
        self.bank = torch.from_numpy(wavelet_bank(size, J, L).astype(np.float32)).to(device)  # (J, L, n, n)
        self._upper = torch.triu_indices(J, J, 1, device=device)

    def count(self, n_fields: int) -> int:
        """How many numbers :meth:`__call__` returns for ``n_fields`` fields."""
        return n_fields * self.J * (self.J - 1) // 2 + self.J**2 * n_fields * (n_fields - 1) // 2 + 2 * n_fields * self.J

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The statistics of ``x`` (F, n, n), in the order of the module docstring."""
        if x.ndim != 3 or x.shape[-2:] != (self.size, self.size):
            raise DustvaeError(f"maps of shape (F, {self.size}, {self.size}) expected, got {tuple(x.shape)}")
        n_fields = x.shape[0]
        moduli = torch.fft.ifft2(torch.fft.fft2(x)[:, None, None] * self.bank).abs()  # (F, J, L, n, n)
        envelope = moduli.mean(2).reshape(n_fields, self.J, -1)
        within = _correlation(envelope[:, :, None], envelope[:, None, :])[:, self._upper[0], self._upper[1]]
        parts = [within.reshape(-1)]
        for f in range(n_fields):
            for g in range(f + 1, n_fields):
                parts.append(_correlation(envelope[f][:, None], envelope[g][None, :]).reshape(-1))
        m1, m2, m4 = (moduli.pow(p).mean((-2, -1)) for p in (1, 2, 4))
        sparsity = torch.stack([torch.log2(m2 / m1**2), torch.log2(m4 / m2**2)], -1).mean(2)  # (F, J, 2)
        parts.append(sparsity.reshape(-1))
        return torch.cat(parts)

    def of_map(self, maps: np.ndarray) -> np.ndarray:
        """The statistics of a map ``(F, n, n)`` given as an array, in float64."""
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(maps, np.float32), device=self.bank.device)
            return self(x).double().cpu().numpy()
