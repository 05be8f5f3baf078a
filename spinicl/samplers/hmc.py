"""Hamiltonian Monte Carlo: L leapfrog steps and a Metropolis test (Duane et al. 1987;
Neal 2011, *MCMC using Hamiltonian dynamics*).

In whitened coordinates (x = B y, v = Bᵀ∇E) with unit mass at temperature 1/β: draw
p ~ N(0, I/β), integrate H(x, p) = E(x) + |p|²/2 by L leapfrog steps of size h,

    p ← p − (h/2) v(x);  [x ← x + h B p;  p ← p − h v(x)] × L, the last kick halved,

and accept the end point with probability min(1, exp(−β[H(x', p') − H(x, p)])). One
gradient per leapfrog step, L per move; the momentum is refreshed at every move, so the
sampler keeps no state of its own. The step of each slot is jittered uniformly in
h·[1 − j, 1 + j] (j = 0.1; a draw independent of the state, so the kernel stays
reversible) to break the near-periodic trajectories of a fixed h·L on Gaussian modes.

Stable for h < 2/√λ_max (the leapfrog bound, as BAOAB); the default start is 0.5 of the
bound (0.2 for a non-Gaussian model) and h adapts per rung during burn-in like MALA's
toward acceptance 0.65 (the optimal scaling of Beskos et al. 2013).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl.samplers.common import (
    STEP_SIG,
    Kernel,
    finish_move,
    gradient,
    metropolis_probability,
    propose,
)
from spinicl.samplers.rng import TAG_NOISE, fill_normals, uniform

#: Index tag of the step-size jitter uniform (after rng's noise 0, accept 1, swap 2).
TAG_JITTER = 3
#: Default leapfrog steps per move.
DEFAULT_LEAPFROG = 10
#: Relative jitter of the leapfrog step.
JITTER = 0.1


@njit(cache=True, parallel=True)
def _start(X, V, E, Xp, P, H, hr, eta, betas, copies, keys, t, jitter):
    """Momenta p = ξ/√β, βH₀ = β(E + |p|²/2), the jittered step h of each slot, the
    first half kick p ← p − (h/2)v; Xp starts at X."""
    R, n = X.shape
    for r in prange(R):
        fill_normals(keys[r], t, TAG_NOISE, P[r])
        k = r // copies
        b = betas[k]
        sc = 1.0 / np.sqrt(b)
        u = uniform(keys[r], t, np.int64(TAG_JITTER) << 40)
        h = eta[k] * (1.0 + jitter * (2.0 * u - 1.0))
        hr[r] = h
        kin = 0.0
        for i in range(n):
            p = P[r, i] * sc
            kin += p * p
            Xp[r, i] = X[r, i]
            P[r, i] = p - 0.5 * h * V[r, i]
        H[r] = b * (E[r] + 0.5 * kin)


@njit(cache=True, parallel=True)
def _drift(Xp, P, U, hr, pmode, bdiag):
    R, n = Xp.shape
    for r in prange(R):
        h = hr[r]
        for i in range(n):
            propose(pmode, Xp, Xp, U, bdiag, r, i, h * P[r, i])


@njit(cache=True, parallel=True)
def _kick(P, Vp, hr, frac):
    R, n = P.shape
    for r in prange(R):
        h = frac * hr[r]
        for i in range(n):
            P[r, i] -= h * Vp[r, i]


@njit(cache=True, parallel=True)
def _accept(Ep, P, H, accp, betas, copies):
    R, n = P.shape
    for r in prange(R):
        b = betas[r // copies]
        kin = 0.0
        for i in range(n):
            kin += P[r, i] * P[r, i]
        accp[r] = metropolis_probability(H[r] - b * (Ep[r] + 0.5 * kin))


@njit(STEP_SIG, cache=True)
def step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv, sm,
         energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT):
    """One HMC move of every slot (sp = (L, jitter)); Xp, Ep, Vp: the trajectory's end."""
    R = X.shape[0]
    P, U, G = work[0], work[1], work[2]
    n_leap = int(sp[0])
    H = np.empty(R)
    hr = np.empty(R)
    _start(X, V, E, Xp, P, H, hr, eta, betas, copies, keys, t, sp[1])
    for ell in range(n_leap):
        _drift(Xp, P, U, hr, pmode, bdiag)
        finish_move(pmode, Xp, U, Xp, BT)
        gradient(energy, M1, M2, v1, fp, ip, pmode, bdiag, B, Xp, Ep, G, Vp)
        _kick(P, Vp, hr, 1.0 if ell < n_leap - 1 else 0.5)
    _accept(Ep, P, H, accp, betas, copies)


class HMC(Kernel):
    """HMC; the leapfrog step adapts during burn-in (options: ``leapfrog``)."""

    name = "hmc"
    step = staticmethod(step)
    adapts = True
    always_accepts = False
    target_accept = 0.65
    bound_order = 2

    def params(self):
        L = int(self.options.get("leapfrog", DEFAULT_LEAPFROG))
        return np.array([float(L), JITTER]), np.zeros(0), np.zeros((0, 0))

    def default_step(self, bound: np.ndarray) -> np.ndarray:
        return (0.5 if self.model.gaussian else 0.2) * bound
