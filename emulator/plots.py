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

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hw_models.errors import DataError  # noqa: E402
from hw_models.safeio import atomic_path  # noqa: E402

_DPI = 120


def _finish(fig, ax, title, path):
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        fmt = path.suffix[1:].lower() or "png"
        try:
            with atomic_path(path, what="figure") as tmp:  # safeio's output rules
                try:
                    fig.savefig(tmp, dpi=_DPI, format=fmt)
                except ValueError as exc:  # unknown format
                    raise DataError(f"{path}: cannot write a figure of format {fmt!r} "
                                    f"({exc})") from None
        finally:
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


def _display_order(n: int, shape) -> np.ndarray | None:
    """Row of each neuron in the raster: channel-major (c, y, x) for an (H, W, C) layer, so
    that a feature map is one contiguous stripe (the flat index is channels-last, where
    neighbours are different channels of one pixel); None keeps the flat order."""
    if shape is None or len(shape) != 3 or int(np.prod(shape)) != n or shape[2] == 1:
        return None
    h, w, c = (int(v) for v in shape)
    return np.arange(n).reshape(h, w, c).transpose(2, 0, 1).reshape(-1).argsort()


#: above this many neurons a raster band is drawn as a spike-density image (one pixel row per
#: group of neurons, one column per step) instead of one tick per spike, which at a band height
#: of ~100 pixels would merge into vertical bars
DENSITY_NEURONS = 400


def _raster_title(meta: dict, sample: int, total: int) -> str:
    """"tests_99.20 — ecc, 8-bit weights, loihi1 — sample 0 (1,234 spikes)"."""
    meta = meta or {}
    co = meta.get("convert_options") or {}
    net = co.get("model") or meta.get("network") or ""
    net = Path(str(net)).stem if net else "network"
    parts = [net]
    how = []
    if co.get("method"):
        how.append(str(co["method"]))
    wb = co.get("weight_bits")
    if wb is not None:
        how.append(f"{wb}-bit weights")
    elif co:
        how.append("float weights")
    if meta.get("profile") or co.get("profile"):
        how.append(str(meta.get("profile") or co.get("profile")))
    if how:
        parts.append(", ".join(how))
    parts.append(f"sample {sample} ({total:,} spikes)")
    return " — ".join(parts)


