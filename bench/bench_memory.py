"""Peak memory (resident set) of a sampling run with the automatic representation.

D ∈ {20, 60, 100, 200}, P = 10⁴, N = 100, λ = 0.01, MALA with R = 64 replicas at one
temperature, ``representation="auto"`` with the default memory budget (half the
available memory): each point runs in its own subprocess, which builds the task, the
model, the sampler, and takes a few steps; the subprocess reports its resident-set
high-water mark (``VmHWM``) after each stage, and its stage timings.

The automatic choice is dense at D ≤ 100 here (P > n/2 and A fits) and matrix-free at
D = 200 (the dense A would need 3·8·n² = 39 GB). The target: D = 200, R = 64 within 2 GB.
``--extra`` adds D = 100 with ``memory_budget="2GB"`` (matrix-free).

The task is built as the runner builds it, without the raw contexts of the two test sets
(``make_task(keep_test_context=False)``: only the per-prompt baselines need them);
``--keep-test-context`` keeps them (2 × 2000 × N × D doubles, 640 MB at D = 200), to
measure what they cost.

Run: ``python bench/bench_memory.py`` (about 5 minutes: the D = 100 dense sampler set-up
alone takes ~2.5 minutes on 2 loaded cores, the D = 200 matrix-free one ~1 minute).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import say, write_json

N, P, LAM, BETA, R = 100, 10_000, 0.01, 1e4, 64
DIMS = (20, 60, 100, 200)
GOAL_MB = 2048.0


def child(D: int, replicas: int, steps: int, budget: str | None,
          keep_test_context: bool = False) -> None:
    """Run one point and print one JSON line (runs in the subprocess)."""
    from spinicl.bench import peak_memory_mb
    from spinicl.config import TaskConfig
    from spinicl.models import build_model
    from spinicl.prompts import make_task
    from spinicl.samplers import Ladder, make_sampler

    out: dict = {"D": D, "P": P, "N": N, "replicas": replicas, "steps": steps,
                 "memory_budget": budget, "keep_test_context": keep_test_context,
                 "stages": []}

    def stage(name: str, t0: float) -> None:
        out["stages"].append({"stage": name, "seconds": time.perf_counter() - t0,
                              "peak_rss_mb": peak_memory_mb()})

    stage("imports", time.perf_counter())
    t = time.perf_counter()
    # as the runner builds it: the raw test contexts only for the per-prompt baselines
    task = make_task(TaskConfig(D=D, N=N, P=P, lam=LAM), keep_test_context=keep_test_context)
    stage("make_task", t)
    t = time.perf_counter()
    model = build_model(task, "merged", representation="auto", memory_budget=budget)
    out["representation"] = model.representation
    stage("build_model", t)
    t = time.perf_counter()
    sampler = make_sampler(model, "mala", ladder=Ladder.from_betas([BETA]), copies=replicas,
                           seed=0)
    state = sampler.init()
    stage("sampler_setup", t)
    t = time.perf_counter()
    state, _ = sampler.run(state, 1, burn_in=True)
    stage("first_step", t)
    t = time.perf_counter()
    state, info = sampler.run(state, steps)
    stage(f"{steps}_steps", t)
    out["step_seconds"] = out["stages"][-1]["seconds"] / steps
    out["acceptance"] = float(info.accept.mean())
    out["peak_rss_mb"] = peak_memory_mb()
    print("RESULT " + json.dumps(out), flush=True)


def run_point(D: int, replicas: int, steps: int, budget: str | None,
              timeout: float, keep_test_context: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", str(D), "--replicas", str(replicas),
           "--steps", str(steps)] + (["--budget", budget] if budget else []) + (
        ["--keep-test-context"] if keep_test_context else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"D": D, "replicas": replicas, "memory_budget": budget,
                "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["wall_seconds"] = wall
            return r
    return {"D": D, "replicas": replicas, "memory_budget": budget,
            "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--replicas", type=int, default=R)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--budget", type=str, default=None)
    ap.add_argument("--D", type=int, nargs="*", default=list(DIMS))
    ap.add_argument("--extra", action="store_true",
                    help="also D = 100 with memory_budget = 2GB (matrix-free)")
    ap.add_argument("--timeout", type=float, default=420.0, help="seconds per point")
    ap.add_argument("--keep-test-context", action="store_true",
                    help="keep the test sets' raw contexts (as make_task did by default)")
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.replicas, args.steps or 3, args.budget,
              args.keep_test_context)
        return
    t0 = time.perf_counter()
    plan = [(D, None) for D in args.D] + ([(100, "2GB")] if args.extra else [])
    results = []
    for D, budget in plan:
        steps = args.steps or (20 if D <= 60 else 3)
        r = run_point(D, args.replicas, steps, budget, args.timeout, args.keep_test_context)
        results.append(r)
        if "error" in r:
            say(f"D={D:3d} budget={budget or 'auto'}: FAILED ({r['error']})")
            continue
        stages = ", ".join(f"{s['stage']} {s['seconds']:.1f} s/{s['peak_rss_mb']:.0f} MB"
                           for s in r["stages"][1:])
        say(f"D={D:3d} R={r['replicas']} {r['representation']:11s} budget="
            f"{budget or 'auto'}: peak RSS {r['peak_rss_mb']:.0f} MB; {stages}")
    d200 = next((r for r in results if r.get("D") == 200 and "error" not in r
                 and r.get("memory_budget") is None), None)
    targets = []
    if d200 is not None:
        targets.append({"name": "D=200, P=1e4, R=64 (matrix-free) within 2 GB peak RSS",
                        "value": d200["peak_rss_mb"], "goal": GOAL_MB,
                        "met": bool(d200["peak_rss_mb"] <= GOAL_MB)})
        say(f"target: D=200 R=64 peak {d200['peak_rss_mb']:.0f} MB (goal <= 2048 MB): "
            f"{'met' if targets[0]['met'] else 'MISSED'}")
    path = write_json("memory", {"settings": {"N": N, "P": P, "lam": LAM, "beta": BETA,
                                              "sampler": "mala",
                                              "keep_test_context": args.keep_test_context},
                                 "results": results, "targets": targets,
                                 "seconds": time.perf_counter() - t0})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
