"""Replica exchange: the temperature ladder, its adaptation and swap-rate predictions.

Ladder order
------------
A :class:`Ladder` is sorted **coldest first**: ``ladder.betas`` is descending,
``ladder.temperatures`` ascending; rung k = 0 is T_min. Replica slots are laid out
``r = k·copies + a`` (rung k, copy a), and ``sampler.positions(state)[k, a]`` is the
configuration at rung k of copy a.

Swaps
-----
Every ``swap_every`` steps one even/odd round (non-reversible DEO schedule, Okabe et al.
2001; Syed et al. 2021): round number s attempts the pairs (k, k+1) with k ≡ s (mod 2),
in every copy, with probability min(1, exp((β_k − β_{k+1})(E_k − E_{k+1}))). Copies never
exchange with each other; all copies share one ladder.

Adaptive ladder
---------------
During burn-in only, :func:`adapt_betas` moves the interior rungs so that every
neighbouring pair has the same rejection rate (Syed et al. 2021, *Non-reversible parallel
tempering: a scalable highly parallel MCMC scheme*, JRSS B 84, 321): the cumulative
barrier Λ(β) is interpolated piecewise-linearly in log β through the measured rejections
r_k (Rao–Blackwellised: 1 − mean of min(1, e^{Δ}) over attempts, pooled over copies) and
the new rungs solve Λ(β_i) = i Λ / (n_temps − 1). The end points stay fixed. Updates
happen after rounds of ``32·2^j`` swap events (j = 0, 1, …: doubling rounds).

The communication barrier Λ = Σ_k r_k is reported; with n_temps rungs the best
achievable round-trip rate of a non-reversible schedule is about 1/(2 + 2Λ) per swap
round.

How many rungs
--------------
For the merged (Gaussian) model the energy at inverse temperature β is E(m) plus a
Gamma(n/2, scale 1/β) variable, so the swap acceptance of two rungs depends only on their
β ratio r: 2·I_{1/(1+r)}(n/2, n/2) (:func:`gaussian_swap_acceptance`), and the geometric
ladder is exactly the equal-rejection ladder. The local barrier per unit log β is the
constant c_n = 4^{1−n/2} / (2 B(n/2, n/2)) ≈ √(n/2π) (the ε → 0 slope of the rejection),
so Λ = c_n log(β_max/β_min): 77 for n = 441 over four decades.
:func:`rungs_for_acceptance` gives the fewest geometric rungs whose every pair's predicted
acceptance reaches a target; :func:`auto_temperatures` is the default ladder
(``TMIN:TMAX:auto``) with target :data:`AUTO_TARGET` = 0.25 (so that the acceptance
*measured* over a default run, ± 0.015, stays ≥ 0.2). For the factored model the same
count is used with its number of spins as the degrees of freedom (a quadratic energy's
heat capacity C = n/2; quartic terms lower it), and the adaptive ladder places the rungs
during burn-in. After a run, :func:`heat_capacity_barrier` estimates Λ from the measured
heat capacity β²Var(E) of every rung (valid also where pairs never swap, when the
rejection-sum Λ saturates at 1 per pair).

Acceptance 0.2–0.25 costs about the same per round trip as the "2Λ rungs" of Syed et al.
(acceptance ≈ 0.5): the round-trip rate per swap round is 1/(2 + 2Σ r_k/(1 − r_k)), and
per replica-step N·(2 + 2N·r/(1 − r)) is 46 600 at N = 88 (r = 0.75) against 48 400 at
N = 155 (r = 0.5) for n = 441 over four decades.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from spinicl.config import ConfigError, check_float, check_int

DEFAULT_T_MIN = 1e-5
DEFAULT_T_MAX = 1e-1
DEFAULT_N_TEMPS = 8
#: Predicted swap acceptance of every neighbouring pair of the automatic ladder.
AUTO_TARGET = 0.25
#: A pair whose measured acceptance after burn-in is below this is reported as stuck.
STUCK_ACCEPTANCE = 0.01


@dataclass(frozen=True)
class Ladder:
    """A temperature ladder, coldest rung first.

    Attributes
    ----------
    betas : ndarray, shape (n_temps,)
        Inverse temperatures, descending (rung 0 is the coldest).
    """

    betas: np.ndarray

    def __post_init__(self) -> None:
        b = np.asarray(self.betas, dtype=np.float64).ravel()
        if b.size < 1:
            raise ConfigError("n_temps", "an integer >= 1", 0)
        if not np.all(np.isfinite(b)) or np.any(b <= 0):
            raise ConfigError("betas", "finite numbers > 0 (inverse temperatures)",
                              b.tolist())
        b = np.sort(b)[::-1].copy()
        b.setflags(write=False)
        object.__setattr__(self, "betas", b)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def geometric(cls, t_min: float = DEFAULT_T_MIN, t_max: float = DEFAULT_T_MAX,
                  n_temps: int = DEFAULT_N_TEMPS) -> Ladder:
        """Temperatures geometrically spaced in [t_min, t_max] (n_temps = 1: t_min only).

        Parameters
        ----------
        t_min, t_max : float
            Lowest and highest temperature, 0 < t_min <= t_max.
        n_temps : int
            Number of rungs, >= 1.
        """
        t_min = check_float("t_min", t_min, low=0.0, low_open=True)
        t_max = check_float("t_max", t_max, low=0.0, low_open=True)
        n_temps = check_int("n_temps", n_temps, 1)
        if t_max < t_min:
            raise ConfigError("t_max", f">= t_min = {t_min:g}", t_max)
        if n_temps == 1:
            return cls(np.array([1.0 / t_min]))
        return cls(1.0 / np.geomspace(t_min, t_max, n_temps))

    @classmethod
    def from_temperatures(cls, temperatures) -> Ladder:
        """A ladder from explicit temperatures (sorted ascending: coldest rung first)."""
        t = np.atleast_1d(np.asarray(temperatures, dtype=np.float64))
        if t.size < 1 or not np.all(np.isfinite(t)) or np.any(t <= 0):
            raise ConfigError("temperatures", "a non-empty list of finite numbers > 0",
                              t.tolist())
        return cls(1.0 / t)

    @classmethod
    def from_betas(cls, betas) -> Ladder:
        """A ladder from explicit inverse temperatures (sorted descending)."""
        return cls(np.atleast_1d(np.asarray(betas, dtype=np.float64)))

    # ---------------------------------------------------------------- views
    @property
    def n_temps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def temperatures(self) -> np.ndarray:
        """Temperatures 1/β, ascending, shape (n_temps,)."""
        return 1.0 / self.betas

    def __len__(self) -> int:
        return self.n_temps

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ladder) and np.array_equal(self.betas, other.betas)

    def __hash__(self) -> int:
        return hash(self.betas.tobytes())


def communication_barrier(rejection: np.ndarray) -> float:
    """Λ = Σ_k r_k over neighbouring pairs (NaN entries, pairs never tried, skipped)."""
    r = np.asarray(rejection, dtype=np.float64)
    return float(np.nansum(r)) if r.size else 0.0


def adapt_betas(betas: np.ndarray, rejection: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """Equalise the rejection rates of a ladder (Syed et al. 2021).

    Parameters
    ----------
    betas : ndarray, shape (n_temps,)
        Current ladder, descending.
    rejection : ndarray, shape (n_temps - 1,)
        Measured rejection rate of each neighbouring pair (NaN: no data, kept as the
        mean of the others).
    floor : float
        Smallest rejection used, so that the cumulative barrier is strictly increasing.

    Returns
    -------
    ndarray, shape (n_temps,)
        New inverse temperatures, descending, same end points.
    """
    betas = np.asarray(betas, dtype=np.float64)
    nt = betas.shape[0]
    if nt <= 2:
        return betas.copy()
    r = np.asarray(rejection, dtype=np.float64).copy()
    if np.all(np.isnan(r)):
        return betas.copy()
    r[np.isnan(r)] = np.nanmean(r)
    r = np.maximum(r, floor)
    lam = np.concatenate([[0.0], np.cumsum(r)])  # at rungs 0 (cold) .. nt-1 (hot)
    x = np.log(betas)
    target = np.linspace(0.0, lam[-1], nt)
    new = np.exp(np.interp(target, lam, x))
    new[0], new[-1] = betas[0], betas[-1]
    return new


def gaussian_swap_acceptance(beta_i: float, beta_j: float, n: int) -> float:
    """Exact mean swap acceptance between two rungs of a Gaussian model.

    For a Gaussian with n spins, E − E(m) ~ Gamma(n/2, scale 1/β) at each rung, and
    E[min(1, exp((β_i − β_j)(E_i − E_j)))] = 2·P(E_i > E_j) for the colder rung i
    = 2·I_{β_j/(β_i+β_j)}(n/2, n/2) (regularised incomplete beta function).

    Parameters
    ----------
    beta_i, beta_j : float
        The two inverse temperatures (any order).
    n : int
        Number of spins (degrees of freedom).
    """
    bc, bh = max(beta_i, beta_j), min(beta_i, beta_j)
    k = 0.5 * n
    return float(min(1.0, 2.0 * special.betainc(k, k, bh / (bc + bh))))


def gaussian_barrier_density(n: float) -> float:
    """Local communication barrier per unit log β of a Gaussian with n degrees of freedom.

    c_n = lim_{ε→0} (1 − 2 I_{1/(1+e^ε)}(n/2, n/2))/ε = 4^{1−n/2}/(2 B(n/2, n/2)),
    ≈ √(n/2π) for large n (8.37 at n = 441). Λ = c_n log(β_max/β_min).
    """
    k = 0.5 * float(n)
    if k <= 0:
        return 0.0
    return float(np.exp((1.0 - k) * np.log(4.0) - special.betaln(k, k) - np.log(2.0)))


def predicted_swap_acceptance(betas: np.ndarray, n: float) -> np.ndarray:
    """Exact swap acceptance of every neighbouring pair of a Gaussian ladder, (n_temps−1,)."""
    b = np.asarray(betas, dtype=np.float64)
    return np.array([gaussian_swap_acceptance(b[k], b[k + 1], n) for k in range(b.size - 1)])


def gaussian_ratio_for_acceptance(n: float, target: float) -> float:
    """Largest β ratio r ≥ 1 of two rungs whose Gaussian swap acceptance is ≥ target."""
    from scipy.optimize import brentq

    target = check_float("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    k = 0.5 * float(n)

    def f(logr: float) -> float:
        return 2.0 * special.betainc(k, k, 1.0 / (1.0 + np.exp(logr))) - target

    hi = 1.0
    while f(hi) > 0:
        hi *= 2.0
    return float(np.exp(brentq(f, 0.0, hi, xtol=1e-14)))


def rungs_for_acceptance(t_min: float, t_max: float, n: float,
                         target: float = AUTO_TARGET) -> int:
    """Fewest geometric rungs over [t_min, t_max] with every pair's acceptance ≥ target.

    Parameters
    ----------
    t_min, t_max : float
    n : float
        Degrees of freedom (spins; twice the heat capacity).
    target : float
        Predicted acceptance of every neighbouring pair (Gaussian formula).
    """
    t_min = check_float("t_min", t_min, low=0.0, low_open=True)
    t_max = check_float("t_max", t_max, low=0.0, low_open=True)
    if t_max <= t_min:
        return 1
    r = gaussian_ratio_for_acceptance(n, target)
    return int(np.ceil(np.log(t_max / t_min) / np.log(r) - 1e-9)) + 1


def auto_temperatures(n: float, t_min: float = DEFAULT_T_MIN, t_max: float = DEFAULT_T_MAX,
                      target: float = AUTO_TARGET) -> tuple[float, ...]:
    """The automatic ladder: geometric over [t_min, t_max], rungs from
    :func:`rungs_for_acceptance` (at least 2), temperatures ascending."""
    count = max(2, rungs_for_acceptance(t_min, t_max, n, target))
    return tuple(float(t) for t in np.geomspace(t_min, t_max, count))


def heat_capacity_barrier(betas: np.ndarray, energy_var: np.ndarray) -> float:
    """Communication barrier Λ from the heat capacity C_k = β_k² Var(E_k) of every rung.

    Each pair contributes c(2C̄) log(β_k/β_{k+1}) with C̄ the mean heat capacity of the two
    rungs and c the Gaussian barrier density (:func:`gaussian_barrier_density`). Exact for
    the merged model (C = n/2); for other models a Gaussian-energy approximation that,
    unlike Σ r_k, does not saturate on pairs that never swap.

    Parameters
    ----------
    betas : ndarray (n_temps,), descending
    energy_var : ndarray (n_temps,)
        Variance of the energy at every rung (after burn-in).
    """
    b = np.asarray(betas, dtype=np.float64)
    c = b**2 * np.asarray(energy_var, dtype=np.float64)
    if b.size < 2 or not np.all(np.isfinite(c)):
        return float("nan")
    cbar = 0.5 * (c[:-1] + c[1:])
    return float(sum(gaussian_barrier_density(2.0 * ck) * np.log(b[k] / b[k + 1])
                     for k, ck in enumerate(cbar)))
