"""Chip profiles: validation, look-up, copies, storage and citations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hw_models.errors import ProfileError
from hw_models.profiles import (ChipProfile, E_MAC_FP32, E_MAC_INT8, REFERENCE_SOURCES,
                                get_profile, list_profiles)

SHIPPED = ("loihi1", "loihi1-silicon", "loihi2", "truenorth", "speck", "ideal")


def test_shipped_profiles_present_and_valid():
    assert set(SHIPPED) <= set(list_profiles())
    for name in list_profiles():
        p = get_profile(name)
        assert p.name == name
        assert p.validate() is p


@pytest.mark.parametrize("alias, name", [
    ("loihi", "loihi1"), ("LOIHI1", "loihi1"), ("Loihi_1", "loihi1"), (" loihi-1 ", "loihi1"),
    ("loihi1_silicon", "loihi1-silicon"), ("Loihi-2", "loihi2"), ("TrueNorth", "truenorth"),
    ("tn", "truenorth"), ("DYNAP-CNN", "speck"), ("ideal", "ideal"), ("float", "ideal"),
])
def test_get_profile_aliases(alias, name):
    assert get_profile(alias).name == name


def test_get_profile_passes_profiles_through():
    p = get_profile("loihi1")
    assert get_profile(p) is p


def test_get_profile_unknown_lists_known_names():
    with pytest.raises(ProfileError) as err:
        get_profile("spinnaker9")
    msg = str(err.value)
    assert "spinnaker9" in msg
    for name in SHIPPED:
        assert name in msg
    with pytest.raises(ValueError):  # the error family also carries the builtin meaning
        get_profile("nope")
    with pytest.raises(ProfileError):
        get_profile(42)


def test_loihi1_numbers():
    p = get_profile("loihi1")
    assert (p.cores_per_chip, p.neurons_per_core) == (128, 1024)
    assert (p.input_axons_per_core, p.output_axons_per_core) == (4096, 4096)
    assert p.synaptic_memory_bits_per_core == 128 * 1024 * 8
    assert (p.v_min, p.v_max) == (-2**23, 2**23 - 1)
    assert (p.v_overflow, p.u_overflow) == ("saturate", "wrap")
    assert p.decay_resolution == 4096
    assert p.spike_rule == ">" and p.native_resets == ("zero",)
    assert not p.supports_reset("subtract") and not p.native_maxpool_gate
    assert (p.weight_min, p.weight_max) == (-128, 127)
    assert p.threshold_max == 2**17 - 1 and p.threshold_scale_exp == 6
    assert (p.v_min_unscaled, p.v_max_unscaled) == (-2**17, 2**17 - 1)
    assert p.e_syn_event == pytest.approx(23.6e-12, rel=1e-12)
    assert p.e_neuron_update_active == pytest.approx(81e-12, rel=1e-12)
    assert p.e_neuron_update_inactive == pytest.approx(52e-12, rel=1e-12)
    assert p.e_hop == pytest.approx(3.5e-12, rel=1e-12)
    assert p.energy_published


def test_loihi1_silicon_shares_limits_not_energy():
    a, b = get_profile("loihi1"), get_profile("loihi1-silicon")
    energy = {"e_syn_event", "e_neuron_update_active", "e_neuron_update_inactive", "e_spike",
              "e_msg", "e_hop_ew", "e_hop_ns", "static_power_w", "time_per_step_s",
              "energy_published", "synaptic_charge", "active_update"}  # counting conventions
    for f in ChipProfile.hardware_fields():
        if f not in energy:
            assert getattr(a, f) == getattr(b, f), f
    assert b.e_syn_event == pytest.approx(35.5e-12, rel=1e-12)


def test_loihi2_energy_flagged_unpublished():
    p = get_profile("loihi2")
    assert p.neurons_per_core == 8192 and p.cores_per_chip == 128
    assert not p.energy_published
    for f in ("e_syn_event", "e_neuron_update_active", "e_msg"):
        assert "ASSUMPTION" in p.sources[f]


def test_truenorth_and_speck_and_ideal():
    tn = get_profile("truenorth")
    assert tn.spike_rule == ">=" and tn.state_bits == 20 and tn.weight_bits == 9
    assert tn.weights_per_neuron_max_distinct == 4 and tn.bits_per_synapse == 1
    assert tn.e_syn_event == pytest.approx(26e-12, rel=1e-12) and tn.time_per_step_s == 1e-3
    sp = get_profile("speck")
    assert sp.cores_per_chip == 9 and sp.weight_sharing and sp.state_bits == 16
    ideal = get_profile("ideal")
    assert ideal.weight_bits is None and ideal.state_bits == 64 and ideal.native_maxpool_gate
    assert set(ideal.native_resets) == {"subtract", "zero"} and not ideal.physical


@pytest.mark.parametrize("field, value", [
    ("cores_per_chip", 0), ("neurons_per_core", -1), ("neurons_per_core", 2.5),
    ("weight_bits", 0), ("state_bits", 1), ("spike_rule", "<"), ("v_overflow", "clip"),
    ("native_resets", ()), ("native_resets", ("zero", "zero")), ("native_resets", ("soft",)),
    ("e_syn_event", -1e-12), ("e_msg", float("nan")), ("static_power_w", float("inf")),
    ("time_per_step_s", 0.0), ("weight_exponent_range", (3, -3)), ("mesh", (0, 4)),
    ("mesh", (4, 4)), ("threshold_bits", 30), ("decay_bits", 0), ("max_delay", -1),
    ("weight_sharing", 1), ("synapse_overhead_bits", -2),
])
def test_replace_bad_value_names_field(field, value):
    with pytest.raises(ProfileError) as err:
        get_profile("loihi1").replace(**{field: value})
    assert field in str(err.value)


def test_replace_unknown_field():
    with pytest.raises(ProfileError, match="weight_bitz"):
        get_profile("loihi1").replace(weight_bitz=4)


def test_replace_is_validated_copy_and_marks_what_if():
    base = get_profile("loihi1")
    p = base.replace(weight_bits=4, state_bits=16, threshold_bits=9)
    assert p.weight_bits == 4 and p.state_bits == 16 and base.weight_bits == 8
    with pytest.raises(ProfileError, match="state_bits"):  # θ max would exceed v_max
        base.replace(state_bits=16)
    assert p.sources["weight_bits"].startswith("what-if override of 8")
    assert p.sources["cores_per_chip"] == base.sources["cores_per_chip"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.weight_bits = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.sources["weight_bits"] = "x"  # type: ignore[index]


def test_physical_profile_must_cite_every_field():
    p = get_profile("loihi1")
    sources = dict(p.sources)
    del sources["weight_bits"]
    with pytest.raises(ProfileError, match="weight_bits"):
        p.replace(sources=sources)
    with pytest.raises(ProfileError, match="no_such_field"):
        p.replace(sources={**p.sources, "no_such_field": "x"})


@pytest.mark.parametrize("name", SHIPPED)
def test_to_dict_from_dict_round_trip(name):
    p = get_profile(name)
    d = p.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON, as stored in HDF5 attributes
    q = ChipProfile.from_dict(json.loads(text))
    assert q == p
    assert hash(q) == hash(p)
    assert q.to_dict() == d


def test_from_dict_rejects_bad_input():
    d = get_profile("loihi1").to_dict()
    with pytest.raises(ProfileError, match="format_version"):
        ChipProfile.from_dict({**d, "format_version": 99})
    with pytest.raises(ProfileError, match="extra"):
        ChipProfile.from_dict({**d, "extra": 1})
    bad = dict(d)
    del bad["weight_bits"]
    with pytest.raises(ProfileError, match="weight_bits"):
        ChipProfile.from_dict(bad)
    with pytest.raises(ProfileError, match="state_bits"):
        ChipProfile.from_dict({**d, "state_bits": 0})
    with pytest.raises(ProfileError):
        ChipProfile.from_dict([1, 2])


@pytest.mark.parametrize("name", [n for n in SHIPPED if get_profile(n).physical])
def test_every_number_of_a_real_chip_is_cited(name):
    """Fails when someone adds a hardware field or number without a citation."""
    p = get_profile(name)
    assert p.physical
    uncited = [f for f in ChipProfile.hardware_fields() if not p.sources.get(f, "").strip()]
    assert uncited == []
    # and every field that holds a number is part of hardware_fields (nothing slips past)
    for f in dataclasses.fields(ChipProfile):
        value = getattr(p, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert f.name in ChipProfile.hardware_fields()


def test_reference_mac_energies_cited():
    assert E_MAC_FP32 == pytest.approx(4.6e-12, rel=1e-12)
    assert E_MAC_INT8 == pytest.approx(0.23e-12, rel=1e-12)
    assert all("Horowitz" in text for text in REFERENCE_SOURCES.values())
