"""Energy and latency of a run, from the engine's counters and a chip profile.

The model (DESIGN.md, "Energy and latency")::

    E = synaptic_events · e_syn_event
      + neuron_updates_active · e_neuron_update_active
      + neuron_updates_inactive · e_neuron_update_inactive
      + spikes · e_spike + messages · e_msg + hops · e_hop
      + static_power_w · steps · samples · time_per_step_s

Every cost comes from the :class:`~hw_models.profiles.ChipProfile`; nothing is estimated that
the engine can count.  Hops are charged per direction (``hops_ew`` · e_hop_ew + ``hops_ns`` ·
e_hop_ns, SANA-FE: 3.0 / 4.2 pJ) when the counters carry the split, chip-to-chip links and
counters without the split at the mean hop energy (:attr:`ChipProfile.e_hop`).

Counting conventions (the profile's, cited there; overridable): ``synaptic_charge`` —
'delivery' costs ``synaptic_events`` (spikes delivered by step T), 'emission' costs
``synaptic_events_emitted`` (every spike's synaptic work, as SANA-FE charges it);
``active_update`` — 'input' costs ``neuron_updates_active`` (Q ≠ 0), 'state' costs
``neuron_updates_active_state`` (v, Q or bias ≠ 0, as SANA-FE's LIF), the rest of the updates
as inactive.  When the profile's convention needs a counter the run did not produce (e.g.
'state' without per-step work counting), the report falls back to the other convention and
says so in ``notes``; asked for explicitly, a missing counter is an error.

Also reported, but **not** part of the on-chip total:

* ``input_macs`` — multiply-accumulates of an analog first layer, computed off-chip (the
  per-sample bias current of DESIGN.md step 6); costed at the INT8 MAC energy
  (:data:`~hw_models.profiles.E_MAC_INT8`, Horowitz 2014) as ``off_chip_input``.
* ``saturations`` — counted and reported, no energy.
* the ANN comparison: ``ann_macs`` (MACs of the float network **per sample**) at the FP32
  and INT8 MAC energies of Horowitz 2014 (4.6 pJ and 0.23 pJ, 45 nm).

Latency: :func:`latency_report` turns the steps a prediction needs to settle into wall time
on the chip, ``steps × time_per_step_s``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Union

import numpy as np

from .errors import DataError
from .profiles import E_MAC_FP32, E_MAC_INT8, ChipProfile, get_profile

__all__ = ["COUNTER_NAMES", "EnergyReport", "energy_report", "LatencyReport", "latency_report",
           "format_joules"]

#: Counter names produced by the engine, in report order.
COUNTER_NAMES = ("synaptic_events", "neuron_updates_active", "neuron_updates_inactive",
                 "spikes", "messages", "hops", "saturations", "input_macs")
#: counters for the other counting conventions and the per-direction hop energies
CONVENTION_COUNTERS = ("synaptic_events_emitted", "neuron_updates_active_state", "hops_ew",
                       "hops_ns")
#: totals a Result also carries, derived from the counters above (accepted, cross-checked, not
#: costed twice): neuron_updates = neuron_updates_active + neuron_updates_inactive
DERIVED_COUNTERS = ("neuron_updates",)

# counter → (report field, profile cost attribute)
_COSTED = (
    ("synaptic_events", "synaptic", "e_syn_event"),
    ("neuron_updates_active", "neuron_active", "e_neuron_update_active"),
    ("neuron_updates_inactive", "neuron_inactive", "e_neuron_update_inactive"),
    ("spikes", "spikes", "e_spike"),
    ("messages", "messages", "e_msg"),
    ("hops", "hops", "e_hop"),
)

Number = Union[int, float]


def _count(name: str, value) -> float:
    """A counter's total: scalars as they are, arrays (per core / population) summed."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"counter {name!r} must be a number or an array of numbers, "
                        f"got {type(value).__name__}") from None
    total = float(arr.sum())
    if not math.isfinite(total) or (arr.size and float(arr.min()) < 0):
        raise DataError(f"counter {name!r} must be finite and >= 0, got {value!r}")
    return total