def spike_raster(result, sample: int = 0, populations=None, sizes: dict | None = None,
                 title: str | None = None, path=None, max_steps: int | None = None,
                 shapes: dict | None = None):
    """Spikes of one sample, layers stacked bottom (first) to top (last), one colour and one
    equal-height band per layer (neuron index scaled to its band).

    ``result`` is a Result with recorded populations or a dict ``{population: (E, 3) rows
    (sample, step, neuron)}`` (then ``sizes`` gives each population's neuron count).  Layers
    of (H, W, C) ``shapes`` (given, or in ``result.meta["shapes"]``) are drawn channel by
    channel; layers above :data:`DENSITY_NEURONS` neurons as a spike-density image.  The default
    title names the network, method, weight bits and profile from ``result.meta``.
    """
    spikes = getattr(result, "spikes", result)
    sizes = dict(getattr(result, "sizes", {}) or {}, **(sizes or {}))
    meta = getattr(result, "meta", None) or {}
    shapes = dict(meta.get("shapes") or {}, **(shapes or {}))
    steps = getattr(result, "steps", None)
    n_samples = getattr(result, "n_samples", None)
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 0 or \
            (n_samples is not None and sample >= n_samples):
        raise DataError(f"sample {sample!r} does not exist: the result holds "
                        f"{n_samples if n_samples is not None else 'fewer'} samples (0.."
                        f"{(n_samples or 1) - 1})")
    names = [p for p in (populations or list(spikes)) if p in spikes]
    if not names:
        raise DataError("no recorded spikes to plot: run with --record POP,... (recorded: "
                        f"{sorted(spikes)})")
    fig, ax = plt.subplots(figsize=(9, max(3.6, 2.0 + 0.8 * len(names))))
    ticks, labels, total = [], [], 0
    last = 1
    for name in names:
        rows = np.asarray(spikes[name]).reshape(-1, 3)
        if len(rows):
            last = max(last, int(rows[:, 1].max()))
    T = int(max_steps or steps or last)
    for band, (name, col) in enumerate(zip(names, _colors(len(names)))):
        rows = np.asarray(spikes[name]).reshape(-1, 3)
        rows = rows[rows[:, 0] == sample]
        if max_steps is not None:
            rows = rows[rows[:, 1] <= max_steps]
        n = int(sizes.get(name, rows[:, 2].max() + 1 if len(rows) else 1))
        order = _display_order(n, shapes.get(name))
        idx = rows[:, 2] if order is None else order[rows[:, 2]]
        # every layer gets a band of equal height: neuron i of n sits at band + i / n, so a
        # 10-neuron read-out is as visible as a 20,000-neuron convolution
        if n > DENSITY_NEURONS:
            nb = 128
            img = np.zeros((nb, T), np.float64)
            np.add.at(img, (np.minimum(idx * nb // n, nb - 1), np.clip(rows[:, 1] - 1, 0,
                                                                        T - 1)), 1.0)
            img /= n / nb                                   # spikes per neuron per step
            top = float(img.max()) if img.max() > 0 else 1.0
            from matplotlib.colors import LinearSegmentedColormap, PowerNorm
            cmap = LinearSegmentedColormap.from_list(f"r{band}", ["white", col])
            # square-root scale: faint, widespread activity stays visible next to the few
            # bins of saturated neurons
            ax.imshow(img, aspect="auto", origin="lower", cmap=cmap,
                      norm=PowerNorm(0.5, vmin=0, vmax=top),
                      extent=(0.5, T + 0.5, band, band + 1), interpolation="nearest",
                      rasterized=True)
            how = "density"
        else:
            ax.scatter(rows[:, 1], band + (idx + 0.5) / max(n, 1), s=2, marker="|",
                       color=col, linewidths=0.6, rasterized=True)
            how = ""
        shp = shapes.get(name)
        what = ("x".join(str(v) for v in shp) if shp is not None and len(shp) == 3
                else f"{n:,} neurons")
        labels.append(f"{name}\n{what}" + (f" ({n:,})" if what != f"{n:,} neurons" else "")
                      + f"\n{len(rows):,} spikes" + (f", {how}" if how else ""))
        ticks.append(band + 0.5)
        if band:
            ax.axhline(band, color="0.6", lw=0.8)
        total += len(rows)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=8)
    for t, col in zip(ax.get_yticklabels(), _colors(len(names))):
        t.set_color(col)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron in its layer (maps: channel by channel)\n"
                  "large layers: spikes per neuron per step, darker = more")
    ax.set_ylim(0, len(names))
    ax.set_xlim(0.5, T + 0.5)
    return _finish(fig, ax, title or _raster_title(meta, sample, total), path)


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
    vals = [100 * np.asarray(a, float) for _, a in series.values()]
    if float_accuracy is not None and np.isfinite(float_accuracy):
        vals.append(np.asarray([100 * float_accuracy]))
    ax.set_ylim(*_fitted_range(np.concatenate([np.ravel(v) for v in vals])))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return _finish(fig, ax, title or "accuracy vs weight precision", path)


