"""The ``neuroemu`` command driven as a user would: convert → fit → run → plot on the bundled
digits CNN, and every refusal (wrong data shape, truncated file, bad usage) as a one-line error
with the documented exit code."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from neuroemu.cli import EXIT_ERROR, EXIT_USAGE, main

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    net = d / "net.h5"
    rc = main(["convert", "digits", "--calibration", "digits-train", "--calib-samples", "200",
               "--eval-data", "digits", "-o", str(net), "-q"])
    assert rc == 0
    return net


def test_convert_stores_float_reference(net_file):
    from hw_models.network import CoreNetwork
    net = CoreNetwork.load(net_file)
    ref = net.meta["float_reference"]
    assert ref["samples"] == 497 and 0.9 < ref["accuracy"] <= 1.0
    assert net.meta["convert_options"]["method"] == "ecc"
    assert net.meta["convert_options"]["input_max"] == 16


def test_fit_text_and_json(net_file, capsys):
    assert main(["fit", str(net_file)]) == 0
    assert "loihi1" in capsys.readouterr().out
    assert main(["fit", str(net_file), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["profile"] == "loihi1" and d["violations"] == []


def test_fit_exit_3_when_limits_not_met(net_file, capsys):
    assert main(["fit", str(net_file), "--profile", "truenorth"]) == 3
    assert "violation" in capsys.readouterr().out.lower()


def test_run_report_and_plots(net_file, tmp_path, capsys):
    out = tmp_path / "run.h5"
    rc = main(["run", str(net_file), "--data", "digits", "--steps", "40", "--samples", "120",
               "--record", "conv1_relu,pool1,conv2_relu", "--detail", "predictions",
               "-o", str(out), "-q"])
    assert rc == 0
    text = capsys.readouterr().out
    for needle in ("accuracy at step 40", "float accuracy reached at", "agreement with the "
                   "float network", "synaptic operations per sample", "energy per sample on "
                   "loihi1", "ANN:", "latency", "NeuroBench: Footprint", "Effective_ACs"):
        assert needle in text, needle
    with h5py.File(out) as f:
        assert f.attrs["format"] == "neuroemu.Result"
        meta = json.loads(f.attrs["meta"])
        assert f["accuracy"].shape == (40,) and f["predictions"].shape == (40, 120)
        assert f["spikes/conv1_relu"].shape[1] == 3
        assert "spike_counts" not in f and f["spike_sum/conv1_relu"].ndim == 1  # not N x n
    assert meta["convert_options"]["weight_bits"] == 8 and meta["profile"] == "loihi1"
    assert meta["float_accuracy"] is not None and len(meta["agreement"]) == 40
    assert meta["report"]["energy"]["synaptic"] > 0
    nb = meta["report"]["neurobench"]
    assert nb["SynapticOperations"]["Effective_ACs"] > 0 and 0 < nb["ActivationSparsity"] < 1
    for kind in ("raster", "accuracy", "rates", "cores"):
        png = tmp_path / f"{kind}.png"
        assert main(["plot", kind, str(out), "-o", str(png)]) == 0
        assert png.stat().st_size > 10_000
    assert main(["plot", "cores", str(net_file), "-o", str(tmp_path / "c.png")]) == 0


def test_run_json_with_model_recomputes_float(net_file, capsys):
    assert main(["run", str(net_file), "--data", "digits", "--steps", "16", "--samples", "30",
                 "--model", "digits", "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["samples"] == 30 and d["float_accuracy"] is not None
    assert "recomputed" in d["float_source"]


def test_wrong_data_shape_refused_before_any_work(net_file, tmp_path, capsys, monkeypatch):
    import neuroemu.pipeline as pl

    def boom(*a, **k):
        raise AssertionError("the emulator must not start on wrong data")
    monkeypatch.setattr(pl, "_emulator_run", boom)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 28, 28), np.uint8), y=np.zeros(5, np.int64))
    assert main(["run", str(net_file), "--data", str(bad), "--steps", "10"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("neuroemu: error:") and "(28, 28)" in err and "(8, 8, 1)" in err
    assert err.count("\n") == 1
    # conversion refuses too, before calibrating
    assert main(["convert", "digits", "--calibration", str(bad), "-o",
                 str(tmp_path / "n.h5")]) == EXIT_ERROR
    assert not (tmp_path / "n.h5").exists()


def test_unknown_profile_refused_before_any_work(net_file, tmp_path, capsys, monkeypatch):
    """A misspelled --profile used to run the whole batch and then print no energy; it must be
    a one-line error before the emulator starts, with no result file."""
    import neuroemu.pipeline as pl

    def boom(*a, **k):
        raise AssertionError("the emulator must not start with an unknown profile")
    monkeypatch.setattr(pl, "_emulator_run", boom)
    out = tmp_path / "r.h5"
    assert main(["run", str(net_file), "--data", "digits", "--steps", "4", "--profile",
                 "loihii", "-o", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("neuroemu: error:") and "loihii" in err and "loihi1" in err
    assert not out.exists()


def test_values_out_of_range_refused(net_file, tmp_path, capsys):
    bad = tmp_path / "big.npz"
    np.savez(bad, x=np.full((4, 8, 8), 255, np.uint8), y=np.zeros(4, np.int64))
    assert main(["run", str(net_file), "--data", str(bad), "--steps", "10"]) == EXIT_ERROR
    assert "0..16" in capsys.readouterr().err


def test_truncated_files_refused(net_file, tmp_path, capsys):
    res = tmp_path / "r.h5"
    assert main(["run", str(net_file), "--data", "digits", "--steps", "8", "--samples", "10",
                 "-o", str(res), "-q"]) == 0
    capsys.readouterr()
    raw = res.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    assert main(["plot", "accuracy", str(cut), "-o", str(tmp_path / "x.png")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "truncated" in err and err.startswith("neuroemu: error:")
    assert not (tmp_path / "x.png").exists()
    ncut = tmp_path / "ncut.h5"
    ncut.write_bytes(net_file.read_bytes()[:3000])
    assert main(["run", str(ncut), "--data", "digits", "--steps", "5"]) == EXIT_ERROR
    assert "neuroemu: error:" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "x.h5", "--steps", "3"])
    assert e.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as e:
        main(["sweep", "digits", "--calibration", "a", "--data", "b", "--bits", "x:y",
              "-o", "s.h5"])
    assert e.value.code == EXIT_USAGE
    assert "neuroemu: error:" in capsys.readouterr().err


def test_help_reads_well():
    out = subprocess.run([sys.executable, "-m", "neuroemu", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for needle in ("convert", "fit", "run", "sweep", "plot", "demo", "examples:",
                   "exit codes"):
        assert needle in out
    sub = subprocess.run([sys.executable, "-m", "neuroemu", "plot", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "raster" in sub and "core utilisation" in sub


# ---- DATA formats accepted by every command ----------------------------------------------

def _idx(path, arr, code=0x08):
    import gzip
    import struct
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(head + arr.astype(">u1").tobytes())


def test_data_formats(tmp_path, rng):
    import pickle
    from neuroemu.data import load_data
    x = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    y = rng.integers(0, 10, 7).astype(np.uint8)
    d = tmp_path / "mnist"
    d.mkdir()
    _idx(d / "t10k-images-idx3-ubyte.gz", x)
    _idx(d / "t10k-labels-idx1-ubyte.gz", y)
    for src in (d, d / "t10k-images-idx3-ubyte.gz"):
        ds = load_data(src)
        np.testing.assert_array_equal(ds.x, x)
        np.testing.assert_array_equal(ds.y, y)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    assert load_data(tmp_path / "d.npz").x.shape == (7, 28, 28)
    c = tmp_path / "cifar-10-batches-py"
    c.mkdir()
    data = rng.integers(0, 256, (3, 3072)).astype(np.uint8)
    for proto in (2, 4):
        (c / "test_batch").write_bytes(pickle.dumps(
            {b"batch_label": b"t", b"labels": [1, 2, 3], b"data": data,
             b"filenames": [b"a", b"b", b"c"]}, protocol=proto))
        ds = load_data(tmp_path)
        assert ds.x.shape == (3, 3, 32, 32) and ds.y.tolist() == [1, 2, 3]
        np.testing.assert_array_equal(ds.x.reshape(3, -1), data)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar_unpickler_refuses_code(tmp_path):
    import pickle
    from hw_models.errors import FileFormatError
    from neuroemu.data import read_cifar_batch
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [1]}))
    with pytest.raises(FileFormatError, match="refusing to unpickle"):
        read_cifar_batch(p)


def test_nmnist_folder(tmp_path):
    from hw_models.errors import DataError
    from neuroemu.data import load_data
    from neuroemu import datasets
    if datasets.missing_reason("nmnist", "test100.txt"):
        pytest.skip(datasets.missing_reason("nmnist", "test100.txt"))
    ds = load_data(datasets.data_path("nmnist"))
    assert ds.kind == "events" and len(ds) == 100 and ds.sensor == (34, 34)
    with pytest.raises(DataError, match="no such data"):
        load_data(tmp_path / "missing")


def test_nmnist_events_convert_and_run(tmp_path, capsys):
    """Event-camera data end to end: calibrate on event counts, run the binned events."""
    from pathlib import Path
    from neuroemu import datasets
    if datasets.missing_reason("nmnist", "test100.txt"):
        pytest.skip(datasets.missing_reason("nmnist", "test100.txt"))
    model = Path(__file__).resolve().parents[1] / "examples" / "nmnist_cnn.npz"
    if not model.exists():
        pytest.skip("examples/nmnist_cnn.npz absent")
    net = tmp_path / "nm.h5"
    assert main(["convert", str(model), "--calibration", "nmnist-train", "--calib-samples",
                 "100", "--eval-data", "nmnist", "--steps", "40", "-o", str(net), "-q"]) == 0
    capsys.readouterr()
    assert main(["run", str(net), "--data", "nmnist", "--steps", "40", "--samples", "40",
                 "--json", "-q"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["final_accuracy"] > 0.7 and d["final_agreement"] > 0.7


def test_nmnist_run_recomputes_float_reference_from_events(tmp_path, capsys):
    """`run --model` on event data: the float CNN is evaluated on count frames in its own units
    (not the T-scaled units of the network's input), and must agree with the stored reference."""
    from pathlib import Path
    from neuroemu import datasets
    if datasets.missing_reason("nmnist", "test100.txt"):
        pytest.skip(datasets.missing_reason("nmnist", "test100.txt"))
    model = Path(__file__).resolve().parents[1] / "examples" / "nmnist_cnn.npz"
    net = tmp_path / "nm.h5"
    assert main(["convert", str(model), "--calibration", "nmnist-train", "--calib-samples",
                 "100", "--eval-data", "nmnist", "--steps", "30", "-o", str(net), "-q"]) == 0
    capsys.readouterr()
    assert main(["run", str(net), "--data", "nmnist", "--steps", "30", "--json", "-q"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert main(["run", str(net), "--data", "nmnist", "--steps", "30", "--model", str(model),
                 "--json", "-q"]) == 0
    recomputed = json.loads(capsys.readouterr().out)
    assert recomputed["float_source"].startswith("recomputed")
    # the shared model scores 0.92 on the 100 test samples (examples/nmnist_cnn.json)
    assert recomputed["float_accuracy"] == stored["float_accuracy"] == pytest.approx(0.92)
