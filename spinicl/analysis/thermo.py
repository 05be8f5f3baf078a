"""Thermodynamics along a temperature ladder from post-burn-in Monte Carlo traces.

Inputs are the run file's traces after burn-in: energies of shape (records, T, M) (the M
copies of a rung are independent chains) and overlaps of shape (records, T, M2), with the
ladder ascending in temperature as ``/ladder/T`` (so β = 1/T is *descending*, index
T − 1 is the hottest rung). Every standard error accounts for autocorrelation through
the project's τ_int estimator (:func:`spinicl.analysis.diagnostics.stderr`, Geyer's
initial monotone sequence pooled over the chains); different rungs are treated as
independent (true for independent chains per rung; under parallel tempering the swaps
correlate neighbouring rungs weakly, which these errors neglect).

Formulas
--------
log Z ratios, stepping stone with a geometric bridge (:func:`stepping_stone`). With
β_k > β_{k+1} and the midpoint β* = (β_k + β_{k+1})/2,

    log Z_k − log Z_{k+1} = log⟨e^{−(β*−β_{k+1})E}⟩_{k+1} − log⟨e^{−(β*−β_k)E}⟩_k,

each average a log-sum-exp over its rung's samples. Both halves step by |Δβ|/2 and the
variance of each weight, ⟨e^{−2(β*−β)E}⟩, is finite whenever the ladder is (the
one-sided forward estimate from the colder rung needs 2β_{k+1} > β_k for a finite
variance). Error by the delta method: se(log Ȳ) = se(Ȳ)/Ȳ with se(Ȳ) the τ-corrected
standard error of the series Y = e^{−δ(E − E_ref)}. The sum of ratios down to the hottest
rung, log Z_k − log Z_hot, gets its error from one combined influence series per rung
(a rung enters two neighbouring ratios with correlated terms).

Thermodynamic integration (:func:`thermodynamic_integration`), the cross-check:
d log Z/dβ = −⟨E⟩, so log Z_k − log Z_{k+1} = −∫_{β_{k+1}}^{β_k} ⟨E⟩ dβ. Default rule
``"linear-T"``: ⟨E⟩ interpolated linearly in T = 1/β between the two rungs (⟨E⟩ = a + b/β),
integrated exactly; this is exact for the merged model (⟨E⟩ = E(m) + n/(2β)) and for any
harmonic low-temperature regime. ``"trapezoid"`` (in β) and ``"log-beta"`` (trapezoid of
β⟨E⟩ in log β) are offered. Errors propagate linearly from the stderr of ⟨E⟩.

Free energy and entropy per spin (n spins): f_k = −log Z_k/(β_k n),
s_k = (β_k⟨E⟩_k + log Z_k)/n. Relative to the hottest rung, log Z_hot := 0; the absolute
values follow when log Z_hot is known (:func:`merged_log_z` for the merged model:
log Z(β) = −βE(m) + (n/2) log(2π/β) − ½ log det A = −βn·f(β) with f of
:meth:`spinicl.theory.gaussian.GaussianTheory.free_energy`).

Heat capacity C = β² Var(E) per rung (total, not per spin); error from the τ-corrected
standard error of the series (E − Ē)². Merged model: βE − βE(m) ~ χ²_n/2, so C = n/2
exactly.

Binder cumulant of the replica overlap, B = 1 − ⟨q⁴⟩/(3⟨q²⟩²) (raw moments, q not
centred), error by the delta method (τ-corrected) or a jackknife over blocks of records
(which also offers a bias correction); the pairs of copies of one record share copies, so
both errors work on whole records (pairs averaged first). Merged model: with x, y independent
N(m, C), C = (βA)⁻¹, in the eigenbasis of C (eigenvalues c_i, μ = Vᵀm) n·q = Σ_i x_i y_i
is a sum of independent products whose raw moments are ⟨(x_i y_i)^k⟩ = ⟨x_i^k⟩²; the
cumulants add, giving ⟨q⟩ = ‖m‖²/n, Var q = (2mᵀCm + tr C²)/n², and ⟨q²⟩, ⟨q⁴⟩ hence B
exactly (:func:`merged_overlap_moments`).

P(q) per rung (:func:`overlap_edges`, :func:`overlap_histogram`): fixed bins chosen from
each rung's own spread of q, with the binned mean and variance (Sheppard-corrected) in
:func:`histogram_moments`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spinicl.analysis.diagnostics import stderr as _tau_stderr
from spinicl.analysis.diagnostics import tau_int
from spinicl.config import ConfigError, check_beta, check_int

TI_RULES = ("linear-T", "trapezoid", "log-beta")


# --------------------------------------------------------------------------- helpers
def _as_traces(x: np.ndarray, name: str) -> np.ndarray:
    """x as a float array (records, T, chains); a 2-D (records, T) gets one chain."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3 or x.shape[0] < 4:
        raise ConfigError(name, "an array (records >= 4, T, chains)", x.shape)
    if not np.all(np.isfinite(x)):
        raise ConfigError(name, "finite values (cut burn-in and NaN records first)",
                          "non-finite entries")
    return x


def _as_betas(betas, n_temps: int | None = None) -> np.ndarray:
    b = np.asarray(betas, dtype=np.float64).ravel()
    if b.size < 1 or not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ConfigError("betas", "positive finite inverse temperatures", betas)
    if b.size > 1 and np.any(np.diff(b) >= 0):
        raise ConfigError("betas", "strictly descending (the ladder ascending in T, as "
                          "/ladder/T)", b)
    if n_temps is not None and b.size != n_temps:
        raise ConfigError("betas", f"{n_temps} values (one per rung)", b.size)
    return b


