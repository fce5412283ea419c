"""Gradient descent on a map until its normalised WST matches a target vector.

The operator is the one that made the vector: Kymatio's reflection padding
for sky patches (a store's ``boundary`` attribute, carried by the target),
the periodic one for periodic maps. The synthesised map is then a patch
whose reflection-padded statistics are the target's, not a periodic tile
(``scripts/validate_sky_synthesis.py`` compares the two operators).

The loss is the mean squared difference, over the coefficients, between the
map's normalised vector and the target: the square of the log2 RMSE that
compressors are judged by, in the space the store uses. The map lives in
amplitude-normalised units (the store's vectors describe the patch divided
by its amplitude A); A multiplies the result at the end.

The level of each field is not in the loss, and need not be: every
wavelet of the bank has zero mean, so under either boundary (a reflected
constant is a constant) ``S1`` and ``S2`` are exactly unchanged when a
constant is added to a field, and
the gradient of the loss sums to zero over the pixels. Gradient steps
(L-BFGS directions are sums of gradients) therefore never move the mean.
The WST vector cannot fix it, and Q and U maps may have a mean of any value
(it depends on the mean field's direction and on the polarization reference
frame), so the level is set rather than fitted: ``S0``, the spatial mean of
the low-passed map, is linear in the map with unit gain for a constant, so
adding ``S0_target - S0(map)`` to a field matches the stored ``S0`` exactly
and leaves the fitted statistics untouched. Without a known ``S0`` (model
samples, decoded latents) each field gets zero mean. ``S0`` is not exactly
the mean: Kymatio's low-pass also passes a little of the modes at multiples
of ``size / 2**J`` cycles per map (below 1% of the amplitude on 64-pixel
patches of the simulator).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import defaults
from ..numerics import rmse
from ..errors import DustvaeError
from ..memory import check_memory
from ..wst.transform import padded_size
from .envelopes import EnvelopeMoments
from .targets import Target
from .vector import WSTVector

OPTIMIZERS = defaults.SYNTHESIS_OPTIMIZERS
#: Weight of the envelope statistics' mean squared difference against the WST's (both without units). At 1, 300
#: iterations on 64-px maps reach 0.013-0.047 log2 on the WST and 0.004-0.016 RMS on the envelope statistics
#: (``scripts/diagnose_synthesis.py --envelopes``).
ENVELOPE_WEIGHT = 1.0
#: Past L-BFGS steps used to approximate the inverse Hessian.
LBFGS_HISTORY = 50
#: Peak memory of a synthesis on the CPU per map pixel (J = 5, L = 8): measured 2.4-2.6 KB per pixel added from
#: 256 to 1024 px (0.65, 1.13 and 2.95 GB at 256, 512 and 1024 px), with a margin.
SYNTHESIS_BYTES_PER_PIXEL = 3072
_CHUNK = 10  # L-BFGS iterations per optimiser call (each call re-evaluates the loss once)


@dataclass
class Synthesis:
    """A synthesised map and how it was obtained.

    Attributes
    ----------
    maps : ndarray (F, n, n)
        The map with the target's amplitude restored (in normalised units
        when the amplitude is unknown).
    normalised : ndarray (F, n, n)
        The map in amplitude-normalised units, as the optimiser saw it.
    vector : ndarray (D,)
        Its normalised WST vector.
    history : list of (int, float)
        ``(iterations done, loss)``: at the start, every few iterations, and at the end.
    seed : int
        Seed of the initial white noise.
    optimizer : str
    iterations : int
        Iterations run (fewer than asked when L-BFGS converged).
    seconds : float
        Wall time of the optimisation.
    evaluations : int
        Evaluations of the loss with its gradient.
    engine : str
        How the scattering means were computed.
    constraints : str
        What was matched (``defaults.SYNTHESIS_CONSTRAINTS``).
    envelope_rmse : float or None
        With ``constraints="wst+envelopes"``: RMS difference of the result's
        envelope statistics from the original's.
    boundary : str
        The WST operator's boundary mode.
    """

    maps: np.ndarray
    normalised: np.ndarray
    vector: np.ndarray
    history: list[tuple[int, float]]
    seed: int
    optimizer: str
    iterations: int
    seconds: float
    evaluations: int
    engine: str = defaults.ENGINE
    constraints: str = "wst"
    envelope_rmse: float | None = None
    boundary: str = "periodic"

    @property
    def initial_loss(self) -> float:
        """Loss of the initial noise."""
        return self.history[0][1]

    @property
    def final_loss(self) -> float:
        """Loss of the returned map."""
        return self.history[-1][1]

    def rmse(self, target: np.ndarray) -> float:
        """Log2 RMSE of this map's vector against ``target``."""
        return rmse(self.vector, target)


