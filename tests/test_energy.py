"""Energy and latency model: the DESIGN formula checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hw_models.energy import COUNTER_NAMES, energy_report, latency_report
from hw_models.errors import DataError
from hw_models.profiles import get_profile

REL = 1e-12  # relative tolerance for float joules (a few roundings of ~1e-12 values)

COUNTERS = {
    "synaptic_events": 1000,
    "neuron_updates_active": 200,
    "neuron_updates_inactive": 800,
    "spikes": 50,
    "messages": 70,
    "hops": 30,
    "saturations": 3,
    "input_macs": 4000,
}


def test_loihi1_by_hand():
    r = energy_report(COUNTERS, "loihi1", steps=10, samples=2, ann_macs=5000)
    # Davies 2018 Table 2: 23.6 pJ, 81/52 pJ, 0 pJ spike, 1.7 pJ message, (3.0+4.0)/2 pJ hop
    assert r.synaptic == pytest.approx(1000 * 23.6e-12, rel=REL)
    assert r.neuron_active == pytest.approx(200 * 81e-12, rel=REL)
    assert r.neuron_inactive == pytest.approx(800 * 52e-12, rel=REL)
    assert r.spikes == 0.0
    assert r.messages == pytest.approx(70 * 1.7e-12, rel=REL)
    assert r.hops == pytest.approx(30 * 3.5e-12, rel=REL)
    assert r.static == 0.0
    expected = (23.6e-9 + 16.2e-9 + 41.6e-9 + 0.119e-9 + 0.105e-9)  # = 81.624 nJ
    assert r.total == pytest.approx(expected, rel=REL)
    assert r.per_sample == pytest.approx(expected / 2, rel=REL)
    assert r.synaptic_ops == 1000 and r.synaptic_ops_per_sample == 500
    assert r.saturations == 3
    assert r.off_chip_input == pytest.approx(4000 * 0.23e-12, rel=REL)
    assert r.total_with_off_chip == pytest.approx(expected + 0.92e-9, rel=REL)
    assert r.ann_energy_fp32 == pytest.approx(5000 * 4.6e-12, rel=REL)
    assert r.ann_energy_int8 == pytest.approx(5000 * 0.23e-12, rel=REL)


def test_static_power_uses_steps_samples_and_step_time():
    p = get_profile("loihi1").replace(static_power_w=0.5, time_per_step_s=1e-3)
    r = energy_report({"synaptic_events": 10}, p, steps=20, samples=3)
    assert r.static == pytest.approx(0.5 * 20 * 3 * 1e-3, rel=REL)  # 30 mJ
    assert r.total == pytest.approx(0.03 + 10 * 23.6e-12, rel=REL)
    assert energy_report({}, p).static == 0.0  # steps not given: no static energy


def test_speck_static_only_and_unpublished():
    r = energy_report(COUNTERS, "speck", steps=100)
    assert r.static == pytest.approx(0.42e-3 * 100 * 1e-3, rel=REL)
    assert r.total == pytest.approx(r.static, rel=REL)
    assert not r.energy_published and "UNPUBLISHED" in str(r)


def test_loihi2_report_says_unpublished():
    r = energy_report(COUNTERS, "loihi2")
    assert not r.energy_published
    assert "UNPUBLISHED" in str(r)
    assert "UNPUBLISHED" not in str(energy_report(COUNTERS, "loihi1"))


def test_every_class_sums_to_total():
    for name in ("loihi1", "loihi1-silicon", "truenorth", "ideal"):
        r = energy_report(COUNTERS, name, steps=5)
        parts = (r.synaptic + r.neuron_active + r.neuron_inactive + r.spikes + r.messages
                 + r.hops + r.static)
        assert r.total == pytest.approx(parts, rel=REL)


def test_truenorth_all_in():
    r = energy_report(COUNTERS, "truenorth", steps=10)
    assert r.total == pytest.approx(1000 * 26e-12, rel=REL)


def test_array_counters_are_summed_and_missing_are_zero():
    r = energy_report({"synaptic_events": np.array([400, 600]), "spikes": [1, 2]}, "loihi1")
    assert r.synaptic_ops == 1000
    assert r.synaptic == pytest.approx(1000 * 23.6e-12, rel=REL)
    assert r.hops == 0.0 and r.ann_macs is None and r.ann_energy_fp32 is None


@pytest.mark.parametrize("counters", [
    {"synaptic_event": 1},                 # typo
    {"spikes": -1},
    {"spikes": float("nan")},
    {"spikes": "many"},
    [("spikes", 1)],
])
def test_bad_counters(counters):
    with pytest.raises(DataError):
        energy_report(counters, "loihi1")


def test_non_strict_ignores_extra_counters():
    r = energy_report({"spikes": 1, "debug_counter": 5}, "loihi1", strict=False)
    assert r.spikes == 0.0


@pytest.mark.parametrize("kwargs", [{"samples": 0}, {"samples": 1.5}, {"steps": -1},
                                    {"steps": 2.5}])
def test_bad_steps_samples(kwargs):
    with pytest.raises(DataError):
        energy_report(COUNTERS, "loihi1", **kwargs)


def test_to_dict_and_str():
    r = energy_report(COUNTERS, "loihi1-silicon", steps=10, ann_macs=10)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["total"] == r.total and d["profile"] == "loihi1-silicon"
    text = str(r)
    for word in ("synaptic events", "total", "per sample", "SynOps", "off-chip", "ANN"):
        assert word in text


def test_counter_names_are_the_engine_contract():
    assert set(COUNTER_NAMES) == {"synaptic_events", "spikes", "messages", "hops",
                                  "neuron_updates_active", "neuron_updates_inactive",
                                  "saturations", "input_macs"}


def test_latency():
    lat = latency_report(25, "truenorth")
    assert lat.seconds == pytest.approx(25e-3, rel=REL) and float(lat) == lat.seconds
    assert "1 ms" in lat.note
    lat1 = latency_report(12.5, "loihi1")
    assert lat1.seconds == pytest.approx(12.5 * get_profile("loihi1").time_per_step_s, rel=REL)
    assert "lower bound" in lat1.note and "Latency on loihi1" in str(lat1)
    json.dumps(lat1.to_dict())
    for bad in (-1, float("nan"), "3", True):
        with pytest.raises(DataError):
            latency_report(bad, "loihi1")


def test_result_counters_with_derived_total_are_accepted_and_checked():
    """emulator.Result.counters carries neuron_updates = active + inactive; the energy model must
    take a Result's counters as they are, cost updates once, and refuse an inconsistent total."""
    from hw_models.energy import energy_report
    from hw_models.errors import DataError
    base = {"synaptic_events": 10, "neuron_updates_active": 3, "neuron_updates_inactive": 4}
    plain = energy_report(base, "loihi1")
    with_total = energy_report({**base, "neuron_updates": 7}, "loihi1")
    assert with_total.total == plain.total
    with pytest.raises(DataError, match="not the sum"):
        energy_report({**base, "neuron_updates": 8}, "loihi1")
