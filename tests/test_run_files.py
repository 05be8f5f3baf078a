"""Run files: `spinicl sample | resume | info` as a user runs them — real HDF5 files, real
subprocesses, real signals (docs/model.md §4)."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from spinicl.config import ConfigError, SampleConfig, TaskConfig
from spinicl.runner import file_info, resume_run, run_sample

TASK = ["--D", "3", "--N", "8", "--P", "150", "--lam", "0.05", "--test-prompts", "100",
        "--seed", "3"]
SMALL = [*TASK, "--temps", "1e-3:1e-1:3", "--copies", "2", "--record-every", "5",
         "--flush-every", "4"]


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "spinicl.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def small_config(**kw) -> SampleConfig:
    base = {"task": TaskConfig(D=3, N=8, P=150, lam=0.05, test_prompts=100, seed=3),
            "temperatures": (1e-3, 1e-2, 1e-1), "copies": 2, "steps": 3000, "burn_in": 500,
            "record_every": 5, "flush_every": 4}
    base.update(kw)
    return SampleConfig(**base)


def traces(path):
    with h5py.File(path, "r", swmr=True) as f:
        return {k: f[f"trace/{k}"][...] for k in f["trace"]}


def test_sample_layout_and_info_agree_with_the_closed_forms(tmp_path):
    path = str(tmp_path / "run.h5")
    res = run_sample(small_config(steps=6000), path, progress=False)
    assert res.status == "complete" and res.exit_code == 0
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete"
        cfg = json.loads(f.attrs["config"])
        assert cfg["task"]["seed"] == 3 and "sampler_seed" in json.loads(f.attrs["seeds"])
        n = f["trace/step"].shape[0]
        assert n == (500 + 6000) // 5
        assert f["trace/energy"].shape == (n, 3, 2)
        assert f["trace/overlap"].shape == (n, 3, 1)
        assert f["trace/swap_accept"].shape == (n, 2)
        np.testing.assert_array_equal(f["trace/step"][...], 5 * np.arange(1, n + 1))
        for stat in ("mean", "stderr", "tau_int", "ess", "exact"):
            assert f[f"summary/energy/{stat}"].shape == (3,)
        assert "checkpoint/meta" in f and "ladder/T" in f
    info = file_info(path)
    assert info["status"] == "complete"
    # every observable with a closed form is within 5 standard errors of it
    assert info["max_abs_z"] is not None and info["max_abs_z"] < 5, info["summary"]


def test_reader_in_another_process_sees_the_traces_during_the_run(tmp_path):
    path = str(tmp_path / "live.h5")
    proc = subprocess.Popen([sys.executable, "-m", "spinicl.cli", "sample", *SMALL,
                             "--steps", "400000", "--burn-in", "0", "--out", path, "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        reader = ("import h5py,sys,time\n"
                  "for _ in range(600):\n"
                  "    try:\n"
                  "        f=h5py.File(sys.argv[1],'r',swmr=True)\n"
                  "    except OSError:\n"
                  "        time.sleep(0.1); continue\n"
                  "    n=f['trace/step'].shape[0]\n"
                  "    if n>=8:\n"
                  "        print(n, f['trace/energy'][n-1].mean()); break\n"
                  "    f.close(); time.sleep(0.1)\n")
        out = subprocess.run([sys.executable, "-c", reader, path], capture_output=True,
                             text=True, timeout=120, check=False)
        assert proc.poll() is None, "the run should still be going"
        n, e = out.stdout.split()
        assert int(n) >= 8 and np.isfinite(float(e))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 130
    stderr = proc.stderr.read().decode()
    assert "spinicl resume" in stderr
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "interrupted"


def test_sigkill_at_a_random_moment_then_resume_equals_an_uninterrupted_run(tmp_path):
    ref = str(tmp_path / "ref.h5")
    args = [*SMALL, "--steps", "3000", "--burn-in", "300", "-q"]
    assert cli("sample", *args, "--out", ref).returncode == 0
    killed = str(tmp_path / "killed.h5")
    proc = subprocess.Popen([sys.executable, "-m", "spinicl.cli", "sample", *args,
                             "--out", killed])
    rng = np.random.default_rng(int(time.time()))
    # wait until the run is streaming, then kill it at a random moment
    for _ in range(600):
        if os.path.exists(killed):
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.returncode == 0:
        pytest.skip("the run finished before the kill")  # pragma: no cover - fast machine
    # a killed file opens read-only (SWMR) and `info` reads it
    info = cli("info", killed, "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["status"] == "running"
    out = cli("resume", killed, "-q")
    assert out.returncode == 0, out.stderr
    a, b = traces(ref), traces(killed)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with h5py.File(killed, "r") as f:
        assert f.attrs["status"] == "complete"


def test_killed_before_the_first_flush_resumes_from_the_start(tmp_path, monkeypatch):
    """The layout holds the initial state as a valid step-0 checkpoint: a run killed
    between creating its file and its first flush resumes, and equals an uninterrupted
    run (the moment the random SIGKILL above can hit with a cold Numba cache)."""
    from spinicl import runner

    cfg = small_config(steps=600, burn_in=100)
    ref = str(tmp_path / "ref.h5")
    assert run_sample(cfg, ref, progress=False).status == "complete"
    early = str(tmp_path / "early.h5")
    with monkeypatch.context() as m:
        m.setattr(runner, "_execute", lambda *a, **k: None)   # "killed" right after layout
        run_sample(cfg, early, progress=False)
    with h5py.File(early, "r") as f:
        assert f["trace/step"].shape[0] == 0
        np.testing.assert_array_equal(f["checkpoint/meta"][...], [0, 0, 0, 0, 0, 1])
    res = resume_run(early, progress=False)
    assert res.status == "complete"
    a, b = traces(ref), traces(early)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_killed_while_finishing_keeps_a_resumable_file(tmp_path):
    """SIGKILL while the final status and summary are written (the last moment of a
    run): the file on disk is still the SWMR file, `info` reads it and `resume`
    completes it, equal to an uninterrupted run."""
    ref = str(tmp_path / "ref.h5")
    args = [*SMALL, "--steps", "400", "--burn-in", "100", "-q"]
    assert cli("sample", *args, "--out", ref).returncode == 0
    path = str(tmp_path / "finish.h5")
    code = textwrap.dedent("""
        import os, signal, sys
        from spinicl.io import run as store
        from spinicl.cli import main
        import spinicl.runner
        real = store.finish_run
        def killed(path, *a, **k):  # SIGKILL where the finished copy would replace path
            os.replace = lambda *x: os.kill(os.getpid(), signal.SIGKILL)
            real(path, *a, **k)
        spinicl.runner.finish_run = killed
        sys.argv = ["spinicl", *sys.argv[1:]]
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", code, "sample", *args, "--out", path],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not os.path.exists(path + ".finish") or os.path.getsize(path + ".finish") > 0
    info = cli("info", path, "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["status"] == "running"
    assert cli("resume", path, "-q").returncode == 0
    a, b = traces(ref), traces(path)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "complete" and "summary/energy/mean" in f


def test_resume_extends_a_complete_run_bit_for_bit(tmp_path):
    long_run = str(tmp_path / "long.h5")
    run_sample(small_config(steps=1000, burn_in=100), long_run, progress=False)
    short = str(tmp_path / "short.h5")
    run_sample(small_config(steps=500, burn_in=100), short, progress=False)
    res = resume_run(short, steps=1000, progress=False)
    assert res.status == "complete"
    a, b = traces(long_run), traces(short)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"precious")
    out = cli("sample", *SMALL, "--steps", "10", "--burn-in", "0", "--out", str(path))
    assert out.returncode == 2 and "--force" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == b"precious"


