"""Metropolis-adjusted Langevin (exact target at any step size).

Proposal W' = W − η M∇E(W) + √(2η/β) B ξ (M = BBᵀ), accepted with probability
min(1, exp(−β[E(W') − E(W)]) q(W|W')/q(W'|W)); in whitened coordinates the reverse
noise is ξ_rev = [η(v + v') − cξ]/c with c = √(2η/β), v = Bᵀ∇E.

Step size per rung: starts at 1.36·n^{-1/3}/λ_max (Roberts & Rosenthal 1998; at most 0.5
of the ULA bound 2/λ_max) and during burn-in only follows the driver's Robbins–Monro
rule on log η, log η_k += (ā_k − 0.574)/(t + 10)^0.6, with ā_k the mean acceptance
probability of rung k over its copies at step t. Outside burn-in the step sizes are
frozen. For a Gaussian the acceptance at a given η does not depend on β (W → √βW maps
every rung onto one problem), so hot rungs take the same η and larger moves √(2η/β).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl.samplers.common import STEP_SIG, Kernel, gradient, metropolis_probability
from spinicl.samplers.ula import langevin_proposal


@njit(cache=True, parallel=True)
def _acceptance(E, V, Ep, Vp, XI, accp, eta, betas, copies):
    R, n = V.shape
    for r in prange(R):
        k = r // copies
        et = eta[k]
        c = np.sqrt(2.0 * et / betas[k])
        sf = 0.0
        sr = 0.0
        for i in range(n):
            sf += XI[r, i] * XI[r, i]
            z = (et * (V[r, i] + Vp[r, i]) - c * XI[r, i]) / c
            sr += z * z
        accp[r] = metropolis_probability(-betas[k] * (Ep[r] - E[r]) - 0.5 * sr + 0.5 * sf)


@njit(STEP_SIG, cache=True)
def step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv, sm,
         energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT):
    """One MALA proposal of every slot and its acceptance probability."""
    XI = work[0]
    langevin_proposal(X, V, Xp, XI, work[1], eta, betas, copies, keys, t, pmode, bdiag, BT)
    gradient(energy, M1, M2, v1, fp, ip, pmode, bdiag, B, Xp, Ep, work[2], Vp)
    _acceptance(E, V, Ep, Vp, XI, accp, eta, betas, copies)


class MALA(Kernel):
    """MALA; the step size adapts during burn-in."""

    name = "mala"
    step = staticmethod(step)
    adapts = True
    always_accepts = False
    target_accept = 0.574

    def default_step(self, bound: np.ndarray) -> np.ndarray:
        frac = min(1.36 * self.model.n_spins ** (-1.0 / 3.0), 1.0)
        return frac * bound / 2.0
