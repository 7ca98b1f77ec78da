"""Conversion fidelity: float accuracy vs SNN accuracy over T, method and weight bits.

    python benchmarks/fidelity.py [--quick] [--samples N] [--cifar-samples N]
                                  [--models tests_99.20,cifar10_81.45,...] [--grid full|reduced]
                                  [--methods robust,ecc,rmp,ecc-pc,ecc-p99.99,...]
                                  [--bits float,10,8,6,4] [--steps 256] [--threads 1]
                                  [--mnist-start 8000] [--out docs/fidelity.md [--append]]

For every model: the float accuracy of the graph on the evaluation images, then for each method
(robust, ECC, RMP 0.8) and weight precision (float = 2^23 resolution, 10, 8, 6, 4 bits) one
emulator run of ``--steps`` (256) steps, which gives the accuracy at every T
(``Result.accuracy[T-1]``); the table shows T = 16, 32, 64, 128, 256 (and the run length if
larger) and the synaptic operations per sample (MOps over the whole run) next to the ANN's MACs
per sample (counted from the graph), then the per-layer firing rates of the 8-bit rows.

Data: MNIST evaluation images from ``--mnist-start`` (default 8000..: the split on which keras_bn_maxpool and torch_cnn were
never trained), calibration on images 0..999; CIFAR-10: the shared 1,000-image subset,
evaluation on images 0..N−1, calibration on images 500..999.  Conversion uses the ``ideal``
profile (no chip limits, synchronous timing, analog input, v ≥ θ) so that the table isolates
conversion and weight-quantisation error.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import emulator  # noqa: E402
from converter.convert import convert  # noqa: E402
from converter.load import load_model  # noqa: E402
from converter.graph import apply_layer  # noqa: E402
from converter.passes import count_macs, prepare  # noqa: E402
from neuroemu import datasets  # noqa: E402

TS = (4, 8, 16, 32, 64, 128, 256)
#: benchmark label → (convert method, extra options); "ecc-pc" = ECC with per-channel max λ
METHODS = {"robust": ("robust", {}), "ecc": ("ecc", {}), "rmp": ("rmp", {"rmp_scale": 0.8}),
           "ecc-pc": ("ecc", {"per_channel": True}),
           # variants within ECC (Wu et al. 2022) used to probe the CIFAR-10 gap:
           "ecc-p99.99": ("ecc", {"percentile": 99.99}),  # robust λ (Rueckauer 2017) in ECC
           "ecc-p99.9": ("ecc", {"percentile": 99.9}),
           "ecc-pc-p99.99": ("ecc", {"per_channel": True, "percentile": 99.99}),
           "ecc-bias": ("ecc", {"tre": "bias"}),  # TRE as ρθ/T per step, T = run length
           "ecc-rho0": ("ecc", {"rho": 0.0}),  # TRE off (ablation)
           "ecc-hw": ("ecc", {"timing": "hardware"}),  # delay 1 per layer
           "robust-hw": ("robust", {"timing": "hardware"}),
           # max-pool as a running maximum (exact window maximum of the input counts)
           "robust-runmax": ("robust", {"maxpool": "runmax"}),
           "ecc-runmax": ("ecc", {"maxpool": "runmax"}),
           "ecc-pc-runmax": ("ecc", {"per_channel": True, "maxpool": "runmax"}),
           "max-runmax": ("max", {"maxpool": "runmax"}),
           "robust-circuit": ("robust", {"maxpool": "circuit"}),  # runmax from IF neurons
           # + SNN calibration (Li et al. 2021) for T = --calibrate-steps on 200 images
           "robust-runmax-cal": ("robust", {"maxpool": "runmax", "calibrate": "light"}),
           "robust-runmax-cal+": ("robust", {"maxpool": "runmax", "calibrate": "advanced"}),
           "ecc-runmax-cal": ("ecc", {"maxpool": "runmax", "calibrate": "light"}),
           "ecc-cal": ("ecc", {"calibrate": "light"}),
           "ecc-cal+": ("ecc", {"calibrate": "advanced"}),
           "robust-cal": ("robust", {"calibrate": "light"}),
           # advanced = layer-wise weight calibration + channel and neuron bias; "-nw": the
           # advanced pipeline without its weight calibration (to isolate what that adds)
           "robust-runmax-cal+nw": ("robust", {"maxpool": "runmax", "calibrate": "advanced",
                                               "cal_weights": False}),
           "ecc-cal+nw": ("ecc", {"calibrate": "advanced", "cal_weights": False}),
           # TRE as the per-step bias ρθ/T (T = the run length) + light calibration: the
           # MNIST (tests_99.20) T = 32 target's best option in the 2026-12-01 screen
           "ecc-bias-cal": ("ecc", {"tre": "bias", "calibrate": "light"}),
           "ecc-p99.99-bias": ("ecc", {"tre": "bias", "percentile": 99.99}),
           # QCFS models: θ = λ, v(0) = θ/2 come from the model; "robust" only names the
           # (unused) normalisation of non-QCFS layers
           "qcfs": ("robust", {})}
CAL_STEPS = [64]  # option --calibrate-steps
CAL_SAMPLES = 200
BITS = (None, 10, 8, 6, 4)
MODELS = {  # file, dataset, input_scale
    "tests_99.20": ("tests_99.20.json", "mnist", 1 / 255),
    "cifar10_81.45": ("cifar10_81.45.h5", "cifar", 1 / 255),
    "keras_bn_maxpool": ("keras_bn_maxpool.keras", "mnist", 1 / 255),
    "torch_cnn": ("torch_cnn.onnx", "mnist", 1 / 255),
    "mnist-8": ("mnist-8.onnx", "mnist", 1.0),
    # trained by examples/train_qcfs_cifar.py (QCFS, L = 4) on subset images 0..799: evaluate
    # with --cifar-start 800 --cifar-samples 200
    "qcfs_cifar": ("examples/qcfs_cifar.onnx", "cifar", 1 / 255),
}


def _model_path(fname: str):
    if fname.startswith("examples/"):
        return ROOT / fname
    return datasets.data_path("models", fname)


def float_ann(g):
    """The graph with every QCFS activation replaced by its clipped ReLU min(max(x, 0), λ)
    (the un-quantised "float ANN" of a QCFS network); None if it has none."""
    layers = [l.copy() for l in g]
    hit = False
    for l in layers:
        if l.kind == "relu" and l.params.get("levels") is not None:
            l.params = {k: v for k, v in l.params.items() if k != "levels"}
            hit = True
    return g.replace(layers) if hit else None


MNIST_START = [8000]  # first MNIST evaluation image (option --mnist-start)
MNIST_CAL = [1000]  # MNIST calibration images 0..N-1 (option --mnist-cal)
CIFAR_CAL = [500]  # CIFAR-10 calibration images 500..500+N-1 (option --cifar-cal)
CIFAR_START = [0]  # first CIFAR-10 evaluation image (option --cifar-start)


def _cifar_split(n: int) -> tuple:
    """(evaluation, calibration) index ranges of the shared 1,000-image CIFAR-10 subset:
    evaluation ``start..start+n-1``; calibration the first ``--cifar-cal`` images after 499
    when evaluation starts at 0 (the historical split), else from image 0 — so that with
    ``--cifar-start 500`` the two halves swap roles and the two runs together evaluate all
    1,000 images, each on a normalisation it never saw."""
    s, c = CIFAR_START[0], CIFAR_CAL[0]
    if s + n > 1000:
        raise SystemExit(f"CIFAR-10 evaluation images {s}..{s + n - 1} run past 1000")
    c0 = 500 if s == 0 else 0
    return range(s, s + n), range(c0, c0 + c)


def _data(kind: str, n: int):
    if kind == "mnist":
        x, y = datasets.load_mnist()
        s, c = MNIST_START[0], MNIST_CAL[0]
        if s + n > len(x):
            raise SystemExit(f"MNIST evaluation images {s}..{s + n - 1} run past {len(x)}")
        return x[:c], x[s:s + n], y[s:s + n]
    x, y = datasets.load_cifar10_subset()
    ev, cal = _cifar_split(n)
    return x[cal.start:cal.stop], x[ev.start:ev.stop], y[ev.start:ev.stop]


def _load(name: str, n: int):
    """The model ``name`` and its data: (graph, dataset kind, input scale, raw calibration
    images, the same in model units, n raw evaluation images, their labels), the images with a
    channel axis where the model's layout needs one."""
    fname, kind, scale = MODELS[name]
    g = load_model(_model_path(fname))
    cal_raw, xe, ye = _data(kind, n)
    if g.input_layout == "CHW" and xe.ndim == 3:
        cal_raw, xe = cal_raw[:, None], xe[:, None]
    elif g.input_layout == "HWC" and xe.ndim == 3:
        cal_raw, xe = cal_raw[..., None], xe[..., None]
    return g, kind, scale, cal_raw, cal_raw.astype(np.float64) * scale, xe, ye


