"""Local samplers against the exact Gaussian answers (docs/model.md §1.4).

Every tolerance is Z standard errors of the estimate, the error coming from the
effective sample size measured on the chain itself (spinicl.analysis.diagnostics).
"""

from __future__ import annotations

import numpy as np
import pytest

from spinicl import make_task
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model
from spinicl.samplers import Ladder, make_sampler, sample_trace
from spinicl.theory.gaussian import gaussian_theory

Z = 4.5  # standard errors


@pytest.fixture(scope="module")
def gauss():
    task = make_task(D=3, N=10, P=200, lam=0.1, seed=3)
    model = build_model(task, "merged", representation="dense")
    return model, gaussian_theory(model, task)


def assert_close(series: np.ndarray, exact: float, what: str, z: float = Z) -> None:
    """|mean − exact| ≤ z standard errors (series (n,) or (n, chains))."""
    s = summarize(series)
    assert s["ess"] > 50, f"{what}: too few effective samples ({s['ess']:.0f})"
    assert abs(s["mean"] - exact) <= z * s["stderr"] + 1e-12 * abs(exact), (
        f"{what}: {s['mean']:.6g} vs exact {exact:.6g} (stderr {s['stderr']:.3g}, "
        f"ESS {s['ess']:.0f})")


def check_gaussian_moments(tr, theory, betas, spins=(0, 5, 10)) -> None:
    """Mean of every spin, variance of a few, ⟨E⟩, ⟨Q⟩, ⟨q⟩ per rung."""
    pos, en = tr.positions, tr.energies
    n = pos.shape[-1]
    m = theory.mean
    for k, beta in enumerate(betas):
        x = pos[:, k]                       # (n_rec, copies, n)
        for i in range(n):
            assert_close(x[:, :, i], m[i], f"mean of spin {i} at beta={beta:g}")
        var = theory.marginal_variances(beta)
        for i in spins:
            assert_close((x[:, :, i] - m[i]) ** 2, var[i], f"var of spin {i} at beta={beta:g}")
        assert_close(en[:, k], theory.energy_mean(beta), f"<E> at beta={beta:g}")
        Q = np.einsum("rci,rci->rc", x, x) / n
        assert_close(Q, theory.self_overlap_mean(beta), f"<Q> at beta={beta:g}")
        q = np.einsum("ri,ri->r", x[:, 0], x[:, 1]) / n
        assert_close(q, theory.overlap_mean(), f"<q> at beta={beta:g}")


@pytest.mark.parametrize("kind", ["mala", "baoab"])
def test_exact_moments_with_replica_exchange(gauss, kind):
    model, theory = gauss
    ladder = Ladder.from_betas([400.0, 200.0, 100.0, 50.0])
    s = make_sampler(model, kind, ladder=ladder, copies=4, seed=11, swap_every=5)
    state = s.init()
    state, _ = s.run(state, 2000, burn_in=True)
    state, tr = sample_trace(s, state, 3000, every=5)
    check_gaussian_moments(tr, theory, ladder.betas)
    rep = s.report(state)
    assert np.all(rep["swap_acceptance"] > 0.1)
    if kind == "mala":
        acc = tr.accept.mean(axis=(0, 2))
        assert np.all(np.abs(acc - 0.574) < 0.1), acc


@pytest.mark.parametrize("precondition", ["diag", "dense"])
def test_preconditioned_mala_and_baoab(gauss, precondition):
    model, theory = gauss
    beta = 300.0
    for kind in ("mala", "baoab"):
        s = make_sampler(model, kind, ladder=Ladder.from_betas([beta]), copies=4, seed=5,
                         precondition=precondition)
        state, _ = s.run(s.init(), 1000, burn_in=True)
        state, tr = sample_trace(s, state, 2000, every=3)
        x = tr.positions[:, 0]
        for i in range(model.n_spins):
            assert_close(x[:, :, i], theory.mean[i], f"{kind}/{precondition} mean {i}")
        assert_close(tr.energies[:, 0], theory.energy_mean(beta), f"{kind}/{precondition} <E>")


