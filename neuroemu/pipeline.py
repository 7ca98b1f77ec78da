"""One-call pipelines: model file → core network → run → report.

The facade is the only layer that sees both the converter and the emulator (DESIGN.md).  Every
function here is what a CLI sub-command calls, so the command line and Python give the same
numbers:

* :func:`load_graph` — a model file (Keras, ONNX, NIR, or a neuroemu ``.npz``) or ``digits``;
* :func:`convert_model` — import, convert, remember the float reference in ``net.meta``;
* :func:`fit` — the feasibility report of a model or network on a chip profile;
* :func:`evaluate` — run a network on data: accuracy per step, agreement with the float network,
  steps to reach the float accuracy, synaptic operations, energy next to the ANN's MAC energy,
  latency (:class:`Evaluation`);
* :func:`sweep` — a resumable (method × weight bits) grid in one HDF5 file;
* :func:`format_joules`, :func:`format_percent` — the number formats of the reports.

(``neuroemu.demo`` lives in :mod:`neuroemu.run_demo`, which builds on this module.)

Data are the raw arrays as loaded (uint8 pixels, event streams); every call reads them through
the model's input spec (:mod:`hw_models.inputspec`), checked *before* any conversion or
simulation starts.  A model that does not say its input scale needs ``input_scale`` (never
guessed).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw_models.energy import format_joules
from hw_models.errors import ConversionError, DataError, NeuroemuError
from hw_models.profiles import DEFAULT_PROFILE

from hw_models.safeio import check_int

from .data import Dataset, load_data

ASSETS = Path(__file__).resolve().parent / "assets"
DIGITS_MODEL = ASSETS / "digits_cnn.npz"


# ---------------------------------------------------------------------------------------------
# models

def graph_from_npz(path: str | os.PathLike):
    """A Graph from a neuroemu model ``.npz`` (:mod:`converter.npz_import`)."""
    from converter.npz_import import load_npz_model
    return load_npz_model(path)


def load_graph(model, input_scale: float | None = None):
    """``"digits"`` (the bundled demo CNN), a neuroemu ``.npz`` or any file
    :func:`converter.load.load_model` reads."""
    if not isinstance(model, (str, os.PathLike)):
        return model  # already a Graph
    if str(model) == "digits" and not Path("digits").exists():
        model = DIGITS_MODEL
    from converter.load import load_model
    return load_model(Path(model), input_scale)


def is_network_file(path) -> bool:
    """True for an HDF5 file written by :meth:`CoreNetwork.save`, or a NIR file written by
    ``neuroemu export`` (:func:`converter.nir_export.export_nir`)."""
    import h5py

    from hw_models.h5io import attr_str
    from hw_models.network import FORMAT_NAME
    try:
        with h5py.File(path, "r") as f:
            if attr_str(f, "format") == FORMAT_NAME:
                return True
    except OSError:
        return False
    from converter.nir_import import is_neuroemu_nir
    return is_neuroemu_nir(path)


def neuroemu_file_format(path) -> str | None:
    """The ``format`` attribute of a neuroemu HDF5 file ("neuroemu.CoreNetwork",
    "neuroemu.Result", "neuroemu.Sweep"), None for any other file."""
    import h5py
    from hw_models.h5io import attr_str
    try:
        with h5py.File(path, "r") as f:
            fmt = attr_str(f, "format")
    except (OSError, ValueError, TypeError):
        return None
    return fmt if isinstance(fmt, str) and fmt.startswith("neuroemu.") else None


def load_network(path):
    """A CoreNetwork from its HDF5 file or from a NIR file written by ``neuroemu export``."""
    from converter.nir_import import is_neuroemu_nir
    from hw_models.network import CoreNetwork
    if is_neuroemu_nir(path):
        from converter.nir_import import load_nir_network
        return load_nir_network(path)
    return CoreNetwork.load(path)


def ann_macs(graph) -> int:
    """Multiply-accumulates of the float network per sample (conv and dense layers)."""
    from converter.passes import count_macs
    return int(count_macs(graph)["total"])


def resolve_input(graph, input_scale: float | None = None, input_max: int | None = None):
    """``graph`` with its input spec completed: an explicit ``input_scale`` / ``input_max``
    overrides what the model file says.  A model that does not say its scale and no
    ``input_scale`` is a :class:`DataError`: the scale is never guessed (a 1/255 guess turns a
    model trained on raw 0..255, such as the ONNX zoo's mnist-8, into a network that fails
    without a word)."""
    changes = {}
    if input_scale is not None:
        changes["scale"] = float(input_scale)
    if input_max is not None:
        changes["raw_max"] = int(input_max)
    g = graph.with_input_spec(**changes) if changes else graph
    if g.input_spec.scale is None:
        raise DataError(f"model {graph.name!r} does not say its input scale (model units per "
                        f"raw integer): give --input-scale / input_scale= (e.g. 1/255 = "
                        f"0.00392156862745098 for a model trained on pixels/255, 1 for raw "
                        f"0..255)")
    return g


def check_data(spec, ds: Dataset, what: str = "data") -> None:
    """Refuse image data that do not fit ``spec`` (shape, raw range) before any work; event
    data are checked when binned."""
    if ds.kind == "images":
        spec.check_raw(ds.x, f"{what} {ds.source}")


# ---------------------------------------------------------------------------------------------
# convert / fit

def convert_model(model, calibration, method: str = "ecc", bits: int = 8,
                  profile=DEFAULT_PROFILE, steps: int | None = None, *,
                  calib_samples: int | None = 500, eval_data=None, eval_samples: int | None = None,
                  input_scale: float | None = None, input_max: int | None = None,
                  graph=None, progress: bool = False, calibrate: str | None = None,
                  calibrate_steps: int | None = None, **options):
    """Import ``model``, convert it with ``calibration`` data (raw, as loaded), and store in
    ``net.meta`` what a later run needs to compare with the float network:
    ``float_reference`` (predictions and accuracy on ``eval_data`` with its fingerprint) and
    ``convert_options``.  ``profile`` is a name or a :class:`~hw_models.profiles.ChipProfile`
    (a what-if variant travels with the network).  ``calibrate`` ("light" | "advanced") then
    corrects the biases (and, for "advanced", first the weights, re-quantised to the network's
    bits) on the same calibration data for the run length ``calibrate_steps``
    (default ``steps``) by running the integer network (:mod:`neuroemu.calibrate`, Li et al.
    2021)."""
    from tqdm import tqdm
    convert = _converter_fn("convert")
    bar = tqdm(total=4, desc="convert", unit="stage", leave=False, disable=not progress,
               bar_format="{desc}: {n}/{total} stages {postfix} [{elapsed}]")
    bar.set_postfix_str("load model")
    graph = resolve_input(graph if graph is not None else load_graph(model, input_scale),
                          input_scale, input_max)
    bar.update()
    bar.set_postfix_str("check data")
    calib = calibration if isinstance(calibration, Dataset) else load_data(calibration, "train")
    calib = calib.subset(calib_samples)
    if calib.kind == "events":  # calibrate on event counts per pixel (what the events deliver)
        xc = event_counts(graph, calib)
        options.setdefault("encoding", "events")
    else:
        check_data(graph.input_spec, calib, "calibration")
        xc = calib.x
    ev = None
    if eval_data is not None:
        ev = eval_data if isinstance(eval_data, Dataset) else load_data(eval_data)
        ev = ev.subset(eval_samples)
        check_data(graph.input_spec, ev)
    if options.get("encoding") == "events" and not steps:
        raise DataError("event input needs --steps at conversion (the run length T sets the "
                        "scale of one event: one spike per step is T x the model's scale per "
                        "event count)")
    bar.update()
    bar.set_postfix_str(f"calibrate on {len(xc)} samples, quantise, map")
    net = convert(graph, xc, method=method, weight_bits=bits, profile=profile, steps=steps,
                  **options)
    if calibrate is not None:
        from .calibrate import calibrate as _calibrate
        if calib.kind == "events":
            raise DataError("calibrate= needs image calibration data (it runs the network on "
                            "it); event data is not supported yet")
        t_cal = calibrate_steps or steps
        if not t_cal:
            raise DataError("calibrate= needs the run length T: give --steps or "
                            "--calibrate-steps")
        bar.set_postfix_str(f"SNN calibration ({calibrate}, T = {t_cal})")
        net = _calibrate(net, graph, xc, graph.input_spec.scale, int(t_cal), calibrate)
    bar.update()
    bar.set_postfix_str("float reference")
    meta = dict(net.meta)
    meta["convert_options"] = dict(
        method=method, weight_bits=bits, profile=_profile_name(profile), steps=steps,
        calibrate=calibrate, calibrate_steps=calibrate_steps,
        model=str(model), calibration=calib.source, calib_samples=len(calib),
        input_scale=_jsonable(net.spec.scale), input_max=net.spec.raw_max,
        **{k: _jsonable(v) for k, v in options.items()})
    if ev is not None:
        meta["float_reference"] = float_reference(graph, ev)
    net.meta = meta
    bar.update()
    bar.close()
    return net


def event_counts(graph, ds: Dataset) -> np.ndarray:
    """Events per pixel and polarity channel as raw integers, in the model's input layout."""
    from emulator.event_input import count_frames
    shape = tuple(graph.input_spec.internal_shape)
    if len(shape) != 3 or shape[:2] != tuple(ds.sensor or ()) or shape[2] not in (1, 2):
        raise DataError(f"{ds.source}: events from a {ds.sensor} sensor do not fit the model "
                        f"input {shape} (H, W, 1 or 2 polarity channels)")
    x = count_frames(ds.x, shape, window_us=None, scale=1.0)
    x = np.rint(x).astype(np.int64).reshape((len(x),) + shape)
    return graph.input_spec.from_internal(x)


