"""``neuroemu demo``: every stage of the pipeline on one bundled model, into one folder.

:func:`demo` converts the bundled digits CNN (or, with ``mnist=True``, the shared MNIST Keras
model), checks it against the Loihi 1 profile, runs it, sweeps the weight bits and draws the
figures: ``network.h5``, ``result.h5``, ``sweep.h5``, ``feasibility.{txt,json}``,
``summary.{txt,json}`` and the PNG plots.  It only strings together the one-call functions of
:mod:`neuroemu.pipeline`, so what the demo shows is what those functions do.

(The module is not called ``neuroemu/demo.py``: a submodule ``demo`` would shadow the lazily
exported function ``neuroemu.demo`` as soon as it was imported.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hw_models.errors import DataError
from hw_models.profiles import DEFAULT_PROFILE

from .data import load_data
from .pipeline import (DIGITS_MODEL, _jsonify, _nan, ann_macs, convert_model, core_usage,
                       evaluate, fit, format_joules, format_percent, load_graph, save_evaluation,
                       sweep)

__all__ = ["demo"]


def demo(out_dir="neuroemu-demo", *, quick: bool = False, mnist: bool = False,
         progress: bool = False, log=None) -> dict:
    """Convert, check, run, sweep and plot the bundled digits CNN (or, with ``mnist``, the shared
    ``tests_99.20`` Keras model on MNIST) into ``out_dir``; returns the summary dict.

    ``log`` receives one line per stage (the CLI passes ``print``); by default nothing is
    printed."""
    from emulator import plots
    from .sweep import read_sweep
    log = log or (lambda s: None)
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if mnist:
        from . import datasets
        model = datasets.data_path("models", "tests_99.20.json")
        if not model.exists():
            raise DataError(datasets.missing_reason("models", "tests_99.20.json"))
        full = load_data("mnist")
        calib, test = full.subset(500), full.subset(100 if quick else 200, start=8000)
        scale, imax, steps = 1 / 255, 255, (32 if quick else 48)
        bits = (4, 6, 8) if quick else (3, 4, 6, 8)
    else:
        model = DIGITS_MODEL
        calib = load_data("digits-train").subset(300)
        test = load_data("digits").subset(150 if quick else None)
        scale, imax, steps = 1 / 16, 16, (32 if quick else 64)
        bits = (3, 4, 6, 8) if quick else (3, 4, 5, 6, 7, 8)
    methods = ("ecc", "robust")
    profile = DEFAULT_PROFILE
    graph = load_graph(model, scale)
    log(f"model {model} ({ann_macs(graph):,} MACs per sample), {len(test)} test samples, "
        f"{steps} steps, profile {profile}")
    net = convert_model(model, calib, "ecc", 8, profile, steps, calib_samples=None, graph=graph,
                        eval_data=test, input_scale=scale, input_max=imax)
    net.save(out / "network.h5")
    rep = fit(net, profile)
    (out / "feasibility.txt").write_text(str(rep) + "\n")
    (out / "feasibility.json").write_text(json.dumps(_jsonify(rep.to_dict()), indent=2) + "\n")
    fits = bool(rep.fits)
    log(f"feasibility on {profile}: {rep.chips_line}; {rep.verdict}")
    pops = [p.name for p in net.populations if not p.is_input and p.spiking]
    ev = evaluate(net, test, steps, record=pops, profile=profile, progress=progress)
    save_evaluation(ev, net, out / "result.h5")
    log(str(ev))
    sweep(model, calib, test, out / "sweep.h5", bits=bits, methods=methods, steps=steps,
          calib_samples=None, profile=profile, input_scale=scale, input_max=imax,
          progress=progress)
    sw = read_sweep(out / "sweep.h5")
    figs = {}
    res = ev.result
    figs["raster"] = plots.spike_raster(res, sample=0, populations=pops,
                                        path=out / "raster.png")
    figs["accuracy"] = plots.sweep_accuracy_vs_steps(sw, path=out / "accuracy.png")
    figs["bits"] = plots.sweep_accuracy_vs_bits(sw, path=out / "bits.png")
    figs["energy"] = plots.sweep_energy_vs_accuracy(sw, path=out / "energy.png")
    figs["breakdown"] = plots.result_energy_breakdown(res, path=out / "breakdown.png")
    figs["rates"] = plots.result_firing_rates(res, populations=pops, path=out / "rates.png")
    cu = core_usage(net, profile)
    if cu:
        figs["cores"] = plots.core_utilisation(cu["usage"], cu["limits"], cu["population"],
                                               title=f"core utilisation on {profile}",
                                               path=out / "cores.png")
    summary = {"model": str(model), "profile": profile, "steps": steps,
               "test_samples": len(test), "feasible": fits,
               "runs_natively": bool(rep.ok),
               "evaluation": ev.to_dict(),
               "sweep": {k: {"method": p["method"], "bits": p["bits"],
                             "accuracy": _nan(float(p["accuracy"][-1])),
                             "energy_per_sample_j": p["energy_per_sample"],
                             "synops_per_sample": p["synops_per_sample"]}
                         for k, p in sw["points"].items() if p.get("status") != "failed"},
               "files": {k: str((out / f"{k}.png").resolve()) for k in figs},
               "wall_seconds": round(time.perf_counter() - t_start, 2)}
    (out / "summary.json").write_text(json.dumps(_jsonify(summary), indent=2) + "\n")
    lines = [f"neuroemu demo — {summary['model']} on {profile}", "", str(ev), "",
             "weight-bit sweep (accuracy at the last step):"]
    for k, p in summary["sweep"].items():
        lines.append(f"  {p['method']:<8} {str(p['bits']):>3} bits  "
                     f"{format_percent(p['accuracy'])}  "
                     f"{format_joules(p['energy_per_sample_j'])}/sample")
    lines += ["", (f"feasibility on {profile}: {rep.chips_line}; {rep.verdict} "
                   f"(see feasibility.txt)"), f"wall time {summary['wall_seconds']} s"]
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return summary
