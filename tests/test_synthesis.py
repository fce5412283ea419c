"""Synthesis of maps from WST vectors: the differentiable WST, the fit, what the maps look like, the command.

The validation case is a 64-pixel log-normal map from the simulator
(intensity_sigma = 1, far from Gaussian: excess kurtosis 3.7), written to a
FITS file and synthesised back from its own WST with 100 L-BFGS iterations.
Thresholds and what this case measured (one CPU thread, seed 0):

* loss down at least 300-fold (measured 929-fold);
* the WST of the returned map, recomputed through Kymatio, within 0.05
  log2 RMSE of the target (0.034);
* every octave band of the power spectrum within a factor 2**0.5, i.e.
  |log2 ratio| <= 0.5 (at most 0.16);
* pixel values closer to the original (Wasserstein-1 over the pixel std:
  0.116) than any of five Gaussian fields with exactly the original's
  spectrum (0.141 to 0.151), and a larger excess kurtosis (0.65 against
  |0.06| at most) -- though far from the original's 3.7.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.io import fits

from dustvae.cli import main
from dustvae.errors import DustvaeError
from dustvae.io.maps import read_map, write_flat_map
from dustvae.io.store import read_store
from dustvae.sky.patches import cut_patches
from dustvae.sky.simulate import DustParams, simulate_flat
from dustvae.synthesis import Target, WSTVector, synthesize, targets_from_map_file
from dustvae.synthesis.compare import (excess_kurtosis, gaussian_counterpart, in_reach, octave_edges, pixel_distance,
                                       spectrum_error, summarise)
from dustvae.analysis.synthesis_figure import fig_synthesis, save_figure
from dustvae.synthesis.output import output_paths, write_synthesis
from dustvae.synthesis.optimize import initial_map
from dustvae.wst.compute import compute_store
from dustvae.wst.layout import CoefficientLayout
from dustvae.wst.transform import normalise, prepare, scattering_means

from conftest import assert_user_error, run_here
from helpers import write_synthetic_store

SIZE = 64
STEPS = 100
LOSS_FACTOR = 300
WST_RMSE = 0.05
SPECTRUM_LOG2 = 0.5


def lognormal_maps(size: int = SIZE, seed: int = 3) -> dict[str, np.ndarray]:
    return simulate_flat(size, DustParams(seed=seed, intensity_sigma=1.0))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A non-Gaussian map in a FITS file, its target, and its synthesis."""
    path = tmp_path_factory.mktemp("synthesis") / "lognormal.fits"
    maps = lognormal_maps()
    write_flat_map(path, maps, pixel_scale_arcmin=5.0, periodic=True)
    (target,) = targets_from_map_file(path, [0])
    result = synthesize(target, steps=STEPS, seed=0, progress=False)
    return target, result


def test_engines_agree_with_the_store_values_and_with_each_other():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 32, 32)).astype(np.float32)
    x[:, :, :16] *= 3.0  # not stationary: every path differs
    means = scattering_means(x, boundary="periodic", engine="kymatio")
    stored = normalise(means.s1, means.s2, CoefficientLayout())  # Kymatio's values, normalised as the store does
    grads = []
    for engine in ("batched", "kymatio"):
        wst = WSTVector(32, engine=engine)
        y = torch.from_numpy(x).requires_grad_(True)
        vector = wst(y)
        np.testing.assert_allclose(vector.detach().numpy(), stored, atol=2e-5)
        (vector * torch.linspace(-1, 1, vector.shape[1])).sum().backward()
        grads.append(y.grad.numpy())
        np.testing.assert_allclose(wst.means(torch.from_numpy(x))[0].numpy(), means.s0, atol=1e-6)
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-4 * np.abs(grads[1]).max())


def test_the_vector_does_not_see_the_mean_so_the_loss_needs_no_level_term():
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 2, 32, 32)).astype(np.float32)).requires_grad_(True)
    wst = WSTVector(32)
    shifted = wst(x + torch.tensor([0.7, -2.0])[None, :, None, None])
    np.testing.assert_allclose(shifted.detach().numpy(), wst(x).detach().numpy(), atol=2e-5)
    wst(x).square().sum().backward()
    per_field = x.grad.sum(dim=(-2, -1)).abs().max()
    assert per_field < 1e-4 * x.grad.abs().sum()


