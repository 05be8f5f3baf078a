"""Samplers of the Boltzmann law p_β(W) ∝ exp(−βE(W)) with replica exchange (docs/model.md §2).

>>> from spinicl.samplers import Ladder, make_sampler
>>> ladder = Ladder.geometric(t_min=1e-5, t_max=1e-1, n_temps=8)      # coldest rung first
>>> sampler = make_sampler(model, "mala", ladder=ladder, copies=2, seed=0)
>>> state = sampler.init()
>>> state, info = sampler.run(state, 2000, burn_in=True)   # adapts step sizes (and ladder)
>>> state, info = sampler.run(state, 10000)                # frozen kernel: production
>>> sampler.positions(state).shape                         # (n_temps, copies, n_spins)

One module per sampler, each a compiled step over its own state and a
:class:`~.common.Kernel` describing it: ``ula`` (:mod:`.ula`), ``mala`` (:mod:`.mala`),
``baoab`` (:mod:`.baoab`), ``exact`` (:mod:`.exact`), ``hmc`` (:mod:`.hmc`). What they
share (step signature, preconditioner, preconditioned gradient and move) is in
:mod:`.common`; replica exchange, step-size adaptation, divergence checks and the
checkpointable state are composed around any of them in :mod:`.driver`; random streams
in :mod:`.rng`; ladders and swap theory in :mod:`.tempering`. The list of samplers, their
options and compatibility rules live in :mod:`spinicl.registry`.
"""

from __future__ import annotations

from typing import Any

from spinicl import registry
from spinicl.samplers.driver import (
    PRECONDITIONERS,
    Sampler,
    SamplerDivergence,
    SamplerState,
    StepInfo,
    Trace,
    sample_trace,
)
from spinicl.samplers.tempering import (
    Ladder,
    adapt_betas,
    communication_barrier,
    gaussian_swap_acceptance,
)

SAMPLERS = registry.sampler_names()


def make_sampler(model, sampler: str = "mala", *, ladder: Ladder | None = None,
                 copies: int = 2, step: Any = None, gamma: float = 1.0,
                 precondition: str = "none", swap_every: int = 10,
                 adapt_ladder: bool = False, seed: int = 0, blas_threads: int = 1,
                 target_accept: float | None = None, threads: int | None = None,
                 **options: Any) -> Sampler:
    """Build a replica-exchange sampler.

    Parameters
    ----------
    model : Model
        From :func:`spinicl.models.build_model`; needs λ > 0.
    sampler : {"mala", "ula", "baoab", "exact", "hmc"}
        See :mod:`spinicl.registry`.
    ladder : Ladder, optional
        Default ``Ladder.geometric(1e-5, 1e-1, 8)``.
    copies : int
        Copies per temperature (>= 2 for overlaps).
    step : float or array (n_temps,), optional
        Step size per rung; default derived from the model (see :mod:`.driver`).
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
    target_accept : float, optional
        Target acceptance of the step-size adaptation (default: the sampler's, 0.574
        for MALA, 0.65 for HMC).
    threads : int, optional
        Numba threads of a run (default: 1 for small batches, else all); results do
        not depend on it.
    **options
        The sampler's own options (``leapfrog`` for hmc; :mod:`spinicl.registry`).

    Returns
    -------
    Sampler
    """
    kernel = registry.kernel(sampler)
    return Sampler(model, kernel, ladder=ladder, copies=copies, step=step, gamma=gamma,
                   precondition=precondition, swap_every=swap_every,
                   adapt_ladder=adapt_ladder, seed=seed, blas_threads=blas_threads,
                   target_accept=target_accept, threads=threads, options=options)


__all__ = [
    "PRECONDITIONERS", "SAMPLERS", "Ladder", "Sampler", "SamplerDivergence", "SamplerState",
    "StepInfo", "Trace", "adapt_betas", "communication_barrier", "gaussian_swap_acceptance",
    "make_sampler", "sample_trace",
]
