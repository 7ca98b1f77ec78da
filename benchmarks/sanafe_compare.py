"""neuroemu against SANA-FE on the same converted network, placement and inputs.

Run ``python benchmarks/sanafe_compare.py`` (needs the optional ``sanafe`` package: ``pip
install -e ".[sanafe]"``, and the shared data).  It

1. converts ``tests_99.20`` for ``loihi1`` (robust normalisation, 8-bit weights, reset to zero,
   delay 1 — the hardware timing) and places its cores row by row on a mesh of 4-core tiles
   numbered as SANA-FE numbers them (tile id t at x = t // height, y = t mod height);
2. exports it to SANA-FE (SANA-FE's own Loihi architecture file, widened to hold every core):
   one neuron group per layer (channels-first order, as SANA-FE's conv2d expects), its
   Loihi LIF soma (leak 1, input decay 0, hard reset to 0, spike on v > θ, per-neuron bias),
   the convolution through ``connect_neurons_conv2d`` with the same integer kernel, the pooling
   and dense layers with the same integer weights, every neuron on the same core; the analog
   first layer enters as a per-sample bias (bias + the input current the host computes), as on
   the chip; the non-spiking read-out gets an unreachable threshold;
3. runs the same images (5, T = 64) in both tools and compares, per sample: spikes per layer at
   every step (must be equal), energy (neuroemu on ``loihi1-silicon`` with SANA-FE's counting
   conventions — emission, state — and per-direction hops; target within 2 %), and latency
   (neuroemu's step model with mesh="none" against SANA-FE's simple timing model; target
   within 5 %); and prints each tool's wall-clock simulation time.

Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import emulator  # noqa: E402
from hw_models.energy import energy_report  # noqa: E402
from hw_models.latency import timing_for  # noqa: E402

TILE_CORES = 4
HEIGHT = 4  # SANA-FE's Loihi mesh is 8 × 4 tiles; the comparison widens it to fit every core


# ---- network ----------------------------------------------------------------------------------
def convert_network(n_calib: int):
    import converter
    from neuroemu.datasets import load_mnist
    graph = converter.load_model(os.path.join(data_dir(), "models", "tests_99.20.json"),
                                 input_scale=1 / 255)  # the JSON model does not say its scale
    x, _ = load_mnist()
    return converter.convert(graph, x[:n_calib] / 255.0, method="robust", weight_bits=8,
                             profile="loihi1", reset="zero", timing="hardware")


def data_dir() -> str:
    from neuroemu.datasets import data_dir as shared_data_dir   # the one data helper
    return str(shared_data_dir())


def place_on_mesh(net):
    """The same placement in both tools: on-chip core g on tile g // 4 at SANA-FE's (x, y) of
    that tile id; the analog input's host core stays off-chip.  Returns (net, width)."""
    place = np.array(net.placement, np.int32)
    on = np.flatnonzero(place[:, 0] >= 0)
    tiles = on // TILE_CORES
    place[on, 0] = 0
    place[on, 1] = tiles // HEIGHT
    place[on, 2] = tiles % HEIGHT
    width = int(tiles.max()) // HEIGHT + 1
    return net.replace(placement=place), width


def chw_order(shape):
    """SANA-FE neuron index (channels-first) → neuroemu flat index (channels-last)."""
    if len(shape) != 3:
        return np.arange(int(np.prod(shape)))
    h, w, c = shape
    cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    return ((yy * w + xx) * c + cc).reshape(-1)