def float_reference(graph, ds: Dataset) -> dict:
    """The float network's predictions (and accuracy) on ``ds``, with the data's fingerprint."""
    if ds.kind == "events":
        x = event_counts(graph, ds)
        graph = graph.with_input_spec(raw_max=None, encoding="events")  # counts are unbounded
    else:
        x = ds.x
    pred = graph.predict(x).argmax(axis=-1)
    ref = {"source": ds.source, "samples": len(ds), "fingerprint": ds.fingerprint(),
           "predictions": pred.astype(int).tolist()}
    if ds.y is not None:
        ref["accuracy"] = float(np.mean(pred == ds.y))
    return ref


def _profile_name(profile) -> str:
    from hw_models.profiles import get_profile
    return get_profile(profile).name


def _jsonable(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(i) for i in v]
    return v


def _converter_fn(name):
    """``converter.<name>``, imported on first use so that ``import neuroemu`` stays light."""
    import converter
    return getattr(converter, name)


def _emulator_run():
    import emulator
    return emulator.run


def fit(model_or_net, profile=None, input_scale: float | None = None,
        max_chips: int | None = None):
    """Feasibility report (``str()``, ``to_dict()``, ``ok``) of a model or network on a profile.

    ``profile``: a name or a :class:`~hw_models.profiles.ChipProfile` (a what-if variant's limits
    are the ones checked); None = the profile a network was converted for, else
    :data:`~hw_models.profiles.DEFAULT_PROFILE`.  A network file is checked as it is; a model
    is checked as a graph (the converter's estimate).  ``max_chips``: a chip budget; needing
    more is a violation (``fits`` False).
    """
    obj = model_or_net
    if isinstance(obj, (str, os.PathLike)):
        kind = neuroemu_file_format(obj)
        if kind not in (None, "neuroemu.CoreNetwork"):
            raise DataError(f"{obj}: this is a neuroemu {kind.split('.')[-1].lower()} file "
                            f"(format {kind!r}), not a network or a model; `fit` takes a "
                            f"network file from `neuroemu convert` or a model file")
        obj = load_network(obj) if is_network_file(obj) else load_graph(obj, input_scale)
    return _converter_fn("feasibility")(obj, profile, max_chips=max_chips)


