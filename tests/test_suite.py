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
    # no condition number (as listed), the merged A's kept apart; the note counts the
    # local minimisations the code ran
    from spinicl.models.factored import REFERENCE_RESTARTS

    assert math.isnan(refs.condition_number)
    assert math.isnan(TARGETS["tiny-factored"].condition_number)
    assert refs.summary()["merged_condition_number"] > 1
    assert f"lowest of {REFERENCE_RESTARTS} local minimisations" in refs.ground_note


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
        "def raises(target):\n    raise RuntimeError('boom')\n"
        "def _stepping_to(f):\n"
        "    return lambda target: NS(init=lambda p: NS(position=p),\n"
        "                             step=lambda rng, s: (NS(position=f(s.position)), None))\n"
        "all_nan = _stepping_to(lambda w: np.full_like(w, np.nan))\n"
        "one_inf = _stepping_to(lambda w: np.where(np.arange(w.size).reshape(w.shape) == 3,"
        " np.inf, w))\n"
        "to_complex = _stepping_to(lambda w: w + 0j)\n"
        "to_strings = _stepping_to(lambda w: w.astype(str))\n"
        "to_ints = _stepping_to(lambda w: w.astype(int))\n"
        "def int_init(target):\n"
        "    return NS(init=lambda p: NS(position=p.astype(np.int64)),\n"
        "              step=lambda rng, s: (s, None))\n")))
    model, refs = build_target("tiny-merged")
    st = SamplerTarget.from_model("tiny-merged", model, 1e3)
    start = refs.exact_draws(4, 0)
    for fn, what in (("no_step", "step"), ("wrong_shape", "shape"), ("raises", "boom"),
                     ("all_nan", "finite.*64 of 64 entries.*first step"),
                     ("one_inf", "finite.*1 of 64 entries"),
                     ("to_complex", "real floating.*complex128"),
                     ("to_strings", "real floating.*<U"),
                     ("to_ints", "real floating.*int64.*first step"),
                     ("int_init", "real floating.*int64.*after init")):
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
    """spinicl.peers.run_peer replaced by exact draws (stationary; factored: seeded noise
    about the reference) and a relaxation that reaches the threshold at its third
    record."""
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
            else:   # thermal-sized moves around the reference (frozen chains: stuck)
                noise = np.random.default_rng(seed + 5).standard_normal((64, R, refs.n))
                W = refs.ground_factors + noise / np.sqrt(refs.beta)
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
    # a condition number only where one exists: the merged target's header
    heads = [x for x in text.splitlines() if x.startswith("  n = ")]
    assert ["condition number" in x for x in heads] == [True, False]
    # the figure goes through save_figure: no suffix writes .png and .pdf, both marked
    from spinicl.plots.style import written_by_spinicl

    out = plot_suite(res, str(tmp_path / "suite"))
    assert out == [str(tmp_path / "suite.png"), str(tmp_path / "suite.pdf")]
    assert Path(out[0]).stat().st_size > 10_000
    assert all(written_by_spinicl(p) for p in out)


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
                        "--seconds", "0.3", "--replicas", "4", "--json",
                        "--plot", str(tmp_path / "fig")],
                       check=False, capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    # the files the figure was really written to (no suffix: .png and .pdf)
    assert res["figure"] == [str(tmp_path / "fig.png"), str(tmp_path / "fig.pdf")]
    assert all(Path(p).stat().st_size > 1000 for p in res["figure"])
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
    (["--suite", ""], "--suite"),
    (["--suite", " , "], "--suite"),
    (["--suite", "tiny", "--samplers", ","], "--samplers"),
    (["--suite", "tiny", "--replicas", "0"], "--replicas"),
    (["--suite", "tiny", "--plot", "out.txt"], "--plot"),
    (["--suite", "tiny", "--plot", "no/such/dir/s.png"], "--plot"),
    (["--suite", "tiny", "--plot", "/sys/spinicl-suite.png"], "--plot"),
    (["--suite", "tiny", "--force"], "--force"),
    (["--samplers", ","], "--samplers"),
    (["--replicas", "0"], "--replicas"),
    (["--force"], "--force"),
])
def test_cli_suite_bad_input(args, option, capsys):
    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", *args])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spinicl: error: {option} must be"), \
        lines
    if option == "--replicas":   # the range of the mode asked for
        assert ("2..100000" in lines[0]) == ("--suite" in args), lines


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


