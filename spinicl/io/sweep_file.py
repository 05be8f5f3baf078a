"""The sweep file (``spinicl-sweep``) and its journal: the single writer, the
coordinator's lock, and the one reader of sweep results (docs/model.md §5).

Sweep file layout::

    /            attrs: format = "spinicl-sweep", format_version, config (JSON),
                        config_hash, spinicl_version, command_line, status
    /grid/<col>  one row per point: id, D, N, P, K, seed (int); alpha, lam, tau, kappa,
                 alpha_L (float); status (pending | done | failed), message, seconds
    /points/<id>/ladder/T, /points/<id>/summary/<obs>/{mean, stderr, tau_int, ess, exact}
                 (the run layout's summary; in theory mode mean = exact, stderr = 0)

Journal: ``OUT.points/<id>.h5``, one finished point per file (root attrs config_hash, id,
status, message, seconds; the point's ``ladder/T`` and ``summary`` as above), written
under a temporary name and moved into place atomically, plus ``OUT.points/config_hash``
naming the configuration it belongs to. The writer merges it into the sweep file in
short ``r+`` opens; a sweep file the coordinator was killed while writing is rebuilt
from it (:class:`SweepWriter`).

Readers: :func:`read_sweep` (grid, attributes and per-point results: what the plots
(:mod:`spinicl.plots.sweeps`) and the loaders (:mod:`spinicl.io.loaders`) build on) and
:func:`read_grid` (the /grid table alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from spinicl import __version__
from spinicl.config import ConfigError
from spinicl.io.hdf5 import open_read, plain, read_column
from spinicl.io.run import open_locked_retry

if TYPE_CHECKING:  # pragma: no cover - typing only
    from spinicl.sweep import SweepConfig

FORMAT_NAME = "spinicl-sweep"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- writer
def write_point_group(g: h5py.Group, result: dict[str, Any]) -> None:
    g.create_dataset("ladder/T", data=np.asarray(result["temperatures"], dtype=float))
    for name, stats in result["summary"].items():
        for k, v in stats.items():
            g.create_dataset(f"summary/{name}/{k}", data=np.asarray(v, dtype=float))


def write_journal(journal: str, result: dict[str, Any], config_hash: str = "") -> None:
    """One finished point into its own file, atomically, stamped with the hash of the
    sweep configuration it belongs to (a point of another configuration is never merged)."""
    final = os.path.join(journal, f"{result['id']}.h5")
    tmp = final + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["config_hash"] = config_hash
        f.attrs["id"] = result["id"]
        f.attrs["status"] = result["status"]
        f.attrs["message"] = result["message"]
        f.attrs["seconds"] = result["seconds"]
        if result["status"] == "done":
            write_point_group(f, result)
    os.replace(tmp, final)


def read_journal(path: str) -> dict[str, Any] | None:
    try:
        with h5py.File(path, "r") as f:
            out = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            out["id"] = int(out["id"])
            if out["status"] == "done":
                out["temperatures"] = f["ladder/T"][...]
                out["summary"] = {n: {k: f[f"summary/{n}/{k}"][...] for k in f[f"summary/{n}"]}
                                  for n in f["summary"]}
        return out
    except (OSError, KeyError, ValueError, TypeError):
        return None  # a torn or foreign journal entry: the point simply runs again


@contextlib.contextmanager
def sweep_lock(path: str):
    """Hold the lock of the sweep file ``path`` (``path + ".lock"``) while the block runs.

    One coordinator per sweep file: the lock is an ``fcntl.flock`` on the lock file,
    which the OS releases when the process ends in any way (SIGKILL included), so a
    stale lock never blocks a rerun. The holder writes its pid, host and start time into
    the file; the lock file is removed when the block ends.

    Raises
    ------
    ConfigError
        ``out``: another coordinator holds the lock (the message names it).
    """
    import fcntl
    import socket

    lock = path + ".lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.read(fd, 400).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError("out", "a sweep file no other coordinator is running", path,
                              f"locked by {holder or 'another process'} ({lock})") from None
        try:  # the file we locked may have been removed by the holder that just ended
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except OSError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


class SweepWriter:
    """The single writer of a sweep file (coordinator side)."""

    def __init__(self, path: str, cfg: SweepConfig, command_line: str = ""):
        self.path = path
        self.cfg = cfg
        self.journal = path + ".points"
        marker = os.path.join(self.journal, "config_hash")
        if os.path.exists(path) and not self._readable() and self._journal_hash() == cfg.hash:
            # killed while writing the sweep file: every finished point is in the journal
            aside = path + ".unreadable"
            os.replace(path, aside)
            print(f"spinicl: {path} could not be opened (the coordinator was killed while "
                  f"writing it?); moved to {aside} and rebuilt from the journal "
                  f"{self.journal}", file=sys.stderr)
        if os.path.exists(path):
            self._check_existing()
        self._set_aside_stale_journal()
        os.makedirs(self.journal, exist_ok=True)
        if not os.path.exists(path):
            self._create(command_line)
        if not os.path.exists(marker):
            with open(marker + ".tmp", "w") as fh:
                fh.write(cfg.hash)
            os.replace(marker + ".tmp", marker)
        self.status = self._read_status()
        self._pending: list[dict[str, Any]] = []
        self.merge_journal()

    def _create(self, command_line: str) -> None:
        tmp = self.path + ".tmp"
        pts = self.cfg.points
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["spinicl_version"] = __version__
            f.attrs["config"] = json.dumps(self.cfg.canonical(), sort_keys=True)
            f.attrs["config_hash"] = self.cfg.hash
            f.attrs["command_line"] = command_line
            f.attrs["status"] = "running"
            rows = [p.row() for p in pts]
            for col in ("id", "D", "N", "P", "K", "seed"):
                f.create_dataset(f"grid/{col}", data=np.array([r[col] for r in rows],
                                                              dtype=np.int64))
            for col in ("alpha", "lam", "tau", "kappa", "alpha_L"):
                f.create_dataset(f"grid/{col}", data=np.array([r[col] for r in rows],
                                                              dtype=float))
            f.create_dataset("grid/seconds", data=np.full(len(pts), np.nan))
            st = h5py.string_dtype()
            f.create_dataset("grid/status", data=np.array(["pending"] * len(pts), dtype=object),
                             dtype=st)
            f.create_dataset("grid/message", data=np.array([""] * len(pts), dtype=object),
                             dtype=st)
            f.create_group("points")
        os.replace(tmp, self.path)

    def _open_rw(self) -> h5py.File:
        """The sweep file opened for writing, waiting (up to ~10 s) for a reader that
        holds its lock (``spinicl info``, a plot) instead of failing at once."""
        return open_locked_retry(lambda: h5py.File(self.path, "r+"), self.path)

    def _readable(self) -> bool:
        try:
            with h5py.File(self.path, "r") as f:
                f["grid/status"][...]
        except (OSError, KeyError):
            return False
        return True

    def _journal_hash(self) -> str | None:
        """The config hash the journal was started with (None for an older journal)."""
        try:
            with open(os.path.join(self.journal, "config_hash")) as fh:
                return fh.read().strip()
        except OSError:
            return None

    def _set_aside_stale_journal(self) -> None:
        """Move a journal left by a sweep of another configuration (a different hash in
        its ``config_hash`` marker) to ``OUT.points.stale-<hash>``, with one line on
        stderr: it is never merged into this sweep, and nothing of it is deleted."""
        old = self._journal_hash()
        if not os.path.isdir(self.journal) or old is None or old == self.cfg.hash:
            return
        aside = f"{self.journal}.stale-{re.sub(r'[^0-9A-Za-z]', '', old)[:16] or 'x'}"
        if os.path.exists(aside):
            aside = f"{aside}.{time.time_ns()}"
        os.replace(self.journal, aside)
        print(f"spinicl: the journal {self.journal} belongs to another sweep configuration "
              f"({old}, this is {self.cfg.hash}); moved to {aside}, not merged",
              file=sys.stderr)

    def _check_existing(self) -> None:
        try:
            with h5py.File(self.path, "r") as f:
                fmt = f.attrs.get("format")
                h = f.attrs.get("config_hash")
        except OSError as exc:
            raise ConfigError("out", "a readable spinicl sweep file (or a new path)",
                              self.path, str(exc).splitlines()[0]) from None
        if fmt != FORMAT_NAME:
            raise ConfigError("out", "a spinicl sweep file (or a new path)", self.path,
                              "the file exists and is not a sweep file")
        if h != self.cfg.hash:
            raise ConfigError("out", "a sweep file made from the same config (or a new "
                              "path)", self.path, f"it belongs to config {h}, this is "
                              f"{self.cfg.hash}")

    def _read_status(self) -> list[str]:
        with h5py.File(self.path, "r") as f:
            return [s.decode() if isinstance(s, bytes) else s for s in f["grid/status"][...]]

    def merge_journal(self) -> int:
        """Merge finished points from the journal that the sweep file lacks."""
        new = []
        for name in os.listdir(self.journal):
            m = re.fullmatch(r"(\d{1,18})\.h5", name)
            if m is None:
                continue
            pid = int(m.group(1))
            if pid >= len(self.status) or self.status[pid] == "done":
                continue  # outside this grid (a foreign file), or merged already
            r = read_journal(os.path.join(self.journal, name))
            # a point of another configuration (or an unstamped one) is never merged:
            # it simply runs again
            if r is not None and r["id"] == pid and r.get("config_hash") == self.cfg.hash:
                new.append(r)
        self._pending.extend(new)
        self.flush()
        return len(new)

    def add(self, result: dict[str, Any]) -> None:
        write_journal(self.journal, result, self.cfg.hash)
        self._pending.append(result)

    def flush(self) -> None:
        if not self._pending:
            return
        with self._open_rw() as f:
            for r in self._pending:
                pid = r["id"]
                key = f"points/{pid}"
                if key in f:
                    del f[key]
                if r["status"] == "done":
                    write_point_group(f.create_group(key), r)
                f["grid/status"][pid] = r["status"]
                f["grid/message"][pid] = r.get("message", "")
                f["grid/seconds"][pid] = r.get("seconds", np.nan)
                self.status[pid] = r["status"]
        self._pending.clear()

    def close(self, interrupted: bool = False) -> None:
        self.flush()
        complete = all(s in ("done", "failed") for s in self.status)
        with self._open_rw() as f:
            f.attrs["status"] = ("complete" if complete and not interrupted else
                                 "interrupted" if interrupted else "incomplete")
        if complete and not any(s == "failed" for s in self.status):
            shutil.rmtree(self.journal, ignore_errors=True)


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class PointResults:
    """The results of one finished grid point as stored.

    ``T`` (T,) is its ladder (coldest first); ``summary`` maps observable → statistic →
    array as stored: (T,), or (T−1,) for statistics of neighbouring pairs of rungs
    (``swap_accept``). ``names`` lists every observable the point stores, also those not
    read (see ``observables`` of :func:`read_sweep`).
    """

    T: np.ndarray
    summary: dict[str, dict[str, np.ndarray]]
    names: tuple[str, ...]


@dataclass(frozen=True)
class SweepData:
    """A sweep file read by :func:`read_sweep`.

    ``attrs``: root attributes as plain values (JSON strings kept; :attr:`config`
    decodes the configuration). ``grid``: every /grid column, one row per point (string
    columns as object arrays of str). ``points``: per grid row, its
    :class:`PointResults`, or None where the file has no results for it (pending,
    failed, not merged yet).
    """

    path: str
    attrs: dict[str, Any]
    grid: dict[str, np.ndarray]
    points: list[PointResults | None]

    @property
    def config(self) -> dict[str, Any]:
        """The sweep configuration (``config`` attribute), {} if absent or undecodable."""
        try:
            cfg = json.loads(self.attrs.get("config", "{}"))
        except (TypeError, ValueError):
            return {}
        return cfg if isinstance(cfg, dict) else {}


def read_sweep(path: str | os.PathLike, observables: Sequence[str] | None = None,
               stats: Sequence[str] | None = None) -> SweepData:
    """Read a sweep file: its attributes, its grid and the results of every point.

    Works on a complete sweep and on one still running or stopped (the file is opened
    read-only, waiting for a merge of the writer that holds its lock).

    Parameters
    ----------
    path : path-like
    observables : sequence of str, optional
        Read only these observables' summaries (default: all); names a point lacks are
        skipped.
    stats : sequence of str, optional
        Read only these statistics (default: all), e.g. ``("mean", "stderr", "exact")``.

    Returns
    -------
    SweepData

    Raises
    ------
    ConfigError
        ``path``: missing, unreadable, damaged, not a sweep file, or without a /grid
        table with an ``id`` column.
    """
    p = os.fspath(path)
    wanted = None if observables is None else set(observables)
    with open_read(p, swmr=False, fmt=FORMAT_NAME) as f:
        if "grid" not in f or "id" not in f["grid"]:
            raise ConfigError("path", "a spinicl sweep file with a /grid table", p)
        attrs = {k: plain(v) for k, v in f.attrs.items()}
        grid = {k: read_column(f[f"grid/{k}"]) for k in f["grid"]}
        points: list[PointResults | None] = []
        for pid in grid["id"]:
            g = f.get(f"points/{int(pid)}")
            if g is None or "ladder/T" not in g:
                points.append(None)
                continue
            T = np.asarray(g["ladder/T"][...], dtype=float).reshape(-1)
            summ = g.get("summary")
            names = tuple(summ) if summ is not None else ()
            summary: dict[str, dict[str, np.ndarray]] = {}
            for obs in names:
                if wanted is not None and obs not in wanted:
                    continue
                s = summ[obs]
                summary[obs] = {st: np.asarray(s[st][...]).reshape(-1) for st in s
                                if stats is None or st in stats}
            points.append(PointResults(T, summary, names))
    return SweepData(p, attrs, grid, points)


def read_grid(path: str) -> dict[str, np.ndarray]:
    """The /grid table of a sweep file as arrays."""
    with open_read(path, swmr=False, fmt=FORMAT_NAME) as f:
        out = {}
        for k in f["grid"]:
            v = f[f"grid/{k}"][...]
            if v.dtype == object:
                v = np.array([s.decode() if isinstance(s, bytes) else s for s in v])
            out[k] = v
        return out
