"""Reading and writing: sky maps (FITS), patch files, coefficient stores and latent files (HDF5).

The names below load their module on first use (astropy and h5py are
imported by the modules that need them, not by the package).
"""

from importlib import import_module

_EXPORTS = {
    "atomic_path": ".atomic", "sha256sum": ".atomic", "LatentSet": ".latents", "read_latents": ".latents",
    "write_latents": ".latents", "FlatMap": ".maps", "HealpixMap": ".maps", "read_map": ".maps",
    "write_flat_map": ".fits_files", "write_healpix_map": ".fits_files", "PatchSet": ".patchfile",
    "read_patches": ".patchfile", "write_patches": ".patchfile", "CoefficientStore": ".store",
    "StoreReader": ".store", "open_store": ".store", "read_store": ".store", "write_store": ".store_writer",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
