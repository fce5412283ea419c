"""Symmetries as index permutations, checked against the WST of the actually transformed map."""

from __future__ import annotations

import numpy as np
import pytest

from dustvae.errors import DustvaeError
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.wst.layout import CoefficientLayout
from dustvae.wst.symmetry import EXACT_SYMMETRIES, exact_symmetry_permutations, rotate45_permutation, symmetry_permutation
from dustvae.wst.transform import normalise, prepare, scattering_means

LAYOUT = CoefficientLayout()  # Q, U; J = 5; L = 8


def about_origin(name: str, q: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The patch transformed about pixel (0, 0), with the polarization's sign changes.

    Rotation by 90 degrees: b[i, j] = a[j, -i] (np.rot90, then one row down),
    Q, U -> -Q, -U. Mirror: b[i, j] = a[-i, j], U -> -U. Transpose (the
    mirror about the diagonal, rotation and mirror together): Q -> -Q.
    """
    if name == "rot90":
        turn = lambda a: np.roll(np.rot90(a), 1, axis=0)
        return turn(-q), turn(-u)
    if name == "mirror":
        flip = lambda a: np.roll(a[::-1], 1, axis=0)
        return flip(q), flip(-u)
    if name == "rot90+mirror":
        return -q.T, u.T
    return q, u


def wst_vectors(maps: list[tuple[np.ndarray, np.ndarray]], boundary: str) -> np.ndarray:
    """Normalised vectors of (Q, U) maps, through the package's own transform."""
    x, _ = prepare(np.stack([np.stack(m) for m in maps]).astype(np.float64), ("Q", "U"))
    s = scattering_means(x, boundary=boundary)
    return normalise(s.s1, s.s2, LAYOUT).astype(np.float64)


@pytest.fixture(scope="module")
def patch() -> tuple[np.ndarray, np.ndarray]:
    m = simulate_flat(64, DustParams(seed=5, mean_field_angle=30.0))  # periodic, anisotropic
    return m["Q"], m["U"]


@pytest.fixture(scope="module")
def periodic_vectors(patch) -> dict[str, np.ndarray]:
    q, u = patch
    names = list(EXACT_SYMMETRIES)
    vectors = wst_vectors([about_origin(n, q, u) for n in names], "periodic")
    return dict(zip(names, vectors))


@pytest.mark.parametrize("name", EXACT_SYMMETRIES[1:])
def test_permutation_equals_wst_of_transformed_periodic_map(periodic_vectors, name):
    original, transformed = periodic_vectors["identity"], periodic_vectors[name]
    perm = symmetry_permutation(LAYOUT, name)
    # float32 transform: S1 agree to 1e-6, the smallest S2 to a few 1e-3 in log2
    np.testing.assert_allclose(transformed, original[perm], rtol=0, atol=5e-3)
    assert np.sqrt(np.mean((transformed - original[perm]) ** 2)) < 5e-4
    # the map is anisotropic, so the permutation is needed: without it the vectors differ
    assert np.abs(transformed - original).max() > 0.2


def test_transpose_is_exact_with_reflect_padding(patch):
    """Kymatio's reflect mode samples pixels {0, 2^J, ...}^2 of the patch: the transpose keeps that set."""
    q, u = patch
    original, transposed = wst_vectors([(q, u), about_origin("rot90+mirror", q, u)], "reflect")
    np.testing.assert_allclose(transposed, original[symmetry_permutation(LAYOUT, "rot90+mirror")], rtol=0, atol=5e-3)


@pytest.mark.parametrize("layout", [LAYOUT, CoefficientLayout(fields=("I", "Q", "U"), J=3, L=4),
                                    CoefficientLayout(fields=("I",), J=4, L=16)])
def test_permutations_form_the_group(layout):
    perms = exact_symmetry_permutations(layout)
    assert perms.shape == (4, len(layout))
    identity, rot, mirror, both = perms
    np.testing.assert_array_equal(identity, np.arange(len(layout)))
    for p in perms:
        np.testing.assert_array_equal(np.sort(p), np.arange(len(layout)))
    np.testing.assert_array_equal(rot[rot], identity)  # two quarter turns: the identity on the vector
    np.testing.assert_array_equal(mirror[mirror], identity)
    np.testing.assert_array_equal(mirror[rot], both)
    np.testing.assert_array_equal(rot[mirror], both)
    # only angles move: field, layer and scales stay
    for key in ("field", "layer", "j1", "j2"):
        np.testing.assert_array_equal(getattr(layout, key)[rot], getattr(layout, key))
    # the parent S1 of each permuted S2 is the permuted parent (the S2/S1 normalisation commutes)
    parent = layout.parent_s1()
    second = layout.layer[rot] == 2
    np.testing.assert_array_equal(parent[rot][second], rot[parent[second]])


def test_rotation_by_45_degrees_swaps_q_and_u():
    p45 = rotate45_permutation(LAYOUT)
    np.testing.assert_array_equal(p45[p45], symmetry_permutation(LAYOUT, "rot90"))  # twice 45 is 90
    q_block = LAYOUT.select(field="Q")
    assert (LAYOUT.field[p45[q_block]] == LAYOUT.fields.index("U")).all()
    iqu = CoefficientLayout(fields=("I", "Q", "U"))
    assert (iqu.field[rotate45_permutation(iqu)[iqu.select(field="I")]] == 0).all()
    with pytest.raises(DustvaeError, match="Q and U"):
        rotate45_permutation(CoefficientLayout(fields=("Q",)))
    with pytest.raises(DustvaeError, match="unknown symmetry"):
        symmetry_permutation(LAYOUT, "rot45")
