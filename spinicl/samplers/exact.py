"""Exact independent samples of a Gaussian model: W = m + L⁻ᵀz/√β, A = LLᵀ.

Each step replaces every replica by a fresh independent draw (one GEMM against L⁻¹ for
the batch): the reference and the speed limit of the local samplers. Needs a Gaussian
model with a Cholesky factor (merged, dense representation; the registry's rules);
swaps are allowed but change nothing in law. The gradient cache is not updated (this
sampler never uses it).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from spinicl import linalg
from spinicl.samplers.common import STEP_SIG, Kernel
from spinicl.samplers.rng import TAG_NOISE, fill_normals


@njit(STEP_SIG, cache=True, parallel=True)
def step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv, sm,
         energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT):
    """Fresh draws (sp = (E(m),), sv = m, sm = L⁻¹)."""
    R, n = X.shape
    XI = work[0]
    e_ground = sp[0]
    for r in prange(R):
        fill_normals(keys[r], t, TAG_NOISE, XI[r])
    for r in prange(R):
        sc = 1.0 / np.sqrt(betas[r // copies])
        for i in range(n):
            XI[r, i] *= sc
    Z = np.dot(XI, sm)
    for r in prange(R):
        zz = 0.0
        for i in range(n):
            Xp[r, i] = sv[i] + Z[r, i]
            zz += XI[r, i] * XI[r, i]
            Vp[r, i] = V[r, i]
        # E(m + L^-T z / sqrt(beta)) = E(m) + |z|^2 / (2 beta)  (XI holds z/sqrt(beta))
        Ep[r] = e_ground + 0.5 * zz
        accp[r] = 1.0


class Exact(Kernel):
    """Cholesky sampler (``step`` is ignored)."""

    name = "exact"
    step = staticmethod(step)

    def params(self):
        m = self.model
        Linv = np.ascontiguousarray(linalg.inverse_cholesky(m.cholesky(required=True)))
        return (np.array([m.ground_energy()]), np.ascontiguousarray(m.ridge_mean()), Linv)

    def default_step(self, bound: np.ndarray) -> np.ndarray:
        return np.zeros_like(bound)
