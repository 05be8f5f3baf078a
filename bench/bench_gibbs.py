"""Block Gibbs (heat bath) against MALA + replica exchange on the factored model.

Setting (issue 18, item 1): D = 8 and D = 20, d_k = 2 and d_k = D+1, N = 2D, P = 4(D+1)²,
λ = 0.05, dense representation; the same ladder for both samplers (8 rungs, geometric in
T from 10⁻⁴ to 10⁻³: the coldest rung at β = 10⁴), 2 copies per rung, a swap round
every 2 steps, both started from the model's default start (balanced factors of the
ridge mean plus thermal noise). Each sampler gets the same wall-clock budget for burn-in
(MALA adapts its step then) and the same for production (only ``sampler.run`` is timed;
recording is not). At the coldest rung we record the gauge-invariant observables —
energy, test MSE (novel tasks) and the self-overlap Q = ‖W‖²/n of the effective weights —
and report ESS/s (Geyer τ_int, chains = copies) of each and of the slowest; the ratio is
gibbs/MALA of the slowest. A MALA ESS below ~20 means its τ is not resolved by the run
(its ESS, hence its ESS/s, is then an over-estimate and the ratio a lower bound).

The four rows run one after another in one process (gibbs then MALA per row).

Run: ``python bench/bench_gibbs.py [--budget 20]`` (about 4·2·1.5·budget seconds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import say, write_json

from spinicl import make_task
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model, mse
from spinicl.samplers import Ladder, make_sampler

CASES = ((8, 2), (8, 9), (20, 2), (20, 21))
LAM, COPIES, N_TEMPS, SWAP_EVERY = 0.05, 2, 8, 2
OBS = ("energy", "test_mse", "self_overlap")


def _record(sampler, model, task, state) -> dict[str, np.ndarray]:
    W = sampler.effective_weights(state)[0]                   # coldest rung (copies, n)
    return {"energy": sampler.energies(state)[0].copy(),
            "test_mse": mse(W, task.test_novel),
            "self_overlap": np.einsum("ci,ci->c", W, W) / W.shape[1]}


def _timed(sampler, state, n, burn_in=False):
    t0 = time.perf_counter()
    state, _ = sampler.run(state, n, burn_in=burn_in)
    return state, time.perf_counter() - t0


def run_one(name: str, model, task, ladder, budget: float, seed: int) -> dict:
    s = make_sampler(model, name, ladder=ladder, copies=COPIES, swap_every=SWAP_EVERY,
                     seed=seed, threads=1, blas_threads=1)
    st = s.init()
    st, _ = _timed(s, st, 2 * SWAP_EVERY, burn_in=True)       # compile / warm
    # time per step, then burn-in for half the budget
    st, dt = _timed(s, st, 10 * SWAP_EVERY, burn_in=True)
    t_step = dt / (10 * SWAP_EVERY)
    n_burn = max(SWAP_EVERY, int(0.5 * budget / t_step) // SWAP_EVERY * SWAP_EVERY)
    st, _ = _timed(s, st, n_burn, burn_in=True)
    # production: up to 20000 records (recording faster than either τ, so ESS is not
    # capped by the number of records)
    every = max(1, int(budget / (20000 * t_step)))
    recs = {k: [] for k in OBS}
    spent, steps = 0.0, 0
    while spent < budget:
        st, dt = _timed(s, st, every)
        spent += dt
        steps += every
        for k, v in _record(s, model, task, st).items():
            recs[k].append(v)
    row = {"sampler": name, "t_step_s": spent / steps, "steps": steps, "every": every,
           "records": len(recs["energy"]), "burn_in_steps": n_burn, "wall_s": spent,
           "swap_acceptance": np.round(s.report(st)["swap_acceptance"], 3).tolist(),
           "accept_coldest": float(s.report(st)["acceptance"][0].mean())}
    slow = np.inf
    for k in OBS:
        sm = summarize(np.asarray(recs[k]))
        ess_s = sm["ess"] / spent
        row[k] = {"mean": sm["mean"], "stderr": sm["stderr"], "ess": sm["ess"],
                  "tau_int_steps": sm["tau_int"] * every, "ess_per_s": ess_s}
        if ess_s < slow:
            slow, row["slowest"] = ess_s, k
    row["slowest_ess_per_s"] = slow
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=20.0, help="seconds of production "
                    "per sampler and case (burn-in: half of it)")
    args = ap.parse_args()
    ladder = Ladder.geometric(1e-4, 1e-3, N_TEMPS)
    rows = []
    for D, dk in CASES:
        task = make_task(D=D, N=2 * D, P=4 * (D + 1) ** 2, lam=LAM, test_prompts=500,
                         seed=D)
        model = build_model(task, "factored", representation="dense", dk=dk)
        g = run_one("gibbs", model, task, ladder, args.budget, seed=1)
        m = run_one("mala", model, task, ladder, args.budget, seed=1)
        ratio = g["slowest_ess_per_s"] / m["slowest_ess_per_s"]
        agree = {k: (g[k]["mean"] - m[k]["mean"]) / np.hypot(g[k]["stderr"],
                                                             m[k]["stderr"])
                 for k in OBS}
        row = {"D": D, "dk": dk, "n_spins": model.n_spins, "beta_coldest": 1e4,
               "gibbs": g, "mala": m, "ratio": ratio, "target": 10.0,
               "met": bool(ratio >= 10.0), "z_gibbs_vs_mala": agree}
        rows.append(row)
        say(f"D={D:2d} dk={dk:2d}: gibbs {g['slowest_ess_per_s']:9.3g} ESS/s "
            f"({g['slowest']}, {g['t_step_s'] * 1e3:.3g} ms/sweep)  mala "
            f"{m['slowest_ess_per_s']:9.3g} ESS/s ({m['slowest']}, ESS "
            f"{m[m['slowest']]['ess']:.0f}, {m['t_step_s'] * 1e3:.3g} ms/step)  ratio "
            f"{ratio:7.3g}  z(E, mse, Q) = "
            + ", ".join(f"{agree[k]:+.1f}" for k in OBS))
    write_json("gibbs", {"budget_s": args.budget, "ladder_T": [1e-4, 1e-3, N_TEMPS],
                         "copies": COPIES, "swap_every": SWAP_EVERY, "lam": LAM,
                         "rows": rows})


if __name__ == "__main__":
    main()
