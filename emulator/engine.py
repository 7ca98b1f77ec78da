"""The event-queue engine: the whole time loop of a sample in one compiled function.

:func:`simulate` here is the Python side (checks, packing cache, chunks of samples, threads,
progress, exact counters); the ``@njit`` code lives in :mod:`emulator.kernels`.

Design (DESIGN.md "The engine"):

* **Spike queues, not synapse events.**  Every population keeps a ring of ``max_delay + 1``
  spike lists (source ids of one step each, in a flat int32 array, see :func:`_ring_layout`).
  When population P is processed at step t, each projection into P reads its source's list of
  step ``t − delay`` and scatters the weights into one accumulator (width chosen in
  :mod:`emulator.compile`), which the neuron loop then reads and clears.  Delay 0 reads the list
  its source wrote earlier in the same step (populations run in :meth:`CoreNetwork.order`).
* **Scatter kernels**: dense adds one contiguous weight row; conv adds ``W[c, ky, ·, :]`` for
  each valid kernel row, one contiguous run for stride-1/dilation-1 columns (the weight copy has
  kx reversed, so consecutive ``ox`` are consecutive memory), a per-(kx, ox) run of ``c_out``
  otherwise; valid (k, o) pairs per input row/column come precomputed, so no border tests.
  Weight rows are zero-padded, so a run ending at its row's end is added with its length
  rounded up to 8 (no scalar remainder loop on short rows such as LeNet's 5 × 6).
  Pools add ``w[c]`` (non-overlapping windows through a direct target table); the max-pool
  gate keeps counts per source and checks the winner of each reached window (the running-max
  gate raises each reached window's maximum to the spiking source's count); identity adds
  ``w[i mod C]``.  Inner adds run over array *views* (not index sums), which is what lets LLVM
  vectorise them.
* **Neuron update in one vectorisable pass** (``kernels._update``): for a saturating
  population Q, activity, ``u``, ``v`` (``dec`` as ``sign · (|x|·(4096−δ) >> 12)`` with sign
  masks; IF neurons skip both decays and ``u``), the clamp, the spike mark and the reset in one
  branch-free loop; 'wrap' and 'raise' apply their policy inline.  Every v is stored in range,
  so v (and the bias) are int32 when the ranges fit: small networks are bound by the memory
  traffic of this state.  IF populations whose v range, input bound and bias provably fit 32
  bits update in 32-bit lanes (``_sat_if32``, twice the lanes per vector; the reset is a select
  and a mask, no multiply; the loop neither counts spikes nor neurons left at their firing
  level, and a saturation is one compare).  A bias-free IF population under 'saturate' skips
  its update on a step where no spike arrived and no neuron is at its firing level (v is
  scanned for that once after an update, not in every update): nothing can change, and those
  updates are counted as inactive exactly as if performed (the cost then follows the spikes:
  an all-zero input costs the input encoder and the loop over populations).  The marks of 64
  neurons become one bit word in one vector compare, and up to 8 spikes per word are stored
  without a data-dependent branch (the rate encoder uses the same compaction).
* **Calls without reference counting**: the per-step kernels (scatter, update, compaction,
  counting, the work counters) borrow the sample's arrays and make their views themselves
  (:mod:`emulator._jit`); a Numba call otherwise costs two atomic operations per array
  argument and per view, which was ~600 ns per scatter call on LeNet-5, a fifth of its run.
* **Narrow weights**: the weight copy has the narrowest integer type that holds the network's
  weights (int8 for 8-bit profiles) and the exponent is applied as a shift where a weight meets
  the accumulator (int32 when the bound on |Q| allows, else int64), so the adds stay exact.
* **Counting without per-event work**: the kernel counts, per sample, spikes and active updates
  per neuron; delivered spikes per (projection, source neuron) follow at the end of a sample
  (spikes minus those of the last ``delay`` steps, still in the ring).  Synaptic events, their
  split by target core, messages and hops follow exactly from these and the geometry tables of
  :mod:`emulator.compile` (integer sparse products in :func:`simulate`).  Max-pool deliveries
  depend on the run and are counted directly.
* **Parallelism over samples** (``prange``, samples handed out one at a time) with per-sample
  state; integers only, so results do not depend on the thread count or the batch size.
  Random inputs use :func:`hw_models.rng.mix64` keyed by (seed, sample, step, neuron), ported
  in :func:`mix64`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numba
import numpy as np

from hw_models.errors import DataError, SimulationError, StateOverflowError
from hw_models.intrange import check_run_ranges
from hw_models.safeio import check_budget
from hw_models.rng import MASK

from . import compile as C
from . import work as WK
from .kernels import OUT_SLACK, _run_chunk, mix64, mix64_many  # noqa: F401  (re-exported)
from .raw import DETAIL_AXIS, RawResult
from .result import settle_steps


# ---- the Python side ------------------------------------------------------------------------
_CACHE_ATTR = "_emulator_packed"


def _buffer(a) -> np.ndarray:
    """The bytes of an array as a flat uint8 view (a copy only if it is not C-contiguous)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _fingerprint(net) -> bytes:
    """A digest of everything :func:`emulator.compile.pack` reads, to reuse a packing safely.
    SHA-256 over the arrays' own buffers (no byte copies): it runs on every call, and SHA-256
    has hardware support where BLAKE2b has none (0.5 vs 1.4 ms for an MLP's 0.66 MB of int8
    weights, measured)."""
    import hashlib
    h = hashlib.sha256()
    h.update(repr((net.output, net.readout, net.order())).encode())
    for p in net.populations:
        h.update(repr((p.name, p.shape, p.kind, p.threshold, p.reset, p.decay_u, p.decay_v,
                       p.v_init, p.v_min, p.v_max, p.overflow, p.spike_rule, p.spiking,
                       p.encoding, p.input_max)).encode())
        for a in (p.bias, p.core):
            h.update(b"-" if a is None else _buffer(a))
    for pr in net.projections:
        h.update(repr((pr.name, pr.source, pr.target, pr.kind, pr.exponent, pr.delay,
                       pr.kernel, pr.stride, pr.padding, pr.dilation, pr.gate, pr.groups,
                       pr.weights.dtype.str,
                       pr.weights.shape)).encode())
        h.update(_buffer(pr.weights))
    h.update(b"-" if net.placement is None else _buffer(net.placement))
    return h.digest()


