"""The CoreNetwork model: validation messages, HDF5 round trip, damaged files, input layouts."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from hw_models.errors import DataError, FileFormatError, NetworkError
from hw_models.network import CoreNetwork, Population, Projection

from netgen import random_network


def small_net(**kw):
    """input (2,2,1) → hidden (3,) → out (2,), all dense."""
    pops = [Population("input", (2, 2, 1), kind="input"),
            Population("hidden", (3,), threshold=4),
            Population("out", (2,), threshold=4)]
    projs = [Projection("in_h", "input", "hidden", "dense", np.ones((4, 3), np.int8)),
             Projection("h_out", "hidden", "out", "dense", np.ones((3, 2), np.int8), delay=0)]
    return CoreNetwork(pops, projs, output="out", **kw)


# ---- validation --------------------------------------------------------------------------------
def test_small_net_is_valid():
    assert small_net().validate().order() == ["input", "hidden", "out"]


def test_wrong_weight_shape_names_projection():
    net = small_net()
    net.projections[1].weights = np.ones((3, 5), np.int8)
    with pytest.raises(NetworkError, match=r"projection 'h_out'.*\(3, 5\).*\(3, 2\)"):
        net.validate()


def test_wrong_conv_weight_shape_names_projection():
    pops = [Population("input", (4, 4, 2), kind="input"), Population("c", (2, 2, 3))]
    projs = [Projection("conv1", "input", "c", "conv", np.ones((3, 3, 1, 3), np.int8))]
    with pytest.raises(NetworkError, match=r"projection 'conv1'.*conv weights"):
        CoreNetwork(pops, projs, output="c").validate()


def test_conv_geometry_mismatch_names_projection():
    pops = [Population("input", (4, 4, 1), kind="input"), Population("c", (3, 3, 1))]
    projs = [Projection("conv1", "input", "c", "conv", np.ones((3, 3, 1, 1), np.int8))]
    with pytest.raises(NetworkError, match=r"projection 'conv1'.*2x2 output.*3x3"):
        CoreNetwork(pops, projs, output="c").validate()


def test_non_integer_weights_name_projection():
    net = small_net()
    net.projections[0].weights = np.full((4, 3), 0.5)
    with pytest.raises(NetworkError, match=r"projection 'in_h'.*integers.*float64"):
        net.validate()


@pytest.mark.parametrize("attr, value", [("decay_u", 5000), ("decay_v", -1)])
def test_bad_decay_names_population(attr, value):
    net = small_net()
    setattr(net.populations[1], attr, value)
    with pytest.raises(NetworkError, match=rf"population 'hidden'.*{attr}.*{value}"):
        net.validate()


def test_v_init_out_of_range_names_population():
    net = small_net()
    net.populations[2].v_min, net.populations[2].v_max, net.populations[2].v_init = -5, 5, 6
    with pytest.raises(NetworkError, match=r"population 'out'.*v_init 6.*\[-5, 5\]"):
        net.validate()


def test_bad_threshold_and_policy_names_population():
    net = small_net()
    net.populations[1].threshold = 0
    with pytest.raises(NetworkError, match=r"population 'hidden'.*threshold"):
        net.validate()
    net = small_net()
    net.populations[1].overflow = "clip"
    with pytest.raises(NetworkError, match=r"population 'hidden'.*overflow"):
        net.validate()


def test_delay_zero_cycle_is_rejected_and_a_delay_breaks_it():
    net = small_net()
    net.projections.append(Projection("back", "out", "hidden", "dense",
                                      np.ones((2, 3), np.int8), delay=0))
    with pytest.raises(NetworkError, match=r"cycle.*'hidden'.*'out'"):
        net.validate()
    net.projections[-1].delay = 1
    net.validate()


def test_unknown_population_is_named():
    net = small_net()
    net.projections.append(Projection("ghost", "hidden", "nowhere", "dense",
                                      np.ones((3, 1), np.int8)))
    with pytest.raises(NetworkError, match=r"projection 'ghost'.*unknown population 'nowhere'"):
        net.validate()
    with pytest.raises(NetworkError, match=r"no population named 'nowhere'"):
        net.population("nowhere")


def test_readout_spikes_needs_spiking_output():
    net = small_net(readout="spikes")
    net.populations[2].spiking = False
    with pytest.raises(NetworkError, match=r"readout 'spikes'.*'out'"):
        net.validate()


def test_bias_size_and_core_assignment_checked():
    net = small_net()
    net.populations[1].bias = np.zeros(4, np.int64)
    with pytest.raises(NetworkError, match=r"population 'hidden'.*bias has 4 entries"):
        net.validate()
    net = small_net()
    net.populations[1].core = np.array([0, 1], np.int32)
    with pytest.raises(NetworkError, match=r"population 'hidden'.*core assignment"):
        net.validate()


def test_pooling_dilation_rejected():
    pops = [Population("input", (4, 4, 1), kind="input"), Population("p", (2, 2, 1))]
    projs = [Projection("pool", "input", "p", "avgpool", np.ones(1, np.int8), kernel=(2, 2),
                        stride=(2, 2), dilation=(2, 2))]
    with pytest.raises(NetworkError, match=r"projection 'pool'.*dilation"):
        CoreNetwork(pops, projs, output="p").validate()


# ---- HDF5 ----------------------------------------------------------------------------------------
def assert_networks_equal(a: CoreNetwork, b: CoreNetwork):
    for key in ("output", "readout", "input_layout", "profile", "meta"):
        assert getattr(a, key) == getattr(b, key), key
    if a.placement is None:
        assert b.placement is None
    else:
        assert np.array_equal(a.placement, b.placement)
    assert len(a.populations) == len(b.populations)
    for p, q in zip(a.populations, b.populations):
        for f in dataclasses.fields(Population):
            x, y = getattr(p, f.name), getattr(q, f.name)
            if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                assert x is not None and y is not None, (p.name, f.name)
                assert x.dtype == y.dtype and np.array_equal(x, y), (p.name, f.name)
            else:
                assert x == y and type(x) is type(y), (p.name, f.name, x, y)
    assert len(a.projections) == len(b.projections)
    for p, q in zip(a.projections, b.projections):
        for f in dataclasses.fields(Projection):
            x, y = getattr(p, f.name), getattr(q, f.name)
            if isinstance(x, np.ndarray):
                assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), \
                    (p.name, f.name)
            else:
                assert x == y, (p.name, f.name, x, y)


@pytest.mark.parametrize("seed", range(25))
def test_hdf5_round_trip_random_networks(tmp_path, seed):
    net = random_network(seed)
    net.profile = "loihi1" if seed % 2 else None
    net.input_layout = ("HWC", "CHW", "HW", "flat")[seed % 4] if net.input.shape[2] == 1 \
        else ("HWC", "CHW", "flat")[seed % 3]
    net.meta = {"seed": seed, "nested": {"a": [1, 2.5, "x"]}}
    path = net.save(tmp_path / "net.h5")
    back = CoreNetwork.load(path)
    assert_networks_equal(net, back)
    # no temporary files left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


@pytest.mark.parametrize("gate", ["winner", "runmax"])
def test_hdf5_maxpool_gate_and_version(tmp_path, gate):
    """The gate survives a round trip; a file is version 1 unless it needs version 2."""
    net = random_network(5, pool="maxpool", gate=gate)
    back = CoreNetwork.load(net.save(tmp_path / "net.h5"))
    assert_networks_equal(net, back)
    assert [p.gate for p in back.projections if p.kind == "maxpool"] == [gate]
    with h5py.File(tmp_path / "net.h5") as f:
        assert int(f.attrs["version"]) == (2 if gate == "runmax" else 1)


def test_gate_is_validated():
    net = random_network(5, pool="maxpool")
    pr = next(p for p in net.projections if p.kind == "maxpool")
    pr.gate = "median"
    with pytest.raises(NetworkError, match="gate must be one of"):
        net.validate()
    pr.gate = "winner"
    next(p for p in net.projections if p.kind == "conv").gate = "runmax"
    with pytest.raises(NetworkError, match="gate must be one of"):
        net.validate()


def test_weight_dtypes_preserved(tmp_path):
    net = small_net()
    for dt in (np.int8, np.int16, np.int32, np.int64):
        net.projections[0].weights = np.arange(12).reshape(4, 3).astype(dt)
        back = CoreNetwork.load(net.save(tmp_path / "n.h5"))
        assert back.projections[0].weights.dtype == dt


def test_truncated_file_is_a_format_error(tmp_path):
    path = random_network(3).save(tmp_path / "net.h5")
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, 0):
        bad = tmp_path / f"cut{cut}.h5"
        bad.write_bytes(data[:cut])
        with pytest.raises(FileFormatError, match=str(bad.name)):
            CoreNetwork.load(bad)


def test_foreign_hdf5_is_a_format_error(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(FileFormatError, match="not a neuroemu core network"):
        CoreNetwork.load(path)
    with h5py.File(path, "a") as f:
        f.attrs["format"] = "neuroemu.CoreNetwork"
        f.attrs["version"] = 99
    with pytest.raises(FileFormatError, match="version 99"):
        CoreNetwork.load(path)


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(FileFormatError, match="no such"):
        CoreNetwork.load(tmp_path / "absent.h5")
    txt = tmp_path / "text.h5"
    txt.write_text("hello, not hdf5")
    with pytest.raises(FileFormatError):
        CoreNetwork.load(txt)


def test_damaged_group_is_a_format_error(tmp_path):
    path = small_net().save(tmp_path / "net.h5")
    with h5py.File(path, "a") as f:
        del f["projections/0000/weights"]
    with pytest.raises(FileFormatError):
        CoreNetwork.load(path)


def test_failed_save_leaves_nothing_behind(tmp_path):
    net = small_net()
    net.meta = {"bad": object()}  # not JSON-serialisable: fails while writing
    with pytest.raises(NetworkError, match="JSON"):
        net.save(tmp_path / "net.h5")
    assert list(tmp_path.iterdir()) == []
    # an existing good file survives a failed overwrite untouched
    good = small_net().save(tmp_path / "net.h5")
    before = good.read_bytes()
    with pytest.raises(NetworkError):
        net.save(good)
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


def test_invalid_network_is_not_saved(tmp_path):
    net = small_net()
    net.populations[1].threshold = -1
    with pytest.raises(NetworkError, match="'hidden'"):
        net.save(tmp_path / "net.h5")
    assert list(tmp_path.iterdir()) == []


# ---- input layouts -------------------------------------------------------------------------------
def _layout_net(layout, shape=(2, 3, 4)):
    pops = [Population("input", shape, kind="input"), Population("out", (2,))]
    n = int(np.prod(shape))
    projs = [Projection("p", "input", "out", "dense", np.ones((n, 2), np.int8))]
    return CoreNetwork(pops, projs, output="out", input_layout=layout).validate()


def test_to_internal_input_chw():
    net = _layout_net("CHW")
    assert net.user_input_shape() == (4, 2, 3)
    x = np.arange(5 * 4 * 2 * 3).reshape(5, 4, 2, 3)
    out = net.to_internal_input(x)
    assert out.shape == (5, 2, 3, 4)
    assert out[1, 0, 2, 3] == x[1, 3, 0, 2]


def test_to_internal_input_hw_and_flat_and_hwc():
    net = _layout_net("HW", (2, 3, 1))
    x = np.arange(2 * 2 * 3).reshape(2, 2, 3)
    out = net.to_internal_input(x)
    assert out.shape == (2, 2, 3, 1) and np.array_equal(out[..., 0], x)
    net = _layout_net("flat")
    x = np.arange(3 * 24).reshape(3, 24)
    out = net.to_internal_input(x)
    assert out.shape == (3, 2, 3, 4) and np.array_equal(out.reshape(3, -1), x)
    net = _layout_net("HWC")
    x = np.arange(2 * 24).reshape(2, 2, 3, 4)
    assert np.array_equal(net.to_internal_input(x), x)


def test_to_internal_input_wrong_shape():
    net = _layout_net("CHW")
    with pytest.raises(DataError, match=r"\(2, 3, 4\).*\(4, 2, 3\).*CHW"):
        net.to_internal_input(np.zeros((1, 2, 3, 4)))


def test_atomic_files_get_ordinary_permissions(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the final file must be readable by others
    under the usual umask, like any file open() would create."""
    import os
    from hw_models.h5io import atomic_h5
    old = os.umask(0o022)
    try:
        with atomic_h5(tmp_path / "r.h5") as f:
            f.attrs["x"] = 1
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "r.h5").st_mode & 0o777) == 0o644


def test_n_cores_matches_core_assignment():
    """n_cores is computed without building per-neuron arrays; it must equal the count that
    core_assignment() implies (mapped, partly mapped and unmapped networks)."""
    from netgen import random_network
    for seed in range(60):
        net = random_network(seed)
        assert net.n_cores == 1 + max(int(c.max()) for c in net.core_assignment().values())
