"""Signals and other processes, wherever they strike (issue 17).

* SIGINT/SIGTERM at any moment of `spinicl sample` / `resume` (start-up, set-up, the run,
  the finish, the final messages): one line, exit 128 + signal, no traceback; the output
  is absent with no temporary file, or readable and resumable to completion.
* Pool workers end with their coordinator, even when it is killed with SIGKILL.
* A reader holding a run or sweep file open (HDF5's file lock) makes the writer wait,
  not die; after ~10 s it gives up with one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

SPINICL = [sys.executable, "-m", "spinicl.cli"]
TINY = ["--D", "3", "--N", "6", "--P", "20", "--burn-in", "50", "--temps", "1e-2:1e-1:2",
        "-q"]


def _status(path: str) -> str:
    with h5py.File(path, "r", swmr=True) as f:
        return str(f.attrs["status"])


def _check_outcome(proc: subprocess.CompletedProcess | subprocess.Popen, err: str,
                   sig: int, out: str) -> None:
    """The invariants of a signalled command (see the module doc)."""
    d = os.path.dirname(out)
    assert "Traceback" not in err, err
    if proc.returncode in (0, -sig):
        # the signal came after the command had finished: rc 0, or killed while the
        # interpreter shut down (Python restores the default handlers then)
        assert _status(out) == "complete"
        assert proc.returncode == 0 or not err.strip(), err
    else:
        assert proc.returncode == 128 + sig, (proc.returncode, err)
        assert err.strip() and "spinicl:" in err, err
    # nothing but the output itself: no <out>.<pid>.tmp, .finish or .resume left
    assert set(os.listdir(d)) <= {os.path.basename(out)}, os.listdir(d)
    if not os.path.exists(out):
        return
    info = subprocess.run([*SPINICL, "info", out], capture_output=True, text=True,
                          timeout=120, check=False)
    assert info.returncode == 0, info.stderr
    if _status(out) != "complete":
        res = subprocess.run([*SPINICL, "resume", "-q", out], capture_output=True,
                             text=True, timeout=300, check=False)
        assert res.returncode == 0, res.stderr
        assert _status(out) == "complete"
    assert set(os.listdir(d)) == {os.path.basename(out)}


#: Moments after the start: interpreter start, imports, set-up, the run, its end.
DELAYS = [0.08, 0.3, 0.6, 1.0, 1.6, 2.5]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("delay", DELAYS)
def test_sample_signalled_at_any_moment(tmp_path, sig, delay):
    out = str(tmp_path / "r.h5")
    p = subprocess.Popen([*SPINICL, "sample", *TINY, "--steps", "30000", "-o", out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(sig)
    _, err = p.communicate(timeout=300)
    _check_outcome(p, err, sig, out)
    if p.returncode:
        assert len(err.strip().splitlines()) <= 2, err  # the outcome, records kept


@pytest.mark.parametrize("delay", [0.1, 0.5, 1.2])
def test_resume_signalled_at_any_moment(tmp_path, delay):
    out = str(tmp_path / "r.h5")
    first = subprocess.Popen([*SPINICL, "sample", *TINY, "--steps", "30000", "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # interrupt it once its file exists (a cold
    while not os.path.exists(out) and time.monotonic() < deadline:  # compile is slow)
        time.sleep(0.05)
    time.sleep(0.3)
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=300)
    assert os.path.exists(out), "the first run never created its file"
    p = subprocess.Popen([*SPINICL, "resume", "-q", out], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    _check_outcome(p, err, signal.SIGTERM, out)


def _run_main(argv: list[str]) -> int:
    from spinicl.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_signal_while_the_file_is_finished_leaves_it_complete(tmp_path, monkeypatch,
                                                              capsys):
    """SIGINT while the status and summary are written: the file is still finished
    (complete), the command says so in one line and exits 130."""
    from spinicl import runner

    real = runner.finish_run

    def finish_with_a_signal(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(runner, "finish_run", finish_with_a_signal)
    out = str(tmp_path / "r.h5")
    code = _run_main(["sample", *TINY, "--steps", "200", "-o", out])
    err = capsys.readouterr().err
    assert code == 130, err
    assert "after the last step" in err and "Traceback" not in err
    assert _status(out) == "complete"
    assert os.listdir(tmp_path) == ["r.h5"]


def test_signal_during_the_final_messages_is_one_line(tmp_path, monkeypatch, capsys):
    """SIGTERM after the run is finished, while the result is printed: exit 143, one
    line, the file complete (the former `except Exception` re-raised click's Abort)."""
    from spinicl import cli

    real = cli._finish

    def finish_with_a_signal(res):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(res)

    monkeypatch.setattr(cli, "_finish", finish_with_a_signal)
    out = str(tmp_path / "r.h5")
    code = _run_main(["sample", *TINY, "--steps", "200", "-o", out])
    err = capsys.readouterr().err
    assert code == 143, err
    assert err.strip().splitlines() == ["spinicl: stopped by SIGTERM"]
    assert _status(out) == "complete"


def test_signal_during_set_up_writes_nothing(tmp_path, monkeypatch, capsys):
    from spinicl import runner

    real = runner.build_run

    def build_with_a_signal(cfg):
        os.kill(os.getpid(), signal.SIGINT)
        return real(cfg)

    monkeypatch.setattr(runner, "build_run", build_with_a_signal)
    code = _run_main(["sample", *TINY, "--steps", "200", "-o", str(tmp_path / "r.h5")])
    err = capsys.readouterr().err
    assert code == 130
    assert len(err.strip().splitlines()) == 1 and "nothing was written" in err
    assert os.listdir(tmp_path) == []


def test_signal_while_the_layout_is_built_gives_an_interrupted_file(tmp_path, monkeypatch,
                                                                    capsys):
    """SIGTERM inside create_layout: recorded, the file is put in place and stopped at
    step 0 (status interrupted), resumable; no temporary file."""
    from spinicl import runner

    real = runner.create_layout

    def layout_with_a_signal(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(runner, "create_layout", layout_with_a_signal)
    out = str(tmp_path / "r.h5")
    assert _run_main(["sample", *TINY, "--steps", "200", "-o", out]) == 143
    assert _status(out) == "interrupted"
    assert os.listdir(tmp_path) == ["r.h5"]
    monkeypatch.undo()
    capsys.readouterr()
    assert _run_main(["resume", "-q", out]) == 0
    assert _status(out) == "complete"


def test_stale_temporary_of_a_killed_run_is_removed(tmp_path):
    """A run killed (SIGKILL) while it built its file leaves ``<out>.<pid>.tmp``; the next
    run to that output removes it (its process is gone)."""
    from spinicl.io.run import remove_stale_temporaries

    out = str(tmp_path / "r.h5")
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                       capture_output=True, text=True, check=True)
    dead = int(p.stdout)
    open(f"{out}.{dead}.tmp", "wb").close()
    mine = f"{out}.{os.getpid()}.tmp"
    open(mine, "wb").close()
    assert remove_stale_temporaries(out) == [f"{out}.{dead}.tmp"]
    assert os.listdir(tmp_path) == [os.path.basename(mine)]


# ----------------------------------------------------------------- pool workers
SLOW_SWEEP = """
[sweep]
mode = "sample"

[task]
D = 3
N = 8
test_prompts = 50

[grid]
P = [60, 80, 100, 120]

[sampler]
sampler = "mala"
temps = "1e-3:1e-1:3"
steps = 100000000
burn_in = 100
record_every = 10
"""


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else ():
            try:
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            for k in kids:
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_end_with_a_killed_coordinator(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(SLOW_SWEEP)
    coord = subprocess.Popen([*SPINICL, "sweep", str(toml), "-o", str(tmp_path / "s.h5"),
                              "--workers", "2", "-q", "--no-plot"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kids: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the two workers (and the resource tracker)
            kids = _descendants(coord.pid)
            if len(kids) >= 3 or (len(kids) >= 2 and time.monotonic() > deadline - 100):
                break
            time.sleep(0.2)
        assert len(kids) >= 2, kids
        time.sleep(2.0)  # let the workers start their points
        kids = _descendants(coord.pid)
        coord.kill()
        coord.wait(timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        left = [k for k in kids if _alive(k)]
        assert not left, f"still running after the coordinator's SIGKILL: {left}"
    finally:
        if coord.poll() is None:
            coord.kill()
        for k in kids:  # cleanup only: the assertion above is the test
            with contextlib.suppress(OSError):
                os.kill(k, signal.SIGKILL)


# ----------------------------------------------------------------- file locks
HOLDER = textwrap.dedent("""
    import sys, time, h5py
    f = h5py.File(sys.argv[1], "r", swmr=True)
    print("open", flush=True)
    time.sleep(float(sys.argv[2]))
    f.close()
""")


def _hold(path: str, seconds: float) -> subprocess.Popen:
    """A second process that opens ``path`` as a documented SWMR reader and holds it."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, path, str(seconds)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "open"
    return p


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> str:
    from spinicl.config import SampleConfig, TaskConfig
    from spinicl.runner import run_sample

    out = str(tmp_path_factory.mktemp("lock") / "run.h5")
    cfg = SampleConfig(task=TaskConfig(D=3, N=6, P=20, test_prompts=20), sampler="mala",
                       temperatures=(1e-2, 1e-1), copies=1, steps=100, burn_in=10,
                       record_every=10)
    assert run_sample(cfg, out, progress=False).status == "complete"
    return out


def test_swmr_writer_waits_for_a_reader_holding_the_file(finished_run, tmp_path):
    """The race of the finding made certain: a SWMR reader opened the run file before
    the writer: the writer waits until it lets go, instead of BlockingIOError."""
    import shutil

    from spinicl.io.run import RunWriter

    path = str(tmp_path / "r.h5")
    shutil.copy(finished_run, path)
    holder = _hold(path, 1.5)
    t0 = time.monotonic()
    w = RunWriter(path)
    waited = time.monotonic() - t0
    w.close()
    holder.wait(timeout=30)
    assert waited > 0.5  # it did meet the lock


def test_writer_gives_up_after_its_wait_with_one_line(finished_run, tmp_path, monkeypatch):
    import shutil

    from spinicl.io import run as store

    path = str(tmp_path / "r.h5")
    shutil.copy(finished_run, path)
    monkeypatch.setattr(store, "LOCK_WAIT_SECONDS", 0.5)
    holder = _hold(path, 20)
    try:
        with pytest.raises(store.StoreError) as info:
            store.RunWriter(path)
    finally:
        holder.kill()
        holder.wait()
    msg = str(info.value)
    assert "locked by another process" in msg and path in msg and "\n" not in msg


def test_finish_in_place_waits_for_a_reader(finished_run, tmp_path, monkeypatch):
    """The full-disk path of finish_run writes the status in place: it waits too."""
    import errno
    import shutil

    from spinicl.io import run as store

    path = str(tmp_path / "r.h5")
    shutil.copy(finished_run, path)

    def no_room(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.shutil, "copyfile", no_room)
    holder = _hold(path, 1.0)
    store.finish_run(path, "failed", "test")
    holder.wait(timeout=30)
    assert _status(path) == "failed"


def test_sweep_writer_waits_for_a_reader(tmp_path):
    from spinicl.io.sweep_file import SweepWriter
    from spinicl.sweep import parse_sweep

    cfg = parse_sweep(SLOW_SWEEP.replace('mode = "sample"', 'mode = "theory"'))
    path = str(tmp_path / "s.h5")
    w = SweepWriter(path, cfg)
    holder = _hold(path, 1.0)
    w.add({"id": 0, "status": "failed", "message": "test", "seconds": 1.0})
    w.flush()  # h5py.File(path, "r+") met the reader's lock: it waited
    holder.wait(timeout=30)
    with h5py.File(path, "r") as f:
        assert f["grid/status"][0] in (b"failed", "failed")


POLLER = textwrap.dedent("""
    import os, sys, time, h5py
    path, until = sys.argv[1], time.monotonic() + float(sys.argv[2])
    opens = 0
    while time.monotonic() < until:
        if os.path.exists(path):
            try:
                with h5py.File(path, "r", swmr=True):
                    opens += 1
                    time.sleep(0.3)
            except OSError:
                pass
        time.sleep(0.05)
    print(opens)
""")


def test_sample_survives_a_polling_swmr_reader(tmp_path):
    """A monitor that opens the run file (SWMR, as documented) every 50 ms and holds it
    300 ms from the moment it appears: the run completes."""
    out = str(tmp_path / "r.h5")
    poller = subprocess.Popen([sys.executable, "-c", POLLER, out, "8"],
                              stdout=subprocess.PIPE, text=True)
    res = subprocess.run([*SPINICL, "sample", *TINY, "--steps", "400", "-o", out],
                         capture_output=True, text=True, timeout=300, check=False)
    opens = int(poller.communicate(timeout=60)[0])
    assert res.returncode == 0, res.stderr
    assert opens > 0
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "complete"
        assert np.all(np.diff(f["trace/step"][...]) > 0)


def test_handler_defers_where_an_exception_would_be_swallowed():
    """Signals met inside callbacks whose exceptions Python ignores are asked again."""
    from types import SimpleNamespace as NS

    from spinicl.signals import _swallowing

    def frame(filename, name, back=None):
        return NS(f_code=NS(co_filename=filename, co_name=name), f_back=back)

    main = frame("/x/spinicl/runner.py", "run_sample")
    assert not _swallowing(main)
    assert _swallowing(frame("<frozen importlib._bootstrap>", "cb", main))
    assert _swallowing(frame("/usr/lib/python3/weakref.py", "remove", main))
    assert _swallowing(frame("/x/mod.py", "__del__", main))
    assert not _swallowing(frame("<frozen importlib._bootstrap>", "_find_and_load", main))
