"""Does a network fit a chip?  ``feasibility(graph_or_net, profile) -> FeasibilityReport``.

A :class:`~converter.graph.Graph` is converted with weights-only scales (``calibration=None``,
method ``"max"``, the profile's weight bits — options override) and mapped with
:func:`converter.mapping.map_to_cores`; a :class:`~hw_models.network.CoreNetwork` is mapped
when it is not mapped yet and otherwise checked as it is (``remap=True`` re-tiles it).
Counting is analytic (:mod:`hw_models.resources`): a VGG-16 at 224 × 224 takes seconds.

The report answers two questions:

* **Does it fit?** — ``violations``: every limit exceeded (neurons, input axons, output axons,
  synaptic memory, thresholds per core), each naming the layer, the limit, the worst core, the
  value and what to do; a layer whose single neuron is already too big says so.
* **Can the chip run it as converted?** — ``missing_features``: what the network needs that the
  chip does not do natively (reset by subtraction on Loihi 1, the spiking max-pool gate, the
  spike rule, weights beyond the chip's bits or exponent range, Loihi 1's lost LSB of
  mixed-sign weights, biases, thresholds, state range, decays, delays, TrueNorth's 4 distinct
  weights per neuron).  The emulator runs any of these exactly either way; they tell what a
  deployment would have to change.

``ok`` is True when nothing is violated and nothing is missing.

The verdict (:attr:`FeasibilityReport.verdict`, the first lines of ``str()``) states the chips
needed first — "needs 6 Loihi 1 chips (723 cores, 128 per chip)" — and only then whether it
fits and what is missing, so that "fits" is never read as "fits on one chip".  A chip budget
(``max_chips``) that the network exceeds is a violation (limit ``"chips"``) like any other, so
``fits`` is False and ``neuroemu fit --max-chips N`` exits 3.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from hw_models.errors import ConversionError
from hw_models.metrics import static_metrics
from hw_models.network import DECAY_ONE, CoreNetwork
from hw_models.profiles import DEFAULT_PROFILE, get_profile
from hw_models.resources import LIMIT_NAMES, ResourceReport, check_network

from .mapping import MappingReport, map_to_cores
from .quantise import FLOAT_BITS

__all__ = [
    "FeasibilityReport",
    "chip_label",
    "feasibility",
    "fit_reason",
    "missing_features",
]

# how a verdict names a profile's chip ("needs 6 Loihi 1 chips"); other profiles use their name
_CHIP_LABELS = {"loihi1": "Loihi 1", "loihi1-silicon": "Loihi 1", "loihi2": "Loihi 2",
                "truenorth": "TrueNorth", "speck": "Speck", "ideal": "ideal"}


# how a verdict names a missing feature (the "feature" key of missing_features())
_FEATURE_LABELS = {"reset": "reset by subtraction", "spike_rule": "spike rule",
                   "maxpool_gate": "spiking max-pool gate", "delay": "delays",
                   "weight_bits": "weight bits", "weight_exponent": "weight exponent",
                   "mixed_sign_lsb": "LSB of mixed-sign weights", "threshold": "threshold range",
                   "bias": "bias format", "state_range": "state range",
                   "overflow": "overflow policy", "decay": "decay",
                   "distinct_weights": "distinct weights per neuron"}


def chip_label(profile_name: str) -> str:
    """The chip's name as a verdict says it (``loihi1`` → ``Loihi 1``)."""
    return _CHIP_LABELS.get(profile_name, profile_name)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")

_SHORT = {"neurons": "neurons", "input_axons": "in-axons", "output_axons": "out-axons",
          "memory_bits": "syn-mem bits", "thresholds": "thresh", "chips": "chips"}


