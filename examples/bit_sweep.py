"""Accuracy and energy against weight precision: a (method × weight bits) sweep of the bundled
digits CNN on Loihi 1, written to a resumable sweep file, with the accuracy-vs-bits,
accuracy-vs-time and energy-vs-accuracy figures.

What it shows: how few signed weight bits the ECC and robust (99.9th-percentile) conversions
need before accuracy collapses, what each point costs in synaptic operations and energy, and
that a stopped sweep resumes where it stopped (rerun the same command).

    python examples/bit_sweep.py                  # bits 3..8, 497 test digits, T = 64
    python examples/bit_sweep.py --quick -o /tmp/bits   # small, for the tests
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator import plots
from neuroemu.pipeline import format_joules, format_percent, sweep
from neuroemu.sweep import read_sweep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("bit_sweep_out"))
    ap.add_argument("--quick", action="store_true", help="3 widths, 80 samples, T = 24")
    ap.add_argument("--profile", default="loihi1")
    args = ap.parse_args(argv)
    bits = (3, 5, 8) if args.quick else (3, 4, 5, 6, 7, 8)
    samples, steps = (80, 24) if args.quick else (None, 64)
    args.output.mkdir(parents=True, exist_ok=True)
    path = sweep("digits", "digits-train", "digits", args.output / "sweep.h5", bits=bits,
                 methods=("ecc", "robust"), steps=steps, samples=samples, calib_samples=300,
                 profile=args.profile, progress=not args.quick, log=print)
    sw = read_sweep(path)
    print(f"{'point':<12}{'accuracy':>10}{'synops/sample':>16}{'energy/sample':>15}")
    for k, p in sw["points"].items():
        print(f"{k:<12}{format_percent(float(p['accuracy'][-1])):>10}"
              f"{p['synops_per_sample']:>16,.0f}"
              f"{format_joules(p['energy_per_sample']):>15}")
    plots.sweep_accuracy_vs_bits(sw, path=args.output / "bits.png")
    plots.sweep_accuracy_vs_steps(sw, path=args.output / "accuracy.png")
    plots.sweep_energy_vs_accuracy(sw, path=args.output / "energy.png")
    print(f"wrote {path} and bits.png, accuracy.png, energy.png in {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
