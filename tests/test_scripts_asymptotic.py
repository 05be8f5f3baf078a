"""The two D → ∞ comparison scripts run end to end (hidden ``--tiny`` size, < 15 s each).

Same pattern as ``tests/test_scripts.py``: a subprocess as documented, then the CSV files:
columns, finite values, and the D → ∞ column equal to :mod:`spinicl.theory.asymptotic`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_scripts import check, figures, num, read, run_script

from spinicl.theory.asymptotic import asymptotic_test_mse


def test_asymptotic_double_descent(tmp_path):
    run_script("asymptotic_double_descent.py", tmp_path, "--tiny", "--jobs", "1")
    figures(tmp_path, "asymptotic_double_descent_tiny")
    pts = read(tmp_path / "asymptotic_double_descent_tiny_points.csv")
    check(pts, ("kind", "alpha", "tau", "lam_L", "D", "N", "P", "mean", "stderr", "seeds"),
          ("mean", "stderr"))
    ex = read(tmp_path / "asymptotic_double_descent_tiny_extrapolated.csv")
    check(ex, ("alpha", "tau", "lam_L", "value", "stderr", "theory", "deviation_sigma"),
          ("value", "stderr", "theory"))
    want = asymptotic_test_mse(num(ex, "alpha"), math.inf, num(ex, "tau"), num(ex, "lam_L"))
    assert num(ex, "theory") == pytest.approx(want, rel=1e-7)
    # the exact Boltzmann samples at T = 1e-6 sit on the ground state (thermal error ≪ 1 %)
    sm = [p for p in pts if p["kind"] == "samples"]
    assert sm
    for p in sm:
        g = next(q for q in pts if q["kind"] == "ground" and q["tau"] == p["tau"]
                 and q["lam_L"] == p["lam_L"] and q["D"] == p["D"])
        assert float(p["mean"]) == pytest.approx(float(g["mean"]), rel=0.01)


def test_asymptotic_task_diversity(tmp_path):
    run_script("asymptotic_task_diversity.py", tmp_path, "--tiny", "--jobs", "1")
    figures(tmp_path, "asymptotic_task_diversity_tiny")
    pts = read(tmp_path / "asymptotic_task_diversity_tiny_points.csv")
    check(pts, ("kind", "observable", "tau", "kappa", "D", "K", "mean", "stderr"), ("mean",))
    kinds = {p["kind"] for p in pts}
    assert {"ground", "bayes", "dmmse", "ground_sampled"} <= kinds
    ex = read(tmp_path / "asymptotic_task_diversity_tiny_extrapolated.csv")
    check(ex, ("tau", "kappa", "observable", "value", "stderr", "theory"), ("theory",))
    for r in ex:
        if r["observable"] == "gap":
            continue
        want = float(asymptotic_test_mse(2.0, float(r["kappa"]), float(r["tau"]), 0.0,
                                         0.0625, r["observable"]))
        assert float(r["theory"]) == pytest.approx(want, rel=1e-7)
    # the Bayes ridge is the best in-context learner: below the ground state on novel tasks
    b = {(p["kappa"], p["observable"]): float(p["mean"]) for p in pts if p["kind"] == "bayes"}
    g = {(p["kappa"], p["observable"]): float(p["mean"]) for p in pts
         if p["kind"] == "ground_sampled"}
    assert all(b[k] < g[k] for k in b if k[1] == "novel")
    assert np.isfinite([float(p["mean"]) for p in pts]).all()
