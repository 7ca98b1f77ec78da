"""Random small core networks and inputs for exactness tests (engine == dense reference).

``random_network(seed, **overrides)`` draws a valid :class:`~hw_models.network.CoreNetwork`
from a seed.  Across seeds the networks cover every projection kind (dense; conv with stride
1–2, asymmetric padding 0–2, dilation 1–2, and grouped/depthwise conv; avgpool; maxpool with overlapping 3/2 and
non-overlapping 2/2 windows; identity into residual sums), several projections into one target,
delays 0–3 (delay 0 only along the feed-forward DAG; recurrent projections always delay ≥ 1),
both resets, IF and leaky decays, every overflow policy on small v ranges, both spike rules,
biases, ``v_init``, exponents 0–3, int8/int16/int32 weights, read-out ``v`` and ``spikes``,
non-spiking outputs, several cores per population with random assignment and a random placement
on two chips, and the four input encodings.

Overrides (keyword arguments) fix a choice instead of drawing it:
``encoding``, ``input_max``, ``input_shape`` (H, W, C), ``readout``, ``overflow`` (all
populations), ``reset``, ``spike_rule``, ``delay`` (all projections), ``pool``
("avgpool"/"maxpool"/None), ``gate`` (maxpool gate "winner"/"runmax"; drawn from a separate
stream keyed by the seed, so adding it left every other draw of a seed unchanged),
``residual`` (bool), ``recurrent`` (bool), ``mapped`` (bool),
``output_spiking`` (bool), ``symmetric`` (bool: square conv kernels and symmetric padding,
what NIR can carry; the other draws are unchanged), ``weight_scale`` (magnitude of dense/conv
weights: the default 40 fits int8; 300 needs int16 and 50000 int32 in the engine's narrow
weight copy; drawn from a separate stream, so that most seeds keep the networks they had),
``neuron="if"`` (every population IF: the engine's 32-bit and skip-inactive paths), ``bias``
(False: no population has a bias; True: every one has), ``grouped`` (bool: a grouped/depthwise conv branch
into the output, drawn from its own stream likewise).

Thresholds are set from the expected drive of each population so that typically 5–40 % of
neurons spike at some point in a run.

``random_inputs(net, n_samples, seed, steps)`` returns an int64 array (N, H, W, C) in
[0, input_max] (about a third zeros) or, for ``encoding="events"``, an
:class:`~emulator.event_input.EventBatch`.
"""

from __future__ import annotations

import numpy as np

from emulator.event_input import EventBatch
from hw_models.network import CoreNetwork, Population, Projection, conv_output_size

ENCODINGS = ("analog", "rate", "bernoulli", "events")
WEIGHT_DTYPES = (np.int8, np.int16, np.int32)


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