@dataclass
class FeasibilityReport:
    """The answer of :func:`feasibility`; ``str()`` is a readable table, :meth:`to_dict` is
    JSON-able.  ``layers`` has one row per population (neurons, cores, synapses explicit and
    stored, and for every limit the worst core's use and the maximum); :meth:`core_table` gives
    one row per core."""

    profile: str
    description: str
    ok: bool
    fits: bool
    chips: int
    cores: int
    cores_per_chip: int | None
    layers: list
    violations: list
    missing_features: list
    notes: list
    totals: dict
    seconds: float
    resources: ResourceReport = field(repr=False, default=None)
    mapping: MappingReport | None = field(repr=False, default=None)

    def core_table(self) -> list:
        """One dict per core: population, on_chip, synapses and every usage."""
        rows = self.resources.core_table()
        if self.mapping is not None and self.network_placement is not None:
            for r in rows:
                r["chip"], r["x"], r["y"] = (int(v) for v in self.network_placement[r["core"]])
        return rows

    network_placement: np.ndarray | None = field(repr=False, default=None)
    max_chips: int | None = None
    neurobench: dict | None = None      # static NeuroBench metrics (hw_models.metrics)

    @property
    def chips_line(self) -> str:
        """"needs 6 Loihi 1 chips (723 cores, 128 per chip)" — the first thing a reader sees."""
        cpc = f", {self.cores_per_chip:,} per chip" if self.cores_per_chip else ""
        budget = ""
        if self.max_chips is not None:
            budget = (f"; within the budget of {_plural(self.max_chips, 'chip')}"
                      if self.chips <= self.max_chips else
                      f"; OVER the budget of {_plural(self.max_chips, 'chip')}")
        return (f"needs {_plural(self.chips, chip_label(self.profile) + ' chip')} "
                f"({_plural(self.cores, 'core')}{cpc}){budget}")

    @property
    def first_violation(self) -> str:
        """The first violation in a few words ("pool1 out-axons 144/2 (+1 more)"), or ""."""
        if not self.violations:
            return ""
        v = self.violations[0]
        where = f"{v['population']} " if v.get("population") else ""
        more = f" (+{len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
        return f"{where}{_SHORT.get(v['limit'], v['limit'])} {v['used']:,}/{v['max']:,}{more}"

    @property
    def verdict(self) -> str:
        """One line after :attr:`chips_line`: does it fit, and what is missing."""
        n = _plural(self.chips, "chip")
        if not self.fits:
            lim = sorted({_SHORT.get(v["limit"], v["limit"]) for v in self.violations})
            return (f"DOES NOT FIT: {_plural(len(self.violations), 'violation')} "
                    f"({', '.join(lim)})")
        if self.missing_features:
            feats = ", ".join(_FEATURE_LABELS.get(m["feature"], m["feature"])
                              for m in self.missing_features)
            return (f"fits on {n}, but needs {_plural(len(self.missing_features), 'feature')} "
                    f"{chip_label(self.profile)} lacks ({feats})")
        return f"fits on {n} and runs natively"

    def to_dict(self) -> dict:
        return {"profile": self.profile, "description": self.description,
                "summary": f"{self.chips_line}; {self.verdict}", "ok": self.ok,
                "fits": self.fits, "chips": self.chips, "max_chips": self.max_chips,
                "cores": self.cores,
                "cores_per_chip": self.cores_per_chip, "layers": self.layers,
                "violations": self.violations, "missing_features": self.missing_features,
                "notes": self.notes, "totals": self.totals, "neurobench": self.neurobench,
                "seconds": self.seconds}

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **({"indent": 2} | kw))

    def __str__(self) -> str:
        t = self.totals
        out = [f"Feasibility on {self.profile}: {self.chips_line}",
               f"  verdict: {self.verdict}"
               + ("; see Violations below" if not self.fits else
                  "; see Missing features below" if self.missing_features else ""),
               f"  {self.description}",
               f"  {t['neurons']:,} neurons, "
               f"{t['synapses']:,} explicit synapses on chip, {t['stored_entries']:,} stored "
               f"entries = {t['memory_bits'] / 8 / 2**20:,.1f} MiB synaptic memory"
               + (f"; {t['offchip_synapses']:,} synapses computed off-chip (analog input)"
                  if t.get("offchip_synapses") else "")]
        if self.neurobench:
            nb = self.neurobench
            out.append(f"  NeuroBench: Footprint {nb['Footprint']:,} B, ParameterCount "
                       f"{nb['ParameterCount']:,}, ConnectionSparsity "
                       f"{nb['ConnectionSparsity']:.3f}")
        out.append("")
        head = ["layer", "shape", "neurons", "cores", "synapses", "stored"] + \
            [_SHORT[n] + " used/max" for n in LIMIT_NAMES]
        rows = []
        for r in self.layers:
            cells = [r["name"], "x".join(str(s) for s in r["shape"]), f"{r['neurons']:,}",
                     f"{r['cores']:,}" if r["on_chip"] else "off-chip",
                     _n(r["synapses"]), _n(r["stored_entries"])]
            for n in LIMIT_NAMES:
                u = r["limits"][n]
                mx = "∞" if u["max"] is None else f"{u['max']:,}"
                flag = "!" if u["max"] is not None and u["worst"] > u["max"] else ""
                cells.append(f"{u['worst']:,}/{mx}{flag}")
            rows.append(cells)
        out += _table(head, rows)
        out.append("  (used = the worst core of the layer; '!' marks a limit exceeded)")
        if self.violations:
            out += ["", f"Violations ({len(self.violations)}):"]
            out += [f"  - {v['message']}" for v in self.violations]
        if self.missing_features:
            out += ["", f"Missing features ({len(self.missing_features)}):"]
            out += [f"  - {m['message']}" for m in self.missing_features]
        if self.notes:
            out += ["", "Notes:"] + [f"  - {n}" for n in self.notes]
        out.append(f"\n(report computed in {self.seconds:.2f} s)")
        return "\n".join(out)


