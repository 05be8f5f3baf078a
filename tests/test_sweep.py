"""Sweeps: TOML grids, the single writer, reruns, executors (a real Dask LocalCluster on
loopback), lost workers and Ctrl-C (docs/model.md §5)."""

import os
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from spinicl.config import ConfigError
from spinicl.io.sweep_file import read_grid
from spinicl.sweep import load_sweep, parse_sweep, run_sweep

SAMPLE_TOML = """
[sweep]
mode = "sample"
name = "test"

[task]
D = 3
N = 8
lam = 0.05
test_prompts = 80

[grid]
P = [60, 200]
seed = [0, 1]

[sampler]
sampler = "mala"
temps = "1e-3:1e-1:3"
copies = 2
steps = 400
burn_in = 100
record_every = 10
"""

THEORY_TOML = """
[sweep]
mode = "theory"

[task]
D = 4
N = 10
test_prompts = 100

[grid]
alpha = [0.5, 1.0, 2.0]
lam = [0.01, 0.1]
seed = [0, 1]

[sampler]
temps = "1e-4:1e-1:5"
"""


def summaries(path):
    out = {}
    with h5py.File(path, "r") as f:
        for pid in f["points"]:
            for name in f[f"points/{pid}/summary"]:
                for stat in f[f"points/{pid}/summary/{name}"]:
                    out[(pid, name, stat)] = f[f"points/{pid}/summary/{name}/{stat}"][...]
    return out


def assert_same(a, b):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))


def test_theory_sweep_grid_and_exact_values(tmp_path):
    cfg = parse_sweep(THEORY_TOML)
    assert len(cfg.points) == 12
    out = str(tmp_path / "t.h5")
    res = run_sweep(cfg, out, workers=1, progress=False)
    assert (res.done, res.failed) == (12, 0)
    g = read_grid(out)
    assert list(g["P"][:4]) == [8, 8, 8, 8] and set(g["lam"]) == {0.01, 0.1}
    assert all(s == "done" for s in g["status"])
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == "spinicl-sweep" and f.attrs["status"] == "complete"
        mean = f["points/0/summary/energy/mean"][...]
        exact = f["points/0/summary/energy/exact"][...]
        np.testing.assert_array_equal(mean, exact)
        T = f["points/0/ladder/T"][...]
        # ⟨E⟩ − E(m) = n/(2β): the thermal part is exactly n·T/2
        np.testing.assert_allclose(np.diff(mean), 25 * np.diff(T) / 2, rtol=1e-10)
    assert not os.path.exists(out + ".points")  # journal removed once complete


def test_rerun_skips_completed_points_and_other_configs_are_refused(tmp_path):
    cfg = parse_sweep(THEORY_TOML)
    out = str(tmp_path / "t.h5")
    run_sweep(cfg, out, workers=1, progress=False)
    again = run_sweep(cfg, out, workers=1, progress=False)
    assert again.ran == 0 and again.done == 12
    other = parse_sweep(THEORY_TOML.replace("N = 10", "N = 11"))
    with pytest.raises(ConfigError) as info:
        run_sweep(other, out, workers=1, progress=False)
    assert info.value.param == "out"


