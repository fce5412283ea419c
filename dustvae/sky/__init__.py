"""The sky: simulated dust maps and the patches cut from maps.

The names below load their module on first use, so that importing one
simulator does not load the FITS and HEALPix readers the patches need.
"""

from importlib import import_module

_EXPORTS = {"DustParams": ".simulate", "simulate_flat": ".simulate", "simulate_healpix": ".simulate",
            "cut_patches": ".patches", "flat_patches": ".patches", "healpix_patches": ".patches"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
