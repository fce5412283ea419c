"""What to synthesise: target vectors with the size, amplitude, level and provenance of their maps.

A target comes from a row of a coefficient store (a patch's own WST, or any
compressor's reconstruction written as a store), from a patch of a map or
patch file (its WST is computed here), or from a trained VAE (a prior
sample, a decoded latent from ``dustvae encode``, or the reconstruction of a
store row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import defaults
from .._version import __version__
from ..errors import DustvaeError
from ..io.atomic import sha256sum
from ..io.store import CoefficientStore, read_store
from ..sky.patches import check_patch_size
from ..wst.layout import CoefficientLayout


@dataclass
class Target:
    """A normalised WST vector to synthesise, and what is known of its map.

    Attributes
    ----------
    vector : ndarray (D,)
        Normalised log2 vector (the store's space).
    layout : CoefficientLayout
        Fields, J and L of the vector.
    size : int
        Side of the map to synthesise, in pixels (a multiple of ``2**J``).
    amplitude : float
        Polarization amplitude A of the patch (NaN when unknown: model
        samples and decoded latents); the synthesised map is multiplied by it.
    mean : ndarray (F,) or None
        ``S0`` of each field of the amplitude-normalised patch (the store's
        ``s0``, its low-passed mean); None or NaN when unknown, and the
        synthesis then has zero mean.
    pixel_scale_arcmin : float
        Pixel side, NaN when unknown.
    header : dict
        Provenance as FITS cards (keys of at most 8 characters).
    original : ndarray (F, n, n) or None
        The patch itself, when the target was computed from a map.
    boundary : {"periodic", "reflect"}
        The boundary mode the vector was computed with (a store's, or the
        training store's for a model's vectors); the synthesis uses the
        same operator unless told otherwise.
    """

    vector: np.ndarray
    layout: CoefficientLayout
    size: int
    amplitude: float = float("nan")
    mean: np.ndarray | None = None
    pixel_scale_arcmin: float = float("nan")
    header: dict = field(default_factory=dict)
    original: np.ndarray | None = None
    boundary: str = "periodic"

    def __post_init__(self) -> None:
        if self.boundary not in defaults.BOUNDARIES:
            raise DustvaeError(f"unknown boundary {self.boundary!r}; use reflect or periodic")
        self.vector = np.asarray(self.vector, dtype=np.float32).ravel()
        if len(self.vector) != len(self.layout):
            raise DustvaeError(f"target has {len(self.vector)} coefficients but the layout needs {len(self.layout)}")
        check_patch_size(self.size, self.layout.J, "map size", "choose another `size`")

    @property
    def amplitude_known(self) -> bool:
        return bool(np.isfinite(self.amplitude) and self.amplitude > 0)

    def scale(self) -> float:
        """The factor that restores the map's units: A when known, else 1 (normalised units)."""
        return float(self.amplitude) if self.amplitude_known else 1.0



def _base_header(kind: str, source: str | Path | None) -> dict:
    header = {"SYNSRC": kind, "DUSTVAE": __version__}
    if source is not None:
        path = Path(source)
        header["SYNFILE"] = path.name
        if path.is_file():
            header["SYNSHA"] = sha256sum(path)
    return header


def _check_rows(rows: Sequence[int], n: int, what: str) -> list[int]:
    rows = [int(r) for r in rows]
    if not rows:
        raise DustvaeError("no rows selected; give `rows`")
    bad = [r for r in rows if not 0 <= r < n]
    if bad:
        raise DustvaeError(f"row {bad[0]} is out of range; the {what} has {n} rows (0..{n - 1})")
    return rows


def targets_from_store(store: CoefficientStore, rows: Sequence[int], *, size: int | None = None,
                       source: str | Path | None = None, kind: str = "store") -> list[Target]:
    """Targets from rows of a coefficient store (amplitude and mean from the store)."""
    rows = _check_rows(rows, len(store), "store")
    layout = CoefficientLayout.from_attrs(store.attrs)
    size = int(size if size is not None else store.attrs.get("patch_size") or defaults.DATASET_PATCH_SIZE)
    scale = float(store.attrs.get("pixel_scale_arcmin", float("nan")))
    base = _base_header(kind, source)
    boundary = str(store.attrs.get("boundary") or "periodic")
    out = []
    for row in rows:
        header = {**base, "SYNROW": row, "SYNBOUND": boundary}
        for key in ("reconstructed_by", "sampled_by", "interpolated_by"):
            if key in store.attrs:
                header["SYNMODEL"] = str(store.attrs[key])
        out.append(Target(vector=store.coeffs[row], layout=layout, size=size, amplitude=float(store.amplitude[row]),
                          mean=store.s0[row], pixel_scale_arcmin=scale, header=header, boundary=boundary))
    return out


def targets_from_store_file(path: str | Path, rows: Sequence[int], *, size: int | None = None) -> list[Target]:
    """Targets from rows of a store file."""
    return targets_from_store(read_store(path), rows, size=size, source=path)


def targets_from_map_file(path: str | Path, rows: Sequence[int], *, fields: Sequence[str] = defaults.FIELDS,
                          patch_size: int | None = None, size: int | None = None, J: int = defaults.J,
                          L: int = defaults.L, device: str = "cpu", frame: str | None = None,
                          freq_ghz: float | None = None) -> list[Target]:
    """Targets from patches of a FITS map or a patch file; their WST is computed first.

    The synthesis has the patch's side unless ``size`` is given.

    A flat map is taken whole when ``patch_size`` is not given (it must
    then be square with a side that is a multiple of ``2**J``); HEALPix maps
    are cut into patches of ``patch_size`` (default ``defaults.PATCH_SIZE``)
    as ``dustvae patches`` cuts them. The transform uses the periodic
    boundary for whole periodic maps and reflection otherwise, as
    ``dustvae compute-wst`` does. ``frame`` and ``freq_ghz`` are passed to
    :func:`~dustvae.io.maps.read_map`.
    """
    from ..io.maps import FlatMap, read_map
    from ..io.patchfile import is_patch_file, read_patches
    from ..sky.patches import cut_patches
    from ..wst.compute import compute_store

    path = Path(path)
    if not path.exists():
        raise DustvaeError(f"{path}: no such file; check the path")
    if is_patch_file(path):
        patch_set = read_patches(path)
    else:
        sky = read_map(path, fields, frame=frame, freq_ghz=freq_ghz)
        if patch_size is None:
            if isinstance(sky, FlatMap):
                shape = next(iter(sky.fields.values())).shape
                if shape[0] != shape[1]:
                    raise DustvaeError(f"{path}: the map is {shape[0]} x {shape[1]} pixels; give `patch_size` to cut square patches")
                patch_size = shape[0]
            else:
                patch_size = defaults.PATCH_SIZE
        check_patch_size(patch_size, J)
        patch_set = cut_patches(sky, patch_size)
        if len(patch_set) == 0:
            raise DustvaeError(f"{path}: every patch exceeds the masked fraction; nothing to synthesise")
    rows = _check_rows(rows, len(patch_set), "map's patch list")
    boundary = "periodic" if patch_set.periodic else "reflect"
    keep = np.asarray(rows)
    sub = type(patch_set)(patches=patch_set.patches[keep], fields=patch_set.fields, centers=patch_set.centers[keep],
                          center_frame=patch_set.center_frame, masked_fraction=patch_set.masked_fraction[keep],
                          pixel_scale_arcmin=patch_set.pixel_scale_arcmin, periodic=patch_set.periodic)
    store = compute_store(sub, None, J=J, L=L, boundary=boundary, device=device, progress=False)
    targets = targets_from_store(store, range(len(rows)), size=size, source=path, kind="map")
    for target, row, patch in zip(targets, rows, sub.patches):
        target.header["SYNROW"] = row
        target.original = patch.astype(np.float64)
    return targets


def _model(run: str | Path, device: str):
    from ..models.checkpoint import load_model
    from ..devices import resolve_device

    model, payload = load_model(run, resolve_device(device))
    return model, payload


def _model_layout(payload: dict, source: str | Path) -> CoefficientLayout:
    layout = payload.get("layout") or {}
    if "vector_length" not in layout:
        raise DustvaeError(f"{source}: checkpoint lacks its store layout; it is damaged or too old")
    return CoefficientLayout.from_attrs(layout)


def _model_boundary(payload: dict) -> str:
    """The boundary of the store the model was trained on (periodic when the checkpoint does not say)."""
    return str((payload.get("layout") or {}).get("boundary") or "periodic")


def targets_from_prior(run: str | Path, count: int, *, seed: int = 0, prior: str = "normal", size: int | None = None,
                       device: str = "cpu") -> list[Target]:
    """Vectors decoded from ``count`` seeded draws of a trained VAE's prior; amplitude unknown.

    ``prior`` is ``"normal"`` (N(0, I)) or ``"fitted"`` (the density fitted
    to the training latents by ``dustvae fit-prior``).
    """
    from ..models.apply import load_fitted_prior, sample_array

    if prior not in defaults.PRIORS:
        raise DustvaeError(f"unknown prior {prior!r}; use normal or fitted")
    if count < 1:
        raise DustvaeError(f"`sample` must be positive, got {count}")
    model, payload = _model(run, device)
    density = load_fitted_prior(model, run) if prior == "fitted" else None
    vectors = sample_array(model, count, seed, density)
    layout = _model_layout(payload, run)
    size = int(size if size is not None else defaults.DATASET_PATCH_SIZE)
    out = []
    for index, vector in enumerate(vectors):
        header = {**_base_header("prior", None), "SYNMODEL": model.name, "SYNCKPT": Path(run).name,
                  "SYNPRIOR": prior, "SYNZSEED": int(seed), "SYNZIDX": index}
        out.append(Target(vector=vector, layout=layout, size=size, header=header, boundary=_model_boundary(payload)))
    return out


def targets_from_latents(run: str | Path, latent_file: str | Path, rows: Sequence[int], *, size: int | None = None,
                         device: str = "cpu") -> list[Target]:
    """Vectors decoded from the latent means of rows of a latent file (``dustvae encode``); amplitude unknown."""
    from ..io.latents import read_latents
    from ..models.apply import decode_array

    model, payload = _model(run, device)
    latents = read_latents(latent_file)
    if latents.mean.ndim != 2 or latents.mean.shape[1] != model.latent_dim:
        raise DustvaeError(f"{latent_file}: latents have {latents.mean.shape[-1]} dimensions but {model.name} has {model.latent_dim}")
    rows = _check_rows(rows, len(latents.mean), "latent file")
    vectors = decode_array(model, latents.mean[rows])
    layout = _model_layout(payload, run)
    size = int(size if size is not None else defaults.DATASET_PATCH_SIZE)
    base = _base_header("latent", latent_file)
    out = []
    for row, vector in zip(rows, vectors):
        header = {**base, "SYNROW": row, "SYNMODEL": model.name, "SYNCKPT": Path(run).name}
        out.append(Target(vector=vector, layout=layout, size=size, header=header, boundary=_model_boundary(payload)))
    return out


def targets_from_reconstruction(run: str | Path, store_path: str | Path, rows: Sequence[int], *,
                                size: int | None = None, device: str = "cpu") -> list[Target]:
    """A VAE's reconstructions (posterior mean, decoded) of store rows, with the rows' amplitude and mean."""
    from ..models.apply import reconstruct_store

    model, payload = _model(run, device)
    store = read_store(store_path)
    rows = _check_rows(rows, len(store), "store")
    recon = reconstruct_store(model, payload, store.subset(np.asarray(rows)), Path(store_path).name)
    targets = targets_from_store(recon, range(len(rows)), size=size if size is not None else store.attrs.get("patch_size"),
                                 source=store_path, kind="reconstruction")
    for target, row in zip(targets, rows):
        target.header.update({"SYNROW": row, "SYNMODEL": model.name, "SYNCKPT": Path(run).name})
    return targets
