"""Absolute free energy by switching the data term on (thermo.switching_free_energy).

The merged model's log Z is exact; the factored model's is checked against an independent
route: log Z(β₁) − log Z(β₂) from two switching paths equals the stepping-stone sum along
a temperature ladder between β₁ and β₂ sampled by another run.
"""

from __future__ import annotations

import numpy as np
import pytest

from spinicl import ConfigError, make_task
from spinicl.analysis import thermo
from spinicl.models import build_model
from spinicl.samplers import make_sampler
from spinicl.samplers.driver import sample_trace
from spinicl.samplers.tempering import Ladder
from spinicl.theory.gaussian import gaussian_theory

Z = 4.5


@pytest.fixture(scope="module")
def task():
    return make_task(D=2, N=8, P=60, lam=0.05, seed=1, test_prompts=10)


@pytest.mark.parametrize("beta", [100.0, 3000.0])
def test_merged_log_z_matches_the_closed_form(task, beta):
    model = build_model(task, representation="dense")
    exact = thermo.merged_log_z(gaussian_theory(model, task), beta)
    r = thermo.switching_free_energy(model, beta, copies=4, records=120, burn_in=300,
                                     seed=11)
    assert r.t[0] == 1.0 and r.t[-1] == 0.0 and np.all(np.diff(r.t) < 0)
    assert abs(r.log_z - exact) < Z * r.log_z_stderr
    assert abs(r.log_z_ti - exact) < Z * r.log_z_ti_stderr + 2.0 * r.log_z_ti_quadrature
    assert r.log_z_gaussian == pytest.approx(0.5 * 9 * np.log(2 * np.pi / (beta * 0.05)))
    assert r.free_energy_per_spin == pytest.approx(-r.log_z / (beta * 9))
    assert np.all(r.weight_ess > 0.3)


def test_factored_path_agrees_with_the_temperature_ladder(task):
    model = build_model(task, "factored", dk=2, representation="dense")
    b1, b2 = 2000.0, 200.0
    kw = {"sampler": "gibbs", "copies": 4, "records": 100, "burn_in": 300}
    r1 = thermo.switching_free_energy(model, b1, seed=3, **kw)
    r2 = thermo.switching_free_energy(model, b2, seed=4, **kw)
    ladder = Ladder.from_betas(np.geomspace(b1, b2, 12))
    s = make_sampler(model, "gibbs", ladder=ladder, copies=4, seed=5)
    state, _ = s.run(s.init(start="random"), 1000, burn_in=True)
    state, trace = sample_trace(s, state, 600, every=5)
    ss = thermo.stepping_stone(trace.energies, ladder.betas)
    diff = r1.log_z - r2.log_z
    se = np.sqrt(r1.log_z_stderr**2 + r2.log_z_stderr**2 + ss.log_z_stderr[0] ** 2)
    assert abs(diff - ss.log_z[0]) < Z * se
    # the factored model's spins: 2·d_k·(D+1)
    assert r1.n_spins == 12


def test_bad_input_names_the_parameter(task):
    model = build_model(task, representation="dense")
    with pytest.raises(ConfigError, match="beta"):
        thermo.switching_free_energy(model, -1.0)
    with pytest.raises(ConfigError, match="copies"):
        thermo.switching_free_energy(model, 10.0, copies=1)
    with pytest.raises(ConfigError, match="rungs"):
        thermo.switching_free_energy(model, 10.0, rungs=2)


def test_cli_prints_the_merged_log_z_beside_the_exact_one(tmp_path):
    import json
    import subprocess
    import sys

    args = [sys.executable, "-m", "spinicl.cli", "free-energy", "--D", "2", "--N", "8",
            "--P", "60", "--lam", "0.05", "--beta", "500", "--test-prompts", "10",
            "--seed", "2", "--records", "100", "--burn-in", "50", "--copies", "4"]
    out = subprocess.run(args + ["--json"], check=False, capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["sampler"] == "exact" and d["n_spins"] == 9 and d["seed"] == 2
    assert abs(d["log_z"] - d["log_z_exact"]) < Z * d["log_z_stderr"]
    bad = subprocess.run(args[:4] + ["--model", "factored", "--sampler", "exact"],
                         check=False, capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert bad.returncode == 2 and "--model" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, line", [
    (["--T", "0"], "spinicl: error: --T must be > 0 (got 0.0): the temperature T = 1/beta"),
    (["--lam", "-1"], "spinicl: error: --lam must be > 0 (got -1.0)"),
    (["--lam", "0"], "spinicl: error: --lam must be > 0 (got 0.0)"),
    (["--model", "merged", "--dk", "3"],
     "spinicl: error: --dk must be used only with --model factored"),
])
def test_cli_refusals_say_the_allowed_range(args, line, capsys):
    """T is the temperature (not 1/T); λ = 0 is refused, so the range is > 0; --dk means
    nothing for the merged model and is refused rather than ignored."""
    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["free-energy", *args])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines


def test_cli_warns_when_the_rungs_overlap_poorly(capsys):
    """Three rungs at β = 10⁴ are far too few: the smallest bridge-weight ESS fraction
    (printed) falls below 0.1 and a warning line says the errors are unreliable; the
    warning appears exactly when the printed ESS is below 0.1."""
    import re

    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["free-energy", "--D", "2", "--N", "8", "--P", "50", "--test-prompts", "10",
              "--rungs", "3", "--records", "20", "--copies", "2", "--burn-in", "0",
              "--every", "1"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    ess = float(re.search(r"smallest bridge-weight ESS ([0-9.e+-]+)\)", out).group(1))
    assert ess < 0.1
    warn = [x for x in out.splitlines() if x.startswith("warning:")]
    assert len(warn) == 1 and "--rungs" in warn[0] and "unreliable" in warn[0]
