"""Reading and writing: sky maps (FITS), patch files, coefficient stores and latent files (HDF5)."""

from .atomic import atomic_path, sha256sum
from .latents import LatentSet, read_latents, write_latents
from .maps import FlatMap, HealpixMap, read_map, write_flat_map, write_healpix_map
from .patchfile import PatchSet, read_patches, write_patches
from .store import CoefficientStore, StoreReader, open_store, read_store
from .store_writer import write_store

__all__ = [
    "atomic_path", "sha256sum", "LatentSet", "read_latents", "write_latents", "FlatMap", "HealpixMap",
    "read_map", "write_flat_map", "write_healpix_map", "PatchSet", "read_patches", "write_patches",
    "CoefficientStore", "StoreReader", "open_store", "read_store", "write_store",
]