def fit_reason(rep: FeasibilityReport, zero_weight_fraction: float | None = None) -> str:
    """A short reason for a sweep's "fits" column: the first violation when it does not fit,
    otherwise the tightest limit (the worst core's use closest to its maximum), and, when given,
    the share of zero weights — zeroed weights are not synapses, so at low bit widths they prune
    fan-in (input axons) and synaptic memory, which can make a network fit."""
    if not rep.fits:
        out = f"no: {rep.first_violation}"
    else:
        best = None
        for r in rep.layers:
            if not r["on_chip"]:
                continue
            for n in LIMIT_NAMES:
                u = r["limits"][n]
                if u["max"]:
                    ratio = u["worst"] / u["max"]
                    if best is None or ratio > best[0]:
                        best = (ratio, r["name"], n, u["worst"], u["max"])
        out = f"yes, {_plural(rep.chips, 'chip')}"
        if best is not None:
            out += (f"; tightest {best[1]} {_SHORT[best[2]]} {best[3]:,}/{best[4]:,}")
    if zero_weight_fraction is not None and zero_weight_fraction >= 0.005:
        share = 100 * zero_weight_fraction
        share = (f"{share:.0f}" if 1 <= share <= 99 or share == 100   # 99.6 % is not 100
                 else f"{share:.1f}")
        out += f"; {share}% of weights zero (pruned: fewer synapses, fan-in)"
    return out


def _n(v):
    return "-" if v is None else f"{v:,}"


def _table(head, rows):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else \
        [len(h) for h in head]
    left = {0, 1}
    fmt = lambda cells: "  " + "  ".join(
        (str(c).ljust(w[i]) if i in left else str(c).rjust(w[i])) for i, c in enumerate(cells))
    return [fmt(head), "  " + "  ".join("-" * x for x in w)] + [fmt(r) for r in rows]


# =========================================================================================
# Missing features
# =========================================================================================

