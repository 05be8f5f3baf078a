"""Hamiltonians: the energy is docs/model.md §1.3's, both representations agree, gradients are
the derivatives of the energy."""

import numpy as np
import pytest

from spinicl import ConfigError, make_task
from spinicl.models import (
    active_mask,
    alignment,
    build_model,
    choose_representation,
    gd_cosine,
    mse,
    predict,
)


@pytest.fixture(scope="module")
def task():
    return make_task(D=4, N=9, P=120, lam=0.03, sigma_eps=0.1, seed=5, test_prompts=40)


def _random_batch(n, R=5, scale=0.5, seed=0):
    return scale * np.random.default_rng(seed).standard_normal((R, n))


def test_energy_is_mean_squared_error_plus_weight_decay(task):
    model = build_model(task, representation="dense")
    W = _random_batch(model.n_spins)
    S, y = task.train.features(), task.train.y
    direct = 0.5 * np.mean((y[None] - W @ S.T) ** 2, axis=1) + 0.5 * 0.03 * np.sum(W**2, 1)
    np.testing.assert_allclose(model.energy(W), direct, rtol=1e-12)
    np.testing.assert_allclose(predict(W, task.train), W @ S.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(mse(W, task.train), 2 * (direct - 0.015 * np.sum(W**2, 1)),
                               rtol=1e-12)


def test_dense_and_matrix_free_agree_to_1e_10(task):
    dense = build_model(task, representation="dense")
    free = build_model(task, representation="matrix-free")
    assert (dense.representation, free.representation) == ("dense", "matrix-free")
    W = _random_batch(dense.n_spins, R=7)
    e1, g1 = dense.energy_and_grad(W)
    e2, g2 = free.energy_and_grad(W)
    np.testing.assert_allclose(e2, e1, rtol=1e-10)
    assert np.max(np.abs(g2 - g1)) <= 1e-10 * np.max(np.abs(g1))
    np.testing.assert_allclose(free.precision_product(W), W @ dense.precision(), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("model_name, rep", [("merged", "dense"), ("merged", "matrix-free"),
                                             ("factored", "dense"),
                                             ("factored", "matrix-free")])
def test_gradient_matches_central_finite_differences(task, model_name, rep):
    model = build_model(task, model_name, representation=rep, dk=3)
    W = _random_batch(model.n_spins, R=3, seed=1)
    _, g = model.energy_and_grad(W)
    eps = 1e-5
    rng = np.random.default_rng(2)
    for i in rng.choice(model.n_spins, size=8, replace=False):
        Wp, Wm = W.copy(), W.copy()
        Wp[:, i] += eps
        Wm[:, i] -= eps
        fd = (model.energy(Wp) - model.energy(Wm)) / (2 * eps)
        # central differences: error O(eps² · third derivative) — quartic model, O(1e-10)
        np.testing.assert_allclose(g[:, i], fd, rtol=1e-6, atol=1e-9)


def test_factored_model_is_merged_energy_of_the_product_plus_factor_decay(task):
    fm = build_model(task, "factored", dk=5, representation="dense")
    mm = build_model(task, "merged", lam=0.0, representation="dense")
    theta = _random_batch(fm.n_spins, R=4, seed=3)
    W = fm.effective_weights(theta)
    Wq, Wk = fm.split(theta)
    np.testing.assert_allclose(W[1].reshape(5, 5), Wq[1].T @ Wk[1], rtol=1e-13)
    expected = mm.energy(W) + 0.5 * fm.lam * np.sum(theta**2, axis=1)
    np.testing.assert_allclose(fm.energy(theta), expected, rtol=1e-12)
    # gauge symmetry: W_q → G W_q, W_k → G W_k with G orthogonal leaves E unchanged
    G, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 5)))
    rotated = fm.join(G @ Wq, G @ Wk)
    np.testing.assert_allclose(fm.energy(rotated), fm.energy(theta), rtol=1e-12)


def test_inactive_spins_feel_only_the_weight_decay(task):
    model = build_model(task, representation="dense")
    A = model.precision()
    inactive = ~active_mask(task.config.D)
    assert inactive.sum() == task.config.D + 1
    block = A[np.ix_(inactive, np.arange(A.shape[0]))]
    np.testing.assert_allclose(block, model.lam * np.eye(A.shape[0])[inactive], atol=1e-15)
    np.testing.assert_allclose(model.field[inactive], 0.0, atol=0)


def test_alignment_and_gd_cosine_of_the_identity():
    D = 4
    eye = np.eye(D + 1).ravel()[None]
    gd = np.diag(np.r_[np.ones(D), 0.0]).ravel()[None]
    np.testing.assert_allclose(alignment(eye), 1.0)
    np.testing.assert_allclose(gd_cosine(gd), 1.0)
    np.testing.assert_allclose(alignment(gd), np.sqrt(D / (D + 1)))


def test_representation_choice_follows_the_memory_budget():
    assert choose_representation(20, 10_000, "auto", "8GB") == "dense"
    assert choose_representation(20, 100, "auto", "8GB") == "matrix-free"  # P < n/2
    assert choose_representation(60, 10_000, "auto", "100MB") == "matrix-free"
    with pytest.raises(ConfigError) as info:
        choose_representation(60, 10_000, "dense", "100MB")
    assert info.value.param == "memory_budget"
    with pytest.raises(ConfigError):
        choose_representation(20, 10_000, "auto", "1KB")
    with pytest.raises(ConfigError):
        choose_representation(20, 10_000, "auto", "lots")
