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
:meth:`ChipProfile.to_dict` / :meth:`ChipProfile.from_dict` (plain JSON types only).  The cited
numbers of the shipped chips live in :mod:`hw_models.chips`; this module builds them.

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

from .chips import CHIPS
from .errors import ProfileError

__all__ = [
    "ChipProfile",
    "DEFAULT_PROFILE",
    "get_profile",
    "is_stock",
    "list_profiles",
    "PROFILE_FORMAT_VERSION",
    "E_MAC_FP32",
    "E_MAC_INT8",
    "E_ADD_FP32",
    "REFERENCE_SOURCES",
    "SYNAPTIC_CHARGES",
    "ACTIVE_UPDATES",
]

#: Version of the :meth:`ChipProfile.to_dict` layout (stored with the profile).
PROFILE_FORMAT_VERSION = 1

#: The profile every call uses when none is given (written here only).
DEFAULT_PROFILE = "loihi1"

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
_TUPLE_FIELDS = frozenset({"weight_exponent_range", "native_resets", "mesh", "barrier_s"})
_ENERGY_FIELDS = ("e_syn_event", "e_neuron_update_active", "e_neuron_update_inactive",
                  "e_spike", "e_msg", "e_hop_ew", "e_hop_ns")
_TIME_FIELDS = ("t_neuron_access_s", "t_neuron_update_s", "t_spike_s", "t_msg_out_s",
                "t_msg_in_s", "t_syn_event_s", "t_hop_ew_s", "t_hop_ns_s")
SYNAPTIC_CHARGES = ("delivery", "emission")
ACTIVE_UPDATES = ("input", "state")


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

    # --- time per counted event (the latency model, :mod:`hw_models.latency`) -----------
    # Defaults (0 s, unpublished) keep profiles written before these fields readable.
    #: Per mapped (non-input) neuron per step: reading its state, s.
    t_neuron_access_s: float = 0.0
    #: Per active neuron update (see ``active_update``), on top of the access, s.
    t_neuron_update_s: float = 0.0
    #: Per spike generated by a (non-input) neuron, s.
    t_spike_s: float = 0.0
    #: Per message sent (one spike to one destination core), at the sending core, s.
    t_msg_out_s: float = 0.0
    #: Per message received, at the receiving core, s.
    t_msg_in_s: float = 0.0
    #: Per synaptic event, at the receiving core, s.
    t_syn_event_s: float = 0.0
    #: Per router hop east-west / north-south (the mesh term), s.
    t_hop_ew_s: float = 0.0
    t_hop_ns_s: float = 0.0
    #: End-of-step barrier by tiles in use: ((tiles, s), ...), ascending; the entry with the
    #: largest tile count <= the tiles in use applies (the first one below all of them).
    barrier_s: Tuple[Tuple[int, float], ...] = ()
    #: False when the per-event times are not published (reports say so).
    timing_published: bool = False
    #: Step at which a spike's synaptic work is charged: 'delivery' (the step it arrives,
    #: t + delay ≤ T) or 'emission' (the step it is sent, so the last step's spikes count).
    synaptic_charge: str = "delivery"
    #: Which neuron updates are 'active': 'input' (net synaptic/analog input Q ≠ 0) or
    #: 'state' (v before the step, the input or the bias non-zero).
    active_update: str = "input"

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
        if isinstance(self.barrier_s, tuple):
            object.__setattr__(self, "barrier_s", tuple(
                tuple(e) if isinstance(e, list) else e for e in self.barrier_s))
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

    def barrier_for(self, tiles: int) -> float:
        """Barrier time (s) for ``tiles`` tiles in use: the entry with the largest tile count
        <= ``tiles`` (the first entry below all of them; 0 s without a table)."""
        out = self.barrier_s[0][1] if self.barrier_s else 0.0
        for n, sec in self.barrier_s:
            if n <= tiles:
                out = sec
        return float(out)

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

        for name in _TIME_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                self._fail(name, value, "must be a finite number of seconds >= 0")
        bar = self.barrier_s
        if (not isinstance(bar, tuple) or any(
                not isinstance(e, tuple) or len(e) != 2 or isinstance(e[0], bool)
                or not isinstance(e[0], int) or e[0] < 0 or isinstance(e[1], bool)
                or not isinstance(e[1], (int, float)) or not math.isfinite(e[1]) or e[1] < 0
                for e in bar) or any(a[0] >= b[0] for a, b in zip(bar, bar[1:]))):
            self._fail("barrier_s", bar, "must be a tuple of (tiles, seconds) pairs with "
                       "strictly ascending integer tiles >= 0 and finite seconds >= 0")
        if not isinstance(self.timing_published, bool):
            self._fail("timing_published", self.timing_published, "must be True or False")
        if self.synaptic_charge not in SYNAPTIC_CHARGES:
            self._fail("synaptic_charge", self.synaptic_charge,
                       f"must be one of {SYNAPTIC_CHARGES}")
        if self.active_update not in ACTIVE_UPDATES:
            self._fail("active_update", self.active_update, f"must be one of {ACTIVE_UPDATES}")

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
        optional = {f.name for f in fields(cls)
                    if f.default is not dataclasses.MISSING
                    or f.default_factory is not dataclasses.MISSING}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data) - optional)  # older files lack the timing fields
        if unknown or missing:
            raise ProfileError(f"stored profile {data.get('name')!r}: unknown fields {unknown},"
                               f" missing fields {missing}")
        for name in _TUPLE_FIELDS:
            if isinstance(data[name], list):
                data[name] = tuple(data[name])
        return cls(**data)


# The shipped profiles, built (and so validated) from the cited data in :mod:`hw_models.chips`.
_PROFILES: Mapping[str, ChipProfile] = MappingProxyType(
    {name: ChipProfile(**build()) for name, build in CHIPS.items()})

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


def is_stock(profile: "ChipProfile") -> bool:
    """True when ``profile`` is a shipped profile unchanged (False for a what-if variant made
    with :meth:`ChipProfile.replace`, which must then travel as an object, not as a name)."""
    stock = _PROFILES.get(profile.name)
    return stock is not None and stock == profile


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
