"""BAOAB underdamped Langevin (Leimkuhler & Matthews 2013), unit mass, friction γ.

One step of size h, in whitened coordinates (x = B y, v = Bᵀ∇E, momentum p):
B: p ← p − (h/2) v;  A: x ← x + (h/2) B p;  O: p ← e^{−γh} p + √((1 − e^{−2γh})/β) ξ;
A: x ← x + (h/2) B p;  B: p ← p − (h/2) v(x). One gradient per step.

For a Gaussian the position marginal is exact at every stable h < 2/√λ_max and any γ;
the momentum variance along an eigenvalue a is (1 − h²a/4)/β. Default h: 0.8 of the
bound for the Gaussian (merged) model (the step is then a pure speed knob:
bench/RESULTS.md's scan of step and friction has the integrated autocorrelation times of the
energy and of the slowest mode fall from ≈ 2.5 at 0.5 of the bound to ≈ 1.5 at 0.8–0.85,
with γ = 1), 0.2 for a non-Gaussian (factored) model, whose bound is only estimated. The
momenta are this sampler's own state S; they stay with their slot when configurations
swap (they are independent of the position at stationarity, up to the O(h²) factor above).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl.samplers.common import STEP_SIG, Kernel, finish_move, gradient, propose
from spinicl.samplers.rng import TAG_NOISE, fill_normals, init_generator


@njit(cache=True, parallel=True)
def _baoa(X, V, S, Xp, Sp, XI, U, eta, betas, copies, keys, t, gamma, pmode, bdiag):
    R, n = X.shape
    for r in prange(R):
        fill_normals(keys[r], t, TAG_NOISE, XI[r])
    for r in prange(R):
        k = r // copies
        hh = eta[k]
        c1 = np.exp(-gamma * hh)
        sig = np.sqrt((1.0 - c1 * c1) / betas[k])
        for i in range(n):
            p1 = S[r, i] - 0.5 * hh * V[r, i]
            p2 = c1 * p1 + sig * XI[r, i]
            Sp[r, i] = p2
            propose(pmode, X, Xp, U, bdiag, r, i, 0.5 * hh * (p1 + p2))


@njit(cache=True, parallel=True)
def _last_b(Sp, Vp, eta, copies):
    R, n = Sp.shape
    for r in prange(R):
        hh = eta[r // copies]
        for i in range(n):
            Sp[r, i] -= 0.5 * hh * Vp[r, i]


@njit(STEP_SIG, cache=True)
def step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv, sm,
         energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT):
    """One BAOAB step of every slot (sp = (γ,); always accepted)."""
    U = work[1]
    _baoa(X, V, S, Xp, Sp, work[0], U, eta, betas, copies, keys, t, sp[0], pmode, bdiag)
    finish_move(pmode, X, U, Xp, BT)
    gradient(energy, M1, M2, v1, fp, ip, pmode, bdiag, B, Xp, Ep, work[2], Vp)
    _last_b(Sp, Vp, eta, copies)
    accp[:] = 1.0


class BAOAB(Kernel):
    """BAOAB with momenta as its own state."""

    name = "baoab"
    step = staticmethod(step)
    extra_state = "n"
    bound_order = 2

    def params(self):
        return np.array([float(self.options["gamma"])]), np.zeros(0), np.zeros((0, 0))

    def default_step(self, bound: np.ndarray) -> np.ndarray:
        return (0.8 if self.model.gaussian else 0.2) * bound

    def init_extra(self, betas_slot: np.ndarray, n: int, seed: int) -> np.ndarray:
        """Momenta drawn from their stationary law N(0, 1/β)."""
        rng = init_generator(seed + 1)
        return rng.standard_normal((betas_slot.shape[0], n)) / np.sqrt(betas_slot[:, None])
