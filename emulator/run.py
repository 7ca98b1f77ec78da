"""``emulator.run``: the public entry point — check the inputs, run an engine, wrap a Result.

Everything a user can get wrong is checked here, before any work, and reported as a
:class:`~hw_models.errors.DataError` that names the offending thing: the input shape against the
network's input spec (:attr:`CoreNetwork.spec`), raw values outside ``[0, raw_max]`` (with the
sample), float data outside the model's range, the wrong kind of input for the network's
encoding, unknown population names in ``record``, label count.  The engines trust what they get.
Then the compiled engine (:mod:`emulator.engine`) — or, with
``reference=True``, the dense NumPy reference (:mod:`emulator.reference`) — runs the batch.
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import DataError
from hw_models.safeio import check_int

from .result import Result

_CHECK_SLICE = 4096
#: per-sample detail kept by ``detail="all"`` (in memory; grows with N).  By default
#: :func:`run` keeps none, like the pipeline and the CLI.
ALL_DETAIL = ("predictions", "spike_counts")


def _check_source(net, src):
    """A sample source (:mod:`emulator.inputs`): its shape checked now, its values where each
    chunk is read (:class:`_SourceInput`)."""
    shape = tuple(net.spec.shape)
    if tuple(src.sample_shape) != shape and \
            int(np.prod(src.sample_shape)) != int(np.prod(net.input.shape)):
        raise DataError(f"{src!r}: samples of shape {tuple(src.sample_shape)}; the network "
                        f"takes ({', '.join(map(str, shape))}) per sample")
    if len(src) == 0:
        raise DataError("inputs hold no samples; pass at least one")
    return src


class _SourceInput:
    """Engine input of a chunk of a sample source: read, checked exactly as an array passed to
    :func:`run` is (``net.spec``; the error names the source and its sample range), converted.
    Picklable, so it runs on the worker that reads the chunk."""

    def __init__(self, net):
        self.spec = net.spec
        self.shape = tuple(net.input.shape)

    def __call__(self, src):
        x = self.spec.as_raw(np.asarray(src.load()), repr(src))
        return _as_engine_input(np.ascontiguousarray(x.reshape((len(x),) + self.shape)))


def _check_array_input(net, inputs) -> np.ndarray:
    inp = net.input
    from .inputs import is_source
    if is_source(inputs):
        return _check_source(net, inputs)
    if hasattr(inputs, "offsets"):
        raise DataError(f"network input {inp.name!r} has encoding {inp.encoding!r}: pass an "
                        f"integer array of shape (N, {', '.join(map(str, net.spec.shape))}), "
                        f"not an EventBatch")
    # raw integers checked and kept in their own type (uint8 stays uint8: the engine widens
    # each chunk to int64, so memory does not grow by 8 bytes a value of the whole set);
    # float model units quantised
    spec = net.spec
    x = spec.check_raw(inputs, keep_dtype=True) if spec.is_raw(inputs) else spec.as_raw(inputs)
    if len(x) == 0:
        raise DataError("inputs hold no samples; pass at least one")
    return np.ascontiguousarray(x.reshape((len(x),) + inp.shape))


def _as_engine_input(xs):
    """A checked slice → the engine's contiguous int64."""
    return np.ascontiguousarray(xs, np.int64)


def _check_event_input(net, inputs):
    inp = net.input
    if not hasattr(inputs, "offsets"):
        raise DataError(f"network input {inp.name!r} has encoding 'events': pass an EventBatch "
                        f"(emulator.event_input), not {type(inputs).__name__}")
    if tuple(inputs.shape) != tuple(inp.shape):
        raise DataError(f"EventBatch shape {tuple(inputs.shape)} does not match input "
                        f"population {inp.name!r} shape {inp.shape}")
    if hasattr(inputs, "validate"):
        inputs.validate()
    return inputs


