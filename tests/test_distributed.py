"""Chunked runs, the exact merge, streamed detail, and the Dask backend on a real LocalCluster.

The cluster tests start one ``distributed.LocalCluster`` of two worker processes for the module
and stop it at the end; every result is compared bit for bit with the single-process run.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import emulator
from emulator.raw import RawResult, register_counter
from emulator.result import Result
from hw_models.errors import SimulationError
from netgen import random_inputs, random_network

T = 10


@pytest.fixture(scope="module")
def net():
    return random_network(7, overflow="saturate", encoding="bernoulli")


@pytest.fixture(scope="module")
def data(net):
    x = random_inputs(net, 24, 3, T)
    labels = np.arange(24) % net.population(net.output).size
    return x, labels


def same_result(a: Result, b: Result, detail=True):
    """Exact equality of everything two Results hold (floats derived from equal integers)."""
    assert a.n_samples == b.n_samples and a.counters == b.counters
    assert a.per_population == b.per_population and a.per_projection == b.per_projection
    for k in a.per_core:
        assert np.array_equal(a.per_core[k], b.per_core[k]), k
    assert set(a.hits) == set(b.hits)
    for k in a.hits:
        assert np.array_equal(a.hits[k], b.hits[k]), k
    assert np.array_equal(a.settle_hist, b.settle_hist)
    for k in a.spike_sum:
        assert np.array_equal(a.spike_sum[k], b.spike_sum[k])
        assert np.array_equal(a.spike_sq[k], b.spike_sq[k])
    if a.accuracy is not None:
        assert np.array_equal(a.accuracy, b.accuracy)
    if detail:
        assert np.array_equal(a.predictions, b.predictions)
        for k in a.spike_counts:
            assert np.array_equal(a.spike_counts[k], b.spike_counts[k])
        assert set(a.spikes) == set(b.spikes)
        for k in a.spikes:
            assert np.array_equal(a.spikes[k], b.spikes[k]), k


# ---- the raw result ------------------------------------------------------------------------

def _part(rng, a, b, steps=4):
    return RawResult(steps, ((a, b),), {"spikes": rng.integers(0, 9, 5),
                                         "hits/labels": rng.integers(0, 3, steps)},
                     {"final_predictions": [(a, np.arange(a, b))]})


def test_merge_is_exact_associative_and_order_free(rng):
    parts = [_part(rng, a, a + 3) for a in range(0, 15, 3)]
    left = RawResult.merge_all(parts)
    right = parts[0].merge(parts[1].merge(parts[2].merge(parts[3].merge(parts[4]))))
    shuffled = RawResult.merge_all([parts[i] for i in (3, 0, 4, 2, 1)])
    for r in (right, shuffled):
        assert r.ranges == ((0, 15),) and r.n_samples == 15
        assert all(np.array_equal(left.counters[k], r.counters[k]) for k in left.counters)
        assert np.array_equal(r.joined("final_predictions"), np.arange(15))
    assert np.array_equal(left.counters["spikes"], sum(p.counters["spikes"] for p in parts))


def test_merge_refuses_double_count_and_unknown_counters(rng):
    a = _part(rng, 0, 4)
    with pytest.raises(SimulationError, match="covered twice"):
        a.merge(_part(rng, 2, 6))
    with pytest.raises(SimulationError, match="not registered"):
        RawResult(4, ((0, 1),), {"mystery": np.zeros(2, np.int64)})
    with pytest.raises(SimulationError, match="gaps"):
        a.merge(_part(rng, 6, 8)).joined("final_predictions")
    register_counter("test_peak", "max")   # one registration adds a counter kind
    m = RawResult(4, ((0, 1),), {"test_peak": np.array([3, 1])}).merge(
        RawResult(4, ((1, 2),), {"test_peak": np.array([2, 5])}))
    assert m.counters["test_peak"].tolist() == [3, 5]


# ---- chunked runs in one process ----------------------------------------------------------

def test_any_batch_size_and_detail_choice_gives_the_same_result(net, data):
    x, labels = data
    full = emulator.run(net, x, T, labels=labels, record=["input"], batch_size=24,
                        detail="all")
    for bs in (1, 5):
        same_result(full, emulator.run(net, x, T, labels=labels, record=["input"],
                                       batch_size=bs, detail="all"))
    lean = emulator.run(net, x, T, labels=labels, batch_size=7, detail=())
    same_result(full, lean, detail=False)
    assert lean.predictions is None and lean.spike_counts == {}
    for k, v in full.spike_counts.items():   # the per-neuron sums equal the full counts summed
        assert np.array_equal(lean.spike_sum[k], v.sum(axis=0))


def test_detail_streamed_to_file_is_atomic_and_complete(net, data, tmp_path):
    x, labels = data
    full = emulator.run(net, x, T, labels=labels, record=["input"], detail="all")
    path = tmp_path / "run.h5"
    streamed = emulator.run(net, x, T, labels=labels, record=["input"], batch_size=5,
                            detail=("predictions", "spike_counts"), detail_file=path)
    assert not path.exists() and streamed.predictions is None   # nothing final before save
    streamed.save(path)
    same_result(full, Result.load(path))
    # a run abandoned before save leaves no file and no temporary behind
    other = tmp_path / "other.h5"
    r = emulator.run(net, x, T, detail=("predictions",), detail_file=other)
    r._sink.abort()
    assert not other.exists() and not list(tmp_path.glob(".other.h5*"))


# ---- a real LocalCluster of two worker processes ------------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    from emulator.backends import local_cluster
    cluster = local_cluster(2)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_cluster_run_equals_single_process(net, data, client):
    x, labels = data
    local = emulator.run(net, x, T, labels=labels, record=["input"], detail="all")
    done = []
    dist = emulator.run(net, x, T, labels=labels, record=["input"], client=client,
                        chunk_size=5, progress=done.append, detail="all")
    same_result(local, dist)
    assert sum(done) == len(x) and len(done) == 5        # progress fed by finished tasks
    assert dist.meta["backend"].startswith("dask (2")


def test_worker_killed_mid_run_result_still_identical(net, data, client):
    x, labels = data
    x = np.concatenate([x] * 4)
    labels = np.concatenate([labels] * 4)
    local = emulator.run(net, x, T, labels=labels, detail=())
    pids = client.run(os.getpid)
    killed = []

    def kill_one(n):
        if not killed:
            pid = next(iter(pids.values()))
            os.kill(pid, signal.SIGKILL)   # the nanny restarts it; its chunks run again
            killed.append(pid)

    dist = emulator.run(net, x, T, labels=labels, detail=(), client=client, chunk_size=3,
                        progress=kill_one)
    assert killed
    same_result(local, dist, detail=False)
    client.wait_for_workers(2, timeout=60)


def test_sweep_on_cluster_identical_and_resumable(client, tmp_path):
    pytest.importorskip("sklearn")
    from neuroemu.pipeline import sweep
    from neuroemu.sweep import STOP_ENV, SweepStopped, read_sweep
    kw = dict(bits=(4, 6), methods=("ecc",), steps=12, samples=30, calib_samples=60)
    local = sweep("digits", "digits-train", "digits", tmp_path / "local.h5", **kw)
    out = tmp_path / "dist.h5"
    os.environ[STOP_ENV] = "1"
    try:
        with pytest.raises(SweepStopped):
            sweep("digits", "digits-train", "digits", out, client=client, **kw)
    finally:
        del os.environ[STOP_ENV]
    assert len(read_sweep(out)["points"]) == 1               # stopped after one point
    lines = []
    sweep("digits", "digits-train", "digits", out, client=client, log=lines.append, **kw)
    assert any("1 of 2 points already done" in s for s in lines)
    a, b = read_sweep(local)["points"], read_sweep(out)["points"]
    assert list(a) == list(b) == ["ecc_b4", "ecc_b6"]
    for k in a:
        for f in ("accuracy", "agreement", "predictions_final"):
            assert np.array_equal(a[k][f], b[k][f]), (k, f)
        assert a[k]["counters"] == b[k]["counters"]
        assert a[k]["per_population"] == b[k]["per_population"]


def test_cli_run_on_a_scheduler_equals_local(net, data, client, tmp_path):
    import h5py

    from neuroemu.cli import main
    x, labels = data
    np.savez(tmp_path / "d.npz", x=x, y=labels)
    net.save(tmp_path / "n.h5")
    base = ["run", str(tmp_path / "n.h5"), "--data", str(tmp_path / "d.npz"), "--steps",
            str(T), "--detail", "predictions", "--record", "input", "-q"]
    assert main(base + ["-o", str(tmp_path / "local.h5")]) == 0
    assert main(base + ["-o", str(tmp_path / "dist.h5"), "--scheduler",
                        client.scheduler.address, "--chunk-size", "4"]) == 0
    with h5py.File(tmp_path / "local.h5") as a, h5py.File(tmp_path / "dist.h5") as b:
        for k in ("predictions", "accuracy", "hits/labels", "settle", "spikes/input"):
            assert np.array_equal(a[k][()], b[k][()]), k
        assert dict(a["counters"].attrs) == dict(b["counters"].attrs)


# ---- transport and the task schedule -------------------------------------------------------

def test_transport_narrows_integers_exactly(rng):
    import pickle
    small = rng.integers(0, 200, 50_000).astype(np.int64)
    wide = np.array([0, 2**40, -5], np.int64)
    neg = np.array([-3, 100], np.int64)
    pred = rng.integers(0, 10, (6, 40)).astype(np.int64)
    r = RawResult(6, ((0, 40),), {"spikes": small, "active": wide, "hits/labels": neg},
                  {"predictions": [(0, pred)]})
    blob = pickle.dumps(r, protocol=5)
    assert len(blob) < small.nbytes // 6                    # the per-neuron sums go as uint8
    back = pickle.loads(blob)
    for k, v in r.counters.items():
        assert back.counters[k].dtype == np.int64 and np.array_equal(back.counters[k], v), k
    got = back.detail["predictions"][0][1]
    assert got.dtype == np.int64 and np.array_equal(got, pred)
    assert back.merge(RawResult(6, ((40, 41),), {k: v[:1] * 0 + v for k, v in
                                                  r.counters.items()})).n_samples == 41


def test_guided_chunks_cover_every_sample_once():
    from emulator.backends import MAX_CHUNK, chunk_bounds
    for n, w, th in ((1, 1, 1), (24, 2, 1), (1000, 2, 1), (10_000, 2, 1), (100_000, 16, 8)):
        b = chunk_bounds(n, w, threads=th)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(x[1] == y[0] for x, y in zip(b, b[1:]))
        sizes = [hi - lo for lo, hi in b]
        assert max(sizes) <= MAX_CHUNK and sizes == sorted(sizes, reverse=True)[:len(sizes)]
    assert chunk_bounds(10, 2, chunk_size=4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(SimulationError, match="chunk_size"):
        chunk_bounds(10, 2, chunk_size=-1)


def test_an_equal_copy_of_a_network_is_not_packed_again(net, monkeypatch):
    import pickle

    from emulator import compile as C
    from emulator.backends import network_for_transport
    from emulator.engine import packed_network
    first = packed_network(net)
    calls = []
    monkeypatch.setattr(C, "pack", lambda *a, **k: calls.append(1) or first)
    copy = pickle.loads(pickle.dumps(network_for_transport(net)))   # what a worker receives
    assert packed_network(copy)[0] is first[0] and not calls


# ---- inputs read per chunk where the chunk runs ---------------------------------------------

def test_npy_source_local_equals_array_and_bad_rows_are_named(net, data, tmp_path):
    from emulator.inputs import NpySamples
    from hw_models.errors import DataError, FileFormatError
    x, labels = data
    np.save(tmp_path / "x.npy", x)
    src = NpySamples(tmp_path / "x.npy")
    assert len(src) == len(x) and src.sample_shape == x.shape[1:]
    same_result(emulator.run(net, x, T, labels=labels, detail="all"),
                emulator.run(net, src, T, labels=labels, detail="all", batch_size=5))
    bad = x.copy()
    bad[17].flat[0] = 10**6                        # outside the raw range
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(DataError, match=r"bad.npy', 0, 24\)"):
        emulator.run(net, NpySamples(tmp_path / "bad.npy"), T)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="pickle"):
        NpySamples(tmp_path / "obj.npy")


def test_npy_source_on_the_cluster_is_read_by_the_workers(net, data, client, tmp_path,
                                                           monkeypatch):
    from emulator.inputs import NpySamples
    x, labels = data
    np.save(tmp_path / "x.npy", x)
    src = NpySamples(tmp_path / "x.npy")
    local = emulator.run(net, x, T, labels=labels, detail="all")
    from emulator.backends import warm_up
    warm_up(client, net, x, T)          # every worker packs and compiles before the run

    def driver_must_not_read(self):
        raise AssertionError("the driver read the samples")
    monkeypatch.setattr(NpySamples, "load", driver_must_not_read)   # this process only
    dist = emulator.run(net, src, T, labels=labels, detail="all", client=client, chunk_size=5)
    same_result(local, dist)


class _FakeFuture:
    def __init__(self, key, status, value=None):
        self.key, self.status, self.value = key, status, value

    def result(self):
        return self.value

    def exception(self):
        return None

    def release(self):
        pass


class _FakeClient:
    """A scripted stand-in for distributed.Client: the first submission of task 0 comes back
    'cancelled' and takes the only copy of the scattered data with it (the worker that held
    both died), which is the race a real cluster shows only now and then."""

    def __init__(self):
        self.scattered, self.submitted, self.cancelled = [], [], []

    def scatter(self, data, broadcast, hash):
        f = _FakeFuture(f"shared-{len(self.scattered)}", "finished", data[0])
        self.scattered.append(f)
        return [f]

    def submit(self, fn, fnarg, item, shared_f, pure, key):
        self.submitted.append((item, shared_f.key))
        if item == (0,) and len(self.submitted) == 1:
            shared_f.status = "lost"
            return _FakeFuture(key, "cancelled")
        return _FakeFuture(key, "finished", fnarg(*item, **shared_f.value, threads=None))

    def cancel(self, futs):
        self.cancelled.extend(f.key for f in futs)


def test_sweep_task_lost_with_the_shared_data_is_resubmitted_with_a_new_copy(monkeypatch):
    import distributed

    from emulator.backends import run_tasks

    class _AsCompleted:
        def __init__(self, futs):
            self.queue = list(futs)

        def add(self, f):
            self.queue.append(f)

        def __iter__(self):
            while self.queue:
                yield self.queue.pop(0)

    monkeypatch.setattr(distributed, "as_completed", _AsCompleted)
    client = _FakeClient()
    out = list(run_tasks(client, lambda i, k, threads: i * k, [(0,), (1,), (2,)], {"k": 10}))
    assert sorted(out) == [0, 10, 20]
    # task 0 ran again, on a second copy of the shared data; the others kept the first
    assert client.submitted == [((0,), "shared-0"), ((1,), "shared-0"), ((2,), "shared-0"),
                                ((0,), "shared-1")]
    assert set(client.cancelled) == {"shared-0", "shared-1"}
