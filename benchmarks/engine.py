"""Engine throughput: synaptic events per second against the NumPy reference and dense PyTorch.

Run ``python benchmarks/engine.py`` (``--quick`` for a short run).  For a LeNet-size and a
CIFAR VGG-size integer network (random int8 weights, rate-coded random inputs, IF neurons with
thresholds tuned layer by layer to a target activity), prints:

* measured activity (spikes per spiking neuron per step) and synaptic events per sample-step;
* engine time per sample-step and synaptic events per second on 1 and 2 threads;
* the dense NumPy reference (LeNet-5 only; its dense matrices are too large for the others);
* a dense time-stepped PyTorch float32 simulation of the same network (conv2d/linear on the
  spike tensors every step; ``torch.set_num_threads(1)`` for the single-thread figure), if
  ``import torch`` works;
* an activity sweep and the activity at which dense PyTorch overtakes the event engine;
* the load average when each figure was taken.  Single-thread figures are wall time on a quiet
  machine and process CPU time when the 1-minute load average is above 0.5 (another job would
  otherwise be billed to us); the output says which.  Two-thread figures are always wall time,
  and the 1 → 2 thread speed-up compares wall with wall.

Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from emulator import engine, reference
from hw_models.network import CoreNetwork, Population, Projection, conv_output_size

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


def timing_overhead(net, x, T, reps=5):
    """Engine time with the per-step, per-core work counters and step times (timing=loihi1)
    over the time without, 1 thread, interleaved runs, best of ``reps`` each."""
    from hw_models.latency import timing_for
    tm = timing_for("loihi1")
    for t in (None, tm):
        engine.simulate(net, x[:2], T, threads=1, timing=t)
    now = clock(1)
    best = {None: np.inf, tm: np.inf}
    for _ in range(reps):
        for t in (None, tm):
            t0 = now()
            engine.simulate(net, x, T, threads=1, timing=t)
            best[t] = min(best[t], now() - t0)
    return best[None], best[tm]


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples and steps")
    ap.add_argument("--target", type=float, default=0.1, help="activity to tune for")
    ap.add_argument("--timing-only", action="store_true",
                    help="only the cost of the latency counters (timing= on vs off)")
    a = ap.parse_args(argv)
    T = 16 if a.quick else 32
    if a.timing_only:
        for name, spec, shape, n in (("LeNet-5 6/16 (28x28x1)", LENET, (28, 28, 1), 64),
                                     ("LeNet 32/64 (28x28x1)", LENET64, (28, 28, 1), 32),
                                     ("VGG (32x32x3, 64-128-256)", VGG, (32, 32, 3), 8)):
            net = build(spec, shape, seed=1)
            x = inputs(net, n, 2)
            tune(net, a.target, x[:4], T)
            off, on = timing_overhead(net, x, T)
            per = n * T
            print(f"{name}: timing on {on / per * 1e6:.1f} µs/sample-step, off "
                  f"{off / per * 1e6:.1f}, ratio x{on / off:.3f} (1 thread, load average "
                  f"{' '.join(f'{v:.2f}' for v in os.getloadavg())})")
        return
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min); "
          f"single-thread times are CPU time while the 1-minute load is above {BUSY}, wall time "
          f"otherwise; 2-thread times are wall time")
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
