"""The dense reference simulator: the core-network contract in plain NumPy, obviously correct.

It follows the contract written in the module docstring of :mod:`hw_models.network` and the
:class:`~hw_models.network.Projection` docstring line by line, and shares no code with the
event engine:

* every projection is first expanded into two dense (n_source, n_target) int64 matrices — the
  summed effective weight ``w · 2^e`` and the 0/1 connectivity (which source reaches which
  target).  Convolutions and pools are built by gathering, for every *target* position, its
  window (``y = oy·sy − pad_top + ky·dy``), never by scattering a kernel;
* ``maxpool`` keeps a counts array per projection; gate ``winner`` picks, every step, the first
  source with the largest count in each target's window (row-major window order) by
  ``argmax``; gate ``runmax`` takes the window's largest count by ``max`` and passes its
  increase over the previous step's;
* the simulation is time-stepped over dense (N, n) arrays of all samples at once, populations
  in :meth:`CoreNetwork.order`, spikes stored for every step so delays are plain look-ups;
* synaptic events are counted by multiplying the arriving spikes by the connectivity matrix,
  messages and hops from each source neuron's set of destination cores read off the same
  matrices.

The raw result is the dict agreed for both simulators (see ``prompts/common.md``).  Clarity
wins over speed; a 100-neuron network runs 50 samples × 64 steps in about a second.

Readings of the contract where its wording leaves a choice (the engine must make the same):

* a synaptic event (and an input MAC) is a *structural* delivery: a synapse whose weight is 0
  still counts, as on a chip that reads the weight from memory;
* a spike whose arrival step ``t + delay`` exceeds T is never delivered (no synaptic event), but
  its messages are counted when it is emitted;
* input events with ``step + 1 > T`` are ignored;
* the max-pool gate passes every spike the winner has arriving this step (a repeated input
  event: k spikes → ``k · w[c]``, k synaptic events); a window lying wholly in the padding
  never passes; a max-pool gate fed by an analog input is rejected (it has no spikes);
* overflow ``raise`` reports the lowest sample that overflows, its first step, and the first
  population in processing order that overflowed at that step.
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import DataError, SimulationError, StateOverflowError
from hw_models.network import DECAY_ONE, CoreNetwork, Population, Projection
from hw_models.rng import bernoulli_draw


# ---- the neuron arithmetic ---------------------------------------------------------------
def dec(x: np.ndarray, delta: int) -> np.ndarray:
    """``sign(x) · ⌊|x| · (4096 − δ) / 4096⌋`` element-wise (int64)."""
    x = np.asarray(x, np.int64)
    return np.sign(x) * ((np.abs(x) * (DECAY_ONE - delta)) // DECAY_ONE)


# ---- dense expansion of every projection ----------------------------------------------------
def _index(shape: tuple, y: int, x: int, c: int) -> int:
    """Flat C-order index of (y, x, c) in an (H, W, C) population."""
    return (y * shape[1] + x) * shape[2] + c


def _windows(pr: Projection, src: Population, tgt: Population) -> list:
    """For every target (oy, ox): the in-bounds source (y, x, ky, kx) of its window, in
    row-major window order."""
    h, w, _ = src.shape
    oh, ow, _ = tgt.shape
    (kh, kw), (sy, sx), (pt, _pb, pl, _pr), (dy, dx) = (pr.kernel, pr.stride, pr.padding,
                                                        pr.dilation)
    out = []
    for oy in range(oh):
        for ox in range(ow):
            win = []
            for ky in range(kh):
                for kx in range(kw):
                    y = oy * sy - pt + ky * dy
                    x = ox * sx - pl + kx * dx
                    if 0 <= y < h and 0 <= x < w:
                        win.append((y, x, ky, kx))
            out.append(((oy, ox), win))
    return out


def dense_matrices(pr: Projection, src: Population, tgt: Population):
    """(weight, connectivity) as (n_source, n_target) int64 matrices for one projection.

    ``weight[j, i]`` is the current a spike of source j adds to target i; ``connectivity[j, i]``
    is 1 where source j reaches target i (for maxpool: target i's window holds j).
    """
    ns, nt = src.size, tgt.size
    wmat = np.zeros((ns, nt), np.int64)
    conn = np.zeros((ns, nt), np.int64)
    eff = pr.effective_weights
    if pr.kind == "dense":
        wmat[:] = eff
        conn[:] = 1
    elif pr.kind == "identity":
        c = src.shape[-1]
        for i in range(ns):
            wmat[i, i] = eff[i % c]
            conn[i, i] = 1
    elif pr.kind == "conv":
        cin, cout = src.shape[2], tgt.shape[2]
        cg, og = cin // pr.groups, cout // pr.groups  # channels per group, in and out
        for (oy, ox), win in _windows(pr, src, tgt):
            for (y, x, ky, kx) in win:
                for c in range(cin):
                    j = _index(src.shape, y, x, c)
                    g = c // cg
                    for co in range(g * og, (g + 1) * og):  # only its own group's outputs
                        i = _index(tgt.shape, oy, ox, co)
                        wmat[j, i] += eff[ky, kx, c % cg, co]
                        conn[j, i] = 1
    elif pr.kind in ("avgpool", "maxpool"):
        for (oy, ox), win in _windows(pr, src, tgt):
            for (y, x, _ky, _kx) in win:
                for c in range(src.shape[2]):
                    j, i = _index(src.shape, y, x, c), _index(tgt.shape, oy, ox, c)
                    wmat[j, i] = eff[c]
                    conn[j, i] = 1
    else:  # pragma: no cover - validate() rejects unknown kinds
        raise SimulationError(f"projection {pr.name!r}: unknown kind {pr.kind!r}")
    return wmat, conn


def maxpool_windows(pr: Projection, src: Population, tgt: Population):
    """(windows, weight): windows int64 (n_target, K) of source indices in row-major window
    order, padded with -1; weight int64 (n_target,) = ``w[c] · 2^e``."""
    wins = {}
    for (oy, ox), win in _windows(pr, src, tgt):
        for c in range(src.shape[2]):
            wins[_index(tgt.shape, oy, ox, c)] = [_index(src.shape, y, x, c)
                                                  for (y, x, _, _) in win]
    k = max(1, max(len(v) for v in wins.values()))
    windows = np.full((tgt.size, k), -1, np.int64)
    for i, v in wins.items():
        windows[i, :len(v)] = v
    eff = pr.effective_weights
    weight = np.array([eff[i % tgt.shape[2]] for i in range(tgt.size)], np.int64)
    return windows, weight


# ---- inputs ---------------------------------------------------------------------------------
def _input_spike_source(net: CoreNetwork, x, steps: int, seed: int):
    """(N, values, spikes_at): values int64 (N, n) for analog (else None) and a function
    giving the input spike counts int64 (N, n) at step t."""
    inp = net.input
    n = inp.size
    if inp.encoding == "events":
        if not hasattr(x, "offsets"):
            raise DataError(f"input population {inp.name!r} has encoding 'events': pass an "
                            f"EventBatch, not {type(x).__name__}")
        if tuple(x.shape) != tuple(inp.shape):
            raise DataError(f"EventBatch shape {tuple(x.shape)} does not match input "
                            f"population {inp.name!r} shape {inp.shape}")
        offsets = np.asarray(x.offsets, np.int64)
        n_samples = len(offsets) - 1
        counts = np.zeros((steps + 1, n_samples, n), np.int64)
        for s in range(n_samples):
            st = np.asarray(x.steps[offsets[s]:offsets[s + 1]], np.int64) + 1
            ne = np.asarray(x.neurons[offsets[s]:offsets[s + 1]], np.int64)
            keep = st <= steps  # an event after the last step is never delivered
            np.add.at(counts[:, s, :], (st[keep], ne[keep]), 1)
        return n_samples, None, lambda t: counts[t]
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise DataError(f"input values must be integers, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[1:] != tuple(inp.shape):
        raise DataError(f"input has shape {x.shape}; expected (N, {', '.join(map(str, inp.shape))})")
    xf = x.reshape(len(x), n).astype(np.int64)
    if xf.size and (xf.min() < 0 or xf.max() > inp.input_max):
        raise DataError(f"input values must lie in [0, {inp.input_max}], found "
                        f"[{xf.min()}, {xf.max()}]")
    n_samples = len(xf)
    imax = inp.input_max
    if inp.encoding == "analog":
        zero = np.zeros((n_samples, n), np.int64)
        return n_samples, xf, lambda t: zero
    if inp.encoding == "rate":
        return n_samples, None, lambda t: ((t * xf) // imax > ((t - 1) * xf) // imax).astype(
            np.int64)
    neurons = np.arange(n)

    def bernoulli(t):
        r = np.stack([bernoulli_draw(seed, s, t, neurons, imax) for s in range(n_samples)])
        return (r < xf).astype(np.int64) if n_samples else np.zeros((0, n), np.int64)
    return n_samples, None, bernoulli


# ---- routing --------------------------------------------------------------------------------
def _routing(net: CoreNetwork, conn: dict, cores: dict, place: np.ndarray) -> dict:
    """Per population: (messages, hops) per spike of each of its neurons."""
    out = {}
    for p in net.populations:
        n_msg = np.zeros(p.size, np.int64)
        n_hop = np.zeros(p.size, np.int64)
        if not (p.is_input and p.encoding == "analog"):
            projs = net.outgoing(p.name)
            for j in range(p.size):
                dest = set()
                for pr in projs:
                    dest.update(int(c) for c in cores[pr.target][conn[pr.name][j] > 0])
                a = place[cores[p.name][j]]
                n_msg[j] = len(dest)
                n_hop[j] = sum(int(np.abs(a - place[b]).sum()) for b in dest)
        out[p.name] = (n_msg, n_hop)
    return out


# ---- the simulation -------------------------------------------------------------------------
def simulate(net: CoreNetwork, x, steps: int, record=(), seed: int = 0, timing=None) -> dict:
    """Run ``net`` on a batch for ``steps`` steps; return the agreed raw-result dict.

    ``timing`` (a :class:`hw_models.latency.Timing`) adds the per-step, per-core work and step
    times (raw key ``"work"``), computed here from the dense matrices, step by step."""
    net.validate()
    T = int(steps)
    if T < 1:
        raise SimulationError(f"steps must be >= 1, got {steps}")
    record = tuple(record)
    for name in record:
        net.population(name)  # unknown names raise NetworkError
    pops = {p.name: p for p in net.populations}
    inp = net.input
    N, xa, input_spikes = _input_spike_source(net, x, T, seed)
    cores = net.core_assignment()
    place = net.placement_array().astype(np.int64)

    mats, conn, pool = {}, {}, {}
    for pr in net.projections:
        src, tgt = pops[pr.source], pops[pr.target]
        if pr.kind == "maxpool" and src.is_input and src.encoding == "analog":
            raise SimulationError(f"projection {pr.name!r}: a max-pool gate needs spikes, but "
                                  f"its source {src.name!r} is an analog input")
        mats[pr.name], conn[pr.name] = dense_matrices(pr, src, tgt)
        if pr.kind == "maxpool":
            pool[pr.name] = maxpool_windows(pr, src, tgt)
    analog = {pr.name for pr in net.projections
              if pops[pr.source].is_input and pops[pr.source].encoding == "analog"}

    # state
    spikes = {name: np.zeros((T + 1, N, p.size), np.int64) for name, p in pops.items()}
    u = {name: np.zeros((N, p.size), np.int64) for name, p in pops.items() if not p.is_input}
    v = {name: np.full((N, p.size), p.v_init, np.int64) for name, p in pops.items()
         if not p.is_input}
    pool_counts = {name: np.zeros((N, pops[net.projection(name).source].size), np.int64)
                   for name in pool}
    pool_max = {name: np.zeros((N, pops[net.projection(name).target].size), np.int64)
                for name in pool}  # runmax: the window maximum of the previous step
    # counters (per target neuron, summed over samples)
    syn = {pr.name: np.zeros(pops[pr.target].size, np.int64) for pr in net.projections}
    act = {name: np.zeros(p.size, np.int64) for name, p in pops.items()}
    inact = {name: np.zeros(p.size, np.int64) for name, p in pops.items()}
    sat = {name: 0 for name in pops}
    first_overflow = {}  # sample -> (step, population, value)
    predictions = np.zeros((T, N), np.int64)
    n_cores = net.n_cores
    onehot = {name: np.eye(n_cores, dtype=np.int64)[cores[name]] for name in pops}
    act_in = np.zeros((T + 1, N, n_cores), np.int64)  # active updates per core, per step
    act_st = np.zeros((T + 1, N, n_cores), np.int64)
    gate_core = np.zeros((T + 1, N, n_cores), np.int64)  # max-pool deliveries per core
    out_pop = pops[net.output]

    order = net.order()
    for t in range(1, T + 1):
        for name in order:
            p = pops[name]
            if p.is_input:
                spikes[name][t] = input_spikes(t)
                continue
            # 1. Q(t)
            Q = np.zeros((N, p.size), np.int64)
            for pr in net.incoming(name):
                if pr.name in analog:
                    Q += xa @ mats[pr.name]  # graded input every step, regardless of delay
                    continue
                if t - pr.delay < 1:
                    continue  # nothing was emitted before step 1
                arriving = spikes[pr.source][t - pr.delay]
                if pr.kind == "maxpool":
                    windows, weight = pool[pr.name]
                    counts = pool_counts[pr.name]
                    counts += arriving  # this step's arrivals included
                    cand = np.where(windows >= 0, counts[:, windows.clip(0)], -1)  # (N, nt, K)
                    if pr.gate == "runmax":
                        m = cand.max(axis=2).clip(0)  # an all-padding window: 0
                        passed = m - pool_max[pr.name]
                        pool_max[pr.name] = m
                    else:
                        winner = windows[np.arange(len(windows)), cand.argmax(axis=2)]
                        passed = np.where(winner >= 0, np.take_along_axis(
                            arriving, winner.clip(0), axis=1), 0)  # all-padding window: none
                    Q += passed * weight
                    syn[pr.name] += passed.sum(axis=0)
                    gate_core[t] += passed @ onehot[name]
                else:
                    Q += arriving @ mats[pr.name]
                    syn[pr.name] += (arriving @ conn[pr.name]).sum(axis=0)
            active = Q != 0
            act[name] += active.sum(axis=0)
            inact[name] += (~active).sum(axis=0)
            state = active | (v[name] != 0) | (p.bias_array() != 0)[None, :]
            act_in[t] += active.astype(np.int64) @ onehot[name]
            act_st[t] += state.astype(np.int64) @ onehot[name]
            # 2. integrate, then the range policy on v
            u[name] = dec(u[name], p.decay_u) + Q
            vv = dec(v[name], p.decay_v) + u[name] + p.bias_array()
            over = (vv < p.v_min) | (vv > p.v_max)
            sat[name] += int(over.sum())
            if p.overflow == "raise":
                for s in np.flatnonzero(over.any(axis=1)):
                    if int(s) not in first_overflow:
                        i = int(np.flatnonzero(over[s])[0])
                        first_overflow[int(s)] = (t, name, i, int(vv[s, i]))
                vv = np.clip(vv, p.v_min, p.v_max)  # that sample's run is void anyway
            elif p.overflow == "saturate":
                vv = np.clip(vv, p.v_min, p.v_max)
            else:  # wrap
                vv = p.v_min + (vv - p.v_min) % (p.v_max - p.v_min + 1)
            # 3. spike and reset
            if p.spiking:
                fire = vv >= p.threshold if p.spike_rule == ">=" else vv > p.threshold
                if p.reset == "subtract":
                    vv = np.where(fire, vv - p.threshold, vv)
                else:
                    vv = np.where(fire, 0, vv)
                spikes[name][t] = fire
            v[name] = vv
        # read-out after every population has stepped
        if net.readout == "v":
            predictions[t - 1] = v[out_pop.name].argmax(axis=1)
        else:
            cum = spikes[out_pop.name][1:t + 1].sum(axis=0)
            predictions[t - 1] = np.where(cum.max(axis=1) > 0, cum.argmax(axis=1), -1)

    if first_overflow:
        s = min(first_overflow)
        t, name, i, val = first_overflow[s]
        p = pops[name]
        raise StateOverflowError(
            f"population {name!r}: v of neuron {i} left [{p.v_min}, {p.v_max}] (v = {val}) in "
            f"sample {s} at step {t} under overflow policy 'raise'; widen the range or use "
            f"'saturate'/'wrap'")
    raw = _result(net, pops, spikes, syn, act, inact, sat, predictions, record, conn, cores,
                  place, xa, analog)
    _directional(raw, net, pops, spikes, conn, cores, place, analog, syn)
    if timing is not None:
        raw["work"] = _work(net, pops, spikes, conn, cores, place, analog, T, N, act_in, act_st,
                            gate_core, timing)
        # the latency report's sums, from the dense step times (the engine reduces per chunk)
        from hw_models.latency import step_time_stats
        raw["work"].update(step_time_stats(raw["work"]["step_time_ps"], predictions))
    return raw


def _routes(net, pops, conn, cores, place, analog):
    """Per source population: {delay: (reach (n, cores) 0/1, events (n, cores))} read off the
    dense connectivity (a max-pool gate's events count on arrival, so 0 here)."""
    n_cores = net.n_cores
    out = {}
    for p in net.populations:
        if p.is_input and p.encoding == "analog":
            continue
        per = {}
        for pr in net.outgoing(p.name):
            ev = conn[pr.name] @ np.eye(n_cores, dtype=np.int64)[cores[pr.target]]
            if pr.kind == "maxpool":
                ev_cost = np.zeros_like(ev)
            else:
                ev_cost = ev
            r0, e0 = per.get(pr.delay, (0, 0))
            per[pr.delay] = (r0 + ev, e0 + ev_cost)
        out[p.name] = {d: ((r > 0).astype(np.int64), e) for d, (r, e) in per.items()}
    return out


def _directional(raw, net, pops, spikes, conn, cores, place, analog, syn):
    """Hops by direction and synaptic events charged at emission (see emulator.engine)."""
    n_cores = net.n_cores
    ew = np.zeros(n_cores, np.int64)
    ns = np.zeros(n_cores, np.int64)
    em_core = np.zeros(n_cores, np.int64)
    for name, p in pops.items():
        total = spikes[name][1:].sum(axis=(0, 1))
        if p.is_input and p.encoding == "analog":
            continue
        for j in range(p.size):
            dest = set()
            for pr in net.outgoing(name):
                dest.update(int(c) for c in cores[pr.target][conn[pr.name][j] > 0])
            a = place[cores[name][j]]
            ew[cores[name][j]] += total[j] * sum(abs(int(a[1] - place[b][1])) for b in dest)
            ns[cores[name][j]] += total[j] * sum(abs(int(a[2] - place[b][2])) for b in dest)
    for pr in net.projections:
        if pr.name in analog:
            em = 0
        elif pr.kind == "maxpool":
            em = raw["proj"][pr.name]["synaptic_events"]
            em_core += _by_core(cores[pr.target], syn[pr.name], n_cores)
        else:
            total = spikes[pr.source][1:].sum(axis=(0, 1))
            per_target = total @ conn[pr.name]
            em = int(per_target.sum())
            em_core += _by_core(cores[pr.target], per_target, n_cores)
        raw["proj"][pr.name]["synaptic_events_emitted"] = em
    raw["core"]["hops_ew"] = ew
    raw["core"]["hops_ns"] = ns
    raw["core"]["synaptic_events_emitted"] = em_core
    raw["totals"]["hops_ew"] = int(ew.sum())
    raw["totals"]["hops_ns"] = int(ns.sum())
    raw["totals"]["synaptic_events_emitted"] = int(em_core.sum())


def _work(net, pops, spikes, conn, cores, place, analog, T, N, act_in, act_st, gate_core,
          timing) -> dict:
    """Per-step, per-core work and step times, the latency model written out in NumPy."""
    ps = (lambda sec: int(round(float(sec) * 1e12)))
    n_cores = net.n_cores
    routes = _routes(net, pops, conn, cores, place, analog)
    sent = np.zeros((T + 1, N, n_cores), np.int64)
    msg_out = np.zeros((T + 1, N, n_cores), np.int64)
    msg_in = np.zeros((T + 1, N, n_cores), np.int64)
    syn_in = np.zeros((T + 1, N, n_cores), np.int64)
    mesh = np.zeros((T + 1, N), np.int64)
    ncn = np.zeros(n_cores, np.int64)
    for name, p in pops.items():
        if not p.is_input:
            ncn += np.bincount(cores[name], minlength=n_cores)
    for name, per in routes.items():
        p = pops[name]
        nmsg = sum(r.sum(axis=1) for r, _ in per.values())
        lat = np.zeros(p.size, np.int64)
        if timing.mesh == "route":
            for r, _ in per.values():
                for j in range(p.size):
                    for c in np.flatnonzero(r[j]):
                        d = np.abs(place[cores[name][j]] - place[c])
                        lat[j] = max(lat[j], d[1] * ps(timing.t_hop_ew_s)
                                     + d[2] * ps(timing.t_hop_ns_s))
        for t in range(1, T + 1):
            spk = spikes[name][t]
            if not p.is_input:
                sent[t] += spk @ np.eye(n_cores, dtype=np.int64)[cores[name]]
            msg_out[t] += (spk * nmsg) @ np.eye(n_cores, dtype=np.int64)[cores[name]]
            mesh[t] = np.maximum(mesh[t], np.where(spk > 0, lat[None, :], 0).max(axis=1))
            for d, (r, e) in per.items():
                ta = t if timing.synaptic_charge == "emission" else t + d
                if ta > T:
                    continue
                msg_in[ta] += spk @ r
                syn_in[ta] += spk @ e
    if "maxpool" in {pr.kind for pr in net.projections}:
        syn_in += gate_core
    act = act_st if timing.active_update == "state" else act_in
    tm = {k: ps(getattr(timing, k)) for k in ("t_neuron_access_s", "t_neuron_update_s",
                                               "t_spike_s", "t_msg_out_s", "t_msg_in_s",
                                               "t_syn_event_s")}
    send = (ncn[None, None, :] * tm["t_neuron_access_s"] + act * tm["t_neuron_update_s"]
            + sent * tm["t_spike_s"] + msg_out * tm["t_msg_out_s"])
    recv = msg_in * tm["t_msg_in_s"] + syn_in * tm["t_syn_event_s"]
    core_t = np.maximum(send, recv)[1:]  # (T, N, cores)
    used = {tuple(int(v) for v in place[c]) for name, p in pops.items()
            if not (p.is_input and p.encoding == "analog") for c in np.unique(cores[name])}
    barrier = ps(timing.barrier_for(len(used)))
    step = core_t.max(axis=2) + mesh[1:] + barrier
    crit = np.bincount(core_t.argmax(axis=2).reshape(-1), minlength=n_cores).astype(np.int64)
    names = ("neuron_updates_active", "neuron_updates_active_state", "spikes", "messages_out",
             "messages_in", "synaptic_events")
    arrays = (act_in, act_st, sent, msg_out, msg_in, syn_in)
    return {"step_time_ps": step.astype(np.int64),
            "core_step_time_ps": core_t.sum(axis=1).astype(np.int64),
            "core": {n: a[1:].sum(axis=(0, 1)).astype(np.int64) for n, a in zip(names, arrays)},
            "critical": crit,
            "neurons_per_core": ncn,
            "barrier_ps": int(barrier),
            "timing": timing.to_dict()}


def _by_core(core: np.ndarray, values: np.ndarray, n_cores: int) -> np.ndarray:
    """Integer sum of per-neuron ``values`` by each neuron's core."""
    out = np.zeros(n_cores, np.int64)
    np.add.at(out, core, np.asarray(values, np.int64))
    return out


def _result(net, pops, spikes, syn, act, inact, sat, predictions, record, conn, cores, place,
            xa, analog) -> dict:
    n_cores = net.n_cores
    routing = _routing(net, conn, cores, place)
    core = {k: np.zeros(n_cores, np.int64) for k in
            ("spikes", "synaptic_events", "messages", "hops", "neuron_updates_active",
             "neuron_updates_inactive")}
    res_pop, res_proj, spike_counts, records = {}, {}, {}, {}
    for name, p in pops.items():
        per_neuron = spikes[name][1:].sum(axis=0)  # (N, n)
        spike_counts[name] = per_neuron.astype(np.int32)
        total = per_neuron.sum(axis=0)  # (n,)
        c = cores[name]
        n_msg, n_hop = routing[name]
        core["spikes"] += _by_core(c, total, n_cores)
        core["messages"] += _by_core(c, total * n_msg, n_cores)
        core["hops"] += _by_core(c, total * n_hop, n_cores)
        core["neuron_updates_active"] += _by_core(c, act[name], n_cores)
        core["neuron_updates_inactive"] += _by_core(c, inact[name], n_cores)
        res_pop[name] = {"spikes": int(total.sum()),
                         "neuron_updates_active": int(act[name].sum()),
                         "neuron_updates_inactive": int(inact[name].sum()),
                         "saturations": int(sat[name])}
        if name in record:
            sp = spikes[name][1:].transpose(1, 0, 2)  # (N, T, n): nonzero() is lexicographic
            s, t, i = np.nonzero(sp)
            k = sp[s, t, i]
            records[name] = np.stack([np.repeat(s, k), np.repeat(t + 1, k), np.repeat(i, k)],
                                     axis=1).astype(np.int32).reshape(-1, 3)
    for pr in net.projections:
        macs = 0
        if pr.name in analog:
            macs = int(((xa != 0).astype(np.int64) @ conn[pr.name]).sum())
        res_proj[pr.name] = {"synaptic_events": int(syn[pr.name].sum()), "input_macs": macs}
        core["synaptic_events"] += _by_core(cores[pr.target], syn[pr.name], n_cores)
    totals = {
        "synaptic_events": sum(d["synaptic_events"] for d in res_proj.values()),
        "spikes": sum(d["spikes"] for d in res_pop.values()),
        "messages": int(core["messages"].sum()),
        "hops": int(core["hops"].sum()),
        "neuron_updates_active": sum(d["neuron_updates_active"] for d in res_pop.values()),
        "neuron_updates_inactive": sum(d["neuron_updates_inactive"] for d in res_pop.values()),
        "saturations": sum(d["saturations"] for d in res_pop.values()),
        "input_macs": sum(d["input_macs"] for d in res_proj.values()),
    }
    return {"predictions": predictions, "spike_counts": spike_counts, "records": records,
            "pop": res_pop, "proj": res_proj, "core": core, "totals": totals}
