"""The :class:`Result` of a run: accuracy per step, counters, rate statistics, optional detail.

A Result wraps the raw dict both simulators return (see :mod:`emulator.engine`) and adds the
views callers want (accuracy curve, firing rates, a text summary).  ``meta`` is a free JSON-able
dict that callers (the CLI) fill with the profile, conversion options, float accuracy, energy.
What does not grow with the number of samples is always there (counters, accuracy and agreement
per step, per-neuron spike sums and sums of squares, the settle-step histogram); per-sample
detail (predictions per step, per-neuron counts, rasters) only when the run kept it, in memory
or streamed to the file (:mod:`emulator.sink`).

HDF5 layout (version 2, written atomically with :func:`hw_models.h5io.atomic_h5`; version 1
files, which always hold predictions and spike counts, still load)::

    /                         attrs: format="neuroemu.Result", version=2, steps, n_samples,
                                     meta (JSON text), populations (JSON list, in order),
                                     projections (JSON list), recorded (JSON list), sizes
    /predictions              int64 (T, N)                          [detail]
    /final_predictions        int64 (N,)                            [detail]
    /accuracy                 float64 (T,)                          [only with labels]
    /labels                   int64 (N,)                            [only with labels]
    /hits/<name>              int64 (T,) samples matching reference <name> at each step
    /settle                   int64 (T + 1,) histogram of settle steps
    /counters                 attrs: one int per total counter
    /per_population/<name>    attrs: spikes, neuron_updates_active, neuron_updates_inactive,
                                     saturations
    /per_projection/<name>    attrs: synaptic_events, input_macs
    /per_core/<counter>       int64 (n_cores,)
    /spike_sum/<name>         int64 (n,) spikes per neuron summed over samples
    /spike_sq/<name>          int64 (n,) squared per-sample counts summed over samples
    /spike_counts/<name>      int32 (N, n)                          [detail]
    /spikes/<name>            int32 (E, 3) rows (sample, step, neuron)  [recorded populations]
    /work                     attrs: timing (JSON), barrier_ps    [only when run with timing]
    /work                     attrs also: samples, latency_sum_ps, settle_sum
    /work/step_time_sum_ps    int64 (T,) step time summed over samples
    /work/step_time_max_ps    int64 (T,) its maximum over samples
    /work/step_time_ps        int64 (T, N)  [only from the dense reference and older files]
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
FORMAT_VERSION = 2
_POP_KEYS = ("spikes", "neuron_updates_active", "neuron_updates_inactive", "saturations")
_PROJ_KEYS = ("synaptic_events", "input_macs", "synaptic_events_emitted")


class Result:
    """Outcome of :func:`emulator.run` (read-only views over the raw arrays).

    Always: ``labels`` int64 (N,) or None; ``accuracy`` float (T,) or None; ``hits``
    {reference: int64 (T,)} (``labels``, ``float``, …: samples matching it per step);
    ``counters`` dict of totals (``synaptic_events``, ``spikes``, ``messages``, ``hops``,
    ``neuron_updates`` = active + inactive, ``neuron_updates_active``,
    ``neuron_updates_inactive``, ``saturations``, ``input_macs``); ``per_population``,
    ``per_projection`` dicts of dicts; ``per_core`` dict of int64 arrays; ``spike_sum`` and
    ``spike_sq`` {population: int64 (n,)} summed over samples; ``settle_hist`` int64 (T + 1,);
    ``steps``; ``n_samples``; ``meta``.
    Detail, None/empty unless kept: ``predictions`` int64 (T, N); ``final_predictions`` (N,);
    ``spike_counts`` {population: int32 (N, n)}; ``spikes`` {population: int32 (E, 3)
    (sample, step, neuron)}.  ``detail_file``: the file the detail was streamed to, if any.
    """

    def __init__(self, raw: dict, steps: int, labels=None, sizes: dict | None = None,
                 meta: dict | None = None, sink=None):
        pred = raw.get("predictions")
        self.predictions = None if pred is None else np.asarray(pred, np.int64)
        self.steps = int(steps)
        if raw.get("n_samples") is not None:
            self.n_samples = int(raw["n_samples"])
        else:
            self.n_samples = int(self.predictions.shape[1]) \
                if self.predictions is not None and self.predictions.ndim == 2 else 0
        self.labels = None if labels is None else np.asarray(labels).astype(np.int64).reshape(-1)
        if self.labels is not None and len(self.labels) != self.n_samples:
            raise DataError(f"{len(self.labels)} labels for {self.n_samples} samples")
        self.hits = {k: np.asarray(v, np.int64) for k, v in (raw.get("hits") or {}).items()}
        if self.labels is not None and "labels" not in self.hits and self.predictions is not None:
            self.hits["labels"] = (self.predictions == self.labels[None, :]).sum(
                axis=1, dtype=np.int64)
        self.accuracy = None
        if self.labels is not None and self.n_samples:
            if "labels" not in self.hits:
                raise DataError("labels were given but the run counted no hits against them")
            self.accuracy = self.hits["labels"] / self.n_samples
        fin = raw.get("final_predictions")
        if fin is None and self.predictions is not None and self.predictions.ndim == 2:
            fin = self.predictions[-1]
        self.final_predictions = None if fin is None else np.asarray(fin, np.int64)
        self.spike_counts = dict(raw.get("spike_counts") or {})
        self.spikes = dict(raw.get("records", {}))
        self.spike_sum = {k: np.asarray(v, np.int64) for k, v in
                          (raw.get("spike_sum") or {}).items()}
        self.spike_sq = {k: np.asarray(v, np.int64) for k, v in
                         (raw.get("spike_sq") or {}).items()}
        for k, v in self.spike_counts.items():  # the reference returns only the full counts
            if k not in self.spike_sum:
                v64 = np.asarray(v, np.int64)
                self.spike_sum[k] = v64.sum(axis=0)
                self.spike_sq[k] = (v64 * v64).sum(axis=0)
        st = raw.get("settle")
        if st is None and self.predictions is not None and self.predictions.ndim == 2:
            st = np.bincount(settle_steps(self.predictions), minlength=self.steps + 1)
        self.settle_hist = None if st is None else np.asarray(st, np.int64)
        nz = raw.get("input_nonzero")   # analog input: samples with each input value non-zero
        self.input_nonzero = None if nz is None else np.asarray(nz, np.int64)
        self.per_population = {k: dict(v) for k, v in raw["pop"].items()}
        self.per_projection = {k: dict(v) for k, v in raw["proj"].items()}
        self.per_core = {k: np.asarray(v, np.int64) for k, v in raw["core"].items()}
        tot = {k: int(v) for k, v in raw["totals"].items()}
        tot["neuron_updates"] = tot["neuron_updates_active"] + tot["neuron_updates_inactive"]
        self.counters = tot
        self.sizes = dict(sizes) if sizes else {k: int(np.shape(v)[-1])
                                                for k, v in self.spike_sum.items()}
        self.meta = dict(meta or {})
        self._sink = sink
        self.detail_file = None if sink is None else sink.path
        #: per-step, per-core work and step times (:mod:`emulator.work`), or None when the run
        #: had no ``timing``
        self.work = raw.get("work")
        if self.work is not None:
            from hw_models.latency import STEP_STATS, with_step_stats
            if not all(k in self.work for k in STEP_STATS) and self.predictions is not None \
                    and "step_time_ps" in self.work:
                # the reference and older files keep per-sample step times: reduce them here
                self.work = with_step_stats(self.work, self.predictions)
            self.counters["neuron_updates_active_state"] = int(
                np.asarray(self.work["core"]["neuron_updates_active_state"]).sum())

    def latency_report(self, core_layers=None, profile=None):
        """:func:`hw_models.latency.step_latency_report` of this run (needs ``timing``)."""
        from hw_models.latency import step_latency_report
        if self.work is None:
            raise DataError("this result has no per-step work counters: run with timing= "
                            "(a profile or hw_models.latency.Timing)")
        return step_latency_report(self.work, self.predictions, core_layers, profile)

    # ---- reduced statistics -----------------------------------------------------------------
    def agreement(self, name: str = "float"):
        """Fraction of samples whose prediction equals reference ``name`` per step, or None."""
        h = self.hits.get(name)
        return None if h is None or not self.n_samples else h / self.n_samples

    @property
    def mean_settle_step(self) -> float | None:
        """Mean over samples of the step after which the prediction never changes again."""
        h = self.settle_hist
        if h is None or not h.sum():
            return None
        return float((np.arange(len(h)) * h).sum() / h.sum())

    def rate_stats(self) -> dict:
        """{population: (mean, variance)} of each neuron's spike count per sample (float64
        arrays (n,)), from the exact sums over samples."""
        n = max(self.n_samples, 1)
        out = {}
        for k, s in self.spike_sum.items():
            m = s / n
            out[k] = (m, np.maximum(self.spike_sq[k] / n - m * m, 0.0))
        return out

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
        """Write to HDF5 atomically (layout in the module docstring).  A result whose detail
        was streamed to ``path`` completes that file; streamed to another path, the detail
        stays there and this file holds the summary."""
        from hw_models.h5io import atomic_h5
        path = Path(path)
        sink = self._sink
        if sink is not None and not sink.closed and sink.path.resolve() == path.resolve():
            try:
                sink.check_complete()
                self._write_summary(sink.file, detail_in_file=True)
            except BaseException:
                sink.abort()
                raise
            sink.commit()
            return path
        with atomic_h5(path) as f:
            self._write_summary(f, detail_in_file=False)
        return path

    def _write_summary(self, f, detail_in_file: bool) -> None:
        from hw_models.network import meta_json
        f.attrs["format"] = FORMAT_NAME
        f.attrs["version"] = FORMAT_VERSION
        f.attrs["steps"] = self.steps
        f.attrs["n_samples"] = self.n_samples
        f.attrs["meta"] = meta_json(self.meta)
        f.attrs["populations"] = json.dumps(list(self.per_population))
        f.attrs["projections"] = json.dumps(list(self.per_projection))
        recorded = list(f["spikes"]) if detail_in_file and "spikes" in f else list(self.spikes)
        f.attrs["recorded"] = json.dumps(recorded)
        f.attrs["sizes"] = json.dumps(self.sizes)
        if not detail_in_file:
            if self.predictions is not None:
                f.create_dataset("predictions", data=self.predictions)
            if self.final_predictions is not None:
                f.create_dataset("final_predictions", data=self.final_predictions)
            if self.spike_counts:
                g = f.create_group("spike_counts")
                for k, v in self.spike_counts.items():
                    g.create_dataset(k, data=np.asarray(v, np.int32), compression="gzip")
            g = f.create_group("spikes")
            for k, v in self.spikes.items():
                g.create_dataset(k, data=np.asarray(v, np.int32).reshape(-1, 3),
                                 compression="gzip")
        if self.labels is not None:
            f.create_dataset("labels", data=self.labels)
            if self.accuracy is not None:
                f.create_dataset("accuracy", data=np.asarray(self.accuracy, np.float64))
        g = f.create_group("hits")
        for k, v in self.hits.items():
            g.create_dataset(k, data=v)
        if self.settle_hist is not None:
            f.create_dataset("settle", data=self.settle_hist)
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
        for grp, table in (("spike_sum", self.spike_sum), ("spike_sq", self.spike_sq)):
            g = f.create_group(grp)
            for k, v in table.items():
                g.create_dataset(k, data=v)
        if self.work is not None:
            g = f.create_group("work")
            g.attrs["timing"] = json.dumps(self.work["timing"])
            g.attrs["barrier_ps"] = int(self.work["barrier_ps"])
            for k in ("step_time_ps", "core_step_time_ps", "critical", "neurons_per_core",
                      "step_time_sum_ps", "step_time_max_ps"):
                if k in self.work:
                    g.create_dataset(k, data=np.asarray(self.work[k], np.int64))
            for k in ("samples", "latency_sum_ps", "settle_sum"):
                if k in self.work:
                    g.attrs[k] = int(self.work[k])
            h = g.create_group("core")
            for k, v in self.work["core"].items():
                h.create_dataset(k, data=np.asarray(v, np.int64))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Result":
        """Read a file written by :meth:`save`; anything else raises FileFormatError."""
        from hw_models.h5io import check_format, open_h5
        from hw_models.safeio import loads_json, read_dataset
        path = Path(path)
        try:
            with open_h5(path, "result") as f:
                check_format(f, path, FORMAT_NAME, FORMAT_VERSION, "result", version_min=1)
                pops = json.loads(f.attrs["populations"])
                projs = json.loads(f.attrs["projections"])
                recorded = json.loads(f.attrs["recorded"])
                g = lambda name: f[name] if name in f else {}  # noqa: E731

                def js(name):
                    return loads_json(f.attrs[name], f"{path}: attribute {name!r}")

                def rd(ds, kinds="iu"):  # declared size checked before reading
                    return read_dataset(ds, f"{path}: {ds.name}", kinds)
                raw = {
                    "n_samples": int(f.attrs["n_samples"]),
                    "predictions": f["predictions"][()] if "predictions" in f else None,
                    "final_predictions": (f["final_predictions"][()]
                                          if "final_predictions" in f else None),
                    "spike_counts": {k: g("spike_counts")[k][()] for k in g("spike_counts")},
                    "spike_sum": {k: g("spike_sum")[k][()] for k in g("spike_sum")},
                    "spike_sq": {k: g("spike_sq")[k][()] for k in g("spike_sq")},
                    "hits": {k: g("hits")[k][()] for k in g("hits")},
                    "settle": f["settle"][()] if "settle" in f else None,
                    "records": {k: f["spikes"][k][()] for k in recorded},
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
                    raw["work"] = {k: rd(g[k], "iuf") for k in (
                        "step_time_ps", "core_step_time_ps", "critical", "neurons_per_core",
                        "step_time_sum_ps", "step_time_max_ps") if k in g}
                    for k in ("samples", "latency_sum_ps", "settle_sum"):
                        if k in g.attrs:
                            raw["work"][k] = int(g.attrs[k])
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


def settle_steps(pred: np.ndarray) -> np.ndarray:
    """Per sample, the first step (1-based) from which the prediction never changes again."""
    pred = np.asarray(pred)
    T = pred.shape[0]
    if pred.ndim != 2 or pred.shape[1] == 0:
        return np.zeros(0, np.int64)
    differs = pred != pred[-1][None, :]
    last = np.where(differs.any(axis=0), T - np.argmax(differs[::-1], axis=0), 0)
    return (last + 1).astype(np.int64)
