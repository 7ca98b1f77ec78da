"""Scale: peak memory against the number of samples, and throughput on a Dask LocalCluster.

Run ``python benchmarks/scale.py`` (``--quick`` for 1,000 vs 200 images and fewer throughput
samples).  On the shared ``tests_99.20`` MNIST model converted with ECC, 8-bit weights, Loihi 1
(converted once and cached next to this file in ``.scale_cache/``), prints:

* **Memory**: peak RSS (``ru_maxrss`` of a fresh child process) of ``neuroemu run``'s pipeline
  (:func:`neuroemu.pipeline.evaluate` + :func:`save_evaluation`) on 10,000 and on 1,000 MNIST
  test images at T = 128, with the result file's size; the ratio of the two (target: within
  1.2x, both under 1 GB).  For contrast, the same 1,000-image run keeping per-sample detail in
  memory (predictions and spike counts: what every run did before results were reduced chunk
  by chunk).
* **Throughput**: images per second of one process (1 Numba thread, then 2) and of a
  LocalCluster of 2 single-threaded worker processes (:func:`emulator.backends.local_cluster`)
  on the same images (target: >= 1.7x of the 1-thread process when two cores are free), the
  tasks and the bytes moved (network once per worker, inputs and the reduced result per task).
  All three exclude start-up alike: the 1-process figure follows a warm-up run (kernels
  compiled or loaded, network packed), the cluster one follows
  :func:`emulator.backends.warm_up` (the same on every worker); the cluster's start-up is
  printed separately.  CPU time of every process (psutil: the 1-thread process; the worker
  processes; the driver with the scheduler and nannies) shows where overhead goes even when
  the machine is loaded.  The machine is shared: the load average is printed beside every
  figure.

Figures only: nothing here asserts a time or a size.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = Path(__file__).resolve().parent / ".scale_cache"
STEPS = 128  # default run length (--steps)


def _load() -> str:
    return "load %.2f/%.2f/%.2f" % os.getloadavg()


def network_path() -> Path:
    """tests_99.20 converted once (ECC, 8 bit, loihi1, float reference on all 10,000 images)."""
    from neuroemu.datasets import data_path, missing_reason
    reason = missing_reason("models", "tests_99.20.h5")
    if reason:
        raise SystemExit(f"benchmarks/scale.py needs the shared data: {reason}")
    path = CACHE / "tests_99.20_ecc8_loihi1.h5"
    if not path.exists():
        from neuroemu.pipeline import convert_model
        CACHE.mkdir(exist_ok=True)
        net = convert_model(str(data_path("models", "tests_99.20.h5")), "mnist", "ecc", 8,
                            "loihi1", 128, eval_data="mnist", input_scale=1 / 255)
        net.save(path)
    return path


# ---- child processes (a fresh interpreter per figure: ru_maxrss is per process) -------------
def child_rss(n: int, detail: str) -> dict:
    from neuroemu.pipeline import evaluate, load_network, save_evaluation
    net = load_network(network_path())
    t0 = time.perf_counter()
    out = CACHE / f"run_{n}_{detail or 'lean'}.h5"
    det = tuple(d for d in detail.split(",") if d)
    if det:   # the old behaviour: detail kept in memory, then written
        ev = evaluate(net, "mnist", STEPS, samples=n, detail=det)
    else:
        ev = evaluate(net, "mnist", STEPS, samples=n)
    save_evaluation(ev, net, out)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    size = out.stat().st_size
    out.unlink()
    return {"n": n, "detail": detail, "rss": rss, "file": size, "wall": wall,
            "accuracy": ev.final_accuracy, "load": _load()}


def child_speed(n: int, mode: str) -> dict:
    import numpy as np

    import emulator
    from neuroemu.pipeline import load_network, prepare_inputs
    from neuroemu.data import load_data
    net = load_network(network_path())
    ds = load_data("mnist").subset(n)
    x = prepare_inputs(net, ds, STEPS)
    out = {"n": n, "mode": mode}
    if mode.startswith("threads"):
        th = int(mode[7:])
        emulator.run(net, x[:4], STEPS, threads=th, detail=())   # compile / load the cache
        load0 = _load()
        c0 = time.process_time()
        t0 = time.perf_counter()
        r = emulator.run(net, x, STEPS, labels=ds.y, threads=th, detail=())
        out.update(wall=time.perf_counter() - t0, load=load0, cpu=time.process_time() - c0)
    else:
        import psutil
        from distributed import Client

        from emulator.backends import chunk_bounds, local_cluster, network_for_transport, warm_up
        workers = int(mode[7:])
        t0 = time.perf_counter()
        cluster = local_cluster(workers)
        client = Client(cluster)
        try:
            # start-up, excluded from the figure as the 1-process compile is: every worker
            # loads the compiled kernels and packs the network once
            warm_up(client, net, x, STEPS)
            out["startup"] = time.perf_counter() - t0
            me = psutil.Process()
            kids = [p for p in me.children(recursive=True)]
            cpu = (lambda p: sum(p.cpu_times()[:2]))
            k0, d0 = {p.pid: cpu(p) for p in kids}, cpu(me)
            load0 = _load()
            ticks = []
            t0 = time.perf_counter()
            r = emulator.run(net, x, STEPS, labels=ds.y, detail=(), client=client,
                             progress=ticks.append)
            out.update(wall=time.perf_counter() - t0, load=load0)
            out["driver_cpu"] = cpu(me) - d0
            out["worker_cpu"] = sum(cpu(p) - k0[p.pid] for p in kids)
            b = chunk_bounds(n, workers)
            out["chunks"] = len(ticks)
            out["chunk_sizes"] = [hi - lo for lo, hi in b]
            out["net_bytes"] = len(pickle.dumps(network_for_transport(net), protocol=5))
            cs = b[0][1]
            out["in_bytes"] = int(np.asarray(x[:cs]).nbytes)   # sent in its own dtype
            from emulator.engine import simulate_chunks
            from emulator.raw import RawResult
            from emulator.run import _as_engine_input, _check_array_input
            part = RawResult.merge_all(simulate_chunks(net, _as_engine_input(
                _check_array_input(net, x[:cs])), STEPS,
                                                       refs={"labels": ds.y[:cs]}))
            out["result_bytes"] = len(pickle.dumps(part, protocol=5))
            out["result_bytes_int64"] = int(sum(v.nbytes for v in part.counters.values()))
        finally:
            client.close()
            cluster.close()
    out["accuracy"] = float(r.final_accuracy)
    out["hits"] = r.hits["labels"].tolist()
    out["counters"] = r.counters
    return out


def _spawn(*args) -> dict:
    cmd = [sys.executable, __file__, "--steps", str(STEPS), "--child", *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        raise SystemExit(f"child {args} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _mb(b: float) -> str:
    return f"{b / 2**20:,.0f} MB"


def main(argv=None) -> int:
    global STEPS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=STEPS,
                    help="run length T (default 128; memory does not depend on it beyond the "
                         "(T,) vectors, time is proportional to it)")
    ap.add_argument("--memory-samples", default=None, metavar="BIG,SMALL",
                    help="image counts of the memory table (default 10000,1000)")
    ap.add_argument("--speed-samples", type=int)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    STEPS = a.steps
    if a.child:
        kind, n, arg = a.child[0], int(a.child[1]), (a.child[2] if len(a.child) > 2 else "")
        print(json.dumps(child_rss(n, arg) if kind == "rss" else child_speed(n, arg)))
        return 0
    network_path()
    big, small = (1000, 200) if a.quick else (10000, 1000)
    if a.memory_samples:
        big, small = (int(v) for v in a.memory_samples.split(","))
    if not a.skip_memory:
        print(f"## Peak memory, tests_99.20 ECC 8-bit, T = {STEPS} (`{' '.join(sys.argv)}`)\n")
        print("| images | per-sample detail | peak RSS | result file | wall | accuracy | load |")
        print("|---:|---|---:|---:|---:|---:|---|")
        rows = {}
        for n, det in ((small, ""), (big, ""), (small, "predictions,spike_counts")):
            r = _spawn("rss", n, det)
            rows[(n, det)] = r
            print(f"| {n:,} | {det or 'none (reduced)'} | {_mb(r['rss'])} | {_mb(r['file'])} | "
                  f"{r['wall']:.0f} s | {r['accuracy']:.2%} | {r['load']} |", flush=True)
        ratio = rows[(big, "")]["rss"] / rows[(small, "")]["rss"]
        print(f"\nRSS {big:,} / {small:,} images: {ratio:.2f}x (target <= 1.2x, each < 1 GB: "
              f"{'met' if ratio <= 1.2 and rows[(big, '')]['rss'] < 2**30 else 'MISSED'})\n")
    if a.skip_speed:
        return 0
    n = a.speed_samples or (64 if a.quick else 400)
    print(f"## Throughput on {n} images, T = {STEPS}\n")
    print("| backend | wall | images/s | speed-up vs 1 thread | load before |")
    print("|---|---:|---:|---:|---|")
    base = None
    same = None
    identical = True
    for mode in ("threads1", "threads2", "cluster2"):
        r = _spawn("speed", n, mode)
        rate = n / r["wall"]
        base = base or rate
        key = (r["hits"], r["counters"])
        same = key if same is None else same
        label = {"threads1": "1 process, 1 thread", "threads2": "1 process, 2 threads",
                 "cluster2": "LocalCluster, 2 worker processes x 1 thread"}[mode]
        print(f"| {label} | {r['wall']:.1f} s | {rate:.2f} | {rate / base:.2f}x | "
              f"{r['load']} |", flush=True)
        if mode == "threads1":
            base_cpu = r["cpu"]
        if mode == "cluster2":
            sizes = r["chunk_sizes"]
            print(f"\ncluster: {r['chunks']} tasks (guided: {sizes[0]} images first, "
                  f"{sizes[-1]} last); start-up (cluster, kernels loaded, network packed on "
                  f"every worker) {r['startup']:.1f} s, excluded as the 1-process compile is; "
                  f"network sent once per worker: {_mb(r['net_bytes'])}; per task: inputs "
                  f"{r['in_bytes'] / 1024:,.0f} KB, reduced result back "
                  f"{r['result_bytes'] / 1024:,.0f} KB ({r['result_bytes_int64'] / 1024:,.0f} "
                  f"KB as int64)")
            print(f"CPU time: 1 process {base_cpu:.1f} s; cluster worker processes "
                  f"{r['worker_cpu']:.1f} s (+{r['worker_cpu'] / base_cpu - 1:.0%}), driver "
                  f"with scheduler and nannies {r['driver_cpu']:.1f} s; ideal 2-core "
                  f"speed-up from CPU time {2 * base_cpu / (r['worker_cpu'] + r['driver_cpu']):.2f}x")
        if key != same:
            identical = False
            print("!! results differ between backends")
    print(f"\nresults identical across the three backends: {identical}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
