"""Sweep scaling: the ``demo`` preset with 1 and 2 local workers and on a Dask LocalCluster.

Each configuration runs the whole preset (``spinicl sweep --preset demo``: D = 10, 16
grid points, MALA with an 8-rung ladder) into a fresh file in a temporary folder through
:func:`spinicl.sweep.run_sweep`; the wall time includes starting the worker processes
(and the Dask cluster). With one local worker the points run in the coordinator itself
(no worker process). Also stored: the summed per-point seconds (from the sweep file's
grid table; that sum over wall time × workers is the parallel efficiency), the CPU time
of the sweep, ``worker_cpu_s`` = the worker processes' (``getrusage(RUSAGE_CHILDREN)``)
plus the coordinator's own (``RUSAGE_SELF``: the points themselves with one local worker;
the writer and polling otherwise), both also stored apart; CPU over wall time is the
number of cores the sweep actually got; and the load average around each run: other
work on the machine takes cores from the 2-worker runs first.

The Dask LocalCluster's workers run without the nanny's ``MALLOC_TRIM_THRESHOLD_``
(``spinicl.sweep.LOCAL_CLUSTER_CONFIG``); ``--dask-trim`` restores Dask's default (65536)
for the dask-local run, to measure what it costs.

``--reduced`` runs a smaller grid (the first half of the points' α values, fewer steps)
if the full demo takes too long.

Run: ``python bench/bench_sweep.py`` (about 1.5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import multiprocessing
import os
import resource
import tempfile
import time

import numpy as np
from _common import load_average, say, write_json

from spinicl.io.sweep_file import read_grid
from spinicl.sweep import load_sweep, run_sweep

CONFIGS = (("local", 1), ("local", 2), ("dask-local", 2))


def reduced(cfg):
    """Half the grid points and half the steps of the demo (same structure)."""
    pts = cfg.points[: max(2, len(cfg.points) // 2)]
    pts = [dataclasses.replace(p, sample=p.sample.replace(
        steps=p.sample.steps // 2, burn_in=p.sample.burn_in // 2)) for p in pts]
    return dataclasses.replace(cfg, points=pts)


def _cpu(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def run_one(cfg, executor: str, workers: int, folder: str, dask_trim: bool = False) -> dict:
    out = os.path.join(folder, f"sweep-{executor}-{workers}.h5")
    load0 = load_average()
    children0, self0 = _cpu(resource.RUSAGE_CHILDREN), _cpu(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    trim = contextlib.nullcontext()
    if dask_trim and executor == "dask-local":
        import spinicl.sweep

        trim = _patched(spinicl.sweep, "LOCAL_CLUSTER_CONFIG", {})
    with trim:
        res = run_sweep(cfg, out, executor=executor, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    for _ in range(50):  # reap the finished worker processes so their CPU time counts
        if not multiprocessing.active_children():
            break
        time.sleep(0.1)
    children = _cpu(resource.RUSAGE_CHILDREN) - children0
    own = _cpu(resource.RUSAGE_SELF) - self0
    cpu = children + own
    grid = read_grid(out)
    secs = np.asarray(grid["seconds"], dtype=float)
    r = {"executor": executor, "workers": workers, "wall_s": wall, "done": res.done,
         "failed": res.failed, "total": res.total,
         "sum_point_s": float(np.nansum(secs)), "worker_cpu_s": cpu,
         "children_cpu_s": children, "coordinator_cpu_s": own,
         "in_process": executor == "local" and workers == 1,
         "dask_malloc_trim": bool(dask_trim) if executor == "dask-local" else None,
         "load_before": load0, "load_after": load_average()}
    r["efficiency"] = r["sum_point_s"] / (wall * workers)
    r["cpu_per_wall"] = cpu / wall
    say(f"{executor:10s} workers={workers}: {wall:6.1f} s for {res.done}/{res.total} points "
        f"(sum of point times {r['sum_point_s']:.1f} s, CPU {cpu:.1f} s (workers "
        f"{children:.1f} s, coordinator {own:.1f} s) = "
        f"{r['cpu_per_wall']:.2f} cores busy on average; load {load0[0]:.1f} -> "
        f"{r['load_after'][0]:.1f})")
    return r


@contextlib.contextmanager
def _patched(module, name: str, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true")
    ap.add_argument("--dask-trim", action="store_true",
                    help="dask-local with Dask's default MALLOC_TRIM_THRESHOLD_=65536")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = load_sweep(preset="demo")
    if args.reduced:
        cfg = reduced(cfg)
    say(f"demo preset{' (reduced)' if args.reduced else ''}: {len(cfg.points)} points")
    results = []
    with tempfile.TemporaryDirectory(prefix="spinicl-bench-sweep-") as folder:
        for executor, workers in CONFIGS:
            try:
                results.append(run_one(cfg, executor, workers, folder, args.dask_trim))
            except Exception as exc:  # noqa: BLE001 - report, continue with the others
                results.append({"executor": executor, "workers": workers,
                                "error": f"{type(exc).__name__}: {exc}"})
                say(f"{executor} workers={workers}: FAILED ({exc})")
    by = {(r["executor"], r["workers"]): r for r in results if "error" not in r}
    targets = []
    one = by.get(("local", 1))
    for key in (("local", 2), ("dask-local", 2)):
        if one and key in by:
            sp = one["wall_s"] / by[key]["wall_s"]
            by[key]["speedup_vs_1"] = sp
            say(f"speed-up {key[0]} x{key[1]} over 1 local worker: {sp:.2f}")
            # what two *free* cores would give: the same work at the CPU cost per point
            # measured in this run (an estimate, not a measurement)
            proj = key[1] * one["worker_cpu_s"] / by[key]["worker_cpu_s"]
            by[key]["projected_speedup_free_cores"] = proj
            say(f"  projected with {key[1]} free cores (CPU time of 1 worker / CPU time of "
                f"{key[1]} workers x {key[1]}): {proj:.2f}")
            if key == ("local", 2):
                targets.append({"name": "sweeps: 2 local workers >= 1.7 x one worker",
                                "value": sp, "goal": 1.7, "met": bool(sp >= 1.7),
                                "projected_free_cores": proj})
    for t in targets:
        say(f"target: {t['name']}: {t['value']:.2f}: {'met' if t['met'] else 'MISSED'}")
    path = write_json("sweep", {"settings": {"preset": "demo", "reduced": args.reduced,
                                             "points": len(cfg.points),
                                             "dask_malloc_trim": args.dask_trim},
                                "results": results, "targets": targets,
                                "seconds": time.perf_counter() - t0})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
