"""Training on the Hamiltonian's objective (docs/model.md §3): minibatch gradients are gradients of
the restricted energy, GD/Adam reach the exact ground states, the factored model reaches
the nuclear-norm optimum (not the ridge minimum), inputs are validated, runs reproduce."""

import math

import numpy as np
import pytest

from spinicl import ConfigError, make_task
from spinicl.models import DenseData, FactoredModel, MergedModel, build_model
from spinicl.prompts import PromptSet
from spinicl.theory.gaussian import factored_ground_state, gaussian_theory
from spinicl.training import (
    COMPARE_KEYS,
    TrainConfig,
    compare_to_ground_state,
    minibatch_model,
    torch_weight_decay_to_lam,
    train,
    training_seed_sequence,
)


@pytest.fixture(scope="module")
def small():
    return make_task(D=3, N=10, P=300, lam=0.05, sigma_eps=0.1, seed=4, test_prompts=200)


def _subset(prompts: PromptSet, idx: np.ndarray) -> PromptSet:
    return PromptSet(c=prompts.c[idx], q=prompts.q[idx], y=prompts.y[idx],
                     task_index=prompts.task_index[idx])


# ----------------------------------------------------------------------- minibatches
@pytest.mark.parametrize("model_name", ["merged", "factored"])
def test_minibatch_gradient_is_the_gradient_of_the_restricted_energy(small, model_name):
    model = build_model(small, model_name, dk=3, representation="dense")
    idx = np.random.default_rng(0).choice(small.config.P, size=17, replace=False)
    sub = _subset(small.train, idx)
    mb = minibatch_model(model, sub)
    theta = 0.4 * np.random.default_rng(1).standard_normal((3, model.n_spins))
    e, g = mb.energy_and_grad(theta)
    # E restricted to the minibatch, built independently from the dense features
    W = model.effective_weights(theta)
    S = sub.features()
    direct = (0.5 * np.mean((sub.y[None] - W @ S.T) ** 2, axis=1)
              + 0.5 * model.lam * np.sum(theta**2, axis=1))
    np.testing.assert_allclose(e, direct, rtol=1e-12)
    dense = DenseData.from_prompts(sub)
    ref = (MergedModel(dense, model.lam) if model_name == "merged"
           else FactoredModel(dense, model.lam, model.dk))
    e_ref, g_ref = ref.energy_and_grad(theta)
    np.testing.assert_allclose(e, e_ref, rtol=1e-11)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)
    eps = 1e-6
    for i in np.random.default_rng(2).choice(model.n_spins, size=6, replace=False):
        tp, tm = theta.copy(), theta.copy()
        tp[:, i] += eps
        tm[:, i] -= eps
        fd = (mb.energy(tp) - mb.energy(tm)) / (2 * eps)
        np.testing.assert_allclose(g[:, i], fd, rtol=1e-6, atol=1e-9)


def test_sgd_epoch_follows_minibatch_gradients_in_the_seeded_order(small):
    B, lr, seed = 40, 0.05, 9
    res = train(small, TrainConfig(optimizer="sgd", lr=lr, epochs=1, batch_size=B, seed=seed))
    model = build_model(small, representation="dense")
    init_seq, order_seq = training_seed_sequence(seed).spawn(2)
    theta = (np.random.Generator(np.random.PCG64(init_seq)).standard_normal(model.n_spins)
             / math.sqrt(small.config.D + 1))
    perm = np.random.Generator(np.random.PCG64(order_seq)).permutation(small.config.P)
    for s in range(0, small.config.P, B):
        sub = _subset(small.train, perm[s:s + B])
        g = MergedModel(DenseData.from_prompts(sub), model.lam).grad(theta[None])[0]
        theta = theta - lr * g
    np.testing.assert_allclose(res.theta, theta, rtol=1e-10, atol=1e-12)
    assert res.batch_size == B and res.history["epoch"].tolist() == [0, 1]


