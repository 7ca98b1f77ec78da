"""The ``neuroemu`` command line: convert, fit, run, sweep, plot, demo.

Exit codes: 0 success; 1 a user or data error (bad file, wrong data shape, impossible option —
one line ``neuroemu: error: …`` on stderr); 2 a usage error (argparse); 3 ``fit`` found limits
the chip cannot meet or needs more chips than ``--max-chips`` (the report is still printed; a network
that fits but needs a feature the chip lacks, e.g. reset by subtraction on Loihi 1, exits 0 and
lists it); ``convert --strict`` exits 3 when the network violates its profile; 130 interrupted
(Ctrl-C, or a sweep stopped by its test hook).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path

from hw_models.errors import DataError, NeuroemuError
from hw_models.profiles import DEFAULT_PROFILE, get_profile

EXIT_ERROR, EXIT_USAGE, EXIT_LIMITS, EXIT_INTERRUPT = 1, 2, 3, 130

DATA_HELP = textwrap.fill(
    "DATA: a built-in name (digits, digits-train, mnist, cifar10, nmnist, nmnist-train), an "
    "MNIST IDX file or folder, an .npz with x and y, a CIFAR-10 python batch or folder, or an "
    "N-MNIST folder (.bs2 files + train1K.txt/test100.txt).", 88)

EPILOG = """\
examples:
  neuroemu demo                                   # everything on the bundled digits CNN
  neuroemu convert digits --calibration digits-train --method ecc --bits 8 \\
           --eval-data digits -o net.h5
  neuroemu fit net.h5 --profile loihi1            # feasibility report (exit 3 if it does not fit)
  neuroemu run net.h5 --data digits --steps 64 --record conv1_relu,conv2_relu -o run.h5
  neuroemu sweep digits --calibration digits-train --data digits --bits 4:8 \\
           --methods ecc,robust --steps 64 -o sweep.h5   # rerun the same line to resume
  neuroemu plot raster run.h5 -o raster.png
  neuroemu plot bits sweep.h5 -o bits.png
  neuroemu export net.h5 -o net.nir               # NIR graph for other tools

MODEL: a Keras .h5/.keras/.json, .onnx, .nir, a neuroemu .npz, or 'digits' (bundled CNN).
""" + DATA_HELP + """

exit codes: 0 ok, 1 user/data error, 2 usage error, 3 chip limits not met (fit, also over
--max-chips; convert --strict).
file formats: docs/formats.md."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (usage)
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"neuroemu: error: {message}\n")


def _bits_list(text: str) -> list:
    """``4:10`` → 4..10, ``4,6,8`` → [4, 6, 8]."""
    try:
        if ":" in text:
            a, b = text.split(":")
            vals = list(range(int(a), int(b) + 1))
        else:
            vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bits must look like 4:10 or 4,6,8, got {text!r}") \
            from None
    if not vals or min(vals) < 2:
        raise argparse.ArgumentTypeError(f"bits must be >= 2, got {text!r}")
    return vals


def _csv(text: str) -> list:
    return [v.strip() for v in text.split(",") if v.strip()]


def _scale(text: str) -> float:
    """A positive number, also written as a fraction: ``0.5``, ``1/255``."""
    try:
        num, _, den = text.partition("/")
        v = float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a positive number or fraction such as 1/255, "
                                         f"got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"the input scale must be positive, got {text!r}")
    return v


