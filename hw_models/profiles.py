"""Chip profiles: every hardware number of neuroemu, each with its source.

A :class:`ChipProfile` is a frozen dataclass holding a chip's limits (cores, neurons, axons,
synaptic memory), its number formats (weight, bias, threshold and state widths, overflow
policies, decay resolution), its neuron semantics (spike rule, native resets) and its energy
and time costs per counted event.  No other module may hard-code any of these numbers: the
converter, the mapper, the emulator and the energy model all read them from a profile.

Every profile carries ``sources``, a mapping *field name → citation*.  For a physical chip
(``physical=True``) every hardware field must be cited; figures that are assumptions or
modelling choices say so in their source string.  Profiles validate on construction
(:meth:`ChipProfile.validate` raises :class:`~hw_models.errors.ProfileError` naming the field
and the value), are looked up with :func:`get_profile` and are stored in HDF5 attributes through
:meth:`ChipProfile.to_dict` / :meth:`ChipProfile.from_dict` (plain JSON types only).

Units: energies in joules, power in watts, times in seconds, memory in bits.

Number-format conventions (shared with the neuron contract in DESIGN.md):

* ``weight_bits`` counts the *signed* mantissa bits: integer weights lie in
  ``[-2**(weight_bits-1), 2**(weight_bits-1) - 1]``; the effective weight is ``w * 2**e`` with
  ``e`` in ``weight_exponent_range`` (one exponent per projection).
* ``bias_bits`` is a signed width, optionally times ``2**k`` with ``0 <= k <= bias_exponent_max``.
* ``threshold_bits`` is an unsigned mantissa width; thresholds are positive integers in
  ``[1, 2**threshold_bits - 1]``.
* ``threshold_scale_exp`` (Loihi: 6).  On Loihi the threshold in voltage units is
  ``mantissa * 2**6`` and every synaptic weight is also scaled by ``2**6`` (``w * 2**(6+e)``).
  Because the same factor multiplies weights and threshold, **the converter works in mantissa
  units**: it picks ``θ = mantissa`` and weights ``w * 2**e`` exactly as in DESIGN.md, and the
  hardware's common ``2**6`` cancels.  The price is range: in mantissa units the state
  registers hold only ``state_bits - threshold_scale_exp`` bits of magnitude; use
  :attr:`ChipProfile.v_min_unscaled` / :attr:`ChipProfile.v_max_unscaled` for that range.
* ``state_bits`` is the signed width of ``u`` and ``v``: ``[-2**(n-1), 2**(n-1) - 1]``.
* ``decay_bits``: decays are integers in ``[0, 2**decay_bits]`` (12 → resolution 1/4096, the
  contract's ``dec``).  ``None`` means the chip has no multiplicative decay; only the IF setting
  ``decay_u = 2**12, decay_v = 0`` of the contract is then native.

Synaptic-memory model used by the mapper: a core stores, per explicit synapse,
``bits_per_synapse = weight_bits + synapse_overhead_bits`` bits (32 for float weights), and must
satisfy ``n_synapses * bits_per_synapse <= synaptic_memory_bits_per_core``.  With
``weight_sharing`` a convolution stores its kernel once per core (``kh*kw*cin*cout`` entries)
instead of one entry per synapse.  With ``weights_per_neuron_max_distinct`` (TrueNorth) the
weight values live in the neuron parameters; the memory then holds only the
``synapse_overhead_bits`` per synapse (TrueNorth: the crossbar bit).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple

from .errors import ProfileError

__all__ = [
    "ChipProfile",
    "get_profile",
    "list_profiles",
    "PROFILE_FORMAT_VERSION",
    "E_MAC_FP32",
    "E_MAC_INT8",
    "E_ADD_FP32",
    "REFERENCE_SOURCES",
]

#: Version of the :meth:`ChipProfile.to_dict` layout (stored with the profile).
PROFILE_FORMAT_VERSION = 1

# --- Reference energies of conventional digital arithmetic (for the ANN comparison) ---------
_HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
             "ISSCC 2014, 45 nm, 0.9 V, energy table (slide/figure 'Rough energy costs')")
#: FP32 multiply-accumulate: FP32 mult 3.7 pJ + FP32 add 0.9 pJ.
E_MAC_FP32 = 4.6e-12
#: INT8 multiply-accumulate: 8-bit mult 0.2 pJ + 8-bit add 0.03 pJ.
E_MAC_INT8 = 0.23e-12
#: FP32 addition (the accumulate of an SNN synaptic event on a float machine).
E_ADD_FP32 = 0.9e-12
REFERENCE_SOURCES: Mapping[str, str] = MappingProxyType({
    "E_MAC_FP32": _HOROWITZ + ": 3.7 pJ FP32 mult + 0.9 pJ FP32 add = 4.6 pJ",
    "E_MAC_INT8": _HOROWITZ + ": 0.2 pJ 8-bit mult + 0.03 pJ 8-bit add = 0.23 pJ",
    "E_ADD_FP32": _HOROWITZ + ": 0.9 pJ FP32 add",
})

_OVERFLOW = ("saturate", "wrap", "raise")
_SPIKE_RULES = (">", ">=")
_RESETS = ("subtract", "zero")

# Fields that are descriptive rather than hardware numbers (need no citation).
_META_FIELDS = frozenset({"name", "description", "physical", "sources"})
# Fields stored as tuples (JSON turns them into lists).
_TUPLE_FIELDS = frozenset({"weight_exponent_range", "native_resets", "mesh"})
_ENERGY_FIELDS = ("e_syn_event", "e_neuron_update_active", "e_neuron_update_inactive",
                  "e_spike", "e_msg", "e_hop_ew", "e_hop_ns")


@dataclass(frozen=True)
class ChipProfile:
    """Limits, number formats, neuron semantics and energy costs of one neuromorphic chip.

    Construction validates (see :meth:`validate`); instances are immutable and hashable.  Use
    :meth:`replace` for what-if variants.  ``None`` means *unlimited* / *not applicable* where a
    field's type allows it.
    """

    #: Canonical lower-case name, e.g. ``"loihi1"``.
    name: str
    #: One line for reports.
    description: str
    #: True for a real chip: every hardware field must then be cited in ``sources``.
    physical: bool

    # --- capacity -------------------------------------------------------------------------
    #: Neuro cores per chip (None = unlimited).
    cores_per_chip: Optional[int]
    #: Neurons (compartments) per core (None = unlimited).
    neurons_per_core: Optional[int]
    #: Distinct input axons (source neurons addressable) per core (None = unlimited).
    input_axons_per_core: Optional[int]
    #: Output axons (destination routes) per core (None = unlimited).
    output_axons_per_core: Optional[int]
    #: Synaptic memory per core in bits (None = unlimited); see the module docstring's model.
    synaptic_memory_bits_per_core: Optional[int]
    #: Bits per stored synapse beyond the weight (index, crossbar bit ...).
    synapse_overhead_bits: int
    #: Convolution kernels stored once per core instead of as explicit synapses.
    weight_sharing: bool

    # --- number formats ------------------------------------------------------------------
    #: Signed weight mantissa bits (None = float weights).
    weight_bits: Optional[int]
    #: Loihi 1: a synapse group with weights of both signs loses the weight LSB (the sign
    #: takes one mantissa bit), so mixed-sign mantissas are even numbers.
    weight_mixed_sign_loses_lsb: bool
    #: (min, max) of the per-projection power-of-two weight exponent ``e`` in ``w * 2**e``.
    weight_exponent_range: Tuple[int, int]
    #: Max distinct weight values per neuron (TrueNorth: 4 axon types), None = unlimited.
    weights_per_neuron_max_distinct: Optional[int]
    #: Signed bias mantissa bits (None = unlimited).
    bias_bits: Optional[int]
    #: Bias = mantissa * 2**k with 0 <= k <= bias_exponent_max (0 = no bias exponent).
    bias_exponent_max: int
    #: Unsigned threshold mantissa bits (None = unlimited).
    threshold_bits: Optional[int]
    #: Threshold in voltage units = mantissa * 2**threshold_scale_exp (see module docstring).
    threshold_scale_exp: int
    #: Distinct threshold values allowed per core (None = unlimited).
    thresholds_per_core: Optional[int]
    #: Signed width of the state variables u and v.
    state_bits: int
    #: Overflow policy of v: 'saturate' | 'wrap' | 'raise'.
    v_overflow: str
    #: Overflow policy of u: 'saturate' | 'wrap' | 'raise'.
    u_overflow: str
    #: Decay resolution bits (12 → decays in [0, 4096]); None = no multiplicative decay.
    decay_bits: Optional[int]

    # --- neuron semantics ----------------------------------------------------------------
    #: Spike rule: '>' (v > θ) or '>=' (v ≥ θ).
    spike_rule: str
    #: Resets the hardware implements natively, subset of ('subtract', 'zero').
    native_resets: Tuple[str, ...]
    #: The spiking max-pool gate (Rueckauer 2017) is natively possible.
    native_maxpool_gate: bool
    #: Largest synaptic/axonal delay in steps (None = unlimited).
    max_delay: Optional[int]

    # --- topology ------------------------------------------------------------------------
    #: Router mesh (x, y) per chip; None = no mesh modelled.
    mesh: Optional[Tuple[int, int]]
    #: Cores sharing one router (Loihi: 4 cores per tile).
    cores_per_router: int
    #: Max chips in one system (None = unlimited).
    chips_max: Optional[int]

    # --- energy and time -----------------------------------------------------------------
    #: Energy per synaptic event (one weight delivered to one neuron), J.
    e_syn_event: float
    #: Energy per neuron update of a neuron that received input or has non-zero state, J.
    e_neuron_update_active: float
    #: Energy per neuron update of an idle neuron, J.
    e_neuron_update_inactive: float
    #: Energy per spike generated, J.
    e_spike: float
    #: Energy per routed message (one spike to one destination core), J.
    e_msg: float
    #: Energy per router hop in the east-west direction, J.
    e_hop_ew: float
    #: Energy per router hop in the north-south direction, J.
    e_hop_ns: float
    #: Static (leakage + idle) power, W; charged as power × wall time.
    static_power_w: float
    #: Wall time of one algorithmic time step on the chip, s.
    time_per_step_s: float
    #: False when the per-event energies are not published for this chip (then they are an
    #: explicit assumption; energy reports print "unpublished").
    energy_published: bool

    #: Field name → citation (paper, table, page) or a stated assumption.
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)

    # ------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        if not isinstance(self.sources, Mapping):
            raise ProfileError(f"profile {self.name!r}: sources must be a mapping field → "
                               f"citation, got {type(self.sources).__name__}")
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        self.validate()

    # --- derived numbers -----------------------------------------------------------------
    @property
    def v_min(self) -> int:
        """Smallest representable v (and u): ``-2**(state_bits-1)``."""
        return -(1 << (self.state_bits - 1))

    @property
    def v_max(self) -> int:
        """Largest representable v (and u): ``2**(state_bits-1) - 1``."""
        return (1 << (self.state_bits - 1)) - 1

    @property
    def v_min_unscaled(self) -> int:
        """v_min in threshold-mantissa units (divided by ``2**threshold_scale_exp``, floored)."""
        return self.v_min >> self.threshold_scale_exp

    @property
    def v_max_unscaled(self) -> int:
        """v_max in threshold-mantissa units (divided by ``2**threshold_scale_exp``, floored)."""
        return self.v_max >> self.threshold_scale_exp

    @property
    def weight_min(self) -> Optional[int]:
        """Smallest integer weight mantissa, None for float weights."""
        return None if self.weight_bits is None else -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self) -> Optional[int]:
        """Largest integer weight mantissa, None for float weights."""
        return None if self.weight_bits is None else (1 << (self.weight_bits - 1)) - 1

    @property
    def bias_min(self) -> Optional[int]:
        """Smallest bias mantissa, None if unlimited."""
        return None if self.bias_bits is None else -(1 << (self.bias_bits - 1))

    @property
    def bias_max(self) -> Optional[int]:
        """Largest bias mantissa, None if unlimited."""
        return None if self.bias_bits is None else (1 << (self.bias_bits - 1)) - 1

    @property
    def threshold_max(self) -> Optional[int]:
        """Largest threshold mantissa, None if unlimited."""
        return None if self.threshold_bits is None else (1 << self.threshold_bits) - 1

    @property
    def decay_resolution(self) -> Optional[int]:
        """``2**decay_bits`` (4096 for 12 bits), None without multiplicative decay."""
        return None if self.decay_bits is None else 1 << self.decay_bits

    @property
    def bits_per_synapse(self) -> int:
        """Synaptic-memory bits per explicit synapse under the model of the module docstring."""
        if self.weights_per_neuron_max_distinct is not None:
            return self.synapse_overhead_bits
        return (32 if self.weight_bits is None else self.weight_bits) + self.synapse_overhead_bits

    @property
    def e_hop(self) -> float:
        """Mean hop energy ``(e_hop_ew + e_hop_ns) / 2``: the engine counts hops without
        direction, so each counted hop is charged the mean of the two directions."""
        return 0.5 * (self.e_hop_ew + self.e_hop_ns)

    def supports_reset(self, reset: str) -> bool:
        """True if ``reset`` ('subtract' or 'zero') is native on this chip."""
        return reset in self.native_resets

    # --- validation ----------------------------------------------------------------------
    def _fail(self, name: str, value: Any, need: str) -> None:
        raise ProfileError(f"profile {self.name!r}: field {name} = {value!r} is invalid; "
                           f"{need}")

    def _int(self, name: str, *, minimum: int, optional: bool = False,
             maximum: Optional[int] = None) -> None:
        value = getattr(self, name)
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(name, value, "must be an integer" + (" or None" if optional else ""))
        if value < minimum or (maximum is not None and value > maximum):
            rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            self._fail(name, value, f"must be {rng}")

    def validate(self) -> "ChipProfile":
        """Check every field; raise :class:`ProfileError` naming the field and value.

        Returns ``self`` so calls can be chained.
        """
        if not isinstance(self.name, str) or not self.name.strip():
            raise ProfileError(f"profile name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.description, str):
            self._fail("description", self.description, "must be a string")
        for name in ("physical", "weight_sharing", "weight_mixed_sign_loses_lsb",
                     "native_maxpool_gate", "energy_published"):
            if not isinstance(getattr(self, name), bool):
                self._fail(name, getattr(self, name), "must be True or False")

        for name in ("cores_per_chip", "neurons_per_core", "input_axons_per_core",
                     "output_axons_per_core", "synaptic_memory_bits_per_core",
                     "weights_per_neuron_max_distinct", "thresholds_per_core", "chips_max"):
            self._int(name, minimum=1, optional=True)
        self._int("synapse_overhead_bits", minimum=0)
        self._int("weight_bits", minimum=1, maximum=32, optional=True)
        if self.weight_mixed_sign_loses_lsb and self.weight_bits is not None \
                and self.weight_bits < 2:
            self._fail("weight_bits", self.weight_bits,
                       "must be >= 2 when weight_mixed_sign_loses_lsb is set")
        self._int("bias_bits", minimum=1, maximum=64, optional=True)
        self._int("bias_exponent_max", minimum=0, maximum=62)
        self._int("threshold_bits", minimum=1, maximum=63, optional=True)
        self._int("threshold_scale_exp", minimum=0, maximum=62)
        self._int("state_bits", minimum=2, maximum=64)
        self._int("decay_bits", minimum=1, maximum=32, optional=True)
        self._int("max_delay", minimum=0, optional=True)
        self._int("cores_per_router", minimum=1)

        rng = self.weight_exponent_range
        if (not isinstance(rng, tuple) or len(rng) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in rng)
                or rng[0] > rng[1]):
            self._fail("weight_exponent_range", rng, "must be a pair of integers (min, max) "
                       "with min <= max")
        if self.threshold_bits is not None:
            top = self.threshold_max << self.threshold_scale_exp
            if top > self.v_max:
                self._fail("threshold_bits", self.threshold_bits,
                           f"the largest threshold {top} (mantissa·2^{self.threshold_scale_exp})"
                           f" exceeds v_max = {self.v_max} of the {self.state_bits}-bit "
                           f"state_bits; lower threshold_bits or raise state_bits")
        for name in ("v_overflow", "u_overflow"):
            if getattr(self, name) not in _OVERFLOW:
                self._fail(name, getattr(self, name), f"must be one of {_OVERFLOW}")
        if self.spike_rule not in _SPIKE_RULES:
            self._fail("spike_rule", self.spike_rule, f"must be one of {_SPIKE_RULES}")
        resets = self.native_resets
        if (not isinstance(resets, tuple) or not resets or len(set(resets)) != len(resets)
                or any(r not in _RESETS for r in resets)):
            self._fail("native_resets", resets, f"must be a non-empty tuple of distinct values "
                       f"from {_RESETS}")
        if self.mesh is not None:
            m = self.mesh
            if (not isinstance(m, tuple) or len(m) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1
                               for x in m)):
                self._fail("mesh", m, "must be None or a pair of positive integers (x, y)")
            if self.cores_per_chip is not None \
                    and m[0] * m[1] * self.cores_per_router != self.cores_per_chip:
                self._fail("mesh", m, f"mesh x·y·cores_per_router = "
                           f"{m[0] * m[1] * self.cores_per_router} must equal cores_per_chip = "
                           f"{self.cores_per_chip}")

        for name in _ENERGY_FIELDS + ("static_power_w",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                self._fail(name, value, "must be a finite number >= 0")
        t = self.time_per_step_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) \
                or t <= 0:
            self._fail("time_per_step_s", t, "must be a finite number > 0")

        known = {f.name for f in fields(self)}
        for key, text in self.sources.items():
            if key not in known:
                self._fail("sources", key, f"cites an unknown field; known fields: "
                           f"{sorted(known - _META_FIELDS)}")
            if not isinstance(text, str) or not text.strip():
                self._fail("sources", {key: text}, "each citation must be a non-empty string")
        if self.physical:
            missing = [n for n in self.hardware_fields() if not self.sources.get(n, "").strip()]
            if missing:
                self._fail("sources", "…", f"a physical chip must cite every hardware field; "
                           f"missing: {missing}")
        return self

    @classmethod
    def hardware_fields(cls) -> Tuple[str, ...]:
        """Names of the fields that are hardware facts (all but name/description/...)."""
        return tuple(f.name for f in fields(cls) if f.name not in _META_FIELDS)

    # --- copies and storage --------------------------------------------------------------
    def replace(self, **changes: Any) -> "ChipProfile":
        """Return a validated copy with ``changes`` applied (for what-if studies).

        Unless ``sources`` is among the changes, the source of every changed hardware field
        is rewritten to say it is a what-if override, so a stored profile never claims a
        citation for a number the paper does not give.
        """
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ProfileError(f"profile {self.name!r}: replace() got unknown field(s) "
                               f"{unknown}; known fields: {[f.name for f in fields(self)]}")
        if "sources" not in changes:
            sources = dict(self.sources)
            for key, value in changes.items():
                if key in _META_FIELDS or value == getattr(self, key):
                    continue
                was = self.sources.get(key, "uncited")
                sources[key] = (f"what-if override of {getattr(self, key)!r} "
                                f"(original source: {was})")
            changes["sources"] = sources
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-able dict (tuples → lists) with a ``format_version`` key."""
        out: dict = {"format_version": PROFILE_FORMAT_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "sources":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ChipProfile":
        """Rebuild (and validate) a profile written by :meth:`to_dict`."""
        if not isinstance(data, Mapping):
            raise ProfileError(f"a stored profile must be a mapping, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("format_version", None)
        if version != PROFILE_FORMAT_VERSION:
            raise ProfileError(f"stored profile has format_version {version!r}; this neuroemu "
                               f"reads version {PROFILE_FORMAT_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown or missing:
            raise ProfileError(f"stored profile {data.get('name')!r}: unknown fields {unknown},"
                               f" missing fields {missing}")
        for name in _TUPLE_FIELDS:
            if isinstance(data[name], list):
                data[name] = tuple(data[name])
        return cls(**data)


# =========================================================================================
# Shipped profiles
# =========================================================================================

_DAVIES = ("M. Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip "
           "Learning', IEEE Micro 38(1), 2018")
_DAVIES_T2 = _DAVIES + ", Table 2 (pre-silicon/SPICE energy and performance figures)"
_NENGO_LOIHI = ("nengo-loihi builder constants (nengo_loihi/builder/discretize.py, "
                "nengo_loihi/block.py), which encode the Loihi 1 number formats")
_SANAFE = ("J. A. Boyle, M. Plagge, S. G. Cardwell, F. S. Chance, A. Gerstlauer, 'SANA-FE: "
           "Simulating Advanced Neuromorphic Architectures for Fast Exploration', IEEE TCAD "
           "2025 (arXiv 2023); silicon-calibrated Loihi model, file arch/loihi.yaml of "
           "github.com/SLAM-Lab/SANA-FE")
_LOIHI2 = ("G. Orchard et al., 'Efficient Neuromorphic Signal Processing with Loihi 2', "
           "IEEE SiPS 2021; Intel, 'Taking Neuromorphic Computing to the Next Level with "
           "Loihi 2' technology brief, 2021")
_TN_MEROLLA = ("P. A. Merolla et al., 'A million spiking-neuron integrated circuit with a "
               "scalable communication network and interface', Science 345(6197), 2014")
_TN_AKOPYAN = ("F. Akopyan et al., 'TrueNorth: Design and Tool Flow of a 65 mW 1 Million "
               "Neuron Programmable Neurosynaptic Chip', IEEE TCAD 34(10), 2015")
_TN_CASSIDY = ("A. S. Cassidy et al., 'Cognitive computing building block: a versatile and "
               "efficient digital neuron model for neurosynaptic cores', IJCNN 2013 [recalled, not "
               "re-checked against the paper when this profile was written]")
_SPECK_YAO = ("M. Yao et al., 'Spike-based dynamic computing with asynchronous "
              "sensing-computing neuromorphic chip' (Speck), Nature Communications 15, 2024")
_SPECK_SINABS = ("SynSense sinabs-dynapcnn documentation, 'chip overview' and 'memory "
                 "constraints' pages (synsense.gitlab.io/sinabs-dynapcnn)")

_LOIHI1_LIMITS = dict(
    cores_per_chip=128,
    neurons_per_core=1024,
    input_axons_per_core=4096,
    output_axons_per_core=4096,
    synaptic_memory_bits_per_core=128 * 1024 * 8,
    synapse_overhead_bits=10,
    weight_sharing=False,
    weight_bits=8,
    weight_mixed_sign_loses_lsb=True,
    weight_exponent_range=(-7, 7),
    weights_per_neuron_max_distinct=None,
    bias_bits=13,
    bias_exponent_max=7,
    threshold_bits=17,
    threshold_scale_exp=6,
    thresholds_per_core=8,
    state_bits=24,
    v_overflow="saturate",
    u_overflow="wrap",
    decay_bits=12,
    spike_rule=">",
    native_resets=("zero",),
    native_maxpool_gate=False,
    max_delay=62,
    mesh=(8, 4),
    cores_per_router=4,
    chips_max=None,
)

_LOIHI1_LIMIT_SOURCES = {
    "cores_per_chip": _DAVIES + ", Sec. 'Architecture': 128 neuromorphic cores per chip",
    "neurons_per_core": _DAVIES + ": 1,024 primitive neural units (compartments) per core",
    "input_axons_per_core": _DAVIES + ", Table 1/fan-in: 4,096 input axons per core",
    "output_axons_per_core": _DAVIES + ": 4,096 output (fan-out) axons per core",
    "synaptic_memory_bits_per_core": _DAVIES + ": 128 KB synaptic memory per core "
                                     "(16,384 × 64-bit words) = 1,048,576 bits",
    "synapse_overhead_bits": "model assumption: sparse synapse format, each synapse stores a "
                             "target-compartment index of log2(1024) = 10 bits besides its "
                             "weight (Davies 2018 describes sparse/dense/run-length formats; "
                             "delay and learning-tag bits not counted)",
    "weight_sharing": _DAVIES + ": synapses stored explicitly per core; no convolutional "
                      "weight sharing in Loihi 1",
    "weight_bits": _DAVIES + ": 1-8 bit synaptic weights (signed mantissa)",
    "weight_mixed_sign_loses_lsb": _NENGO_LOIHI + ": mixed-sign synapse formats use one weight "
                                   "bit for the sign (isMixed), halving the resolution",
    "weight_exponent_range": _NENGO_LOIHI + ": per-synapse-format weight exponent, effective "
                             "weight w·2^(6+e), e in [-7, 7]; DESIGN.md 'Chip profiles'",
    "weights_per_neuron_max_distinct": _DAVIES + ": each synapse has its own weight (no "
                                       "per-neuron limit on distinct values)",
    "bias_bits": _NENGO_LOIHI + ": BIAS_MAN_MAX = 2^12 - 1, i.e. 13-bit signed mantissa",
    "bias_exponent_max": _NENGO_LOIHI + ": BIAS_EXP_MAX = 2^3 - 1 = 7",
    "threshold_bits": _NENGO_LOIHI + ": VTH_MAN_MAX = 2^17 - 1 (17-bit unsigned mantissa)",
    "threshold_scale_exp": _NENGO_LOIHI + ": VTH_EXP = 6 (threshold = mantissa·2^6)",
    "thresholds_per_core": _NENGO_LOIHI + ": VTH_PROFILES_MAX = 8 threshold profiles per core "
                           "(later nengo-loihi validation allows 16, marked 'TODO check'; "
                           "the conservative 8 is used)",
    "state_bits": _NENGO_LOIHI + ": U and V are 23 bits plus sign (24-bit signed); DESIGN.md",
    "v_overflow": _NENGO_LOIHI + ": v is clipped (saturates) to [-2^23, 2^23 - 1]",
    "u_overflow": _NENGO_LOIHI + ": u overflows as a 24-bit signed integer "
                  "(overflow_signed, i.e. wraps)",
    "decay_bits": _DAVIES + ": 12-bit current and voltage decay constants (δ/4096)",
    "spike_rule": _NENGO_LOIHI + ": a compartment spikes when v > vth (strictly greater)",
    "native_resets": _DAVIES + ": after a spike v is reset to zero (refractory); reset by "
                     "subtraction is not native on Loihi 1 (DESIGN.md)",
    "native_maxpool_gate": "Loihi 1 has no spiking max-pool gate primitive (DESIGN.md "
                           "'Chip profiles'; Davies 2018 lists no such unit)",
    "max_delay": _DAVIES + ": programmable synaptic delays up to 62 time steps "
                 "(6-bit delay field) [recalled, not re-checked against the paper]",
    "mesh": _DAVIES + ": 128 cores in 32 tiles, 4 cores per tile, tiles on a 2-D mesh; the "
            "8 × 4 tile layout follows SANA-FE arch/loihi.yaml (width 8, height 4)",
    "cores_per_router": _DAVIES + ": 4 cores share one mesh router (tile)",
    "chips_max": "no fixed limit: Loihi chips tile hierarchically (Pohoiki Springs: 768 chips);"
                 " left unlimited",
}

_LOIHI1_DAVIES_ENERGY = dict(
    e_syn_event=23.6e-12,
    e_neuron_update_active=81e-12,
    e_neuron_update_inactive=52e-12,
    e_spike=0.0,
    e_msg=1.7e-12,
    e_hop_ew=3.0e-12,
    e_hop_ns=4.0e-12,
    static_power_w=0.0,
    time_per_step_s=1.8e-6,
    energy_published=True,
)

_LOIHI1_DAVIES_ENERGY_SOURCES = {
    "e_syn_event": _DAVIES_T2 + ": energy per synaptic spike op (min) 23.6 pJ",
    "e_neuron_update_active": _DAVIES_T2 + ": energy per neuron update, active 81 pJ (the "
                              "larger figure; consistent with SANA-FE's silicon fit "
                              "51.2 + 21.6 pJ)",
    "e_neuron_update_inactive": _DAVIES_T2 + ": energy per neuron update, inactive 52 pJ",
    "e_spike": "Davies 2018 Table 2 gives no separate spike-generation energy; it is taken as "
               "included in the active neuron update (0 J)",
    "e_msg": _DAVIES_T2 + ": within-tile spike energy 1.7 pJ, charged once per message; "
             "mesh hops are charged on top",
    "e_hop_ew": _DAVIES_T2 + ": energy per tile hop, east-west 3.0 pJ",
    "e_hop_ns": _DAVIES_T2 + ": energy per tile hop, north-south 4.0 pJ (SANA-FE's "
                "arch/loihi.yaml, which says it takes Davies' numbers, uses 4.2 pJ; see "
                "loihi1-silicon)",
    "static_power_w": "not modelled (0 W): Davies 2018 Table 2 gives dynamic energies per "
                      "operation only",
    "time_per_step_s": "lower bound, not a measured tick: SANA-FE arch (Boyle et al.) "
                       "barrier-sync latency table 0.6-1.8 µs (1-29 tiles), largest value "
                       "1.8 µs used; the activity-dependent processing time of a step "
                       "comes on top",
    "energy_published": _DAVIES_T2,
}


def _loihi1() -> ChipProfile:
    return ChipProfile(
        name="loihi1",
        description="Intel Loihi (1), 14 nm, energies from Davies et al. 2018 Table 2",
        physical=True,
        **_LOIHI1_LIMITS,
        **_LOIHI1_DAVIES_ENERGY,
        sources={**_LOIHI1_LIMIT_SOURCES, **_LOIHI1_DAVIES_ENERGY_SOURCES},
    )


def _loihi1_silicon() -> ChipProfile:
    energy = dict(
        e_syn_event=35.5e-12,
        e_neuron_update_active=51.2e-12 + 21.6e-12,
        e_neuron_update_inactive=51.2e-12,
        e_spike=69.3e-12,
        e_msg=111.0e-12,
        e_hop_ew=3.0e-12,
        e_hop_ns=4.2e-12,
        static_power_w=0.0,
        time_per_step_s=1.8e-6,
        energy_published=True,
    )
    sources = {
        **_LOIHI1_LIMIT_SOURCES,
        "e_syn_event": _SANAFE + ": dense synapse energy_process_spike 35.5 pJ",
        "e_neuron_update_active": _SANAFE + ": soma energy_access_neuron 51.2 pJ + "
                                  "energy_update_neuron 21.6 pJ = 72.8 pJ",
        "e_neuron_update_inactive": _SANAFE + ": soma energy_access_neuron 51.2 pJ (every "
                                    "mapped neuron is accessed each step)",
        "e_spike": _SANAFE + ": soma energy_spike_out 69.3 pJ",
        "e_msg": _SANAFE + ": axon_out energy_message_out 111 pJ per message sent",
        "e_hop_ew": _SANAFE + ": tile energy_east_hop/energy_west_hop 3.0 pJ",
        "e_hop_ns": _SANAFE + ": tile energy_north_hop/energy_south_hop 4.2 pJ",
        "static_power_w": "not modelled (0 W): SANA-FE's Loihi model charges dynamic energy "
                          "per event only",
        "time_per_step_s": _LOIHI1_DAVIES_ENERGY_SOURCES["time_per_step_s"],
        "energy_published": _SANAFE,
    }
    return ChipProfile(
        name="loihi1-silicon",
        description="Intel Loihi (1) limits with silicon-calibrated energies (SANA-FE)",
        physical=True,
        **_LOIHI1_LIMITS,
        **energy,
        sources=sources,
    )


def _loihi2() -> ChipProfile:
    assumed = ("ASSUMPTION: Loihi 2 per-event energies are not published; the Loihi 1 figure "
               "of Davies 2018 Table 2 is used as a placeholder. ")
    limits = dict(_LOIHI1_LIMITS)
    limits.update(
        neurons_per_core=8192,
        input_axons_per_core=None,
        output_axons_per_core=None,
        synaptic_memory_bits_per_core=None,
        weight_mixed_sign_loses_lsb=False,
        thresholds_per_core=None,
        native_resets=("subtract", "zero"),
    )
    sources = dict(_LOIHI1_LIMIT_SOURCES)
    sources.update({
        "cores_per_chip": _LOIHI2 + ": 128 neuromorphic cores per chip",
        "neurons_per_core": _LOIHI2 + ": up to 8,192 neurons per core (1 M per chip)",
        "input_axons_per_core": _LOIHI2 + ": fan-in limited by a flexible per-core memory "
                                "shared between synapses and axon routing; no fixed count "
                                "published (None)",
        "output_axons_per_core": _LOIHI2 + ": no fixed fan-out count published (None)",
        "synaptic_memory_bits_per_core": _LOIHI2 + ": per-core memory is shared flexibly "
                                         "between synapse and neuron state; not enforced "
                                         "(None)",
        "synapse_overhead_bits": "model assumption carried over from loihi1 (10-bit index)",
        "weight_bits": _LOIHI2 + ": synaptic weights up to 8 bits",
        "weight_mixed_sign_loses_lsb": "ASSUMPTION: the Loihi 1 mixed-sign LSB loss is not "
                                       "documented for Loihi 2; not applied",
        "weight_exponent_range": "ASSUMPTION: Loihi 1 weight exponent range kept (Lava "
                                 "weight_exp parameter)",
        "bias_bits": "ASSUMPTION: Loihi 1 bias format (13-bit mantissa) kept",
        "bias_exponent_max": "ASSUMPTION: Loihi 1 bias exponent kept",
        "threshold_bits": "ASSUMPTION: Loihi 1 threshold format (17-bit mantissa ×2^6) kept",
        "threshold_scale_exp": "ASSUMPTION: Loihi 1 threshold exponent 6 kept",
        "thresholds_per_core": _LOIHI2 + ": programmable neuron microcode, per-neuron "
                               "thresholds possible (None)",
        "state_bits": _LOIHI2 + ": 24-bit neuron state (u, v) in the standard LIF",
        "v_overflow": "ASSUMPTION: Loihi 1 behaviour kept (v saturates)",
        "u_overflow": "ASSUMPTION: Loihi 1 behaviour kept (u wraps)",
        "decay_bits": "ASSUMPTION: 12-bit decays of the Loihi 1 LIF kept (Lava LIF du/dv "
                      "use 4096 resolution); decays are programmable on Loihi 2",
        "spike_rule": "Lava LIF process model for Loihi 2 spikes on v > vth",
        "native_resets": _LOIHI2 + ": programmable neuron models (microcode) implement both "
                         "reset to zero and reset by subtraction",
        "native_maxpool_gate": "conservative: a max-pool gate would need custom microcode; "
                               "not treated as native",
        "max_delay": "ASSUMPTION: Loihi 1 limit of 62 steps kept",
        "mesh": "ASSUMPTION: Loihi 1 8 × 4 tile mesh of 4 cores kept (128 cores)",
        "cores_per_router": "ASSUMPTION: 4 cores per router as in Loihi 1",
        "chips_max": "no fixed limit (Hala Point: 1,152 Loihi 2 chips); left unlimited",
    })
    for key in _LOIHI1_DAVIES_ENERGY_SOURCES:
        sources[key] = assumed + _LOIHI1_DAVIES_ENERGY_SOURCES[key]
    energy = dict(_LOIHI1_DAVIES_ENERGY, energy_published=False)
    sources["energy_published"] = ("Loihi 2 per-event energies are not published; "
                                   "reports print 'unpublished'")
    return ChipProfile(
        name="loihi2",
        description="Intel Loihi 2 (Intel 4); energies UNPUBLISHED (Loihi 1 placeholders)",
        physical=True, **limits, **energy, sources=sources,
    )


def _truenorth() -> ChipProfile:
    all_in = "26 pJ per synaptic event is an all-in figure; this cost is included there (0 J)"
    return ChipProfile(
        name="truenorth",
        description="IBM TrueNorth, 28 nm, 4096 cores of 256 neurons, 1 kHz tick",
        physical=True,
        cores_per_chip=4096,
        neurons_per_core=256,
        input_axons_per_core=256,
        output_axons_per_core=256,
        synaptic_memory_bits_per_core=256 * 256,
        synapse_overhead_bits=1,
        weight_sharing=False,
        weight_bits=9,
        weight_mixed_sign_loses_lsb=False,
        weight_exponent_range=(0, 0),
        weights_per_neuron_max_distinct=4,
        bias_bits=9,
        bias_exponent_max=0,
        threshold_bits=18,
        threshold_scale_exp=0,
        thresholds_per_core=None,
        state_bits=20,
        v_overflow="saturate",
        u_overflow="saturate",
        decay_bits=None,
        spike_rule=">=",
        native_resets=("subtract", "zero"),
        native_maxpool_gate=False,
        max_delay=15,
        mesh=(64, 64),
        cores_per_router=1,
        chips_max=None,
        e_syn_event=26e-12,
        e_neuron_update_active=0.0,
        e_neuron_update_inactive=0.0,
        e_spike=0.0,
        e_msg=0.0,
        e_hop_ew=0.0,
        e_hop_ns=0.0,
        static_power_w=0.0,
        time_per_step_s=1e-3,
        energy_published=True,
        sources={
            "cores_per_chip": _TN_MEROLLA + ": 4,096 neurosynaptic cores (64 × 64)",
            "neurons_per_core": _TN_MEROLLA + ": 256 neurons per core",
            "input_axons_per_core": _TN_MEROLLA + ": 256 axons per core",
            "output_axons_per_core": _TN_MEROLLA + ": each neuron targets exactly one axon, "
                                     "so a core has 256 output routes (one per neuron)",
            "synaptic_memory_bits_per_core": _TN_MEROLLA + ": 256 × 256 binary synaptic "
                                             "crossbar = 65,536 bits",
            "synapse_overhead_bits": _TN_MEROLLA + ": one crossbar bit per synapse; the "
                                     "weight lives in the neuron (per axon type)",
            "weight_sharing": _TN_AKOPYAN + ": no weight sharing; every core has its own "
                              "crossbar",
            "weight_bits": _TN_CASSIDY + ": synaptic weights s_G are 9-bit signed integers",
            "weight_mixed_sign_loses_lsb": _TN_CASSIDY + ": each weight is a full 9-bit "
                                           "signed value (no shared sign bit)",
            "weight_exponent_range": _TN_CASSIDY + ": no weight exponent (fixed 2^0)",
            "weights_per_neuron_max_distinct": _TN_MEROLLA + ": 4 axon types, one weight per "
                                               "neuron per type",
            "bias_bits": _TN_CASSIDY + ": leak λ is a 9-bit signed integer added each tick "
                         "(used as the bias)",
            "bias_exponent_max": _TN_CASSIDY + ": no leak exponent",
            "threshold_bits": _TN_CASSIDY + ": positive threshold α is an 18-bit unsigned "
                              "integer",
            "threshold_scale_exp": _TN_CASSIDY + ": threshold used unscaled",
            "thresholds_per_core": _TN_CASSIDY + ": thresholds are per-neuron parameters",
            "state_bits": _TN_CASSIDY + "; DESIGN.md: 20-bit signed membrane potential",
            "v_overflow": _TN_CASSIDY + ": the potential is bounded (negative floor β with "
                          "saturation); modelled as saturation",
            "u_overflow": _TN_CASSIDY + ": TrueNorth has no separate current state (input goes "
                          "straight to v, decay_u must be 4096); u treated like v",
            "decay_bits": _TN_CASSIDY + ": linear leak only, no multiplicative decay (None)",
            "spike_rule": _TN_CASSIDY + ": a neuron fires when V ≥ α",
            "native_resets": _TN_CASSIDY + ": reset modes 'normal' (to V_reset = 0) and "
                             "'linear' (subtract α)",
            "native_maxpool_gate": _TN_AKOPYAN + ": no max-pool gate primitive",
            "max_delay": _TN_MEROLLA + ": axonal delays of 1-15 ticks",
            "mesh": _TN_MEROLLA + ": 64 × 64 two-dimensional mesh of cores",
            "cores_per_router": _TN_MEROLLA + ": one router per core",
            "chips_max": _TN_MEROLLA + ": chips tile seamlessly into larger boards; no limit",
            "e_syn_event": _TN_MEROLLA + ": 26 pJ per synaptic event, all-in (includes "
                           "neuron updates, routing and static power)",
            "e_neuron_update_active": _TN_MEROLLA + ": " + all_in,
            "e_neuron_update_inactive": _TN_MEROLLA + ": " + all_in,
            "e_spike": _TN_MEROLLA + ": " + all_in,
            "e_msg": _TN_MEROLLA + ": " + all_in,
            "e_hop_ew": _TN_MEROLLA + ": " + all_in,
            "e_hop_ns": _TN_MEROLLA + ": " + all_in,
            "static_power_w": _TN_MEROLLA + ": " + all_in,
            "time_per_step_s": _TN_MEROLLA + ": 1 kHz global tick (1 ms, real time)",
            "energy_published": _TN_MEROLLA,
        },
    )


def _speck() -> ChipProfile:
    unpublished = ("ASSUMPTION: no per-event energy for Speck/DYNAP-CNN is published in a form "
                   "that maps onto these counters; 0 J, only static power is costed")
    return ChipProfile(
        name="speck",
        description="SynSense Speck / DYNAP-CNN: 9 asynchronous convolutional cores",
        physical=True,
        cores_per_chip=9,
        neurons_per_core=65536,
        input_axons_per_core=None,
        output_axons_per_core=2,
        synaptic_memory_bits_per_core=16384 * 8,
        synapse_overhead_bits=0,
        weight_sharing=True,
        weight_bits=8,
        weight_mixed_sign_loses_lsb=False,
        weight_exponent_range=(0, 0),
        weights_per_neuron_max_distinct=None,
        bias_bits=16,
        bias_exponent_max=0,
        threshold_bits=15,
        threshold_scale_exp=0,
        thresholds_per_core=1,
        state_bits=16,
        v_overflow="saturate",
        u_overflow="saturate",
        decay_bits=None,
        spike_rule=">=",
        native_resets=("subtract", "zero"),
        native_maxpool_gate=False,
        max_delay=1,
        mesh=None,
        cores_per_router=1,
        chips_max=1,
        e_syn_event=0.0,
        e_neuron_update_active=0.0,
        e_neuron_update_inactive=0.0,
        e_spike=0.0,
        e_msg=0.0,
        e_hop_ew=0.0,
        e_hop_ns=0.0,
        static_power_w=0.42e-3,
        time_per_step_s=1e-3,
        energy_published=False,
        sources={
            "cores_per_chip": _SPECK_SINABS + "; " + _SPECK_YAO + ": 9 DYNAP-CNN cores",
            "neurons_per_core": _SPECK_SINABS + ": neuron memory up to 64 Ki entries in the "
                                "largest cores (smaller in some cores; the per-core values "
                                "are not modelled here)",
            "input_axons_per_core": _SPECK_SINABS + ": fan-in bounded by kernel memory, not "
                                    "an axon count (None)",
            "output_axons_per_core": _SPECK_SINABS + ": each core can send its output to at "
                                     "most 2 destination cores",
            "synaptic_memory_bits_per_core": _SPECK_SINABS + ": kernel memory of 16 Ki 8-bit "
                                             "entries in the smaller cores (32 Ki in "
                                             "others); the conservative 16 Ki is used",
            "synapse_overhead_bits": _SPECK_SINABS + ": dense kernel storage, no index bits",
            "weight_sharing": _SPECK_SINABS + ": convolutional cores store one kernel per "
                              "layer",
            "weight_bits": _SPECK_SINABS + ": 8-bit signed weights",
            "weight_mixed_sign_loses_lsb": _SPECK_SINABS + ": plain 8-bit signed weights",
            "weight_exponent_range": _SPECK_SINABS + ": no weight exponent",
            "weights_per_neuron_max_distinct": _SPECK_SINABS + ": no such limit",
            "bias_bits": _SPECK_SINABS + ": 16-bit signed bias",
            "bias_exponent_max": _SPECK_SINABS + ": no bias exponent",
            "threshold_bits": _SPECK_SINABS + ": threshold is a 16-bit signed register; its "
                              "positive range is 15 bits",
            "threshold_scale_exp": _SPECK_SINABS + ": threshold unscaled",
            "thresholds_per_core": _SPECK_SINABS + ": one spiking threshold per layer/core",
            "state_bits": _SPECK_SINABS + ": 16-bit signed membrane potential",
            "v_overflow": _SPECK_SINABS + ": v bounded below by a minimum membrane potential "
                          "and saturating; modelled as saturation",
            "u_overflow": _SPECK_SINABS + ": no separate current state (IAF neurons); u "
                          "treated like v",
            "decay_bits": _SPECK_SINABS + ": integrate-and-fire neurons (optional leak via "
                          "a leak clock, not multiplicative); None",
            "spike_rule": _SPECK_SINABS + ": spike when v_mem ≥ threshold",
            "native_resets": _SPECK_SINABS + ": reset by subtraction (default) or return to "
                             "zero",
            "native_maxpool_gate": _SPECK_SINABS + ": only sum pooling is supported in "
                                   "hardware",
            "max_delay": "asynchronous pipeline: a spike reaches the next core within one "
                         "(binned) step; no programmable delays (sinabs-dynapcnn docs)",
            "mesh": _SPECK_SINABS + ": cores linked by a configurable router, not a mesh "
                    "(None; hops not modelled)",
            "cores_per_router": _SPECK_SINABS + ": one router port per core",
            "chips_max": _SPECK_YAO + ": a single-chip sensing-computing SoC",
            "e_syn_event": unpublished,
            "e_neuron_update_active": unpublished,
            "e_neuron_update_inactive": unpublished,
            "e_spike": unpublished,
            "e_msg": unpublished,
            "e_hop_ew": unpublished,
            "e_hop_ns": unpublished,
            "static_power_w": _SPECK_YAO + ": resting power 0.42 mW",
            "time_per_step_s": "ASSUMPTION: Speck is asynchronous (no clock tick); 1 ms event "
                               "binning window, not a hardware figure",
            "energy_published": unpublished,
        },
    )


def _ideal() -> ChipProfile:
    return ChipProfile(
        name="ideal",
        description="Ideal reference: no limits, float weights, 64-bit state, zero energy",
        physical=False,
        cores_per_chip=None,
        neurons_per_core=None,
        input_axons_per_core=None,
        output_axons_per_core=None,
        synaptic_memory_bits_per_core=None,
        synapse_overhead_bits=0,
        weight_sharing=True,
        weight_bits=None,
        weight_mixed_sign_loses_lsb=False,
        weight_exponent_range=(0, 0),
        weights_per_neuron_max_distinct=None,
        bias_bits=None,
        bias_exponent_max=0,
        threshold_bits=None,
        threshold_scale_exp=0,
        thresholds_per_core=None,
        state_bits=64,
        v_overflow="raise",
        u_overflow="raise",
        decay_bits=12,
        spike_rule=">=",
        native_resets=("subtract", "zero"),
        native_maxpool_gate=True,
        max_delay=None,
        mesh=None,
        cores_per_router=1,
        chips_max=None,
        e_syn_event=0.0,
        e_neuron_update_active=0.0,
        e_neuron_update_inactive=0.0,
        e_spike=0.0,
        e_msg=0.0,
        e_hop_ew=0.0,
        e_hop_ns=0.0,
        static_power_w=0.0,
        time_per_step_s=1e-3,
        energy_published=False,
        sources={
            "state_bits": "int64 accumulators of the engine; overflow raises so that the "
                          "ideal run is never silently clipped",
            "decay_bits": "the contract's 4096 decay resolution (DESIGN.md)",
            "spike_rule": "v ≥ θ, the rule of the conversion papers (Rueckauer 2017)",
            "e_syn_event": "no energy model: all energies 0 J; compare synaptic_ops instead",
            "time_per_step_s": "nominal 1 ms step, for latency reports in 'steps × 1 ms'",
            "energy_published": "reference chip without an energy model",
        },
    )


_BUILDERS = {
    "loihi1": _loihi1,
    "loihi1-silicon": _loihi1_silicon,
    "loihi2": _loihi2,
    "truenorth": _truenorth,
    "speck": _speck,
    "ideal": _ideal,
}
_PROFILES: Mapping[str, ChipProfile] = MappingProxyType({k: b() for k, b in _BUILDERS.items()})

_ALIASES: Mapping[str, str] = MappingProxyType({
    "loihi": "loihi1",
    "loihi-1": "loihi1",
    "loihi1-sanafe": "loihi1-silicon",
    "loihi-silicon": "loihi1-silicon",
    "sanafe": "loihi1-silicon",
    "loihi-2": "loihi2",
    "tn": "truenorth",
    "true-north": "truenorth",
    "dynap-cnn": "speck",
    "dynapcnn": "speck",
    "float": "ideal",
    "none": "ideal",
})


def _normalise(name: str) -> str:
    return "-".join(name.strip().lower().replace("_", "-").split())


def list_profiles() -> Tuple[str, ...]:
    """Canonical names of the shipped profiles."""
    return tuple(_PROFILES)


def get_profile(name: "str | ChipProfile") -> ChipProfile:
    """Look a profile up by name (case-insensitive; '_' and ' ' count as '-'; aliases such as
    'loihi' → 'loihi1', 'dynap-cnn' → 'speck').  A :class:`ChipProfile` is returned as is."""
    if isinstance(name, ChipProfile):
        return name
    if not isinstance(name, str):
        raise ProfileError(f"a profile name must be a string, got {type(name).__name__}")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    try:
        return _PROFILES[key]
    except KeyError:
        raise ProfileError(f"unknown chip profile {name!r}; known profiles: "
                           f"{', '.join(_PROFILES)} (aliases: {', '.join(_ALIASES)})") from None
