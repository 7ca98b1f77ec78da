"""SNN calibration after normalisation (Li et al., ICML 2021), on the integer network itself.

Li, Deng, Dong, Gong, Gu, "A free lunch from ANN: towards efficient, accurate spiking neural
networks calibration", ICML 2021, correct a converted network layer by layer with calibration
data and no retraining: the expected difference ``e_l`` between the ANN's activation of layer l
and the SNN's rate-coded output of that layer (given the already calibrated layers before it)
is added back through the bias ("bias calibration", their *light* pipeline); their *advanced*
pipeline also fits each layer's weights so that, fed with the SNN's actual input rates, the
layer's rate-coded output reproduces the ANN's ("weight calibration", layer-wise gradient
descent with a straight-through floor), and puts the remaining per-neuron error into the
initial membrane potential ("potential calibration").

Here the SNN is the converted **integer** network run by the emulator (so quantisation error is
calibrated too), which is why this lives in the facade: it needs both the converter's float
graph and the emulator.  For every spiking ReLU population P in processing order:

0. ``advanced`` only — weight calibration, when every projection into P is ``conv`` or
   ``dense``: stream the calibration batches once through the current network and keep, per
   sample, the input rates ``r_j`` of P's sources (spike count / T; the raw value for an analog
   input, which delivers ``x_j·w`` every step) and the ANN target ``clip(a/λ, 0, 1)``.  With
   the effective weights ``W = w·2^e`` as floats, the bias b, θ and ``v_init`` fixed, the
   model of P's output rate is ``s = clip(⌊(T·(W·r + b) + v_init)/θ⌋, 0, T)/T``; Adam with a
   cosine-annealed step (Li et al.'s optimiser) minimises the mean of ``(s − target)²`` over
   mini-batches, the floor passed straight through.  The fitted weights are re-quantised to the
   network's own integers — ``w = round(W/2^e)`` clipped to the profile's weight limit for the
   network's weight bits (even on profiles whose mixed-sign weights lose the LSB) with the
   projection's exponent unchanged — and **kept only if the model loss over all calibration
   samples with the re-quantised integers is lower than with the original ones**.  Only the
   integers change, so the calibrated network is as valid for the engine and the dense
   reference as any other.  The cached rates are compact (uint16 counts) and budget-checked
   (:func:`hw_models.safeio.check_budget`); over the budget, each epoch re-runs the network
   batch by batch instead of caching.
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

Li et al. calibrate all weights first and then the potentials; here the stages are interleaved
per layer (weights, channel bias, neuron bias of P, then the next population), so that every
stage sees the fully calibrated layers before it.  Biases are clipped to the profile's bias
range (counted in the report).  The ANN target uses the ANN's own input path, so each layer's
correction also absorbs the drift of the layers before it.  The correction is built for the run
length T it was measured at.  Relays (max-pool), averages and the non-spiking output are not
calibrated.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from converter.graph import conv_taps
from hw_models.errors import ConversionError

__all__ = ["calibrate", "MODES"]

MODES = ("light", "advanced")


def _channel_of(pop) -> np.ndarray:
    c = pop.shape[-1] if len(pop.shape) == 3 else pop.size
    return np.arange(pop.size) % c


def _ann(pg, net, xb, layer):
    """The ANN's activation of ``layer`` on raw images ``xb``, in the model units the network
    was converted in (its input spec: the graph itself may not say its input scale)."""
    xm = net.spec.as_model(xb, "calibration")
    xm = xm.reshape((len(xb),) + tuple(pg.layers[pg.input_name].shape))
    return pg.forward(xm, outputs=[layer], internal=True)[layer]


def _rate_error(net, pg, pop, layer, lam, x_raw, input_scale, steps, batch_size, threads):
    """Per-neuron mean of ``clip(a/λ, 0, 1) − n/T`` over the calibration samples."""
    import emulator
    tot = np.zeros(pop.size)
    ch = _channel_of(pop)
    lam_n = lam[ch % lam.size] if lam.size > 1 else np.full(pop.size, lam[0])
    for s in range(0, len(x_raw), batch_size):
        xb = x_raw[s:s + batch_size]
        res = emulator.run(net, xb, steps, threads=threads, detail=("spike_counts",))
        n = res.spike_counts[pop.name].astype(np.float64) / steps
        # model units through the graph's input spec (scale per channel, offset) — the same
        # reading convert and predict use; input_scale is kept for callers that pass it
        a = _ann(pg, net, xb, layer)
        target = np.clip(a.reshape(len(xb), -1) / lam_n, 0.0, 1.0)
        tot += (target - n).sum(axis=0)
    return tot / len(x_raw)


# ---- weight calibration (the advanced pipeline's layer-wise fit) -----------------------------
def _patches(pr, src_shape, tgt_shape, r):
    """The inputs of projection ``pr`` as matrices, one per channel group: for ``dense`` the
    rates ``r`` (N, n_src) themselves; for ``conv`` the receptive fields (im2col) of every
    output position, (N·OH·OW, kh·kw·C/G) in the (ky, kx, c) order of an HWIO kernel reshaped
    to (kh·kw·C/G, C_out/G), zero where the window reaches into the padding."""
    if pr.kind == "dense":
        return [r]
    n = len(r)
    rr = r.reshape((n,) + tuple(src_shape))
    (kh, kw), (sy, sx), (pt, pb, pl, prt), (dy, dx) = (pr.kernel, pr.stride, pr.padding,
                                                        pr.dilation)
    if any(pr.padding):
        rr = np.pad(rr, ((0, 0), (pt, pb), (pl, prt), (0, 0)))
    oh, ow = tgt_shape[0], tgt_shape[1]
    cg = src_shape[2] // pr.groups
    out = []
    for g in range(pr.groups):
        cols = [win[..., g * cg:(g + 1) * cg]
                for _, _, win in conv_taps(rr, kh, kw, (sy, sx), (dy, dx), (oh, ow))]
        out.append(np.concatenate(cols, axis=-1).reshape(n * oh * ow, kh * kw * cg))
    return out


def _proj_forward(pr, tgt_shape, patches, w):
    """Per-step input current of the target (N, n_target) through float effective weights."""
    if pr.kind == "dense":
        return patches[0] @ w
    g = pr.groups
    og = tgt_shape[2] // g
    wm = w.reshape(-1, tgt_shape[2])
    z = np.concatenate([patches[b] @ wm[:, b * og:(b + 1) * og] for b in range(g)], axis=1)
    return z.reshape(len(z) // (tgt_shape[0] * tgt_shape[1]), -1)


def _proj_grad(pr, tgt_shape, patches, gz):
    """dLoss/dW of one projection from the gradient ``gz`` (N, n_target) at its output."""
    if pr.kind == "dense":
        return patches[0].T @ gz
    g = pr.groups
    oc = tgt_shape[2]
    og = oc // g
    gm = gz.reshape(-1, oc)
    return np.concatenate([patches[b].T @ gm[:, b * og:(b + 1) * og] for b in range(g)],
                          axis=1).reshape(pr.weights.shape)


def _rate_model(prs, shapes, pop, patches, ws, bias, steps):
    """(s, inside): P's modelled output rate ``clip(⌊(T·z + v_init)/θ⌋, 0, T)/T`` with
    ``z = Σ W·r + b`` and the mask of neurons strictly inside the clip (where the
    straight-through floor passes the gradient); ``patches`` from :func:`_patches`."""
    z = bias[None, :].astype(np.float64)
    for pr, pt, w in zip(prs, patches, ws):
        z = z + _proj_forward(pr, pop.shape, pt, w.astype(pt[0].dtype))
    u = (steps * z + pop.v_init) / pop.threshold
    return np.clip(np.floor(u), 0, steps) / steps, (u > 0) & (u < steps)


def _weight_limits(net, prs):
    """(limit per projection, round-to-even?) for the network's weight bits and profile."""
    from converter.quantise import FLOAT_BITS, weight_limit
    from hw_models.profiles import get_profile
    bits = (net.meta or {}).get("weight_bits")
    nbits = FLOAT_BITS if bits is None else int(bits)
    prof = get_profile(net.profile) if net.profile is not None else None
    lsb = bool(prof is not None and prof.weight_mixed_sign_loses_lsb and bits is not None)
    lims = {}
    for pr in prs:
        w = pr.weights
        mixed = bool(np.any(w > 0) and np.any(w < 0))
        lims[pr.name] = weight_limit(nbits, lsb, mixed)
    return lims, lsb


