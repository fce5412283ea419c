"""Symmetries of a square patch as index permutations of the normalised WST vector.

Rotating a square patch by 90 degrees and mirroring it map the pixel grid
onto itself. Kymatio's wavelet of index ``l`` has its wave vector at
``theta_l = (L/2 - 1 - l) * pi / L`` in the (row, column) plane
(:func:`dustvae.wst.layout.kymatio_angles`), and a real map's moduli are the
same at ``theta`` and ``theta + pi``, so angles only matter modulo ``pi``:

* Rotation by 90 degrees, either way: ``theta -> theta +- pi/2``, i.e.
  ``l -> (l + L/2) mod L`` for ``l1`` and ``l2`` alike. Two quarter turns are
  the identity on the vector. The polarization turns with the patch:
  ``Q, U -> -Q, -U``; the moduli ignore the sign, so each field keeps its
  place.
* Mirror, about either axis: ``theta -> -theta``, i.e.
  ``l -> (L - 2 - l) mod L``; ``Q, U -> Q, -U``, again only a sign.
* Both (the transpose, the mirror about the main diagonal):
  ``l -> (L/2 - 2 - l) mod L``.

Only angle indices move, within each (field, layer, j1, j2) block; the
parent S1 of a permuted S2 is the permuted parent, so ``log2 S2 / S1``
permutes alike, and the polarization amplitude is unchanged: one
permutation acts on the normalised vector, for any fields, J and even L.

When the permutation is exact. A coefficient is the mean of Kymatio's
output map, subsampled by 2**J on a grid anchored at pixel (0, 0) of the
(padded) input, so a transformation is exact only if it maps that grid onto
itself. Periodic boundary: turns and mirrors about pixel (0, 0), and the
transpose, are exact (``tests/test_symmetry.py``: to the transform's float32
rounding); ``np.rot90`` turns about the patch centre instead, which adds a
one-pixel shift (about 0.015 log2 rms on a 64-px map, like any one-pixel
shift). Reflect boundary (Kymatio's padding, used for sky patches): the
output grid samples patch pixels {0, 2**J, ...}**2, which only the transpose
keeps, so the turn and the mirror are not exact per patch; they hold in
distribution for an isotropic sky. On an 80-map ``dustvae make-dataset``
(1280 patches of 64 px, reflect), the mean vector of the permuted data
differs from the data's mean by 0.012 (turn), 0.004 (mirror) and 0.012
(both) log2 rms over coefficients, 0.4-1.1 standard errors of the mean:
as symmetric as the sample can tell. That is what training augmentation
needs, and what ``dustvae train --augment`` uses.

45 degrees (:func:`rotate45_permutation`: angle indices shifted by L/4,
``Q -> -U``, ``U -> Q``) is measured and not offered for augmentation
(``scripts/measure_symmetry.py``):

* In distribution, on the same dataset, the permuted data's mean differs
  from the data's by 0.150 log2 rms, 12 standard errors, against at most 1.1
  for the exact permutations: the WST of a pixel grid is not isotropic at
  45 degrees (the diagonal wavelets see the grid otherwise), so training on
  such vectors would teach the models a bias of that size, comparable to
  the reconstruction errors they reach (0.2-0.3 log2).
* Per patch, on 24 simulated periodic maps: 64-px patches tapered to a
  central disc (the same sky at every angle, no seams) and transformed with
  the periodic boundary, the turned patch sampled from the periodic map by
  cubic-spline interpolation (``scipy.ndimage.map_coordinates``,
  ``mode="grid-wrap"``; exact Fourier interpolation gave the same on a
  map checked). A 90-degree
  turn about pixel (32, 32) through that pipeline matches its permutation
  to 1e-4 (a check of the pipeline); 45 degrees misses by 0.70 log2 RMSE
  (median; 16th-84th percentile 0.65-0.74), more than the patches' own
  spread (0.30) and more than leaving the vector unpermuted (0.37): the
  turn moves the few output-grid points the means are taken over (2 x 2 on
  a 64-px patch at J = 5) off the grid.
"""

from __future__ import annotations

import numpy as np

from ..errors import DustvaeError
from .layout import CoefficientLayout, kymatio_angles

#: The exact symmetries of the square pixel grid, as far as the WST vector can tell
#: (rotations by 180 degrees equal the identity on it). Order fixes the augmentation codes.
EXACT_SYMMETRIES = ("identity", "rot90", "mirror", "rot90+mirror")


