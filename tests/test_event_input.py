"""Events → EventBatch: exact binning, count frames, transforms, data-set loaders."""

from __future__ import annotations

import numpy as np
import pytest

from emulator.event_input import (EventBatch, bin_events, count_frames, crop, downscale,
                                  load_dvs_gesture_clip, load_nmnist, polarity_channels,
                                  time_window)
from emulator.event_io import make_events, read_nmnist_bin
from hw_models.errors import DataError
from tests.conftest import require_data


def _naive_bins(ev, shape, n_steps, window, t0):
    """Plain-Python reference: list of (step, neuron) per kept event, sorted; drop count."""
    h, w, c = shape
    out, dropped = [], 0
    for t, x, y, p in ev.tolist():
        if not (t0 <= t < t0 + window):
            dropped += 1
            continue
        step = (t - t0) * n_steps // window
        neuron = (y * w + x) * c + (p if c == 2 else 0)
        out.append((step, neuron))
    return sorted(out), dropped


@pytest.mark.parametrize("n_steps, window, merge", [(100, 300_000, False), (7, 123_457, True),
                                                    (1, 50_000, False)])
def test_binning_matches_python_loop(n_steps, window, merge):
    ev = read_nmnist_bin(require_data("nmnist", "1.bs2"))
    shape = (34, 34, polarity_channels(merge))
    t0 = int(ev["t"][0])
    batch = bin_events([ev], shape, n_steps, window_us=window)
    expect, dropped = _naive_bins(ev, shape, n_steps, window, t0)
    steps, neurons = batch.sample(0)
    assert list(zip(steps.tolist(), neurons.tolist())) == expect
    assert int(batch.dropped[0]) == dropped
    assert len(expect) + dropped == len(ev)


def test_full_span_keeps_every_event():
    samples, _ = load_nmnist(require_data("nmnist"), split="test", limit=5)
    batch = bin_events(samples, (34, 34, 2), 50)
    assert batch.steps.dtype == np.int32 and batch.neurons.dtype == np.int32
    assert batch.offsets.dtype == np.int64
    assert np.array_equal(np.diff(batch.offsets), [len(s) for s in samples])
    assert batch.dropped.tolist() == [0] * 5
    for k, ev in enumerate(samples):
        steps, _ = batch.sample(k)
        assert steps.max() == 49 and steps.min() == 0


def test_absolute_t0_and_zero():
    ev = make_events([5, 10, 19, 20, 25], [0, 1, 2, 3, 0], [0, 0, 1, 1, 0], [0, 1, 0, 1, 1])
    b = bin_events([ev], (2, 4, 2), 3, window_us=15, t0=5)      # bins of 5 µs: [5,10) [10,15) [15,20)
    assert b.sample(0)[0].tolist() == [0, 1, 2] and b.dropped.tolist() == [2]
    b = bin_events([ev], (2, 4, 2), 2, window_us=20, t0="zero")
    assert b.sample(0)[0].tolist() == [0, 1, 1] and b.dropped.tolist() == [2]


def test_count_frames_consistent_with_binning():
    samples, _ = load_nmnist(require_data("nmnist"), split="train", limit=8)
    shape = (34, 34, 2)
    for scale in (1.0, 8.0):
        frames = count_frames(samples, shape, window_us=200_000, scale=scale)
        batch = bin_events(samples, shape, 37, window_us=200_000)
        assert frames.dtype == np.float32 and frames.shape == (8, 34, 34, 2)
        assert np.array_equal(batch.counts(), frames * scale)
    frames = count_frames(samples, shape, window_us=200_000, scale=3.0)
    np.testing.assert_allclose(frames * 3.0, batch.counts(), rtol=1e-6)
    merged = count_frames(samples, (34, 34, 1))
    assert np.array_equal(merged[..., 0], count_frames(samples, shape).sum(axis=-1))
    assert merged.sum() == sum(len(s) for s in samples)


def test_sorted_by_step_then_neuron_with_repeats():
    ev = make_events([0, 0, 0, 9], [1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0])
    b = bin_events(ev, (1, 2, 2), 2, window_us=10)
    assert list(zip(*b.sample(0))) == [(0, 0), (0, 3), (0, 3), (1, 0)]


def test_validate_rejects_bad_batches():
    ok = dict(steps=np.array([0, 1], np.int32), neurons=np.array([0, 3], np.int32),
              offsets=np.array([0, 2], np.int64), shape=(1, 2, 2), n_steps=2)
    EventBatch(**ok).validate()
    with pytest.raises(DataError, match="steps"):
        EventBatch(**{**ok, "steps": np.array([0, 2], np.int32)}).validate()
    with pytest.raises(DataError, match="neurons"):
        EventBatch(**{**ok, "neurons": np.array([0, 4], np.int32)}).validate()
    with pytest.raises(DataError, match="offsets"):
        EventBatch(**{**ok, "offsets": np.array([0, 1], np.int64)}).validate()
    with pytest.raises(DataError, match="sorted"):
        EventBatch(**{**ok, "steps": np.array([1, 0], np.int32)}).validate()
    with pytest.raises(DataError, match="int32"):
        EventBatch(**{**ok, "steps": np.array([0, 1], np.int64)}).validate()
    # a new sample may restart at step 0
    EventBatch(**{**ok, "steps": np.array([1, 0], np.int32),
                  "offsets": np.array([0, 1, 2], np.int64)}).validate()


def test_out_of_shape_events_are_an_error():
    ev = make_events([0], [40], [0], [1])
    with pytest.raises(DataError, match="x=40"):
        bin_events([ev], (34, 34, 2), 10)


def test_crop_downscale_time_window():
    ev = make_events([0, 5, 10, 15], [0, 10, 20, 33], [0, 12, 20, 33], [0, 1, 0, 1])
    c = crop(ev, 10, 10, 12, 12)
    assert c.tolist() == [(5, 0, 2, 1), (10, 10, 10, 0)]
    d = downscale(ev, 4)
    assert d["x"].tolist() == [0, 2, 5, 8] and d["y"].tolist() == [0, 3, 5, 8]
    assert time_window(ev, 5, 15)["t"].tolist() == [5, 10]
    with pytest.raises(DataError):
        downscale(ev, 0)


def test_load_nmnist_labels():
    require_data("nmnist", "train1K.txt")
    samples, labels = load_nmnist(require_data("nmnist"), split="test")
    assert len(samples) == len(labels) == 100
    assert labels[:4].tolist() == [7, 2, 1, 0]
    with pytest.raises(DataError):
        load_nmnist(require_data("nmnist"), split="valid")


def test_load_dvs_gesture_clip():
    ev, size = load_dvs_gesture_clip(require_data("dvs_gesture", "3.bs2"))
    assert size == (128, 128) and len(ev) == 565315 // 5
    b = bin_events([downscale(ev, 4)], (32, 32, 2), 20, window_us=1_450_000)
    assert b.offsets[-1] + b.dropped[0] == len(ev)