def profile_violation(net, profile=None, max_chips: int | None = None):
    """One line saying how ``net`` violates its profile (or ``profile``), as ``neuroemu fit``
    would reject it (exit 3), or None when it fits.  ``convert`` prints it as a warning, and
    ``convert --strict`` as an error."""
    rep = fit(net, profile or net.profile, max_chips=max_chips)
    if rep.fits:
        return None
    return f"the network violates {rep.profile} ({rep.chips_line}): {rep.first_violation}"


# ---------------------------------------------------------------------------------------------
# evaluate

@dataclass
class Evaluation:
    """What ``neuroemu run`` prints; :meth:`to_dict` is JSON-able, ``str()`` is the text."""

    samples: int
    steps: int
    profile: str                          # name of the profile whose energies are reported
    accuracy: np.ndarray                  # (T,) SNN accuracy per step (NaN without labels)
    float_accuracy: float | None
    agreement: np.ndarray | None          # (T,) fraction of samples agreeing with the float net
    steps_to_float: int | None            # first step at which accuracy ≥ float accuracy
    settle_steps: float                   # mean step after which each prediction stays put
    synops_per_sample: float
    energy: object                        # hw_models.energy.EnergyReport
    latency: object                       # hw_models.energy.LatencyReport (settle steps)
    ann_macs: int | None
    float_source: str = ""
    neurobench: dict | None = None        # hw_models.metrics.neurobench_metrics
    result: object = field(default=None, repr=False)
    wall_seconds: float = 0.0
    #: hw_models.latency.LatencyModelReport: slowest core per step, counted work
    step_latency: object = None
    chip_profile: object = field(default=None, repr=False)  # the ChipProfile used (what-if too)

    @property
    def final_accuracy(self) -> float:
        return float(self.accuracy[-1])

    def to_dict(self) -> dict:
        e = self.energy.to_dict() if self.energy is not None else None
        return {"samples": self.samples, "steps": self.steps, "profile": self.profile,
                "final_accuracy": _nan(self.final_accuracy),
                "float_accuracy": self.float_accuracy, "float_source": self.float_source,
                "final_agreement": None if self.agreement is None
                else float(self.agreement[-1]),
                "steps_to_float_accuracy": self.steps_to_float,
                "mean_settle_steps": self.settle_steps,
                "synops_per_sample": self.synops_per_sample,
                "energy_per_sample_j": None if self.energy is None
                else float(self.energy.per_sample),
                "ann_macs_per_sample": self.ann_macs,
                "energy": e, "latency": self.latency.to_dict() if self.latency else None,
                "neurobench": self.neurobench,
                "step_latency": self.step_latency.to_dict() if self.step_latency else None,
                "wall_seconds": round(self.wall_seconds, 3)}

    def __str__(self) -> str:
        T = self.steps
        fa = "unknown (convert with --eval-data or pass --model)" if self.float_accuracy is None \
            else f"{self.float_accuracy:.2%}"
        reach = ("not reached" if self.steps_to_float is None else
                 f"step {self.steps_to_float} (and kept to the end)")
        lines = [f"samples {self.samples}, steps {T}, profile {self.profile}",
                 f"accuracy at step {T}: {format_percent(self.final_accuracy)}   "
                 f"float network: {fa}",
                 f"float accuracy reached at: {reach}"]
        if self.agreement is not None:
            lines.append(f"agreement with the float network at step {T}: "
                         f"{self.agreement[-1]:.2%}")
        lines.append(f"synaptic operations per sample: {self.synops_per_sample:,.0f}")
        if self.energy is not None:
            e = self.energy
            ann = ""
            if self.ann_macs:
                from hw_models.profiles import E_MAC_FP32, E_MAC_INT8
                ann = (f"   ANN: {self.ann_macs:,} MACs = "
                       f"{format_joules(self.ann_macs * E_MAC_FP32)} FP32, "
                       f"{format_joules(self.ann_macs * E_MAC_INT8)} INT8 (Horowitz 2014)")
            lines.append(f"energy per sample on {self.profile}: "
                         f"{format_joules(e.per_sample)}{ann}")
        if self.step_latency is not None:
            sl = self.step_latency
            pub = "" if sl.published else " (per-event times UNPUBLISHED: assumptions)"
            lines.append(f"latency per inference on {self.profile}: {sl.latency * 1e6:.4g} µs "
                         f"(mean settle step {self.settle_steps:.1f}, step "
                         f"{sl.step_time_mean * 1e6:.3g} µs mean, slowest core per step)"
                         f"{pub}; throughput {sl.throughput:,.0f} inferences/s at {T} steps; "
                         f"critical core {sl.critical_core}"
                         + (f" ({sl.critical_layer})" if sl.critical_layer else ""))
        elif self.latency is not None:
            lines.append(f"latency: mean settle step {self.settle_steps:.1f} = "
                         f"{self.latency.seconds * 1e3:.3g} ms on {self.profile}")
        if self.neurobench is not None:
            from hw_models.metrics import format_metrics
            lines += format_metrics(self.neurobench)
        return "\n".join(lines)


