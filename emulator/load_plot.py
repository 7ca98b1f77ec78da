"""Per-core load over time: the figure of the latency model (:mod:`hw_models.latency`).

:func:`core_load` draws, from a run with ``timing=`` (``Result.work``):

* below, a heat map of every core's time per step (mean over samples; cores on y in layer
  order, layer boundaries and names on the right, time step on x), so bursts and the cores that
  carry them stand out;
* above, the mean step time (slowest core + mesh + barrier) against the mean over cores of
  the core time — the gap is the cost of unbalanced load — and the barrier.

Kept apart from :mod:`emulator.plots` (same conventions: Agg backend, PNG at 120 dpi, returns
the figure, closed after saving).
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import DataError

from .plots import _DPI, plt


def core_load(result, core_layers=None, title: str | None = None, path=None):
    """Heat map of per-core time per step and the step time above it (see module docstring).

    ``core_layers``: the layer of every core (e.g. from ``CoreNetwork.core_assignment()``); cores
    with no layer (an off-chip host core) are left out."""
    work = getattr(result, "work", None)
    if work is None:
        raise DataError("core_load needs a result run with timing= (Result.work is None)")
    n = max(int(result.n_samples), 1)
    ct = np.asarray(work["core_step_time_ps"], np.float64) / n * 1e-3  # ns, mean over samples
    if "step_time_sum_ps" in work:   # mean over samples from the exact sums
        step = np.asarray(work["step_time_sum_ps"], np.float64) / n * 1e-3
    else:
        step = np.asarray(work["step_time_ps"], np.float64).mean(axis=1) * 1e-3
    T, C = ct.shape
    keep = np.arange(C)
    if core_layers is not None:
        keep = np.array([c for c in range(C) if c < len(core_layers) and core_layers[c]], int)
    ct = ct[:, keep]
    fig = plt.figure(figsize=(10, 7))
    gs = fig.add_gridspec(2, 2, height_ratios=[1, 3], width_ratios=[40, 1], hspace=0.12,
                          wspace=0.03, left=0.08, right=0.9, top=0.9, bottom=0.08)
    ax0 = fig.add_subplot(gs[0, 0])
    ax1 = fig.add_subplot(gs[1, 0], sharex=ax0)
    cax = fig.add_subplot(gs[1, 1])
    t = np.arange(1, T + 1)
    ax0.plot(t, step / 1e3, color="C3", lw=1.5, label="step time (slowest core + mesh + barrier)")
    ax0.plot(t, ct.mean(axis=1) / 1e3, color="C0", lw=1.2, label="mean core time")
    ax0.axhline(work.get("barrier_ps", 0) * 1e-6, color="k", ls=":", lw=1, label="barrier")
    ax0.set_ylabel("µs")
    plt.setp(ax0.get_xticklabels(), visible=False)
    ax0.legend(fontsize=7, loc="upper right")
    vmax = max(float(ct.max()), 1e-9)
    im = ax1.imshow(ct.T / 1e3, aspect="auto", origin="lower", interpolation="nearest",
                    extent=(0.5, T + 0.5, -0.5, len(keep) - 0.5), cmap="magma",
                    vmin=0, vmax=vmax / 1e3)
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("core time per step (µs, mean over samples)")
    if core_layers is not None and len(keep):
        names = [core_layers[c] for c in keep]
        start = 0
        for i in range(1, len(names) + 1):
            if i == len(names) or names[i] != names[start]:
                ax1.axhline(i - 0.5, color="w", lw=0.6)
                ax1.text(1, (start + i - 1) / 2, names[start], va="center", ha="left",
                         fontsize=7, color="w",
                         bbox=dict(facecolor="k", alpha=0.5, lw=0, pad=1))
                start = i
    crit = np.asarray(work["critical"])
    if crit.size and crit.sum():
        cc = int(np.argmax(crit))
        if cc in keep:
            y = int(np.flatnonzero(keep == cc)[0])
            ax1.plot([0.5], [y], marker=">", color="c", ms=7, clip_on=False)
            ax1.set_title(f"critical core {cc} (slowest in "
                          f"{100 * crit[cc] / crit.sum():.0f} % of steps)", fontsize=8)
    ax1.set_xlabel("time step")
    ax1.set_ylabel("core (layer order)")
    tm = work.get("timing", {})
    head = title or (f"Per-core load on {tm.get('profile', '?')} ({result.n_samples} samples; "
                     f"synaptic work at {tm.get('synaptic_charge', '?')})")
    fig.suptitle(head, fontsize=10)
    if path is not None:
        from pathlib import Path
        import os
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
        fig.savefig(tmp, dpi=_DPI)
        os.replace(tmp, path)
        plt.close(fig)
    return fig
