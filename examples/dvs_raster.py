"""Spike raster of one DVS128 Gesture clip through a small spiking conv network.

    python examples/dvs_raster.py                      # writes docs/images/dvs_gesture_raster.png
    python examples/dvs_raster.py --clip 3 --steps 200 --out /tmp/r.png

The clip (``../shared/data/dvs_gesture/<clip>.bs2``, 128x128, about 1.45 s) is downscaled by 4 to
32x32 (OFF/ON kept as two channels), every event binned into ``--steps`` steps over the whole
clip, and each event fed as one input spike (``encoding="events"``).

The network has **random weights** (seeded, He-normal, positive-mean biases none): ten labelled
clips — one per class and no held-out data — are not enough to train a gesture classifier, so
the figure shows the event path and the activity of every layer, not recognition.  Its weights
are normalised by the converter on count frames of the clip cut into slices, like a trained
network would be, so the firing rates are in the usual conversion regime.

    input 32x32x2 -> conv 8@5x5 s2 -> ReLU -> conv 16@3x3 s2 -> ReLU -> dense 10 (read-out)

The read-out is converted with ``readout="spikes"`` so that it spikes and has a raster too.
The figure is drawn here rather than with :func:`emulator.plots.spike_raster`: that function
stacks all layers on one neuron axis, where the 10 read-out neurons beside 2,048 input neurons
would be a sliver; one panel per layer, each with its own neuron axis, keeps every layer legible.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from converter.builder import GraphBuilder  # noqa: E402
from emulator.event_input import (bin_events, count_frames, downscale,  # noqa: E402
                                  load_dvs_gesture_clip)
from neuroemu import datasets  # noqa: E402

FACTOR = 4
SHAPE = (128 // FACTOR, 128 // FACTOR, 2)
SEED = 0
GESTURES = ("hand clap", "right hand wave", "left hand wave", "right arm clockwise",
            "right arm counter-clockwise", "left arm clockwise", "left arm counter-clockwise",
            "arm roll", "air drums", "air guitar")  # clip i appears to be class i (data README)
COLOURS = ("0.25", "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def random_graph(seed: int = SEED):
    """The random-weight float graph (see module docstring)."""
    rng = np.random.default_rng(seed)

    def he(*shape, fan_in):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)

    b = GraphBuilder(input_shape=SHAPE, name="dvs_random_cnn")
    x = b.input()
    x = b.relu(b.conv2d(x, he(5, 5, 2, 8, fan_in=50), np.zeros(8), strides=2, name="conv1"),
               name="conv1_relu")
    x = b.relu(b.conv2d(x, he(3, 3, 8, 16, fan_in=72), np.zeros(16), strides=2, name="conv2"),
               name="conv2_relu")
    x = b.flatten(x, name="flatten")
    n_in = b.shape(x)[0]
    x = b.dense(x, he(n_in, 10, fan_in=n_in), np.zeros(10), name="dense")
    return b.build(output=x)


def slice_frames(events: np.ndarray, n_slices: int) -> np.ndarray:
    """Count frames of ``n_slices`` equal time slices of one clip (calibration data)."""
    t0, t1 = int(events["t"].min()), int(events["t"].max()) + 1
    width = -(-(t1 - t0) // n_slices)
    return np.concatenate([count_frames(events, SHAPE, window_us=width, t0=t0 + k * width)
                           for k in range(n_slices)])


def plot_raster(spikes: dict, sizes: dict, steps: int, step_ms: float, title: str, caption: str,
                out: Path, sample: int = 0):
    """Stacked raster: one panel per population (input first), shared time axis.

    ``spikes[name]`` is an (E, 3) array of (sample, step, neuron) rows with steps 1..T.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(spikes)
    ratios = [max(1.4, np.log2(sizes[n]) - 4) for n in names]
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 8),
                             sharex=True, gridspec_kw={"height_ratios": ratios, "hspace": 0.12})
    axes = np.atleast_1d(axes)
    for k, (ax, name) in enumerate(zip(axes, names)):
        rows = np.asarray(spikes[name])
        rows = rows[rows[:, 0] == sample] if len(rows) else rows.reshape(0, 3)
        colour = COLOURS[k % len(COLOURS)]
        ms = 0.6 if len(rows) > 20000 else 1.5
        ax.plot((rows[:, 1] - 0.5) * step_ms, rows[:, 2], marker=".", ms=ms, ls="none",
                color=colour, alpha=0.6 if len(rows) > 20000 else 0.9, rasterized=True)
        rate = len(rows) / (sizes[name] * steps) if sizes[name] else 0.0
        ax.set_ylim(-0.5, sizes[name] - 0.5)
        ax.set_ylabel(f"{name}\nneuron", fontsize=9)
        ax.text(1.005, 0.5, f"{sizes[name]:,} neurons\n{len(rows):,} spikes\n"
                f"{rate:.3f} /neuron/step", transform=ax.transAxes, va="center", fontsize=8,
                color=colour if colour != "0.25" else "black")
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", color="0.9", lw=0.5)
    axes[-1].set_xlim(0, steps * step_ms)
    axes[-1].set_xlabel(f"time (ms)  —  {steps} steps of {step_ms:.2f} ms", fontsize=9)
    axes[0].set_title(title, fontsize=11)
    fig.text(0.01, 0.008, caption, fontsize=8, va="bottom")
    fig.subplots_adjust(left=0.09, right=0.86, top=0.95,
                        bottom=0.075 + 0.02 * (caption.count("\n") + 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=int, default=1, help="clip number 1..10")
    ap.add_argument("--steps", type=int, default=150, help="time steps over the whole clip")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images" /
                    "dvs_gesture_raster.png")
    args = ap.parse_args(argv)

    import emulator
    from converter.convert import convert

    path = datasets.data_path("dvs_gesture", f"{args.clip}.bs2")
    events, _ = load_dvs_gesture_clip(path)
    events = downscale(events, FACTOR)
    T = args.steps
    span_us = int(events["t"].max() - events["t"].min()) + 1
    step_ms = span_us / T / 1000.0

    calib = slice_frames(events, 20)
    c = float(np.percentile(calib[calib > 0], 99))
    graph = random_graph()
    net = convert(graph, calib / c, encoding="events", input_scale=1 / c, steps=T,
                  weight_bits=8, readout="spikes")
    batch = bin_events(events, SHAPE, T)
    names = [p.name for p in net.populations]
    res = emulator.run(net, batch, T, record=tuple(names))
    sizes = {p.name: p.size for p in net.populations}
    spikes = {n: res.spikes[n] for n in names}
    for n in names:
        print(f"{n:12s} {sizes[n]:6d} neurons  {len(spikes[n]):8d} spikes")
    out_pop = net.population(net.output)
    gesture = GESTURES[args.clip - 1] if 1 <= args.clip <= 10 else "?"
    title = (f"DVS128 Gesture clip {args.clip} (appears to be '{gesture}'), "
             f"{len(batch.steps):,} events, 128x128 downscaled to {SHAPE[0]}x{SHAPE[1]}")
    caption = (f"RANDOM WEIGHTS (seed {SEED}), not trained: activity only, no recognition.\n"
               f"Network {' -> '.join(names)}; one event = one input spike "
               f"(neuron = (y*{SHAPE[1]} + x)*2 + polarity, OFF=0/ON=1).\n"
               f"Converted with encoding='events', input_scale=1/c, steps=T, c={c:g} "
               f"(99th percentile of "
               f"non-zero counts in 20 slices of the clip), 8-bit weights, "
               f"readout='spikes'."
               + ("" if out_pop.spiking else f"\nThe read-out '{out_pop.name}' does not spike "
                  f"(it integrates v), so its panel is empty.")
               + f"\nCommand: python examples/dvs_raster.py --clip {args.clip} --steps {T}")
    plot_raster(spikes, sizes, T, step_ms, title, caption, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
