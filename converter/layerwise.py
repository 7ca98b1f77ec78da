"""The layer-by-layer schedule (``convert(..., timing="layerwise", steps=T)``): every spiking
layer integrates its whole input for T steps before it fires, then fires for T steps.

Why: under the synchronous schedule of the conversion papers (every layer processes step t in
the same global step, ``timing="sync"``) a layer receives spike *trains*, not constant
currents.  An IF neuron with reset by subtraction, threshold θ and v(0) = v0 that sees the
per-step inputs Z(1..T) fires ``clip(⌊(v0 + ΣZ)/θ⌋, 0, T)`` spikes only when it never fires
early on a partial sum that later input takes back; otherwise it fires more (or fewer) —
the "unevenness error" of Bu et al. (ICLR 2022, section 4.3), which makes their QCFS SNN differ
from its quantised ANN at T = L on deeper layers (their VGG-16 on CIFAR-10: ANN 95.52 %, SNN
93.96 % at T = L = 4).  If instead the whole input arrives first and the neuron fires only
afterwards, with no more input, it fires exactly ``clip(⌊(v0 + ΣZ + T·b)/θ⌋, 0, T)`` spikes:
with θ = λ and v0 = ⌊θ/2⌋ that is the QCFS activation ``clip(⌊x·L/λ + ½⌋, 0, L)`` at T = L
for *every* layer, i.e. the SNN equals the quantised ANN exactly (up to the integer rounding of
the weights).

How, with nothing but the contract's IF neurons and delayed projections (DESIGN.md):

* a one-neuron *clock* population fires once, at step 1 (v(0) = its threshold, no input);
* a population at depth k (longest path from the input; the analog first layer is depth 1)
  starts at ``v0 − M_k`` with ``M_k`` above anything its input can add during its
  integration window, so it cannot fire there; at step ``(k−1)·T + 1`` the clock's
  *release* projection (delay ``(k−1)·T``) adds ``M_k + T·b_i`` (the bias of T steps, which is
  taken out of the per-step bias), and at step ``k·T + 1`` its *kill* projection (delay
  ``k·T``) subtracts more than the neuron can hold, so it fires in steps
  ``(k−1)·T + 1 … k·T`` only — exactly the clipped count;
* depth-1 populations integrate the analog current and fire at once (a constant current is
  already exact, ``⌊(v0 + t·Z)/θ⌋`` after t steps); their kill comes at step T + 1 and is large
  enough to keep them silent for ``horizon`` steps of further analog current;
* the non-spiking read-out takes its bias as ``T·b`` from the clock at step 1; its voltage at
  step ``D·T`` (D = the deepest spiking layer) is ``T·θ_out`` × the logits of the network with
  these counts, and stays so afterwards (every layer is silent).

So the *time base* is T steps per layer: the prediction is read at global step ``D·T``
(``net.meta["layerwise"]["run_length"]``), each layer works during T of those steps, and a
neuron fires at most T spikes — the same spikes and synaptic events per layer as a synchronous
run of T steps, plus one clock spike delivered to every neuron twice (release and kill;
counted as synaptic events like any other).  The clock's projections are control synapses
with wide integer weights (a per-layer enable and bias on a chip), not n-bit weights.

Refused with a :class:`ConversionError` naming the reason: non-analog input, max-pool gates or
spiking average populations (fold average pools: ``avgpool="fold"``), reset to zero, a spiking
read-out, a population that reads the input and a spiking layer, or bounds that do not fit the
profile's state range.
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import ConversionError
from hw_models.intrange import projection_gain
from hw_models.network import Population, Projection

__all__ = ["layerwise_schedule", "CLOCK"]

CLOCK = "layerwise/clock"


def _depths(populations, projections) -> dict:
    srcs = {p.name: [] for p in populations}
    for pr in projections:
        srcs[pr.target].append(pr.source)
    by = {p.name: p for p in populations}
    depth: dict = {}

    def d(name, seen=()):
        if name in depth:
            return depth[name]
        if by[name].is_input:
            depth[name] = 0
            return 0
        if name in seen:
            raise ConversionError(f"timing='layerwise': population {name!r} is part of a cycle")
        depth[name] = 1 + max((d(s, seen + (name,)) for s in srcs[name]), default=0)
        return depth[name]
    for p in populations:
        d(p.name)
    return depth


def layerwise_schedule(populations: list, projections: list, out_name: str, steps, prof,
                       vmin: int, vmax: int) -> tuple:
    """Rewrite a synchronously timed (delay 0) converted network into the layer-by-layer
    schedule with a window of ``steps`` steps per layer (module docstring).

    Returns ``(populations, projections, info)``; ``info`` holds ``window`` (T), ``depth``
    (per population), ``layers`` (D), ``run_length`` (D·T: read the prediction there) and
    ``horizon`` (the run length up to which the depth-1 layers provably stay silent)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConversionError(f"timing='layerwise' needs steps=T (the window per layer, a "
                              f"positive integer), got {steps!r}")
    T = int(steps)
    by = {p.name: p for p in populations}
    inp = next(p for p in populations if p.is_input)
    if inp.encoding != "analog":
        raise ConversionError(f"timing='layerwise' needs the analog input (a constant current "
                              f"per step), got encoding {inp.encoding!r}")
    for pr in projections:
        if pr.kind in ("maxpool", "avgpool"):
            raise ConversionError(
                f"timing='layerwise': projection {pr.name!r} is a {pr.kind}; a spiking "
                f"{'max-pool gate' if pr.kind == 'maxpool' else 'average population'} "
                f"re-times spikes within a window. Fold average pools into the next layer "
                f"(avgpool='fold'); max-pool is not supported in this schedule")
        if pr.delay != 0:
            raise ConversionError(f"timing='layerwise' is built on same-step projections; "
                                  f"{pr.name!r} has delay {pr.delay}")
    out = by[out_name]
    if out.spiking:
        raise ConversionError("timing='layerwise' needs the non-spiking read-out "
                              "(readout='v')")
    depth = _depths(populations, projections)
    layers = max((depth[p.name] for p in populations
                  if not p.is_input and p.name != out_name), default=0)
    if layers == 0:
        raise ConversionError("timing='layerwise': the network has no spiking layer")
    gain = {p.name: 0.0 for p in populations}
    reads_input = set()
    for pr in projections:
        g = projection_gain(pr)
        if by[pr.source].is_input:
            g *= float(inp.input_max)
            reads_input.add(pr.target)
        gain[pr.target] += g
    horizon = 0
    new_pops, new_projs = [], list(projections)
    clock_rule_v0 = 1 if prof.spike_rule == ">=" else 2
    for p in populations:
        if p.is_input:
            new_pops.append(p)
            continue
        k = depth[p.name]
        theta, v0 = int(p.threshold), int(p.v_init)
        bias = p.bias_array().astype(np.int64)
        bmax = int(np.abs(bias).max(initial=0))
        n = p.size
        where = f"timing='layerwise', population {p.name!r}"
        if p.name == out_name:
            # the read-out integrates for the whole run: its bias of T steps comes at step 1
            if bmax:
                new_projs.append(Projection(f"{CLOCK}->{p.name}/bias", CLOCK, p.name, "dense",
                                            (T * bias).reshape(1, n), exponent=0, delay=0))
            new_pops.append(_with(p, bias=None))
            continue
        if p.reset != "subtract":
            raise ConversionError(f"{where}: needs reset by subtraction, has {p.reset!r}")
        if p.decay_u != 4096 or p.decay_v != 0:
            raise ConversionError(f"{where}: needs IF neurons (decay_u 4096, decay_v 0)")
        s = gain[p.name]  # |input per step| bound
        if p.name in reads_input:
            if k != 1:
                raise ConversionError(f"{where} reads the analog input and a spiking layer; "
                                      f"the layer-by-layer schedule needs the input read by "
                                      f"first layers only")
            per_step = s + bmax
            # kill as deep as the state range allows, then how long that keeps it silent
            kill = int(min(vmax, -vmin) // 2)
            reach = v0 + T * per_step  # v before the kill, at most
            if kill <= reach + theta:
                raise ConversionError(f"{where}: the state range [{vmin}, {vmax}] of "
                                      f"{prof.name} is too narrow for the kill current")
            h = int((kill - reach - theta) // max(per_step, 1.0)) + T
            horizon = h if horizon == 0 else min(horizon, h)
            new_projs.append(Projection(f"{CLOCK}->{p.name}/kill", CLOCK, p.name, "dense",
                                        np.full((1, n), -kill, np.int64), exponent=0, delay=T))
            lo = v0 - T * per_step - kill
            new_pops.append(p)
        else:
            hold = int(np.ceil(T * s)) + theta  # nothing it can receive lifts it to θ
            release = hold + T * bias
            top = v0 + int(np.ceil(T * s)) + T * bmax  # v after the release, at most
            kill = top + theta
            lo = v0 - hold - int(np.ceil(T * s)) - T * bmax - kill
            if max(hold + T * bmax, kill) > vmax or lo < vmin:
                raise ConversionError(f"{where}: holding and killing it needs voltages down to "
                                      f"{lo}, outside the state range [{vmin}, {vmax}] of "
                                      f"{prof.name}")
            new_projs.append(Projection(f"{CLOCK}->{p.name}/release", CLOCK, p.name, "dense",
                                        release.reshape(1, n), exponent=0, delay=(k - 1) * T))
            new_projs.append(Projection(f"{CLOCK}->{p.name}/kill", CLOCK, p.name, "dense",
                                        np.full((1, n), -kill, np.int64), exponent=0,
                                        delay=k * T))
            new_pops.append(_with(p, bias=None, v_init=v0 - hold))
        if lo < vmin:
            raise ConversionError(f"{where}: the kill takes v down to {lo}, below the state "
                                  f"range [{vmin}, {vmax}] of {prof.name}")
    if prof.max_delay is not None and layers * T > prof.max_delay:
        raise ConversionError(f"timing='layerwise' needs delays up to {layers * T}; profile "
                              f"{prof.name!r} allows at most {prof.max_delay}")
    clock = Population(CLOCK, (1,), threshold=1, reset="subtract", v_init=clock_rule_v0,
                       v_min=vmin, v_max=vmax, overflow=prof.v_overflow,
                       spike_rule=prof.spike_rule, spiking=True)
    new_pops.insert(1, clock)
    depth[CLOCK] = 0
    info = {"window": T, "layers": layers, "run_length": layers * T,
            "horizon": int(max(horizon, layers * T)), "depth": depth}
    return new_pops, new_projs, info


def _with(p: Population, **changes) -> Population:
    kw = {f: getattr(p, f) for f in ("name", "shape", "kind", "threshold", "reset", "decay_u",
                                     "decay_v", "bias", "v_init", "v_min", "v_max", "overflow",
                                     "spike_rule", "spiking", "encoding", "input_max", "core")}
    kw.update(changes)
    return Population(**kw)
