"""Sweep scaling: the ``demo`` preset with 1 and 2 local workers and on a Dask LocalCluster.

Each configuration runs the whole preset (``spinicl sweep --preset demo``: D = 10, 16
grid points, MALA with an 8-rung ladder) into a fresh file in a temporary folder through
:func:`spinicl.sweep.run_sweep`; the wall time includes starting the worker processes
(and the Dask cluster). Also stored: the summed per-point seconds (from the sweep file's
grid table; that sum over wall time × workers is the parallel efficiency), the CPU time
of the worker processes (``getrusage(RUSAGE_CHILDREN)``; CPU over wall time is the
number of cores the sweep actually got) and the load average around each run: other work
on the machine takes cores from the 2-worker runs first.

``--reduced`` runs a smaller grid (the first half of the points' α values, fewer steps)
if the full demo takes too long.

Run: ``python bench/bench_sweep.py`` (about 1.5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import resource
import tempfile
import time

import numpy as np
from _common import load_average, say, write_json

from spinicl.sweep import load_sweep, read_grid, run_sweep

CONFIGS = (("local", 1), ("local", 2), ("dask-local", 2))


def reduced(cfg):
    """Half the grid points and half the steps of the demo (same structure)."""
    pts = cfg.points[: max(2, len(cfg.points) // 2)]
    pts = [dataclasses.replace(p, sample=p.sample.replace(
        steps=p.sample.steps // 2, burn_in=p.sample.burn_in // 2)) for p in pts]
    return dataclasses.replace(cfg, points=pts)


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_one(cfg, executor: str, workers: int, folder: str) -> dict:
    out = os.path.join(folder, f"sweep-{executor}-{workers}.h5")
    load0 = load_average()
    cpu0 = _cpu_children()
    t0 = time.perf_counter()
    res = run_sweep(cfg, out, executor=executor, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    for _ in range(50):  # reap the finished worker processes so their CPU time counts
        if not multiprocessing.active_children():
            break
        time.sleep(0.1)
    cpu = _cpu_children() - cpu0
    grid = read_grid(out)
    secs = np.asarray(grid["seconds"], dtype=float)
    r = {"executor": executor, "workers": workers, "wall_s": wall, "done": res.done,
         "failed": res.failed, "total": res.total,
         "sum_point_s": float(np.nansum(secs)), "worker_cpu_s": cpu,
         "load_before": load0, "load_after": load_average()}
    r["efficiency"] = r["sum_point_s"] / (wall * workers)
    r["cpu_per_wall"] = cpu / wall
    say(f"{executor:10s} workers={workers}: {wall:6.1f} s for {res.done}/{res.total} points "
        f"(sum of point times {r['sum_point_s']:.1f} s, worker CPU {cpu:.1f} s = "
        f"{r['cpu_per_wall']:.2f} cores busy on average; load {load0[0]:.1f} -> "
        f"{r['load_after'][0]:.1f})")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reduced", action="store_true")
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
                results.append(run_one(cfg, executor, workers, folder))
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
                                             "points": len(cfg.points)},
                                "results": results, "targets": targets,
                                "seconds": time.perf_counter() - t0})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
