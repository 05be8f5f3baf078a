"""The paper's AMP / cavity iteration for the merged model (docs/model.md §1.4).

The merged model's Boltzmann law is Gaussian with precision βA and mean m = A⁻¹h. Write
its energy as E(W) = −½ Σ_{i≠j} J_ij W_i W_j − Σ_i h_i W_i + ½ Σ_i λ_i W_i² with

    J_ij = −A_ij (i ≠ j; J_ii unused),   λ_i = A_ii.

The cavity (belief-propagation / TAP) iteration tracks a mean m_i and a variance v_i per
spin. One sweep updates every spin at once from the previous iterate (a parallel,
Jacobi update):

    V_i = β² Σ_{j≠i} J_ij² v_j
    paper:    m_i ← (β h_i + β Σ_{j≠i} J_ij m_j)          / (β λ_i − V_i)
    onsager:  m_i ← (β h_i + β Σ_{j≠i} J_ij m_j − V_i m_i) / (β λ_i − V_i)
    v_i ← 1 / (β λ_i − V_i)

followed by damping with θ (the paper's convention: θ is the weight of the *old*
iterate), ``new = θ·old + (1 − θ)·update``; θ = 0 is the undamped iteration.

* ``paper`` omits the Onsager reaction term −V_i m_i, as the paper's code does. Its fixed
  point solves (A − diag(V)/β) m = h, not A m = h: at D = 20, N = 100, P = 10⁴, λ = 0.01,
  β = 100 it sits about 4.5 % from m (measured; running it to a change of 1e-30 does not
  move it). Its defaults follow the paper's code: m and v start from independent N(0, 1)
  draws, and it stops when mean((m_update − m)²) + mean((v_update − v)²) < 1e-6, with
  the *undamped* updates, or after 100 sweeps.
* ``onsager`` keeps the reaction term; at its fixed point β λ_i m_i = β h_i + β Σ J_ij m_j,
  i.e. A m = h exactly. It stops on the residual ‖A m − h‖/‖h‖ ≤ 1e-12 (at most 10⁴
  sweeps) and starts from m = v = 0 by default (deterministic; from zero it needs a few
  sweeps fewer than from the paper's random start, and the fixed point is the same).

The v update does not involve m, so v is the same in both variants; converged, it
approximates the exact marginal variances diag((βA)⁻¹) to a fraction of a percent (the
cavity approximation neglects the correlations between the neighbours of a spin).

Each sweep is one fused pass over the couplings, compiled with Numba
(:func:`_coupling_sums`): row by row it forms Σ_{j≠i} J_ij m_j and Σ_{j≠i} J_ij² v_j
together, squaring J_ij on the fly, so J∘J is never stored and the couplings are read
once per sweep instead of twice. The residual A m − h = λ∘m − J m − h then needs no
second product, and the update, damping and stopping quantities follow in O(n) loops
without temporaries; the whole iteration runs inside Numba (:func:`_amp_iterate`). The
couplings are a copy J = −A with a zero diagonal (n² doubles, what J∘J used to cost), so
both sums run over whole contiguous rows. The two row sums are the only code compiled
with ``fastmath``, and only reassociation and FMA contraction (so that they vectorise;
no finite-math flags, so NaN and ∞ still stop the iteration): their rounding differs
from BLAS's at the 1e-16 level. Measured at D = 10 and 20, the iterates agree with the
former two-product numpy code and with the literal loop to < 1e-15 relative.

(J∘J) v has no matrix-free form, so AMP needs the dense precision: :func:`amp_for_model`
refuses other representations; whether the dense matrix fits the memory budget is
decided by :func:`spinicl.models.choose_representation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from numba import njit

from spinicl import linalg
from spinicl.config import ConfigError, check_beta, check_choice, check_float, check_int

VARIANTS = ("paper", "onsager")
STARTS = ("random", "zero")

#: Per-variant defaults: (tolerance, maximum sweeps, start, stopping rule).
DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": {"tol": 1e-6, "max_sweeps": 100, "start": "random", "stop": "change"},
    "onsager": {"tol": 1e-12, "max_sweeps": 10_000, "start": "zero", "stop": "residual"},
}

DEFAULT_DAMPING = 0.9


@dataclass(frozen=True, eq=False)
class AMPResult:
    """Outcome of an AMP solve.

    Attributes
    ----------
    m : ndarray, shape (n,)
        Final means (the AMP estimate of the ground state).
    v : ndarray, shape (n,)
        Final variances (the AMP estimate of diag((βA)⁻¹)).
    sweeps : int
        Number of sweeps (parallel updates) applied.
    converged : bool
        Whether the stopping rule was met within ``max_sweeps``.
    residual : float
        ‖A m − h‖ / ‖h‖ of the final m.
    relative_distance : float
        ‖m − m_exact‖ / ‖m_exact‖ (m_exact = A⁻¹h unless given).
    v_median_relative_error, v_max_relative_error : float
        Median and maximum over spins of |v_i − v_i*| / v_i*, v* = diag((βA)⁻¹).
    variant : str
        ``"paper"`` or ``"onsager"``.
    damping : float
        θ, the weight of the old iterate.
    tol : float
        Tolerance of the stopping rule.
    max_sweeps : int
    start : str
        ``"random"`` or ``"zero"``.
    stop_rule : str
        ``"change"`` (the paper's rule: mean squared undamped change of m plus v < tol)
        or ``"residual"`` (‖A m − h‖/‖h‖ ≤ tol).
    beta : float
    history : dict or None
        With ``history=True``: ``"change"`` (sweeps,), the paper's change measure of each
        sweep, and ``"residual"`` (sweeps,), the residual of the iterate each sweep
        started from. With ``record_iterates=True`` also ``"m"`` and ``"v"``, shape
        (sweeps + 1, n): the start and every iterate after it.
    """

    m: np.ndarray
    v: np.ndarray
    sweeps: int
    converged: bool
    residual: float
    relative_distance: float
    v_median_relative_error: float
    v_max_relative_error: float
    variant: str
    damping: float
    tol: float
    max_sweeps: int
    start: str
    stop_rule: str
    beta: float
    history: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Scalar summary with ``amp_``-prefixed keys (JSON-ready: plain Python types)."""
        return {
            "amp_variant": self.variant,
            "amp_damping": float(self.damping),
            "amp_tol": float(self.tol),
            "amp_max_sweeps": int(self.max_sweeps),
            "amp_start": self.start,
            "amp_iterations": int(self.sweeps),
            "amp_converged": bool(self.converged),
            "amp_residual": float(self.residual),
            "amp_relative_distance": float(self.relative_distance),
            "amp_v_median_relative_error": float(self.v_median_relative_error),
            "amp_v_max_relative_error": float(self.v_max_relative_error),
        }


# --------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class _Setup:
    A: np.ndarray
    h: np.ndarray
    beta: float
    variant: str
    damping: float
    tol: float
    max_sweeps: int
    start: str
    stop_rule: str
    m0: np.ndarray
    v0: np.ndarray


def validate_amp_options(variant: Any, damping: Any, tol: Any, max_sweeps: Any
                         ) -> tuple[str, float, float, int]:
    """Check the AMP options (before any work); fill the variant's defaults.

    Returns
    -------
    (variant, damping, tol, max_sweeps)

    Raises
    ------
    ConfigError
        Naming ``amp_variant``, ``amp_damping`` (in [0, 1)), ``amp_tol`` (> 0) or
        ``amp_max_sweeps`` (an integer >= 1).
    """
    variant = check_choice("amp_variant", variant, VARIANTS)
    damping = check_float("amp_damping", damping, low=0.0, high=1.0, high_open=True,
                          note="the weight of the old iterate; 0 is undamped")
    defaults = DEFAULTS[variant]
    tol = defaults["tol"] if tol is None else check_float("amp_tol", tol, low=0.0,
                                                           low_open=True)
    max_sweeps = (defaults["max_sweeps"] if max_sweeps is None
                  else check_int("amp_max_sweeps", max_sweeps, low=1))
    return variant, damping, tol, max_sweeps


def _prepare(A: Any, h: Any, beta: Any, variant: Any, damping: Any, tol: Any,
             max_sweeps: Any, start: Any, seed: Any) -> _Setup:
    """Validate every input and draw the starting point."""
    variant, damping, tol, max_sweeps = validate_amp_options(variant, damping, tol,
                                                             max_sweeps)
    beta = check_beta(beta)
    defaults = DEFAULTS[variant]
    start = defaults["start"] if start is None else check_choice("amp_start", start, STARTS)
    seed = check_int("seed", seed, 0, 2**63 - 1)

    A = np.asarray(A, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix (got shape {A.shape})")
    n = A.shape[0]
    if h.shape != (n,):
        raise ValueError(f"h must have shape ({n},) (got {h.shape})")
    if not (np.isfinite(A).all() and np.isfinite(h).all()):
        raise ValueError("A and h must be finite")
    if not np.all(np.diag(A) > 0):
        raise ConfigError(
            "lam", "> 0 for AMP", None,
            "every spin needs a positive self-coupling λ_i = A_ii (with lam = 0 the "
            "inactive spins have none)")

    if start == "random":
        rng = np.random.Generator(np.random.PCG64(seed))
        m0 = rng.standard_normal(n)
        v0 = rng.standard_normal(n)
    else:
        m0 = np.zeros(n)
        v0 = np.zeros(n)
    return _Setup(A, h, beta, variant, damping, tol, max_sweeps, start,
                  defaults["stop"], m0, v0)


def exact_reference(A: np.ndarray, h: np.ndarray, beta: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean m = A⁻¹h and marginal variances diag((βA)⁻¹), through one Cholesky.

    Parameters
    ----------
    A : ndarray, shape (n, n)
        Symmetric positive-definite precision (per unit β).
    h : ndarray, shape (n,)
    beta : float

    Returns
    -------
    m : ndarray, shape (n,)
    var : ndarray, shape (n,)
        diag(A⁻¹)/β = column sums of (L⁻¹)² / β with A = LLᵀ.

    Raises
    ------
    numpy.linalg.LinAlgError
        When A is not positive definite.
    """
    L = scipy.linalg.cholesky(A, lower=True)
    m = linalg.ridge_mean(h, chol=L)
    Linv = linalg.inverse_cholesky(L)
    return m, np.einsum("ki,ki->i", Linv, Linv) / beta


def _finish(s: _Setup, m: np.ndarray, v: np.ndarray, sweeps: int, converged: bool,
            residual: float | None, m_exact: Any, v_exact: Any,
            history: dict[str, np.ndarray] | None) -> AMPResult:
    """Residual and distances to the exact references; build the result."""
    hnorm = float(np.linalg.norm(s.h)) or 1.0
    if residual is None:
        residual = float(np.linalg.norm(s.A @ m - s.h)) / hnorm
    if m_exact is None or v_exact is None:
        try:
            m_ref, v_ref = exact_reference(s.A, s.h, s.beta)
        except np.linalg.LinAlgError:
            m_ref = v_ref = np.full(s.h.shape, np.nan)
        m_exact = m_ref if m_exact is None else m_exact
        v_exact = v_ref if v_exact is None else v_exact
    m_exact = np.asarray(m_exact, dtype=np.float64)
    v_exact = np.asarray(v_exact, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = float(np.linalg.norm(m - m_exact) / np.linalg.norm(m_exact))
        rel_v = np.abs(v - v_exact) / v_exact
    return AMPResult(
        m=m, v=v, sweeps=int(sweeps), converged=bool(converged), residual=float(residual),
        relative_distance=dist, v_median_relative_error=float(np.median(rel_v)),
        v_max_relative_error=float(np.max(rel_v)), variant=s.variant, damping=s.damping,
        tol=s.tol, max_sweeps=s.max_sweeps, start=s.start, stop_rule=s.stop_rule,
        beta=s.beta, history=history)


def _history(trace: dict[str, list], record: bool, want: bool
             ) -> dict[str, np.ndarray] | None:
    if not (want or record):
        return None
    out = {"change": np.asarray(trace["change"]), "residual": np.asarray(trace["residual"])}
    if record:
        out["m"] = np.asarray(trace["m"])
        out["v"] = np.asarray(trace["v"])
    return out


# --------------------------------------------------------------------------- kernels
#: Status codes of :func:`_amp_iterate`.
_PAUSED, _CONVERGED_RESIDUAL, _MAX_SWEEPS, _CONVERGED_CHANGE, _NOT_FINITE = 0, 1, 2, 3, 4

#: Sweeps recorded per call of :func:`_amp_iterate` when a history is kept (the buffers of
#: one call; a long run makes several calls, so memory grows with the sweeps actually run).
_RECORD_CHUNK = 256


@njit(cache=True, fastmath={"reassoc", "contract"})
def _coupling_sums(J: np.ndarray, m: np.ndarray, v: np.ndarray, field: np.ndarray,
                   V: np.ndarray) -> None:
    """field = J m and V = (J∘J) v in one pass over J (J_ij² formed on the fly).

    The only reductions of the sweep, so the only code compiled with (non-finite-safe)
    ``fastmath``: reassociation lets LLVM vectorise the row sums, contraction fuses the
    multiply-adds. Four rows at a time share the loads of m and v.

    Parameters
    ----------
    J : ndarray, shape (n, n)
        Couplings, C-contiguous, zero diagonal.
    m, v : ndarray, shape (n,)
    field, V : ndarray, shape (n,)
        Output: Σ_j J_ij m_j and Σ_j J_ij² v_j.
    """
    n = J.shape[0]
    i = 0
    while i + 4 <= n:
        f0 = f1 = f2 = f3 = 0.0
        q0 = q1 = q2 = q3 = 0.0
        for j in range(n):
            a0 = J[i, j]
            a1 = J[i + 1, j]
            a2 = J[i + 2, j]
            a3 = J[i + 3, j]
            mj = m[j]
            vj = v[j]
            f0 += a0 * mj
            f1 += a1 * mj
            f2 += a2 * mj
            f3 += a3 * mj
            q0 += a0 * a0 * vj
            q1 += a1 * a1 * vj
            q2 += a2 * a2 * vj
            q3 += a3 * a3 * vj
        field[i] = f0
        field[i + 1] = f1
        field[i + 2] = f2
        field[i + 3] = f3
        V[i] = q0
        V[i + 1] = q1
        V[i + 2] = q2
        V[i + 3] = q3
        i += 4
    while i < n:
        f0 = 0.0
        q0 = 0.0
        for j in range(n):
            a0 = J[i, j]
            f0 += a0 * m[j]
            q0 += a0 * a0 * v[j]
        field[i] = f0
        V[i] = q0
        i += 1


@njit(cache=True, error_model="numpy")
def _amp_iterate(J: np.ndarray, lam: np.ndarray, h: np.ndarray, beta: float,
                 theta: float, onsager: bool, by_residual: bool, tol: float,
                 hnorm: float, max_sweeps: int, sweeps: int, stop_at: int,
                 m: np.ndarray, v: np.ndarray, field: np.ndarray, V: np.ndarray,
                 change_out: np.ndarray, res_out: np.ndarray, m_out: np.ndarray,
                 v_out: np.ndarray, record: bool, record_iterates: bool
                 ) -> tuple[int, int, float]:
    """Sweeps of the cavity iteration, in place on (m, v), until a stop or ``stop_at``.

    Each sweep: one pass :func:`_coupling_sums`; the residual of the current iterate
    (and the residual rule, and the ``max_sweeps`` cap); the Jacobi update, its change
    measure and the damping in one O(n) loop. Same order of tests as the literal loop
    :func:`amp_solve_loop`.

    Parameters
    ----------
    J : ndarray, shape (n, n)
        −A with a zero diagonal, C-contiguous.
    lam, h : ndarray, shape (n,)
        λ_i = A_ii and the field.
    beta, theta, tol, hnorm : float
        β, damping θ (weight of the old iterate), tolerance, ‖h‖ (or 1).
    onsager, by_residual : bool
        Reaction term in the numerator; stop on the residual (else on the change).
    max_sweeps, sweeps, stop_at : int
        Cap on sweeps, sweeps done before this call, and the count at which to pause
        (return ``_PAUSED``) so the caller can hand over fresh record buffers.
    m, v : ndarray, shape (n,)
        The iterate, updated in place.
    field, V : ndarray, shape (n,)
        Work arrays.
    change_out, res_out : ndarray, shape (stop_at − sweeps,)
        With ``record``: the change measure and the residual of each sweep of this call.
    m_out, v_out : ndarray, shape (stop_at − sweeps, n)
        With ``record_iterates``: the iterate after each sweep of this call.
    record, record_iterates : bool

    Returns
    -------
    (status, sweeps, residual)
        A status code (``_PAUSED``, ``_CONVERGED_RESIDUAL``, ``_MAX_SWEEPS``,
        ``_CONVERGED_CHANGE``: residual not computed, returned as NaN,
        ``_NOT_FINITE``: residual NaN), the sweeps done in all, and the residual
        ‖A m − h‖/‖h‖ of the final iterate.
    """
    n = m.shape[0]
    first = sweeps
    b2 = beta * beta
    keep = 1.0 - theta
    while True:
        _coupling_sums(J, m, v, field, V)
        r2 = 0.0
        for i in range(n):
            r = lam[i] * m[i] - field[i] - h[i]  # (A m − h)_i
            r2 += r * r
        res = np.sqrt(r2) / hnorm
        if by_residual and res <= tol:
            return _CONVERGED_RESIDUAL, sweeps, res
        if sweeps >= max_sweeps:
            return _MAX_SWEEPS, sweeps, res
        dm2 = 0.0
        dv2 = 0.0
        finite = True
        for i in range(n):
            Vi = b2 * V[i]
            den = beta * lam[i] - Vi
            num = beta * h[i] + beta * field[i]
            if onsager:
                num -= Vi * m[i]
            m_new = num / den
            v_new = 1.0 / den
            d = m_new - m[i]
            dm2 += d * d
            d = v_new - v[i]
            dv2 += d * d
            mi = theta * m[i] + keep * m_new
            vi = theta * v[i] + keep * v_new
            finite = finite and np.isfinite(mi) and np.isfinite(vi)
            m[i] = mi
            v[i] = vi
        change = dm2 / n + dv2 / n
        k = sweeps - first
        sweeps += 1
        if record:
            change_out[k] = change
            res_out[k] = res
        if record_iterates:
            m_out[k] = m
            v_out[k] = v
        if not (finite and np.isfinite(change)):
            return _NOT_FINITE, sweeps, np.nan
        if not by_residual and change < tol:
            return _CONVERGED_CHANGE, sweeps, np.nan
        if sweeps >= stop_at:
            return _PAUSED, sweeps, np.nan


# --------------------------------------------------------------------------- solvers
def amp_solve(A: np.ndarray, h: np.ndarray, beta: float, variant: str = "paper",
              damping: float = DEFAULT_DAMPING, tol: float | None = None,
              max_sweeps: int | None = None, start: str | None = None, seed: int = 0,
              m_exact: np.ndarray | None = None, v_exact: np.ndarray | None = None,
              history: bool = False, record_iterates: bool = False) -> AMPResult:
    """Run the cavity iteration (one fused, compiled pass over the couplings per sweep).

    Parameters
    ----------
    A : ndarray, shape (n, n)
        Dense precision A = λI + SᵀS/P of the merged model (``model.precision()``).
    h : ndarray, shape (n,)
        Field h = Sᵀy/P (``model.field``).
    beta : float
        Inverse temperature, > 0 (the paper uses 100). It sets v, and through V the
        ``paper`` variant's fixed point; the ``onsager`` fixed point m = A⁻¹h does not
        depend on it.
    variant : {"paper", "onsager"}
        Without (``paper``) or with (``onsager``) the Onsager reaction term.
    damping : float
        θ in [0, 1), the weight of the old iterate: new = θ·old + (1 − θ)·update.
    tol : float, optional
        Tolerance of the stopping rule, > 0. Default 1e-6 (``paper``: the paper's change
        rule) or 1e-12 (``onsager``: residual ‖Am − h‖/‖h‖).
    max_sweeps : int, optional
        At most this many sweeps, >= 1. Default 100 (``paper``) or 10⁴ (``onsager``).
    start : {"random", "zero"}, optional
        ``random``: m and v from independent N(0, 1) draws (the paper's code);
        ``zero``: m = v = 0. Default ``random`` for ``paper``, ``zero`` for ``onsager``.
    seed : int
        Seed of the random start (numpy ``Generator(PCG64(seed))``; m drawn before v).
    m_exact, v_exact : ndarray, shape (n,), optional
        Exact mean and marginal variances diag((βA)⁻¹) to compare with; computed through
        one Cholesky of A when not given.
    history : bool
        Record the per-sweep change measure and residual.
    record_iterates : bool
        Also record every iterate of m and v (memory sweeps·n each; for tests).

    Returns
    -------
    AMPResult

    Raises
    ------
    ConfigError
        For a bad ``amp_variant``, ``amp_damping``, ``amp_tol``, ``amp_max_sweeps``,
        ``amp_start``, ``seed`` or ``beta``, or a non-positive diagonal of A (``lam``).
    """
    s = _prepare(A, h, beta, variant, damping, tol, max_sweeps, start, seed)
    J = np.negative(s.A, order="C")  # J_ij = −A_ij; its diagonal is zeroed, λ kept apart
    lam_i = np.diag(s.A).copy()
    np.fill_diagonal(J, 0.0)
    h = np.array(s.h, order="C")  # a writeable C copy: one compiled signature
    hnorm = float(np.linalg.norm(h)) or 1.0
    record = history or record_iterates
    m, v = s.m0.copy(), s.v0.copy()
    field_, V = np.empty_like(m), np.empty_like(m)
    n = m.shape[0]
    chunks: dict[str, list[np.ndarray]] = {"change": [], "residual": [], "m": [], "v": []}
    if record_iterates:
        chunks["m"].append(m[None].copy())
        chunks["v"].append(v[None].copy())
    sweeps, status, residual = 0, _PAUSED, float("nan")
    while status == _PAUSED:
        # without a history one call runs to the end; with one, chunks of record buffers
        stop_at = min(s.max_sweeps, sweeps + _RECORD_CHUNK) if record else s.max_sweeps
        k = stop_at - sweeps
        change_buf = np.empty(k if record else 0)
        res_buf = np.empty(k if record else 0)
        m_buf = np.empty((k, n) if record_iterates else (0, n))
        v_buf = np.empty((k, n) if record_iterates else (0, n))
        before = sweeps
        status, sweeps, residual = _amp_iterate(
            J, lam_i, h, s.beta, s.damping, s.variant == "onsager",
            s.stop_rule == "residual", s.tol, hnorm, s.max_sweeps, sweeps, stop_at,
            m, v, field_, V, change_buf, res_buf, m_buf, v_buf, record, record_iterates)
        done = sweeps - before
        chunks["change"].append(change_buf[:done])
        chunks["residual"].append(res_buf[:done])
        chunks["m"].append(m_buf[:done])
        chunks["v"].append(v_buf[:done])
    converged = status in (_CONVERGED_RESIDUAL, _CONVERGED_CHANGE)
    # after the change rule the residual of the final iterate is computed by _finish
    res_out = None if status == _CONVERGED_CHANGE else float(residual)
    hist = None
    if record:
        hist = {"change": np.concatenate(chunks["change"]),
                "residual": np.concatenate(chunks["residual"])}
        if record_iterates:
            hist["m"] = np.concatenate(chunks["m"])
            hist["v"] = np.concatenate(chunks["v"])
    return _finish(s, m, v, sweeps, converged, res_out, m_exact, v_exact, hist)


def amp_solve_loop(A: np.ndarray, h: np.ndarray, beta: float, variant: str = "paper",
                   damping: float = DEFAULT_DAMPING, tol: float | None = None,
                   max_sweeps: int | None = None, start: str | None = None,
                   seed: int = 0, m_exact: np.ndarray | None = None,
                   v_exact: np.ndarray | None = None, history: bool = False,
                   record_iterates: bool = False) -> AMPResult:
    """The same iteration as :func:`amp_solve`, written as a literal loop over spins.

    For tests and benchmarks only (O(n²) Python operations per sweep). Every spin is
    updated from the previous iterate (parallel update), exactly as the vectorised
    version; the iterates agree to rounding. Parameters and result as
    :func:`amp_solve`.
    """
    s = _prepare(A, h, beta, variant, damping, tol, max_sweeps, start, seed)
    n = s.h.shape[0]
    Al = s.A.tolist()
    hl = s.h.tolist()
    b, theta = s.beta, s.damping
    hnorm = float(np.linalg.norm(s.h)) or 1.0
    onsager = s.variant == "onsager"
    by_residual = s.stop_rule == "residual"
    record = history or record_iterates
    trace: dict[str, list] = {"change": [], "residual": [], "m": [], "v": []}

    m, v = s.m0.tolist(), s.v0.tolist()
    if record_iterates:
        trace["m"].append(np.array(m))
        trace["v"].append(np.array(v))
    sweeps, converged, residual = 0, False, None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while True:
            r2 = 0.0
            for i in range(n):
                ri = -hl[i]
                for j in range(n):
                    ri += Al[i][j] * m[j]
                r2 += ri * ri
            res = r2**0.5 / hnorm
            if by_residual and res <= s.tol:
                converged, residual = True, res
                break
            if sweeps >= s.max_sweeps:
                residual = res
                break
            m_new = [0.0] * n
            v_new = [0.0] * n
            for i in range(n):
                field_i = 0.0  # Σ_{j≠i} J_ij m_j
                V_i = 0.0  # β² Σ_{j≠i} J_ij² v_j
                for j in range(n):
                    if j == i:
                        continue
                    J_ij = -Al[i][j]
                    field_i += J_ij * m[j]
                    V_i += J_ij * J_ij * v[j]
                V_i *= b * b
                den = b * Al[i][i] - V_i
                num = b * hl[i] + b * field_i
                if onsager:
                    num -= V_i * m[i]
                m_new[i] = num / den
                v_new[i] = 1.0 / den
            change = (sum((m_new[i] - m[i]) * (m_new[i] - m[i]) for i in range(n)) / n
                      + sum((v_new[i] - v[i]) * (v_new[i] - v[i]) for i in range(n)) / n)
            m = [theta * m[i] + (1.0 - theta) * m_new[i] for i in range(n)]
            v = [theta * v[i] + (1.0 - theta) * v_new[i] for i in range(n)]
            sweeps += 1
            if record:
                trace["change"].append(change)
                trace["residual"].append(res)
            if record_iterates:
                trace["m"].append(np.array(m))
                trace["v"].append(np.array(v))
            if not np.isfinite(change):
                residual = float("nan")
                break
            if not by_residual and change < s.tol:
                converged = True
                break
    return _finish(s, np.array(m), np.array(v), sweeps, converged, residual, m_exact,
                   v_exact, _history(trace, record_iterates, history))


def amp_for_model(model: Any, beta: float, **kw: Any) -> AMPResult:
    """:func:`amp_solve` on a merged model built with the dense representation.

    Parameters
    ----------
    model : spinicl.models.MergedModel
        Must use ``representation="dense"``.
    beta : float
    **kw
        Passed to :func:`amp_solve` (variant, damping, tol, max_sweeps, start, seed,
        m_exact, v_exact, history, record_iterates).

    Raises
    ------
    ConfigError
        ``model`` for a factored model, ``representation`` for a matrix-free one.
    """
    name = getattr(model, "name", None)
    if name != "merged":
        raise ConfigError("model", "merged (AMP solves the Gaussian merged model)", name)
    if model.representation != "dense":
        raise ConfigError(
            "representation",
            "dense (AMP needs the dense couplings J∘J; (J∘J)v has no matrix-free form)",
            model.representation)
    return amp_solve(model.precision(), model.field, beta, **kw)