#: the last few packings of this process by fingerprint, so an equal copy of a network (one
#: unpickled by every task or run on a Dask worker, or loaded again from its file) is not
#: packed again; the fingerprint covers everything the packing reads
_PACKS: "OrderedDict[tuple, tuple]" = OrderedDict()
_PACKS_KEEP = 4
_PACKS_LOCK = threading.Lock()


def packed_network(net, repeat: int = 1, fingerprint: bytes | None = None):
    """(Packed, Static) of ``net``, cached on the network object while it is unchanged (and
    for equal networks in this process, see ``_PACKS``); ``fingerprint``: :func:`_fingerprint`
    of ``net`` if the caller just computed it."""
    key = (_fingerprint(net) if fingerprint is None else fingerprint, repeat > 1)
    hit = getattr(net, _CACHE_ATTR, None)
    if hit is not None and hit[0] == key and (repeat <= 1 or hit[3] >= repeat):
        return hit[1], hit[2]
    with _PACKS_LOCK:
        got = _PACKS.get(key)
        if got is not None and (repeat <= 1 or got[2] >= repeat):
            _PACKS.move_to_end(key)
    if got is not None and (repeat <= 1 or got[2] >= repeat):
        packed, static, repeat = got
    else:
        packed, static = C.pack(net, repeat=repeat)
        with _PACKS_LOCK:
            _PACKS[key] = (packed, static, repeat)
            while len(_PACKS) > _PACKS_KEEP:
                _PACKS.popitem(last=False)
    try:
        object.__setattr__(net, _CACHE_ATTR, (key, packed, static, repeat))
    except (AttributeError, TypeError):  # pragma: no cover - a slotted or frozen network
        pass
    return packed, static


_RANGE_ATTR = "_emulator_ranges"