def _cluster_options(p) -> None:
    g = p.add_argument_group("cluster (needs the 'dask' extra)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this Dask scheduler (e.g. tcp://10.0.0.1:8786)")
    g.add_argument("--workers", type=_positive, metavar="N",
                   help="run on a local cluster of N worker processes")
    g.add_argument("--chunk-size", type=_positive, metavar="S", help=argparse.SUPPRESS
                   if p.prog.endswith("sweep") else "samples per task (default: about four "
                   "tasks per worker, at most 1024)")


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _conversion_options(p, grid: bool = False):
    """The conversion options of ``convert``; ``sweep`` (``grid``) takes all but --method and
    --bits, which it replaces by its --methods × --bits grid."""
    g = p.add_argument_group("conversion options")
    if not grid:
        g.add_argument("--method", choices=("ecc", "robust", "max", "rmp"), default="ecc",
                       help="normalisation method (default ecc)")
        g.add_argument("--bits", type=int, default=8, help="signed weight bits (default 8)")
    g.add_argument("--profile", default=DEFAULT_PROFILE,
                   help=f"chip profile (default {DEFAULT_PROFILE})")
    g.add_argument("--calib-samples", type=_positive, default=500,
                   help="calibration samples used (default 500)")
    g.add_argument("--input-max", type=int, help="largest raw input value (default: what the "
                   "model says, else 255)")
    g.add_argument("--input-scale", type=_scale, metavar="S",
                   help="model units per raw integer, e.g. 1/255 for a model trained on "
                   "pixels/255 (default: what the model says; required when it says nothing)")
    g.add_argument("--reset", choices=("subtract", "zero"),
                   help="membrane reset after a spike (default subtract, Rueckauer 2017; "
                        "'zero' is Loihi 1's native reset)")
    g.add_argument("--encoding", choices=("analog", "rate", "bernoulli", "events"),
                   help="input coding (default analog: a constant current from the pixels; "
                        "events: camera events binned into --steps)")
    g.add_argument("--maxpool", choices=("gate", "runmax", "circuit", "avg"),
                   help="max-pooling as the spiking gate passing the current winner's spikes "
                        "(default, Rueckauer 2017), as a running maximum (a spike whenever the "
                        "window's highest input count exceeds the spikes passed so far: exact "
                        "window maximum), as the same running maximum built from plain IF "
                        "neurons (circuit: K+1 neurons per pooled neuron, no gate primitive), "
                        "or replaced by averaging")
    g.add_argument("--readout", choices=("v", "spikes"),
                   help="prediction = argmax of the output voltage (default) or spike counts")
    g.add_argument("--timing", choices=("sync", "hardware", "layerwise"),
                   help="sync: all layers within one step (delay 0, default); hardware: one "
                        "step per layer (delay 1, as on Loihi); layerwise: every layer "
                        "integrates for --steps steps, then fires for --steps steps (read the "
                        "prediction after layers x steps; a QCFS network then equals its "
                        "quantised ANN at --steps L)")
    g.add_argument("--avgpool", choices=("auto", "fold", "spike"),
                   help="average pooling folded into the next layer's weights (fold; auto, the "
                        "default, folds it after a QCFS activation) or a spiking average "
                        "population (spike)")
    g.add_argument("--percentile", type=float, metavar="P",
                   help="activation percentile of the normalisation scale (default 99.9 for "
                        "robust, 100 = the maximum for the other methods)")
    g.add_argument("--per-channel", action="store_true", default=None,
                   help="normalise each channel with its own scale")
    g.add_argument("--rho", type=float,
                   help="ECC residual elimination: initial voltage rho x threshold (default 0.5)")
    g.add_argument("--tre", choices=("vinit", "bias", "none"),
                   help="residual elimination as initial voltage (default for ecc), as a bias "
                        "of rho x threshold / T per step (needs --steps), or off (default for "
                        "the other methods)")
    g.add_argument("--rmp-scale", type=float, metavar="S",
                   help="'rmp' method: threshold scale factor (default 0.8)")
    if not grid:
        g.add_argument("--calibrate", choices=("light", "advanced"),
                       help="after conversion, correct the network layer by layer on the "
                            "calibration data (Li et al. 2021): light = biases per channel, "
                            "advanced = weights fitted to the ANN (re-quantised), then biases "
                            "per channel and per neuron; built for --calibrate-steps")
        g.add_argument("--calibrate-steps", type=_positive, metavar="T",
                       help="run length the calibration is built for (default --steps)")


_OPTION_NAMES = ("reset", "encoding", "maxpool", "readout", "timing", "percentile",
                 "per_channel", "rho", "tre", "rmp_scale", "avgpool")