def _requantise(w_eff, pr, lim, even):
    """Float effective weights → the projection's integers ``round(W/2^e)`` clipped to ±lim
    (rounded to even where the profile's mixed-sign weights lose the LSB)."""
    q = w_eff / float(1 << pr.exponent)
    q = 2.0 * np.round(q / 2.0) if even else np.round(q)
    return np.clip(q, -lim, lim).astype(pr.weights.dtype)


class _InputCache:
    """Per calibration batch: the source rates of P's projections and the ANN target, from one
    network run — kept in memory (counts as uint16) while they fit the memory budget, else
    recomputed on every pass."""

    def __init__(self, net, pg, pop, layer, lam_n, prs, x_raw, steps, batch_size, threads):
        from hw_models.safeio import array_bytes, check_budget, memory_budget
        self.net, self.pg, self.pop, self.layer, self.lam_n = net, pg, pop, layer, lam_n
        self.prs, self.x_raw, self.steps, self.bs, self.threads = (prs, x_raw, steps, batch_size,
                                                                   threads)
        srcs = {pr.source for pr in prs}
        per_sample = sum(net.population(s).size for s in srcs) * 2 + pop.size * 4
        need = array_bytes((len(x_raw), per_sample), np.uint8)
        try:
            check_budget(need, "weight calibration cache")
            self.keep = need <= memory_budget() // 4
        except MemoryError:
            self.keep = False
        self.cache = []

    def _compute(self, xb):
        import emulator
        net, T = self.net, self.steps
        res = emulator.run(net, xb, T, threads=self.threads, detail=("spike_counts",))
        counts = {}
        for pr in self.prs:
            src = net.population(pr.source)
            if pr.source in counts:
                continue
            if src.is_input and src.encoding == "analog":
                # an analog input delivers x·w every step: its "rate" is the raw value
                c = net.spec.check_raw(xb).reshape(len(xb), -1)
            else:
                c = res.spike_counts[pr.source]
            # counts and 8-bit pixels fit uint16; a wider raw input range keeps its integers
            counts[pr.source] = c.astype(np.uint16 if c.max(initial=0) <= 0xFFFF else np.int64)
        a = _ann(self.pg, net, xb, self.layer)
        target = np.clip(a.reshape(len(xb), -1) / self.lam_n, 0.0, 1.0).astype(np.float32)
        return counts, target

    def batches(self):
        """Yield (rates per projection, target) per calibration batch, float32 (the fit's
        arithmetic; the weights themselves are updated in float64)."""
        starts = range(0, len(self.x_raw), self.bs)
        for k, s in enumerate(starts):
            if k < len(self.cache):
                counts, target = self.cache[k]
            else:
                counts, target = self._compute(self.x_raw[s:s + self.bs])
                if self.keep:
                    self.cache.append((counts, target))
            rates = []
            for pr in self.prs:
                src = self.net.population(pr.source)
                c = counts[pr.source].astype(np.float32)
                rates.append(c if (src.is_input and src.encoding == "analog") else
                             c * np.float32(1.0 / self.steps))
            yield rates, target


