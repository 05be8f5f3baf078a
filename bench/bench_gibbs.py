"""Block Gibbs (heat bath and overrelaxed) against MALA + replica exchange on the
factored model.

Setting: D = 8 and D = 20, d_k = 2 and d_k = D+1, N = 2D, P = 4(D+1)², λ = 0.05, dense
representation; the same ladder for every sampler (8 rungs, geometric in T from 10⁻⁴ to
10⁻³: the coldest rung at β = 10⁴), 2 copies per rung, a swap round every 2 steps, all
started from the model's default start (balanced factors of the ridge mean plus thermal
noise). Three samplers per case: ``gibbs`` with ``overrelax = 0`` (the plain heat bath),
``gibbs`` with its default overrelaxation, and MALA. Each gets the same wall-clock budget
for burn-in (MALA adapts its step then) and the same for production; production runs in
rounds that alternate between the three samplers (so load from other jobs hits all
alike), and only ``sampler.run`` is timed (recording is not). At the coldest rung we
record the gauge-invariant observables — energy, test MSE (novel tasks) and the
self-overlap Q = ‖W‖²/n of the effective weights — and report ESS/s (Geyer τ_int,
chains = copies) of each and of the slowest; the ratios are gibbs/MALA of the slowest.
A MALA ESS below ~20 means its τ is not resolved by the run (its ESS, hence its ESS/s,
is then an over-estimate and the ratio a lower bound).

Run: ``python bench/bench_gibbs.py [--budget 20]`` (about 4·3·1.5·budget seconds).
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


#: Production rounds, alternating between the samplers of a case.
ROUNDS = 10


def _prepare(name: str, model, ladder, budget: float, seed: int, options: dict) -> dict:
    """Build, compile, time a step and burn in for half the budget."""
    s = make_sampler(model, name, ladder=ladder, copies=COPIES, swap_every=SWAP_EVERY,
                     seed=seed, threads=1, blas_threads=1, **options)
    st = s.init()
    st, _ = _timed(s, st, 2 * SWAP_EVERY, burn_in=True)       # compile / warm
    st, dt = _timed(s, st, 10 * SWAP_EVERY, burn_in=True)
    t_step = dt / (10 * SWAP_EVERY)
    n_burn = max(SWAP_EVERY, int(0.5 * budget / t_step) // SWAP_EVERY * SWAP_EVERY)
    st, _ = _timed(s, st, n_burn, burn_in=True)
    # up to 20000 records (recording faster than either τ, so ESS is not capped by the
    # number of records)
    every = max(1, int(budget / (20000 * t_step)))
    return {"sampler": s, "state": st, "every": every, "n_burn": n_burn, "spent": 0.0,
            "steps": 0, "recs": {k: [] for k in OBS}}


def _produce(run: dict, model, task, seconds: float) -> None:
    """Production for about ``seconds`` of sampler time, recording every ``every``."""
    s, every, t_end = run["sampler"], run["every"], run["spent"] + seconds
    while run["spent"] < t_end:
        run["state"], dt = _timed(s, run["state"], every)
        run["spent"] += dt
        run["steps"] += every
        for k, v in _record(s, model, task, run["state"]).items():
            run["recs"][k].append(v)


def _summary(run: dict, label: str) -> dict:
    s, st, spent = run["sampler"], run["state"], run["spent"]
    row = {"sampler": label, "t_step_s": spent / run["steps"], "steps": run["steps"],
           "every": run["every"], "records": len(run["recs"]["energy"]),
           "burn_in_steps": run["n_burn"], "wall_s": spent,
           "swap_acceptance": np.round(s.report(st)["swap_acceptance"], 3).tolist(),
           "accept_coldest": float(s.report(st)["acceptance"][0].mean())}
    slow = np.inf
    for k in OBS:
        sm = summarize(np.asarray(run["recs"][k]))
        ess_s = sm["ess"] / spent
        row[k] = {"mean": sm["mean"], "stderr": sm["stderr"], "ess": sm["ess"],
                  "tau_int_steps": sm["tau_int"] * run["every"], "ess_per_s": ess_s}
        if ess_s < slow:
            slow, row["slowest"] = ess_s, k
    row["slowest_ess_per_s"] = slow
    return row


#: (label, sampler, options) of the samplers compared in each case.
SAMPLERS = (("gibbs_heat_bath", "gibbs", {"overrelax": 0.0}),
            ("gibbs", "gibbs", {}),
            ("mala", "mala", {}))


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
        runs = {label: _prepare(name, model, ladder, args.budget, 1, opts)
                for label, name, opts in SAMPLERS}
        for _ in range(ROUNDS):
            for run in runs.values():
                _produce(run, model, task, args.budget / ROUNDS)
        res = {label: _summary(run, label) for label, run in runs.items()}
        m = res["mala"]
        row = {"D": D, "dk": dk, "n_spins": model.n_spins, "beta_coldest": 1e4,
               "overrelax": runs["gibbs"]["sampler"].options["overrelax"], **res,
               "target": 10.0}
        for label in ("gibbs_heat_bath", "gibbs"):
            g = res[label]
            ratio = g["slowest_ess_per_s"] / m["slowest_ess_per_s"]
            row[f"ratio_{label}"] = ratio
            row[f"z_{label}_vs_mala"] = {
                k: (g[k]["mean"] - m[k]["mean"]) / np.hypot(g[k]["stderr"], m[k]["stderr"])
                for k in OBS}
            say(f"D={D:2d} dk={dk:2d} {label:15s} {g['slowest_ess_per_s']:9.3g} ESS/s "
                f"({g['slowest']}, {g['t_step_s'] * 1e3:.3g} ms/sweep, tau "
                + "/".join(f"{g[k]['tau_int_steps']:.2f}" for k in OBS)
                + f")  ratio {ratio:6.3g}  z(E, mse, Q) = "
                + ", ".join(f"{row[f'z_{label}_vs_mala'][k]:+.1f}" for k in OBS))
        row["ratio"] = row["ratio_gibbs"]
        row["met"] = bool(row["ratio"] >= 10.0)
        rows.append(row)
        say(f"D={D:2d} dk={dk:2d} mala            {m['slowest_ess_per_s']:9.3g} ESS/s "
            f"({m['slowest']}, ESS {m[m['slowest']]['ess']:.0f}, "
            f"{m['t_step_s'] * 1e3:.3g} ms/step, tau "
            + "/".join(f"{m[k]['tau_int_steps']:.1f}" for k in OBS) + ")")
    write_json("gibbs", {"budget_s": args.budget, "ladder_T": [1e-4, 1e-3, N_TEMPS],
                         "copies": COPIES, "swap_every": SWAP_EVERY, "lam": LAM,
                         "rows": rows})


if __name__ == "__main__":
    main()