class _Builder:
    """Accumulates populations and projections and estimates each population's drive."""

    def __init__(self, rng, ov, rng2):
        self.rng, self.ov = rng, ov
        # weight magnitude: mostly int8-sized, sometimes int16 or int32 (own stream)
        self.wscale = int(ov.get("weight_scale") or _pick(rng2, (40, 40, 40, 300, 50000)))
        self.pops: list[Population] = []
        self.projs: list[Projection] = []
        self.rate: dict[str, float] = {}     # rough spikes per neuron per step (input: value)
        self.drive: dict[str, float] = {}    # rough |positive drive| per target neuron per step

    # ---- helpers ------------------------------------------------------------------------
    def weights(self, shape, scale=40):
        """Integer weights with a positive mean (so activity propagates), random dtype."""
        rng = self.rng
        dt = _pick(rng, WEIGHT_DTYPES)
        scale = scale * self.wscale // 40
        w = rng.integers(-scale // 2, scale + 1, size=shape)
        w[rng.random(shape) < 0.15] = 0
        if np.abs(w).max(initial=0) > np.iinfo(dt).max:
            dt = np.int32
        return w.astype(dt)

    def delay(self, allow_zero=True):
        if "delay" in self.ov:
            d = int(self.ov["delay"])
            return d if (d > 0 or allow_zero) else 1
        d = int(self.rng.choice([0, 1, 1, 2, 3]))
        return d if (d > 0 or allow_zero) else 1 + int(self.rng.integers(3))

    def add_proj(self, kind, src, tgt, weights, fanin, **geo):
        rng = self.rng
        e = int(_pick(rng, (0, 0, 1, 2, 3)))
        pr = Projection(name=f"p{len(self.projs)}_{kind}", source=src.name, target=tgt.name,
                        kind=kind, weights=weights, exponent=e,
                        delay=geo.pop("delay", self.delay()), **geo)
        self.projs.append(pr)
        w = pr.effective_weights.astype(float)
        mean_w = max(float(np.mean(np.abs(w))), 1.0)
        self.drive[tgt.name] = self.drive.get(tgt.name, 0.0) + self.rate[src.name] * fanin * mean_w
        return pr

    def neuron_pop(self, name, shape):
        p = Population(name=name, shape=shape)
        self.pops.append(p)
        return p

    def finish_pop(self, p: Population, spiking=True):
        """Draw the neuron parameters once all inputs of ``p`` are known."""
        rng, ov = self.rng, self.ov
        drive = max(self.drive.get(p.name, 1.0), 1.0)
        # IF (u = Q) mostly, sometimes a leaky or persistent current
        p.decay_u = int(_pick(rng, (4096, 4096, 4096, 0, 1000, 3000)))
        p.decay_v = int(_pick(rng, (0, 0, 0, 300, 1500)))
        if ov.get("neuron") == "if":
            p.decay_u, p.decay_v = 4096, 0
        # a persistent current (decay_u 0) integrates the drive: aim higher
        gain = 4.0 if p.decay_u == 0 else 1.0
        p.threshold = max(1, int(drive * gain * rng.uniform(1.0, 4.0)))
        p.reset = ov.get("reset") or _pick(rng, ("subtract", "zero"))
        p.spike_rule = ov.get("spike_rule") or _pick(rng, (">=", ">"))
        p.overflow = ov.get("overflow") or _pick(rng, ("saturate", "saturate", "wrap", "raise"))
        th = p.threshold
        if p.overflow == "raise":
            # sometimes tight (likely to raise), mostly roomy (likely not)
            span = int(th * _pick(rng, (2, 10, 100, 1000)))
        else:
            span = int(th * _pick(rng, (1.1, 1.5, 2, 4)))  # small: clamps/wraps happen
        p.v_max = max(th + 1, span)
        p.v_min = -max(1, int(span * rng.uniform(0.3, 1.5)))
        p.v_init = int(rng.integers(p.v_min // 2, th)) if rng.random() < 0.5 else 0
        if ov.get("bias", rng.random() < 0.6):
            p.bias = rng.integers(-th // 4 - 1, th // 4 + 2, size=p.size).astype(np.int64)
        p.spiking = spiking
        # rough firing rate of p for the thresholds further downstream
        self.rate[p.name] = float(rng.uniform(0.05, 0.3)) if spiking else 0.0


def _conv_geometry(rng, h, w, symmetric=False):
    """A (kernel, stride, padding, dilation, out_h, out_w) with a positive output size."""
    for _ in range(100):
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = tuple(int(v) for v in rng.integers(0, 3, size=4))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        if symmetric:
            k, pad = (k[0], k[0]), (pad[0], pad[0], pad[2], pad[2])
        oh = conv_output_size(h, k[0], s[0], pad[0], pad[1], d[0])
        ow = conv_output_size(w, k[1], s[1], pad[2], pad[3], d[1])
        if 2 <= oh and 2 <= ow:
            return k, s, pad, d, oh, ow
    return (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), h, w


def _grouped_branch(b: "_Builder", seed: int, ov: dict, last):
    """A conv with ``groups`` > 1 (override ``grouped``: True/False, default drawn): straight
    from the input when it has 2–3 channels (depthwise; analog inputs take the analog-current
    path), else from a 1×1 conv expanding the map ``last`` to G·cg channels.  Random
    stride, padding and dilation; 1–2 outputs per group.  Returns its population or None."""
    rng = np.random.default_rng([seed, 0x6A0])
    if not ov.get("grouped", rng.random() < 0.5 and not ov.get("symmetric")):
        return None  # (symmetric networks are what NIR carries: nir 1.0 has no grouped conv)
    main, b.rng = b.rng, rng
    inp = b.pops[0]
    if inp.shape[2] >= 2 and rng.random() < 0.5:
        src, G, cg = inp, inp.shape[2], 1
    else:
        G, cg = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        src = b.neuron_pop("gexp", last.shape[:2] + (G * cg,))
        b.add_proj("conv", last, src, b.weights((1, 1, last.shape[2], G * cg)),
                   fanin=last.shape[2])
        b.finish_pop(src)
    og = int(rng.integers(1, 3))
    k, s, pad, d, oh, ow = _conv_geometry(rng, src.shape[0], src.shape[1],
                                          bool(ov.get("symmetric")))
    grp = b.neuron_pop("grouped", (oh, ow, G * og))
    b.add_proj("conv", src, grp, b.weights((k[0], k[1], cg, G * og)), fanin=k[0] * k[1] * cg,
               stride=s, padding=pad, dilation=d, groups=G)
    b.finish_pop(grp)
    b.rng = main
    return grp


def random_network(seed: int, **overrides) -> CoreNetwork:
    """A small valid random core network (see the module docstring for coverage)."""
    rng = np.random.default_rng([seed, 0x5EED])
    ov = overrides
    b = _Builder(rng, ov, np.random.default_rng([seed, 0xB175]))
    enc = ov.get("encoding") or _pick(rng, ENCODINGS)
    if "input_shape" in ov:
        H, W, C = ov["input_shape"]
    else:
        H, W = int(rng.integers(5, 10)), int(rng.integers(5, 10))
        C = int(rng.integers(1, 3)) if enc == "events" else int(rng.integers(1, 4))
    imax = int(ov.get("input_max") or _pick(rng, (1, 3, 15, 100, 255, int(rng.integers(1, 256)))))
    inp = Population(name="input", shape=(H, W, C), kind="input", encoding=enc, input_max=imax)
    b.pops.append(inp)
    # analog: the input value itself (mean ~ imax/3); spikes: a rate (mean ~ 1/3, events ~ 0.2)
    b.rate["input"] = imax / 3 if enc == "analog" else (0.2 if enc == "events" else 1 / 3)

    # conv1: input -> conv
    k, s, pad, d, oh, ow = _conv_geometry(rng, H, W, bool(ov.get("symmetric")))
    c1 = int(rng.integers(1, 4))
    conv = b.neuron_pop("conv1", (oh, ow, c1))
    b.add_proj("conv", inp, conv, b.weights((k[0], k[1], C, c1)), fanin=k[0] * k[1] * C,
               stride=s, padding=pad, dilation=d)
    b.finish_pop(conv)
    last = conv

    # optional pooling
    pool = ov["pool"] if "pool" in ov else _pick(rng, ("avgpool", "maxpool", None))
    if pool:
        kk, ss = _pick(rng, ((2, 2), (3, 2), (2, 1), (3, 1)))
        pp = tuple(int(v) for v in rng.integers(0, 2, size=4)) if rng.random() < 0.4 \
            else (0, 0, 0, 0)
        if ov.get("symmetric"):
            pp = (pp[0], pp[0], pp[2], pp[2])
        ph = conv_output_size(oh, kk, ss, pp[0], pp[1])
        pw = conv_output_size(ow, kk, ss, pp[2], pp[3])
        if ph >= 1 and pw >= 1:
            pl = b.neuron_pop("pool", (ph, pw, c1))
            wts = rng.integers(1, 30, size=c1).astype(_pick(rng, WEIGHT_DTYPES))
            gate = {}
            if pool == "maxpool":
                grng = np.random.default_rng([seed, 0x6A7E])
                gate["gate"] = ov.get("gate") or _pick(grng, ("winner", "runmax"))
            b.add_proj(pool, last, pl, wts, fanin=(kk * kk if pool == "avgpool" else 1),
                       kernel=(kk, kk), stride=(ss, ss), padding=pp, **gate)
            b.finish_pop(pl)
            last = pl

    # optional residual block: res = conv_same(last) + identity(last)
    residual = ov["residual"] if "residual" in ov else rng.random() < 0.5
    if residual:
        h2, w2, c2 = last.shape
        res = b.neuron_pop("res", (h2, w2, c2))
        b.add_proj("conv", last, res, b.weights((3, 3, c2, c2)), fanin=9 * c2,
                   padding=(1, 1, 1, 1))
        b.add_proj("identity", last, res,
                   rng.integers(1, 40, size=c2).astype(_pick(rng, WEIGHT_DTYPES)), fanin=1)
        b.finish_pop(res)
        last = res

    # optional fully connected hidden layer
    if rng.random() < 0.5:
        hid = b.neuron_pop("hidden", (int(rng.integers(4, 20)),))
        b.add_proj("dense", last, hid, b.weights((last.size, hid.size)), fanin=last.size)
        b.finish_pop(hid)
        last = hid

    # optional grouped/depthwise convolution branch (drawn from its own stream, so the draws
    # of the main stream, and with them every network without the branch, stay as they were)
    grouped = _grouped_branch(b, seed, ov, last if len(last.shape) == 3 else conv)

    # output: dense from the last layer, sometimes a second (skip) projection into it
    n_out = int(rng.integers(2, 8))
    out = b.neuron_pop("out", (n_out,))
    b.add_proj("dense", last, out, b.weights((last.size, n_out)), fanin=last.size)
    if rng.random() < 0.4:
        b.add_proj("dense", conv, out, b.weights((conv.size, n_out), scale=10), fanin=conv.size)
    if grouped is not None:
        main, b.rng = b.rng, np.random.default_rng([seed, 0x6A0, 1])
        b.add_proj("dense", grouped, out, b.weights((grouped.size, n_out), scale=10),
                   fanin=grouped.size)
        b.rng = main
    readout = ov.get("readout") or _pick(rng, ("v", "spikes"))
    spiking = ov.get("output_spiking", True if readout == "spikes" else rng.random() < 0.6)
    b.finish_pop(out, spiking=bool(spiking))

    # optional recurrent projection (always delayed)
    recurrent = ov["recurrent"] if "recurrent" in ov else rng.random() < 0.3
    spk = [p for p in b.pops[1:] if p.spiking]
    if recurrent and spk:
        src = _pick(rng, spk)
        tgt = _pick(rng, [p for p in b.pops[1:] if b.pops.index(p) <= b.pops.index(src)])
        b.add_proj("dense", src, tgt, b.weights((src.size, tgt.size), scale=10),
                   fanin=src.size, delay=b.delay(allow_zero=False))

    # cores: 1..3 per population, random assignment; sometimes a population left unmapped
    mapped = ov.get("mapped", rng.random() < 0.85)
    nxt = 0
    if mapped:
        for p in b.pops:
            if rng.random() < 0.1:
                continue  # unmapped: core_assignment() numbers it after the mapped ones
            n_c = int(min(p.size, rng.integers(1, 4)))
            assign = rng.integers(0, n_c, size=p.size)
            assign[:n_c] = np.arange(n_c)  # every core used
            p.core = (nxt + rng.permutation(assign)).astype(np.int32)
            nxt += n_c
    net = CoreNetwork(populations=b.pops, projections=b.projs, output="out", readout=readout,
                      meta={"netgen_seed": int(seed)})
    n_cores = net.n_cores
    if rng.random() < 0.85:
        net.placement = np.stack([rng.integers(0, 2, n_cores), rng.integers(0, 4, n_cores),
                                  rng.integers(0, 4, n_cores)], axis=1).astype(np.int32)
    return net.validate()


def random_inputs(net: CoreNetwork, n_samples: int, seed: int, steps: int):
    """Random inputs for ``net`` in the internal layout (int64 (N, H, W, C)) or an EventBatch."""
    rng = np.random.default_rng([seed, 0x1A9])
    inp = net.input
    if inp.encoding != "events":
        x = rng.integers(0, inp.input_max + 1, size=(n_samples,) + inp.shape)
        x[rng.random(x.shape) < 0.3] = 0
        return x.astype(np.int64)
    n = inp.size
    all_steps, all_neurons, offsets = [], [], [0]
    for _ in range(n_samples):
        density = rng.uniform(0.02, 0.3)
        e = int(rng.poisson(density * n * steps))
        st = rng.integers(0, steps, size=e)
        ne = rng.integers(0, n, size=e)
        if e:  # a few exact repeats: several spikes of one neuron in one step
            rep = rng.integers(0, e, size=max(1, e // 10))
            st, ne = np.concatenate([st, st[rep]]), np.concatenate([ne, ne[rep]])
        order = np.lexsort((ne, st))
        all_steps.append(st[order])
        all_neurons.append(ne[order])
        offsets.append(offsets[-1] + len(order))
    return EventBatch(steps=np.concatenate(all_steps).astype(np.int32) if all_steps
                      else np.zeros(0, np.int32),
                      neurons=np.concatenate(all_neurons).astype(np.int32) if all_neurons
                      else np.zeros(0, np.int32),
                      offsets=np.asarray(offsets, np.int64), shape=tuple(inp.shape),
                      n_steps=int(steps))


def hypothesis_networks():
    """A hypothesis strategy of (network, seed) pairs, for property tests."""
    from hypothesis import strategies as st
    return st.integers(0, 2**31 - 1).map(lambda s: (random_network(s), s))
