"""Nothing lost and nothing mixed, under every fault (issue 17): stale journals of another
configuration, two coordinators on one sweep file, two writers of one run file."""

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from spinicl.config import ConfigError
from spinicl.io.sweep_file import read_grid, sweep_lock
from spinicl.sweep import parse_sweep, run_sweep

THEORY_TOML = """
[sweep]
mode = "theory"

[task]
D = 4
N = 10
test_prompts = 100

[grid]
alpha = [0.5, 1.0]
seed = [0, 1]

[sampler]
temps = "1e-4:1e-1:5"
"""


def _means(path: str) -> dict[int, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {int(p): f[f"points/{p}/summary/energy/mean"][...] for p in f["points"]}


def _keep_journal(monkeypatch) -> None:
    import spinicl.sweep as sweep_mod

    monkeypatch.setattr(sweep_mod.shutil, "rmtree", lambda *a, **k: None)


def test_stale_journal_of_another_config_is_set_aside_not_merged(tmp_path, monkeypatch,
                                                                 capsys):
    """Finding 1: a journal left by a killed sweep, its sweep file deleted, then a sweep of
    another configuration to the same -o: the old numbers never enter the new file."""
    old = parse_sweep(THEORY_TOML.replace("N = 10", "N = 12"))
    new = parse_sweep(THEORY_TOML)
    out = str(tmp_path / "s.h5")
    with monkeypatch.context() as m:
        _keep_journal(m)
        run_sweep(old, out, workers=1, progress=False)
    os.remove(out)  # the sweep file is gone, its journal is not
    ref = str(tmp_path / "ref.h5")
    run_sweep(new, ref, workers=1, progress=False)
    capsys.readouterr()
    res = run_sweep(new, out, workers=1, progress=False)
    assert (res.ran, res.done) == (4, 4)  # every point ran again, none was merged
    err = capsys.readouterr().err
    aside = f"{out}.points.stale-{old.hash}"
    assert "another sweep configuration" in err and aside in err
    assert len(err.strip().splitlines()) == 1
    assert os.path.isdir(aside) and not os.path.exists(out + ".points")
    ref_means, got = _means(ref), _means(out)
    assert ref_means.keys() == got.keys()
    for k in ref_means:
        np.testing.assert_array_equal(ref_means[k], got[k])


def test_journal_points_of_another_config_or_outside_the_grid_never_merge(tmp_path,
                                                                            monkeypatch):
    """Finding 1, second half: point files of another config (same marker), point ids
    beyond the grid and junk names are skipped, not merged and no IndexError."""
    big = parse_sweep(THEORY_TOML.replace("seed = [0, 1]", "seed = [0, 1, 2, 3]"))
    small = parse_sweep(THEORY_TOML)
    out = str(tmp_path / "s.h5")
    with monkeypatch.context() as m:
        _keep_journal(m)
        run_sweep(big, out, workers=1, progress=False)  # journal holds ids 0..7
    os.remove(out)
    journal = out + ".points"
    with open(os.path.join(journal, "config_hash"), "w") as fh:
        fh.write(small.hash)  # a lying marker: the point files still carry `big`'s hash
    for junk in ("x.h5", "-1.h5", "99999999999999999999999.h5"):
        open(os.path.join(journal, junk), "wb").close()
    res = run_sweep(small, out, workers=1, progress=False)
    assert (res.ran, res.done, res.failed) == (4, 4, 0)
    ref = str(tmp_path / "ref.h5")
    run_sweep(small, ref, workers=1, progress=False)
    ref_means, got = _means(ref), _means(out)
    for k in ref_means:
        np.testing.assert_array_equal(ref_means[k], got[k])


def test_second_coordinator_is_refused_naming_the_holder(tmp_path):
    """Finding 2: while one coordinator holds a sweep file, a second one is refused with
    a one-line ConfigError naming the holder; the lock goes away with the holder."""
    cfg = parse_sweep(THEORY_TOML)
    out = str(tmp_path / "s.h5")
    with sweep_lock(out):
        with pytest.raises(ConfigError) as info:
            run_sweep(cfg, out, workers=1, progress=False)
        msg = str(info.value)
        assert info.value.param == "out" and f"pid {os.getpid()}" in msg
        assert "\n" not in msg
        assert not os.path.exists(out)  # refused before anything was written
    assert not os.path.exists(out + ".lock")
    assert run_sweep(cfg, out, workers=1, progress=False).done == 4
    assert all(s == "done" for s in read_grid(out)["status"])


def test_sweep_lock_is_released_by_a_killed_holder(tmp_path):
    """The lock is an flock: a SIGKILLed coordinator never leaves a lock that blocks."""
    out = str(tmp_path / "s.h5")
    code = textwrap.dedent(f"""
        import os, signal
        from spinicl.io.sweep_file import sweep_lock
        with sweep_lock({out!r}):
            print("locked", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.stdout.strip() == "locked" and proc.returncode == -9
    assert os.path.exists(out + ".lock")  # left behind, but not held
    with sweep_lock(out):
        pass
    assert not os.path.exists(out + ".lock")


def test_two_coordinators_at_once_one_runs_the_other_is_refused(tmp_path):
    """Finding 2 end to end: two `spinicl sweep` on one -o; exactly one runs the sweep
    (complete), the other exits 2 with one line; the file ends complete."""
    toml = tmp_path / "s.toml"
    toml.write_text(THEORY_TOML)
    out = str(tmp_path / "s.h5")
    cmd = [sys.executable, "-m", "spinicl.cli", "sweep", str(toml), "-o", out,
           "--workers", "1", "--no-plot", "-q"]
    code = textwrap.dedent(f"""
        import sys
        import spinicl.sweep as m
        real = m._run_sweep_locked
        def slow(*a, **k):
            open({out!r} + ".started", "w").close()
            import time; time.sleep(3)
            return real(*a, **k)
        m._run_sweep_locked = slow
        from spinicl.cli import main
        sys.argv = {["spinicl", *cmd[3:]]!r}
        main()
    """)
    first = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    import time

    for _ in range(600):
        if os.path.exists(out + ".started"):
            break
        time.sleep(0.05)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "locked by pid" in second.stderr
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"


# ----------------------------------------------------------------- exclusive outputs
def test_place_new_file_is_exclusive_without_force(tmp_path):
    from spinicl.io.run import place_new_file

    out, tmp = tmp_path / "o.h5", tmp_path / "o.h5.1.tmp"
    tmp.write_text("mine")
    place_new_file(str(tmp), str(out), force=False)
    assert out.read_text() == "mine" and not tmp.exists()
    tmp.write_text("second")
    with pytest.raises(ConfigError) as info:
        place_new_file(str(tmp), str(out), force=False)
    assert info.value.param == "out" and "--force" in str(info.value)
    assert out.read_text() == "mine" and not tmp.exists()
    tmp.write_text("forced")
    place_new_file(str(tmp), str(out), force=True)
    assert out.read_text() == "forced" and not tmp.exists()


def _tiny_sample():
    from spinicl.config import SampleConfig, TaskConfig

    return SampleConfig(task=TaskConfig(D=3, N=6, P=20, test_prompts=20), sampler="mala",
                        temperatures=(1e-2, 1e-1), copies=1, steps=40, burn_in=10,
                        record_every=10)


def test_sample_never_overwrites_a_file_created_while_it_was_set_up(tmp_path,
                                                                    monkeypatch):
    """Finding 3: the output appears between the existence check and the move into
    place (another `spinicl sample -o same.h5`): this run is refused, the file is kept."""
    from spinicl import runner

    out = tmp_path / "r.h5"
    real = runner.build_run

    def racing_build_run(cfg):
        out.write_bytes(b"the other writer's file")
        return real(cfg)

    monkeypatch.setattr(runner, "build_run", racing_build_run)
    with pytest.raises(ConfigError) as info:
        runner.run_sample(_tiny_sample(), str(out), progress=False)
    assert info.value.param == "out"
    assert out.read_bytes() == b"the other writer's file"
    assert sorted(os.listdir(tmp_path)) == ["r.h5"]  # no temporary file left behind
    # --force keeps its meaning: the run replaces it
    res = runner.run_sample(_tiny_sample(), str(out), force=True, progress=False)
    assert res.status == "complete"
    assert sorted(os.listdir(tmp_path)) == ["r.h5"]


def test_two_concurrent_samples_to_one_output_only_one_succeeds(tmp_path):
    """Finding 3 end to end: two `spinicl sample -o same.h5` started together; at most
    one reports success, the other exits 2 ("created by another process" or "exists")."""
    out = str(tmp_path / "same.h5")
    cmd = [sys.executable, "-m", "spinicl.cli", "sample", "--D", "3", "--N", "6", "--P",
           "20", "--steps", "200", "--burn-in", "50", "--temps", "1e-2:1e-1:2", "-q",
           "-o", out]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[0] == 2)
    assert len(loser[2].strip().splitlines()) == 1 and "--force" in loser[2]
    assert sorted(os.listdir(tmp_path)) == ["same.h5"]


def test_training_output_is_exclusive_too(tmp_path, monkeypatch):
    """`spinicl train -o` uses the same exclusive move."""
    from spinicl import training
    from spinicl.io import training_file

    out = tmp_path / "t.h5"
    calls = {}
    real = training_file.place_new_file

    def racing(tmp, path, force):
        if not calls:
            out.write_bytes(b"other")
            calls["x"] = 1
        return real(tmp, path, force)

    monkeypatch.setattr(training_file, "place_new_file", racing)
    from spinicl.config import TaskConfig
    from spinicl.prompts import make_task

    task = make_task(TaskConfig(D=3, N=6, P=20, test_prompts=20))
    result = training.train(task, training.TrainConfig(epochs=2))
    with pytest.raises(ConfigError):
        training_file.write_training(str(out), task, result)
    assert out.read_bytes() == b"other"
    assert sorted(os.listdir(tmp_path)) == ["t.h5"]


# ----------------------------------------------------------------- full disk
def test_full_disk_fails_cleanly_and_resumes_bit_identical(tmp_path):
    """Finding 5: on a 300 KB tmpfs a run stops with status failed / "disk full", exit 1,
    no segfault, no stray temporary files; once there is room it resumes to the same
    numbers as a run that never stopped."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mount.stderr.strip()}")
    try:
        args = ["--D", "5", "--N", "20", "--P", "500", "--steps", "4000", "-q"]
        cmd = [sys.executable, "-m", "spinicl.cli", "sample", *args]
        out = str(disk / "r.h5")
        full = subprocess.run([*cmd, "-o", out], capture_output=True, text=True,
                              timeout=300, check=False)
        assert full.returncode == 1, full.stderr
        assert "disk full" in full.stderr and "Traceback" not in full.stderr
        assert os.listdir(disk) == ["r.h5"]
        with h5py.File(out, "r") as f:
            assert f.attrs["status"] == "failed" and "disk full" in f.attrs["message"]
        subprocess.run(["mount", "-o", "remount,size=50m", str(disk)], check=True)
        res = subprocess.run([sys.executable, "-m", "spinicl.cli", "resume", "-q", out],
                             capture_output=True, text=True, timeout=300, check=False)
        assert res.returncode == 0, res.stderr
        ref = str(tmp_path / "ref.h5")
        subprocess.run([*cmd, "-o", ref], check=True, timeout=300, capture_output=True)
        with h5py.File(out, "r") as a, h5py.File(ref, "r") as b:
            assert a.attrs["status"] == "complete"
            for name in b["trace"]:
                np.testing.assert_array_equal(a[f"trace/{name}"][...],
                                              b[f"trace/{name}"][...], err_msg=name)
        assert os.listdir(disk) == ["r.h5"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)
