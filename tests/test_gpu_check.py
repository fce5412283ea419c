"""``dustvae doctor`` and ``scripts/gpu_check.py``: the machine checks, run on the CPU as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from dustvae import doctor

from conftest import run_here

ROOT = Path(__file__).resolve().parents[1]


def test_doctor_reports_versions_budget_devices_and_passes_on_the_cpu():
    proc = run_here("doctor", "--device", "cpu", check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("dustvae 0.") and "torch" in lines[1] and "kymatio" in lines[1]
    assert "budget" in lines[2] and lines[3].startswith("devices: cpu")
    checks = [line for line in lines if line.startswith(("ok ", "FAIL", "skip"))]
    assert [line.split(":")[0].split(maxsplit=2)[2] for line in checks] == [name for name, _ in doctor.CHECKS]
    assert all(line.startswith("ok ") for line in checks), checks
    assert lines[-1] == "3 of 3 checks passed"


def test_doctor_fails_with_status_2_when_a_check_fails(tmp_path, monkeypatch):
    """A reference store moved by more than the tolerance fails its line and the exit status; the others still run."""
    wrong = tmp_path / "reference_coeffs.h5"
    wrong.write_bytes(doctor.REFERENCE_COEFFS.read_bytes())
    with h5py.File(wrong, "r+") as h5:
        h5["coeffs"][0, 0] += 1e-3  # ten times the tolerance: a change of convention would move it this much
    monkeypatch.setattr(doctor, "REFERENCE_COEFFS", wrong)
    lines = []
    assert doctor.main([torch.device("cpu")], echo=lines.append) == 2
    assert lines[4].startswith("FAIL cpu     reference WST") and "1.0e-03" in lines[4]
    assert lines[5].startswith("ok ") and lines[-1].endswith("1 FAILED")


def test_doctor_refuses_an_unknown_device():
    proc = run_here("doctor", "--device", "cuda:7")
    assert proc.returncode == 2 and proc.stderr.startswith("dustvae: error: device 'cuda:7' is not visible")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tiny CPU mode only (with a GPU the script runs its full sizes)")
def test_gpu_check_runs_every_check_on_the_cpu_at_tiny_sizes(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1", DUSTVAE_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0] == "gpu_check: no CUDA GPU is visible; running the same checks on the CPU at tiny sizes"
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    checks = report["checks"]
    assert list(checks) == ["doctor", "equality", "throughput", "training", "resume", "synthesis", "torchrun"]
    assert all(c["passed"] for c in checks.values()), {k: c.get("error") for k, c in checks.items()}
    # Killed after exactly one epoch and resumed within the check's tolerance (its "passed" above). Bit-identity is
    # asserted by tests/test_models.py's killed-training test; here, run beside other tests, a resumed run was once
    # 6.8e-6 (max weight) from the uninterrupted one while identical when run alone: not yet explained.
    assert checks["resume"]["epochs_before_kill"] == 1 and checks["resume"]["killed_status"] == -9
    assert checks["resume"]["max_abs_weight_difference"] < 1e-4
    assert checks["torchrun"]["ranks"] == 2
    assert {r["engine"] for r in checks["throughput"]["rows"]} == {"batched", "kymatio"}
    assert all(np.isfinite(r["patches_per_s"]) for r in checks["throughput"]["rows"])
    page = (tmp_path / "gpu_check.rst").read_text()
    assert page.startswith("GPU check\n") and "cpu, tiny sizes" in page
