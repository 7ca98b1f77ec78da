"""Per-core resource accounting: analytic (grid) and exact (any assignment) counts against a
brute-force enumeration of every synapse, limits, off-chip analog input, LimitError."""

from __future__ import annotations

import numpy as np
import pytest

import netgen
from hw_models.errors import LimitError
from hw_models.network import CoreNetwork, Population, Projection, conv_output_size
from hw_models.profiles import get_profile
from hw_models.resources import check_network, projection_synapses, require_fits


# ---- brute force ------------------------------------------------------------------------------

def explicit_synapses(pr, S, T):
    """(source, target) flat indices of every synapse, enumerated one by one."""
    if pr.kind == "dense":
        s, t = np.nonzero(pr.weights)
        return s, t
    if pr.kind == "identity":
        i = np.arange(T.size)
        return i, i
    (h, w, c), (oh, ow, oc) = S.shape, T.shape
    (kh, kw), (sy, sx), (pt, _, pl, _), (dy, dx) = pr.kernel, pr.stride, pr.padding, pr.dilation
    ss, tt = [], []
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    y, x = oy * sy - pt + ky * dy, ox * sx - pl + kx * dx
                    if not (0 <= y < h and 0 <= x < w):
                        continue
                    for ci in range(c):
                        g, og = ci // (c // pr.groups), oc // pr.groups
                        outs = range(g * og, (g + 1) * og) if pr.kind == "conv" else (ci,)
                        for co in outs:
                            ss.append((y * w + x) * c + ci)
                            tt.append((oy * ow + ox) * oc + co)
    return np.array(ss, np.int64), np.array(tt, np.int64)


def brute(net: CoreNetwork, profile):
    """Per-core synapses, input axons, output axons, stored entries (explicit), neurons."""
    cores = net.core_assignment()
    n = 1 + max(int(c.max()) for c in cores.values())
    by = {p.name: p for p in net.populations}
    off = {p.name for p in net.populations if p.is_input and p.encoding == "analog"}
    syn = np.zeros(n, np.int64)
    pairs = set()
    for pr in net.projections:
        if pr.source in off:
            continue
        s, t = explicit_synapses(pr, by[pr.source], by[pr.target])
        tc = cores[pr.target][t]
        syn += np.bincount(tc, minlength=n)
        pairs.update(zip([pr.source] * len(s), s.tolist(), tc.tolist()))
    inax, outax = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for sp, a, b in pairs:
        inax[b] += 1
        outax[cores[sp][a]] += 1
    neurons = np.zeros(n, np.int64)
    for p in net.populations:
        if p.name not in off:
            neurons += np.bincount(cores[p.name], minlength=n)
    return {"synapses": syn, "input_axons": inax, "output_axons": outax, "neurons": neurons}


def assert_matches(net, profile):
    rep = check_network(net, profile)
    want = brute(net, profile)
    on = rep.on_chip
    np.testing.assert_array_equal(rep.synapses[on], want["synapses"][on])
    for k in ("input_axons", "output_axons", "neurons"):
        np.testing.assert_array_equal(rep.usage[k][on], want[k][on], err_msg=k)
    if not get_profile(profile).weight_sharing:
        bps = get_profile(profile).bits_per_synapse
        np.testing.assert_array_equal(rep.usage["memory_bits"][on], want["synapses"][on] * bps)
    return rep


# ---- small hand-built networks -----------------------------------------------------------------