def test_sgd_with_the_full_batch_is_gradient_descent(small):
    gd = train(small, TrainConfig(optimizer="gd", lr=0.1, epochs=30))
    sgd = train(small, TrainConfig(optimizer="sgd", lr=0.1, epochs=30,
                                   batch_size=small.config.P))
    np.testing.assert_allclose(sgd.theta, gd.theta, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------- ground states
@pytest.mark.parametrize("rep", ["dense", "matrix-free"])
def test_full_batch_gd_converges_to_the_ground_state(small, rep):
    th = gaussian_theory(build_model(small, representation="dense"), small)
    res = train(small, TrainConfig(optimizer="gd", epochs=2500, record_every=50,
                                   representation=rep))
    assert res.lr is not None and not res.diverged
    assert np.linalg.norm(res.W - th.mean) / np.linalg.norm(th.mean) < 1e-6
    assert np.all(np.diff(res.history["energy"]) <= 1e-15)  # step 1/λ_max: monotone
    cmp = compare_to_ground_state(small, res)
    assert set(COMPARE_KEYS) <= set(cmp)
    assert cmp["ground_state_kind"] == "ridge"
    assert cmp["relative_distance_to_ground_state"] < 1e-6
    assert cmp["cosine_to_ground_state"] == pytest.approx(1.0, abs=1e-12)
    assert cmp["final_energy"] == pytest.approx(th.energy_ground, rel=1e-12)
    assert cmp["ground_state_test_mse_novel"] == pytest.approx(th.test_mse_ground["novel"],
                                                               rel=1e-10)
    assert cmp["test_mse_novel"] == pytest.approx(th.test_mse_ground["novel"], rel=1e-6)


def test_adam_reaches_the_ground_state_test_error_at_large_P():
    task = make_task(D=4, N=20, P=2000, lam=0.01, seed=1, test_prompts=1000)  # P ≫ n = 25
    th = gaussian_theory(build_model(task), task)
    res = train(task, TrainConfig(optimizer="adam", lr=0.01, epochs=1500, record_every=100))
    gs = th.test_mse_ground["novel"]
    assert abs(res.test_mse_novel - gs) / gs < 0.03
    assert res.history["test_mse_novel"][0] > 2 * gs  # it did learn from a random start


@pytest.fixture(scope="module")
def d4():
    """docs/model.md §1.5's setting: factored minimum 0.2909, merged E(m) = 0.2035."""
    return make_task(D=4, N=12, P=3000, lam=0.05, seed=0, test_prompts=300)


@pytest.mark.parametrize("optimizer, lr, epochs", [("gd", None, 1500), ("adam", 0.01, 1500)])
def test_factored_training_reaches_the_nuclear_norm_optimum_not_the_ridge_one(d4, optimizer,
                                                                             lr, epochs):
    fm = build_model(d4, "factored")
    gs = factored_ground_state(fm)
    e_merged = gaussian_theory(build_model(d4), d4).energy_ground
    res = train(d4, TrainConfig(optimizer=optimizer, lr=lr, epochs=epochs, model="factored",
                                record_every=100))
    assert res.dk == 5 and not res.diverged
    assert abs(res.energy - gs.energy) / gs.energy < 0.01
    assert res.energy > e_merged * 1.2  # clearly above the merged ridge minimum E(m)
    cmp = compare_to_ground_state(d4, res)
    assert cmp["ground_state_kind"] == "nuclear-norm"
    assert cmp["ground_state_energy"] == pytest.approx(gs.energy, rel=1e-12)
    assert cmp["relative_distance_to_ground_state"] < 0.05


def test_factored_and_merged_data_energies_meet_as_lambda_goes_to_zero(small):
    gaps = []
    for lam in (0.05, 1e-3):
        res = train(small, TrainConfig(optimizer="adam", lr=0.01, epochs=2000, model="factored",
                                       record_every=2000), lam=lam)
        merged = build_model(small, lam=lam, representation="dense")
        th = gaussian_theory(merged, small)
        gaps.append(abs(res.train_mse - th.train_mse_ground) / th.train_mse_ground)
    assert gaps[1] < 0.2 * gaps[0]
    assert gaps[1] < 0.01


def test_small_rank_compares_with_the_best_known_minimum(small):
    res = train(small, TrainConfig(optimizer="adam", lr=0.01, epochs=20, model="factored",
                                   dk=2))
    cmp = compare_to_ground_state(small, res)
    assert cmp["ground_state_kind"] in ("best known", "nuclear-norm")
    if cmp["ground_state_kind"] == "best known":
        assert "d_k" in cmp["ground_state_note"]
    assert math.isfinite(cmp["ground_state_energy"])
    assert math.isfinite(cmp["relative_distance_to_ground_state"])
    # 20 Adam epochs stay above the reference (a minimum of the same energy)
    assert cmp["final_energy"] >= cmp["ground_state_energy"] - 1e-12
    assert math.isfinite(cmp["final_energy"]) and math.isfinite(cmp["alignment"])


def test_zero_decay_compares_with_the_minimum_norm_interpolant(small):
    res = train(small, TrainConfig(optimizer="gd", epochs=50, init_scale=0.0), lam=0.0)
    cmp = compare_to_ground_state(small, res)
    assert cmp["ground_state_kind"] == "min-norm" and cmp["lam"] == 0.0
    assert cmp["final_energy"] >= cmp["ground_state_energy"] - 1e-12


# ----------------------------------------------------------------------- bookkeeping
def test_history_progress_and_result_fields(small):
    calls = []
    res = train(small, TrainConfig(optimizer="adam", epochs=10, record_every=3),
                progress=lambda k, n: calls.append((k, n)))
    assert calls == [(k, 10) for k in range(1, 11)]
    assert res.history["epoch"].tolist() == [0, 3, 6, 9, 10]
    assert {k: v.shape for k, v in res.history.items()} == {
        k: (5,) for k in ("epoch", "energy", "train_mse", "test_mse_novel",
                          "test_mse_in_distribution")}
    assert res.W.shape == (16,) and res.theta.shape == (16,)
    assert res.energy == res.history["energy"][-1] and res.epochs_run == 10
    assert res.lr == 1e-3 and res.seeds == {"seed": 0, "spawn_key": [11]}
    # the initial weights have the paper's scale N(0, 1/(D+1))
    w0 = train(small, TrainConfig(epochs=1, lr=1e-12)).theta
    assert 0.2 < np.std(w0) * math.sqrt(small.config.D + 1) < 2.0


def test_same_seed_same_result_and_other_seed_differs(small):
    cfg = TrainConfig(optimizer="sgd", epochs=3, batch_size=32, seed=5)
    a, b = train(small, cfg), train(small, cfg)
    np.testing.assert_array_equal(a.theta, b.theta)
    for k in a.history:
        np.testing.assert_array_equal(a.history[k], b.history[k])
    c = train(small, cfg.replace(seed=6))
    assert not np.array_equal(a.theta, c.theta)


def test_training_stream_is_not_a_task_stream(small):
    """SeedSequence(seed, spawn_key=(11,)) never coincides with the task's spawn(4)."""
    seed = small.config.seed
    task_states = [s.generate_state(4).tolist()
                   for s in np.random.SeedSequence(seed).spawn(4)]
    train_state = training_seed_sequence(seed).generate_state(4).tolist()
    assert train_state not in task_states


def test_divergence_stops_and_is_reported(small):
    res = train(small, TrainConfig(optimizer="gd", lr=1e3, epochs=500))
    assert res.diverged and res.epochs_run < 500


def test_torch_weight_decay_maps_to_half_lambda():
    assert torch_weight_decay_to_lam(0.01) == 0.005
    assert torch_weight_decay_to_lam(0) == 0.0
    with pytest.raises(ConfigError) as info:
        torch_weight_decay_to_lam(-1)
    assert info.value.param == "torch_weight_decay"


@pytest.mark.parametrize("kwargs, param", [
    ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"), ({"lr": float("nan")}, "lr"),
    ({"epochs": 0}, "epochs"), ({"epochs": 2.5}, "epochs"),
    ({"batch_size": 0}, "batch_size"), ({"dk": 0}, "dk"),
    ({"optimizer": "lbfgs"}, "optimizer"), ({"model": "mlp"}, "model"),
    ({"init_scale": -1.0}, "init_scale"), ({"record_every": 0}, "record_every"),
    ({"adam_beta2": 1.0}, "adam_beta2"),
])
def test_bad_config_raises_config_error_naming_the_parameter(kwargs, param):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kwargs)
    assert info.value.param == param


