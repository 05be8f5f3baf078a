"""Block Gibbs (heat bath and overrelaxed) against MALA + replica exchange on the
factored model.

Setting: D = 8 and D = 20, d_k = 2 and d_k = D+1, N = 2D, P = 4(D+1)², λ = 0.05, dense
representation; the same ladder for every sampler (8 rungs, geometric in T from 10⁻⁴ to
10⁻³: the coldest rung at β = 10⁴), 2 copies per rung, a swap round every 2 steps, all
started from the model's default start (balanced factors of the ridge mean plus thermal
noise), BLAS pinned to one thread (as the runner does). Three samplers per case:
``gibbs`` with ``overrelax = 0`` (the plain heat bath), ``gibbs`` with its default
overrelaxation, and MALA.

ESS/s is ESS per step divided by seconds per step, each measured on its own:

* **cost per step**: in every round, one uninterrupted ``sampler.run(state, n)`` (no
  recording; its result is discarded, so the recorded chain stays contiguous), timed;
  the cost is the summed time over the summed steps of all rounds. Timing a loop of
  short ``run`` calls instead would add the fixed cost of a call to every record;
* **ESS per step**: a separate stretch in every round records the gauge-invariant
  observables at the coldest rung after every ``every`` steps — energy, test MSE (novel
  tasks) and the self-overlap Q = ‖W‖²/n of the effective weights — and the pooled
  records give τ_int (Geyer, chains = copies) and the ESS of each observable. ``every``
  is a fifth of the slowest τ measured on a pilot stretch after burn-in (at least 1),
  so thinning loses almost nothing.

Rounds alternate between the three samplers, so load from other jobs hits all alike.
Each sampler gets the same wall-clock budget: 0.4 of it for burn-in (MALA adapts its
step then), up to 0.2 for the pilot, 1.2 for production (0.2 timing, 1.0 recording).
The ratios are gibbs/MALA of the slowest observable's ESS/s; ``ratio_at_tau1_*`` is the
ratio the same sweep cost would reach with τ = 1 sweep (independent draws), the ceiling
of a heat bath at that cost. A MALA ESS below ~20 means its τ is not resolved by the run
(its ESS, hence its ESS/s, is then an over-estimate and the ratio a lower bound).

Run: ``python bench/bench_gibbs.py [--budget 22]`` (about 4·3·1.8·budget seconds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import say, write_json
from threadpoolctl import threadpool_limits

from spinicl import make_task
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model, mse
from spinicl.samplers import Ladder, make_sampler

CASES = ((8, 2), (8, 9), (20, 2), (20, 21))
LAM, COPIES, N_TEMPS, SWAP_EVERY = 0.05, 2, 8, 2
OBS = ("energy", "test_mse", "self_overlap")
#: Production rounds, alternating between the samplers of a case.
ROUNDS = 10
#: Fractions of the budget: burn-in, pilot (at most), timing and recording per sampler.
BURN, PILOT, TIMING, RECORDING = 0.4, 0.2, 0.2, 1.0
#: Records of the pilot stretch (at most) and of production per sampler (at most).
PILOT_RECORDS, MAX_RECORDS = 2000, 40000


def _record(sampler, task, state) -> dict[str, np.ndarray]:
    W = sampler.effective_weights(state)[0]                   # coldest rung (copies, n)
    return {"energy": sampler.energies(state)[0].copy(),
            "test_mse": mse(W, task.test_novel),
            "self_overlap": np.einsum("ci,ci->c", W, W) / W.shape[1]}


def _timed(sampler, state, n, burn_in=False):
    t0 = time.perf_counter()
    state, _ = sampler.run(state, n, burn_in=burn_in)
    return state, time.perf_counter() - t0


def _recording(sampler, task, state, every: int, seconds: float, max_records: int):
    """Run and record every ``every`` steps for about ``seconds`` (wall, recording
    included) or ``max_records`` records; returns the state and the records."""
    recs = {k: [] for k in OBS}
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end and len(recs["energy"]) < max_records:
        state, _ = sampler.run(state, every)
        for k, v in _record(sampler, task, state).items():
            recs[k].append(v)
    return state, recs


def _slowest_tau(recs: dict) -> float:
    return max(summarize(np.asarray(recs[k]))["tau_int"] for k in OBS)


def _prepare(name: str, model, task, ladder, budget: float, seed: int,
             options: dict) -> dict:
    """Build, compile, time a step, burn in; a pilot stretch sets ``every``."""
    s = make_sampler(model, name, ladder=ladder, copies=COPIES, swap_every=SWAP_EVERY,
                     seed=seed, threads=1, blas_threads=1, **options)
    st = s.init()
    st, _ = _timed(s, st, 2 * SWAP_EVERY, burn_in=True)       # compile / warm
    st, dt = _timed(s, st, 10 * SWAP_EVERY, burn_in=True)
    t_step = dt / (10 * SWAP_EVERY)
    n_burn = max(SWAP_EVERY, int(BURN * budget / t_step) // SWAP_EVERY * SWAP_EVERY)
    st, _ = _timed(s, st, n_burn, burn_in=True)
    st, pilot = _recording(s, task, st, 1, PILOT * budget, PILOT_RECORDS)
    tau = _slowest_tau(pilot)
    every = max(1, int(tau / 5))
    return {"sampler": s, "state": st, "every": every, "n_burn": n_burn,
            "pilot_records": len(pilot["energy"]), "pilot_tau": tau, "t_step": t_step,
            "timed_s": 0.0, "timed_steps": 0, "recorded_steps": 0, "record_wall_s": 0.0,
            "recs": {k: [] for k in OBS}}


def _round(run: dict, task, budget: float) -> None:
    """One production round: an uninterrupted timed run (discarded), then recording."""
    s, every = run["sampler"], run["every"]
    n = max(SWAP_EVERY, int(TIMING * budget / ROUNDS / run["t_step"]))
    _, dt = _timed(s, run["state"], n)
    run["timed_s"] += dt
    run["timed_steps"] += n
    run["t_step"] = run["timed_s"] / run["timed_steps"]
    t0 = time.perf_counter()
    run["state"], recs = _recording(s, task, run["state"], every,
                                    RECORDING * budget / ROUNDS, MAX_RECORDS // ROUNDS)
    run["record_wall_s"] += time.perf_counter() - t0
    run["recorded_steps"] += every * len(recs["energy"])
    for k in OBS:
        run["recs"][k].extend(recs[k])


def _summary(run: dict, label: str) -> dict:
    s, st = run["sampler"], run["state"]
    t_step, steps = run["timed_s"] / run["timed_steps"], run["recorded_steps"]
    row = {"sampler": label, "t_step_s": t_step, "timed_steps": run["timed_steps"],
           "timed_s": run["timed_s"], "recorded_steps": steps, "every": run["every"],
           "records": len(run["recs"]["energy"]), "burn_in_steps": run["n_burn"],
           "pilot_records": run["pilot_records"], "pilot_tau_steps": run["pilot_tau"],
           "record_loop_s_per_step": run["record_wall_s"] / steps,
           "swap_acceptance": np.round(s.report(st)["swap_acceptance"], 3).tolist(),
           "accept_coldest": float(s.report(st)["acceptance"][0].mean())}
    slow = np.inf
    for k in OBS:
        sm = summarize(np.asarray(run["recs"][k]))
        ess_per_step = sm["ess"] / steps
        ess_s = ess_per_step / t_step
        row[k] = {"mean": sm["mean"], "stderr": sm["stderr"], "ess": sm["ess"],
                  "tau_int_steps": sm["tau_int"] * run["every"],
                  "ess_per_step": ess_per_step, "ess_per_s": ess_s}
        if ess_s < slow:
            slow, row["slowest"] = ess_s, k
    row["slowest_ess_per_s"] = slow
    row["slowest_tau_steps"] = row[row["slowest"]]["tau_int_steps"]
    return row


#: (label, sampler, options) of the samplers compared in each case.
SAMPLERS = (("gibbs_heat_bath", "gibbs", {"overrelax": 0.0}),
            ("gibbs", "gibbs", {}),
            ("mala", "mala", {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=22.0, help="seconds of production "
                    "per sampler and case (burn-in and pilot: 0.6 of it more)")
    args = ap.parse_args()
    ladder = Ladder.geometric(1e-4, 1e-3, N_TEMPS)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for D, dk in CASES:
            rows.append(_case(D, dk, ladder, args.budget))
    write_json("gibbs", {"budget_s": args.budget, "ladder_T": [1e-4, 1e-3, N_TEMPS],
                         "copies": COPIES, "swap_every": SWAP_EVERY, "lam": LAM,
                         "rounds": ROUNDS, "rows": rows})


def _case(D: int, dk: int, ladder: Ladder, budget: float) -> dict:
    task = make_task(D=D, N=2 * D, P=4 * (D + 1) ** 2, lam=LAM, test_prompts=500, seed=D)
    model = build_model(task, "factored", representation="dense", dk=dk)
    runs = {label: _prepare(name, model, task, ladder, budget, 1, opts)
            for label, name, opts in SAMPLERS}
    for _ in range(ROUNDS):
        for run in runs.values():
            _round(run, task, budget)
    res = {label: _summary(run, label) for label, run in runs.items()}
    m = res["mala"]
    m_slow = m["slowest_ess_per_s"]
    row = {"D": D, "dk": dk, "n_spins": model.n_spins, "beta_coldest": 1e4,
           "overrelax": runs["gibbs"]["sampler"].options["overrelax"], **res,
           "target": 10.0}
    for label in ("gibbs_heat_bath", "gibbs"):
        g = res[label]
        ratio = g["slowest_ess_per_s"] / m_slow
        row[f"ratio_{label}"] = ratio
        row[f"ratio_at_tau1_{label}"] = COPIES / g["t_step_s"] / m_slow
        row[f"z_{label}_vs_mala"] = {
            k: (g[k]["mean"] - m[k]["mean"]) / np.hypot(g[k]["stderr"], m[k]["stderr"])
            for k in OBS}
        say(f"D={D:2d} dk={dk:2d} {label:15s} {g['slowest_ess_per_s']:9.3g} ESS/s "
            f"({g['slowest']}, {g['t_step_s'] * 1e3:.3g} ms/sweep, tau "
            + "/".join(f"{g[k]['tau_int_steps']:.2f}" for k in OBS)
            + f")  ratio {ratio:6.3g} (at tau 1: {row[f'ratio_at_tau1_{label}']:.3g})"
            + "  z(E, mse, Q) = "
            + ", ".join(f"{row[f'z_{label}_vs_mala'][k]:+.1f}" for k in OBS))
    row["ratio"] = row["ratio_gibbs"]
    row["met"] = bool(row["ratio"] >= 10.0)
    say(f"D={D:2d} dk={dk:2d} mala            {m_slow:9.3g} ESS/s "
        f"({m['slowest']}, ESS {m[m['slowest']]['ess']:.0f}, every {m['every']}, "
        f"{m['t_step_s'] * 1e3:.3g} ms/step, tau "
        + "/".join(f"{m[k]['tau_int_steps']:.1f}" for k in OBS) + ")")
    return row


if __name__ == "__main__":
    main()
