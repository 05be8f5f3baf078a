"""``spinicl scaling``: finite-size fits, population test errors and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spinicl.analysis.scaling import (
    choose_fit,
    fit_finite_size,
    ground_state,
    population_test_mse,
    preferred,
    realise,
    scaling_study,
    seeds_per_d,
)
from spinicl.cli import main
from spinicl.config import ConfigError
from spinicl.models import predict
from spinicl.prompts import make_task

DS = np.array([10.0, 20.0, 40.0, 80.0])


# --------------------------------------------------------------------------- fits
def test_fit_recovers_a_and_b_exactly():
    y = 0.709 + 2.7 / DS
    se = np.array([0.05, 0.02, 0.01, 0.004])
    f = fit_finite_size(DS, y, se, 1)
    assert f.coef == pytest.approx((0.709, 2.7), rel=1e-12)
    assert f.chi2 == pytest.approx(0.0, abs=1e-20) and f.dof == 2
    assert np.allclose(f.residuals, 0.0, atol=1e-13)
    assert f.predict(np.array([20.0, 1e12])) == pytest.approx([0.709 + 2.7 / 20, 0.709])


def test_quadratic_fit_recovers_a_b_c_exactly():
    y = 0.628 + 1.1 / DS + 16.0 / DS**2
    f = fit_finite_size(DS, y, np.full(4, 0.01), 2)
    assert f.coef == pytest.approx((0.628, 1.1, 16.0), rel=1e-10)
    assert f.dof == 1


def test_standard_error_of_the_extrapolation_is_calibrated():
    """Over 4000 synthetic data sets with Gaussian errors se, the scatter of the fitted a
    equals the reported standard error (to the 2 % sampling error of a std over 4000)."""
    rng = np.random.default_rng(1)
    se = np.array([0.03, 0.01, 0.006, 0.004])
    truth = 0.5 + 3.0 / DS
    fits = [fit_finite_size(DS, truth + se * rng.standard_normal(4), se, 1)
            for _ in range(4000)]
    a = np.array([f.value for f in fits])
    assert a.mean() == pytest.approx(0.5, abs=3 * fits[0].value_stderr / math.sqrt(4000))
    assert a.std() == pytest.approx(fits[0].value_stderr, rel=0.06)
    # χ² of the true model follows χ²_2: mean 2
    assert np.mean([f.chi2 for f in fits]) == pytest.approx(2.0, rel=0.08)


def test_choose_fit_detects_a_needed_1_over_D2_term():
    se = np.full(4, 0.002)
    curved = 0.7 + 1.0 / DS + 20.0 / DS**2
    lin, quad, verdict = choose_fit(DS, curved, se)
    assert lin.p_value < 1e-6 and "needed" in verdict
    assert preferred(lin, quad) is quad and quad.value == pytest.approx(0.7)
    straight = 0.7 + 2.0 / DS + np.array([1, -1, 1, -1]) * 1e-4
    lin, quad, verdict = choose_fit(DS, straight, se)
    assert "suffices" in verdict and preferred(lin, quad) is lin
    lin, quad, verdict = choose_fit(DS[:3], straight[:3], se[:3])
    assert quad is None and "3 sizes" in verdict


def test_fit_refuses_too_few_points_and_missing_errors():
    with pytest.raises(ConfigError):
        fit_finite_size(DS[:2], DS[:2], np.ones(2), 2)
    with pytest.raises(ConfigError):
        fit_finite_size(DS, DS, np.array([1.0, 0.0, 1.0, 1.0]), 1)


# --------------------------------------------------------------------------- sizes
def test_realise_rounds_and_reports():
    s = realise(2.0, 2.0, 4.0, 15)
    assert (s["N"], s["P"], s["K"]) == (30, 450, 60)
    s = realise(0.7, 1.3, math.inf, 11)
    assert (s["N"], s["P"], s["K"]) == (8, 157, 157) and s["kappa"] == math.inf
    assert s["alpha"] == 8 / 11 and s["tau"] == 157 / 121
    with pytest.raises(ConfigError) as err:
        realise(2.0, 2.0, 100.0, 10)  # K = 1000 > P = 200
    assert err.value.param == "kappa"


def test_more_seeds_at_small_D():
    assert seeds_per_d((10, 20, 40, 80), 8) == {10: 128, 20: 128, 40: 32, 80: 8}


# --------------------------------------------------------------------------- errors
def test_population_error_matches_sampled_test_prompts():
    """The closed-form expectation against 2·10⁵ sampled prompts (within 4 standard
    errors), for the ground state and a random W, with label noise, both test sets."""
    D, N = 5, 8
    task = make_task(D=D, N=N, P=150, K=6, lam=1e-2, sigma_eps=0.4, seed=3,
                     test_prompts=200_000, keep_test_context=False)
    W_rand = 0.3 * np.random.default_rng(0).standard_normal((D + 1) ** 2)
    for W in (ground_state(task, 1e-2)[0], W_rand):
        for ps, pool in ((task.test_novel, None), (task.test_in_distribution, task.pool)):
            r2 = (ps.y - predict(W[None], ps)[0]) ** 2
            se = r2.std() / math.sqrt(r2.size)
            assert population_test_mse(W, D, N, 0.4, pool) == pytest.approx(r2.mean(),
                                                                            abs=4 * se)


def test_matrix_free_ground_state_equals_the_dense_one():
    task = make_task(D=8, N=16, P=128, K=32, lam=1e-6, seed=0, test_prompts=1,
                     keep_test_context=False)
    md, _ = ground_state(task, 1e-6, "dense")
    mf, info = ground_state(task, 1e-6, "matrix-free")
    assert info["cg_relative_residual"] < 1e-9
    assert np.linalg.norm(mf - md) / np.linalg.norm(md) < 1e-6


def test_study_small():
    r = scaling_study(2.0, 2.0, 4.0, 1e-6, Ds=(6, 8, 10), seeds=2)
    d = r.as_dict()
    assert len(d["points"]) == sum(seeds_per_d((6, 8, 10), 2).values())
    assert d["formula_test_mse_novel"] == pytest.approx(0.7089, abs=1e-4)


# --------------------------------------------------------------------------- CLI
def test_cli_json_has_the_keys(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["scaling", "--alpha", "2", "--tau", "2", "--kappa", "4", "--lam", "1e-6",
              "--D", "6,8,10,12", "--seeds", "2", "--json", "-q"])
    assert ex.value.code == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("extrapolated_test_mse_novel", "extrapolated_test_mse_novel_stderr",
                "extrapolated_test_mse_in_distribution",
                "extrapolated_test_mse_in_distribution_stderr",
                "per_d_test_mse_novel", "per_d_test_mse_novel_stderr",
                "per_d_test_mse_in_distribution", "formula_test_mse_novel",
                "formula_test_mse_in_distribution", "fit_test_mse_novel", "realised",
                "alpha", "tau", "kappa", "lam_asymptotic", "seconds"):
        assert key in d, key
    assert len(d["per_d_test_mse_novel"]) == 4
    assert len(d["fit_test_mse_novel"]["residuals"]) == 4
    assert [s["N"] for s in d["realised"]] == [12, 16, 20, 24]
    assert d["formula_test_mse_in_distribution"] == pytest.approx(0.6277, abs=1e-4)


@pytest.mark.parametrize("args, option", [
    (["--alpha", "-1", "--tau", "2"], "--alpha"),
    (["--alpha", "2", "--tau", "0"], "--tau"),
    (["--alpha", "2", "--tau", "2", "--kappa", "0"], "--kappa"),
    (["--alpha", "2", "--tau", "2", "--kappa", "x"], "--kappa"),
    (["--alpha", "2", "--tau", "2", "--kappa", "100"], "--kappa"),
    (["--alpha", "2", "--tau", "2", "--lam", "-1"], "--lam"),
    (["--alpha", "2", "--tau", "2", "--D", "10"], "--D"),
    (["--alpha", "2", "--tau", "2", "--D", "10,a"], "--D"),
    (["--alpha", "2", "--tau", "2", "--seeds", "1"], "--seeds"),
    (["--alpha", "2", "--tau", "2", "--test-prompts", "-3"], "--test-prompts"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, args, option):
    with pytest.raises(SystemExit) as ex:
        main(["scaling", *args, "-q"])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err, err


def test_cli_plot_writes_png_and_pdf_and_never_replaces_a_users_file(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["scaling", "--alpha", "2", "--tau", "1", "--lam", "0.1", "--D", "4,6",
            "--seeds", "2", "-q", "--plot", "s.png"]
    with pytest.raises(SystemExit) as ex:
        main(args)
    assert ex.value.code in (0, None)
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "s.pdf").exists()
    with pytest.raises(SystemExit) as ex:       # its own figure: replaced
        main(args)
    assert ex.value.code in (0, None)
    (tmp_path / "u.png").write_text("precious")
    capsys.readouterr()
    with pytest.raises(SystemExit) as ex:
        main(args[:-1] + ["u.png"])
    assert ex.value.code == 2 and "--plot" in capsys.readouterr().err
    assert (tmp_path / "u.png").read_text() == "precious"