@pytest.mark.parametrize("content, words", [(None, "no such file"),
                                            (b"not hdf5 at all", "not a readable HDF5"),
                                            ("foreign", "not a spinicl run")])
def test_info_on_bad_files_is_one_line(tmp_path, content, words):
    path = tmp_path / "bad.h5"
    if content == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = 1
    elif content is not None:
        path.write_bytes(content)
    for cmd in ("info", "resume"):
        out = cli(cmd, str(path))
        assert out.returncode == 2, out.stderr
        assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_unwritable_place_is_refused_before_any_work(tmp_path):
    out = cli("sample", *SMALL, "--out", str(tmp_path / "no" / "such" / "dir" / "r.h5"))
    assert out.returncode == 2 and "--out" in out.stderr


@pytest.mark.parametrize("args, flag", [(["--copies", "0"], "--copies"),
                                        (["--steps", "0"], "--steps"),
                                        (["--temps", "0.1:0.01:3"], "--temps"),
                                        (["--temps", "a,b"], "--temps"),
                                        (["--step", "-1"], "--step"),
                                        (["--gamma", "0"], "--gamma"),
                                        (["--lam", "0"], "--lam"),
                                        (["--model", "factored", "--sampler", "exact"],
                                         "--sampler")])
def test_bad_sampling_options_are_one_line_errors(tmp_path, args, flag):
    out = cli("sample", *SMALL, *args, "--out", str(tmp_path / "r.h5"))
    assert out.returncode == 2, out.stderr
    assert flag in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.h5").exists()