def test_loss_falls_and_the_maps_wst_matches_the_target(case):
    target, result = case
    assert result.iterations == STEPS
    assert result.initial_loss / result.final_loss >= LOSS_FACTOR
    # Recomputed independently, through Kymatio and the store's normalisation, from the returned map.
    x, amp = prepare(result.maps[None], target.layout.fields)
    means = scattering_means(x, boundary="periodic", engine="kymatio")
    vector = normalise(means.s1, means.s2, target.layout)[0]
    assert np.sqrt(np.mean((vector - target.vector) ** 2)) <= WST_RMSE


def test_amplitude_and_level_are_restored(case):
    target, result = case
    original = target.original
    amplitude = np.sqrt(np.mean(np.sum(result.maps**2, axis=0)))
    assert amplitude == pytest.approx(target.amplitude, rel=0.1)
    s0 = scattering_means((result.maps / target.amplitude)[None].astype(np.float32), boundary="periodic").s0[0]
    np.testing.assert_allclose(s0, target.mean, atol=1e-4)
    # S0 is nearly the mean; so the synthesis keeps the original's mean level.
    np.testing.assert_allclose(result.maps.mean(axis=(1, 2)), original.mean(axis=(1, 2)), atol=0.02 * target.amplitude)


def test_within_reach_removes_only_the_modes_beyond_the_largest_wavelet():
    from dustvae.synthesis.compare import within_reach

    y, x = np.mgrid[:128, :128] * (2 * np.pi / 128)
    coarse, fine = np.cos(x), np.sin(3 * y) + np.cos(8 * x + 2 * y)  # |k| = 1; |k| = 3 and sqrt(68)
    np.testing.assert_allclose(within_reach(np.stack([coarse + fine + 2.0])), [fine + 2.0], atol=1e-12)
    assert not in_reach(128)[0] and in_reach(128)[1:].all()  # the same edge: 2 cycles per map at J = 5
    small = np.cos(x[:64, :64])  # 64 px: every mode is within reach
    np.testing.assert_allclose(within_reach(small), small, atol=1e-12)


def test_power_spectrum_matches_per_octave(case):
    target, result = case
    error = spectrum_error(target.original, result.maps)
    assert len(error) == len(octave_edges(SIZE)) - 1 == 5
    assert in_reach(SIZE).all()  # at 64 px every band is within the wavelets' reach
    assert np.all(np.abs(error) <= SPECTRUM_LOG2), error
    # The yardstick is sound: a white-noise map of the same amplitude fails it.
    noise = np.random.default_rng(0).standard_normal(result.maps.shape) * result.maps.std()
    assert np.abs(spectrum_error(target.original, noise)).max() > 2


def test_pixel_distribution_is_closer_than_a_gaussian_field_with_the_same_spectrum(case):
    target, result = case
    original = target.original
    assert excess_kurtosis(original) > 2  # the input is far from Gaussian
    gaussians = [gaussian_counterpart(original, seed) for seed in range(5)]
    for g in gaussians:
        np.testing.assert_allclose(spectrum_error(original, g), 0, atol=1e-9)
    assert pixel_distance(original, result.maps) < min(pixel_distance(original, g) for g in gaussians)
    assert excess_kurtosis(result.maps) > max(excess_kurtosis(g) for g in gaussians)
    summary = summarise([(original, result.maps)])
    assert summary["n"] == 1 and summary["pixel_distance"] == pytest.approx(pixel_distance(original, result.maps))


def small_target(seed: int = 0) -> Target:
    maps = lognormal_maps(32, seed)
    x, amp = prepare(np.stack([maps["Q"], maps["U"]])[None], ("Q", "U"))
    means = scattering_means(x, boundary="periodic")
    layout = CoefficientLayout()
    return Target(normalise(means.s1, means.s2, layout)[0], layout, 32, amplitude=float(amp[0]), mean=means.s0[0])


