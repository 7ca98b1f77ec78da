"""Spike raster and per-layer firing rates of the converted digits CNN for one test digit.

What it shows: how activity flows through the layers of a rate-coded converted network on
Loihi 1 (layers stacked, one colour each, time step on x), how quickly each layer starts
firing (one step per layer with ``--timing hardware``, at once with the synchronous default),
and the mean firing rate of each layer over the test set.

    python examples/raster.py                     # 64 steps, 200 test digits
    python examples/raster.py --quick -o /tmp/r   # small, for the tests
    python examples/raster.py --timing hardware   # delay-1 projections, as on the chip
"""

from __future__ import annotations

import argparse
from pathlib import Path

from emulator import plots
from neuroemu.pipeline import convert_model, evaluate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("raster_out"))
    ap.add_argument("--quick", action="store_true", help="24 steps, 40 samples")
    ap.add_argument("--timing", choices=("sync", "hardware"), default="sync")
    ap.add_argument("--sample", type=int, default=0)
    args = ap.parse_args(argv)
    steps, samples = (24, 40) if args.quick else (64, 200)
    net = convert_model("digits", "digits-train", "ecc", 8, "loihi1", steps, calib_samples=300,
                        timing=args.timing)
    pops = [p.name for p in net.populations if not p.is_input and p.spiking]
    ev = evaluate(net, "digits", steps, samples=samples, record=pops)
    print(ev)
    args.output.mkdir(parents=True, exist_ok=True)
    plots.spike_raster(ev.result, sample=args.sample, populations=pops,
                       title=f"digits CNN on loihi1 ({args.timing} timing), test digit "
                             f"{args.sample}", path=args.output / "raster.png")
    plots.result_firing_rates(ev.result, populations=pops, path=args.output / "rates.png")
    print(f"wrote {args.output / 'raster.png'} and {args.output / 'rates.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
