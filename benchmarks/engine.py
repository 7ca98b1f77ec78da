"""Engine throughput against baselines timed in the same process.

``python benchmarks/engine.py`` (``--quick`` for a short run; ``--nets mlp,lenet,lenet64``;
``--activities 0,0.02,0.05,0.1,0.2``) runs the W1 MLP 784-512-512-10 and the W2 LeNet-5 6/16
(random int8 weights, rate-coded random inputs, IF neurons with thresholds tuned layer by layer
to each target activity; activity 0 is an all-zero input) and prints, per activity:

* the engine's time per sample-step (one thread);
* a plain Numba event loop written here (:func:`plain_loop`: the obvious per-spike loop, each
  spike adding its weights target by target, then every neuron updated) and the pure
  int8→int32 scatter of the same events (:func:`roofline`: only the adds, conv rows as one
  contiguous run, no update, no clearing, no counting), with the engine's ratio to each: the
  three run interleaved, 7 times, and a ratio is the median over the reps of the ratio within
  a rep (the machines are shared: a slow spell hits the three runs of a rep alike, while the
  best times of different reps can come from different spells);
* a check that all three see the same spikes (spike counts per population, and adds =
  the engine's synaptic events), the zero-input time as a fraction of the 10 % run, and the
  2-thread speed-up (on a batch of 4× the samples, so that each thread has work enough) with
  the load average beside it.

``--legacy`` prints the older figures (NumPy reference, dense PyTorch if importable, VGG).
``--timing-only`` prints the cost of the latency counters (``timing=`` on ÷ off, paired runs)
on five networks; ``--processes N`` measures it in N fresh processes and prints the median over
them (the ratio moves by a few per cent from one process to the next).
Single-thread figures are wall time on a quiet machine and process CPU time when the 1-minute
load average is above 0.5 (another job would otherwise be billed to us); the output says which.
Two-thread figures are always wall time, and the 1 → 2 thread speed-up compares wall with wall.

Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

# the packages beside this script, not an installed copy (another checkout's, after
# ``pip install -e`` there): a benchmark measures the code it sits in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator import engine, reference  # noqa: E402
from hw_models.network import CoreNetwork, Population, Projection, conv_output_size  # noqa: E402

V_RANGE = dict(v_min=-(2**23), v_max=2**23 - 1, overflow="saturate")


# ---- networks -------------------------------------------------------------------------------
def build(spec, input_shape, seed, delay=1):
    """A CoreNetwork from a layer list: ("conv", c_out, k, pad) | ("pool", k) | ("dense", n)."""
    rng = np.random.default_rng(seed)
    h, w, c = input_shape
    pops = [Population("input", (h, w, c), kind="input", encoding="rate", input_max=255)]
    projs = []
    prev = pops[0]
    for i, layer in enumerate(spec):
        last = i == len(spec) - 1
        name = "out" if last else f"l{i}_{layer[0]}"
        if layer[0] == "conv":
            _, co, k, pad = layer
            oh = conv_output_size(h, k, 1, pad, pad)
            ow = conv_output_size(w, k, 1, pad, pad)
            shape = (oh, ow, co)
            wts = rng.integers(-100, 128, size=(k, k, c, co)).astype(np.int8)
            geo = dict(padding=(pad, pad, pad, pad))
            kind = "conv"
            h, w, c = shape
        elif layer[0] == "pool":
            k = layer[1]
            shape = (h // k, w // k, c)
            wts = np.ones(c, np.int8) * 32
            geo = dict(kernel=(k, k), stride=(k, k))
            kind = "avgpool"
            h, w = shape[:2]
        else:
            n = layer[1]
            shape = (n,)
            wts = rng.integers(-100, 128, size=(prev.size, n)).astype(np.int8)
            geo = {}
            kind = "dense"
        pop = Population(name, shape, threshold=1000, spiking=not last, **V_RANGE)
        pops.append(pop)
        projs.append(Projection(f"p{i}", prev.name, name, kind, wts, delay=delay, **geo))
        prev = pop
    return CoreNetwork(pops, projs, output="out", readout="v").validate()


LENET64 = [("conv", 32, 5, 0), ("pool", 2), ("conv", 64, 5, 0), ("pool", 2), ("dense", 120),
           ("dense", 84), ("dense", 10)]
LENET = [("conv", 6, 5, 0), ("pool", 2), ("conv", 16, 5, 0), ("pool", 2), ("dense", 120),
         ("dense", 84), ("dense", 10)]
VGG = [("conv", 64, 3, 1), ("conv", 64, 3, 1), ("pool", 2), ("conv", 128, 3, 1),
       ("conv", 128, 3, 1), ("pool", 2), ("conv", 256, 3, 1), ("conv", 256, 3, 1), ("pool", 2),
       ("dense", 256), ("dense", 10)]


def inputs(net, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n,) + net.input.shape)
    x[rng.random(x.shape) < 0.5] = 0
    return x.astype(np.int64)


def activity(net, raw, n, T):
    """Spikes per neuron per step over the spiking non-input populations."""
    sp = [p for p in net.populations if not p.is_input and p.spiking]
    return sum(raw["pop"][p.name]["spikes"] for p in sp) / (n * T * sum(p.size for p in sp))


def tune(net, target, x, T):
    """Set every spiking layer's threshold (in order) so that its own rate ≈ target."""
    for p in net.populations[1:]:
        if not p.spiking:
            continue
        lo, hi = 1.0, 2.0**22
        for _ in range(14):
            mid = (lo * hi) ** 0.5
            p.threshold = int(mid)
            raw = engine.simulate(net, x, T)
            rate = raw["pop"][p.name]["spikes"] / (len(x) * T * p.size)
            lo, hi = (mid, hi) if rate > target else (lo, mid)
        p.threshold = max(1, int((lo * hi) ** 0.5))
    return net


