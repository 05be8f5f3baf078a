"""Unadjusted (overdamped) Langevin: W ← W − η M∇E + √(2η/β) B ξ, M = BBᵀ.

Biased at finite η: for the Gaussian merged model its stationary covariance is
(βA)⁻¹(I − ηA/2)⁻¹ (B = I), stable for η < 2/λ_max(A). Default η: 0.1 of that bound
(variance bias at most ≈ 11 % along the stiffest mode, negligible along soft ones).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl.samplers.common import STEP_SIG, Kernel, finish_move, gradient, propose
from spinicl.samplers.rng import TAG_NOISE, fill_normals


@njit(cache=True, parallel=True)
def langevin_proposal(X, V, Xp, XI, U, eta, betas, copies, keys, t, pmode, bdiag, BT):
    """XI ← ξ (the step's normals); Xp ← X − ηBv + √(2η/β) Bξ."""
    R, n = X.shape
    for r in prange(R):
        fill_normals(keys[r], t, TAG_NOISE, XI[r])
    for r in prange(R):
        k = r // copies
        et = eta[k]
        c = np.sqrt(2.0 * et / betas[k])
        for i in range(n):
            propose(pmode, X, Xp, U, bdiag, r, i, -et * V[r, i] + c * XI[r, i])
    finish_move(pmode, X, U, Xp, BT)


@njit(STEP_SIG, cache=True)
def step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv, sm,
         energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT):
    """One ULA move of every slot (always accepted)."""
    langevin_proposal(X, V, Xp, work[0], work[1], eta, betas, copies, keys, t, pmode,
                      bdiag, BT)
    gradient(energy, M1, M2, v1, fp, ip, pmode, bdiag, B, Xp, Ep, work[2], Vp)
    accp[:] = 1.0


class ULA(Kernel):
    """Unadjusted Langevin."""

    name = "ula"
    step = staticmethod(step)
    step_fraction = 0.1
