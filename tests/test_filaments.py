"""The filament sky behaves as Huffenberger et al. 2020 and DustFilaments say.

Every spectrum statistic is averaged over three seeds; the tolerances are a
few times the seed-to-seed scatter we measured (stated per test).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.stats import kurtosis

from dustvae.sky.filaments import FilamentParams, power_spectra_teb, simulate_filaments
from dustvae.sky.simulate import DustParams, power_spectrum_slope

from conftest import assert_user_error, run_here

SEEDS = (1, 2, 3)
#: k = 8..64 on 256 px: many modes per bin, filaments resolved along their length.
BINS = np.geomspace(8, 64, 7)


def _spectrum_ratios(size: int = 256, **population) -> tuple[float, float]:
    """Seed-averaged mean over bins of BB/EE and of TE / sqrt(TT EE)."""
    ratios = []
    for seed in SEEDS:
        params = FilamentParams(**population, field=DustParams(turbulence=0.5, seed=seed))
        spectra = power_spectra_teb(simulate_filaments(size, params), BINS)
        ratios.append([np.mean(spectra["BB"] / spectra["EE"]),
                       np.mean(spectra["TE"] / np.sqrt(spectra["TT"] * spectra["EE"]))])
    return tuple(np.mean(ratios, axis=0))


def test_bb_over_ee_falls_as_filaments_get_thinner():
    # Perfectly aligned filaments: a thin filament polarized across its length is
    # pure E at scales between its width and its length, so B/E falls with epsilon.
    # Spheres (epsilon = 1) carry no orientation: E = B. Measured (3 seeds):
    # 0.20, 0.30, 0.55, 0.96 with seed scatter below 0.04.
    ratios = [_spectrum_ratios(axis_ratio=eps, misalignment=0.0)[0] for eps in (0.16, 0.25, 0.5, 1.0)]
    assert np.all(np.diff(ratios) > 0.05), ratios
    assert ratios[-1] == pytest.approx(1.0, abs=0.15)


def test_bb_over_ee_near_half_at_the_papers_axis_ratio():
    # Huffenberger et al. 2020 reproduce Planck's BB/EE = 0.5 with epsilon ~ 0.25.
    # In this model that holds with a modest misalignment (20 degrees rms, the
    # default; DustFilaments uses 10, Huffenberger et al. 50): measured 0.53.
    bb_ee, _ = _spectrum_ratios(axis_ratio=0.25, misalignment=20.0)
    assert bb_ee == pytest.approx(0.5, abs=0.1)


def test_te_positive_when_aligned_and_vanishing_when_random():
    # Filaments along B are polarized across their length: positive TE. A growing
    # misalignment decorrelates shape and polarization angle. Measured correlation
    # coefficients 0.83, 0.64, 0.46 and 0.05 at 90 degrees rms (seed scatter below 0.05).
    te = [_spectrum_ratios(misalignment=angle)[1] for angle in (0.0, 30.0, 40.0, 90.0)]
    assert te[0] > 0.6
    assert np.all(np.diff(te) < -0.05), te
    assert abs(te[-1]) < 0.1


@pytest.mark.parametrize("gamma", [2.2, 2.8])
def test_polarization_spectrum_slope_follows_the_size_distribution(gamma):
    # Scaling argument (module docstring): P(k) ~ k^(gamma - 7 + 2 eta) between
    # 1/L_max and 1/(epsilon L_min). With L = 4..256 px on 512 px and a fit over
    # k = 4..32 (a factor 3 inside both ends) we measured -2.67 and -2.16 for the
    # predicted -2.8 and -2.2; the 0.3 tolerance covers the finite range.
    predicted = gamma - 7.0 + 2.0 * 1.0
    slopes = []
    for seed in SEEDS[:2]:
        params = FilamentParams(size_slope=gamma, min_length=4, max_length=256, field=DustParams(seed=seed))
        maps = simulate_filaments(512, params)
        slopes += [power_spectrum_slope(maps[f], kmin=4, kmax=32) for f in ("Q", "U")]
    assert np.mean(slopes) == pytest.approx(predicted, abs=0.3)


def _phase_randomised(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian field with exactly the power spectrum of ``image``."""
    amplitude = np.abs(np.fft.rfft2(image - image.mean()))
    phases = np.exp(1j * np.angle(np.fft.rfft2(rng.standard_normal(image.shape))))
    return np.fft.irfft2(amplitude * phases, s=image.shape) + image.mean()


