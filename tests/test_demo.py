"""``neuroemu demo --quick`` end to end, as a fresh user runs it: one folder with the network,
result, sweep, six plots and a text + JSON summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")


def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "neuroemu", "demo", "--quick", "-q", "-o",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert str(out.resolve()) in proc.stdout and "demo finished" in proc.stdout
    for name in ("summary.txt", "summary.json", "feasibility.txt", "feasibility.json",
                 "network.h5", "result.h5", "sweep.h5"):
        assert (out / name).stat().st_size > 100, name
    for kind in ("raster", "accuracy", "bits", "energy", "rates", "cores"):
        assert (out / f"{kind}.png").stat().st_size > 10_000, kind
    s = json.loads((out / "summary.json").read_text())
    ev = s["evaluation"]
    assert s["feasible"] and s["profile"] == "loihi1"
    assert ev["final_accuracy"] > 0.85 and ev["float_accuracy"] > 0.9
    assert ev["energy_per_sample_j"] > 0 and ev["ann_macs_per_sample"] == 84224
    assert {p["bits"] for p in s["sweep"].values()} == {3, 4, 6, 8}
    assert "weight-bit sweep" in (out / "summary.txt").read_text()
