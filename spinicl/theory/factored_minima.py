"""Ground states of the factored model W = W_qᵀW_k for every rank d_k (docs/model.md §1.5).

Minimising the factored energy E₀(W_qᵀW_k) + (λ/2)(‖W_q‖² + ‖W_k‖²) over factors with
d_k rows is minimising E₀(W) + λ‖W‖_* over W of rank ≤ d_k (the variational form of the
nuclear norm: min over W = W_qᵀW_k of ½(‖W_q‖² + ‖W_k‖²) is ‖W‖_*, attained by the
balanced factors). Hence:

* the convex nuclear-norm optimum W* (:func:`spinicl.theory.gaussian.factored_ground_state`)
  bounds every d_k from below, and it *is* the factored global minimum whenever
  rank(W*) ≤ d_k (kind ``"exact"``; its balanced factors realise it), not only for
  d_k ≥ D+1;
* for d_k < rank(W*) the problem is rank-constrained and non-convex: the reference is the
  best minimum found by ``restarts`` local minimisations (scipy L-BFGS on the factored
  energy and gradient) from the paper's training initialisation, factors i.i.d.
  N(0, 1/(D+1)) (kind ``"best known"``), with every distinct minimum found and how often.

The rank of W* is counted with the singular values above ``RANK_RTOL`` times the largest
(the solver's soft-thresholding sets the others to exact zeros). Two local minima are the
same when their energies agree within ``ENERGY_RTOL`` (relative) and their effective
weights W (gauge invariant: W_q → RW_q, W_k → R⁻ᵀW_k leaves W unchanged) within
``W_RTOL`` of ‖W‖ (Frobenius). Both sit far above the scatter of restarts converging to
one minimum and far below the gaps between distinct minima; measured on D = 4, N = 12,
P = 3000, λ = 0.05, d_k = 1, 2, 3 with 64 restarts: scatter ≤ 1.1e-14 relative in energy
and ≤ 3.1e-7 in W; distinct minima (d_k = 2) 1.5e-3 apart in relative energy and 0.9
in relative W. Each minimum records its own scatter (``energy_spread``, ``w_spread``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from spinicl.config import ConfigError, check_int
from spinicl.models import FactoredModel
from spinicl.theory.gaussian import factored_ground_state, nuclear_objective

#: Singular values of the nuclear-norm optimum above RANK_RTOL·σ_max count for its rank.
RANK_RTOL = 1e-8
#: Relative energy tolerance for two local minima to be the same.
ENERGY_RTOL = 1e-8
#: Relative tolerance on the effective weights (‖ΔW‖/‖W‖) for the same minimum.
W_RTOL = 1e-4
#: L-BFGS settings (they pin W to ≲ 3e-7 relative on the measured case).
LBFGS_OPTIONS = {"maxiter": 20_000, "gtol": 1e-11, "ftol": 1e-15, "maxcor": 30}


@dataclass(frozen=True)
class LocalMinimum:
    """One distinct local minimum found by the restarts.

    Attributes
    ----------
    energy : float
        Factored energy (the lowest over the restarts that reached it).
    count : int
        Number of restarts that reached it.
    W : ndarray, shape ((D+1)²,)
        Effective weights W = W_qᵀW_k of a representative (row-major).
    factors : ndarray, shape (2·d_k·(D+1),)
        The representative's factors θ = (W_q, W_k).
    rank : int
        Rank of W (≤ d_k), singular values above RANK_RTOL·σ_max.
    min_hessian_eigenvalue : float
        Smallest eigenvalue of the factored Hessian at the representative (central
        differences of the gradient): ≈ 0 (the gauge modes), clearly negative only at a
        saddle.
    hessian_gap : float
        The eigenvalue after the d_k(d_k−1)/2 lowest (the gauge rotations W_q → RW_q,
        W_k → RW_k, R ∈ O(d_k), that keep W and the balance term): > 0 at a minimum that
        is strict up to gauge.
    energy_spread : float
        max − min energy over the restarts that reached it, relative to |energy|.
    w_spread : float
        max ‖W − W_rep‖/‖W_rep‖ over those restarts (both measure the clustering
        tolerances against the convergence scatter).
    """

    energy: float
    count: int
    W: np.ndarray
    factors: np.ndarray
    rank: int
    min_hessian_eigenvalue: float
    hessian_gap: float
    energy_spread: float
    w_spread: float


@dataclass(frozen=True)
class FactoredReference:
    """The factored model's ground-state reference at its d_k.

    Attributes
    ----------
    kind : {"exact", "best known"}
        "exact": rank(W*) ≤ d_k, the nuclear-norm optimum is the global minimum.
        "best known": the lowest of the restarts' minima (no proof of globality).
    dk, D : int
    lam : float
    energy : float
        Factored energy of the reference.
    W : ndarray, shape ((D+1)²,)
        Its effective weights (row-major; ``W_matrix`` for the (D+1)×(D+1) view).
    factors : ndarray, shape (2·d_k·(D+1),)
        Factors realising it (balanced factors of W* for "exact").
    nuclear_energy : float
        E₀(W*) + λ‖W*‖_*, a lower bound for every d_k (equal to ``energy`` when exact).
    nuclear_W : ndarray, shape ((D+1)²,)
        W*.
    nuclear_rank : int
        rank(W*) (singular values above ``rank_rtol``·σ_max).
    nuclear_singular_values : ndarray, shape (D+1,)
    rank_rtol : float
    minima : tuple of LocalMinimum
        "best known" only: the distinct minima, lowest energy first.
    restarts : int
        Number of local minimisations (0 for "exact").
    restart_energies : ndarray, shape (restarts,)
        The final energy of every restart.
    seed : int or None
    failed : int
        Restarts whose L-BFGS did not report convergence (kept, and counted).
    nuclear_iterations : int
    nuclear_converged : bool
        The nuclear-norm solver's iterations and whether it met its tolerance.
    """

    kind: str
    dk: int
    D: int
    lam: float
    energy: float
    W: np.ndarray
    factors: np.ndarray
    nuclear_energy: float
    nuclear_W: np.ndarray
    nuclear_rank: int
    nuclear_singular_values: np.ndarray
    rank_rtol: float = RANK_RTOL
    minima: tuple = ()
    restarts: int = 0
    restart_energies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seed: int | None = None
    failed: int = 0
    nuclear_iterations: int = 0
    nuclear_converged: bool = True

    @property
    def W_matrix(self) -> np.ndarray:
        """W as a (D+1)×(D+1) matrix."""
        return self.W.reshape(self.D + 1, self.D + 1)

    @property
    def gap_to_bound(self) -> float:
        """energy − nuclear_energy ≥ 0 (0 when exact)."""
        return self.energy - self.nuclear_energy

    def rows(self) -> dict[str, float | int | str]:
        """Flat summary for ``info`` / ``theory`` output."""
        out: dict[str, float | int | str] = {
            "kind": self.kind, "dk": self.dk, "energy_ground": self.energy,
            "nuclear_norm_bound": self.nuclear_energy, "gap_to_bound": self.gap_to_bound,
            "nuclear_rank": self.nuclear_rank}
        if self.kind == "best known":
            out.update({"restarts": self.restarts, "distinct_minima": len(self.minima),
                        "best_count": self.minima[0].count, "failed_restarts": self.failed,
                        "seed": -1 if self.seed is None else self.seed})
        return out


def _numerical_rank(s: np.ndarray, rtol: float) -> int:
    return int(np.sum(s > rtol * max(float(s[0]), 1e-300))) if s.size else 0


def _hessian_low(model: FactoredModel, theta: np.ndarray) -> tuple[float, float]:
    """Smallest Hessian eigenvalue and the one after the d_k(d_k−1)/2 gauge modes."""
    n = theta.shape[0]
    H = model.hessian_vec(theta, np.eye(n))
    vals = np.linalg.eigvalsh(0.5 * (H + H.T))
    return float(vals[0]), float(vals[min(model.dk * (model.dk - 1) // 2, n - 1)])


def factored_reference(model: FactoredModel, *, restarts: int = 64, seed: int | None = 0,
                       rank_rtol: float = RANK_RTOL, energy_rtol: float = ENERGY_RTOL,
                       w_rtol: float = W_RTOL) -> FactoredReference:
    """Ground-state reference of the factored model for any d_k.

    Parameters
    ----------
    model : FactoredModel
        Any d_k ≥ 1 (dense or matrix-free data).
    restarts : int
        Local minimisations when rank(W*) > d_k.
    seed : int or None
        Seed of the restarts' initial factors (the result is reproducible from it).
    rank_rtol : float
        Relative singular-value threshold for rank(W*).
    energy_rtol, w_rtol : float
        Tolerances identifying two minima (module docstring).

    Returns
    -------
    FactoredReference
    """
    if getattr(model, "dk", None) is None:
        raise ConfigError("model", "factored", getattr(model, "name", model))
    restarts = check_int("restarts", restarts, 1)
    d1 = model.D + 1
    full = model if model.dk >= d1 else FactoredModel(model.data, model.lam, d1)
    gs = factored_ground_state(full)
    s = np.linalg.svd(gs.W.reshape(d1, d1), compute_uv=False)
    rank = _numerical_rank(s, rank_rtol)
    common = {"dk": model.dk, "D": model.D, "lam": float(model.lam),
              "nuclear_energy": gs.energy, "nuclear_W": gs.W, "nuclear_rank": rank,
              "nuclear_singular_values": s, "rank_rtol": rank_rtol,
              "nuclear_iterations": gs.iterations, "nuclear_converged": gs.converged}
    if rank <= model.dk:
        theta = model.balanced_factors(gs.W)
        return FactoredReference(kind="exact", energy=gs.energy, W=gs.W.copy(),
                                 factors=theta, **common)

    rng = np.random.default_rng(seed)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        e, g = model.energy_and_grad(theta[None])
        return float(e[0]), g[0]

    finals = []
    failed = 0
    for _ in range(restarts):
        theta0 = rng.normal(0.0, 1.0 / np.sqrt(d1), model.n_spins)
        res = minimize(fun, theta0, jac=True, method="L-BFGS-B", options=LBFGS_OPTIONS)
        failed += int(not res.success)
        theta = res.x
        finals.append((float(fun(theta)[0]), theta))
    energies = np.array([e for e, _ in finals])
    # cluster by energy and gauge-invariant W, lowest energy first
    clusters: list[dict] = []
    for i in np.argsort(energies, kind="stable"):
        e, theta = finals[i]
        W = model.effective_weights(theta[None])[0]
        for c in clusters:
            scale_e = max(abs(c["energy"]), 1e-300)
            scale_w = max(float(np.linalg.norm(c["W"])), 1e-300)
            dw = float(np.linalg.norm(W - c["W"])) / scale_w
            if abs(e - c["energy"]) <= energy_rtol * scale_e and dw <= w_rtol:
                c["count"] += 1
                c["e_max"] = max(c["e_max"], e)
                c["w_spread"] = max(c["w_spread"], dw)
                break
        else:
            clusters.append({"energy": e, "count": 1, "W": W, "factors": theta,
                             "e_max": e, "w_spread": 0.0})
    minima = []
    for c in clusters:
        low, gap = _hessian_low(model, c["factors"])
        sv = np.linalg.svd(c["W"].reshape(d1, d1), compute_uv=False)
        minima.append(LocalMinimum(
            energy=c["energy"], count=c["count"], W=c["W"], factors=c["factors"],
            rank=_numerical_rank(sv, rank_rtol), min_hessian_eigenvalue=low,
            hessian_gap=gap,
            energy_spread=(c["e_max"] - c["energy"]) / max(abs(c["energy"]), 1e-300),
            w_spread=c["w_spread"]))
    minima = tuple(minima)
    best = minima[0]
    return FactoredReference(kind="best known", energy=best.energy, W=best.W.copy(),
                             factors=best.factors.copy(), minima=minima, restarts=restarts,
                             restart_energies=energies, seed=seed, failed=failed, **common)


def check_nuclear_bound(ref: FactoredReference, model: FactoredModel) -> float:
    """E₀(W) + λ‖W‖_* of the reference's W minus its factored energy (≤ 0 up to rounding:
    the factored energy is never below the nuclear objective of its W)."""
    return nuclear_objective(model, ref.W) - ref.energy


__all__ = ["ENERGY_RTOL", "LBFGS_OPTIONS", "RANK_RTOL", "W_RTOL", "FactoredReference",
           "LocalMinimum", "check_nuclear_bound", "factored_reference"]
