"""Training files and `compare` (docs/model.md §3–4): the /training round trip, refusals of foreign
files and of pairs made from other prompts or another model, and where trained weights sit
among the Boltzmann samples — an exact draw near the median, the ground state below every
sample — plus the Fig. 2 figure."""

import dataclasses
import json
import math

import h5py
import numpy as np
import pytest

from spinicl import make_task
from spinicl.analysis.compare import (
    compare_run_and_training,
    format_compare_table,
    percentile_of,
    z_score,
)
from spinicl.config import ConfigError, SampleConfig, TaskConfig
from spinicl.io.training_file import read_training, write_training
from spinicl.models import build_model
from spinicl.plots import plot_weights_and_losses
from spinicl.runner import run_sample
from spinicl.theory.gaussian import gaussian_theory
from spinicl.training import (
    HISTORY_KEYS,
    TrainConfig,
    compare_to_ground_state,
    train,
)

TASK = TaskConfig(D=3, N=10, P=200, lam=0.05, test_prompts=200, seed=7)
TEMPS = (1e-3, 1e-2, 1e-1)
STEPS, BURN = 400, 20


def _run(path, **kw):
    base = {"task": TASK, "sampler": "exact", "temperatures": TEMPS, "copies": 2,
            "steps": STEPS, "burn_in": BURN, "record_every": 1, "snapshot_every": 1,
            "flush_every": 100}
    base.update(kw)
    res = run_sample(SampleConfig(**base), str(path), progress=False)
    assert res.status == "complete", res.message
    return str(path)


