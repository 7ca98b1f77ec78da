"""Where the chunks of a run execute: in this process, or on a Dask ``distributed`` cluster.

Both backends produce :class:`~emulator.raw.RawResult` chunks of consecutive samples and reduce
them as they arrive (detail first goes to the :class:`~emulator.sink.DetailSink`, if any), so
the driver's memory does not grow with the number of samples.  Integer reductions are exact and
order-free, and the input encoders are keyed by the global sample id, so a run on any number of
workers, threads or chunk sizes equals the single-process run bit for bit.

The Dask backend takes the user's ``distributed.Client`` (a ``LocalCluster``, a
``dask_jobqueue.SLURMCluster``, a scheduler address): no cluster is set up here.

* The network is scattered once with ``broadcast=True`` — one copy per worker, not per task;
  each worker packs it once (the packing is cached on the worker's copy) and loads the compiled
  kernels from Numba's on-disk cache.
* Sample chunks are tasks; at most a few per worker are in flight, so neither the driver, the
  scheduler nor the workers hold more than a window of inputs and results.
* A worker that dies takes only its running tasks with it: the scheduler resubmits them
  elsewhere (``distributed.scheduler.allowed-failures``), and a task that still failed is
  resubmitted by the driver ``retries`` times; a chunk can never be counted twice
  (:meth:`~emulator.raw.RawResult.merge` refuses overlapping samples).
* One compiled call at a time per worker process (Numba's default threading layer is not
  re-entrant), with the worker's thread count as Numba threads.
"""

from __future__ import annotations

import copy
import threading

import numpy as np

from hw_models.errors import SimulationError

from .raw import RawResult

_KERNEL_LOCK = threading.Lock()  # per process: one compiled parallel call at a time


def slice_input(x, a: int, b: int):
    """Samples ``a:b`` of an input array, :class:`~emulator.event_input.EventBatch` or sample
    source (:mod:`emulator.inputs`: a reference, read where the chunk runs)."""
    if hasattr(x, "part") and hasattr(x, "load"):
        return x.part(a, b)
    if hasattr(x, "offsets"):
        from .event_input import EventBatch
        off = np.asarray(x.offsets, np.int64)
        lo, hi = int(off[a]), int(off[b])
        return EventBatch(steps=np.asarray(x.steps)[lo:hi], neurons=np.asarray(x.neurons)[lo:hi],
                          offsets=off[a:b + 1] - lo, shape=tuple(x.shape), n_steps=x.n_steps,
                          dropped=None if x.dropped is None else np.asarray(x.dropped)[a:b])
    return x[a:b]


def n_samples_of(x) -> int:
    return len(x.offsets) - 1 if hasattr(x, "offsets") else len(x)


def _prepare(x, internal):
    """Engine input for a chunk: the public layout → the engine's, int64 (per chunk, so a
    large data set is never copied whole)."""
    return x if hasattr(x, "offsets") else internal(x)


def run_local(net, x, steps, *, record=(), seed=0, threads=None, batch_size=None, detail=(),
              refs=None, progress=None, sink=None, internal=None, timing=None) -> RawResult:
    """Run in this process (threads over samples); reduce batch by batch."""
    from .engine import simulate_chunks
    N = n_samples_of(x)
    bs = int(batch_size) if batch_size else None
    total = RawResult(int(steps))
    # convert the input layout per slice of at most 4096 samples, not the whole set at once
    span = max(bs or 0, 4096)
    for a in range(0, N, span):
        b = min(N, a + span)
        xs = _prepare(slice_input(x, a, b), internal) if internal else slice_input(x, a, b)
        rs = {k: v[a:b] for k, v in (refs or {}).items()}
        for part in simulate_chunks(net, xs, steps, start=a, record=record, seed=seed,
                                    threads=threads, batch_size=bs, detail=detail, refs=rs,
                                    progress=progress, timing=timing):
            total = total.merge(sink.write(part) if sink is not None else part)
    return total


def _chunk_task(net, x, start, steps, record, seed, threads, batch_size, detail, refs,
                internal=None, timing=None):
    """One task on a worker: the samples ``start …`` of ``x`` → their RawResult.  ``x``
    travels in its own dtype (uint8 images stay 1 byte a pixel) and is converted here."""
    from .engine import simulate_chunks
    if internal is not None:
        x = _prepare(x, internal)
    try:
        from distributed import get_worker
        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):  # pragma: no cover - not on a worker
        nthreads = None
    with _KERNEL_LOCK:
        parts = list(simulate_chunks(net, x, steps, start=start, record=record, seed=seed,
                                     threads=threads or nthreads, batch_size=batch_size,
                                     detail=detail, refs=refs, timing=timing))
    return RawResult.merge_all(parts, steps=steps)