def test_unreadable_sweep_file_is_rebuilt_from_the_journal(tmp_path, monkeypatch, capsys):
    """The coordinator killed while writing the sweep file can leave it unreadable; the
    journal of finished points (kept until the sweep completes) rebuilds it, no point
    runs again."""
    import spinicl.sweep as sweep_mod

    cfg = parse_sweep(THEORY_TOML)
    ref = str(tmp_path / "ref.h5")
    run_sweep(cfg, ref, workers=1, progress=False)
    out = str(tmp_path / "t.h5")
    with monkeypatch.context() as m:
        m.setattr(sweep_mod.shutil, "rmtree", lambda *a, **k: None)   # keep the journal
        run_sweep(cfg, out, workers=1, progress=False)
    with open(out, "r+b") as fh:                                      # a torn write
        fh.truncate(os.path.getsize(out) // 3)
    res = run_sweep(cfg, out, workers=1, progress=False)
    assert (res.ran, res.done) == (0, 12)
    assert "rebuilt from the journal" in capsys.readouterr().err
    assert os.path.exists(out + ".unreadable")
    assert_same(summaries(ref), summaries(out))
    # a journal from another config never rebuilds: the unreadable file is an error
    other = parse_sweep(THEORY_TOML.replace("N = 10", "N = 11"))
    bad = str(tmp_path / "other.h5")
    with open(bad, "wb") as fh:
        fh.write(b"not hdf5")
    os.makedirs(bad + ".points")
    with open(os.path.join(bad + ".points", "config_hash"), "w") as fh:
        fh.write(cfg.hash)
    with pytest.raises(ConfigError) as info:
        run_sweep(other, bad, workers=1, progress=False)
    assert info.value.param == "out"


def test_local_and_dask_local_executors_agree_number_for_number(tmp_path):
    cfg = parse_sweep(SAMPLE_TOML)
    a, b = str(tmp_path / "local.h5"), str(tmp_path / "dask.h5")
    ra = run_sweep(cfg, a, executor="local", workers=2, progress=False)
    rb = run_sweep(cfg, b, executor="dask-local", workers=2, progress=False)
    assert ra.done == rb.done == 4
    assert_same(summaries(a), summaries(b))


def test_one_local_worker_runs_in_process_and_agrees_with_two(tmp_path, monkeypatch):
    import numba

    import spinicl.sweep as sweep_mod

    cfg = parse_sweep(SAMPLE_TOML)
    a, b = str(tmp_path / "one.h5"), str(tmp_path / "two.h5")
    rb = run_sweep(cfg, b, executor="local", workers=2, progress=False)

    def no_pool(*args, **kw):
        raise AssertionError("workers=1 must not start a process pool")

    monkeypatch.setattr(sweep_mod, "_local_results", no_pool)
    threads = numba.get_num_threads()
    ra = run_sweep(cfg, a, executor="local", workers=1, progress=False)
    assert numba.get_num_threads() == threads  # the point's 1-thread setting is undone
    assert ra.done == rb.done == 4 and ra.failed == 0
    assert_same(summaries(a), summaries(b))
    with h5py.File(a, "r") as f:
        assert f.attrs["status"] == "complete"
    assert not os.path.exists(a + ".points")


def test_in_process_point_first_signal_flags_second_aborts():
    """With one local worker a point runs in the coordinator: the first Ctrl-C asks the
    sampling loop to stop at its next record, a second one abandons the point at once."""
    from spinicl.sweep import _second_signal_aborts

    before = signal.getsignal(signal.SIGINT)
    flag = {"signum": None}
    with pytest.raises(KeyboardInterrupt), _second_signal_aborts(flag):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):
            if flag["signum"] is not None:
                break
            time.sleep(0.01)
        assert flag["signum"] == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        raise AssertionError("the second signal did not abort")
    assert signal.getsignal(signal.SIGINT) is before


def test_a_failing_point_is_marked_and_the_sweep_goes_on(tmp_path):
    text = SAMPLE_TOML.replace('sampler = "mala"', 'sampler = "ula"\nstep = 0.5').replace(
        "lam = 0.05\n", "").replace("seed = [0, 1]", "seed = [0]\nlam = [0.05, 20.0]")
    cfg = parse_sweep(text)
    res = run_sweep(cfg, str(tmp_path / "f.h5"), workers=1, progress=False)
    g = read_grid(str(tmp_path / "f.h5"))
    assert res.failed >= 1 and res.done >= 1
    failed = [m for s, m in zip(g["status"], g["message"], strict=True) if s == "failed"]
    assert failed and all("diverged" in m for m in failed)
    assert os.path.exists(str(tmp_path / "f.h5") + ".points")  # kept for the retry


