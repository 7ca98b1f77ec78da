"""SNN calibration after normalisation (Li et al., ICML 2021), on the integer network itself.

Li, Deng, Dong, Gong, Gu, "A free lunch from ANN: towards efficient, accurate spiking neural
networks calibration", ICML 2021, correct a converted network layer by layer with calibration
data and no retraining: the expected difference ``e_l`` between the ANN's activation of layer l
and the SNN's rate-coded output of that layer (given the already calibrated layers before it)
is added back through the bias ("bias calibration"), and the remaining per-neuron error through
the initial membrane potential ("potential calibration"; their weight calibration, the third
stage of the advanced pipeline, is a layer-wise SGD and is not done here).

Here the SNN is the converted **integer** network run by the emulator (so quantisation error is
calibrated too), which is why this lives in the facade: it needs both the converter's float
graph and the emulator.  For every spiking ReLU population P in processing order:

1. stream the calibration batches: run the current network for T steps, read P's spike counts
   n, compute the ANN activation a of P's layer on the same images, and accumulate the rate
   error ``clip(a/λ, 0, 1) − n/T`` per neuron (λ per channel where the conversion used it);
2. ``light``: add ``round(θ · μ_c)`` to the bias of every neuron of channel c, μ_c the mean
   error of the channel over samples and positions (bias calibration);
3. ``advanced``: then stream once more with the new bias and add the per-neuron mean residual
   ``round(θ · μ_i)`` to each neuron's bias.  Li et al. put this per-neuron correction into
   v(0) as T·μ_i; the core-network contract has one ``v_init`` per population, so here it goes
   through the per-neuron bias, which delivers the same charge by step T (spread over the run
   instead of up front).

Biases are clipped to the profile's bias range (counted in the report).  The ANN target uses
the ANN's own input path, so each layer's correction also absorbs the drift of the layers before
it.  The correction is built for the run length T it was measured at.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw_models.errors import ConversionError

__all__ = ["calibrate", "MODES"]

MODES = ("light", "advanced")


def _channel_of(pop) -> np.ndarray:
    c = pop.shape[-1] if len(pop.shape) == 3 else pop.size
    return np.arange(pop.size) % c


def _rate_error(net, pg, pop, layer, lam, x_raw, input_scale, steps, batch_size, threads):
    """Per-neuron mean of ``clip(a/λ, 0, 1) − n/T`` over the calibration samples."""
    import emulator
    tot = np.zeros(pop.size)
    ch = _channel_of(pop)
    lam_n = lam[ch % lam.size] if lam.size > 1 else np.full(pop.size, lam[0])
    for s in range(0, len(x_raw), batch_size):
        xb = x_raw[s:s + batch_size]
        res = emulator.run(net, xb, steps, threads=threads)
        n = res.spike_counts[pop.name].astype(np.float64) / steps
        # model units through the graph's input spec (scale per channel, offset) — the same
        # reading convert and predict use; input_scale is kept for callers that pass it
        a = pg.forward(pg.model_input(xb), outputs=[layer], internal=True)[layer]
        target = np.clip(a.reshape(len(xb), -1) / lam_n, 0.0, 1.0)
        tot += (target - n).sum(axis=0)
    return tot / len(x_raw)


def calibrate(net, graph, x_raw, input_scale: float, steps: int, mode: str = "light",
              batch_size: int = 128, threads: int | None = None):
    """A calibrated copy of the converted ``net`` (module docstring).

    Parameters
    ----------
    net : a CoreNetwork made by :func:`converter.convert.convert` (its ``meta`` names the layer
        and λ of every population).
    graph : the float graph it was converted from.
    x_raw : raw integer calibration inputs in the network's input layout.
    input_scale : raw → model units (the value the conversion used).
    steps : the run length T the network will be run for.
    mode : ``"light"`` (channel-wise bias calibration) or ``"advanced"`` (then per neuron).
    """
    from converter.passes import prepare
    from hw_models.profiles import get_profile
    if mode not in MODES:
        raise ConversionError(f"calibrate must be one of {MODES}, got {mode!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConversionError(f"calibration needs the run length T (a positive integer), got "
                              f"{steps!r}")
    meta = net.meta or {}
    if "lambda" not in meta or "population_roles" not in meta:
        raise ConversionError("calibrate() needs a network made by converter.convert (its meta "
                              "names each population's layer and λ)")
    x_raw = np.asarray(x_raw)
    if len(x_raw) == 0:
        raise ConversionError("calibration needs at least one sample")
    pg = prepare(graph)
    names = {l.name for l in pg}
    roles, lam = meta["population_roles"], meta["lambda"]
    prof = get_profile(net.profile) if net.profile else None
    lo = prof.bias_min if prof is not None else None
    hi = prof.bias_max if prof is not None else None
    pops = [dataclasses.replace(p) for p in net.populations]
    out = net.replace(populations=pops, meta=dict(meta))
    report = {}
    for name in net.order():
        p = out.population(name)
        layer = (lam.get(name) or {}).get("layer")
        if roles.get(name) != "neuron" or not p.spiking or layer not in names:
            continue
        lmb = np.asarray(lam[name].get("values", [lam[name]["max"]]), np.float64)
        err = _rate_error(out, pg, p, layer, lmb, x_raw, input_scale, steps, batch_size, threads)
        before = float(np.abs(err).mean())
        ch = _channel_of(p)
        mu = np.bincount(ch, weights=err) / np.bincount(ch)
        delta = np.rint(p.threshold * mu[ch]).astype(np.int64)
        clipped = 0
        for stage in (("channel", "neuron") if mode == "advanced" else ("channel",)):
            if stage == "neuron":
                err = _rate_error(out, pg, p, layer, lmb, x_raw, input_scale, steps,
                                  batch_size, threads)
                delta = np.rint(p.threshold * err).astype(np.int64)
            b = p.bias_array() + delta
            if lo is not None:
                clipped += int(np.sum((b < lo) | (b > hi)))
                b = np.clip(b, lo, hi)
            p.bias = b
            out.validate()
        report[name] = {"mean_abs_rate_error_before": before,
                        "mean_bias_change_in_theta": float(np.abs(delta).mean() / p.threshold),
                        "clipped": clipped}
    out.meta["calibration"] = {"mode": mode, "steps": int(steps), "samples": int(len(x_raw)),
                               "method": "Li et al. 2021 (bias calibration"
                                         + (" + per-neuron" if mode == "advanced" else "") + ")",
                               "populations": report}
    out.meta.setdefault("notes", [])
    out.meta["notes"] = list(out.meta["notes"]) + [
        f"calibrated ({mode}) for T = {steps} on {len(x_raw)} samples"]
    return out
