"""Samplers of the Boltzmann law p_β(W) ∝ exp(−βE(W)) with replica exchange (docs/model.md §2).

>>> from spinicl.samplers import Ladder, make_sampler
>>> ladder = Ladder.geometric(t_min=1e-5, t_max=1e-1, n_temps=8)      # coldest rung first
>>> sampler = make_sampler(model, "mala", ladder=ladder, copies=2, seed=0)
>>> state = sampler.init()
>>> state, info = sampler.run(state, 2000, burn_in=True)   # adapts step sizes (and ladder)
>>> state, info = sampler.run(state, 10000)                # frozen kernel: production
>>> sampler.positions(state).shape                         # (n_temps, copies, n_spins)

Kernels: ``ula`` (:mod:`.ula`), ``mala`` (:mod:`.mala`), ``baoab`` (:mod:`.baoab`),
``exact`` (:mod:`.exact`); shared machinery in :mod:`.base`, Numba code in
:mod:`.kernels`, random streams in :mod:`.rng`, ladders and swap theory in
:mod:`.tempering`.
"""

from __future__ import annotations

from typing import Any

from spinicl.config import check_choice
from spinicl.samplers.baoab import BAOABSampler
from spinicl.samplers.base import (
    PRECONDITIONERS,
    Sampler,
    SamplerDivergence,
    SamplerState,
    StepInfo,
    Trace,
    sample_trace,
)
from spinicl.samplers.exact import ExactSampler
from spinicl.samplers.mala import MALASampler
from spinicl.samplers.tempering import (
    Ladder,
    adapt_betas,
    communication_barrier,
    gaussian_swap_acceptance,
)
from spinicl.samplers.ula import ULASampler

SAMPLERS = ("ula", "mala", "baoab", "exact")
_CLASSES = {"ula": ULASampler, "mala": MALASampler, "baoab": BAOABSampler,
            "exact": ExactSampler}


def make_sampler(model, sampler: str = "mala", *, ladder: Ladder | None = None,
                 copies: int = 2, step: Any = None, gamma: float = 1.0,
                 precondition: str = "none", swap_every: int = 10,
                 adapt_ladder: bool = False, seed: int = 0, blas_threads: int = 1,
                 target_accept: float = 0.574, threads: int | None = None) -> Sampler:
    """Build a replica-exchange sampler.

    Parameters
    ----------
    model : MergedModel or FactoredModel
        From :func:`spinicl.models.build_model`; needs λ > 0.
    sampler : {"ula", "mala", "baoab", "exact"}
    ladder : Ladder, optional
        Default ``Ladder.geometric(1e-5, 1e-1, 8)``.
    copies : int
        Copies per temperature (>= 2 for overlaps).
    step : float or array (n_temps,), optional
        Step size per rung; default derived from the model (see :mod:`.base`).
    gamma : float
        BAOAB friction.
    precondition : {"none", "diag", "dense"}
    swap_every : int
        Steps between (even/odd alternating) swap rounds.
    adapt_ladder : bool
        Equalise swap rejection during burn-in.
    seed : int
        Root seed.
    blas_threads : int
        BLAS threads pinned during a run.
    target_accept : float
        MALA target acceptance (0.574).
    threads : int, optional
        Numba threads of a run (default: 1 for small batches, else all); results do
        not depend on it.

    Returns
    -------
    Sampler
    """
    sampler = check_choice("sampler", sampler, SAMPLERS)
    return _CLASSES[sampler](model, ladder=ladder, copies=copies, step=step, gamma=gamma,
                             precondition=precondition, swap_every=swap_every,
                             adapt_ladder=adapt_ladder, seed=seed,
                             blas_threads=blas_threads, target_accept=target_accept,
                             threads=threads)


__all__ = [
    "PRECONDITIONERS", "SAMPLERS", "BAOABSampler", "ExactSampler", "Ladder", "MALASampler",
    "Sampler", "SamplerDivergence", "SamplerState", "StepInfo", "Trace", "ULASampler",
    "adapt_betas", "communication_barrier", "gaussian_swap_acceptance", "make_sampler", "sample_trace",
]
