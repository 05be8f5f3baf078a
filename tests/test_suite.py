"""The sampler suite: targets and their references, user samplers, peers, outputs, CLI."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from spinicl.config import ConfigError, TaskConfig
from spinicl.models import active_mask
from spinicl.suite import (
    Recorder,
    format_suite_table,
    parse_peers,
    parse_sampler_spec,
    peer_availability,
    plot_suite,
    relaxation_from_trace,
    run_suite,
    trace_statistics,
)
from spinicl.targets import TARGETS, Target, build_target, resolve_targets
from spinicl.user_sampler import SamplerTarget, load_sampler, validate

ROOT = Path(__file__).resolve().parent.parent
Z_MAX = 4.5   # two-sided p ≈ 7e-6 per z-score: a correct estimator essentially never fails


# --------------------------------------------------------------------------- targets
def test_resolve_targets_groups_and_errors():
    assert [t.name for t in resolve_targets(None)] == [
        k for k, t in TARGETS.items() if t.group == "main"]
    assert [t.name for t in resolve_targets("tiny")] == ["tiny-merged", "tiny-factored"]
    assert [t.name for t in resolve_targets("merged-ill,tiny-merged,merged-ill")] == [
        "merged-ill", "tiny-merged"]
    with pytest.raises(ConfigError, match="suite"):
        resolve_targets("nope")
    with pytest.raises(ConfigError, match="target"):
        build_target("nope")


def test_merged_references_closed_forms():
    """Mean solves A m = h, covariance (βA)⁻¹, spectrum of A, slowest active mode,
    ⟨E⟩ = E(m) + n/(2β): against a direct dense computation."""
    model, refs = build_target("tiny-merged")
    beta = TARGETS["tiny-merged"].beta
    A = model.precision()
    np.testing.assert_allclose(A @ refs.mean, model.field, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(refs.covariance_diagonal, np.diag(np.linalg.inv(beta * A)),
                               rtol=1e-10)
    np.testing.assert_allclose(refs.spectrum, np.linalg.eigvalsh(A), rtol=1e-10)
    idx = np.flatnonzero(active_mask(model.D))
    act = np.linalg.eigvalsh(A[np.ix_(idx, idx)])
    assert refs.slowest_eigenvalue == pytest.approx(act[0], rel=1e-12)
    assert refs.condition_number == pytest.approx(act[-1] / act[0], rel=1e-12)
    u = refs.slowest_mode
    np.testing.assert_allclose(A @ u, act[0] * u, atol=1e-10)
    assert np.all(u[~active_mask(model.D)] == 0)
    assert refs.energy_mean == pytest.approx(
        float(model.energy(refs.mean[None])[0]) + refs.n / (2 * beta), rel=1e-12)
    assert refs.n == TARGETS["tiny-merged"].n
    assert refs.condition_number == pytest.approx(TARGETS["tiny-merged"].condition_number,
                                                  rel=1e-2)


def test_low_rank_references_equal_dense():
    """P < n on the matrix-free path: the Woodbury references equal the dense ones."""
    task = TaskConfig(D=3, N=6, P=9, lam=0.02, test_prompts=1, seed=3)
    dense = Target("t-dense", "", task, "merged", 500.0, "dense", None, ())
    free = Target("t-free", "", task, "merged", 500.0, "matrix-free", None, ())
    _, rd = build_target(dense)
    mf, rf = build_target(free)
    assert mf.representation == "matrix-free"
    np.testing.assert_allclose(rf.mean, rd.mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rf.covariance_diagonal, rd.covariance_diagonal, rtol=1e-9)
    np.testing.assert_allclose(rf.spectrum, rd.spectrum, rtol=1e-9, atol=1e-12)
    assert rf.slowest_eigenvalue == pytest.approx(rd.slowest_eigenvalue, rel=1e-9)
    assert rf.energy_mean == pytest.approx(rd.energy_mean, rel=1e-10)
    # the (degenerate) slowest mode: an active eigenvector of A at λ
    u = rf.slowest_mode
    np.testing.assert_allclose(mf.precision_product(u[None])[0], rf.slowest_eigenvalue * u,
                               atol=1e-10)
    # exact draws: covariance (βA)⁻¹ (sample variance against its standard error)
    x = rf.exact_draws(4000, seed=1)
    var = x.var(axis=0, ddof=1)
    z = (var - rf.covariance_diagonal) / (rf.covariance_diagonal * math.sqrt(2 / 3999))
    assert np.max(np.abs(z)) < Z_MAX


def test_factored_references():
    model, refs = build_target("tiny-factored")
    assert refs.kind == "best known"
    assert float(model.energy(refs.ground_factors[None])[0]) == pytest.approx(
        refs.reference_energy, rel=1e-10)
    np.testing.assert_allclose(model.effective_weights(refs.ground_factors[None])[0],
                               refs.ground_W, atol=1e-10)
    assert refs.thermal_energy == refs.n / (2 * TARGETS["tiny-factored"].beta)


# --------------------------------------------------------------------------- statistics
def test_trace_statistics_exact_draws_unbiased_and_detects_a_shift():
    model, refs = build_target("tiny-merged")
    rec = Recorder(model, refs)
    x = refs.exact_draws(300 * 8, seed=2).reshape(300, 8, -1)
    trace = np.stack([rec(w) for w in x])
    st = trace_statistics(trace, rec.names, refs, rate=1000.0)
    for k in ("z_energy", "z_slowest_mean", "z_slowest_second_moment"):
        assert abs(st[k]) < Z_MAX, (k, st[k])
    # independent draws: τ = 1 within its standard error, ESS/s = the rate
    assert abs(st["tau_int_slowest"] - 1) < Z_MAX * st["tau_error"] * st["tau_int_slowest"]
    shifted = trace.copy()
    se = np.sqrt(refs.slowest_variance / (300 * 8))
    shifted[:, :, 1] += 10 * se
    assert trace_statistics(shifted, rec.names, refs, 1000.0)["z_slowest_mean"] > 6


def test_relaxation_from_trace():
    trace = np.array([[[3.0], [2.0]], [[1.5], [0.9]], [[0.5], [0.2]]])
    times = np.array([0.0, 0.5, 1.0])
    r = relaxation_from_trace(trace, times, 1.0)
    assert r["reached"] and r["time_to_reference"] == 0.5
    r = relaxation_from_trace(trace, times, 0.1)
    assert not r["reached"] and r["time_to_reference"] is None
    assert r["relaxation_min_energy"] == 0.2


def test_sampler_specs_and_peers_parsing():
    s = parse_sampler_spec("mala/diag+re")
    assert (s.kind, s.precondition, s.replica_exchange, s.label) == (
        "mala", "diag", True, "mala/diag+re")
    assert parse_sampler_spec("exact").label == "exact"
    for bad in ("nope", "mala/xx", "", "mala+rx"):
        with pytest.raises(ConfigError, match="samplers"):
            parse_sampler_spec(bad)
    assert parse_peers("all") == ("blackjax-mala", "blackjax-hmc", "numpyro-nuts")
    with pytest.raises(ConfigError, match="peers"):
        parse_peers("blackjax-foo")


def test_missing_peer_packages_one_line(monkeypatch):
    from spinicl import peers

    monkeypatch.setattr(peers, "missing_packages",
                        lambda name: ["jax", "blackjax"] if name != "numpyro-nuts" else [])
    usable, msgs = peer_availability(("blackjax-hmc", "numpyro-nuts"))
    assert usable == ("numpyro-nuts",)
    assert msgs == [("peer blackjax-hmc skipped: needs jax, blackjax "
                     "(pip install -e '.[bench]')")]


# --------------------------------------------------------------------------- user samplers
def _write_module(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / f"{name}.py").write_text(text)
    return str(tmp_path)


def test_load_sampler_good_and_bad(tmp_path, monkeypatch):
    assert callable(load_sampler("spinicl.examples.rwm:make_sampler").factory)
    for bad in ("no_colon", "a:b:c", ":make", "spinicl.examples.rwm:",
                "spinicl_no_such_module:make", "spinicl.examples.rwm:nothing",
                "spinicl.examples.rwm:np"):
        with pytest.raises(ConfigError, match="sampler"):
            load_sampler(bad)
    monkeypatch.syspath_prepend(_write_module(tmp_path, "bad_samplers", (
        "import numpy as np\n"
        "from types import SimpleNamespace as NS\n"
        "def no_step(target):\n    return NS(init=lambda p: NS(position=p))\n"
        "def wrong_shape(target):\n"
        "    return NS(init=lambda p: NS(position=p),\n"
        "              step=lambda rng, s: (NS(position=s.position[:1]), None))\n"
        "def raises(target):\n    raise RuntimeError('boom')\n")))
    model, refs = build_target("tiny-merged")
    st = SamplerTarget.from_model("tiny-merged", model, 1e3)
    start = refs.exact_draws(4, 0)
    for fn, what in (("no_step", "step"), ("wrong_shape", "shape"), ("raises", "boom")):
        with pytest.raises(ConfigError, match=what):
            validate(load_sampler(f"bad_samplers:{fn}"), st, start, 0)
    validate(load_sampler("spinicl.examples.rwm:make_sampler"), st, start, 0)


def test_sampler_target_hands_over_the_model():
    model, _ = build_target("tiny-merged")
    st = SamplerTarget.from_model("tiny-merged", model, 1e3)
    W = np.random.default_rng(0).standard_normal((3, st.n))
    e, g = st.energy_and_grad(W)
    e0, g0 = model.energy_and_grad(W)
    np.testing.assert_array_equal(e, e0)
    np.testing.assert_array_equal(g, g0)
    assert st.curvature == pytest.approx(np.linalg.eigvalsh(model.precision())[-1],
                                         rel=1e-6)


# --------------------------------------------------------------------------- the runner
def _fake_peer_module(monkeypatch, refs_by_name):
    """spinicl.peers.run_peer replaced by exact draws (stationary) and a relaxation that
    reaches the threshold at its third record."""
    from spinicl import peers

    calls = []

    def run_peer(name, model, beta, start, *, seed, budget_seconds, record,
                 mode="stationary", threads=1, reference_energy=None):
        calls.append((name, mode, start.copy()))
        refs = refs_by_name[model.n_spins]
        R = start.shape[0]
        if mode == "stationary":
            if refs.kind == "gaussian":
                W = refs.exact_draws(64 * R, seed + 5).reshape(64, R, -1)
            else:
                W = np.broadcast_to(refs.ground_factors, (64, R, refs.n))
            trace = np.stack([record(w) for w in W])
        else:
            trace = np.stack([record(start)] * 2 + [record(np.broadcast_to(
                refs.mean if refs.kind == "gaussian" else refs.ground_factors,
                start.shape))])
        return {"sampler": name, "library": "fake 0", "compile_seconds": 0.5,
                "tuning_seconds": 0.25, "chain_steps_per_s": 1000.0, "cores": 1.0,
                "acceptance": 0.8, "step_size": 0.1, "trace": trace,
                "times": np.arange(trace.shape[0]) * 0.1, "notes": ""}

    monkeypatch.setattr(peers, "run_peer", run_peer)
    monkeypatch.setattr(peers, "missing_packages", lambda name: [])
    return calls


def test_run_suite_tiny_rows_table_json_plot(tmp_path, monkeypatch):
    refs_by_n = {TARGETS[k].n: build_target(k)[1] for k in ("tiny-merged", "tiny-factored")}
    calls = _fake_peer_module(monkeypatch, refs_by_n)
    res = run_suite("tiny", None, "numpyro-nuts", ["spinicl.examples.rwm:make_sampler"],
                    budget_seconds=0.3, replicas=4, seed=3)
    rows = res["rows"]
    names = [(r["target"], r["sampler"], r["kind"]) for r in rows]
    assert names == [
        ("tiny-merged", "exact", "spinicl"), ("tiny-merged", "mala/diag", "spinicl"),
        ("tiny-merged", "spinicl.examples.rwm:make_sampler", "user"),
        ("tiny-merged", "numpyro-nuts", "peer"),
        ("tiny-factored", "mala/diag", "spinicl"), ("tiny-factored", "mala/diag+re", "spinicl"),
        ("tiny-factored", "spinicl.examples.rwm:make_sampler", "user"),
        ("tiny-factored", "numpyro-nuts", "peer")]
    assert all(r["status"] == "ok" for r in rows), [r["note"] for r in rows]
    json.dumps(res)                                    # serialisable as it is
    # the exact sampler: independent draws, so its ESS/s is its rate within the error of τ
    ex = rows[0]
    assert ex["ratio_slowest"] == pytest.approx(ex["ess_per_s_slowest"]
                                                / ex["chain_steps_per_s"])
    for r in rows:
        if r["target"] == "tiny-merged":
            assert r["max_abs_z"] is not None
        else:
            assert r["energy_excess"] is not None
        assert r["reached"] is True and r["time_to_reference"] >= 0
    # the peer got the same starts as every row: exact draws, then the random start
    model, refs = build_target("tiny-merged")
    from spinicl.suite import random_start, stationary_start

    np.testing.assert_array_equal(calls[0][2], stationary_start(model, refs, 4, 3))
    np.testing.assert_array_equal(calls[1][2], random_start(model, 4, 3))
    peer = rows[3]
    assert peer["compile_seconds"] == 0.5 and peer["library"] == "fake 0"
    assert peer["time_to_reference"] == pytest.approx(0.2)     # the third record
    assert abs(peer["max_abs_z"]) < Z_MAX
    text = format_suite_table(res)
    for t in ("tiny-merged", "tiny-factored", "numpyro-nuts", "mala/diag+re", "t->ref s"):
        assert t in text
    out = plot_suite(res, str(tmp_path / "suite.png"))
    assert Path(out).stat().st_size > 10_000


def test_run_suite_skips_what_a_target_cannot_run():
    res = run_suite("tiny-factored", "exact,mala", budget_seconds=0.2, replicas=2)
    st = {r["sampler"]: r["status"] for r in res["rows"]}
    assert st == {"exact": "skipped", "mala": "ok"}


# --------------------------------------------------------------------------- README + CLI
def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"```python\n(\"\"\"Random-walk Metropolis.*?)```", text, re.DOTALL)
    assert m, "README: the random-walk Metropolis example block"
    return m.group(1)


def test_readme_example_is_the_shipped_file():
    assert _readme_example() == (ROOT / "spinicl" / "examples" / "rwm.py").read_text()


def test_readme_example_runs_through_the_cli(tmp_path):
    (tmp_path / "my_rwm.py").write_text(_readme_example())
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "spinicl.cli", "bench", "--suite", "tiny",
                        "--samplers", "mala/diag", "--sampler", "my_rwm:make_sampler",
                        "--seconds", "0.3", "--replicas", "4", "--json"],
                       check=False, capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    user = [x for x in res["rows"] if x["sampler"] == "my_rwm:make_sampler"]
    assert [x["status"] for x in user] == ["ok", "ok"]
    assert all(0 < x["acceptance"] < 1 for x in user)
    assert res["settings"]["user_samplers"] == ["my_rwm:make_sampler"]


@pytest.mark.parametrize("args, option", [
    (["--suite", "nope"], "--suite"),
    (["--suite", "tiny", "--D", "5"], "--D"),
    (["--suite", "tiny", "--sampler", "nomodule_xyz:f"], "--sampler"),
    (["--suite", "tiny", "--peers", "foo"], "--peers"),
    (["--suite", "tiny", "--replicas", "1"], "--replicas"),
    (["--suite", "tiny", "--seconds", "0"], "--seconds"),
    (["--suite", "tiny", "--samplers", "mala/xx"], "--samplers"),
    (["--sampler", "a:b"], "--sampler"),
])
def test_cli_suite_bad_input(args, option, capsys):
    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", *args])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spinicl: error: {option} must be"), \
        lines


def test_cli_list_targets(capsys):
    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--list-targets"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name, t in TARGETS.items():
        assert re.search(rf"^{re.escape(name)}\s+{t.n}\s", out, re.MULTILINE), name


def test_user_sampler_state_namespace_is_enough():
    """The interface asks only for .position on the state (SimpleNamespace works)."""
    s = SimpleNamespace(position=np.zeros((2, 3)))
    from spinicl.user_sampler import check_state

    user = load_sampler("spinicl.examples.rwm:make_sampler")
    assert check_state(user, s, (2, 3)).shape == (2, 3)
    with pytest.raises(ConfigError, match="position"):
        check_state(user, SimpleNamespace(), (2, 3))
