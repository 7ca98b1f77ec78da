"""Does VGG-16 or ResNet-18 fit on Loihi 1, Loihi 2 or TrueNorth?  A hardware feasibility study.

Shows how `converter.feasibility` answers "how many cores and chips does this CNN need, and
what stops it from running natively?" without any data: both networks are built with random
weights through `converter.builder.GraphBuilder` (resource use depends on the architecture,
not on the weight values), converted with weights-only scales, tiled onto cores under each
chip's limits (neurons, input axons, output axons, synaptic memory, thresholds per core),
placed on the chip mesh, and counted analytically — a VGG-16 at 224 × 224 has ≈ 15 billion
explicit synapses and is reported in seconds.

Prints one summary table (cores, chips, synaptic memory, violations, missing features, time per
report) and writes a core-utilisation figure to ``--out``: for every model × chip, the
distribution over cores of each limit's use as a fraction of its maximum.

    python examples/feasibility_study.py                 # 224 × 224 (ImageNet size)
    python examples/feasibility_study.py --small         # 64 × 64, a few seconds (tests)
    python examples/feasibility_study.py --report vgg16 loihi1   # the full report of one pair
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from converter.builder import GraphBuilder  # noqa: E402
from converter.feasibility import feasibility  # noqa: E402
from hw_models.resources import LIMIT_NAMES  # noqa: E402

PROFILES = ("loihi1", "loihi2", "truenorth")


def _w(rng, *shape):
    """He-initialised random weights (the values do not change resource counts)."""
    fan_in = int(np.prod(shape[:-1]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def vgg16_graph(size: int = 224, classes: int = 1000, seed: int = 0):
    """VGG-16 (configuration D, Simonyan & Zisserman 2015) for size × size × 3 input."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((size, size, 3), name="vgg16")
    x, c = b.input(), 3
    for block, (n, width) in enumerate([(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], 1):
        for i in range(1, n + 1):
            x = b.conv2d(x, _w(rng, 3, 3, c, width), np.zeros(width), padding="same",
                         name=f"conv{block}_{i}")
            x = b.relu(x, name=f"conv{block}_{i}_relu")
            c = width
        x = b.maxpool(x, 2, name=f"pool{block}")
    x = b.flatten(x, name="flatten")
    n_in = int(np.prod(b.shape(x)))
    hidden = 4096 if size >= 128 else 512
    for i, n_out in enumerate([hidden, hidden], 1):
        x = b.relu(b.dense(x, _w(rng, n_in, n_out), np.zeros(n_out), name=f"fc{i}"),
                   name=f"fc{i}_relu")
        n_in = n_out
    x = b.dense(x, _w(rng, n_in, classes), np.zeros(classes), name="logits")
    return b.build(output=x, input_scale=1 / 255)


def resnet18_graph(size: int = 224, classes: int = 1000, seed: int = 0):
    """ResNet-18 (He et al. 2016) for size × size × 3 input, BatchNorm after every conv."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((size, size, 3), name="resnet18")

    def conv_bn(x, cin, cout, k, stride, name):
        x = b.conv2d(x, _w(rng, k, k, cin, cout), None, strides=stride,
                     padding=(k // 2, k // 2), name=name)
        return b.batchnorm(x, gamma=rng.uniform(0.5, 1.5, cout), beta=rng.normal(0, .1, cout),
                           mean=rng.normal(0, .1, cout), var=rng.uniform(0.5, 1.5, cout),
                           epsilon=1e-5, name=name + "_bn")

    x = b.relu(conv_bn(b.input(), 3, 64, 7, 2, "conv1"), name="conv1_relu")
    x = b.maxpool(x, 3, strides=2, padding=(1, 1), name="pool1")
    c = 64
    for stage, width in enumerate([64, 128, 256, 512], 1):
        for blk in (1, 2):
            stride = 2 if (stage > 1 and blk == 1) else 1
            name = f"layer{stage}_{blk}"
            y = b.relu(conv_bn(x, c, width, 3, stride, name + "_conv1"), name=name + "_relu1")
            y = conv_bn(y, width, width, 3, 1, name + "_conv2")
            sc = x if (stride == 1 and c == width) else conv_bn(x, c, width, 1, stride,
                                                                 name + "_down")
            x = b.relu(b.add(y, sc, name=name + "_add"), name=name + "_out")
            c = width
    x = b.global_avgpool(x, name="gap")
    x = b.dense(x, _w(rng, c, classes), np.zeros(classes), name="logits")
    return b.build(output=x, input_scale=1 / 255)


MODELS = {"vgg16": vgg16_graph, "resnet18": resnet18_graph}


def study(size: int, profiles=PROFILES, models=tuple(MODELS), log=print):
    """Feasibility reports for every model × profile: {(model, profile): report}."""
    out = {}
    for m in models:
        g = MODELS[m](size)
        for p in profiles:
            t0 = time.perf_counter()
            out[m, p] = feasibility(g, p)
            log(f"  {m} on {p}: {time.perf_counter() - t0:.1f} s")
    return out


def summary_table(reports) -> str:
    head = ["model", "chip", "cores", "chips", "syn. memory", "explicit synapses",
            "violations", "missing features", "verdict", "time"]
    rows = []
    for (m, p), r in reports.items():
        t = r.totals
        rows.append([m, p, f"{r.cores:,}", f"{r.chips:,}",
                     f"{t['memory_bits'] / 8 / 2**20:,.1f} MiB", f"{t['synapses']:,}",
                     str(len(r.violations)), ", ".join(f["feature"] for f in r.missing_features)
                     or "-", "fits" if r.fits else "does not fit", f"{r.seconds:.1f} s"])
    w = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells))  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows])


def utilisation_figure(reports, path):
    """Rows = models, columns = chips: for every per-core limit, the spread over the on-chip
    cores of use / maximum (box: quartiles, whiskers: min–max; above 1 = over the limit)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(m for m, _ in reports))
    chips = list(dict.fromkeys(p for _, p in reports))
    fig, axes = plt.subplots(len(models), len(chips), figsize=(3.6 * len(chips),
                                                                3.2 * len(models)),
                             sharey=True, squeeze=False)
    for (i, m), (j, p) in ((a, b) for a in enumerate(models) for b in enumerate(chips)):
        ax = axes[i][j]
        if (m, p) not in reports:
            ax.set_axis_off()
            continue
        rep = reports[m, p]
        res = rep.resources
        on = res.on_chip
        data, labels = [], []
        for n in LIMIT_NAMES:
            lim = res.limits[n]
            if lim is None:
                continue
            data.append(res.usage[n][on] / lim)
            labels.append(n.replace("_", "\n"))
        if data:
            ax.boxplot(data, whis=(0, 100), showfliers=False)
            ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
        else:
            ax.text(0.5, 0.5, "no per-core limits", ha="center", transform=ax.transAxes)
        ax.axhline(1.0, color="red", lw=0.8, ls="--", label="limit")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(f"{m} on {p}: {rep.cores:,} cores, {rep.chips:,} chip(s)", fontsize=8)
        if i == len(models) - 1:
            ax.set_xlabel("per-core limit")
        if j == 0:
            ax.set_ylabel("use / maximum over cores")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Core utilisation per limit")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="64 × 64 input instead of 224 × 224")
    ap.add_argument("--size", type=int, default=None, help="input size (overrides --small)")
    ap.add_argument("--out", default="feasibility_utilisation.png",
                    help="core-utilisation figure (PNG)")
    ap.add_argument("--json", default=None, help="also write every report as JSON here")
    ap.add_argument("--report", nargs=2, metavar=("MODEL", "PROFILE"),
                    help="print the full report of one model on one chip")
    args = ap.parse_args(argv)
    size = args.size or (64 if args.small else 224)
    if args.report:
        m, p = args.report
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {list(MODELS)}")
        print(feasibility(MODELS[m](size), p))
        return 0
    print(f"Feasibility of VGG-16 and ResNet-18 ({size}×{size}×3 input, random weights):")
    reports = study(size)
    print()
    print(summary_table(reports))
    for key, r in reports.items():
        for v in r.violations[:3]:
            print(f"  {key[0]}/{key[1]}: {v['message']}")
    fig = utilisation_figure(reports, args.out)
    print(f"\ncore-utilisation figure written to {fig}")
    if args.json:
        import json
        Path(args.json).write_text(json.dumps({f"{m}/{p}": r.to_dict()
                                               for (m, p), r in reports.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
