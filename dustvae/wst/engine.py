"""Spatial means of Kymatio's 2D scattering, with all angles and scales of a layer in one tensor operation.

Kymatio 0.3 (``kymatio.scattering2d.core.scattering2d``) loops in Python
over the 680 paths of a map (J = 5, L = 8). Per path it multiplies a Fourier
image by a wavelet, subsamples by periodisation in Fourier, takes an inverse
FFT and a modulus, then, for the output, a forward FFT, the product with the
low-pass ``phi``, a second subsampling, an inverse FFT and an unpadding.
:class:`BatchedScattering` runs the same steps on the same filters, padding
and subsampling, taken from a Kymatio operator, and changes only how they
are grouped:

* The L first-layer paths of a scale ``j1`` are one tensor operation, and
  the L x L second-layer paths of a scale pair ``(j1, j2)`` are one: the
  Fourier images of the L first-layer maps (one FFT per ``j1``, shared by
  every ``j2``) against the L wavelets of ``j2``.
* The wavelet product and the periodisation that follows it
  (``subsample(U_hat * psi, k)``: a sum over the ``k * k`` frequencies that
  fold onto each frequency of the subsampled grid) are one batched matrix
  product, with the output frequencies as its batch (:func:`_fold`). The
  Fourier images are transposed to that frequency-major layout once per
  ``j1`` and the products back to image-major layout for the inverse FFTs,
  which are fastest on contiguous images.
* The modulus is Kymatio's ``sqrt(re**2 + im**2)``, in one autograd node
  with Kymatio's gradient (zero where the modulus is zero).
* A modulus map ``U`` is never transformed again: what is kept of it is the
  spatial mean of Kymatio's output
  ``unpad(irfft(subsample(rfft(U) * phi, 2**(J - j))))``, which is linear in
  ``U``, hence the inner product of ``U`` with a weight map. The weight map
  is the gradient of that linear form, taken once through Kymatio's own
  backend functions in float64 (:func:`_mean_weights`), so it carries the
  low-pass, the subsampling and the unpadding as Kymatio applies them.

The results equal Kymatio's to float32 rounding (``tests/test_engine.py``).
What is averaged is what :func:`dustvae.wst.transform.scattering_means`
averages of Kymatio's output: each output map after Kymatio's unpadding.
"""

from __future__ import annotations

import numpy as np
import torch


def _frequency_major(u: torch.Tensor) -> torch.Tensor:
    """``(R, m, m)`` complex images -> ``(m * m, R)``: one blocked transpose, shared by every :func:`_fold`."""
    return u.reshape(u.shape[0], -1).t().contiguous()


def _bank_blocks(bank: torch.Tensor, k: int) -> torch.Tensor:
    """``(P, m, m)`` Fourier filters -> ``(s * s, P, k * k)`` for :func:`_fold`, with the ``1/k**2`` of the mean."""
    P, m = bank.shape[0], bank.shape[-1]
    s = m // k
    blocks = bank.reshape(P, k, s, k, s).permute(2, 4, 0, 1, 3).reshape(s * s, P, k * k)
    return (blocks / k**2).contiguous()  # a power of two: exact


def _fold(u: torch.Tensor, bank: torch.Tensor, m: int, k: int) -> torch.Tensor:
    """Kymatio's ``subsample_fourier(U_hat * psi_p, k)`` for ``R`` images and ``P`` filters at once.

    ``u`` is :func:`_frequency_major` of the Fourier images of side ``m``;
    ``bank`` is :func:`_bank_blocks` of the filters. Periodisation sums the
    ``k * k`` frequencies that fold onto each frequency of the subsampled
    grid: per output frequency, a ``(P, k*k) @ (k*k, R)`` matrix product.
    Returns ``(P, R, s, s)`` complex, ``s = m / k``.
    """
    s, P, R = m // k, bank.shape[1], u.shape[-1]
    # (k, s, k, s, R) -> (s, s, k, k, R): contiguous runs of R complex numbers
    blocks = torch.view_as_real(u).reshape(k, s, k, s, 2 * R).permute(1, 3, 0, 2, 4).reshape(s * s, k * k, 2 * R)
    out = torch.view_as_complex(torch.bmm(bank, blocks).reshape(s * s, P * R, 2))
    return out.t().contiguous().reshape(P, R, s, s)


