"""`spinicl train` and `spinicl compare` as a user runs them (real subprocesses)."""

import json
import subprocess
import sys

import h5py
import pytest

TASK = ["--D", "3", "--N", "8", "--P", "200", "--test-prompts", "100", "--seed", "2"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "spinicl.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_train_json_keys_and_file(tmp_path):
    out = tmp_path / "t.h5"
    r = cli("train", *TASK, "--lam", "0.05", "--optimizer", "gd", "--epochs", "3000",
            "-o", str(out), "--json", "-q")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("final_energy", "train_mse", "test_mse_novel", "test_mse_in_distribution",
                "ground_state_energy", "ground_state_test_mse_novel",
                "relative_distance_to_ground_state", "cosine_to_ground_state", "alignment",
                "gd_cosine"):
        assert key in d, key
    # full-batch GD at its default step converges to the ground state m
    assert d["relative_distance_to_ground_state"] < 1e-6
    assert d["final_energy"] == pytest.approx(d["ground_state_energy"], rel=1e-10)
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == "spinicl-training"
        assert f["training/history/epoch"].shape[0] > 10


def test_torch_weight_decay_sets_half_lambda(tmp_path):
    r = cli("train", *TASK, "--torch-weight-decay", "0.01", "--epochs", "5",
            "-o", str(tmp_path / "t.h5"), "--json", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["lam"] == pytest.approx(0.005)
    both = cli("train", *TASK, "--lam", "0.01", "--torch-weight-decay", "0.01",
               "-o", str(tmp_path / "u.h5"))
    assert both.returncode == 2 and "--torch-weight-decay" in both.stderr


@pytest.mark.parametrize("args, flag", [(["--lr", "0"], "--lr"), (["--epochs", "0"], "--epochs"),
                                        (["--batch-size", "201"], "--batch-size"),
                                        (["--model", "factored", "--dk", "0"], "--dk")])
def test_bad_training_options(tmp_path, args, flag):
    r = cli("train", *TASK, *args, "-o", str(tmp_path / "t.h5"))
    assert r.returncode == 2 and flag in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_compare_table_json_and_refusals(tmp_path):
    run, tr = str(tmp_path / "r.h5"), str(tmp_path / "t.h5")
    assert cli("sample", *TASK, "--lam", "0.05", "--steps", "1000", "--burn-in", "200",
               "--temps", "1e-3:1e-1:3", "-o", run, "-q").returncode == 0
    assert cli("train", *TASK, "--lam", "0.05", "--epochs", "300", "-o", tr,
               "-q").returncode == 0
    r = cli("compare", run, tr, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["rows"]) == 3
    table = cli("compare", run, tr, "--plot", str(tmp_path / "fig2.png"))
    assert table.returncode == 0 and (tmp_path / "fig2.png").exists()
    other = str(tmp_path / "o.h5")
    assert cli("train", *TASK[:-1], "3", "--lam", "0.05", "--epochs", "5", "-o", other,
               "-q").returncode == 0
    bad = cli("compare", run, other)
    assert bad.returncode == 2 and "seed" in bad.stderr
    swapped = cli("compare", tr, run)
    assert swapped.returncode == 2 and "RUN_FILE" in swapped.stderr
