"""Per-core resource accounting of a :class:`~hw_models.network.CoreNetwork` under a chip profile.

Given a network whose populations carry ``core`` arrays (an unmapped population counts as one
core, see :meth:`CoreNetwork.core_assignment`) and a :class:`~hw_models.profiles.ChipProfile`,
:func:`check_network` counts, for every core, the five quantities the chips limit:

``neurons``       neurons (compartments) on the core.
``input_axons``   distinct source neurons feeding the core, over all its incoming projections
                  (a source neuron that reaches several neurons of the core, through one or
                  several projections, needs one input axon).
``output_axons``  Loihi meaning: routing entries, ``Σ`` over the core's neurons of the number of
                  distinct destination cores each one reaches (the core itself included).  On
                  Loihi 1 this is the 4096 output-axon table.  On TrueNorth each neuron has
                  exactly one output axon (one destination core), so a core whose sum exceeds
                  its 256 neurons needs splitter neurons; ``max_fanout_cores`` per population
                  (the largest number of destination cores of one neuron) says how many.
``memory_bits``   synaptic memory: explicit synapses × ``profile.bits_per_synapse``; with
                  ``profile.weight_sharing`` a ``conv`` projection stores its kernel once per
                  core (``kh·kw·c_in·(output channels on the core)`` entries) and ``avgpool``,
                  ``maxpool`` and ``identity`` one weight per channel on the core; ``dense``
                  projections always store their synapses explicitly.
``thresholds``    distinct threshold values of the neurons on the core (Loihi: threshold
                  profiles; 1 when a core holds one population).

Per chip (numbers from the profile; None = not limited):

* **Loihi 1**: all five limits as above — 1024 compartments, 4096 input axons, 4096 output
  axons (routing-table entries), 1 Mbit synaptic memory at ``8 + 10`` bits per explicit
  synapse (weight + target index; no weight sharing, so a conv layer stores every synapse), 8
  threshold profiles.
* **Loihi 2**: 8192 neurons per core; fan-in, fan-out and synaptic memory are shared flexibly
  and not published as fixed numbers, so they are not limited (the counts are still reported).
* **TrueNorth**: 256 neurons, 256 input axons (crossbar rows), 256 output axons (one per
  neuron; read the per-core sum together with ``max_fanout_cores``), a 256 × 256 crossbar
  (1 bit per synapse: weights live in the neuron's 4 axon-type values, checked separately as
  a missing feature by the converter's feasibility report).
* **Speck**: its ``output_axons_per_core = 2`` means destination cores per *core*, which this
  module does not count (the Loihi-meaning sum it reports overstates the use); weight sharing
  applies.

What counts as a synapse: for ``dense`` projections every *non-zero* weight (a zero entry of a
dense matrix is simply not stored); for ``conv``, ``avgpool``, ``maxpool`` and ``identity``
every connection the geometry defines (valid kernel tap × input channel of the output's group ×
output channel,
borders, strides, padding and dilation respected), whatever its weight — the kernel is stored
whole, a zero tap still takes its slot.  These definitions are the same in the analytic and in
the exact paths, and tests compare both with a brute-force enumeration.

Analog input (``encoding="analog"``) is off-chip: the input population occupies no on-chip
core, and the projections out of it deliver a per-sample bias computed on the host — they
use no input axons and no synaptic memory; their synapses are reported as ``offchip_synapses``
(the multiply-accumulates the host does per step).  Spiking input encodings put the input
population on cores like any other population.

How the counting is done
------------------------
*Analytic* (never materialising a synapse): when a population's cores form a **grid** — row
bands × column bands × channel groups for an (H, W, C) map, contiguous ranges for a vector —
and no core is shared with another population, every conv/pool count is a product of per-axis
terms computed once per band in O(axis length · kernel): valid taps per band, distinct source
rows/columns touched per band, and, per source row/column, the number of bands reaching it.
``dense`` and ``identity`` projections are exact for any assignment (their weight matrix or
index map is explicit).  A VGG-16 at 224 × 224 (≈ 15 · 10⁹ synapses) is counted in seconds.

*Exact fallback* (arbitrary ``core`` arrays, e.g. from a file, or cores shared by populations):
the set of distinct (source neuron, destination core) pairs is built tap by tap with NumPy and
made unique; memory is bounded by the number of such pairs (the total input-axon count), never
by the number of synapses.  Synapse counts use per-target valid-tap counts and are exact for
any assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import LimitError
from .network import CoreNetwork, Population, Projection

#: (usage name, profile field, what to do when it overflows)
LIMITS = (
    ("neurons", "neurons_per_core",
     "split the population over more cores (smaller tiles)"),
    ("input_axons", "input_axons_per_core",
     "use smaller spatial tiles or fewer output channels per core; if a single neuron's fan-in "
     "is above the limit, the layer needs a narrower input (fewer channels or a smaller kernel)"
     " or a chip with a larger fan-in"),
    ("output_axons", "output_axons_per_core",
     "put fewer neurons on each core of this population, or map its target layers onto "
     "larger tiles so each spike reaches fewer cores"),
    ("memory_bits", "synaptic_memory_bits_per_core",
     "use fewer neurons or output channels per core, fewer weight bits, or a chip with weight "
     "sharing"),
    ("thresholds", "thresholds_per_core",
     "keep populations with different thresholds on different cores"),
)
LIMIT_NAMES = tuple(n for n, _, _ in LIMITS)
_ADVICE = {n: a for n, _, a in LIMITS}
_FIELD = {n: f for n, f, _ in LIMITS}


@dataclass
class Violation:
    """One limit exceeded: the worst core of a population and how many of its cores exceed."""

    population: str
    limit: str
    core: int
    used: int
    max: int
    n_cores: int = 1
    message: str = ""

    def to_dict(self) -> dict:
        return {"population": self.population, "limit": self.limit, "core": int(self.core),
                "used": int(self.used), "max": int(self.max), "n_cores": int(self.n_cores),
                "message": self.message}

    def __str__(self) -> str:
        return self.message


@dataclass
class ResourceReport:
    """Per-core usage (struct of arrays, indexed by global core id), per-population summary
    (``populations[name]``: shape, neurons, cores, synapses, stored_entries, offchip_synapses,
    max_fanout_cores, grid, and ``limits[limit] = {worst, core, max}``), totals and
    violations.  ``limits`` maps each usage name to the profile's maximum (None =
    unlimited).  Cores that hold only analog input neurons are off-chip (``on_chip`` False)."""

    profile: str
    limits: dict
    usage: dict                      # name -> int64 array (n_cores,)
    synapses: np.ndarray             # explicit on-chip synapses per core
    stored_entries: np.ndarray       # memory entries per core (= synapses without sharing)
    core_population: list            # population name per core ("a+b" when shared)
    on_chip: np.ndarray              # bool per core
    populations: dict                # name -> summary dict
    violations: list = field(default_factory=list)
    analytic: bool = True            # False when any projection used the exact fallback
    fanout: dict = field(default_factory=dict, repr=False)  # see check_network(keep_fanout)

    @property
    def n_cores(self) -> int:
        return int(self.on_chip.sum())

    @property
    def ok(self) -> bool:
        return not self.violations

    def totals(self) -> dict:
        on = self.on_chip
        return {"cores": int(on.sum()),
                "neurons": int(self.usage["neurons"][on].sum()),
                "synapses": int(self.synapses.sum()),
                "stored_entries": int(self.stored_entries.sum()),
                "memory_bits": int(self.usage["memory_bits"].sum()),
                "offchip_synapses": int(sum(p["offchip_synapses"]
                                            for p in self.populations.values()))}

    def core_table(self) -> list:
        """One dict per core: id, population, on_chip and every usage."""
        rows = []
        for k in range(len(self.on_chip)):
            row = {"core": k, "population": self.core_population[k],
                   "on_chip": bool(self.on_chip[k]), "synapses": int(self.synapses[k])}
            row.update({n: int(self.usage[n][k]) for n in LIMIT_NAMES})
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        return {"profile": self.profile, "limits": dict(self.limits),
                "totals": self.totals(), "analytic": self.analytic,
                "populations": {k: dict(v) for k, v in self.populations.items()},
                "violations": [v.to_dict() for v in self.violations]}


# =========================================================================================
# Tilings
# =========================================================================================

@dataclass
class _Grid:
    """A population's cores as a grid: per axis the band starts/ends, and the core id of every
    (band, band, group) cell (a vector population is one axis)."""

    starts: list   # per axis int arrays
    ends: list
    cells: np.ndarray  # core id per cell, shape (n_bands per axis ...)


def _axis_bands(core: np.ndarray, axis: int):
    """Band boundaries along ``axis`` of a core array, or None if not grid-like there."""
    n = core.shape[axis]
    if n == 1:
        return np.array([0]), np.array([1])
    a = np.take(core, np.arange(n - 1), axis=axis)
    b = np.take(core, np.arange(1, n), axis=axis)
    other = tuple(i for i in range(core.ndim) if i != axis)
    differ = (a != b)
    anyd = differ.any(axis=other) if other else differ
    alld = differ.all(axis=other) if other else differ
    if not np.array_equal(anyd, alld):
        return None
    cut = np.nonzero(anyd)[0] + 1
    starts = np.concatenate([[0], cut]).astype(np.int64)
    ends = np.concatenate([cut, [n]]).astype(np.int64)
    return starts, ends


def find_grid(pop: Population, core: np.ndarray) -> _Grid | None:
    """The grid structure of ``core`` (the population's core per neuron), or None."""
    shape = pop.shape if len(pop.shape) == 3 else (pop.size,)
    c = core.reshape(shape)
    starts, ends = [], []
    for ax in range(c.ndim):
        r = _axis_bands(c, ax)
        if r is None:
            return None
        starts.append(r[0])
        ends.append(r[1])
    cells = c[np.ix_(*starts)]
    if len(np.unique(cells)) != cells.size:
        return None
    expanded = cells
    for ax in range(c.ndim):
        expanded = np.repeat(expanded, ends[ax] - starts[ax], axis=ax)
    if not np.array_equal(expanded, c):
        return None
    return _Grid(starts, ends, cells)


# =========================================================================================
# Geometry per axis
# =========================================================================================

def window_axis(n_in: int, n_out: int, k: int, s: int, p: int, d: int, starts, ends):
    """Per-axis terms of a strided, padded, dilated window for output bands [starts, ends).

    Returns ``taps`` (per band: Σ over its outputs of valid taps), ``touched`` (per band:
    distinct inputs reached) and ``reach`` (per input: number of bands whose window holds it).
    """
    o = np.arange(n_out)
    idx = o[:, None] * s - p + np.arange(k)[None, :] * d           # (n_out, k)
    valid = (idx >= 0) & (idx < n_in)
    band_of = np.searchsorted(np.asarray(ends), o, side="right")
    nb = len(starts)
    taps = np.bincount(band_of, weights=valid.sum(1), minlength=nb).astype(np.int64)
    mask = np.zeros((nb, n_in), bool)
    bo = np.broadcast_to(band_of[:, None], idx.shape)
    mask[bo[valid], idx[valid]] = True
    return taps, mask.sum(1).astype(np.int64), mask.sum(0).astype(np.int64)


def valid_taps(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """Valid taps per output coordinate along one axis."""
    idx = np.arange(n_out)[:, None] * s - p + np.arange(k)[None, :] * d
    return ((idx >= 0) & (idx < n_in)).sum(1).astype(np.int64)


def _geom(pr: Projection):
    (kh, kw), (sy, sx), (pt, _, pl, _), (dy, dx) = pr.kernel, pr.stride, pr.padding, pr.dilation
    return (kh, sy, pt, dy), (kw, sx, pl, dx)


# =========================================================================================
# Per-projection counting
# =========================================================================================

class _Acc:
    """Accumulators over global cores."""

    def __init__(self, n_cores: int):
        self.n = n_cores
        self.syn = np.zeros(n_cores, np.int64)
        self.stored = np.zeros(n_cores, np.int64)
        self.inax = np.zeros(n_cores, np.int64)
        self.outax = np.zeros(n_cores, np.int64)
        self.pairs: dict = {}   # source pop name -> list of int64 key arrays (src*n + core)
        self.fanout: dict = {}  # source pop name -> per-neuron destination-core counts

    def add_fanout(self, src: str, nd: np.ndarray, src_core: np.ndarray):
        self.outax += np.bincount(src_core, weights=nd, minlength=self.n).astype(np.int64)
        prev = self.fanout.get(src)
        self.fanout[src] = nd if prev is None else prev + nd


def _conv_like_analytic(pr, S, T, g: _Grid, src_core, acc: _Acc, sharing: bool):
    """conv / avgpool / maxpool into a grid-tiled map target."""
    (h, w, c), (oh, ow, oc) = S.shape, T.shape
    gy, gx = _geom(pr)
    ty, uy, ry = window_axis(h, oh, *gy, g.starts[0], g.ends[0])
    tx, ux, rx = window_axis(w, ow, *gx, g.starts[1], g.ends[1])
    tc = (g.ends[2] - g.starts[2]).astype(np.int64)
    cells = g.cells
    if pr.kind == "conv":
        # groups: a target sees cg = c/G input channels; a channel band of the target reads the
        # cg channels of every group it overlaps; a source channel reaches the bands that
        # overlap its group's og = oc/G outputs
        G = pr.groups
        cg, og = c // G, oc // G
        gs, ge = g.starts[2] // og, (g.ends[2] - 1) // og        # first/last group per band
        in_ch = (ge - gs + 1) * cg                               # input channels per band
        grp = np.arange(G)
        nb_g = ((g.starts[2][None, :] < (grp[:, None] + 1) * og)
                & (g.ends[2][None, :] > grp[:, None] * og)).sum(1)  # bands per group
        syn = ty[:, None, None] * tx[None, :, None] * cg * tc[None, None, :]
        inax = (uy[:, None, None] * ux[None, :, None]) * in_ch[None, None, :]
        stored = (np.broadcast_to(pr.kernel[0] * pr.kernel[1] * cg * tc[None, None, :],
                                  cells.shape) if sharing else syn)
        nd = (ry[:, None, None] * rx[None, :, None]) * nb_g[np.arange(c) // cg][None, None, :]
    else:  # pooling: channel-wise
        syn = ty[:, None, None] * tx[None, :, None] * tc[None, None, :]
        inax = uy[:, None, None] * ux[None, :, None] * tc[None, None, :]
        stored = np.broadcast_to(tc[None, None, :], cells.shape) if sharing else syn
        nd = np.broadcast_to((ry[:, None] * rx[None, :])[:, :, None], (h, w, c))
    flat = cells.reshape(-1)
    np.add.at(acc.syn, flat, np.asarray(syn, np.int64).reshape(-1))
    np.add.at(acc.inax, flat, np.asarray(inax, np.int64).reshape(-1))
    np.add.at(acc.stored, flat, np.asarray(stored, np.int64).reshape(-1))
    acc.add_fanout(S.name, nd.reshape(-1).astype(np.float64), src_core)


def _dense_masks(W: np.ndarray, order: np.ndarray, starts: np.ndarray, chunk: int = 2048):
    """Yield (row slice, any-nonzero (rows, n_groups)) of W's columns permuted by ``order``
    and grouped at ``starts``, chunked over rows to bound memory."""
    identity = bool(np.all(order[1:] > order[:-1]))  # already in core order: no gather
    for r0 in range(0, W.shape[0], chunk):
        block = W[r0:r0 + chunk]
        nz = (block if identity else block[:, order]) != 0
        yield r0, np.logical_or.reduceat(nz, starts, axis=1) if nz.shape[1] else nz


def _group_targets(tgt_core: np.ndarray):
    order = np.argsort(tgt_core, kind="stable")
    sc = tgt_core[order]
    starts = np.concatenate([[0], np.nonzero(np.diff(sc))[0] + 1]).astype(np.int64)
    return order, starts, sc[starts]


def _dense(pr, S, T, src_core, tgt_core, acc: _Acc, want_pairs: bool):
    W = pr.weights
    nnz_col = np.count_nonzero(W, axis=0)
    acc.syn += np.bincount(tgt_core, weights=nnz_col, minlength=acc.n).astype(np.int64)
    acc.stored += np.bincount(tgt_core, weights=nnz_col, minlength=acc.n).astype(np.int64)
    order, starts, gcores = _group_targets(tgt_core)
    nd = np.zeros(S.size, np.float64)
    keys = []
    for r0, anyg in _dense_masks(W, order, starts):
        if want_pairs:
            rr, gg = np.nonzero(anyg)
            keys.append((rr + r0).astype(np.int64) * acc.n + gcores[gg])
        else:
            np.add.at(acc.inax, gcores, anyg.sum(0).astype(np.int64))
            nd[r0:r0 + len(anyg)] = anyg.sum(1)
    if want_pairs:
        acc.pairs.setdefault(S.name, []).append(np.concatenate(keys) if keys else
                                                np.zeros(0, np.int64))
    else:
        acc.add_fanout(S.name, nd, src_core)


def _identity(pr, S, T, src_core, tgt_core, acc: _Acc, sharing: bool, want_pairs: bool):
    cnt = np.bincount(tgt_core, minlength=acc.n).astype(np.int64)
    acc.syn += cnt
    if sharing:
        c = T.shape[-1]
        ch = np.arange(T.size) % c
        u = np.unique(tgt_core.astype(np.int64) * c + ch)
        acc.stored += np.bincount(u // c, minlength=acc.n).astype(np.int64)
    else:
        acc.stored += cnt
    if want_pairs:
        acc.pairs.setdefault(S.name, []).append(np.arange(S.size, dtype=np.int64) * acc.n
                                                + tgt_core)
    else:
        acc.inax += cnt
        acc.add_fanout(S.name, np.ones(S.size), src_core)


def _taps(oy, ox, gy, gx, h: int, w: int):
    """Per window tap (ky, kx): (flat source position ``y * w + x``, mask of the targets whose
    tap lands inside the ``h × w`` input), for target positions ``oy``, ``ox`` (arrays)."""
    (kh, sy, pt, dy), (kw, sx, pl, dx) = gy, gx
    for ky in range(kh):
        y = oy * sy - pt + ky * dy
        for kx in range(kw):
            x = ox * sx - pl + kx * dx
            ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            yield y[ok] * w + x[ok], ok


def _conv_like_exact(pr, S, T, src_core, tgt_core, acc: _Acc, sharing: bool):
    """Any assignment: synapses from per-target valid-tap counts, distinct (source, core)
    pairs tap by tap (memory bounded by the number of such pairs)."""
    (h, w, c), (oh, ow, oc) = S.shape, T.shape
    gy, gx = _geom(pr)
    vy, vx = valid_taps(h, oh, *gy), valid_taps(w, ow, *gx)
    G = pr.groups
    cg, og = c // G, oc // G
    per_t = (vy[:, None] * vx[None, :])[:, :, None]
    per_t = np.broadcast_to(per_t * (cg if pr.kind == "conv" else 1), (oh, ow, oc))
    acc.syn += np.bincount(tgt_core, weights=per_t.reshape(-1), minlength=acc.n).astype(np.int64)
    n = acc.n
    tc3 = tgt_core.reshape(oh, ow, oc).astype(np.int64)
    if sharing:
        u = np.unique(tc3 * oc + np.arange(oc)[None, None, :])
        per_core_ch = np.bincount(u // oc, minlength=n).astype(np.int64)
        acc.stored += per_core_ch * (pr.kernel[0] * pr.kernel[1] * cg if pr.kind == "conv"
                                     else 1)
    else:
        acc.stored += np.bincount(tgt_core, weights=per_t.reshape(-1),
                                  minlength=n).astype(np.int64)
    keys = []
    if pr.kind == "conv":
        # distinct (target position, group, core) triples, then per tap the source position;
        # a source channel reaches the cores holding outputs of its own group only
        pos = np.arange(oh * ow, dtype=np.int64)[:, None]
        grp = (np.arange(oc) // og)[None, :]
        u = np.unique(((pos * G + grp) * n + tc3.reshape(oh * ow, oc)).reshape(-1))
        tpos, tgrp, tcore = u // n // G, (u // n) % G, u % n
        oy, ox = tpos // ow, tpos % ow
        for spos, ok in _taps(oy, ox, gy, gx, h, w):
            keys.append(np.unique((spos * G + tgrp[ok]) * n + tcore[ok]))
        spos_core = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        sp, sg, cr = spos_core // n // G, (spos_core // n) % G, spos_core % n
        ch = (sg * cg)[:, None] + np.arange(cg)[None, :]
        full = ((sp[:, None] * c + ch) * n + cr[:, None]).reshape(-1)
        acc.pairs.setdefault(S.name, []).append(full)
    else:
        oy, ox, ch = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(oc), indexing="ij")
        oy, ox, ch, tcr = oy.reshape(-1), ox.reshape(-1), ch.reshape(-1), tc3.reshape(-1)
        for spos, ok in _taps(oy, ox, gy, gx, h, w):
            keys.append(np.unique((spos * c + ch[ok]) * n + tcr[ok]))
        acc.pairs.setdefault(S.name, []).append(np.unique(np.concatenate(keys)))


# =========================================================================================
# The check
# =========================================================================================

def _used(core: np.ndarray, n: int) -> np.ndarray:
    """Sorted distinct core ids of a core array (faster than np.unique for dense ids)."""
    return np.nonzero(np.bincount(core, minlength=n))[0]


def _limit(profile, name):
    return getattr(profile, _FIELD[name])


def check_network(net: CoreNetwork, profile, keep_fanout: bool = False) -> ResourceReport:
    """Count every core's resources under ``profile`` (a ChipProfile or a name) and list the
    violations.  Raises nothing about limits (see :func:`require_fits`).  With
    ``keep_fanout`` the report's ``fanout`` maps each source population to the number of
    distinct destination cores of each of its neurons (float64 array, one entry per neuron)."""
    from .profiles import get_profile
    profile = get_profile(profile)
    by = {p.name: p for p in net.populations}
    cores = net.core_assignment()
    n = 1 + max(int(c.max()) for c in cores.values())
    acc = _Acc(n)
    sharing = bool(profile.weight_sharing)
    bps = int(profile.bits_per_synapse)

    # which population(s) own each core
    owner = np.full(n, -1, np.int64)
    shared = np.zeros(n, bool)
    neurons = np.zeros(n, np.int64)
    for i, p in enumerate(net.populations):
        cnt = np.bincount(cores[p.name], minlength=n)
        used = cnt > 0
        shared |= used & (owner >= 0)
        owner[used & (owner < 0)] = i
        neurons += cnt
    any_shared = bool(shared.any())
    off = {p.name for p in net.populations if p.is_input and p.encoding == "analog"}
    grids = {} if any_shared else {p.name: find_grid(p, cores[p.name]) for p in net.populations
                                   if p.name not in off}
    pairs_seen: dict = {}
    for pr in net.projections:
        pairs_seen[(pr.source, pr.target)] = pairs_seen.get((pr.source, pr.target), 0) + 1

    offchip = {p.name: 0 for p in net.populations}
    analytic = True
    for pr in net.projections:
        S, T = by[pr.source], by[pr.target]
        sc, tc = cores[S.name], cores[T.name]
        if S.name in off:  # host-computed bias: count its MACs, nothing on chip
            offchip[T.name] += _count_synapses(pr, S, T)
            continue
        exact = any_shared or pairs_seen[(S.name, T.name)] > 1
        if pr.kind == "dense":
            _dense(pr, S, T, sc, tc, acc, want_pairs=exact)
        elif pr.kind == "identity":
            _identity(pr, S, T, sc, tc, acc, sharing, want_pairs=exact)
        elif not exact and grids.get(T.name) is not None:
            _conv_like_analytic(pr, S, T, grids[T.name], sc, acc, sharing)
        else:
            _conv_like_exact(pr, S, T, sc, tc, acc, sharing)
            exact = True
        analytic &= not exact

    max_fanout = {name: (int(nd.max()) if nd.size else 0) for name, nd in acc.fanout.items()}
    fanout = dict(acc.fanout) if keep_fanout else {}
    for name, keys in acc.pairs.items():
        u = np.unique(np.concatenate(keys))
        dest = u % n
        src = u // n
        acc.inax += np.bincount(dest, minlength=n).astype(np.int64)
        acc.outax += np.bincount(cores[name][src], minlength=n).astype(np.int64)
        per_src = np.bincount(src, minlength=by[name].size)
        if name in acc.fanout:
            per_src = per_src + acc.fanout[name]
        max_fanout[name] = int(per_src.max()) if per_src.size else 0
        if keep_fanout:
            fanout[name] = per_src.astype(np.float64)

    # thresholds per core
    thr = np.zeros(n, np.int64)
    if any_shared:
        keys = [_used(cores[p.name], n).astype(np.int64) for p in net.populations
                if not p.is_input]
        ths = [np.full(len(k), p.threshold, np.int64) for k, p in
               zip(keys, [p for p in net.populations if not p.is_input])]
        if keys:
            pair = np.unique(np.stack([np.concatenate(keys), np.concatenate(ths)], 1), axis=0)
            thr = np.bincount(pair[:, 0], minlength=n).astype(np.int64)
    else:
        for p in net.populations:
            if not p.is_input:
                thr[_used(cores[p.name], n)] = 1

    on_chip = neurons > 0
    for name in off:
        on_chip[_used(cores[name], n)] = False
    if any_shared:  # a core shared by analog input and a real population stays on chip
        for p in net.populations:
            if p.name not in off:
                on_chip[_used(cores[p.name], n)] = True

    usage = {"neurons": neurons, "input_axons": acc.inax, "output_axons": acc.outax,
             "memory_bits": acc.stored * bps, "thresholds": thr}
    for k in usage:
        usage[k] = np.where(on_chip, usage[k], 0).astype(np.int64)
    names = [p.name for p in net.populations]
    core_pop = [names[o] if o >= 0 else "" for o in owner]
    if any_shared:
        for k in np.nonzero(shared)[0]:
            core_pop[k] = "+".join(p.name for p in net.populations
                                   if np.any(cores[p.name] == k))
    limits = {ln: _limit(profile, ln) for ln in LIMIT_NAMES}

    pops, violations = {}, []
    for p in net.populations:
        ks = _used(cores[p.name], n)
        onk = ks[on_chip[ks]]
        row = {"shape": list(p.shape), "neurons": p.size, "cores": int(len(onk)),
               "on_chip": p.name not in off,
               "synapses": int(acc.syn[onk].sum()) if not any_shared else None,
               "stored_entries": int(acc.stored[onk].sum()) if not any_shared else None,
               "offchip_synapses": int(offchip[p.name]),
               "max_fanout_cores": int(max_fanout.get(p.name, 0)),
               "grid": (grids.get(p.name) is not None) if not any_shared else False}
        row["limits"] = {}
        for ln in LIMIT_NAMES:
            u = usage[ln][onk]
            worst = int(onk[np.argmax(u)]) if len(onk) else -1
            row["limits"][ln] = {"worst": int(u.max()) if len(u) else 0, "core": worst,
                                 "max": limits[ln]}
            lim = limits[ln]
            if lim is not None and len(u) and int(u.max()) > lim:
                nbad = int((u > lim).sum())
                violations.append(Violation(
                    p.name, ln, worst, int(u.max()), int(lim), nbad,
                    f"population {p.name!r}: {ln} {int(u.max())} > {lim} "
                    f"({_FIELD[ln]} of {profile.name}) on core {worst}"
                    f"{f' and {nbad - 1} more core(s)' if nbad > 1 else ''}; "
                    f"{_ADVICE[ln]}"))
        pops[p.name] = row
    return ResourceReport(profile.name, limits, usage, np.where(on_chip, acc.syn, 0),
                          np.where(on_chip, acc.stored, 0), core_pop, on_chip, pops,
                          violations, analytic, fanout)


def _count_synapses(pr: Projection, S: Population, T: Population) -> int:
    """Total synapses of one projection (the definition of the module docstring)."""
    if pr.kind == "dense":
        return int(np.count_nonzero(pr.weights))
    if pr.kind == "identity":
        return T.size
    (h, w, c), (oh, ow, oc) = S.shape, T.shape
    gy, gx = _geom(pr)
    v = int(valid_taps(h, oh, *gy).sum()) * int(valid_taps(w, ow, *gx).sum())
    return v * (c // pr.groups * oc if pr.kind == "conv" else oc)


def projection_synapses(net: CoreNetwork) -> dict:
    """Synapses per projection name (analytic; conv counted geometrically)."""
    by = {p.name: p for p in net.populations}
    return {pr.name: _count_synapses(pr, by[pr.source], by[pr.target]) for pr in net.projections}


def require_fits(net: CoreNetwork, profile) -> ResourceReport:
    """:func:`check_network`, raising :class:`LimitError` naming the first violation."""
    rep = check_network(net, profile)
    if rep.violations:
        v = rep.violations[0]
        more = len(rep.violations) - 1
        raise LimitError(v.message + (f" ({more} more violation(s))" if more else ""))
    return rep