def _calibrate_weights(net, pg, pop, layer, lam_n, x_raw, steps, batch_size, threads,
                       iters, lr, minibatch, seed):
    """Layer-wise weight calibration of population ``pop`` (module docstring, step 0).

    Returns ``(new integer weights per projection or None, report)``."""
    prs = net.incoming(pop.name)
    if not prs or any(pr.kind not in ("conv", "dense") for pr in prs):
        return None, {"skipped": "inputs are not all conv/dense projections"}
    shapes = {pr.source: net.population(pr.source).shape for pr in prs}
    lims, even = _weight_limits(net, prs)
    w0 = [pr.effective_weights.astype(np.float64) for pr in prs]
    ws = [w.copy() for w in w0]
    bias = pop.bias_array().astype(np.float64)
    cache = _InputCache(net, pg, pop, layer, lam_n, prs, x_raw, steps, batch_size, threads)
    # Adam (Kingma & Ba 2015) with a cosine-annealed step, as Li et al.; the step is relative
    # to each projection's largest weight so that it means the same for any bit width
    steps_per_epoch = sum(-(-min(batch_size, len(x_raw) - s) // minibatch)
                          for s in range(0, len(x_raw), batch_size))
    epochs = -(-iters // steps_per_epoch)
    total = epochs * steps_per_epoch
    scale = [max(float(np.abs(w).max()), 1.0) for w in w0]
    m = [np.zeros_like(w) for w in ws]
    v = [np.zeros_like(w) for w in ws]
    b1, b2, eps = 0.9, 0.999, 1e-12
    rng = np.random.default_rng(seed)
    it = 0
    for _ in range(epochs):
        for rates, target in cache.batches():
            order = rng.permutation(len(target))
            for s in range(0, len(order), minibatch):
                idx = order[s:s + minibatch]
                pts = [_patches(pr, shapes[pr.source], pop.shape, r[idx])
                       for pr, r in zip(prs, rates)]
                out, inside = _rate_model(prs, shapes, pop, pts, ws, bias, steps)
                # d mean((s − t)²)/dz with ds/dz = 1/θ inside the clip (straight-through floor)
                gz = 2.0 * (out - target[idx]) * inside / (pop.threshold * target[idx].size)
                step = lr * 0.5 * (1.0 + np.cos(np.pi * it / total))
                it += 1
                for k, pr in enumerate(prs):
                    gw = _proj_grad(pr, pop.shape, pts[k], gz.astype(pts[k][0].dtype))
                    m[k] = b1 * m[k] + (1 - b1) * gw
                    v[k] = b2 * v[k] + (1 - b2) * gw * gw
                    mh, vh = m[k] / (1 - b1 ** it), v[k] / (1 - b2 ** it)
                    ws[k] -= step * scale[k] * mh / (np.sqrt(vh) + eps)
    new = [_requantise(w, pr, lims[pr.name], even) for w, pr in zip(ws, prs)]
    wq = [q.astype(np.float64) * float(1 << pr.exponent) for q, pr in zip(new, prs)]
    loss0 = loss1 = 0.0
    count = 0
    for rates, target in cache.batches():  # the decision: model loss with the integers
        for s in range(0, len(target), minibatch):  # in mini-batches: the patches are big
            pts = [_patches(pr, shapes[pr.source], pop.shape, r[s:s + minibatch])
                   for pr, r in zip(prs, rates)]
            o0, _ = _rate_model(prs, shapes, pop, pts, w0, bias, steps)
            o1, _ = _rate_model(prs, shapes, pop, pts, wq, bias, steps)
            loss0 += float(((o0 - target[s:s + minibatch]) ** 2).sum())
            loss1 += float(((o1 - target[s:s + minibatch]) ** 2).sum())
        count += target.size
    changed = int(sum(int(np.count_nonzero(q != pr.weights)) for q, pr in zip(new, prs)))
    kept = loss1 < loss0
    rep = {"model_mse_before": loss0 / count, "model_mse_after": loss1 / count,
           "weights_changed": changed, "weights": int(sum(pr.weights.size for pr in prs)),
           "kept": bool(kept), "cached": bool(cache.keep)}
    return ({pr.name: q for pr, q in zip(prs, new)} if kept else None), rep


def calibrate(net, graph, x_raw, input_scale: float, steps: int, mode: str = "light",
              batch_size: int = 128, threads: int | None = None, weights: bool | None = None,
              weight_iters: int = 400, weight_lr: float = 1e-3, weight_minibatch: int = 32,
              seed: int = 0):
    """A calibrated copy of the converted ``net`` (module docstring).

    Parameters
    ----------
    net : a CoreNetwork made by :func:`converter.convert.convert` (its ``meta`` names the layer
        and λ of every population).
    graph : the float graph it was converted from.
    x_raw : raw integer calibration inputs in the network's input layout.
    input_scale : raw → model units (the value the conversion used).
    steps : the run length T the network will be run for.
    mode : ``"light"`` (channel-wise bias calibration) or ``"advanced"`` (weight calibration,
        then channel-wise and per-neuron bias calibration).
    batch_size : calibration samples per network run (the streaming unit).
    weights : run the layer-wise weight calibration (default: for ``"advanced"`` only).
    weight_iters, weight_lr, weight_minibatch, seed : its number of Adam steps per population
        (in passes over the calibration batches, from the cache or re-run), its Adam step (relative to each projection's largest weight, cosine-annealed to 0),
        mini-batch size and shuffling seed.
    """
    from converter.passes import prepare
    from hw_models.profiles import get_profile
    if mode not in MODES:
        raise ConversionError(f"calibrate must be one of {MODES}, got {mode!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConversionError(f"calibration needs the run length T (a positive integer), got "
                              f"{steps!r}")
    if weights is None:
        weights = mode == "advanced"
    for nm, val in (("weight_iters", weight_iters), ("weight_minibatch", weight_minibatch)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ConversionError(f"{nm} must be a positive integer, got {val!r}")
    if not (isinstance(weight_lr, (int, float)) and np.isfinite(weight_lr) and weight_lr > 0):
        raise ConversionError(f"weight_lr must be a positive number, got {weight_lr!r}")
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
    projs = [dataclasses.replace(pr) for pr in net.projections]
    out = net.replace(populations=pops, projections=projs, meta=dict(meta))
    report = {}
    for name in net.order():
        p = out.population(name)
        layer = (lam.get(name) or {}).get("layer")
        if roles.get(name) != "neuron" or not p.spiking or layer not in names:
            continue
        lmb = np.asarray(lam[name].get("values", [lam[name]["max"]]), np.float64)
        wrep = None
        if weights:
            ch = _channel_of(p)
            lam_n = lmb[ch % lmb.size] if lmb.size > 1 else np.full(p.size, lmb[0])
            new, wrep = _calibrate_weights(out, pg, p, layer, lam_n, x_raw, steps, batch_size,
                                           threads, int(weight_iters), float(weight_lr),
                                           int(weight_minibatch), seed)
            for pr in projs:
                if new is not None and pr.name in new:
                    pr.weights = new[pr.name]
            out.validate()
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
        if wrep is not None:
            report[name]["weights"] = wrep
    stages = (["layer-wise weight calibration"] if weights else []) + ["bias calibration"] + (
        ["per-neuron bias (potential) calibration"] if mode == "advanced" else [])
    out.meta["calibration"] = {"mode": mode, "steps": int(steps), "samples": len(x_raw),
                               "method": "Li et al. 2021 (" + " + ".join(stages) + ")",
                               "weights": bool(weights), "populations": report}
    if weights:
        from hw_models.intrange import check_ranges
        check_ranges(out, int(steps))
    out.meta.setdefault("notes", [])
    out.meta["notes"] = list(out.meta["notes"]) + [
        f"calibrated ({mode}) for T = {steps} on {len(x_raw)} samples"]
    return out
