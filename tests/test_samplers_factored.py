"""The factored (quartic, non-convex) model: replica exchange against independent chains,
and the low-temperature approach to the nuclear-norm ground state."""

from __future__ import annotations

import numpy as np
import pytest

from spinicl import make_task
from spinicl.analysis.diagnostics import summarize
from spinicl.models import build_model
from spinicl.samplers import Ladder, make_sampler, sample_trace
from spinicl.theory.gaussian import factored_ground_state

Z = 4.5


@pytest.fixture(scope="module")
def factored():
    task = make_task(D=3, N=10, P=200, lam=0.05, seed=4)
    model = build_model(task, "factored", representation="dense")  # dk = D+1
    return model, factored_ground_state(model)


def test_replica_exchange_agrees_with_independent_chains(factored):
    model, _ = factored
    beta = 300.0
    ladder = Ladder.from_betas([1000.0, 550.0, beta, 170.0, 100.0])
    k = int(np.flatnonzero(ladder.betas == beta)[0])
    re = make_sampler(model, "mala", ladder=ladder, copies=4, swap_every=2, seed=1)
    st, _ = re.run(re.init(), 3000, burn_in=True)
    st, tr = sample_trace(re, st, 2000, every=5)
    assert np.all(re.report(st)["swap_acceptance"] > 0.05)
    e_re = summarize(tr.energies[:, k])

    ind = make_sampler(model, "mala", ladder=Ladder.from_betas([beta]), copies=8, seed=2)
    st, _ = ind.run(ind.init(), 3000, burn_in=True)
    st, tr = sample_trace(ind, st, 2000, every=10)
    e_ind = summarize(tr.energies[:, 0])
    err = np.hypot(e_re["stderr"], e_ind["stderr"])
    assert abs(e_re["mean"] - e_ind["mean"]) < Z * err, (e_re, e_ind)
    assert e_ind["rhat"] < 1.05 and e_re["rhat"] < 1.05

    # BAOAB with replica exchange (small step: O(h²) bias below the error bar)
    bb = make_sampler(model, "baoab", ladder=ladder, copies=4, swap_every=2, seed=3,
                      step=0.05 * re.stability_bound)
    st, _ = bb.run(bb.init(), 2000)
    st, tr = sample_trace(bb, st, 2000, every=5)
    e_bb = summarize(tr.energies[:, k])
    err = np.hypot(e_bb["stderr"], e_ind["stderr"])
    assert abs(e_bb["mean"] - e_ind["mean"]) < Z * err, (e_bb, e_ind)


@pytest.mark.parametrize("kind", ["mala", "baoab"])
def test_low_temperature_approaches_nuclear_norm_ground_state(factored, kind):
    model, gs = factored
    ladder = Ladder.geometric(1e-5, 1e-2, 6)            # coldest beta = 1e5
    s = make_sampler(model, kind, ladder=ladder, copies=4, swap_every=5, seed=6)
    state = s.init()
    e_start = float(s.energies(state).min())
    state, _ = s.run(state, 4000, burn_in=True)
    state, tr = sample_trace(s, state, 1000, every=5)
    e_min = float(tr.energies.min())
    thermal = model.n_spins / (2 * ladder.betas[0])     # equipartition scale at the cold rung
    assert e_min >= gs.energy - 1e-12, "sampled below the global minimum"
    assert e_min - gs.energy < thermal
    assert e_start - gs.energy > 5 * thermal            # it really had to approach
    r, c = np.unravel_index(np.argmin(tr.energies.reshape(tr.energies.shape[0], -1)),
                            (tr.energies.shape[0], ladder.n_temps * s.copies))
    theta = tr.positions[r].reshape(-1, model.n_spins)[c]
    W = model.effective_weights(theta[None])[0]
    assert np.linalg.norm(W - gs.W) < 0.05 * np.linalg.norm(gs.W)
