"""Kymatio's 2D scattering transform on batches of patches, reduced to spatial means.

Conventions (docs/conventions.rst): J = 5, L = 8, order 2; each field is
transformed as a real map after dividing the patch by its polarization
amplitude; coefficients are spatial means of Kymatio's output maps.

Two engines give those means from the same Kymatio operator:
``"kymatio"`` averages the operator's output, ``"batched"``
(:mod:`dustvae.wst.engine`, the default) computes the same numbers with
all paths of a layer in one tensor operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .. import defaults
from ..errors import DustvaeError
from ..sky.patches import check_patch_size
from .engine import BatchedScattering, footprint
from .kymatio_operator import kymatio_operator
from .layout import CoefficientLayout

_BANKS: dict[tuple, torch.nn.Module] = {}
_MEANS: dict[tuple, torch.nn.Module] = {}


def check_transform(size: int, J: int, L: int, boundary: str, engine: str = defaults.ENGINE) -> None:
    """Refuse, in one line, transform settings that cannot work."""
    if boundary not in defaults.BOUNDARIES:
        raise DustvaeError(f"unknown boundary {boundary!r}; use reflect or periodic")
    if engine not in defaults.ENGINES:
        raise DustvaeError(f"unknown WST engine {engine!r}; use {' or '.join(defaults.ENGINES)}")
    for name, value in (("J", J), ("L", L)):
        if value < 1:
            raise DustvaeError(f"{name} = {value} must be at least 1")
    check_patch_size(size, J)


def padded_size(size: int, J: int, boundary: str) -> int:
    """Side of the maps the filters act on: Kymatio's padded size (reflect) or ``size`` (periodic)."""
    return (size // 2**J + 2) * 2**J if boundary == "reflect" else size


def scattering_operator(size: int, J: int = defaults.J, L: int = defaults.L, boundary: str = defaults.BOUNDARY,
                        device: torch.device | str = "cpu") -> torch.nn.Module:
    """Kymatio ``Scattering2D`` for ``size`` x ``size`` inputs, built once and cached.

    ``boundary="reflect"`` is Kymatio's default (reflection padding, then
    unpadding). ``boundary="periodic"`` builds the filters at the input size
    and neither pads nor unpads, for periodic boxes (see
    :func:`~dustvae.wst.kymatio_operator.kymatio_operator`).
    """
    check_transform(size, J, L, boundary)
    device = torch.device(device)
    key = (size, J, L, boundary, str(device))
    if key not in _BANKS:
        with torch.inference_mode(False):  # filters usable under autograd even when first built under inference mode
            _BANKS[key] = kymatio_operator(size, J, L, boundary).to(device)
    return _BANKS[key]


class _KymatioMeans(torch.nn.Module):
    """Spatial means ``(s0, s1, s2)`` of a Kymatio operator's output maps."""

    def __init__(self, op: torch.nn.Module):
        super().__init__()
        self.op, self.n_s1 = op, op.J * op.L

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        means = self.op(x.contiguous()).mean(dim=(-2, -1))
        return means[..., 0], means[..., 1 : 1 + self.n_s1], means[..., 1 + self.n_s1 :]


def means_operator(size: int, J: int = defaults.J, L: int = defaults.L, boundary: str = defaults.BOUNDARY,
                   device: torch.device | str = "cpu", engine: str = defaults.ENGINE) -> torch.nn.Module:
    """The spatial means of the scattering maps as a differentiable torch module, built once and cached.

    The module maps float32 ``(..., size, size)`` to ``(s0, s1, s2)``:
    shapes ``(...)``, ``(..., J*L)`` and ``(..., L*L*J*(J-1)/2)``, Kymatio's
    order. ``engine="kymatio"`` averages Kymatio's own output;
    ``engine="batched"`` computes the same numbers from the same operator
    with all paths of a layer batched (:mod:`dustvae.wst.engine`).
    """
    check_transform(size, J, L, boundary, engine)
    device = torch.device(device)
    key = (size, J, L, boundary, str(device), engine)
    if key not in _MEANS:
        op = scattering_operator(size, J, L, boundary, device)
        with torch.inference_mode(False):
            _MEANS[key] = (BatchedScattering(op) if engine == "batched" else _KymatioMeans(op)).to(device)
    return _MEANS[key]


def amplitude(patches: np.ndarray, fields: tuple[str, ...]) -> np.ndarray:
    """Polarization amplitude ``sqrt(mean(Q**2 + U**2))`` over unmasked pixels, per patch.

    For field sets without both Q and U, the rms of the first field.
    """
    if "Q" in fields and "U" in fields:
        q, u = patches[:, fields.index("Q")], patches[:, fields.index("U")]
        power = q.astype(np.float64) ** 2 + u.astype(np.float64) ** 2
    else:
        power = patches[:, 0].astype(np.float64) ** 2
    amp = np.sqrt(np.nanmean(power.reshape(len(patches), -1), axis=1))
    return amp


def prepare(patches: np.ndarray, fields: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Divide each patch by its amplitude and set masked (NaN) pixels to zero.

    Returns the float32 patches and the amplitudes. A patch with zero or
    undefined amplitude cannot be normalised and is an error.
    """
    amp = amplitude(patches, fields)
    bad = ~np.isfinite(amp) | (amp <= 0)
    if bad.any():
        raise DustvaeError(
            f"{int(bad.sum())} patch(es) have zero or undefined polarization amplitude "
            f"(first: {int(np.flatnonzero(bad)[0])}); mask or drop empty patches"
        )
    out = patches / amp[:, None, None, None]
    return np.nan_to_num(out, nan=0.0).astype(np.float32), amp


@dataclass
class ScatteringMeans:
    """Spatial means of the scattering maps for a batch.

    ``s0`` (N, F); ``s1`` (N, F, J*L); ``s2`` (N, F, L*L*J*(J-1)/2), Kymatio order.
    """

    s0: np.ndarray
    s1: np.ndarray
    s2: np.ndarray


def scattering_means(x: np.ndarray, J: int = defaults.J, L: int = defaults.L, boundary: str = defaults.BOUNDARY,
                     device: str | torch.device = "cpu", engine: str = defaults.ENGINE) -> ScatteringMeans:
    """Scattering coefficients (spatial means) of real images ``x`` (N, F, n, n); see :func:`means_operator`."""
    op = means_operator(x.shape[-1], J, L, boundary, device, engine)
    with torch.inference_mode():
        s0, s1, s2 = op(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device))
    s0, s1, s2 = (t.double().cpu().numpy() for t in (s0, s1, s2))
    return ScatteringMeans(s0=s0, s1=s1, s2=s2)


def normalise(s1: np.ndarray, s2: np.ndarray, layout: CoefficientLayout) -> np.ndarray:
    """The normalised vector: per field ``log2 S1`` then ``log2 S2 / S1(j1, theta1)``.

    ``s1`` is (N, F, J*L) and ``s2`` (N, F, n_s2) in Kymatio order; the result
    is (N, len(layout)) float32.
    """
    one = CoefficientLayout(fields=layout.fields[:1], J=layout.J, L=layout.L)
    parent = one.parent_s1()[one.n_s1 :]  # index into s1 of each S2's parent
    with np.errstate(divide="ignore", invalid="ignore"):
        log_s1 = np.log2(s1)
        log_ratio = np.log2(s2) - log_s1[..., parent]
    vector = np.concatenate([log_s1, log_ratio], axis=-1).reshape(len(s1), -1)
    return vector.astype(np.float32)


def denormalise(vector: np.ndarray, layout: CoefficientLayout) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`normalise`: ``(s1, s2)`` from normalised vectors."""
    one = CoefficientLayout(fields=layout.fields[:1], J=layout.J, L=layout.L)
    parent = one.parent_s1()[one.n_s1 :]
    v = np.asarray(vector, dtype=np.float64).reshape(len(vector), len(layout.fields), layout.per_field)
    s1 = 2.0 ** v[..., : layout.n_s1]
    s2 = 2.0 ** v[..., layout.n_s1 :] * s1[..., parent]
    return s1, s2


def auto_batch_size(size: int, n_fields: int, J: int, device: torch.device, engine: str = defaults.ENGINE,
                    L: int = defaults.L, boundary: str = defaults.BOUNDARY) -> int:
    """Patches per batch so that the transform's working set fits in memory.

    The batched engine's footprint per map is counted from its tensor sizes
    (:meth:`~dustvae.wst.engine.BatchedScattering.footprint`); Kymatio's
    holds about a dozen complex padded images per map at once. We budget
    256 MiB on CPU and a quarter of the free memory on a GPU.
    """
    device = torch.device(device)
    padded = padded_size(size, J, boundary)
    per_map = footprint(padded, J, L) if engine == "batched" else 12 * padded * padded * 8
    per_patch = per_map * n_fields
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 4
    else:
        budget = 256 << 20  # larger CPU batches gain nothing and thrash the cache
    return int(max(1, min(512, budget // per_patch)))


def iter_batches(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(n)`` in fixed-size batches."""
    for start in range(0, n, batch_size):
        yield start, min(n, start + batch_size)