def _convert(g, cal, cal_raw, scale, label, bits, steps=None, threads=1):
    """convert() for a benchmark label, then its SNN calibration if the label asks for one."""
    method, extra = METHODS[label]
    extra = dict(extra)
    mode = extra.pop("calibrate", None)
    weights = extra.pop("cal_weights", None)
    if extra.get("tre") == "bias":
        extra["steps"] = steps
    net = convert(g, cal, method=method, weight_bits=bits, profile="ideal", input_scale=scale,
                  map=False, **extra)
    if mode is not None:
        from neuroemu.calibrate import calibrate
        net = calibrate(net, g, cal_raw[:CAL_SAMPLES], scale, CAL_STEPS[0], mode,
                        threads=threads, weights=weights)
    return net


def _weight_cal_summary(net) -> list:
    """One phrase per population the SNN calibration's weight stage looked at: kept or
    rejected, weights changed, model error before → after (``net.meta["calibration"]``)."""
    out = []
    pops = ((net.meta or {}).get("calibration") or {}).get("populations") or {}
    for name, rep in pops.items():
        w = rep.get("weights")
        if not w:
            continue
        if "skipped" in w:
            out.append(f"{name} skipped ({w['skipped']})")
            continue
        out.append(f"{name} {'kept' if w['kept'] else 'rejected'} ({w['weights_changed']:,} of "
                   f"{w['weights']:,} weights changed, model MSE {w['model_mse_before']:.3g} → "
                   f"{w['model_mse_after']:.3g})")
    return out


