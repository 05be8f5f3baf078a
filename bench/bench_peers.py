"""Peers (optional): BlackJAX MALA and HMC and NumPyro NUTS on the same merged target.

Target: the merged model's Gaussian at D = 20, N = 100, P = 10⁴, λ = 0.01, β = 10⁴
(n = 441 spins; log density −βE(W) = −β[½WᵀAW − hᵀW] + const with the very A and h
spinicl samples), R = 64 chains at one temperature, every sampler started from the same
64 exact independent draws m + L⁻ᵀz/√β, so what is measured is stationary mixing.

Rows, all measured in this one process, one after the other:

* spinicl ``exact`` (the reference: one independent draw per chain-step), ``mala`` and
  ``baoab``, each without and with the diagonal preconditioner (the peers' HMC and NUTS
  adapt a diagonal mass matrix), through :func:`spinicl.bench.bench_samplers` (its
  protocol: untimed warm-up in which MALA adapts its step toward acceptance 0.574, then
  a throughput phase without recording and a mixing phase recording every step; BAOAB
  at the library's default step, 0.8 of its stability bound).
* BlackJAX MALA (``blackjax.mala``, no mass matrix, like spinicl's ``mala/none``), twice:
  with the gradient from autodiff of the plain quadratic form (two matrix products per
  step: what a user writes first) and with a ``jax.custom_jvp`` energy whose gradient
  reuses the product AW (one matrix product per step, as spinicl does). Step size tuned
  by spinicl's own rule: log ε follows a Robbins–Monro step toward mean acceptance
  0.574 over the 64 chains for ``--tune-steps`` steps, then frozen.
* BlackJAX HMC (``blackjax.hmc``, velocity Verlet, ``--hmc-steps`` L = 8 leapfrog steps)
  tuned by ``blackjax.window_adaptation`` (Stan-style windows: dual averaging toward
  acceptance 0.8 and a diagonal inverse mass matrix), per chain (vmapped), ``--warmup``
  steps. L = 8 maximised min(ESS/s energy, ESS/s slowest) among L ∈ {4, 8, 16} in a
  one-off scan (L = 16 makes the slowest mode nearly antithetic, τ ≈ 0, and the energy
  slow; L = 4 halves the slowest mode's ESS/s).
* NumPyro NUTS (NumPyro's NUTS with the defaults of ``numpyro.infer.NUTS``: dual
  averaging toward acceptance 0.8, diagonal mass matrix, Stan windows, max tree depth
  10) with its own warm-up of ``--warmup`` steps per chain; the 64 chains vmapped (what
  ``chain_method="vectorized"`` does), driven through NumPyro's functional kernel
  (``numpyro.infer.hmc.hmc``, the data passed as model arguments) inside compiled blocks
  so that compile, warm-up and measurement are timed apart.
  HMC and NUTS use the one-product gradient.

Every JAX row runs through :func:`spinicl.peers.run_peer` (the library's adapters, also
behind ``spinicl bench --peers``): float64 (``jax.enable_x64``), CPU backend, compiled
blocks of ``--block`` steps built ahead of time (compile seconds reported apart, excluded
from every rate), tuning/warm-up untimed, then ¼ of ``--budget`` of throughput and ¾ of
recording (the positions of every step of a block copied to the host, where the energy
and the slowest-mode projection of every chain are computed; that host work is not
timed). τ_int and ESS come from :func:`spinicl.analysis.diagnostics.summarize` (Geyer's
initial monotone sequence, pooled over the 64 chains, ESS summed over chains) for every
row, spinicl's and the peers' alike; ESS/s = ESS per chain-step × chain-steps/s of the
throughput phase.

Threads: by default (``--threads 1``) every library computes on one thread: Numba
(``NUMBA_NUM_THREADS=1``), BLAS (``OMP/OPENBLAS/MKL_NUM_THREADS=1`` and spinicl's
``blas_threads=1``) and XLA (``run_peer(threads=1)``: ``XLA_FLAGS=
--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` *and* the JAX CPU
client built while the process is pinned to one CPU — without that, XLA's compute pool
keeps one thread per core and runs NUTS on both —, after which the affinity is restored
so that the scheduler may use whichever core is free; nothing here touches JAX before the
first peer row, so the client is built then). Each JAX row reports the cores it used
(process CPU time / wall time of its throughput phase). ``--threads free`` leaves every
library at its default (Numba and XLA use all cores; spinicl's BLAS stays at its default
of one thread).

Needs jax, blackjax and numpyro (the optional extra ``bench``: ``pip install
-e '.[bench]'``); without them the script prints one line saying so and records
``skipped``.

Run: ``python bench/bench_peers.py`` (about 2 minutes on 2 cores; most of it is the
NUTS warm-up, whose first windows with a unit mass matrix need trees of up to 255 steps).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

from _common import say, write_json

D, N, P, LAM, BETA, CHAINS = 20, 100, 10_000, 0.01, 1e4, 64
#: Seed of the peers' random numbers (one per row: SEED + row index).
SEED = 2024
#: A τ estimate is reliable when runs are this many τ long and its error is below 20 %.
RELIABLE_RUN_IN_TAU, RELIABLE_TAU_ERROR = 20.0, 0.2
#: Goal of the issue: spinicl MALA chain-steps/s over BlackJAX MALA's at D = 20, R = 64.
GOAL_MALA_SPEED = 2.0


def _pin_threads(mode: str) -> None:
    """Set the thread environment before numpy or Numba are imported (XLA's threads are
    set by :func:`spinicl.peers.run_peer` when it builds JAX's CPU client)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if mode != "1":
        return
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        os.environ[var] = "1"


# --------------------------------------------------------------------------- target
def _target() -> dict[str, Any]:
    """The same A, h, slowest mode u, mean m and exact start as spinicl's bench rows."""
    import numpy as np

    from spinicl.bench import _exact_start, slowest_active_mode
    from spinicl.config import TaskConfig
    from spinicl.models import build_model
    from spinicl.prompts import make_task

    model = build_model(make_task(TaskConfig(D=D, N=N, P=P, lam=LAM), keep_test_context=False), representation="dense")
    A, h = model.precision(), model.field
    lam1, u = slowest_active_mode(model)
    m, start = _exact_start(model, BETA, CHAINS, seed=0)
    return {"A": A, "h": h, "u": u, "m": m, "start": start, "n": model.n_spins,
            "slowest_eigenvalue": lam1, "lam_max": float(np.linalg.eigvalsh(A)[-1]),
            "model": model}


def _mixing_stats(E, Y) -> dict[str, Any]:
    """τ, ESS and reliability of energy E and projection Y, both (steps, chains)."""
    from spinicl.analysis.diagnostics import summarize, tau_int_stderr

    se, ss = summarize(E), summarize(Y)
    err = max(tau_int_stderr(E) / se["tau_int"], tau_int_stderr(Y) / ss["tau_int"])
    n = E.shape[0]
    return {"tau_int_energy": se["tau_int"], "tau_int_slowest": ss["tau_int"],
            "ess_energy": se["ess"], "ess_slowest": ss["ess"], "recorded_steps": n,
            "tau_error": err,
            "tau_reliable": bool(n >= RELIABLE_RUN_IN_TAU * max(se["tau_int"], ss["tau_int"])
                                 and err <= RELIABLE_TAU_ERROR)}


# --------------------------------------------------------------------------- spinicl
def run_spinicl(budget: float) -> list[dict[str, Any]]:
    from spinicl.bench import bench_samplers
    from spinicl.config import TaskConfig

    rows = []

    def progress(r: dict) -> None:
        say(f"  spinicl {r['sampler']}/{r['precondition']}: "
            f"{r['chain_steps_per_s'] or math.nan:.4g} chain-steps/s, tau E "
            f"{r['tau_int_energy'] or math.nan:.3g}, slow {r['tau_int_slowest'] or math.nan:.3g}"
            f", accept {r['acceptance'] or math.nan:.2f}")

    out = bench_samplers(TaskConfig(D=D, N=N, P=P, lam=LAM), ("exact", "mala", "baoab"),
                         beta=BETA, replicas=CHAINS, budget_seconds=budget,
                         precondition=("none", "diag"), representation="dense",
                         blas_threads=1, progress=progress)
    for r in out:
        if r["status"] != "ok":
            say(f"  spinicl {r['sampler']}/{r['precondition']}: {r['status']} ({r['note']})")
            continue
        rows.append({
            "sampler": f"spinicl {r['sampler']}" + ("" if r["sampler"] == "exact"
                                                   else f"/{r['precondition']}"),
            "library": "spinicl", "chain_steps_per_s": r["chain_steps_per_s"],
            "grads_per_step": 0 if r["sampler"] == "exact" else 1,
            "ess_per_s_energy": r["ess_per_s_energy"],
            "ess_per_s_slowest": r["ess_per_s_slowest"],
            "tau_int_energy": r["tau_int_energy"], "tau_int_slowest": r["tau_int_slowest"],
            "acceptance": r["acceptance"], "step_size": r["step_size"],
            "recorded_steps": r["recorded_steps"], "tau_reliable": r["tau_reliable"],
            "compile_seconds": None, "tuning": (
                "none (independent draws)" if r["sampler"] == "exact" else
                "Robbins-Monro on log step toward acceptance 0.574 during burn-in"
                if r["sampler"] == "mala" else "library default step (0.8 of the bound)"),
            "cores_used": None})
    return rows


# --------------------------------------------------------------------------- peers
def _peer_row(label: str, out: dict[str, Any]) -> dict[str, Any]:
    """A table row from a :func:`spinicl.peers.run_peer` result whose records are
    (energy, slowest-mode projection) of every chain."""
    E, Y = out["trace"][:, :, 0], out["trace"][:, :, 1]
    st = _mixing_stats(E, Y)
    rate = out["chain_steps_per_s"]
    per = 1.0 / (CHAINS * st["recorded_steps"] * out["thin"])
    row = {"sampler": label, "library": out["sampler"].split("-")[0],
           "versions": out["library"], "chain_steps_per_s": rate,
           "ess_per_s_energy": st["ess_energy"] * per * rate,
           "ess_per_s_slowest": st["ess_slowest"] * per * rate,
           "acceptance": out["acceptance"], "grads_per_step": out["grads_per_step"],
           "grads_per_step_max_over_chains": out["grads_per_step_max"],
           "compile_seconds": out["compile_seconds"], "cores_used": out["cores"], **st,
           "step_size": out["step_size"], "tuning": out["tuning"],
           "tuning_seconds": out["tuning_seconds"], "seed": out["seed"],
           "thin": out["thin"], "xla_compute_threads": out["xla_compute_threads"],
           "notes": out["notes"]}
    say(f"  {label}: {rate:.4g} chain-steps/s, tau E {st['tau_int_energy']:.3g}, slow "
        f"{st['tau_int_slowest']:.3g}, accept {out['acceptance']:.2f}, compile "
        f"{out['compile_seconds']:.1f} s, tuning {out['tuning_seconds']:.1f} s, "
        f"{out['cores']:.2f} cores" + (f" ({out['notes']})" if out["notes"] else ""))
    return row


def run_peers(tgt: dict[str, Any], budget: float, block: int, tune_steps: int,
              warmup: int, hmc_steps: int, threads: str,
              peers: tuple[str, ...] = ("mala", "hmc", "nuts")) -> list[dict[str, Any]]:
    """The peer rows, each one :func:`spinicl.peers.run_peer` call on the same target and
    the same 64 exact starting draws."""
    import numpy as np

    from spinicl.peers import run_peer

    model, u, m_u = tgt["model"], tgt["u"], float(tgt["m"] @ tgt["u"])

    def record(W: np.ndarray) -> np.ndarray:
        return np.stack([model.energy(W), W @ u - m_u], axis=1)

    runs = []
    if "mala" in peers:
        runs += [("blackjax mala (autodiff gradient, 2 products/step)", "blackjax-mala",
                  {"gradient": "autodiff", "tuning_steps": tune_steps}),
                 ("blackjax mala (custom_jvp gradient, 1 product/step)", "blackjax-mala",
                  {"tuning_steps": tune_steps})]
    if "hmc" in peers:
        runs.append((f"blackjax hmc (L = {hmc_steps})", "blackjax-hmc",
                     {"tuning_steps": warmup, "leapfrog_steps": hmc_steps}))
    if "nuts" in peers:
        runs.append(("numpyro nuts", "numpyro-nuts", {"tuning_steps": warmup}))
    rows: list[dict[str, Any]] = []
    for i, (label, name, extra) in enumerate(runs):
        t0 = time.perf_counter()
        out = run_peer(name, model, BETA, tgt["start"], seed=SEED + i, budget_seconds=budget,
                       record=record, threads=1 if threads == "1" else None,
                       block_steps=block, **extra)
        row = _peer_row(label, out)
        row["section_seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- main
def _jax_info(threads: str) -> dict[str, Any]:
    import jax

    from spinicl.peers import XLA_ONE_THREAD_FLAGS, xla_compute_threads

    return {"backend": "cpu", "devices": [str(d) for d in jax.devices("cpu")],
            "x64": True,   # every peer row runs inside jax.enable_x64(True)
            "XLA_FLAGS": XLA_ONE_THREAD_FLAGS if threads == "1" else
            os.environ.get("XLA_FLAGS", ""),
            "xla_compute_threads": xla_compute_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=5.0,
                    help="timed seconds per row (0.25 throughput, 0.75 mixing)")
    ap.add_argument("--threads", choices=("1", "free"), default="1")
    ap.add_argument("--block", type=int, default=50, help="steps per compiled JAX block")
    ap.add_argument("--tune-steps", type=int, default=500,
                    help="BlackJAX MALA tuning steps")
    ap.add_argument("--warmup", type=int, default=200,
                    help="HMC and NUTS warm-up (adaptation) steps")
    ap.add_argument("--hmc-steps", type=int, default=8, help="HMC leapfrog steps")
    args = ap.parse_args()
    _pin_threads(args.threads)
    t_start = time.perf_counter()
    from spinicl.peers import PEER_NAMES, missing_packages

    missing = sorted({p for name in PEER_NAMES for p in missing_packages(name)},
                     key=("jax", "blackjax", "numpyro").index)
    if missing:
        msg = (f"peers skipped: {', '.join(missing)} not installed (optional extra `bench`: "
               "pip install -e '.[bench]', i.e. jax, blackjax, numpyro)")
        say(msg)
        write_json("peers", {"skipped": msg, "rows": [], "targets": [
            {"name": "spinicl MALA chain-steps/s >= 2 x BlackJAX MALA (D=20, R=64)",
             "value": None, "goal": GOAL_MALA_SPEED, "met": None}]})
        return
    tgt = _target()
    say(f"merged target D={D}, N={N}, P={P}, lambda={LAM}, beta={BETA:g}, n={tgt['n']}, "
        f"{CHAINS} chains from exact draws; threads: {args.threads}")
    c0, t0 = time.process_time(), time.perf_counter()
    rows = run_spinicl(args.budget)
    t_spinicl = time.perf_counter() - t0
    spinicl_cores = (time.process_time() - c0) / t_spinicl
    say(f"  spinicl rows: {t_spinicl:.0f} s, {spinicl_cores:.2f} cores on average (including "
        "the per-step recording in Python)")
    rows += run_peers(tgt, args.budget, args.block, args.tune_steps, args.warmup,
                      args.hmc_steps, args.threads)
    ref = next(r["chain_steps_per_s"] for r in rows if r["sampler"] == "spinicl exact")
    for r in rows:
        r["ratio_energy"] = r["ess_per_s_energy"] / ref
        r["ratio_slowest"] = r["ess_per_s_slowest"] / ref
    say(f"{'sampler':48s} {'chain-steps/s':>13s} {'ESS/s E':>9s} {'ESS/s slow':>10s} "
        f"{'tau E':>6s} {'tau slow':>8s} {'grads':>5s} {'cores':>5s}")
    for r in rows:
        say(f"{r['sampler']:48s} {r['chain_steps_per_s']:13.4g} {r['ess_per_s_energy']:9.4g} "
            f"{r['ess_per_s_slowest']:10.4g} {r['tau_int_energy']:6.3g} "
            f"{r['tau_int_slowest']:8.3g} {r['grads_per_step']:5.3g} "
            f"{r['cores_used'] or math.nan:5.2f}")
    mala = next(r for r in rows if r["sampler"] == "spinicl mala/none")
    bjs = [r for r in rows if r["sampler"].startswith("blackjax mala")]
    ratios = {f"spinicl mala/none over {r['sampler']}": mala["chain_steps_per_s"]
              / r["chain_steps_per_s"] for r in bjs}
    for k, v in ratios.items():
        say(f"chain-steps/s of {k}: {v:.2f}x")
    threads = "one thread each" if args.threads == "1" else "all threads"
    targets = []
    for r in bjs:
        ratio = mala["chain_steps_per_s"] / r["chain_steps_per_s"]
        variant = r["sampler"].split("(", 1)[-1].rstrip(")")
        how = ("BlackJAX as used: the gradient of the log density by jax.grad"
               if "autodiff" in variant else
               "BlackJAX with a hand-written one-product gradient, beyond plain use")
        targets.append({"name": (f"spinicl MALA chain-steps/s >= 2 x BlackJAX MALA (D={D}, "
                                 f"R={CHAINS}, {threads}; {how}: {variant})"),
                        "value": ratio, "goal": GOAL_MALA_SPEED,
                        "met": bool(ratio >= GOAL_MALA_SPEED)})
    seconds = time.perf_counter() - t_start
    say(f"total {seconds:.0f} s")
    write_json("peers", {
        "skipped": None, "rows": rows, "targets": targets, "ratios": ratios,
        "seconds": seconds,
        "spinicl_seconds": t_spinicl, "spinicl_cores_used": spinicl_cores,
        "jax": _jax_info(args.threads),
        "settings": {"D": D, "N": N, "P": P, "lam": LAM, "beta": BETA, "chains": CHAINS,
                     "n_spins": tgt["n"], "budget_seconds": args.budget,
                     "threads": args.threads, "block": args.block,
                     "tune_steps": args.tune_steps, "warmup": args.warmup,
                     "hmc_steps": args.hmc_steps,
                     "slowest_eigenvalue": tgt["slowest_eigenvalue"]}})


if __name__ == "__main__":
    main()
