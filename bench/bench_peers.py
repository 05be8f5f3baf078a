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
* NumPyro NUTS (``numpyro.infer.NUTS`` on a ``potential_fn``, default settings: dual
  averaging toward acceptance 0.8, diagonal mass matrix, Stan windows, max tree depth
  10) with its own warm-up of ``--warmup`` steps per chain; the 64 chains vmapped (what
  ``chain_method="vectorized"`` does), driven through ``NUTS.sample`` inside
  ``lax.scan`` blocks so that compile, warm-up and measurement are timed apart.
  HMC and NUTS use the one-product gradient.

Every JAX row: float64 (``jax_enable_x64``), CPU backend, ``lax.scan`` blocks of
``--block`` steps compiled ahead of time (compile seconds reported apart, excluded from
every rate), tuning/warm-up untimed, then ¼ of ``--budget`` of throughput and ¾ of
recording (energy and slowest-mode projection of every chain after every step). τ_int
and ESS come from :func:`spinicl.analysis.diagnostics.summarize` (Sokal window, pooled over the
64 chains, ESS summed over chains) for every row, spinicl's and the peers' alike; ESS/s
= ESS per chain-step × chain-steps/s of the throughput phase.

Threads: by default (``--threads 1``) every library computes on one thread: Numba
(``NUMBA_NUM_THREADS=1``), BLAS (``OMP/OPENBLAS/MKL_NUM_THREADS=1`` and spinicl's
``blas_threads=1``) and XLA: ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` *and* the JAX CPU client built while the process is
pinned to one CPU (without that, XLA's compute pool keeps one thread per core and runs
NUTS on both), after which the affinity is restored so that the scheduler may use
whichever core is free. Each JAX row reports the cores it used (process CPU time / wall
time of its throughput phase). ``--threads free`` leaves every library at its default
(Numba and XLA use all cores; spinicl's BLAS stays at its default of one thread).

Needs jax, blackjax and numpyro (the optional extra ``bench``: ``pip install
-e '.[bench]'``); without them the script prints one line saying so and records
``skipped``.

Run: ``python bench/bench_peers.py`` (about 2 minutes on 2 cores; most of it is the
NUTS warm-up, whose first windows with a unit mass matrix need trees of up to 255 steps).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time
from typing import Any

from _common import say, write_json

D, N, P, LAM, BETA, CHAINS = 20, 100, 10_000, 0.01, 1e4, 64
PEERS = ("jax", "blackjax", "numpyro")
TARGET_ACCEPT_MALA = 0.574
#: A τ estimate is reliable when runs are this many τ long and its error is below 20 %.
RELIABLE_RUN_IN_TAU, RELIABLE_TAU_ERROR = 20.0, 0.2
#: Goal of the issue: spinicl MALA chain-steps/s over BlackJAX MALA's at D = 20, R = 64.
GOAL_MALA_SPEED = 2.0


def _pin_threads(mode: str) -> None:
    """Set the thread environment before numpy, Numba or JAX are imported."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if mode != "1":
        return
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                               "intra_op_parallelism_threads=1").strip()


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
            "slowest_eigenvalue": lam1, "lam_max": float(np.linalg.eigvalsh(A)[-1])}


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
class _Block:
    """One ahead-of-time compiled ``lax.scan`` of ``block`` steps of a vmapped kernel.

    ``step(key, carry) -> (carry, acceptance, gradient evaluations)`` (the last two per
    chain); the block returns the final carry and, after every step, the energy and
    slowest-mode projection of every chain, the mean acceptance and the mean and largest
    number of gradient evaluations over the chains (the same compiled function serves tuning, throughput
    and recording: recording adds one length-n dot product per chain to a step that
    costs an n × n matrix product, 0.2 %).
    """

    def __init__(self, jax, step, carry, key, position, energy, u, m_u, block: int):
        import numpy as np

        self.jax, self.np, self.block, self.key, self.carry = jax, np, block, key, carry
        uj = jax.numpy.asarray(u)

        def run(carry, key):
            def one(c, k):
                c, acc, grads = step(k, c)
                return c, (energy(c), position(c) @ uj - m_u, acc.mean(),
                           jax.numpy.stack([grads.mean(), grads.max()]))
            return jax.lax.scan(one, carry, jax.random.split(key, block))

        t0 = time.perf_counter()
        self.fn = jax.jit(run).lower(carry, key).compile()
        self.compile_seconds = time.perf_counter() - t0

    def __call__(self):
        self.key, k = self.jax.random.split(self.key)
        self.carry, out = self.fn(self.carry, k)
        return self.jax.block_until_ready(out)

    def advance(self, steps: int) -> None:
        """Run ``steps`` steps, rounded up to whole blocks (tuning, warm-up)."""
        for _ in range(max(1, -(-steps // self.block))):
            self()

    def throughput(self, seconds: float) -> tuple[float, float]:
        """Chain-steps/s and cores used (process CPU time / wall time) over ``seconds``."""
        self()
        steps, c0, t0 = 0, time.process_time(), time.perf_counter()
        while steps == 0 or time.perf_counter() - t0 < seconds:
            self()
            steps += self.block
        wall = time.perf_counter() - t0
        return CHAINS * steps / wall, (time.process_time() - c0) / wall

    def record(self, seconds: float, min_steps: int = 64):
        """Record for ``seconds``: E, Y (steps, chains), acceptance, grads (mean, max)."""
        np = self.np
        Es, Ys, As, Gs, t0 = [], [], [], [], time.perf_counter()
        while len(Es) * self.block < min_steps or time.perf_counter() - t0 < seconds:
            E, Y, acc, grads = self()
            Es.append(np.asarray(E))
            Ys.append(np.asarray(Y))
            As.append(np.asarray(acc))
            Gs.append(np.asarray(grads))
        G = np.concatenate(Gs)
        return (np.concatenate(Es), np.concatenate(Ys), float(np.mean(np.concatenate(As))),
                float(G[:, 0].mean()), float(G[:, 1].mean()))


def _peer_row(name: str, blk: _Block, budget: float, extra: dict) -> dict[str, Any]:
    rate, cores = blk.throughput(0.25 * budget)
    E, Y, acc, grads, grads_max = blk.record(0.75 * budget)
    st = _mixing_stats(E, Y)
    per = 1.0 / (CHAINS * st["recorded_steps"])
    row = {"sampler": name, "library": name.split()[0], "chain_steps_per_s": rate,
           "ess_per_s_energy": st["ess_energy"] * per * rate,
           "ess_per_s_slowest": st["ess_slowest"] * per * rate, "acceptance": acc,
           "grads_per_step": grads, "grads_per_step_max_over_chains": grads_max,
           "compile_seconds": blk.compile_seconds, "cores_used": cores, **st, **extra}
    say(f"  {name}: {rate:.4g} chain-steps/s, tau E {st['tau_int_energy']:.3g}, slow "
        f"{st['tau_int_slowest']:.3g}, accept {acc:.2f}, compile "
        f"{blk.compile_seconds:.1f} s, tuning {extra['tuning_seconds']:.1f} s, "
        f"{cores:.2f} cores")
    return row


def _init_jax(threads: str):
    """Import JAX, enable float64 and build the CPU client.

    With ``threads == "1"`` the client is built while this thread is pinned to one CPU, so
    that XLA sizes its compute pool to one thread (``intra_op_parallelism_threads=1``
    alone does not stop the pool from running NUTS's loops on every core); every thread's
    CPU affinity is then restored, so the scheduler may still move the work to whichever
    core is free.
    """
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if threads == "1" and cpus:
        os.sched_setaffinity(0, {min(cpus)})
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.block_until_ready(jax.numpy.ones(2) + 1)
    if threads == "1" and cpus:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass
    return jax


def _xla_compute_threads() -> int | None:
    """Threads of XLA's CPU compute pool (named ``tf_XLAEigen`` on Linux)."""
    names = []
    try:
        for t in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{t}/comm") as fh:
                names.append(fh.read().strip())
    except OSError:
        return None
    return sum(n.startswith("tf_XLAEigen") for n in names)


def run_peers(tgt: dict[str, Any], budget: float, block: int, tune_steps: int,
              warmup: int, hmc_steps: int, threads: str,
              peers: tuple[str, ...] = ("mala", "hmc", "nuts")) -> list[dict[str, Any]]:
    jax = _init_jax(threads)
    import blackjax
    import jax.numpy as jnp
    import numpy as np
    from numpyro.infer import NUTS

    A, h = jnp.asarray(tgt["A"]), jnp.asarray(tgt["h"])
    start = jnp.asarray(tgt["start"])
    u, m_u, n = tgt["u"], float(tgt["m"] @ tgt["u"]), tgt["n"]

    def energy_autodiff(w):
        return 0.5 * w @ (A @ w) - h @ w

    @jax.custom_jvp
    def energy_fused(w):
        return 0.5 * w @ (A @ w) - h @ w

    @energy_fused.defjvp
    def _energy_fused_jvp(primals, tangents):
        (w,), (dw,) = primals, tangents
        v = A @ w
        return 0.5 * w @ v - h @ w, (v - h) @ dw

    rows: list[dict[str, Any]] = []
    key = jax.random.key(2024)
    mark = [time.perf_counter()]

    def done(row: dict[str, Any]) -> None:
        """Append a row with the wall time of its section (compile, tuning, measuring)."""
        now = time.perf_counter()
        row["section_seconds"] = now - mark[0]
        mark[0] = now
        rows.append(row)

    # ---------------------------------------------------------------- BlackJAX MALA
    if "mala" in peers:
        mala_kernel = blackjax.mala.build_kernel()
        log_eps0 = math.log(1.36 * n ** (-1 / 3) / tgt["lam_max"] / BETA)  # spinicl's start
        for label, energy in (("autodiff gradient, 2 products/step", energy_autodiff),
                              ("custom_jvp gradient, 1 product/step", energy_fused)):
            def logdensity(w, energy=energy):
                return -BETA * energy(w)

            def mala_step(k, carry, ld=logdensity):
                s, log_eps, t, adapt = carry
                eps = jnp.exp(log_eps)
                s, info = jax.vmap(lambda kk, ss: mala_kernel(kk, ss, ld, eps))(
                    jax.random.split(k, CHAINS), s)
                acc = info.acceptance_rate
                # spinicl's rule: Robbins-Monro on log step toward 0.574, only while adapting
                log_eps = log_eps + adapt * (acc.mean() - TARGET_ACCEPT_MALA) / (t + 10.0) ** 0.6
                return (s, log_eps, t + adapt, adapt), acc, jnp.ones(CHAINS)

            states = jax.vmap(lambda w, ld=logdensity: blackjax.mala.init(w, ld))(start)
            key, k1 = jax.random.split(key)
            carry = (states, jnp.float64(log_eps0), jnp.float64(0.0), jnp.float64(1.0))
            blk = _Block(jax, mala_step, carry, k1, lambda c: c[0].position,
                         lambda c: -c[0].logdensity / BETA, u, m_u, block)
            t0 = time.perf_counter()
            blk.advance(tune_steps)
            s, log_eps, t, _ = blk.carry
            blk.carry = (s, log_eps, t, jnp.float64(0.0))          # freeze the step
            tune_s = time.perf_counter() - t0
            done(_peer_row(f"blackjax mala ({label})", blk, budget, {
                "step_size": math.exp(float(log_eps)) * BETA,
                "tuning": (f"{tune_steps} steps of Robbins-Monro on log step toward acceptance "
                           "0.574 (spinicl's rule), step then frozen"),
                "tuning_seconds": tune_s}))

    # ---------------------------------------------------------------- BlackJAX HMC
    if "hmc" in peers:
        def logdensity(w):
            return -BETA * energy_fused(w)

        hmc_kernel = blackjax.hmc.build_kernel()
        wa = blackjax.window_adaptation(blackjax.hmc, logdensity, num_integration_steps=hmc_steps,
                                        adaptation_info_fn=lambda *a: None)
        key, k1, k2 = jax.random.split(key, 3)
        t0 = time.perf_counter()
        (states, params), _ = jax.block_until_ready(jax.jit(jax.vmap(
            lambda k, w: wa.run(k, w, num_steps=warmup)))(jax.random.split(k1, CHAINS), start))
        tune_s = time.perf_counter() - t0
        eps, imm = params["step_size"], params["inverse_mass_matrix"]

        def hmc_step(k, s):
            s, info = jax.vmap(lambda kk, ss, e, mm: hmc_kernel(kk, ss, logdensity, e, mm,
                                                                 hmc_steps))(
                jax.random.split(k, CHAINS), s, eps, imm)
            return s, info.acceptance_rate, jnp.full(CHAINS, float(hmc_steps))

        blk = _Block(jax, hmc_step, states, k2, lambda s: s.position,
                     lambda s: -s.logdensity / BETA, u, m_u, block)
        done(_peer_row(f"blackjax hmc (L = {hmc_steps})", blk, budget, {
            "step_size": float(np.median(np.asarray(eps))),
            "tuning": (f"blackjax.window_adaptation per chain (vmapped), {warmup} steps: "
                       "dual averaging toward acceptance 0.8, diagonal inverse mass matrix; "
                       f"L = {hmc_steps} fixed"),
            "tuning_seconds": tune_s}))

    # ---------------------------------------------------------------- NumPyro NUTS
    if "nuts" in peers:
        kernel = NUTS(potential_fn=lambda w: BETA * energy_fused(w))
        key, k1, k2 = jax.random.split(key, 3)
        seed = int(jax.random.randint(k1, (), 0, 2**31 - 1))
        # batched keys: init vmaps NUTS over the chains (as chain_method="vectorized" does)
        state = kernel.init(jax.random.split(jax.random.PRNGKey(seed), CHAINS), warmup,
                            init_params=start)

        def nuts_step(_, s):
            s = kernel.sample(s, (), {})       # NUTS carries its own keys in the state
            return s, s.accept_prob, s.num_steps.astype(jnp.float64)

        blk = _Block(jax, nuts_step, state, k2, lambda s: s.z,
                     lambda s: s.potential_energy / BETA, u, m_u, block)
        t0 = time.perf_counter()
        blk.advance(warmup)          # NumPyro adapts while state.i < warmup, then freezes
        tune_s = time.perf_counter() - t0
        done(_peer_row("numpyro nuts", blk, budget, {
            "step_size": float(np.median(np.asarray(blk.carry.adapt_state.step_size))),
            "tuning": (f"NumPyro's own warm-up, {warmup} steps per chain: dual averaging "
                       "toward acceptance 0.8, diagonal inverse mass matrix (Stan windows)"),
            "tuning_seconds": tune_s}))
    return rows


# --------------------------------------------------------------------------- main
def _jax_info() -> dict[str, Any]:
    import jax

    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "x64": bool(jax.config.read("jax_enable_x64")),
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
            "xla_compute_threads": _xla_compute_threads()}


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
    missing = [p for p in PEERS if importlib.util.find_spec(p) is None]
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
        "jax": _jax_info(),
        "settings": {"D": D, "N": N, "P": P, "lam": LAM, "beta": BETA, "chains": CHAINS,
                     "n_spins": tgt["n"], "budget_seconds": args.budget,
                     "threads": args.threads, "block": args.block,
                     "tune_steps": args.tune_steps, "warmup": args.warmup,
                     "hmc_steps": args.hmc_steps,
                     "slowest_eigenvalue": tgt["slowest_eigenvalue"]}})


if __name__ == "__main__":
    main()
