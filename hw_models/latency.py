"""Latency of a run on a chip: every step as long as its slowest core, from counted work.

The model (SANA-FE's simple timing model, Boyle et al., "SANA-FE: Simulating Advanced
Neuromorphic Architectures for Fast Exploration", IEEE TCAD 2025, ``schedule.cpp``; per-event
times of Loihi from SANA-FE's ``arch/loihi.yaml``, after Davies et al., IEEE Micro 2018).  For
core c in step t, with its counted work (:mod:`emulator.work`)::

    send_c(t) = N_c · t_access + A_c(t) · t_update + S_c(t) · t_spike + MO_c(t) · t_msg_out
    recv_c(t) = MI_c(t) · t_msg_in + E_c(t) · t_syn
    core_c(t) = max(send_c(t), recv_c(t))
    step(t)   = max_c core_c(t) + mesh(t) + barrier(tiles in use)

N_c mapped non-input neurons (every one is read every step), A_c active updates under the
profile's ``active_update`` convention, S_c spikes, MO_c messages sent (sending core); MI_c
messages and E_c synaptic events received (receiving core), charged in the step of emission or
of delivery (``synaptic_charge``).  ``mesh(t)`` is the longest route (Δx·t_hop_ew +
Δy·t_hop_ns) of a message sent in step t when ``mesh="route"`` (the last message still has to
cross the mesh), 0 with ``mesh="none"`` (SANA-FE's simple model, which leaves network delay
out).  The barrier comes from the profile's table by tiles in use.

Reported (:func:`step_latency_report`): the mean step time, the latency per inference — the
time of the steps until the sample's prediction settles (from the first step after which it no
longer changes), averaged over samples — the time for all T steps, the throughput
(inferences per second running T steps each, back to back), the critical core (most often the
slowest) and the critical layer (whose cores are most often the slowest), and the mean time of a fixed ``time_per_step_s`` for comparison.

Where a chip's per-event times are not published (``timing_published`` False), the report
says so, as the energy report does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import DataError
from .profiles import ACTIVE_UPDATES, SYNAPTIC_CHARGES, ChipProfile, get_profile

__all__ = ["Timing", "timing_for", "MESH_MODELS", "LatencyModelReport", "step_latency_report",
           "settle_steps"]

MESH_MODELS = ("route", "none")
_TIMES = ("t_neuron_access_s", "t_neuron_update_s", "t_spike_s", "t_msg_out_s", "t_msg_in_s",
          "t_syn_event_s", "t_hop_ew_s", "t_hop_ns_s")


@dataclass(frozen=True)
class Timing:
    """The per-event times and conventions the engine counts and times a run with.

    Build with :func:`timing_for` (from a profile, conventions overridable).  Times in seconds;
    ``barrier_s`` as in :attr:`ChipProfile.barrier_s`."""
    profile: str
    t_neuron_access_s: float
    t_neuron_update_s: float
    t_spike_s: float
    t_msg_out_s: float
    t_msg_in_s: float
    t_syn_event_s: float
    t_hop_ew_s: float
    t_hop_ns_s: float
    barrier_s: Tuple[Tuple[int, float], ...]
    synaptic_charge: str
    active_update: str
    mesh: str
    published: bool

    def __post_init__(self):
        if self.synaptic_charge not in SYNAPTIC_CHARGES:
            raise DataError(f"synaptic_charge must be one of {SYNAPTIC_CHARGES}, got "
                            f"{self.synaptic_charge!r}")
        if self.active_update not in ACTIVE_UPDATES:
            raise DataError(f"active_update must be one of {ACTIVE_UPDATES}, got "
                            f"{self.active_update!r}")
        if self.mesh not in MESH_MODELS:
            raise DataError(f"mesh must be one of {MESH_MODELS}, got {self.mesh!r}")
        for name in _TIMES:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < 0:
                raise DataError(f"timing {name} must be a finite number of seconds >= 0, "
                                f"got {v!r}")
        object.__setattr__(self, "barrier_s", tuple(tuple(e) for e in self.barrier_s))

    def barrier_for(self, tiles: int) -> float:
        """Barrier (s) for ``tiles`` tiles in use (largest table key <= tiles)."""
        out = self.barrier_s[0][1] if self.barrier_s else 0.0
        for n, sec in self.barrier_s:
            if n <= tiles:
                out = sec
        return float(out)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["barrier_s"] = [list(e) for e in self.barrier_s]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "Timing":
        names = {f.name for f in fields(cls)}
        if not isinstance(d, Mapping) or set(d) != names:
            raise DataError(f"a stored timing needs exactly the fields {sorted(names)}")
        return cls(**{k: (tuple(tuple(e) for e in v) if k == "barrier_s" else v)
                      for k, v in d.items()})


def timing_for(profile: "ChipProfile | str", *, mesh: str = "route",
               synaptic_charge: Optional[str] = None,
               active_update: Optional[str] = None) -> Timing:
    """The :class:`Timing` of ``profile``; ``synaptic_charge``/``active_update`` default to
    the profile's cited conventions, ``mesh`` to the longest-route term ("none": SANA-FE's
    simple model)."""
    prof = get_profile(profile)
    return Timing(profile=prof.name, **{k: float(getattr(prof, k)) for k in _TIMES},
                  barrier_s=prof.barrier_s,
                  synaptic_charge=synaptic_charge or prof.synaptic_charge,
                  active_update=active_update or prof.active_update, mesh=mesh,
                  published=prof.timing_published)


def settle_steps(predictions: np.ndarray) -> np.ndarray:
    """Per sample (columns of ``predictions`` (T, N)): the first step t (1-based) from which the
    prediction no longer changes."""
    pred = np.asarray(predictions)
    if pred.ndim != 2:
        raise DataError(f"predictions must be (T, N), got shape {pred.shape}")
    T = pred.shape[0]
    differs = pred != pred[-1:]
    last = np.where(differs.any(axis=0), T - 1 - np.argmax(differs[::-1], axis=0), -1)
    return (last + 2).astype(np.int64)


def _fmt_s(sec: float) -> str:
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns")):
        if abs(sec) >= scale:
            return f"{sec / scale:.4g} {unit}"
    return f"{sec / 1e-12:.4g} ps" if sec else "0 s"


@dataclass(frozen=True)
class LatencyModelReport:
    """Latency and throughput of a run from its per-step, per-core work (seconds)."""
    profile: str
    published: bool
    samples: int
    steps: int
    synaptic_charge: str
    active_update: str
    mesh: str
    barrier: float
    step_time_mean: float
    step_time_max: float
    settle_steps_mean: float
    latency: float               # mean per inference, to the settled prediction
    latency_all_steps: float     # mean per inference, all T steps
    throughput: float            # inferences / s running T steps each, back to back
    critical_core: int
    critical_layer: Optional[str]
    critical_share: float        # fraction of (sample, step) in which it was the slowest
    critical_layer_share: float  # … in which one of the critical layer's cores was
    fixed_step_latency: float    # settle steps × the profile's fixed time_per_step_s

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"Latency on {self.profile} ({self.samples} sample(s), {self.steps} steps; "
                 f"slowest core per step, synaptic work at {self.synaptic_charge}, active "
                 f"updates '{self.active_update}', mesh '{self.mesh}')"]
        if not self.published:
            lines.append("  UNPUBLISHED: per-event times of this profile are not published; "
                         "figures below rest on stated assumptions (see profile.sources)")
        lines += [
            f"  {'step time (mean / max)':<30} {_fmt_s(self.step_time_mean)} / "
            f"{_fmt_s(self.step_time_max)}  (barrier {_fmt_s(self.barrier)})",
            f"  {'latency per inference':<30} {_fmt_s(self.latency)}  (to the settled "
            f"prediction, {self.settle_steps_mean:.3g} steps on average)",
            f"  {'time for all steps':<30} {_fmt_s(self.latency_all_steps)}  "
            f"(throughput {self.throughput:.4g} inferences/s)",
            f"  {'critical core':<30} {self.critical_core}, slowest in "
            f"{100 * self.critical_share:.1f} % of steps"
            + (f"; critical layer {self.critical_layer!r} (its cores slowest in "
               f"{100 * self.critical_layer_share:.1f} %)" if self.critical_layer else ""),
            f"  {'fixed-step estimate':<30} {_fmt_s(self.fixed_step_latency)} (settle steps × "
            f"the profile's time_per_step_s, for comparison)",
        ]
        return "\n".join(lines)


#: the exact sufficient statistics of the per-sample step times that the report needs (integer
#: picoseconds, summed over samples), kept instead of the (T, N) step times themselves
STEP_STATS = ("samples", "step_time_sum_ps", "step_time_max_ps", "latency_sum_ps",
              "settle_sum")


def step_time_stats(step_time_ps, predictions) -> dict:
    """:data:`STEP_STATS` of samples whose step times ``step_time_ps`` and ``predictions`` are
    both (T, N): per step the sum and the maximum of the step time over samples, the sum over
    samples of the time up to the settled prediction, and the sum of the settle steps.  Sums
    of integers, so chunks of samples add up exactly."""
    st = np.asarray(step_time_ps, np.int64)
    pred = np.asarray(predictions)
    if st.ndim != 2 or st.shape != pred.shape:
        raise DataError(f"step times {st.shape} and predictions {pred.shape} differ in shape")
    T, N = st.shape
    settle = settle_steps(pred) if N else np.zeros(0, np.int64)
    cum = np.cumsum(st, axis=0)
    return {"samples": int(N), "step_time_sum_ps": st.sum(axis=1),
            "step_time_max_ps": st.max(axis=1) if N else np.zeros(T, np.int64),
            "latency_sum_ps": int(cum[settle - 1, np.arange(N)].sum()) if N else 0,
            "settle_sum": int(settle.sum())}


def with_step_stats(work: Mapping, predictions=None) -> dict:
    """``work`` with :data:`STEP_STATS`, computed from its per-sample ``step_time_ps`` and
    ``predictions`` when it has none (the dense reference, result files written before the
    statistics were kept)."""
    out = dict(work)
    if all(k in out for k in STEP_STATS):
        return out
    if "step_time_ps" not in out or predictions is None:
        raise DataError("work counters are incomplete: neither the step-time statistics nor "
                        "per-sample step times with predictions; run with timing= set")
    out.update(step_time_stats(out["step_time_ps"], predictions))
    return out


def step_latency_report(work: Mapping, predictions=None,
                        core_layers: Optional[Sequence] = None,
                        profile: "ChipProfile | str | None" = None) -> LatencyModelReport:
    """Latency of a run from the engine's ``work`` (raw result key ``"work"``, see
    :func:`emulator.work.work_raw`): its :data:`STEP_STATS`, or, when it has none, its
    per-sample ``step_time_ps`` with the run's ``predictions`` (T, N).  ``core_layers`` names
    the layer (population) of every core, for the critical layer."""
    try:
        w = with_step_stats(work, predictions)
        crit = np.asarray(w["critical"], np.int64)
        tm = Timing.from_dict(w["timing"])
        ssum = np.asarray(w["step_time_sum_ps"], np.int64)
        smax = np.asarray(w["step_time_max_ps"], np.int64)
        N = int(w["samples"])
    except (KeyError, TypeError) as exc:
        raise DataError(f"work counters are incomplete ({exc}); run with timing= set") from None
    prof = get_profile(profile or tm.profile)
    T = int(ssum.shape[0])
    if N == 0:
        raise DataError("no samples: nothing to report")
    total_ps = int(ssum.sum())   # exact integer sums; seconds only at the end
    cc = int(np.argmax(crit)) if crit.size else 0
    layer, layer_share = None, 0.0
    if core_layers is not None:
        by = {}
        for c, n in enumerate(core_layers[:len(crit)]):
            if n:
                by[n] = by.get(n, 0) + int(crit[c])
        if by:
            layer = max(by, key=by.get)  # the layer whose cores are most often the slowest
            layer_share = by[layer] / max(int(crit.sum()), 1)
    return LatencyModelReport(
        profile=tm.profile, published=bool(tm.published), samples=int(N), steps=int(T),
        synaptic_charge=tm.synaptic_charge, active_update=tm.active_update, mesh=tm.mesh,
        barrier=float(work.get("barrier_ps", 0)) * 1e-12,
        step_time_mean=total_ps * 1e-12 / (T * N), step_time_max=float(smax.max()) * 1e-12,
        settle_steps_mean=int(w["settle_sum"]) / N,
        latency=int(w["latency_sum_ps"]) * 1e-12 / N,
        latency_all_steps=total_ps * 1e-12 / N,
        throughput=float(N / (total_ps * 1e-12)) if total_ps > 0 else float("inf"),
        critical_core=cc, critical_layer=layer, critical_layer_share=float(layer_share),
        critical_share=float(crit[cc] / max(crit.sum(), 1)) if crit.size else 0.0,
        fixed_step_latency=float(int(w["settle_sum"]) / N * prof.time_per_step_s))
