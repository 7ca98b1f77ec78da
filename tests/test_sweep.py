"""Sweeps are resumable: a stopped sweep (test hook, or a killed process) continues where it
stopped, never losing or repeating a finished point; every append is atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from hw_models.errors import DataError, FileFormatError
from neuroemu.cli import EXIT_INTERRUPT, main
from neuroemu.sweep import SweepFile, read_sweep

pytest.importorskip("sklearn")

SMALL = ["sweep", "digits", "--calibration", "digits-train", "--calib-samples", "100",
         "--data", "digits", "--samples", "60", "--steps", "24", "-q"]
GRID = ["ecc_b3", "ecc_b4", "ecc_b6", "robust_b3", "robust_b4", "robust_b6"]


def test_sweep_file_atomic_roundtrip(tmp_path):
    p = tmp_path / "s.h5"
    sf = SweepFile(p, {"steps": 4}, ["a", "b"])
    sf.add("a", {"accuracy": np.arange(4.0), "counters": {"spikes": 7}, "note": [1, None]})
    with pytest.raises(DataError):
        sf.add("a", {})
    sf2 = SweepFile(p, {"steps": 4})
    assert sf2.done == ["a"] and sf2.grid == ["a", "b"]
    pts = read_sweep(p)["points"]
    assert list(pts) == ["a"] and pts["a"]["counters"]["spikes"] == 7
    np.testing.assert_array_equal(pts["a"]["accuracy"], np.arange(4.0))
    with pytest.raises(DataError, match="different settings"):
        SweepFile(p, {"steps": 5})
    # a temporary file left by a killed writer (its pid no longer runs; an old-style name
    # older than ten minutes) is removed, the sweep file untouched; a running one's is kept
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".s.h5.{dead.pid}.abc.tmp"
    old = tmp_path / ".s.h5.abc.tmp"
    live = tmp_path / f".s.h5.{os.getppid()}.abc.tmp"
    for f in (stale, old, live):
        f.write_bytes(b"partial")
    os.utime(old, (0, 0))
    SweepFile(p, {"steps": 4})
    assert not stale.exists() and not old.exists() and live.exists()


def test_truncated_sweep_refused(tmp_path):
    p = tmp_path / "s.h5"
    SweepFile(p, {"x": 1}, ["a"]).add("a", {"accuracy": np.zeros(100)})
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(FileFormatError, match="truncated"):
        SweepFile(p, {"x": 1})


def test_interrupted_sweep_resumes_without_loss_or_repeat(tmp_path, capsys):
    out = tmp_path / "sweep.h5"
    args = SMALL + ["--bits", "3,4,6", "--methods", "ecc,robust", "-o", str(out)]
    assert main(args + ["--stop-after", "2"]) == EXIT_INTERRUPT
    assert "resume" in capsys.readouterr().err
    first = read_sweep(out)["points"]
    assert list(first) == GRID[:2]
    stamps = {k: p["finished"] for k, p in first.items()}
    os.environ.pop("NEUROEMU_SWEEP_STOP_AFTER", None)
    assert main(args + ["--stop-after", "1"]) == EXIT_INTERRUPT   # one more, then stop again
    os.environ.pop("NEUROEMU_SWEEP_STOP_AFTER", None)
    assert main(args) == 0
    os.environ.pop("NEUROEMU_SWEEP_STOP_AFTER", None)
    sw = read_sweep(out)
    assert list(sw["points"]) == GRID                               # nothing lost
    with h5py.File(out) as f:
        assert sorted(f["points"]) == sorted(GRID)                  # nothing repeated
    for k, s in stamps.items():
        assert sw["points"][k]["finished"] == s                     # finished points untouched
    for p in sw["points"].values():
        assert p["accuracy"].shape == (24,) and p["predictions_final"].shape == (60,)
        assert p["synops_per_sample"] > 0 and p["energy_per_sample"] > 0
    assert sw["points"]["ecc_b6"]["accuracy"][-1] > 0.5
    # rerunning a finished sweep does no work and changes nothing
    before = out.read_bytes()
    assert main(args) == 0
    assert read_sweep(out)["points"].keys() == sw["points"].keys()
    assert len(out.read_bytes()) == len(before)
    # different fixed settings are refused instead of mixed in
    bad = [a if a != "24" else "25" for a in args]
    assert main(bad) == 1
    assert "different settings" in capsys.readouterr().err


def test_killed_sweep_process_resumes(tmp_path):
    out = tmp_path / "sweep.h5"
    args = SMALL + ["--bits", "2:6", "--methods", "ecc,robust", "-o", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "neuroemu", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    try:
        while time.time() < deadline and proc.poll() is None:
            if out.exists():
                try:
                    if len(read_sweep(out)["points"]) >= 2:
                        break
                except FileFormatError:
                    pass
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = list(read_sweep(out)["points"])      # the file is whole after a kill
    if proc.returncode == -signal.SIGKILL:              # killed mid-sweep, not finished
        assert 2 <= len(done_before) < 10
    assert main(args) == 0
    sw = read_sweep(out)
    expected = [f"{m}_b{b}" for m in ("ecc", "robust") for b in range(2, 7)]
    assert list(sw["points"]) == expected
    assert set(done_before) <= set(sw["points"])
    assert not list(tmp_path.glob(".sweep.h5.*.tmp"))
