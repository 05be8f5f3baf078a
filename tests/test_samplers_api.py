"""Sampler API: shapes, kernels against the models, random streams, parameter checks,
divergence guard."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from spinicl import ConfigError, make_task, registry
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model
from spinicl.samplers import (
    SAMPLERS,
    Ladder,
    SamplerDivergence,
    make_sampler,
    sample_trace,
)
from spinicl.samplers.rng import normals
from spinicl.theory.gaussian import gaussian_theory

Z = 4.5


@pytest.fixture(scope="module")
def task():
    return make_task(D=3, N=10, P=150, lam=0.1, seed=7)


@pytest.fixture(scope="module")
def merged(task):
    return build_model(task, "merged", representation="dense")


@pytest.mark.parametrize("model_kind", ["merged", "factored"])
@pytest.mark.parametrize("rep", ["dense", "matrix-free"])
@pytest.mark.parametrize("precondition", ["none", "diag"])
def test_kernel_energy_and_gradient_match_model(task, model_kind, rep, precondition):
    model = build_model(task, model_kind, representation=rep, dk=3)
    s = make_sampler(model, "mala", ladder=Ladder.from_betas([10.0, 1.0]), copies=3,
                     precondition=precondition)
    X = np.random.default_rng(0).standard_normal((6, model.n_spins))
    E, G = s.energy_and_grad(X)
    E0, G0 = model.energy_and_grad(X)
    np.testing.assert_allclose(E, E0, rtol=1e-10)
    np.testing.assert_allclose(G, G0, rtol=1e-9, atol=1e-12)


def test_shapes_info_and_report(merged):
    ladder = Ladder.geometric(1e-4, 1e-1, 4)
    for kind in SAMPLERS:
        if registry.SAMPLERS[kind].models not in (None,) and \
                "merged" not in registry.SAMPLERS[kind].models:
            continue  # a sampler for other models only (gibbs: factored); tested there
        s = make_sampler(merged, kind, ladder=ladder, copies=3, seed=1)
        st = s.init()
        assert st.W.shape == (12, merged.n_spins)
        st, info = s.run(st, 20)
        assert s.positions(st).shape == (4, 3, merged.n_spins)
        assert s.energies(st).shape == (4, 3)
        assert info.accept.shape == (4, 3) and info.swap_accept.shape == (3,)
        if kind not in ("mala", "hmc"):           # the Metropolis-tested samplers
            assert np.all(info.accept == 1.0)
        np.testing.assert_allclose(s.energies(st).ravel(), merged.energy(st.W), rtol=1e-10)
        rep = s.report(st)
        for key in ("swap_acceptance", "round_trips", "barrier", "step_size", "betas"):
            assert key in rep
        assert rep["round_trips"].shape == (3,)
        assert int(st.step) == 20 and int(st.swap_events) == 2
        d = s.state_to_dict(st)
        assert set(d) == set(st._fields)


def test_init_from_given_positions(merged):
    s = make_sampler(merged, "ula", ladder=Ladder.geometric(1e-3, 1e-2, 2), copies=2)
    W0 = np.zeros(merged.n_spins)
    st = s.init(W0)
    np.testing.assert_array_equal(st.W, 0.0)
    st = s.init(np.ones((2, 2, merged.n_spins)))
    np.testing.assert_array_equal(st.W, 1.0)
    with pytest.raises(ConfigError) as e:
        s.init(np.zeros((3, merged.n_spins)))
    assert e.value.param == "W0"


def test_matrix_free_mala_reproduces_energy(task):
    model = build_model(task, "merged", representation="matrix-free")
    theory = gaussian_theory(build_model(task, "merged", representation="dense"), task)
    beta = 100.0
    s = make_sampler(model, "mala", ladder=Ladder.from_betas([beta]), copies=4, seed=3)
    st, _ = s.run(s.init(), 1000, burn_in=True)
    st, tr = sample_trace(s, st, 1500, every=3)
    st_e = summarize(tr.energies[:, 0])
    assert abs(st_e["mean"] - theory.energy_mean(beta)) < Z * st_e["stderr"]


def test_random_streams_are_normal_and_independent():
    keys = np.arange(1, 101, dtype=np.uint64)
    z = normals(keys, 3, 4000)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4
    assert abs(z.mean()) < Z / np.sqrt(z.size)
    assert abs(z.var() - 1) < Z * np.sqrt(2 / z.size)
    c = np.corrcoef(z)[np.triu_indices(100, 1)]          # between streams
    assert np.max(np.abs(c)) < Z * 1.2 / np.sqrt(4000)
    z2 = normals(keys, 4, 4000)                          # next counter
    assert abs(np.mean(z * z2)) < Z / np.sqrt(z.size)
    np.testing.assert_array_equal(z, normals(keys, 3, 4000))
    # tail beyond the ziggurat base r = 3.654 has the right mass
    tail = np.mean(np.abs(z) > 3.6541528853610088)
    p = 2 * stats.norm.sf(3.6541528853610088)
    assert abs(tail - p) < Z * np.sqrt(p / z.size)


def test_divergence_guard(merged):
    A = merged.precision()
    amax = np.linalg.eigvalsh(A)[-1]
    for kind, step, bound_text in [("ula", 2.5 / amax, "2/lambda_max(A)"),
                                   ("baoab", 2.5 / np.sqrt(amax), "2/sqrt(lambda_max(A))")]:
        s = make_sampler(merged, kind, ladder=Ladder.geometric(1e-3, 1e-2, 2), step=step)
        st = s.init()
        with pytest.raises(SamplerDivergence) as e:
            s.run(st, 100_000)
        msg = str(e.value)
        assert kind in msg and bound_text in msg and f"{step:.4g}" in msg
        bound = 2 / amax if kind == "ula" else 2 / np.sqrt(amax)
        assert e.value.bound == pytest.approx(bound, rel=1e-6)
        assert f"{e.value.bound:.4g}" in msg
        last = e.value.state
        assert np.all(np.isfinite(last.W)) and np.all(np.isfinite(last.energy))
        assert 0 < int(last.step) < 100_000
        assert isinstance(e.value, RuntimeError)
    # below the bound nothing happens
    s = make_sampler(merged, "ula", ladder=Ladder.geometric(1e-3, 1e-2, 2), step=1.9 / amax)
    s.run(s.init(), 2000)


@pytest.mark.parametrize("kwargs, name", [
    ({"sampler": "nuts"}, "sampler"),
    ({"copies": 0}, "copies"),
    ({"swap_every": 0}, "swap_every"),
    ({"gamma": -1.0}, "gamma"),
    ({"gamma": float("nan")}, "gamma"),
    ({"precondition": "full"}, "precondition"),
    ({"step": -0.1}, "step"),
    ({"step": [0.1, 0.2, 0.3]}, "step"),
    ({"step": "big"}, "step"),
    ({"seed": -1}, "seed"),
    ({"adapt_ladder": "yes"}, "adapt_ladder"),
    ({"ladder": [1.0, 2.0]}, "ladder"),
    ({"blas_threads": 0}, "blas_threads"),
    ({"threads": 0}, "threads"),
    ({"target_accept": 1.5}, "target_accept"),
])
def test_bad_parameters_name_themselves(merged, kwargs, name):
    kw = {"sampler": "mala", "ladder": Ladder.geometric(1e-3, 1e-2, 2)}
    kw.update(kwargs)
    with pytest.raises(ConfigError) as e:
        make_sampler(merged, **kw)
    assert e.value.param == name
    assert name in str(e.value)


def test_bad_model_combinations(task, merged):
    fact = build_model(task, "factored", representation="dense")
    mf = build_model(task, "merged", representation="matrix-free")
    cases = [(lambda: make_sampler(fact, "exact"), "model"),
             (lambda: make_sampler(mf, "exact"), "representation"),
             (lambda: make_sampler(fact, "mala", precondition="dense"), "precondition"),
             (lambda: make_sampler(mf, "baoab", precondition="dense"), "precondition"),
             (lambda: make_sampler(merged, "exact", precondition="diag"), "precondition"),
             (lambda: make_sampler(build_model(task, "merged", lam=0.0), "mala"), "lam"),
             (lambda: make_sampler("model", "mala"), "model")]
    for make, name in cases:
        with pytest.raises(ConfigError) as e:
            make()
        assert e.value.param == name
    s = make_sampler(merged, "mala", ladder=Ladder.geometric(1e-3, 1e-2, 2))
    with pytest.raises(ConfigError) as e:
        s.run(s.init(), -1)
    assert e.value.param == "n_steps"
    other = make_sampler(merged, "mala", ladder=Ladder.geometric(1e-3, 1e-2, 3))
    with pytest.raises(ConfigError) as e:
        s.run(other.init(), 1)
    assert e.value.param == "state"
