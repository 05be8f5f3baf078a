"""The D → ∞ theory of in-context learning by linear attention, beside spinicl's finite D.

Lu, Letey, Zavatone-Veth, Maiti & Pehlevan, *Asymptotic theory of in-context learning by
linear attention* (arXiv:2405.11751, PNAS 2025) solve the ridge-regularised linear
attention that spinicl's merged model W is (restricted to its active block) in the limit
D → ∞ with the ratios

    α = N/D    (context length per dimension)
    κ = K/D    (task diversity per dimension; κ = ∞ for one task per prompt, K = P)
    τ = P/D²   (pre-training prompts per parameter)

held fixed. Beware the name clash: spinicl's ``TaskConfig.alpha`` is the load P/D², which
is τ here; α in this module is always N/D.

Their test errors are spinicl's test MSEs of the ground state (ŷ includes no ½ and the
error includes the label-noise variance ρ):

* ``e_ICL``: prompts with fresh tasks w ~ N(0, I) — spinicl's ``test_mse_novel``;
* ``e_IDG``: prompts whose tasks are drawn from the pre-training pool — spinicl's
  ``test_mse_in_distribution``.

Formulas (x* = (1+ρ)/α, ρ the label-noise variance):

    M_κ(x) = 2 / [(x + 1 − 1/κ) + √((x + 1 − 1/κ)² + 4x/κ)]       (M_∞(x) = 1/(1+x))

is the Marchenko–Pastur resolvent lim (1/D) tr(BBᵀ/K + x)⁻¹ of the pool's task covariance
(B: D×K Gaussian). The ridgeless (λ → 0⁺) errors are closed forms in m* = M_κ(x*) and
μ* = x*·M_{κ/τ}(x*) (:func:`ridgeless_icl`, :func:`ridgeless_idg`); both diverge at τ = 1
(P = D², the interpolation threshold: sample-wise double descent). At a finite ridge the
ICL error goes through the positive root ε of

    1 − τ + τλ_L/ε − ε M_κ(ε + x*) = 0                               (:func:`ridge_epsilon`)

The left side is strictly decreasing in ε > 0 (ε M_κ(ε + x) is the mean of ε/(s + ε + x)
over the task-covariance spectrum s ≥ 0, increasing in ε), +∞ at 0⁺ and −τ at ∞, so the
root is unique; it is bracketed in [λ_L, 2 max((1 + x*)/τ, λ_L)] and found by bisection
in log ε (the same root on both sides of τ = 1 and for every κ, including κ = ∞).
No finite-ridge formula exists for the in-distribution error.

Dictionary from spinicl (:func:`from_spinicl`), for independent Gaussian tokens (ρ_token
= 0): α = N/D, κ = K/D (∞ when K = P), τ = P/D², label-noise variance
ρ = σ_ε²/(σ_xσ_w)², ridge λ_L = D (1 + 1/N)² λ/(σ_x⁶σ_w²), errors multiplied by
(σ_xσ_w)² (a change of units; 1 for the defaults σ_x = σ_w = 1). The map of the ridge is
exact for κ = ∞ and in the ridgeless limit; at finite κ with finite λ it neglects the
different penalty of the W row that multiplies Σ_i y_i² (weight 0 for symmetric task
distributions), an O(1/D)-small difference. Their tasks have ‖w‖ = √D and each pool task
is used P/K times, spinicl's are Gaussian and assigned at random: also O(1/D) effects.
Finite D approaches these values slowly (corrections ∝ 1/D; e.g. α = 2, τ = 2, κ = 4:
about 0.709 + 2.7/D): compare finite-D results with them through an extrapolation in 1/D
(:mod:`spinicl.analysis.scaling`, ``spinicl scaling``), not directly.

All functions take scalars or broadcastable arrays and return float arrays of the
broadcast shape (0-d arrays for scalar input); κ may be ``numpy.inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from spinicl.config import ConfigError, TaskConfig

ArrayLike = float | np.ndarray

#: The ridge counts as negligible when the finite-ridge ICL error differs from the
#: ridgeless one by less than this fraction (never at τ = 1, where the latter diverges).
NEGLIGIBLE_RIDGE = 1e-4


# --------------------------------------------------------------------------- validation
def _positive(name: str, value: Any, allow_inf: bool = False) -> np.ndarray:
    v = np.asarray(value, dtype=float)
    bad = ~(v > 0) | (np.isinf(v) if not allow_inf else np.isnan(v))
    if np.any(bad):
        got = v[bad].flat[0] if v.ndim else float(v)
        raise ConfigError(name, "> 0" + (" (inf allowed)" if allow_inf else "")
                          + " and finite" * (not allow_inf), float(got))
    return v


def _nonneg(name: str, value: Any, note: str = "") -> np.ndarray:
    v = np.asarray(value, dtype=float)
    bad = ~(v >= 0) | np.isinf(v)
    if np.any(bad):
        got = v[bad].flat[0] if v.ndim else float(v)
        raise ConfigError(name, ">= 0 and finite", float(got), note)
    return v


def _check(alpha: Any, kappa: Any, tau: Any, rho: Any, ridgeless: bool
           ) -> tuple[np.ndarray, ...]:
    a = _positive("alpha", alpha)
    k = _positive("kappa", kappa, allow_inf=True)
    t = _positive("tau", tau)
    r = _nonneg("rho", rho, "the label-noise variance")
    if ridgeless and np.any(t == 1.0):
        raise ConfigError("tau", "!= 1 for the ridgeless errors", 1.0,
                          "they diverge at the interpolation threshold P = D^2; use lam_L > 0")
    return a, k, t, r


def _inv(kappa: np.ndarray) -> np.ndarray:
    """1/κ with 1/∞ = 0."""
    with np.errstate(divide="ignore"):
        return np.where(np.isinf(kappa), 0.0, 1.0 / kappa)


# --------------------------------------------------------------------------- resolvent
def mp_resolvent(x: ArrayLike, kappa: ArrayLike) -> np.ndarray:
    """Marchenko–Pastur resolvent M_κ(x) = lim (1/D) tr(BBᵀ/K + x I)⁻¹, κ = K/D.

    Parameters
    ----------
    x : float or ndarray
        Argument, > 0 (broadcast with ``kappa``).
    kappa : float or ndarray
        K/D > 0; ``inf`` gives M_∞(x) = 1/(1 + x).

    Returns
    -------
    ndarray
        M_κ(x) > 0, of the broadcast shape. Evaluated without cancellation for
        x + 1 − 1/κ < 0 (κ < 1, small x).
    """
    x = np.asarray(x, dtype=float)
    ik = _inv(np.asarray(kappa, dtype=float))
    a = x + 1.0 - ik
    b = 4.0 * x * ik
    s = np.sqrt(a * a + b)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = 2.0 / (a + s)
        neg = 2.0 * (s - a) / b  # = 2/(a + s) for a < 0 (then b > 0)
    return np.where(a >= 0, pos, neg)


def mp_resolvent_derivative(x: ArrayLike, kappa: ArrayLike) -> np.ndarray:
    """dM_κ/dx = −½ M_κ² [1 + (x + 1 + 1/κ)/√((x + 1 − 1/κ)² + 4x/κ)] (< 0).

    Parameters and shapes as :func:`mp_resolvent`.
    """
    x = np.asarray(x, dtype=float)
    ik = _inv(np.asarray(kappa, dtype=float))
    M = mp_resolvent(x, kappa)
    s = np.sqrt((x + 1.0 - ik) ** 2 + 4.0 * x * ik)
    return -0.5 * M * M * (1.0 + (x + 1.0 + ik) / s)


# --------------------------------------------------------------------------- ridgeless
def ridgeless_icl(alpha: ArrayLike, kappa: ArrayLike, tau: ArrayLike,
                  rho: ArrayLike = 0.0) -> np.ndarray:
    """Ridgeless (λ → 0⁺) ICL error e_ICL, the D → ∞ ``test_mse_novel``.

    Parameters
    ----------
    alpha : float or ndarray
        α = N/D > 0.
    kappa : float or ndarray
        κ = K/D > 0, or ``inf`` (one task per prompt).
    tau : float or ndarray
        τ = P/D² > 0, τ ≠ 1 (the error diverges at τ = 1).
    rho : float or ndarray
        Label-noise variance ρ >= 0 (spinicl: σ_ε²).

    Returns
    -------
    ndarray
        e_ICL (includes ρ), broadcast shape of the inputs.

    Raises
    ------
    ConfigError
        For a parameter outside its range.
    """
    a, k, t, r = _check(alpha, kappa, tau, rho, ridgeless=True)
    a, k, t, r = np.broadcast_arrays(a, k, t, r)
    x = (1.0 + r) / a
    # τ < 1
    mu = x * mp_resolvent(x, np.where(np.isinf(k), np.inf, k / t))
    below = (t * (1.0 + x) / (1.0 - t) * (1.0 - t * (1.0 - mu) ** 2 - (x - r) / x * mu)
             - 2.0 * t * (1.0 - mu) + 1.0 + r)
    # τ > 1
    m = mp_resolvent(x, k)
    ik = _inv(k)
    kstar = 1.0 / (1.0 - ik * m * m / (1.0 + ik * m) ** 2)  # κ (m/(κ+m))², 0 at κ = ∞
    with np.errstate(divide="ignore", invalid="ignore"):
        tm1 = t - 1.0
        above = ((kstar - 1.0 / tm1) * (1.0 + x) * (x * m) ** 2
                 + (3.0 - 2.0 * t) / tm1 * m * x * x
                 + ((1.0 + r) * m / tm1 + 1.0) * x + r * m / tm1 + r)
    return np.where(t < 1.0, below, above)


def ridgeless_idg(alpha: ArrayLike, kappa: ArrayLike, tau: ArrayLike,
                  rho: ArrayLike = 0.0) -> np.ndarray:
    """Ridgeless in-distribution error e_IDG, the D → ∞ ``test_mse_in_distribution``.

    Parameters and returns as :func:`ridgeless_icl` (tasks of the test prompts drawn from
    the pre-training pool).
    """
    a, k, t, r = _check(alpha, kappa, tau, rho, ridgeless=True)
    a, k, t, r = np.broadcast_arrays(a, k, t, r)
    x = (1.0 + r) / a
    m = mp_resolvent(x, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        above = t / (t - 1.0) * (r + x * (1.0 - x * m))
        mu = x * mp_resolvent(x, np.where(np.isinf(k), np.inf, k / t))
        eps = (1.0 - t) * x / (t * mu)
        ik = _inv(k)
        u = eps / (1.0 - t)
        c = 1.0 / (1.0 - ik / (ik + u) ** 2)  # κ/(1 + κu)², 0 at κ = ∞
        below = t * ((x + eps) ** 2 / eps
                     + (r + x - 2.0 * x * (1.0 - t) * (x / eps + 1.0))
                     / (1.0 - t - c * (1.0 - t) ** 2))
    return np.where(t < 1.0, below, above)


# --------------------------------------------------------------------------- finite ridge
def ridge_epsilon(alpha: ArrayLike, kappa: ArrayLike, tau: ArrayLike, lam_L: ArrayLike,
                  rho: ArrayLike = 0.0, iterations: int = 200) -> np.ndarray:
    """The root ε > 0 of 1 − τ + τλ_L/ε − ε M_κ(ε + x*) = 0, x* = (1 + ρ)/α.

    The left side decreases strictly in ε, so the positive root is unique; it lies in
    [λ_L, 2 max((1 + x*)/τ, λ_L)] and is found by vectorised bisection in log ε
    (``iterations`` halvings: machine precision for any bracket).

    Parameters
    ----------
    alpha, kappa, tau, rho : float or ndarray
        As :func:`ridgeless_icl` (τ = 1 allowed).
    lam_L : float or ndarray
        Their ridge λ_L > 0.

    Returns
    -------
    ndarray
        ε, broadcast shape.
    """
    a, k, t, r = _check(alpha, kappa, tau, rho, ridgeless=False)
    lam = _positive("lam_L", lam_L)
    a, k, t, r, lam = np.broadcast_arrays(a, k, t, r, lam)
    x = (1.0 + r) / a

    def f(e):
        return 1.0 - t + t * lam / e - e * mp_resolvent(e + x, k)

    lo = np.log(lam)
    hi = np.log(2.0 * np.maximum((1.0 + x) / t, lam))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        pos = f(np.exp(mid)) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
        if np.all(hi - lo < 1e-15):
            break
    return np.exp(0.5 * (lo + hi))


def ridge_icl(alpha: ArrayLike, kappa: ArrayLike, tau: ArrayLike, lam_L: ArrayLike,
              rho: ArrayLike = 0.0) -> np.ndarray:
    """ICL error at a finite ridge λ_L > 0 (their normalisation; see :func:`lam_from_spinicl`).

    With ε = :func:`ridge_epsilon`, ν = x* + ε, M = M_κ(ν), M' = M_κ'(ν):

        c_e = [ρ + ν − ν²M − ε(1 − 2νM − ν²M')] / [1 − 2εM − ε²M' − τ]
        e_ICL = (1 + x*)[1 − 2νM − ν²M' − c_e(M + εM')] − 2(1 − νM) + 1 + ρ

    Finite on both sides of τ = 1 (the ridge rounds off the double-descent peak) and
    continuous in every argument; → :func:`ridgeless_icl` as λ_L → 0.

    Parameters
    ----------
    alpha, kappa, tau, rho : float or ndarray
        As :func:`ridgeless_icl` (τ = 1 allowed).
    lam_L : float or ndarray
        Ridge λ_L > 0.

    Returns
    -------
    ndarray
        e_ICL(λ_L), broadcast shape.
    """
    eps = ridge_epsilon(alpha, kappa, tau, lam_L, rho)
    a, k, t, r = (np.asarray(v, dtype=float) for v in (alpha, kappa, tau, rho))
    x = (1.0 + r) / a
    nu = x + eps
    M = mp_resolvent(nu, k)
    Mp = mp_resolvent_derivative(nu, k)
    ce = ((r + nu - nu * nu * M - eps * (1.0 - 2.0 * nu * M - nu * nu * Mp))
          / (1.0 - 2.0 * eps * M - eps * eps * Mp - t))
    return ((1.0 + x) * (1.0 - 2.0 * nu * M - nu * nu * Mp - ce * (M + eps * Mp))
            - 2.0 * (1.0 - nu * M) + 1.0 + r)


def asymptotic_test_mse(alpha: ArrayLike, kappa: ArrayLike, tau: ArrayLike,
                        lam_L: ArrayLike = 0.0, rho: ArrayLike = 0.0,
                        which: str = "novel") -> np.ndarray:
    """D → ∞ test MSE, vectorised over every argument (for overlays on sweeps and cuts).

    Parameters
    ----------
    alpha : float or ndarray
        α = N/D > 0.
    kappa : float or ndarray
        κ = K/D > 0 or ``inf``.
    tau : float or ndarray
        τ = P/D² > 0.
    lam_L : float or ndarray
        Ridge λ_L >= 0 (their normalisation, :func:`lam_from_spinicl`). Where λ_L = 0 the
        ridgeless formula is used; there τ = 1 gives ``inf``.
    rho : float or ndarray
        Label-noise variance >= 0.
    which : {"novel", "in_distribution"}
        ICL error (fresh tasks) or in-distribution error (pool tasks). The
        in-distribution error exists only ridgeless: entries with λ_L > 0 are NaN.

    Returns
    -------
    ndarray
        Broadcast shape of the inputs.
    """
    if which not in ("novel", "in_distribution"):
        raise ConfigError("which", "one of novel, in_distribution", which)
    a, k, t, lam, r = np.broadcast_arrays(*(np.asarray(v, dtype=float)
                                            for v in (alpha, kappa, tau, lam_L, rho)))
    _check(a, k, t, r, ridgeless=False)
    _nonneg("lam_L", lam, "the ridge")
    out = np.full(a.shape, np.nan)
    zero = lam == 0
    sing = zero & (t == 1.0)
    out[sing] = np.inf
    ok = zero & ~sing
    if np.any(ok):
        fn = ridgeless_icl if which == "novel" else ridgeless_idg
        out[ok] = fn(a[ok], k[ok], t[ok], r[ok])
    if which == "novel" and np.any(~zero):
        nz = ~zero
        out[nz] = ridge_icl(a[nz], k[nz], t[nz], lam[nz], r[nz])
    return out[()] if out.ndim == 0 else out


def kappa_c(tau: ArrayLike) -> np.ndarray:
    """Task-diversity threshold κ_c = min(τ, 1) of the memorisation → ICL transition.

    Below κ_c the in-distribution error lies far below the ICL error (the pool is
    memorised); above it the gap e_ICL − e_IDG vanishes as D → ∞.
    """
    return np.minimum(_positive("tau", tau), 1.0)


# --------------------------------------------------------------------------- dictionary
def lam_from_spinicl(lam: ArrayLike, D: ArrayLike, N: ArrayLike, sigma_x: float = 1.0,
                     sigma_w: float = 1.0) -> np.ndarray:
    """Their ridge λ_L = D(1 + 1/N)² λ / (σ_x⁶ σ_w²) from spinicl's weight decay λ.

    spinicl's predictor averages the context over N + 1 tokens and its tokens have
    variance σ_x² (not 1/D), so W's D×D block equals (1 + 1/N)/σ_x² times their Γ; the
    energy's (λ/2)‖W‖² then matches their (P/D)λ_L‖Γ‖² ridge (on the errors' scale
    (σ_xσ_w)²) at this λ_L.
    """
    lam = _nonneg("lam", lam, "the weight decay")
    D = np.asarray(D, dtype=float)
    N = np.asarray(N, dtype=float)
    return D * (1.0 + 1.0 / N) ** 2 * lam / (sigma_x**6 * sigma_w**2)


def lam_to_spinicl(lam_L: ArrayLike, D: ArrayLike, N: ArrayLike, sigma_x: float = 1.0,
                   sigma_w: float = 1.0) -> np.ndarray:
    """Inverse of :func:`lam_from_spinicl`: spinicl's λ for a given λ_L."""
    lam_L = _nonneg("lam_L", lam_L, "the ridge")
    D = np.asarray(D, dtype=float)
    N = np.asarray(N, dtype=float)
    return lam_L * sigma_x**6 * sigma_w**2 / (D * (1.0 + 1.0 / N) ** 2)


