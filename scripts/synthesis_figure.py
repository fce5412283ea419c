"""What each compression keeps, as maps: syntheses from each compressor's reconstruction of test patches.

Run: ``.venv/bin/python scripts/synthesis_figure.py [runs/default] [--patches 4] [--steps 300] [--workers 2]``
after ``make demo`` (or ``scripts/make_figures.py``).

For ``--patches`` test patches of the run's store (one per test map, filament
and turbulence maps alternating), the original Q/U patch is simulated again
from the store's recorded dataset spec (:func:`dustvae.dataset.regenerate_patches`,
which checks its amplitude against the store). A map is synthesised
(L-BFGS, periodic boundary, :func:`dustvae.synthesis.synthesize`) from

* the patch's own WST vector (``wst``: what the full statistics keep),
* the reconstructions of that vector by VAE-2, VAE-1, RWST Model 2 and
  PCA-85 (and any VAE variant the results file holds),

every one from the same initial noise and with the patch's amplitude and
level; and, for the figure only, a few maps from VAE-2's fitted latent prior.
Each synthesis is compared with the original patch
(:func:`dustvae.synthesis.compare.compare`: power per octave band within the
WST's reach, Wasserstein-1 distance of the pixel values in units of their
std), and so is a Gaussian random field with the original's power spectrum
(the reference a statistics-free model reaches). Means over the patches go
to ``results.json`` under ``synthesis``; the figure of the first patch to
``figures/synthesis.pdf/png`` (the PNG also to ``docs/_generated/``). Finished syntheses are kept in
``synthesis/maps.npz`` and reused when the script runs again.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from dustvae import defaults
from dustvae.analysis import registry
from dustvae.analysis.results import read_results, write_results
from dustvae.baselines import PCACompressor, RWSTCompressor
from dustvae.io.atomic import atomic_path
from dustvae.io.store import read_store
from dustvae.models.apply import fit_latent_prior, sample_array
from dustvae.models.checkpoint import load_model
from dustvae.models.compressor import VAECompressor
from dustvae.synthesis import Target, synthesize
from dustvae.synthesis.compare import compare, gaussian_counterpart, summarise
from dustvae.analysis.synthesis_figure import fig_synthesis, save_figure
from dustvae.dataset import regenerate_patches
from dustvae.wst.layout import CoefficientLayout

DOCS_IMAGE = Path(__file__).resolve().parents[1] / "docs" / "_generated" / "synthesis.png"
#: Compressors synthesised, besides the variants in the results file.
COMPRESSORS = ("vae-85", "vae-170", "rwst2", "pca-85")


def choose_rows(store, count: int) -> list[int]:
    """``count`` test rows, one per map (the map's first patch), filament and turbulence maps alternating."""
    test = np.flatnonzero(store.split == 2)
    firsts = [int(r) for r in test if r == test[np.argmax(store.map_index[test] == store.map_index[r])]]
    kind = store.labels.get("filaments")
    if kind is None:
        return firsts[:count]
    pools = [[r for r in firsts if kind[r] == value] for value in (1.0, 0.0)]
    rows = []
    while len(rows) < count and any(pools):
        for pool in pools:
            if pool and len(rows) < count:
                rows.append(pool.pop(0))
    return rows


def _run(job: tuple) -> tuple[str, np.ndarray, float, float]:
    key, target, steps, seed = job
    result = synthesize(target, steps=steps, seed=seed, threads=1, progress=False)
    return key, result.maps, result.final_loss, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", default=Path(defaults.DEMO_RUN))
    parser.add_argument("--patches", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2, help="Maps from VAE-2's fitted prior in the figure.")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="Syntheses run in this many one-thread processes.")
    args = parser.parse_args()
    results_path = args.run / "results.json"
    results = read_results(results_path)
    store = read_store(args.run / "data.h5")
    layout = CoefficientLayout.from_attrs(store.attrs)
    size = int(store.attrs["patch_size"])
    rows = choose_rows(store, args.patches)
    originals = regenerate_patches(store, rows)
    train = store.subset("train").coeffs

    checkpoints = {n: Path(c["path"]) for n, c in results["inputs"]["checkpoints"].items()}
    names = [n for n in registry.ordered(set(COMPRESSORS) | {n for n in checkpoints if "+" in n})
             if n in checkpoints or not registry.is_vae(n)]
    compressors = {}
    for name in names:
        if registry.is_vae(name):
            compressors[name] = VAECompressor(load_model(checkpoints[name], "cpu")[0])
        elif name.startswith("rwst"):
            compressors[name] = RWSTCompressor(int(name[-1]), layout)
        else:
            compressors[name] = PCACompressor(int(name.split("-")[1])).fit(train)
    vectors = {"wst": store.coeffs[rows]}
    vectors.update({name: c.reconstruct(store.coeffs[rows]) for name, c in compressors.items()})
    vae2 = compressors["vae-85"].model
    prior = fit_latent_prior(vae2, train)
    prior_vectors = sample_array(vae2, args.samples, 0, prior)

    jobs = []
    for k, row in enumerate(rows):  # every synthesis of one patch starts from the same noise (seed = row)
        for name, vec in vectors.items():
            target = Target(vec[k], layout, size, amplitude=float(store.amplitude[row]), mean=store.s0[row])
            jobs.append((f"{name}:{row}", target, args.steps, row))
    for s in range(args.samples):
        jobs.append((f"prior{s + 1}:-", Target(prior_vectors[s], layout, size), args.steps, 10_000 + s))

    cache_path = args.run / "synthesis" / "maps.npz"
    cache = dict(np.load(cache_path)) if cache_path.exists() else {}
    todo = [job for job in jobs if job[0] not in cache]
    print(f"{len(jobs)} syntheses of {size}-px maps ({len(jobs) - len(todo)} reused), {args.steps} L-BFGS iterations, "
          f"{args.workers} processes", flush=True)
    tic = time.perf_counter()
    seconds = []
    if todo:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
            for key, maps, loss, secs in pool.map(_run, todo):
                cache[key] = maps
                seconds.append(secs)
                print(f"  {key}: final loss {loss:.3g} in {secs:.0f} s", flush=True)
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(cache_path) as tmp:
                    with open(tmp, "wb") as handle:
                        np.savez(handle, **cache)

    per_compressor = {}
    for name in vectors:
        pairs = [(originals[k], cache[f"{name}:{row}"]) for k, row in enumerate(rows)]
        per_compressor[name] = summarise(pairs, layout.J)
    gaussians = [(originals[k], gaussian_counterpart(originals[k], seed=row)) for k, row in enumerate(rows)]
    per_compressor["gaussian"] = summarise(gaussians, layout.J)
    kurtosis = {name: float(np.mean([compare(originals[k], cache[f"{name}:{row}"], layout.J)["kurtosis_synthesis"]
                                     for k, row in enumerate(rows)])) for name in vectors}
    synthesis = {
        "rows": rows, "patch_size": size, "steps": args.steps, "optimizer": "lbfgs", "boundary": "periodic",
        "seeds": "seed = store row, shared by every synthesis of a patch",
        "filaments": [float(store.labels["filaments"][r]) for r in rows] if "filaments" in store.labels else None,
        "kurtosis_original": float(np.mean([compare(o, o, layout.J)["kurtosis_original"] for o in originals])),
        "kurtosis_synthesis": kurtosis,
        "compressors": per_compressor,
        "seconds_per_map_median": float(np.median(seconds)) if seconds else None,
        "wall_seconds": time.perf_counter() - tic,
    }
    results = read_results(results_path)  # re-read: only the synthesis entry changes
    results["synthesis"] = synthesis
    write_results(results_path, results)
    for name, row in per_compressor.items():
        print(f"{name:>14}: spectrum RMS {row['spectrum_rms_log2']:.3f} log2, pixel W1 {row['pixel_distance']:.3f}")

    first = rows[0]
    shown = {name: cache[f"{name}:{first}"] for name in vectors}
    shown.update({f"prior{s + 1}": cache[f"prior{s + 1}:-"] for s in range(args.samples)})
    labels = {f"prior{s + 1}": f"VAE-2 fitted prior {s + 1}" for s in range(args.samples)}
    paths = save_figure(fig_synthesis(originals[0], shown, fields=layout.fields, labels=labels),
                        args.run / "figures" / "synthesis")
    with atomic_path(DOCS_IMAGE) as tmp:  # the docs show the PNG of this run
        shutil.copyfile(paths[1], tmp)
    print("wrote", ", ".join(map(str, paths)), DOCS_IMAGE, "and the synthesis entry of", results_path)


if __name__ == "__main__":
    main()
