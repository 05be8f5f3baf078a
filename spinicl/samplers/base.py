"""The sampler machinery shared by every kernel: state, setup, run loop, report.

A sampler advances a batch of R = n_temps·copies replicas, slot ``r = k·copies + a``
(rung k of the ladder, coldest first; copy a), one inverse temperature per rung shared
by all copies. Its whole mutable state is an explicit :class:`SamplerState` of numpy
arrays, so the store can checkpoint it field by field and a resumed run continues bit
for bit (all randomness is counter-based, keyed by slot and step: :mod:`.rng`).

Step-size conventions (all samplers use the same η per rung for every copy):

* ``ula``/``mala``: W' = W − η M∇E + √(2η/β) B ξ (M = BBᵀ); stable for η < 2/λ_max(BᵀAB)
  (B = I: 2/λ_max(A)). Defaults: ULA 0.1 of the bound (its bias is O(ηλ)); MALA starts
  at 1.36 n^{-1/3}/λ_max (the optimal scaling of Roberts & Rosenthal 1998) and adapts per
  rung during burn-in toward acceptance 0.574, pooled over copies. For a Gaussian the
  MALA acceptance at a given η does not depend on β (the rescaling W → √β W maps every
  rung onto one problem), so hot rungs take the *same* η and hence larger moves
  √(2η/β); adaptation only corrects non-Gaussian (factored) rungs.
* ``baoab``: step h, unit mass in whitened coordinates, friction γ (O step
  e^{−γh}); stable for h < 2/√λ_max(BᵀAB). Default 0.8 of the bound for the merged
  (Gaussian: position marginal exact at any stable h), 0.2 for the factored model.
* factored model: the curvature is estimated at the balanced factors of the ridge
  mean by a finite-difference Hessian power iteration, and per rung grows with the
  thermal size of the factors: κ_k = κ_ref + λ_max(A₀)·(T_k/λ)·(√d_k + √(D+1))²
  (a heuristic: the default steps are conservative at hot rungs).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
import scipy.linalg as sla

from spinicl.config import ConfigError, check_choice, check_float, check_int
from spinicl.models import DenseData, FactoredModel, MergedModel
from spinicl.samplers import kernels as K
from spinicl.samplers.rng import derive_keys, init_generator
from spinicl.samplers.tempering import (
    Ladder,
    adapt_betas,
    communication_barrier,
)

PRECONDITIONERS = ("none", "diag", "dense")
TARGET_ACCEPT = 0.574
#: Swap events in the first ladder-adaptation round (then doubling).
LADDER_ROUND_EVENTS = 32
#: Below this many R·n numbers a run uses one Numba thread by default.
SMALL_BATCH = 1 << 15
#: Largest n for which set-up factors A although no kernel needs the factor.
CHOLESKY_MAX_SPINS = 2048


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


class SamplerState(NamedTuple):
    """Complete mutable state of a sampler (every field a numpy array or scalar).

    Shapes: R = n_temps·copies slots, n = n_spins.
    """

    W: np.ndarray                # (R, n) spins, slot order
    momentum: np.ndarray         # (R, n) BAOAB momenta (whitened coordinates); zeros otherwise
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
    adapt_steps: np.int64        # MALA adaptation steps done
    ladder_events: np.int64      # swap rounds since the last ladder update
    ladder_round: np.int64       # ladder updates done


_SCALARS = ("step", "swap_events", "adapt_steps", "ladder_events", "ladder_round")
_DTYPES = {"keys": np.uint64, "swap_keys": np.uint64, "labels": np.int64,
           "direction": np.int64, "round_trips": np.int64, "accepted": np.int64,
           "swap_attempts": np.int64, "swap_accepted": np.int64, "ladder_attempts": np.int64}


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


def _blas_limit(n: int):
    """Context manager pinning every loaded BLAS to n threads."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=n)


def _power_iteration(matvec, n: int, iters: int = 100, seed: int = 12345) -> float:
    v = np.random.default_rng(seed).standard_normal(n)
    lam = 0.0
    for _ in range(iters):
        v /= np.linalg.norm(v)
        w = matvec(v)
        lam = float(v @ w)
        v = w
    return abs(lam) * 1.01


