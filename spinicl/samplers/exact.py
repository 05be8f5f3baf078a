"""Exact independent samples of the Gaussian merged model: W = m + L⁻ᵀz/√β, A = LLᵀ.

Each step replaces every replica by a fresh independent draw (one GEMM against L⁻¹ for
the batch): the reference and the speed limit of the local samplers. Needs the merged
model with the dense representation; swaps are allowed but change nothing in law.
"""

from __future__ import annotations

import numpy as np

from spinicl.config import ConfigError
from spinicl.models import DenseData, MergedModel
from spinicl.samplers import kernels as K
from spinicl.samplers.base import Sampler


class ExactSampler(Sampler):
    """Cholesky sampler (see :class:`Sampler` for parameters; ``step`` is ignored)."""

    name = "exact"
    kind = K.EXACT

    def _check_kind(self) -> None:
        if not isinstance(self.model, MergedModel):
            raise ConfigError("model", "merged for the exact sampler (the factored model "
                              "is not Gaussian)", getattr(self.model, "name", self.model))
        if not isinstance(self.model.data, DenseData):
            raise ConfigError("representation", "dense for the exact sampler (it needs the "
                              "Cholesky factor of A)", self.model.representation)
        if self.precondition != "none":
            raise ConfigError("precondition", "none for the exact sampler",
                              self.precondition)

    def default_step(self) -> np.ndarray:
        return np.zeros(self.n_temps)