def eigen_variances(tr, theory, k=0):
    """Samples projected on the eigenvectors of A: (n_rec, copies, n) of (u·(W − m))²."""
    vals, vecs = np.linalg.eigh(theory.precision())
    y = (tr.positions[:, k] - theory.mean) @ vecs
    return vals, y


def test_ula_biased_covariance_and_shrinking_bias(gauss):
    model, theory = gauss
    beta = 200.0
    vals = np.linalg.eigvalsh(theory.precision())
    bound = 2.0 / vals[-1]
    results = {}
    for frac in (0.5, 0.125):
        eta = frac * bound
        s = make_sampler(model, "ula", ladder=Ladder.from_betas([beta]), copies=8, seed=2,
                         step=eta)
        state, _ = s.run(s.init(), 500)
        state, tr = sample_trace(s, state, 3000, every=4)
        a, y = eigen_variances(tr, theory)
        ula = np.diag(theory.ula_covariance(beta, eta))
        cov_ula_eig = 1.0 / (beta * a * (1.0 - 0.5 * eta * a))
        # theory.ula_covariance in the eigenbasis is diagonal with these entries
        vecs = np.linalg.eigh(theory.precision())[1]
        np.testing.assert_allclose(
            np.einsum("ij,jk,ki->i", vecs.T, theory.ula_covariance(beta, eta), vecs),
            cov_ula_eig, rtol=1e-8)
        assert ula.shape == (model.n_spins,)
        for i in range(model.n_spins):
            assert_close(y[:, :, i] ** 2, cov_ula_eig[i], f"ULA eta={eta:.3g} mode {i}")
        top = summarize(y[:, :, -1] ** 2)
        results[frac] = (top["mean"] * beta * a[-1] - 1.0, top["stderr"] * beta * a[-1])
    # bias of the stiffest mode: (1 − ηa/2)^-1 − 1 = 1 at frac 0.5, 1/7 at 0.125
    big, small = results[0.5], results[0.125]
    assert big[0] > 0.5 and big[0] - Z * big[1] > 0
    assert small[0] < big[0] - Z * np.hypot(big[1], small[1])


def test_baoab_exact_positions_at_large_step(gauss):
    model, theory = gauss
    beta = 200.0
    vals = np.linalg.eigvalsh(theory.precision())
    h = 0.9 * 2.0 / np.sqrt(vals[-1])
    s = make_sampler(model, "baoab", ladder=Ladder.from_betas([beta]), copies=8, seed=4,
                     step=h, gamma=1.0)
    state, _ = s.run(s.init(), 500)
    state, tr = sample_trace(s, state, 3000, every=3)
    a, y = eigen_variances(tr, theory)
    vecs = np.linalg.eigh(theory.precision())[1]
    p = tr.momenta[:, 0] @ vecs
    for i in range(model.n_spins):
        assert_close(y[:, :, i] ** 2, 1.0 / (beta * a[i]), f"BAOAB position mode {i}")
        assert_close(p[:, :, i] ** 2, (1.0 - 0.25 * h * h * a[i]) / beta,
                     f"BAOAB momentum mode {i}")
    np.testing.assert_allclose(np.diag(vecs.T @ theory.baoab_momentum_covariance(beta, h) @ vecs),
                               (1.0 - 0.25 * h * h * a) / beta, rtol=1e-8)


def test_exact_sampler_moments(gauss):
    model, theory = gauss
    ladder = Ladder.from_betas([1e4, 1e3])
    s = make_sampler(model, "exact", ladder=ladder, copies=2, seed=9)
    _, tr = sample_trace(s, s.init(), 2000)
    check_gaussian_moments(tr, theory, ladder.betas)
    assert summarize(tr.energies[:, 0, 0])["tau_int"] < 1.5
