"""Figures of runs and sweeps (matplotlib, Agg backend: no display needed).

Every function takes plain arrays, a :class:`~emulator.result.Result`, or the dict a sweep file
reads into (``{"config", "grid", "points": {key: {"method", "bits", "accuracy", …}}}``, see
``neuroemu.sweep.read_sweep``), draws one figure, saves it to ``path`` when given (PNG, 120 dpi)
and returns the :class:`matplotlib.figure.Figure` (closed after saving, so loops do not leak).

* :func:`spike_raster` — layers stacked, one colour per layer, time step on x, neuron on y;
* :func:`accuracy_vs_steps` / :func:`sweep_accuracy_vs_steps` — one line per method, the float
  accuracy dashed;
* :func:`accuracy_vs_bits` / :func:`sweep_accuracy_vs_bits`;
* :func:`energy_vs_accuracy` / :func:`sweep_energy_vs_accuracy` — per method, one marker per
  weight width, the ANN's MAC energy as reference lines;
* :func:`firing_rates` / :func:`result_firing_rates` — per layer;
* :func:`core_utilisation` — every core against every limit of the chip, in percent.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hw_models.errors import DataError  # noqa: E402

_DPI = 120


def _finish(fig, ax, title, path):
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
        fig.savefig(tmp, dpi=_DPI)
        os.replace(tmp, path)
        plt.close(fig)
    return fig


def _colors(n):
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# raster

def _float_line(ax, float_accuracy):
    """The float network's accuracy as a dashed reference line (nothing if unknown)."""
    if float_accuracy is not None and np.isfinite(float_accuracy):
        ax.axhline(100 * float_accuracy, color="k", ls="--", lw=1.2,
                   label=f"float network ({100 * float_accuracy:.2f} %)")


def spike_raster(result, sample: int = 0, populations=None, sizes: dict | None = None,
                 title: str | None = None, path=None, max_steps: int | None = None):
    """Spikes of one sample, layers stacked bottom (first) to top (last), one colour and one
    equal-height band per layer (neuron index scaled to its band).

    ``result`` is a Result with recorded populations or a dict ``{population: (E, 3) rows
    (sample, step, neuron)}`` (then ``sizes`` gives each population's neuron count).
    """
    spikes = getattr(result, "spikes", result)
    sizes = dict(getattr(result, "sizes", {}) or {}, **(sizes or {}))
    steps = getattr(result, "steps", None)
    names = [p for p in (populations or list(spikes)) if p in spikes]
    if not names:
        raise DataError("no recorded spikes to plot: run with --record POP,... (recorded: "
                        f"{sorted(spikes)})")
    fig, ax = plt.subplots(figsize=(9, max(3.6, 2.0 + 0.8 * len(names))))
    ticks, labels, total = [], [], 0
    for band, (name, col) in enumerate(zip(names, _colors(len(names)))):
        rows = np.asarray(spikes[name]).reshape(-1, 3)
        rows = rows[rows[:, 0] == sample]
        if max_steps is not None:
            rows = rows[rows[:, 1] <= max_steps]
        n = int(sizes.get(name, rows[:, 2].max() + 1 if len(rows) else 1))
        # every layer gets a band of equal height: neuron i of n sits at band + i / n, so a
        # 10-neuron read-out is as visible as a 20,000-neuron convolution
        ax.scatter(rows[:, 1], band + (rows[:, 2] + 0.5) / max(n, 1), s=2, marker="|",
                   color=col, linewidths=0.6, rasterized=True)
        ticks.append(band + 0.5)
        labels.append(f"{name}\n{n:,} neurons\n{len(rows):,} spikes")
        if band:
            ax.axhline(band, color="0.6", lw=0.8)
        total += len(rows)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    for t, col in zip(ax.get_yticklabels(), _colors(len(names))):
        t.set_color(col)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron index in its layer\n(0 at the bottom of each band)")
    ax.set_ylim(0, len(names))
    if steps:
        ax.set_xlim(0, (max_steps or steps) + 1)
    return _finish(fig, ax, title or f"spike raster, sample {sample} ({total} spikes)", path)


# ---------------------------------------------------------------------------------------------
# accuracy