def bench_model(name: str, n: int, grid: str, bar, methods=("robust", "ecc", "rmp"),
                bits_list=BITS, steps: int = 256, threads: int | None = 1) -> dict:
    g, kind, scale, cal_raw, cal, xe, ye = _load(name, n)
    float_acc = float((g.predict(xe.astype(np.float64) * scale).argmax(1) == ye).mean())
    fg = float_ann(g)
    ann_float = None if fg is None else float(
        (fg.predict(xe.astype(np.float64) * scale).argmax(1) == ye).mean())
    macs = count_macs(g)["total"]
    rows = []
    for label in methods:
        method, extra = METHODS[label]
        for bits in bits_list:
            if grid == "reduced" and label != "ecc" and bits not in (None, 8):
                continue
            bar.set_description(f"{name} {method} {bits or 'float'}")
            t0 = time.time()
            net = _convert(g, cal, cal_raw, scale, label, bits, steps, threads)
            res = emulator.run(net, xe, steps, labels=ye, threads=threads)
            syn = res.counters["synaptic_events"] / n
            rows.append({"method": label, "bits": bits,
                         "acc": {t: float(res.accuracy[t - 1]) for t in _ts(steps)},
                         "rates": res.firing_rates(),
                         "mops": syn / 1e6, "in_macs": res.counters["input_macs"] / n / 1e6,
                         "seconds": time.time() - t0,
                         "weight_cal": _weight_cal_summary(net)})
            bar.update(1)
    return {"name": name, "n": n, "float_acc": float_acc, "macs": macs, "rows": rows,
            "ann_float": ann_float, "cal": MNIST_CAL[0] if kind == "mnist" else CIFAR_CAL[0],
            "steps": steps, "start": MNIST_START[0] if kind == "mnist" else CIFAR_START[0]}


# ---- QCFS networks: synchronous schedule vs the layer-by-layer schedule ----------------------
def bench_qcfs(name: str, n: int, bits_list, steps: int, threads=1) -> dict:
    """A QCFS-trained network (Bu et al. 2022) against its quantised ANN (the graph itself)
    and its float ANN (the same weights with clipped ReLUs), with synaptic operations per run.

    Rows: ``sync`` — the paper's schedule (every layer processes step t in global step t,
    delay 0), run for ``steps`` steps, accuracy at T = L, 2L, …; ``sync, avg spiking`` — the
    same with the average pools as spiking average populations (the conversion before the
    pools were folded); ``layerwise`` — every layer integrates L steps, then fires L steps
    (:mod:`converter.layerwise`), read at global step D·L.  ``mismatch`` = hidden neurons whose
    spike count is not their QCFS level L·h/λ in the quantised ANN (all samples)."""
    import os
    load0 = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    fname, kind, scale = MODELS[name]
    g = load_model(_model_path(fname), input_scale=scale)
    _, xe, ye = _data(kind, n)
    pg = prepare(g)
    xi = pg.to_internal(xe.astype(np.float64) * scale)
    qnames = [l.name for l in pg if l.kind == "relu" and l.params.get("levels") is not None]
    levels = {int(pg.layer(q).params["levels"]) for q in qnames}
    if len(levels) != 1:
        raise SystemExit(f"{name}: not a QCFS network with one L ({sorted(levels)})")
    L = levels.pop()
    acts = {}
    for s in range(0, len(xi), 50):
        a = pg.forward(xi[s:s + 50], outputs=qnames + [pg.logits_name], internal=True)
        for k, v in a.items():
            acts.setdefault(k, []).append(v)
    acts = {k: np.concatenate(v) for k, v in acts.items()}
    want = {q: np.rint(acts[q] * (L / pg.layer(q).params["max_value"])).astype(np.int64)
            .reshape(n, -1) for q in qnames}
    q_acc = float((acts[pg.logits_name].argmax(1) == ye).mean())
    f_acc = float((float_ann(g).predict(xe.astype(np.float64) * scale).argmax(1) == ye).mean())
    rows = []

    def mism(res, net):
        bad = 0
        for q in qnames:
            pn = next(p.name for p in net.populations
                      if net.meta["lambda"].get(p.name, {}).get("layer") == q)
            bad += int((res.spike_counts[pn].astype(np.int64).reshape(n, -1) != want[q]).sum())
        return bad

    for bits in bits_list:
        for label, opts, T in (("sync", {}, steps), ("sync, avg spiking", {"avgpool": "spike"},
                                                      steps),
                               ("layerwise", {"timing": "layerwise", "steps": L}, None)):
            t0 = time.time()
            net = convert(g, None, method="robust", weight_bits=bits, profile="ideal",
                          input_scale=scale, map=False, **opts)
            run = T if T is not None else net.meta["layerwise"]["run_length"]
            if label == "sync":
                sync_net = net
            res = emulator.run(net, xe, run, labels=ye, threads=threads,
                               detail=("predictions", "spike_counts"))
            row = {"label": label, "bits": bits, "run": run,
                   "mops": res.counters["synaptic_events"] / n / 1e6,
                   "seconds": time.time() - t0}
            if T is None:
                row["acc"] = {L: float(res.accuracy[run - 1])}
                row["mismatch"] = mism(res, net)
                # the same integers as an ANN (the sync net holds them with the bias in place)
                ref = integer_ann(sync_net, pg.to_internal(xe), L)
                row["int_acc"] = float((ref["predictions"] == ye).mean())
                row["int_mismatch"] = int(sum(
                    (res.spike_counts[k].astype(np.int64).reshape(n, -1) != v).sum()
                    for k, v in ref.items() if k != "predictions"))
                row["int_pred_diff"] = int((np.asarray(res.predictions)[run - 1]
                                            != ref["predictions"]).sum())
            else:
                row["acc"] = {t: float(res.accuracy[t - 1]) for t in (L, 2 * L, 4 * L, 8 * L)
                              if t <= run}
                # synaptic events of a run of exactly L steps (the T = L column)
                short = emulator.run(net, xe, L, labels=ye, threads=threads,
                                     detail=("predictions", "spike_counts"))
                row["mops_L"] = short.counters["synaptic_events"] / n / 1e6
                row["mismatch"] = mism(short, net)
            rows.append(row)
    neurons = sum(w.shape[1] for w in want.values())
    import os
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return {"name": name, "n": n, "L": L, "q_acc": q_acc, "f_acc": f_acc, "rows": rows,
            "load": f"{load0} at the start, {load} at the end (1/5/15 min)",
            "start": CIFAR_START[0], "neurons": neurons, "steps": steps}


