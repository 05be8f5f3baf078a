"""Finite-size scaling of the exact ground state towards the D → ∞ theory.

At a point (α, τ, κ, λ_L) of the asymptotic theory (:mod:`spinicl.theory.asymptotic`; α = N/D,
τ = P/D², κ = K/D) this module solves spinicl's merged model exactly at several token
dimensions D — the ground state m = A⁻¹h at weight decay λ, then its test MSE on novel
tasks and on tasks of the training pool — over several disorder seeds, fits the
finite-size correction

    e(D) = a + b/D          (and a + b/D + c/D² to test whether a 1/D² term is needed)

by weighted least squares with the per-D standard errors over seeds, and reports the
extrapolated D = ∞ value a ± se(a) beside the theory's value.

Realised sizes: N = round(αD), P = round(τD²), K = round(κD) (K = P for κ = ∞) are
integers, so the realised ratios differ slightly from the requested ones; they are
reported per D.

The ridge is held fixed in the theory's normalisation: spinicl's λ at each D is
λ = λ_L/(D(1 + 1/N)²) (:func:`spinicl.theory.asymptotic.lam_to_spinicl`).

Test errors: by default the *population* error of m, the exact expectation over test
prompts (:func:`population_test_mse`: Gaussian moments up to fourth order, no test-set
noise; for in-distribution the exact average over the K pool tasks). With
``test_prompts > 0`` the errors are measured on that many fresh test prompts instead
(spinicl's ``test_mse_novel`` / ``test_mse_in_distribution``), which adds test noise.

Cost: the ground state solves A m = h by conjugate gradients on the matrix-free data
term (A never formed; ~170 iterations of cost ~4P(D+1)² each at α = τ = 2), or by a
Cholesky factorisation of the dense A for small D (D ≤ 30) and as a fallback.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.stats

from spinicl.config import ConfigError, TaskConfig, check_float, check_int
from spinicl.theory.asymptotic import (
    NEGLIGIBLE_RIDGE,
    asymptotic_test_mse,
    lam_to_spinicl,
)

DEFAULT_DS = (10, 20, 40, 80)
DEFAULT_SEEDS = 8
QUICK_DS = (10, 20, 30, 40)
QUICK_SEEDS = 8
#: Seeds at a smaller D are multiplied by (D_max/D)², at most this factor (the spread over
#: seeds falls roughly like 1/D, so this equalises the standard errors at little cost).
MAX_SEED_FACTOR = 16
SETS = ("novel", "in_distribution")

#: Largest D solved by a dense Cholesky factorisation by default (n = (D+1)² spins).
DENSE_MAX_D = 30


# --------------------------------------------------------------------------- sizes
def realise(alpha: float, tau: float, kappa: float, D: int) -> dict[str, Any]:
    """Integer sizes for a point (α, τ, κ) at token dimension D.

    Parameters
    ----------
    alpha, tau : float
        N/D and P/D² (> 0).
    kappa : float
        K/D (> 0) or ``inf`` (K = P).
    D : int

    Returns
    -------
    dict
        ``D, N, P, K`` (K = P for κ = ∞) and the realised ``alpha, tau, kappa``
        (``inf`` when K = P).

    Raises
    ------
    ConfigError
        When a size rounds to 0, or K = round(κD) would exceed P.
    """
    D = check_int("D", D, 1, 10_000)
    N = round(alpha * D)
    P = round(tau * D * D)
    if N < 1:
        raise ConfigError("alpha", f">= {0.5 / D:g} so that N = round(alpha*D) >= 1 at D={D}",
                          alpha)
    if P < 1:
        raise ConfigError("tau", f">= {0.5 / D**2:g} so that P = round(tau*D^2) >= 1 at "
                          f"D={D}", tau)
    if math.isinf(kappa):
        K = P
    else:
        K = round(kappa * D)
        if K < 1:
            raise ConfigError("kappa", f">= {0.5 / D:g} so that K = round(kappa*D) >= 1 at "
                              f"D={D}", kappa)
        if K > P:
            raise ConfigError("kappa", f"<= tau*D = {P / D:g} at D={D} (K <= P), or inf",
                              kappa)
    return {"D": D, "N": N, "P": P, "K": K, "alpha": N / D, "tau": P / D**2,
            "kappa": math.inf if K == P else K / D}


# --------------------------------------------------------------------------- errors
def population_test_mse(W: np.ndarray, D: int, N: int, sigma_eps: float = 0.0,
                        pool: np.ndarray | None = None) -> float:
    """Exact expected test MSE of merged weights over test prompts (no test-set noise).

    Tokens x ~ N(0, I_D) (σ_x = 1, independent), labels y = x·w/√D + σ_ε ξ. Writing
    g = w/√D, B = W[:, :D] = (B₁; b₂ᵀ), the prediction is ŷ = x_qᵀ(B₁ᵀc₁ + b₂c₂), and
    with t = ‖g‖² + σ_ε², r = N/(N + 1), G = BBᵀ,

        E[(y_q − ŷ)² | g] = ‖g‖² + σ_ε² − 2r(gᵀB₁g + t gᵀb₂)
            + [N(t tr G₁₁ + 2gᵀG₁₁g + 6t gᵀG₁₂ + 3t²G₂₂)
               + N(N − 1)(gᵀG₁₁g + 2t gᵀG₁₂ + t²G₂₂)] / (N + 1)²

    (Gaussian moments of c = Σ_i y_i (x_i, y_i)/(N + 1) up to fourth order). Novel tasks
    average this over g ~ N(0, I/D) in closed form; in-distribution tasks over the pool.

    Parameters
    ----------
    W : ndarray, shape ((D+1)²,)
        Merged weights, row-major.
    D, N : int
    sigma_eps : float
        Label-noise scale σ_ε.
    pool : ndarray, shape (K, D), optional
        Task vectors w_k of the pool (σ_w scale included); None: novel tasks
        w ~ N(0, I_D).

    Returns
    -------
    float
        The test MSE.
    """
    Wm = np.asarray(W, dtype=float).reshape(D + 1, D + 1)
    B1 = Wm[:D, :D]
    b2 = Wm[D, :D]
    G11 = B1 @ B1.T
    G12 = B1 @ b2
    G22 = float(b2 @ b2)
    s2 = sigma_eps**2
    r = N / (N + 1.0)
    norm = 1.0 / (N + 1.0) ** 2
    if pool is None:
        trG = float(np.trace(G11))
        Et = 1.0 + s2
        Et2 = (D + 2.0) / D + 2.0 * s2 + s2 * s2
        gG11g = trG / D
        evv = norm * (N * (Et * trG + 2.0 * gG11g + 3.0 * Et2 * G22)
                      + N * (N - 1.0) * (gG11g + Et2 * G22))
        return float(1.0 + s2 - 2.0 * r * np.trace(B1) / D + evv)
    g = np.asarray(pool, dtype=float) / math.sqrt(D)
    gg = np.einsum("kd,kd->k", g, g)
    t = gg + s2
    gB1g = np.einsum("kd,de,ke->k", g, B1, g)
    gb2 = g @ b2
    gG11g = np.einsum("kd,de,ke->k", g, G11, g)
    gG12 = g @ G12
    trG = float(np.trace(G11))
    evv = norm * (N * (t * trG + 2.0 * gG11g + 6.0 * t * gG12 + 3.0 * t * t * G22)
                  + N * (N - 1.0) * (gG11g + 2.0 * t * gG12 + t * t * G22))
    e = gg + s2 - 2.0 * r * (gB1g + t * gb2) + evv
    return float(e.mean())


def seeds_per_d(Ds: tuple[int, ...], seeds: int) -> dict[int, int]:
    """Disorder samples per D: ``seeds`` at the largest D, ``seeds``·(D_max/D)² (at most
    ``MAX_SEED_FACTOR``·``seeds``) below it.

    The spread of the test MSE over seeds falls roughly like 1/D while the cost of a
    ground state grows like D⁴, so small sizes get more seeds for equal standard errors
    at a negligible cost.
    """
    dmax = max(Ds)
    return {D: round(seeds * min((dmax / D) ** 2, MAX_SEED_FACTOR)) for D in Ds}


# --------------------------------------------------------------------------- one point
def ground_state(task, lam: float, representation: str = "auto",
                 cg_tol: float = 1e-10) -> tuple[np.ndarray, dict[str, Any]]:
    """Ground state m = A⁻¹h, A = λI + SᵀS/P, shape ((D+1)²,), and how it was solved.

    ``representation``: ``"dense"`` (Cholesky of A), ``"matrix-free"`` (conjugate
    gradients on A m = h, A never formed) or ``"auto"`` (dense for D ≤ 30, else
    matrix-free; falls back to dense if CG does not converge within 20 n iterations and
    the dense A fits in memory).
    """
    from spinicl.models import build_model, choose_representation
    from spinicl.theory.gaussian import conjugate_gradient

    D = task.config.D
    rep = representation
    if rep == "auto":
        rep = "dense" if D <= DENSE_MAX_D else "matrix-free"
    info: dict[str, Any] = {"representation": rep}
    if rep == "matrix-free":
        model = build_model(task, lam=lam, representation="matrix-free")
        m, it, res = conjugate_gradient(model.precision_product, model.field[None], tol=cg_tol,
                                        max_iter=20 * model.n_spins)
        info.update(cg_iterations=it, cg_relative_residual=float(res[0]))
        if res[0] <= 10 * cg_tol or representation != "auto":
            return m[0], info
        try:
            choose_representation(D, task.config.P, "dense")
        except ConfigError:
            return m[0], info
        rep = "dense"
        info["representation"] = "dense (CG did not converge)"
    model = build_model(task, lam=lam, representation="dense")
    L = np.linalg.cholesky(model.precision())
    return sla.cho_solve((L, True), model.field), info


def finite_d_point(sizes: dict[str, Any], lam_L: float, seed: int, sigma_eps: float = 0.0,
                   test_prompts: int = 0, representation: str = "auto") -> dict[str, Any]:
    """Exact ground state of one disorder sample and its two test MSEs.

    Parameters
    ----------
    sizes : dict
        From :func:`realise` (``D, N, P, K``).
    lam_L : float
        Ridge in the theory's normalisation (> 0); spinicl's λ follows from D and N.
    seed : int
        Disorder seed (task pool, training prompts, test prompts).
    sigma_eps : float
        Label-noise scale.
    test_prompts : int
        0: population errors (:func:`population_test_mse`); > 0: errors on that many
        sampled test prompts per set.
    representation : {"auto", "dense", "matrix-free"}

    Returns
    -------
    dict
        ``D, N, P, K, seed, lam`` (spinicl's), ``test_mse_novel``,
        ``test_mse_in_distribution``, ``seconds`` and the solver's info.
    """
    from spinicl.models import mse
    from spinicl.prompts import make_task

    t0 = time.perf_counter()
    D, N, P, K = sizes["D"], sizes["N"], sizes["P"], sizes["K"]
    lam = float(lam_to_spinicl(lam_L, D, N))
    cfg = TaskConfig(D=D, N=N, P=P, K=None if K == P else K, lam=lam, sigma_eps=sigma_eps,
                     seed=seed, test_prompts=max(test_prompts, 1))
    task = make_task(cfg, keep_test_context=False)
    m, info = ground_state(task, lam, representation)
    if test_prompts > 0:
        nov = float(mse(m[None], task.test_novel)[0])
        ind = float(mse(m[None], task.test_in_distribution)[0])
    else:
        nov = population_test_mse(m, D, N, sigma_eps)
        ind = population_test_mse(m, D, N, sigma_eps, pool=task.pool)
    return {"D": D, "N": N, "P": P, "K": K, "seed": seed, "lam": lam,
            "test_mse_novel": nov, "test_mse_in_distribution": ind,
            "seconds": time.perf_counter() - t0, **info}


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class FiniteSizeFit:
    """Weighted least-squares fit e(D) = Σ_j coef_j D^{-j}, j = 0..order.

    Attributes
    ----------
    order : int
        1 (a + b/D) or 2 (a + b/D + c/D²).
    coef : tuple of float
        (a, b[, c]); a is the extrapolated D = ∞ value.
    stderr : tuple of float
        Their standard errors from the weights 1/se² (not rescaled by χ²/dof).
    chi2 : float
        Σ ((e − fit)/se)².
    dof : int
        Points minus parameters.
    p_value : float
        P(χ²_dof ≥ chi2) (NaN for dof = 0).
    residuals : tuple of float
        e − fit at each D (same order as the input).
    """

    order: int
    coef: tuple[float, ...]
    stderr: tuple[float, ...]
    chi2: float
    dof: int
    p_value: float
    residuals: tuple[float, ...]

    @property
    def value(self) -> float:
        """Extrapolated D = ∞ value a."""
        return self.coef[0]

    @property
    def value_stderr(self) -> float:
        return self.stderr[0]

    def predict(self, D: np.ndarray) -> np.ndarray:
        """The fitted curve at D (array of any shape)."""
        inv = 1.0 / np.asarray(D, dtype=float)
        return sum(c * inv**j for j, c in enumerate(self.coef))


def fit_finite_size(D: np.ndarray, y: np.ndarray, se: np.ndarray, order: int = 1
                    ) -> FiniteSizeFit:
    """Weighted least squares of y(D) on 1, 1/D[, 1/D²] with weights 1/se².

    Parameters
    ----------
    D : ndarray, shape (n,)
        Token dimensions (distinct).
    y : ndarray, shape (n,)
        Mean test MSE per D.
    se : ndarray, shape (n,)
        Its standard error per D (> 0).
    order : int
        1 or 2.

    Returns
    -------
    FiniteSizeFit

    Raises
    ------
    ConfigError
        With fewer than order + 1 points or a non-positive standard error.
    """
    D = np.asarray(D, dtype=float)
    y = np.asarray(y, dtype=float)
    se = np.asarray(se, dtype=float)
    order = check_int("order", order, 1, 2)
    if D.size < order + 1:
        raise ConfigError("D", f"at least {order + 1} distinct values for an order-{order} "
                          "fit", D.size)
    if np.any(~(se > 0)) or np.any(~np.isfinite(se)):
        raise ConfigError("seeds", ">= 2 per D (a standard error needs two samples)",
                          se.tolist())
    X = np.stack([D ** (-j) for j in range(order + 1)], axis=1)
    w = 1.0 / se
    coef, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
    cov = np.linalg.inv((X * (w * w)[:, None]).T @ X)
    resid = y - X @ coef
    chi2 = float(np.sum((resid * w) ** 2))
    dof = D.size - order - 1
    p = float(scipy.stats.chi2.sf(chi2, dof)) if dof > 0 else float("nan")
    return FiniteSizeFit(order=order, coef=tuple(float(c) for c in coef),
                         stderr=tuple(float(s) for s in np.sqrt(np.diag(cov))), chi2=chi2,
                         dof=dof, p_value=p, residuals=tuple(float(r) for r in resid))


def choose_fit(D: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[FiniteSizeFit,
                                                                     FiniteSizeFit | None,
                                                                     str]:
    """Fit a + b/D and, with ≥ 4 sizes, a + b/D + c/D²; say whether 1/D² is needed.

    Since the per-D standard errors are known, the fits are compared by χ²: the 1/D²
    term is *needed* when a + b/D is rejected (χ² p-value < 0.05), and *included* in the
    quoted extrapolation (:func:`preferred`) when it lowers χ² by more than 2 (Akaike's
    criterion for one extra parameter) — a 1/D² term that is real but not yet
    significant otherwise biases a + b/D with a deceptively small error bar.

    Returns
    -------
    (linear, quadratic or None, verdict)
        ``verdict`` is a short sentence.
    """
    lin = fit_finite_size(D, y, se, 1)
    quad = fit_finite_size(D, y, se, 2) if np.asarray(D).size >= 4 else None
    if quad is None:
        return lin, None, ("a + b/D only (3 sizes leave no degree of freedom to test a 1/D² "
                           "term; give 4 or more)" if lin.dof <= 1 else "a + b/D only")
    test = (f"a + b/D: chi2 = {lin.chi2:.2f} for {lin.dof} dof (p = {lin.p_value:.2g}); "
            f"+ c/D²: chi2 = {quad.chi2:.2f}"
            + (f" (p = {quad.p_value:.2g})" if quad.dof else "")
            + f", c = {quad.coef[2]:.3g} ± {quad.stderr[2]:.2g}")
    if lin.p_value < 0.05:
        head = "1/D² term needed" if (quad.dof == 0 or quad.p_value >= 0.05) else \
            "neither fit acceptable (corrections beyond 1/D², or underestimated errors)"
    elif lin.chi2 - quad.chi2 > 2.0:
        head = "1/D² term included (lowers chi2 by > 2), though a + b/D is not rejected"
    else:
        head = "a + b/D suffices"
    return lin, quad, f"{head}: {test}"


def preferred(lin: FiniteSizeFit, quad: FiniteSizeFit | None) -> FiniteSizeFit:
    """The fit whose a is quoted: the quadratic one when it lowers χ² by more than 2 or
    the linear one is rejected (p < 0.05); else the linear one."""
    if quad is not None and (lin.p_value < 0.05 or lin.chi2 - quad.chi2 > 2.0):
        return quad
    return lin


# --------------------------------------------------------------------------- study
@dataclass
class ScalingResult:
    """Everything ``spinicl scaling`` reports (see :meth:`as_dict` for the JSON keys)."""

    alpha: float
    tau: float
    kappa: float
    lam_L: float
    sigma_eps: float
    Ds: tuple[int, ...]
    seeds: int
    test_prompts: int
    points: list[dict[str, Any]]
    sizes: list[dict[str, Any]]
    per_d: dict[str, dict[str, list[float]]]
    fits: dict[str, dict[str, Any]]
    formula: dict[str, float | None]
    seconds: float
    extras: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "alpha": self.alpha, "tau": self.tau,
            "kappa": None if math.isinf(self.kappa) else self.kappa,
            "kappa_infinite": math.isinf(self.kappa),
            "lam_asymptotic": self.lam_L, "sigma_eps": self.sigma_eps,
            "D": list(self.Ds), "seeds": self.seeds,
            "seeds_per_d": list(seeds_per_d(self.Ds, self.seeds).values()),
            "test_prompts": self.test_prompts,
            "test_error": ("population (exact expectation over test prompts)"
                           if self.test_prompts == 0 else
                           f"{self.test_prompts} sampled test prompts per set"),
            "realised": self.sizes,
        }
        for which in SETS:
            f = self.fits[which]
            out[f"extrapolated_test_mse_{which}"] = f["value"]
            out[f"extrapolated_test_mse_{which}_stderr"] = f["stderr"]
            out[f"formula_test_mse_{which}"] = self.formula[which]
            out[f"per_d_test_mse_{which}"] = self.per_d[which]["mean"]
            out[f"per_d_test_mse_{which}_stderr"] = self.per_d[which]["stderr"]
            out[f"fit_test_mse_{which}"] = f
        out["formula_test_mse_novel_ridgeless"] = self.formula["novel_ridgeless"]
        out["points"] = self.points
        out["seconds"] = self.seconds
        out.update(self.extras)
        return out


def _fit_dict(D, mean, se, formula: float | None) -> dict[str, Any]:
    lin, quad, verdict = choose_fit(D, mean, se)
    best = preferred(lin, quad)
    d: dict[str, Any] = {
        "model": "a + b/D" if best.order == 1 else "a + b/D + c/D^2",
        "value": best.value, "stderr": best.value_stderr,
        "linear": asdict(lin), "quadratic": asdict(quad) if quad else None,
        "residuals": list(best.residuals), "includes_1_over_D2": best.order == 2,
        "needs_1_over_D2": lin.p_value < 0.05 and quad is not None,
        "verdict": verdict,
    }
    if formula is not None and math.isfinite(formula):
        d["deviation_from_formula_in_stderr"] = (best.value - formula) / best.value_stderr
    return d


def scaling_study(alpha: float, tau: float, kappa: float, lam_L: float, *,
                  Ds: tuple[int, ...] = DEFAULT_DS, seeds: int = DEFAULT_SEEDS,
                  sigma_eps: float = 0.0, test_prompts: int = 0,
                  representation: str = "auto", progress=None) -> ScalingResult:
    """Exact finite-D ground states at several D and seeds, extrapolated to D = ∞.

    Parameters
    ----------
    alpha, tau : float
        N/D and P/D² (> 0).
    kappa : float
        K/D (> 0) or ``inf``.
    lam_L : float
        Ridge in the theory's normalisation (> 0; use a small value such as 1e-6 for the
        ridgeless limit, which the ground state needs to be defined).
    Ds : tuple of int
        Token dimensions (≥ 2 distinct values, each ≥ 2).
    seeds : int
        Disorder samples at the largest D (≥ 2, for the standard errors); smaller D get
        more (:func:`seeds_per_d`); seeds 0, 1, ... at each D.
    sigma_eps : float
        Label-noise scale (the theory's ρ = σ_ε²).
    test_prompts : int
        0 (default): population errors; > 0: sampled test prompts per set.
    representation : {"auto", "dense", "matrix-free"}
    progress : callable, optional
        ``progress(done, total, point_dict)`` after each (D, seed).

    Returns
    -------
    ScalingResult
    """
    alpha = check_float("alpha", alpha, low=0.0, low_open=True)
    tau = check_float("tau", tau, low=0.0, low_open=True)
    kappa = float(kappa)
    if not (kappa > 0):
        raise ConfigError("kappa", "> 0 (or inf for K = P)", kappa)
    lam_L = check_float("lam", lam_L, low=0.0, low_open=True,
                        note="the ground state needs a ridge; 1e-6 approximates lam -> 0")
    sigma_eps = check_float("sigma_eps", sigma_eps, low=0.0)
    seeds = check_int("seeds", seeds, 2, 10_000)
    test_prompts = check_int("test_prompts", test_prompts, 0)
    Ds = tuple(sorted({check_int("D", d, 2, 10_000) for d in Ds}))
    if len(Ds) < 2:
        raise ConfigError("D", "at least 2 distinct token dimensions (e.g. 10,20,40,80)",
                          list(Ds))
    sizes = [realise(alpha, tau, kappa, D) for D in Ds]
    n_seeds = seeds_per_d(Ds, seeds)
    t0 = time.perf_counter()
    points = []
    total = sum(n_seeds.values())
    for s in sizes:
        for seed in range(n_seeds[s["D"]]):
            p = finite_d_point(s, lam_L, seed, sigma_eps, test_prompts, representation)
            points.append(p)
            if progress is not None:
                progress(len(points), total, p)
    per_d: dict[str, dict[str, list[float]]] = {}
    rho = sigma_eps**2
    formula = {
        "novel": float(asymptotic_test_mse(alpha, kappa, tau, lam_L, rho, "novel")),
        "novel_ridgeless": (float(asymptotic_test_mse(alpha, kappa, tau, 0.0, rho))
                            if tau != 1 else None),
        "in_distribution": (float(asymptotic_test_mse(alpha, kappa, tau, 0.0, rho,
                                                      "in_distribution"))
                            if tau != 1 else None),
    }
    nr = formula["novel_ridgeless"]
    ridge_negligible = nr is not None and abs(formula["novel"] - nr) < NEGLIGIBLE_RIDGE * nr
    fits = {}
    Darr = np.array(Ds, dtype=float)
    for which in SETS:
        vals = [np.array([p[f"test_mse_{which}"] for p in points if p["D"] == D])
                for D in Ds]
        mean = np.array([v.mean() for v in vals])
        se = np.array([v.std(ddof=1) / math.sqrt(v.size) for v in vals])
        per_d[which] = {"mean": mean.tolist(), "stderr": se.tolist(),
                        "std": [float(v.std(ddof=1)) for v in vals]}
        # the in-distribution formula is ridgeless: compare only when the ridge is negligible
        ref = formula[which] if which == "novel" or ridge_negligible else None
        fits[which] = _fit_dict(Darr, mean, se, ref)
    return ScalingResult(alpha=alpha, tau=tau, kappa=kappa, lam_L=lam_L, sigma_eps=sigma_eps,
                         Ds=Ds, seeds=seeds, test_prompts=test_prompts, points=points,
                         sizes=sizes, per_d=per_d, fits=fits, formula=formula,
                         seconds=time.perf_counter() - t0,
                         extras={"ridge_negligible": ridge_negligible})


def format_scaling(r: ScalingResult) -> str:
    """Human-readable table of a :class:`ScalingResult`."""
    k = "∞ (K = P)" if math.isinf(r.kappa) else f"{r.kappa:g}"
    lines = [(f"spinicl scaling — exact ground state at α = N/D = {r.alpha:g}, τ = P/D² = "
             f"{r.tau:g}, κ = K/D = {k}, λ_L = {r.lam_L:g}, σ_ε = {r.sigma_eps:g}; "
             f"{r.seeds} seeds at D = {max(r.Ds)}, more below"),
             "test errors: " + ("population (exact expectation over test prompts)"
                                if r.test_prompts == 0 else
                                f"{r.test_prompts} sampled test prompts per set"),
             "",
             (f"{'D':>5s}{'N':>6s}{'P':>8s}{'K':>7s}{'λ (spinicl)':>13s}"
             f"{'seeds':>6s}{'e_ICL (novel)':>22s}{'e_IDG (in-dist.)':>22s}{'s/seed':>8s}")]
    n_seeds = seeds_per_d(r.Ds, r.seeds)
    for i, s in enumerate(r.sizes):
        secs = np.mean([p["seconds"] for p in r.points if p["D"] == s["D"]])
        lam = next(p["lam"] for p in r.points if p["D"] == s["D"])
        cols = []
        for which in SETS:
            cols.append(f"{r.per_d[which]['mean'][i]:.4f} ± {r.per_d[which]['stderr'][i]:.4f}")
        Ktxt = "P" if s["K"] == s["P"] else str(s["K"])
        lines.append(f"{s['D']:5d}{s['N']:6d}{s['P']:8d}{Ktxt:>7s}{lam:13.3g}"
                     f"{n_seeds[s['D']]:6d}"
                     f"{cols[0]:>22s}{cols[1]:>22s}{secs:8.2f}")
    lines.append("")
    lines.append(f"{'':28s}{'D = ∞ (extrapolated)':>24s}{'formula':>10s}{'(x−f)/se':>10s}")
    for which, name in (("novel", "e_ICL (novel)"), ("in_distribution", "e_IDG (in-dist.)")):
        f = r.fits[which]
        form = r.formula[which]
        dev = f.get("deviation_from_formula_in_stderr")
        lines.append(f"  {name:26s}{f['value']:>14.4f} ± {f['stderr']:.4f}"
                     f"{('—' if form is None else f'{form:.4f}'):>10s}"
                     f"{('—' if dev is None else f'{dev:+.2f}'):>10s}   [{f['model']}]")
        lines.append(f"      fit: {f['verdict']}")
        lines.append("      residuals: " + ", ".join(f"{x:+.4f}" for x in f["residuals"]))
    if r.extras.get("ridge_negligible"):
        note = "formula: D → ∞ theory (Lu et al.), ridgeless (λ_L is negligible here)."
    else:
        note = ("formula: D → ∞ theory (Lu et al.); e_ICL at λ_L; e_IDG is the ridgeless "
                "value, shown for reference only: there is no finite-ridge formula for it.")
    lines.append(note)
    lines.append(f"({r.seconds:.1f} s)")
    return "\n".join(lines)


def plot_scaling(r: ScalingResult, out: str) -> list[str]:
    """Figure of a scaling study: test MSE against 1/D with the fits, the extrapolation
    at 1/D = 0 and the D → ∞ formula. Writes ``out`` like every spinicl figure
    (:func:`spinicl.plots.style.save_figure`: PNG and PDF); returns the path list.
    """
    from spinicl.plots.style import new_figure, save_figure

    fig = new_figure(5.6, 4.0)
    ax = fig.add_subplot()
    x = 1.0 / np.array(r.Ds, dtype=float)
    xx = np.linspace(0.0, x.max() * 1.05, 200)
    for which, col, name in (("novel", "#1f5fa8", "ICL (novel tasks)"),
                             ("in_distribution", "#c2452d", "in-distribution")):
        m = np.array(r.per_d[which]["mean"])
        se = np.array(r.per_d[which]["stderr"])
        ax.errorbar(x, m, yerr=se, fmt="o", color=col, ms=4, capsize=2,
                    label=f"{name}: exact ground state, mean ± s.e.")
        f = r.fits[which]
        coef = (f["quadratic"] if f["includes_1_over_D2"] else f["linear"])["coef"]
        ax.plot(xx, sum(c * xx**j for j, c in enumerate(coef)), color=col, lw=1.0,
                label=f"fit {f['model']}")
        ax.errorbar([0.0], [f["value"]], yerr=[f["stderr"]], fmt="s", color=col, ms=5,
                    capsize=3, mfc="white")
        form = r.formula[which]
        if form is not None and (which == "novel" or r.extras.get("ridge_negligible")):
            ax.plot([0.0], [form], marker="*", color="k", ms=10, ls="none",
                    label="D → ∞ formula" if which == "novel" else None)
    ax.set_xlabel("1/D")
    ax.set_ylabel("test MSE")
    k = "∞" if math.isinf(r.kappa) else f"{r.kappa:g}"
    ax.set_title(f"α = {r.alpha:g}, τ = {r.tau:g}, κ = {k}, λ_L = {r.lam_L:g}: "
                 "squares = extrapolation")
    ax.set_xlim(-0.004, x.max() * 1.08)
    ax.grid(True, color="0.92", lw=0.6)
    ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, out)
