"""The coefficient layout: sizes, Kymatio's order and angles, index round trips."""

from __future__ import annotations

import numpy as np

from dustvae.wst.layout import CoefficientLayout, kymatio_angles


def test_sizes_for_design_convention():
    layout = CoefficientLayout()
    assert (layout.n_s1, layout.n_s2, layout.per_field, len(layout)) == (40, 640, 680, 1360)
    assert len(CoefficientLayout(fields=("I", "Q", "U"))) == 2040


def test_every_index_round_trips():
    layout = CoefficientLayout()
    for i in range(len(layout)):
        d = layout.describe(i)
        assert layout.index(d["field"], d["layer"], d["j1"], d["l1"], d["j2"], d["l2"]) == i


def test_kymatio_order_and_angles():
    layout = CoefficientLayout()
    # second layer of Q starts at (j1=0, l1=0, j2=1, l2=0); j2 and l2 run fastest
    first = layout.describe(40)
    assert (first["j1"], first["l1"], first["j2"], first["l2"]) == (0, 0, 1, 0)
    assert layout.describe(41)["l2"] == 1 and layout.describe(48)["j2"] == 2
    assert layout.describe(680)["field"] == "U"
    np.testing.assert_allclose(kymatio_angles(8), (3 - np.arange(8)) * np.pi / 8)
    assert np.isnan(layout.theta2[0]) and layout.theta1[layout.index("Q", 1, 2, 3)] == 0.0


def test_select_and_parents():
    layout = CoefficientLayout()
    pair = layout.select(field="U", layer=2, j1=1, j2=3)
    assert len(pair) == 64 and (layout.j2[pair] == 3).all()
    parent = layout.parent_s1()
    i = layout.index("U", 2, 1, 5, 3, 2)
    assert parent[i] == layout.index("U", 1, 1, 5)
    assert (parent[layout.select(layer=1)] == -1).all()
    assert CoefficientLayout.from_attrs(layout.to_attrs()) == layout