def format_percent(v) -> str:
    """``0.9876`` → ``"98.76%"``; None or NaN → ``"n/a (no labels)"``."""
    return "n/a (no labels)" if v is None or np.isnan(v) else f"{v:.2%}"


def _nan(v):
    return None if v is None or np.isnan(v) else float(v)




def prepare_inputs(net, ds: Dataset, steps: int):
    """Engine input for ``ds``: raw images checked against the network's input population, or
    event streams binned into ``steps``.  Raises DataError before any work on a mismatch."""
    inp = net.input
    if len(ds) == 0:
        raise DataError(f"data {ds.source}: no samples")
    if ds.kind == "events":
        if inp.encoding != "events":
            raise DataError(f"{ds.source}: event data needs a network with an 'events' input "
                            f"(this one has {inp.encoding!r})")
        from emulator.event_input import bin_events
        shape = tuple(inp.shape)
        if len(shape) != 3 or tuple(shape[:2]) != tuple(ds.sensor or shape[:2]):
            raise DataError(f"{ds.source}: sensor {ds.sensor} does not match the network input "
                            f"{shape}")
        return bin_events(ds.x, shape, steps)
    net.spec.as_raw(ds.x, f"data {ds.source}")   # the check emulator.run makes, made early
    return ds.x


def evaluate(net, data, steps: int, *, samples: int | None = None, model=None,
             record=(), seed: int = 0, profile=None, threads=None,
             progress=False, input_scale: float | None = None, client=None,
             detail=(), detail_file=None, chunk_size: int | None = None) -> Evaluation:
    """Run ``net`` on ``data`` (raw, as loaded) for ``steps`` and report (:class:`Evaluation`).

    ``profile``: a name or a :class:`~hw_models.profiles.ChipProfile` whose energies and times
    are reported (a what-if variant's own numbers); None = the profile the network was
    converted for.  ``model`` recomputes the float reference (``input_scale`` for a model that
    does not say it; default the scale the network was converted with).

    Accuracy, agreement with the float network, settle steps and counters are reduced chunk by
    chunk, so memory does not grow with the number of samples.  ``detail`` (``predictions``,
    ``final_predictions``, ``spike_counts``) and the rasters of ``record`` are kept in memory,
    or streamed into ``detail_file`` (then completed by :func:`save_evaluation` to that path).
    ``client``: a ``distributed.Client`` to run the samples on (:mod:`emulator.backends`)."""
    from hw_models.energy import energy_report, latency_report
    from hw_models.profiles import get_profile, is_stock
    t0 = time.perf_counter()
    if isinstance(net, (str, os.PathLike)):
        net = load_network(net)
    whole = data if isinstance(data, Dataset) else load_data(data)
    ds = whole.subset(samples)
    steps = check_int(steps, "steps")
    x = prepare_inputs(net, ds, steps)          # refuses wrong shapes before any work
    for name in record:
        net.population(name)                     # unknown population: error before the run
    # a misspelled profile is an error before the run, not a missing energy line after it
    chip = get_profile(profile or net.profile or DEFAULT_PROFILE)
    # float reference: stored at convert time for these exact samples, or recomputed
    fref, fsrc = None, ""
    if model is not None:
        graph = load_graph(model, input_scale)
        if input_scale is None and graph.input_scale is None and net.spec.scale is not None:
            input_scale = net.spec.scale   # the scale the network was converted with
        graph = resolve_input(graph, input_scale)
        fref = np.asarray(float_reference(graph, ds)["predictions"])
        fsrc = f"recomputed with {model}"
        macs = ann_macs(graph)
    else:
        macs = net.meta.get("ann_macs")
        ref = net.meta.get("float_reference")
        if ref:
            full = ds if ds.info.get("start", 0) == 0 else None
            if full is not None and len(ds) <= ref["samples"]:
                if whole.fingerprint() == ref["fingerprint"] or \
                        whole.subset(ref["samples"]).fingerprint() == ref["fingerprint"]:
                    fref = _stored_predictions(ref, len(ds), net)
                    fsrc = f"stored at conversion ({ref['source']})"
    run = _emulator_run()
    res = run(net, x, steps, labels=ds.y, record=tuple(record), seed=seed, threads=threads,
              progress=progress, client=client, detail=tuple(detail), detail_file=detail_file,
              references=None if fref is None else {"float": np.asarray(fref)},
              chunk_size=chunk_size, timing=chip)
    acc = np.asarray(res.accuracy, float) if ds.y is not None else np.full(steps, np.nan)
    agreement = res.agreement("float")
    float_acc = None
    if fref is not None and ds.y is not None:
        float_acc = float(np.mean(fref == ds.y))
    steps_to = None
    if float_acc is not None:   # first step from which the accuracy stays >= the float one
        steps_to = res.steps_to_accuracy(float_acc - 1e-12)
    settle = res.mean_settle_step
    settle = float("nan") if settle is None else settle
    counters = dict(res.counters)
    energy = energy_report(counters, chip, steps=steps, samples=len(ds), ann_macs=macs)
    latency = latency_report(settle, chip)
    step_lat = None
    if getattr(res, "work", None) is not None:
        layers = [None] * net.n_cores
        for name, cores in net.core_assignment().items():
            pop = net.population(name)
            if pop.is_input and pop.encoding == "analog":
                continue  # the host core
            for k in np.unique(cores):
                layers[int(k)] = name
        step_lat = res.latency_report(core_layers=layers, profile=chip)
    synops = float(np.sum(counters.get("synaptic_events", 0))) / len(ds)
    from hw_models.metrics import neurobench_metrics
    nz = None
    if net.input.encoding == "analog":
        nz = res.input_nonzero   # reduced by the engine chunk by chunk
        if nz is None:
            xi = net.spec.as_raw(x)
            nz = (xi.reshape(len(xi), -1) != 0).sum(axis=0)
    nb = neurobench_metrics(net, res.spike_sum, steps, len(ds), input_nonzero=nz)
    label = chip.name if is_stock(chip) else f"{chip.name} (what-if)"
    ev = Evaluation(samples=len(ds), steps=steps, profile=label, accuracy=acc,
                    float_accuracy=float_acc, agreement=agreement, steps_to_float=steps_to,
                    settle_steps=settle, synops_per_sample=synops, energy=energy,
                    latency=latency, ann_macs=None if macs is None else int(macs),
                    float_source=fsrc, neurobench=nb, result=res,
                    wall_seconds=time.perf_counter() - t0, step_latency=step_lat,
                    chip_profile=chip)
    return ev