def _var_of_mean(series: np.ndarray) -> float:
    """τ-corrected variance of the mean of a (records, chains) series (0 if constant)."""
    if not np.any(series != series.flat[0]):
        return 0.0
    return float(_tau_stderr(series, chains=True)) ** 2


def _log_mean_exp(a: np.ndarray) -> tuple[float, np.ndarray]:
    """log mean(e^a) by log-sum-exp, and the influence series e^a/mean(e^a) − 1."""
    amax = float(np.max(a))
    w = np.exp(a - amax)
    wbar = float(w.mean())
    return amax + np.log(wbar), w / wbar - 1.0


# --------------------------------------------------------------------------- log Z
@dataclass(frozen=True)
class SteppingStone:
    """Stepping-stone estimates along a ladder (geometric bridge at the midpoint β).

    Attributes
    ----------
    betas : ndarray, shape (T,)
        Inverse temperatures, descending.
    log_z_ratio : ndarray, shape (T−1,)
        log Z(β_k) − log Z(β_{k+1}).
    log_z_ratio_stderr : ndarray, shape (T−1,)
    log_z : ndarray, shape (T,)
        log Z(β_k) − log Z(β_hot) (0 at the hottest rung).
    log_z_stderr : ndarray, shape (T,)
        Errors of ``log_z`` with the correlations of the shared rungs.
    weight_ess : ndarray, shape (T−1, 2)
        Kish effective sample size (Σw)²/Σw² of the bridge weights on the colder and
        on the hotter rung of each pair, as a fraction of the samples: small values
        (≲ 0.1) flag rungs that overlap poorly (then the errors are unreliable).
    method : str
    """

    betas: np.ndarray
    log_z_ratio: np.ndarray
    log_z_ratio_stderr: np.ndarray
    log_z: np.ndarray
    log_z_stderr: np.ndarray
    weight_ess: np.ndarray
    method: str = "stepping stone, geometric bridge at the midpoint beta"


def _bridge_terms(energies: np.ndarray, betas: np.ndarray):
    """Per rung: the half-bridge log-averages and influence series.

    ``up[j]`` = log⟨e^{−(β*_{j−1} − β_j)E}⟩_j (toward the colder neighbour, j ≥ 1),
    ``down[j]`` = log⟨e^{−(β*_j − β_j)E}⟩_j (toward the hotter neighbour, j ≤ T−2).
    """
    n_t = betas.size
    up: list = [None] * n_t
    down: list = [None] * n_t
    ess = np.ones((max(n_t - 1, 0), 2))
    for j in range(n_t):
        E = energies[:, j, :]
        eref = float(E.mean())
        for side, nb in (("up", j - 1), ("down", j + 1)):
            if not 0 <= nb < n_t:
                continue
            delta = 0.5 * (betas[nb] - betas[j])       # β* − β_j
            val, infl = _log_mean_exp(-delta * (E - eref))
            val -= delta * eref
            w = infl + 1.0
            frac = float(w.sum() ** 2 / np.sum(w * w)) / w.size
            if side == "up":
                up[j] = (val, infl)
                ess[j - 1, 1] = frac
            else:
                down[j] = (val, infl)
                ess[j, 0] = frac
    return up, down, ess


def stepping_stone(energies: np.ndarray, betas) -> SteppingStone:
    """log Z ratios between neighbouring rungs by the stepping-stone estimator.

    Parameters
    ----------
    energies : ndarray, shape (records, T, M) or (records, T)
        Post-burn-in energy traces; the M copies of a rung are independent chains.
    betas : array, shape (T,)
        Inverse temperatures 1/``ladder/T``, strictly descending.

    Returns
    -------
    SteppingStone
        ``log_z_ratio[k]`` = log Z(β_k)/Z(β_{k+1}) = log⟨e^{−(β*−β_{k+1})E}⟩_{k+1}
        − log⟨e^{−(β*−β_k)E}⟩_k with β* the midpoint (geometric bridge), errors by the
        delta method on the τ-corrected standard errors of the weights.
    """
    E = _as_traces(energies, "energies")
    b = _as_betas(betas, E.shape[1])
    return _stepping_stone(E, b, *_bridge_terms(E, b))


def _stepping_stone(E: np.ndarray, b: np.ndarray, up: list, down: list,
                    ess: np.ndarray) -> SteppingStone:
    n_t = b.size
    ratio = np.array([up[k + 1][0] - down[k][0] for k in range(n_t - 1)])
    ratio_se = np.array([np.sqrt(_var_of_mean(up[k + 1][1]) + _var_of_mean(down[k][1]))
                         for k in range(n_t - 1)])
    log_z = np.zeros(n_t)
    log_z_se = np.zeros(n_t)
    for k in range(n_t - 1):
        log_z[k] = float(ratio[k:].sum())
        var = 0.0
        for j in range(k, n_t):   # rung j's combined influence on Σ_{i≥k} ratio_i
            s = np.zeros(E[:, j, :].shape)
            if j >= k + 1:
                s += up[j][1]
            if j <= n_t - 2:
                s -= down[j][1]
            var += _var_of_mean(s)
        log_z_se[k] = np.sqrt(var)
    return SteppingStone(betas=b, log_z_ratio=ratio, log_z_ratio_stderr=ratio_se,
                         log_z=log_z, log_z_stderr=log_z_se, weight_ess=ess)


