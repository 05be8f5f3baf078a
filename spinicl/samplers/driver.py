"""The composed sampler: any sampler's step, inside replica exchange, step-size
adaptation, divergence checks and the state a run checkpoints.

A sampler advances a batch of R = n_temps·copies replicas, slot ``r = k·copies + a``
(rung k of the ladder, coldest first; copy a), one inverse temperature per rung shared
by all copies. A sampler module (:mod:`.ula`, :mod:`.mala`, :mod:`.baoab`, :mod:`.exact`,
:mod:`.hmc`) provides one compiled step over its own small state (spins, energies,
whitened gradients, and its own extra per-slot state S: BAOAB's momenta, nothing for the
others) and a :class:`~spinicl.samplers.common.Kernel` describing it; this module
composes around it, once for all samplers:

* :func:`run_block` — one compiled call runs a block of steps: the sampler's step
  (a first-class function value, as is the model's energy, rebuilt from addresses
  looked up once per :class:`Sampler`: :func:`function_addresses`), the Metropolis
  uniform, the divergence check (a failing step is not committed), the commit, the
  Robbins–Monro step-size adaptation during burn-in (samplers that adapt), and a DEO
  swap round (:func:`swap_event`) every ``swap_every`` steps;
* :class:`Sampler` — set-up through the model's interface (preconditioner, curvature,
  default steps, start), the adaptive ladder between blocks, the state as numpy arrays
  (:class:`SamplerState`, a dict round trip for checkpoints), reports.

All randomness is counter-based, keyed by slot and step (:mod:`.rng`), so a trajectory
does not depend on the number of threads and a resumed run continues bit for bit.

Step-size conventions (every copy of a rung shares its η):

* ``ula``/``mala``: W' = W − η M∇E + √(2η/β) B ξ (M = BBᵀ); stable for η < 2/λ_max(BᵀAB).
* ``baoab``/``hmc``: step h with unit mass in whitened coordinates; stable for
  h < 2/√λ_max(BᵀAB).
* λ_max comes from the model (:meth:`Model.curvature`): exact for the merged model; for
  the factored one an estimate that grows with the temperature.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from spinicl.config import ConfigError, check_choice, check_float, check_int
from spinicl.models.data import ENERGY_SIG, ENERGY_TYPE, F1, F2, I1
from spinicl.samplers.common import (
    N_WORK,
    STEP_SIG,
    STEP_TYPE,
    U1,
    Kernel,
    Preconditioner,
)
from spinicl.samplers.rng import (
    TAG_ACCEPT,
    TAG_SWAP,
    derive_keys,
    init_generator,
    uniform,
)
from spinicl.samplers.tempering import Ladder, adapt_betas, communication_barrier

PRECONDITIONERS = ("none", "diag", "dense")
TARGET_ACCEPT = 0.574
#: Swap events in the first ladder-adaptation round (then doubling).
LADDER_ROUND_EVENTS = 32
#: Below this many R·n numbers a run uses one Numba thread by default.
SMALL_BATCH = 1 << 15

#: Status codes of run_block.
OK, DIVERGED = 0, 1
#: Indices into the int64 counter array.
C_STEP, C_SWAPS, C_ADAPT, C_LADDER = 0, 1, 2, 3

I2 = types.Array(types.int64, 2, "C")


# --------------------------------------------------------------------------- swaps
@njit(cache=True, parallel=True)
def swap_event(X, E, V, betas, copies, swap_keys, event, labels, direction, round_trips,
               att, acc, prob, lad_att, lad_prob):
    """One even/odd (DEO) round of neighbour swaps within every copy.

    Event ``event`` attempts the pairs (k, k+1) with k ≡ event (mod 2). A swap exchanges
    the configurations (and their cached energy and gradient) of two slots with
    probability min(1, exp((β_k − β_{k+1})(E_k − E_{k+1}))). Statistics are pooled over
    copies; walker labels track round trips (cold end → hot end → cold end).
    """
    nt = betas.shape[0]
    n = X.shape[1]
    parity = event % 2
    npairs = nt - 1
    acc_pc = np.zeros((npairs, copies), dtype=np.int64)
    att_pc = np.zeros((npairs, copies), dtype=np.int64)
    prob_pc = np.zeros((npairs, copies))
    for a in prange(copies):
        for k in range(parity, npairs, 2):
            i = k * copies + a
            j = (k + 1) * copies + a
            loga = (betas[k] - betas[k + 1]) * (E[i] - E[j])
            if loga >= 0.0:
                p = 1.0
            elif np.isfinite(loga):
                p = np.exp(loga)
            else:
                p = 0.0
            att_pc[k, a] = 1
            prob_pc[k, a] = p
            u = uniform(swap_keys[a], event, (TAG_SWAP << 40) + k)
            if u < p:
                acc_pc[k, a] = 1
                for m in range(n):
                    t = X[i, m]
                    X[i, m] = X[j, m]
                    X[j, m] = t
                    t = V[i, m]
                    V[i, m] = V[j, m]
                    V[j, m] = t
                t = E[i]
                E[i] = E[j]
                E[j] = t
                lt = labels[k, a]
                labels[k, a] = labels[k + 1, a]
                labels[k + 1, a] = lt
        # round trips: cold end (k = 0) -> hot end (k = nt-1) -> cold end
        lab = labels[0, a]
        if direction[lab] == 1:
            round_trips[a] += 1
        direction[lab] = 0
        lab = labels[nt - 1, a]
        if direction[lab] == 0:
            direction[lab] = 1
    for k in range(npairs):
        for a in range(copies):
            att[k] += att_pc[k, a]
            acc[k] += acc_pc[k, a]
            prob[k] += prob_pc[k, a]
            lad_att[k] += att_pc[k, a]
            lad_prob[k] += prob_pc[k, a]


# --------------------------------------------------------------------------- commit
@njit(cache=True, inline="always")
def _take(p, key, t):
    """The Metropolis decision of a slot: u < p (no draw when p >= 1 or p <= 0)."""
    return p >= 1.0 or (p > 0.0 and uniform(key, t, TAG_ACCEPT << 40) < p)


@njit(cache=True, parallel=True)
def _commit(X, E, V, S, Xp, Ep, Vp, Sp, accp, keys, t, accepted):
    R, n = X.shape
    ns = S.shape[1]
    for r in prange(R):
        if _take(accp[r], keys[r], t):
            accepted[r] += 1
            E[r] = Ep[r]
            for i in range(n):
                X[r, i] = Xp[r, i]
                V[r, i] = Vp[r, i]
            for i in range(ns):
                S[r, i] = Sp[r, i]


# --------------------------------------------------------------------------- functions
# The step and the energy reach run_block as first-class function values. Passing the
# dispatchers themselves would make every call look both compiled entry points up again
# (0.2-0.3 ms a call, more than a whole step of a small model); instead the Sampler
# looks their addresses up once (function_addresses) and run_block rebuilds the values
# from them, exactly as Numba's own unboxing of a dispatcher argument builds them.
def _function_value(fty: types.FunctionType):
    """An intrinsic ``(c_addr, py_addr, jit_addr) -> fty``: the first-class function value
    of type ``fty`` with these addresses (C wrapper, Python object, Numba-ABI entry; a
    call goes through the Numba-ABI entry, so exceptions propagate)."""

    @intrinsic
    def make(typingctx, c_addr, py_addr, jit_addr):
        def codegen(context, builder, signature, args):
            value = cgutils.create_struct_proxy(fty)(context, builder)
            pointer = context.get_value_type(types.voidptr)
            value.c_addr = builder.inttoptr(args[0], pointer)
            value.py_addr = builder.inttoptr(args[1], pointer)
            value.jit_addr = builder.inttoptr(args[2], pointer)
            return value._getvalue()

        return fty(types.int64, types.int64, types.int64), codegen

    return make


_step_value = _function_value(STEP_TYPE)
_energy_value = _function_value(ENERGY_TYPE)


def function_addresses(func, sig) -> np.ndarray:
    """The addresses (C wrapper, Python object, Numba-ABI entry) of the compiled
    ``func`` (a Numba dispatcher) for the signature ``sig``, int64 (3,); the numbers
    Numba's unboxing of ``func`` as a ``FunctionType(sig)`` argument computes. They stay
    valid while ``func`` lives (the caller keeps a reference)."""
    from numba.experimental import function_type

    return np.array([function_type._get_wrapper_address(func, sig), id(func),
                     function_type._get_jit_address(func, sig)], dtype=np.int64)


BLOCK_SIG = types.UniTuple(types.int64, 3)(
    I2, F1, F1, F2,                                # step and energy addresses, sp, sv, sm
    F2, F2, F1, F1, I1,                            # energy data
    types.int64, F1, F2, F2,                       # preconditioner
    F2, F1, F2, F2,                                # X, E, V, S
    F1, F1, types.int64, U1, U1, I2, I1, I1,       # betas, eta, copies, keys, swap_keys,
    I1, I1, I1, I1, F1, I1, F1,                    # labels, direction, round_trips,
    types.int64, types.int64, types.boolean,       # counters, accepted, swap stats
    types.float64, types.float64)                  # n_steps, swap_every, adapt, target, e_limit


@njit(BLOCK_SIG, cache=True)
def run_block(functions, sp, sv, sm, M1, M2, v1, fp, ip, pmode, bdiag, B, BT,
              X, E, V, S, betas, eta, copies, keys, swap_keys, labels, direction,
              round_trips, counters, accepted, sw_att, sw_acc, sw_prob, lad_att, lad_prob,
              n_steps, swap_every, adapt, target, e_limit):
    """Advance the batch by ``n_steps`` steps of ``step``, in place.

    Parameters
    ----------
    functions : int64 (2, 3)
        :func:`function_addresses` of the sampler's compiled step
        (:data:`spinicl.samplers.common.STEP_SIG`) and of the model's compiled energy
        (:data:`spinicl.models.data.ENERGY_SIG`).
    sp, sv, sm
        The sampler's own parameters.
    M1, M2, v1, fp, ip
        The model's data bundle.
    pmode, bdiag, B, BT
        The preconditioner.
    X, E, V, S
        Spins (R, n), energies (R,), whitened gradients (R, n), the sampler's extra
        per-slot state (R, w).
    betas, eta : (n_temps,)
        Inverse temperatures and step sizes per rung; ``eta`` adapts in place when
        ``adapt``.
    counters : int64 (4,)
        step, swap events, adaptation steps, swap events since the last ladder update.
    accepted : int64 (R,)
        Cumulative accepted moves per slot.
    sw_att, sw_acc, sw_prob, lad_att, lad_prob : (n_temps - 1,)
        Cumulative swap statistics, the ``lad_*`` pair since the last ladder update.
    adapt : bool
        Robbins–Monro on log η toward ``target`` (burn-in of an adapting sampler).
    e_limit : float
        An accepted energy above this (or NaN/Inf) is a divergence.

    Returns
    -------
    status : 0 done, 1 diverged (the failing step is not committed: the arrays hold the
        last finite state and ``counters[0]`` its step)
    done : steps completed
    bad : the first slot that diverged (-1 if none)
    """
    step = _step_value(functions[0, 0], functions[0, 1], functions[0, 2])
    energy = _energy_value(functions[1, 0], functions[1, 1], functions[1, 2])
    R, n = X.shape
    nt = betas.shape[0]
    Xp = np.empty((R, n))
    Vp = np.empty((R, n))
    Sp = np.empty(S.shape)
    Ep = np.empty(R)
    work = np.empty((N_WORK, R, n))
    accp = np.empty(R)
    for s in range(n_steps):
        t = counters[C_STEP]
        step(X, E, V, S, Xp, Ep, Vp, Sp, work, accp, eta, betas, copies, keys, t, sp, sv,
             sm, energy, M1, M2, v1, fp, ip, pmode, bdiag, B, BT)
        for r in range(R):     # a divergence that would be accepted: nothing is committed
            if not (np.isfinite(Ep[r]) and Ep[r] <= e_limit) and _take(accp[r], keys[r], t):
                return DIVERGED, s, r
        _commit(X, E, V, S, Xp, Ep, Vp, Sp, accp, keys, t, accepted)
        if adapt:
            gain = 1.0 / (counters[C_ADAPT] + 10.0) ** 0.6
            for k in range(nt):
                m = 0.0
                for a in range(copies):
                    m += accp[k * copies + a]
                m /= copies
                eta[k] *= np.exp(gain * (m - target))
            counters[C_ADAPT] += 1
        counters[C_STEP] = t + 1
        if nt > 1 and (t + 1) % swap_every == 0:
            swap_event(X, E, V, betas, copies, swap_keys, counters[C_SWAPS], labels,
                       direction, round_trips, sw_att, sw_acc, sw_prob, lad_att, lad_prob)
            counters[C_SWAPS] += 1
            counters[C_LADDER] += 1
    return OK, n_steps, -1


# --------------------------------------------------------------------------- state
class SamplerState(NamedTuple):
    """Complete mutable state of a composed sampler (every field a numpy array or scalar).

    Shapes: R = n_temps·copies slots, n = n_spins. The sampler's own state is
    ``W``, ``energy``, ``grad`` and ``momentum`` (its extra per-slot state: BAOAB's
    momenta, shape (R, n); (R, 0) for samplers without one); the rest belongs to the
    replica exchange, the adaptation and the counters composed around it.
    """

    W: np.ndarray                # (R, n) spins, slot order
    momentum: np.ndarray         # (R, w) the sampler's extra state (BAOAB momenta, whitened)
    energy: np.ndarray           # (R,) E(W)
    grad: np.ndarray             # (R, n) whitened gradient v = Bᵀ∇E(W)
    betas: np.ndarray            # (n_temps,) ladder, descending
    step_size: np.ndarray        # (n_temps,) η (or h) per rung
    keys: np.ndarray             # (R,) uint64 per-slot stream keys
    swap_keys: np.ndarray        # (copies,) uint64 per-copy swap stream keys
    labels: np.ndarray           # (n_temps, copies) int64 walker label at each slot
    direction: np.ndarray        # (R,) int64 per walker: -1 none, 0 left cold end, 1 reached hot end
    round_trips: np.ndarray      # (copies,) int64 completed cold→hot→cold trips
    accepted: np.ndarray         # (R,) int64 cumulative accepted local moves per slot
    swap_attempts: np.ndarray    # (n_temps-1,) int64 cumulative, pooled over copies
    swap_accepted: np.ndarray    # (n_temps-1,) int64
    swap_prob: np.ndarray        # (n_temps-1,) float64 summed min(1, e^Δ)
    ladder_attempts: np.ndarray  # (n_temps-1,) int64 since the last ladder update
    ladder_prob: np.ndarray      # (n_temps-1,) float64 since the last ladder update
    step: np.int64               # steps done
    swap_events: np.int64        # swap rounds done (its parity picks even/odd pairs)
    adapt_steps: np.int64        # step-size adaptation steps done
    ladder_events: np.int64      # swap rounds since the last ladder update
    ladder_round: np.int64       # ladder updates done


_SCALARS = ("step", "swap_events", "adapt_steps", "ladder_events", "ladder_round")
_DTYPES = {"keys": np.uint64, "swap_keys": np.uint64, "labels": np.int64,
           "direction": np.int64, "round_trips": np.int64, "accepted": np.int64,
           "swap_attempts": np.int64, "swap_accepted": np.int64, "ladder_attempts": np.int64}


class SamplerDivergence(RuntimeError):
    """A trajectory produced a NaN/Inf or an energy blow-up.

    Attributes
    ----------
    state : SamplerState
        The last finite state (the failing step is not committed).
    sampler : str
    step_size : float
        Step size of the rung that failed.
    bound : float
        Stability bound of that rung (NaN if unknown).
    """

    def __init__(self, message: str, state: SamplerState, sampler: str = "",
                 step_size: float = math.nan, bound: float = math.nan):
        super().__init__(message)
        self.state = state
        self.sampler = sampler
        self.step_size = step_size
        self.bound = bound


class StepInfo(NamedTuple):
    """What one call of :meth:`Sampler.run` did.

    Attributes
    ----------
    accept : ndarray, shape (n_temps, copies)
        Local-move acceptance rate over the block (1.0 for ula, baoab, exact).
    swap_accept : ndarray, shape (n_temps - 1,)
        Swap acceptance per neighbouring pair over the block, pooled over copies
        (NaN where no swap was attempted).
    n_steps : int
    step_size : ndarray, shape (n_temps,)
        Step sizes at the end of the block.
    betas : ndarray, shape (n_temps,)
        Ladder at the end of the block.
    energy_mean : ndarray, shape (n_temps,)
        Energy at the end of the block, averaged over copies.
    """

    accept: np.ndarray
    swap_accept: np.ndarray
    n_steps: int
    step_size: np.ndarray
    betas: np.ndarray
    energy_mean: np.ndarray


_controller = None


class _blas_limit:
    """Context manager pinning every loaded BLAS (and OpenMP runtime) to n threads, as
    ``threadpoolctl``'s ``limit(limits=n)`` does, at a fraction of its cost (~20 µs a
    call): only the libraries that run another number are set (and restored on exit),
    directly unless one is OpenBLAS (whose process-wide pool threadpoolctl guards with a
    controlling thread: then its own ``limit``)."""

    __slots__ = ("changed", "limiter", "n")

    def __init__(self, n: int):
        global _controller
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        self.n = n
        self.changed = []
        self.limiter = None

    def __enter__(self):
        changed = [(lib, k) for lib in _controller.lib_controllers
                   if (k := lib.get_num_threads()) != self.n]
        if any(lib.internal_api == "openblas" for lib, _ in changed):
            self.limiter = _controller.limit(limits=self.n)
            self.limiter.__enter__()
            return self
        for lib, _ in changed:
            lib.set_num_threads(self.n)
        self.changed = changed
        return self

    def __exit__(self, *exc):
        if self.limiter is not None:
            self.limiter.__exit__(*exc)
            self.limiter = None
        for lib, k in self.changed:
            lib.set_num_threads(k)
        self.changed = []


class Sampler:
    """A replica-exchange sampler: one sampler's step composed with swaps, adaptation,
    divergence checks and a checkpointable state.

    Build one with :func:`spinicl.samplers.make_sampler`.

    Parameters
    ----------
    model : Model
        Any model of :mod:`spinicl.models` (the interface only is used).
    kernel : type
        The sampler's :class:`~spinicl.samplers.common.Kernel` class.
    ladder : Ladder
    copies : int
        Copies per temperature, >= 1.
    step : float, array of shape (n_temps,), or None
        Step size per rung (None: the sampler's default from the stability bound).
    gamma : float
        BAOAB friction, > 0.
    precondition : {"none", "diag", "dense"}
        ``diag``: M = diag(H)⁻¹ (the model's Hessian diagonal at its reference point);
        ``dense``: M = A⁻¹ through the Cholesky factor (models that have one).
    swap_every : int
        Steps between swap rounds, >= 1.
    adapt_ladder : bool
        Adapt the ladder during burn-in (needs n_temps >= 3 to do anything).
    seed : int
        Root seed of the stream keys and the default initial draw.
    blas_threads : int
        BLAS threads during a run (pinned, so results are reproducible).
    threads : int or None
        Numba threads during a run (at most ``NUMBA_NUM_THREADS``). None: 1 when
        R·n < 2¹⁵ (a parallel region costs more than the work; on a loaded machine
        much more) or when ``blas_threads > 1`` (spinning OpenMP workers and BLAS
        threads fight over the cores: measured 20× slower on 2 cores), else all.
        Results do not depend on it.
    target_accept : float or None
        Target acceptance of the step-size adaptation (None: the sampler's, 0.574 for
        MALA, 0.65 for HMC).
    options : dict
        The sampler's own options (the registry's, e.g. ``leapfrog`` for hmc).
    """

    def __init__(self, model, kernel: type[Kernel], ladder: Ladder | None = None,
                 copies: int = 2, step: Any = None, gamma: float = 1.0,
                 precondition: str = "none", swap_every: int = 10,
                 adapt_ladder: bool = False, seed: int = 0, blas_threads: int = 1,
                 target_accept: float | None = None, threads: int | None = None,
                 options: dict | None = None):
        if not callable(getattr(model, "kernel", None)):
            raise ConfigError("model", "a model of spinicl.models (build_model)",
                              type(model).__name__)
        if model.lam <= 0:
            raise ConfigError("lam", "> 0 for sampling", model.lam,
                              "with lam <= 0 the Boltzmann distribution is improper "
                              "(free inactive spins)")
        if ladder is None:
            ladder = Ladder.geometric()
        if not isinstance(ladder, Ladder):
            raise ConfigError("ladder", "a Ladder (Ladder.geometric / from_temperatures / "
                              "from_betas)", type(ladder).__name__)
        self.model = model
        self.ladder = ladder
        self.copies = check_int("copies", copies, 1)
        self.gamma = check_float("gamma", gamma, low=0.0, low_open=True,
                                 note="the BAOAB friction")
        self.precondition = check_choice("precondition", precondition, PRECONDITIONERS)
        self.swap_every = check_int("swap_every", swap_every, 1)
        if not isinstance(adapt_ladder, (bool, np.bool_)):
            raise ConfigError("adapt_ladder", "True or False", adapt_ladder)
        self.adapt_ladder = bool(adapt_ladder)
        self.seed = check_int("seed", seed, 0, 2**63 - 1)
        self.blas_threads = check_int("blas_threads", blas_threads, 1)
        self._threads = None if threads is None else check_int("threads", threads, 1)
        if target_accept is None:
            target_accept = kernel.target_accept
        self.target_accept = check_float("target_accept", target_accept, low=0.0,
                                         high=1.0, low_open=True, high_open=True)
        self.n_temps = ladder.n_temps
        self.n_replicas = self.n_temps * self.copies
        self.n_spins = model.n_spins
        from spinicl import registry

        self.options = registry.sampler_options(kernel.name, options or {})
        registry.check_combination(model, kernel.name, self.precondition)
        self.kernel = kernel(model, self.precondition, gamma=self.gamma, **self.options)
        self.kernel.check()
        self.name = kernel.name
        self._energy, self._data = model.kernel()
        self._precond = Preconditioner(model, self.precondition)
        self._params = self.kernel.params()
        self._functions = np.stack([function_addresses(self.kernel.step, STEP_SIG),
                                    function_addresses(self._energy, ENERGY_SIG)])
        self.stability_bound = self._stability_bound(ladder.betas)
        self._user_step = None if step is None else self._check_step(step)
        e_ref = float(model.energy(np.zeros((1, self.n_spins)))[0])     # E(0)
        self.e_limit = 1e10 * (abs(e_ref) + self.n_spins / (2.0 * ladder.betas[-1]) + 1.0)

    @property
    def threads(self) -> int:
        """Numba threads used by :meth:`run`."""
        if self._threads is not None:
            return self._threads
        if self.n_replicas * self.n_spins < SMALL_BATCH or self.blas_threads > 1:
            return 1
        return int(numba.config.NUMBA_NUM_THREADS)

    # ---------------------------------------------------------------- setup
    def _check_step(self, step) -> np.ndarray:
        arr = np.atleast_1d(np.asarray(step, dtype=np.float64)) if not isinstance(
            step, str) else None
        if arr is None or arr.ndim != 1 or arr.size not in (1, self.n_temps):
            raise ConfigError("step", f"a number > 0 or {self.n_temps} numbers > 0 (one "
                              "per rung)", step)
        for v in arr:
            check_float("step", v, low=0.0, low_open=True)
        return np.broadcast_to(arr, (self.n_temps,)).astype(np.float64).copy()

    def curvature(self, betas: np.ndarray) -> np.ndarray:
        """Largest curvature λ_max of the (preconditioned) energy per rung, (n_temps,).

        Exact for the merged model; a heuristic estimate for the factored one.
        """
        return self.model.curvature(np.asarray(betas, dtype=np.float64), self.precondition)

    def _stability_bound(self, betas: np.ndarray) -> np.ndarray:
        """Stability bound of the step per rung, (n_temps,): 2/λ_max or 2/√λ_max."""
        c = self.curvature(betas)
        return 2.0 / (np.sqrt(c) if self.kernel.bound_order == 2 else c)

    def default_step(self) -> np.ndarray:
        """The sampler's default step per rung, (n_temps,)."""
        return self.kernel.default_step(self.stability_bound)

    @property
    def bound_is_exact(self) -> bool:
        return bool(self.model.curvature_exact)

    # ---------------------------------------------------------------- compiled energy
    def _energy_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies (R,), gradients and whitened gradients (R, n) through the kernels."""
        from spinicl.samplers.common import whiten

        X = np.ascontiguousarray(X, dtype=np.float64)
        R = X.shape[0]
        E = np.empty(R)
        G = np.empty_like(X)
        V = np.empty_like(X)
        p = self._precond
        with _blas_limit(self.blas_threads):
            self._energy(X, E, G, *self._data)
            whiten(p.pmode, G, V, p.bdiag, p.B)
        return E, G, V

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (R,) and gradient (R, n) through the compiled kernels."""
        E, G, _ = self._energy_grad(np.atleast_2d(W))
        return E, G

    # ---------------------------------------------------------------- state
    def default_init(self) -> np.ndarray:
        """The default start, shape (R, n): the model's reference point (the ridge mean;
        for the factored model its balanced factors) plus independent normal noise of
        the diagonal thermal width 1/√(β_k H_ii) at each rung. The noise comes from
        ``SeedSequence(seed)`` (a child separate from the sampling streams).
        """
        rng = init_generator(self.seed)
        center = self.model.reference()
        d = self.model.diag_curvature()
        beta = np.repeat(self.ladder.betas, self.copies)
        z = rng.standard_normal((self.n_replicas, self.n_spins))
        return center[None, :] + z / np.sqrt(beta[:, None] * d[None, :])

    def random_init(self) -> np.ndarray:
        """The paper's training start, shape (R, n): every spin i.i.d. N(0, 1/(D+1))
        (factored: the factors; merged: the entries of W), independently per replica,
        from ``SeedSequence(seed)``'s initial-draw child (the recorded sampler seed)."""
        rng = init_generator(self.seed)
        return rng.normal(0.0, 1.0 / np.sqrt(self.model.D + 1),
                          (self.n_replicas, self.n_spins))

    def start(self, init: str = "ridge") -> np.ndarray:
        """The start named by ``init`` (``spinicl sample --init``), shape (R, n) or what
        :meth:`init` broadcasts: ``"ridge"`` :meth:`default_init`, ``"random"``
        :meth:`random_init`, or a ``.npy`` / run ``.h5`` file (:func:`load_start`)."""
        if init == "ridge":
            return self.default_init()
        if init == "random":
            return self.random_init()
        return load_start(init, self.n_spins)

    def init(self, W0: np.ndarray | None = None, *, start: str | None = None
             ) -> SamplerState:
        """Initial state.

        Parameters
        ----------
        W0 : ndarray, optional
            Start of shape (R, n), (n_temps, copies, n) or (n,) (broadcast to every
            slot); default :meth:`default_init`.
        start : str, optional
            Instead of ``W0``: ``"ridge"``, ``"random"`` or a file (:meth:`start`).

        Returns
        -------
        SamplerState
        """
        R, n, nt = self.n_replicas, self.n_spins, self.n_temps
        if start is not None:
            if W0 is not None:
                raise ConfigError("W0", "given alone (W0 or start, not both)", start)
            W0 = self.start(start)
        if W0 is None:
            X = self.default_init()
        else:
            X = np.asarray(W0, dtype=np.float64)
            if X.shape == (n,):
                X = np.broadcast_to(X, (R, n))
            elif X.shape == (nt, self.copies, n):
                X = X.reshape(R, n)
            if X.shape != (R, n):
                raise ConfigError("W0", f"an array of shape ({R}, {n}), ({nt}, "
                                  f"{self.copies}, {n}) or ({n},)", X.shape)
            if not np.all(np.isfinite(X)):
                raise ConfigError("W0", "finite numbers", "non-finite entries")
        X = np.ascontiguousarray(X, dtype=np.float64).copy()
        E, _, V = self._energy_grad(X)
        keys, swap_keys = derive_keys(self.seed, R, self.copies)
        betas = self.ladder.betas.copy()
        step = self._user_step if self._user_step is not None else self.default_step()
        mom = np.ascontiguousarray(self.kernel.init_extra(np.repeat(betas, self.copies), n,
                                                          self.seed), dtype=np.float64)
        labels = np.arange(R, dtype=np.int64).reshape(nt, self.copies)
        direction = np.full(R, -1, dtype=np.int64)
        direction[labels[0]] = 0
        z = np.zeros(max(nt - 1, 0))
        zi = np.zeros(max(nt - 1, 0), dtype=np.int64)
        return SamplerState(
            W=X, momentum=mom, energy=E, grad=V, betas=betas, step_size=step.copy(),
            keys=keys, swap_keys=swap_keys, labels=labels, direction=direction,
            round_trips=np.zeros(self.copies, dtype=np.int64),
            accepted=np.zeros(R, dtype=np.int64), swap_attempts=zi.copy(),
            swap_accepted=zi.copy(), swap_prob=z.copy(), ladder_attempts=zi.copy(),
            ladder_prob=z.copy(), step=np.int64(0), swap_events=np.int64(0),
            adapt_steps=np.int64(0), ladder_events=np.int64(0), ladder_round=np.int64(0),
        )

    @staticmethod
    def state_to_dict(state: SamplerState) -> dict[str, np.ndarray]:
        """Every field as a numpy array (scalars as 0-d arrays)."""
        return {k: np.array(v) for k, v in state._asdict().items()}

    @staticmethod
    def state_from_dict(d: dict[str, Any]) -> SamplerState:
        """Rebuild a state from :meth:`state_to_dict` output (or HDF5 datasets)."""
        out = {}
        for k in SamplerState._fields:
            if k not in d:
                raise ConfigError("state", f"a dict with the field {k!r}", sorted(d))
            v = np.asarray(d[k][()] if hasattr(d[k], "shape") and not isinstance(
                d[k], np.ndarray) else d[k])
            if k in _SCALARS:
                out[k] = np.int64(v)
            else:
                out[k] = np.ascontiguousarray(v, dtype=_DTYPES.get(k, np.float64)).copy()
        return SamplerState(**out)

    def _check_state(self, state: SamplerState) -> SamplerState:
        if not isinstance(state, SamplerState):
            raise ConfigError("state", "a SamplerState (sampler.init / state_from_dict)",
                              type(state).__name__)
        if state.W.shape != (self.n_replicas, self.n_spins):
            raise ConfigError("state", f"W of shape ({self.n_replicas}, {self.n_spins}) "
                              "for this sampler", state.W.shape)
        width = self.n_spins if self.kernel.extra_state == "n" else 0
        if state.momentum.shape != (self.n_replicas, width):
            if width == 0:      # a checkpoint of format 1 held zero momenta for every sampler
                return state._replace(momentum=np.zeros((self.n_replicas, 0)))
            raise ConfigError("state", f"momentum of shape ({self.n_replicas}, {width}) "
                              f"for {self.name}", state.momentum.shape)
        return state

    # ---------------------------------------------------------------- run
    def run(self, state: SamplerState, n_steps: int,
            burn_in: bool = False) -> tuple[SamplerState, StepInfo]:
        """Advance ``n_steps`` steps (with a swap round every ``swap_every`` steps).

        Parameters
        ----------
        state : SamplerState
            Not modified (a new state is returned).
        n_steps : int
            >= 0.
        burn_in : bool
            Adapt the step sizes (samplers that adapt) and (if ``adapt_ladder``) the
            ladder. Outside burn-in nothing adapts: the chain is a fixed Markov kernel.

        Returns
        -------
        state : SamplerState
        info : StepInfo

        Raises
        ------
        SamplerDivergence
            On a NaN/Inf or an energy above ``e_limit``; ``.state`` is the last finite
            state.
        """
        state = self._check_state(state)
        n_steps = check_int("n_steps", n_steps, 0)
        # a private copy of every array (run_block works in place; ``state`` stays as is)
        s = {k: (v.copy() if isinstance(v, np.ndarray) else np.array(v, copy=True))
             for k, v in zip(SamplerState._fields, state)}
        counters = np.array([state.step, state.swap_events, state.adapt_steps,
                             state.ladder_events], dtype=np.int64)
        threads = min(self.threads, numba.config.NUMBA_NUM_THREADS)
        prev_threads = numba.get_num_threads()
        if threads != prev_threads:
            numba.set_num_threads(threads)
        try:
            self._run_blocks(s, counters, n_steps, burn_in)
        finally:
            if threads != prev_threads:
                numba.set_num_threads(prev_threads)
        new = _snapshot(s, counters)
        if n_steps:
            accept = (new.accepted - state.accepted) / n_steps
        else:
            accept = np.full(self.n_replicas, np.nan)
        datt = new.swap_attempts - state.swap_attempts
        swap = np.where(datt > 0, (new.swap_accepted - state.swap_accepted)
                        / np.maximum(datt, 1), np.nan)
        info = StepInfo(accept=accept.reshape(self.n_temps, self.copies), swap_accept=swap,
                        n_steps=n_steps, step_size=new.step_size.copy(),
                        betas=new.betas.copy(), energy_mean=self.energies(new).mean(axis=1))
        return new, info

    def _run_blocks(self, s: dict, counters: np.ndarray, n_steps: int,
                    burn_in: bool) -> None:
        """The chunked block loop of :meth:`run` (mutates ``s`` and ``counters``)."""
        adapting = burn_in and self.adapt_ladder and self.n_temps > 2
        adapt_step = bool(burn_in and self.kernel.adapts)
        sp, sv, sm = self._params
        remaining = n_steps
        with _blas_limit(self.blas_threads):
            while remaining > 0:
                chunk = remaining
                if adapting:
                    target = LADDER_ROUND_EVENTS * 2 ** int(s["ladder_round"])
                    need = target - int(counters[C_LADDER])
                    if need <= 0:
                        self._adapt_ladder(s, counters)
                        continue
                    se = self.swap_every
                    chunk = min(chunk, need * se - int(counters[C_STEP]) % se)
                status, done, bad = run_block(
                    self._functions, sp, sv, sm, *self._data,
                    *self._precond.args, s["W"], s["energy"], s["grad"], s["momentum"],
                    s["betas"], s["step_size"], self.copies, s["keys"], s["swap_keys"],
                    s["labels"], s["direction"], s["round_trips"], counters, s["accepted"],
                    s["swap_attempts"], s["swap_accepted"], s["swap_prob"],
                    s["ladder_attempts"], s["ladder_prob"], chunk, self.swap_every,
                    adapt_step, self.target_accept, self.e_limit)
                remaining -= done
                if status != OK:
                    raise self._divergence(_snapshot(s, counters), bad)
                if adapting and (counters[C_LADDER]
                                 >= LADDER_ROUND_EVENTS * 2 ** int(s["ladder_round"])):
                    self._adapt_ladder(s, counters)

    def _adapt_ladder(self, s: dict, counters: np.ndarray) -> None:
        """Equalise the measured rejections; start the next (doubled) round."""
        att = s["ladder_attempts"]
        with np.errstate(invalid="ignore", divide="ignore"):
            rej = np.where(att > 0, 1.0 - s["ladder_prob"] / np.maximum(att, 1), np.nan)
        s["betas"][:] = adapt_betas(s["betas"], rej)
        s["ladder_attempts"][:] = 0
        s["ladder_prob"][:] = 0.0
        counters[C_LADDER] = 0
        s["ladder_round"] = np.int64(int(s["ladder_round"]) + 1)

    def _divergence(self, state: SamplerState, slot: int) -> SamplerDivergence:
        k = int(slot) // self.copies
        eta = float(state.step_size[k])
        bound = float(self._stability_bound(state.betas)[k])
        kind = self.kernel.bound_text()
        if self.precondition != "none":
            kind += " of the preconditioned problem"
        how = "" if self.bound_is_exact else " (estimated)"
        msg = (f"{self.name} diverged at step {int(state.step) + 1} (NaN/Inf or energy "
               f"above {self.e_limit:.3g}) with step size {eta:.4g} at T = "
               f"{1.0 / state.betas[k]:.4g}; the stability bound is {kind} = {bound:.4g}"
               f"{how}. Use a smaller step. The state holds the last finite step.")
        return SamplerDivergence(msg, state, self.name, eta, bound)

    # ---------------------------------------------------------------- views
    def positions(self, state: SamplerState) -> np.ndarray:
        """Configurations in ladder order, shape (n_temps, copies, n_spins)."""
        return state.W.reshape(self.n_temps, self.copies, self.n_spins)

    def energies(self, state: SamplerState) -> np.ndarray:
        """Energies in ladder order, shape (n_temps, copies)."""
        return state.energy.reshape(self.n_temps, self.copies)

    def effective_weights(self, state: SamplerState) -> np.ndarray:
        """Merged weights W (W_qᵀW_k for the factored model), (n_temps, copies, (D+1)²)."""
        W = self.model.effective_weights(state.W)
        return W.reshape(self.n_temps, self.copies, -1)

    def report(self, state: SamplerState) -> dict[str, Any]:
        """Cumulative diagnostics since :meth:`init`.

        Returns
        -------
        dict
            ``sampler``, ``betas`` and ``temperatures`` (n_temps,), ``step_size``
            (n_temps,), ``stability_bound`` (n_temps,), ``acceptance`` (n_temps, copies),
            ``swap_attempts`` (n_temps−1,), ``swap_acceptance`` (n_temps−1,) accepted
            fraction pooled over copies, ``swap_acceptance_mean`` (mean of
            min(1, e^Δ), lower variance), ``swap_rejection`` = 1 − that,
            ``barrier`` Λ = Σ rejection, ``round_trips`` (copies,), ``round_trips_total``,
            ``steps``, ``swap_events``, ``ladder_rounds``.
        """
        state = self._check_state(state)
        steps = int(state.step)
        with np.errstate(invalid="ignore", divide="ignore"):
            att = state.swap_attempts
            sa = np.where(att > 0, state.swap_accepted / np.maximum(att, 1), np.nan)
            sm = np.where(att > 0, state.swap_prob / np.maximum(att, 1), np.nan)
            acc = (state.accepted / steps if steps else
                   np.full(self.n_replicas, np.nan)).reshape(self.n_temps, self.copies)
        rej = 1.0 - sm
        return {
            "sampler": self.name,
            "precondition": self.precondition,
            "betas": state.betas.copy(),
            "temperatures": 1.0 / state.betas,
            "step_size": state.step_size.copy(),
            "stability_bound": self._stability_bound(state.betas),
            "acceptance": acc,
            "swap_attempts": att.copy(),
            "swap_acceptance": sa,
            "swap_acceptance_mean": sm,
            "swap_rejection": rej,
            "barrier": communication_barrier(rej),
            "round_trips": state.round_trips.copy(),
            "round_trips_total": int(state.round_trips.sum()),
            "steps": steps,
            "swap_events": int(state.swap_events),
            "ladder_rounds": int(state.ladder_round),
        }


def _snapshot(s: dict, counters: np.ndarray) -> SamplerState:
    d = dict(s)
    d["step"], d["swap_events"], d["adapt_steps"], d["ladder_events"] = (
        np.int64(c) for c in counters)
    d["ladder_round"] = np.int64(d["ladder_round"])
    return SamplerState(**d)


class Trace(NamedTuple):
    """Records of :func:`sample_trace` (record axis first).

    Attributes
    ----------
    positions : ndarray, shape (n_records, n_temps, copies, n_spins)
    energies : ndarray, shape (n_records, n_temps, copies)
    betas : ndarray, shape (n_records, n_temps)
    accept : ndarray, shape (n_records, n_temps, copies)
        Local acceptance over each record interval.
    swap_accept : ndarray, shape (n_records, n_temps - 1)
        Swap acceptance over each record interval (NaN: no attempt).
    momenta : ndarray, shape (n_records, n_temps, copies, n_spins)
        The sampler's extra state (BAOAB momenta, whitened coordinates); zeros for
        samplers without one.
    """

    positions: np.ndarray
    energies: np.ndarray
    betas: np.ndarray
    accept: np.ndarray
    swap_accept: np.ndarray
    momenta: np.ndarray


def sample_trace(sampler: Sampler, state: SamplerState, n_records: int, every: int = 1,
                 burn_in: bool = False) -> tuple[SamplerState, Trace]:
    """Run ``n_records·every`` steps, recording after every ``every`` steps (in memory).

    A minimal in-memory recorder for tests and notebooks; long runs should stream to
    HDF5 through the runner.
    """
    n_records = check_int("n_records", n_records, 1)
    every = check_int("every", every, 1)
    nt, cp, n = sampler.n_temps, sampler.copies, sampler.n_spins
    pos = np.empty((n_records, nt, cp, n))
    mom = np.empty((n_records, nt, cp, n))
    en = np.empty((n_records, nt, cp))
    bet = np.empty((n_records, nt))
    acc = np.empty((n_records, nt, cp))
    sw = np.empty((n_records, max(nt - 1, 0)))
    for i in range(n_records):
        state, info = sampler.run(state, every, burn_in=burn_in)
        pos[i] = sampler.positions(state)
        mom[i] = (state.momentum.reshape(nt, cp, n) if state.momentum.shape[1] == n
                  else 0.0)
        en[i] = sampler.energies(state)
        bet[i] = state.betas
        acc[i] = info.accept
        sw[i] = info.swap_accept
    return state, Trace(pos, en, bet, acc, sw, mom)


def load_start(path: str, n_spins: int | None = None) -> np.ndarray:
    """A start read from a file (``spinicl sample --init FILE``).

    ``.npy``: an array of shape (n_spins,), (R, n_spins) or (T, M, n_spins). ``.h5``: a
    spinicl run file's last snapshot (T, M, n_spins), or, without snapshots, the spins of
    its last checkpoint (R, n_spins). ConfigError ``init`` for a missing or unreadable
    file, another shape, a last axis other than ``n_spins`` (when given) or non-finite
    entries.
    """
    import os

    if not os.path.isfile(path):
        raise ConfigError("init", "ridge, random, or an existing .npy or run .h5 file", path)
    try:
        if path.endswith(".npy"):
            X = np.load(path, allow_pickle=False)
        else:
            import h5py

            with h5py.File(path, "r", locking=False) as f:
                n_snap = int(f["checkpoint/meta"][4]) if "checkpoint/meta" in f else 0
                if "snapshots/W" in f and n_snap > 0:
                    X = f["snapshots/W"][n_snap - 1]
                else:
                    meta = f["checkpoint/meta"][...]
                    X = f[f"checkpoint/slot{int(meta[1])}/W"][...]
        X = np.asarray(X, dtype=np.float64)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        raise ConfigError("init", "a readable .npy array or spinicl run .h5 file",
                          path, type(exc).__name__) from None
    if X.ndim not in (1, 2, 3) or (n_spins is not None and X.shape[-1] != n_spins):
        want = "n" if n_spins is None else str(n_spins)
        raise ConfigError("init", f"an array of shape ({want},), (R, {want}) or (T, M, "
                          f"{want})", f"{path}: shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ConfigError("init", "finite numbers", f"{path}: non-finite entries")
    return X

