"""z-score audit: every observable with a closed form, against its exact value.

Runs `spinicl sample` (through :func:`spinicl.runner.run_sample`) on small merged-model
cases that vary D, N, P, K, λ, label noise, copies and sampler (exact, mala, ula, baoab),
and collects z = (mean − exact)/stderr of every observable with a closed form at every
rung, with the summary's error bars (Geyer τ over copies; overlaps from the per-record
pair average; ULA against its own stationary law). Writes
``bench/results/zscore_audit.json``: per case the z-scores, and overall rms, max |z| and
count. Pass: rms within 1 ± 0.15 over ≥ 200 values and no |z| > 5.

Usage: ``python bench/zscore_audit.py [--quick]`` (``--quick``: two cases, the test).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from spinicl.config import SampleConfig, TaskConfig
from spinicl.runner import run_sample, summarize_file

CASES = [
    {"task": {"D": 3, "N": 10, "P": 200, "lam": 0.1}, "sampler": "exact", "copies": 8, "steps": 4000},
    {"task": {"D": 4, "N": 8, "P": 300, "K": 4, "lam": 0.05, "sigma_eps": 0.3}, "sampler": "mala",
         "copies": 4, "steps": 20000},
    {"task": {"D": 3, "N": 20, "P": 150, "lam": 0.2}, "sampler": "ula", "copies": 4, "steps": 20000},
    {"task": {"D": 5, "N": 10, "P": 400, "lam": 0.1}, "sampler": "baoab", "copies": 3, "steps": 20000},
    {"task": {"D": 2, "N": 5, "P": 100, "K": 2, "lam": 0.05, "sigma_eps": 0.5}, "sampler": "ula",
         "copies": 8, "steps": 20000},
    {"task": {"D": 3, "N": 10, "P": 200, "lam": 0.1, "seed": 7}, "sampler": "mala", "copies": 2,
         "steps": 20000},
]
QUICK = [0, 2]


def run_case(i: int, case: dict, tmp: str) -> dict:
    task = TaskConfig(test_prompts=200, seed=case["task"].get("seed", i + 1),
                      **{k: v for k, v in case["task"].items() if k != "seed"})
    cfg = SampleConfig(task=task, sampler=case["sampler"], copies=case["copies"],
                       temperatures="1e-3:1e-1:auto", steps=case["steps"],
                       burn_in=case["steps"] // 5, record_every=5, swap_every=2)
    path = os.path.join(tmp, f"case{i}.h5")
    t0 = time.time()
    run_sample(cfg, path, progress=False)
    summ = summarize_file(path)
    zs, names = [], []
    for name, st in summ.items():
        if name == "swap_accept" or "exact" not in st:
            continue
        for k in range(len(st["mean"])):
            if np.isfinite(st["exact"][k]) and st["stderr"][k] > 0:
                zs.append(float((st["mean"][k] - st["exact"][k]) / st["stderr"][k]))
                names.append(f"{name}@{k}")
    return {"case": case, "n_temps": len(cfg.temperatures), "seconds": time.time() - t0,
            "z": zs, "names": names}


def audit(cases: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_case(i, CASES[i], tmp) for i in cases]
    z = np.concatenate([r["z"] for r in rows])
    return {"rows": rows, "n": int(z.size), "rms": float(np.sqrt(np.mean(z**2))),
            "max_abs_z": float(np.max(np.abs(z)))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    res = audit(QUICK if args.quick else list(range(len(CASES))))
    res["pass"] = bool(abs(res["rms"] - 1) <= 0.15 and res["max_abs_z"] <= 5
                       and res["n"] >= 200)
    out = os.path.join(os.path.dirname(__file__), "results", "zscore_audit.json")
    if not args.quick:
        with open(out, "w") as fh:
            json.dump(res, fh, indent=1)
    print(json.dumps({k: res[k] for k in ("n", "rms", "max_abs_z", "pass")}))
    for r in res["rows"]:
        z = np.asarray(r["z"])
        print(r["case"]["sampler"], r["n_temps"], "rungs", len(z), "z, rms",
              round(float(np.sqrt(np.mean(z**2))), 3), "max", round(float(np.abs(z).max()), 2),
              f"{r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
