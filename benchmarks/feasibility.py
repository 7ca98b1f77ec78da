"""How long a complete feasibility report takes for ImageNet-size networks.

The issue asks for a complete Loihi 1 report of a VGG-16 and a ResNet-18 at 224 × 224 in under a
minute, synapses and axons counted analytically (a VGG-16 has about 15 billion explicit
synapses).  This script times, per model and chip: building the random-weight graph (not part
of the report), the weights-only conversion, and the mapping + resource check, and prints the
verdict beside each time.  Speed is printed here, not asserted in tests: the machines are shared.

    python benchmarks/feasibility.py                       # 224 × 224, Loihi 1, Loihi 2, TrueNorth
    python benchmarks/feasibility.py --size 64 --profiles loihi1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from feasibility_study import MODELS, PROFILES  # noqa: E402

from converter.feasibility import feasibility  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--profiles", nargs="+", default=list(PROFILES))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    a = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"feasibility report times at {a.size}x{a.size} (load average {load:.2f})")
    print(f"{'model':<10} {'chip':<10} {'graph s':>8} {'report s':>9} {'cores':>11} "
          f"{'chips':>7}  verdict")
    for m in a.models:
        t0 = time.perf_counter()
        g = MODELS[m](a.size)
        t_graph = time.perf_counter() - t0
        for p in a.profiles:
            t1 = time.perf_counter()
            rep = feasibility(g, p)
            t_rep = time.perf_counter() - t1
            verdict = ("fits natively" if rep.ok else "fits, lacks features" if rep.fits
                       else f"does not fit ({len(rep.violations)} violations)")
            print(f"{m:<10} {p:<10} {t_graph:>8.1f} {t_rep:>9.1f} {rep.cores:>11,} "
                  f"{rep.chips:>7,}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
