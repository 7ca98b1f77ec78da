"""Hardening (issue #10): one test per class of bad input that used to end in lost files, silent
wrong results, memory blow-ups or raw tracebacks.  Each was reproduced before its fix."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from hw_models.errors import (BudgetError, DataError, FileFormatError, NetworkError,
                              NeuroemuError, StateOverflowError)
from hw_models.network import CoreNetwork, Population, Projection
from hw_models import safeio
from neuroemu.cli import EXIT_ERROR, main



def tiny_net(**pop) -> CoreNetwork:
    """input (4,) analog → dense → out (3,)."""
    w = np.array([[1, -2, 3], [4, 5, -6], [7, 8, 9], [-1, 0, 2]], np.int16)
    out = dict(threshold=50, bias=np.array([1, 2, 3]))
    out.update(pop)
    return CoreNetwork([Population("in", (4,), kind="input", input_max=15),
                        Population("out", (3,), **out)],
                       [Projection("w", "in", "out", "dense", w, delay=0)], output="out")


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setenv(safeio.BUDGET_ENV, "64M")


# ---- data loss and leftovers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_net(tmp_path_factory):
    p = tmp_path_factory.mktemp("digits") / "net.h5"
    assert main(["convert", "digits", "--calibration", "digits-train", "--calib-samples", "50",
                 "-o", str(p), "-q"]) == 0
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("harden")
    tiny_net().save(d / "net.h5")
    return d


def test_run_output_equal_to_network_refused(files, tmp_path, capsys):
    net = tmp_path / "net.h5"
    shutil.copy(files / "net.h5", net)
    before = net.read_bytes()
    os.link(net, tmp_path / "hard.h5")
    (tmp_path / "sym.h5").symlink_to(net)
    for out in (net, tmp_path / "hard.h5", tmp_path / "sym.h5", tmp_path / "." / "net.h5"):
        assert main(["run", str(net), "--data", "digits", "--steps", "4", "-o", str(out),
                     "-q"]) == EXIT_ERROR
        assert "same file as the input" in capsys.readouterr().err
    assert net.read_bytes() == before


def test_convert_output_equal_to_model_refused(tmp_path, capsys):
    from neuroemu.pipeline import DIGITS_MODEL
    model = tmp_path / "m.npz"
    shutil.copy(DIGITS_MODEL, model)
    before = model.read_bytes()
    assert main(["convert", str(model), "--calibration", "digits-train", "-o", str(model),
                 "-q"]) == EXIT_ERROR
    assert "same file as the input" in capsys.readouterr().err
    assert model.read_bytes() == before
    # the calibration data counts as an input too
    assert main(["convert", "digits", "--calibration", str(model), "-o", str(model),
                 "-q"]) == EXIT_ERROR


def test_output_directory_refused_and_nothing_left(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["convert", "digits", "--calibration", "digits-train", "-o",
                 str(tmp_path / "out"), "-q"]) == EXIT_ERROR
    assert "existing directory" in capsys.readouterr().err
    with pytest.raises(DataError, match="existing directory"):
        tiny_net().save(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert list((tmp_path / "out").iterdir()) == []


def _leftovers(d):
    return sorted(p.name for p in Path(d).iterdir() if p.name.endswith(".tmp"))


def test_temporary_removed_on_every_failure_path(tmp_path, monkeypatch):
    from hw_models import h5io
    target = tmp_path / "net.h5"
    with pytest.raises(RuntimeError):
        with h5io.atomic_h5(target) as f:
            f.attrs["x"] = 1
            raise RuntimeError("fails mid-write")
    assert _leftovers(tmp_path) == [] and not target.exists()
    # Ctrl-C while the temporary HDF5 file is being created
    real = h5py.File

    def interrupted(*a, **k):
        if len(a) > 1 and a[1] == "w":
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(h5io.h5py, "File", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tiny_net().save(target)
    monkeypatch.setattr(h5io.h5py, "File", real)
    assert _leftovers(tmp_path) == [] and not target.exists()
    # the final rename fails: the old file stays, the temporary goes
    tiny_net().save(target)
    before = target.read_bytes()

    def no_rename(a, b):
        raise OSError("rename failed")
    monkeypatch.setattr(safeio.os, "replace", no_rename)
    with pytest.raises(OSError):
        tiny_net(threshold=7).save(target)
    assert _leftovers(tmp_path) == [] and target.read_bytes() == before


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporaries_swept_by_convert_and_run(files, tmp_path, capsys):
    dead, alive = _dead_pid(), os.getppid()
    out = tmp_path / "net.h5"
    stale = tmp_path / f".net.h5.{dead}.abc123.tmp"
    live = tmp_path / f".net.h5.{alive}.def456.tmp"
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    assert main(["convert", "digits", "--calibration", "digits-train", "--calib-samples", "50",
                 "-o", str(out), "-q"]) == 0
    assert not stale.exists() and live.exists()   # a running writer's file is left alone
    stale2 = tmp_path / f".run.h5.{dead}.zz.tmp"
    stale2.write_bytes(b"half")
    assert main(["run", str(out), "--data", "digits", "--samples", "5", "--steps", "4", "-o",
                 str(tmp_path / "run.h5"), "-q"]) == 0
    assert not stale2.exists()


# ---- silent wrong results from damaged or crafted files -------------------------------------

def _edit(src, dst, fn):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def test_exponent_64_refused(files, tmp_path):
    p = _edit(files / "net.h5", tmp_path / "e.h5",
              lambda f: f["projections/0000"].attrs.__setitem__("exponent", 64))
    with pytest.raises(FileFormatError, match="exponent 64"):
        CoreNetwork.load(p)


def test_float_bias_and_float_threshold_refused(files, tmp_path):
    def float_bias(f):
        del f["populations/0001/bias"]
        f["populations/0001"].create_dataset("bias", data=np.array([1.5, 2.0, 3.0]))
    with pytest.raises(FileFormatError, match="bias.*dtype float64"):
        CoreNetwork.load(_edit(files / "net.h5", tmp_path / "b.h5", float_bias))
    p = _edit(files / "net.h5", tmp_path / "t.h5",
              lambda f: f["populations/0001"].attrs.__setitem__("threshold", 50.7))
    with pytest.raises(FileFormatError, match="threshold.*must be an integer"):
        CoreNetwork.load(p)


def test_external_and_dangling_links_refused(files, tmp_path):
    secret = tmp_path / "other.h5"
    with h5py.File(secret, "w") as f:
        f["w"] = np.ones((4, 3), np.int16)

    def external(f):
        del f["projections/0000/weights"]
        f["projections/0000/weights"] = h5py.ExternalLink(str(secret), "/w")
    with pytest.raises(FileFormatError, match="external link"):
        CoreNetwork.load(_edit(files / "net.h5", tmp_path / "x.h5", external))

    def dangling(f):
        f["extra"] = h5py.SoftLink("/nowhere")
    with pytest.raises(FileFormatError, match="does not exist"):
        CoreNetwork.load(_edit(files / "net.h5", tmp_path / "s.h5", dangling))

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(4, 3), dtype=np.int16)
        layout[:] = h5py.VirtualSource(str(secret), "w", shape=(4, 3))
        del f["projections/0000/weights"]
        f["projections/0000"].create_virtual_dataset("weights", layout)
    with pytest.raises(FileFormatError, match="virtual dataset"):
        CoreNetwork.load(_edit(files / "net.h5", tmp_path / "v.h5", virtual))

    def external_raw(f):
        raw = tmp_path / "raw.bin"
        np.ones(12, np.int16).tofile(raw)
        del f["projections/0000/weights"]
        f["projections/0000"].create_dataset("weights", shape=(4, 3), dtype=np.int16,
                                             external=[(str(raw), 0, 24)])
    with pytest.raises(FileFormatError, match="external raw file"):
        CoreNetwork.load(_edit(files / "net.h5", tmp_path / "r.h5", external_raw))
    # an internal soft link is only an alias: allowed
    ok = _edit(files / "net.h5", tmp_path / "ok.h5",
               lambda f: f.__setitem__("alias", h5py.SoftLink("/projections")))
    CoreNetwork.load(ok)


@pytest.mark.data
def test_external_link_in_keras_weights_refused(tmp_path):
    from conftest import require_data
    require_data("models", "keras_bn_maxpool.h5")
    from converter import load_model
    secret = tmp_path / "other.h5"
    with h5py.File(secret, "w") as f:
        f["k"] = np.ones((3, 3, 1, 4))

    def link(f):
        g = f["model_weights/conv2/keras_bn_maxpool/conv2"]
        del g["kernel"]
        g["kernel"] = h5py.ExternalLink(str(secret), "/k")
    p = _edit(require_data("models", "keras_bn_maxpool.h5"), tmp_path / "m.h5", link)
    with pytest.raises(FileFormatError, match="external link"):
        load_model(p)


def _dense_keras(path, use_bias=True, with_bias=True):
    cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "use_bias": use_bias,
                                           "activation": "linear",
                                           "batch_input_shape": [None, 3]}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(cfg)
        f.attrs["keras_version"] = "2.2.4"
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"d"]
        lg = g.create_group("d")
        names = [b"d/kernel:0"] + ([b"d/bias:0"] if with_bias else [])
        lg.attrs["weight_names"] = names
        lg.create_dataset("d/kernel:0", data=np.ones((3, 2)))
        if with_bias:
            lg.create_dataset("d/bias:0", data=np.ones(2))
    return path


def test_keras_use_bias_without_bias_refused(tmp_path):
    from converter import load_model
    load_model(_dense_keras(tmp_path / "ok.h5"))
    with pytest.raises(FileFormatError, match="use_bias=True but the file holds no bias"):
        load_model(_dense_keras(tmp_path / "nb.h5", with_bias=False))
    with pytest.raises(FileFormatError, match="use_bias=False"):
        load_model(_dense_keras(tmp_path / "xb.h5", use_bias=False))


def _onnx_model():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((3, 2), np.float32), "W")
    node = helper.make_node("MatMul", ["x", "W"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                       [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    return onnx, helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_onnx_missing_tail_refused(tmp_path):
    from converter import load_model
    onnx, m = _onnx_model()
    onnx.save(m, tmp_path / "ok.onnx")
    load_model(tmp_path / "ok.onnx")
    del m.opset_import[:]
    onnx.save(m, tmp_path / "cut.onnx")
    with pytest.raises(FileFormatError, match="opset"):
        load_model(tmp_path / "cut.onnx")


def test_onnx_huge_or_external_initializer_refused(tmp_path, small_budget):
    from converter import load_model
    onnx, m = _onnx_model()
    t = m.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([10**6, 10**6])  # 10^12 elements declared, a few bytes stored
    onnx.save(m, tmp_path / "big.onnx")
    with pytest.raises(BudgetError, match="would need"):
        load_model(tmp_path / "big.onnx")
    onnx, m = _onnx_model()
    t = m.graph.initializer[0]
    t.data_location = onnx.TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", "../../etc/passwd"
    (tmp_path / "ext.onnx").write_bytes(m.SerializeToString())  # onnx.save would write it
    with pytest.raises(FileFormatError, match="external file"):
        load_model(tmp_path / "ext.onnx")


def test_raise_policy_cannot_miss_input_current_overflow():
    # u accumulates without decay (decay_u = 0): over 10^12 steps it could pass int64
    net = tiny_net(decay_u=0, overflow="raise", threshold=10**6)
    from hw_models.intrange import check_run_ranges
    check_run_ranges(net, 1000)
    with pytest.raises(StateOverflowError, match="input current u"):
        check_run_ranges(net, 10**15)
    # ... and the run refuses before starting (the budget would refuse 10**15 steps anyway,
    # so use a weight large enough that 10**4 steps suffice)
    import emulator
    big = tiny_net(decay_u=0, overflow="raise", threshold=10**6)
    big.projections[0].weights = big.projections[0].weights.astype(np.int64) * 2**40
    with pytest.raises(StateOverflowError, match="input current u"):
        emulator.run(big, np.ones((1, 4), np.int64), 10**4)


def test_accumulator_bound_proved_at_conversion_save_and_load(files, tmp_path):
    from hw_models.intrange import STATE_LIMIT, check_ranges
    # |w·2^e| × fan-in × input range: 9·2^e summed over 4 inputs of up to 15
    net = tiny_net()
    q, _ = check_ranges(net)["out"]
    assert q == 15 * 20  # input range × largest column sum |1|+|4|+|7|+|1| ... = 20
    e = int(np.log2(STATE_LIMIT / (15 * 20)))  # just inside
    net.projections[0].exponent = e
    check_ranges(net)
    net.projections[0].exponent = e + 1
    with pytest.raises(NetworkError, match="synaptic input per step"):
        net.save(tmp_path / "n.h5")
    assert not (tmp_path / "n.h5").exists()
    p = _edit(files / "net.h5", tmp_path / "e.h5",
              lambda f: f["projections/0000"].attrs.__setitem__("exponent", e + 1))
    with pytest.raises(FileFormatError, match="synaptic input per step"):
        CoreNetwork.load(p)
    wide = tiny_net(v_min=-2**62, v_max=2**62)
    with pytest.raises(NetworkError, match="voltage range"):
        check_ranges(wide)


# ---- sizes checked before allocating --------------------------------------------------------

def test_keras_zip_bomb_refused(tmp_path, small_budget):
    from converter import load_model
    p = tmp_path / "bomb.keras"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"\0" * (80 * 2**20))
    assert p.stat().st_size < 2**20
    with pytest.raises(BudgetError, match="model.weights.h5"):
        load_model(p)


def test_network_with_huge_core_index_refused(files, tmp_path):
    def core(f):
        f["populations/0001"].create_dataset("core", data=np.array([0, 1, 2**31 - 1], np.int32))
    with pytest.raises(FileFormatError, match="numbered densely"):
        CoreNetwork.load(_edit(files / "net.h5", tmp_path / "c.h5", core))


def test_idx_header_claiming_1e15_images(tmp_path, small_budget):
    from neuroemu.datasets import read_idx
    import struct
    p = tmp_path / "x.idx"
    p.write_bytes(b"\0\0\x08\x03" + struct.pack(">3I", 10**9 - 1, 1000, 1000) + b"\0" * 64)
    with pytest.raises(BudgetError, match="declared shape"):
        read_idx(p)


def _cifar_pickle(shape, nbytes):
    """A protocol-2 pickle of {b'data': ndarray(shape) with nbytes of data, b'labels': [0]}."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct

    class Fake:  # reduces like an ndarray (same globals), with a forged shape
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (0,), b"b"),
                    (1, shape, np.dtype("u1"), False, b"\0" * nbytes))
    return pickle.dumps({b"data": Fake(), b"labels": [0]}, protocol=2)