# ---- timing ---------------------------------------------------------------------------------
BUSY = 0.5  # 1-minute load average above which single-thread figures use CPU time


def load() -> float:
    return os.getloadavg()[0]


def clock(threads, wall=False):
    """Wall time, except for one thread on a busy machine: process CPU time (robust against
    other jobs on a shared machine).  Several threads: always wall time."""
    if threads == 1 and not wall and load() > BUSY:
        return time.process_time
    return time.perf_counter


def time_engine(net, x, T, threads, reps=3, wall=False, timing=None):
    engine.simulate(net, x[:2], T, threads=threads, timing=timing)  # compile and pack
    best = np.inf
    now = clock(threads, wall)
    for _ in range(reps):
        t0 = now()
        raw = engine.simulate(net, x, T, threads=threads, timing=timing)
        best = min(best, now() - t0)
    return best, raw


def timing_overhead(net, x, T, reps=15):
    """Engine time with the per-step, per-core work counters and step times (timing=loihi1)
    over the time without, 1 thread, ``reps`` interleaved pairs of runs: (best off, best on,
    median over the pairs of on ÷ off)."""
    from hw_models.latency import timing_for
    tm = timing_for("loihi1")
    for t in (None, tm):
        engine.simulate(net, x[:2], T, threads=1, timing=t)
    now = clock(1)
    times = {None: [], tm: []}
    for _ in range(reps):
        for t in (None, tm):
            times[t].append(_timed(lambda: engine.simulate(net, x, T, threads=1, timing=t),
                                   now)[0])
    off, on = np.array(times[None]), np.array(times[tm])
    return off.min(), on.min(), float(np.median(on / off))


def time_reference(net, x, T):
    """Per-sample cost of the reference with its set-up (dense matrices) taken out."""
    t = []
    for n in (2, len(x)):
        t0 = time.process_time()
        reference.simulate(net, x[:n], T)
        t.append(time.process_time() - t0)
    return (t[1] - t[0]) / (len(x) - 2)


