"""The feasibility verdict (chips first, never misread as one chip), the chip budget
(``max_chips`` / ``fit --max-chips``, exit 3), the convert-time warning and ``--strict``, and
the reason in a sweep's fits column."""

from __future__ import annotations

import json

import numpy as np
import pytest

import converter
from converter.feasibility import chip_label, fit_reason
from hw_models.errors import ConversionError
from hw_models.network import CoreNetwork, Population, Projection
from neuroemu.cli import EXIT_LIMITS, main


def wide_net(n_out=130 * 1024):
    """input (4,) analog -> one dense population of 130 Loihi 1 cores' worth of neurons."""
    rng = np.random.default_rng(0)
    pops = [Population("input", (4,), kind="input", input_max=15),
            Population("wide", (n_out,), threshold=50, spiking=False, reset="zero",
                       spike_rule=">", v_min=-2**17, v_max=2**17 - 1)]   # Loihi 1 native
    w = rng.integers(1, 8, size=(4, n_out)).astype(np.int8)
    return CoreNetwork(pops, [Projection("p", "input", "wide", "dense", w, delay=0)],
                       output="wide", readout="v").validate()


@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("verdict") / "wide.h5"
    wide_net().save(path)
    return path


def test_chips_come_first_and_are_plural():
    rep = converter.feasibility(wide_net(), "loihi1")
    lines = str(rep).splitlines()
    assert lines[0] == "Feasibility on loihi1: needs 2 Loihi 1 chips (130 cores, 128 per chip)"
    assert lines[1] == "  verdict: fits on 2 chips and runs natively"
    assert rep.fits and rep.chips == 2 and rep.to_dict()["summary"].startswith("needs 2 Loihi 1")
    assert chip_label("truenorth") == "TrueNorth"


def test_max_chips_budget_in_the_api():
    net = wide_net()
    over = converter.feasibility(net, "loihi1", max_chips=1)
    assert not over.fits and not over.ok
    v = over.violations[-1]
    assert v["limit"] == "chips" and v["used"] == 2 and v["max"] == 1
    assert "OVER the budget of 1 chip" in str(over).splitlines()[0]
    assert str(over).splitlines()[1].startswith("  verdict: DOES NOT FIT")
    assert fit_reason(over) == "no: chips 2/1"
    ok = converter.feasibility(net, "loihi1", max_chips=2)
    assert ok.fits and "within the budget of 2 chips" in str(ok)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConversionError):
            converter.feasibility(net, "loihi1", max_chips=bad)


def test_fit_max_chips_exit_codes(wide_file, capsys):
    assert main(["fit", str(wide_file), "--profile", "loihi1", "--max-chips", "1"]) == EXIT_LIMITS
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("Feasibility on loihi1: needs 2 Loihi 1 chips")
    assert main(["fit", str(wide_file), "--profile", "loihi1", "--max-chips", "2"]) == 0
    capsys.readouterr()
    assert main(["fit", str(wide_file), "--profile", "loihi1", "--max-chips", "1",
                 "--json"]) == EXIT_LIMITS
    d = json.loads(capsys.readouterr().out)
    assert d["max_chips"] == 1 and not d["fits"] and d["chips"] == 2
    with pytest.raises(SystemExit) as e:
        main(["fit", str(wide_file), "--max-chips", "0"])
    assert e.value.code == 2


def test_features_lacking_named_after_the_chips():
    pytest.importorskip("sklearn")
    from neuroemu.pipeline import load_graph
    rep = converter.feasibility(load_graph("digits"), "loihi1")
    first, verdict = str(rep).splitlines()[:2]
    assert first.startswith("Feasibility on loihi1: needs 1 Loihi 1 chip (")
    assert verdict == ("  verdict: fits on 1 chip, but needs 1 feature Loihi 1 lacks (reset by "
                       "subtraction); see Missing features below")
    assert rep.verdict == "fits on 1 chip, but needs 1 feature Loihi 1 lacks (reset by subtraction)"
    assert fit_reason(rep, 0.42).endswith("42% of weights zero (pruned: fewer synapses, fan-in)")


def test_convert_warns_in_one_line_and_strict_refuses(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "speck.h5"
    args = ["convert", "digits", "--calibration", "digits-train", "--calib-samples", "50",
            "--profile", "speck", "-q", "-o"]
    assert main(args + [str(out)]) == 0
    err = capsys.readouterr().err
    warn = [l for l in err.splitlines() if l.startswith("neuroemu: warning:")]
    assert len(warn) == 1 and "violates speck" in warn[0] and "out-axons" in warn[0]
    assert out.exists()
    assert main(["fit", str(out)]) == EXIT_LIMITS      # what the warning announced
    capsys.readouterr()
    strict = tmp_path / "strict.h5"
    assert main(args + [str(strict), "--strict"]) == EXIT_LIMITS
    err = capsys.readouterr().err
    assert "neuroemu: error:" in err and "not written (--strict)" in err
    assert not strict.exists()
    ok = tmp_path / "loihi.h5"
    assert main(args[:-4] + ["--profile", "loihi1", "--strict", "-q", "-o", str(ok)]) == 0
    assert "warning" not in capsys.readouterr().err and ok.exists()


def test_fit_reports_static_neurobench_metrics(wide_file, capsys):
    rep = converter.feasibility(wide_net(), "loihi1")
    n = 130 * 1024
    assert rep.neurobench["ParameterCount"] == 4 * n          # weights 1..7, no biases
    assert rep.neurobench["ConnectionSparsity"] == 0.0
    assert rep.neurobench["Footprint"] == 2 * n + 1   # 4n weights x 4 bits + θ 50 in 7 bits
    assert main(["fit", str(wide_file), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["neurobench"]["ParameterCount"] == 4 * n