def integer_ann(net, x_raw: np.ndarray, T: int) -> dict:
    """The ANN of a synchronously converted QCFS network's own integers, layer by layer (no
    spikes): a layer reading the analog input fires ``clip(⌊(v0 + T·Z)/θ⌋, 0, T)`` with the
    constant current Z = Σ w·2^e·x + b, every later layer ``clip(⌊(v0 + Σ w·2^e·n + T·b)/θ⌋,
    0, T)``, the read-out integrates ``Σ w·2^e·n + T·b``.  This is what the layer-by-layer
    schedule computes with spikes, so it is the reference for its exactness at any weight
    precision.  Returns {population: counts (N, n)} and "predictions" (N,)."""
    from converter.graph import conv2d
    n = len(x_raw)
    val = {"input": x_raw.astype(np.float64)}
    out = {}
    for p in net.populations:
        if p.is_input:
            continue
        z = np.zeros((n,) + tuple(p.shape))
        analog = False
        for pr in net.projections:
            if pr.target != p.name:
                continue
            w = np.asarray(pr.weights, np.float64) * 2.0 ** pr.exponent
            src = val[pr.source]
            analog |= pr.source == "input"
            if pr.kind == "conv":
                z += conv2d(src, w, None, tuple(pr.stride), tuple(pr.padding),
                            tuple(pr.dilation), int(pr.groups))
            elif pr.kind == "dense":
                z += (src.reshape(n, -1) @ w).reshape(z.shape)
            else:
                raise SystemExit(f"integer_ann: projection kind {pr.kind} not handled")
        b = p.bias_array().reshape(p.shape).astype(np.float64)
        if not p.spiking:
            v = z + T * b
            out["predictions"] = v.reshape(n, -1).argmax(1)
            continue
        tot = T * (z + b) if analog else z + T * b
        c = np.clip(np.floor((p.v_init + tot) / p.threshold), 0, T)
        val[p.name] = c
        out[p.name] = c.reshape(n, -1).astype(np.int64)
    return out


def render_qcfs(r: dict) -> str:
    L, n = r["L"], r["n"]
    ts = sorted({t for row in r["rows"] for t in row["acc"]})
    out = [f"## {r['name']}: QCFS (L = {L}) — quantised ANN {100 * r['q_acc']:.2f} %, float ANN "
           f"{100 * r['f_acc']:.2f} %", "",
           f"CIFAR-10 shared subset images {r['start']}..{r['start'] + n - 1} ({n} images, held "
           f"out from training), no calibration (λ and L come from the model), profile `ideal`."
           f" *sync*: the schedule of Bu et al. (every layer processes step t in global step t); "
           f"T = number of steps. *layerwise*: every layer integrates L steps, then fires L "
           f"steps (`timing=\"layerwise\"`), so T = L steps per layer and the prediction is "
           f"read at global step D·L (column *run*). *mismatch*: hidden neurons × samples "
           f"(of {r['neurons'] * n:,}) whose spike count at T = L differs from the QCFS level "
           f"of the quantised ANN. MOps = synaptic events per sample: at T = L "
           f"(*MOps@L*) and over the whole run.", "",
           "| schedule | weight bits | run | " + " | ".join(f"T={t}" for t in ts)
           + " | mismatch@L | MOps@L | MOps/run | s |",
           "|---|---|---|" + "---|" * len(ts) + "---|---|---|---|"]
    ints = []
    for row in r["rows"]:
        acc = " | ".join(f"{100 * row['acc'][t]:.2f}" if t in row["acc"] else "" for t in ts)
        mL = row.get("mops_L", row["mops"])
        out.append(f"| {row['label']} | {_fmt_bits(row['bits'])} | {row['run']} | {acc} | "
                   f"{row['mismatch']:,} | {mL:.2f} | {row['mops']:.2f} | "
                   f"{row['seconds']:.0f} |")
        if "int_acc" in row:
            wb = _fmt_bits(row["bits"]) + ("" if row["bits"] is None else "-bit")
            ints.append(f"* {wb} weights: the network's own integers as an ANN "
                        f"(`integer_ann`: ⌊(v0 + input)/θ⌋ clipped to 0..L per layer) score "
                        f"{100 * row['int_acc']:.2f} %; the layerwise SNN differs from it in "
                        f"{row['int_mismatch']:,} hidden spike counts and "
                        f"{row['int_pred_diff']} predictions.")
    out += ["", "The layer-by-layer SNN against the ANN of its own integer weights "
            "(exactness at every weight precision; what is left against the quantised ANN is "
            "weight rounding):", ""] + ints
    out += ["", f"Load average during the run: {r.get('load', '?')}.", "",
            "Targets (issue #14):", ""]
    for row in r["rows"]:
        if row["label"] == "sync, avg spiking":
            continue
        wb = ("float (2^23)" if row["bits"] is None else f"{row['bits']}-bit") + " weights"
        acc = row["acc"][L]
        gap = r["q_acc"] - acc
        tb = ("T = L steps per layer (layerwise, read at global step "
              f"{row['run']})" if row["label"] == "layerwise" else "T = L global steps (sync)")
        out.append(f"* {wb}, within 0.5 point of the quantised ANN at T = L, {tb}: SNN "
                   f"{100 * acc:.2f} % vs {100 * r['q_acc']:.2f} % (gap {100 * gap:+.2f}; "
                   f"{row.get('mops_L', row['mops']):.2f} MOps/sample): "
                   f"**{'met' if gap <= 0.005 + 1e-12 else 'missed'}** on {n} images.")
        if row["label"] == "sync" and 16 in row["acc"]:
            g16 = r["f_acc"] - row["acc"][16]
            out.append(f"* {wb}, within 1 point of the float ANN by T = 16 (sync): SNN "
                       f"{100 * row['acc'][16]:.2f} % vs {100 * r['f_acc']:.2f} % (gap "
                       f"{100 * g16:+.2f}; {row['mops']:.2f} MOps/sample over the "
                       f"{row['run']}-step run): **{'met' if g16 <= 0.01 + 1e-12 else 'missed'}**"
                       f" on {n} images.")
    out.append("")
    return "\n".join(out)