def initial_map(target: Target, seed: int) -> torch.Tensor:
    """White Gaussian noise of unit amplitude and zero mean, (1, F, n, n).

    Drawn on the CPU from ``seed``, so a seed gives the same start on every device.
    """
    generator = torch.Generator().manual_seed(int(seed))
    n_fields = len(target.layout.fields)
    noise = torch.randn((1, n_fields, target.size, target.size), generator=generator, dtype=torch.float64)
    noise -= noise.mean(dim=(-2, -1), keepdim=True)
    return (noise / math.sqrt(n_fields)).float()


def set_level(x: torch.Tensor, target: Target, wst: WSTVector) -> torch.Tensor:
    """Shift each field so that its ``S0`` is the target's (or, when unknown, its mean is zero)."""
    if target.mean is None or not np.isfinite(target.mean).all():
        return x - x.mean(dim=(-2, -1), keepdim=True)
    s0 = wst.means(x)[0]
    goal = torch.as_tensor(np.asarray(target.mean, dtype=np.float32), device=x.device)
    return x + (goal - s0)[..., None, None]


@contextlib.contextmanager
def _torch_threads(count: int | None):
    """Run with ``count`` intra-op CPU threads (None: leave as is), and restore the setting after."""
    if count is None:
        yield
        return
    if count < 1:
        raise DustvaeError(f"`threads` must be at least 1, got {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def synthesize(
    target: Target,
    *,
    steps: int = defaults.SYNTHESIS_STEPS,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    engine: str = defaults.ENGINE,
    threads: int | None = defaults.SYNTHESIS_THREADS,
    progress: bool = True,
    description: str = "synthesis",
    initial: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    constraints: str = defaults.SYNTHESIS_CONSTRAINTS[0],
    boundary: str | None = None,
) -> Synthesis:
    """Synthesise a map whose normalised WST matches ``target.vector``.

    Parameters
    ----------
    target : Target
        Vector, layout, map size, amplitude and level (see :class:`Target`).
    steps : int
        Iterations: L-BFGS iterations (each may evaluate the loss more than
        once in its line search) or Adam steps. L-BFGS stops sooner when it
        converges.
    optimizer : {"lbfgs", "adam"}
        L-BFGS with a strong-Wolfe line search (the field's usual choice), or Adam.
    lr : float, optional
        Step size: 1 for L-BFGS (its line search scales it), ``defaults.SYNTHESIS_ADAM_LR`` for Adam.
    seed : int
        Seed of the initial white noise.
    device : torch device or str
    engine : {"batched", "kymatio"}
        How the scattering means are computed (:func:`~dustvae.wst.transform.means_operator`).
    threads : int or None
        Intra-op CPU threads while optimising (restored after); None keeps
        torch's setting. One thread is the default: it never oversubscribes
        a shared machine, and the tensors of maps up to a few hundred pixels
        are small, so that more threads gain little and, on a loaded
        machine, lose much (``scripts/bench_synthesis.py`` measures both).
    progress : bool
        Show a progress bar with the current loss.
    description : str
        The progress bar's label.
    initial : ndarray (F, n, n), optional
        The starting map, in amplitude-normalised units [default: white
        noise from ``seed``, :func:`initial_map`].
    weights : ndarray (D,), optional
        Non-negative weight of each coefficient in the loss (normalised to
        mean 1) [default: all equal].
    constraints : {"wst", "wst+envelopes"}
        Match the WST vector only, or also the envelope statistics of the
        target's original map (:mod:`dustvae.synthesis.envelopes`: how the
        envelopes of scales and fields line up, and each scale's sparsity;
        65 numbers for Q, U), which the vector leaves free and the pixel
        distribution's tails depend on. Needs ``target.original`` (targets
        computed from a map).
    boundary : {"reflect", "periodic"}, optional
        The WST operator's boundary [default: ``target.boundary``, the mode
        the vector was computed with].

    Returns
    -------
    Synthesis
    """
    with _torch_threads(threads):
        return _synthesize(target, steps, optimizer, lr, seed, torch.device(device), engine, progress, description,
                           initial, weights, constraints, target.boundary if boundary is None else boundary)


