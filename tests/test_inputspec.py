"""The input spec: its three conversions, its checks, and its trip through Graph, CoreNetwork and
the network file."""

import json

import h5py
import numpy as np
import pytest

from hw_models.errors import DataError, FileFormatError, NetworkError
from hw_models.inputspec import InputSpec
from hw_models.network import CoreNetwork, Population, Projection


def test_fields_are_normalised_and_frozen():
    s = InputSpec((1, 28, 28), "CHW", raw_max=255, scale=1 / 255)
    assert s.internal_shape == (28, 28, 1) and s.channels == 1 and s.size == 784
    assert s.scale == pytest.approx(1 / 255) and s.offset == 0.0 and s.known
    with pytest.raises(Exception):
        s.scale = 1.0  # frozen
    assert s.replace(scale=1.0).scale == 1.0 and s.scale == pytest.approx(1 / 255)
    assert InputSpec((4,), "C").layout == "flat"
    # one value repeated per channel collapses to a scalar
    assert InputSpec((2, 2, 3), scale=[0.5, 0.5, 0.5]).scale == 0.5
    assert InputSpec((2, 2, 3), scale=[0.5, 0.25, 1.0]).per_channel


@pytest.mark.parametrize("kw, match", [
    (dict(shape=(28, 28), layout="HWC"), "does not fit layout"),
    (dict(shape=(2, 2, 3), scale=[1.0, 2.0]), "2 values for 3 channels"),
    (dict(shape=(4,), layout="flat", scale=-1.0), "positive"),
    (dict(shape=(4,), layout="flat", encoding="spikes"), "encoding"),
    (dict(shape=(4,), layout="flat", raw_max=0), "raw_max"),
    (dict(shape=(4,), layout="flat", raw_max=None), "raw_max is needed"),
    (dict(shape=(4,), layout="flat", bins=8), "bins"),
    (dict(shape=(4,), layout="flat", scale=float("nan")), "finite"),
])
def test_bad_specs_are_refused(kw, match):
    with pytest.raises(NetworkError, match=match):
        InputSpec(**kw)


def test_three_conversions_round_trip_exactly(rng):
    s = InputSpec((3, 4, 5), "CHW", raw_max=255, scale=1 / 255)
    x = rng.integers(0, 256, size=(6, 3, 4, 5)).astype(np.uint8)
    raw = s.check_raw(x)
    assert raw.dtype == np.int64 and raw.shape == (6, 4, 5, 3)
    np.testing.assert_array_equal(raw, x.transpose(0, 2, 3, 1))
    m = s.to_model(x)
    np.testing.assert_array_equal(m, raw * (1 / 255))
    # x/255 (a different float rounding than x * (1/255)) quantises back to exactly x
    np.testing.assert_array_equal(s.to_raw(x / 255), raw)
    np.testing.assert_array_equal(s.to_raw(x.astype(np.float32) / np.float32(255)), raw)
    # and as_model gives the same array bit for bit for raw and for model-unit data
    np.testing.assert_array_equal(s.as_model(x / 255), s.as_model(x))
    np.testing.assert_array_equal(s.as_raw(x / 255), s.as_raw(x))
    np.testing.assert_array_equal(s.from_internal(raw), x)


def test_off_grid_floats_round_to_nearest_and_keep_their_value_for_the_model():
    s = InputSpec((2,), "flat", raw_max=10, scale=0.1)
    x = np.array([[0.26, 0.34]])
    np.testing.assert_array_equal(s.to_raw(x), [[3, 3]])
    np.testing.assert_array_equal(s.as_model(x), x)  # between grid points: kept for the model


