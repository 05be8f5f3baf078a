"""Thermodynamics along the ladder (spinicl.analysis.thermo) against the merged model's exact
answers: closed-form free energy, entropy, heat capacity n/2, overlap moments and Binder
cumulant, fed with exact Gaussian draws (i.i.d., and AR(1)-correlated series built from them
to test the autocorrelation corrections). The errors are validated by z-scores over many
independent repetitions: their variance must be 1 within its sampling tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from spinicl import ConfigError, make_task
from spinicl.analysis import thermo
from spinicl.analysis.diagnostics import stderr
from spinicl.models import build_model
from spinicl.theory.gaussian import gaussian_theory

Z = 4.5
#: ladder ascending in T (as /ladder/T); neighbouring ratio 10^0.25 ≈ 1.78
TEMPS = np.geomspace(1e-3, 1e-1, 9)
BETAS = 1.0 / TEMPS


@pytest.fixture(scope="module")
def merged():
    task = make_task(D=4, N=12, P=300, lam=0.05, sigma_eps=0.2, seed=3, test_prompts=20)
    model = build_model(task, representation="dense")
    return model, gaussian_theory(model, task)


def draw_ladder(model, theory, records: int, copies: int, rng, phi: float = 0.0):
    """Energies (records, T, copies) and overlaps (records, T, copies/2) of exact draws.

    With phi > 0 each copy is the AR(1) series W_t = m + φ(W_{t−1} − m) + √(1−φ²)(X_t − m)
    of exact draws X_t, started from an exact draw: its law at every t is exact, its
    records correlated (τ of the energy (1+φ²)/(1−φ²)).
    """
    m, n = theory.mean, theory.n_spins
    E = np.empty((records, BETAS.size, copies))
    Q = np.empty((records, BETAS.size, copies // 2))
    for k, b in enumerate(BETAS):
        X = theory.sample(b, records * copies, rng).reshape(records, copies, n)
        if phi > 0:
            c = np.sqrt(1 - phi**2)
            Y = X - m
            Y[0] /= c                                   # so that the filter keeps Y_0
            X = m + lfilter([c], [1.0, -phi], Y, axis=0)
        E[:, k, :] = model.energy(X.reshape(-1, n)).reshape(records, copies)
        Q[:, k, :] = np.einsum("rci,rci->rc", X[:, 0::2], X[:, 1::2]) / n
    return E, Q


def exact_log_z(theory) -> np.ndarray:
    return np.array([thermo.merged_log_z(theory, b) for b in BETAS])


# ----------------------------------------------------------------------- closed forms
def test_merged_log_z_is_the_gaussian_integral(merged):
    _, th = merged
    n = th.n_spins
    for b in (3.0, 300.0):
        direct = -b * th.energy_ground + 0.5 * n * np.log(2 * np.pi / b) - 0.5 * th.logdet
        np.testing.assert_allclose(thermo.merged_log_z(th, b), direct, rtol=1e-13)
        s = 0.5 + 0.5 * np.log(2 * np.pi / b) - th.logdet / (2 * n)
        np.testing.assert_allclose(thermo.merged_entropy_per_spin(th, b), s, rtol=1e-12)
    lz = exact_log_z(th)
    np.testing.assert_allclose(thermo.merged_log_z_ratio(th, BETAS), lz[:-1] - lz[1:],
                               rtol=1e-13)


def test_thermodynamic_integration_linear_in_T_is_exact_on_the_merged_model(merged):
    """⟨E⟩ = E(m) + n/(2β) is linear in T: the default rule integrates it exactly; the
    trapezoid in β misses ∫n/(2β)dβ = (n/2) log r by (n/2)[(r − 1/r)/2 − log r], r the
    ratio of neighbouring β (the same for every pair of a geometric ladder)."""
    _, th = merged
    e = [th.energy_mean(b) for b in BETAS]
    exact = thermo.merged_log_z_ratio(th, BETAS)
    ti = thermo.thermodynamic_integration(e, BETAS)
    np.testing.assert_allclose(ti["log_z_ratio"], exact, rtol=1e-12, atol=1e-12)
    lz = exact_log_z(th)
    np.testing.assert_allclose(ti["log_z"], lz - lz[-1], rtol=1e-12, atol=1e-11)
    assert np.all(ti["log_z_ratio_stderr"] == 0)
    r = BETAS[0] / BETAS[1]
    trap = thermo.thermodynamic_integration(e, BETAS, rule="trapezoid")["log_z_ratio"]
    bias = -0.5 * th.n_spins * (0.5 * (r - 1 / r) - np.log(r))
    np.testing.assert_allclose(trap - exact, bias, rtol=1e-9)


def test_overlap_moments_closed_forms(merged):
    _, th = merged
    for b in (30.0, 3000.0):
        C = th.covariance(b)
        m, n = th.mean, th.n_spins
        mo = thermo.merged_overlap_moments(th, b)
        np.testing.assert_allclose(mo["mean"], th.overlap_mean(), rtol=1e-12)
        np.testing.assert_allclose(mo["var"], (2 * m @ C @ m + np.trace(C @ C)) / n**2,
                                   rtol=1e-10)
        np.testing.assert_allclose(mo["m2"], mo["var"] + mo["mean"] ** 2, rtol=1e-10)
        act = thermo.merged_overlap_moments(th, b, active=True)
        np.testing.assert_allclose(act["mean"], th.overlap_mean(active=True), rtol=1e-12)


@pytest.mark.parametrize("beta", [30.0, 1000.0])
def test_overlap_moments_and_binder_against_exact_draws(merged, beta):
    """⟨q⟩, ⟨q²⟩, ⟨q⁴⟩ and B from 4·10⁵ exact independent replica pairs."""
    _, th = merged
    rng = np.random.default_rng(7)
    n_pairs = 400_000
    q = np.empty(n_pairs)
    for s in range(0, n_pairs, 100_000):
        X = th.sample(beta, 200_000, rng)
        q[s:s + 100_000] = np.einsum("ri,ri->r", X[0::2], X[1::2]) / th.n_spins
    mo = thermo.merged_overlap_moments(th, beta)
    for key, vals in (("mean", q), ("m2", q**2), ("m4", q**4)):
        se = vals.std(ddof=1) / np.sqrt(n_pairs)
        assert abs(vals.mean() - mo[key]) < Z * se, (key, vals.mean(), mo[key], se)
    se_var = np.sqrt((np.mean((q - q.mean()) ** 4) - q.var() ** 2) / n_pairs)
    assert abs(q.var(ddof=1) - mo["var"]) < Z * se_var
    B, B_se = thermo.binder_cumulant(q.reshape(-1, 1, 1), n_blocks=50)
    assert abs(B[0] - mo["binder"]) < Z * B_se[0], (B, mo["binder"], B_se)


def test_heat_capacity_exact_value(merged):
    _, th = merged
    assert thermo.merged_heat_capacity(th) == th.n_spins / 2


# ----------------------------------------------------------------------- z-scores
REPS = 200


def _z_scores(merged, records: int, phi: float, seed: int) -> dict[str, np.ndarray]:
    """z-scores (reps, ...) of every estimator against its exact value."""
    model, th = merged
    n = th.n_spins
    rng = np.random.default_rng(seed)
    lz = exact_log_z(th)
    exact = {"ss_ratio": lz[:-1] - lz[1:], "ss_log_z": (lz - lz[-1])[:-1],
             "ti_ratio": lz[:-1] - lz[1:],
             "heat_capacity": np.full(BETAS.size, n / 2),
             "binder": np.array([thermo.merged_overlap_moments(th, b)["binder"]
                                 for b in BETAS])}
    s_ex = np.array([thermo.merged_entropy_per_spin(th, b) for b in BETAS])
    exact["entropy"] = (s_ex - s_ex[-1])[:-1]
    f_ex = np.array([th.free_energy(b) for b in BETAS])
    exact["free_energy"] = f_ex[:-1]
    out: dict[str, list] = {k: [] for k in exact}
    out.update({f"{k}/dev": [] for k in exact})
    out.update({f"{k}/se": [] for k in exact})
    out["se_ratio_over_naive"] = []
    for _ in range(REPS):
        E, Q = draw_ladder(model, th, records, 4, rng, phi)
        ss = thermo.stepping_stone(E, BETAS)
        est = {"ss_ratio": (ss.log_z_ratio, ss.log_z_ratio_stderr),
               "ss_log_z": (ss.log_z[:-1], ss.log_z_stderr[:-1])}
        emean = E.mean(axis=(0, 2))
        ese = np.array([stderr(E[:, k, :], chains=True) for k in range(BETAS.size)])
        ti = thermo.thermodynamic_integration(emean, BETAS, ese)
        est["ti_ratio"] = (ti["log_z_ratio"], ti["log_z_ratio_stderr"])
        est["heat_capacity"] = thermo.heat_capacity(E, BETAS)
        est["binder"] = thermo.binder_cumulant(Q)
        s, s_se = thermo.entropy_per_spin(E, BETAS, n)
        est["entropy"] = (s[:-1], s_se[:-1])
        f, f_se = thermo.free_energy_per_spin(ss.log_z, BETAS, n, ss.log_z_stderr,
                                              log_z_hot=lz[-1])
        est["free_energy"] = (f[:-1], f_se[:-1])
        for k, (v, se) in est.items():
            out[k].append((v - exact[k]) / se)
            out[f"{k}/dev"].append(v - exact[k])
            out[f"{k}/se"].append(se)
        out["se_ratio_over_naive"].append(ss.log_z_ratio_stderr / _naive_se(E))
    return {k: np.array(v) for k, v in out.items()}


def _naive_se(E: np.ndarray) -> np.ndarray:
    """Stepping-stone errors as if the records were independent (τ = 1)."""
    out = []
    for k in range(BETAS.size - 1):
        var = 0.0
        for j, nb in ((k, k + 1), (k + 1, k)):
            x = E[:, j, :]
            w = np.exp(-0.5 * (BETAS[nb] - BETAS[j]) * (x - x.mean()))
            var += w.var(ddof=1) / w.size / w.mean() ** 2
        out.append(np.sqrt(var))
    return np.array(out)


@pytest.fixture(scope="module")
def z_iid(merged):
    return _z_scores(merged, records=400, phi=0.0, seed=11)


@pytest.fixture(scope="module")
def z_ar1(merged):
    return _z_scores(merged, records=600, phi=0.8, seed=12)


ESTIMATORS = ["ss_ratio", "ss_log_z", "ti_ratio", "heat_capacity", "binder", "entropy",
              "free_energy"]
#: The Binder cumulant's error is, q⁴ being heavy-tailed, strongly correlated with the
#: estimate (−0.8 at the hottest rung): its z-scores are skewed at these sample sizes
#: (measured: mean 0.45, variance 1.95 at the hottest rung with 800 samples) although the
#: estimate is unbiased and its rms error calibrated. It is held to the calibration test.
Z_NORMAL = [e for e in ESTIMATORS if e != "binder"]


def _check_unit_normal(z: np.ndarray, name: str) -> None:
    """z (reps, K): mean 0 and variance 1 per component, within sampling tolerance.

    Per component over R reps: mean within Z/√R of 0 and variance within Z·√(2/R) of 1
    (normal theory); the variance averaged over the K components (correlated through
    shared rungs) within the same bound (conservative).
    """
    R = z.shape[0]
    assert np.all(np.isfinite(z)), name
    mean, var = z.mean(axis=0), z.var(axis=0, ddof=1)
    assert np.all(np.abs(mean) < Z / np.sqrt(R)), (name, mean)
    assert np.all(np.abs(var - 1) < Z * np.sqrt(2 / R)), (name, var)
    assert abs(var.mean() - 1) < Z * np.sqrt(2 / R), (name, var.mean())


def _check_calibrated(dev: np.ndarray, se: np.ndarray, name: str) -> None:
    """Deviations from the exact value (reps, K): unbiased, and their variance over the
    reps equal to the mean reported se², per component.

    Bias within Z·sd/√R. Variance ratio sd²/⟨se²⟩ within Z times its own standard error
    √((κ − 1)/R + Var(se²)/(R⟨se²⟩²)), κ the measured kurtosis of the deviations (no
    normality assumed).
    """
    R = dev.shape[0]
    sd = dev.std(axis=0, ddof=1)
    assert np.all(np.abs(dev.mean(axis=0)) < Z * sd / np.sqrt(R)), (name, dev.mean(0) / sd)
    se2 = se**2
    ratio = sd**2 / se2.mean(axis=0)
    kurt = np.mean((dev - dev.mean(0)) ** 4, axis=0) / np.mean((dev - dev.mean(0)) ** 2,
                                                               axis=0) ** 2
    tol = Z * np.sqrt((kurt - 1) / R + se2.var(axis=0) / (R * se2.mean(axis=0) ** 2))
    assert np.all(np.abs(ratio - 1) < tol), (name, ratio, tol)


@pytest.mark.parametrize("name", Z_NORMAL)
def test_z_scores_iid(z_iid, name):
    _check_unit_normal(z_iid[name], name)


@pytest.mark.parametrize("name", Z_NORMAL)
def test_z_scores_ar1(z_ar1, name):
    _check_unit_normal(z_ar1[name], name)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_errors_calibrated_iid(z_iid, name):
    _check_calibrated(z_iid[f"{name}/dev"], z_iid[f"{name}/se"], name)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_errors_calibrated_ar1(z_ar1, name):
    _check_calibrated(z_ar1[f"{name}/dev"], z_ar1[f"{name}/se"], name)


def test_autocorrelation_correction_matters(z_iid, z_ar1):
    """For i.i.d. records the τ-corrected error equals the naive one (τ ≈ 1); for the AR(1)
    series it is larger by ≈ √τ, τ between 1 and (1+φ²)/(1−φ²) = 4.6 (the weights'
    own τ), so a naive error would fail the unit-variance test above."""
    iid = z_iid["se_ratio_over_naive"].mean()
    ar = z_ar1["se_ratio_over_naive"].mean()
    assert abs(iid - 1) < 0.1, iid
    assert 1.5 < ar < np.sqrt(4.6) * 1.05, ar


# ----------------------------------------------------------------------- small API
def test_overlap_histogram_counts_everything():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((50, 3, 2))
    edges = np.linspace(-1.5, 1.5, 13)
    h = thermo.overlap_histogram(q, edges)
    assert h["counts"].shape == (3, 12)
    np.testing.assert_array_equal(h["counts"].sum(1) + h["outside"].sum(1), 100)
    np.testing.assert_array_equal(h["counts"][1], np.histogram(q[:, 1].ravel(), edges)[0])
    np.testing.assert_array_equal(h["edges"], edges)
    with pytest.raises(ConfigError):
        thermo.overlap_histogram(q, [0.0, 0.0, 1.0])


def test_input_checks():
    E = np.ones((10, 3, 2))
    with pytest.raises(ConfigError):
        thermo.stepping_stone(E, [1.0, 2.0, 3.0])   # ascending β: the wrong order
    with pytest.raises(ConfigError):
        thermo.stepping_stone(E, [3.0, 2.0])
    with pytest.raises(ConfigError):
        thermo.thermodynamic_integration([1.0, 2.0], [2.0, 1.0], rule="simpson")
    E[0, 0, 0] = np.nan
    with pytest.raises(ConfigError):
        thermo.heat_capacity(E, [3.0, 2.0, 1.0])


# ----------------------------------------------------------------------- Binder, shared pairs
#: Copies per rung for the all-pairs test: 15 pairs built from 6 replicas.
PAIR_COPIES = 6
PAIR_TEMPS = np.array([1e-3, 1e-2, 1e-1])


def _all_pair_overlaps(theory, records: int, rng) -> np.ndarray:
    """Overlaps (records, T, M(M−1)/2) of every pair of M exact independent copies: the
    pairs of a record share copies, as in a run."""
    n = theory.n_spins
    a, b = np.triu_indices(PAIR_COPIES, 1)
    q = np.empty((records, PAIR_TEMPS.size, a.size))
    for k, t in enumerate(PAIR_TEMPS):
        X = theory.sample(1.0 / t, records * PAIR_COPIES, rng).reshape(records, PAIR_COPIES, n)
        G = np.einsum("rci,rdi->rcd", X, X) / n
        q[:, k, :] = G[:, a, b]
    return q


def _pairs_as_chains_se(q: np.ndarray) -> np.ndarray:
    """The old error: the delta-method influence series with every pair as its own chain."""
    se = []
    for k in range(q.shape[1]):
        q2 = q[:, k, :] ** 2
        q4 = q2**2
        m2, m4 = q2.mean(), q4.mean()
        infl = -(q4 - m4) / (3 * m2**2) + 2 * m4 * (q2 - m2) / (3 * m2**3)
        se.append(stderr(infl, chains=True))
    return np.array(se)


@pytest.fixture(scope="module")
def binder_all_pairs(merged):
    _, th = merged
    rng = np.random.default_rng(21)
    exact = np.array([thermo.merged_overlap_moments(th, 1.0 / t)["binder"]
                      for t in PAIR_TEMPS])
    dev, se, se_old = [], [], []
    for _ in range(REPS):
        q = _all_pair_overlaps(th, 300, rng)
        B, B_se = thermo.binder_cumulant(q)
        dev.append(B - exact)
        se.append(B_se)
        se_old.append(_pairs_as_chains_se(q))
    return np.array(dev), np.array(se), np.array(se_old)


def test_binder_error_with_pairs_that_share_copies(binder_all_pairs):
    """All 15 pairs of 6 exact copies against the merged model's exact Binder cumulant
    (closed-form ⟨q²⟩, ⟨q⁴⟩): the spread of B over 200 repetitions equals the reported
    error (pairs averaged per record before the time-series error)."""
    dev, se, _ = binder_all_pairs
    _check_calibrated(dev, se, "binder, all pairs")


def test_binder_error_of_pairs_as_independent_chains_is_too_small(binder_all_pairs):
    """The same check rejects the old error (every pair its own chain): at the colder
    rungs, where q_ab ≈ ‖m‖²/n + m·(δ_a + δ_b)/n, pairs sharing a copy are strongly
    correlated and that error is several times too small."""
    dev, _, se_old = binder_all_pairs
    with pytest.raises(AssertionError):
        _check_calibrated(dev, se_old, "binder, pairs as chains")
    ratio = dev.std(axis=0, ddof=1) / np.sqrt((se_old**2).mean(axis=0))
    assert ratio.max() > 1.5, ratio


def test_overlap_edges_follow_each_rung():
    rng = np.random.default_rng(4)
    q = np.stack([0.3 + 1e-4 * rng.standard_normal((2000, 3)),
                  0.1 + 0.5 * rng.standard_normal((2000, 3)),
                  np.full((2000, 3), 0.7)], axis=1)
    edges = thermo.overlap_edges(q)
    assert edges.shape == (3, thermo.OVERLAP_HIST_EDGES)
    h = thermo.overlap_histogram(q, edges)
    assert np.all(h["outside"] == 0)        # Gaussian tails: the range is [min, max]
    # the extreme values sit at the centres of the first and last bins
    mid = 0.5 * (edges[:, 1:] + edges[:, :-1])
    np.testing.assert_allclose(mid[:2, 0], q[:, :2].min(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(mid[:2, -1], q[:, :2].max(axis=(0, 2)), rtol=1e-12)
    assert h["counts"][2].sum() == 6000     # a constant rung: one bin, nothing lost
    m, v = thermo.histogram_moments(h["counts"], edges)
    for k in range(2):
        x = q[:, k].ravel()
        # binning moves the mean by < h/2 and (Sheppard) the variance by O(h⁴)
        h_k = edges[k, 1] - edges[k, 0]
        assert abs(m[k] - x.mean()) < 0.5 * h_k
        assert abs(v[k] - x.var()) < 0.02 * x.var()
    heavy = rng.standard_t(2, size=(4000, 1, 2))
    hh = thermo.overlap_histogram(heavy, thermo.overlap_edges(heavy))
    assert 0 < hh["outside"].sum() <= 0.002 * heavy.size   # far tails counted outside