def test_a_start_at_the_original_stays_there_and_weights_shape_the_loss():
    maps = lognormal_maps(32, 0)
    original = np.stack([maps["Q"], maps["U"]])
    target = small_target(0)
    start = original / target.amplitude  # the original in the optimiser's units: its vector is the target
    result = synthesize(target, steps=3, progress=False, initial=start)
    assert result.initial_loss < 1e-9  # float32 rounding of the vector only
    np.testing.assert_allclose(result.maps, original, atol=1e-4 * np.abs(original).max())
    # All weight on the first layer: the starting loss is the mean squared error of that block alone.
    layer = target.layout.layer
    first = synthesize(target, steps=1, seed=2, progress=False, weights=(layer == 1).astype(float))
    noise = initial_map(target, 2)
    error = (WSTVector(32)(noise)[0].numpy() - target.vector) ** 2
    assert first.history[0][1] == pytest.approx(error[layer == 1].mean(), rel=1e-4)
    assert error[layer == 1].mean() != pytest.approx(error.mean(), rel=1e-2)  # so the weights changed the loss
    with pytest.raises(DustvaeError, match="`weights`"):
        synthesize(target, steps=1, progress=False, weights=-np.ones(len(layer)))
    with pytest.raises(DustvaeError, match="initial map has shape"):
        synthesize(target, steps=1, progress=False, initial=start[:1])


