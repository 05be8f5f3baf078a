"""Time of the exact Gaussian theory (the work behind ``spinicl theory``) against D and P.

Stages, timed separately: ``make_task`` (prompts and both test sets, 2000 prompts each),
``build_model`` (the dense Gram matrix A₀ = SᵀS/P, or nothing for the matrix-free form)
and ``gaussian_theory`` (dense: Cholesky, traces, test-set traces; matrix-free: conjugate
gradients for m and 64 Hutchinson probes for the traces).

* dense at D ∈ {20, 40, 60}, P = 10⁴ (N = 100, λ = 0.01);
* matrix-free at D ∈ {20, 100}, P = 10⁴ (dense at D = 100 would need a 10201² Gram
  matrix, 0.8 GB, and ~10¹² flops to form: use ``--dense-100`` to include it);
* growth with P at D = 20: P ∈ {10³, 10⁴, 10⁵} dense, {10³, 10⁴} matrix-free
  (``--more`` adds matrix-free D = 40 and P = 10⁵, about a minute);
* the command itself once: ``spinicl theory --json`` at the defaults (D = 20, P = 10⁴),
  wall time of the subprocess (interpreter start, AMP and baselines included).

The log-log slopes of the theory time against D and P are printed (expected: Gram
matrix O(P·D⁴), Cholesky O(D⁶); matrix-free O(P·D²) per CG iteration).

Run: ``python bench/bench_theory.py`` (about 2–3 minutes on 2 cores, most of it the
matrix-free D = 100 point: conjugate gradients with 64 probes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _common import say, write_json

from spinicl.config import TaskConfig
from spinicl.models import build_model
from spinicl.prompts import make_task
from spinicl.theory.gaussian import gaussian_theory

N, LAM = 100, 0.01


def time_point(D: int, P: int, representation: str) -> dict:
    t0 = time.perf_counter()
    task = make_task(TaskConfig(D=D, N=N, P=P, lam=LAM))
    t1 = time.perf_counter()
    model = build_model(task, representation=representation)
    t2 = time.perf_counter()
    th = gaussian_theory(model, task)
    t3 = time.perf_counter()
    r = {"D": D, "P": P, "n_spins": (D + 1) ** 2, "representation": representation,
         "task_s": t1 - t0, "model_s": t2 - t1, "theory_s": t3 - t2,
         "model_plus_theory_s": t3 - t1, "total_s": t3 - t0,
         "energy_ground": th.energy_ground, "traces_exact": th.exact_traces}
    say(f"  D={D:3d} P={P:6d} {representation:11s}: task {r['task_s']:6.2f} s, model "
        f"{r['model_s']:6.2f} s, theory {r['theory_s']:6.2f} s (total {r['total_s']:.2f} s)")
    return r


def slope(rows: list[dict], x: str, y: str = "model_plus_theory_s") -> float | None:
    if len(rows) < 2:
        return None
    xs = np.log([r[x] for r in rows])
    ys = np.log([max(r[y], 1e-9) for r in rows])
    return float(np.polyfit(xs, ys, 1)[0])


def cli_time() -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "spinicl.cli", "theory", "--json"],
                          check=False, capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t0
    ok = proc.returncode == 0
    if ok:
        try:
            json.loads(proc.stdout)
        except ValueError:
            ok = False
    return {"command": "spinicl theory --json", "seconds": dt, "ok": ok,
            "error": "" if ok else (proc.stderr.strip().splitlines() or ["?"])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense-100", action="store_true", help="also dense at D = 100")
    ap.add_argument("--skip-mf-100", action="store_true", help="skip matrix-free D = 100")
    ap.add_argument("--more", action="store_true", help="matrix-free D = 40 and P = 10^5")
    args = ap.parse_args()
    t0 = time.perf_counter()
    say("dense, P = 10^4")
    dense_d = [time_point(D, 10_000, "dense") for D in (20, 40, 60)
               + ((100,) if args.dense_100 else ())]
    say("matrix-free, P = 10^4")
    mf_d = [time_point(D, 10_000, "matrix-free") for D in (20,) + ((40,) if args.more else ())
            + (() if args.skip_mf_100 else (100,))]
    say("growth with P at D = 20")
    dense_p = [time_point(20, P, "dense") for P in (1_000, 10_000, 100_000)]
    mf_p = [time_point(20, P, "matrix-free") for P in (1_000, 10_000)
            + ((100_000,) if args.more else ())]
    slopes = {"dense_vs_D": slope(dense_d, "D"), "matrix_free_vs_D": slope(mf_d, "D"),
              "dense_vs_P": slope(dense_p, "P"), "matrix_free_vs_P": slope(mf_p, "P"),
              "dense_task_vs_P": slope(dense_p, "P", "task_s")}
    say("log-log slopes of (model + theory) time: " + ", ".join(
        f"{k} {v:.2f}" for k, v in slopes.items() if v is not None))
    cli = cli_time()
    say(f"`{cli['command']}` (D=20, P=10^4, AMP and baselines, interpreter start): "
        f"{cli['seconds']:.2f} s" + ("" if cli["ok"] else f" FAILED: {cli['error']}"))
    path = write_json("theory", {"settings": {"N": N, "lam": LAM},
                                 "dense_vs_D": dense_d, "matrix_free_vs_D": mf_d,
                                 "dense_vs_P": dense_p, "matrix_free_vs_P": mf_p,
                                 "slopes": slopes, "cli": cli,
                                 "seconds": time.perf_counter() - t0})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
