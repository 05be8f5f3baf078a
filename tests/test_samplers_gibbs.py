"""Exact block heat bath of the factored model (``--sampler gibbs``).

The conditional W_q | W_k (and W_k | W_q) against the model's own energy, the draws
against that closed-form conditional (z-scores of mean and covariance), the descent to
the nuclear-norm ground state, agreement with MALA + replica exchange on energy, test MSE
and overlaps, bit-identical resume, and the registry/CLI plumbing.
"""

from __future__ import annotations

import subprocess
import sys

import numba
import numpy as np
import pytest

from spinicl import ConfigError, make_task
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model, mse
from spinicl.samplers import Ladder, Sampler, gibbs, make_sampler, sample_trace
from spinicl.samplers.gibbs import conditional
from spinicl.theory.gaussian import factored_ground_state

Z = 4.5  # standard errors


@pytest.fixture(scope="module")
def task():
    return make_task(D=3, N=10, P=200, lam=0.05, seed=4)


@pytest.mark.parametrize("representation", ["dense", "matrix-free"])
@pytest.mark.parametrize("block", ["q", "k"])
def test_conditional_is_the_energy_in_that_block(task, representation, block):
    """E(θ with block x) − E(θ with block μ) = ½(x−μ)ᵀK(x−μ) exactly, and ∇E(μ) = 0."""
    model = build_model(task, "factored", representation=representation, dk=2)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(model.n_spins)
    mu, K = conditional(model, theta, block)
    m = mu.size
    off = 0 if block == "q" else m

    def put(x):
        t = theta.copy()
        t[off:off + m] = x
        return t

    e_mu = model.energy(put(mu)[None])[0]
    for _ in range(3):
        x = mu + rng.standard_normal(m)
        e = model.energy(put(x)[None])[0]
        assert abs(e - e_mu - 0.5 * (x - mu) @ K @ (x - mu)) < 1e-10 * abs(e)
    g = model.grad(put(mu)[None])[0, off:off + m]
    assert np.abs(g).max() < 1e-10
    # finite differences of the gradient give K column by column
    h = 1e-5
    for i in (0, m // 2, m - 1):
        dx = np.zeros(m)
        dx[i] = h
        col = (model.grad(put(mu + dx)[None])[0] - model.grad(put(mu - dx)[None])[0])
        np.testing.assert_allclose(col[off:off + m] / (2 * h), K[:, i], atol=1e-7)


@pytest.mark.parametrize("dk,alpha", [(2, 0.0), (None, 0.0), (2, -0.5), (None, -0.7)])
def test_draws_match_the_conditional(task, dk, alpha):
    """One sweep from a common θ: W_q ~ N(μ + α(x − μ), (1 − α²)(βK)⁻¹) given the
    start's W_k, x the start's W_q (α = 0: the heat bath; z-scores of every mean and of
    the whitened covariance); W_k whitened the same way by its own conditional given the
    new W_q is N(0, I); the energy the sweep reports is the model's."""
    model = build_model(task, "factored", representation="dense", dk=dk)
    beta, copies = 50.0, 4000
    theta = model.reference() + 0.3 * np.random.default_rng(2).standard_normal(
        model.n_spins)
    s = make_sampler(model, "gibbs", ladder=Ladder.from_betas([beta]), copies=copies,
                     seed=3, overrelax=alpha)
    st, _ = s.run(s.init(theta), 1)
    X = st.W
    mu, K = conditional(model, theta, "q")
    m = mu.size
    centre = mu + alpha * (theta[:m] - mu)
    width = np.sqrt(1.0 - alpha ** 2)
    L = np.linalg.cholesky(K)
    U = np.sqrt(beta) * (X[:, :m] - centre) @ L / width   # rows ~ N(0, I)
    zmean = U.mean(axis=0) * np.sqrt(copies)
    assert np.abs(zmean).max() < Z, np.abs(zmean).max()
    C = U.T @ U / copies                                # ≈ I, entries ± 1/√copies
    off = C - np.eye(m)
    se = np.where(np.eye(m, dtype=bool), np.sqrt(2.0 / copies), np.sqrt(1.0 / copies))
    assert np.abs(off / se).max() < Z + 1.0, np.abs(off / se).max()   # m² tests
    # the covariance in original coordinates, a few entries, against (1 − α²)(βK)⁻¹
    cov = (1.0 - alpha ** 2) * np.linalg.inv(beta * K)
    dX = X[:, :m] - centre
    for i, j in [(0, 0), (0, 1), (m - 1, m - 1), (1, m // 2)]:
        prod = dX[:, i] * dX[:, j]
        zs = (prod.mean() - cov[i, j]) / (prod.std() / np.sqrt(copies))
        assert abs(zs) < Z, (i, j, zs)
    # W_k given the new W_q, slot by slot (whitened residuals pooled)
    W = []
    for r in range(0, copies, 40):
        mu_k, K_k = conditional(model, X[r], "k")
        c_k = mu_k + alpha * (theta[m:] - mu_k)
        W.append(np.sqrt(beta) * (X[r, m:] - c_k) @ np.linalg.cholesky(K_k) / width)
    W = np.concatenate(W)
    assert abs(W.mean()) * np.sqrt(W.size) < Z
    assert abs(W.var() - 1.0) / np.sqrt(2.0 / W.size) < Z
    np.testing.assert_allclose(st.energy, model.energy(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [-0.5, -0.9])
def test_overrelaxed_draw_keeps_the_conditional(task, alpha):
    """Invariance: W_q drawn from its exact conditional given a common W_k stays
    N(μ, (βK)⁻¹) after an overrelaxed half-step (z-scores of the whitened mean and
    covariance), and the pairs (x, x') have the overrelaxed correlation α."""
    model = build_model(task, "factored", representation="dense", dk=2)
    beta, copies = 50.0, 4000
    theta = model.reference() + 0.3 * np.random.default_rng(5).standard_normal(
        model.n_spins)
    mu, K = conditional(model, theta, "q")
    m = mu.size
    L = np.linalg.cholesky(K)
    start = np.repeat(theta[None], copies, axis=0)
    z0 = np.random.default_rng(6).standard_normal((copies, m))
    start[:, :m] = mu + np.linalg.solve(L.T, z0.T).T / np.sqrt(beta)
    s = make_sampler(model, "gibbs", ladder=Ladder.from_betas([beta]), copies=copies,
                     seed=7, overrelax=alpha)
    st, _ = s.run(s.init(start), 1)
    U = np.sqrt(beta) * (st.W[:, :m] - mu) @ L              # ~ N(0, I) if invariant
    assert np.abs(U.mean(axis=0) * np.sqrt(copies)).max() < Z
    C = U.T @ U / copies
    se = np.where(np.eye(m, dtype=bool), np.sqrt(2.0 / copies), np.sqrt(1.0 / copies))
    assert np.abs((C - np.eye(m)) / se).max() < Z + 1.0
    # lag-one correlation of the whitened coordinates: ⟨U z₀⟩ = α, and U z₀ =
    # α z₀² + √(1 − α²) ξ z₀ has variance 2α² + (1 − α²) = 1 + α²
    rho = np.mean(U * z0, axis=0)
    assert np.abs((rho - alpha) / np.sqrt((1.0 + alpha ** 2) / copies)).max() < Z + 1.0


def test_low_temperature_descends_to_the_ground_state(task):
    model = build_model(task, "factored", representation="dense")  # dk = D+1
    gs = factored_ground_state(model)
    beta = 1e5
    s = make_sampler(model, "gibbs", ladder=Ladder.from_betas([beta]), copies=4, seed=6)
    start = np.random.default_rng(0).standard_normal((4, model.n_spins))
    state = s.init(start)
    e_start = float(s.energies(state).min())
    state, _ = s.run(state, 300)
    e = s.energies(state)[0]
    assert e_start > gs.energy + 0.1
    # thermal excess ≈ n_active/(2β) ≈ 3e-4 in equilibrium
    assert np.all(e - gs.energy < 5e-3), (e, gs.energy)
    assert np.all(e - gs.energy > -1e-9)
    W = s.effective_weights(state)[0]
    dist = np.linalg.norm(W - gs.W[None], axis=1) / np.linalg.norm(gs.W)
    assert np.all(dist < 0.05), dist


def _observables(model, task, tr, k):
    """Energy, test MSE, self-overlap Q of W and overlap q of copies 0, 1 at rung k."""
    pos = tr.positions[:, k]                          # (records, copies, n)
    n_rec, cp, _ = pos.shape
    W = model.effective_weights(pos.reshape(n_rec * cp, -1)).reshape(n_rec, cp, -1)
    n = W.shape[-1]
    test = mse(W.reshape(n_rec * cp, -1), task.test_novel).reshape(n_rec, cp)
    Q = np.einsum("rci,rci->rc", W, W) / n
    q = np.einsum("ri,ri->r", W[:, 0], W[:, 1]) / n
    return {"energy": tr.energies[:, k], "test_mse": test, "self_overlap": Q,
            "overlap": q}


def test_agrees_with_mala_and_replica_exchange(task):
    model = build_model(task, "factored", representation="dense", dk=2)
    beta = 300.0
    ladder = Ladder.from_betas([1000.0, 550.0, beta, 170.0, 100.0])
    k = int(np.flatnonzero(ladder.betas == beta)[0])
    g = make_sampler(model, "gibbs", ladder=ladder, copies=4, swap_every=2, seed=1)
    st, _ = g.run(g.init(), 200)
    st, tr = sample_trace(g, st, 1500)
    assert np.all(g.report(st)["swap_acceptance"] > 0.05)
    assert np.all(tr.accept == 1.0)
    obs_g = _observables(model, task, tr, k)

    ma = make_sampler(model, "mala", ladder=ladder, copies=4, swap_every=2, seed=2)
    st, _ = ma.run(ma.init(), 3000, burn_in=True)
    st, tr = sample_trace(ma, st, 2000, every=5)
    obs_m = _observables(model, task, tr, k)
    for name in obs_g:
        a, b = summarize(obs_g[name]), summarize(obs_m[name])
        assert a["ess"] > 50 and b["ess"] > 50, (name, a["ess"], b["ess"])
        err = np.hypot(a["stderr"], b["stderr"])
        assert abs(a["mean"] - b["mean"]) < Z * err, (name, a, b)


@pytest.mark.parametrize("split", [1, 17, 40])
def test_resume_bit_identical_and_thread_independent(task, split):
    model = build_model(task, "factored", representation="dense", dk=3)

    def run(resume: bool, threads: int | None):
        s = make_sampler(model, "gibbs", ladder=Ladder.geometric(1e-2, 2e-2, 3),
                         copies=2, swap_every=4, adapt_ladder=True, seed=5,
                         threads=threads)
        st, _ = s.run(s.init(), split, burn_in=True)
        if resume:
            st = Sampler.state_from_dict({k: np.array(v)
                                          for k, v in s.state_to_dict(st).items()})
        st, _ = s.run(st, 41 - split)
        return st

    a, b, c = run(False, 1), run(True, 1), run(False, 2)
    for f in a._fields:
        np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f)))
        np.testing.assert_array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(c, f)))
    assert int(a.step) == 41 and a.momentum.shape == (a.W.shape[0], 0)
    assert int(a.swap_accepted.sum()) > 0