def _stored_predictions(ref: dict, n: int, net) -> np.ndarray:
    """The first ``n`` float predictions stored at conversion, checked: a damaged reference is
    an error that names it, not a broadcasting traceback or a silently wrong agreement."""
    from hw_models.errors import FileFormatError
    try:
        p = np.asarray(ref["predictions"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FileFormatError(f"the network's stored float reference is damaged ({exc}); "
                              f"reconvert or pass --model") from None
    classes = net.population(net.output).size
    if p.ndim != 1 or len(p) < n or p.dtype.kind not in "iu" or \
            (p.size and (p.min() < 0 or p.max() >= classes)):
        raise FileFormatError(f"the network's stored float reference is damaged: predictions "
                              f"{p.dtype} {p.shape}, expected {n} or more classes in "
                              f"0..{classes - 1}; reconvert or pass --model")
    return p[:n].astype(np.int64)


def settle_steps(pred: np.ndarray) -> np.ndarray:
    """Per sample, the first step (1-based) from which the prediction never changes again."""
    from emulator.result import settle_steps as _settle
    return _settle(pred)


def save_evaluation(ev: Evaluation, net, path, extra: dict | None = None) -> Path:
    """Write the run's Result with the report, float reference, energy per event class,
    profile and every conversion option in its ``meta`` (atomic, see docs/formats.md)."""
    res = ev.result
    meta = dict(getattr(res, "meta", {}) or {})
    meta.update({"report": ev.to_dict(), "profile": ev.profile,
                 "convert_options": net.meta.get("convert_options", {}),
                 "float_accuracy": ev.float_accuracy,
                 "accuracy": [_nan(a) for a in ev.accuracy],
                 "agreement": None if ev.agreement is None else ev.agreement.tolist(),
                 "core_usage": core_usage(net, ev.chip_profile or ev.profile),
                 "populations": [p.name for p in net.populations if not p.is_input],
                 "shapes": {p.name: list(p.shape) for p in net.populations}})
    meta.update(extra or {})
    res.meta = meta
    res.save(path)
    return Path(path)


def core_usage(net, profile) -> dict | None:
    """``{"limits": {name: max}, "usage": {name: [per core]}, "population": [per core]}``."""
    from hw_models.resources import check_network
    rep = check_network(net, profile)
    on = np.asarray(rep.on_chip, bool)
    return {"limits": {k: (None if v is None else int(v)) for k, v in rep.limits.items()},
            "usage": {k: np.asarray(v)[on].astype(int).tolist() for k, v in rep.usage.items()},
            "population": [p for p, o in zip(rep.core_population, on) if o]}


# ---------------------------------------------------------------------------------------------
# sweep

def sweep(model, calibration, data, out, *, bits=(4, 5, 6, 7, 8, 9, 10),
          methods=("ecc", "robust"), steps: int = 256, samples: int | None = None,
          calib_samples: int | None = 500, profile=DEFAULT_PROFILE, seed: int = 0,
          input_scale: float | None = None, input_max: int | None = None, progress=False,
          log=None, client=None, **options) -> Path:
    """Run the (method × bits) grid, one point per group of ``out``; resumes a stopped sweep.

    Settings other than the grid must match an existing ``out``.  Each point stores the accuracy
    per step (so every T ≤ ``steps`` is in the file), final predictions, counters totals and per
    population, energy per event class, feasibility, and the conversion options.

    ``client``: a ``distributed.Client``; the points then run as tasks on its workers (the model
    and data sent once per worker) and this process, the only writer, appends each point as it
    finishes — resumable exactly as a local sweep.  ``progress``: a bar (True) or a callable
    called once per finished point.
    """
    from .sweep import SweepFile, point_key
    log = log or (lambda s: None)
    methods, bits, steps = check_grid(methods, bits, steps)
    graph = resolve_input(load_graph(model, input_scale), input_scale, input_max)
    calib = load_data(calibration, "train").subset(calib_samples)
    ds = load_data(data).subset(samples)
    for d, what in ((calib, "calibration"), (ds, "data")):   # refuse before any work
        if d.kind == "events":
            event_counts(graph, d.subset(1))
        else:
            check_data(graph.input_spec, d, what)
    grid = [(m, b) for m in methods for b in bits]
    config = {"model": str(model), "calibration": calib.source, "calib_samples": len(calib),
              "data": ds.source, "samples": len(ds), "steps": int(steps),
              "profile": _profile_name(profile), "seed": seed,
              "input_max": graph.input_spec.raw_max,
              "input_scale": _jsonable(graph.input_spec.scale),
              "options": {k: _jsonable(v) for k, v in sorted(options.items())}}
    sf = SweepFile(out, config, [point_key(m, b) for m, b in grid])
    todo = [(m, b) for m, b in grid if point_key(m, b) not in sf]
    if len(todo) < len(grid):
        log(f"resuming {out}: {len(grid) - len(todo)} of {len(grid)} points already done")
    fref = float_reference(graph, ds)
    shared = dict(model=model, graph=graph, calib=calib, ds=ds, fref=fref, steps=steps,
                  profile=profile, seed=seed, options=options)
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc="sweep", unit="point", disable=progress is not True)
    try:
        if client is None:
            for m, b in todo:
                bar.set_postfix_str(point_key(m, b))
                key, tree, line = sweep_point(m, b, **shared)
                sf.add(key, tree)
                log(line)
                bar.update()
                if callable(progress):
                    progress(1)
        else:
            from emulator.backends import run_tasks
            for key, tree, line in run_tasks(client, sweep_point, todo, shared):
                sf.add(key, tree)      # this process is the only writer
                log(line)
                bar.update()
                if callable(progress):
                    progress(1)
    finally:
        bar.close()
    return Path(out)


def check_grid(methods, bits, steps) -> tuple:
    """Refuse a sweep grid with unknown methods, weight widths outside what quantisation can do
    (2 .. FLOAT_BITS; a width the chip lacks is a legitimate "cannot convert" point) or bad
    steps, before any work — an impossible option must not become a permanent failed point."""
    from converter.convert import METHODS as known
    from converter.quantise import FLOAT_BITS
    methods = [methods] if isinstance(methods, str) else list(methods)
    bad = [m for m in methods if m not in known]
    if bad or not methods:
        raise DataError(f"unknown sweep method(s) {bad or methods}; choose from {list(known)}")
    bits = [check_int(b, "sweep weight bits", 2, FLOAT_BITS) for b in
            ([bits] if isinstance(bits, (int, np.integer)) else list(bits))]
    if not bits:
        raise DataError("the sweep needs at least one weight width")
    if len(set(methods)) != len(methods) or len(set(bits)) != len(bits):
        raise DataError(f"repeated sweep methods or bits: {methods} x {bits}")
    return methods, bits, check_int(steps, "steps")


def sweep_point(m, b, *, model, graph, calib, ds, fref, steps, profile, seed, options,
                threads=None):
    """One grid point → (key, tree for the sweep file, log line); a failed conversion is a
    result, not a crash."""
    from .sweep import point_key
    t0 = time.perf_counter()
    key = point_key(m, b)
    try:
        net = convert_model(model, calib, m, b, profile, steps, calib_samples=None,
                            graph=graph, **options)
    except ConversionError as exc:  # an impossible point is a result, not a crash
        return key, {"method": m, "bits": int(b), "status": "failed",
                     "error": str(exc), "accuracy": np.full(steps, np.nan),
                     "float_accuracy": fref.get("accuracy", float("nan")),
                     "synops_per_sample": float("nan"),
                     "energy_per_sample": float("nan"), "feasible": False}, \
            f"{key}: cannot convert: {exc}"
    net.meta["float_reference"] = fref
    ev = evaluate(net, ds, steps, seed=seed, profile=profile, threads=threads,
                  detail=("final_predictions",))
    try:
        from converter.feasibility import fit_reason
        rep = fit(net, profile)
        feas = {"ok": bool(rep.fits), "report": str(rep),
                "reason": fit_reason(rep, ev.neurobench["ConnectionSparsity"])}
    except NeuroemuError as exc:
        feas = {"ok": False, "report": str(exc), "reason": f"no: {exc}"}
    res = ev.result
    counters = dict(res.counters)
    tree = {"method": m, "bits": int(b), "status": "done",
            "accuracy": np.asarray(ev.accuracy, float),
            "agreement": np.asarray(ev.agreement, float),
            "predictions_final": np.asarray(res.final_predictions).astype(np.int16),
            "float_accuracy": ev.float_accuracy if ev.float_accuracy is not None
            else float("nan"),
            "steps_to_float_accuracy": -1 if ev.steps_to_float is None
            else ev.steps_to_float,
            "synops_per_sample": ev.synops_per_sample,
            "energy_per_sample": float(ev.energy.per_sample) if ev.energy else float("nan"),
            "energy": _flat_dict(ev.energy.to_dict()) if ev.energy else {},
            "counters": {k: float(np.sum(v)) for k, v in counters.items()
                         if np.ndim(v) == 0 or isinstance(v, np.ndarray)},
            "per_population": _per_pop(res),
            "feasible": feas["ok"], "feasibility": feas["report"],
            "fit_reason": feas["reason"], "neurobench": ev.neurobench,
            "convert_options": net.meta.get("convert_options", {}),
            "wall_seconds": time.perf_counter() - t0}
    return key, tree, (f"{key}: accuracy {ev.final_accuracy:.2%} at T={steps}, "
                       f"{ev.synops_per_sample:,.0f} synops/sample")


def _flat_dict(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool)) and v is not None}


def _per_pop(res) -> dict:
    out = {}
    for pop, cnt in res.per_population.items():
        if isinstance(cnt, dict):
            out[str(pop)] = {k: float(np.sum(v)) for k, v in cnt.items()}
    return out


def _jsonify(o):
    if isinstance(o, dict):
        return {str(k): _jsonify(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonify(v) for v in o]
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and np.isnan(o):
        return None
    return o
