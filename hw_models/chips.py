"""The shipped chips: the cited numbers behind every :class:`~hw_models.profiles.ChipProfile`.

Each ``_chip()`` function returns the keyword arguments of one profile (limits, number formats,
neuron semantics, energies and the ``sources`` that cite each of them); :mod:`hw_models.profiles`
builds and validates the profiles from :data:`CHIPS` and looks them up by name.  This module
holds data only: it imports nothing from the rest of the package, so a chip is added here and
nowhere else (plus, optionally, an alias in :mod:`hw_models.profiles`).

Units: energies in joules, power in watts, times in seconds, memory in bits.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Dict, Mapping

__all__ = ["CHIPS"]

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


_SANAFE_YAML = ("SANA-FE Loihi architecture file arch/loihi.yaml (github.com/SLAM-Lab/SANA-FE; "
                "shipped as sanafe/examples/loihi.yaml in sanafe 2.2.9), whose header says its "
                "figures come from Davies et al. 2018 SPICE results")
_SANAFE_SRC = ("SANA-FE source (sanafe 2.2.9, src/chip.cpp, src/pipeline.hpp, src/models.cpp, "
               "src/schedule.cpp)")

#: Time per counted event on Loihi 1 (SANA-FE's simple timing model, Boyle et al. TCAD 2025):
#: per core and step, max(neurons·access + active·update + spikes·spike_out + messages
#: out·message_out, messages in·message_in + synaptic events·process_spike), the slowest core
#: sets the step, plus a barrier looked up by tiles in use.
_LOIHI1_TIMING = dict(
    t_neuron_access_s=6.0e-9,
    t_neuron_update_s=3.7e-9,
    t_spike_s=30.0e-9,
    t_msg_out_s=5.1e-9,
    t_msg_in_s=16.0e-9,
    t_syn_event_s=3.8e-9,
    t_hop_ew_s=4.1e-9,
    t_hop_ns_s=6.5e-9,
    barrier_s=((1, 0.6e-6), (2, 1.0e-6), (4, 1.4e-6), (29, 1.8e-6)),
    timing_published=True,
)

_LOIHI1_TIMING_SOURCES = {
    "t_neuron_access_s": _SANAFE_YAML + ": soma latency_access_neuron 6.0 ns, charged for "
                         "every mapped neuron every step (" + _SANAFE_SRC + ")",
    "t_neuron_update_s": _SANAFE_YAML + ": soma latency_update_neuron 3.7 ns per updated "
                         "neuron",
    "t_spike_s": _SANAFE_YAML + ": soma latency_spike_out 30 ns per spike",
    "t_msg_out_s": _SANAFE_YAML + ": axon_out latency_message_out 5.1 ns per message",
    "t_msg_in_s": _SANAFE_YAML + ": axon_in latency_message_in 16 ns per message",
    "t_syn_event_s": _SANAFE_YAML + ": dense synapse latency_process_spike 3.8 ns per "
                     "synaptic event",
    "t_hop_ew_s": _SANAFE_YAML + ": tile latency_east_hop/latency_west_hop 4.1 ns (Davies "
                  "2018 Table 2 tile hop figures)",
    "t_hop_ns_s": _SANAFE_YAML + ": tile latency_north_hop/latency_south_hop 6.5 ns",
    "barrier_s": _SANAFE_YAML + ": sync_model table, latency_sync {1: 0.6, 2: 1.0, 4: 1.4, "
                 "29: 1.8} µs by tiles in use (largest key <= tiles, SANA-FE utils.hpp "
                 "LookupTable)",
    "timing_published": "Boyle et al. (SANA-FE, TCAD 2025) report Loihi latency within ~25 % "
                        "of silicon with these figures",
}


def _loihi1() -> Dict[str, Any]:
    return dict(
        name="loihi1",
        description="Intel Loihi (1), 14 nm, energies from Davies et al. 2018 Table 2",
        physical=True,
        **_LOIHI1_LIMITS,
        **_LOIHI1_DAVIES_ENERGY,
        **_LOIHI1_TIMING,
        synaptic_charge="delivery",
        active_update="input",
        sources={**_LOIHI1_LIMIT_SOURCES, **_LOIHI1_DAVIES_ENERGY_SOURCES,
                 **_LOIHI1_TIMING_SOURCES,
                 "synaptic_charge": "Davies 2018 Table 2 does not say in which step a "
                                    "synaptic op is spent; neuroemu charges it when the spike "
                                    "is delivered (t + delay <= T), as its counters always did",
                 "active_update": "Davies 2018 Table 2 distinguishes active and inactive "
                                  "updates without defining them; neuroemu counts an update "
                                  "active when synaptic or analog input arrives (Q != 0)"},
    )


def _loihi1_silicon() -> Dict[str, Any]:
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
        **_LOIHI1_TIMING_SOURCES,
        "synaptic_charge": _SANAFE_SRC + ": messages are processed by the receiving core in "
                           "the step they are sent (process_messages after process_neurons), "
                           "so a spike's synaptic energy and time fall in its emission step, "
                           "the last step's spikes included",
        "active_update": _SANAFE_SRC + ": LoihiLifModel::update marks a neuron updated when "
                         "its potential, its input or its bias is non-zero",
    }
    return dict(
        name="loihi1-silicon",
        description="Intel Loihi (1) limits with silicon-calibrated energies (SANA-FE)",
        physical=True,
        **_LOIHI1_LIMITS,
        **energy,
        **_LOIHI1_TIMING,
        synaptic_charge="emission",
        active_update="state",
        sources=sources,
    )


def _loihi2() -> Dict[str, Any]:
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
    t_assumed = ("ASSUMPTION: Loihi 2 per-event times are not published; the Loihi 1 figure "
                 "is used as a placeholder. ")
    for key, text in _LOIHI1_TIMING_SOURCES.items():
        sources[key] = t_assumed + text
    sources["timing_published"] = ("Loihi 2 per-event times are not published; latency "
                                   "reports print 'unpublished'")
    sources["synaptic_charge"] = "ASSUMPTION: neuroemu's delivery convention (as loihi1)"
    sources["active_update"] = "ASSUMPTION: neuroemu's input convention (as loihi1)"
    timing = dict(_LOIHI1_TIMING, timing_published=False)
    return dict(
        name="loihi2",
        description="Intel Loihi 2 (Intel 4); energies UNPUBLISHED (Loihi 1 placeholders)",
        physical=True, **limits, **energy, **timing, synaptic_charge="delivery",
        active_update="input", sources=sources,
    )


def _truenorth() -> Dict[str, Any]:
    all_in = "26 pJ per synaptic event is an all-in figure; this cost is included there (0 J)"
    tick = ("per-event times are not published: the work of a step fits in the fixed 1 ms "
            "tick, which is the step time (0 s here, the tick is the barrier)")
    return dict(
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
            **{k: _TN_MEROLLA + ": " + tick for k in ("t_neuron_access_s", "t_neuron_update_s",
                                                      "t_spike_s", "t_msg_out_s",
                                                      "t_msg_in_s", "t_syn_event_s",
                                                      "t_hop_ew_s", "t_hop_ns_s")},
            "barrier_s": _TN_MEROLLA + ": 1 kHz global tick, every step lasts 1 ms",
            "timing_published": _TN_MEROLLA + ": the 1 ms tick is published; per-event "
                                "times are not",
            "synaptic_charge": "neuroemu's delivery convention (the tick hides it)",
            "active_update": "neuroemu's input convention (energy is all-in per event)",
        },
        barrier_s=((0, 1e-3),),
        timing_published=True,
    )


def _speck() -> Dict[str, Any]:
    unpublished = ("ASSUMPTION: no per-event energy for Speck/DYNAP-CNN is published in a form "
                   "that maps onto these counters; 0 J, only static power is costed")
    t_unpub = ("ASSUMPTION: per-event processing times of Speck/DYNAP-CNN are not published; "
               "0 s, the step is the 1 ms binning window")
    return dict(
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
            **{k: t_unpub for k in ("t_neuron_access_s", "t_neuron_update_s", "t_spike_s",
                                    "t_msg_out_s", "t_msg_in_s", "t_syn_event_s",
                                    "t_hop_ew_s", "t_hop_ns_s")},
            "barrier_s": "ASSUMPTION: the 1 ms event binning window per step "
                         "(time_per_step_s), not a hardware figure",
            "timing_published": t_unpub,
            "synaptic_charge": "neuroemu's delivery convention",
            "active_update": "neuroemu's input convention",
        },
        barrier_s=((0, 1e-3),),
        timing_published=False,
    )


def _ideal() -> Dict[str, Any]:
    return dict(
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
            "barrier_s": "nominal 1 ms step, no per-event times",
        },
        barrier_s=((0, 1e-3),),
    )


#: Canonical name → builder of that profile's constructor keyword arguments (in listing order).
CHIPS: Mapping[str, Callable[[], Dict[str, Any]]] = MappingProxyType({
    "loihi1": _loihi1,
    "loihi1-silicon": _loihi1_silicon,
    "loihi2": _loihi2,
    "truenorth": _truenorth,
    "speck": _speck,
    "ideal": _ideal,
})
