"""``spinicl export-target``: the target file's layout, re-read with h5py and re-derived."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from spinicl.config import TaskConfig
from spinicl.io.target_file import LOG_DENSITY, TARGET_FORMAT, write_target_file
from spinicl.targets import TARGETS, Target, build_target


def _export(name: str, out, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spinicl.cli", "export-target", name,
                           "-o", str(out), *extra], check=False, capture_output=True,
                          text=True, timeout=300)


def test_merged_file_rederived(tmp_path):
    out = tmp_path / "target.h5"
    r = _export("tiny-merged", out)
    assert r.returncode == 0, r.stderr
    t = TARGETS["tiny-merged"]
    with h5py.File(out, "r") as f:
        a = f.attrs
        assert a["format"] == TARGET_FORMAT and a["name"] == "tiny-merged"
        assert a["log_density"] == LOG_DENSITY["merged"]
        assert json.loads(a["task_config"]) == t.task.to_dict()
        assert a["beta"] == t.beta and a["n"] == t.n and a["seed"] == t.task.seed
        A, h, e0 = f["A"][()], f["h"][()], float(f["e0"][()])
        mean, cdiag = f["mean"][()], f["covariance_diagonal"][()]
        spec = f["covariance_spectrum"][()]
        energy_mean, energy_ground = a["energy_mean"], a["energy_ground"]
        # as the layout says: the energy references are root attributes, the slowest
        # mode carries its eigenvalue
        assert {"energy_mean", "energy_variance", "energy_ground", "condition_number",
                "slowest_eigenvalue"} <= set(a)
        assert set(f["slowest_mode"].attrs) == {"slowest_eigenvalue"}
    beta, n = t.beta, t.n
    np.testing.assert_allclose(np.linalg.solve(A, h), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.diag(np.linalg.inv(beta * A)), cdiag, rtol=1e-10)
    np.testing.assert_allclose(np.sort(1 / (beta * np.linalg.eigvalsh(A)))[::-1], spec,
                               rtol=1e-10)
    # the log density's energy at the mean is E(m), and <E> = E(m) + n/(2β)
    e_m = 0.5 * mean @ A @ mean - h @ mean + e0
    assert e_m == pytest.approx(energy_ground, rel=1e-10)
    assert energy_mean == pytest.approx(e_m + n / (2 * beta), rel=1e-10)
    # the model's own energy agrees with the file's formula away from the mean
    model, _ = build_target("tiny-merged")
    w = np.random.default_rng(0).standard_normal(n)
    assert 0.5 * w @ A @ w - h @ w + e0 == pytest.approx(
        float(model.energy(w[None])[0]), rel=1e-12)


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "target.h5"
    out.write_bytes(b"someone else's file")
    r = _export("tiny-merged", out)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("spinicl: error: --out must be a new file")
    assert out.read_bytes() == b"someone else's file"
    assert _export("tiny-merged", out, "--force").returncode == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == TARGET_FORMAT


def test_bad_name_exits_2(tmp_path):
    r = _export("no-such-target", tmp_path / "x.h5")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "NAME" in r.stderr
    assert not (tmp_path / "x.h5").exists()


def test_factored_file_ground_energy_from_the_gram(tmp_path):
    out = tmp_path / "f.h5"
    assert _export("tiny-factored", out).returncode == 0
    with h5py.File(out, "r") as f:
        a = f.attrs
        assert a["log_density"] == LOG_DENSITY["factored"]
        gram, h, e0 = f["gram"][()], f["h"][()], float(f["e0"][()])
        theta, W = f["ground_state"][()], f["ground_state_W"][()]
        kind, e_ground = f["ground_state"].attrs["ground_state_kind"], a["energy_ground"]
        dk, D, lam = int(a["dk"]), int(a["D"]), float(a["lam"])
    assert kind == "best known"
    d1 = D + 1
    Wq, Wk = theta[: dk * d1].reshape(dk, d1), theta[dk * d1:].reshape(dk, d1)
    np.testing.assert_allclose((Wq.T @ Wk).ravel(), W, atol=1e-12)
    energy = 0.5 * W @ gram @ W - h @ W + e0 + 0.5 * lam * theta @ theta
    assert energy == pytest.approx(e_ground, rel=1e-10)


def test_matrix_free_file_stores_the_prompt_factors(tmp_path):
    """Matrix-free: C, Q, y instead of A; A = λI + SᵀS/P rebuilt from them gives the
    stored mean and covariance diagonal."""
    t = Target("t-free", "a small matrix-free target", TaskConfig(D=3, N=6, P=9, lam=0.02,
                                                                    test_prompts=1),
               "merged", 500.0, "matrix-free", None, ())
    model, refs = build_target(t)
    out = write_target_file(str(tmp_path / "mf.h5"), t, model, refs)
    with h5py.File(out, "r") as f:
        assert "A" not in f
        C, Q, y, h = f["C"][()], f["Q"][()], f["y"][()], f["h"][()]
        mean, cdiag = f["mean"][()], f["covariance_diagonal"][()]
        lam, beta = f.attrs["lam"], f.attrs["beta"]
    S = np.einsum("pa,pb->pab", C, Q).reshape(C.shape[0], -1)
    A = lam * np.eye(S.shape[1]) + S.T @ S / S.shape[0]
    np.testing.assert_allclose(S.T @ y / S.shape[0], h, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.linalg.solve(A, h), mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.diag(np.linalg.inv(beta * A)), cdiag, rtol=1e-9)


def test_unwritable_output_is_refused_before_the_target_is_built(tmp_path, monkeypatch,
                                                                 capsys):
    """A directory that takes no file (a read-only filesystem: permission bits say
    nothing there) is found by creating the file: one line, exit 2, before any work."""
    import spinicl.targets
    from spinicl.cli import main

    def no_build(*a, **k):
        raise AssertionError("built before the output was checked")

    monkeypatch.setattr(spinicl.targets, "build_target", no_build)
    for out in ("/sys/spinicl-target.h5", str(tmp_path / "no" / "dir.h5")):
        with pytest.raises(SystemExit) as exc:
            main(["export-target", "tiny-merged", "-o", out])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(lines) == 1, lines
        assert lines[0].startswith("spinicl: error: --out must be a path in")


def test_output_check_leaves_nothing_behind(tmp_path):
    from spinicl.io.target_file import check_target_output

    check_target_output(str(tmp_path / "t.h5"))
    assert list(tmp_path.iterdir()) == []
