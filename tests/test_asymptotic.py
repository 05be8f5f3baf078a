"""The D → ∞ theory of Lu, Letey, Zavatone-Veth, Maiti & Pehlevan (arXiv:2405.11751).

Reference values: the formulas evaluated independently of this implementation (from the
authors' released theory), printed to 3 decimals, or to 1–2 significant digits for the
small gaps; each is compared to half a unit of its last printed digit, the rounding.
Limits are exact (1/(1+α) at τ, κ → ∞; M_∞ = 1/(1+x); the ridgeless limit of the
finite-ridge formula), and the resolvent against the spectrum of a sampled BBᵀ/K.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spinicl.cli import main
from spinicl.config import ConfigError, TaskConfig
from spinicl.theory.asymptotic import (
    asymptotic_test_mse,
    from_spinicl,
    kappa_c,
    lam_from_spinicl,
    lam_to_spinicl,
    mp_resolvent,
    mp_resolvent_derivative,
    ridge_epsilon,
    ridge_icl,
    ridgeless_icl,
    ridgeless_idg,
)

INF = math.inf


# --------------------------------------------------------------------------- table
def test_reference_point_alpha2_kappa4_tau2():
    assert float(ridgeless_icl(2, 4, 2)) == pytest.approx(0.709, abs=5e-4)
    assert float(ridgeless_idg(2, 4, 2)) == pytest.approx(0.628, abs=5e-4)


@pytest.mark.parametrize("tau, value", [(0.5, 1.000), (2, 0.667), (20, 0.351)])
def test_ridgeless_icl_kappa_infinite(tau, value):
    assert float(ridgeless_icl(2, INF, tau)) == pytest.approx(value, abs=5e-4)


@pytest.mark.parametrize("tau, value", [(0.5, 0.933), (0.95, 0.933), (1.05, 0.891),
                                        (2, 0.567), (20, 0.352)])
def test_ridge_icl_lambda_0_1(tau, value):
    assert float(ridge_icl(2, INF, tau, 0.1)) == pytest.approx(value, abs=5e-4)


@pytest.mark.parametrize("kappa, gap, tol", [(0.5, 0.528, 5e-4), (0.9, 0.127, 5e-4),
                                             (1.0, 0.058, 5e-4), (1.1, 0.025, 5e-4),
                                             (2.0, 0.0016, 5e-5), (5.0, 0.0003, 5e-5)])
def test_memorisation_gap_at_alpha100_tau10(kappa, gap, tol):
    g = float(ridgeless_icl(100, kappa, 10) - ridgeless_idg(100, kappa, 10))
    assert g == pytest.approx(gap, abs=tol)


def test_vectorised_function_matches_the_scalar_ones():
    tau = np.array([0.5, 2.0, 20.0])
    got = asymptotic_test_mse(2.0, np.array([[4.0], [INF]]), tau)
    assert got.shape == (2, 3)
    assert got[0, 1] == pytest.approx(float(ridgeless_icl(2, 4, 2)), rel=1e-14)
    assert got[1] == pytest.approx(ridgeless_icl(2, INF, tau), rel=1e-14)
    ridge = asymptotic_test_mse(2.0, INF, tau, 0.1)
    assert ridge == pytest.approx(ridge_icl(2, INF, tau, 0.1), rel=1e-14)
    idg = asymptotic_test_mse(2.0, 4.0, tau, 0.0, which="in_distribution")
    assert idg == pytest.approx(ridgeless_idg(2, 4, tau), rel=1e-14)
    # no finite-ridge in-distribution formula; the ridgeless errors diverge at τ = 1
    assert np.isnan(asymptotic_test_mse(2.0, 4.0, 2.0, 0.1, which="in_distribution"))
    assert np.isinf(asymptotic_test_mse(2.0, 4.0, 1.0))
    assert float(asymptotic_test_mse(2.0, 4.0, 1.0, 0.1)) > 0


# --------------------------------------------------------------------------- limits
@pytest.mark.parametrize("alpha", [0.5, 2.0, 10.0])
def test_infinite_data_and_diversity_limit_is_one_over_one_plus_alpha(alpha):
    for kappa in (INF, 1e9):
        assert float(ridgeless_icl(alpha, kappa, 1e9)) == pytest.approx(1 / (1 + alpha),
                                                                       rel=1e-6)
    assert float(ridgeless_idg(alpha, INF, 1e9)) == pytest.approx(1 / (1 + alpha), rel=1e-6)


def test_infinite_data_limit_with_label_noise():
    rho, alpha = 0.3, 2.0
    x = (1 + rho) / alpha
    assert float(ridgeless_icl(alpha, INF, 1e9, rho)) == pytest.approx(rho + x / (1 + x),
                                                                      rel=1e-6)
    # noise raises both errors
    assert ridgeless_icl(2, 4, 2, 0.3) > ridgeless_icl(2, 4, 2)
    assert ridgeless_idg(2, 4, 0.5, 0.3) > ridgeless_idg(2, 4, 0.5)


def test_resolvent_tends_to_its_kappa_infinite_form():
    x = np.geomspace(1e-3, 1e3, 25)
    assert mp_resolvent(x, INF) == pytest.approx(1 / (1 + x), rel=1e-15)
    assert mp_resolvent(x, 1e8) == pytest.approx(1 / (1 + x), rel=1e-6)
    assert mp_resolvent_derivative(x, INF) == pytest.approx(-1 / (1 + x) ** 2, rel=1e-14)


@pytest.mark.parametrize("kappa", [0.3, 1.0, 4.0])
def test_resolvent_is_the_marchenko_pastur_one(kappa):
    """(1/D) tr(BBᵀ/K + x)⁻¹ of one sampled B (D = 600): fluctuations O(1/D)."""
    D = 600
    K = round(kappa * D)
    B = np.random.default_rng(0).standard_normal((D, K))
    s = np.linalg.eigvalsh(B @ B.T / K)
    for x in (0.05, 0.5, 3.0):
        assert float(mp_resolvent(x, kappa)) == pytest.approx(np.mean(1 / (s + x)),
                                                              rel=1e-2)
        h = 1e-5 * x
        fd = (mp_resolvent(x + h, kappa) - mp_resolvent(x - h, kappa)) / (2 * h)
        assert float(mp_resolvent_derivative(x, kappa)) == pytest.approx(float(fd),
                                                                         rel=1e-6)


def test_resolvent_has_no_cancellation_for_small_kappa():
    # κ < 1, x → 0: M ~ (1 − κ)/x; the naive 2/(a + √(a² + b)) loses every digit
    x = 1e-12
    assert float(mp_resolvent(x, 0.5)) == pytest.approx(0.5 / x, rel=1e-6)


@pytest.mark.parametrize("tau", [0.3, 0.8, 0.97, 1.03, 1.5, 5.0])
@pytest.mark.parametrize("kappa", [0.5, 4.0, INF])
def test_finite_ridge_tends_to_ridgeless(tau, kappa):
    e0 = float(ridgeless_icl(2.0, kappa, tau, 0.1))
    prev = None
    for lam in (1e-4, 1e-6, 1e-8, 1e-10):
        e = float(ridge_icl(2.0, kappa, tau, lam, 0.1))
        if prev is not None:  # monotone approach, error ∝ λ (or √λ near τ = 1)
            assert abs(e - e0) <= abs(prev - e0) + 1e-12
        prev = e
    assert prev == pytest.approx(e0, rel=1e-5)


@pytest.mark.parametrize("kappa", [0.05, 0.5, 1.0, 3.0, 1e6, INF])
@pytest.mark.parametrize("lam", [1e-8, 1e-3, 1.0, 100.0])
def test_root_is_unique_and_continuous_over_tau(kappa, lam):
    # geometric over 7 decades, and points approaching τ = 1 from both sides
    near = 10.0 ** -np.arange(2, 10)
    tau = np.unique(np.concatenate([np.geomspace(1e-3, 1e4, 600), [1.0], 1 - near,
                                    1 + near]))
    alpha, rho = 1.5, 0.2
    eps = ridge_epsilon(alpha, kappa, tau, lam, rho)
    x = (1 + rho) / alpha

    def f(e):
        return 1 - tau + tau * lam / e - e * mp_resolvent(e + x, kappa)

    assert np.all(eps > 0)
    assert np.all(np.abs(f(eps)) <= 1e-9 * (1 + tau + tau * lam / eps))
    # f decreases: positive below the root, negative above: the positive root is unique
    assert np.all(f(0.5 * eps) > 0) and np.all(f(2 * eps) < 0)
    assert np.all(np.diff(eps) <= 0)  # ε falls with τ
    e = ridge_icl(alpha, kappa, tau, lam, rho)
    assert np.all(np.isfinite(e)) and np.all(e > rho - 1e-9)
    # continuity: a relative step of 1e-9 in τ moves ε and the error by ≪ 1e-4,
    # everywhere, including at and around τ = 1 (no branch switch of the root)
    tau2 = tau * (1 + 1e-9)
    assert ridge_epsilon(alpha, kappa, tau2, lam, rho) == pytest.approx(eps, rel=1e-4)
    assert ridge_icl(alpha, kappa, tau2, lam, rho) == pytest.approx(e, rel=1e-4)
    if lam <= 1e-3:  # a small ridge leaves the (rounded-off) peak at τ ≈ 1
        assert 0.5 < tau[np.argmax(e)] < 2.0


def test_ridge_rounds_off_the_double_descent_peak():
    tau = np.linspace(0.5, 2.0, 301)
    e = ridge_icl(2.0, INF, tau, 1e-3)
    assert 0.8 < tau[np.argmax(e)] < 1.2 and np.max(e) < 20
    below = ridgeless_icl(2.0, INF, np.array([0.9, 0.99]))
    assert below[1] > 3 * below[0]  # the ridgeless error diverges at τ = 1


def test_kappa_c():
    assert kappa_c(np.array([0.5, 1.0, 3.0])) == pytest.approx([0.5, 1.0, 1.0])


# --------------------------------------------------------------------------- dictionary
def test_ridge_dictionary():
    assert float(lam_from_spinicl(0.01, 20, 40)) == pytest.approx(20 * (1 + 1 / 40) ** 2
                                                                  * 0.01, rel=1e-15)
    assert float(lam_to_spinicl(lam_from_spinicl(0.3, 7, 9), 7, 9)) == pytest.approx(0.3)


def test_from_spinicl():
    p = from_spinicl(TaskConfig(D=20, N=40, P=800, K=80, lam=0.01, sigma_eps=0.5))
    assert (p.alpha, p.kappa, p.tau, p.rho) == (2.0, 4.0, 2.0, 0.25)
    assert p.lam_L == pytest.approx(20 * (1 + 1 / 40) ** 2 * 0.01)
    for K in (None, 800):  # K = P: one task per prompt, κ = ∞
        assert from_spinicl(TaskConfig(D=20, N=40, P=800, K=K)).kappa == INF
    # σ_x, σ_w change the units: errors × (σ_xσ_w)², ρ = σ_ε²/(σ_xσ_w)²
    q = from_spinicl(TaskConfig(D=20, N=40, P=800, sigma_w=2.0, sigma_eps=1.0))
    assert q.scale == 4.0 and q.rho == 0.25
    assert q.test_mse_novel() == pytest.approx(4 * float(ridgeless_icl(2, INF, 2, 0.25)))
    s = p.summary()
    for key in ("alpha", "kappa", "tau", "lam_asymptotic", "asymptotic_test_mse_novel",
                "asymptotic_test_mse_in_distribution", "asymptotic_test_mse_novel_ridge"):
        assert key in s
    assert "asymptotic_test_mse_novel_ridge" not in from_spinicl(
        TaskConfig(D=20, N=40, P=800, lam=1e-9)).summary()  # negligible ridge


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, name", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": -1.0}, "alpha"), ({"alpha": math.nan}, "alpha"),
    ({"kappa": 0.0}, "kappa"), ({"kappa": -2.0}, "kappa"), ({"tau": 0.0}, "tau"),
    ({"tau": INF}, "tau"), ({"rho": -0.1}, "rho"), ({"lam_L": -1e-3}, "lam_L"),
])
def test_bad_parameters_are_named(kw, name):
    args = {"alpha": 2.0, "kappa": 4.0, "tau": 2.0, "lam_L": 0.0, "rho": 0.0, **kw}
    with pytest.raises(ConfigError) as err:
        asymptotic_test_mse(**args)
    assert err.value.param == name


def test_ridgeless_formulas_refuse_tau_one():
    for fn in (ridgeless_icl, ridgeless_idg):
        with pytest.raises(ConfigError) as err:
            fn(2.0, 4.0, 1.0)
        assert err.value.param == "tau" and "!= 1" in str(err.value)
    with pytest.raises(ConfigError) as err:
        ridge_icl(2.0, 4.0, 2.0, 0.0)
    assert err.value.param == "lam_L"


def _cli_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as ex:
        main(list(argv))
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_theory_asymptotic_refuses_bad_input_in_one_line(capsys):
    base = ("theory", "--D", "4", "--N", "8", "--P", "40", "--no-amp", "--no-baselines",
            "--asymptotic")
    assert "--rho must be 0" in _cli_error(capsys, *base, "--rho", "0.1")
    assert "--model must be merged" in _cli_error(capsys, *base, "--model", "factored")


def test_theory_asymptotic_json(capsys):
    import json

    with pytest.raises(SystemExit) as ex:
        main(["theory", "--D", "10", "--N", "20", "--P", "200", "--K", "40", "--lam", "0.01",
              "--no-amp", "--no-baselines", "--test-prompts", "200", "--asymptotic", "--json"])
    assert ex.value.code == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["alpha"], d["kappa"], d["tau"]) == (2.0, 4.0, 2.0)
    assert d["lam_asymptotic"] == pytest.approx(10 * 1.05**2 * 0.01)
    assert d["asymptotic_test_mse_novel"] == pytest.approx(0.7089, abs=1e-4)
    assert d["asymptotic_test_mse_in_distribution"] == pytest.approx(0.6277, abs=1e-4)
    assert d["asymptotic_test_mse_novel_ridge"] == pytest.approx(
        float(ridge_icl(2, 4, 2, d["lam_asymptotic"])), rel=1e-12)
    assert "test_mse_novel" in d  # the finite-D value beside it
