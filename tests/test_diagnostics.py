"""Autocorrelation time, ESS, standard errors and split R-hat."""

from __future__ import annotations

import numpy as np
import pytest

from spinicl import ConfigError
from spinicl.diagnostics import (
    autocorrelation,
    ess,
    split_rhat,
    stderr,
    summarize,
    tau_int,
    tau_int_stderr,
)

Z = 4.5


def ar1(phi: float, n: int, chains: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, chains))
    x = np.empty_like(e)
    x[0] = e[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_tau_int_of_ar1(phi):
    x = ar1(phi, 100_000)[:, 0]
    exact = (1 + phi) / (1 - phi)
    tau = tau_int(x)
    assert abs(tau - exact) < Z * tau_int_stderr(x), (tau, exact)
    assert abs(tau_int(x, method="geyer") - exact) < Z * tau_int_stderr(x)
    assert ess(x) == pytest.approx(x.size / tau)


def test_iid_and_array_and_chains():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 3))
    taus = tau_int(x)
    assert taus.shape == (3,)
    assert np.all(np.abs(taus - 1) < Z * np.sqrt(2 * 11 / 20_000))
    s = summarize(x)
    assert s["n"] == 60_000 and abs(s["tau_int"] - 1) < 0.1
    assert s["stderr"] == pytest.approx(np.sqrt(x.var(ddof=1) / s["ess"]))
    assert abs(s["mean"]) < Z * s["stderr"]
    assert abs(s["rhat"] - 1) < 0.01
    np.testing.assert_allclose(stderr(x), x.std(axis=0, ddof=1) / np.sqrt(ess(x)))
    assert autocorrelation(x[:, 0])[0] == pytest.approx(1.0)


def test_stderr_covers_the_truth_for_correlated_chains():
    """Over many AR(1) replicas, (mean − 0)/stderr has unit variance."""
    zs = []
    for seed in range(60):
        x = ar1(0.8, 5000, seed=seed)[:, 0]
        s = summarize(x)
        zs.append(s["mean"] / s["stderr"])
    zs = np.array(zs)
    # the variance of 60 unit normals lies in [0.55, 1.6] with probability > 0.999
    assert 0.55 < zs.var() < 1.6, zs.var()


def test_split_rhat_detects_unmixed_chains():
    x = ar1(0.5, 4000, chains=4, seed=2)
    assert split_rhat(x) < 1.01
    y = x + np.array([0.0, 0.0, 3.0, 3.0])
    assert split_rhat(y) > 1.5
    trend = x + np.linspace(0, 5, 4000)[:, None]   # within-chain drift: split halves catch it
    assert split_rhat(trend) > 1.2


def test_constant_and_bad_input():
    assert tau_int(np.ones(100)) == 1.0
    with pytest.raises(ConfigError) as e:
        tau_int(np.ones(10), method="magic")
    assert e.value.param == "method"
    with pytest.raises(ConfigError) as e:
        summarize(np.ones(1))
    assert e.value.param == "series"
    with pytest.raises(ConfigError) as e:
        split_rhat(np.ones((3, 2)))
    assert e.value.param == "chains"
