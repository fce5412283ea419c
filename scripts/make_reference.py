"""Write the regression reference: a small map in data/ and its coefficients.

Run from the repository root (it overwrites the files)::

    .venv/bin/python scripts/make_reference.py

It simulates a HEALPix map (nside 32, seed 2024, default parameters), writes
it in Planck's layout to ``data/reference_map.fits``, and runs
``dustvae compute-wst`` on it with 32-px patches into
``data/reference_coeffs.h5``. ``tests/test_regression.py`` recomputes the
coefficients from the map and compares them with the stored ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dustvae.doctor import REFERENCE_BATCH, REFERENCE_COEFFS, REFERENCE_MAP, REFERENCE_PATCH_SIZE
from dustvae.io.maps import write_healpix_map
from dustvae.sky.simulate import DustParams, simulate_healpix

ROOT = Path(__file__).resolve().parents[1]
#: The files and the command the regression test and ``dustvae doctor`` repeat: their one home is dustvae.doctor.
MAP, COEFFS = REFERENCE_MAP, REFERENCE_COEFFS
COMMAND_OPTIONS = ["--patch-size", str(REFERENCE_PATCH_SIZE), "--batch-size", str(REFERENCE_BATCH), "--quiet"]


def main() -> None:
    params = DustParams(seed=2024)
    maps = simulate_healpix(32, params)
    write_healpix_map(MAP, {k: maps[k] for k in ("I", "Q", "U")}, extra_header=params.to_header(), overwrite=True)
    subprocess.run([sys.executable, "-m", "dustvae", "compute-wst", str(MAP), "-o", str(COEFFS), "--overwrite",
                    *COMMAND_OPTIONS], check=True)
    print(f"wrote {MAP.relative_to(ROOT)} and {COEFFS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