def test_per_channel_scale_and_offset():
    s = InputSpec((1, 1, 3), raw_max=255, scale=[1 / 255, 2 / 255, 1 / 51],
                  offset=[-0.5, 0.0, -2.5])
    raw = np.array([[[[0, 128, 255]]]], np.uint8)
    m = s.to_model(raw)
    np.testing.assert_allclose(m[0, 0, 0], [-0.5, 256 / 255, 2.5])
    np.testing.assert_array_equal(s.to_raw(m), raw)
    lo, hi = s.model_range()
    np.testing.assert_allclose(lo, [-0.5, 0, -2.5])
    np.testing.assert_allclose(hi, [0.5, 2, 2.5])


@pytest.mark.parametrize("bad, match", [
    (np.full((2, 4), 255.0), r"model units 0\.\.1 .*span 0\.\.255.*look like raw values"),
    (np.full((2, 4), -0.2), r"span -0\.2\.\.-0\.2"),
    (np.full((2, 4), np.nan), "NaN"),
])
def test_floats_outside_the_model_range_are_refused(bad, match):
    s = InputSpec((4,), "flat", raw_max=255, scale=1 / 255)
    if bad.max() == 255:
        bad[0, 0] = 0.0
    for fn in (s.to_raw, s.as_model, s.as_raw):
        with pytest.raises(DataError, match=match):
            fn(bad)


def test_fractions_for_a_model_in_raw_units_are_refused():
    s = InputSpec((4,), "flat", raw_max=255, scale=1.0)   # a model fed raw 0..255
    x = np.array([[0, 64, 128, 255]], np.uint8)
    with pytest.raises(DataError, match=r"looks like data scaled to 0\.\.1.*span 0\.\.255"):
        s.as_model(x / 255)
    np.testing.assert_array_equal(s.as_model(x.astype(float)), x)  # its own units: fine
    np.testing.assert_array_equal(s.as_model(np.array([[0.0, 1.0, 1.0, 0.0]])), [[0, 1, 1, 0]])


def test_raw_checks_name_sample_and_value():
    s = InputSpec((4,), "flat", raw_max=16, scale=1 / 16)
    x = np.zeros((3, 4), np.int32)
    x[2, 1] = 17
    with pytest.raises(DataError, match=r"raw value 17 in sample 2 is outside 0\.\.16"):
        s.check_raw(x)
    with pytest.raises(DataError, match="float data are read as model units"):
        s.check_raw(x.astype(float))
    with pytest.raises(DataError, match="shape"):
        s.check_raw(np.zeros((3, 5), np.uint8))
    with pytest.raises(DataError, match="x\\[None\\]"):
        s.check_raw(np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="numeric"):
        s.as_model(np.array([["a"] * 4]))


def test_unknown_scale_says_how_to_give_it():
    s = InputSpec((4,), "flat")
    assert not s.known
    np.testing.assert_array_equal(s.check_raw(np.ones((1, 4), np.uint8)), np.ones((1, 4)))
    with pytest.raises(DataError, match="input_scale"):
        s.to_model(np.ones((1, 4), np.uint8))
    # model-unit floats pass unchanged: the model's own units need no scale
    np.testing.assert_array_equal(s.as_model(np.full((1, 4), 7.5)), np.full((1, 4), 7.5))


def test_event_counts_are_unbounded_and_binned():
    s = InputSpec((34, 34, 2), raw_max=None, scale=0.1, encoding="events", bins=16)
    c = np.zeros((1, 34, 34, 2), np.int64)
    c[0, 0, 0, 0] = 40
    np.testing.assert_allclose(s.to_model(c).max(), 4.0)
    assert "16 bins" in s.describe()


def test_dict_round_trip():
    s = InputSpec((3, 8, 8), "CHW", raw_max=255, scale=[0.1, 0.2, 0.3], offset=-1.0,
                  encoding="rate")
    d = json.loads(json.dumps(s.to_dict()))
    assert InputSpec.from_dict(d) == s
    with pytest.raises(NetworkError, match="unknown field"):
        InputSpec.from_dict(dict(d, colour="red"))


# ---- carried by Graph and CoreNetwork, stored in the file ---------------------------------