def geometry_net(rng, kind, k, s, pad, d, shape=(9, 8, 3), cout=4, encoding="rate", groups=1):
    h, w, c = shape
    inp = Population("input", shape, kind="input", encoding=encoding)
    oh = conv_output_size(h, k[0], s[0], pad[0], pad[1], d[0])
    ow = conv_output_size(w, k[1], s[1], pad[2], pad[3], d[1])
    oc = cout if kind == "conv" else c
    tgt = Population("t", (oh, ow, oc))
    wts = (rng.integers(-5, 6, (k[0], k[1], c // groups, oc)) if kind == "conv"
           else rng.integers(1, 5, c)).astype(np.int8)
    pr = Projection("p", "input", "t", kind, wts, kernel=k, stride=s, padding=pad, dilation=d,
                    groups=groups)
    out = Population("out", (5,))
    dense = rng.integers(-3, 4, (tgt.size, 5)).astype(np.int16)
    dense[rng.random(dense.shape) < 0.3] = 0
    projs = [pr, Projection("d", "t", "out", "dense", dense),
             Projection("i", "out", "out", "identity", np.ones(5, np.int8), delay=1)]
    return CoreNetwork([inp, tgt, out], projs, output="out").validate()


def grid_cores(pop, tile, first):
    h, w, c = pop.shape
    th, tw, tc = tile
    nb = (-(-h // th), -(-w // tw), -(-c // tc))
    ids = ((np.arange(h) // th)[:, None, None] * nb[1] + (np.arange(w) // tw)[None, :, None]) \
        * nb[2] + (np.arange(c) // tc)[None, None, :]
    return (first + ids).reshape(-1), first + int(np.prod(nb))


GEOMS = [((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)), ((3, 2), (2, 1), (0, 2, 1, 0), (1, 2)),
         ((2, 3), (2, 2), (1, 0, 0, 1), (2, 1)), ((1, 1), (2, 3), (0, 0, 0, 0), (1, 1)),
         ((3, 3), (3, 2), (2, 2, 2, 2), (2, 2))]


@pytest.mark.parametrize("kind", ["conv", "avgpool", "maxpool"])
@pytest.mark.parametrize("gi", range(len(GEOMS)))
def test_analytic_grid_equals_brute_force(rng, kind, gi):
    k, s, pad, d = GEOMS[gi]
    if kind != "conv":
        d = (1, 1)
    net = geometry_net(rng, kind, k, s, pad, d)
    t = net.population("t")
    for tile in [(2, 3, 2), (1, 1, 1), t.shape, (3, 1, 3)]:
        nxt = 0
        pops = []
        for p in net.populations:
            if len(p.shape) == 3:
                core, nxt = grid_cores(p, tuple(min(a, b) for a, b in zip(tile, p.shape)), nxt)
            else:
                core = nxt + np.arange(p.size) // 2
                nxt = int(core.max()) + 1
            pops.append(Population(**{**p.__dict__, "core": core}))
        mapped = net.replace(populations=pops)
        rep = assert_matches(mapped, "loihi1")
        assert rep.analytic


# (input shape, output channels, groups): depthwise, depthwise ×2, two groups of 3 → 2
GROUPED = [((9, 8, 3), 3, 3), ((9, 8, 3), 6, 3), ((7, 6, 6), 4, 2)]


@pytest.mark.parametrize("case", GROUPED)
def test_grouped_conv_analytic_and_exact_equal_brute_force(rng, case):
    """Grouped/depthwise conv: synapses, input and output axons per core on grid tilings
    (channel bands that split a group, or hold several) and on random assignments."""
    shape, cout, groups = case
    for k, s, pad, d in GEOMS:
        net = geometry_net(rng, "conv", k, s, pad, d, shape=shape, cout=cout, groups=groups)
        t = net.population("t")
        for tile in [(2, 3, 1), (3, 2, 2), (1, 1, 4), t.shape]:
            nxt, pops = 0, []
            for p in net.populations:
                if len(p.shape) == 3:
                    core, nxt = grid_cores(p, tuple(min(a, b) for a, b in zip(tile, p.shape)),
                                           nxt)
                else:
                    core = nxt + np.arange(p.size) // 2
                    nxt = int(core.max()) + 1
                pops.append(Population(**{**p.__dict__, "core": core}))
            assert assert_matches(net.replace(populations=pops), "loihi1").analytic
        pops = [Population(**{**p.__dict__, "core": 3 * i + rng.integers(0, 3, p.size)})
                for i, p in enumerate(net.populations)]
        assert not assert_matches(net.replace(populations=pops), "loihi1").analytic
        assert projection_synapses(net)["p"] == len(explicit_synapses(
            net.projection("p"), net.population("input"), t)[0])


@pytest.mark.parametrize("seed", range(8))
def test_netgen_grouped_networks_equal_brute_force(seed):
    assert_matches(netgen.random_network(1000 + seed, grouped=True), "loihi1")


def test_weight_sharing_stores_grouped_kernel_once_per_core(rng):
    """Depthwise on a weight-sharing chip: kh·kw·(c/G) entries per output channel held."""
    net = geometry_net(rng, "conv", (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), cout=6, groups=3)
    pops = [Population(**{**p.__dict__, "core": np.full(p.size, i, np.int32)})
            for i, p in enumerate(net.populations)]
    rep = check_network(net.replace(populations=pops), get_profile("speck"))
    assert rep.stored_entries[1] == 3 * 3 * 1 * 6


@pytest.mark.parametrize("kind", ["conv", "avgpool", "maxpool"])
def test_exact_fallback_random_assignment_equals_brute_force(rng, kind):
    for k, s, pad, d in GEOMS:
        net = geometry_net(rng, kind, k, s, pad, d if kind == "conv" else (1, 1))
        pops = []
        for i, p in enumerate(net.populations):
            pops.append(Population(**{**p.__dict__,
                                      "core": 3 * i + rng.integers(0, 3, p.size)}))
        rep = assert_matches(net.replace(populations=pops), "loihi1")
        assert not rep.analytic


def test_shared_cores_union_sources(rng):
    """Two populations on one core fed by one source: each source neuron is one input axon."""
    net = geometry_net(rng, "conv", (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    pops = [Population(**{**p.__dict__, "core": np.zeros(p.size, np.int32)})
            for p in net.populations]
    rep = assert_matches(net.replace(populations=pops), "loihi1")
    assert rep.usage["thresholds"][0] == 1  # both neuron populations have threshold 1


@pytest.mark.parametrize("seed", range(40))
def test_netgen_networks_equal_brute_force(seed):
    net = netgen.random_network(seed)
    assert_matches(net, "loihi1")


def test_weight_sharing_stores_kernel_once_per_core(rng):
    prof = get_profile("speck")
    net = geometry_net(rng, "conv", (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), cout=6)
    t = net.population("t")
    core_t, nxt = grid_cores(t, (3, 4, 4), 0)
    pops = [Population(**{**p.__dict__, "core": (core_t if p.name == "t" else
                                                  np.full(p.size, nxt + i, np.int32))})
            for i, p in enumerate(net.populations)]
    rep = check_network(net.replace(populations=pops), prof)
    ks = np.unique(core_t)
    tc = np.array([4 if (k % 2 == 0) else 2 for k in ks])  # channel groups 0:4 and 4:6
    np.testing.assert_array_equal(rep.stored_entries[ks], 3 * 3 * 3 * tc)
    assert rep.synapses[ks].sum() == projection_synapses(net)["p"]


def test_analog_input_is_offchip(rng):
    net = geometry_net(rng, "conv", (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), encoding="analog")
    rep = check_network(net, "loihi1")
    t = rep.populations["t"]
    assert t["offchip_synapses"] == projection_synapses(net)["p"] > 0
    assert rep.populations["input"]["cores"] == 0 and not rep.populations["input"]["on_chip"]
    core_t = net.core_assignment()["t"][0]
    assert rep.usage["input_axons"][core_t] == 0 and rep.synapses[core_t] == 0


def test_limits_reported_and_require_fits_names_population(rng):
    net = geometry_net(rng, "conv", (3, 3), (1, 1), (1, 1, 1, 1), (1, 1))
    prof = get_profile("loihi1").replace(neurons_per_core=50)
    rep = check_network(net, prof)  # unmapped: one core per population, 9*8*4 = 288 neurons
    v = [x for x in rep.violations if x.population == "t" and x.limit == "neurons"]
    assert v and v[0].used == 288 and v[0].max == 50
    assert "'t'" in v[0].message and "neurons" in v[0].message
    with pytest.raises(LimitError, match="population 'input'|population 't'"):
        require_fits(net, prof)
    assert check_network(net, "loihi2").ok
