"""Markov-chain diagnostics: autocorrelation time, effective sample size, errors, R-hat.

Conventions
-----------
The integrated autocorrelation time is τ_int = 1 + 2 Σ_{t≥1} ρ(t), so independent draws
give τ_int = 1 and the effective sample size is ESS = n/τ_int; the standard error of the
mean is sd/√ESS. (Sokal's τ_int is half of this one; ours is the factor by which the
variance of the mean exceeds the iid value.)

Two estimators of τ_int:

* ``"geyer"`` (default): Geyer's (1992) initial monotone sequence estimator. The pair sums
  Γ_k = ρ(2k) + ρ(2k+1) are summed up to the first non-positive one and made
  non-increasing; τ = −1 + 2 Σ_k Γ_k. Fed the exact autocorrelation of a reversible
  chain (a mixture of decaying exponentials, e.g. every observable of ULA on a Gaussian)
  it returns the exact τ (up to the lags given): it does not stop early on a slow,
  low-weight component, which a fixed window does.
* ``"sokal"``: the windowed sum τ(M) = 1 + 2 Σ_{t=1}^{M} ρ̂(t) with the smallest window
  M ≥ c·τ(M), c = 5 (Sokal 1997). Kept for comparison: for a series whose autocorrelation
  has a slow part of small weight it stops at a window where the slow part has not yet
  decayed, and underestimates τ (by 1.5–2× on ULA energies), even fed the exact ρ.

Series are along axis 0; a second axis, where accepted, holds independent chains
(copies). Several chains are combined as in Stan (Vehtari et al. 2021, eq. 10):
ρ̂(t) = 1 − (W − mean_c acov_c(t)) / var⁺, W the mean within-chain variance and var⁺ the
pooled variance including the spread of the chain means, so that chains that disagree
raise τ; the ESS is the total over chains.

Whether a τ can be trusted (:func:`tau_check`): the estimate needs the run to cover the
slow part of the autocorrelation. A run is flagged *too short* when it holds fewer than
``MIN_TAUS`` = 50 τ (all chains together) or a chain fewer than 10 τ, when τ estimated
on the halves of the run differs clearly from τ on the whole run (a τ that still changes
with the run length has not converged), or when the means of the half-chains scatter
more than τ allows (a slow part the autocorrelation did not resolve). The flag comes with
the number of records the run would need.
"""

from __future__ import annotations

import numpy as np

from spinicl.config import ConfigError, check_choice, check_float

TAU_METHODS = ("sokal", "geyer")


def _as_chains(x: np.ndarray, name: str = "series") -> np.ndarray:
    """Return x as a float array of shape (n, chains)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ConfigError(name, "a 1-D series or a 2-D array (n, chains)", x.shape)
    if x.shape[0] < 2:
        raise ConfigError(name, "at least 2 samples along axis 0", x.shape[0])
    return x


def autocorrelation(x: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Normalised autocorrelation ρ(t) along axis 0 (FFT, biased estimator).

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, ...)
        Series along axis 0.
    max_lag : int, optional
        Largest lag returned (default n − 1).

    Returns
    -------
    ndarray, shape (max_lag + 1,) or (max_lag + 1, ...)
        ρ(0) = 1 (NaN where the series is constant).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    max_lag = n - 1 if max_lag is None else min(int(max_lag), n - 1)
    y = x - x.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, n=size, axis=0)
    acf = np.fft.irfft(f * np.conj(f), n=size, axis=0)[: max_lag + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return acf / acf[0]


def _tau_from_rho(rho: np.ndarray, n: int, method: str, c: float) -> tuple[float, int]:
    """τ and the number of lags used, from a normalised autocorrelation ρ(0..L)."""
    if not np.isfinite(rho[0]):
        return 1.0, 0
    if method == "sokal":
        taus = 1.0 + 2.0 * np.cumsum(rho[1:])
        ok = np.flatnonzero(np.arange(1, rho.shape[0]) >= c * taus)
        m = int(ok[0]) + 1 if ok.size else rho.shape[0] - 1
        return float(max(taus[m - 1], 1.0 / n)) if m >= 1 else 1.0, m
    # Geyer: initial positive, monotone sequence of pair sums
    npairs = rho.shape[0] // 2
    gam = rho[0 : 2 * npairs : 2] + rho[1 : 2 * npairs : 2]
    pos = np.flatnonzero(gam <= 0)
    k = int(pos[0]) if pos.size else npairs
    gam = np.minimum.accumulate(gam[:k]) if k else gam[:0]
    tau = -1.0 + 2.0 * float(np.sum(gam))
    return max(tau, 1.0 / n), 2 * k


def tau_from_autocorrelation(rho: np.ndarray, method: str = "geyer",
                             c: float = 5.0) -> float:
    """τ_int from a given normalised autocorrelation ρ(0), ρ(1), … (e.g. an exact one).

    Parameters
    ----------
    rho : ndarray, shape (L,)
        ρ(0) = 1 first.
    method : {"geyer", "sokal"}
    c : float
        Sokal window constant.

    Returns
    -------
    float
        For Geyer on an exact, positive, decreasing ρ: 1 + 2 Σ_{t=1}^{L'} ρ(t), L' the
        last complete pair of lags.
    """
    method = check_choice("method", method, TAU_METHODS)
    rho = np.asarray(rho, dtype=np.float64).ravel()
    if rho.size < 2:
        raise ConfigError("rho", "at least 2 lags", rho.size)
    return _tau_from_rho(rho, 10**18, method, c)[0]


def _acov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariances of each column of x (n, chains), lags 0..n−1 (FFT)."""
    n = x.shape[0]
    y = x - x.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, n=size, axis=0)
    return np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n] / n


