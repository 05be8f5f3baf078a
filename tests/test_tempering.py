"""Replica exchange: ladders, swap rates against the exact prediction, DEO, adaptation."""

from __future__ import annotations

import numpy as np
import pytest

from spinicl import ConfigError, make_task
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model
from spinicl.samplers import (
    Ladder,
    adapt_betas,
    communication_barrier,
    gaussian_swap_acceptance,
    make_sampler,
    sample_trace,
)
from spinicl.theory.gaussian import gaussian_theory

Z = 4.5


@pytest.fixture(scope="module")
def gauss():
    task = make_task(D=3, N=10, P=200, lam=0.1, seed=3)
    model = build_model(task, "merged", representation="dense")
    return model, gaussian_theory(model, task)


def test_ladder_constructors_and_order():
    lad = Ladder.geometric(1e-5, 1e-1, 5)
    np.testing.assert_allclose(lad.temperatures, np.geomspace(1e-5, 1e-1, 5))
    assert np.all(np.diff(lad.betas) < 0)  # coldest rung first
    assert Ladder.from_temperatures([0.1, 0.01]).temperatures.tolist() == [0.01, 0.1]
    assert Ladder.from_betas([10.0, 100.0]).betas.tolist() == [100.0, 10.0]
    assert Ladder.geometric(1e-3, 1e-2, 1).n_temps == 1
    for bad, name in [(lambda: Ladder.geometric(-1.0, 1.0, 3), "t_min"),
                      (lambda: Ladder.geometric(1e-2, 1e-3, 3), "t_max"),
                      (lambda: Ladder.geometric(1e-3, 1e-2, 0), "n_temps"),
                      (lambda: Ladder.from_temperatures([0.1, -1.0]), "temperatures"),
                      (lambda: Ladder.from_betas([np.inf]), "betas")]:
        with pytest.raises(ConfigError) as e:
            bad()
        assert e.value.param == name


def test_gaussian_swap_acceptance_formula():
    """2·I_{βh/(βc+βh)}(n/2, n/2) against Monte Carlo with Gamma energies."""
    rng = np.random.default_rng(0)
    n, bc, bh = 16, 300.0, 200.0
    ec = rng.gamma(n / 2, 1 / bc, 400_000)
    eh = rng.gamma(n / 2, 1 / bh, 400_000)
    a = np.minimum(1.0, np.exp((bc - bh) * (ec - eh)))
    pred = gaussian_swap_acceptance(bc, bh, n)
    assert abs(a.mean() - pred) < Z * a.std() / np.sqrt(a.size)
    assert gaussian_swap_acceptance(5.0, 5.0, n) == pytest.approx(1.0, abs=1e-12)


def test_swap_acceptance_matches_exact_prediction(gauss):
    """Exact draws at every rung: the measured swap rate per pair equals the prediction."""
    model, _ = gauss
    ladder = Ladder.from_betas([400.0, 250.0, 160.0, 100.0, 60.0])
    s = make_sampler(model, "exact", ladder=ladder, copies=4, seed=1, swap_every=1)
    state, tr = sample_trace(s, s.init(), 2000, every=2)
    n = model.n_spins
    for k in range(ladder.n_temps - 1):
        pred = gaussian_swap_acceptance(ladder.betas[k], ladder.betas[k + 1], n)
        # every record holds one attempt per copy of each pair (DEO, 2 rounds)
        st = summarize(tr.swap_accept[:, k])
        assert abs(st["mean"] - pred) < Z * st["stderr"], (k, st, pred)
    rep = s.report(state)
    assert rep["swap_attempts"].tolist() == [2000 * 4] * 4
    assert rep["round_trips_total"] > 0
    assert rep["barrier"] == pytest.approx(np.sum(1 - rep["swap_acceptance_mean"]))


def test_replica_exchange_rung_marginals_exact(gauss):
    """MALA + swaps: ⟨E⟩ and ⟨Q⟩ exact at every rung of a 5-rung ladder, and each pair's
    swap rate equals the prediction from the exact energy laws."""
    model, theory = gauss
    ladder = Ladder.geometric(1 / 800.0, 1 / 50.0, 5)
    s = make_sampler(model, "mala", ladder=ladder, copies=4, seed=21, swap_every=2)
    state, _ = s.run(s.init(), 2000, burn_in=True)
    state, tr = sample_trace(s, state, 3000, every=4)
    n = model.n_spins
    for k, beta in enumerate(ladder.betas):
        st = summarize(tr.energies[:, k])
        assert abs(st["mean"] - theory.energy_mean(beta)) < Z * st["stderr"], (k, st)
        Q = np.einsum("rci,rci->rc", tr.positions[:, k], tr.positions[:, k]) / n
        st = summarize(Q)
        assert abs(st["mean"] - theory.self_overlap_mean(beta)) < Z * st["stderr"]
    for k in range(ladder.n_temps - 1):
        pred = gaussian_swap_acceptance(ladder.betas[k], ladder.betas[k + 1], n)
        st = summarize(tr.swap_accept[:, k])
        assert abs(st["mean"] - pred) < Z * st["stderr"], (k, st, pred)


def test_deo_schedule_alternates_pairs(gauss):
    model, _ = gauss
    s = make_sampler(model, "exact", ladder=Ladder.geometric(1e-3, 1e-1, 4), copies=2,
                     swap_every=3, seed=0)
    state = s.init()
    state, info = s.run(state, 3)        # first round: even pairs (0,1), (2,3)
    assert state.swap_attempts.tolist() == [2, 0, 2]
    assert np.isnan(info.swap_accept[1])
    state, _ = s.run(state, 3)           # second round: odd pair (1,2)
    assert state.swap_attempts.tolist() == [2, 2, 2]
    state, _ = s.run(state, 2)           # no round yet
    assert int(state.swap_events) == 2