def _fitted_range(values, lo: float = 0.0, hi: float = 100.0) -> tuple:
    """An axis range around the finite ``values`` with a 10 % margin (at least 0.5 units),
    kept inside [lo, hi], so that a 98.6–99.2 % sweep is not a flat line at the top of 0–100."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return lo, hi
    a, b = float(v.min()), float(v.max())
    pad = max(0.1 * (b - a), 0.5)
    # a little past the bounds, so that a line at exactly 0 or 100 % stays visible
    return max(lo - 0.5, a - pad), min(hi + 0.5, b + pad)


def _place_labels(ax, xs, ys, texts, colors, fontsize=7, avoid=()):
    """Annotate each point with its text at the first of several offsets where the label
    overlaps no label placed before it, no marker and none of the artists ``avoid`` (legend,
    notes) — greedy, in display pixels."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    pts = ax.transData.transform(np.c_[xs, ys]) if len(xs) else np.zeros((0, 2))
    placed = [a.get_window_extent(renderer) for a in avoid if a is not None]
    frame = ax.get_window_extent(renderer)
    # points of one series that coincide on screen share one label ("5/6/7/8b")
    groups = []
    for i in range(len(xs)):
        for g in groups:
            j = g[0]
            if colors[j] == colors[i] and np.hypot(*(pts[i] - pts[j])) < 4:
                g.append(i)
                break
        else:
            groups.append([i])
    if any(len(g) > 1 for g in groups):
        def merged(ts):
            ts = [str(t) for t in ts]
            if all(t.endswith("b") for t in ts):
                return "/".join(t[:-1] for t in ts) + "b"
            return "/".join(ts)
        xs, ys = [xs[g[0]] for g in groups], [ys[g[0]] for g in groups]
        texts = [merged([texts[i] for i in g]) for g in groups]
        colors = [colors[g[0]] for g in groups]
    cands = [(5, 4), (5, -11), (-5, 4), (-5, -11), (0, 9), (0, -15), (10, 12), (10, -19),
             (-10, 12), (-10, -19), (16, 0), (-16, 0), (0, 20), (0, -25), (22, 18), (-22, 18)]
    for (x, y, t, c) in zip(xs, ys, texts, colors):
        best = None
        for dx, dy in cands:
            ann = ax.annotate(str(t), (x, y), textcoords="offset points", xytext=(dx, dy),
                              fontsize=fontsize, color=c,
                              ha="left" if dx >= 0 else "right")
            bb = ann.get_window_extent(renderer).expanded(1.05, 1.1)
            inside = (frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0
                      and bb.y1 <= frame.y1)
            hits = not inside or any(bb.overlaps(o) for o in placed) or any(
                bb.contains(px, py) for px, py in pts)
            if not hits:
                best = ann
                break
            ann.remove()
        if best is None:      # every candidate collides: keep the first, with a leader line
            best = ax.annotate(str(t), (x, y), textcoords="offset points", xytext=cands[0],
                               fontsize=fontsize, color=c,
                               arrowprops={"arrowstyle": "-", "color": c, "lw": 0.5})
        placed.append(best.get_window_extent(renderer))