# ---- layer-by-layer hand-off diagnosis --------------------------------------------------------
def _forward_many(pg, x, variants: dict, batch: int = 50) -> dict:
    """Logits of the folded graph ``pg`` on the internal-layout batch ``x`` for several
    variants at once: ``variants[key] = (replace, transform)`` where layer L's output is
    ``replace[L][samples]`` (an array over all samples) instead of its float value, or
    ``transform[L](value)`` of its float value.  Per batch the float activations are computed
    once and each variant recomputes only the layers from its first changed one on."""
    layers = list(pg)
    order = {l.name: i for i, l in enumerate(layers)}
    logits = pg.logits_name
    stop = order[logits]
    out = {k: [] for k in variants}
    for s in range(0, len(x), batch):
        base = {}
        for layer in layers[:stop + 1]:
            base[layer.name] = (x[s:s + batch] if layer.kind == "input" else
                                apply_layer(layer, [base[i] for i in layer.inputs]))
        for key, (replace, transform) in variants.items():
            changed = [order[n] for n in list(replace) + list(transform)]
            if not changed:
                out[key].append(base[logits])
                continue
            first = min(changed)
            acts = {l.name: base[l.name] for l in layers[:first]}
            for layer in layers[first:stop + 1]:
                n = layer.name
                if n in replace:
                    acts[n] = replace[n][s:s + batch]
                    continue
                acts[n] = apply_layer(layer, [acts[i] for i in layer.inputs])
                if n in transform:
                    acts[n] = transform[n](acts[n])
            out[key].append(acts[logits])
    return {k: np.concatenate(v) for k, v in out.items()}


def handoff(g, net, res, xe_float, ye, steps: int) -> dict:
    """Where the SNN loses accuracy, layer by layer (Rueckauer-style hand-off).

    For every spiking population P (a ReLU layer, a max-pool relay or an average), the float
    network is run with P's layer output replaced by the SNN's estimate of it — its spike
    count / T × λ_P (λ per channel where the conversion used it) — and everything after P in
    float; the accuracy drop against the float network is what P's spiking representation
    costs, given exact float inputs to the layers after it.  For a max-pool relay the
    *ideal gate* replaces it instead by the exact window maximum of the same SNN input
    estimates (what a gate that tracks the maximum count would pass), and ``excess`` is how
    many more spikes the relay emitted than that maximum holds.  ``all`` replaces every
    spiking population at once (≈ the SNN itself but with a float read-out), and
    ``rate code`` is the float network with every spiking layer clipped at its λ and floored
    to the rate-code resolution λ/T — the accuracy a perfect rate code of T steps allows.
    """
    pg = prepare(g)
    x = pg.to_internal(xe_float)
    names = set(l.name for l in pg)
    lam = net.meta["lambda"]
    roles = net.meta["population_roles"]
    layer_of = {}
    for p in net.populations:
        if p.is_input or roles.get(p.name) == "output" or p.name not in lam:
            continue  # (the difference neurons of a max-pool circuit have no layer)
        ln = lam[p.name].get("layer") or p.name
        if ln in names:
            layer_of[p.name] = ln
    n = len(x)

    def est(pname):
        p = net.population(pname)
        v = np.asarray(lam[pname]["values"], np.float64)
        c = res.spike_counts[pname].reshape((n,) + p.shape).astype(np.float32)
        return c * np.float32(1.0 / steps) * v.astype(np.float32)

    acc = lambda logits: float(np.mean(logits.argmax(1) == ye))  # noqa: E731
    variants = {"float": ({}, {})}
    rows, everything = [], {}
    for pname, ln in layer_of.items():
        e = est(pname)
        everything[ln] = e
        variants[pname] = ({ln: e}, {})
        row = {"population": pname, "layer": ln, "role": roles.get(pname),
               "rate": float(res.spike_counts[pname].mean()) / steps}
        pr = next((q for q in net.incoming(pname) if q.kind == "maxpool"), None)
        if pr is not None:
            variants[pname + "/ideal"] = ({ln: apply_layer(pg.layer(ln), [est(pr.source)])}, {})
            cnt = res.spike_counts[pname].sum()
            src = res.spike_counts[pr.source].reshape((n,) + net.population(pr.source).shape)
            true_max = apply_layer(pg.layer(ln), [src.astype(np.float64)]).sum()
            row["excess"] = float(cnt / true_max - 1.0) if true_max else 0.0
        rows.append(row)
    variants["all"] = (everything, {})

    def clip_floor(lmb):
        return lambda a: np.floor(np.clip(a / lmb, 0.0, 1.0) * steps) / steps * lmb
    tr = {}
    for pname, ln in layer_of.items():
        if roles.get(pname) == "neuron":
            tr[ln] = clip_floor(np.asarray(lam[pname]["values"], np.float64))
    variants["rate code"] = ({}, tr)
    logits = _forward_many(pg, x, variants)
    for row in rows:
        row["acc"] = acc(logits[row["population"]])
        if row["population"] + "/ideal" in logits:
            row["ideal_acc"] = acc(logits[row["population"] + "/ideal"])
    return {"steps": steps, "float_acc": acc(logits["float"]), "rows": rows,
            "all_acc": acc(logits["all"]), "rate_code_acc": acc(logits["rate code"]),
            "snn_acc": float(res.accuracy[-1])}