def test_parallel_and_serial_draws_are_bit_identical(task):
    """The two routes of a half-step's draws (serial with one scratch for all slots, the
    parallel loop with one per slot, at 1 and 2 threads) give the same bits."""
    model = build_model(task, "factored", representation="dense", dk=4)
    d1, dk = model.D + 1, model.dk
    m, R = dk * d1, 12
    data = gibbs._dense(model)
    sm, sv = gibbs.conditional_data(data.gram, data.field, d1)
    rng = np.random.default_rng(7)
    X0 = 0.5 * rng.standard_normal((R, 2 * m))
    Z = rng.standard_normal((R, m))
    betas = np.array([1e3, 1e2, 1e1])
    Y = np.ascontiguousarray(X0[:, m:].reshape(R * dk, d1))
    T = Y @ sm[:d1]
    npair = d1 * (d1 + 1) // 2
    nbuf = m * m + 4 * m + dk * npair
    args = (T, Y, 0, sv[:d1 * d1], model.lam, data.e0, dk, d1, betas, 4, -0.5)
    X, E = X0.copy(), np.empty(R)
    buf = np.empty(nbuf)
    for r in range(R):
        gibbs._draw_replica(r, r * dk, X, Z, E, *args, buf)
    prev = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            Xp, Ep = X0.copy(), np.empty(R)
            gibbs._draw_parallel(0, R, Xp, Z, Ep, *args, nbuf)
            np.testing.assert_array_equal(Xp, X)
            np.testing.assert_array_equal(Ep, E)
    finally:
        numba.set_num_threads(prev)
    assert np.all(np.isfinite(E)) and not np.array_equal(X[:, :m], X0[:, :m])
    np.testing.assert_allclose(E, model.energy(X), rtol=1e-9)