def largest_eigenvalue(matvec, n: int, seed: int = 12345, tol: float = 1e-12) -> float:
    """Largest eigenvalue of a symmetric operator, by Lanczos (ARPACK ``eigsh``).

    Parameters
    ----------
    matvec : callable
        v (n,) -> A v (n,), A symmetric.
    n : int
        Dimension (>= 2).
    seed : int
        Seed of the fixed start vector (the result does not depend on the run).
    tol : float
        Relative accuracy of the eigenvalue.

    Returns
    -------
    float
        λ_max(A). Costs a few tens of products, O(n²) each for a dense A, instead of
        the O(n³) of a dense eigen-decomposition (which dominated set-up at D ≥ 60).
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    op = LinearOperator((n, n), matvec=lambda v: matvec(np.ravel(v)), dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    return float(eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0])


class Sampler:
    """Base class of the replica-exchange samplers (``ula``, ``mala``, ``baoab``, ``exact``).

    Build one with :func:`spinicl.samplers.make_sampler`.

    Parameters
    ----------
    model : MergedModel or FactoredModel
    ladder : Ladder
    copies : int
        Copies per temperature, >= 1.
    step : float, array of shape (n_temps,), or None
        Step size per rung (None: the model-derived default, see module docstring).
    gamma : float
        BAOAB friction, > 0.
    precondition : {"none", "diag", "dense"}
        ``diag``: M = diag(A)⁻¹ (factored: inverse Hessian diagonal at the reference
        point); ``dense``: M = A⁻¹ through the Cholesky factor (merged, dense only).
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
    target_accept : float
        MALA target acceptance.
    """

    name = "base"
    kind = -1
    #: default step as a fraction of the stability bound
    step_fraction = 0.1

    def __init__(self, model, ladder: Ladder | None = None, copies: int = 2,
                 step: Any = None, gamma: float = 1.0, precondition: str = "none",
                 swap_every: int = 10, adapt_ladder: bool = False, seed: int = 0,
                 blas_threads: int = 1, target_accept: float = TARGET_ACCEPT,
                 threads: int | None = None):
        if not isinstance(model, (MergedModel, FactoredModel)):
            raise ConfigError("model", "a MergedModel or FactoredModel (build_model)",
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
        self.target_accept = check_float("target_accept", target_accept, low=0.0,
                                         high=1.0, low_open=True, high_open=True)
        self.n_temps = ladder.n_temps
        self.n_replicas = self.n_temps * self.copies
        self.n_spins = model.n_spins
        self._check_kind()
        self._setup_data()
        self._setup_preconditioner()
        self.stability_bound = self._stability_bound(ladder.betas)
        self._user_step = None if step is None else self._check_step(step)
        self.e_limit = 1e10 * (abs(self._e0) + self.n_spins / (2.0 * ladder.betas[-1]) + 1.0)

    @property
    def threads(self) -> int:
        """Numba threads used by :meth:`run`."""
        if self._threads is not None:
            return self._threads
        if self.n_replicas * self.n_spins < SMALL_BATCH or self.blas_threads > 1:
            return 1
        return int(numba.config.NUMBA_NUM_THREADS)

    # ---------------------------------------------------------------- setup
    def _check_kind(self) -> None:
        """Refuse unsupported model/option combinations (overridden by kernels)."""

    def _check_step(self, step) -> np.ndarray:
        arr = np.atleast_1d(np.asarray(step, dtype=np.float64)) if not isinstance(
            step, str) else None
        if arr is None or arr.ndim != 1 or arr.size not in (1, self.n_temps):
            raise ConfigError("step", f"a number > 0 or {self.n_temps} numbers > 0 (one "
                              "per rung)", step)
        for v in arr:
            check_float("step", v, low=0.0, low_open=True)
        return np.broadcast_to(arr, (self.n_temps,)).astype(np.float64).copy()

    def _setup_data(self) -> None:
        m = self.model
        d1 = m.D + 1
        self._d1 = d1
        self._dk = m.dk if isinstance(m, FactoredModel) else 0
        factored = isinstance(m, FactoredModel)
        data = m.data
        empty2 = np.zeros((0, d1))
        if isinstance(data, DenseData):
            self._gmode = 2 if factored else 0
            self._A0 = np.ascontiguousarray(data.gram, dtype=np.float64)
            self._C, self._Q, self._y = empty2, empty2, np.zeros(0)
        else:
            self._gmode = 3 if factored else 1
            self._A0 = np.zeros((0, 0))
            ps = data.prompts
            self._C = np.ascontiguousarray(ps.c, dtype=np.float64)
            self._Q = np.ascontiguousarray(ps.q, dtype=np.float64)
            self._y = np.ascontiguousarray(ps.y, dtype=np.float64)
        self._h = np.ascontiguousarray(data.field, dtype=np.float64)
        self._e0 = float(data.e0)
        self._lam = float(m.lam)
        # merged reference: A diagonal, ridge mean m, Cholesky factor (dense)
        merged = MergedModel(data, m.lam)
        self._merged = merged
        self._chol = None
        if isinstance(data, DenseData):
            self._diagA = np.diag(self._A0) + m.lam
            if self._needs_cholesky():
                self._chol = np.linalg.cholesky(merged.precision())
                self._ridge = sla.cho_solve((self._chol, True), self._h)
        else:
            C2, Q2 = self._C**2, self._Q**2
            self._diagA = m.lam + (C2.T @ Q2).ravel() / data.P
        if self._chol is None:
            from spinicl.theory import conjugate_gradient

            self._ridge = conjugate_gradient(merged.precision_product, self._h[None],
                                             tol=1e-12)[0][0]
        self._e_ground = self._e0 - 0.5 * float(self._h @ self._ridge)
        if factored:
            self._theta_ref = self._balanced_factors(self._ridge)
            self._hdiag = self._hessian_diagonal(self._theta_ref)
        self._mean = np.zeros(0)
        self._Linv = np.zeros((0, 0))
        self._a0max: float | None = None

    def _needs_cholesky(self) -> bool:
        """Whether set-up factors the dense precision A = LLᵀ (O(n³), n² memory).

        The exact sampler and the dense preconditioner need L; otherwise it only gives
        the ridge mean (the default start), which conjugate gradients give for O(n²)
        per iteration, so L is formed only while it is cheap (n ≤ CHOLESKY_MAX_SPINS).
        """
        return (self.kind == K.EXACT or self.precondition == "dense"
                or self.n_spins <= CHOLESKY_MAX_SPINS)

    def _balanced_factors(self, W: np.ndarray) -> np.ndarray:
        d1, dk = self._d1, self._dk
        U, s, Vt = np.linalg.svd(W.reshape(d1, d1))
        r = min(dk, d1)
        Wq = np.zeros((dk, d1))
        Wk = np.zeros((dk, d1))
        Wq[:r] = np.sqrt(s[:r])[:, None] * U.T[:r]
        Wk[:r] = np.sqrt(s[:r])[:, None] * Vt[:r]
        return FactoredModel.join(Wq[None], Wk[None])[0]

    def _grad_py(self, X: np.ndarray) -> np.ndarray:
        return self.model.energy_and_grad(X)[1]

    def _hessian_vec(self, theta: np.ndarray, v: np.ndarray, eps: float = 1e-5) -> np.ndarray:
        """Hessian-vector products at theta for a batch v (R, n), central differences."""
        nv = np.linalg.norm(v, axis=1, keepdims=True)
        nv[nv == 0] = 1.0
        u = v / nv
        e = eps * max(1.0, float(np.linalg.norm(theta)))
        g = self._grad_py(np.concatenate([theta + e * u, theta - e * u]))
        R = v.shape[0]
        return (g[:R] - g[R:]) / (2 * e) * nv

    def _hessian_diagonal(self, theta: np.ndarray) -> np.ndarray:
        n = theta.shape[0]
        out = np.empty(n)
        chunk = 256
        for s in range(0, n, chunk):
            idx = np.arange(s, min(n, s + chunk))
            V = np.zeros((idx.size, n))
            V[np.arange(idx.size), idx] = 1.0
            out[idx] = self._hessian_vec(theta, V)[np.arange(idx.size), idx]
        return np.maximum(np.abs(out), self._lam)

    def _setup_preconditioner(self) -> None:
        n = self.n_spins
        factored = isinstance(self.model, FactoredModel)
        self._pmode = K.PRECOND_CODES[self.precondition]
        self._bdiag = np.zeros(0)
        self._B = np.zeros((0, 0))
        self._BT = np.zeros((0, 0))
        if self.precondition == "dense":
            if factored:
                raise ConfigError("precondition", "none or diag for the factored model "
                                  "(the dense A⁻¹ exists for the merged model only)", "dense")
            if self._chol is None:
                raise ConfigError("precondition", "none or diag with the matrix-free "
                                  "representation (dense needs the Cholesky factor of A)",
                                  "dense")
        if self._chol is not None and (self.precondition == "dense" or self.kind == K.EXACT):
            Linv = sla.solve_triangular(self._chol, np.eye(n), lower=True)
            self._Linv = np.ascontiguousarray(Linv)
            self._mean = self._ridge.copy()
            if self.precondition == "dense":
                self._B = np.ascontiguousarray(Linv.T)   # B = L^-T: v = g B
                self._BT = self._Linv                    # move: x += u Bᵀ = u L^-1
        if self.precondition == "diag":
            d = self._hdiag if factored else self._diagA
            self._bdiag = 1.0 / np.sqrt(d)
        # largest curvature of the (preconditioned) problem
        if self.precondition == "dense":
            self._curv_ref = 1.0
        elif factored:
            b = self._bdiag if self.precondition == "diag" else np.ones(n)
            theta = self._theta_ref
            self._curv_ref = _power_iteration(
                lambda v: b * self._hessian_vec(theta, (b * v)[None])[0], n, iters=60)
        else:
            b = self._bdiag if self.precondition == "diag" else np.ones(n)
            self._curv_ref = largest_eigenvalue(
                lambda v: b * self._merged.precision_product((b * v)[None])[0], n)

    def curvature(self, betas: np.ndarray) -> np.ndarray:
        """Largest curvature λ_max of the (preconditioned) energy per rung, (n_temps,).

        Exact for the merged model; a heuristic estimate for the factored one.
        """
        betas = np.asarray(betas, dtype=np.float64)
        if not isinstance(self.model, FactoredModel):
            return np.full(betas.shape, self._curv_ref)
        if self._a0max is None:
            self._a0max = largest_eigenvalue(
                lambda v: self._merged.data.gram_product(v[None])[0], self._d1**2)
        growth = self._a0max * (1.0 / betas) / self._lam * (np.sqrt(self._dk) + np.sqrt(self._d1))**2
        if self.precondition == "diag":
            growth = growth / float(np.min(self._hdiag))
        return self._curv_ref + growth

    def _stability_bound(self, betas: np.ndarray) -> np.ndarray:
        """Stability bound of the step per rung, (n_temps,): 2/λ_max (ULA, MALA)."""
        return 2.0 / self.curvature(betas)

    def default_step(self) -> np.ndarray:
        """The model-derived default step per rung, (n_temps,)."""
        return self.step_fraction * self.stability_bound

    @property
    def bound_is_exact(self) -> bool:
        return not isinstance(self.model, FactoredModel)

    # ---------------------------------------------------------------- numba plumbing
    def _energy_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies (R,), gradients and whitened gradients (R, n) through the kernels."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        R = X.shape[0]
        E = np.empty(R)
        G = np.empty_like(X)
        V = np.empty_like(X)
        with _blas_limit(self.blas_threads):
            K.energy_grad(self._gmode, X, E, G, self._A0, self._h, self._e0, self._lam,
                          self._C, self._Q, self._y, self._dk, self._d1)
            K.whiten(self._pmode, G, V, self._bdiag, self._B)
        return E, G, V

    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energy (R,) and gradient (R, n) through the compiled kernels."""
        E, G, _ = self._energy_grad(np.atleast_2d(W))
        return E, G

    # ---------------------------------------------------------------- state
    def default_init(self) -> np.ndarray:
        """The default start, shape (R, n).

        Merged model: the ridge mean m plus independent normal noise of the diagonal
        thermal width 1/√(β_k A_ii) at each rung. Factored model: the balanced factors of
        m (W_q = Σ^{1/2}Uᵀ, W_k = Σ^{1/2}Vᵀ from m = UΣVᵀ) plus noise 1/√(β_k H_ii), H the
        Hessian at that point. The noise comes from ``SeedSequence(seed)`` (a child
        separate from the sampling streams).
        """
        rng = init_generator(self.seed)
        factored = isinstance(self.model, FactoredModel)
        center = self._theta_ref if factored else self._ridge
        d = self._hdiag if factored else self._diagA
        beta = np.repeat(self.ladder.betas, self.copies)
        z = rng.standard_normal((self.n_replicas, self.n_spins))
        return center[None, :] + z / np.sqrt(beta[:, None] * d[None, :])

    def init(self, W0: np.ndarray | None = None) -> SamplerState:
        """Initial state.

        Parameters
        ----------
        W0 : ndarray, optional
            Start of shape (R, n), (n_temps, copies, n) or (n,) (broadcast to every
            slot); default :meth:`default_init`.

        Returns
        -------
        SamplerState
        """
        R, n, nt = self.n_replicas, self.n_spins, self.n_temps
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
        mom = np.zeros((R, n))
        if self.kind == K.BAOAB:
            rng = init_generator(self.seed + 1)
            beta = np.repeat(betas, self.copies)
            mom = rng.standard_normal((R, n)) / np.sqrt(beta[:, None])
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

    def _check_state(self, state: SamplerState) -> None:
        if not isinstance(state, SamplerState):
            raise ConfigError("state", "a SamplerState (sampler.init / state_from_dict)",
                              type(state).__name__)
        if state.W.shape != (self.n_replicas, self.n_spins):
            raise ConfigError("state", f"W of shape ({self.n_replicas}, {self.n_spins}) "
                              "for this sampler", state.W.shape)

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
            Adapt the MALA step sizes and (if ``adapt_ladder``) the ladder. Outside
            burn-in nothing adapts: the chain is a fixed Markov kernel.

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
        self._check_state(state)
        n_steps = check_int("n_steps", n_steps, 0)
        s = {k: (np.array(v) if k in _SCALARS else np.array(v, copy=True))
             for k, v in state._asdict().items()}
        counters = np.array([s["step"], s["swap_events"], s["adapt_steps"],
                             s["ladder_events"]], dtype=np.int64)
        acc0 = s["accepted"].copy()
        att0, sacc0 = s["swap_attempts"].copy(), s["swap_accepted"].copy()
        prev_threads = numba.get_num_threads()
        numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        try:
            self._run_blocks(s, counters, n_steps, burn_in)
        finally:
            numba.set_num_threads(prev_threads)
        new = _snapshot(s, counters)
        with np.errstate(invalid="ignore", divide="ignore"):
            accept = ((new.accepted - acc0) / n_steps if n_steps else
                      np.full(self.n_replicas, np.nan)).reshape(self.n_temps, self.copies)
            datt = new.swap_attempts - att0
            swap = np.where(datt > 0, (new.swap_accepted - sacc0) / np.maximum(datt, 1),
                            np.nan)
        info = StepInfo(accept=accept, swap_accept=swap, n_steps=n_steps,
                        step_size=new.step_size.copy(), betas=new.betas.copy(),
                        energy_mean=self.energies(new).mean(axis=1))
        return new, info

    def _run_blocks(self, s: dict, counters: np.ndarray, n_steps: int,
                    burn_in: bool) -> None:
        """The chunked kernel loop of :meth:`run` (mutates ``s`` and ``counters``)."""
        adapting = burn_in and self.adapt_ladder and self.n_temps > 2
        remaining = n_steps
        with _blas_limit(self.blas_threads):
            while remaining > 0:
                chunk = remaining
                if adapting:
                    target = LADDER_ROUND_EVENTS * 2 ** int(s["ladder_round"])
                    need = target - int(counters[K.C_LADDER])
                    if need <= 0:
                        self._adapt_ladder(s, counters)
                        continue
                    se = self.swap_every
                    chunk = min(chunk, need * se - int(counters[K.C_STEP]) % se)
                status, done, bad = K.run_block(
                    self.kind, self._gmode, self._pmode, s["W"], s["momentum"],
                    s["energy"], s["grad"], s["betas"], s["step_size"], self.gamma,
                    self.copies, s["keys"], s["swap_keys"], s["labels"], s["direction"],
                    s["round_trips"], counters, s["accepted"], s["swap_attempts"],
                    s["swap_accepted"], s["swap_prob"], s["ladder_attempts"],
                    s["ladder_prob"], self._A0, self._h, self._e0, self._lam, self._C,
                    self._Q, self._y, self._dk, self._d1, self._bdiag, self._B, self._BT,
                    self._mean, self._Linv, self._e_ground, chunk, self.swap_every, bool(burn_in),
                    self.target_accept, self.e_limit)
                remaining -= done
                if status != K.OK:
                    raise self._divergence(_snapshot(s, counters), bad)
                if adapting and (counters[K.C_LADDER]
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
        counters[K.C_LADDER] = 0
        s["ladder_round"] = np.int64(int(s["ladder_round"]) + 1)

    def _divergence(self, state: SamplerState, slot: int) -> SamplerDivergence:
        k = int(slot) // self.copies
        eta = float(state.step_size[k])
        bound = float(self._stability_bound(state.betas)[k])
        kind = "2/sqrt(lambda_max(A))" if self.kind == K.BAOAB else "2/lambda_max(A)"
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
        self._check_state(state)
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
        BAOAB momenta (whitened coordinates); zeros for the other samplers.
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
        mom[i] = state.momentum.reshape(nt, cp, n)
        en[i] = sampler.energies(state)
        bet[i] = state.betas
        acc[i] = info.accept
        sw[i] = info.swap_accept
    return state, Trace(pos, en, bet, acc, sw, mom)
