"""Markov-chain diagnostics: autocorrelation time, effective sample size, errors, R-hat.

Conventions
-----------
The integrated autocorrelation time is τ_int = 1 + 2 Σ_{t≥1} ρ(t), so independent draws
give τ_int = 1 and the effective sample size is ESS = n/τ_int; the standard error of the
mean is sd/√ESS. (Sokal's τ_int is half of this one; ours is the factor by which the
variance of the mean exceeds the iid value.)

Two estimators of τ_int:

* ``"sokal"`` (default): the windowed sum τ(M) = 1 + 2 Σ_{t=1}^{M} ρ̂(t) with the smallest
  window M ≥ c·τ(M), c = 5 (Sokal 1997, *Monte Carlo methods in statistical mechanics*).
  Its standard error is about τ √(2(2M+1)/n) (:func:`tau_int_stderr`).
* ``"geyer"``: Geyer's (1992) initial positive and monotone sequence of pair sums
  Γ_k = ρ(2k) + ρ(2k+1).

Series are along axis 0; a second axis, where accepted, holds independent chains
(copies): their autocorrelations are averaged (each chain centred on its own mean) and
the ESS is the total over chains.
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


def _pooled_rho(x: np.ndarray) -> np.ndarray:
    """Autocorrelation averaged over chains (autocovariances averaged, then normalised)."""
    n = x.shape[0]
    y = x - x.mean(axis=0)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(y, n=size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n].mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return acov / acov[0]


def tau_int(x: np.ndarray, method: str = "sokal", c: float = 5.0,
            chains: bool = False) -> float | np.ndarray:
    """Integrated autocorrelation time (iid = 1) along axis 0.

    Parameters
    ----------
    x : ndarray, shape (n,) or (n, ...)
        Series along axis 0.
    method : {"sokal", "geyer"}
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
        return _tau_from_rho(_pooled_rho(x), x.shape[0], method, c)[0]
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


def tau_int_stderr(x: np.ndarray, c: float = 5.0) -> float:
    """Standard error of the Sokal estimate of τ_int for a 1-D series (or pooled chains):
    τ √(2(2M+1)/N), N the total number of samples."""
    x = _as_chains(x)
    tau, m = _tau_from_rho(_pooled_rho(x), x.shape[0], "sokal", c)
    return float(tau * np.sqrt(2.0 * (2 * m + 1) / x.size))


def ess(x: np.ndarray, method: str = "sokal", chains: bool = False) -> float | np.ndarray:
    """Effective sample size n/τ_int along axis 0 (total over chains if ``chains``)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0] * (x.shape[1] if chains and x.ndim == 2 else 1)
    return n / tau_int(x, method=method, chains=chains)


def stderr(x: np.ndarray, method: str = "sokal", chains: bool = False) -> float | np.ndarray:
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


def summarize(series: np.ndarray, method: str = "sokal") -> dict[str, float]:
    """Mean, its standard error, τ_int and ESS of a series.

    Parameters
    ----------
    series : ndarray, shape (n,) or (n, chains)
        One series, or independent chains as columns (pooled: τ from the
        chain-averaged autocorrelation, ESS summed over chains).
    method : {"sokal", "geyer"}

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
    return out