def bench_handoff(name: str, n: int, labels, bits, steps_list, bar, threads=1) -> dict:
    """Hand-off diagnosis of ``name`` for every method label and run length."""
    g, _, scale, cal_raw, cal, xe, ye = _load(name, n)
    out = []
    for label in labels:
        net = _convert(g, cal, cal_raw, scale, label, bits, max(steps_list), threads)
        for steps in steps_list:
            bar.set_description(f"hand-off {name} {label} T={steps}")
            res = emulator.run(net, xe, steps, labels=ye, threads=threads,
                               detail=("spike_counts",))
            h = handoff(g, net, res, xe.astype(np.float64) * scale, ye, steps)
            h.update(method=label, bits=bits,
                     mops=res.counters["synaptic_events"] / n / 1e6)
            out.append(h)
            bar.update(1)
    return {"name": name, "n": n, "runs": out}


def maxpool_cost(name: str, n: int, steps: int, threads=1) -> dict:
    """Neurons and synaptic events of every max-pool mode on one model (8 bits, robust)."""
    g, _, scale, _, cal, xe, ye = _load(name, n)
    rows = []
    for mode in ("gate", "runmax", "circuit", "avg"):
        net = convert(g, cal, method="robust", weight_bits=8, profile="ideal",
                      input_scale=scale, map=False, maxpool=mode)
        res = emulator.run(net, xe, steps, labels=ye, threads=threads)
        roles = net.meta["population_roles"]
        pool_pops = [p for p in net.populations
                     if roles.get(p.name) in ("relay",) or p.name.endswith("/diff")
                     or (mode == "avg" and roles.get(p.name) == "avg")]
        pool_names = {p.name for p in pool_pops}
        ev = sum(res.per_projection[pr.name]["synaptic_events"]
                 for pr in net.projections if pr.target in pool_names)
        rows.append({"mode": mode, "neurons": int(sum(p.size for p in pool_pops)),
                     "pool_events": ev / n, "total_events": res.counters["synaptic_events"] / n,
                     "acc": float(res.accuracy[-1]),
                     "projections": sorted({pr.kind for pr in net.projections
                                            if pr.target in pool_names})})
    return {"name": name, "n": n, "steps": steps, "rows": rows}


def render_maxpool_cost(mc: dict) -> str:
    out = [f"## Max-pool modes: cost on {mc['name']} ({mc['n']} samples, robust 8-bit, "
           f"T = {mc['steps']})", "",
           "Neurons of the pooling populations (relays; for `circuit` also its difference "
           "neurons; for `avg` the average populations) and synaptic events per sample "
           "delivered into them over the run, beside the whole network's.", "",
           "| maxpool | pooling neurons | pooling events/sample | all events/sample | "
           "projection kinds | accuracy |", "|---|---|---|---|---|---|"]
    for r in mc["rows"]:
        out.append(f"| {r['mode']} | {r['neurons']:,} | {r['pool_events'] / 1e6:.3f} M | "
                   f"{r['total_events'] / 1e6:.2f} M | {', '.join(r['projections'])} | "
                   f"{100 * r['acc']:.2f} |")
    out.append("")
    return "\n".join(out)


def render_handoff(hres: list) -> str:
    out = ["## Layer-by-layer hand-off", "",
           "Each cell: accuracy (%) of the float network when one spiking population's layer "
           "output is replaced by the SNN's spike count / T × λ and the rest runs in float "
           "(`benchmarks/fidelity.py: handoff`). *ideal gate*: a max-pool relay replaced instead "
           "by the exact window maximum of the same SNN input estimates; *excess*: spikes the "
           "relay emitted beyond that maximum. *all*: every spiking population replaced at "
           "once; *rate code*: the float network with every ReLU clipped at λ and floored to "
           "λ/T (what a perfect rate code of T steps allows).", ""]
    for h in hres:
        out.append(f"### {h['name']} ({h['n']} samples)")
        out.append("")
        for r in h["runs"]:
            b = "float" if r["bits"] is None else f"{r['bits']}-bit"
            out += [f"**{r['method']}, {b}, T = {r['steps']}**: float {100 * r['float_acc']:.2f}"
                    f" %, SNN {100 * r['snn_acc']:.2f} %, all hand-offs "
                    f"{100 * r['all_acc']:.2f} %, rate code {100 * r['rate_code_acc']:.2f} %, "
                    f"{r['mops']:.1f} MOps/sample.", "",
                    "| population | role | rate | hand-off acc | Δ vs float | ideal gate | "
                    "excess |", "|---|---|---|---|---|---|---|"]
            for row in r["rows"]:
                ig = f"{100 * row['ideal_acc']:.2f}" if "ideal_acc" in row else ""
                ex = f"{100 * row['excess']:+.1f} %" if "excess" in row else ""
                out.append(f"| {row['population']} | {row['role']} | {row['rate']:.4f} | "
                           f"{100 * row['acc']:.2f} | {100 * (row['acc'] - r['float_acc']):+.2f}"
                           f" | {ig} | {ex} |")
            out.append("")
    return "\n".join(out)


def _ts(steps: int) -> tuple:
    return tuple(t for t in TS if t <= steps) + ((steps,) if steps not in TS else ())


def _fmt_bits(b):
    return "float (2^23)" if b is None else f"{b}"