def test_adapt_betas_equalises():
    betas = np.array([1000.0, 900.0, 100.0, 10.0])
    rej = np.array([0.05, 0.9, 0.5])
    new = adapt_betas(betas, rej)
    assert new[0] == betas[0] and new[-1] == betas[-1]
    assert np.all(np.diff(new) < 0)
    assert communication_barrier(rej) == pytest.approx(1.45)
    # a ladder with equal rejections is a fixed point
    np.testing.assert_allclose(adapt_betas(betas, np.full(3, 0.3)), betas, rtol=1e-12)


def test_adaptive_ladder_equalises_swap_rates(gauss):
    """For a Gaussian the acceptance depends on β_k/β_{k+1} only, so the equal-rejection
    ladder is geometric: a badly spaced ladder must come out close to it."""
    model, _ = gauss
    betas = np.array([1000.0, 950.0, 900.0, 300.0, 20.0])
    s = make_sampler(model, "exact", ladder=Ladder.from_betas(betas), copies=4,
                     swap_every=1, adapt_ladder=True, seed=3)
    state = s.init()
    state, _ = s.run(state, 4000, burn_in=True)
    assert int(state.ladder_round) >= 4
    new = state.betas
    assert new[0] == 1000.0 and new[-1] == 20.0
    ratios = np.log(new[:-1] / new[1:])
    assert np.ptp(ratios) < 0.25 * ratios.mean(), new
    # production: the ladder is frozen and rates are (nearly) equal
    state2, _ = s.run(state, 4000)
    np.testing.assert_array_equal(state2.betas, new)
    acc = (state2.swap_accepted - state.swap_accepted) / (
        state2.swap_attempts - state.swap_attempts)
    pred = [gaussian_swap_acceptance(new[k], new[k + 1], model.n_spins) for k in range(4)]
    np.testing.assert_allclose(acc, pred, atol=0.05)
    assert np.ptp(pred) < 0.1
    # without burn_in, the ladder never moves
    s2 = make_sampler(model, "exact", ladder=Ladder.from_betas(betas), copies=2,
                      swap_every=1, adapt_ladder=True, seed=3)
    st, _ = s2.run(s2.init(), 500)
    np.testing.assert_array_equal(st.betas, np.sort(betas)[::-1])


# --------------------------------------------------------------------------- rung count
def test_auto_ladder_predicted_acceptance_and_minimal_count():
    """Every pair of the automatic ladder reaches the target; one rung fewer does not."""
    from spinicl.samplers.tempering import (
        AUTO_TARGET,
        auto_temperatures,
        predicted_swap_acceptance,
    )

    for n in (16, 210, 441):
        t = np.asarray(auto_temperatures(n))
        acc = predicted_swap_acceptance(1.0 / t[::-1], n)
        assert acc.min() >= AUTO_TARGET - 1e-12
        fewer = np.geomspace(t[0], t[-1], t.size - 1)
        assert predicted_swap_acceptance(1.0 / fewer[::-1], n).min() < AUTO_TARGET
    # the numbers: n = 441 over four decades, 64 rungs 0.13, 80 rungs 0.22
    for count, want in ((64, 0.125), (80, 0.221)):
        b = 1.0 / np.geomspace(1e-5, 1e-1, count)
        assert predicted_swap_acceptance(b, 441).min() == pytest.approx(want, abs=1e-3)


def test_barrier_density_is_the_slope_of_the_exact_rejection():
    from spinicl.samplers.tempering import (
        gaussian_barrier_density,
        heat_capacity_barrier,
    )

    for n in (16, 441):
        eps = 1e-6
        slope = (1 - gaussian_swap_acceptance(np.exp(eps), 1.0, n)) / eps
        assert gaussian_barrier_density(n) == pytest.approx(slope, rel=1e-4)
    b = 1.0 / np.geomspace(1e-5, 1e-1, 20)
    lam = heat_capacity_barrier(b, 441 / 2 / b**2)    # Var E = n/(2β²) exactly
    assert lam == pytest.approx(gaussian_barrier_density(441) * np.log(1e4), rel=1e-12)


def test_swap_weights_count_the_deo_rounds():
    from spinicl.runner import swap_attempt_weights

    for se in (1, 3, 10):
        for every in (1, 5, 7, 20):
            steps = np.arange(every, 200, every) + 13
            w = swap_attempt_weights(steps, 13, se, 3)
            brute = np.zeros_like(w)
            for r, st in enumerate(steps):
                prev = 13 if r == 0 else steps[r - 1]
                for s in range(prev + 1, st + 1):
                    if s % se == 0:
                        brute[r, (np.arange(3) % 2) == (s // se - 1) % 2] += 1
            np.testing.assert_array_equal(w, brute)


def test_default_config_ladder_exchanges():
    from spinicl.config import SampleConfig
    from spinicl.samplers.tempering import predicted_swap_acceptance

    cfg = SampleConfig()
    t = np.asarray(cfg.temperatures)
    assert t[0] == 1e-5 and t[-1] == pytest.approx(1e-1) and not cfg.adapt_ladder
    assert predicted_swap_acceptance(1.0 / t[::-1], 441).min() >= 0.25
    fac = SampleConfig(model="factored", dk=5)
    assert fac.adapt_ladder and len(fac.temperatures) > 8
