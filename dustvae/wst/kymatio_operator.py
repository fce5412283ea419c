"""Kymatio's ``Scattering2D`` for dustvae's two boundary modes: the one place that knows Kymatio's internals."""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch

from .. import defaults


def periodize_filter_fft(x: np.ndarray, res: int) -> np.ndarray:
    """Kymatio 0.3's ``filter_bank.periodize_filter_fft`` without its Python loops, with equal results.

    Kymatio zeroes the frequencies of ``x`` outside a centred band, then
    folds the ``2**res`` x ``2**res`` blocks of the result onto one. After
    the masking every folded pixel receives exactly one non-zero term, so
    summing the blocks at once adds the same numbers to zeros: the result is
    equal to Kymatio's, element for element (tested).
    """
    M, N = x.shape
    mask = np.ones(x.shape, np.float32)
    len_x, start_x = int(M * (1 - 2 ** (-res))), int(M * 2 ** (-res - 1))
    len_y, start_y = int(N * (1 - 2 ** (-res))), int(N * 2 ** (-res - 1))
    mask[start_x : start_x + len_x, :] = 0
    mask[:, start_y : start_y + len_y] = 0
    x = np.multiply(x, mask)
    k = 2**res
    return x.reshape(k, M // k, k, N // k).sum(axis=(0, 2), dtype=x.dtype)


def kymatio_operator(size: int, J: int, L: int, boundary: str, out_type: str = "array") -> torch.nn.Module:
    """A new Kymatio 0.3 ``Scattering2D`` (torch frontend, order 2) for ``size`` x ``size`` maps.

    ``boundary="reflect"`` is Kymatio's own operator: reflection padding to
    ``kymatio.scattering2d.utils.compute_padding``'s size, filters built at
    that size, one border pixel of every output map dropped.

    ``boundary="periodic"`` adapts it to periodic maps: filters built at the
    map size, no padding and no unpadding. It relies on these details of
    Kymatio 0.3's ``ScatteringBase2D`` and ``ScatteringTorch2D``:

    * ``pre_pad=True`` makes ``pad`` a reshape of ``(B, m, n)`` to
      ``(B, m, n, 1)``, makes ``scattering`` accept inputs of size
      ``(_M_padded, _N_padded)`` and ignore ``shape`` (which is set to the
      map size only for readers);
    * ``create_filters`` builds ``phi`` and ``psi`` at ``(_M_padded,
      _N_padded)``, and ``register_filters`` copies them into the buffers
      that ``load_filters`` reads at every call;
    * ``unpad`` maps each ``(..., m, n, 1)`` output to ``(..., m, n)``.

    Both modes build the filters with :func:`periodize_filter_fft` in place
    of Kymatio's own (module ``kymatio.scattering2d.filter_bank``, same
    results, several times faster), when Kymatio has that function.

    Tests fail if these details change: the paths must carry Kymatio's
    ``out_type="list"`` scale and angle metadata in the layout's order
    (``tests/test_layout.py``); a periodic map rolled by multiples of
    ``2**J`` must keep its coefficients, and the fast periodisation must
    equal Kymatio's (``tests/test_engine.py``).
    """
    # Through the frontend entry point: `kymatio.torch` would import the 3D
    # transform, which breaks on SciPy >= 1.17 (sph_harm was removed).
    import kymatio.scattering2d.filter_bank as filter_bank
    from kymatio import Scattering2D

    fast = mock.patch.object(filter_bank, "periodize_filter_fft", periodize_filter_fft) if hasattr(
        filter_bank, "periodize_filter_fft") else mock.MagicMock()
    options = dict(J=J, L=L, max_order=defaults.MAX_ORDER, frontend="torch", out_type=out_type)
    with fast:
        if boundary == "reflect":
            return Scattering2D(shape=(size, size), **options)
        # Built for the smallest shape (the cheapest padded bank), then rebuilt at the map size.
        op = Scattering2D(shape=(2**J, 2**J), pre_pad=True, **options)
        op.shape = (size, size)
        op._M_padded, op._N_padded = size, size
        op.create_filters()
    op.register_filters()
    op.unpad = lambda x: x.reshape(x.shape[:-1])
    return op


def wavelet_bank(size: int, J: int, L: int) -> np.ndarray:
    """Kymatio's Morlet wavelets in Fourier, built at ``size`` (periodic maps), as an array ``(J, L, size, size)``.

    ``[j, l]`` is the wavelet of scale ``j`` and angle index ``l``, the filter the
    periodic operator of :func:`kymatio_operator` multiplies a map's FFT with.
    """
    op = kymatio_operator(size, J, L, "periodic")
    bank = np.zeros((J, L, size, size), np.float64)
    for psi in op.psi:
        bank[psi["j"], psi["theta"]] = np.asarray(psi["levels"][0])
    return bank