def test_registry_rules(task):
    merged = build_model(task, "merged", representation="dense")
    with pytest.raises(ConfigError) as e:
        make_sampler(merged, "gibbs")
    assert e.value.param == "model"
    fact = build_model(task, "factored", representation="dense")
    with pytest.raises(ConfigError) as e:
        make_sampler(fact, "gibbs", precondition="diag")
    assert e.value.param == "precondition"
    from spinicl import registry

    with pytest.raises(ConfigError) as e:
        registry.check("merged", "gibbs", "none")
    assert e.value.param == "sampler"
    registry.check("factored", "gibbs", "none", "matrix-free")
    for bad in (1.0, -1.0, float("nan")):
        with pytest.raises(ConfigError) as e:
            make_sampler(fact, "gibbs", overrelax=bad)
        assert e.value.param == "overrelax"


def test_cli_sample_factored_gibbs(tmp_path):
    out = tmp_path / "r.h5"
    args = ["sample", "--D", "2", "--N", "8", "--P", "60", "--lam", "0.05",
            "--test-prompts", "50", "--temps", "1e-3:1e-1:3", "--copies", "2",
            "--steps", "40", "--burn-in", "10", "--record-every", "5",
            "--model", "factored", "--dk", "2", "--sampler", "gibbs", "--out", str(out)]
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", *args, "--overrelax", "1.5"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 2 and "overrelax" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", *args, "--overrelax", "-0.3"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", "info", str(out)],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "gibbs" in r.stdout
