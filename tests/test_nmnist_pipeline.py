"""N-MNIST end to end on a few samples: load → bin → convert → run → accuracy per step.

Uses the trained example network (``examples/nmnist_cnn.npz``) and the shared N-MNIST files;
skips, naming what is missing, when the shared data is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_example, require_data

N_SAMPLES = 6
STEPS = 12

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def ne():
    require_data("nmnist", "test100.txt")
    require_data("nmnist", "train1K.txt")
    return load_example("nmnist_events")


@pytest.fixture(scope="module")
def pipeline(ne):
    import emulator
    c = ne.load_record()["count_scale_c"]
    graph = ne.build_graph()
    train, _ = ne.load_split("train", 20)
    test, labels = ne.load_split("test", N_SAMPLES)
    batch = ne.events_batch(test, STEPS)
    net = ne.convert_for(graph, ne.frames(train, c), "events", None, 1.0 / c,
                         {"weight_bits": 8}, steps=STEPS)
    res = emulator.run(net, batch, STEPS, labels=labels, record=(net.input.name,))
    return {"test": test, "labels": labels, "batch": batch, "net": net, "res": res,
            "graph": graph, "c": c}


def test_float_graph_matches_record(ne):
    """The NumPy rebuild of the trained CNN gives the recorded float test accuracy."""
    rec = ne.load_record()
    test, labels = ne.load_split("test")
    acc = (ne.build_graph().predict(ne.frames(test, rec["count_scale_c"])).argmax(1)
           == labels).mean()
    assert acc == pytest.approx(rec["float_test_accuracy"], abs=1e-9)


def test_binning_keeps_every_event(pipeline):
    batch, test = pipeline["batch"], pipeline["test"]
    assert np.diff(batch.offsets).tolist() == [len(e) for e in test]
    assert batch.dropped.tolist() == [0] * N_SAMPLES


def test_network_takes_events(pipeline):
    net = pipeline["net"]
    assert net.input.encoding == "events"
    assert tuple(net.input.shape) == (34, 34, 2)


def test_accuracy_per_step(pipeline):
    acc = np.asarray(pipeline["res"].accuracy)
    assert acc.shape == (STEPS,)
    assert np.all((acc >= 0) & (acc <= 1))


def test_synaptic_events_counted(ne, pipeline):
    assert ne._total(pipeline["res"].counters["synaptic_events"]) > 0


def test_every_event_delivered_once(pipeline):
    """The input population emits exactly one spike per binned event, at the event's step."""
    net, batch, res = pipeline["net"], pipeline["batch"], pipeline["res"]
    rows = np.asarray(res.spikes[net.input.name])
    assert rows.shape == (len(batch.steps), 3)
    # compare the multiset of (sample, step, neuron) triples
    sample_of = np.repeat(np.arange(batch.n_samples), np.diff(batch.offsets))
    want = np.stack([sample_of, batch.steps.astype(np.int64), batch.neurons], axis=1)
    got = rows.astype(np.int64)
    got[:, 1] -= 1  # recorded steps are engine steps 1..T; EventBatch steps are 0..T-1
    key = lambda a: np.lexsort((a[:, 2], a[:, 1], a[:, 0]))  # noqa: E731
    assert np.array_equal(got[key(got)], want[key(want)])


def test_example_quick_runs(ne, capsys):
    """``examples/nmnist_events.py --quick`` runs and prints its table (no doc written)."""
    assert ne.main(["--quick", "--n-test", "4", "--n-calib", "10"]) == 0
    out = capsys.readouterr().out
    assert "| events (1 event = 1 spike) | 5 |" in out
    assert "count frame, analog current" in out


@pytest.mark.slow
def test_dvs_raster_example(tmp_path):
    """``examples/dvs_raster.py`` writes a PNG for a DVS Gesture clip."""
    require_data("dvs_gesture", "1.bs2")
    out = tmp_path / "raster.png"
    assert load_example("dvs_raster").main(["--steps", "40", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