def test_lost_dask_worker_loses_and_duplicates_nothing(tmp_path):
    from dask.distributed import Client, LocalCluster

    cfg = parse_sweep(SAMPLE_TOML.replace("steps = 400", "steps = 4000"))
    ref = str(tmp_path / "ref.h5")
    run_sweep(cfg, ref, workers=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        address = cluster.scheduler_address
        out = str(tmp_path / "lost.h5")
        result = {}

        def go():
            result["r"] = run_sweep(cfg, out, executor="dask", scheduler=address,
                                    progress=False)

        th = threading.Thread(target=go)
        th.start()
        # kill one worker process as soon as it is busy with a point
        for _ in range(400):
            busy = client.processing()
            if any(busy.values()):
                break
            time.sleep(0.05)
        pids = client.run(os.getpid)
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        th.join(timeout=300)
    assert result["r"].done == 4 and result["r"].failed == 0
    assert_same(summaries(ref), summaries(out))


def test_unanswering_scheduler_fails_within_seconds():
    cfg = parse_sweep(THEORY_TOML)
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as info:
        run_sweep(cfg, "never.h5", executor="dask", scheduler="tcp://127.0.0.1:9",
                  progress=False, connect_timeout=2.0)
    assert time.monotonic() - t0 < 15
    assert info.value.param == "scheduler" and "127.0.0.1:9" in str(info.value)
    assert not os.path.exists("never.h5")


def test_ctrl_c_keeps_finished_points_and_the_rerun_completes(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(SAMPLE_TOML.replace("steps = 400", "steps = 6000").replace(
        "P = [60, 200]", "P = [60, 100, 150, 200]"))
    out = str(tmp_path / "c.h5")
    cmd = [sys.executable, "-m", "spinicl.cli", "sweep", str(toml), "-o", out,
           "--workers", "1", "--no-plot", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(1200):  # wait for the first finished point
        time.sleep(0.1)
        if os.path.isdir(out + ".points") and any(
                n.endswith(".h5") for n in os.listdir(out + ".points")):
            break
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode == 130, proc.stderr.read().decode()
    g = read_grid(out)
    n_done = sum(s == "done" for s in g["status"])
    assert 1 <= n_done < 8
    assert "failed" not in set(g["status"])  # the interrupted point is not a failure
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert all(s == "done" for s in read_grid(out)["status"])
    ref = str(tmp_path / "ref.h5")
    run_sweep(load_sweep(str(toml)), ref, workers=2, progress=False)
    assert_same(summaries(ref), summaries(out))


@pytest.mark.parametrize("text, words", [
    ('[task]\nD = 3\nbogus = 1\n', "bogus"),
    ('[task]\nD = "three"\n[grid]\nseed = [0]\n', "D"),
    ('[grid]\nseed = []\n', "empty grid"),
    ('[weird]\nx = 1\n', "unknown section"),
    ('[grid]\nseed = [0]\n[sampler]\ninit = "bogus"\n', "init"),
    ('[grid]\nseed = [0]\n[sampler]\ninit = "missing-start.npy"\n', "init"),
])
def test_bad_sweep_files_are_one_line_errors_with_file_and_line(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = subprocess.run([sys.executable, "-m", "spinicl.cli", "sweep", str(path), "-o",
                          str(tmp_path / "x.h5")], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 2
    assert words in out.stderr and str(path) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    if words != "empty grid":
        assert "line" in out.stderr


def test_init_in_sweep_toml_and_its_hash(tmp_path):
    """``init`` in [sampler] reaches every point; the default ``ridge`` is left out of the
    hash (sweeps written before the key keep theirs), any other start changes it; a
    start file is read (and its shape checked) when the sweep is parsed."""
    base = parse_sweep(SAMPLE_TOML)
    ridge = parse_sweep(SAMPLE_TOML + 'init = "ridge"\n')
    rand = parse_sweep(SAMPLE_TOML + 'init = "random"\n')
    assert ridge.hash == base.hash and rand.hash != base.hash
    assert "init" not in base.canonical()["sampler"]
    assert {p.sample.init for p in rand.points} == {"random"}
    start = tmp_path / "start.npy"
    np.save(start, np.zeros(16))
    from_file = parse_sweep(SAMPLE_TOML + f'init = "{start}"\n')
    assert from_file.points[0].sample.init == str(start)
    np.save(start, np.zeros(15))          # 15 spins: not the merged model's 16 at D = 3
    with pytest.raises(ConfigError, match="init"):
        parse_sweep(SAMPLE_TOML + f'init = "{start}"\n')
    with pytest.raises(ConfigError, match="init"):
        parse_sweep(SAMPLE_TOML + "init = 3\n")