def _bias_representable(b: np.ndarray, profile) -> np.ndarray:
    """Bias values expressible as ``m·2^k``, ``m`` in the bias range, ``0 ≤ k ≤ max``."""
    ok = np.zeros(b.shape, bool)
    for k in range(profile.bias_exponent_max + 1):
        m = b >> k
        ok |= ((m << k) == b) & (m >= profile.bias_min) & (m <= profile.bias_max)
    return ok


def _distinct_per_column(W2: np.ndarray, limit: int, chunk: int = 256) -> int:
    """Largest number of distinct values in one column of ``W2`` (rows = fan-in)."""
    best = 0
    for c0 in range(0, W2.shape[1], chunk):
        s = np.sort(W2[:, c0:c0 + chunk], axis=0)
        d = 1 + np.count_nonzero(np.diff(s, axis=0), axis=0)
        best = max(best, int(d.max()))
    return best


def missing_features(net: CoreNetwork, profile) -> list:
    """What ``net`` needs that ``profile`` lacks natively; dicts with ``feature``,
    ``populations`` (or projections), ``message`` and ``native`` (always False here)."""
    prof = get_profile(profile)
    out = []

    def add(feature, where, msg):
        out.append({"feature": feature, "where": sorted(set(where)), "message": msg,
                    "native": False})

    neur = [p for p in net.populations if not p.is_input]
    spk = [p for p in neur if p.spiking]
    bad = [p.name for p in spk if p.reset not in prof.native_resets]
    if bad:
        add("reset", bad, f"reset by subtraction is not native on {prof.name} (native: "
            f"{', '.join(prof.native_resets)}); {len(bad)} population(s) use it. The converted "
            f"network needs it for accurate rate coding; the emulator runs it either way "
            f"(convert with reset='zero' to study the native behaviour)")
    bad = [p.name for p in spk if p.spike_rule != prof.spike_rule]
    if bad:
        add("spike_rule", bad, f"{len(bad)} population(s) fire on v {spk[0].spike_rule} θ "
            f"but {prof.name} fires on v {prof.spike_rule} θ (with reset to zero, θ−1 on the "
            f"chip is equivalent for integer v; with subtraction it is not)")
    bad = [pr.name for pr in net.projections if pr.kind == "maxpool"]
    if bad and not prof.native_maxpool_gate:
        gates = sorted({pr.gate for pr in net.projections if pr.kind == "maxpool"})
        add("maxpool_gate", bad, f"{prof.name} has no spiking max-pool gate; {len(bad)} "
            f"projection(s) use it (gate {', '.join(gates)}; convert with maxpool='avg' for a "
            f"native network)")
    if prof.max_delay is not None:
        bad = [pr.name for pr in net.projections if pr.delay > prof.max_delay]
        if bad:
            add("delay", bad, f"{len(bad)} projection(s) have delays above {prof.name}'s "
                f"maximum of {prof.max_delay} steps")
    if prof.weight_bits is not None:
        lo, hi = prof.weight_min, prof.weight_max
        emin, emax = prof.weight_exponent_range
        wide = [pr.name for pr in net.projections if pr.weights.size
                and (int(pr.weights.min()) < lo or int(pr.weights.max()) > hi)]
        if wide:
            add("weight_bits", wide, f"{len(wide)} projection(s) have weights outside "
                f"[{lo}, {hi}] ({prof.weight_bits}-bit mantissas of {prof.name})")
        expo = [pr.name for pr in net.projections if not emin <= pr.exponent <= emax]
        if expo:
            add("weight_exponent", expo, f"{len(expo)} projection(s) use a weight exponent "
                f"outside [{emin}, {emax}]")
        if prof.weight_mixed_sign_loses_lsb:
            lsb = [pr.name for pr in net.projections if pr.weights.size
                   and pr.weights.min() < 0 < pr.weights.max() and np.any(pr.weights & 1)]
            if lsb:
                add("mixed_sign_lsb", lsb, f"{len(lsb)} projection(s) have mixed-sign weights "
                    f"with odd mantissas; {prof.name} drops the LSB of mixed-sign weights "
                    f"(quantise with this profile to get even mantissas)")
    if prof.threshold_max is not None:
        bad = [p.name for p in neur if p.threshold > prof.threshold_max]
        if bad:
            add("threshold", bad, f"{len(bad)} population(s) have thresholds above "
                f"{prof.threshold_max} ({prof.threshold_bits}-bit mantissa)")
    if prof.bias_bits is not None:
        bad = [p.name for p in neur if p.bias is not None
               and not _bias_representable(p.bias, prof).all()]
        if bad:
            add("bias", bad, f"{len(bad)} population(s) have biases not representable as a "
                f"{prof.bias_bits}-bit mantissa × 2^k (k ≤ {prof.bias_exponent_max})")
    vmin, vmax = prof.v_min_unscaled, prof.v_max_unscaled
    bad = [p.name for p in neur if p.v_min < vmin or p.v_max > vmax]
    if bad:
        add("state_range", bad, f"{len(bad)} population(s) use a voltage range wider than "
            f"{prof.name}'s [{vmin}, {vmax}] (threshold units, {prof.state_bits}-bit state)")
    bad = [p.name for p in neur if p.overflow != prof.v_overflow]
    if bad:
        add("overflow", bad, f"{len(bad)} population(s) use overflow policy other than "
            f"{prof.name}'s '{prof.v_overflow}'")
    if prof.decay_bits is None:
        bad = [p.name for p in neur if p.decay_u != DECAY_ONE or p.decay_v != 0]
        if bad:
            add("decay", bad, f"{prof.name} has no multiplicative decay; {len(bad)} "
                f"population(s) are not plain integrate-and-fire")
    if prof.weights_per_neuron_max_distinct is not None:
        lim = prof.weights_per_neuron_max_distinct
        bad, worst = [], 0
        for pr in net.projections:
            if pr.kind == "conv":
                W2 = pr.weights.reshape(-1, pr.weights.shape[-1])
            elif pr.kind == "dense":
                W2 = pr.weights
            else:
                continue
            d = _distinct_per_column(W2, lim)
            if d > lim:
                bad.append(pr.name)
                worst = max(worst, d)
        if bad:
            add("distinct_weights", bad, f"{len(bad)} projection(s) give a neuron up to "
                f"{worst} distinct weight values; {prof.name} allows {lim} per neuron "
                f"(axon types)")
    return out