def accuracy_vs_steps(curves: dict, float_accuracy: float | None = None,
                      title: str | None = None, path=None):
    """``curves``: ``{label: accuracy per step (T,)}``; steps start at 1."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, acc), col in zip(curves.items(), _colors(len(curves))):
        acc = np.asarray(acc, float)
        ax.plot(np.arange(1, len(acc) + 1), 100 * acc, color=col, lw=1.6, label=label)
    _float_line(ax, float_accuracy)
    ax.set_xlabel("time step T")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _finish(fig, ax, title or "accuracy vs simulation time", path)


def accuracy_vs_bits(series: dict, float_accuracy: float | None = None, step: int | None = None,
                     title: str | None = None, path=None):
    """``series``: ``{method: (bits list, accuracy list)}``."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    allbits = set()
    for (label, (bits, acc)), col in zip(series.items(), _colors(len(series))):
        o = np.argsort(bits)
        b, a = np.asarray(bits)[o], 100 * np.asarray(acc, float)[o]
        allbits |= set(b.tolist())
        ax.plot(b, a, "o-", color=col, label=label)
    _float_line(ax, float_accuracy)
    ax.set_xticks(sorted(allbits))
    ax.set_xlabel("weight bits (signed)")
    ax.set_ylabel("accuracy (%)" + (f" at T = {step}" if step else ""))
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _finish(fig, ax, title or "accuracy vs weight precision", path)


def energy_vs_accuracy(series: dict, ann_energy: dict | None = None, title: str | None = None,
                       path=None):
    """``series``: ``{method: (energy per sample J list, accuracy list, labels list)}``;
    ``ann_energy``: ``{label: joules}`` printed as a note (usually far below the SNN's)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (label, (e, acc, lab)), col in zip(series.items(), _colors(len(series))):
        e, a = 1e6 * np.asarray(e, float), 100 * np.asarray(acc, float)
        ax.plot(e, a, "o-", color=col, label=label, alpha=0.85)
        for xi, yi, t in zip(e, a, lab):
            ax.annotate(str(t), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7,
                        color=col)
    if ann_energy:  # orders of magnitude below: a note, not an axis that squashes the points
        note = "\n".join(f"{k}: {1e6 * v:.3g} µJ/sample" for k, v in ann_energy.items())
        ax.text(0.02, 0.97, note, transform=ax.transAxes, va="top", fontsize=8,
                bbox=dict(boxstyle="round", fc="white", ec="0.7"))
    ax.set_xlabel("energy per sample (µJ)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", fontsize=8)
    return _finish(fig, ax, title or "energy vs accuracy (labels: weight bits)", path)


# ---------------------------------------------------------------------------------------------
# rates and cores

def firing_rates(rates: dict, title: str | None = None, path=None):
    """``rates``: ``{layer: per-neuron rates (spikes/neuron/step) array or a scalar mean}``;
    bars are the layer means, whiskers the 5–95 % range over neurons."""
    names = list(rates)
    if not names:
        raise DataError("no firing rates to plot")
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names) + 2), 4.5))
    means, lo, hi = [], [], []
    for n in names:
        r = np.atleast_1d(np.asarray(rates[n], float))
        m = float(r.mean())
        means.append(m)
        lo.append(m - float(np.percentile(r, 5)))
        hi.append(float(np.percentile(r, 95)) - m)
    x = np.arange(len(names))
    ax.bar(x, means, color=_colors(len(names)), yerr=[lo, hi], capsize=4, alpha=0.85)
    for xi, m in zip(x, means):
        ax.annotate(f"{m:.3f}", (xi, m), textcoords="offset points", xytext=(0, 3),
                    ha="center", fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_xlabel("layer (population)")
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    ax.grid(alpha=0.3, axis="y")
    return _finish(fig, ax, title or "per-layer firing rates (mean, whiskers 5–95 % of neurons)",
                   path)


def core_utilisation(usage: dict, limits: dict, populations=None, title: str | None = None,
                     path=None):
    """``usage``: ``{limit: used per core}``, ``limits``: ``{limit: max or None}``; grouped bars
    of used/max (%) per core, the 100 % line dashed.  Unlimited quantities are skipped."""
    names = [k for k in usage if limits.get(k)]
    if not names:
        raise DataError("no limited resources to plot")
    n_cores = len(next(iter(usage.values())))
    if n_cores > 24:
        return _core_heatmap(usage, limits, names, populations, title, path)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * n_cores * len(names) / 3 + 4), 4.5))
    width = 0.8 / len(names)
    x = np.arange(n_cores)
    for i, (k, col) in enumerate(zip(names, _colors(len(names)))):
        pct = 100 * np.asarray(usage[k], float) / float(limits[k])
        ax.bar(x + (i - (len(names) - 1) / 2) * width, pct, width, color=col,
               label=f"{k} (max {limits[k]:,})")
    ax.axhline(100, color="r", ls="--", lw=1, label="limit")
    ax.set_xticks(x)
    if populations is not None and len(populations) == n_cores:
        ax.set_xticklabels([f"{c}\n{p}" for c, p in zip(x, populations)], fontsize=7)
    ax.set_xlabel("core (population)")
    ax.set_ylabel("utilisation (% of the chip's per-core limit)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.16), ncol=3, frameon=False)
    return _finish(fig, ax, title or "core utilisation per limit", path)


def _core_heatmap(usage, limits, names, populations, title, path):
    """Many cores: one row per limit, one column per core, colour = % of the limit."""
    pct = np.array([100 * np.asarray(usage[k], float) / float(limits[k]) for k in names])
    n_cores = pct.shape[1]
    fig, ax = plt.subplots(figsize=(11, 2.2 + 0.45 * len(names)))
    vmax = max(100.0, float(pct.max()))
    im = ax.imshow(pct, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0,
                   vmax=vmax)
    if pct.max() > 100:
        over = np.argwhere(pct > 100)
        ax.scatter(over[:, 1], over[:, 0], marker="x", color="r", s=12, label="over the limit")
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.18), fontsize=8, frameon=False)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([f"{k} (max {limits[k]:,})" for k in names], fontsize=8)
    ax.set_xlabel("core index")
    if populations is not None and len(populations) == n_cores:
        pops = list(populations)
        starts = [i for i in range(n_cores) if i == 0 or pops[i] != pops[i - 1]]
        for i in starts[1:]:
            ax.axvline(i - 0.5, color="w", lw=0.8)
        sec = ax.secondary_xaxis("top")
        ends = starts[1:] + [n_cores]
        sec.set_xticks([(a + b - 1) / 2 for a, b in zip(starts, ends)])
        sec.set_xticklabels([pops[a] for a in starts], fontsize=7, rotation=30, ha="left")
    fig.colorbar(im, ax=ax, label="utilisation (% of per-core limit)", pad=0.01)
    return _finish(fig, ax, title or "core utilisation per limit", path)


# ---------------------------------------------------------------------------------------------
# convenience wrappers over Results and sweep dicts

def result_firing_rates(result, populations=None, title=None, path=None):
    """Per-neuron rates from a Result's spike counts (averaged over samples and steps)."""
    counts = result.spike_counts
    names = [p for p in (populations or list(counts)) if p in counts]
    denom = max(result.steps, 1)
    rates = {n: np.asarray(counts[n], float).mean(axis=0) / denom for n in names}
    return firing_rates(rates, title, path)


