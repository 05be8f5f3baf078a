"""Old driver against new, in one run: ``Sampler.run``'s fixed cost per call.

The driver change that passes the step and energy to the compiled block as addresses
looked up once per Sampler (instead of Numba converting two function arguments on every
call) and sets BLAS/OpenMP limits only where they differ must leave every trajectory
bit-identical and make short ``run`` calls cheaper. This script checks both, loading the
old ``spinicl/samplers/driver.py`` (from a git commit) beside the installed one, on the
factored model (gibbs and MALA, D = 8 and 20, d_k = 2 and D+1; 8 rungs, 2 copies, BLAS
pinned to one thread as in the runner), with old/new rounds interleaved:

* bit identity: full state and StepInfo after an adaptive burn-in (ladder adaptation)
  and runs of 1, 25, 34 and 200 steps;
* per round and case: the cost per step of one uninterrupted ``run(n)``, the cost of
  ``run(1)`` calls, and a runner-like loop of ``run(25)`` calls; the fixed cost per call
  is run(1) minus the cost per step.

Usage::

    git show 52f6fee:spinicl/samplers/driver.py > /tmp/driver_old.py
    python bench/driver_overhead_old_vs_new.py --old-driver /tmp/driver_old.py [--rounds 4]

Writes ``bench/results/driver_overhead.json`` (measured: fixed cost 0.33–0.83 → 0.09–0.31
ms per call, 2.6–4.8×; run(25) loop 1.03–1.56× faster per step; bit-identical).
"""
import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from spinicl import make_task, registry
from spinicl.models import build_model
from spinicl.samplers import Ladder
from spinicl.samplers import driver as driver_new

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--old-driver", required=True, help="a copy of the old driver.py")
ap.add_argument("--rounds", type=int, default=4)
args = ap.parse_args()
spec = importlib.util.spec_from_file_location("driver_old", args.old_driver)
driver_old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(driver_old)
OUT = Path(__file__).resolve().parent / "results" / "driver_overhead.json"
ladder = Ladder.geometric(1e-4, 1e-3, 8)
CASES = [("gibbs", 8, 2), ("mala", 8, 2), ("gibbs", 8, 9), ("mala", 8, 9), ("gibbs", 20, 2), ("mala", 20, 2), ("mala", 20, 21)]
ROUNDS = args.rounds

def build(mod, name, model, **kw):
    return mod.Sampler(model, registry.kernel(name), ladder=ladder, copies=2, swap_every=2, seed=1,
                       threads=1, blas_threads=1, **kw)

def _eq(x, y):
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    return bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))

def same(a, b):
    return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b))

out = {}
with threadpool_limits(limits=1, user_api="blas"):
    models = {}
    for name, D, dk in CASES:
        if (D, dk) not in models:
            task = make_task(D=D, N=2 * D, P=4 * (D + 1) ** 2, lam=0.05, test_prompts=50, seed=D)
            models[(D, dk)] = build_model(task, "factored", representation="dense", dk=dk)
    # bit identity: burn-in with ladder adaptation, then chunks 1, 25, 34 and a long block
    ident = {}
    for name, D, dk in CASES[:2] + CASES[4:6]:
        m = models[(D, dk)]
        res = []
        for mod in (driver_old, driver_new):
            s = build(mod, name, m, adapt_ladder=True)
            st = s.init()
            st, _ = s.run(st, 130, burn_in=True)
            infos = []
            for n in (1, 25, 34, 200):
                st, info = s.run(st, n)
                infos.append(info)
            res.append((st, infos))
        (a, ia), (b, ib) = res
        print([f for f, x, y in zip(a._fields, a, b) if not _eq(x, y)], [[f for f, x, y in zip(i._fields, i, j) if not _eq(x, y)] for i, j in zip(ia, ib)]); ident[f"{name} D={D} dk={dk}"] = bool(same(a, b) and all(same(x, y) for x, y in zip(ia, ib)))
    print("bit-identical:", ident, flush=True)
    out["bit_identical"] = ident
    if ROUNDS == 0:
        sys.exit()

    S = {}
    for name, D, dk in CASES:
        for tag, mod in (("old", driver_old), ("new", driver_new)):
            s = build(mod, name, models[(D, dk)])
            st = s.init(); st, _ = s.run(st, 30, burn_in=True)
            S[(name, D, dk, tag)] = [s, st]
    acc = {k: {"long": [], "one": [], "r25": []} for k in S}
    for rnd in range(ROUNDS):
        for name, D, dk in CASES:
            tags = ("old", "new") if rnd % 2 == 0 else ("new", "old")
            for tag in tags:
                key = (name, D, dk, tag)
                s, st = S[key]
                t0 = time.perf_counter(); st, _ = s.run(st, 2); t2 = (time.perf_counter() - t0) / 2
                n = max(50, int(0.25 / t2))
                t0 = time.perf_counter(); st, _ = s.run(st, n); acc[key]["long"].append((time.perf_counter() - t0) / n)
                k = max(20, min(300, int(0.15 / t2)))
                t0 = time.perf_counter()
                for _ in range(k):
                    st, _ = s.run(st, 1)
                acc[key]["one"].append((time.perf_counter() - t0) / k)
                k25 = max(4, min(60, int(0.25 / (25 * t2))))
                t0 = time.perf_counter()
                for _ in range(k25):
                    st, _ = s.run(st, 25)
                acc[key]["r25"].append((time.perf_counter() - t0) / (25 * k25))
                S[key][1] = st
        print("round", rnd, "done", flush=True)
    med = lambda v: float(np.median(v)) * 1e3
    rows = []
    print(f"{'case':22s} {'step ms old/new':>16s} {'overhead ms old':>15s} {'new':>7s} {'ratio':>6s} | {'run(25) ms/step old':>19s} {'new':>7s} {'old/new':>7s}")
    for name, D, dk in CASES:
        o, nw = acc[(name, D, dk, "old")], acc[(name, D, dk, "new")]
        ov_o = med(np.array(o["one"]) - np.array(o["long"])); ov_n = med(np.array(nw["one"]) - np.array(nw["long"]))
        r = {"case": f"{name} D={D} dk={dk}", "step_old": med(o["long"]), "step_new": med(nw["long"]),
                 "run1_old": med(o["one"]), "run1_new": med(nw["one"]), "overhead_old": ov_o, "overhead_new": ov_n,
                 "r25_old": med(o["r25"]), "r25_new": med(nw["r25"]),
                 "r25_ratio": float(np.median(np.array(o["r25"]) / np.array(nw["r25"]))),
                 "run1_ratio": float(np.median(np.array(o["one"]) / np.array(nw["one"])))}
        rows.append(r)
        print(f"{r['case']:22s} {r['step_old']:7.3f}/{r['step_new']:7.3f} {ov_o:15.3f} {ov_n:7.3f} {ov_o/ov_n:6.1f} | {r['r25_old']:19.4f} {r['r25_new']:7.4f} {r['r25_ratio']:7.2f}")
    out["rows"] = rows
OUT.write_text(json.dumps(out, indent=1))
print("wrote", OUT)