@dataclass(frozen=True)
class AsymptoticPoint:
    """spinicl's parameters in the variables of the D → ∞ theory.

    Attributes
    ----------
    alpha, kappa, tau : float
        N/D, K/D (``inf`` for K = P), P/D².
    lam_L : float
        Their ridge (:func:`lam_from_spinicl`).
    rho : float
        Label-noise variance in units of the label signal: σ_ε²/(σ_xσ_w)².
    scale : float
        (σ_xσ_w)²: multiply the theory's errors by it to get spinicl's test MSE.
    """

    alpha: float
    kappa: float
    tau: float
    lam_L: float
    rho: float
    scale: float = 1.0

    def test_mse_novel(self) -> float:
        """Ridgeless D → ∞ ``test_mse_novel`` (inf at τ = 1), spinicl's units."""
        return self.scale * float(asymptotic_test_mse(self.alpha, self.kappa, self.tau, 0.0,
                                                      self.rho, "novel"))

    def test_mse_in_distribution(self) -> float:
        """Ridgeless D → ∞ ``test_mse_in_distribution`` (inf at τ = 1), spinicl's units."""
        return self.scale * float(asymptotic_test_mse(self.alpha, self.kappa, self.tau, 0.0,
                                                      self.rho, "in_distribution"))

    def test_mse_novel_ridge(self) -> float:
        """D → ∞ ``test_mse_novel`` at the finite ridge λ_L, spinicl's units (the ridgeless
        value when λ_L = 0)."""
        return self.scale * float(asymptotic_test_mse(self.alpha, self.kappa, self.tau,
                                                      self.lam_L, self.rho, "novel"))

    @property
    def ridge_negligible(self) -> bool:
        """True when λ_L moves the ICL error by less than ``NEGLIGIBLE_RIDGE`` (relative)."""
        if self.lam_L == 0:
            return True
        if self.tau == 1.0:
            return False
        e0 = self.test_mse_novel()
        return abs(self.test_mse_novel_ridge() - e0) < NEGLIGIBLE_RIDGE * e0

    def summary(self) -> dict[str, Any]:
        """The JSON keys of ``spinicl theory --asymptotic`` (κ = ∞ is reported as None
        with ``kappa_infinite`` true; a divergent ridgeless value at τ = 1 as inf)."""
        lam_small = self.ridge_negligible
        out: dict[str, Any] = {
            "alpha": self.alpha, "kappa": None if math.isinf(self.kappa) else self.kappa,
            "kappa_infinite": math.isinf(self.kappa), "tau": self.tau,
            "lam_asymptotic": self.lam_L, "rho_asymptotic": self.rho,
            "kappa_c": float(kappa_c(self.tau)),
            "asymptotic_test_mse_novel": self.test_mse_novel(),
            "asymptotic_test_mse_in_distribution": self.test_mse_in_distribution(),
            "asymptotic_note": (
                "D -> infinity at fixed alpha = N/D, kappa = K/D, tau = P/D^2 (Lu et al., "
                "arXiv:2405.11751); asymptotic_test_mse_novel and _in_distribution are "
                "ridgeless (lam -> 0+); asymptotic_test_mse_novel_ridge is the ICL error at "
                "lam_asymptotic; no finite-ridge in-distribution formula exists. Finite-D "
                "corrections are O(1/D): compare through spinicl scaling."),
        }
        out["asymptotic_ridge_negligible"] = lam_small
        if not lam_small:
            out["asymptotic_test_mse_novel_ridge"] = self.test_mse_novel_ridge()
        return out


def from_spinicl(config: TaskConfig) -> AsymptoticPoint:
    """Map a spinicl task onto (α, κ, τ, λ_L, ρ) of the D → ∞ theory.

    Parameters
    ----------
    config : TaskConfig
        Needs independent tokens (``rho = 0``); any σ_x, σ_w, σ_ε (a change of units).

    Returns
    -------
    AsymptoticPoint

    Raises
    ------
    ConfigError
        ``rho`` (token correlation) != 0: the theory assumes independent tokens.
    """
    if config.rho != 0.0:
        raise ConfigError("rho", "0 for the D -> infinity theory", config.rho,
                          "it assumes independent tokens")
    D, N, P = config.D, config.N, config.P
    s = (config.sigma_x * config.sigma_w) ** 2
    return AsymptoticPoint(
        alpha=N / D,
        kappa=float("inf") if config.K is None or config.K >= P else config.K / D,
        tau=P / D**2,
        lam_L=float(lam_from_spinicl(config.lam, D, N, config.sigma_x, config.sigma_w)),
        rho=config.sigma_eps**2 / s,
        scale=s,
    )
