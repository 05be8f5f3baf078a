"""`spinicl theory` as a user runs it: a real subprocess, JSON output, one-line errors."""

import json
import subprocess
import sys

import pytest

SMALL = ["--D", "4", "--N", "10", "--P", "300", "--test-prompts", "200"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "spinicl.cli", *args], check=False,
                          capture_output=True, text=True, timeout=300)


def test_theory_json_has_the_documented_keys():
    out = run("theory", *SMALL, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    for key in ("n_spins", "test_mse_novel", "test_mse_in_distribution", "train_mse",
                "energy_mean", "overlap_mean", "self_overlap_mean", "alignment",
                "free_energy", "energy_ground", "config", "seeds"):
        assert key in data, key
    assert data["n_spins"] == 25
    assert data["energy_mean"] == pytest.approx(data["energy_ground"] + 25 / (2 * 100))


def test_theory_table_says_how_hot_beta_is():
    out = run("theory", *SMALL, "--T", "0.01")
    assert out.returncode == 0, out.stderr
    assert "n/(2β)" in out.stdout and "hot" in out.stdout


def test_theory_factored_reports_the_nuclear_norm_ground_state():
    out = run("theory", *SMALL, "--model", "factored", "--lam", "0.05", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"] == "factored" and data["n_spins"] == 2 * 5 * 5
    assert data["energy_ground"] > data["merged_energy_ground"]
    assert data["converged"]


@pytest.mark.parametrize(
    "args, flag",
    [(["--D", "0"], "--D"), (["--N", "-3"], "--N"), (["--P", "0"], "--P"),
     (["--K", "400"], "--K"), (["--lam", "0"], "--lam"), (["--beta", "-1"], "--beta"),
     (["--T", "0"], "--T"), (["--sigma-x", "-1"], "--sigma-x"), (["--rho", "1"], "--rho"),
     (["--sigma-eps", "-2"], "--sigma-eps"), (["--memory-budget", "1KB"], "--memory-budget"),
     (["--D", "abc"], "--D")],
)
def test_bad_input_is_one_line_naming_the_parameter(args, flag):
    out = run("theory", *SMALL, *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert flag in lines[0] and "Traceback" not in out.stderr


def test_theory_json_reports_amp_and_baselines_beside_the_exact_solution():
    out = run("theory", *SMALL, "--lam", "0.05", "--amp-variant", "onsager", "--json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    for key in ("amp_variant", "amp_test_mse_novel", "amp_relative_distance",
                "amp_iterations", "amp_converged", "baseline_gd_test_mse_novel",
                "baseline_bayes_test_mse_novel", "gd_cosine"):
        assert key in d, key
    assert d["amp_variant"] == "onsager" and d["amp_converged"]
    assert d["amp_relative_distance"] < 1e-10  # the Onsager fixed point is m itself
    assert d["amp_test_mse_novel"] == pytest.approx(d["test_mse_novel"], rel=1e-8)


@pytest.mark.parametrize("args, flag", [(["--amp-damping", "1"], "--amp-damping"),
                                        (["--amp-tol", "0"], "--amp-tol"),
                                        (["--amp-max-sweeps", "0"], "--amp-max-sweeps")])
def test_bad_amp_options_are_one_line_errors(args, flag):
    out = run("theory", *SMALL, *args)
    assert out.returncode == 2 and flag in out.stderr and len(out.stderr.splitlines()) == 1
