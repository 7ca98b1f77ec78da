"""Mapping a CoreNetwork onto the cores of a chip: tiling, limits, placement.

:func:`map_to_cores` splits every population into cores as **rectangular tiles** — channel
groups × row bands × column bands for an (H, W, C) map, contiguous ranges for a vector (and for
a map fed by a dense projection) — choosing, per population, the tile size that needs the fewest
cores while every core keeps within the profile's limits (see :mod:`hw_models.resources` for the
exact definition of each limit):

1. **Own limits** (neurons, input axons, synaptic memory, thresholds) depend only on a
   population's own tiling and its incoming projections.  All candidate tile sizes (every value
   of ``⌈n/k⌉`` per axis) are scored at once with per-axis window terms; the worst tile of a grid
   is the product of the per-axis worst bands, so the feasibility test is exact and vectorised.
   Among the tiles that fit, the mapper takes the one minimising this layer's cores plus an
   estimate of the extra cores its sources will need for their fan-out (a source of n neurons
   whose neurons reach f of these cores on average needs at least n·f / output-axon-limit
   cores) — greedy, layer by layer, not a global optimum.
2. **Output axons** of a population depend on the tilings of its *targets*.  Once every
   population has its tiling, populations whose cores send to too many destination cores are
   re-tiled more finely, in reverse layer order (a finer tiling of a population raises its
   sources' fan-out, so sources are revisited after their targets).

A population whose **single neuron** already exceeds a limit (e.g. a fan-in of 4608 on a chip
with 4096 input axons) cannot fit however it is split: it is still mapped (tiled as if that
limit were the single-neuron value plus an eighth of the limit, so the rest of the network can
be studied) and reported as a
violation naming the layer, the limit and the value — never silently truncated.

Cores are numbered in layer order and **placed** on the chip mesh in the same order, filling
one chip before the next: core g of the on-chip sequence goes to chip ``g // cores_per_chip``,
router ``r = (g mod cores_per_chip) // cores_per_router`` at ``(r mod mesh_x, r // mesh_x)``.
An analog input population is off-chip (the host computes the first layer's input current):
its neurons share one extra core placed at chip ``-1`` (the host), which counts for nothing.
Spiking inputs (rate, bernoulli, events) are mapped onto on-chip cores like any population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hw_models.network import CoreNetwork, Population
from hw_models.profiles import get_profile, is_stock
from hw_models.resources import (LIMIT_NAMES, ResourceReport, check_network, window_axis)

_BIG = np.iinfo(np.int64).max // 4


@dataclass
class MappingReport:
    """What :func:`map_to_cores` decided and what it found.

    ``tiles`` per population: ``tile`` (th, tw, tc) or (r,), ``grid`` (bands per axis),
    ``cores``; ``single_neuron`` lists the populations whose single neuron exceeds a limit
    (dicts: population, limit, value, max, message); ``resources`` is the full per-core
    :class:`~hw_models.resources.ResourceReport` of the mapped network.
    """

    profile: str
    tiles: dict
    cores: int
    chips: int
    input_offchip: bool
    single_neuron: list
    resources: ResourceReport
    notes: list = field(default_factory=list)

    @property
    def violations(self) -> list:
        return self.resources.violations

    @property
    def ok(self) -> bool:
        return not self.resources.violations

    def to_dict(self) -> dict:
        return {"profile": self.profile, "cores": self.cores, "chips": self.chips,
                "input_offchip": self.input_offchip, "ok": self.ok,
                "tiles": {k: dict(v) for k, v in self.tiles.items()},
                "single_neuron": list(self.single_neuron), "notes": list(self.notes),
                "violations": [v.to_dict() for v in self.resources.violations],
                "totals": self.resources.totals()}


# =========================================================================================
# Candidate tile sizes and their worst-case usage
# =========================================================================================

def _sizes(n: int) -> np.ndarray:
    """Every distinct ``⌈n/k⌉`` (k = 1 … n), descending: the tile sizes worth trying."""
    return np.unique(-(-n // np.arange(1, n + 1)))[::-1].astype(np.int64)


def _bands(n: int, t: int):
    starts = np.arange(0, n, t, dtype=np.int64)
    return starts, np.minimum(starts + t, n)


def _axis_worst(n_in, n_out, k, s, p, d, sizes):
    """For each band size: max valid taps per band, max distinct inputs per band, and the
    mean over inputs of the number of bands reaching an input (the fan-out factor)."""
    taps, touched = np.zeros(len(sizes), np.int64), np.zeros(len(sizes), np.int64)
    reach = np.zeros(len(sizes), np.float64)
    for i, t in enumerate(sizes):
        st, en = _bands(n_out, int(t))
        tp, tu, rc = window_axis(n_in, n_out, k, s, p, d, st, en)
        taps[i], touched[i], reach[i] = tp.max(), tu.max(), rc.mean()
    return taps, touched, reach


class _Usage:
    """Worst-tile usage of one population over a broadcastable candidate grid."""

    def __init__(self, shape):
        self.neurons = np.ones(shape, np.int64)
        self.inax = np.zeros(shape, np.int64)
        self.stored = np.zeros(shape, np.int64)


def _map_candidates(pop, incoming, by, profile):
    """Candidate (th, tw, tc) arrays and their worst usage for a map population."""
    h, w, c = pop.shape
    th, tw, tc = _sizes(h), _sizes(w), _sizes(c)
    TH, TW, TC = th[:, None, None], tw[None, :, None], tc[None, None, :]
    shp = (len(th), len(tw), len(tc))
    u = _Usage(shp)
    u.neurons = np.broadcast_to(TH * TW * TC, shp)
    sharing = profile.weight_sharing
    u.fan = {}  # source name -> mean destination cores per source neuron, per candidate
    for pr in incoming:
        S = by[pr.source]
        if pr.kind == "identity":
            inax = TH * TW * TC
            u.inax = u.inax + inax
            u.stored = u.stored + (TC if sharing else inax)
            u.fan[S.name] = u.fan.get(S.name, 0.0) + np.ones(shp)
            continue
        (sh, sw, sc) = S.shape
        (kh, kw), (sy, sx), (pt, _, pl, _), (dy, dx) = (pr.kernel, pr.stride, pr.padding,
                                                        pr.dilation)
        ty, uy, ry = _axis_worst(sh, h, kh, sy, pt, dy, th)
        tx, ux, rx = _axis_worst(sw, w, kw, sx, pl, dx, tw)
        TY, UY, TX, UX = ty[:, None, None], uy[:, None, None], tx[None, :, None], ux[None, :, None]
        G = pr.groups
        cg, og = sc // G, c // G  # per group: input channels, output channels
        # channel bands a source reaches: those overlapping its group's og outputs (at most)
        ncg = np.minimum(-(-c // TC), -(-(og - 1) // TC) + 1) if pr.kind == "conv" else 1
        u.fan[S.name] = u.fan.get(S.name, 0.0) + np.broadcast_to(
            ry[:, None, None] * rx[None, :, None] * ncg, shp)
        if pr.kind == "conv":
            # a band of TC output channels reads the cg inputs of each group it overlaps
            u.inax = u.inax + UY * UX * np.minimum(sc, (-(-(TC - 1) // og) + 1) * cg)
            syn = TY * TX * cg * TC
            u.stored = u.stored + (kh * kw * cg * TC if sharing else syn)
        else:
            u.inax = u.inax + UY * UX * TC
            u.stored = u.stored + (TC if sharing else TY * TX * TC)
    grid = (-(-h // TH)) * (-(-w // TW)) * (-(-c // TC))
    return (TH, TW, TC), np.broadcast_to(grid, shp), u


def _dense_inax_exact(W, r):
    """Max over contiguous column ranges of size r of the rows with a non-zero weight."""
    n_t = W.shape[1]
    starts = np.arange(0, n_t, r)
    best = np.zeros(len(starts), np.int64)
    for r0 in range(0, W.shape[0], 2048):
        nz = W[r0:r0 + 2048] != 0
        best += np.logical_or.reduceat(nz, starts, axis=1).sum(0)
    return int(best.max())


def _vector_candidates(pop, incoming, by, profile):
    """Candidate range sizes r, core counts and worst usage (input axons of dense
    projections as an upper bound; see :func:`_tile_vector`)."""
    n = pop.size
    r = _sizes(n)
    u = _Usage(len(r))
    u.neurons = r.copy()
    exact_needed = []
    for pr in incoming:
        S = by[pr.source]
        if pr.kind == "dense":
            nnz = np.count_nonzero(pr.weights, axis=0)
            cs = np.concatenate([[0], np.cumsum(nnz)])
            rows_nz = int(np.count_nonzero(np.any(pr.weights != 0, axis=1)))
            syn = np.array([int((cs[np.minimum(np.arange(0, n, k) + k, n)]
                                 - cs[np.arange(0, n, k)]).max()) for k in r], np.int64)
            u.stored = u.stored + syn
            ub = np.minimum(syn, rows_nz)
            u.inax = u.inax + ub
            exact_needed.append((pr, ub))
        elif pr.kind == "identity":
            u.inax = u.inax + r
            u.stored = u.stored + (1 if profile.weight_sharing else r)
        else:  # conv/pool into a flat-tiled population: bound by the whole fan-in
            raise _NotVector()
    return r, -(-n // r), u, exact_needed


class _NotVector(Exception):
    pass


def _fits(u: _Usage, lim: dict):
    ok = np.ones(np.shape(u.neurons), bool)
    for arr, name in ((u.neurons, "neurons"), (u.inax, "input_axons"),
                      (u.stored, "memory_bits")):
        if lim[name] is not None:
            ok &= np.asarray(arr) <= lim[name]
    return ok


def _own_limits(profile, u_min: dict, pop_name: str, single: list, exact=None):
    """Profile limits (memory in stored entries).  ``u_min`` is the candidates' smallest
    worst-tile usage, an upper bound of a single neuron's usage; where it exceeds a limit L the
    single neuron's exact usage (``exact()``, see :func:`_single_neuron_usage`) decides.  A limit
    that one neuron really exceeds (value v) is recorded in ``single`` and raised to
    ``u_min + L // 8`` for this population: the layer is tiled as if the chip had what one
    neuron needs plus an eighth of the limit as headroom (for shortcut inputs, more output
    channels per core) — best effort, reported, never truncated."""
    bps = max(profile.bits_per_synapse, 1)
    lim = {"neurons": profile.neurons_per_core, "input_axons": profile.input_axons_per_core,
           "memory_bits": profile.synaptic_memory_bits_per_core}
    if lim["memory_bits"] is not None:
        lim["memory_bits"] = lim["memory_bits"] // bps  # in entries
    out, ex = {}, None
    for k, v in lim.items():
        out[k] = v
        if v is not None and u_min[k] > v:
            if exact is not None and k != "neurons":
                ex = ex or exact()
                if ex[k] <= v:  # the bound is loose: one neuron fits
                    continue
                value = ex[k]
            else:
                value = u_min[k]
            out[k] = int(u_min[k]) + v // 8
            scale = bps if k == "memory_bits" else 1
            single.append(_single_entry(profile, pop_name, k, value * scale, v * scale))
    return out


def _single_entry(profile, pop_name: str, k: str, value: int, limit: int) -> dict:
    return {"population": pop_name, "limit": k, "value": int(value), "max": int(limit),
            "message": f"layer {pop_name!r}: a single neuron needs {k} = {int(value)} > "
                       f"{int(limit)} ({profile.name}); it cannot fit on any core however "
                       f"the layer is split (reduce its fan-in or use another chip)"}


def _single_neuron_usage(net, pop, incoming, by, profile) -> dict:
    """The exact worst single-neuron usage of ``pop`` (input axons; memory in stored entries),
    counted by :func:`~hw_models.resources.check_network` with ``pop`` one neuron per core and
    only its incoming projections — the union over projections from one source, which the
    per-projection bounds of the tiling search only bound from above."""
    pops, nxt = [], pop.size
    for name in dict.fromkeys(pr.source for pr in incoming):
        if name != pop.name:  # each source on a core of its own: target usage is unaffected
            pops.append(_with_core(by[name], np.full(by[name].size, nxt, np.int32)))
            nxt += 1
    pops.append(_with_core(pop, np.arange(pop.size, dtype=np.int32)))
    sub = net.replace(populations=pops, projections=list(incoming), placement=None)
    rep = check_network(sub, profile)
    row = rep.populations[pop.name]["limits"]
    stored = rep.stored_entries[:pop.size]
    return {"input_axons": int(row["input_axons"]["worst"]),
            "memory_bits": int(stored.max()) if stored.size else 0}


def _fanout_penalty(u, by, profile, own_cores):
    """Estimated extra cores the sources need so that their output axons fit, per candidate:
    a source of n neurons whose neurons reach f cores on average needs ≥ n·f / limit cores."""
    lim = profile.output_axons_per_core
    pen = np.zeros(np.shape(u.neurons))
    if lim is None:
        return pen
    for name, f in u.fan.items():
        own = own_cores.get(name)
        if own is None:  # off-chip analog input or not tiled yet
            continue
        pen = pen + np.maximum(0.0, by[name].size * np.asarray(f) / lim - own)
    return pen


def _tile_map(pop, incoming, by, profile, single, own_cores=None, exact=None):
    (TH, TW, TC), grid, u = _map_candidates(pop, incoming, by, profile)
    u_min = {"neurons": int(u.neurons[-1, -1, -1]), "input_axons": int(np.min(u.inax)),
             "memory_bits": int(np.min(u.stored))}
    lim = _own_limits(profile, u_min, pop.name, single, exact)
    ok = _fits(u, lim)
    # fewest cores of this layer plus the cores its sources will need for their fan-out
    pen = _fanout_penalty(u, by, profile, own_cores or {})
    score = np.where(ok, np.ceil(grid + pen).astype(np.int64), _BIG)
    # tie-break: fewest total input axons, then larger channel groups
    inax = np.broadcast_to(u.inax, score.shape)
    key = np.lexsort((-np.broadcast_to(TC, score.shape).reshape(-1),
                      (np.broadcast_to(grid, score.shape) * inax).reshape(-1),
                      score.reshape(-1)))
    cands = [np.unravel_index(int(i), score.shape) for i in key if score.reshape(-1)[i] < _BIG]
    return [(int(TH[i, 0, 0]), int(TW[0, j, 0]), int(TC[0, 0, k])) for i, j, k in cands]


def _tile_vector(pop, incoming, by, profile, single, exact=None):
    r, grid, u, dense = _vector_candidates(pop, incoming, by, profile)
    u_min = {"neurons": 1, "input_axons": int(u.inax[-1]), "memory_bits": int(u.stored[-1])}
    # at r = 1 the dense upper bound is exact (one column: its non-zero rows)
    lim = _own_limits(profile, u_min, pop.name, single, exact)
    ok = _fits(u, lim)
    # candidates that fail only on the dense input-axon upper bound may still fit: check
    # exactly by bisection over r (input axons grow with the range size)
    loose = _fits(_Usage_override(u, inax=u.inax * 0), lim) & ~ok
    if lim["input_axons"] is not None and loose.any() and dense:
        idx = np.nonzero(loose)[0]
        lo, hi, best = 0, len(idx) - 1, None
        while lo <= hi:  # idx ascending in index = descending r: find the largest r that fits
            mid = (lo + hi) // 2
            rr = int(r[idx[mid]])
            val = sum(_dense_inax_exact(pr.weights, rr) for pr, _ in dense) + \
                int(u.inax[idx[mid]] - sum(ub[idx[mid]] for _, ub in dense))
            if val <= lim["input_axons"]:
                best, hi = idx[mid], mid - 1
            else:
                lo = mid + 1
        if best is not None:
            ok[best] = True
    order = np.nonzero(ok)[0]
    order = order[np.argsort(grid[order], kind="stable")]
    return [(int(r[i]),) for i in order]


def _Usage_override(u, inax):
    v = _Usage(np.shape(u.neurons))
    v.neurons, v.stored, v.inax = u.neurons, u.stored, inax
    return v


# =========================================================================================
# Assigning cores
# =========================================================================================

def _core_array(pop: Population, tile, first: int) -> tuple[np.ndarray, int, list]:
    """Core id per neuron for ``tile`` (grid cells numbered C-order from ``first``)."""
    if len(tile) == 3:
        h, w, c = pop.shape
        th, tw, tc = tile
        by_, bx, bc = np.arange(h) // th, np.arange(w) // tw, np.arange(c) // tc
        nb = (int(by_[-1]) + 1, int(bx[-1]) + 1, int(bc[-1]) + 1)
        ids = (by_[:, None, None] * nb[1] + bx[None, :, None]) * nb[2] + bc[None, None, :]
        core = (first + ids).reshape(-1).astype(np.int32)
        return core, int(np.prod(nb)), list(nb)
    (r,) = tile
    ids = np.arange(pop.size) // r
    return (first + ids).astype(np.int32), int(ids[-1]) + 1, [int(ids[-1]) + 1]


def _integral(nd: np.ndarray, pop: Population) -> np.ndarray:
    """Summed-area table of per-neuron values over the population's shape (or flat)."""
    shape = pop.shape if len(pop.shape) == 3 else (pop.size,)
    a = np.rint(nd).astype(np.int64).reshape(shape)
    out = np.zeros(tuple(s + 1 for s in shape), np.int64)
    for ax in range(a.ndim):
        a = np.cumsum(a, axis=ax)
    out[tuple(slice(1, None) for _ in shape)] = a
    return out


