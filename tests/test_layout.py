"""The coefficient layout: sizes, index round trips, and its order and angles against Kymatio's own metadata and filters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dustvae.wst.kymatio_operator import kymatio_operator
from dustvae.wst.layout import CoefficientLayout
from dustvae.wst.transform import scattering_operator


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sizes_for_design_convention():
    layout = CoefficientLayout()
    assert (layout.n_s1, layout.n_s2, layout.per_field, len(layout)) == (40, 640, 680, 1360)
    assert len(CoefficientLayout(fields=("I", "Q", "U"))) == 2040


def test_every_index_round_trips():
    layout = CoefficientLayout()
    for i in range(len(layout)):
        d = layout.describe(i)
        assert layout.index(d["field"], d["layer"], d["j1"], d["l1"], d["j2"], d["l2"]) == i


@pytest.mark.parametrize("boundary", ["reflect", "periodic"])
@pytest.mark.parametrize(("J", "L"), [(5, 8), (3, 6)])
def test_order_follows_kymatio_metadata(J, L, boundary):
    """Each path of Kymatio's output (out_type='list') carries its scales and angles; the layout lists them in that order."""
    op = kymatio_operator(32, J, L, boundary, out_type="list")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2, 32, 32)).astype(np.float32))
    with torch.inference_mode():
        paths = op(x)
    layout = CoefficientLayout(fields=("Q", "U"), J=J, L=L)
    assert len(paths) == 1 + layout.per_field and paths[0]["j"] == ()
    for k, path in enumerate(paths[1:]):
        for f, field in enumerate(layout.fields):
            row = layout.describe(f * layout.per_field + k)
            assert row["field"] == field
            if len(path["j"]) == 1:
                assert (row["layer"], row["j1"], row["l1"]) == (1, path["j"][0], path["theta"][0])
            else:
                assert (row["layer"], row["j1"], row["l1"], row["j2"], row["l2"]) == (2, path["j"][0], path["theta"][0],
                                                                                      path["j"][1], path["theta"][1])
    # The operator's array output (what the transform averages) stacks the paths in that same order.
    with torch.inference_mode():
        stacked = scattering_operator(32, J, L, boundary)(x)
    for k, path in enumerate(paths):
        assert torch.equal(stacked[:, :, k], path["coef"])


def test_angles_match_kymatio_filters():
    """Angle index l of the layout is the orientation of Kymatio's wavelet l: the direction of its Fourier centroid."""
    op = kymatio_operator(64, 5, 8, "periodic")
    freq = np.fft.fftfreq(64)
    rows, cols = np.meshgrid(freq, freq, indexing="ij")  # Kymatio's filters: first axis x, second y
    layout = CoefficientLayout()
    checked = 0
    for wavelet in op.psi:
        if wavelet["j"] not in (1, 2):  # well inside the 64-px band: no wrap-around, many samples
            continue
        power = np.asarray(wavelet["levels"][0], dtype=np.float64) ** 2
        centroid = np.arctan2((power * cols).sum(), (power * rows).sum())
        expected = layout.angles[wavelet["theta"]]
        # orientations are defined modulo pi
        gap = (centroid - expected + np.pi / 2) % np.pi - np.pi / 2
        assert abs(gap) < np.deg2rad(1.0), (wavelet["theta"], np.rad2deg(centroid), np.rad2deg(expected))
        checked += 1
    assert checked == 2 * layout.L  # one step of pi / L is 22.5 degrees: a shifted index cannot pass
    assert layout.angles[layout.L // 2 - 1] == 0.0
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