def analog_current(net, img):
    """Input current of the analog first layer for one image (what the host computes)."""
    pr = next(p for p in net.projections if p.source == net.input.name)
    eff = pr.effective_weights.astype(np.int64)
    x = net.to_internal_input(img[None])[0].astype(np.int64)  # (H, W, C)
    kh, kw, _, co = eff.shape
    oh, ow = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((oh, ow, co), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out += np.tensordot(x[ky:ky + oh, kx:kx + ow, :], eff[ky, kx], axes=([2], [0]))
    return pr.target, out.reshape(-1)


# ---- SANA-FE export ---------------------------------------------------------------------------
def arch_file(width: int, tmp: Path) -> Path:
    """SANA-FE's own Loihi architecture, widened to ``width`` × 4 tiles."""
    import sanafe
    src = Path(sanafe.__file__).parent / "examples" / "loihi.yaml"
    text = src.read_text()
    text = re.sub(r"width: \d+", f"width: {width}", text, count=1)
    text = re.sub(r"loihi_tile\[0\.\.\d+\]", f"loihi_tile[0..{width * HEIGHT - 1}]", text)
    out = tmp / "loihi_wide.yaml"
    out.write_text(text)
    return out


def export(net, arch):
    """A sanafe Network of ``net`` (input population excluded: it is the analog bias)."""
    import sanafe
    snn = sanafe.Network()
    cores = arch.cores()
    groups, order = {}, {}
    big = 1e30
    for p in net.populations:
        if p.is_input:
            continue
        g = snn.create_neuron_group(
            p.name, p.size,
            model_attributes={"threshold": float(p.threshold) if p.spiking else big,
                              "reset": 0.0, "leak_decay": 1.0, "input_decay": 0.0},
            default_synapse_hw_name="loihi_dense_synapse",
            default_dendrite_hw_name="loihi_dendrites", soma_hw_name="loihi_lif",
            log_spikes=True)
        if p.reset != "zero" or p.spike_rule != ">" or p.decay_u != 4096 or p.decay_v != 0:
            raise SystemExit(f"{p.name}: the export assumes IF neurons, reset to zero, v > θ")
        perm = chw_order(p.shape)
        bias = p.bias_array()
        for i in range(p.size):
            n = g[i]
            n.map_to_core(cores[int(p.core[perm[i]])])
            if bias[perm[i]] != 0:
                n.set_attributes(model_attributes={"bias": float(bias[perm[i]])})
        groups[p.name], order[p.name] = g, perm
    for pr in net.projections:
        if pr.source == net.input.name:
            continue
        src, tgt = net.population(pr.source), net.population(pr.target)
        eff = pr.effective_weights.astype(np.int64)
        if pr.delay != 1:
            raise SystemExit(f"{pr.name}: the export assumes delay 1 (SANA-FE's step)")
        if pr.kind == "conv":
            if pr.stride != (1, 1) or any(pr.padding) or pr.dilation != (1, 1):
                raise SystemExit(f"{pr.name}: only stride 1, no padding, no dilation exported")
            h, w, c = src.shape
            kh, kw, _, co = eff.shape
            groups[pr.source].connect_neurons_conv2d(
                groups[pr.target], {"w": eff.astype(np.float64).reshape(-1).tolist()},
                input_width=w, input_height=h, input_channels=c, kernel_width=kw,
                kernel_height=kh, kernel_count=co, stride_width=1, stride_height=1)
        elif pr.kind == "avgpool":
            inv_s = np.argsort(order[pr.source])
            inv_t = np.argsort(order[pr.target])
            pairs, ws = [], []
            from emulator.reference import dense_matrices
            _, conn = dense_matrices(pr, src, tgt)
            js, is_ = np.nonzero(conn)
            for j, i in zip(js, is_):
                pairs.append((int(inv_s[j]), int(inv_t[i])))
                ws.append(float(eff[j % src.shape[2]]))
            groups[pr.source].connect_neurons_sparse(groups[pr.target], {"w": ws}, pairs)
        elif pr.kind == "dense":
            wm = eff[order[pr.source]][:, order[pr.target]]
            groups[pr.source].connect_neurons_dense(
                groups[pr.target], {"w": wm.astype(np.float64).reshape(-1).tolist()})
        else:
            raise SystemExit(f"{pr.name}: projection kind {pr.kind!r} not exported")
    return snn, order


def run_sanafe(net, images, T, width, timing_model):
    import sanafe
    with tempfile.TemporaryDirectory() as tmp:
        arch = sanafe.load_arch(str(arch_file(width, Path(tmp))))
    t0 = time.perf_counter()
    snn, order = export(net, arch)
    chip = sanafe.SpikingChip(arch)
    chip.load(snn)
    setup = time.perf_counter() - t0
    names = [p.name for p in net.populations if not p.is_input]
    first = None
    per = []
    t_sim = 0.0
    for img in images:
        name, cur = analog_current(net, img)
        if first is None:
            first = name
        p = net.population(name)
        b = p.bias_array() + cur
        mapped = chip.mapped_neuron_groups[name]
        perm = order[name]
        for i in range(p.size):
            mapped[i].set_attributes(model_attributes={"bias": float(b[perm[i]])})
        t0 = time.perf_counter()
        res = chip.sim(T, timing_model=timing_model, spike_trace=True, perf_trace=True)
        t_sim += time.perf_counter() - t0
        counts = {n: np.zeros(T, np.int64) for n in names}
        for t, spikes in enumerate(res["spike_trace"]):
            for a in spikes:
                counts[a.group_name][t] += 1
        per.append({"energy": float(res["energy"]["total"]), "time": float(res["sim_time"]),
                    "counts": counts, "perf": res.get("perf_trace")})
        chip.reset()
    return per, setup, t_sim


# ---- neuroemu ---------------------------------------------------------------------------------
def run_neuroemu(net, images, T, mesh):
    tm = timing_for("loihi1-silicon", mesh=mesh)
    names = [p.name for p in net.populations if not p.is_input]
    emulator.run(net, images[:1], 2, timing=tm)  # compile and pack
    t0 = time.perf_counter()
    r = emulator.run(net, images, T, timing=tm, record=names)
    wall = time.perf_counter() - t0
    per = []
    for s in range(len(images)):
        one = emulator.run(net, images[s:s + 1], T, timing=tm)
        rep = energy_report(one.counters, "loihi1-silicon", steps=T, samples=1)
        counts = {}
        for n in names:
            rows = r.spikes[n]
            rows = rows[rows[:, 0] == s]
            counts[n] = np.bincount(rows[:, 1] - 1, minlength=T).astype(np.int64)
        per.append({"energy": rep.total, "time": float(one.work["step_time_sum_ps"].sum()) * 1e-12,
                    "counts": counts, "report": rep, "counters": one.counters,
                    "steps": one.work["step_time_sum_ps"] * 1e-12})  # one sample: its own
    return per, wall, r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--timing-model", default="simple", choices=("simple", "detailed"))
    a = ap.parse_args(argv)
    try:
        import sanafe  # noqa: F401
    except ImportError:
        raise SystemExit("needs the optional 'sanafe' package: pip install -e '.[sanafe]'")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())} (1, 5, 15 min)")
    t0 = time.perf_counter()
    net = convert_network(a.calibration)
    net, width = place_on_mesh(net)
    print(f"converted tests_99.20 for loihi1 in {time.perf_counter() - t0:.1f} s: "
          f"{sum(p.size for p in net.populations if not p.is_input):,} neurons, "
          f"{int((net.placement[:, 0] >= 0).sum())} cores on a {width} x {HEIGHT} tile mesh")
    from neuroemu.datasets import load_mnist
    x, _ = load_mnist()
    images = x[:a.samples].reshape(a.samples, *net.user_input_shape()).astype(np.int64)
    T = a.steps

    ne, ne_wall, r = run_neuroemu(net, images, T, mesh="none")
    sf, sf_setup, sf_wall = run_sanafe(net, images, T, width, a.timing_model)

    names = [p.name for p in net.populations if not p.is_input]
    same = all(np.array_equal(ne[s]["counts"][n], sf[s]["counts"][n])
               for s in range(len(images)) for n in names)
    print(f"\nspikes per layer at every step equal in both tools: {same}")
    if not same:
        for s in range(len(images)):
            for n in names:
                d = np.flatnonzero(ne[s]["counts"][n] != sf[s]["counts"][n])
                if d.size:
                    print(f"  sample {s} layer {n}: first difference at step {d[0] + 1}: "
                          f"neuroemu {ne[s]['counts'][n][d[0]]} SANA-FE {sf[s]['counts'][n][d[0]]}")
    print(f"saturations in neuroemu (v clipped to the 24-bit range; SANA-FE's float state "
          f"does not clip): " + ", ".join(f"{k} {d['saturations']}"
                                            for k, d in r.per_population.items()
                                            if d["saturations"]))
    print(f"\n{'sample':>6} {'energy neuroemu':>16} {'SANA-FE':>10} {'diff':>7}   "
          f"{'latency neuroemu':>16} {'SANA-FE':>10} {'diff':>7}")
    de, dl = [], []
    for s in range(len(images)):
        e1, e2 = ne[s]["energy"], sf[s]["energy"]
        l1, l2 = ne[s]["time"], sf[s]["time"]
        de.append(e1 / e2 - 1)
        dl.append(l1 / l2 - 1)
        print(f"{s:>6} {e1 * 1e6:>13.2f} µJ {e2 * 1e6:>7.2f} µJ {100 * de[-1]:>+6.2f}%   "
              f"{l1 * 1e6:>13.2f} µs {l2 * 1e6:>7.2f} µs {100 * dl[-1]:>+6.2f}%")
    me1 = np.mean([d["energy"] for d in ne])
    me2 = np.mean([d["energy"] for d in sf])
    ml1 = np.mean([d["time"] for d in ne])
    ml2 = np.mean([d["time"] for d in sf])
    print(f"{'mean':>6} {me1 * 1e6:>13.2f} µJ {me2 * 1e6:>7.2f} µJ {100 * (me1 / me2 - 1):>+6.2f}%"
          f"   {ml1 * 1e6:>13.2f} µs {ml2 * 1e6:>7.2f} µs {100 * (ml1 / ml2 - 1):>+6.2f}%")
    print(f"max |difference|: energy {100 * max(map(abs, de)):.2f} % (target 2 %), latency "
          f"{100 * max(map(abs, dl)):.2f} % (target 5 %, SANA-FE {a.timing_model} model)")
    rep = ne[0]["report"]
    print(f"\nneuroemu energy breakdown, sample 0 (conventions: synaptic work at "
          f"{rep.synaptic_charge}, active '{rep.active_update}'):\n{rep}")
    lat = r.latency_report(core_layers=core_layers(net))
    print(f"\n{lat}")
    tmr = emulator.run(net, images, T, timing=timing_for("loihi1-silicon", mesh="route"))
    print(f"with the mesh term (longest route per step): "
          f"{tmr.work['step_time_sum_ps'].sum() / len(images) * 1e-6:.2f} µs per sample")
    dflt = emulator.run(net, images, T, timing="loihi1")
    e_dflt = energy_report(dflt.counters, "loihi1-silicon", steps=T, samples=len(images),
                           synaptic_charge="delivery", active_update="input")
    print(f"neuroemu's default conventions (synaptic work at delivery, active = input arrived) "
          f"on loihi1-silicon: {e_dflt.per_sample * 1e6:.2f} µJ per sample "
          f"({100 * (e_dflt.per_sample / me2 - 1):+.2f} % from SANA-FE); step model with "
          f"delivery/input: {dflt.work['step_time_sum_ps'].sum() / len(images) * 1e-6:.2f} µs")
    print(f"\nsimulation wall time for {len(images)} samples x {T} steps: neuroemu "
          f"{ne_wall:.2f} s (engine, all samples, timing on); SANA-FE {sf_wall:.2f} s "
          f"({a.timing_model} model; export + load {sf_setup:.1f} s); load average "
          f"{os.getloadavg()[0]:.2f}")


def core_layers(net):
    out = [None] * net.n_cores
    for name, c in net.core_assignment().items():
        for k in np.unique(c):
            out[int(k)] = name
    return out


if __name__ == "__main__":
    main()