def _ti_weights(b0: float, b1: float, rule: str) -> tuple[float, float]:
    """(w0, w1) with ∫_{b1}^{b0} ⟨E⟩ dβ ≈ w0⟨E⟩(b0) + w1⟨E⟩(b1), b0 > b1."""
    d = b0 - b1
    if rule == "trapezoid":
        return 0.5 * d, 0.5 * d
    L = np.log(b0 / b1)
    if rule == "log-beta":             # ∫ β⟨E⟩ d log β, trapezoid
        return 0.5 * L * b0, 0.5 * L * b1
    # linear-T: ⟨E⟩ = a + b/β through both points, integrated exactly
    w1 = -b1 + b0 * b1 * L / d
    return d - w1, w1


def thermodynamic_integration(mean_energy, betas, mean_energy_stderr=None,
                              rule: str = "linear-T"
                              ) -> dict[str, np.ndarray]:
    """log Z ratios by integrating −⟨E⟩ dβ between neighbouring rungs (the cross-check).

    Parameters
    ----------
    mean_energy : array, shape (T,)
        ⟨E⟩ per rung.
    betas : array, shape (T,)
        Strictly descending.
    mean_energy_stderr : array, shape (T,), optional
        Standard errors of ⟨E⟩ (e.g. ``/summary/energy/stderr``); zeros if omitted.
    rule : {"linear-T", "trapezoid", "log-beta"}
        Quadrature between two rungs (module docstring); "linear-T" is exact for
        ⟨E⟩ = a + b·T.

    Returns
    -------
    dict
        ``log_z_ratio`` (T−1,) log Z(β_k) − log Z(β_{k+1}), ``log_z_ratio_stderr`` (T−1,),
        ``log_z`` (T,) log Z(β_k) − log Z(β_hot), ``log_z_stderr`` (T,) (each rung's ⟨E⟩
        enters two intervals: its weights are summed before squaring).
    """
    if rule not in TI_RULES:
        raise ConfigError("rule", f"one of {', '.join(TI_RULES)}", rule)
    e = np.asarray(mean_energy, dtype=np.float64).ravel()
    b = _as_betas(betas, e.size)
    se = (np.zeros_like(e) if mean_energy_stderr is None
          else np.asarray(mean_energy_stderr, dtype=np.float64).ravel())
    if se.shape != e.shape:
        raise ConfigError("mean_energy_stderr", f"{e.size} values", se.shape)
    n_t = e.size
    w = np.array([_ti_weights(b[k], b[k + 1], rule) for k in range(n_t - 1)]
                 ).reshape(n_t - 1, 2)
    ratio = -(w[:, 0] * e[:-1] + w[:, 1] * e[1:])
    ratio_se = np.sqrt((w[:, 0] * se[:-1]) ** 2 + (w[:, 1] * se[1:]) ** 2)
    log_z = np.zeros(n_t)
    log_z_se = np.zeros(n_t)
    for k in range(n_t - 1):
        coef = np.zeros(n_t)
        coef[k:-1] += w[k:, 0]
        coef[k + 1:] += w[k:, 1]
        log_z[k] = -float(coef @ e)
        log_z_se[k] = float(np.sqrt(np.sum((coef * se) ** 2)))
    return {"log_z_ratio": ratio, "log_z_ratio_stderr": ratio_se, "log_z": log_z,
            "log_z_stderr": log_z_se}