class _Modulus(torch.autograd.Function):
    """``|z|`` of complex ``z`` as a real tensor; gradient zero where ``z = 0`` (as Kymatio's)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:
        re, im = torch.view_as_real(z).unbind(-1)
        out = re.square().addcmul_(im, im).sqrt_()  # as Kymatio's modulus; faster than hypot or abs
        ctx.save_for_backward(z, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        z, out = ctx.saved_tensors
        return z * (grad / out).masked_fill_(out == 0, 0)


def _mean_weights(op, j: int) -> torch.Tensor:
    """Weights ``w`` (m, m) with ``sum(U * w)`` = the spatial mean of Kymatio's output for ``U`` at scale ``j``.

    Kymatio's output of a modulus map ``U`` of resolution ``2**-j`` is
    ``unpad(irfft(subsample_fourier(cdgmm(rfft(U), phi[j]), 2**(J - j))))``,
    linear in ``U``; ``w`` is the gradient of its mean, computed with
    Kymatio's backend functions and filter in float64.
    """
    backend, phi = op.backend, np.asarray(op.phi["levels"][j], dtype=np.float64)
    with torch.inference_mode(False), torch.enable_grad():
        u = torch.zeros(phi.shape + (1,), dtype=torch.float64, requires_grad=True)
        low = backend.cdgmm(backend.rfft(u), torch.from_numpy(phi)[..., None])
        out = op.unpad(backend.irfft(backend.subsample_fourier(low, k=2 ** (op.J - j))))
        out.mean().backward()
    return u.grad[..., 0].float()


class BatchedScattering(torch.nn.Module):
    """Spatial means ``(s0, s1, s2)`` of a Kymatio ``Scattering2D`` operator's output, batched over paths.

    Parameters
    ----------
    op : kymatio Scattering2D (torch frontend, max_order 2)
        The operator whose output means are reproduced. Read from it: ``J``,
        ``L``, ``shape`` (of the input maps), the filter bank ``phi`` and
        ``psi`` (Fourier filters at each resolution, with ``j`` and ``theta``
        per wavelet), ``pad`` (input ``(B, n, n)`` to ``(B, m, m, 1)``),
        ``unpad`` and ``backend``.

    Notes
    -----
    The module's buffers (filters rearranged for :func:`_fold`, and the
    mean weights) follow ``.to(device)``. Inputs are float32.
    """

    def __init__(self, op):
        super().__init__()
        if op.max_order != 2:
            raise ValueError("BatchedScattering reproduces max_order=2 operators only")
        J, L = op.J, op.L
        self.J, self.L, self.pad = J, L, op.pad
        self.size = op.phi["levels"][0].shape[0]  # of the padded maps
        self.shape = tuple(op.shape)  # of the input maps
        bank = {}
        for j in range(J):
            waves = sorted((p for p in op.psi if p["j"] == j), key=lambda p: p["theta"])
            if [p["theta"] for p in waves] != list(range(L)):
                raise ValueError(f"the filter bank lacks angles of scale {j}")
            for res in range(len(waves[0]["levels"])):
                bank[j, res] = torch.from_numpy(np.stack([np.asarray(p["levels"][res], dtype=np.float32) for p in waves]))
        # First layer: the L wavelets of scale j1 at full resolution; second layer: those of j2 at 2**-j1.
        self.register_buffer("psi_0", bank[0, 0].clone())
        for j1 in range(1, J):
            self.register_buffer(f"psi_{j1}", _bank_blocks(bank[j1, 0], 2**j1))
        for j1 in range(J - 1):
            for j2 in range(j1 + 1, J):
                self.register_buffer(f"psi_{j1}_{j2}", _bank_blocks(bank[j2, j1], 2 ** (j2 - j1)))
        for j in range(J):
            self.register_buffer(f"w_{j}", _mean_weights(op, j).flatten())

    def _buffer(self, name: str) -> torch.Tensor:
        return getattr(self, name)

    def _mean(self, u: torch.Tensor, j: int) -> torch.Tensor:
        """Kymatio's output mean of the real maps ``u`` (..., s, s) at scale ``j``."""
        s = u.shape[-1]
        return (u.reshape(-1, s * s) @ self._buffer(f"w_{j}")).reshape(u.shape[:-2])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Means of the maps ``x`` (..., n, n), float32: ``s0`` (...), ``s1`` (..., J*L), ``s2`` (..., L*L*J*(J-1)/2).

        The order of ``s1`` and ``s2`` is Kymatio's: ``j1``, ``theta1``, then
        ``j2``, ``theta2``.
        """
        J, L = self.J, self.L
        if tuple(x.shape[-2:]) != self.shape or x.dtype != torch.float32:
            raise ValueError(f"float32 maps of shape {self.shape} expected, got {x.dtype} {tuple(x.shape[-2:])}")
        batch = x.shape[:-2]
        x = self.pad(x.reshape((-1,) + x.shape[-2:]).contiguous())[..., 0]
        R, m = x.shape[0], self.size
        s0 = self._mean(x, 0)
        u0 = torch.fft.fft2(x)
        del x
        s1, s2 = [], []
        for j1 in range(J):
            # Variables are dropped as soon as possible: footprint() counts what stays alive.
            if j1 == 0:
                u1 = self.psi_0.unsqueeze(1) * u0  # (L, R, m, m)
                u0 = _frequency_major(u0) if J > 1 else None
            else:
                u1 = _fold(u0, self._buffer(f"psi_{j1}"), m, 2**j1)
            u1 = _Modulus.apply(torch.fft.ifft2(u1))  # (L1, R, m1, m1)
            s1.append(self._mean(u1, j1))
            if j1 == J - 1:
                break
            m1 = u1.shape[-1]
            u1 = _frequency_major(torch.fft.fft2(u1).reshape(L * R, m1, m1))
            second = []
            for j2 in range(j1 + 1, J):
                u2 = _fold(u1, self._buffer(f"psi_{j1}_{j2}"), m1, 2 ** (j2 - j1))  # (L2, L1 * R, m2, m2)
                u2 = _Modulus.apply(torch.fft.ifft2(u2))
                second.append(self._mean(u2, j2).reshape(L, L, R))
                del u2
            s2.append(torch.stack(second).permute(3, 2, 0, 1).reshape(R, -1))  # theta1, then j2, then theta2
        s1 = torch.cat(s1).t()
        s2 = torch.cat(s2, dim=1) if s2 else s1.new_zeros((R, 0))
        return s0.reshape(batch), s1.reshape(batch + s1.shape[1:]), s2.reshape(batch + s2.shape[1:])

    def footprint(self, grad: bool = False) -> int:
        """Peak bytes of working memory per input map; see :func:`footprint`."""
        return footprint(self.size, self.J, self.L, grad)


def footprint(m: int, J: int, L: int, grad: bool = False) -> int:
    """Bytes of working memory per map that :meth:`BatchedScattering.forward` needs at its peak.

    Counted from its tensor sizes for padded side ``m``, filters excluded:
    the largest set alive at once; with ``grad``, plus the tensors autograd
    keeps for the backward pass (each modulus' complex input and real
    output, for every path), which the backward pass needs beside a working
    set like the forward one.
    """
    c, r = 8, 4  # bytes of a complex64 and a float32
    image = c * m * m  # the input's Fourier image, kept throughout
    peak, kept = c * (L + 1) * m * m, 0  # first product beside the Fourier image and its transposed copy
    for j1 in range(J):
        first = L * (m >> j1) ** 2
        fold = image + 2 * c * first if j1 else 0  # blocks beside the matrix product and its transpose
        peak = max(peak, fold, 2 * c * first + r * first)  # product, inverse FFT, modulus; modulus, FFT, transpose
        kept += (c + r) * first
        for j2 in range(j1 + 1, J):
            second = L * L * (m >> j2) ** 2
            # beside the first layer's Fourier images: blocks, matrix product, transpose; or inverse FFT, modulus
            peak = max(peak, c * first + max(c * first + 2 * c * second, 2 * c * second + r * second))
            kept += (c + r) * second
    return int(image + peak + grad * kept)


def fft_shapes(m: int, J: int, L: int, maps: int) -> list[tuple[str, tuple[int, ...]]]:
    """The FFTs :meth:`BatchedScattering.forward` performs on ``maps`` padded maps of side ``m``: (kind, shape) pairs.

    ``kind`` is ``"fft2"`` or ``"ifft2"``, over the last two axes of a
    complex tensor of ``shape``, in the order the engine runs them.
    """
    shapes = [("fft2", (maps, m, m))]
    for j1 in range(J):
        s1 = m >> j1
        shapes.append(("ifft2", (L, maps, s1, s1)))
        if j1 < J - 1:
            shapes.append(("fft2", (L * maps, s1, s1)))
            shapes += [("ifft2", (L, L * maps, s1 >> (j2 - j1), s1 >> (j2 - j1))) for j2 in range(j1 + 1, J)]
    return shapes


def fft_flops(shape: tuple[int, ...]) -> float:
    """Floating-point operations of a complex 2D FFT over the last two axes: the usual ``5 N log2 N`` per image."""
    n = shape[-1] * shape[-2]
    return float(5.0 * n * np.log2(n) * int(np.prod(shape[:-2])))


def flops(m: int, J: int, L: int) -> dict[str, float]:
    """Floating-point operations of :meth:`BatchedScattering.forward` per map of padded side ``m``, by kind.

    Counted from the sizes the engine works on: its FFTs (:func:`fft_shapes`,
    ``5 N log2 N`` each), the wavelet products and periodisations (the
    first scale's complex-by-real product, 2 per frequency; every
    :func:`_fold` a real matrix product of ``2 P k**2`` per complex output),
    the moduli (4 per pixel) and the weighted means (2 per pixel).
    """
    fft = sum(fft_flops(shape) for _, shape in fft_shapes(m, J, L, 1))
    products = modulus = means = 0.0
    for j1 in range(J):
        first = L * (m >> j1) ** 2  # first-layer pixels at scale j1
        products += 2 * L * m * m if j1 == 0 else 4 * L * m * m  # (P=L) x (k*k) x (2 reals) per output, s*s outputs
        modulus, means = modulus + 4 * first, means + 2 * first
        for j2 in range(j1 + 1, J):
            second = L * L * (m >> j2) ** 2
            products += 4 * L * first  # L2 filters of k*k taps over the L1 images' (m >> j1)**2 frequencies
            modulus, means = modulus + 4 * second, means + 2 * second
    return {"fft": fft, "products": products, "modulus": modulus, "means": means,
            "total": fft + products + modulus + means}