#: Each symmetry's action on a wavelet angle (radians, modulo pi).
_ANGLE_ACTION = {
    "identity": lambda theta: theta,
    "rot90": lambda theta: theta + np.pi / 2,
    "mirror": lambda theta: -theta,
    "rot90+mirror": lambda theta: np.pi / 2 - theta,  # the transpose: mirror about the main diagonal
    "rot45": lambda theta: theta + np.pi / 4,  # content turned from the row axis toward the column axis
}


def angle_map(L: int, name: str) -> np.ndarray:
    """New angle index of each angle index ``l`` under the symmetry ``name``.

    A coefficient at angle index ``l`` of the original map is found at
    ``angle_map(L, name)[l]`` in the transformed map's vector. Raises when
    the symmetry does not map Kymatio's L angles onto themselves.
    """
    if name not in _ANGLE_ACTION:
        raise DustvaeError(f"unknown symmetry {name!r}; use one of {', '.join(EXACT_SYMMETRIES)} or rot45")
    theta = kymatio_angles(L)
    moved = _ANGLE_ACTION[name](theta)
    # index whose angle equals the moved angle modulo pi
    distance = np.abs(((moved[:, None] - theta[None, :]) / np.pi + 0.5) % 1.0 - 0.5)
    new = distance.argmin(axis=1)
    if not np.allclose(distance[np.arange(L), new], 0.0, atol=1e-9):
        raise DustvaeError(f"the symmetry {name} does not map the L={L} wavelet angles onto themselves; "
                           f"use L divisible by {4 if name == 'rot45' else 2}")
    return new


def _permutation(layout: CoefficientLayout, name: str, field_source: list[int]) -> np.ndarray:
    new_l = angle_map(layout.L, name)
    perm = np.empty(len(layout), dtype=np.int64)
    f, layer, j1, l1, j2, l2 = (getattr(layout, k) for k in ("field", "layer", "j1", "l1", "j2", "l2"))
    for index in range(len(layout)):
        # The coefficient at (field, l1, l2) of the original lands at (field', new_l[l1], new_l[l2]):
        # the transformed vector's index `target` reads the original's `index`.
        target_field = layout.fields[field_source.index(int(f[index]))]
        if layer[index] == 1:
            target = layout.index(target_field, 1, int(j1[index]), int(new_l[l1[index]]))
        else:
            target = layout.index(target_field, 2, int(j1[index]), int(new_l[l1[index]]), int(j2[index]), int(new_l[l2[index]]))
        perm[target] = index
    return perm


def symmetry_permutation(layout: CoefficientLayout, name: str) -> np.ndarray:
    """Index permutation ``perm`` with ``vector(transformed patch) == vector(patch)[..., perm]``.

    Parameters
    ----------
    layout : CoefficientLayout
        Any fields, J and L (L divisible by 4).
    name : str
        One of :data:`EXACT_SYMMETRIES`: ``rot90`` is a quarter turn of the
        patch (``np.rot90``, either way) with ``Q, U -> -Q, -U``; ``mirror``
        flips the patch about either axis with ``U -> -U``.
    """
    if name not in EXACT_SYMMETRIES:
        raise DustvaeError(f"unknown symmetry {name!r}; use one of {', '.join(EXACT_SYMMETRIES)}")
    return _permutation(layout, name, list(range(len(layout.fields))))


def exact_symmetry_permutations(layout: CoefficientLayout) -> np.ndarray:
    """The permutations of :data:`EXACT_SYMMETRIES`, stacked: (4, len(layout)); row 0 is the identity."""
    return np.stack([symmetry_permutation(layout, name) for name in EXACT_SYMMETRIES])


def rotate45_permutation(layout: CoefficientLayout) -> np.ndarray:
    """Approximate permutation for a 45-degree rotation (see the module docstring: not exact).

    The patch's content turns by +45 degrees from the row axis toward the
    column axis (``scipy.ndimage.rotate`` with ``angle=-45`` on an array whose
    first axis is the row), and the polarization with it:
    ``Q' = -U``, ``U' = Q`` up to signs the WST does not see. Needs both Q and U
    when either is present; I, if present, keeps its place.
    """
    fields = list(layout.fields)
    has_q, has_u = "Q" in fields, "U" in fields
    if has_q != has_u:
        raise DustvaeError("a 45-degree rotation mixes Q and U; the layout needs both or neither")
    source = list(range(len(fields)))
    if has_q:
        q, u = fields.index("Q"), fields.index("U")
        source[q], source[u] = u, q  # new Q block from old U, new U block from old Q
    return _permutation(layout, "rot45", source)