def _envelope_goal(target: Target, constraints: str, device: torch.device) -> tuple[EnvelopeMoments | None, torch.Tensor | None]:
    """The envelope statistics to match, and the function computing them (None, None for the WST alone)."""
    if constraints not in defaults.SYNTHESIS_CONSTRAINTS:
        raise DustvaeError(f"unknown `constraints` {constraints!r}; use {' or '.join(defaults.SYNTHESIS_CONSTRAINTS)}")
    if constraints == "wst":
        return None, None
    if target.original is None:
        raise DustvaeError("the envelope statistics are computed from the original map, and this target has none "
                           "(it is a stored or decoded vector); synthesise a map file's patch, or use `constraints` wst")
    if target.original.shape[-1] != target.size:
        raise DustvaeError(f"the envelope statistics come from the {target.original.shape[-1]}-px original; "
                           f"synthesise at that size, not {target.size}")
    if not np.isfinite(target.original).all():
        raise DustvaeError("the original patch has masked (non-finite) pixels, and the envelope statistics need every "
                           "pixel; choose a patch without masked pixels, or use `constraints` wst")
    moments = EnvelopeMoments(target.size, target.layout.J, target.layout.L, device)
    goal = moments.of_map(target.original / target.scale())
    return moments, torch.as_tensor(goal, dtype=torch.float32, device=device)