def _pooled_rho(x: np.ndarray) -> np.ndarray:
    """Autocorrelation of several chains (n, chains), combined as in Stan.

    One chain: the plain normalised autocorrelation. Several: ρ(t) = 1 − (W − mean acov(t))
    / var⁺ with W the mean within-chain variance (ddof 1) and var⁺ = (n−1)/n·W + B/n.
    """
    n, m = x.shape
    acov = _acov(x)
    if m == 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            return acov[:, 0] / acov[0, 0]
    w = float(np.mean(acov[0])) * n / max(n - 1, 1)
    var_plus = (n - 1) / n * w + float(np.var(x.mean(axis=0), ddof=1))
    if not var_plus > 0:
        return np.full(n, np.nan)
    rho = 1.0 - (w - acov.mean(axis=1)) / var_plus
    rho[0] = 1.0
    return rho


def tau_int(x: np.ndarray, method: str = "geyer", c: float = 5.0,
            chains: bool = False) -> float | np.ndarray:
    """Integrated autocorrelation time (iid = 1) along axis 0.

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, ...)
        Series along axis 0.
    method : {"geyer", "sokal"}
    c : float
        Sokal window constant (window M ≥ c·τ).
    chains : bool
        If True, ``x`` is (n, chains) and one pooled τ over the chains is returned.

    Returns
    -------
    float, or ndarray of shape x.shape[1:]
        For a constant series τ = 1.
    """
    method = check_choice("method", method, TAU_METHODS)
    c = check_float("c", c, low=0.0, low_open=True)
    x = np.asarray(x, dtype=np.float64)
    if chains:
        x = _as_chains(x)
        return _tau_from_rho(_pooled_rho(x), x.size, method, c)[0]
    if x.ndim == 1:
        x = _as_chains(x)
        return _tau_from_rho(autocorrelation(x[:, 0]), x.shape[0], method, c)[0]
    n = x.shape[0]
    if n < 2:
        raise ConfigError("series", "at least 2 samples along axis 0", n)
    flat = x.reshape(n, -1)
    rho = autocorrelation(flat)
    out = np.array([_tau_from_rho(rho[:, j], n, method, c)[0] for j in range(flat.shape[1])])
    return out.reshape(x.shape[1:])


def tau_int_stderr(x: np.ndarray, c: float = 5.0, method: str = "geyer") -> float:
    """Standard error of the estimate of τ_int for a 1-D series (or pooled chains):
    τ √(2(2M+1)/N), M the lags summed, N the total number of samples (Sokal 1997)."""
    x = _as_chains(x)
    method = check_choice("method", method, TAU_METHODS)
    tau, m = _tau_from_rho(_pooled_rho(x), x.size, method, c)
    return float(tau * np.sqrt(2.0 * (2 * m + 1) / x.size))


#: A τ is trusted only if the run holds at least this many τ (all chains together).
MIN_TAUS = 50.0
#: ... and every chain at least this many τ (a chain shorter than a few τ biases ρ̂).
MIN_TAUS_PER_CHAIN = 10.0
#: τ on the halves of a run may fall below τ on the whole run by at most this fraction
#: (or 3 of its standard errors, whichever is larger) before the run is flagged.
HALF_DROP = 0.25


