"""Hamiltonian Monte Carlo (``--sampler hmc``) against the closed forms, like the others.

Every tolerance is Z standard errors of the estimate, the error coming from the
effective sample size measured on the chain itself (spinicl.analysis.diagnostics): the Gaussian
moments per rung with replica exchange, preconditioned and matrix-free variants, the
factored model against independent MALA chains, and bit-identical resume.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from spinicl import ConfigError, TaskConfig, make_task, registry
from spinicl.analysis.diagnostics import summarize
from spinicl.config import SampleConfig
from spinicl.models import build_model
from spinicl.samplers import Ladder, Sampler, make_sampler, sample_trace
from spinicl.theory.gaussian import gaussian_theory

Z = 4.5  # standard errors


@pytest.fixture(scope="module")
def gauss():
    task = make_task(D=3, N=10, P=200, lam=0.1, seed=3)
    model = build_model(task, "merged", representation="dense")
    return task, model, gaussian_theory(model, task)


def assert_close(series: np.ndarray, exact: float, what: str, z: float = Z) -> float:
    """|mean − exact| ≤ z standard errors (series (n,) or (n, chains)); returns the z-score."""
    s = summarize(series)
    assert s["ess"] > 50, f"{what}: too few effective samples ({s['ess']:.0f})"
    zs = abs(s["mean"] - exact) / s["stderr"]
    assert abs(s["mean"] - exact) <= z * s["stderr"] + 1e-12 * abs(exact), (
        f"{what}: {s['mean']:.6g} vs exact {exact:.6g} (stderr {s['stderr']:.3g}, "
        f"ESS {s['ess']:.0f})")
    return zs


def gaussian_moments(tr, theory, betas, spins=(0, 5, 10)) -> None:
    """Mean of every spin, variance of a few, ⟨E⟩, ⟨Q⟩, ⟨q⟩ per rung."""
    pos, en = tr.positions, tr.energies
    n = pos.shape[-1]
    m = theory.mean
    for k, beta in enumerate(betas):
        x = pos[:, k]
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


def test_exact_moments_with_replica_exchange(gauss):
    _, model, theory = gauss
    ladder = Ladder.from_betas([400.0, 200.0, 100.0, 50.0])
    s = make_sampler(model, "hmc", ladder=ladder, copies=4, seed=11, swap_every=5,
                     leapfrog=5)
    state, _ = s.run(s.init(), 1000, burn_in=True)
    state, tr = sample_trace(s, state, 2000, every=2)
    gaussian_moments(tr, theory, ladder.betas)
    rep = s.report(state)
    assert np.all(rep["swap_acceptance"] > 0.1)
    acc = tr.accept.mean(axis=(0, 2))               # adapted toward 0.65 per rung
    assert np.all(np.abs(acc - 0.65) < 0.1), acc
    # frozen outside burn-in, and within the leapfrog stability bound
    assert np.all(tr.betas == ladder.betas)
    assert np.all(state.step_size < 2.0 * s.stability_bound)


@pytest.mark.parametrize("precondition", ["diag", "dense"])
def test_preconditioned(gauss, precondition):
    _, model, theory = gauss
    beta = 300.0
    s = make_sampler(model, "hmc", ladder=Ladder.from_betas([beta]), copies=4, seed=5,
                     precondition=precondition, leapfrog=4)
    state, _ = s.run(s.init(), 600, burn_in=True)
    state, tr = sample_trace(s, state, 1500, every=2)
    gaussian_moments(tr, theory, [beta])


def test_matrix_free_and_default_leapfrog(gauss):
    task, _, theory = gauss
    model = build_model(task, "merged", representation="matrix-free")
    beta = 100.0
    s = make_sampler(model, "hmc", ladder=Ladder.from_betas([beta]), copies=4, seed=3)
    assert s.options == {"leapfrog": 10}
    st, _ = s.run(s.init(), 400, burn_in=True)
    st, tr = sample_trace(s, st, 800)
    assert_close(tr.energies[:, 0], theory.energy_mean(beta), "<E> matrix-free")


def test_factored_agrees_with_mala():
    task = make_task(D=3, N=10, P=200, lam=0.05, seed=4)
    model = build_model(task, "factored", representation="dense")
    beta = 300.0
    ladder = Ladder.from_betas([1000.0, 550.0, beta, 170.0, 100.0])
    k = int(np.flatnonzero(ladder.betas == beta)[0])
    h = make_sampler(model, "hmc", ladder=ladder, copies=4, swap_every=2, seed=1,
                     leapfrog=5)
    st, _ = h.run(h.init(), 1500, burn_in=True)
    st, tr = sample_trace(h, st, 1500, every=2)
    assert np.all(h.report(st)["swap_acceptance"] > 0.05)
    e_h = summarize(tr.energies[:, k])

    ind = make_sampler(model, "mala", ladder=Ladder.from_betas([beta]), copies=8, seed=2)
    st, _ = ind.run(ind.init(), 3000, burn_in=True)
    st, tr = sample_trace(ind, st, 2000, every=10)
    e_ind = summarize(tr.energies[:, 0])
    err = np.hypot(e_h["stderr"], e_ind["stderr"])
    assert e_h["ess"] > 50 and e_ind["ess"] > 50
    assert abs(e_h["mean"] - e_ind["mean"]) < Z * err, (e_h, e_ind)
    assert e_h["rhat"] < 1.05


def test_resume_bit_identical_and_thread_independent(gauss):
    _, model, _ = gauss

    def run(resume: bool, threads: int | None):
        s = make_sampler(model, "hmc", ladder=Ladder.geometric(1e-3, 1e-1, 3), copies=2,
                         precondition="diag", swap_every=4, adapt_ladder=True, seed=5,
                         threads=threads, leapfrog=3)
        st, _ = s.run(s.init(), 57, burn_in=True)
        if resume:
            st = Sampler.state_from_dict({k: np.array(v)
                                          for k, v in s.state_to_dict(st).items()})
        st, _ = s.run(st, 43)
        return st

    a, b, c = run(False, 1), run(True, 1), run(False, 2)
    for k in a._fields:
        np.testing.assert_array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)))
        np.testing.assert_array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(c, k)))
    assert a.momentum.shape == (a.W.shape[0], 0)     # HMC keeps no state of its own
    assert int(a.step) == 100


def test_options_through_the_registry():
    assert "hmc" in registry.sampler_names()
    task = TaskConfig(D=3, N=8, P=150, lam=0.05, test_prompts=100, seed=3)
    cfg = SampleConfig(task=task, sampler="hmc", temperatures=(0.01,), options={"leapfrog": 7})
    assert cfg.options == {"leapfrog": 7}
    assert SampleConfig.from_dict(cfg.to_dict()) == cfg
    assert SampleConfig(task=task, sampler="hmc", temperatures=(0.01,)).options == {
        "leapfrog": 10}
    assert "options" not in SampleConfig(task=task, temperatures=(0.01,)).to_dict()
    for kw, param in [({"sampler": "hmc", "options": {"leapfrog": 0}}, "leapfrog"),
                      ({"sampler": "mala", "options": {"leapfrog": 3}}, "leapfrog"),
                      ({"sampler": "hmc", "options": {"leap": 3}}, "options")]:
        with pytest.raises(ConfigError) as e:
            SampleConfig(task=task, temperatures=(0.01,), **kw)
        assert e.value.param == param
    model = build_model(make_task(D=2, N=8, P=50, lam=0.1, seed=1), "merged")
    with pytest.raises(ConfigError) as e:
        make_sampler(model, "hmc", leapfrog=-1)
    assert e.value.param == "leapfrog"


def test_cli_sample_with_hmc(tmp_path):
    out = tmp_path / "r.h5"
    args = ["sample", "--D", "2", "--N", "8", "--P", "60", "--lam", "0.05",
            "--test-prompts", "50", "--temps", "1e-3:1e-1:3", "--copies", "2",
            "--steps", "60", "--burn-in", "20", "--record-every", "5",
            "--sampler", "hmc", "--leapfrog", "3", "--out", str(out)]
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", *args], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", "info", str(out)],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "hmc" in r.stdout
    help_text = subprocess.run([sys.executable, "-m", "spinicl.cli", "sample", "--help"],
                               capture_output=True, text=True, timeout=300,
                               check=False).stdout
    assert "--leapfrog" in help_text and "hmc" in help_text
