"""Metropolis-adjusted Langevin (exact target at any step size).

Proposal W' = W − η M∇E(W) + √(2η/β) B ξ (M = BBᵀ), accepted with probability
min(1, exp(−β[E(W') − E(W)]) q(W|W')/q(W'|W)); in whitened coordinates the reverse
noise is ξ_rev = [η(v + v') − cξ]/c with c = √(2η/β), v = Bᵀ∇E.

Step size per rung: starts at 1.36·n^{-1/3}/λ_max (Roberts & Rosenthal 1998; at most 0.5
of the ULA bound 2/λ_max) and during burn-in only follows a Robbins–Monro rule on log η,
log η_k += (ā_k − 0.574)/(t + 10)^0.6, with ā_k the mean acceptance probability of rung k
over its copies at step t. Outside burn-in the step sizes are frozen.
"""

from __future__ import annotations

import numpy as np

from spinicl.samplers import kernels as K
from spinicl.samplers.base import Sampler


class MALASampler(Sampler):
    """MALA with replica exchange (see :class:`Sampler` for parameters)."""

    name = "mala"
    kind = K.MALA

    def default_step(self) -> np.ndarray:
        frac = min(1.36 * self.n_spins ** (-1.0 / 3.0), 1.0)
        return frac * self.stability_bound / 2.0
