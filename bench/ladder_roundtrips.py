"""Round trips per hour of the factored model: the old default ladder against the new.

Before: 8 geometric rungs over [1e-5, 1e-1], fixed (the old default). After: the
automatic ladder (``1e-5:1e-1:auto``: rungs from the number of spins, adaptive placement
during burn-in, the new default for the factored model). Same task, sampler (MALA),
copies, steps. Writes ``bench/results/ladder_roundtrips.json`` with, per ladder: rungs,
wall seconds, round trips (all copies, whole run), round trips per hour, and the minimum
swap acceptance after burn-in.

Usage: ``python bench/ladder_roundtrips.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from spinicl.config import SampleConfig, TaskConfig
from spinicl.runner import file_info, run_sample


def measure(temps, adapt: bool | None, steps: int, tmp: str, tag: str) -> dict:
    task = TaskConfig(D=8, N=20, P=500, lam=0.01, test_prompts=200, seed=1)
    cfg = SampleConfig(task=task, model="factored", dk=5, temperatures=temps,
                       adapt_ladder=adapt, copies=2, steps=steps, burn_in=steps // 4,
                       record_every=50)
    path = os.path.join(tmp, f"{tag}.h5")
    t0 = time.time()
    run_sample(cfg, path, progress=False)
    wall = time.time() - t0
    info = file_info(path)
    acc = np.asarray(info["swap_accept"], dtype=float)
    rt = info["ladder"]["round_trips"]
    return {"rungs": len(cfg.temperatures), "adapt_ladder": cfg.adapt_ladder,
            "seconds": wall, "round_trips": rt, "round_trips_per_hour": rt * 3600 / wall,
            "min_swap_accept": float(np.nanmin(acc)),
            "barrier": info["ladder"]["barrier_heat_capacity"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        res = {"before": measure("1e-5:1e-1:8", False, args.steps, tmp, "before"),
               "after": measure("1e-5:1e-1:auto", None, args.steps, tmp, "after"),
               "steps": args.steps}
    with open(os.path.join(os.path.dirname(__file__), "results",
                           "ladder_roundtrips.json"), "w") as fh:
        json.dump(res, fh, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