def tau_check(x: np.ndarray, method: str = "geyer", min_taus: float = MIN_TAUS
              ) -> dict[str, float | bool]:
    """Is the run long enough for a trustworthy τ_int? (chains along axis 1).

    Three checks: the run holds ≥ ``min_taus`` τ (all chains) and every chain ≥ 10 τ;
    τ on the halves of the run is not clearly below τ on the whole run (τ still
    growing); and the means of the 2·chains half-chains scatter as τ predicts: their
    variance gives τ_between = h·var(half-chain means)/var(x) (h the half length), which
    exceeds τ by more than the 99.9 % quantile of χ²_{2m−1}/(2m−1) only when a slow part
    of the autocorrelation was missed (the autocorrelation cannot see a mode much slower
    than a chain; the chain means can).

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, chains)
    method : {"geyer", "sokal"}
    min_taus : float
        Smallest number of τ the run must hold (n·chains / τ).

    Returns
    -------
    dict
        ``tau`` (whole run), ``tau_halves`` (mean of τ on the first and the second half of
        every chain), ``tau_between``, ``n_taus`` (n·chains/τ), ``ok`` (False: too short),
        ``records_needed`` (records per chain for a trustworthy τ, from the largest of
        τ, 2·τ_halves − τ and τ_between).
    """
    from scipy.stats import chi2

    x = _as_chains(x)
    n, m = x.shape
    tau, lags = _tau_from_rho(_pooled_rho(x), x.size, method, 5.0)
    h = n // 2
    tau_h, tau_b, stable, scatter_ok = float("nan"), float("nan"), False, False
    if h >= 4:
        parts = (x[:h], x[n - h:])
        halves = [_tau_from_rho(_pooled_rho(part), part.size, method, 5.0)[0]
                  for part in parts]
        tau_h = float(np.mean(halves))
        se = tau * np.sqrt(2.0 * (2 * lags + 1) / (h * m)) / np.sqrt(2.0)
        stable = abs(tau - tau_h) <= max(HALF_DROP * tau, 3.0 * se)
        var = float(x.var(ddof=1))
        seg = np.concatenate([p.mean(axis=0) for p in parts])
        if var > 0:
            tau_b = float(h * seg.var(ddof=1) / var)
            dof = seg.size - 1
            scatter_ok = tau_b <= tau * chi2.ppf(0.999, dof) / dof
        else:
            scatter_ok = True
    n_taus = x.size / tau
    ok = bool(stable and scatter_ok and n_taus >= min_taus and n >= MIN_TAUS_PER_CHAIN * tau)
    cand = [tau]
    if np.isfinite(tau_h):
        cand.append(2.0 * tau - tau_h)
    if np.isfinite(tau_b) and not scatter_ok:
        cand.append(tau_b)
    tau_up = max(cand)
    need = int(np.ceil(max(min_taus * tau_up / m, MIN_TAUS_PER_CHAIN * tau_up)))
    return {"tau": float(tau), "tau_halves": tau_h, "tau_between": tau_b,
            "n_taus": float(n_taus), "ok": ok, "records_needed": n if ok else max(need, n)}


def ess(x: np.ndarray, method: str = "geyer", chains: bool = False) -> float | np.ndarray:
    """Effective sample size n/τ_int along axis 0 (total over chains if ``chains``)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0] * (x.shape[1] if chains and x.ndim == 2 else 1)
    return n / tau_int(x, method=method, chains=chains)


def stderr(x: np.ndarray, method: str = "geyer", chains: bool = False) -> float | np.ndarray:
    """Standard error of the mean, sd/√ESS, along axis 0 (pooled over chains if ``chains``)."""
    x = np.asarray(x, dtype=np.float64)
    if chains:
        xc = _as_chains(x)
        return float(np.sqrt(xc.var(ddof=1) / ess(xc, method=method, chains=True)))
    return np.sqrt(x.var(axis=0, ddof=1) / ess(x, method=method))


def split_rhat(x: np.ndarray) -> float:
    """Split R-hat (Gelman et al., BDA3 §11.4) of chains along axis 1.

    Parameters
    ----------
    x : ndarray, shape (n, chains)
        Draws along axis 0, one column per chain (e.g. the copies of one rung).

    Returns
    -------
    float
        √(V̂/W) over the 2·chains half-chains; ≈ 1 for mixed chains (NaN if every
        half-chain is constant).
    """
    x = _as_chains(x, "chains")
    n = x.shape[0] // 2
    if n < 2:
        raise ConfigError("chains", "at least 4 draws per chain", x.shape[0])
    halves = np.concatenate([x[:n], x[x.shape[0] - n:]], axis=1)
    means = halves.mean(axis=0)
    W = halves.var(axis=0, ddof=1).mean()
    B = n * means.var(ddof=1)
    var_plus = (n - 1) / n * W + B / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.sqrt(var_plus / W))


def summarize(series: np.ndarray, method: str = "geyer",
              check: bool = False) -> dict[str, float]:
    """Mean, its standard error, τ_int and ESS of a series.

    Parameters
    ----------
    series : ndarray, shape (n,) or (n, chains)
        One series, or independent chains as columns (pooled: τ from the combined
        autocorrelation, ESS summed over chains).
    method : {"geyer", "sokal"}
    check : bool
        Also run :func:`tau_check` (adds ``tau_ok`` 1/0 and ``records_needed``).

    Returns
    -------
    dict
        ``mean``, ``stderr``, ``tau_int``, ``ess``, ``n``, and for several chains
        ``rhat`` (split R-hat).
    """
    x = _as_chains(series)
    tau = tau_int(x, method=method, chains=True)
    n = x.size
    e = n / tau
    out = {"mean": float(x.mean()), "stderr": float(np.sqrt(x.var(ddof=1) / e)),
           "tau_int": float(tau), "ess": float(e), "n": int(n)}
    if x.shape[1] > 1 and x.shape[0] >= 4:
        out["rhat"] = split_rhat(x)
    if check:
        chk = tau_check(x, method=method)
        out["tau_ok"] = 1.0 if chk["ok"] else 0.0
        out["records_needed"] = float(chk["records_needed"])
    return out
