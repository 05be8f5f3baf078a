"""BAOAB underdamped Langevin (Leimkuhler & Matthews 2013), unit mass, friction γ.

One step of size h, in whitened coordinates (x = B y, v = Bᵀ∇E, momentum p):
B: p ← p − (h/2) v;  A: x ← x + (h/2) B p;  O: p ← e^{−γh} p + √((1 − e^{−2γh})/β) ξ;
A: x ← x + (h/2) B p;  B: p ← p − (h/2) v(x). One gradient per step.

For a Gaussian the position marginal is exact at every stable h < 2/√λ_max and any γ;
the momentum variance along an eigenvalue a is (1 − h²a/4)/β. Default h: 0.8 of the
bound for the merged model (the step is then a pure speed knob: bench/RESULTS.md's scan
of step and friction has the integrated autocorrelation times of the energy and of the
slowest mode fall from ≈ 2.5 at 0.5 of the bound to ≈ 1.5 at 0.8–0.85, with γ = 1), 0.2
for the (non-Gaussian) factored model, whose bound is only estimated. Momenta stay with
their slot when configurations swap (they are independent of the position at
stationarity, up to the O(h²) factor above).
"""

from __future__ import annotations

import numpy as np

from spinicl.models import FactoredModel
from spinicl.samplers import kernels as K
from spinicl.samplers.base import Sampler


class BAOABSampler(Sampler):
    """BAOAB with replica exchange (see :class:`Sampler` for parameters)."""

    name = "baoab"
    kind = K.BAOAB

    def _stability_bound(self, betas: np.ndarray) -> np.ndarray:
        """2/√λ_max per rung."""
        return 2.0 / np.sqrt(self.curvature(betas))

    def default_step(self) -> np.ndarray:
        frac = 0.2 if isinstance(self.model, FactoredModel) else 0.8
        return frac * self.stability_bound