def _write(path, task, result, **kw):
    return write_training(str(path), task, result, compare_to_ground_state(task, result),
                          **kw)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A task, an exact-sampler run with snapshots, and a GD ground-state training file."""
    d = tmp_path_factory.mktemp("compare")
    task = make_task(TASK)
    gd = train(task, TrainConfig(optimizer="gd", epochs=3000, record_every=10), lam=TASK.lam)
    return {"dir": d, "task": task, "gd": gd, "run": _run(d / "run.h5"),
            "train": _write(d / "gd.h5", task, gd)}


# ----------------------------------------------------------------------- training file
def test_training_file_round_trip_and_refusal_to_overwrite(env, tmp_path):
    task, gd = env["task"], env["gd"]
    cmp = compare_to_ground_state(task, gd)
    path = write_training(str(tmp_path / "t.h5"), task, gd, cmp, command_line="spinicl train")
    back = read_training(path)
    np.testing.assert_array_equal(back["W"], gd.W)
    np.testing.assert_array_equal(back["theta"], gd.theta)
    assert set(back["history"]) == set(HISTORY_KEYS)
    for k in HISTORY_KEYS:
        np.testing.assert_array_equal(back["history"][k], gd.history[k])
    assert back["task_config"] == task.config.to_dict()
    assert back["train_config"] == gd.config and back["lam"] == gd.lam
    assert back["model"] == "merged" and back["dk"] is None
    for k, v in cmp.items():
        assert back["compare"][k] == v, k
    assert back["summary"]["epochs_run"] == gd.epochs_run
    assert back["seeds"]["train"] == gd.seeds and back["seeds"]["task"] == task.seeds
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "spinicl-training" and f.attrs["format_version"] == 1
        assert f.attrs["command_line"] == "spinicl train"
        assert json.loads(f.attrs["config"])["lam"] == gd.lam
        assert f["training/W"].shape == ((TASK.D + 1) ** 2,)
    with pytest.raises(ConfigError) as exc:
        write_training(path, task, gd, cmp)
    assert exc.value.param == "out" and "--force" in str(exc.value)
    write_training(path, task, gd, {"note": "again"}, force=True)
    assert read_training(path)["compare"] == {"note": "again"}
    assert not (tmp_path / "t.h5.tmp").exists()


def test_training_file_of_another_task_is_refused(env, tmp_path):
    other = make_task(TASK.replace(seed=8))
    with pytest.raises(ConfigError) as exc:
        write_training(str(tmp_path / "t.h5"), other, env["gd"], {})
    assert exc.value.param == "task"


def test_read_training_refuses_missing_foreign_and_corrupt_files(env, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    corrupt = tmp_path / "corrupt.h5"
    with h5py.File(corrupt, "w") as f:
        f.attrs["format"] = "spinicl-training"
        f.attrs["config"] = "{}"
    for path, note in ((tmp_path / "missing.h5", "no such file"), (text, "not an HDF5"),
                       (env["run"], "spinicl-run"), (corrupt, "corrupt")):
        with pytest.raises(ConfigError) as exc:
            read_training(path)
        assert exc.value.param == "path" and "format=spinicl-training" in str(exc.value)
        assert note in str(exc.value)


# ----------------------------------------------------------------------- refusals
def test_compare_refuses_files_that_are_not_runs_or_trainings(env, tmp_path):
    text = tmp_path / "x.h5"
    text.write_text("nope")
    cases = ((env["train"], env["train"], "run"), (str(text), env["train"], "run"),
             (env["run"], env["run"], "train"), (env["run"], str(tmp_path / "no.h5"), "train"))
    for run, tr, param in cases:
        with pytest.raises(ConfigError) as exc:
            compare_run_and_training(run, tr)
        assert exc.value.param == param


@pytest.mark.parametrize("change", [{"seed": 8}, {"N": 11}, {"sigma_eps": 0.1}])
def test_compare_refuses_a_pair_made_from_other_prompts(env, tmp_path, change):
    task = make_task(TASK.replace(**change))
    res = train(task, TrainConfig(optimizer="gd", epochs=5))
    path = _write(tmp_path / "other.h5", task, res)
    with pytest.raises(ConfigError) as exc:
        compare_run_and_training(env["run"], path)
    assert exc.value.param == "train"
    assert next(iter(change)) in str(exc.value) and "prompts" in str(exc.value)
    with pytest.raises(ConfigError):
        plot_weights_and_losses(env["run"], path, tmp_path / "f.png")


def test_compare_refuses_another_model(env, tmp_path):
    task = env["task"]
    res = train(task, TrainConfig(optimizer="adam", model="factored", epochs=5))
    path = _write(tmp_path / "fac.h5", task, res)
    with pytest.raises(ConfigError) as exc:
        compare_run_and_training(env["run"], path)
    assert exc.value.param == "train" and "factored" in str(exc.value)


def test_different_lambda_is_reported_not_refused(env, tmp_path):
    task = env["task"]
    res = train(task, TrainConfig(optimizer="gd", epochs=50), lam=0.02)
    d = compare_run_and_training(env["run"], _write(tmp_path / "lam.h5", task, res))
    assert d["lam_run"] == TASK.lam and d["lam_train"] == 0.02
    assert any("lambda" in w for w in d["warnings"])
    # energies use the run's Hamiltonian (λ = 0.05), not the training λ
    model = build_model(task, "merged", lam=TASK.lam)
    assert d["trained"]["energy"] == pytest.approx(float(model.energy(res.W[None])[0]),
                                                   rel=1e-12)
    assert "warning: different weight decay" in format_compare_table(d)


# ----------------------------------------------------------------------- statistics
def test_percentile_and_z_score_definitions():
    s = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    assert percentile_of(s, 0.5) == 0.0 and percentile_of(s, 5.0) == 100.0
    assert percentile_of(s, 2.5) == 50.0 and percentile_of(s, 2.0) == 37.5  # tie: half
    assert z_score(s, 2.5) == 0.0
    assert z_score(s, 2.5 + np.std([1, 2, 3, 4], ddof=1)) == pytest.approx(1.0)
    assert math.isnan(percentile_of(np.array([np.nan]), 1.0))


def test_exact_draws_sit_at_the_median_of_the_samples(env, tmp_path):
    """An independent exact draw W ~ p_β is exchangeable with the run's exact samples, so
    the percentile of any statistic f(W) (energy, test MSE) among n samples is uniform on
    [0, 100] (up to 1/n): mean 50, variance 100²/12. Over J independent draws compared
    with the *same* n samples, the mean percentile is 100·(1/J)Σ_j F̂_n(f(W_j)), whose
    variance is 100²·[1/(12J) + 1/(12n)]: the conditional variance of J uniforms plus the
    fluctuation of ∫F̂_n dF = mean of n uniforms (the samples are i.i.d. for the exact
    sampler). We require the mean within 4 standard deviations of 50."""
    task, gd, run = env["task"], env["gd"], env["run"]
    beta = 1.0 / min(TEMPS)
    theory = gaussian_theory(build_model(task, "merged"), task)
    draws = theory.sample(beta, 20, np.random.default_rng(2024))
    pct = {"energy": [], "test_mse_novel": []}
    for j, w in enumerate(draws):
        fake = dataclasses.replace(gd, W=w.copy(), theta=w.copy())
        path = write_training(str(tmp_path / f"draw{j}.h5"), task, fake, {})
        d = compare_run_and_training(run, path)
        row = d["rows"][0]
        assert row["T"] == pytest.approx(min(TEMPS))
        for k, values in pct.items():
            values.append(row[f"{k}_percentile"])
    n = d["rows"][0]["n_samples"]
    assert n == STEPS * 2  # post-burn-in records × copies
    sd = 100.0 * math.sqrt(1.0 / (12 * len(draws)) + 1.0 / (12 * n))
    for k, v in pct.items():
        assert abs(np.mean(v) - 50.0) < 4 * sd, (k, np.mean(v), sd, v)


def test_ground_state_sits_below_every_sample(env):
    """E(m) is the minimum of E: every sample lies above it (percentile 0) and, since
    E(W) − E(m) = χ²_n/(2β) for W ~ p_β, its z-score is −√(n/2) at every temperature."""
    d = compare_run_and_training(env["run"], env["train"])
    n = (TASK.D + 1) ** 2
    assert d["mean_source"] == "snapshots" and d["warnings"] == []
    assert d["temperatures"] == pytest.approx(list(TEMPS))
    assert d["trained"]["relative_distance_to_m"] < 1e-8
    for row in d["rows"]:
        assert row["energy_percentile"] == 0.0
        assert row["energy_z"] == pytest.approx(-math.sqrt(n / 2), rel=0.15)
        assert row["energy_exact"] == pytest.approx(row["energy_mean"], rel=0.1)
        # m is the true mean: it sits within the estimated error of the sampled one
        assert row["distance_to_mean"] <= 4 * row["mean_error"]
        assert row["mean_error"] < row["sample_distance_to_mean"]
        assert row["n_mean_samples"] == STEPS * 2
    hot = d["rows"][-1]
    assert hot["test_mse_novel_percentile"] < 5 and hot["test_mse_novel_z"] < -1
    json.dumps(d, allow_nan=False)  # JSON-ready
    table = format_compare_table(d)
    assert table.count("\n") >= 10 and "0.1" in table and "snapshots" in table


def test_without_snapshots_the_exact_mean_is_used(env, tmp_path):
    run = _run(tmp_path / "nosnap.h5", snapshot_every=0, steps=300)
    d = compare_run_and_training(run, env["train"])
    assert d["mean_source"] == "exact"
    task = env["task"]
    model = build_model(task, "merged")
    theory = gaussian_theory(model, task)
    tr_inv = float(np.trace(np.linalg.inv(model.precision())))
    for row, temp in zip(d["rows"], TEMPS, strict=True):
        assert row["distance_to_mean"] == pytest.approx(d["trained"]["relative_distance_to_m"])
        assert row["mean_error"] == 0 and row["n_mean_samples"] == 0
        # RMS distance of the samples to m: E‖W − m‖² = tr(A⁻¹)·T
        expected = math.sqrt(tr_inv * temp) / np.linalg.norm(theory.mean)
        assert row["sample_distance_to_mean"] == pytest.approx(expected, rel=0.1)


def test_factored_pair_with_and_without_snapshots(env, tmp_path):
    task = env["task"]
    res = train(task, TrainConfig(optimizer="adam", model="factored", epochs=300, lr=1e-2))
    path = _write(tmp_path / "fac.h5", task, res)
    kw = {"model": "factored", "sampler": "mala", "steps": 600, "burn_in": 200,
          "record_every": 4}
    with_snap = compare_run_and_training(_run(tmp_path / "f1.h5", **kw), path)
    assert with_snap["mean_source"] == "snapshots" and with_snap["dk"] == TASK.D + 1
    for row in with_snap["rows"]:
        assert row["n_samples"] == 2 * 600 // 4
        assert row["distance_to_mean"] > 0 and row["mean_error"] > 0
    assert with_snap["trained"]["relative_distance_to_m"] is None
    without = compare_run_and_training(_run(tmp_path / "f0.h5", snapshot_every=0, **kw), path)
    assert without["mean_source"] == "none"
    assert all(r["distance_to_mean"] is None for r in without["rows"])
    assert without["rows"][0]["energy_percentile"] == with_snap["rows"][0]["energy_percentile"]
    out = plot_weights_and_losses(tmp_path / "f0.h5", path, tmp_path / "fac.png")
    assert len(out) == 2


# ----------------------------------------------------------------------- figure
def test_figure_is_written_and_not_blank(env, tmp_path):
    import matplotlib.image as mpimg

    paths = plot_weights_and_losses(env["run"], env["train"], tmp_path / "fig2.png",
                                    temperature=0.1)
    assert paths == [str(tmp_path / "fig2.png"), str(tmp_path / "fig2.pdf")]
    img = mpimg.imread(paths[0])
    assert img.shape[0] > 300 and img.shape[1] > 3 * img.shape[0] // 2
    rgb = img[..., :3]
    assert rgb.std() > 0.1 and (rgb < 0.5).mean() > 0.01  # ink, not a blank page
    with open(paths[1], "rb") as fh:
        head = fh.read(5)
    assert head == b"%PDF-"
    assert (tmp_path / "fig2.pdf").stat().st_size > 5000


def test_figure_refuses_a_temperature_off_the_ladder_and_a_bad_suffix(env, tmp_path):
    with pytest.raises(ConfigError) as exc:
        plot_weights_and_losses(env["run"], env["train"], tmp_path / "f.png", temperature=5.0)
    assert exc.value.param == "temperature"
    with pytest.raises(ConfigError) as exc:
        plot_weights_and_losses(env["run"], env["train"], tmp_path / "f.jpg")
    assert exc.value.param == "out"


def test_snapshot_statistics_do_not_depend_on_the_chunk_size(env):
    from spinicl.analysis.compare import boltzmann_means, load_pair

    pair = load_pair(env["run"], env["train"])
    whole, tiny = pair.means, boltzmann_means(pair, chunk_bytes=1)
    np.testing.assert_allclose(tiny.means, whole.means, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tiny.spread, whole.spread, rtol=1e-9)
    np.testing.assert_allclose(tiny.noise, whole.noise, rtol=1e-9)
    # direct computation from the raw snapshots
    with h5py.File(env["run"], "r") as f:
        start, stop = pair.snap_range
        W = f["snapshots/W"][start:stop]  # (S, T, M, n), merged: W itself
    np.testing.assert_allclose(whole.means, W.mean(axis=(0, 2)), rtol=1e-12, atol=1e-15)
    d = W - W.mean(axis=(0, 2))[None, :, None]
    rms = np.sqrt(np.mean(np.sum(d**2, axis=-1), axis=(0, 2)))
    np.testing.assert_allclose(whole.spread, rms / np.linalg.norm(whole.means, axis=1),
                               rtol=1e-8)
    assert stop - start == STEPS  # the snapshots of the burn-in records are left out