def test_maps_are_non_gaussian_where_gaussian_fields_are_not():
    # Sparse, bright filaments give heavy tails in I and in P = |Q + iU|; a field
    # with the same spectrum and random phases is Gaussian (excess kurtosis 0 for I;
    # P of two independent Gaussian fields is Rayleigh-like, excess kurtosis 0.25).
    # Measured: I 1.2-1.7, P 1.1-1.4 for the filaments; the randomised copies stay within 0.3 of theirs.
    rng = np.random.default_rng(0)
    maps = simulate_filaments(256, FilamentParams(field=DustParams(turbulence=0.5, seed=4)))
    gauss = {f: _phase_randomised(maps[f], rng) for f in ("I", "Q", "U")}
    k_i, k_p = kurtosis(maps["I"].ravel()), kurtosis(np.hypot(maps["Q"], maps["U"]).ravel())
    g_i, g_p = kurtosis(gauss["I"].ravel()), kurtosis(np.hypot(gauss["Q"], gauss["U"]).ravel())
    assert k_i > 0.8 and k_p > 0.5, (k_i, k_p)
    assert abs(g_i) < 0.3 and abs(g_p - 0.25) < 0.4, (g_i, g_p)


def test_diffuse_weight_mixes_in_the_turbulence_simulator():
    field = DustParams(seed=5)
    pure = simulate_filaments(64, FilamentParams(field=field))
    half = simulate_filaments(64, FilamentParams(diffuse_weight=0.5, field=field))
    from dustvae.sky.simulate import simulate_flat

    diffuse = simulate_flat(64, field)
    expected = 0.5 * pure["Q"] + 0.5 * diffuse["Q"] / diffuse["I"].mean()
    np.testing.assert_allclose(half["Q"], expected, rtol=1e-10, atol=1e-12)
    assert half["I"].mean() == pytest.approx(1.0)


def test_seeded_physical_and_labelled():
    a = simulate_filaments(64, FilamentParams(field=DustParams(seed=9)))
    b = simulate_filaments(64, FilamentParams(field=DustParams(seed=9)))
    c = simulate_filaments(64, FilamentParams(field=DustParams(seed=10)))
    np.testing.assert_array_equal(a["U"], b["U"])
    assert not np.allclose(a["U"], c["U"])
    p = np.hypot(a["Q"], a["U"]) / a["I"]
    assert (a["I"] > 0).all() and p.max() <= 0.26 + 1e-9
    params = FilamentParams(axis_ratio=0.2)
    assert FilamentParams.from_header(params.to_header()) == params
    assert {"axis_ratio", "size_slope", "misalignment", "slope", "seed"} <= set(params.labels())


def test_bad_parameters_are_explained():
    from dustvae.errors import DustvaeError

    with pytest.raises(DustvaeError, match="axis_ratio"):
        FilamentParams(axis_ratio=2.0)
    with pytest.raises(DustvaeError, match="max_length"):
        simulate_filaments(32, FilamentParams(max_length=128))


def test_cli_simulates_filaments_with_parameters_in_header(tmp_path):
    out = tmp_path / "fil.fits"
    run_here("simulate", out, "--model", "filaments", "--size", 128, "--seed", 1, "--axis-ratio", 0.2, check=True)
    header = fits.getheader(out, "Q")
    assert header["SIMMODEL"] == "filaments"
    assert FilamentParams.from_header(header) == FilamentParams(axis_ratio=0.2, field=DustParams(seed=1))
    assert fits.getdata(out, "U").shape == (128, 128)
    assert_user_error(run_here("simulate", tmp_path / "b.fits", "--model", "filaments", "--nside", 16), "--size")
    assert_user_error(run_here("simulate", tmp_path / "c.fits", "--model", "filaments", "--size", 64,
                              "--misalignment", 500), "misalignment")