def energy_vs_accuracy(series: dict, ann_energy: dict | None = None, title: str | None = None,
                       path=None):
    """``series``: ``{method: (energy per sample J list, accuracy list, labels list)}``;
    ``ann_energy``: ``{label: joules}`` printed as a note (usually far below the SNN's)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    allx, ally, allt, allc = [], [], [], []
    for (label, (e, acc, lab)), col in zip(series.items(), _colors(len(series))):
        e, a = 1e6 * np.asarray(e, float), 100 * np.asarray(acc, float)
        ax.plot(e, a, "o-", color=col, label=label, alpha=0.85)
        allx += list(e)
        ally += list(a)
        allt += list(lab)
        allc += [col] * len(e)
    box = None
    if ann_energy:  # orders of magnitude below: a note, not an axis that squashes the points
        note = "\n".join(f"{k}: {1e6 * v:.3g} µJ/sample" for k, v in ann_energy.items())
        box = ax.text(0.02, 0.97, note, transform=ax.transAxes, va="top", fontsize=8,
                      bbox=dict(boxstyle="round", fc="white", ec="0.7"))
    ax.set_xlabel("energy per sample (µJ)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(*_fitted_range(ally))
    ax.grid(alpha=0.3)
    leg = ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _place_labels(ax, allx, ally, allt, allc, avoid=(leg, box))
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
    sums = result.spike_sum  # per neuron, summed over samples (kept for every run)
    names = [p for p in (populations or list(sums)) if p in sums]
    denom = max(result.steps, 1) * max(result.n_samples, 1)
    rates = {n: np.asarray(sums[n], float) / denom for n in names}
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


# ---------------------------------------------------------------------------------------------
# energy by event class

#: (field of hw_models.energy.EnergyReport, label), in stacking order
ENERGY_CLASSES = (("synaptic", "synaptic events"), ("neuron_active", "neuron updates, active"),
                  ("neuron_inactive", "neuron updates, inactive"), ("spikes", "spikes"),
                  ("messages", "messages"), ("hops", "mesh hops"), ("static", "static"))
_CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#ffbb78", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f")


def _energy_unit(joules: float) -> tuple:
    for f, u in ((1e-3, "mJ"), (1e-6, "µJ"), (1e-9, "nJ")):
        if joules >= f:
            return f, u
    return 1e-12, "pJ"


def energy_breakdown(bars: dict, title: str | None = None, path=None, note: str | None = None):
    """Energy per sample split by event class, one horizontal stacked bar per entry.

    ``bars``: ``{label: {class: joules per sample}}`` with the classes of
    :data:`ENERGY_CLASSES` (missing ones count 0).  Each segment of at least 4 % of its bar is
    labelled with its share; the total is written at the end of the bar.
    """
    if not bars:
        raise DataError("no energy to plot")
    labels = list(bars)
    vals = np.array([[float(bars[k].get(c, 0.0) or 0.0) for c, _ in ENERGY_CLASSES]
                     for k in labels])
    if not np.all(np.isfinite(vals)) or vals.min() < 0:
        raise DataError("energies must be finite and >= 0")
    totals = vals.sum(axis=1)
    f, unit = _energy_unit(float(totals.max()) if totals.max() > 0 else 1e-12)
    fig, ax = plt.subplots(figsize=(10, max(2.8, 1.5 + 0.5 * len(labels))))
    y = np.arange(len(labels))[::-1]
    left = np.zeros(len(labels))
    for j, ((c, name), col) in enumerate(zip(ENERGY_CLASSES, _CLASS_COLORS)):
        w = vals[:, j] / f
        if len(labels) == 1:        # one bar: the legend carries every class's value and share
            share = 100 * vals[0, j] / totals[0] if totals[0] > 0 else 0.0
            name = f"{name}: {w[0]:.3g} {unit} ({share:.1f} %)"
        ax.barh(y, w, left=left, color=col, label=name, height=0.6, edgecolor="white", lw=0.5)
        for yi, li, wi, tot in zip(y, left, w, totals / f):
            if tot > 0 and wi / tot >= 0.04:
                ax.text(li + wi / 2, yi, f"{100 * wi / tot:.0f}%", ha="center", va="center",
                        fontsize=7, color="white" if j in (0, 3, 4, 5, 6) else "black")
        left += w
    for yi, tot in zip(y, totals / f):
        ax.text(tot, yi, f"  {tot:.3g} {unit}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1.18 * max(float(totals.max()) / f, 1e-30))
    ax.set_xlabel(f"energy per sample ({unit})")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    if note:
        ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                color="0.3")
    if title is None:
        syn = vals[:, 0].sum() / max(totals.sum(), 1e-300)
        title = f"energy per sample by event class: {100 * (1 - syn):.0f} % is not synaptic work"
    return _finish(fig, ax, title, path)


def _per_sample(report: dict) -> dict:
    n = max(int(report.get("samples") or 1), 1)
    out = {c: float(report.get(c) or 0.0) / n for c, _ in ENERGY_CLASSES}
    total = report.get("total")
    if total is not None and abs(sum(out.values()) * n - float(total)) > 1e-9 * abs(total):
        raise DataError(f"the energy classes {[c for c, _ in ENERGY_CLASSES]} add up to "
                        f"{sum(out.values()) * n:.6g} J, not the report's total {total:.6g} J: "
                        f"the breakdown would leave energy out")
    return out


def result_energy_breakdown(result, title=None, path=None):
    """:func:`energy_breakdown` of a run from its saved report (``meta["report"]["energy"]``,
    written by ``neuroemu run -o``) or an :class:`~hw_models.energy.EnergyReport` dict."""
    meta = getattr(result, "meta", None)
    rep = ((meta or {}).get("report") or {}).get("energy") if meta is not None else result
    if not rep:
        raise DataError("the result holds no energy report (save it with `neuroemu run -o`)")
    prof = rep.get("profile", "")
    note = None if rep.get("energy_published", True) else \
        f"per-event energies of {prof} are NOT published: assumed values"
    label = prof or "run"
    if meta:
        co = meta.get("convert_options") or {}
        if co.get("method"):
            label = f"{co['method']}, {co.get('weight_bits', 'float')}-bit on {prof}"
    return energy_breakdown({label: _per_sample(rep)}, title, path, note)


def sweep_energy_breakdown(sweep, title=None, path=None):
    """:func:`energy_breakdown` of every finished sweep point (one bar per method and bits)."""
    bars = {}
    for m, ps in _by_method(sweep).items():
        for p in sorted(ps, key=lambda p: p["bits"]):
            e = p.get("energy") or {}
            if e:
                bars[f"{m}, {p['bits']}-bit"] = _per_sample(e)
    if not bars:
        raise DataError("the sweep has no finished points with energy")
    prof = sweep.get("config", {}).get("profile", "")
    return energy_breakdown(bars, title or f"energy per sample on {prof} by event class",
                            path)