def result_accuracy(result, float_accuracy=None, label="SNN", title=None, path=None):
    if result.accuracy is None:
        raise DataError("the result has no accuracy (run without labels)")
    return accuracy_vs_steps({label: result.accuracy}, float_accuracy, title, path)


def _float_acc(sweep):
    vals = [p.get("float_accuracy") for p in sweep["points"].values()]
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    return vals[0] if vals else None


def _by_method(sweep):
    out = {}
    for p in sweep["points"].values():
        if p.get("status") == "failed":   # the converter refused this point (reason stored)
            continue
        out.setdefault(p["method"], []).append(p)
    return out


def sweep_accuracy_vs_steps(sweep, bits=None, title=None, path=None):
    """One curve per method at ``bits`` (default: the widest in the sweep)."""
    by = _by_method(sweep)
    if not by:
        raise DataError("the sweep has no finished points yet")
    if bits is None:
        bits = max(p["bits"] for ps in by.values() for p in ps)
    curves = {f"{m} ({bits}-bit)": p["accuracy"] for m, ps in by.items() for p in ps
              if p["bits"] == bits}
    if not curves:
        raise DataError(f"no sweep point has {bits} bits")
    return accuracy_vs_steps(curves, _float_acc(sweep), title or
                             f"accuracy vs simulation time ({bits}-bit weights)", path)


def sweep_accuracy_vs_bits(sweep, step=None, title=None, path=None):
    """Accuracy at ``step`` (default: the last) against weight bits, one line per method."""
    by = _by_method(sweep)
    if not by:
        raise DataError("the sweep has no finished points yet")
    T = len(next(iter(by.values()))[0]["accuracy"])
    step = T if step is None else int(step)
    series = {m: ([p["bits"] for p in ps], [p["accuracy"][step - 1] for p in ps])
              for m, ps in by.items()}
    return accuracy_vs_bits(series, _float_acc(sweep), step, title, path)


def sweep_energy_vs_accuracy(sweep, title=None, path=None):
    by = _by_method(sweep)
    if not by:
        raise DataError("the sweep has no finished points yet")
    series = {}
    for m, ps in by.items():
        ps = sorted(ps, key=lambda p: p["bits"])
        series[m] = ([p["energy_per_sample"] for p in ps], [p["accuracy"][-1] for p in ps],
                     [f"{p['bits']}b" for p in ps])
    ann = {}
    e = next(iter(sweep["points"].values())).get("energy", {})
    if e.get("ann_energy_fp32"):
        ann["ANN, FP32 MACs"] = e["ann_energy_fp32"]
    if e.get("ann_energy_int8"):
        ann["ANN, INT8 MACs"] = e["ann_energy_int8"]
    prof = sweep.get("config", {}).get("profile", "")
    return energy_vs_accuracy(series, ann, title or f"energy vs accuracy on {prof} "
                              f"(labels: weight bits)", path)