# --------------------------------------------------------------------------- refusals
BAD_FACTORIES = (
    "import os, signal, sys, time\n"
    "from types import SimpleNamespace as NS\n"
    "import numpy as np\n"
    "from spinicl.examples.rwm import make_sampler as rwm\n"
    "def not_on_factored(target):\n"
    "    if target.name == 'tiny-factored':\n"
    "        raise RuntimeError('no factored targets')\n"
    "    return rwm(target)\n"
    "def exits_0(target):\n    sys.exit(0)\n"
    "def exits_3(target):\n    raise SystemExit(3)\n"
    "def interrupts(target):\n    raise KeyboardInterrupt\n"
    "class Odd(BaseException):\n    pass\n"
    "def odd(target):\n    raise Odd('odd')\n"
    "def real_ctrl_c(target):\n"
    "    os.kill(os.getpid(), signal.SIGINT)\n"
    "    time.sleep(5)\n"
    "    return rwm(target)\n"
    "def exits_mid_run(target):\n"
    "    inner, calls = rwm(target), [0]\n"
    "    def step(rng, state):\n"
    "        calls[0] += 1\n"
    "        if calls[0] > 2:\n"
    "            sys.exit(0)\n"
    "        return inner.step(rng, state)\n"
    "    return NS(init=inner.init, step=step)\n"
    "def stuck(target):\n"
    "    return NS(init=lambda p: NS(position=np.array(p)),\n"
    "              step=lambda rng, s: (s, NS(acceptance=0.0)))\n"
    "def zeros(target):\n"
    "    return NS(init=lambda p: NS(position=np.zeros_like(p)),\n"
    "              step=lambda rng, s: (s, NS(acceptance=0.0)))\n"
)


@pytest.fixture()
def bad_factories(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(_write_module(tmp_path, "bad_factories", BAD_FACTORIES))
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    return "bad_factories"


def _bench(args, capsys):
    from spinicl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "--suite", "tiny", "--samplers", "mala/diag", "--seconds", "0.1",
              "--replicas", "2", *args])
    return exc.value.code, capsys.readouterr()


def test_a_user_sampler_is_checked_on_every_target_before_any_measurement(bad_factories,
                                                                           capsys):
    """Refused on the second target before the first was measured: no row, one line."""
    rows = []
    with pytest.raises(ConfigError, match="no factored targets"):
        run_suite("tiny", "mala/diag", (), [f"{bad_factories}:not_on_factored"],
                  budget_seconds=0.1, replicas=2, progress=rows.append)
    assert rows == []
    code, io = _bench(["--sampler", f"{bad_factories}:not_on_factored"], capsys)
    lines = io.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(
        "spinicl: error: --sampler must be a factory that builds"), lines
    assert "RuntimeError: no factored targets" in lines[0] and io.out == ""


@pytest.mark.parametrize("factory, what", [
    ("exits_0", "SystemExit: 0"), ("exits_3", "SystemExit: 3"),
    ("interrupts", "KeyboardInterrupt"), ("odd", "Odd: odd")])
def test_a_factory_that_exits_is_refused_not_obeyed(bad_factories, factory, what, capsys):
    """sys.exit (or any BaseException) in a factory: one line, exit 2 — never a silent
    exit 0. Under the command line a real Ctrl-C raises Stopped, not KeyboardInterrupt,
    so a KeyboardInterrupt there is the factory's own."""
    code, io = _bench(["--sampler", f"{bad_factories}:{factory}"], capsys)
    lines = io.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(
        "spinicl: error: --sampler must be"), lines
    assert what in lines[0] and io.out == ""


def test_a_module_that_exits_on_import_is_refused(bad_factories, capsys):
    code, io = _bench(["--sampler", "exits_on_import:make"], capsys)
    lines = io.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "SystemExit" in lines[0], lines


def test_a_real_ctrl_c_in_a_factory_still_stops(bad_factories, capsys):
    """SIGINT while the factory runs: the command stops (128 + 2), it is not refused."""
    code, io = _bench(["--sampler", f"{bad_factories}:real_ctrl_c"], capsys)
    assert code == 130
    assert io.err.strip().splitlines() == ["spinicl: stopped by SIGINT"]


