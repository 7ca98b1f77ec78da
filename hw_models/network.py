"""The integer core network: what a converter produces and what a chip (or the emulator) runs.

A :class:`CoreNetwork` is a set of :class:`Population` objects (one per spiking layer, plus one
``input`` population) joined by :class:`Projection` objects.  Every number in it is an integer
and every neuron is assigned to a core.  Nothing here knows how the network was made.

Exact semantics (the contract that the engine and the dense reference both meet bit for bit)
---------------------------------------------------------------------------------------------
Let ``dec(x, δ) = sign(x) · ⌊|x| · (4096 − δ) / 4096⌋``.  Populations are processed every step
in a fixed topological order of the delay-0 projections (:meth:`CoreNetwork.order`).  For
t = 1 … T and each non-input population P, in that order:

1. ``Q(t)`` = Σ over projections into P of the contributions of the spikes its source emitted at
   step ``t − delay`` (see :class:`Projection` for each kind), plus, for a projection whose
   source is an ``analog`` input, ``Σ_j x_j · w_ij · 2^e`` every step.
2. ``u ← dec(u, decay_u) + Q``;  ``v ← dec(v, decay_v) + u + bias``; then the overflow policy is
   applied to v over ``[v_min, v_max]``: ``saturate`` clamps, ``wrap`` wraps modulo
   ``v_max − v_min + 1``, ``raise`` stops the run.  Every clamp or wrap counts one saturation.
3. If ``spiking`` and (``v ≥ θ`` for rule ``">="``, ``v > θ`` for ``">"``): one spike;
   ``v ← v − θ`` (reset ``subtract``) or ``v ← 0`` (reset ``zero``).  At most one spike per
   neuron per step.

Initial state: ``u = 0``, ``v = v_init``.  ``u`` is kept in 64 bits without a range policy.
A neuron update is *active* in a step when ``Q ≠ 0`` for that neuron, *inactive* otherwise.

Input population (``kind="input"``), integer values ``x_j ∈ [0, input_max]`` per sample:

* ``analog``: never spikes; its projections deliver ``x_j · w`` every step (graded input; on a
  chip this is a per-sample bias computed off-chip, its multiply-accumulates are counted as
  ``input_macs``, not as synaptic events).
* ``rate``: neuron j spikes at step t iff ``⌊t·x_j / input_max⌋ > ⌊(t−1)·x_j / input_max⌋``.
* ``bernoulli``: with ``h = mix64(seed, sample, t, j)`` (:func:`hw_models.rng.mix64`) and
  ``r = ((h >> 32) · input_max) >> 32``, neuron j spikes iff ``r < x_j``.
* ``events``: explicit input spikes (step, neuron) per sample; a repeated pair is several spikes,
  each delivered once.

Routing: a spike of a neuron on core A sends one *message* to every distinct core that holds at
least one of its targets (over all projections out of its population, A itself included; for
conv and pooling the targets are the positions it actually reaches, for ``maxpool`` every target
whose window holds it).  A message from (chip a, xa, ya) to (chip b, xb, yb) travels
``|xa − xb| + |ya − yb| + |a − b|`` mesh hops.  Analog inputs send no messages.

Read-out: the prediction at step t is ``argmax v`` of the ``output`` population (``readout="v"``)
or ``argmax`` of its cumulative spike counts (``readout="spikes"``; ``-1`` while all counts are
zero).  Ties go to the lowest index.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import NetworkError
from .inputspec import InputSpec

FORMAT_NAME = "neuroemu.CoreNetwork"
#: newest version written/read (hw_models.h5io writes the lowest version a network needs:
#: 2 = a maxpool gate other than "winner", 3 = the input spec is stored)
FORMAT_VERSION = 3

RESETS = ("subtract", "zero")
OVERFLOWS = ("saturate", "wrap", "raise")
SPIKE_RULES = (">=", ">")
ENCODINGS = ("analog", "rate", "bernoulli", "events")
READOUTS = ("v", "spikes")
# How a user's per-sample input array maps onto the (H, W, C) input population:
# "HWC" as is, "CHW" transposed (NCHW models), "HW" a single channel added, "flat" reshaped.
INPUT_LAYOUTS = ("HWC", "CHW", "HW", "flat")
PROJECTION_KINDS = ("dense", "conv", "avgpool", "maxpool", "identity")
#: how a ``maxpool`` projection decides what passes (see :class:`Projection`)
MAXPOOL_GATES = ("winner", "runmax")
DECAY_ONE = 4096  # decays are fractions of 4096 (DESIGN: dec(x, δ))


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    """Output length of a strided, padded, dilated window along one axis."""
    span = dilation * (kernel - 1) + 1
    return (size + pad_before + pad_after - span) // stride + 1


@dataclass
class Population:
    """A group of integer neurons sharing one set of parameters (one layer).

    ``shape`` is channels-last (H, W, C) for maps or (n,) for vectors; neuron ``i`` is the
    C-order flat index into ``shape``.  ``bias`` holds one integer per neuron (None = zeros).
    ``core`` holds the global core index of every neuron (None = not mapped yet: the whole
    population then counts as one core).  Input populations use only ``name``, ``shape``,
    ``encoding``, ``input_max`` and ``core``.
    """

    name: str
    shape: tuple
    kind: str = "neuron"  # "neuron" or "input"
    threshold: int = 1
    reset: str = "subtract"
    decay_u: int = DECAY_ONE
    decay_v: int = 0
    bias: np.ndarray | None = None
    v_init: int = 0
    v_min: int = -(2**23)
    v_max: int = 2**23 - 1
    overflow: str = "saturate"
    spike_rule: str = ">="
    spiking: bool = True
    encoding: str = "analog"  # input populations only
    input_max: int = 255  # input populations only
    core: np.ndarray | None = None

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        if self.bias is not None:
            self.bias = np.ascontiguousarray(np.asarray(self.bias).reshape(-1).astype(np.int64))
        if self.core is not None:
            self.core = np.ascontiguousarray(np.asarray(self.core).reshape(-1).astype(np.int32))
        for attr in ("threshold", "decay_u", "decay_v", "v_init", "v_min", "v_max", "input_max"):
            setattr(self, attr, int(getattr(self, attr)))
        self.spiking = bool(self.spiking)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))  # math.prod(()) = 1; np.prod is ~10x slower

    @property
    def is_input(self) -> bool:
        return self.kind == "input"

    def bias_array(self) -> np.ndarray:
        """The bias per neuron (zeros when unset)."""
        return self.bias if self.bias is not None else np.zeros(self.size, np.int64)

    def validate(self) -> None:
        """Raise :class:`NetworkError` naming the population and the bad value."""
        n = f"population {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise NetworkError(f"a population needs a non-empty name, got {self.name!r}")
        if not self.shape or any(s <= 0 for s in self.shape):
            raise NetworkError(f"{n}: shape must be positive, got {self.shape}")
        if self.kind not in ("neuron", "input"):
            raise NetworkError(f"{n}: kind must be 'neuron' or 'input', got {self.kind!r}")
        if self.core is not None and (self.core.size != self.size or np.any(self.core < 0)):
            raise NetworkError(f"{n}: core assignment must give a core index >= 0 to each of "
                               f"its {self.size} neurons (got {self.core.size} entries)")
        if self.is_input:
            if self.encoding not in ENCODINGS:
                raise NetworkError(f"{n}: encoding must be one of {ENCODINGS}, "
                                   f"got {self.encoding!r}")
            if self.input_max <= 0:
                raise NetworkError(f"{n}: input_max must be positive, got {self.input_max}")
            return
        if self.threshold <= 0:
            raise NetworkError(f"{n}: threshold must be a positive integer, got {self.threshold}")
        if self.reset not in RESETS:
            raise NetworkError(f"{n}: reset must be one of {RESETS}, got {self.reset!r}")
        if self.overflow not in OVERFLOWS:
            raise NetworkError(f"{n}: overflow must be one of {OVERFLOWS}, got {self.overflow!r}")
        if self.spike_rule not in SPIKE_RULES:
            raise NetworkError(f"{n}: spike_rule must be one of {SPIKE_RULES}, "
                               f"got {self.spike_rule!r}")
        for attr in ("decay_u", "decay_v"):
            val = getattr(self, attr)
            if not 0 <= val <= DECAY_ONE:
                raise NetworkError(f"{n}: {attr} must lie in [0, {DECAY_ONE}], got {val}")
        if self.v_min >= self.v_max:
            raise NetworkError(f"{n}: v_min ({self.v_min}) must be below v_max ({self.v_max})")
        if not self.v_min <= self.v_init <= self.v_max:
            raise NetworkError(f"{n}: v_init {self.v_init} outside [{self.v_min}, {self.v_max}]")
        if self.bias is not None and self.bias.size != self.size:
            raise NetworkError(f"{n}: bias has {self.bias.size} entries for {self.size} neurons")


@dataclass
class Projection:
    """Integer synapses from population ``source`` to population ``target``.

    The effective weight of every synapse is ``w · 2^exponent`` (``exponent ≥ 0``); a spike
    emitted at step t arrives at step ``t + delay``.  Source neuron (y, x, c) and target neuron
    (oy, ox, co) are channels-last positions; a vector population is indexed by its flat index.

    Kinds and the weight array each uses:

    ``dense``     ``weights`` (n_source, n_target): a spike of source j adds row j.
    ``conv``      ``weights`` (kh, kw, c_in / groups, c_out) HWIO; ``groups`` G splits the
                  channels into G equal blocks (G = 1: a plain convolution; G = c_in = c_out:
                  depthwise).  A spike at (y, x, c), with g = c // (c_in/G), adds
                  ``W[ky, kx, c mod (c_in/G), o]`` to every target (oy, ox, o) of its block
                  ``o ∈ [g·c_out/G, (g+1)·c_out/G)``, with ``y = oy·sy − pad_top + ky·dy`` and
                  ``x = ox·sx − pad_left + kx·dx``.
    ``avgpool``   ``weights`` (C,): a spike at (y, x, c) adds ``w[c]`` to every target
                  (oy, ox, c) whose ``kernel`` window (stride, padding; no dilation) holds it.
    ``maxpool``   ``weights`` (C,): a spiking max-pool.  The projection counts every spike it
                  receives per source neuron, this step's arrivals included (``n_j(t)``); what
                  target (oy, ox, c) receives depends on ``gate``:

                  * ``"winner"`` (Rueckauer et al. 2017): ``w[c]`` for every spike arriving at
                    step t from the *winner* of its window — the first source in row-major
                    window order with the largest count.  A change of winner passes spikes
                    that the true maximum did not have, so the passed count can exceed
                    ``max_j n_j``.
                  * ``"runmax"`` (running maximum): with ``M(t) = max_j n_j(t)`` over the
                    window's in-bounds sources (0 for a window wholly in the padding),
                    ``(M(t) − M(t−1)) · w[c]`` — a pass whenever the window's highest count
                    exceeds the passes so far, so the passed count is exactly ``M(t)``.
    ``identity``  ``weights`` (C,): source and target have one shape; neuron i adds
                  ``w[i mod C]`` to target i (residual sums, relays).

    A synaptic event is one delivery of one spike to one target neuron (borders, strides and
    padding respected); for ``maxpool`` only passes count (one event per passed spike).
    ``gate`` must be ``"winner"`` for every kind but ``maxpool``.
    """

    name: str
    source: str
    target: str
    kind: str
    weights: np.ndarray
    exponent: int = 0
    delay: int = 1
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)  # top, bottom, left, right
    dilation: tuple = (1, 1)
    gate: str = "winner"  # maxpool only: "winner" | "runmax"
    groups: int = 1  # conv only: channel blocks (see the kind table above)

    def __post_init__(self):
        self.weights = np.ascontiguousarray(np.asarray(self.weights))
        self.exponent = int(self.exponent)
        self.groups = int(self.groups)
        self.delay = int(self.delay)
        self.kernel = tuple(int(k) for k in self.kernel)
        self.stride = tuple(int(k) for k in self.stride)
        self.padding = tuple(int(k) for k in self.padding)
        self.dilation = tuple(int(k) for k in self.dilation)
        if self.kind == "conv" and self.weights.ndim == 4:
            self.kernel = (int(self.weights.shape[0]), int(self.weights.shape[1]))

    @property
    def effective_weights(self) -> np.ndarray:
        """``w · 2^exponent`` as int64."""
        return self.weights.astype(np.int64) << self.exponent

    def validate(self, source: Population, target: Population) -> None:
        """Raise :class:`NetworkError` unless weights and geometry fit the two populations."""
        n = f"projection {self.name!r} ({self.source} -> {self.target}, {self.kind})"
        if self.kind not in PROJECTION_KINDS:
            raise NetworkError(f"{n}: kind must be one of {PROJECTION_KINDS}")
        if target.is_input:
            raise NetworkError(f"{n}: an input population cannot receive synapses")
        if self.gate not in MAXPOOL_GATES or (self.kind != "maxpool" and self.gate != "winner"):
            raise NetworkError(f"{n}: gate must be one of {MAXPOOL_GATES} (and 'winner' unless "
                               f"the kind is maxpool), got {self.gate!r}")
        if not np.issubdtype(self.weights.dtype, np.integer):
            raise NetworkError(f"{n}: weights must be integers, got dtype {self.weights.dtype}")
        if self.exponent < 0:
            raise NetworkError(f"{n}: exponent must be >= 0, got {self.exponent}")
        if self.delay < 0:
            raise NetworkError(f"{n}: delay must be >= 0, got {self.delay}")
        if self.kind == "dense":
            want = (source.size, target.size)
            if self.weights.shape != want:
                raise NetworkError(f"{n}: weights have shape {self.weights.shape}, "
                                   f"expected {want}")
            return
        if self.kind == "identity":
            if source.shape != target.shape:
                raise NetworkError(f"{n}: identity needs equal shapes, got {source.shape} "
                                   f"and {target.shape}")
            c = source.shape[-1]
            if self.weights.shape != (c,):
                raise NetworkError(f"{n}: weights must have shape ({c},), "
                                   f"got {self.weights.shape}")
            return
        if len(source.shape) != 3 or len(target.shape) != 3:
            raise NetworkError(f"{n}: needs (H, W, C) populations, got {source.shape} -> "
                               f"{target.shape}")
        if (len(self.stride) != 2 or len(self.padding) != 4 or len(self.dilation) != 2
                or len(self.kernel) != 2 or min(self.stride + self.dilation + self.kernel) < 1
                or min(self.padding) < 0):
            raise NetworkError(f"{n}: bad geometry kernel={self.kernel} stride={self.stride} "
                               f"padding={self.padding} dilation={self.dilation}")
        (h, w, c), (oh, ow, oc) = source.shape, target.shape
        if self.groups < 1 or (self.groups != 1 and self.kind != "conv"):
            raise NetworkError(f"{n}: groups must be 1 (or >= 1 for conv), got {self.groups}")
        if self.kind == "conv":
            g = self.groups
            if c % g or oc % g:
                raise NetworkError(f"{n}: groups={g} must divide the {c} input and {oc} output "
                                   f"channels")
            if self.weights.ndim != 4 or self.weights.shape[2] != c // g \
                    or self.weights.shape[3] != oc:
                raise NetworkError(f"{n}: conv weights must be (kh, kw, {c // g}, {oc}) "
                                   f"(groups={g}), got {self.weights.shape}")
        else:
            if self.dilation != (1, 1):
                raise NetworkError(f"{n}: pooling takes no dilation")
            if oc != c or self.weights.shape != (c,):
                raise NetworkError(f"{n}: pooling keeps {c} channels and takes weights ({c},); "
                                   f"got target channels {oc}, weights {self.weights.shape}")
        (kh, kw), (sy, sx), (pt, pb, pl, pr), (dy, dx) = (self.kernel, self.stride,
                                                            self.padding, self.dilation)
        want = (conv_output_size(h, kh, sy, pt, pb, dy), conv_output_size(w, kw, sx, pl, pr, dx))
        if want != (oh, ow):
            raise NetworkError(f"{n}: geometry gives a {want[0]}x{want[1]} output but the target "
                               f"is {oh}x{ow}")


@dataclass
class CoreNetwork:
    """Populations and projections, all integer, each neuron on a core.

    ``placement`` is an int32 array (n_cores, 3) of (chip, x, y) mesh coordinates per global
    core index (None: every core at the origin of chip 0).  ``input_layout`` says how callers
    lay out one input sample (:data:`INPUT_LAYOUTS`), so that a network converted from an NCHW
    model takes NCHW data.  ``profile`` is the chip profile the network was made for: a shipped
    profile's name, or the :class:`~hw_models.profiles.ChipProfile` itself for a what-if variant
    (stored in the file with all its numbers); ``meta`` holds JSON-able conversion options and
    reports.

    ``input_spec`` (:class:`~hw_models.inputspec.InputSpec`) says how raw integers relate to
    the units of the model the network was converted from; a converter sets it.  None (a
    network built by hand) means model units = raw units: :attr:`spec` then derives one from the
    input population (``scale=1``).  Its layout, shape and encoding must match
    ``input_layout`` and the input population (:meth:`validate`).
    """

    populations: list
    projections: list
    output: str
    readout: str = "v"
    input_layout: str = "HWC"
    placement: np.ndarray | None = None
    profile: str | None = None
    meta: dict = field(default_factory=dict)
    input_spec: InputSpec | None = None

    # ---- look-ups -------------------------------------------------------------------------
    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise NetworkError(f"no population named {name!r} (have "
                           f"{[p.name for p in self.populations]})")

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise NetworkError(f"no projection named {name!r}")

    @property
    def input(self) -> Population:
        return next(p for p in self.populations if p.is_input)

    @property
    def spec(self) -> InputSpec:
        """The input spec in force: :attr:`input_spec`, or for a hand-built network one derived
        from the input population with model units = raw units."""
        if self.input_spec is not None:
            return self.input_spec
        inp = self.input
        shape = self.user_input_shape()
        layout = self.input_layout if len(inp.shape) == 3 else "flat"
        events = inp.encoding == "events"
        return InputSpec(shape, layout, raw_max=None if events else inp.input_max,
                         scale=1.0, encoding=inp.encoding)

    def incoming(self, name: str) -> list:
        return [p for p in self.projections if p.target == name]

    def outgoing(self, name: str) -> list:
        return [p for p in self.projections if p.source == name]

    @property
    def max_delay(self) -> int:
        return max((p.delay for p in self.projections), default=0)

    def order(self) -> list:
        """Population names in processing order: a topological order of delay-0 projections,
        ties kept in declaration order (so the order is deterministic)."""
        names = [p.name for p in self.populations]
        deps = {n: set() for n in names}
        for pr in self.projections:
            if pr.delay == 0:
                deps[pr.target].add(pr.source)
        done, out = set(), []
        while len(out) < len(names):
            ready = [n for n in names if n not in done and deps[n] <= done]
            if not ready:
                cyc = sorted(n for n in names if n not in done)
                raise NetworkError(f"delay-0 projections form a cycle among {cyc}; give one "
                                   f"of them a delay >= 1")
            out.append(ready[0])
            done.add(ready[0])
        return out

    def core_assignment(self) -> dict:
        """Global core index of every neuron, per population (unmapped population = one core
        numbered after all mapped ones, in declaration order)."""
        nxt = 1 + max((int(p.core.max()) for p in self.populations if p.core is not None),
                      default=-1)
        out = {}
        for p in self.populations:
            if p.core is not None:
                out[p.name] = p.core
            else:
                out[p.name] = np.full(p.size, nxt, np.int32)
                nxt += 1
        return out

    @property
    def n_cores(self) -> int:
        # as core_assignment() numbers them, without building the per-neuron arrays
        mapped = max((int(p.core.max()) for p in self.populations if p.core is not None),
                     default=-1)
        return mapped + 1 + sum(p.core is None for p in self.populations)

    def placement_array(self) -> np.ndarray:
        """(n_cores, 3) (chip, x, y) per core; zeros where no placement is given."""
        n = self.n_cores
        out = np.zeros((n, 3), np.int32)
        if self.placement is not None:
            m = min(n, len(self.placement))
            out[:m] = self.placement[:m]
        return out

    # ---- validation -----------------------------------------------------------------------
    def validate(self) -> "CoreNetwork":
        """Structural checks (no chip limits: see :mod:`hw_models.resources`). Returns self."""
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise NetworkError(f"population names must be unique, got {names}")
        inputs = [p for p in self.populations if p.is_input]
        if len(inputs) != 1:
            raise NetworkError(f"a network needs exactly one input population, found "
                               f"{[p.name for p in inputs]}")
        for p in self.populations:
            p.validate()
        pnames = [p.name for p in self.projections]
        if len(set(pnames)) != len(pnames):
            raise NetworkError(f"projection names must be unique, got {pnames}")
        by_name = {p.name: p for p in self.populations}
        for pr in self.projections:
            for end in (pr.source, pr.target):
                if end not in by_name:
                    raise NetworkError(f"projection {pr.name!r} refers to unknown population "
                                       f"{end!r}")
            pr.validate(by_name[pr.source], by_name[pr.target])
        if self.output not in by_name or by_name[self.output].is_input:
            raise NetworkError(f"output {self.output!r} must name a non-input population")
        if self.input_layout not in INPUT_LAYOUTS:
            raise NetworkError(f"input_layout must be one of {INPUT_LAYOUTS}, "
                               f"got {self.input_layout!r}")
        if self.readout not in READOUTS:
            raise NetworkError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if self.input_spec is not None:
            self._check_spec(by_name)
        if self.readout == "spikes" and not by_name[self.output].spiking:
            raise NetworkError(f"readout 'spikes' needs a spiking output population, but "
                               f"{self.output!r} does not spike")
        n_neurons = sum(p.size for p in self.populations)
        if self.n_cores > n_neurons + len(self.populations):
            raise NetworkError(f"core indices reach {self.n_cores - 1} but the network has only "
                               f"{n_neurons} neurons: cores must be numbered densely from 0 "
                               f"(a damaged core assignment?)")
        if self.placement is not None:
            pl = np.asarray(self.placement)
            if pl.ndim != 2 or pl.shape[1] != 3 or len(pl) < self.n_cores:
                raise NetworkError(f"placement must be (n_cores={self.n_cores}, 3) "
                                   f"(chip, x, y), got shape {pl.shape}")
        self.order()
        return self

    def _check_spec(self, by_name) -> None:
        sp, inp = self.input_spec, self.input
        if not isinstance(sp, InputSpec):
            raise NetworkError(f"input_spec must be an InputSpec, got {type(sp).__name__}")
        sp.validate()
        bad = []
        if sp.layout != self.input_layout:
            bad.append(f"layout {sp.layout!r} vs input_layout {self.input_layout!r}")
        if int(np.prod(sp.shape)) != inp.size or (
                sp.layout != "flat" and tuple(sp.internal_shape) != tuple(inp.shape)):
            bad.append(f"shape {sp.shape} ({sp.layout}) vs input population {inp.shape}")
        if sp.encoding != inp.encoding:
            bad.append(f"encoding {sp.encoding!r} vs {inp.encoding!r}")
        if sp.encoding != "events" and sp.raw_max != inp.input_max:
            bad.append(f"raw_max {sp.raw_max} vs input_max {inp.input_max}")
        if bad:
            raise NetworkError(f"input spec does not match the network: {'; '.join(bad)}")

    def summary(self) -> str:
        lines = [f"CoreNetwork: {len(self.populations)} populations, "
                 f"{len(self.projections)} projections, {self.n_cores} cores, "
                 f"output {self.output!r} (readout {self.readout})"]
        cores = self.core_assignment()
        for p in self.populations:
            what = (f"input[{p.encoding}, 0..{p.input_max}]" if p.is_input else
                    f"θ={p.threshold} reset={p.reset} rule{p.spike_rule}"
                    + ("" if p.spiking else " non-spiking"))
            lines.append(f"  {p.name:<20} {str(p.shape):<16} {what}  cores="
                         f"{len(np.unique(cores[p.name]))}")
        for pr in self.projections:
            lines.append(f"  {pr.name:<20} {pr.source} -> {pr.target} {pr.kind} "
                         f"w{tuple(pr.weights.shape)} e={pr.exponent} d={pr.delay}")
        lines.append(f"  input: {self.spec.describe()}")
        return "\n".join(lines)

    def user_input_shape(self) -> tuple:
        """Per-sample shape callers pass, in :attr:`input_layout`."""
        shape = self.input.shape
        if self.input_layout == "CHW":
            return (shape[2], shape[0], shape[1])
        if self.input_layout == "HW":
            return shape[:2]
        if self.input_layout == "flat":
            return (self.input.size,)
        return shape

    def to_internal_input(self, x: np.ndarray) -> np.ndarray:
        """A batch in :attr:`input_layout` → (N, *input population shape), no copy if possible."""
        from .errors import DataError
        x = np.asarray(x)
        want = self.user_input_shape()
        if x.shape[1:] != want:
            raise DataError(f"input samples have shape {x.shape[1:]}, but network expects "
                            f"{want} ({self.input_layout} layout)")
        if self.input_layout == "CHW":
            x = x.transpose(0, 2, 3, 1)
        return x.reshape((len(x),) + self.input.shape)

    def replace(self, **changes) -> "CoreNetwork":
        return dataclasses.replace(self, **changes)

    # ---- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the network to HDF5 atomically (a temporary file renamed into place)."""
        from .h5io import save_network
        return save_network(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CoreNetwork":
        """Read a network written by :meth:`save`; corrupt files raise FileFormatError."""
        from .h5io import load_network
        return load_network(path)


def meta_json(meta: dict) -> str:
    """Serialise ``meta`` for an HDF5 attribute, refusing values JSON cannot carry."""
    try:
        return json.dumps(meta, sort_keys=True, default=_json_default)
    except TypeError as exc:
        raise NetworkError(f"network meta data must be JSON-serialisable: {exc}") from exc


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")