def render(results: list, cmd: str) -> str:
    out = ["# Conversion fidelity", "",
           f"Generated by `{cmd}` on {datetime.date.today().isoformat()} "
           f"(file written by `benchmarks/fidelity.py`; do not edit by hand).", "",
           "Profile `ideal` (no chip limits; v ≥ θ; synchronous timing unless the method label "
           "says `-hw`, analog input), so the numbers isolate conversion and "
           "weight-quantisation error. One run per row gives every T. *Δ* = SNN − float "
           "accuracy at the last T. MOps = synaptic events per sample over the whole run (the "
           "analog first layer's input MACs are listed separately); ANN MACs counted from the "
           "graph.", ""]
    for r in results:
        ts = _ts(r.get("steps", max(TS)))
        last = ts[-1]
        if r["name"] in MODELS and MODELS[r["name"]][1] == "mnist":
            c = r.get("cal", 1000)
            data = (f"MNIST test images {r['start']}..{r['start'] + r['n'] - 1}, calibration on "
                    f"test images 0..{c - 1}" + (" (never evaluated)" if r["start"] >= c else
                                                 " (part of the evaluated images)"))
        else:
            s0 = r.get("start", 0)
            c0 = 500 if s0 == 0 else 0
            c1 = c0 + r.get("cal", 500) - 1
            lap = max(s0, c0) <= min(s0 + r["n"] - 1, c1)
            data = (f"CIFAR-10 shared subset images {s0}..{s0 + r['n'] - 1}, calibration on "
                    f"images {c0}..{c1}" + (" (overlaps the evaluation images)" if lap
                                           else " (never evaluated)"))
        qa = ("" if r.get("ann_float") is None else
              f" (the QCFS-quantised ANN; the same network with clipped ReLUs instead of QCFS, "
              f"the float ANN: {100 * r['ann_float']:.2f} %)")
        out += [f"## {r['name']} — float accuracy {100 * r['float_acc']:.2f} % "
                f"on {r['n']} samples{qa}, ANN {r['macs'] / 1e6:.2f} MMACs/sample", "",
                f"{data}. One sample = {100 / r['n']:.2f} accuracy points.", "",
                "| method | weight bits | " + " | ".join(f"T={t}" for t in ts)
                + f" | Δ@{last} | MOps/sample | input MMACs | s |",
                "|---|---|" + "---|" * len(ts) + "---|---|---|---|"]
        for row in r["rows"]:
            accs = " | ".join(f"{100 * row['acc'][t]:.2f}" for t in ts)
            d = 100 * (row["acc"][last] - r["float_acc"])
            out.append(f"| {row['method']} | {_fmt_bits(row['bits'])} | {accs} | {d:+.2f} | "
                       f"{row['mops']:.2f} | {row['in_macs']:.3f} | {row['seconds']:.0f} |")
        out.append("")
        for row in r["rows"]:
            if row.get("weight_cal"):
                out += [f"Weight calibration of `{row['method']}` ({_fmt_bits(row['bits'])} "
                        f"bits), per population: " + "; ".join(row["weight_cal"]) + ".", ""]
        rated = [row for row in r["rows"] if row["bits"] == 8 and row.get("rates")]
        if rated:
            pops = [k for k in rated[0]["rates"] if k != "input"]
            out += [f"Firing rates at 8 bits (spikes per neuron per step, mean over samples and "
                    f"{last} steps):", "",
                    "| method | " + " | ".join(pops) + " |", "|---|" + "---|" * len(pops)]
            for row in rated:
                out.append(f"| {row['method']} | " + " | ".join(
                    f"{row['rates'].get(k, float('nan')):.4f}" for k in pops) + " |")
            out.append("")
    out += ["## Targets", ""]
    for r in results:
        # (T, tolerance, reference accuracy, what) per model, issue #14
        if r["name"] == "tests_99.20":
            targets = [(32, 0.001, r["float_acc"], "float")]
            labels = [m for m in METHODS if m.startswith("ecc")]
        elif r["name"] == "cifar10_81.45":
            targets = [(128, 0.01, r["float_acc"], "float")]
            labels = list(METHODS)
        elif r.get("ann_float") is not None:  # a QCFS network, L = 4
            targets = [(4, 0.005, r["float_acc"], "quantised ANN"),
                       (16, 0.01, r["ann_float"], "float ANN")]
            labels = list(METHODS)
        else:
            continue
        for t, tol, ref, what in targets:
            for label in labels:
                rows8 = [row for row in r["rows"] if row["method"] == label and row["bits"] == 8]
                if not rows8 or t not in rows8[0]["acc"]:
                    continue
                acc = rows8[0]["acc"][t]
                gap = ref - acc
                ok = gap <= tol + 1e-12
                out.append(f"* {r['name']}, {label} 8 bits, T = {t}: SNN {100 * acc:.2f} % vs "
                           f"{what} {100 * ref:.2f} % (gap {100 * gap:+.2f} points, target ≤ "
                           f"{100 * tol:.1f}; {rows8[0]['mops']:.1f} MOps/sample over the "
                           f"{r['steps']}-step run): **{'met' if ok else 'missed'}** on "
                           f"{r['n']} samples.")
    out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="50 samples, reduced grid")
    ap.add_argument("--samples", type=int, default=1000, help="MNIST evaluation samples")
    ap.add_argument("--other-samples", type=int, default=None,
                    help="evaluation samples for the MNIST models without a fidelity target "
                         "(keras_bn_maxpool, torch_cnn, mnist-8); default --samples")
    ap.add_argument("--mnist-start", type=int, default=8000,
                    help="first MNIST evaluation image (default 8000: the split keras_bn_maxpool "
                         "and torch_cnn never saw; >= 1000, calibration uses 0..999)")
    ap.add_argument("--mnist-cal", type=int, default=1000,
                    help="MNIST calibration images 0..N-1 (default 1000); evaluating from "
                         "--mnist-start below N overlaps them (the table says so)")
    ap.add_argument("--cifar-cal", type=int, default=500,
                    help="CIFAR-10 calibration images 500..500+N-1 (default 500)")
    ap.add_argument("--cifar-start", type=int, default=0,
                    help="first CIFAR-10 evaluation image (default 0; calibration then starts at "
                         "image 500, otherwise at image 0: --cifar-start 500 --cifar-samples 500 "
                         "is the other half of a two-fold evaluation of all 1,000 images)")
    ap.add_argument("--calibrate-samples", type=int, default=200,
                    help="images the '-cal' methods calibrate on (default 200)")
    ap.add_argument("--cifar-samples", type=int, default=500, help="CIFAR-10 evaluation samples")
    ap.add_argument("--models", default="tests_99.20,cifar10_81.45,keras_bn_maxpool,torch_cnn,"
                    "mnist-8", help="comma-separated model names")
    ap.add_argument("--grid", choices=("full", "reduced"), default="full",
                    help="reduced: robust and RMP only at float and 8 bits")
    ap.add_argument("--methods", default="robust,ecc,rmp",
                    help=f"comma-separated, from {', '.join(METHODS)}")
    ap.add_argument("--bits", default="float,10,8,6,4",
                    help="comma-separated weight bits (float = 2^23 resolution)")
    ap.add_argument("--steps", type=int, default=256, help="run length (>= 16)")
    ap.add_argument("--threads", type=int, default=1,
                    help="engine threads (default 1: leave the other cores free)")
    ap.add_argument("--calibrate-steps", type=int, default=64,
                    help="run length T the '-cal' methods are calibrated for (default 64)")
    ap.add_argument("--maxpool-cost", type=int, default=0, metavar="N",
                    help="also measure neurons and events of every max-pool mode on N samples")
    ap.add_argument("--handoff", default="",
                    help="comma-separated method labels for the layer-by-layer hand-off "
                         "diagnosis (one run per label and --handoff-steps value)")
    ap.add_argument("--handoff-steps", default="64,256", help="run lengths of the hand-off")
    ap.add_argument("--handoff-bits", default="8", help="weight bits of the hand-off runs")
    ap.add_argument("--qcfs", default="",
                    help="comma-separated QCFS models (e.g. qcfs_cifar) for the sync vs "
                         "layerwise comparison at T = L (evaluation images from --cifar-start, "
                         "--cifar-samples of them; weight bits from --bits; sync runs --steps)")
    ap.add_argument("--out", default=None, help="write the markdown table here")
    ap.add_argument("--append", action="store_true",
                    help="append this run's tables to --out (its own header and command)")
    a = ap.parse_args(argv)
    if a.quick:
        a.samples, a.cifar_samples, a.grid = min(a.samples, 50), min(a.cifar_samples, 50), \
            "reduced"
        a.other_samples = min(a.other_samples or 50, 50)
    MNIST_START[0] = a.mnist_start
    CAL_STEPS[0] = a.calibrate_steps
    MNIST_CAL[0] = a.mnist_cal
    CIFAR_CAL[0] = a.cifar_cal
    CIFAR_START[0] = a.cifar_start
    global CAL_SAMPLES
    CAL_SAMPLES = a.calibrate_samples
    names = [m for m in a.models.split(",") if m]
    for m in names:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; known: {', '.join(MODELS)}")
    methods = [m for m in a.methods.split(",") if m]
    hlabels = [m for m in a.handoff.split(",") if m]
    hsteps = [int(t) for t in a.handoff_steps.split(",") if t]
    hbits = None if a.handoff_bits == "float" else int(a.handoff_bits)
    for m in methods + hlabels:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; known: {', '.join(METHODS)}")
    bits_list = tuple(None if b == "float" else int(b) for b in a.bits.split(",") if b)
    per = sum(len(bits_list) if (a.grid == "full" or m == "ecc") else 2 for m in methods)
    per += len(hlabels) * len(hsteps)
    results, hres, mcs = [], [], []
    qnames = [m for m in a.qcfs.split(",") if m]
    for m in qnames:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; known: {', '.join(MODELS)}")
    cmd = "python benchmarks/fidelity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    head = Path(a.out).read_text() if a.append and a.out and Path(a.out).exists() else None
    text = ""
    with tqdm(total=per * len(names), unit="run") as bar:
        for m in names:
            n = a.cifar_samples if MODELS[m][1] == "cifar" else a.samples
            if m not in ("tests_99.20", "cifar10_81.45") and a.other_samples:
                n = a.other_samples
            if methods:
                results.append(bench_model(m, n, a.grid, bar, methods, bits_list, a.steps,
                                           a.threads))
            if hlabels:
                hres.append(bench_handoff(m, n, hlabels, hbits, hsteps, bar, a.threads))
            text = render(results, cmd)
            if hres:
                text = text.rstrip() + "\n\n" + render_handoff(hres) + "\n"
            if a.maxpool_cost:
                mcs.append(maxpool_cost(m, a.maxpool_cost, a.steps, a.threads))
            for mc in mcs:
                text = text.rstrip() + "\n\n" + render_maxpool_cost(mc) + "\n"
            if a.out:
                Path(a.out).write_text(text if head is None else
                                       head.rstrip() + "\n\n" + text.replace(
                                           "# Conversion fidelity", "# Conversion fidelity "
                                           "(additional run)", 1))
    if qnames:
        qtext = "\n\n".join(render_qcfs(bench_qcfs(m, a.cifar_samples, bits_list, a.steps,
                                                    a.threads)) for m in qnames)
        text = (text.rstrip() + "\n\n" if names else "# Conversion fidelity: QCFS\n\n"
                f"Generated by `{cmd}` on {datetime.date.today().isoformat()}.\n\n") + qtext
        if a.out:
            Path(a.out).write_text(text if head is None else head.rstrip() + "\n\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
