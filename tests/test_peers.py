"""Peer samplers (BlackJAX MALA, BlackJAX HMC, NumPyro NUTS) on spinicl models.

* The JAX energy and its gradient (hand-written one-product and autodiff) equal the
  model's ``energy_and_grad`` for the merged dense, merged matrix-free and factored models.
* Every peer samples the merged Gaussian correctly: from exact draws, the stationary
  means of the energy and of every spin agree with the closed forms (docs/model.md §1.4)
  within 4.5 standard errors from the measured τ_int.
* Relaxation mode stops when the reference is reached, with increasing times; it runs
  to the budget when the reference is out of reach.
* Missing packages are named (import blocked through ``sys.modules``), bad arguments
  raise :class:`ConfigError`, ``import spinicl.peers`` does not import JAX, and
  ``threads=1`` leaves XLA one compute thread when it builds the client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from spinicl import linalg
from spinicl.analysis.diagnostics import summarize
from spinicl.config import ConfigError, TaskConfig
from spinicl.models import build_model
from spinicl.peers import (
    PEER_NAMES,
    PeerUnavailable,
    jax_energy,
    missing_message,
    missing_packages,
    run_peer,
)
from spinicl.prompts import make_task

BETA = 50.0
CHAINS = 8
Z_MAX = 4.5


@pytest.fixture(scope="module")
def task():
    return make_task(TaskConfig(D=2, N=10, P=200, lam=0.1, seed=3, test_prompts=10),
                     keep_test_context=False)


@pytest.fixture(scope="module")
def merged(task):
    return build_model(task, "merged", representation="dense")


def _exact_draws(model, beta: float, chains: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((chains, model.n_spins))
    return linalg.gaussian_draw(model.ridge_mean(), model.cholesky(required=True), z, beta)


# --------------------------------------------------------------------------- energy
@pytest.mark.parametrize("kind,representation", [("merged", "dense"),
                                                 ("merged", "matrix-free"),
                                                 ("factored", "dense"),
                                                 ("factored", "matrix-free")])
@pytest.mark.parametrize("gradient", ["one-product", "autodiff"])
def test_jax_energy_equals_model(task, kind, representation, gradient):
    model = build_model(task, kind, representation=representation, dk=2)
    X = np.random.default_rng(7).standard_normal((6, model.n_spins))
    e, g = model.energy_and_grad(X)
    energy = jax_energy(model, gradient=gradient, chains=3)
    with jax.enable_x64(True):
        ej = np.asarray(jax.vmap(energy)(X))
        gj = np.asarray(jax.vmap(jax.grad(energy))(X))
    assert ej.dtype == np.float64 and gj.dtype == np.float64
    # rounding of sums of O(n) terms of size |E|: 1e-12 relative leaves a 1e4 margin
    np.testing.assert_allclose(ej, e, rtol=1e-12, atol=0)
    np.testing.assert_allclose(gj, g, rtol=0, atol=1e-12 * np.abs(g).max())


def test_matrix_free_energy_blocks_over_prompts(task):
    """With many chains the prompts are split into blocks (zero-padded): same energy."""
    from spinicl.peers import energy_data

    model = build_model(task, "merged", representation="matrix-free")
    spec, arrays = energy_data(model, chains=20_000)
    assert spec.blocks > 1 and "gram" not in arrays
    assert arrays["C"].shape[:2] == (spec.blocks, -(-task.config.P // spec.blocks))
    X = np.random.default_rng(8).standard_normal((4, model.n_spins))
    energy = jax_energy(model, chains=20_000)
    with jax.enable_x64(True):
        ej = np.asarray(jax.vmap(energy)(X))
        gj = np.asarray(jax.vmap(jax.grad(energy))(X))
    e, g = model.energy_and_grad(X)
    np.testing.assert_allclose(ej, e, rtol=1e-12, atol=0)
    np.testing.assert_allclose(gj, g, rtol=0, atol=1e-12 * np.abs(g).max())


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", PEER_NAMES)
def test_stationary_means_match_the_exact_gaussian(merged, name):
    model = merged
    n = model.n_spins
    start = _exact_draws(model, BETA, CHAINS, seed=11)

    def record(W):
        return np.concatenate([model.energy(W)[:, None], W], axis=1)

    # HMC with L = 3: at the default L = 8 some chains of this 9-spin Gaussian sit near a
    # resonance of the trajectory (τ_int in the thousands of steps), too slow for a 1 s
    # run to estimate its own error; the adapter is the same for every L
    extra = {"leapfrog_steps": 3} if name == "blackjax-hmc" else {}
    out = run_peer(name, model, BETA, start, seed=5, budget_seconds=1.0, record=record,
                   **extra)
    T = out["trace"].shape[0]
    assert out["trace"].shape == (T, CHAINS, n + 1) and T >= 32
    assert out["times"].shape == (T,) and np.all(np.diff(out["times"]) > 0)
    assert out["mode"] == "stationary" and out["seed"] == 5 and out["thin"] == 1
    assert out["sampler"] == name and "jax" in out["library"]
    assert out["chain_steps_per_s"] > 0 and out["compile_seconds"] > 0
    assert 0.3 < out["acceptance"] <= 1.0
    exact = np.concatenate([[model.ground_energy() + n / (2 * BETA)], model.ridge_mean()])
    z = []
    for j in range(n + 1):
        s = summarize(out["trace"][:, :, j])
        z.append((s["mean"] - exact[j]) / s["stderr"])
    assert np.max(np.abs(z)) < Z_MAX, (name, np.round(z, 2))


def test_relaxation_stops_at_the_reference(task):
    """Factored model from a random start: stops once the lowest energy reaches the
    reference (here the start's energy halved), not before, with increasing times."""
    model = build_model(task, "factored", dk=2, representation="dense")
    rng = np.random.default_rng(12)
    start = rng.standard_normal((4, model.n_spins)) / np.sqrt(model.D + 1)
    e_start = model.energy(start)
    ground = model.ground_state().energy
    reference = ground + 0.5 * (e_start.min() - ground)

    def record(W):
        return model.energy(W)[:, None]

    out = run_peer("blackjax-mala", model, 200.0, start, seed=2, budget_seconds=20.0,
                   record=record, mode="relaxation", reference_energy=reference)
    E = out["trace"][:, :, 0]
    assert out["reached"] and out["time_to_reference"] == out["times"][-1]
    assert E[-1].min() <= reference < E[:-1].min(axis=1).min()
    np.testing.assert_array_equal(out["trace"][0], record(start))
    assert out["times"][0] == 0 and np.all(np.diff(out["times"]) > 0)
    assert out["times"][-1] < 20.0 and out["steps"] >= 1


def test_relaxation_runs_to_the_budget_when_unreachable(merged):
    start = _exact_draws(merged, BETA, 4, seed=13)
    out = run_peer("blackjax-mala", merged, BETA, start, seed=1, budget_seconds=0.3,
                   record=lambda W: merged.energy(W)[:, None], mode="relaxation",
                   reference_energy=merged.ground_energy() - 1.0)
    assert not out["reached"] and out["time_to_reference"] is None
    assert out["times"][-1] >= 0.3 and np.all(np.diff(out["times"]) > 0)
    assert out["trace"].shape == (out["times"].size, 4, 1)


# --------------------------------------------------------------------------- packages
def test_missing_packages_and_message(monkeypatch):
    for name in PEER_NAMES:
        assert missing_packages(name) == [] and missing_message(name) == ""
    monkeypatch.setitem(sys.modules, "blackjax", None)
    assert missing_packages("blackjax-mala") == ["blackjax"]
    assert missing_packages("blackjax-hmc") == ["blackjax"]
    assert missing_packages("numpyro-nuts") == []
    assert missing_message("blackjax-hmc") == (
        "peer blackjax-hmc skipped: needs blackjax (pip install -e '.[bench]')")
    monkeypatch.setitem(sys.modules, "jax", None)
    assert missing_packages("numpyro-nuts") == ["jax"]
    assert missing_message("blackjax-mala") == (
        "peer blackjax-mala skipped: needs jax, blackjax (pip install -e '.[bench]')")


def test_run_peer_refuses_when_a_package_is_missing(monkeypatch, merged):
    monkeypatch.setitem(sys.modules, "numpyro", None)
    with pytest.raises(PeerUnavailable, match="needs numpyro"):
        run_peer("numpyro-nuts", merged, BETA, np.zeros((2, merged.n_spins)), seed=0,
                 budget_seconds=1.0, record=lambda W: W[:, :1])


@pytest.mark.parametrize("kwargs,param", [
    ({"name": "stan-nuts"}, "peers"),
    ({"mode": "annealing"}, "mode"),
    ({"budget_seconds": 0.0}, "budget_seconds"),
    ({"seed": -1}, "seed"),
    ({"beta": -2.0}, "beta"),
    ({"start": np.zeros((2, 5))}, "start"),
    ({"mode": "relaxation"}, "reference_energy"),
    ({"threads": 0}, "threads"),
    ({"gradient": "numeric"}, "gradient"),
])
def test_bad_arguments(merged, kwargs, param):
    args = {"name": "blackjax-mala", "model": merged, "beta": BETA,
            "start": np.zeros((2, merged.n_spins)), "seed": 0, "budget_seconds": 1.0,
            "record": lambda W: W[:, :1], **kwargs}
    with pytest.raises(ConfigError) as err:
        run_peer(**args)
    assert err.value.param == param


def test_unknown_peer_name():
    with pytest.raises(ConfigError) as err:
        missing_packages("stan")
    assert err.value.param == "peers"
    assert all(name in str(err.value) for name in PEER_NAMES)


# --------------------------------------------------------------------------- processes
def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_importing_spinicl_peers_does_not_import_jax():
    out = _python("import sys, spinicl, spinicl.peers as p\n"
                  "p.missing_packages('blackjax-mala'); p.missing_packages('numpyro-nuts')\n"
                  "p.library_versions('numpyro-nuts')\n"
                  "print(sorted(m for m in ('jax', 'blackjax', 'numpyro') if m in sys.modules))")
    assert out.strip() == "[]"


def test_one_thread_pins_xla_when_it_builds_the_client():
    code = """
import json, os, numpy as np
from spinicl.config import TaskConfig
from spinicl.models import build_model
from spinicl.prompts import make_task
from spinicl.peers import run_peer
os.environ.pop("XLA_FLAGS", None)
m = build_model(make_task(TaskConfig(D=2, N=10, P=50, lam=0.1, test_prompts=10)),
                representation="dense")
out = run_peer("blackjax-mala", m, 50.0, np.tile(m.ridge_mean(), (2, 1)), seed=0,
               budget_seconds=0.2, record=lambda W: W[:, :1], tuning_steps=20)
print(json.dumps({"pool": out["xla_compute_threads"], "notes": out["notes"],
                  "flags": os.environ.get("XLA_FLAGS"), "cpus": len(os.sched_getaffinity(0))}))
"""
    res = json.loads(_python(code).strip().splitlines()[-1])
    assert res["pool"] == 1 and res["notes"] == ""
    assert res["flags"] is None                  # the flags are restored after the client
    assert res["cpus"] == len(os.sched_getaffinity(0))   # affinity restored
