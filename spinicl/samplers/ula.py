"""Unadjusted (overdamped) Langevin: W ← W − η M∇E + √(2η/β) B ξ, M = BBᵀ.

Biased at finite η: for the Gaussian merged model its stationary covariance is
(βA)⁻¹(I − ηA/2)⁻¹ (B = I), stable for η < 2/λ_max(A). Default η: 0.1 of that bound
(variance bias at most ≈ 11 % along the stiffest mode, negligible along soft ones).
"""

from __future__ import annotations

from spinicl.samplers import kernels as K
from spinicl.samplers.base import Sampler


class ULASampler(Sampler):
    """Unadjusted Langevin with replica exchange (see :class:`Sampler` for parameters)."""

    name = "ula"
    kind = K.ULA
    step_fraction = 0.1
