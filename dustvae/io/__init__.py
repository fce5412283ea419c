"""Reading and writing: sky maps (FITS), patch files and coefficient stores (HDF5)."""

from .maps import FlatMap, HealpixMap, read_map, write_flat_map, write_healpix_map
from .atomic import atomic_path, sha256sum

__all__ = [
    "FlatMap",
    "HealpixMap",
    "read_map",
    "write_flat_map",
    "write_healpix_map",
    "atomic_path",
    "sha256sum",
]