# =========================================================================================
# The report
# =========================================================================================

def feasibility(graph_or_net, profile=None, remap: bool | None = None,
                max_chips: int | None = None, **convert_options) -> FeasibilityReport:
    """Feasibility of a Graph or CoreNetwork on ``profile`` (see the module docstring).

    ``max_chips``: a chip budget; needing more chips is a violation (limit ``"chips"``), so
    ``fits`` is False.

    ``convert_options`` go to :func:`converter.convert.convert` for a Graph (defaults:
    ``method="max"``, ``weight_bits`` = the profile's, ``calibration=None``).  For a
    CoreNetwork, ``profile`` None means the profile it was converted for (a what-if profile
    included), else :data:`~hw_models.profiles.DEFAULT_PROFILE`; ``remap`` None maps it only
    when a population has no cores (a mapped network,
    e.g. from a file, is checked as it is, whatever profile it was made for), True always
    re-maps, False never does.
    """
    t0 = time.perf_counter()
    if profile is None:
        profile = getattr(graph_or_net, "profile", None) or DEFAULT_PROFILE
    prof = get_profile(profile)
    if max_chips is not None and (isinstance(max_chips, bool) or
                                  not isinstance(max_chips, (int, np.integer)) or max_chips < 1):
        raise ConversionError(f"max_chips must be a positive integer, got {max_chips!r}")
    notes = []
    if isinstance(graph_or_net, CoreNetwork):
        if convert_options:
            raise ConversionError(f"conversion options {sorted(convert_options)} apply to a "
                                  f"Graph, not to a CoreNetwork")
        net = graph_or_net
        if remap is None:
            remap = any(p.core is None for p in net.populations)
            made_for = net.profile and get_profile(net.profile).name
            if not remap and made_for and made_for != prof.name:
                notes.append(f"the network was mapped for {made_for}; it is checked with that "
                             f"mapping (feasibility(..., remap=True) re-tiles it for "
                             f"{prof.name})")
    else:
        from .convert import convert
        from .graph import Graph
        if not isinstance(graph_or_net, Graph):
            raise ConversionError(f"feasibility() takes a converter Graph or a CoreNetwork, "
                                  f"got {type(graph_or_net).__name__}")
        opts = dict(convert_options)
        opts.setdefault("method", "max")
        if "weight_bits" not in opts:
            wb = prof.weight_bits
            opts["weight_bits"] = None if wb is None else min(wb, FLOAT_BITS)
        calib = opts.pop("calibration", None)
        opts["map"] = False
        net = convert(graph_or_net, calib, profile=prof, **opts)
        remap = True
        notes.append(f"converted with weights-only scales (method {opts['method']!r}, "
                     f"{opts['weight_bits']}-bit weights): resource counts do not depend on "
                     f"calibration")
    mapping = None
    if remap:
        net, mapping = map_to_cores(net, prof)
        res = mapping.resources
        notes += mapping.notes
        cores, chips = mapping.cores, mapping.chips
    else:
        res = check_network(net, prof)
        cores = res.n_cores
        pl = net.placement_array()[res.on_chip]
        chips = len(np.unique(pl[:, 0])) if len(pl) else 0
        notes.append("checked as mapped in the network file (no re-mapping)")
    single = {(s["population"], s["limit"]): s for s in (mapping.single_neuron if mapping
                                                          else [])}
    violations = []
    for v in res.violations:
        d = v.to_dict()
        s = single.get((v.population, v.limit))
        if s is not None:
            d["single_neuron"] = True
            d["message"] = s["message"] + f" [{v.n_cores} core(s) over the limit]"
        violations.append(d)
    layers = []
    for name, r in res.populations.items():
        row = {"name": name, "shape": r["shape"], "neurons": r["neurons"], "cores": r["cores"],
               "on_chip": r["on_chip"], "synapses": r["synapses"],
               "stored_entries": r["stored_entries"], "offchip_synapses": r["offchip_synapses"],
               "max_fanout_cores": r["max_fanout_cores"]}
        if mapping is not None and name in mapping.tiles:
            row["tile"] = mapping.tiles[name]["tile"]
        row["limits"] = {n: dict(r["limits"][n]) for n in LIMIT_NAMES}
        layers.append(row)
    if max_chips is not None and chips > max_chips:
        violations.append({"population": None, "limit": "chips", "core": None,
                           "used": int(chips), "max": int(max_chips), "n_cores": int(cores),
                           "message": f"needs {_plural(int(chips), chip_label(prof.name) + ' chip')}"
                                      f" ({int(cores):,} cores) but the budget is "
                                      f"{_plural(int(max_chips), 'chip')}"})
    missing = missing_features(net, prof)
    fits = not violations
    return FeasibilityReport(
        profile=prof.name, description=prof.description, ok=fits and not missing, fits=fits,
        chips=int(chips), cores=int(cores), cores_per_chip=prof.cores_per_chip, layers=layers,
        violations=violations, missing_features=missing, notes=notes, totals=res.totals(),
        seconds=round(time.perf_counter() - t0, 3), resources=res, mapping=mapping,
        network_placement=net.placement_array(), max_chips=max_chips,
        neurobench=static_metrics(net))
