"""The :class:`Result` of a run: per-step predictions, accuracy, counters, spike counts, rasters.

A Result wraps the raw dict both simulators return (see :mod:`emulator.engine`) and adds the
views callers want (accuracy curve, firing rates, a text summary).  ``meta`` is a free JSON-able
dict that callers (the CLI) fill with the profile, conversion options, float accuracy, energy.

HDF5 layout (version 1, written atomically with :func:`hw_models.h5io.atomic_h5`)::

    /                         attrs: format="neuroemu.Result", version=1, steps, n_samples,
                                     meta (JSON text), populations (JSON list, in order),
                                     projections (JSON list), recorded (JSON list)
    /predictions              int64 (T, N)
    /accuracy                 float64 (T,)                          [only with labels]
    /labels                   int64 (N,)                            [only with labels]
    /counters                 attrs: one int per total counter
    /per_population/<name>    attrs: spikes, neuron_updates_active, neuron_updates_inactive,
                                     saturations
    /per_projection/<name>    attrs: synaptic_events, input_macs
    /per_core/<counter>       int64 (n_cores,)
    /spike_counts/<name>      int32 (N, n)
    /spikes/<name>            int32 (E, 3) rows (sample, step, neuron)  [recorded populations]
    /work                     attrs: timing (JSON), barrier_ps    [only when run with timing]
    /work/step_time_ps        int64 (T, N)
    /work/core_step_time_ps   int64 (T, n_cores)
    /work/critical, /work/neurons_per_core, /work/core/<counter>   int64 (n_cores,)

A missing, truncated or foreign file raises :class:`~hw_models.errors.FileFormatError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hw_models.errors import BudgetError, DataError, FileFormatError

FORMAT_NAME = "neuroemu.Result"
FORMAT_VERSION = 1
_POP_KEYS = ("spikes", "neuron_updates_active", "neuron_updates_inactive", "saturations")
_PROJ_KEYS = ("synaptic_events", "input_macs", "synaptic_events_emitted")


class Result:
    """Outcome of :func:`emulator.run` (read-only views over the raw arrays).

    Attributes: ``predictions`` int64 (T, N); ``labels`` int64 (N,) or None; ``accuracy``
    float (T,) or None; ``counters`` dict of totals (``synaptic_events``, ``spikes``,
    ``messages``, ``hops``, ``neuron_updates`` = active + inactive, ``neuron_updates_active``,
    ``neuron_updates_inactive``, ``saturations``, ``input_macs``); ``per_population``,
    ``per_projection`` dicts of dicts; ``per_core`` dict of int64 arrays; ``spike_counts``
    {population: int32 (N, n)}; ``spikes`` {population: int32 (E, 3) (sample, step, neuron)};
    ``steps``; ``n_samples``; ``meta``.
    """

    def __init__(self, raw: dict, steps: int, labels=None, sizes: dict | None = None,
                 meta: dict | None = None):
        self.predictions = np.asarray(raw["predictions"], np.int64)
        self.steps = int(steps)
        self.n_samples = int(self.predictions.shape[1]) if self.predictions.ndim == 2 else 0
        self.labels = None if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
        if self.labels is not None and len(self.labels) != self.n_samples:
            raise DataError(f"{len(self.labels)} labels for {self.n_samples} samples")
        self.accuracy = (None if self.labels is None or self.n_samples == 0 else
                         (self.predictions == self.labels[None, :]).mean(axis=1))
        self.spike_counts = dict(raw["spike_counts"])
        self.spikes = dict(raw.get("records", {}))
        self.per_population = {k: dict(v) for k, v in raw["pop"].items()}
        self.per_projection = {k: dict(v) for k, v in raw["proj"].items()}
        self.per_core = {k: np.asarray(v, np.int64) for k, v in raw["core"].items()}
        tot = {k: int(v) for k, v in raw["totals"].items()}
        tot["neuron_updates"] = tot["neuron_updates_active"] + tot["neuron_updates_inactive"]
        self.counters = tot
        self.sizes = dict(sizes) if sizes else {k: int(v.shape[1])
                                                for k, v in self.spike_counts.items()}
        self.meta = dict(meta or {})
        #: per-step, per-core work and step times (:mod:`emulator.work`), or None when the run
        #: had no ``timing``
        self.work = raw.get("work")
        if self.work is not None:
            self.counters["neuron_updates_active_state"] = int(
                np.asarray(self.work["core"]["neuron_updates_active_state"]).sum())

    def latency_report(self, core_layers=None, profile=None):
        """:func:`hw_models.latency.step_latency_report` of this run (needs ``timing``)."""
        from hw_models.latency import step_latency_report
        if self.work is None:
            raise DataError("this result has no per-step work counters: run with timing= "
                            "(a profile or hw_models.latency.Timing)")
        return step_latency_report(self.work, self.predictions, core_layers, profile)

    # ---- views ------------------------------------------------------------------------------
    @property
    def final_accuracy(self) -> float | None:
        return None if self.accuracy is None else float(self.accuracy[-1])

    def steps_to_accuracy(self, target: float) -> int | None:
        """First step t (1-based) from which the accuracy stays ≥ ``target``, or None."""
        if self.accuracy is None:
            return None
        below = np.flatnonzero(self.accuracy < target)
        if below.size == 0:
            return 1
        last = int(below[-1])
        return None if last == len(self.accuracy) - 1 else last + 2

    def firing_rates(self) -> dict:
        """Spikes per neuron per step, per population (averaged over samples)."""
        denom = max(self.n_samples * self.steps, 1)
        return {k: float(self.per_population[k]["spikes"]) / (denom * max(self.sizes[k], 1))
                for k in self.per_population}

    def summary(self) -> str:
        c = self.counters
        lines = [f"Result: {self.n_samples} samples x {self.steps} steps"]
        if self.accuracy is not None:
            lines.append(f"  accuracy at step {self.steps}: {self.final_accuracy:.4f}")
        lines.append(f"  synaptic events {c['synaptic_events']:,}  spikes {c['spikes']:,}  "
                     f"messages {c['messages']:,}  hops {c['hops']:,}")
        lines.append(f"  neuron updates {c['neuron_updates']:,} (active "
                     f"{c['neuron_updates_active']:,})  saturations {c['saturations']:,}  "
                     f"input MACs {c['input_macs']:,}")
        rates = self.firing_rates()
        for k, d in self.per_population.items():
            lines.append(f"  {k:<20} spikes {d['spikes']:>12,}  rate {rates[k]:.4f}/neuron/step"
                         f"  saturations {d['saturations']:,}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        acc = "" if self.accuracy is None else f", final_accuracy={self.final_accuracy:.4f}"
        return f"Result(n_samples={self.n_samples}, steps={self.steps}{acc})"

    # ---- files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write to HDF5 atomically (layout in the module docstring)."""
        from hw_models.h5io import atomic_h5
        from hw_models.network import meta_json
        path = Path(path)
        with atomic_h5(path) as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["version"] = FORMAT_VERSION
            f.attrs["steps"] = self.steps
            f.attrs["n_samples"] = self.n_samples
            f.attrs["meta"] = meta_json(self.meta)
            f.attrs["populations"] = json.dumps(list(self.per_population))
            f.attrs["projections"] = json.dumps(list(self.per_projection))
            f.attrs["recorded"] = json.dumps(list(self.spikes))
            f.attrs["sizes"] = json.dumps(self.sizes)
            f.create_dataset("predictions", data=self.predictions)
            if self.labels is not None:
                f.create_dataset("labels", data=self.labels)
                f.create_dataset("accuracy", data=np.asarray(self.accuracy, np.float64))
            g = f.create_group("counters")
            for k, v in self.counters.items():
                g.attrs[k] = int(v)
            for grp, table in (("per_population", self.per_population),
                               ("per_projection", self.per_projection)):
                g = f.create_group(grp)
                for name, d in table.items():
                    h = g.create_group(name)
                    for k, v in d.items():
                        h.attrs[k] = int(v)
            g = f.create_group("per_core")
            for k, v in self.per_core.items():
                g.create_dataset(k, data=v)
            g = f.create_group("spike_counts")
            for k, v in self.spike_counts.items():
                g.create_dataset(k, data=np.asarray(v, np.int32), compression="gzip")
            g = f.create_group("spikes")
            for k, v in self.spikes.items():
                g.create_dataset(k, data=np.asarray(v, np.int32).reshape(-1, 3),
                                 compression="gzip")
            if self.work is not None:
                g = f.create_group("work")
                g.attrs["timing"] = json.dumps(self.work["timing"])
                g.attrs["barrier_ps"] = int(self.work["barrier_ps"])
                for k in ("step_time_ps", "core_step_time_ps", "critical", "neurons_per_core"):
                    g.create_dataset(k, data=np.asarray(self.work[k], np.int64))
                h = g.create_group("core")
                for k, v in self.work["core"].items():
                    h.create_dataset(k, data=np.asarray(v, np.int64))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Result":
        """Read a file written by :meth:`save`; anything else raises FileFormatError."""
        from hw_models.h5io import check_format, open_h5
        from hw_models.safeio import loads_json, read_dataset
        path = Path(path)
        try:
            with open_h5(path, "result") as f:
                check_format(f, path, FORMAT_NAME, FORMAT_VERSION, "result",
                             version_min=FORMAT_VERSION)
                def js(name):
                    return loads_json(f.attrs[name], f"{path}: attribute {name!r}")

                def rd(ds, kinds="iu"):  # declared size checked before reading
                    return read_dataset(ds, f"{path}: {ds.name}", kinds)
                pops, projs, recorded = js("populations"), js("projections"), js("recorded")
                raw = {
                    "predictions": rd(f["predictions"]),
                    "spike_counts": {k: rd(f["spike_counts"][k]) for k in pops},
                    "records": {k: rd(f["spikes"][k]) for k in recorded},
                    "pop": {k: {a: int(f["per_population"][k].attrs[a]) for a in _POP_KEYS}
                            for k in pops},
                    "proj": {k: {a: int(f["per_projection"][k].attrs[a]) for a in _PROJ_KEYS
                                 if a in f["per_projection"][k].attrs}
                             for k in projs},
                    "core": {k: rd(f["per_core"][k]) for k in f["per_core"]},
                    "totals": {k: int(v) for k, v in f["counters"].attrs.items()
                               if k != "neuron_updates"},
                }
                if "work" in f:
                    g = f["work"]
                    raw["work"] = {k: rd(g[k], "iuf") for k in ("step_time_ps",
                                                                 "core_step_time_ps",
                                                                 "critical", "neurons_per_core")}
                    raw["work"]["core"] = {k: rd(g["core"][k], "iuf") for k in g["core"]}
                    raw["work"]["timing"] = loads_json(g.attrs["timing"],
                                                       f"{path}: work timing")
                    raw["work"]["barrier_ps"] = int(g.attrs["barrier_ps"])
                labels = rd(f["labels"]) if "labels" in f else None
                res = cls(raw, int(f.attrs["steps"]), labels=labels,
                          sizes=js("sizes"), meta=js("meta"))
        except (FileFormatError, BudgetError):
            raise
        except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError,
                OverflowError, RuntimeError) as exc:
            raise FileFormatError(f"{path}: corrupt or truncated result file ({type(exc).__name__}: "
                                  f"{exc})") from None
        return res