def default_chunk_size(N: int, n_workers: int) -> int:
    """About four tasks per worker, at most 1024 samples each (a lost worker costs little)."""
    return int(max(1, min(1024, -(-N // max(4 * n_workers, 1)))))


#: largest and smallest chunk of the default (guided) schedule
MAX_CHUNK = 1024


def chunk_bounds(N: int, n_workers: int, chunk_size: int | None = None,
                 threads: int = 1) -> list:
    """The sample ranges ``[(a, b), ...]`` of the tasks, in submission order.

    With ``chunk_size``: equal chunks.  Without (guided self-scheduling, Polychronopoulos &
    Kuck 1987): each chunk a share ``1 / (2 · workers)`` of what is left, at most
    :data:`MAX_CHUNK`, at least ``N / (64 · workers)`` and ``4 · threads`` (the threads of a
    worker share a task's samples) — big tasks while there is much to do,
    small ones at the end, so the workers finish close together (a fixed cut into ``4 ·
    workers`` chunks left one worker idle for up to a chunk at the end).  Deterministic, and
    the result does not depend on the cut anyway."""
    N = int(N)
    if chunk_size is not None and chunk_size != 0:
        cs = int(chunk_size)
        if cs < 1:
            raise SimulationError(f"chunk_size must be >= 1, got {chunk_size}")
        return [(a, min(N, a + cs)) for a in range(0, N, cs)]
    w = max(1, int(n_workers))
    lo = max(1, -(-N // (64 * w)), 4 * int(threads) if threads and threads > 1 else 1)
    out, a = [], 0
    while a < N:
        c = min(MAX_CHUNK, max(lo, -(-(N - a) // (2 * w))))
        out.append((a, min(N, a + c)))
        a += c
    return out


#: Dask settings for the clusters this project starts (``--workers N``, the benchmarks, the
#: tests): the defaults poll every server's event loop every 20 ms, profile every worker thread
#: every 10 ms and sample the system every 0.5 s, which cost 4-8 % of a core per process next
#: to a CPU-bound task (measured: idle 2-worker LocalCluster 0.11 CPU-s per second with the
#: defaults, 0.015 with these).  Nothing here changes what runs or its result.
QUIET_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "1s",
}


def local_cluster(n_workers: int, threads_per_worker: int = 1, **kw):
    """A ``distributed.LocalCluster`` of ``n_workers`` processes with :data:`QUIET_CONFIG`
    (the workers inherit it through their nannies, also when one is restarted)."""
    import dask
    from distributed import LocalCluster
    kw.setdefault("dashboard_address", None)
    with dask.config.set(QUIET_CONFIG):
        return LocalCluster(n_workers=int(n_workers), threads_per_worker=threads_per_worker,
                            processes=True, **kw)


def _warm_task(net, steps, x):
    from .engine import simulate_chunks
    with _KERNEL_LOCK:
        for _ in simulate_chunks(net, x, steps, threads=1):
            pass
    return True


def warm_up(client, net, x, steps: int) -> None:
    """Compile (or load from Numba's cache) and pack ``net`` on every worker of ``client``,
    running the first sample of ``x`` (what :func:`emulator.run` takes) once there; a later
    run of an equal network then starts at full speed (its packing is found by fingerprint).
    Optional: runs warm up by themselves, this only moves that start-up out of a timed run."""
    from .inputs import is_source
    from .run import _as_engine_input, _check_array_input, _SourceInput
    # two samples where there are two: a lone sample's shape can read as one unbatched sample
    xs = slice_input(x, 0, min(2, n_samples_of(x)))
    if net.input.encoding != "events":
        xs = _SourceInput(net)(xs) if is_source(xs) else \
            _as_engine_input(_check_array_input(net, xs))
    net_f = client.scatter(network_for_transport(net), broadcast=True, hash=False)
    try:
        futs = [client.submit(_warm_task, net_f, int(steps), xs, workers=[w],
                              allow_other_workers=False, pure=False)
                for w in client.scheduler_info().get("workers", {})]
        client.gather(futs)
    finally:
        client.cancel([net_f])


def network_for_transport(net):
    """A shallow copy of ``net`` without the driver's packing cache (workers pack their own)."""
    from .engine import _CACHE_ATTR
    c = copy.copy(net)
    if _CACHE_ATTR in getattr(c, "__dict__", {}):
        del c.__dict__[_CACHE_ATTR]
    return c


def _threads_of(client) -> int:
    """The most threads any worker of ``client`` has."""
    ws = client.scheduler_info().get("workers", {})
    return max([int(w.get("nthreads", 1)) for w in ws.values()] or [1])


def n_workers_of(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def run_dask(client, net, x, steps, *, record=(), seed=0, threads=None, batch_size=None,
             detail=(), refs=None, progress=None, sink=None, internal=None, chunk_size=None,
             retries: int = 2, timing=None) -> RawResult:
    """Run the chunks as tasks on ``client``'s cluster; reduce on the driver as they finish."""
    try:
        from distributed import as_completed
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise SimulationError("client= needs the 'dask' extra: pip install neuroemu[dask]") \
            from exc
    N = n_samples_of(x)
    T = int(steps)
    workers = n_workers_of(client)
    bounds = chunk_bounds(N, workers, chunk_size, threads=threads or _threads_of(client))
    nets = [client.scatter(network_for_transport(net), broadcast=True, hash=False)]
    window = max(2, 2 * workers)
    tries = {}

    def submit(i):
        a, b = bounds[i]
        xs = slice_input(x, a, b)
        if not hasattr(xs, "offsets") and not hasattr(xs, "load"):
            xs = np.ascontiguousarray(xs)
        rs = {k: np.asarray(v[a:b]) for k, v in (refs or {}).items()}
        fut = client.submit(_chunk_task, nets[-1], xs, a, T, tuple(record), seed, threads,
                            batch_size, tuple(detail), rs, internal, timing, pure=False,
                            key=f"neuroemu-chunk-{a}-{b}-{id(bounds):x}-{tries.get(i, 0)}")
        owner[fut.key] = i
        live[fut.key] = fut
        return fut

    owner: dict = {}
    live: dict = {}
    total = RawResult(T)
    nxt = 0
    ac = as_completed()
    try:
        while nxt < len(bounds) and nxt < window:
            ac.add(submit(nxt))
            nxt += 1
        for fut in ac:
            i = owner.pop(fut.key)
            live.pop(fut.key, None)
            if _failed(fut):
                tries[i] = tries.get(i, 0) + 1
                _retry_or_raise(fut, tries[i], retries, f"chunk {bounds[i]}")
                _scatter_again_if_lost(client, nets, lambda: network_for_transport(net))
                ac.add(submit(i))   # a lost worker costs only this chunk
                continue
            part = fut.result()
            fut.release()
            if part.ranges != (bounds[i],):
                raise SimulationError(f"chunk {bounds[i]} came back covering {part.ranges}")
            total = total.merge(sink.write(part) if sink is not None else part)
            if callable(progress):
                progress(bounds[i][1] - bounds[i][0])
            if nxt < len(bounds):
                ac.add(submit(nxt))
                nxt += 1
    finally:
        if live:
            client.cancel(list(live.values()))
        client.cancel(nets)
    return total


def _failed(fut) -> bool:
    """An error, or a task the scheduler forgot (cancelled or lost with its worker)."""
    return fut.status in ("error", "cancelled", "lost")


def _retry_or_raise(fut, n_tries: int, retries: int, what: str) -> None:
    """Raise the failed future's error (or a SimulationError for a cancelled one) unless it is
    a lost worker's and ``n_tries`` ≤ ``retries``: then the caller submits it again."""
    exc = fut.exception() if fut.status == "error" else None
    if n_tries > retries or (exc is not None and not _retryable(exc)):
        raise exc if exc is not None else SimulationError(
            f"{what} was cancelled {n_tries} times (workers lost)")


def _scatter_again_if_lost(client, copies: list, make) -> None:
    """If the newest scattered copy in ``copies`` is gone (its every holder died), scatter
    ``make()`` again to all workers and append its future."""
    if copies[-1].status != "finished":
        copies.append(client.scatter([make()], broadcast=True, hash=False)[0])


def _retryable(exc) -> bool:
    """A worker lost under the task (not an error of the run itself)."""
    name = type(exc).__name__
    return name in ("KilledWorker", "CommClosedError", "FutureCancelledError",
                    "CancelledError") or isinstance(exc, (OSError, ConnectionError))


def _point_task(fn, item, shared):
    """One independent task (a sweep point) on a worker: ``fn(*item, **shared)``."""
    try:
        from distributed import get_worker
        nthreads = get_worker().state.nthreads
    except (ImportError, ValueError, AttributeError):  # pragma: no cover - not on a worker
        nthreads = None
    with _KERNEL_LOCK:
        return fn(*item, **shared, threads=nthreads)


def run_tasks(client, fn, items, shared: dict, retries: int = 2):
    """Run ``fn(*item, **shared, threads=…)`` for every item on ``client``'s workers; yield
    the results as they finish.  ``shared`` (model, data, …) is sent once per worker; a task
    lost with its worker is resubmitted (up to ``retries`` times), never run twice to
    completion; closing the generator cancels what is still running."""
    from distributed import as_completed
    items = list(items)
    if not items:
        return
    # one object, not per key; a list, since a lost copy is scattered again (below)
    shared_fs = [client.scatter([shared], broadcast=True, hash=False)[0]]
    tries = [0] * len(items)
    owner, live = {}, {}
    tag = f"{id(items):x}"

    def submit(i):
        fut = client.submit(_point_task, fn, tuple(items[i]), shared_fs[-1], pure=False,
                            key=f"neuroemu-task-{tag}-{i}-{tries[i]}")
        owner[fut.key], live[fut.key] = i, fut
        return fut

    ac = as_completed([submit(i) for i in range(len(items))])
    try:
        for fut in ac:
            i = owner.pop(fut.key)
            live.pop(fut.key, None)
            if _failed(fut):  # retried, on a new copy of the shared data if its copies died
                tries[i] += 1
                _retry_or_raise(fut, tries[i], retries, f"task {i}")
                _scatter_again_if_lost(client, shared_fs, lambda: shared)
                ac.add(submit(i))
                continue
            out = fut.result()
            fut.release()
            yield out
    finally:
        if live:
            client.cancel(list(live.values()))
        client.cancel(shared_fs)