def _net(spec=None, layout="HWC"):
    inp = Population("input", (2, 2, 1), kind="input", input_max=255)
    out = Population("out", (3,), spiking=False)
    pr = Projection("p", "input", "out", "dense", np.ones((4, 3), np.int16), delay=0)
    return CoreNetwork([inp, out], [pr], "out", input_layout=layout, input_spec=spec)


def test_network_carries_and_checks_its_spec(tmp_path):
    spec = InputSpec((2, 2, 1), raw_max=255, scale=1 / 255)
    net = _net(spec).validate()
    assert net.spec is spec
    path = net.save(tmp_path / "n.h5")
    with h5py.File(path, "r") as f:
        assert int(f.attrs["version"]) == 3
    back = CoreNetwork.load(path)
    assert back.input_spec == spec
    # a hand-built network without a spec: model units = raw units
    assert _net().spec.scale == 1.0 and _net().spec.raw_max == 255
    assert CoreNetwork.load(_net().save(tmp_path / "m.h5")).input_spec is None
    with pytest.raises(NetworkError, match="raw_max 16 vs input_max 255"):
        _net(spec.replace(raw_max=16)).validate()
    with pytest.raises(NetworkError, match="layout"):
        _net(InputSpec((1, 2, 2), "CHW", scale=1.0)).validate()


def test_version_1_files_still_load(tmp_path):
    net = _net()
    net.meta = {"options": {"input_scale": 0.25}, "steps": None}
    path = net.save(tmp_path / "v1.h5")
    with h5py.File(path, "r") as f:  # no input spec: written as version 1
        assert int(f.attrs["version"]) == 1 and "input_spec" not in f.attrs
    back = CoreNetwork.load(path)
    assert back.input_spec.scale == 0.25 and back.input_spec.raw_max == 255
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 4
    with pytest.raises(FileFormatError, match="version 4 is not supported"):
        CoreNetwork.load(path)


def test_graph_carries_the_spec(rng):
    from converter.builder import GraphBuilder
    b = GraphBuilder((1, 4, 4), "CHW")
    x = b.flatten(b.input())
    x = b.dense(x, rng.normal(size=(16, 3)))
    g = b.build(x, input_scale=1 / 255)
    assert g.input_spec == InputSpec((1, 4, 4), "CHW", scale=1 / 255)
    assert g.input_scale == pytest.approx(1 / 255) and g.input_layout == "CHW"
    g2 = g.with_input_spec(raw_max=16, scale=1 / 16)
    assert g2.input_spec.raw_max == 16 and g.input_spec.raw_max == 255
    assert g.copy().input_spec == g.input_spec
    xr = rng.integers(0, 256, size=(5, 1, 4, 4)).astype(np.uint8)
    np.testing.assert_array_equal(g.predict(xr), g.predict(xr / 255))
    with pytest.raises(DataError, match="look like raw values"):
        g.predict(xr.astype(np.float64))


def test_run_keeps_raw_input_in_its_own_type(rng):
    """A uint8 data set is checked without an int64 copy of the whole set (the engine widens
    each chunk), and runs bit for bit as the same values in int64 do."""
    import emulator
    from emulator.run import _check_array_input
    spec = InputSpec((2, 2, 1), raw_max=255, scale=1 / 255)
    net = _net(spec).validate()
    x8 = rng.integers(0, 256, (5, 2, 2, 1)).astype(np.uint8)
    kept = _check_array_input(net, x8)
    assert kept.dtype == np.uint8 and np.array_equal(kept, x8)
    assert spec.check_raw(x8).dtype == np.int64  # the public default is unchanged
    a = emulator.run(net, x8, 6, threads=1, detail="all")
    b = emulator.run(net, x8.astype(np.int64), 6, threads=1, detail="all")
    assert np.array_equal(a.predictions, b.predictions)
    bad = x8.astype(np.int16)
    bad[3, 1, 0, 0] = 300
    with pytest.raises(DataError, match=r"raw value 300 in sample 3"):
        _check_array_input(net, bad)
