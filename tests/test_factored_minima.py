"""Ground-state reference of the factored model for every d_k (spinicl.theory.factored_minima):
exact (the nuclear-norm optimum) when its rank is ≤ d_k, otherwise the best of many L-BFGS
restarts, bounded below by the nuclear-norm optimum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from spinicl import ConfigError, make_task
from spinicl.models import build_model
from spinicl.theory.factored_minima import (
    ENERGY_RTOL,
    W_RTOL,
    check_nuclear_bound,
    factored_reference,
)
from spinicl.theory.gaussian import factored_ground_state

RESTARTS = 32


@pytest.fixture(scope="module")
def task():
    return make_task(D=4, N=12, P=3000, lam=0.05, seed=0, test_prompts=10)


def _model(task, dk, lam=0.05):
    return build_model(task, "factored", dk=dk, lam=lam, representation="dense")


@pytest.fixture(scope="module")
def best_known(task):
    return {dk: factored_reference(_model(task, dk), restarts=RESTARTS, seed=3)
            for dk in (1, 2, 3)}


@pytest.mark.parametrize(("lam", "dk", "rank"), [(0.05, 4, 4), (0.05, 5, 4),
                                                 (0.23, 2, 2), (0.23, 3, 2)])
def test_exact_whenever_the_rank_fits(task, lam, dk, rank):
    """rank(W*) ≤ d_k: the nuclear-norm optimum, realised by balanced factors of rank d_k
    (also below D+1 = 5)."""
    model = _model(task, dk, lam)
    ref = factored_reference(model)
    gs = factored_ground_state(_model(task, 5, lam))
    assert ref.kind == "exact"
    assert ref.nuclear_rank == rank
    np.testing.assert_allclose(ref.energy, gs.energy, rtol=1e-8)
    np.testing.assert_allclose(model.energy(ref.factors[None])[0], ref.energy, rtol=1e-8)
    np.testing.assert_allclose(model.effective_weights(ref.factors[None])[0], gs.W,
                               atol=1e-10)
    assert ref.gap_to_bound == 0.0
    assert ref.rows()["kind"] == "exact"


def test_exact_is_not_beaten_by_local_minimisation(task):
    """λ = 0.23, d_k = 2 = rank(W*): L-BFGS from the training init never goes below it."""
    model = _model(task, 2, 0.23)
    ref = factored_reference(model)
    rng = np.random.default_rng(0)

    def fun(t):
        e, g = model.energy_and_grad(t[None])
        return float(e[0]), g[0]

    for _ in range(8):
        res = minimize(fun, rng.normal(0, 1 / np.sqrt(5), model.n_spins), jac=True,
                       method="L-BFGS-B", options={"gtol": 1e-11, "ftol": 1e-15})
        assert res.fun >= ref.energy * (1 - 1e-10)


def test_best_known_below_the_rank(task, best_known):
    """d_k < rank(W*) = 4: "best known", above the nuclear-norm bound, the lowest of the
    restarts, every restart counted once, each minimum a genuine one (Hessian ≥ 0 up to
    the finite-difference noise ~1e-9, positive beyond the gauge modes)."""
    bound = factored_ground_state(_model(task, 5)).energy
    for dk, ref in best_known.items():
        model = _model(task, dk)
        assert ref.kind == "best known" and ref.nuclear_rank == 4
        assert ref.energy >= bound and ref.nuclear_energy == bound
        assert ref.energy <= ref.restart_energies.min()
        assert sum(m.count for m in ref.minima) == RESTARTS == ref.restarts
        assert ref.failed == 0
        energies = [m.energy for m in ref.minima]
        assert energies == sorted(energies)
        for m in ref.minima:
            np.testing.assert_allclose(model.energy(m.factors[None])[0], m.energy,
                                       rtol=1e-12)
            np.testing.assert_allclose(model.effective_weights(m.factors[None])[0], m.W,
                                       atol=1e-14)
            assert m.rank <= dk
            assert m.min_hessian_eigenvalue > -1e-6
            assert m.hessian_gap > 1e-5
            # clustering tolerances far above each minimum's own scatter
            assert m.energy_spread < ENERGY_RTOL / 100 and m.w_spread < W_RTOL / 10
        # ... and far below the differences between distinct minima
        for a in range(len(ref.minima)):
            for b in range(a + 1, len(ref.minima)):
                ma, mb = ref.minima[a], ref.minima[b]
                assert (abs(ma.energy - mb.energy) > 100 * ENERGY_RTOL * abs(ma.energy)
                        or np.linalg.norm(ma.W - mb.W) > 100 * W_RTOL * np.linalg.norm(ma.W))
        assert check_nuclear_bound(ref, model) <= 1e-12
        assert ref.rows()["restarts"] == RESTARTS
    # nested factor spaces: a larger d_k does no worse (measured gaps ≥ 0.04)
    e = [best_known[dk].energy for dk in (1, 2, 3)]
    assert e[0] > e[1] > e[2] > bound


def test_reported_numbers(best_known):
    """The values of the report (D = 4, N = 12, P = 3000, λ = 0.05, seed 0; 32 restarts,
    seed 3): best-known energies for d_k = 1, 2, 3 and the bound 0.277334574587."""
    np.testing.assert_allclose([best_known[dk].energy for dk in (1, 2, 3)],
                               [0.425758917161, 0.372337601834, 0.320233257067],
                               rtol=1e-9)
    assert len(best_known[1].minima) == 1 and len(best_known[3].minima) == 1
    assert len(best_known[2].minima) >= 2


def test_reproducible_from_the_seed(task, best_known):
    again = factored_reference(_model(task, 2), restarts=RESTARTS, seed=3)
    ref = best_known[2]
    np.testing.assert_array_equal(again.restart_energies, ref.restart_energies)
    assert [(m.energy, m.count) for m in again.minima] == [(m.energy, m.count)
                                                           for m in ref.minima]
    other = factored_reference(_model(task, 2), restarts=RESTARTS, seed=4)
    assert not np.array_equal(other.restart_energies, ref.restart_energies)
    assert sum(m.count for m in other.minima) == RESTARTS


def test_rejects_other_models(task):
    with pytest.raises(ConfigError):
        factored_reference(build_model(task, representation="dense"))
    with pytest.raises(ConfigError):
        factored_reference(_model(task, 2), restarts=0)
