"""ICL baselines: one-step GD (against its closed form), Bayes ridge, dMMSE."""

from __future__ import annotations

import numpy as np
import pytest

from spinicl.config import ConfigError
from spinicl.models import predict
from spinicl.prompts import PromptSet, make_task
from spinicl.theory.baselines import (
    BaselineResult,
    SetScore,
    baselines,
    bayes_ridge,
    dmmse,
    dmmse_predict,
    gd_feature,
    one_step_gd,
    one_step_gd_optimal_step,
    one_step_gd_theory,
    ridge_predict,
    score,
)


def _head(ps: PromptSet, n: int) -> PromptSet:
    """The first n prompts of a set."""
    return PromptSet(c=ps.c[:n], q=ps.q[:n], y=ps.y[:n], task_index=ps.task_index[:n],
                     w=ps.w[:n], x_context=ps.x_context[:n], y_context=ps.y_context[:n])


# --------------------------------------------------------------------------- one-step GD
@pytest.mark.parametrize("sigma_eps", [0.0, 0.5])
def test_one_step_gd_approaches_closed_form(sigma_eps):
    """ε_gd → s + σ² − N s/(N+D+1+Dσ²/s); (D+1)/(N+D+1) for noiseless labels.

    Over 20 seeds of this setting the z-scores (ε − theory)/stderr had |z| ≤ 2.5.
    """
    D, N = 4, 8
    task = make_task(D=D, N=N, P=20_000, sigma_eps=sigma_eps, seed=11, test_prompts=32_000)
    theory = one_step_gd_theory(D, N, sigma_eps=sigma_eps)
    if sigma_eps == 0:
        assert theory == pytest.approx((D + 1) / (N + D + 1))
    res = one_step_gd(task)
    assert res.eta == pytest.approx(one_step_gd_optimal_step(D, N, sigma_eps=sigma_eps),
                                    rel=0.03)
    errs = []
    for n in (2000, 8000, 32_000):
        ps = _head(task.test_novel, n)
        sc = score(res.eta * gd_feature(ps), ps)
        assert abs(sc.mse - theory) < 5 * sc.stderr
        errs.append(sc.stderr)
    assert errs[0] > errs[1] > errs[2]
    assert res.test_mse_novel == pytest.approx(sc.mse)
    assert abs(res.test_mse_in_distribution - theory) < 5 * res.test_mse_in_distribution_stderr


def test_one_step_gd_is_linear_attention_with_identity_block():
    task = make_task(D=5, N=10, P=500, seed=1, test_prompts=200)
    res = one_step_gd(task)
    W = res.W.reshape(6, 6)
    np.testing.assert_array_equal(W, np.diag([res.eta] * 5 + [0.0]))
    np.testing.assert_allclose(predict(res.W, task.test_novel)[0],
                               res.eta * gd_feature(task.test_novel), rtol=1e-12, atol=1e-14)
    # ŷ = η Σ_i y_i x_i·x_q/(N+1), from the raw context
    ps = task.test_novel
    direct = res.eta * np.einsum("pn,pnd,pd->p", ps.y_context, ps.x_context,
                                 ps.x_query) / 11
    np.testing.assert_allclose(res.eta * gd_feature(ps), direct, rtol=1e-12, atol=1e-14)
    # the fitted step minimises the training MSE along the line
    f, y = gd_feature(task.train), task.train.y
    loss = [np.mean((y - e * f) ** 2) for e in (0.99 * res.eta, res.eta, 1.01 * res.eta)]
    assert loss[1] < loss[0] and loss[1] < loss[2]


# --------------------------------------------------------------------------- ridge
def _posterior_mean(x: np.ndarray, y: np.ndarray, sigma_eps: float, sigma_w: float):
    """Explicit Gaussian posterior mean of w for one prompt (D × D form)."""
    D = x.shape[1]
    Z = x / np.sqrt(D)
    prec = Z.T @ Z / sigma_eps**2 + np.eye(D) / sigma_w**2
    return np.linalg.solve(prec, Z.T @ y / sigma_eps**2)


def test_ridge_noiseless_overdetermined_is_exact():
    task = make_task(D=5, N=12, P=50, seed=2, test_prompts=300)
    res = bayes_ridge(task)
    assert isinstance(res, BaselineResult)
    assert res.test_mse_novel < 1e-20
    assert res.test_mse_in_distribution < 1e-20


@pytest.mark.parametrize("D, N, sigma_eps, sigma_w",
                         [(5, 12, 0.3, 1.0), (6, 4, 0.3, 1.0), (6, 4, 0.2, 2.0)])
def test_ridge_matches_explicit_posterior(D, N, sigma_eps, sigma_w):
    task = make_task(D=D, N=N, P=50, sigma_eps=sigma_eps, sigma_w=sigma_w, seed=3,
                     test_prompts=40)
    ps = task.test_novel
    pred = ridge_predict(ps, sigma_eps, sigma_w)
    for p in range(0, 40, 7):
        w = _posterior_mean(ps.x_context[p], ps.y_context[p], sigma_eps, sigma_w)
        assert pred[p] == pytest.approx(ps.x_query[p] @ w / np.sqrt(D), rel=1e-9, abs=1e-12)
    sc = bayes_ridge(ps, sigma_eps=sigma_eps, sigma_w=sigma_w)
    assert isinstance(sc, SetScore)
    assert sc.mse == pytest.approx(np.mean((pred - ps.y) ** 2))
    assert bayes_ridge(task).test_mse_novel == pytest.approx(sc.mse)