def test_batch_size_is_checked_against_P_and_lambda_against_zero(small):
    with pytest.raises(ConfigError) as info:
        train(small, TrainConfig(optimizer="sgd", batch_size=301, epochs=1))
    assert info.value.param == "batch_size" and "P = 300" in str(info.value)
    with pytest.raises(ConfigError) as info:
        train(small, TrainConfig(optimizer="gd", batch_size=10, epochs=1))
    assert info.value.param == "batch_size"
    with pytest.raises(ConfigError) as info:
        train(small, TrainConfig(epochs=1), lam=-0.1)
    assert info.value.param == "lam"
    with pytest.raises(ConfigError) as info:
        train(small, TrainConfig(epochs=1), theta0=np.zeros(5))
    assert info.value.param == "theta0"


def test_comparison_refuses_a_different_task(small):
    res = train(small, TrainConfig(epochs=2))
    other = make_task(small.config.replace(seed=small.config.seed + 1))
    with pytest.raises(ConfigError) as info:
        compare_to_ground_state(other, res)
    assert info.value.param == "task"
    # the task's λ does not enter the prompts: the same task at another λ is accepted
    assert compare_to_ground_state(make_task(small.config.replace(lam=0.2)), res)["lam"] == 0.05


def test_minibatch_divergence_stops_within_the_epoch(small):
    res = train(small, TrainConfig(optimizer="sgd", lr=1e3, epochs=50, batch_size=10,
                                   record_every=25))
    assert res.diverged and res.epochs_run < 25
    assert not np.isfinite(res.energy)
