"""Streaming calibration statistics and the per-layer normalisation scales λ.

Data-based normalisation (Diehl et al. 2015, "Fast-classifying, high-accuracy spiking deep
networks through weight and threshold balancing", IJCNN; Rueckauer et al. 2017, "Conversion of
continuous-valued deep networks to efficient event-driven networks for image classification",
Front. Neurosci. 11:682): every spiking layer l gets a scale λ_l from its ReLU activations on
calibration data, and its weights become ``W_l·λ_{l−1}/λ_l``, its bias ``b_l/λ_l``, its
threshold 1, so that a firing rate of 1 spike per step stands for an activation of λ_l.

* ``percentile=100`` is max-norm (Diehl 2015; also the current normalisation of Wu et al.'s ECC).
* ``percentile=p < 100`` is the robust normalisation of Rueckauer 2017: the p-th percentile of
  the **non-zero** activations (default 99.9), which ignores rare outliers.
* ``per_channel=True`` gives one λ per channel (feature) instead of one per layer.

Nothing holds all activations: pass 1 streams batches through
:meth:`~converter.graph.Graph.iter_activations` and keeps per-channel maxima; pass 2 (only for
p < 100) streams again and fills a fixed-bin histogram of the non-zero values on ``[0, max]``.
The percentile is read from the cumulative histogram as the **upper** edge of the bin where it
falls, so it over-estimates by at most ``max / bins`` (conservative: fewer clipped rates).
"""

from __future__ import annotations

import numpy as np

from hw_models.errors import DataError
from .graph import Graph

__all__ = ["activation_scales", "share_scales", "DEFAULT_BINS"]

#: histogram bins per channel (or per layer) of pass 2
DEFAULT_BINS = 2048


def _channels(a: np.ndarray) -> np.ndarray:
    """(N, …, C) activations → (M, C) rows (C = last axis; vectors: one channel per feature)."""
    return a.reshape(-1, a.shape[-1])


def activation_scales(graph: Graph, layers, calibration, percentile: float = 99.9,
                      per_channel: bool = False, batch_size: int = 128,
                      bins: int = DEFAULT_BINS, internal: bool = False) -> dict:
    """λ per named layer from calibration data.

    Parameters
    ----------
    graph : the (folded) float graph.
    layers : names of the layers whose outputs are spiking populations (usually ReLUs).
    calibration : float array, a batch in the graph's own input layout and units.
    percentile : in (0, 100]; 100 = max.
    per_channel : one λ per channel (last axis) instead of one per layer.

    Returns ``{name: λ}`` with λ a float64 array of shape (C,) (per channel) or (1,) (per layer).
    A layer (or channel) that never activates gets λ = 1 (its weights then stay unscaled) and
    is listed in ``result["_silent"]``.
    """
    layers = list(dict.fromkeys(layers))
    x = np.asarray(calibration)
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"calibration must be a non-empty batch (N, ...), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"calibration must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise DataError("calibration data contains NaN or infinite values")
    if not 0 < float(percentile) <= 100:
        raise DataError(f"percentile must lie in (0, 100], got {percentile}")
    if not layers:
        return {"_silent": []}
    maxes = {n: None for n in layers}
    for acts in graph.iter_activations(x, batch_size, layers, internal):
        for n in layers:
            m = _channels(acts[n]).max(axis=0)
            maxes[n] = m if maxes[n] is None else np.maximum(maxes[n], m)
    out = {}
    if float(percentile) >= 100:
        for n in layers:
            out[n] = maxes[n] if per_channel else np.array([maxes[n].max()])
    else:
        hists = {}
        tops = {n: (maxes[n] if per_channel else np.array([maxes[n].max()])) for n in layers}
        for acts in graph.iter_activations(x, batch_size, layers, internal):
            for n in layers:
                a = _channels(acts[n])
                top = tops[n]
                if not per_channel:
                    a = a.reshape(-1, 1)
                rows, cols = np.nonzero(a > 0)
                vals = a[rows, cols]
                scale = np.where(top[cols] > 0, top[cols], 1.0)
                idx = np.minimum((vals / scale * bins).astype(np.int64), bins - 1)
                h = np.bincount(cols * bins + idx, minlength=len(top) * bins)
                h = h.reshape(len(top), bins)
                hists[n] = h if n not in hists else hists[n] + h
        q = float(percentile) / 100.0
        for n in layers:
            top = tops[n]
            h = hists.get(n, np.zeros((len(top), bins), np.int64))
            lam = np.zeros(len(top))
            for c in range(len(top)):
                tot = h[c].sum()
                if tot == 0:
                    continue
                k = int(np.searchsorted(np.cumsum(h[c]), q * tot))
                lam[c] = top[c] * (min(k, bins - 1) + 1) / bins
            out[n] = lam
    silent = []
    for n in layers:
        lam = np.asarray(out[n], dtype=np.float64)
        if np.any(lam <= 0):
            silent.append(n)
            fill = lam[lam > 0].max() if np.any(lam > 0) else 1.0
            lam = np.where(lam > 0, lam, fill)
        out[n] = lam
    out["_silent"] = silent
    return out


def share_scales(scales: dict, groups) -> dict:
    """Give every name in each group the largest λ of the group (elementwise for per-channel
    λ of equal length, otherwise the overall maximum).  Returns a new dict."""
    out = dict(scales)
    for group in groups:
        group = [g for g in group if g in out]
        if len(group) < 2:
            continue
        lams = [np.asarray(out[g]) for g in group]
        if len({l.shape for l in lams}) == 1:
            shared = np.max(np.stack(lams), axis=0)
        else:
            shared = np.array([max(float(l.max()) for l in lams)])
        for g in group:
            out[g] = shared
    return out