def test_interrupts_are_told_apart():
    """KeyboardInterrupt is the user's Ctrl-C only under Python's default SIGINT handler;
    Stopped is always a real signal; SystemExit never is."""
    import signal

    from spinicl.signals import Stopped, command_signals
    from spinicl.user_sampler import raised_by_the_sampler

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert not raised_by_the_sampler(KeyboardInterrupt())
        with command_signals():
            assert raised_by_the_sampler(KeyboardInterrupt())
            assert not raised_by_the_sampler(Stopped(signal.SIGINT))
        assert raised_by_the_sampler(SystemExit(0))
        user = load_sampler("spinicl.examples.rwm:make_sampler")
        from spinicl.user_sampler import call_user

        def interrupted():
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):     # a library caller's Ctrl-C goes on
            call_user(user, "runs", interrupted)
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_step_that_exits_mid_run_fails_its_row(bad_factories):
    """Past the checks, sys.exit in a step fails the row; the suite goes on."""
    res = run_suite("tiny-merged", "exact", (), [f"{bad_factories}:exits_mid_run"],
                    budget_seconds=0.1, replicas=2)
    st = {r["sampler"]: (r["status"], r["note"]) for r in res["rows"]}
    assert st["exact"][0] == "ok"
    assert st[f"{bad_factories}:exits_mid_run"] == ("failed", "SystemExit: 0")


def test_frozen_chains_have_no_effective_samples():
    """Chains that never move: ESS 0 (not the ESS of the exact starting draws), and
    no division by a zero variance when every chain sits at the same point."""
    from spinicl.suite import frozen_chains

    model, refs = build_target("tiny-merged")
    rec = Recorder(model, refs)
    starts = rec(refs.exact_draws(8, seed=1))                    # (R, k)
    for frozen in (np.broadcast_to(starts, (200, *starts.shape)),
                   np.broadcast_to(rec(np.zeros((8, refs.n))), (200, 8, 2))):
        st = trace_statistics(frozen, rec.names, refs, rate=1000.0)
        assert st["frozen_chains"] == 8
        assert st["ess_per_s_energy"] == 0 and st["ess_per_s_slowest"] == 0
        assert st["tau_int_energy"] is None and st["tau_reliable"] is False
    moving = np.stack([rec(w) for w in refs.exact_draws(200 * 8, seed=2).reshape(200, 8, -1)])
    assert frozen_chains(moving) == 0
    moving[:, 3] = moving[0, 3]                                  # one chain stuck
    st = trace_statistics(moving, rec.names, refs, rate=1000.0)
    assert st["frozen_chains"] == 1 and st["tau_reliable"] is False


@pytest.mark.parametrize("factory", ["stuck", "zeros"])
def test_a_sampler_that_never_moves_is_reported_stuck(bad_factories, factory):
    res = run_suite("tiny-merged", "exact", (), [f"{bad_factories}:{factory}"],
                    budget_seconds=0.1, replicas=2)
    row = next(r for r in res["rows"] if r["kind"] == "user")
    assert row["status"] == "stuck", row["note"]
    assert row["ess_per_s_energy"] == 0 and row["ess_per_s_slowest"] == 0
    assert row["max_abs_z"] is None and row["time_to_reference"] is None
    assert "no chain moved" in row["note"]
    line = next(x for x in format_suite_table(res).splitlines()
                if x.strip().startswith(f"{bad_factories}:{factory} "))
    assert "stuck" in line


def test_bench_plot_never_replaces_a_users_file(tmp_path, capsys, monkeypatch):
    """An existing file spinicl did not write is refused before any work (one line,
    the file untouched); --force replaces it; a figure spinicl wrote is replaced."""
    import spinicl.suite

    def no_run(*a, **k):
        raise AssertionError("the suite ran before the output was checked")

    monkeypatch.setattr(spinicl.suite, "run_suite", no_run)
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"the user's picture")
    code, io = _bench(["--plot", str(mine)], capsys)
    lines = io.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(
        "spinicl: error: --plot must be a new file or a figure spinicl wrote"), lines
    assert mine.read_bytes() == b"the user's picture"
    from spinicl.cli import _figure_out

    assert _figure_out(str(mine), True, "plot") == [str(mine), str(tmp_path / "mine.pdf")]
    res = {"rows": [], "targets": [], "settings": {"replicas": 2, "budget_seconds": 0.1,
                                                   "relax_seconds": 0.1}}
    written = plot_suite(res, str(tmp_path / "ours.png"))
    assert _figure_out(str(tmp_path / "ours.png"), False, "plot") == written


def test_an_empty_sampler_list_runs_peers_or_users_only_and_nothing_is_refused():
    from spinicl.suite import run_suite

    res = run_suite(["tiny-merged"], (), (), ["spinicl.examples.rwm:make_sampler"],
                    budget_seconds=0.2, replicas=4, seed=1)
    assert [r["sampler"] for r in res["rows"]] == ["spinicl.examples.rwm:make_sampler"]
    with pytest.raises(ConfigError, match="samplers"):
        run_suite(["tiny-merged"], (), (), (), budget_seconds=0.2)
    with pytest.raises(ConfigError, match="samplers"):
        run_suite(["tiny-merged"], ",", (), (), budget_seconds=0.2)
