"""Peers (optional): BlackJAX MALA and HMC and NumPyro NUTS on the same merged target.

Target: the merged model's Gaussian at D = 20, N = 100, P = 10⁴, λ = 0.01, β = 10⁴
(log density −βE(W) = −β[½WᵀAW − hᵀW] + const), 64 chains started from exact draws.
Reported side by side with spinicl's MALA on the same target: chain-steps/s and ESS/s of
the energy and of the slowest-mode projection (τ from :mod:`spinicl.diagnostics`, as in
``spinicl bench``).

Needs jax, blackjax and numpyro (not dependencies of spinicl); without them the script
prints one line saying so and records ``skipped`` — nothing is installed for you. This
code path was not exercised on the machine that produced RESULTS.md (none of the three
packages is installed there).

Run: ``python bench/bench_peers.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
from _common import say, write_json

D, N, P, LAM, BETA, CHAINS = 20, 100, 10_000, 0.01, 1e4, 64
PEERS = ("jax", "blackjax", "numpyro")


def _target():
    from spinicl.bench import _exact_start, slowest_active_mode
    from spinicl.config import TaskConfig
    from spinicl.models import build_model
    from spinicl.prompts import make_task

    model = build_model(make_task(TaskConfig(D=D, N=N, P=P, lam=LAM)), representation="dense")
    A, h = model.precision(), model.field
    _, u = slowest_active_mode(model)
    m, start = _exact_start(model, BETA, CHAINS, seed=0)
    return model, A, h, u, m, start


def _row(name: str, W: np.ndarray, A: np.ndarray, h: np.ndarray, u: np.ndarray,
         seconds: float, steps: int) -> dict:
    """W: (steps, chains, n) positions after each step."""
    from spinicl.diagnostics import summarize

    E = 0.5 * np.einsum("tci,ij,tcj->tc", W, A, W) - W @ h
    se, ss = summarize(E), summarize(W @ u)
    rate = CHAINS * steps / seconds
    per = 1.0 / (CHAINS * steps)
    return {"sampler": name, "chain_steps_per_s": rate, "tau_int_energy": se["tau_int"],
            "tau_int_slowest": ss["tau_int"], "ess_per_s_energy": se["ess"] * per * rate,
            "ess_per_s_slowest": ss["ess"] * per * rate}


def run_peers(steps: int) -> list[dict]:  # pragma: no cover - needs the optional extras
    import blackjax
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    model, A, h, u, _, start = _target()
    Aj, hj = jnp.asarray(A), jnp.asarray(h)

    def logdensity(w):
        return -BETA * (0.5 * w @ Aj @ w - hj @ w)

    rows = []
    eta = 1.36 * model.n_spins ** (-1 / 3) / float(np.linalg.eigvalsh(A)[-1]) / BETA
    for name, alg in (("blackjax mala", blackjax.mala(logdensity, step_size=eta)),
                      ("blackjax hmc", blackjax.hmc(
                          logdensity, step_size=np.sqrt(eta), num_integration_steps=10,
                          inverse_mass_matrix=jnp.ones(model.n_spins)))):
        states = jax.vmap(alg.init)(jnp.asarray(start))

        @jax.jit
        def run(key, states, alg=alg):
            def one(states, k):
                keys = jax.random.split(k, CHAINS)
                states, _ = jax.vmap(alg.step)(keys, states)
                return states, states.position
            return jax.lax.scan(one, states, jax.random.split(key, steps))

        run(jax.random.key(0), states)[1].block_until_ready()  # compile
        t0 = time.perf_counter()
        _, W = run(jax.random.key(1), states)
        W = np.asarray(W.block_until_ready())
        rows.append(_row(name, W, A, h, u, time.perf_counter() - t0, steps))

    def potential(w):
        return -logdensity(w)

    mcmc = MCMC(NUTS(potential_fn=potential), num_warmup=200, num_samples=steps,
                num_chains=CHAINS, chain_method="vectorized", progress_bar=False)
    t0 = time.perf_counter()
    mcmc.run(jax.random.key(2), init_params=jnp.asarray(start))
    W = np.asarray(mcmc.get_samples(group_by_chain=True)).transpose(1, 0, 2)
    rows.append(_row("numpyro nuts (incl. warm-up and compile)", W, A, h, u,
                     time.perf_counter() - t0, steps))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    missing = [p for p in PEERS if importlib.util.find_spec(p) is None]
    if missing:
        msg = (f"peers skipped: {', '.join(missing)} not installed (optional; pip install "
               "jax blackjax numpyro to compare)")
        say(msg)
        write_json("peers", {"skipped": msg, "rows": []})
        return
    rows = run_peers(args.steps)
    for r in rows:
        say(f"{r['sampler']:40s} {r['chain_steps_per_s']:10.4g} chain-steps/s, ESS/s energy "
            f"{r['ess_per_s_energy']:.4g}, slowest {r['ess_per_s_slowest']:.4g}")
    write_json("peers", {"skipped": None, "rows": rows,
                         "settings": {"D": D, "N": N, "P": P, "lam": LAM, "beta": BETA,
                                      "chains": CHAINS, "steps": args.steps}})


if __name__ == "__main__":
    main()
