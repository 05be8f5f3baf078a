"""The factored phase-diagram script (``scripts/factored_phase.py``): its estimators and an
end-to-end run at the hidden ``--tiny`` size.

* The Binder cumulant g = ½(3 − ⟨q⁴⟩/⟨q²⟩²) and its pair-aware error are 3/2 times the
  run file's B = 1 − ⟨q⁴⟩/(3⟨q²⟩²) and error (``spinicl.runner``), computed independently.
* The block-jackknife shape statistics equal the direct sample moments, and on exact
  Gaussian draws the bimodality coefficient is 1/3 within its jackknife error; two
  separated peaks give more than 5/9.
* The script's CSV files: columns, finite values; the merged reference measured from exact
  draws agrees with the closed forms (C = n/2, Binder, q/Q) within its own errors; every
  P(q) is normalised; g ≤ 1 (⟨q⁴⟩ ≥ ⟨q²⟩²); the sampled energies lie above the
  nuclear-norm lower bound of the factored energy.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest
from scipy import stats
from test_scripts import SCRIPTS, check, figures, num, read, run_script

#: Largest |z| accepted where a handful of z-scores are compared with 0.
Z_MAX = 4.5


def _module():
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("factored_phase",
                                                  SCRIPTS / "factored_phase.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """AR(1) series along axis 0 with unit stationary variance (started stationary)."""
    from scipy.signal import lfilter

    noise = rng.standard_normal(shape) * math.sqrt(1 - phi**2)
    noise[0] = rng.standard_normal(shape[1:])
    return lfilter([1.0], [1.0, -phi], noise, axis=0)


def test_binder_matches_run_file_estimator():
    from spinicl.analysis.thermo import binder_cumulant

    fp = _module()
    rng = np.random.default_rng(20261130)
    q = 0.4 + 0.2 * _ar1(rng, (500, 3, 6), 0.8)
    g, se = fp.binder(q)
    B, se_B = binder_cumulant(q)
    assert g == pytest.approx(1.5 * B, rel=1e-12)
    assert se == pytest.approx(1.5 * se_B, rel=1e-10)
    assert np.all(se > 0)


def test_shape_statistics():
    fp = _module()
    rng = np.random.default_rng(7)
    x = _ar1(rng, (2000, 2, 3), 0.5)
    out = fp.jackknife_shape(x)
    for k in range(2):
        v = x[:, k, :].ravel()
        direct = (stats.skew(v) ** 2 + 1) / stats.kurtosis(v, fisher=False)
        assert out["overlap_ratio"][0][k] == pytest.approx(v.mean(), abs=1e-12)
        assert out["width"][0][k] == pytest.approx(v.std(), rel=1e-10)
        assert out["bimodality"][0][k] == pytest.approx(direct, rel=1e-10)
        # Gaussian: BC = 1/3 exactly; the jackknife error sets the tolerance
        bc, se = out["bimodality"][0][k], out["bimodality"][1][k]
        assert abs(bc - 1 / 3) < Z_MAX * se
    two = np.where(rng.random((1000, 1, 2)) < 0.5, 0.0, 1.0)
    two = two + 0.05 * rng.standard_normal(two.shape)
    assert fp.jackknife_shape(two)["bimodality"][0][0] > 5 / 9


def test_factored_phase_tiny(tmp_path):
    run_script("factored_phase.py", tmp_path, "--tiny", "--jobs", "1")
    stem = "factored_phase_tiny"
    figures(tmp_path, stem)
    rungs = read(tmp_path / f"{stem}_rungs.csv")
    stat_cols = ("energy", "heat_capacity", "binder", "overlap_ratio", "width", "bimodality")
    check(rungs, ("model", "sampler", "D", "dk", "alpha", "seed", "rung", "T", "n_spins",
                  *stat_cols, *(f"{c}_stderr" for c in stat_cols)),
          ("T", *stat_cols, "binder_stderr", "heat_capacity_stderr"))
    merged = [r for r in rungs if r["model"] == "merged"]
    factored = [r for r in rungs if r["model"] == "factored"]
    assert merged and factored
    assert {r["sampler"] for r in factored} == {"gibbs", "mala"}
    # the merged reference: exact draws through the same estimators against closed forms
    C, C_se, n = num(merged, "heat_capacity"), num(merged, "heat_capacity_stderr"), \
        num(merged, "n_spins")
    assert np.all(np.abs(C - n / 2) < Z_MAX * C_se)
    for obs in ("binder", "overlap_ratio", "energy"):
        z = (num(merged, obs) - num(merged, f"exact_{obs}")) / num(merged, f"{obs}_stderr")
        assert np.all(np.abs(z) < Z_MAX), (obs, z)
    # g ≤ 1 because ⟨q⁴⟩ ≥ ⟨q²⟩²
    assert np.all(num(rungs, "binder") <= 1 + 1e-12)
    # P(q/Q̄) normalised on its edges, plus what fell outside (CSV values carry 8
    # significant digits: 100 bins sum to 1 within ~1e-7)
    pq = read(tmp_path / f"{stem}_pq.csv")
    check(pq, ("model", "D", "dk", "alpha", "rung", "T", "q_low", "q_high", "density",
               "outside"), ("density", "outside"))
    groups: dict[tuple, float] = {}
    for p in pq:
        key = (p["model"], p["dk"], p["alpha"], p["rung"])
        groups[key] = groups.get(key, float(p["outside"])) + float(p["density"]) * (
            float(p["q_high"]) - float(p["q_low"]))
    assert len(groups) >= 2 and all(v == pytest.approx(1.0, abs=1e-6)
                                    for v in groups.values())
    runs = read(tmp_path / f"{stem}_runs.csv")
    check(runs, ("sampler", "D", "dk", "alpha", "seed", "sampler_seed", "energy_ground",
                 "reference_kind", "swap_min", "round_trips_min", "halves_rms_z",
                 "cold_energy", "nuclear_norm_bound", "harmonic_heat_capacity"),
          ("energy_ground", "swap_min", "halves_rms_z", "cold_energy"))
    # every factored energy is bounded below by the nuclear-norm problem
    assert np.all(num(runs, "cold_energy") > num(runs, "nuclear_norm_bound"))
    assert np.all(num(runs, "energy_ground") >= num(runs, "nuclear_norm_bound") - 1e-12)
    points = read(tmp_path / f"{stem}_points.csv")
    check(points, ("model", "sampler", "D", "dk", "alpha", "T", "observable", "mean", "sd",
                   "sem", "seeds", "within_stderr"), ("T", "mean"))
    assert {p["observable"] for p in points} >= {"binder", "heat_capacity_per_spin",
                                                 "overlap_ratio", "bimodality"}
    cross = read(tmp_path / f"{stem}_crossover.csv")
    check(cross, ("model", "D", "dk", "alpha", "log10_T_half", "log10_T_heat_peak",
                  "heat_peak_per_spin"))
    chk = read(tmp_path / f"{stem}_check.csv")
    check(chk, ("T", "observable", "mala", "mala_stderr", "gibbs", "gibbs_stderr", "z"),
          ("mala", "gibbs"))
    assert {c["observable"] for c in chk} == {"energy", "heat_capacity", "binder",
                                              "overlap_ratio"}