def torch_sim(net, x, T, threads):
    """Dense time-stepped float32 simulation of the same IF network: seconds per sample."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    pops = {p.name: p for p in net.populations}
    layers = []
    for pr in net.projections:
        w = torch.tensor(pr.effective_weights, dtype=torch.float32)
        if pr.kind == "conv":
            layers.append(("conv", w.permute(3, 2, 0, 1).contiguous(), pr.padding[0]))
        elif pr.kind == "avgpool":
            c = w.shape[0]
            k = pr.kernel[0]
            layers.append(("pool", w.view(c, 1, 1, 1).repeat(1, 1, k, k), k))
        else:
            layers.append(("dense", w.t().contiguous(), None))
    thr = [float(pops[pr.target].threshold) for pr in net.projections]
    n = len(x)
    xi = torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2)
    imax = float(net.input.input_max)
    now = clock(threads)
    with torch.no_grad():
        t0 = now()
        spikes = [None] * (len(layers) + 1)
        v = [None] * len(layers)
        for t in range(1, T + 1):
            prev = spikes[:]
            spikes[0] = (torch.floor(t * xi / imax) > torch.floor((t - 1) * xi / imax)).float()
            for i, (kind, w, a) in enumerate(layers):
                s = prev[i]  # delay 1: last step's spikes of the source
                if s is None:
                    continue
                if kind == "conv":
                    q = F.conv2d(s, w, padding=a)
                elif kind == "pool":
                    q = F.conv2d(s, w, stride=a, groups=w.shape[0])
                else:
                    q = F.linear(s.reshape(n, -1), w)
                v[i] = q if v[i] is None else v[i] + q
                if i < len(layers) - 1:
                    fire = v[i] >= thr[i]
                    v[i] = v[i] - fire * thr[i]
                    spikes[i + 1] = fire.float()
        return (now() - t0) / n


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def bench(name, spec, shape, n, T, target, ref_samples, quick):
    net = build(spec, shape, seed=1)
    x = inputs(net, n, 2)
    tune(net, target, x[:4], T)
    rows = []
    la = load()
    kind = "CPU time" if la > BUSY else "wall time"
    t1, raw = time_engine(net, x, T, 1)
    ev = raw["totals"]["synaptic_events"]
    act = activity(net, raw, n, T)
    per = n * T
    print(f"\n== {name}: {sum(p.size for p in net.populations[1:]):,} neurons, "
          f"{n} samples x {T} steps, activity {act:.3f} spikes/neuron/step, "
          f"{ev / per:,.0f} synaptic events per sample-step")
    print(f"   load average {la:.2f} -> single-thread figures are {kind}")
    rows.append(("engine 1 thread", t1 / per, ev / t1))
    w1, _ = time_engine(net, x, T, 1, wall=True)
    t2, _ = time_engine(net, x, T, 2)
    rows.append(("engine 2 threads", t2 / per, ev / t2))
    if ref_samples:
        tr = time_reference(net, x[:ref_samples], T)
        rows.append(("NumPy reference", tr / T, ev / per / (tr / T)))
    if have_torch():
        for th in (1, 2):
            tt = min(torch_sim(net, x, T, th) for _ in range(2))
            rows.append((f"dense torch {th} thread" + ("s" if th > 1 else ""), tt / T,
                         ev / per / (tt / T)))
    base = rows[0][1]
    print(f"{'':<22}{'µs/sample-step':>16}{'syn events/s':>16}{'time / engine-1t':>20}")
    for label, sec, eps in rows:
        print(f"{label:<22}{sec * 1e6:>16.1f}{eps:>16.3e}{sec / base:>19.1f}x")
    print(f"   1 -> 2 threads: {w1 / t2:.2f}x faster (wall {w1 / per * 1e6:.1f} -> "
          f"{t2 / per * 1e6:.1f} µs/sample-step; load average now {load():.2f})")
    off, on = timing_overhead(net, x, T)
    print(f"   per-step per-core work + step times (timing=loihi1): {on / per * 1e6:.1f} vs "
          f"{off / per * 1e6:.1f} µs/sample-step without, x{on / off:.3f} (1 thread, "
          f"load average {load():.2f})")
    return net, x


def sweep(net, x, T, targets):
    if not have_torch():
        print("\n(no torch: activity sweep skipped)")
        return
    tt = min(torch_sim(net, x, T, 1) for _ in range(2)) / T
    print(f"\n== activity sweep (1 thread; dense torch {tt * 1e6:.1f} µs/sample-step at any "
          f"activity; load average {load():.2f})")
    print(f"{'target':>8}{'measured':>10}{'engine µs/s-step':>18}{'syn events/s':>15}"
          f"{'torch/engine':>14}")
    pts = []
    for target in targets:
        tune(net, target, x[:4], T)
        te, raw = time_engine(net, x, T, 1, reps=2)
        act = activity(net, raw, len(x), T)
        per = len(x) * T
        pts.append((act, tt / (te / per)))
        print(f"{target:>8.2f}{act:>10.3f}{te / per * 1e6:>18.1f}"
              f"{raw['totals']['synaptic_events'] / te:>15.3e}{tt / (te / per):>14.2f}")
    print(f"   crossover (dense torch 1 thread as fast as the engine): {crossover(pts)}")


def crossover(pts):
    """Activity where torch/engine falls through 1, interpolated in log activity."""
    pts = sorted(pts)
    for (a0, r0), (a1, r1) in zip(pts, pts[1:]):
        if r0 >= 1 > r1:
            f = (r0 - 1) / (r0 - r1)
            return f"activity ≈ {np.exp(np.log(a0) + f * (np.log(a1) - np.log(a0))):.3f}"
    if pts and pts[-1][1] >= 1:
        return f"above {pts[-1][0]:.3f} (the engine is faster at every activity swept)"
    return f"below {pts[0][0]:.3f} (torch is faster at every activity swept)" if pts else "-"


# ---- baselines written here: a plain Numba event loop and the pure scatter roofline --------
# Both run the feed-forward IF networks of :func:`build` (delay 1, reset by subtraction,
# saturation to V_RANGE, avgpool windows k/k, conv stride 1) from one packed layer table.
# Layer columns: kind (0 dense, 1 conv, 2 avgpool), H, W, C, OH, OW, OC, K, pad, weight
# offset, threshold, spiking.

(L_KIND, L_H, L_W, L_C, L_OH, L_OW, L_OC, L_K, L_PAD, L_WOFF, L_THR, L_SPK, L_WROFF) = range(13)


def layer_table(net):
    """(table int64 (n_layers, 13), natural int8 weights, kx-reversed int8 weights, sizes)."""
    pops = {p.name: p for p in net.populations}
    rows, wn, wr = [], [], []
    on = orr = 0
    for pr in net.projections:
        src, tgt = pops[pr.source], pops[pr.target]
        h, w, c = src.shape if len(src.shape) == 3 else (1, 1, src.size)
        oh, ow, oc = tgt.shape if len(tgt.shape) == 3 else (1, 1, tgt.size)
        kind = {"dense": 0, "conv": 1, "avgpool": 2}[pr.kind]
        k = pr.kernel[0] if pr.kind != "dense" else 0
        pad = pr.padding[0] if pr.kind == "conv" else 0
        wt = pr.weights.astype(np.int8)
        if pr.exponent != 0 or not np.array_equal(wt, pr.weights):
            raise ValueError("the baselines take int8 weights with exponent 0")
        rows.append([kind, h, w, c, oh, ow, oc, k, pad, on, tgt.threshold, int(tgt.spiking),
                     orr])
        wn.append(wt.reshape(-1))
        on += wt.size
        if kind == 1:  # [c, ky, K-1-kx, co]: one contiguous run per kernel row
            rev = np.ascontiguousarray(wt[:, ::-1].transpose(2, 0, 1, 3)).reshape(-1)
        else:
            rev = wt.reshape(-1)
        wr.append(rev)
        orr += rev.size
    sizes = np.array([pops[net.projections[0].source].size]
                     + [pops[pr.target].size for pr in net.projections], np.int64)
    return (np.array(rows, np.int64), np.concatenate(wn), np.concatenate(wr), sizes)


@njit(cache=True)
def plain_loop(L, w, sizes, x, T, imax, vmin, vmax, ev_ptr, ev_cnt, ev_ids, record):
    """The obvious event loop for one sample: per step, the rate-coded input, then per layer
    each spike of the source's previous step adds its weights target by target; then every
    neuron of the layer is updated (v += input, clamp, fire, subtract).  Returns the spike
    count per population.  With ``record``, writes each population's spike ids per step to
    ev_ids[ev_ptr[pop, t]:][:ev_cnt[pop, t]] (the events for :func:`roofline`)."""
    nl = L.shape[0]
    npop = nl + 1
    nmax = sizes.max()
    cur = np.zeros((npop, nmax), np.int32)   # spike ids of this step
    ncur = np.zeros(npop, np.int64)
    prev = np.zeros((npop, nmax), np.int32)  # and of the previous one
    nprev = np.zeros(npop, np.int64)
    v = np.zeros((nl, nmax), np.int64)
    acc = np.zeros(nmax, np.int32)
    counts = np.zeros(npop, np.int64)
    e = 0
    for t in range(1, T + 1):
        for p in range(npop):
            nprev[p] = ncur[p]
            for i in range(ncur[p]):
                prev[p, i] = cur[p, i]
        n = 0
        for j in range(sizes[0]):
            if (t * x[j]) // imax > ((t - 1) * x[j]) // imax:
                cur[0, n] = j
                n += 1
        ncur[0] = n
        counts[0] += n
        if record:
            ev_ptr[0, t] = e
            ev_cnt[0, t] = n
            for i in range(n):
                ev_ids[e] = cur[0, i]
                e += 1
        for l in range(nl):
            kind, W, C = L[l, L_KIND], L[l, L_W], L[l, L_C]
            OH, OW, OC, K, pad, wo = L[l, L_OH], L[l, L_OW], L[l, L_OC], L[l, L_K], \
                L[l, L_PAD], L[l, L_WOFF]
            nt = sizes[l + 1]
            for s in range(nprev[l]):
                j = prev[l, s]
                if kind == 0:
                    wv = w[wo + j * nt:wo + (j + 1) * nt]  # a view: the add vectorises
                    for i in range(nt):
                        acc[i] += wv[i]
                elif kind == 1:
                    y = j // (W * C)
                    xx = (j // C) % W
                    c = j % C
                    for ky in range(K):
                        oy = y + pad - ky
                        if oy < 0 or oy >= OH:
                            continue
                        for kx in range(K):
                            ox = xx + pad - kx
                            if ox < 0 or ox >= OW:
                                continue
                            ab = (oy * OW + ox) * OC
                            wb = wo + ((ky * K + kx) * C + c) * OC
                            av = acc[ab:ab + OC]
                            wv = w[wb:wb + OC]
                            for co in range(OC):
                                av[co] += wv[co]
                else:
                    y = j // (W * C)
                    xx = (j // C) % W
                    c = j % C
                    oy = y // K
                    ox = xx // K
                    if oy < OH and ox < OW:
                        acc[(oy * OW + ox) * OC + c] += w[wo + c]
            thr = L[l, L_THR]
            spiking = L[l, L_SPK] == 1
            n = 0
            for i in range(nt):
                vv = v[l, i] + acc[i]
                acc[i] = 0
                if vv > vmax:
                    vv = vmax
                elif vv < vmin:
                    vv = vmin
                if spiking and vv >= thr:
                    vv -= thr
                    cur[l + 1, n] = i
                    n += 1
                v[l, i] = vv
            ncur[l + 1] = n
            counts[l + 1] += n
            if record:
                ev_ptr[l + 1, t] = e
                ev_cnt[l + 1, t] = n
                for i in range(n):
                    ev_ids[e] = cur[l + 1, i]
                    e += 1
    return counts


@njit(cache=True)
def roofline(L, wr, sizes, T, ev_ptr, ev_cnt, ev_ids, acc):
    """Only the scatter of the recorded events: per step and layer, each spike of the
    source's previous step adds its int8 weights into an int32 accumulator, conv rows as one
    contiguous run (kx-reversed weights), nothing else (no update, no clearing, no counting).
    Returns the number of adds (= synaptic events)."""
    nl = L.shape[0]
    adds = 0
    for t in range(2, T + 1):
        for l in range(nl):
            kind, W, C = L[l, L_KIND], L[l, L_W], L[l, L_C]
            OH, OW, OC, K, pad, wo = L[l, L_OH], L[l, L_OW], L[l, L_OC], L[l, L_K], \
                L[l, L_PAD], L[l, L_WROFF]
            nt = sizes[l + 1]
            a = acc[l]
            for s in range(ev_ptr[l, t - 1], ev_ptr[l, t - 1] + ev_cnt[l, t - 1]):
                j = ev_ids[s]
                if kind == 0:
                    wv = wr[wo + j * nt:wo + (j + 1) * nt]
                    av = a[:nt]
                    for i in range(nt):
                        av[i] += wv[i]
                    adds += nt
                elif kind == 1:
                    y = j // (W * C)
                    xx = (j // C) % W
                    c = j % C
                    # kx-reversed index r = K-1-kx; ox = xx + pad - K + 1 + r, contiguous in r
                    r0 = max(0, K - 1 - xx - pad)
                    r1 = min(K - 1, OW - 1 - xx - pad + K - 1)
                    if r1 < r0:
                        continue
                    ox0 = xx + pad - K + 1 + r0
                    ln = (r1 - r0 + 1) * OC
                    for ky in range(K):
                        oy = y + pad - ky
                        if oy < 0 or oy >= OH:
                            continue
                        ab = (oy * OW + ox0) * OC
                        wb = wo + (c * K + ky) * K * OC + r0 * OC
                        av = a[ab:ab + ln]
                        wv = wr[wb:wb + ln]
                        for i in range(ln):
                            av[i] += wv[i]
                        adds += ln
                else:
                    y = j // (W * C)
                    xx = (j // C) % W
                    c = j % C
                    oy = y // K
                    ox = xx // K
                    if oy < OH and ox < OW:
                        a[(oy * OW + ox) * OC + c] += wr[wo + c]
                        adds += 1
    return adds


MLP = [("dense", 512), ("dense", 512), ("dense", 10)]
ACTIVITIES = (0.0, 0.02, 0.05, 0.10, 0.20)


class Baselines:
    """The plain loop and the roofline of one network, with the events of the plain loop."""

    def __init__(self, net):
        self.L, self.w, self.wr, self.sizes = layer_table(net)
        self.imax = net.input.input_max
        self.T = None

    def plain(self, x, T, record=False):
        xf = x.reshape(len(x), -1).astype(np.int64)
        npop = len(self.sizes)
        counts, events = np.zeros(npop, np.int64), []
        dummy = np.zeros((1, 1), np.int64)
        for s in range(len(xf)):
            if record:
                ptr = np.zeros((npop, T + 1), np.int64)
                cnt = np.zeros((npop, T + 1), np.int64)
                ids = np.zeros(int(self.sizes.sum()) * T, np.int32)
            else:
                ptr, cnt, ids = dummy, dummy, np.zeros(1, np.int32)
            counts += plain_loop(self.L, self.w, self.sizes, xf[s], T, self.imax,
                                 V_RANGE["v_min"], V_RANGE["v_max"], ptr, cnt, ids, record)
            if record:
                events.append((ptr, cnt, ids[:int(cnt.sum())].copy()))
        return counts, events

    def scatter(self, events, T):
        nl = len(self.L)
        acc = np.zeros((nl, int(self.sizes.max())), np.int32)
        return sum(roofline(self.L, self.wr, self.sizes, T, p, c, i, acc) for p, c, i in events)


def _timed(fn, now):
    t0 = now()
    out = fn()
    return now() - t0, out


def compare(name, spec, shape, n, T, activities, reps):
    """Engine vs plain loop vs roofline per activity, all timed in this process, reps
    interleaved (min of each)."""
    net = build(spec, shape, seed=1)
    xr = inputs(net, n, 2)
    print(f"\n== {name}: {sum(p.size for p in net.populations[1:]):,} neurons, {n} samples x "
          f"{T} steps, 1 thread")
    print(f"{'target':>7}{'activity':>9}{'events/s-step':>14}{'engine':>9}{'plain':>9}"
          f"{'scatter':>9}{'eng/plain':>10}{'eng/scatter':>12}{'eng/eng10%':>11}{'load':>6}"
          f"  (µs per sample-step; {'CPU' if load() > BUSY else 'wall'} time)")
    res = {}
    for target in activities:
        x = xr if target > 0 else np.zeros_like(xr)
        tune(net, target if target > 0 else 0.1, xr[:4], T)
        base = Baselines(net)  # after tuning: it copies the thresholds
        engine.simulate(net, x[:2], T, threads=1)  # compile, pack
        counts, events = base.plain(x, T, record=True)
        raw = engine.simulate(net, x, T, threads=1)
        eng_counts = [raw["pop"][p.name]["spikes"] for p in net.populations]
        same = list(counts) == eng_counts
        adds = base.scatter(events, T)
        ev = raw["totals"]["synaptic_events"]
        now = clock(1)
        tt = {"engine": [], "plain": [], "scatter": []}
        for _ in range(reps):  # interleaved: a slow spell of the machine hits all three
            tt["engine"].append(_timed(lambda: engine.simulate(net, x, T, threads=1), now)[0])
            tt["plain"].append(_timed(lambda: base.plain(x, T), now)[0])
            tt["scatter"].append(_timed(lambda: base.scatter(events, T), now)[0])
        tt = {k: np.array(v) for k, v in tt.items()}
        best = {k: v.min() for k, v in tt.items()}
        # ratios: the median over the reps of the ratio within a rep (robust to slow spells)
        r_plain = float(np.median(tt["engine"] / tt["plain"]))
        r_sc = float(np.median(tt["engine"] / tt["scatter"]))
        per = n * T
        act = activity(net, raw, n, T)
        res[target] = best
        e10 = res.get(0.1, {}).get("engine")
        r10 = f"{best['engine'] / e10:>11.2f}" if e10 else f"{'-':>11}"
        sc = best["scatter"]
        print(f"{target:>7.2f}{act:>9.3f}{ev / per:>14,.0f}{best['engine'] / per * 1e6:>9.1f}"
              f"{best['plain'] / per * 1e6:>9.1f}{sc / per * 1e6:>9.1f}"
              f"{r_plain:>10.2f}"
              f"{(r_sc if adds else float('nan')):>12.2f}{r10}{load():>6.2f}"
              + ("" if same and adds == ev else
                 f"  MISMATCH spikes {list(counts)} vs {eng_counts}, adds {adds} vs {ev}"))
    if 0.0 in res and 0.1 in res:
        print(f"   zero input: {res[0.0]['engine'] / res[0.1]['engine']:.3f} x the engine time "
              f"at 10 % activity (bias-free network)")
    tune(net, 0.1, xr[:4], T)
    # threads split samples: a batch of 4n, so that each thread has enough to do
    xt = inputs(net, 4 * n, 3)
    engine.simulate(net, xt[:2], T, threads=2)
    la = load()
    w1, w2 = [], []
    for _ in range(reps):
        w1.append(_timed(lambda: engine.simulate(net, xt, T, threads=1), time.perf_counter)[0])
        w2.append(_timed(lambda: engine.simulate(net, xt, T, threads=2), time.perf_counter)[0])
    w1, w2 = min(w1), min(w2)
    print(f"   2 threads at 10 % ({4 * n} samples): {w1 / w2:.2f}x (wall "
          f"{w1 / (4 * n * T) * 1e6:.1f} -> {w2 / (4 * n * T) * 1e6:.1f} µs/sample-step; load "
          f"average {la:.2f} / {load():.2f})")


def _print_overhead(name, off, on, med, per):
    print(f"{name}: timing on {on / per * 1e6:.1f} µs/sample-step, off "
          f"{off / per * 1e6:.1f}; on / off x{med:.3f} (median of paired runs; "
          f"x{on / off:.3f} best / best) (1 thread, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})")


def _overheads(quick, target, pairs):
    """The counters' cost per network, measured in this process: yields (name, best off,
    best on, median of the paired on / off ratios, sample-steps a run)."""
    T = 16 if quick else 32
    pairs = pairs or (7 if quick else 15)
    for name, spec, shape, n, prof in (
            ("LeNet-5 6/16 (28x28x1)", LENET, (28, 28, 1), 64, None),
            ("LeNet 32/64 (28x28x1)", LENET64, (28, 28, 1), 32, None),
            # populations split over many cores: counted by the tiles' structures
            ("LeNet 32/64 mapped to loihi1", LENET64, (28, 28, 1), 32, "loihi1"),
            ("VGG (32x32x3, 64-128-256)", VGG, (32, 32, 3), 8, None)):
        net = build(spec, shape, seed=1)
        if prof:
            from converter.mapping import map_to_cores
            from hw_models.profiles import get_profile
            net, rep = map_to_cores(net, get_profile(prof))
            name += f" ({rep.cores} cores)"
        x = inputs(net, n, 2)
        tune(net, target, x[:4], T)
        yield (name,) + timing_overhead(net, x, T, pairs) + (n * T,)
    # the network of issue 13's SANA-FE comparison: tests_99.20 converted for loihi1
    # (analog input, 142 cores, its first layer's channel groups in runs of 3 neurons)
    try:
        from neuroemu.datasets import load_mnist
        from sanafe_compare import convert_network
        net = convert_network(64)
        x = load_mnist()[0][:32].reshape((32,) + tuple(net.populations[0].shape))
    except (OSError, ValueError) as e:  # (the shared data is optional)
        print(f"tests_99.20 for loihi1: skipped ({e})")
        return
    yield ((f"tests_99.20 for loihi1, real MNIST ({net.n_cores} cores)",)
           + timing_overhead(net, x, T, pairs) + (len(x) * T,))


def _overhead_processes(a):
    """``--processes N``: the counters' cost measured by N fresh processes one after another,
    each as one run of ``--timing-only`` does.  On a shared machine the ratio moves by a few
    per cent from one process to the next with no change of code (not within a process: its
    paired runs agree), so one process's figure is one draw; this prints per network the
    median over the processes of their medians, with the lowest and highest."""
    import subprocess
    cmd = [sys.executable, __file__, "--timing-only", "--json", "--target", str(a.target)]
    cmd += (["--quick"] if a.quick else []) + (["--pairs", str(a.pairs)] if a.pairs else [])
    got = {}
    for k in range(a.processes):
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"process {k + 1} of {a.processes} failed:\n{out.stderr}")
        for line in out.stdout.splitlines():
            if line.startswith("OVERHEAD "):
                r = json.loads(line[len("OVERHEAD "):])
                got.setdefault(r["name"], []).append(r)
            else:
                print(line)
        print(f"process {k + 1} of {a.processes} done (load average "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})", flush=True)
    for name, rs in got.items():
        med = np.array([r["median"] for r in rs])
        on = min(r["on"] for r in rs) / rs[0]["per"]
        off = min(r["off"] for r in rs) / rs[0]["per"]
        print(f"{name}: on / off x{np.median(med):.3f} (median of {len(rs)} processes' medians; "
              f"lowest x{med.min():.3f}, highest x{med.max():.3f}); best times on "
              f"{on * 1e6:.1f}, off {off * 1e6:.1f} µs/sample-step")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and steps")
    ap.add_argument("--target", type=float, default=0.1, help="activity to tune for (--legacy)")
    ap.add_argument("--legacy", action="store_true",
                    help="the older figures: NumPy reference, dense torch, VGG")
    ap.add_argument("--nets", default="mlp,lenet", help="mlp, lenet, lenet64 (comma-separated)")
    ap.add_argument("--activities", default=",".join(map(str, ACTIVITIES)),
                    help="target activities (0 = all-zero input)")
    ap.add_argument("--timing-only", action="store_true",
                    help="only the cost of the latency counters (timing= on vs off)")
    ap.add_argument("--processes", type=int, default=1, metavar="N",
                    help="--timing-only: measure in N fresh processes, one after another, and "
                         "print the median over them (the ratio moves from process to process)")
    ap.add_argument("--pairs", type=int, default=0, metavar="K",
                    help="--timing-only: on/off pairs of runs per network and process "
                         "(default 15, --quick 7)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.timing_only:
        if a.processes > 1:
            _overhead_processes(a)
            return
        for name, off, on, med, per in _overheads(a.quick, a.target, a.pairs):
            if a.json:
                print("OVERHEAD " + json.dumps(dict(name=name, off=off, on=on, median=med,
                                                    per=per)), flush=True)
            else:
                _print_overhead(name, off, on, med, per)
        return
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min); "
          f"single-thread times are CPU time while the 1-minute load is above {BUSY}, wall time "
          f"otherwise; 2-thread times are wall time")
    if not a.legacy:
        T = 32 if a.quick else 100
        reps = 3 if a.quick else 7
        nets = {"mlp": ("W1 MLP 784-512-512-10", MLP, 16 if a.quick else 32),
                "lenet": ("W2 LeNet-5 6/16 (28x28x1)", LENET, 16 if a.quick else 32),
                "lenet64": ("LeNet 32/64 (28x28x1)", LENET64, 4 if a.quick else 8)}
        for key in a.nets.split(","):
            label, spec, n = nets[key]
            compare(label, spec, (28, 28, 1), n, T,
                    [float(v) for v in a.activities.split(",")], reps)
        return
    T = 16 if a.quick else 32
    net, x = bench("LeNet-5 6/16 (28x28x1)", LENET, (28, 28, 1), 32 if a.quick else 128, T,
                   a.target, 6, a.quick)
    sweep(net, x[:32], T, (0.02, 0.05, 0.1, 0.2, 0.3, 0.5))
    net, x = bench("LeNet 32/64 (28x28x1)", LENET64, (28, 28, 1), 16 if a.quick else 64, T,
                   a.target, 0, a.quick)
    sweep(net, x[:16], T, (0.02, 0.05, 0.1, 0.2, 0.3, 0.5))
    bench("VGG (32x32x3, 64-128-256)", VGG, (32, 32, 3), 4 if a.quick else 16, T, a.target,
          0, a.quick)


if __name__ == "__main__":
    main()