def _check_ranges(net, fingerprint, T, rep):
    """:func:`hw_models.intrange.check_run_ranges` of ``net`` for ``T`` steps, skipped when
    it already passed for the same fingerprint (which covers everything the proof reads),
    ``T`` and ``rep``: the proof sums |w| over every weight, several ms per call on an MLP."""
    key = (fingerprint, T, rep)
    if getattr(net, _RANGE_ATTR, None) == key:
        return
    check_run_ranges(net, T, rep)
    try:
        object.__setattr__(net, _RANGE_ATTR, key)
    except (AttributeError, TypeError):  # pragma: no cover - a slotted or frozen network
        pass


_WORK_ATTR = "_emulator_work"


def _cached(net, pk, what, build):
    """``build()`` cached on the network object beside its packing (same lifetime: the entry
    is dropped when the packing changes), keyed by ``what`` (hashable)."""
    cache = getattr(net, _WORK_ATTR, None)
    if cache is None or cache[0] is not pk:
        cache = (pk, {})
        try:
            object.__setattr__(net, _WORK_ATTR, cache)
        except (AttributeError, TypeError):  # pragma: no cover - a slotted or frozen network
            return build()
    if what not in cache[1]:
        cache[1][what] = build()
    return cache[1][what]


def _inputs(net, x, T):
    """(N, x int64 (N, n) or dummy, ev_steps, ev_neurons, ev_offsets, input ring capacity,
    repeat) for the kernel, with the same checks as the reference."""
    inp = net.input
    n = inp.size
    if inp.encoding == "events":
        if not hasattr(x, "offsets"):
            raise DataError(f"input population {inp.name!r} has encoding 'events': pass an "
                            f"EventBatch, not {type(x).__name__}")
        if tuple(x.shape) != tuple(inp.shape):
            raise DataError(f"EventBatch shape {tuple(x.shape)} does not match input "
                            f"population {inp.name!r} shape {inp.shape}")
        off = np.ascontiguousarray(x.offsets, np.int64)
        st = np.ascontiguousarray(x.steps, np.int32)
        ne = np.ascontiguousarray(x.neurons, np.int32)
        N = len(off) - 1
        cap, rep = 1, 1
        if len(st):
            sample = np.repeat(np.arange(N, dtype=np.int64), np.diff(off))
            keep = st.astype(np.int64) + 1 <= T
            if keep.any():
                key = (sample[keep] * (T + 1) + st[keep]) 
                _, per_step = np.unique(key, return_counts=True)
                cap = max(cap, int(per_step.max()))
                _, per_pair = np.unique(key * n + ne[keep], return_counts=True)
                rep = max(rep, int(per_pair.max()))
        return N, np.zeros((N, 1), np.int64), st, ne, off, cap, rep
    if hasattr(x, "offsets"):
        raise DataError(f"input population {inp.name!r} has encoding {inp.encoding!r}: pass an "
                        f"integer array, not an EventBatch")
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise DataError(f"input values must be integers, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[1:] != tuple(inp.shape):
        raise DataError(f"input has shape {x.shape}; expected (N, "
                        f"{', '.join(map(str, inp.shape))})")
    xf = np.ascontiguousarray(x.reshape(len(x), n), np.int64)
    if xf.size and (xf.min() < 0 or xf.max() > inp.input_max):
        raise DataError(f"input values must lie in [0, {inp.input_max}], found "
                        f"[{xf.min()}, {xf.max()}]")
    N = len(xf)
    z32 = np.zeros(0, np.int32)
    return N, xf, z32, z32, np.zeros(N + 1, np.int64), n, 1


def _ring_layout(pk, in_cap):
    P = pk.pop
    npop = len(P)
    cap = P[:, C.P_SIZE] + OUT_SLACK  # spike lists are written with some slack
    cap[pk.input_pop] = in_cap + OUT_SLACK
    depth = P[:, C.P_MAXD] + 1
    ring_off = np.zeros(npop, np.int64)
    rcnt_off = np.zeros(npop, np.int64)
    ring_off[1:] = np.cumsum(cap * depth)[:-1]
    rcnt_off[1:] = np.cumsum(depth)[:-1]
    return ring_off, cap.astype(np.int64), rcnt_off, int((cap * depth).sum()), int(depth.sum())


def _overflow_error(net, pk, s, row):
    t, p, i, val = (int(v) for v in row)
    pop = net.populations[p]
    return StateOverflowError(
        f"population {pop.name!r}: v of neuron {i} left [{pop.v_min}, {pop.v_max}] (v = {val}) "
        f"in sample {s} at step {t} under overflow policy 'raise'; widen the range or use "
        f"'saturate'/'wrap'")


def _check_memory(net, N, T, record, in_cap):
    """Refuse (BudgetError, saying what would be needed) before allocating buffers whose size
    comes from the network, the batch or ``steps``: spike rings (max delay), per-sample
    counters, predictions (T × N) and the first raster buffer."""
    nn = sum(p.size for p in net.populations)
    depth = sum((max((pr.delay for pr in net.outgoing(p.name)), default=0) + 1)
                * (p.size if not p.is_input else max(p.size, in_cap)) for p in net.populations)
    check_budget(4 * depth, f"spike rings of {nn} neurons with delays up to {net.max_delay}")
    check_budget(4 * N * nn + 8 * T * N + 16 * nn + 8 * net.n_cores * 4,
                 f"per-sample spike counts and predictions of {N} samples × {nn} neurons × "
                 f"{T} steps")
    rec = sum(net.population(r).size for r in dict.fromkeys(record))
    if rec:
        check_budget(12 * min(rec * T, 1 << 16) * min(N, 64),
                     f"raster buffers of {rec} recorded neurons × {T} steps")


def _default_batch(N, threads, per_sample_bytes):
    budget = 256 * 2**20
    b = max(threads * 4, 32)
    b = min(b, max(threads, budget // max(per_sample_bytes, 1)))
    return max(1, min(N, b))


def simulate(net, x, steps, record=(), seed=0, threads=None, batch_size=None, progress=False,
             timing=None):
    """Run ``net`` on a batch for ``steps`` steps with the compiled engine; return the raw
    result dict agreed with :func:`emulator.reference.simulate` (equal bit for bit).

    ``timing`` (a :class:`hw_models.latency.Timing`) turns on the per-step, per-core work
    counters and step times of :mod:`emulator.work` (raw key ``"work"``).
    All per-sample detail is kept; :func:`simulate_chunks` is the streaming form."""
    raw = RawResult.merge_all(
        simulate_chunks(net, x, steps, record=record, seed=seed, threads=threads,
                        batch_size=batch_size, progress=progress,
                        detail=("predictions", "spike_counts", "step_time"), timing=timing),
        steps=int(steps))
    hit = getattr(net, _CACHE_ATTR, None)  # the packing the run used (no second fingerprint)
    out = raw_to_dict(net, raw, timing=timing, packing=None if hit is None else hit[1:3])
    keys = ("predictions", "spike_counts", "records", "pop", "proj", "core", "totals") + \
        (("work",) if timing is not None else ())
    return {k: out[k] for k in keys}


def simulate_chunks(net, x, steps, *, start=0, record=(), seed=0, threads=None,
                    batch_size=None, progress=False, detail=(), refs=None, timing=None):
    """Run ``net`` on ``x`` (samples ``start``, ``start + 1``, … of the whole run) and yield one
    :class:`~emulator.raw.RawResult` per compiled batch, so the caller reduces as they come.

    ``detail`` names the per-sample arrays to keep (``predictions``, ``final_predictions``,
    ``spike_counts``; ``record`` adds ``records``).  ``refs`` maps a name to per-sample
    reference classes for *these* samples (``labels``, ``float``): the batch counts, per
    step, the samples whose prediction equals them (``hits/<name>``).  ``progress`` is a bool
    (a bar) or a callable given the number of samples of each finished batch.  ``timing``
    adds the work counters of :mod:`emulator.work` (``work/*`` counters, with the step times
    reduced to the latency report's statistics; per sample they are the ``step_time`` detail,
    kept only when asked for)."""
    net.validate()
    T = int(steps)
    if T < 1:
        raise SimulationError(f"steps must be >= 1, got {steps}")
    record = tuple(record)
    for name in record:
        net.population(name)  # unknown names raise NetworkError
    detail = tuple(detail)
    unknown = [d for d in detail if d not in DETAIL_AXIS or d == "records"]
    if unknown:
        raise SimulationError(f"unknown detail {unknown}; choose from predictions, "
                              f"final_predictions, spike_counts (rasters: record=)")
    N, xf, ev_st, ev_ne, ev_off, in_cap, rep = _inputs(net, x, T)
    fp = _fingerprint(net)  # once per call: the range proof and the packing are keyed by it
    _check_ranges(net, fp, T, rep)
    _check_memory(net, N, T, record, in_cap)
    refs = {k: np.asarray(v).reshape(-1) for k, v in (refs or {}).items()}
    for k, v in refs.items():
        if len(v) != N:
            raise SimulationError(f"reference {k!r} has {len(v)} entries for {N} samples")
    pk, st = packed_network(net, rep, fp)
    core = st.core
    ring_off, ring_cap, rcnt_off, ring_total, rcnt_total = _ring_layout(pk, in_cap)
    names = st.names
    rec_slot = np.full(len(names), -1, np.int64)
    for k, name in enumerate(dict.fromkeys(record)):
        rec_slot[names.index(name)] = k
    rec_names = list(dict.fromkeys(record))
    rec_size = sum(net.population(nm).size for nm in rec_names)
    nn, npop, nproj, ncores = pk.n_neurons, len(pk.pop), len(pk.proj), st.n_cores

    old_threads = numba.get_num_threads()
    nthreads = old_threads if threads is None else max(1, min(int(threads),
                                                          numba.config.NUMBA_NUM_THREADS))
    per_sample = 4 * (2 * nn + pk.n_deliv) + 8 * (ncores + nproj + npop)
    bs = int(batch_size) if batch_size else _default_batch(N, nthreads, per_sample)
    if bs < 1:
        raise SimulationError(f"batch_size must be >= 1, got {batch_size}")
    rec_cap = 0 if not rec_names else max(16, min(rec_size * T, 1 << 16))
    seed_u = np.uint64(int(seed) & MASK)
    analog = bool((pk.proj[:, C.J_ANALOG] == 1).any()) if len(pk.proj) else False
    wk = (_cached(net, pk, ("work", timing), lambda: WK.pack_work(net, pk, st, timing))
          if timing is not None else WK.off())
    nthr = numba.config.NUMBA_NUM_THREADS if wk.on else 1

    bar = None
    if progress is True and N:
        from tqdm.auto import tqdm
        bar = tqdm(total=N, unit="sample", desc="emulating", leave=False)
    for s0 in range(0, N, bs):
        s1 = min(N, s0 + bs)
        n = s1 - s0
        numba.set_num_threads(nthreads)
        old_chunk = numba.get_parallel_chunksize()
        numba.set_parallel_chunksize(1)  # samples handed out one at a time (dynamic balance)
        try:
            while True:
                spk = np.zeros((n, nn), np.int32)
                act = np.zeros((n, nn), np.int32)
                deliv = np.zeros((n, pk.n_deliv), np.int32)
                mpev = np.zeros((n, nproj), np.int64)
                mpcore = np.zeros((n, ncores), np.int64)
                sat = np.zeros((n, npop), np.int64)
                prd = np.zeros((T, n), np.int64)
                ovf = np.zeros((n, 4), np.int64)
                rec_buf = np.zeros((n, rec_cap, 3), np.int32)
                rec_n = np.zeros(n, np.int64)
                # work per thread, per batch (a rerun of the batch starts again from zero)
                stp = np.zeros((n, T) if wk.on else (1, 1), np.int64)
                tb_time = np.zeros((nthr, T, ncores) if wk.on else (1, 1, 1), np.int64)
                tb_work = np.zeros((nthr, ncores, 6) if wk.on else (1, 1, 6), np.int64)
                tb_crit = np.zeros((nthr, ncores) if wk.on else (1, 1), np.int64)
                _run_chunk(pk, core, start + s0, T, xf[s0:s1] if xf.shape[0] == N else xf,
                           ev_st, ev_ne, ev_off[s0:s1 + 1], seed_u, ring_off, ring_cap,
                           rcnt_off, ring_total, rcnt_total, rec_slot, rec_buf, rec_n, spk, act,
                           deliv, mpev, mpcore, sat, prd, ovf, wk, stp, tb_time, tb_work,
                           tb_crit)
                if rec_n.size and rec_n.max() > rec_cap:
                    rec_cap = int(rec_n.max())  # exact size now known: run the chunk again
                    continue
                break
        finally:
            numba.set_num_threads(old_threads)
            numba.set_parallel_chunksize(old_chunk)
        bad = np.flatnonzero(ovf[:, 0] > 0)
        if bad.size:
            if bar is not None:
                bar.close()
            s = int(bad[0])
            raise _overflow_error(net, pk, start + s0 + s, ovf[s])
        s_spk, s_sq, s_act, s_del = _sum_counts(spk, act, deliv)
        counters = {
            "spikes": s_spk,
            "spikes_sq": s_sq,
            "active": s_act,
            "deliveries": s_del,
            "maxpool_events": mpev.sum(axis=0),
            "maxpool_core": mpcore.sum(axis=0),
            "saturations": sat.sum(axis=0),
            "input_nonzero": ((xf[s0:s1] != 0).sum(axis=0, dtype=np.int64) if analog
                              else np.zeros(xf.shape[1], np.int64)),
        }
        settle = settle_steps(prd)
        counters["settle"] = np.bincount(settle, minlength=T + 1).astype(np.int64)
        if wk.on:
            counters["work/core_step_time"] = tb_time.sum(axis=0)
            counters["work/core"] = tb_work.sum(axis=0)
            counters["work/critical"] = tb_crit.sum(axis=0)
            # the step times reduced to what the latency report needs (exact integer sums;
            # hw_models.latency.STEP_STATS); per sample only as the "step_time" detail
            counters["work/step_time_sum"] = stp.sum(axis=0)
            counters["work/step_time_max"] = stp.max(axis=0)
            cum = np.cumsum(stp, axis=1)
            counters["work/latency_sum"] = np.array([cum[np.arange(n), settle - 1].sum()],
                                                    np.int64)
            del cum
        for k, v in refs.items():
            counters[f"hits/{k}"] = (prd == v[s0:s1][None, :]).sum(axis=1, dtype=np.int64)
        det = {}
        g0 = start + s0
        if "predictions" in detail:
            det["predictions"] = [(g0, prd)]
        if "final_predictions" in detail:
            det["final_predictions"] = [(g0, prd[-1].copy())]
        if "spike_counts" in detail:
            det["spike_counts"] = [(g0, {nm: np.ascontiguousarray(
                spk[:, int(pk.pop[i, C.P_BASE]):int(pk.pop[i, C.P_BASE] + pk.pop[i, C.P_SIZE])])
                for i, nm in enumerate(names)})]
        if wk.on and "step_time" in detail:
            det["step_time"] = [(g0, np.ascontiguousarray(stp.T))]
        if rec_names:
            det["records"] = [(g0, _split_records(rec_buf, rec_n, rec_names, g0))]
        yield RawResult(T, ((g0, g0 + n),), counters, det)
        if bar is not None:
            bar.update(n)
        elif callable(progress):
            progress(n)
    if bar is not None:
        bar.close()


def _split_records(rec_buf, rec_n, rec_names, g0) -> dict:
    """{population: int32 (E, 3) rows (global sample, step, neuron)} of one batch."""
    parts = {nm: [] for nm in rec_names}
    for s in range(len(rec_n)):
        rows = rec_buf[s, :rec_n[s]]
        for k, nm in enumerate(rec_names):
            r = rows[rows[:, 0] == k]
            if len(r):
                out = np.empty((len(r), 3), np.int32)
                out[:, 0] = g0 + s
                out[:, 1:] = r[:, 1:]
                parts[nm].append(out)
    return {nm: (np.concatenate(p) if p else np.zeros((0, 3), np.int32))
            for nm, p in parts.items()}


def _by_core(core, values, n_cores):
    return _by_core_nb(core, np.asarray(values, np.int64), n_cores)


@numba.njit(cache=True, nogil=True)
def _by_core_nb(core, values, n_cores):
    """Σ values per core (a loop: np.add.at costs ~10× more, and this runs on every call)."""
    out = np.zeros(n_cores, np.int64)
    for i in range(core.shape[0]):
        out[core[i]] += values[i]
    return out


@numba.njit(cache=True, nogil=True)
def _sum_counts(spk, act, deliv):
    """Per-neuron sums over the samples of a batch (int64): spikes, spikes², active updates,
    and deliveries per (projection, source) — in one pass, without int64 copies."""
    n, nn = spk.shape
    s1 = np.zeros(nn, np.int64)
    s2 = np.zeros(nn, np.int64)
    sa = np.zeros(nn, np.int64)
    sd = np.zeros(deliv.shape[1], np.int64)
    for s in range(n):
        for i in range(nn):
            c = np.int64(spk[s, i])
            s1[i] += c
            s2[i] += c * c
            sa[i] += act[s, i]
        for i in range(deliv.shape[1]):
            sd[i] += deliv[s, i]
    return s1, s2, sa, sd


def counters_from_raw(net, raw: RawResult, packing=None) -> dict:
    """Per-population, per-projection, per-core counters and totals of ``raw`` (exact integer
    products of its sums with the geometry tables of :mod:`emulator.compile`).  ``packing``:
    the (Packed, Static) of ``net`` if the caller holds it (else looked up by fingerprint)."""
    pk, st = packed_network(net) if packing is None else packing
    N, T = raw.n_samples, raw.steps
    c = raw.counters
    nn, nc = pk.n_neurons, st.n_cores
    z = np.zeros
    spk_sum = c.get("spikes", z(nn, np.int64))
    act_sum = c.get("active", z(nn, np.int64))
    deliv_sum = c.get("deliveries", z(pk.n_deliv, np.int64))
    mpev_sum = c.get("maxpool_events", z(len(pk.proj), np.int64))
    mpcore_sum = c.get("maxpool_core", z(nc, np.int64))
    sat_sum = c.get("saturations", z(len(pk.pop), np.int64))
    nonzero = c.get("input_nonzero")
    P, J = pk.pop, pk.proj
    core = st.core
    per_neuron_inact = np.zeros(len(core), np.int64)
    res_pop = {}
    for i, name in enumerate(st.names):
        b, n = int(P[i, C.P_BASE]), int(P[i, C.P_SIZE])
        is_in = P[i, C.P_INPUT] == 1
        a = 0 if is_in else int(act_sum[b:b + n].sum())
        if not is_in:
            per_neuron_inact[b:b + n] = N * T - act_sum[b:b + n]
        res_pop[name] = {"spikes": int(spk_sum[b:b + n].sum()),
                         "neuron_updates_active": a,
                         "neuron_updates_inactive": 0 if is_in else N * T * n - a,
                         "saturations": int(sat_sum[i])}
    res_proj = {}
    syn_core = np.array(mpcore_sum, np.int64, copy=True)
    for k, name in enumerate(st.proj_names):
        macs = 0
        if J[k, C.J_ANALOG] == 1:
            macs = int(nonzero @ st.ev_tot[k]) if nonzero is not None and N else 0
            ev = 0
        elif J[k, C.J_KIND] in (C.KINDS["maxpool"], C.RUNMAX):
            ev = int(mpev_sum[k])
        else:
            d0 = int(J[k, C.J_DOFF])
            d = deliv_sum[d0:d0 + int(J[k, C.J_NSRC])]
            ev = int(d @ st.ev_tot[k])
            syn_core += np.asarray(st.ev_core_t[k] @ d, np.int64).reshape(-1)
        res_proj[name] = {"synaptic_events": ev, "input_macs": macs}
    corec = {
        "spikes": _by_core(core, spk_sum, nc),
        "synaptic_events": syn_core,
        "messages": _by_core(core, spk_sum * st.msg, nc),
        "hops": _by_core(core, spk_sum * st.hops, nc),
        "neuron_updates_active": _by_core(core, np.where(per_neuron_inact >= 0, act_sum, 0), nc),
        "neuron_updates_inactive": _by_core(core, per_neuron_inact, nc),
    }
    totals = {
        "synaptic_events": sum(d["synaptic_events"] for d in res_proj.values()),
        "spikes": sum(d["spikes"] for d in res_pop.values()),
        "messages": int(corec["messages"].sum()),
        "hops": int(corec["hops"].sum()),
        "neuron_updates_active": sum(d["neuron_updates_active"] for d in res_pop.values()),
        "neuron_updates_inactive": sum(d["neuron_updates_inactive"] for d in res_pop.values()),
        "saturations": sum(d["saturations"] for d in res_pop.values()),
        "input_macs": sum(d["input_macs"] for d in res_proj.values()),
    }
    out = {"pop": res_pop, "proj": res_proj, "core": corec, "totals": totals}
    _add_directional(out, net, pk, st, spk_sum, mpcore_sum)
    return out


def _add_directional(raw, net, pk, st, spk_sum, mpcore_sum):
    """Counters for the other counting conventions, exact from the per-neuron spike counts:
    hops by direction, and synaptic events charged at emission (every spike, the last
    ``delay`` steps' included; max-pool gate events as delivered)."""
    spk_sum = np.asarray(spk_sum, np.int64)
    hx, hy = st.hops_x, st.hops_y  # geometry only: computed once by compile.pack
    nc = st.n_cores
    core = st.core
    raw["core"]["hops_ew"] = _by_core(core, spk_sum * hx, nc)
    raw["core"]["hops_ns"] = _by_core(core, spk_sum * hy, nc)
    J, P = pk.proj, pk.pop
    em_core = np.array(mpcore_sum, np.int64, copy=True)
    for k, name in enumerate(st.proj_names):
        if J[k, C.J_ANALOG] == 1:
            em = 0
        elif net.projections[k].kind == "maxpool":  # winner or runmax gate
            em = raw["proj"][name]["synaptic_events"]
        else:
            b = int(P[J[k, C.J_SRC], C.P_BASE])
            d = spk_sum[b:b + int(J[k, C.J_NSRC])]
            em = int(d @ st.ev_tot[k])
            em_core += np.asarray(st.ev_core_t[k] @ d, np.int64).reshape(-1)
        raw["proj"][name]["synaptic_events_emitted"] = em
    raw["core"]["synaptic_events_emitted"] = em_core
    tot = raw["totals"]
    tot["hops_ew"] = int(raw["core"]["hops_ew"].sum())
    tot["hops_ns"] = int(raw["core"]["hops_ns"].sum())
    tot["synaptic_events_emitted"] = int(em_core.sum())


def raw_to_dict(net, raw: RawResult, timing=None, packing=None) -> dict:
    """The raw dict of :func:`simulate` (the reference's format) from a merged RawResult: the
    counters, plus per-sample detail and the reduced statistics that were kept."""
    pk, st = packed_network(net) if packing is None else packing
    out = counters_from_raw(net, raw, (pk, st))
    P = pk.pop
    pred = raw.joined("predictions")
    out["predictions"] = pred
    out["final_predictions"] = raw.joined("final_predictions")
    sc = raw.joined("spike_counts")
    out["spike_counts"] = {} if sc is None else sc
    recs = raw.joined("records") or {}
    out["records"] = recs
    c = raw.counters
    if "spikes" in c:
        out["spike_sum"] = {nm: c["spikes"][int(P[i, C.P_BASE]):int(P[i, C.P_BASE] + P[i, C.P_SIZE])]
                            for i, nm in enumerate(st.names)}
        out["spike_sq"] = {nm: c["spikes_sq"][int(P[i, C.P_BASE]):int(P[i, C.P_BASE]
                                                                       + P[i, C.P_SIZE])]
                           for i, nm in enumerate(st.names)}
    out["hits"] = {k[5:]: v for k, v in c.items() if k.startswith("hits/")}
    if "settle" in c:
        out["settle"] = c["settle"]
    if "input_nonzero" in c and len(pk.proj) and (pk.proj[:, C.J_ANALOG] == 1).any():
        out["input_nonzero"] = c["input_nonzero"]
    if timing is not None and "work/core" in c:
        wk = _cached(net, pk, ("work", timing), lambda: WK.pack_work(net, pk, st, timing))
        out["work"] = WK.work_raw(timing, wk, raw.joined("step_time"), c["work/core_step_time"],
                                  c["work/core"], c["work/critical"])
        if "work/step_time_sum" in c:
            settle = np.asarray(c["settle"], np.int64)
            out["work"].update(samples=raw.n_samples,
                               step_time_sum_ps=c["work/step_time_sum"],
                               step_time_max_ps=c["work/step_time_max"],
                               latency_sum_ps=int(c["work/latency_sum"][0]),
                               settle_sum=int(settle @ np.arange(len(settle))))
    out["n_samples"] = raw.n_samples
    return out