def _envelope_statistics_numpy(maps: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """The envelope statistics of :mod:`dustvae.synthesis.envelopes`, written out in float64 numpy."""
    moduli = np.abs(np.fft.ifft2(np.fft.fft2(maps)[:, None, None] * bank))  # (F, J, L, n, n)
    envelope = moduli.mean(2).reshape(len(maps), bank.shape[0], -1)
    J = bank.shape[0]
    within = [np.corrcoef(envelope[f][j], envelope[f][k])[0, 1] for f in range(len(maps)) for j in range(J)
              for k in range(j + 1, J)]
    cross = [np.corrcoef(envelope[0][j], envelope[1][k])[0, 1] for j in range(J) for k in range(J)]
    m1, m2, m4 = (np.mean(moduli**p, axis=(-2, -1)) for p in (1, 2, 4))
    sparsity = np.stack([np.log2(m2 / m1**2), np.log2(m4 / m2**2)], -1).mean(2)
    return np.concatenate([within, cross, sparsity.ravel()])


def test_envelope_statistics_equal_a_direct_computation_and_see_what_the_vector_does_not():
    from dustvae.synthesis.envelopes import EnvelopeMoments
    from dustvae.wst.kymatio_operator import wavelet_bank

    maps = lognormal_maps(32, 1)
    original = np.stack([maps["Q"], maps["U"]])
    moments = EnvelopeMoments(32)
    values = moments.of_map(original)
    assert len(values) == moments.count(2) == 65
    np.testing.assert_allclose(values, _envelope_statistics_numpy(original, wavelet_bank(32, 5, 8)), atol=2e-4)
    np.testing.assert_allclose(moments.of_map(3.0 * original + 5.0), values, atol=2e-4)  # no units, no level
    # The Gaussian counterpart has the original's spectrum; its envelopes line up much less across scales.
    gaussian = moments.of_map(gaussian_counterpart(original, 0))
    assert values[:20].mean() > gaussian[:20].mean() + 0.1


def test_the_envelope_constraint_needs_a_whole_original():
    maps = lognormal_maps(32, 0)
    target = small_target(0)
    with pytest.raises(DustvaeError, match="computed from the original map"):
        synthesize(target, steps=1, progress=False, constraints="wst+envelopes")
    with pytest.raises(DustvaeError, match="unknown `constraints`"):
        synthesize(target, steps=1, progress=False, constraints="pixels")
    target.original = np.stack([maps["Q"], maps["U"]])
    target.original[0, 3, 4] = np.nan
    with pytest.raises(DustvaeError, match="masked"):
        synthesize(target, steps=1, progress=False, constraints="wst+envelopes")


def test_the_envelope_statistics_bring_back_part_of_the_tail_of_p(case):
    """The 64-px log-normal map (excess kurtosis of P 5.0): the vector alone gives about 1; with the envelopes more than
    twice that, nearer the original (measured 3.25 at this seed; not yet the 30 % the fidelity goal asks, see the docs)."""
    from scipy.stats import kurtosis

    target, plain = case
    result = synthesize(target, steps=STEPS, seed=0, progress=False, constraints="wst+envelopes")

    def tail_of_p(maps: np.ndarray) -> float:  # written out: excess kurtosis of sqrt(Q**2 + U**2)
        return float(kurtosis(np.sqrt(maps[0] ** 2 + maps[1] ** 2).ravel(), fisher=True))

    original, alone, constrained = (tail_of_p(m) for m in (target.original, plain.maps, result.maps))
    assert original > 4 and constrained > 2 * alone
    assert abs(constrained - original) < 0.6 * abs(alone - original)
    assert result.rmse(target.vector) < 2 * WST_RMSE  # the vector is still matched
    # The statistics are matched: their distance, recomputed here, is the one reported and far below the plain one's.
    from dustvae.synthesis.envelopes import EnvelopeMoments

    moments = EnvelopeMoments(SIZE)
    goal = moments.of_map(target.original / target.amplitude)

    def distance(maps: np.ndarray) -> float:
        return float(np.sqrt(np.mean((moments.of_map(maps / target.amplitude) - goal) ** 2)))

    assert result.constraints == "wst+envelopes" and plain.envelope_rmse is None
    assert distance(result.maps) == pytest.approx(result.envelope_rmse, rel=1e-3, abs=1e-6)
    assert distance(result.maps) < 0.2 * distance(plain.maps)


def test_seeds_reproduce_and_adam_also_descends():
    target = small_target()
    a = synthesize(target, steps=5, seed=4, progress=False)
    b = synthesize(target, steps=5, seed=4, progress=False)
    c = synthesize(target, steps=5, seed=5, progress=False)
    np.testing.assert_array_equal(a.maps, b.maps)
    assert not np.allclose(a.maps, c.maps)
    adam = synthesize(target, steps=20, optimizer="adam", seed=4, progress=False)
    assert adam.final_loss < 0.5 * adam.initial_loss and adam.optimizer == "adam"


def test_unknown_amplitude_gives_normalised_zero_mean_maps(tmp_path):
    target = small_target()
    target.amplitude, target.mean = float("nan"), None
    result = synthesize(target, steps=3, progress=False)
    np.testing.assert_allclose(result.maps.mean(axis=(1, 2)), 0, atol=1e-6)
    path = write_synthesis(tmp_path / "s.fits", target, result)
    with fits.open(path) as hdul:
        assert hdul["Q"].header["AMPKNOWN"] is False and hdul["Q"].header["AMPLITUD"] == 1.0


def test_figure_draws_syntheses_beside_the_original(tmp_path, case):
    target, result = case
    syntheses = {"wst": result.maps, "vae-85": gaussian_counterpart(target.original, 1), "prior1": result.maps[:, ::-1]}
    paths = save_figure(fig_synthesis(target.original, syntheses), tmp_path / "synthesis")
    assert [p.suffix for p in paths] == [".pdf", ".png"] and all(p.stat().st_size > 5000 for p in paths)


def test_output_names_for_several_maps(tmp_path):
    assert output_paths(tmp_path / "s.fits", 1) == [tmp_path / "s.fits"]
    assert [p.name for p in output_paths(tmp_path / "s.fits", 12)][:2] == ["s_00.fits", "s_01.fits"]


# -- the command ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_file(tmp_path_factory):
    """A periodic 64-pixel map and its coefficient store, as `simulate` and `compute-wst` write them."""
    work = tmp_path_factory.mktemp("cli")
    maps = lognormal_maps()
    write_flat_map(work / "map.fits", maps, pixel_scale_arcmin=5.0, periodic=True)
    patch_set = cut_patches(read_map(work / "map.fits"), SIZE)
    compute_store(patch_set, work / "c.h5", boundary="periodic", progress=False)
    return work / "c.h5"


def cli_in_process(capsys, *args) -> tuple[int, str]:
    """The command's own entry point, in this process (the subprocess tests cover the real command)."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_synthesize_command_writes_a_fits_map_astropy_reads(tmp_path, store_file):
    proc = run_here("synthesize", store_file, "--row", 0, "-o", tmp_path / "s.fits", "--steps", 10, "--seed", 7, "--quiet", check=True)
    assert "wrote" in proc.stdout
    store = read_store(store_file)
    with fits.open(tmp_path / "s.fits") as hdul:
        q, u = hdul["Q"].data, hdul["U"].data
        header = hdul["Q"].header
    assert q.shape == u.shape == (64, 64) and np.isfinite(q).all() and np.isfinite(u).all()
    assert header["SYNSEED"] == 7 and header["SYNROW"] == 0 and header["SYNSRC"] == "store"
    assert header["SYNFILE"] == "c.h5" and len(header["SYNSHA"]) == 64 and header["PERIODIC"] is True
    assert header["AMPLITUD"] == pytest.approx(store.amplitude[0])
    # The loss in the header is the distance of the written map's WST (in the store's space) to the target.
    x = (np.stack([q, u])[None] / header["AMPLITUD"]).astype(np.float32)
    means = scattering_means(x, boundary="periodic")
    vector = normalise(means.s1, means.s2, CoefficientLayout())[0]
    assert np.mean((vector - store.coeffs[0]) ** 2) == pytest.approx(header["SYNLOSS"], rel=1e-3)
    assert header["SYNLOSS"] < 0.2 * header["SYNLOSS0"]


def test_synthesize_from_a_map_and_from_a_model(tmp_path, store_file, capsys):
    (target,) = targets_from_map_file(store_file.with_name("map.fits"), [0])
    np.testing.assert_allclose(target.vector, read_store(store_file).coeffs[0], atol=1e-6)
    data = write_synthetic_store(tmp_path / "data.h5", n=64, n_maps=8)
    code, err = cli_in_process(capsys, "train", data, "--latent", 85, "--epochs", 1, "--batch-size", 32, "--quiet",
                               "--device", "cpu", "-o", tmp_path / "run")
    assert code == 0, err
    run_here("synthesize", "--model", tmp_path / "run", "--sample", 2, "--size", 32, "--steps", 2, "--quiet",
            "-o", tmp_path / "p.fits", check=True)
    for k in range(2):
        with fits.open(tmp_path / f"p_{k}.fits") as hdul:
            header = hdul["U"].header
            assert hdul["U"].data.shape == (32, 32)
            assert header["SYNSRC"] == "prior" and header["SYNZIDX"] == k and header["SYNZSEED"] == 0
            assert header["SYNSEED"] == k and header["AMPKNOWN"] is False and header["SYNMODEL"] == "vae-85"
    code, err = cli_in_process(capsys, "encode", tmp_path / "run", data, "-o", tmp_path / "z.h5")
    assert code == 0, err
    code, err = cli_in_process(capsys, "synthesize", "--model", tmp_path / "run", "--latent-file", tmp_path / "z.h5",
                               "--row", 3, "--size", 32, "--steps", 1, "--quiet", "-o", tmp_path / "z.fits")
    assert code == 0, err
    with fits.open(tmp_path / "z.fits") as hdul:
        assert hdul["Q"].header["SYNSRC"] == "latent" and hdul["Q"].header["SYNROW"] == 3
    # The envelope statistics come from a map: from a map file they are matched, from a decoded latent refused.
    proc = run_here("synthesize", store_file.with_name("map.fits"), "--constraints", "wst+envelopes", "--steps", 2,
                    "--quiet", "-o", tmp_path / "e.fits", check=True)
    assert "envelope statistics" in proc.stdout
    with fits.open(tmp_path / "e.fits") as hdul:
        assert hdul["Q"].header["SYNCONST"] == "wst+envelopes" and hdul["Q"].header["SYNENVR"] > 0
    assert_user_error(run_here("synthesize", "--model", tmp_path / "run", "--latent-file", tmp_path / "z.h5", "--row", 3,
                               "--size", 32, "--steps", 1, "--constraints", "wst+envelopes", "-o", tmp_path / "y.fits"),
                      "computed from the original map", "--constraints wst")


def test_synthesize_bad_input_is_one_line(tmp_path, store_file, capsys):
    assert_user_error(run_here("synthesize", store_file, "--row", 5, "-o", tmp_path / "s.fits"), "out of range")
    assert_user_error(run_here("synthesize", "--sample", 2, "-o", tmp_path / "s.fits"), "--model")
    (tmp_path / "taken.fits").write_text("x")
    (tmp_path / "notes.txt").write_text("not a map")
    cases = [
        ((tmp_path / "missing.h5", "-o", tmp_path / "s.fits"), "no such file"),
        ((store_file, "--size", 40, "-o", tmp_path / "s.fits"), "2**J"),
        ((store_file, "-o", tmp_path / "taken.fits"), "exists"),
        ((tmp_path / "notes.txt", "-o", tmp_path / "s.fits"), "not a readable FITS"),
        ((store_file, "--threads", 0, "--steps", 1, "-o", tmp_path / "s.fits"), "--threads"),
        (("-o", tmp_path / "s.fits"), "nothing to synthesise"),
        ((store_file, "--model", tmp_path, "-o", tmp_path / "s.fits"), "no best.pt"),
    ]
    for args, fragment in cases:
        code, err = cli_in_process(capsys, "synthesize", *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("dustvae: error:"), (args, err)
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    assert not (tmp_path / "s.fits").exists()