def _options(args) -> dict:
    return {k: getattr(args, k) for k in _OPTION_NAMES if getattr(args, k, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="neuroemu", description=textwrap.fill(
        "Event-driven neuromorphic hardware emulator: convert a trained ReLU CNN into integer "
        "spiking cores that respect a chip's limits, check it fits, run it step by step "
        "counting every synaptic event, and report accuracy, energy and latency.", 88),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version",
                    version=f"neuroemu {__import__('neuroemu').__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars or notes")

    def add(name, help_, epilog=""):
        return sub.add_parser(name, help=help_, description=help_, parents=[common],
                              epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("convert", "convert a trained model into a core network (HDF5)",
            "example:\n  neuroemu convert digits --calibration digits-train --eval-data digits "
            "-o net.h5\n\n" + DATA_HELP)
    p.add_argument("model", help="model file or 'digits'")
    p.add_argument("--calibration", required=True, metavar="DATA",
                   help="calibration data (normalisation statistics)")
    p.add_argument("--steps", type=_positive, help="run length T (needed for event input, "
                   "--timing layerwise and "
                   "--tre bias)")
    p.add_argument("--eval-data", metavar="DATA", help="also store the float network's "
                   "predictions on DATA in the network file, for `run` to compare against")
    p.add_argument("--eval-samples", type=_positive, metavar="N",
                   help="use the first N samples of --eval-data (default all)")
    p.add_argument("-o", "--output", required=True, type=Path, help="network file (.h5)")
    p.add_argument("--strict", action="store_true",
                   help="refuse (exit 3, nothing written) a network that violates its "
                        "profile's limits; without it such a network is written with a "
                        "one-line warning")
    _conversion_options(p)

    p = add("fit", "feasibility report of a model or network on a chip",
            "examples:\n  neuroemu fit net.h5\n  neuroemu fit model.h5 --profile truenorth "
            "--json\n  neuroemu fit net.h5 --max-chips 1\n\nexit code 3 when the chip's "
            "limits are not met or more than --max-chips chips are needed.")
    p.add_argument("model", help="network file (from convert) or model file")
    p.add_argument("--profile", help=f"chip profile (default: the network's, else "
                   f"{DEFAULT_PROFILE})")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--max-chips", type=_positive, metavar="N",
                   help="chip budget: needing more than N chips is a violation (exit 3)")
    p.add_argument("--input-scale", type=_scale, metavar="S",
                   help="model units per raw integer (a model file that does not say it)")

    p = add("run", "run a core network on data and report accuracy, energy and latency",
            "example:\n  neuroemu run net.h5 --data digits --steps 64 --record conv1_relu "
            "-o run.h5\n\n" + DATA_HELP)
    p.add_argument("network", type=Path, help="network file (from convert)")
    p.add_argument("--data", required=True, help="test data")
    p.add_argument("--steps", type=_positive, required=True, help="time steps per sample")
    p.add_argument("--samples", type=_positive, help="use only the first N samples")
    p.add_argument("--record", type=_csv, default=[], metavar="POP,...",
                   help="populations whose spikes to keep (for raster plots)")
    p.add_argument("--model", help="recompute the float network's predictions with this model")
    p.add_argument("--profile", help="profile for energy/latency (default: the network's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_positive)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-o", "--output", type=Path, help="result file (.h5)")
    p.add_argument("--detail", type=_csv, default=[], metavar="KIND,...",
                   help="per-sample detail streamed into -o: predictions, final_predictions, "
                        "spike_counts (default none: memory does not grow with the samples)")
    _cluster_options(p)

    p = add("sweep", "resumable grid of methods x weight bits (one HDF5 group per point)",
            "example:\n  neuroemu sweep digits --calibration digits-train --data digits "
            "--bits 4:8 --methods ecc,robust --steps 64 -o sweep.h5\n\nRerunning the same "
            "command continues a stopped sweep; finished points are never repeated.")
    p.add_argument("model")
    p.add_argument("--calibration", required=True, metavar="DATA")
    p.add_argument("--data", required=True)
    p.add_argument("--bits", type=_bits_list, default=_bits_list("4:10"),
                   help="weight bits, 4:10 or 4,6,8 (default 4:10)")
    p.add_argument("--methods", type=_csv, default=["ecc", "robust"],
                   help="comma-separated methods (default ecc,robust)")
    p.add_argument("--steps", type=_positive, default=256)
    p.add_argument("--samples", type=_positive)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after", type=_positive, help=argparse.SUPPRESS)  # test hook
    _cluster_options(p)
    p.add_argument("-o", "--output", required=True, type=Path)
    _conversion_options(p, grid=True)

    p = add("export", "write a core network as a NIR graph (the interchange format read by "
            "snnTorch, Norse, Sinabs, Rockpool, Lava-DL, SpiNNaker2, Nengo)",
            "example:\n  neuroemu export net.h5 -o net.nir\n\n" + textwrap.fill(
                "Integer weights and thresholds stay integers; what NIR cannot express (reset "
                "by subtraction, the >= rule, weight exponents, bit widths, overflow policy, "
                "delays, the max-pool gate, cores) is in node metadata, so `neuroemu fit/run "
                "net.nir` reads the same network back. Leaky neurons, asymmetric padding, "
                "non-square kernels and dense projections into maps cannot be carried (an "
                "error names them).", 88))
    p.add_argument("network", type=Path, help="network file (from convert)")
    p.add_argument("-o", "--output", required=True, type=Path, help="NIR file (.nir)")

    p = add("plot", "draw a figure from a result, sweep or network file",
            "kinds:\n  raster    spike raster of recorded populations (result)\n"
            "  accuracy  accuracy vs time step (result or sweep)\n"
            "  bits      accuracy vs weight bits (sweep)\n"
            "  energy    energy per sample vs accuracy (sweep); by event class (result)\n"
            "  breakdown energy per sample by event class: synaptic, neuron updates,\n"
            "            spikes, messages, hops, static (result, or every sweep point)\n"
            "  rates     per-layer firing rates (result)\n"
            "  cores     core utilisation per limit (result or network)\n\n"
            "example:\n  neuroemu plot raster run.h5 -o raster.png")
    p.add_argument("kind", choices=("raster", "accuracy", "bits", "energy", "breakdown",
                                    "rates", "cores"))
    p.add_argument("file", type=Path, help="RESULT.h5, SWEEP.h5 (or NET.h5 for cores)")
    p.add_argument("-o", "--output", required=True, type=Path, help="figure file (.png)")
    p.add_argument("--sample", type=int, default=0, help="raster: which sample")
    p.add_argument("--bits", type=int, help="accuracy of a sweep: which weight width")
    p.add_argument("--profile", help="cores: profile (default: the network's)")

    p = add("demo", "convert, check, run, sweep and plot the bundled digits CNN",
            "example:\n  neuroemu demo -o demo-out\n  neuroemu demo --data   # MNIST + "
            "tests_99.20 from the shared data")
    p.add_argument("-o", "--output", type=Path, default=Path("neuroemu-demo"))
    p.add_argument("--quick", action="store_true", help="fewer samples, steps and bits")
    p.add_argument("--data", action="store_true",
                   help="use MNIST and the shared tests_99.20 Keras model instead")
    return ap


# ---------------------------------------------------------------------------------------------

def _say(args, *msg):
    if not getattr(args, "quiet", False):
        print(*msg, file=sys.stderr)


def cmd_convert(args) -> int:
    from .pipeline import convert_model
    t0 = time.perf_counter()
    _say(args, f"converting {args.model} ({args.method}, {args.bits}-bit, {args.profile}) …")
    net = convert_model(args.model, args.calibration, args.method, args.bits, args.profile,
                        args.steps, calib_samples=args.calib_samples, eval_data=args.eval_data,
                        eval_samples=args.eval_samples, input_scale=args.input_scale,
                        input_max=args.input_max, progress=not args.quiet,
                        calibrate=args.calibrate, calibrate_steps=args.calibrate_steps,
                        **_options(args))
    from .pipeline import profile_violation
    problem = profile_violation(net)
    if problem and args.strict:
        print(f"neuroemu: error: {problem}; {args.output} not written (--strict)",
              file=sys.stderr)
        return EXIT_LIMITS
    net.save(args.output)
    if problem:
        print(f"neuroemu: warning: {problem} (`neuroemu fit {args.output}` for the report)",
              file=sys.stderr)
    print(net.summary())
    for note in net.meta.get("notes", []):
        print(f"note: {note}")
    ref = net.meta.get("float_reference")
    if ref and "accuracy" in ref:
        print(f"float accuracy on {ref['source']} ({ref['samples']} samples): "
              f"{ref['accuracy']:.2%} (stored for `neuroemu run`)")
    print(f"wrote {args.output} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_fit(args) -> int:
    from .pipeline import _jsonify, fit
    rep = fit(str(args.model), args.profile, args.input_scale, max_chips=args.max_chips)
    if args.json:
        print(json.dumps(_jsonify(rep.to_dict()), indent=2))
    else:
        print(str(rep))
    return 0 if rep.fits else EXIT_LIMITS


def cmd_run(args) -> int:
    from .pipeline import _jsonify, evaluate, load_network, save_evaluation
    net = load_network(args.network)
    made_for = net.meta.get("steps")
    if net.input.encoding == "events" and made_for and made_for != args.steps:
        _say(args, f"note: {args.network} was converted for {made_for} steps; events binned "
                   f"into {args.steps} steps arrive at a different rate (reconvert with "
                   f"--steps {args.steps})")
    if args.detail and not args.output:
        raise DataError("--detail streams into the result file: give -o FILE")
    from .cluster import cluster_client
    with cluster_client(args.scheduler, args.workers) as client:
        ev = evaluate(net, args.data, args.steps, samples=args.samples, model=args.model,
                      record=args.record, seed=args.seed, profile=args.profile,
                      threads=args.threads, progress=not args.quiet, client=client,
                      detail=args.detail, detail_file=args.output, chunk_size=args.chunk_size)
    if args.output:
        save_evaluation(ev, net, args.output, {"data": str(args.data),
                                               "network": str(args.network)})
    if args.json:
        print(json.dumps(_jsonify(ev.to_dict()), indent=2))
    else:
        print(str(ev))
        if args.output:
            print(f"wrote {args.output}")
    return 0


def cmd_sweep(args) -> int:
    import os

    from .pipeline import sweep
    from .sweep import STOP_ENV, SweepStopped
    if args.stop_after:
        os.environ[STOP_ENV] = str(args.stop_after)
    opts = {k.replace("-", "_"): getattr(args, k.replace("-", "_")) for k in _OPTION_NAMES
            if getattr(args, k, None) is not None}
    from .cluster import cluster_client
    try:
        with cluster_client(args.scheduler, args.workers) as client:
            sweep(args.model, args.calibration, args.data, args.output, bits=args.bits,
                  methods=args.methods, steps=args.steps, samples=args.samples,
                  calib_samples=args.calib_samples, profile=args.profile, seed=args.seed,
                  input_scale=args.input_scale, input_max=args.input_max,
                  progress=not args.quiet, log=lambda s: _say(args, s), client=client, **opts)
    except SweepStopped as exc:
        print(f"neuroemu: sweep {exc}; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPT
    from .sweep import read_sweep
    sw = read_sweep(args.output)
    print(f"{'point':<14}{'accuracy':>10}{'synops/sample':>16}{'energy/sample':>16}  fits")
    from .pipeline import format_joules, format_percent
    for k, p in sw["points"].items():
        if p.get("status") == "failed":
            print(f"{k:<14}  cannot convert: {p['error']}")
            continue
        print(f"{k:<14}{format_percent(float(p['accuracy'][-1])):>10}"
              f"{p['synops_per_sample']:>16,.0f}"
              f"{format_joules(p['energy_per_sample']):>16}  "
              f"{p.get('fit_reason') or ('yes' if p['feasible'] else 'no')}")
    print(f"wrote {args.output} ({len(sw['points'])} points)")
    return 0


def cmd_export(args) -> int:
    from converter.nir_export import export_nir

    from .pipeline import load_network
    net = load_network(args.network)
    export_nir(net, args.output, inputs=(args.network,))
    print(f"wrote {args.output} (NIR: {len(net.populations)} populations, "
          f"{len(net.projections)} projections)")
    return 0


def _file_format(path: Path) -> str:
    from hw_models.h5io import attr_str, open_h5
    with open_h5(path) as f:
        return str(attr_str(f, "format", ""))


def cmd_plot(args) -> int:
    from emulator import plots
    from hw_models.errors import DataError
    fmt = _file_format(args.file)
    kind = args.kind
    if fmt == "neuroemu.Sweep":
        from .sweep import read_sweep
        sw = read_sweep(args.file)
        fn = {"accuracy": lambda: plots.sweep_accuracy_vs_steps(sw, args.bits, path=args.output),
              "bits": lambda: plots.sweep_accuracy_vs_bits(sw, path=args.output),
              "energy": lambda: plots.sweep_energy_vs_accuracy(sw, path=args.output),
              "breakdown": lambda: plots.sweep_energy_breakdown(sw, path=args.output)}.get(kind)
    elif fmt == "neuroemu.Result":
        from emulator.result import Result
        res = Result.load(args.file)
        cu = res.meta.get("core_usage")
        fn = {"raster": lambda: plots.spike_raster(res, args.sample, path=args.output),
              "energy": lambda: plots.result_energy_breakdown(res, path=args.output),
              "breakdown": lambda: plots.result_energy_breakdown(res, path=args.output),
              "accuracy": lambda: plots.result_accuracy(
                  res, res.meta.get("float_accuracy"), path=args.output),
              "rates": lambda: plots.result_firing_rates(
                  res, res.meta.get("populations"), path=args.output),
              "cores": (lambda: plots.core_utilisation(
                  cu["usage"], cu["limits"], cu["population"],
                  title=f"core utilisation on {res.meta.get('profile', '?')}",
                  path=args.output)) if cu else None}.get(kind)
    elif fmt == "neuroemu.CoreNetwork":
        from .pipeline import core_usage, load_network
        net = load_network(args.file)
        prof = get_profile(args.profile or net.profile or DEFAULT_PROFILE)
        cu = core_usage(net, prof)
        fn = (lambda: plots.core_utilisation(cu["usage"], cu["limits"], cu["population"],
                                             title=f"core utilisation on {prof.name}",
                                             path=args.output)) \
            if kind == "cores" and cu else None
    else:
        raise DataError(f"{args.file}: not a neuroemu result, sweep or network file "
                        f"(format {fmt!r})")
    if fn is None:
        raise DataError(f"plot {kind!r} cannot be drawn from a {fmt} file (see "
                        f"`neuroemu plot --help`)")
    fn()
    print(f"wrote {args.output}")
    return 0


def cmd_demo(args) -> int:
    from .run_demo import demo
    t0 = time.perf_counter()
    summary = demo(args.output, quick=args.quick, mnist=args.data, progress=not args.quiet,
                   log=(lambda *a: None) if args.quiet else print)
    out = args.output.resolve()
    if args.quiet:
        print((out / "summary.txt").read_text())
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; everything is in {out}/:")
    for name in ("summary.txt", "summary.json", "feasibility.txt", "network.h5", "result.h5",
                 "sweep.h5"):
        print(f"  {out / name}")
    for kind, f in summary["files"].items():
        print(f"  {f}  ({kind})")
    return 0


_INPUT_ARGS = ("model", "calibration", "data", "eval_data", "network", "file")


def _check_output_args(args) -> None:
    """The -o rules of :mod:`hw_models.safeio`: never an existing directory, never the same file
    as any input of the command (same path, symlink or hard link)."""
    out = getattr(args, "output", None)
    if out is None or args.command == "demo":  # demo's -o is a folder
        return
    from hw_models.safeio import check_output
    check_output(out, [getattr(args, k) for k in _INPUT_ARGS if getattr(args, k, None)],
                 what="-o")


COMMANDS = {"convert": cmd_convert, "fit": cmd_fit, "run": cmd_run, "sweep": cmd_sweep,
            "export": cmd_export, "plot": cmd_plot, "demo": cmd_demo}


def main(argv=None) -> int:
    """Entry point of the ``neuroemu`` script; returns the exit code (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        _check_output_args(args)
        return COMMANDS[args.command](args)
    except NeuroemuError as exc:
        print(f"neuroemu: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, KeyError) as exc:
        if isinstance(exc, KeyError):
            raise
        print(f"neuroemu: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if getattr(args, "output", None) is not None and args.command != "demo":
            from hw_models.safeio import sweep_stale
            sweep_stale(args.output, own=True)  # a temporary the interrupt left half-made
        print("neuroemu: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