# --------------------------------------------------------------------------- f, s
def free_energy_per_spin(log_z, betas, n_spins: int, log_z_stderr=None,
                         log_z_hot: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Free energy per spin f_k = −(log Z_k)/(β_k n) along the ladder.

    Parameters
    ----------
    log_z : array, shape (T,)
        log Z(β_k) − log Z(β_hot) (:attr:`SteppingStone.log_z`).
    betas : array, shape (T,)
    n_spins : int
    log_z_stderr : array, shape (T,), optional
    log_z_hot : float
        log Z at the hottest rung: 0 gives the free energy relative to the hottest rung
        (f_k = f_k^rel − log Z_hot/(β_k n)); the exact value (:func:`merged_log_z`)
        gives absolute free energies.

    Returns
    -------
    f, f_stderr : ndarray, shape (T,)
    """
    lz = np.asarray(log_z, dtype=np.float64).ravel()
    b = _as_betas(betas, lz.size)
    se = np.zeros_like(lz) if log_z_stderr is None else np.asarray(log_z_stderr, float)
    return -(lz + log_z_hot) / (b * n_spins), se / (b * n_spins)


def entropy_per_spin(energies: np.ndarray, betas, n_spins: int,
                     log_z_hot: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Entropy per spin s_k = (β_k⟨E⟩_k + log Z_k)/n, from the energy traces.

    log Z_k − log Z_hot comes from :func:`stepping_stone`; the error combines, per rung,
    the influence series of ⟨E⟩ and of the bridge weights (they are correlated).

    Parameters
    ----------
    energies : ndarray, shape (records, T, M)
    betas : array, shape (T,)
    n_spins : int
    log_z_hot : float, optional
        None: the entropy relative to the hottest rung, s_k − s_hot (0 there; defined
        from sampled quantities only). A value: absolute s_k (its hottest-rung term
        β_hot⟨E⟩_hot then carries that rung's error).

    Returns
    -------
    s, s_stderr : ndarray, shape (T,)
    """
    E = _as_traces(energies, "energies")
    b = _as_betas(betas, E.shape[1])
    n_t = b.size
    up, down, _ = _bridge_terms(E, b)
    log_z = np.array([sum(up[j + 1][0] - down[j][0] for j in range(k, n_t - 1))
                      for k in range(n_t)])
    emean = E.mean(axis=(0, 2))
    hot = n_t - 1
    absolute = log_z_hot is not None
    s = (b * emean + log_z) / n_spins
    if absolute:
        s += float(log_z_hot) / n_spins
    else:
        s -= b[hot] * emean[hot] / n_spins
    se = np.zeros(n_t)
    for k in range(n_t):
        var = 0.0
        for j in range(k, n_t):
            series = np.zeros(E[:, j, :].shape)
            if j >= k + 1:
                series += up[j][1]
            if j <= n_t - 2:
                series -= down[j][1]
            if j == k:
                series += b[k] * (E[:, j, :] - emean[j])
            if j == hot and not absolute:
                series -= b[hot] * (E[:, j, :] - emean[j])
            var += _var_of_mean(series)
        se[k] = np.sqrt(var) / n_spins
    return s, se


# --------------------------------------------------------------------------- C, q
def heat_capacity(energies: np.ndarray, betas) -> tuple[np.ndarray, np.ndarray]:
    """Heat capacity C = β² Var(E) per rung (total, not per spin), with its error.

    Parameters
    ----------
    energies : ndarray, shape (records, T, M)
    betas : array, shape (T,)

    Returns
    -------
    C, C_stderr : ndarray, shape (T,)
        Var(E) over all records and copies of a rung (ddof 1); the error is β² times the
        τ-corrected standard error of the mean of (E − Ē)² (merged model: C = n/2).
    """
    E = _as_traces(energies, "energies")
    b = _as_betas(betas, E.shape[1])
    C = np.empty(b.size)
    se = np.empty(b.size)
    for k in range(b.size):
        x = E[:, k, :]
        d2 = (x - x.mean()) ** 2
        C[k] = b[k] ** 2 * float(d2.sum()) / (x.size - 1)
        se[k] = b[k] ** 2 * np.sqrt(_var_of_mean(d2))
    return C, se


def binder_cumulant(q: np.ndarray, n_blocks: int | None = None, error: str = "delta",
                    bias_correct: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Binder cumulant B = 1 − ⟨q⁴⟩/(3⟨q²⟩²) per rung, with its error.

    The M(M−1)/2 pairs of one record share copies (q_ab and q_ac both contain copy a), so
    they are *not* independent chains: every error here is taken from series that are
    first averaged over the pairs of each record (the influence series for "delta", whole
    records per block for "jackknife"), as the run summary does for the mean overlap.
    Measured on exact draws of the merged model (6 copies, all 15 pairs, 300 records,
    200 repetitions; ``tests/test_thermo.py``): the spread of B over the repetitions is
    0.90–1.05 times this error, and 1.09–1.74 times the error that treats every pair as
    an independent chain (1.74 at the coldest rung, where q_ab ≈ ‖m‖²/n + m·(δ_a + δ_b)/n
    correlates pairs that share a copy).

    Parameters
    ----------
    q : ndarray, shape (records, T, M2) or (records, T)
        Replica-overlap traces (raw q, not centred), all pairs of copies of each rung.
    n_blocks : int, optional
        Jackknife blocks of consecutive records (all pairs of a block together). Default
        (per rung): blocks of ≥ 5 τ records, τ the τ_int (Geyer) of the pair-averaged
        delta-method influence series
        −(q⁴ − ⟨q⁴⟩)/(3⟨q²⟩²) + 2⟨q⁴⟩(q² − ⟨q²⟩)/(3⟨q²⟩³), and between 10 and 50 blocks
        (fewer than 10 blocks of 5 τ: the run is short and the error may be low). Fixed
        20 blocks of 30 records underestimated the variance by up to 35 % on AR(1) series
        with τ ≈ 9 in the tests.
    error : {"delta", "jackknife"}
        "delta" (default): the τ-corrected standard error of the mean of the influence
        series above, averaged over pairs per record (one series). "jackknife":
        √((J−1)/J Σ_i (B_(i) − B̄_(·))²) over the J leave-one-block-out estimates B_(i).
    bias_correct : bool
        Return the jackknife bias-corrected J·B − (J−1)·B̄_(·) instead of the plain ratio.
        B is biased at O(1/samples); measured bias of the plain B ≤ 0.23 of its standard
        deviation (tests: 800–1200 samples per rung); the correction removes it but, with
        ~13 blocks, raised the variance so that the errors underestimated it by up to
        1.5× on AR(1) series: off by default.

    Returns
    -------
    B, B_stderr : ndarray, shape (T,)
        The estimate and its standard error (``error``).
    """
    if error not in ("delta", "jackknife"):
        raise ConfigError("error", "delta or jackknife", error)
    x = _as_traces(q, "q")
    n_rec = x.shape[0]
    if n_blocks is not None and not 2 <= int(n_blocks) <= n_rec:
        raise ConfigError("n_blocks", f"between 2 and the number of records {n_rec}",
                          n_blocks)
    B = np.empty(x.shape[1])
    se = np.empty(x.shape[1])
    for k in range(x.shape[1]):
        q2 = x[:, k, :] ** 2
        q4 = q2**2
        m2, m4 = float(q2.mean()), float(q4.mean())
        infl = (-(q4 - m4) / (3 * m2**2) + 2 * m4 * (q2 - m2) / (3 * m2**3)).mean(
            axis=1, keepdims=True)        # (records, 1): pairs share copies
        if n_blocks is None:
            tau = float(tau_int(infl, chains=True)) if np.ptp(infl) > 0 else 1.0
            J = int(np.clip(n_rec // max(int(np.ceil(5 * tau)), 1), 10, 50))
            J = min(J, n_rec)
        else:
            J = int(n_blocks)
        edges = np.linspace(0, n_rec, J + 1).astype(int)
        s2 = np.add.reduceat(q2.sum(axis=1), edges[:-1])
        s4 = np.add.reduceat(q4.sum(axis=1), edges[:-1])
        cnt = np.diff(edges) * x.shape[2]
        tot = x.shape[0] * x.shape[2]
        jm2 = (s2.sum() - s2) / (tot - cnt)
        jm4 = (s4.sum() - s4) / (tot - cnt)
        jk = 1.0 - jm4 / (3.0 * jm2**2)
        B[k] = 1.0 - m4 / (3.0 * m2**2)
        if bias_correct:
            B[k] = J * B[k] - (J - 1) * float(jk.mean())
        se[k] = (np.sqrt((J - 1) / J * np.sum((jk - jk.mean()) ** 2)) if error == "jackknife"
                 else np.sqrt(_var_of_mean(infl)))
    return B, se


#: Bin edges of /overlap_histogram per rung (100 bins).
OVERLAP_HIST_EDGES = 101


#: Quantiles of q that set a rung's bin range (:func:`overlap_edges`) and the margin
#: added on each side, as a fraction of the span between them.
OVERLAP_RANGE_QUANTILES = (0.001, 0.999)
OVERLAP_RANGE_MARGIN = 0.25


def overlap_edges(q: np.ndarray, n_edges: int = OVERLAP_HIST_EDGES) -> np.ndarray:
    """Fixed bin edges of P(q) for every rung, from that rung's own spread.

    Rule (recorded with the histogram): per rung, with a, b the 0.1 % and 99.9 %
    quantiles of its q (all records and pairs given), the range [a − ¼(b − a),
    b + ¼(b − a)] cut to the smallest and largest q is split into ``n_edges − 1`` equal
    bins whose first and last centres sit on the ends of that range. For Gaussian q over
    a few thousand samples this is [min q, max q] (nothing outside); heavy tails (the
    factored model's hot rungs) fall outside and are counted there, so the bins resolve
    the bulk. A cold rung, whose q spreads over a small fraction of a hot rung's range,
    gets its own ``n_edges − 1`` bins. A rung whose q never varies gets bins of width
    10⁻⁹·max(|q|, 1) around its value. The edges are a function of the post-burn-in
    records only, so a resumed run (whose records equal those of an uninterrupted one bit
    for bit) writes the same edges.

    Parameters
    ----------
    q : ndarray, shape (records ≥ 4, T, M2) or (records ≥ 4, T)
        Finite overlaps.
    n_edges : int
        ≥ 3.

    Returns
    -------
    edges : ndarray, shape (T, n_edges)
    """
    x = _as_traces(q, "q")
    if int(n_edges) < 3:
        raise ConfigError("n_edges", ">= 3", n_edges)
    n_edges = int(n_edges)
    flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    a, b = np.quantile(flat, OVERLAP_RANGE_QUANTILES, axis=1)
    pad = OVERLAP_RANGE_MARGIN * (b - a)
    lo = np.maximum(a - pad, flat.min(axis=1))
    hi = np.minimum(b + pad, flat.max(axis=1))
    h = (hi - lo) / (n_edges - 2)
    const = ~(h > 1e-12 * np.maximum(np.abs(lo), np.abs(hi)))
    h = np.where(const, 1e-9 * np.maximum(np.abs(lo), 1.0), h)
    return lo[:, None] + h[:, None] * (np.arange(n_edges)[None, :] - 0.5)


def overlap_histogram(q: np.ndarray, edges) -> dict[str, np.ndarray]:
    """Histogram of the replica overlap per rung, on fixed bin edges (for P(q)).

    Parameters
    ----------
    q : ndarray, shape (records, T, M2) or (records, T)
    edges : array, shape (bins + 1,) or (T, bins + 1)
        Strictly increasing, one vector for every rung or one row per rung
        (:func:`overlap_edges`), recorded with the counts (``/overlap_histogram/edges``).

    Returns
    -------
    dict
        ``edges`` as given, ``counts`` (T, bins) int64 (bins closed on the left, the
        last one also on the right, as numpy), ``outside`` (T, 2) counts below the
        first and above the last edge (nothing is dropped silently).
    """
    x = _as_traces(q, "q")
    n_t = x.shape[1]
    e = np.asarray(edges, dtype=np.float64)
    rows = np.broadcast_to(e, (n_t, e.shape[-1])) if e.ndim == 1 else e
    if (e.ndim not in (1, 2) or rows.shape[0] != n_t or rows.shape[1] < 2
            or not np.all(np.isfinite(rows)) or np.any(np.diff(rows, axis=1) <= 0)):
        raise ConfigError("edges", f"strictly increasing finite bin edges (>= 2), one "
                          f"vector or one row per rung ({n_t})", np.shape(edges))
    counts = np.zeros((n_t, rows.shape[1] - 1), dtype=np.int64)
    outside = np.zeros((n_t, 2), dtype=np.int64)
    for k in range(n_t):
        v = x[:, k, :].ravel()
        counts[k] = np.histogram(v, bins=rows[k])[0]
        outside[k] = (int(np.sum(v < rows[k, 0])), int(np.sum(v > rows[k, -1])))
    return {"edges": e, "counts": counts, "outside": outside}


def histogram_moments(counts, edges) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of q per rung from a binned P(q).

    Bin centres weighted by the counts; the variance carries Sheppard's correction
    −h²/12 for bins of width h (exact for a smooth density, to O(h⁴)), so that it
    estimates the variance of the unbinned values.

    Parameters
    ----------
    counts : array, shape (T, bins)
    edges : array, shape (bins + 1,) or (T, bins + 1)
        Evenly spaced per row (as :func:`overlap_edges` and the old shared edges).

    Returns
    -------
    mean, var : ndarray, shape (T,)
        NaN for a rung without counts.
    """
    c = np.asarray(counts, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    e = np.broadcast_to(e, (c.shape[0], e.shape[-1])) if e.ndim == 1 else e
    mid = 0.5 * (e[:, 1:] + e[:, :-1])
    h = np.diff(e, axis=1).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = c.sum(axis=1)
        mean = (c * mid).sum(axis=1) / n
        var = (c * (mid - mean[:, None]) ** 2).sum(axis=1) / n - h**2 / 12.0
    return mean, var


# --------------------------------------------------------------------------- merged exact
def merged_log_z(theory, beta: float) -> float:
    """Exact log Z(β) of the merged model: −βE(m) + (n/2) log(2π/β) − ½ log det A.

    Reuses :meth:`GaussianTheory.free_energy` (f = −log Z/(βn)); NaN in the matrix-free
    path (no log det A).
    """
    return -float(beta) * theory.n_spins * theory.free_energy(beta)


def merged_log_z_ratio(theory, betas) -> np.ndarray:
    """Exact log Z(β_k) − log Z(β_{k+1}) of the merged model, shape (T−1,)
    (``/thermo/log_z_ratio_exact``)."""
    b = _as_betas(betas)
    lz = np.array([merged_log_z(theory, x) for x in b])
    return lz[:-1] - lz[1:]


def merged_entropy_per_spin(theory, beta: float) -> float:
    """Exact s = (β⟨E⟩ + log Z)/n = ½ + ½ log(2π/β) − log det A/(2n)."""
    return (float(beta) * theory.energy_mean(beta) + merged_log_z(theory, beta)) / (
        theory.n_spins)


def merged_heat_capacity(theory) -> float:
    """Exact C = β² Var(E) = n/2 of the merged model (β-independent)."""
    return 0.5 * theory.n_spins


#: Exact overlap moments (an n×n eigendecomposition per rung) only up to this many spins.
EXACT_OVERLAP_MAX_SPINS = 2500


def merged_binder(theory, beta: float) -> float:
    """Exact Binder cumulant of q_ab (merged model, :func:`merged_overlap_moments`); NaN
    without a dense Cholesky factor of A or above :data:`EXACT_OVERLAP_MAX_SPINS`."""
    if getattr(theory, "chol", None) is None or theory.n_spins > EXACT_OVERLAP_MAX_SPINS:
        return float("nan")
    return merged_overlap_moments(theory, beta)["binder"]


def merged_overlap_moments(theory, beta: float, active: bool = False) -> dict[str, float]:
    """Exact moments of q_ab = W^a·W^b/n between independent replicas (merged model).

    Parameters
    ----------
    theory : GaussianTheory
        Dense representation (needs the covariance).
    beta : float
    active : bool
        Over the active spins only (``overlap_active``; n their number).

    Returns
    -------
    dict
        ``mean`` ‖m‖²/n, ``var`` (2mᵀCm + tr C²)/n², ``m2`` ⟨q²⟩, ``m4`` ⟨q⁴⟩ and
        ``binder`` 1 − ⟨q⁴⟩/(3⟨q²⟩²), C = (βA)⁻¹ (restricted to the active spins).
    """
    C = theory.covariance(beta)
    m = theory.mean
    if active:
        act = theory._active
        C, m = C[np.ix_(act, act)], m[act]
    n = m.shape[0]
    c, V = np.linalg.eigh(C)
    mu = V.T @ m
    # raw moments of x ~ N(mu, c), k = 1..4; of u = x·y (x, y iid): squares
    x1, x2 = mu, mu**2 + c
    x3, x4 = mu**3 + 3 * mu * c, mu**4 + 6 * mu**2 * c + 3 * c**2
    u1, u2, u3, u4 = x1**2, x2**2, x3**2, x4**2
    k1 = np.sum(u1)
    k2 = np.sum(u2 - u1**2)
    k3 = np.sum(u3 - 3 * u2 * u1 + 2 * u1**3)
    k4 = np.sum(u4 - 4 * u3 * u1 - 3 * u2**2 + 12 * u2 * u1**2 - 6 * u1**4)
    m2 = (k2 + k1**2) / n**2
    m4 = (k4 + 4 * k3 * k1 + 3 * k2**2 + 6 * k2 * k1**2 + k1**4) / n**4
    return {"mean": float(k1 / n), "var": float(k2 / n**2), "m2": float(m2),
            "m4": float(m4), "binder": float(1.0 - m4 / (3.0 * m2**2))}


__all__ = [
    "EXACT_OVERLAP_MAX_SPINS", "OVERLAP_HIST_EDGES", "OVERLAP_RANGE_MARGIN",
    "OVERLAP_RANGE_QUANTILES", "TI_RULES", "SteppingStone",
    "binder_cumulant", "entropy_per_spin", "free_energy_per_spin", "heat_capacity",
    "histogram_moments", "merged_binder", "merged_entropy_per_spin", "merged_heat_capacity",
    "merged_log_z", "merged_log_z_ratio", "merged_overlap_moments", "overlap_edges",
    "overlap_histogram", "stepping_stone", "thermodynamic_integration",
]


# --------------------------------------------------------------------------- absolute log Z
@dataclass(frozen=True)
class SwitchingPath:
    """Absolute log Z(β) by switching the data term on at fixed β.

    Attributes
    ----------
    beta : float
    t : ndarray, shape (K,)
        Switching parameters of the rungs, descending from 1 to 0 (E_t = (λ/2)‖θ‖² +
        t·E_data(θ)).
    log_z : float
        log Z(β) of the model (t = 1), in the model's spin units (∫ dⁿθ e^{−βE}).
    log_z_stderr : float
    log_z_ti, log_z_ti_stderr : float
        The same by thermodynamic integration (the cross-check): trapezoid in t on every
        rung and on every other rung, Richardson-extrapolated; the statistical error.
    log_z_ti_quadrature : float
        Estimate of the quadrature error left in ``log_z_ti``, |T_h − T_2h|/3.
    log_z_gaussian : float
        log Z at t = 0: (n/2) log(2π/(βλ)).
    free_energy : float
        F = −log Z/β (total, in units of E).
    free_energy_per_spin, free_energy_per_spin_stderr : float
        F/n.
    mean_data_energy, mean_data_energy_stderr : ndarray, shape (K,)
        ⟨E_data⟩_t per rung.
    weight_ess : ndarray, shape (K−1, 2)
        Bridge-weight ESS fractions of each pair (:class:`SteppingStone`).
    thermodynamic_length : float
        Λ = ∫ β·sd(E_data) dt from the pilot, the number of standard deviations the
        path crosses (the rung count follows it).
    n_spins : int
    seed : int
    """

    beta: float
    t: np.ndarray
    log_z: float
    log_z_stderr: float
    log_z_ti: float
    log_z_ti_stderr: float
    log_z_ti_quadrature: float
    log_z_gaussian: float
    free_energy: float
    free_energy_per_spin: float
    free_energy_per_spin_stderr: float
    mean_data_energy: np.ndarray
    mean_data_energy_stderr: np.ndarray
    weight_ess: np.ndarray
    thermodynamic_length: float
    n_spins: int
    seed: int


def _trapezoid_weights(b: np.ndarray) -> np.ndarray:
    """Weights w with ∫ f db ≈ Σ w_k f(b_k) over the rungs b (descending), trapezoid."""
    w = np.zeros(b.size)
    db = -np.diff(b)
    w[:-1] += 0.5 * db
    w[1:] += 0.5 * db
    return w


def _data_energy(model, theta: np.ndarray) -> np.ndarray:
    """E_data(θ) = E(θ) − (λ/2)‖θ‖², shape (R,), for a batch θ (R, n)."""
    return model.energy(theta) - 0.5 * model.lam * np.einsum("ri,ri->r", theta, theta)


def _switched_model(model, t: float):
    """The model with its data term scaled by t (dense Gram: A₀, h, e₀ → t·A₀, t·h, t·e₀)."""
    from spinicl.models.data import DenseData

    data = model.data
    if data.kind != "dense":
        data = DenseData.from_prompts(data.prompts)
    return model.with_data(DenseData(t * data.gram, t * data.field, t * data.e0,
                                     data.D, data.P))


def _path_traces(model, beta: float, t: np.ndarray, *, sampler: str, copies: int,
                 records: int, every: int, burn_in: int, seed: int, options: dict
                 ) -> np.ndarray:
    """E_data traces (records, K, copies) along t (descending, t[-1] = 0).

    The t = 0 rung is the Gaussian N(0, 1/(βλ)) drawn exactly; each other rung is a
    chain started from the final state of the rung below it (annealing up the path).
    """
    from spinicl.samplers import make_sampler
    from spinicl.samplers.tempering import Ladder

    n = model.n_spins
    rng = np.random.default_rng([seed, 0x5717])
    out = np.empty((records, t.size, copies))
    theta = rng.standard_normal((records * copies, n)) / np.sqrt(beta * model.lam)
    out[:, -1, :] = _data_energy(model, theta).reshape(records, copies)
    start = theta[-copies:]
    for k in range(t.size - 2, -1, -1):
        smp = make_sampler(_switched_model(model, float(t[k])), sampler,
                           ladder=Ladder.from_betas([beta]), copies=copies,
                           seed=int(seed) * 1009 + k + 1, **options)
        state = smp.init(start)
        if burn_in:
            state, _ = smp.run(state, burn_in, burn_in=True)
        for i in range(records):
            state, _ = smp.run(state, every)
            out[i, k, :] = _data_energy(model, smp.positions(state).reshape(copies, n))
        start = smp.positions(state).reshape(copies, n)
    return out


def switching_free_energy(model, beta: float, *, rungs: int | None = None,
                          sampler: str = "mala", copies: int = 8, records: int = 400,
                          every: int = 10, burn_in: int = 1000, seed: int = 0,
                          **options) -> SwitchingPath:
    """Absolute log Z(β) and free energy of any model by switching its data term on
    (docs/model.md §1.7).

    The path E_t(θ) = (λ/2)‖θ‖² + t·E_data(θ), t from 0 to 1, at the fixed β: at t = 0 the
    law is the Gaussian N(0, 1/(βλ)) of the decay term alone, whose partition function is
    known, log Z₀ = (n/2) log(2π/(βλ)); at t = 1 it is the model. In b = βt the path is a
    tempering of E_data over that Gaussian base measure, so the stepping-stone estimator
    of :func:`stepping_stone` applies unchanged (geometric bridge, τ-corrected delta-method
    errors; rung b = 0 sampled exactly). Thermodynamic integration
    log Z₁ − log Z₀ = −β∫₀¹⟨E_data⟩_t dt (Richardson-extrapolated trapezoid) is the
    cross-check.

    Rungs: a pilot (16 rungs, geometric in b from 0.01/sd₀(E_data) to β plus b = 0, a
    quarter of the records) measures σ(b) = sd(E_data) at each rung; the thermodynamic
    length Λ = ∫σ db (trapezoid) is divided equally, with ``rungs`` rungs (default
    max(9, ⌈Λ⌉ + 1), at most 401, made odd), so each neighbouring pair is ≈ Λ/rungs ≤ 1 standard
    deviations apart and overlaps well.

    Parameters
    ----------
    model : Model
        Any model of :mod:`spinicl.models` with λ > 0 (merged or factored; a matrix-free
        data term is converted to its dense Gram once).
    beta : float
        Inverse temperature, > 0.
    rungs : int, optional
        Number of t rungs including t = 0 and t = 1 (>= 3).
    sampler : str
        Local sampler at each t (the registry's; "gibbs" for the factored model).
    copies : int
        Independent chains per rung (>= 2).
    records : int
        Records per rung after burn-in (>= 20).
    every : int
        Steps between records.
    burn_in : int
        Burn-in steps per rung (step sizes adapt there).
    seed : int
        Root seed (the exact t = 0 draws and every chain).
    **options
        Passed to :func:`spinicl.samplers.make_sampler` (e.g. ``precondition``).

    Returns
    -------
    SwitchingPath
    """
    beta = check_beta(beta)
    if not getattr(model, "lam", 0.0) > 0:
        raise ConfigError("lam", "> 0 (the decay-only Gaussian is the path's start)",
                          getattr(model, "lam", None))
    copies = check_int("copies", copies, 2)
    records = check_int("records", records, 20)
    every = check_int("every", every, 1)
    burn_in = check_int("burn_in", burn_in, 0)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    if rungs is not None:
        rungs = check_int("rungs", rungs, 3, 400)
    from spinicl import registry

    # every rung's model holds the dense Gram: the sampler must accept that, before work
    registry.check(getattr(model, "name", None), sampler, options.get("precondition", "none"),
                   "dense", built=True)
    n = model.n_spins
    kw = {"sampler": sampler, "copies": copies, "every": every, "burn_in": burn_in, "seed": seed,
              "options": options}
    # pilot: σ(b) on a coarse ladder
    rng = np.random.default_rng([seed, 0x9170])
    th0 = rng.standard_normal((512, n)) / np.sqrt(beta * model.lam)
    sd0 = float(np.std(_data_energy(model, th0)))
    b_min = min(0.01 / sd0, 0.5 * beta) if sd0 > 0 else 1e-6 * beta
    t_pilot = np.append(np.geomspace(beta, b_min, 15) / beta, 0.0)
    Ep = _path_traces(model, beta, t_pilot, records=max(20, records // 4), **kw)
    b_p = beta * t_pilot[::-1]                       # ascending from 0
    sig = Ep.std(axis=(0, 2))[::-1]
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (sig[1:] + sig[:-1]) * np.diff(b_p))])
    length = float(cum[-1])
    if rungs is None:
        rungs = int(min(401, max(9, np.ceil(length) + 1)))
    rungs += 1 - rungs % 2                          # odd: every other rung spans the path
    if length > 0:
        b = np.interp(np.linspace(0.0, length, rungs), cum, b_p)
    else:
        b = np.linspace(0.0, beta, rungs)
    b[0], b[-1] = 0.0, beta
    b = np.maximum.accumulate(b)
    t = (b / beta)[::-1]                            # descending: t[0] = 1, t[-1] = 0
    if np.any(np.diff(t) >= 0):
        t = np.linspace(1.0, 0.0, rungs)
    E = _path_traces(model, beta, t, records=records, **kw)
    bb = beta * t
    ss = _stepping_stone(E, bb, *_bridge_terms(E, bb))
    log_z0 = 0.5 * n * np.log(2.0 * np.pi / (beta * model.lam))
    log_z = float(ss.log_z[0]) + log_z0
    se_z = float(ss.log_z_stderr[0])
    mean = E.mean(axis=(0, 2))
    mean_se = np.array([np.sqrt(_var_of_mean(E[:, k, :])) for k in range(t.size)])
    # trapezoid on every rung (h) and on every other rung (2h); Richardson's
    # (4T_h − T_2h)/3 removes the O(h²) quadrature bias (the rungs are a smooth map of
    # an even grid in thermodynamic length), |T_h − T_2h|/3 estimates what was left
    w_h, w_2h = _trapezoid_weights(bb), np.zeros(t.size)
    w_2h[::2] = _trapezoid_weights(bb[::2])
    w = (4.0 * w_h - w_2h) / 3.0
    ti = log_z0 - float(w @ mean)
    ti_se = float(np.sqrt(np.sum((w * mean_se) ** 2)))
    ti_quad = abs(float((w_h - w_2h) @ mean)) / 3.0
    F = -log_z / beta
    return SwitchingPath(beta=beta, t=t, log_z=log_z, log_z_stderr=se_z, log_z_ti=ti,
                         log_z_ti_stderr=ti_se, log_z_ti_quadrature=ti_quad,
                         log_z_gaussian=float(log_z0),
                         free_energy=F, free_energy_per_spin=F / n,
                         free_energy_per_spin_stderr=se_z / (beta * n),
                         mean_data_energy=mean, mean_data_energy_stderr=mean_se,
                         weight_ess=ss.weight_ess, thermodynamic_length=length,
                         n_spins=n, seed=seed)
