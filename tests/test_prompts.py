"""Prompts: the generator follows docs/model.md §1.1 and is reproducible from one seed."""

import numpy as np
import pytest

from spinicl import ConfigError, TaskConfig, make_task
from spinicl.prompts import token_cholesky


def test_same_seed_same_task_and_streams_are_independent():
    a = make_task(D=4, N=8, P=50, seed=3, test_prompts=30)
    b = make_task(D=4, N=8, P=50, seed=3, test_prompts=30)
    np.testing.assert_array_equal(a.train.c, b.train.c)
    np.testing.assert_array_equal(a.test_novel.y, b.test_novel.y)
    # A bigger test set leaves the training prompts untouched (separate spawned streams).
    c = make_task(D=4, N=8, P=50, seed=3, test_prompts=60)
    np.testing.assert_array_equal(a.train.c, c.train.c)
    np.testing.assert_array_equal(a.test_novel.y, c.test_novel.y[:30])
    d = make_task(D=4, N=8, P=50, seed=4, test_prompts=30)
    assert not np.allclose(a.train.c, d.train.c)
    assert a.seeds["seed"] == 3 and set(a.seeds["streams"]) == {
        "task_pool", "train", "test_novel", "test_in_distribution"}


def test_factors_match_the_prompt_matrix_definition():
    """c = X_{D+1,:}Xᵀ/(N+1) with the query label masked, q = (x_q, 0), y = w·x_q/√D."""
    task = make_task(D=3, N=5, P=4, seed=0, test_prompts=7)
    ps = task.test_novel
    D, N = 3, 5
    for mu in range(ps.n_prompts):
        X = np.zeros((D + 1, N + 1))
        X[:D, :N] = ps.x_context[mu].T
        X[D, :N] = ps.y_context[mu]
        X[:D, N] = ps.x_query[mu]
        c = X[D, :] @ X.T / (N + 1)
        np.testing.assert_allclose(ps.c[mu], c, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(ps.q[mu], X[:, N], rtol=0, atol=0)
        np.testing.assert_allclose(ps.y[mu], ps.w[mu] @ ps.x_query[mu] / np.sqrt(D),
                                   rtol=1e-13)
        np.testing.assert_allclose(ps.y_context[mu], ps.x_context[mu] @ ps.w[mu] / np.sqrt(D),
                                   rtol=1e-12)
    # feature s = c ⊗ q, row-major
    S = ps.features()
    np.testing.assert_allclose(S[2].reshape(D + 1, D + 1), np.outer(ps.c[2], ps.q[2]))


def test_task_pool_and_in_distribution_tasks():
    task = make_task(D=4, N=6, P=40, K=3, seed=1, test_prompts=50)
    assert task.pool.shape == (3, 4)
    assert set(task.train.task_index) <= {0, 1, 2}
    ind = task.test_in_distribution
    np.testing.assert_array_equal(ind.w, task.pool[ind.task_index])
    assert np.all(task.test_novel.task_index == -1)
    full = make_task(D=4, N=6, P=40, seed=1, test_prompts=5)
    np.testing.assert_array_equal(full.train.task_index, np.arange(40))


def test_token_correlation_intended_and_paper_variant():
    """Intended: token covariance C = (1-ρ)I + ρ11ᵀ. Paper's code: LᵀL (C = LLᵀ)."""
    rho, D, N, n = 0.5, 2, 3, 20000
    L = token_cholesky(N + 1, rho)
    C = L @ L.T
    for variant, target in (("intended", C), ("paper", L.T @ L)):
        task = make_task(D=D, N=N, P=1, rho=rho, rho_variant=variant, seed=0, test_prompts=n)
        ps = task.test_novel
        tokens = np.concatenate([ps.x_context, ps.x_query[:, None, :]], axis=1)  # (n, N+1, D)
        v = tokens[:, :, 0]
        emp = v.T @ v / n
        # Wishart standard error of each entry: sqrt((C_ij² + C_ii C_jj)/n)
        se = np.sqrt((target**2 + np.outer(np.diag(target), np.diag(target))) / n)
        assert np.all(np.abs(emp - target) < 5 * se), variant
    assert not np.allclose(C, L.T @ L)


@pytest.mark.parametrize(
    "kw, param",
    [({"D": 0}, "D"), ({"N": 0}, "N"), ({"P": 0}, "P"), ({"K": 0}, "K"),
     ({"K": 11, "P": 10}, "K"), ({"sigma_x": 0}, "sigma_x"), ({"sigma_w": -1}, "sigma_w"),
     ({"sigma_eps": -0.1}, "sigma_eps"), ({"rho": 1.0}, "rho"), ({"rho": -0.5, "N": 4}, "rho"),
     ({"lam": -1}, "lam"), ({"seed": -1}, "seed"), ({"test_prompts": 0}, "test_prompts"),
     ({"rho_variant": "other"}, "rho_variant")],
)
def test_bad_parameters_name_themselves(kw, param):
    with pytest.raises(ConfigError) as info:
        TaskConfig(**kw)
    assert info.value.param == param
    assert param in str(info.value) and "must be" in str(info.value)


@pytest.mark.parametrize("kw", [{}, {"K": 7, "sigma_eps": 0.2}, {"rho": 0.3}])
def test_test_contexts_only_on_request_and_every_number_the_same(kw):
    """keep_test_context=False drops the raw test contexts (P_t·N·D doubles) and nothing
    else: the random streams, and so every kept array, are identical."""
    cfg = TaskConfig(D=4, N=6, P=700, seed=2, test_prompts=600, **kw)  # > one CHUNK
    full = make_task(cfg)
    lean = make_task(cfg, keep_test_context=False)
    np.testing.assert_array_equal(full.pool, lean.pool)
    for name in ("train", "test_novel", "test_in_distribution"):
        a, b = getattr(full, name), getattr(lean, name)
        for attr in ("c", "q", "y", "task_index"):
            np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    for name in ("test_novel", "test_in_distribution"):
        a, b = getattr(full, name), getattr(lean, name)
        np.testing.assert_array_equal(a.w, b.w)  # task vectors are kept (P_t·D)
        assert a.x_context.shape == (600, 6, 4) and a.y_context.shape == (600, 6)
        assert b.x_context is None and b.y_context is None
    assert full.seeds == lean.seeds


def test_keep_context_flags_must_be_booleans():
    for name in ("keep_test_context", "keep_train_context"):
        with pytest.raises(ConfigError) as info:
            make_task(D=2, N=3, P=5, test_prompts=2, **{name: "no"})
        assert info.value.param == name