def _synthesize(target: Target, steps: int, optimizer: str, lr: float | None, seed: int, device: torch.device,
                engine: str, progress: bool, description: str, initial: np.ndarray | None = None,
                weights: np.ndarray | None = None, constraints: str = "wst", boundary: str = "periodic") -> Synthesis:
    if optimizer not in OPTIMIZERS:
        raise DustvaeError(f"unknown optimizer {optimizer!r}; use lbfgs or adam")
    if steps < 1:
        raise DustvaeError(f"`steps` must be positive, got {steps}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise DustvaeError(f"`lr` {lr} must be a positive number (leave it out for the optimizer's default)")
    if boundary not in defaults.BOUNDARIES:
        raise DustvaeError(f"unknown `boundary` {boundary!r}; use reflect or periodic")
    if device.type == "cpu":  # on a GPU the work is in the GPU's memory; the padded map is what is transformed
        side = padded_size(target.size, target.layout.J, boundary)
        check_memory(side**2 * SYNTHESIS_BYTES_PER_PIXEL, f"a synthesis of {target.size} x {target.size} pixels",
                     "choose a smaller `size`")
    wst = WSTVector(target.size, target.layout.J, target.layout.L, device, engine, boundary)
    goal = torch.from_numpy(np.asarray(target.vector, dtype=np.float32)).to(device)
    if not torch.isfinite(goal).all():
        raise DustvaeError("the target vector has non-finite entries; it cannot be synthesised")
    shape = (len(target.layout.fields), target.size, target.size)
    if initial is not None and np.shape(initial) != shape:
        raise DustvaeError(f"the initial map has shape {np.shape(initial)}; the target needs {shape}")
    start = initial_map(target, seed) if initial is None else torch.from_numpy(np.asarray(initial, np.float32)[None])
    x = start.to(device).requires_grad_(True)
    weight = torch.ones_like(goal) if weights is None else torch.as_tensor(np.asarray(weights, np.float32), device=device)
    if weight.shape != goal.shape or not (torch.isfinite(weight).all() and (weight >= 0).all() and weight.sum() > 0):
        raise DustvaeError(f"`weights` must be {len(goal)} non-negative finite numbers, not all zero")
    weight = weight / weight.mean()
    moments, moments_goal = _envelope_goal(target, constraints, device)
    evaluations, latest = [0], [math.nan]

    def loss_of(y: torch.Tensor) -> torch.Tensor:
        loss = torch.mean(weight * (wst(y)[0] - goal) ** 2)
        if moments is not None:
            loss = loss + ENVELOPE_WEIGHT * torch.mean((moments(y[0]) - moments_goal) ** 2)
        return loss

    if optimizer == "lbfgs":
        # max_eval: torch's default (1.25 evaluations per iteration) would end a chunk early whenever the
        # line search needs a few tries; the step count is meant as iterations.
        opt = torch.optim.LBFGS([x], lr=1.0 if lr is None else lr, max_iter=_CHUNK, max_eval=4 * _CHUNK, history_size=LBFGS_HISTORY,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-12)
    else:
        opt = torch.optim.Adam([x], lr=defaults.SYNTHESIS_ADAM_LR if lr is None else lr)

    def closure() -> torch.Tensor:
        evaluations[0] += 1
        opt.zero_grad()
        loss = loss_of(x)
        loss.backward()
        latest[0] = float(loss.detach())
        return loss

    history: list[tuple[int, float]] = []
    bar = tqdm(total=steps, desc=description, unit="it", disable=not progress, leave=False)
    tic = time.perf_counter()
    done = 0
    while done < steps:
        if optimizer == "lbfgs":
            opt.param_groups[0]["max_iter"] = min(_CHUNK, steps - done)
            opt.param_groups[0]["max_eval"] = 4 * opt.param_groups[0]["max_iter"]
            # Each call first evaluates the loss where it starts: exactly the loss after `done` iterations.
            history.append((done, float(opt.step(closure).detach())))
            advanced = int(opt.state[x]["n_iter"]) - done
        else:
            history.append((done, float(opt.step(closure).detach())))  # Adam's closure runs before its step
            advanced = 1
        if not math.isfinite(latest[0]):
            bar.close()
            raise DustvaeError("synthesis diverged (non-finite loss); use `optimizer` lbfgs or a smaller `lr`")
        if advanced == 0:  # L-BFGS converged: the gradient or the loss no longer changes
            break
        done += advanced
        bar.update(advanced)
        bar.set_postfix(loss=f"{latest[0]:.3g}")
    bar.close()
    with torch.no_grad():
        y = set_level(x.detach(), target, wst)  # the WST does not see it; see the module docstring
        vector = wst(y)[0]
        final = float(loss_of(y))
        envelope_rmse = None if moments is None else float(torch.sqrt(torch.mean((moments(y[0]) - moments_goal) ** 2)))
    seconds = time.perf_counter() - tic
    if history and history[-1][0] == done:  # L-BFGS converged: that entry is this point
        history.pop()
    history.append((done, final))
    normalised = y[0].double().cpu().numpy()
    return Synthesis(
        maps=normalised * target.scale(), normalised=normalised, vector=vector.cpu().numpy(),
        history=history, seed=int(seed), optimizer=optimizer, iterations=done, seconds=seconds,
        evaluations=evaluations[0], engine=engine, constraints=constraints, envelope_rmse=envelope_rmse,
        boundary=boundary,
    )