def _check_labels(net, labels, n) -> np.ndarray:
    """One integer class per sample, each a neuron of the output population."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise DataError(f"labels have shape {labels.shape}, expected ({n},) (one per sample)")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind != "f" or not np.all(np.isfinite(labels)) \
                or np.any(labels != np.round(labels)):
            raise DataError(f"labels must be integer classes, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    classes = net.population(net.output).size
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise DataError(f"label {labels[bad[0]]} of sample {int(bad[0])} is not a class of the "
                        f"network (its output {net.output!r} has {classes} classes: 0.."
                        f"{classes - 1})")
    return labels


def run(net, inputs, steps: int, labels=None, record=(), seed: int = 0, reference: bool = False,
        threads: int | None = None, batch_size: int | None = None,
        progress=False, timing=None, *, client=None, detail=(),
        references=None, detail_file=None, chunk_size: int | None = None) -> Result:
    """Run ``net`` on a batch of ``inputs`` for ``steps`` steps and return a :class:`Result`.

    ``inputs`` — the same array :meth:`Graph.predict` and ``converter.convert`` take, in the
    network's input layout (``net.spec.shape`` per sample, e.g. (1, 28, 28) for an NCHW model),
    or a sample source read chunk by chunk where the chunk runs (:mod:`emulator.inputs`, e.g.
    ``NpySamples("x.npy")``: with ``client=``, the samples never pass through this process):

    * **raw integers** (any integer dtype, e.g. the uint8 images as loaded) in
      ``[0, net.spec.raw_max]`` — the numbers the chip takes, used as they are;
    * **floats in the model's own units** (e.g. ``x / 255`` for a model trained on pixels/255):
      quantised to raw integers as ``rint((x − offset) / scale)`` with the network's input spec
      (round half to even; ``uint8 / 255`` comes back exactly).  Floats outside the model's
      range (e.g. floats 0..255 for a 0..1 model) are refused with a :class:`DataError` that
      says what was expected and what was seen.  A hand-built network (no input spec) has model
      units = raw units;
    * an :class:`~emulator.event_input.EventBatch` for an ``events`` input (events binned into
      steps, see :func:`emulator.event_input.bin_events`).

    ``labels`` (N,) gives the accuracy curve.  ``record`` names populations whose spikes are kept
    as (sample, step, neuron) rows.  ``seed`` keys the random input encoders.
    ``reference=True`` runs the dense NumPy reference instead of the engine (same result, much
    slower).  ``threads`` bounds the engine's threads (default: Numba's; on a cluster: the
    worker's), ``batch_size`` the samples per compiled call, ``progress`` shows a progress bar
    (True) or is called with the number of samples of every finished chunk.  ``timing`` (a
    profile name, a
    :class:`~hw_models.profiles.ChipProfile` or a :class:`hw_models.latency.Timing`) counts
    per-step, per-core work and times every step on that chip (``Result.work``,
    ``Result.latency_report()``); None skips it.  The step times are reduced as chunks finish
    to the exact sums the report needs (:data:`hw_models.latency.STEP_STATS`), so timing
    adds no per-sample memory either.

    Memory: counters, accuracy per step, agreement with ``references`` ({name: (N,) classes},
    e.g. the float network's predictions) and per-neuron spike sums are reduced chunk by chunk.
    ``detail`` names the per-sample arrays kept: ``predictions`` (T, N), ``final_predictions``
    (N,), ``spike_counts`` (N, n) per population, or ``"all"`` (predictions and spike counts);
    rasters via ``record``.  By default none is kept, so memory does not grow with N (as in
    the pipeline and the CLI); what is kept stays in memory, or with ``detail_file=PATH`` is
    streamed into the result file ``PATH`` as chunks finish (completed atomically by
    ``Result.save(PATH)``).  ``reference=True`` (small checks) always keeps predictions and
    spike counts.

    ``client``: a ``distributed.Client``; the samples then run as tasks of ``chunk_size``
    samples on its workers (:mod:`emulator.backends`), with the same result bit for bit.
    """
    from .backends import run_dask, run_local
    net.validate()
    steps = check_int(steps, "steps")
    record = tuple([record] if isinstance(record, str) else record)
    if isinstance(detail, str):
        detail = ALL_DETAIL if detail == "all" else (detail,)
    detail = tuple(detail or ())
    names = [p.name for p in net.populations]
    unknown = [r for r in record if r not in names]
    if unknown:
        raise DataError(f"cannot record unknown population(s) {unknown}; the network has "
                        f"{names}")
    bad = [d for d in detail if d not in ("predictions", "final_predictions", "spike_counts")]
    if bad:
        raise DataError(f"unknown detail {bad}; choose from predictions, final_predictions, "
                        f"spike_counts or 'all' (rasters: record=)")
    if net.input.encoding == "events":
        x = _check_event_input(net, inputs)
        n = x.n_samples if hasattr(x, "n_samples") else len(x.offsets) - 1
        internal = None
    else:
        x = _check_array_input(net, inputs)
        n = len(x)
        from .inputs import is_source
        internal = _SourceInput(net) if is_source(x) else _as_engine_input
    if n == 0:
        raise DataError("inputs hold no samples; pass at least one")
    if labels is not None:
        labels = _check_labels(net, labels, n)
    refs = {}
    if labels is not None:
        refs["labels"] = np.asarray(labels).astype(np.int64)
    for k, v in (references or {}).items():
        v = np.asarray(v)
        if v.shape != (n,):
            raise DataError(f"reference {k!r} has shape {v.shape}, expected ({n},)")
        refs[str(k)] = v.astype(np.int64)
    if timing is not None:
        from hw_models.latency import Timing, timing_for
        if not isinstance(timing, Timing):
            timing = timing_for(timing)
    sizes = {p.name: p.size for p in net.populations}
    meta = {"engine": "reference" if reference else "numba", "seed": int(seed)}
    if reference:
        if client is not None or detail_file is not None:
            raise DataError("reference=True runs in this process only, without detail_file")
        from .reference import simulate as ref_simulate
        xin = x if internal is None else internal(x)
        raw = ref_simulate(net, xin, int(steps), record=record, seed=seed, timing=timing)
        pred = np.asarray(raw["predictions"])
        raw["hits"] = {k: (pred == v[None, :]).sum(axis=1, dtype=np.int64)
                       for k, v in refs.items()}
        return Result(raw, int(steps), labels=labels, sizes=sizes, meta=meta)
    sink = None
    if detail_file is not None:
        from .sink import DetailSink
        sink = DetailSink(detail_file, n, int(steps), sizes, detail=detail, record=record)
    bar = None
    if progress is True and n:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, unit="sample", desc="emulating", leave=False)
        progress = bar.update
    kw = dict(record=record, seed=seed, threads=threads, batch_size=batch_size,
              detail=detail, refs=refs, progress=progress or None, sink=sink,
              internal=internal, timing=timing)
    try:
        if client is None:
            raw = run_local(net, x, int(steps), **kw)
        else:
            raw = run_dask(client, net, x, int(steps), chunk_size=chunk_size, **kw)
            meta["backend"] = f"dask ({_n_workers(client)} workers)"
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    from .engine import raw_to_dict
    out = raw_to_dict(net, raw, timing=timing)
    out["n_samples"] = n
    return Result(out, int(steps), labels=labels, sizes=sizes, meta=meta, sink=sink)


def _n_workers(client) -> int:
    from .backends import n_workers_of
    return n_workers_of(client)