def test_cifar_pickle_with_forged_shape(tmp_path, small_budget):
    from neuroemu.data import read_cifar_batch
    p = tmp_path / "data_batch_1"
    p.write_bytes(_cifar_pickle((10**10, 3072), 16))
    with pytest.raises(BudgetError, match="declared shape"):
        read_cifar_batch(p)
    p.write_bytes(_cifar_pickle((2, 3072), 16))  # shape and data disagree
    with pytest.raises(FileFormatError, match="needs 6144 bytes"):
        read_cifar_batch(p)
    p.write_bytes(_cifar_pickle((2, 3072), 6144))
    with pytest.raises(FileFormatError, match="2 images but 1 labels"):
        read_cifar_batch(p)


def test_huge_steps_and_huge_inputs_say_what_is_needed(digits_net, capsys, small_budget):
    assert main(["run", str(digits_net), "--data", "digits", "--steps",
                 str(10**12), "-q"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "would need" in err and "NEUROEMU_MEMORY_BUDGET" in err
    # a 2048 x 2048 conv input declared in a network file
    conv = CoreNetwork([Population("in", (2048, 2048, 1), kind="input"),
                        Population("c", (2048, 2048, 64))],
                       [Projection("k", "in", "c", "conv", np.ones((3, 3, 1, 64), np.int8),
                                   padding=(1, 1, 1, 1), delay=0)], output="c")
    conv.validate()
    import emulator
    with pytest.raises(BudgetError, match="would need"):
        emulator.run(conv, np.zeros((1, 2048, 2048, 1), np.uint8), 4)


def test_huge_delay_is_a_budget_error_not_systemerror():
    import emulator
    net = tiny_net()
    net.projections[0].delay = 2**40
    with pytest.raises(BudgetError, match="delays up to"):
        emulator.run(net, np.ones((1, 4), np.int64), 4)


# ---- unclear errors and accepted nonsense ---------------------------------------------------

def test_deep_json_is_a_format_error(files, tmp_path):
    deep = "[" * 20000 + "]" * 20000
    p = _edit(files / "net.h5", tmp_path / "d.h5",
              lambda f: f.attrs.__setitem__("meta", deep))
    with pytest.raises(FileFormatError, match="nested"):
        CoreNetwork.load(p)
    from converter import load_model
    k = tmp_path / "deep.keras"
    with zipfile.ZipFile(k, "w") as z:
        z.writestr("config.json", deep)
        z.writestr("model.weights.h5", b"")
    with pytest.raises(FileFormatError, match="nested"):
        load_model(k)


def test_damaged_float_reference_named(tmp_path, capsys):
    from neuroemu.pipeline import convert_model
    net = convert_model("digits", "digits-train", calib_samples=50, eval_data="digits",
                        eval_samples=20)
    net.meta["float_reference"]["predictions"] = [[1, 2], [3, 4]]
    net.save(tmp_path / "n.h5")
    assert main(["run", str(tmp_path / "n.h5"), "--data", "digits", "--samples", "20",
                 "--steps", "4", "-q"]) == EXIT_ERROR
    assert "stored float reference is damaged" in capsys.readouterr().err


def test_zero_samples_steps_and_labels_refused(files):
    import emulator
    net = CoreNetwork.load(files / "net.h5")
    with pytest.raises(DataError, match="no samples"):
        emulator.run(net, np.zeros((0, 4), np.int64), 4)
    with pytest.raises(DataError, match="steps must be an integer, got 2.5"):
        emulator.run(net, np.ones((1, 4), np.int64), 2.5)
    with pytest.raises(DataError, match="label 3 of sample 1 is not a class"):
        emulator.run(net, np.ones((2, 4), np.int64), 4, labels=[0, 3])
    assert emulator.run(net, np.ones((2, 4), np.int64), 4.0, labels=[0, 2]).steps == 4


def test_sweep_nonsense_grid_refused_before_any_file(tmp_path, capsys):
    out = tmp_path / "s.h5"
    for extra in (["--bits", "99"], ["--methods", "ecc,bogus"]):
        assert main(["sweep", "digits", "--calibration", "digits-train", "--data", "digits",
                     "--steps", "4", "-o", str(out), "-q"] + extra) == EXIT_ERROR
        assert not out.exists()
    err = capsys.readouterr().err
    assert "sweep weight bits must be in [2, 24], got 99" in err and "'bogus'" in err


def test_plot_sample_out_of_range_and_fit_on_result(digits_net, tmp_path, capsys):
    net = digits_net
    run = tmp_path / "r.h5"
    assert main(["run", str(net), "--data", "digits", "--samples", "3", "--steps", "4",
                 "--record", "conv1_relu", "-o", str(run), "-q"]) == 0
    capsys.readouterr()
    assert main(["plot", "raster", str(run), "--sample", "99", "-o",
                 str(tmp_path / "r.png")]) == EXIT_ERROR
    assert "sample 99 does not exist: the result holds 3 samples" in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()
    assert main(["plot", "raster", str(run), "--sample", "2", "-o",
                 str(tmp_path / "r.png")]) == 0
    assert main(["fit", str(run)]) == EXIT_ERROR
    assert "is a neuroemu result file" in capsys.readouterr().err


def test_budget_env_parsing(monkeypatch):
    monkeypatch.setenv(safeio.BUDGET_ENV, "2G")
    assert safeio.memory_budget() == 2 * 2**30
    monkeypatch.setenv(safeio.BUDGET_ENV, "lots")
    with pytest.raises(DataError, match="expected bytes"):
        safeio.memory_budget()
    monkeypatch.delenv(safeio.BUDGET_ENV)
    assert safeio.memory_budget() > 0
    with pytest.raises(BudgetError):
        safeio.check_budget(float("nan"), "x")
    assert issubclass(BudgetError, NeuroemuError) and issubclass(BudgetError, MemoryError)


def test_nir_hard_link_cycles_refused_before_nir_read(tmp_path):
    """Two hard links back to the root make ``nir.read``'s recursive walk follow 2^depth paths
    (found by the reader fuzzing: minutes before a RecursionError); a group reached by more than
    one hard link is refused before ``nir.read`` runs."""
    import time
    nir = pytest.importorskip("nir")
    from converter.nir_import import load_nir
    p = tmp_path / "cyc.nir"
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
             "out": nir.Output(output_type={"output": np.array([2])})}
    nir.write(str(p), nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "out")]))
    with h5py.File(p, "a") as f:
        f["node/nodes/fc"]["up"] = f
        f["node/nodes/in"]["up"] = f
    t0 = time.perf_counter()
    with pytest.raises(FileFormatError, match="reached by 3 hard links"):
        load_nir(p)
    assert time.perf_counter() - t0 < 20
