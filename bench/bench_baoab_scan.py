"""BAOAB step size and friction: the scan behind the default step (merged model).

For the Gaussian merged model BAOAB samples the exact position marginal at any stable
step h < 2/√λ_max (docs/model.md §1.4), so the step is a pure speed knob. This scan runs BAOAB
with diagonal and dense preconditioning at D = 20, N = 100, P = 10⁴, λ = 0.01, β = 10⁴,
R = 32 chains, over step fractions {0.5, 0.65, 0.8 (the library default), 0.9} of the
stability bound and frictions γ ∈ {0.5, 1 (default), 2}, through
:func:`spinicl.bench.bench_samplers`, and reports τ_int of the energy and of the slowest
mode and the ESS/s ratios to the exact sampler measured in the same run. The step size
and γ do not change the cost of a step, so the ratios use, per preconditioner, the
median throughput over the scan and the mean of two exact rows (before and after): the
ratio is then (throughput / exact samples/s) / τ, insensitive to a burst of load during
one row (each row's own throughput is stored too).

Run: ``python bench/bench_baoab_scan.py`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from _common import say, write_json

from spinicl.bench import bench_samplers
from spinicl.config import TaskConfig

CFG = TaskConfig(D=20, N=100, P=10_000, lam=0.01)
BETA, R = 1e4, 32
FRACTIONS = (0.5, 0.65, 0.8, 0.9)
GAMMAS = (0.5, 1.0, 2.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=1.5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    def exact_rate() -> dict:
        return bench_samplers(CFG, ("exact",), beta=BETA, replicas=R,
                              budget_seconds=args.budget, representation="dense")[0]

    exact = exact_rate()
    rows = []
    for frac, gamma in itertools.product(FRACTIONS, GAMMAS):
        for r in bench_samplers(CFG, ("baoab",), beta=BETA, replicas=R,
                                budget_seconds=args.budget, precondition=("diag", "dense"),
                                representation="dense", gamma=gamma, step_fraction=frac):
            if r["status"] == "ok":
                r["step_fraction"] = frac
                rows.append(r)
    exact_after = exact_rate()
    ref = 0.5 * (exact["chain_steps_per_s"] + exact_after["chain_steps_per_s"])
    rate = {p: float(np.median([r["chain_steps_per_s"] for r in rows
                                if r["precondition"] == p])) for p in ("diag", "dense")}
    say(f"exact: {ref:.4g} samples/s; BAOAB median chain-steps/s: "
        + ", ".join(f"{p} {v:.4g}" for p, v in rate.items()))
    say(f"{'precond':8s} {'step':>5s} {'gamma':>5s} {'tau E':>6s} {'tau slow':>8s} "
        f"{'E/exact':>8s} {'slow/exact':>10s}")
    for r in rows:
        speed = rate[r["precondition"]] / ref
        r["ratio_energy"] = speed / r["tau_int_energy"]
        r["ratio_slowest"] = speed / r["tau_int_slowest"]
        say(f"{r['precondition']:8s} {r['step_fraction']:5.2f} {r['gamma']:5.2f} "
            f"{r['tau_int_energy']:6.2f} {r['tau_int_slowest']:8.2f} "
            f"{r['ratio_energy']:8.3f} {r['ratio_slowest']:10.3f}")
    best = max(rows, key=lambda r: min(r["ratio_energy"], r["ratio_slowest"]))
    say(f"best: {best['precondition']} step {best['step_fraction']} gamma {best['gamma']}: "
        f"min ratio {min(best['ratio_energy'], best['ratio_slowest']):.3f}")
    path = write_json("baoab_scan", {
        "settings": {"D": CFG.D, "N": CFG.N, "P": CFG.P, "lam": CFG.lam, "beta": BETA,
                     "replicas": R, "budget_seconds": args.budget},
        "exact": exact, "exact_after": exact_after, "exact_rate": ref,
        "median_rate": rate, "rows": rows, "seconds": time.perf_counter() - t0})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