def format_joules(joules: float) -> str:
    """Joules with an engineering prefix, e.g. '23.6 pJ'."""
    if joules == 0:
        return "0 J"
    for scale, unit in ((1, "J"), (1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ"), (1e-12, "pJ")):
        if abs(joules) >= scale:
            return f"{joules / scale:.4g} {unit}"
    return f"{joules / 1e-15:.4g} fJ"


@dataclass(frozen=True)
class EnergyReport:
    """Energy of a run, per event class, in joules.  Build with :func:`energy_report`.

    ``total`` is the on-chip energy of all ``samples`` (the sum of the seven classes);
    ``per_sample = total / samples``.  ``off_chip_input`` (analog first layer, INT8 MACs) is
    reported beside it, not included.  ``ann_energy_*`` are per sample, like ``ann_macs``.
    """

    profile: str
    energy_published: bool
    samples: int
    steps: Optional[int]
    synaptic: float
    neuron_active: float
    neuron_inactive: float
    spikes: float
    messages: float
    hops: float
    static: float
    total: float
    per_sample: float
    synaptic_ops: float
    saturations: float
    input_macs: float
    off_chip_input: float
    ann_macs: Optional[float]
    ann_energy_fp32: Optional[float]
    ann_energy_int8: Optional[float]
    #: conventions the figures use, and how they were chosen
    synaptic_charge: str = "delivery"
    active_update: str = "input"
    notes: tuple = ()

    @property
    def synaptic_ops_per_sample(self) -> float:
        """Synaptic operations (SynOps) per sample, the papers' figure."""
        return self.synaptic_ops / self.samples

    @property
    def total_with_off_chip(self) -> float:
        """On-chip total plus the off-chip input MACs."""
        return self.total + self.off_chip_input

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    def __str__(self) -> str:
        head = f"Energy on {self.profile} ({self.samples} sample(s)"
        head += f", {self.steps} steps each)" if self.steps is not None else ", steps not given)"
        lines = [head]
        if not self.energy_published:
            lines.append("  UNPUBLISHED: per-event energies of this profile are not published; "
                         "figures below rest on stated assumptions (see profile.sources)")
        rows = [("synaptic events", self.synaptic), ("neuron updates (active)",
                self.neuron_active), ("neuron updates (inactive)", self.neuron_inactive),
                ("spikes", self.spikes), ("messages", self.messages), ("hops", self.hops),
                ("static", self.static)]
        for label, joules in rows:
            share = f"{100 * joules / self.total:5.1f} %" if self.total > 0 else "    - "
            lines.append(f"  {label:<26} {format_joules(joules):>12}  {share}")
        lines.append(f"  {'total (on chip)':<26} {format_joules(self.total):>12}")
        lines.append(f"  conventions: synaptic work at {self.synaptic_charge}, active updates "
                     f"'{self.active_update}'")
        for note in self.notes:
            lines.append(f"  note: {note}")
        lines.append(f"  {'per sample':<26} {format_joules(self.per_sample):>12}")
        lines.append(f"  {'SynOps per sample':<26} {self.synaptic_ops_per_sample:>12.4g}")
        if self.saturations:
            lines.append(f"  {'saturations':<26} {self.saturations:>12.4g}")
        if self.input_macs:
            lines.append(f"  {'off-chip input (INT8 MAC)':<26} "
                         f"{format_joules(self.off_chip_input):>12}"
                         f"  ({self.input_macs:.4g} MACs)")
        if self.ann_macs is not None:
            lines.append(f"  ANN per sample: {self.ann_macs:.4g} MACs = "
                         f"{format_joules(self.ann_energy_fp32)} FP32, "
                         f"{format_joules(self.ann_energy_int8)} "
                         f"INT8 (Horowitz 2014, 45 nm)")
        return "\n".join(lines)


def energy_report(counters: Mapping[str, Number], profile: "ChipProfile | str",
                  steps: Optional[int] = None, samples: int = 1,
                  ann_macs: Optional[Number] = None, *, strict: bool = True,
                  synaptic_charge: Optional[str] = None,
                  active_update: Optional[str] = None) -> EnergyReport:
    """Cost the engine's counters on ``profile``.

    Parameters
    ----------
    counters
        Totals over all samples, keyed by :data:`COUNTER_NAMES`; a value may be an array (per
        core or population) and is then summed.  Missing counters count as 0.
    profile
        A :class:`ChipProfile` or a profile name.
    steps
        Time steps **per sample**; static energy is ``static_power_w · steps · samples ·
        time_per_step_s``.  ``None`` leaves static energy at 0.
    samples
        Number of samples the counters cover (for ``per_sample``).
    ann_macs
        MACs of the float network per sample, for the ANN comparison.
    strict
        Reject counter names outside :data:`COUNTER_NAMES` (catches typos that would
        silently cost 0).  Set False to ignore extra counters.
    synaptic_charge, active_update
        Counting conventions (module docstring); None takes the profile's.
    """
    prof = get_profile(profile)
    if not isinstance(counters, Mapping):
        raise DataError(f"counters must be a mapping name → count, got "
                        f"{type(counters).__name__}")
    unknown = sorted(set(counters) - set(COUNTER_NAMES) - set(DERIVED_COUNTERS)
                     - set(CONVENTION_COUNTERS))
    if unknown and strict:
        raise DataError(f"unknown energy counter(s) {unknown}; known counters: "
                        f"{list(COUNTER_NAMES)}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise DataError(f"samples must be an integer >= 1, got {samples!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 0):
        raise DataError(f"steps must be None or an integer >= 0, got {steps!r}")
    counts = {name: _count(name, counters.get(name, 0)) for name in COUNTER_NAMES}
    if "neuron_updates" in counters and ("neuron_updates_active" in counters
                                         or "neuron_updates_inactive" in counters):
        both = counts["neuron_updates_active"] + counts["neuron_updates_inactive"]
        if _count("neuron_updates", counters["neuron_updates"]) != both:
            raise DataError(f"neuron_updates ({counters['neuron_updates']}) is not the sum of "
                            f"the active and inactive updates ({both})")

    notes = []
    charge, active = synaptic_charge or prof.synaptic_charge, active_update or prof.active_update
    if charge not in ("delivery", "emission") or active not in ("input", "state"):
        raise DataError(f"synaptic_charge must be 'delivery' or 'emission' and active_update "
                        f"'input' or 'state', got {charge!r}, {active!r}")
    if charge == "emission":
        if "synaptic_events_emitted" in counters:
            counts["synaptic_events"] = _count("synaptic_events_emitted",
                                               counters["synaptic_events_emitted"])
        elif synaptic_charge:
            raise DataError("synaptic_charge='emission' needs the counter "
                            "'synaptic_events_emitted'")
        else:
            charge = "delivery"
            notes.append(f"profile {prof.name} charges synaptic work at emission, but the "
                         f"counters lack synaptic_events_emitted: charged at delivery")
    if active == "state":
        if "neuron_updates_active_state" in counters:
            total = counts["neuron_updates_active"] + counts["neuron_updates_inactive"]
            a = _count("neuron_updates_active_state", counters["neuron_updates_active_state"])
            counts["neuron_updates_active"], counts["neuron_updates_inactive"] = a, total - a
        elif active_update:
            raise DataError("active_update='state' needs the counter "
                            "'neuron_updates_active_state' (run with timing=)")
        else:
            active = "input"
            notes.append(f"profile {prof.name} counts an update active when v, the input or "
                         f"the bias is non-zero, but the counters lack "
                         f"neuron_updates_active_state (run with timing=): input convention "
                         f"used")
    parts = {field: counts[counter] * getattr(prof, cost) for counter, field, cost in _COSTED}
    if "hops_ew" in counters and "hops_ns" in counters:
        ew, ns = _count("hops_ew", counters["hops_ew"]), _count("hops_ns", counters["hops_ns"])
        rest = counts["hops"] - ew - ns
        if rest < 0:
            raise DataError(f"hops_ew + hops_ns ({ew + ns:g}) exceed hops ({counts['hops']:g})")
        parts["hops"] = ew * prof.e_hop_ew + ns * prof.e_hop_ns + rest * prof.e_hop
    static = 0.0 if steps is None else \
        prof.static_power_w * int(steps) * int(samples) * prof.time_per_step_s
    total = sum(parts.values()) + static

    if ann_macs is not None:
        ann = _count("ann_macs", ann_macs)
        ann_fp32, ann_int8 = ann * E_MAC_FP32, ann * E_MAC_INT8
    else:
        ann = ann_fp32 = ann_int8 = None

    return EnergyReport(
        profile=prof.name,
        energy_published=prof.energy_published,
        samples=int(samples),
        steps=None if steps is None else int(steps),
        static=static,
        total=total,
        per_sample=total / samples,
        synaptic_ops=counts["synaptic_events"],
        saturations=counts["saturations"],
        input_macs=counts["input_macs"],
        off_chip_input=counts["input_macs"] * E_MAC_INT8,
        ann_macs=ann,
        ann_energy_fp32=ann_fp32,
        ann_energy_int8=ann_int8,
        synaptic_charge=charge,
        active_update=active,
        notes=tuple(notes),
        **parts,
    )


@dataclass(frozen=True)
class LatencyReport:
    """Wall time on the chip for ``steps`` time steps.  ``float(report)`` gives seconds."""

    profile: str
    steps: float
    time_per_step_s: float
    seconds: float
    #: The profile's source for ``time_per_step_s`` (says when it is a bound or assumption).
    note: str

    def __float__(self) -> float:
        return self.seconds

    def to_dict(self) -> dict:
        """Plain JSON-able dict of every field."""
        return asdict(self)

    def __str__(self) -> str:
        return (f"Latency on {self.profile}: {self.steps:g} steps × "
                f"{self.time_per_step_s:.4g} s = {self.seconds:.4g} s ({self.note})")


def latency_report(steps_to_settle: Number, profile: "ChipProfile | str") -> LatencyReport:
    """Seconds on the chip until the prediction settles: ``steps_to_settle × time_per_step_s``.

    ``steps_to_settle`` may be fractional (a mean over samples).
    """
    prof = get_profile(profile)
    if isinstance(steps_to_settle, bool) or not isinstance(steps_to_settle,
                                                           (int, float, np.integer, np.floating)) \
            or not math.isfinite(steps_to_settle) or steps_to_settle < 0:
        raise DataError(f"steps_to_settle must be a finite number >= 0, got {steps_to_settle!r}")
    steps = float(steps_to_settle)
    return LatencyReport(profile=prof.name, steps=steps, time_per_step_s=prof.time_per_step_s,
                         seconds=steps * prof.time_per_step_s,
                         note=prof.sources.get("time_per_step_s", "no source recorded"))