def _tile_sum_max(S: np.ndarray, tile) -> int:
    """Max over the tiles of ``tile`` of the sum of per-neuron values (from the summed-area
    table ``S``), by inclusion-exclusion at the band boundaries."""
    bounds = [np.append(np.arange(0, n - 1, t), n - 1) for n, t in zip(S.shape, tile)]
    if len(tile) == 1:
        return int(np.diff(S[bounds[0]]).max())
    box = S[np.ix_(*bounds)]
    for ax in range(3):
        box = np.diff(box, axis=ax)
    return int(box.max())


def _tiles_count(pop: Population, tile) -> int:
    shape = pop.shape if len(tile) == 3 else (pop.size,)
    return int(np.prod([-(-n // t) for n, t in zip(shape, tile)]))


def _placement(n_on: int, profile) -> np.ndarray:
    g = np.arange(n_on, dtype=np.int64)
    out = np.zeros((n_on, 3), np.int32)
    if profile.cores_per_chip is not None:
        out[:, 0] = g // profile.cores_per_chip
        g = g % profile.cores_per_chip
    if profile.mesh is not None:
        router = g // profile.cores_per_router
        out[:, 1] = router % profile.mesh[0]
        out[:, 2] = router // profile.mesh[0]
    return out


def _assign(net, tiles, off):
    """New populations with core arrays (on-chip cores first, analog input last)."""
    nxt, pops, info = 0, [], {}
    for p in net.populations:
        if p.name in off:
            pops.append(p)
            continue
        core, n, nb = _core_array(p, tiles[p.name], nxt)
        info[p.name] = {"tile": list(tiles[p.name]), "grid": nb, "cores": n}
        nxt += n
        pops.append(_with_core(p, core))
    n_on = nxt
    for i, p in enumerate(pops):
        if p.name in off:
            pops[i] = _with_core(p, np.full(p.size, n_on, np.int32))
            info[p.name] = {"tile": list(p.shape), "grid": [1], "cores": 0, "offchip": True}
    return pops, info, n_on


def _with_core(p: Population, core):
    import dataclasses
    q = dataclasses.replace(p, core=core)
    return q


def map_to_cores(net: CoreNetwork, profile) -> tuple[CoreNetwork, MappingReport]:
    """Tile every population onto cores under ``profile``, place the cores, and return a new
    network (``core`` arrays and ``placement`` set; ``net`` is not changed) with its report."""
    profile = get_profile(profile)
    by = {p.name: p for p in net.populations}
    off = {p.name for p in net.populations if p.is_input and p.encoding == "analog"}
    single: list = []
    cands: dict = {}
    for p in net.populations:
        if p.name in off:
            continue
        inc = [pr for pr in net.incoming(p.name) if pr.source not in off]
        dense_in = any(pr.kind == "dense" for pr in inc)

        def exact(p=p, inc=inc):
            return _single_neuron_usage(net, p, inc, by, profile)
        # with one incoming projection the per-axis bounds are attained by one neuron (exact)
        exact_or_none = exact if len(inc) > 1 else None
        if len(p.shape) == 3 and not dense_in:
            cands[p.name] = _tile_map(p, inc, by, profile, single,
                                      {k: _tiles_count(by[k], v[0]) for k, v in cands.items()
                                       if v}, exact_or_none)
        else:
            try:
                cands[p.name] = _tile_vector(p, inc, by, profile, single, exact_or_none)
            except _NotVector:
                # conv/pool and dense into one map: one neuron per core, limits checked
                # on the exact per-neuron usage
                cands[p.name] = [(1,)]
                u = exact()
                _own_limits(profile, {"neurons": 1, **u}, p.name, single)
        if not cands[p.name]:
            cands[p.name] = [(1, 1, 1) if len(p.shape) == 3 and not dense_in else (1,)]
    tiles = {k: v[0] for k, v in cands.items()}

    # output axons: re-tile finer, targets before sources; a back edge (a recurrent
    # projection, or a dense projection into an earlier layer) can make a target finer after
    # its source was settled, so passes repeat until no tile changes
    limit = profile.output_axons_per_core
    notes = []
    if limit is not None:
        version = {k: 0 for k in tiles}  # bumped when a population is re-tiled
        seen: dict = {}  # population -> its targets' versions when it was last checked
        for _ in range(len(net.populations) + 1):
            changed = False
            for p in reversed(net.populations):
                if p.name in off or not net.outgoing(p.name):
                    continue
                # its neurons' fan-out depends only on its targets' tiles (itself, if recurrent)
                key = tuple(version.get(pr.target, 0) for pr in net.outgoing(p.name))
                if seen.get(p.name) == key:  # no target re-tiled since it was checked
                    continue
                seen[p.name] = key
                sub = _fanout_net(net, p, tiles, off)
                nd = check_network(sub, profile, keep_fanout=True).fanout.get(p.name)
                if nd is None:
                    continue
                table = _integral(nd, p)
                if _tile_sum_max(table, tiles[p.name]) <= limit:
                    continue
                chosen, cap, total = None, max(limit, int(nd.max())), float(nd.sum())
                for t in cands[p.name]:
                    # the mean tile sum bounds the worst one from below: skip hopeless tiles
                    if total / _tiles_count(p, t) > cap:
                        continue
                    if _tile_sum_max(table, t) <= cap:
                        chosen = t
                        break
                if chosen is None:
                    chosen = (1, 1, 1) if len(tiles[p.name]) == 3 else (1,)
                if chosen != tiles[p.name]:
                    notes.append(f"{p.name}: tile {tiles[p.name]} -> {chosen} to keep output "
                                 f"axons within {limit}")
                    tiles[p.name], changed = chosen, True
                    version[p.name] += 1
            if not changed:
                break

    pops, info, n_on = _assign(net, tiles, off)
    place = _placement(n_on, profile)
    if off:
        place = np.concatenate([place, np.array([[-1, 0, 0]], np.int32)])
        notes.append(f"input population {sorted(off)[0]!r} is analog: it stays off-chip "
                     f"(the host computes the first layer's input current each step); it uses "
                     f"no core and its projections no synaptic memory")
    new = net.replace(populations=pops, placement=place,
                      profile=profile.name if is_stock(profile) else profile,
                      meta=dict(net.meta))
    res = check_network(new, profile, keep_fanout=limit is not None)
    if limit is not None:  # a neuron that alone reaches more cores than the limit
        for p in net.populations:
            nd = res.fanout.get(p.name)
            if nd is not None and nd.size and nd.max() > limit:
                single.append({"population": p.name, "limit": "output_axons",
                               "value": int(nd.max()), "max": int(limit), "message":
                               f"layer {p.name!r}: a single neuron reaches {int(nd.max())} "
                               f"cores > {limit} output axons ({profile.name}); map its "
                               f"targets onto larger tiles"})
        res.fanout = {}
    cpc = profile.cores_per_chip
    chips = 0 if n_on == 0 else (1 if cpc is None else math.ceil(n_on / cpc))
    rep = MappingReport(profile.name, info, n_on, chips, bool(off), single, res, notes)
    return new, rep


def _fanout_net(net, p, tiles, off):
    """A sub-network of ``p`` and its targets with the current tiles (for fan-out counts)."""
    names = {p.name} | {pr.target for pr in net.outgoing(p.name)}
    pops, _, _ = _assign(net.replace(populations=[q for q in net.populations
                                                  if q.name in names]),
                         {k: v for k, v in tiles.items() if k in names}, off)
    return net.replace(populations=pops,
                       projections=[pr for pr in net.outgoing(p.name)])
