"""Exact solution of the merged model and the factored ground state (docs/model.md §1.3–1.5).

For the merged model the Boltzmann law p_β(W) ∝ exp(−βE(W)) is Gaussian:

    precision βA,  A = λI + SᵀS/P,   mean m = A⁻¹h (the ground state, ridge solution),
    covariance (βA)⁻¹.

Every observable that is at most quadratic in W has a closed form (:class:`GaussianTheory`):

    ⟨E⟩ = E(m) + n/(2β)
    f   = [E(m) − (n/2β) log(2π/β) + (1/2β) log det A] / n       (free energy per spin)
    ⟨q_ab⟩ = ‖m‖²/n,   ⟨Q⟩ = (‖m‖² + tr A⁻¹/β)/n               (replica overlaps)
    ⟨ε_t⟩ = ε_t(m) + tr(S_tᵀS_t/P_t · A⁻¹)/β                     (test MSE on a set S_t)

The dense path factorises A = LLᵀ once (Cholesky; triangular solves, no explicit inverse
in a hot path). The matrix-free path (A never formed) solves A m = h by batched conjugate
gradients and estimates the two traces by Hutchinson's estimator with a reported standard
error; its log det A (hence the free energy) is not available and is NaN.

The factored model W = W_qᵀW_k with d_k ≥ D+1 has the global minimum of the convex
problem min_W E₀(W) + λ‖W‖_* (nuclear norm), solved here by accelerated proximal
gradient with singular-value soft-thresholding (:func:`factored_ground_state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.linalg as sla

from spinicl import linalg
from spinicl.config import ConfigError, check_beta, check_float, check_int
from spinicl.linalg import conjugate_gradient
from spinicl.models import (
    DenseData,
    FactoredModel,
    MergedModel,
    active_mask,
    alignment,
    gd_cosine,
    mse,
)
from spinicl.prompts import PromptSet, Task


# --------------------------------------------------------------------------- solvers
# --------------------------------------------------------------------------- Gaussian
@dataclass
class GaussianTheory:
    """Exact Gaussian solution of a merged model on a task.

    Attributes
    ----------
    mean : ndarray, shape (n,)
        The ground state m = A⁻¹h (independent of β).
    lam : float
        Weight decay λ.
    D : int
    energy_ground : float
        E(m).
    trace_inv : float
        tr A⁻¹ (exact, or a Hutchinson estimate in the matrix-free path).
    trace_inv_active : float
        Σ over active spins of (A⁻¹)_ii.
    test_trace : dict
        {"novel": tr(B_t A⁻¹), "in_distribution": ...} with B_t = S_tᵀS_t/P_t.
    test_mse_ground : dict
        Test MSE of m on each test set.
    train_mse_ground : float
        Training MSE of m, 2E₀(m).
    logdet : float
        log det A (NaN in the matrix-free path).
    exact_traces : bool
        False when the traces are Hutchinson estimates.
    trace_stderr : dict
        Standard errors of the estimated traces (zeros when exact).
    chol : ndarray, shape (n, n) or None
        Lower Cholesky factor of A (dense path).
    """

    mean: np.ndarray
    lam: float
    D: int
    energy_ground: float
    trace_inv: float
    trace_inv_active: float
    test_trace: dict
    test_mse_ground: dict
    train_mse_ground: float
    logdet: float
    exact_traces: bool
    trace_stderr: dict = field(default_factory=dict)
    chol: np.ndarray | None = None
    representation: str = "dense"

    # ---------------------------------------------------------------- sizes
    @property
    def n_spins(self) -> int:
        return self.mean.shape[0]

    @property
    def n_active(self) -> int:
        return self.D * (self.D + 1)

    @cached_property
    def _active(self) -> np.ndarray:
        return active_mask(self.D)

    # ---------------------------------------------------------------- closed forms
    def energy_mean(self, beta: float) -> float:
        """⟨E⟩ = E(m) + n/(2β)."""
        return self.energy_ground + self.n_spins / (2.0 * check_beta(beta))

    def free_energy(self, beta: float) -> float:
        """Free energy per spin f = [E(m) − (n/2β) log(2π/β) + (1/2β) log det A]/n."""
        beta = check_beta(beta)
        n = self.n_spins
        return (self.energy_ground - n / (2 * beta) * np.log(2 * np.pi / beta)
                + self.logdet / (2 * beta)) / n

    def overlap_mean(self, active: bool = False) -> float:
        """⟨q_ab⟩ between independent replicas: ‖m‖²/n (β-independent)."""
        m = self.mean[self._active] if active else self.mean
        return float(m @ m) / m.shape[0]

    def self_overlap_mean(self, beta: float, active: bool = False) -> float:
        """⟨Q⟩ = (‖m‖² + tr A⁻¹/β)/n (over the active spins: their own trace and count)."""
        beta = check_beta(beta)
        m = self.mean[self._active] if active else self.mean
        tr = self.trace_inv_active if active else self.trace_inv
        return (float(m @ m) + tr / beta) / m.shape[0]

    def overlap_ratio(self, beta: float, active: bool = False) -> float:
        """⟨q⟩/⟨Q⟩, the order parameter q/Q of the phase diagrams."""
        return self.overlap_mean(active) / self.self_overlap_mean(beta, active)

    def test_mse_mean(self, beta: float, which: str = "novel") -> float:
        """⟨ε_t⟩ = ε_t(m) + tr(B_t A⁻¹)/β on a test set ("novel" or "in_distribution")."""
        return self.test_mse_ground[which] + self.test_trace[which] / check_beta(beta)

    def train_mse_mean(self, beta: float) -> float:
        """⟨training MSE⟩ = 2E₀(m) + tr(A₀A⁻¹)/β, tr(A₀A⁻¹) = n − λ tr A⁻¹."""
        return self.train_mse_ground + (self.n_spins - self.lam * self.trace_inv) / check_beta(
            beta)

    def distance_to_ground_state_mean(self, beta: float) -> float:
        """⟨‖W − m‖²/n⟩ = tr A⁻¹/(βn)."""
        return self.trace_inv / (check_beta(beta) * self.n_spins)

    @property
    def alignment(self) -> float:
        """Alignment (contrast ratio) of the mean: cosine of m with I_{D+1}."""
        return float(alignment(self.mean[None])[0])

    @property
    def gd_cosine(self) -> float:
        """Cosine of m with the one-step-GD weights I_D ⊕ 0."""
        return float(gd_cosine(self.mean[None])[0])

    # ---------------------------------------------------------------- dense extras
    def _need_chol(self) -> np.ndarray:
        if self.chol is None:
            raise ConfigError("representation", "dense for this quantity (it needs the "
                              "Cholesky factor of A)", self.representation)
        return self.chol

    def precision(self) -> np.ndarray:
        """A = LLᵀ, shape (n, n)."""
        L = self._need_chol()
        return L @ L.T

    @cached_property
    def _eigh(self) -> tuple[np.ndarray, np.ndarray]:
        return np.linalg.eigh(self.precision())

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of A, ascending, shape (n,)."""
        return self._eigh[0]

    def slowest_mode(self) -> tuple[float, np.ndarray]:
        """Smallest eigenvalue of A on the active subspace and its eigenvector (n,).

        The D+1 inactive spins are decoupled at eigenvalue λ; they are excluded.
        """
        vals, vecs = self._eigh
        weight_active = np.sum(vecs[self._active] ** 2, axis=0)
        ok = np.flatnonzero(weight_active > 0.5)
        i = ok[np.argmin(vals[ok])]
        return float(vals[i]), vecs[:, i]

    def covariance(self, beta: float) -> np.ndarray:
        """Exact covariance (βA)⁻¹, shape (n, n)."""
        Linv = linalg.inverse_cholesky(self._need_chol())
        return (Linv.T @ Linv) / check_beta(beta)

    def marginal_variances(self, beta: float) -> np.ndarray:
        """diag((βA)⁻¹), shape (n,)."""
        Linv = linalg.inverse_cholesky(self._need_chol())
        return np.sum(Linv**2, axis=0) / check_beta(beta)

    def sample(self, beta: float, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """Exact independent samples m + L⁻ᵀz/√β, shape (n_samples, n)."""
        L = self._need_chol()
        z = rng.standard_normal((L.shape[0], n_samples))
        return linalg.gaussian_draw(self.mean, L, z.T, check_beta(beta))

    def ula_covariance(self, beta: float, step: float) -> np.ndarray:
        """Stationary covariance of unadjusted Langevin, (βA)⁻¹(I − ηA/2)⁻¹, shape (n, n).

        Stable only for η < 2/λ_max(A).
        """
        vals, vecs = self._eigh
        step = check_float("step", step, low=0.0, high=2.0 / vals[-1], low_open=True,
                           high_open=True, note="ULA is stable only below 2/lambda_max(A)")
        d = 1.0 / (check_beta(beta) * vals * (1.0 - 0.5 * step * vals))
        return (vecs * d) @ vecs.T

    def baoab_momentum_covariance(self, beta: float, step: float) -> np.ndarray:
        """Stationary momentum covariance of BAOAB (unit mass), shape (n, n).

        Along an eigenvalue a of A the variance is (1 − h²a/4)/β; the position marginal is
        exact, (βA)⁻¹, for any stable h < 2/√λ_max(A) and any friction.
        """
        vals, vecs = self._eigh
        step = check_float("step", step, low=0.0, high=2.0 / np.sqrt(vals[-1]),
                           low_open=True, high_open=True,
                           note="BAOAB is stable only below 2/sqrt(lambda_max(A))")
        d = (1.0 - 0.25 * step**2 * vals) / check_beta(beta)
        return (vecs * d) @ vecs.T

    # ---------------------------------------------------------------- report
    def summary(self, beta: float) -> dict:
        """All closed forms at one inverse temperature, as a flat dict of floats."""
        beta = check_beta(beta)
        return {
            "beta": beta,
            "temperature": 1.0 / beta,
            "n_spins": self.n_spins,
            "n_active": self.n_active,
            "energy_ground": self.energy_ground,
            "energy_mean": self.energy_mean(beta),
            "thermal_energy": self.n_spins / (2 * beta),
            "free_energy": self.free_energy(beta),
            "overlap_mean": self.overlap_mean(),
            "self_overlap_mean": self.self_overlap_mean(beta),
            "overlap_ratio": self.overlap_ratio(beta),
            "overlap_active_mean": self.overlap_mean(active=True),
            "self_overlap_active_mean": self.self_overlap_mean(beta, active=True),
            "overlap_ratio_active": self.overlap_ratio(beta, active=True),
            "train_mse": self.train_mse_ground,
            "train_mse_mean": self.train_mse_mean(beta),
            "test_mse_novel": self.test_mse_ground["novel"],
            "test_mse_in_distribution": self.test_mse_ground["in_distribution"],
            "test_mse_novel_mean": self.test_mse_mean(beta, "novel"),
            "test_mse_in_distribution_mean": self.test_mse_mean(beta, "in_distribution"),
            "distance_to_ground_state_mean": self.distance_to_ground_state_mean(beta),
            "alignment": self.alignment,
            "gd_cosine": self.gd_cosine,
            "ground_state_norm": float(np.linalg.norm(self.mean)),
            "trace_inverse_precision": self.trace_inv,
            "traces_exact": self.exact_traces,
        }


def _check_merged(model) -> MergedModel:
    if not getattr(model, "gaussian", False):   # a Gaussian Boltzmann law (merged)
        raise ConfigError("model", "merged for the Gaussian theory (the factored model's "
                          "reference is factored_ground_state)", getattr(model, "name", model))
    return model


def gaussian_theory(model: MergedModel, task: Task, *, n_probes: int = 64,
                    seed: int = 0, cg_tol: float = 1e-12) -> GaussianTheory:
    """Exact Gaussian solution of a merged model.

    Parameters
    ----------
    model : MergedModel
        Needs λ > 0 (for λ = 0 use :func:`min_norm_ground_state`).
    task : Task
        Supplies the test sets.
    n_probes : int
        Hutchinson probes for the traces (matrix-free path only).
    seed : int
        Seed of the Hutchinson probes (matrix-free path only).
    cg_tol : float
        Relative residual of the conjugate-gradient solves (matrix-free path).

    Returns
    -------
    GaussianTheory
    """
    model = _check_merged(model)
    if model.lam <= 0:
        raise ConfigError("lam", "> 0 for the Gaussian theory", model.lam,
                          "with lam = 0 the distribution is improper; the lam -> 0 ground "
                          "state is min_norm_ground_state")
    D = model.D
    act = active_mask(D)
    sets = {"novel": task.test_novel, "in_distribution": task.test_in_distribution}
    h = model.field
    if isinstance(model.data, DenseData):
        L = np.linalg.cholesky(model.precision())
        m = linalg.ridge_mean(h, chol=L)
        Linv = linalg.inverse_cholesky(L)
        diag_inv = np.sum(Linv**2, axis=0)
        del Linv
        trace_inv, trace_act = float(diag_inv.sum()), float(diag_inv[act].sum())
        test_trace = {k: _trace_with_features(L, ps) for k, ps in sets.items()}
        logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
        stderr = {}
        exact = True
    else:
        L = None
        m = linalg.ridge_mean(h, matvec=model.precision_product, tol=cg_tol)
        rng = np.random.default_rng(seed)
        z = rng.choice([-1.0, 1.0], size=(n_probes, model.n_spins))
        z[:, ~act] = 0.0
        u, _, _ = conjugate_gradient(model.precision_product, z, tol=1e-8)
        est = np.einsum("ri,ri->r", z, u)
        n_inactive = D + 1
        trace_act = float(est.mean())
        trace_inv = trace_act + n_inactive / model.lam
        stderr = {"trace_inverse_precision": float(est.std(ddof=1) / np.sqrt(n_probes))}
        test_trace = {}
        from spinicl.models import predict  # local: keeps the dense path import-light

        for k, ps in sets.items():
            vals = np.einsum("rp,rp->r", predict(z, ps), predict(u, ps)) / ps.n_prompts
            test_trace[k] = float(vals.mean())
            stderr[f"test_trace_{k}"] = float(vals.std(ddof=1) / np.sqrt(n_probes))
        logdet = float("nan")
        exact = False
    e_ground = model.data.e0 - 0.5 * float(h @ m)
    return GaussianTheory(
        mean=m, lam=model.lam, D=D, energy_ground=e_ground, trace_inv=trace_inv,
        trace_inv_active=trace_act, test_trace=test_trace,
        test_mse_ground={k: float(mse(m[None], ps)[0]) for k, ps in sets.items()},
        train_mse_ground=float(mse(m[None], task.train)[0]), logdet=logdet,
        exact_traces=exact, trace_stderr=stderr, chol=L, representation=model.representation,
    )


def _trace_with_features(L: np.ndarray, prompts: PromptSet, chunk: int = 1024) -> float:
    """tr(S_tᵀS_t/P_t · A⁻¹) = ‖L⁻¹S_tᵀ‖²_F / P_t, in chunks of prompts."""
    total = 0.0
    for _, S in prompts.feature_chunks(chunk):
        X = sla.solve_triangular(L, S.T, lower=True)
        total += float(np.einsum("ij,ij->", X, X))
    return total / prompts.n_prompts


def exact_samples(theory: GaussianTheory, beta: float, n_samples: int,
                  seed: int = 0) -> np.ndarray:
    """Independent exact samples from p_β, shape (n_samples, n)."""
    n_samples = check_int("n_samples", n_samples, 1)
    return theory.sample(beta, n_samples, np.random.default_rng(seed))


# --------------------------------------------------------------------------- ULA
#: Observables whose ULA stationary mean has a closed form (quadratic in W).
ULA_OBSERVABLES = ("energy", "train_mse", "test_mse_novel", "test_mse_in_distribution",
                   "self_overlap", "self_overlap_active", "overlap", "overlap_active",
                   "distance_to_ground_state")


@dataclass(frozen=True)
class ULAModes:
    """The independent AR(1) modes of unadjusted Langevin on the Gaussian model.

    With a preconditioner M = BBᵀ, W = m + Bz and one ULA step is
    z' = (I − ηÃ) z + √(2η/β) ξ, Ã = BᵀAB. In the eigenbasis V of Ã every coordinate
    c_i is AR(1) with coefficient φ_i = 1 − ηã_i and stationary variance
    1/(β ã_i (1 − ηã_i/2)); W − m = U c with U = BV.

    Attributes
    ----------
    U : ndarray, shape (n, n)
        Columns: the mode directions in W space.
    a : ndarray, shape (n,)
        Eigenvalues ã_i of the preconditioned precision.
    step : float
        η.
    """

    U: np.ndarray
    a: np.ndarray
    step: float

    @property
    def phi(self) -> np.ndarray:
        """AR(1) coefficient per mode and step, 1 − ηã."""
        return 1.0 - self.step * self.a

    def variances(self, beta: float) -> np.ndarray:
        """Stationary variance per mode, 1/(β ã (1 − ηã/2))."""
        return 1.0 / (check_beta(beta) * self.a * (1.0 - 0.5 * self.step * self.a))


def ula_modes(theory: GaussianTheory, step: float, precondition: str = "none") -> ULAModes:
    """AR(1) modes of ULA with step η on the merged model (dense representation).

    Parameters
    ----------
    theory : GaussianTheory
    step : float
        η, below the stability bound 2/λ_max(Ã).
    precondition : {"none", "diag", "dense"}
        M = I, diag(A)⁻¹ or A⁻¹ (as the samplers).
    """
    A = theory.precision()
    n = A.shape[0]
    if precondition == "none":
        a, V = theory._eigh
        U = V
    elif precondition == "diag":
        b = 1.0 / np.sqrt(np.diag(A))
        a, V = np.linalg.eigh(b[:, None] * A * b[None, :])
        U = b[:, None] * V
    elif precondition == "dense":
        L = theory._need_chol()
        U = sla.solve_triangular(L, np.eye(n), lower=True, trans="T")   # B = L⁻ᵀ
        a = np.ones(n)
    else:
        raise ConfigError("precondition", "one of none, diag, dense", precondition)
    step = check_float("step", step, low=0.0, high=2.0 / float(np.max(a)), low_open=True,
                       high_open=True, note="ULA is stable only below 2/lambda_max")
    return ULAModes(U=np.ascontiguousarray(U), a=np.asarray(a, dtype=float), step=step)


def _mode_weights(modes: ULAModes, beta: float, linear: np.ndarray | None,
                  quadratic: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Weights w and per-step decays d of the stationary autocovariance Σ w·d^t."""
    var = modes.variances(beta)
    phi = modes.phi
    w_parts, d_parts = [], []
    if linear is not None:
        g = modes.U.T @ np.asarray(linear, dtype=float)
        w_parts.append(g**2 * var)
        d_parts.append(phi)
    if quadratic is not None:
        Qt = modes.U.T @ np.asarray(quadratic, dtype=float) @ modes.U
        w_parts.append((2.0 * Qt**2 * np.outer(var, var)).ravel())
        d_parts.append(np.outer(phi, phi).ravel())
    if not w_parts:
        raise ConfigError("linear", "a vector or a quadratic form (one at least)", None)
    return np.concatenate(w_parts), np.concatenate(d_parts)


def ula_autocovariance(modes: ULAModes, beta: float, lags, *, linear=None,
                       quadratic=None) -> np.ndarray:
    """Exact stationary autocovariance of f(W) = gᵀ(W−m) + (W−m)ᵀQ(W−m) under ULA.

    Cov(f(0), f(t)) = Σ_i g̃_i² v_i φ_i^t + 2 Σ_ij Q̃_ij² v_i v_j (φ_iφ_j)^t, with
    g̃ = Uᵀg, Q̃ = UᵀQU, v the mode variances (Gaussian fourth moments).

    Parameters
    ----------
    modes : ULAModes
    beta : float
    lags : array of int
        Lags in steps.
    linear : ndarray (n,), optional
        g. Linear part of the observable around m (e.g. 2m/n for ‖W‖²/n).
    quadratic : ndarray (n, n), optional
        Q (symmetric). E.g. A/2 for the energy, I/n for ‖W − m‖²/n.

    Returns
    -------
    ndarray, shape (len(lags),)
    """
    w, d = _mode_weights(modes, beta, linear, quadratic)
    lags = np.asarray(lags, dtype=float)
    return (w[None, :] * np.abs(d)[None, :] ** lags[:, None]
            * np.sign(d)[None, :] ** lags[:, None]).sum(axis=1)


def ula_tau_int(modes: ULAModes, beta: float, every: int = 1, *, linear=None,
                quadratic=None) -> float:
    """Exact τ_int (1 + 2Σ_{t≥1}ρ(t)) of an observable recorded every ``every`` steps.

    With q = d^every per term, τ = Σ w (1+q)/(1−q) / Σ w (see :func:`ula_autocovariance`).
    """
    every = check_int("every", every, 1)
    w, d = _mode_weights(modes, beta, linear, quadratic)
    q = d**every
    keep = w > 0
    return float(np.sum(w[keep] * (1 + q[keep]) / (1 - q[keep])) / np.sum(w[keep]))


def ula_references(theory: GaussianTheory, model: MergedModel, task: Task,
                   betas: np.ndarray, steps: np.ndarray, precondition: str = "none"
                   ) -> dict[str, np.ndarray]:
    """Stationary means of ULA's own law, per rung (dense representation).

    ULA's stationary law is Gaussian with the exact mean m and covariance
    U diag(v) Uᵀ (:class:`ULAModes`; (βA)⁻¹(I − ηA/2)⁻¹ without preconditioner), so
    every quadratic observable has the closed form f(m) + tr(Q Σ).

    Parameters
    ----------
    theory, model, task
    betas : ndarray (T,)
    steps : ndarray (T,)
        ULA step per rung.
    precondition : {"none", "diag", "dense"}

    Returns
    -------
    dict name → ndarray (T,) for :data:`ULA_OBSERVABLES`.
    """
    betas = np.asarray(betas, dtype=float)
    steps = np.broadcast_to(np.asarray(steps, dtype=float), betas.shape)
    n = theory.n_spins
    act = theory._active
    A = theory.precision()
    A0 = A - model.lam * np.eye(n)
    m = theory.mean
    sets = {"novel": task.test_novel, "in_distribution": task.test_in_distribution}
    cache: dict[float, dict[str, float]] = {}
    out = {k: np.full(betas.shape, np.nan) for k in ULA_OBSERVABLES}
    for k, (b, eta) in enumerate(zip(betas, steps, strict=True)):
        if float(eta) not in cache:
            modes = ula_modes(theory, float(eta), precondition)
            v1 = modes.variances(1.0)
            G = modes.U * np.sqrt(v1)[None, :]          # Σ₁ = G Gᵀ
            diag = np.sum(G**2, axis=1)
            tr = {"all": float(diag.sum()), "active": float(diag[act].sum()),
                  "A": float(np.einsum("ij,ij->", A @ G, G)),
                  "A0": float(np.einsum("ij,ij->", A0 @ G, G))}
            for name, ps in sets.items():
                tot = 0.0
                for _, S in ps.feature_chunks(1024):
                    X = S @ G
                    tot += float(np.einsum("ij,ij->", X, X))
                tr[name] = tot / ps.n_prompts
            cache[float(eta)] = tr
        tr = cache[float(eta)]
        out["energy"][k] = theory.energy_ground + 0.5 * tr["A"] / b
        out["train_mse"][k] = theory.train_mse_ground + tr["A0"] / b
        out["test_mse_novel"][k] = theory.test_mse_ground["novel"] + tr["novel"] / b
        out["test_mse_in_distribution"][k] = (theory.test_mse_ground["in_distribution"]
                                              + tr["in_distribution"] / b)
        out["self_overlap"][k] = (float(m @ m) + tr["all"] / b) / n
        ma = m[act]
        out["self_overlap_active"][k] = (float(ma @ ma) + tr["active"] / b) / ma.shape[0]
        out["overlap"][k] = theory.overlap_mean()
        out["overlap_active"][k] = theory.overlap_mean(active=True)
        out["distance_to_ground_state"][k] = tr["all"] / (b * n)
    return out


# --------------------------------------------------------------------------- λ → 0
def min_norm_ground_state(model: MergedModel, rtol: float = 1e-10) -> np.ndarray:
    """The λ → 0 ground state: the minimum-norm minimiser of E₀, shape (n,).

    Dense path: pseudo-inverse of A₀ = SᵀS/P through its eigendecomposition, discarding
    eigenvalues below ``rtol``·λ_max. Matrix-free path: conjugate gradients on A₀w = h
    from w = 0 (which stays in the range of A₀ and so converges to the minimum norm).
    """
    model = _check_merged(model)
    h = model.field
    if isinstance(model.data, DenseData):
        vals, vecs = np.linalg.eigh(model.data.gram)
        keep = vals > rtol * vals[-1]
        return vecs[:, keep] @ ((vecs[:, keep].T @ h) / vals[keep])
    w, _, _ = conjugate_gradient(model.data.gram_product, h[None], tol=1e-10,
                                 max_iter=20 * model.n_spins)
    return w[0]


# --------------------------------------------------------------------------- factored
@dataclass(frozen=True)
class FactoredGroundState:
    """Global minimum of the factored energy for d_k ≥ D+1 (docs/model.md §1.5).

    Attributes
    ----------
    W : ndarray, shape ((D+1)²,)
        Effective weights W = W_qᵀW_k of the minimum (solution of the nuclear-norm problem).
    energy : float
        E₀(W) + λ‖W‖_* (equal to the factored energy of the balanced factors).
    data_energy : float
        E₀(W).
    nuclear_norm : float
        ‖W‖_*.
    factors : ndarray, shape (2·d_k·(D+1),)
        Balanced factors θ = (W_q, W_k) with W_q = Σ^{1/2}Uᵀ, W_k = Σ^{1/2}Vᵀ (zero-padded).
    rank : int
        Number of nonzero singular values.
    iterations : int
    converged : bool
    """

    W: np.ndarray
    energy: float
    data_energy: float
    nuclear_norm: float
    factors: np.ndarray
    rank: int
    iterations: int
    converged: bool


def nuclear_objective(model: FactoredModel | MergedModel, W: np.ndarray) -> float:
    """E₀(W) + λ‖W‖_* for merged weights W of shape ((D+1)²,)."""
    d1 = model.D + 1
    e0, _ = model.data.energy_and_grad(W[None])
    return float(e0[0]) + model.lam * float(np.linalg.svd(W.reshape(d1, d1),
                                                          compute_uv=False).sum())


def factored_ground_state(model: FactoredModel, *, tol: float = 1e-13,
                          max_iter: int = 50_000) -> FactoredGroundState:
    """Solve min_W E₀(W) + λ‖W‖_* by FISTA with adaptive restart.

    Parameters
    ----------
    model : FactoredModel
        d_k ≥ D+1 makes this the factored model's global minimum; for d_k < D+1 the
        nuclear-norm value is only a lower bound and a ConfigError is raised.
    tol : float
        Stop when the relative change of W between iterations is below ``tol``.
    max_iter : int

    Returns
    -------
    FactoredGroundState
    """
    if getattr(model, "dk", None) is None:   # a model with factors of rank d_k
        raise ConfigError("model", "factored", getattr(model, "name", model))
    d1 = model.D + 1
    if model.dk < d1:
        raise ConfigError("dk", f">= D+1 = {d1} for the nuclear-norm ground state", model.dk,
                          "with a smaller rank the minimum is a rank-constrained problem")
    lam = model.lam
    data = model.data
    lip = data.largest_eigenvalue(margin=1.01)   # exact when dense, +1% on Lanczos
    step = 1.0 / lip

    def prox(V: np.ndarray) -> np.ndarray:
        U, s, Vt = np.linalg.svd(V.reshape(d1, d1))
        s = np.maximum(s - step * lam, 0.0)
        return ((U * s) @ Vt).ravel()

    def objective(W):
        return nuclear_objective(model, W)

    W = np.zeros(d1 * d1)
    Y = W.copy()
    t = 1.0
    f_old = objective(W)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        _, g = data.energy_and_grad(Y[None])
        W_new = prox(Y - step * g[0])
        f_new = objective(W_new)
        if f_new > f_old:  # adaptive restart (O'Donoghue & Candès)
            t = 1.0
            Y = W.copy()
            _, g = data.energy_and_grad(Y[None])
            W_new = prox(Y - step * g[0])
            f_new = objective(W_new)
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        Y = W_new + ((t - 1) / t_new) * (W_new - W)
        change = np.linalg.norm(W_new - W) / max(np.linalg.norm(W_new), 1e-300)
        W, t, f_old = W_new, t_new, f_new
        if change < tol:
            converged = True
            break
    U, s, Vt = np.linalg.svd(W.reshape(d1, d1))
    rank = int(np.sum(s > 1e-12 * max(s[0], 1e-300)))
    root = np.sqrt(s)
    Wq = np.zeros((model.dk, d1))
    Wk = np.zeros((model.dk, d1))
    Wq[:d1] = root[:, None] * U.T
    Wk[:d1] = root[:, None] * Vt
    e0 = float(data.energy_and_grad(W[None])[0][0])
    return FactoredGroundState(
        W=W, energy=e0 + lam * float(s.sum()), data_energy=e0, nuclear_norm=float(s.sum()),
        factors=model.join(Wq[None], Wk[None])[0], rank=rank, iterations=it,
        converged=converged,
    )