def test_toml_config_with_command_line_override(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('D = 3\nN = 8\nP = 150\nlam = 0.05\ntest_prompts = 100\nsteps = 200\n'
                    'burn_in = 0\ntemps = "1e-3:1e-1:3"\nrecord_every = 10\ncopies = 3\n')
    out_path = tmp_path / "r.h5"
    out = cli("sample", "--config", str(toml), "--copies", "2", "--out", str(out_path), "-q")
    assert out.returncode == 0, out.stderr
    with h5py.File(out_path, "r") as f:
        cfg = json.loads(f.attrs["config"])
    assert cfg["copies"] == 2 and cfg["steps"] == 200 and cfg["task"]["D"] == 3
    toml.write_text("D = 3\nbogus_key = 1\n")
    out = cli("sample", "--config", str(toml), "--out", str(tmp_path / "s.h5"))
    assert out.returncode == 2 and "bogus_key" in out.stderr


def test_disk_full_marks_the_run_failed_and_keeps_its_records(tmp_path, monkeypatch):
    from spinicl.io import run as store

    path = str(tmp_path / "full.h5")
    real = store.RunWriter.write_records
    calls = {"n": 0}

    def failing(self):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self)

    monkeypatch.setattr(store.RunWriter, "write_records", failing)
    res = run_sample(small_config(steps=2000, burn_in=0), path, progress=False)
    assert res.status == "failed" and "disk full" in res.message and res.exit_code == 1
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
        assert f["trace/step"].shape[0] == 3 * 4  # three flushes of four records survived


def test_divergence_stops_with_a_message_and_keeps_the_records(tmp_path):
    path = str(tmp_path / "div.h5")
    res = run_sample(small_config(sampler="ula", step=50.0, steps=2000, burn_in=0), path,
                     progress=False)
    assert res.status == "failed" and "step" in res.message
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
        assert "diverged" in f.attrs["message"]


def test_config_validation_happens_before_work():
    with pytest.raises(ConfigError) as info:
        small_config(copies=0)
    assert info.value.param == "copies"


def test_runs_do_not_keep_the_raw_test_contexts():
    """Sampling needs only the factors of the test prompts (the contexts are for the
    per-prompt baselines): build_run leaves them out."""
    from spinicl.runner import build_run

    task = build_run(small_config())[0]
    for ps in (task.test_novel, task.test_in_distribution):
        assert ps.x_context is None and ps.y_context is None and ps.w is not None