def test_ridge_noiseless_underdetermined_is_min_norm():
    D, N = 6, 3
    task = make_task(D=D, N=N, P=50, seed=4, test_prompts=40)
    ps = task.test_novel
    pred = ridge_predict(ps, 0.0)
    for p in range(0, 40, 5):
        w, *_ = np.linalg.lstsq(ps.x_context[p] / np.sqrt(D), ps.y_context[p], rcond=None)
        assert pred[p] == pytest.approx(ps.x_query[p] @ w / np.sqrt(D), rel=1e-9, abs=1e-12)
    # and it is the small-noise limit of the posterior mean
    np.testing.assert_allclose(ridge_predict(ps, 1e-7), pred, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- dMMSE
@pytest.fixture(scope="module")
def pool_task():
    return make_task(D=6, N=4, P=200, K=2, sigma_eps=0.3, seed=5, test_prompts=2000)


def test_dmmse_matches_direct_posterior(pool_task):
    ps, pool, s = pool_task.test_novel, pool_task.pool, 0.3
    pred = dmmse_predict(ps, pool, s)
    D = pool.shape[1]
    for p in range(0, 2000, 250):
        resid = ps.y_context[p][None, :] - pool @ ps.x_context[p].T / np.sqrt(D)  # (K, N)
        logl = -np.sum(resid**2, axis=1) / (2 * s**2)
        post = np.exp(logl - logl.max())
        post /= post.sum()
        want = post @ (pool @ ps.x_query[p]) / np.sqrt(D)
        assert pred[p] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_dmmse_beats_ridge_in_distribution(pool_task):
    dm = dmmse(pool_task)
    ridge = bayes_ridge(pool_task)
    gap = ridge.test_mse_in_distribution - dm.test_mse_in_distribution
    se = np.hypot(ridge.test_mse_in_distribution_stderr, dm.test_mse_in_distribution_stderr)
    assert gap > 5 * se
    # the memorising predictor is near the noise floor σ² in distribution ...
    assert dm.test_mse_in_distribution < 2 * 0.3**2
    # ... and worse than ridge on novel tasks
    assert dm.test_mse_novel > ridge.test_mse_novel


def test_dmmse_refuses_where_undefined():
    task = make_task(D=3, N=4, P=50, sigma_eps=0.3, seed=0, test_prompts=10)
    with pytest.raises(ConfigError) as err:
        dmmse(task)
    assert err.value.param == "K"
    task = make_task(D=3, N=4, P=50, K=5, seed=0, test_prompts=10)
    with pytest.raises(ConfigError) as err:
        dmmse(task)
    assert err.value.param == "sigma_eps"


# --------------------------------------------------------------------------- summary
def test_baselines_keys(pool_task):
    base = {"baseline_gd_eta", "baseline_gd_test_mse_novel",
            "baseline_gd_test_mse_in_distribution", "baseline_bayes_test_mse_novel",
            "baseline_bayes_test_mse_in_distribution"}
    stderr = {k + "_stderr" for k in base if "mse" in k}
    out = baselines(make_task(D=3, N=6, P=100, seed=0, test_prompts=50))
    assert set(out) == base | stderr
    assert all(isinstance(v, float) for v in out.values())
    out = baselines(pool_task)
    dm = {"baseline_dmmse_test_mse_novel", "baseline_dmmse_test_mse_in_distribution"}
    assert set(out) == base | stderr | dm | {k + "_stderr" for k in dm}
    assert out["baseline_dmmse_test_mse_in_distribution"] == pytest.approx(
        dmmse(pool_task).test_mse_in_distribution)
    ps = pool_task.test_novel
    sq = (ridge_predict(ps, 0.3) - ps.y) ** 2
    assert out["baseline_bayes_test_mse_novel_stderr"] == pytest.approx(
        np.std(sq, ddof=1) / np.sqrt(sq.size))


def test_blocking_does_not_change_results(pool_task, monkeypatch):
    """Small blocks (many prompt blocks, one pool vector per chunk) give the same numbers."""
    import spinicl.theory.baselines as bl

    ps, pool = pool_task.test_in_distribution, pool_task.pool
    want_dm = dmmse_predict(ps, pool, 0.3)
    want_ridge = ridge_predict(ps, 0.3)
    monkeypatch.setattr(bl, "_BLOCK_ELEMENTS", 21)  # D(D+1)/2 = 21 at D = 6: k_chunk = 1
    np.testing.assert_allclose(dmmse_predict(ps, pool, 0.3), want_dm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ridge_predict(ps, 0.3), want_ridge, rtol=1e-12, atol=1e-14)


def test_baselines_without_test_contexts_name_what_is_missing():
    lean = make_task(D=3, N=4, P=50, seed=0, test_prompts=10, keep_test_context=False)
    full = make_task(D=3, N=4, P=50, seed=0, test_prompts=10)
    # one-step GD needs only the factors c, q: the same numbers without the contexts
    assert one_step_gd(lean).test_mse_novel == one_step_gd(full).test_mse_novel
    with pytest.raises(ConfigError) as err:
        bayes_ridge(lean)
    assert err.value.param == "prompts" and "keep_test_context=True" in str(err.value)
