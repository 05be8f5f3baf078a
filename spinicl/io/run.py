"""The HDF5 run file (``spinicl-run``): write, append, checkpoint, read (docs/model.md §4).

Layout of one run file::

    /                attrs: format_version, spinicl_version, config (JSON), seeds (JSON),
                            command_line, status (running|interrupted|complete|failed),
                            message, created, updated
    /ladder/T        (T,) temperatures (final, after any adaptation)
    /theory/<name>   (T,) exact references per temperature (NaN where none)
    /trace/<name>    (records, ...) one row per record (see observables.SHAPES)
    /snapshots/W     (snapshots, T, M, n_spins) optional thinned configurations
    /checkpoint/meta (6,) int64: seq, slot, step, n_records, n_snapshots, valid
    /checkpoint/slot0, slot1/<field>   two alternating copies of the sampler state
    /summary/<name>/{mean, stderr, tau_int, ess, rhat, exact}   (T,) after the run

Crash safety. The file is written in SWMR mode (readers may open it with
``h5py.File(path, "r", swmr=True)`` while the run goes on). SWMR forbids new objects and
attribute changes, so every dataset exists before SWMR starts; the layout is built in a
temporary file that replaces ``path`` atomically, and the writer opens it directly in SWMR
mode (never in plain write mode, which a SIGKILL leaves unopenable: "file is already open
for write", measured with h5py 3.16 / HDF5 2.0). The final status, message and /summary
are written by :func:`finish_run` on a copy that then replaces the file, so the file on
disk is at every moment either a consistent closed file or a SWMR file. Records are
flushed every ``flush_every`` records or ``flush_seconds``; each flush also writes a
checkpoint into the slot not used by the last one and only then updates
/checkpoint/meta, so a SIGKILL at any moment leaves one complete checkpoint and its
record count (the layout holds the initial state as the step-0 checkpoint). After a
SIGKILL the SWMR file stays marked "open for write" and opens only read-only with
swmr=True (measured): :func:`open_run` reads that way, and :func:`copy_for_resume` copies the valid
records and the last checkpoint into a fresh file that atomically replaces the old one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from typing import Any

import h5py
import numpy as np

from spinicl import __version__
from spinicl.config import ConfigError

FORMAT_VERSION = 1
FORMAT_NAME = "spinicl-run"
#: Free bytes kept in reserve beyond twice what a flush writes (HDF5 metadata, the
#: final status).
SPACE_MARGIN = 256 * 1024


class StoreError(RuntimeError):
    """A run file that is missing, unreadable, foreign or corrupt (one-line message)."""


#: How long a writer waits for another process's HDF5 file lock before it gives up.
LOCK_WAIT_SECONDS = 10.0


def _is_lock_error(exc: OSError) -> bool:
    """True for HDF5's "unable to lock file" (another process holds the file open)."""
    return isinstance(exc, BlockingIOError) or "unable to lock file" in str(exc).lower()


def open_locked_retry(opener: Callable[[], h5py.File], path: str,
                      wait: float | None = None) -> h5py.File:
    """Call ``opener`` (an HDF5 write open of ``path``), retrying while the file is
    locked by another process.

    A reader that opens a closed run or sweep file, even with ``swmr=True``, holds HDF5's
    file lock while it is open, and a write open then fails at once with "unable to lock
    file". The writer therefore retries with a growing pause (10 ms to 50 ms, so that
    it also gets in between the opens of a reader that polls) for up to ``wait`` seconds.

    Parameters
    ----------
    opener : callable
        Returns the open file; raises OSError when it cannot.
    path : str
        For the message.
    wait : float, optional
        Seconds to keep trying (default :data:`LOCK_WAIT_SECONDS`).

    Raises
    ------
    StoreError
        Still locked after ``wait`` seconds (one line naming the file).
    OSError
        Any other failure to open, unchanged.
    """
    wait = LOCK_WAIT_SECONDS if wait is None else float(wait)
    deadline = time.monotonic() + wait
    pause = 0.01
    while True:
        try:
            return opener()
        except OSError as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{path}: locked by another process for {wait:g} s (a reader holding "
                    "it open?); close it and run the command again") from None
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True)


# --------------------------------------------------------------------------- writing
def check_new_file(path: str, force: bool) -> None:
    """Refuse to overwrite without ``force``; the directory must exist and be writable.

    Raises
    ------
    ConfigError
        Naming ``out``.
    """
    if not path or not path.strip():
        raise ConfigError("out", "a file path (not empty)", path)
    if os.path.isdir(path):
        raise ConfigError("out", "a file path, not a directory", path)
    if os.path.exists(path) and not force:
        raise ConfigError("out", "a new file (it exists; pass --force to overwrite)", path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise ConfigError("out", "a path in an existing directory", path)
    if not os.access(d, os.W_OK):
        raise ConfigError("out", "a path in a writable directory", path)


def temporary_name(path: str) -> str:
    """A name next to ``path`` for building it: unique per process, so two writers of
    the same output never build into one temporary file."""
    return f"{path}.{os.getpid()}.tmp"


def remove_stale_temporaries(path: str) -> list[str]:
    """Delete the temporary files of ``path`` (:func:`temporary_name`) whose process is
    gone: what a run killed with SIGKILL while it built ``path`` leaves behind.

    Returns
    -------
    list of str
        The files removed.
    """
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    removed = []
    try:
        names = os.listdir(d)
    except OSError:
        return removed
    for name in names:
        pid = name[len(base) + 1:-len(".tmp")]
        if not (name.startswith(base + ".") and name.endswith(".tmp") and pid.isdigit()):
            continue
        if int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.remove(os.path.join(d, name))
            removed.append(os.path.join(d, name))
    return removed


def _alive(pid: int) -> bool:
    """True if a process ``pid`` exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def place_new_file(tmp: str, path: str, force: bool) -> None:
    """Move the finished file ``tmp`` onto ``path``, atomically.

    With ``force`` the move replaces whatever is at ``path`` (``os.replace``). Without,
    it is exclusive: ``os.link`` fails if ``path`` exists, so a file created by anyone
    else since :func:`check_new_file` looked (another run writing the same output) is
    never overwritten, and of two writers only one succeeds. ``tmp`` is gone afterwards
    in every case.

    Raises
    ------
    ConfigError
        ``out``: ``path`` appeared meanwhile (without ``force``).
    """
    if force:
        os.replace(tmp, path)
        return
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ConfigError("out", "a new file (it was created by another process while "
                              "this one was being set up; pass --force to overwrite)",
                              path) from None
        except OSError as exc:  # no hard links here (some network file systems)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP,
                                 errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
            try:  # reserve the name exclusively, then replace our own reservation
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                raise ConfigError("out", "a new file (it was created by another process "
                                  "while this one was being set up; pass --force to "
                                  "overwrite)", path) from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def create_layout(path: str, *, attrs: dict[str, Any], temperatures: np.ndarray,
                  theory: dict[str, np.ndarray], record_shapes: dict[str, tuple],
                  record_dtypes: dict[str, Any], checkpoint: dict[str, np.ndarray],
                  snapshot_shape: tuple | None, chunk_records: int = 64,
                  exclusive: bool = False) -> None:
    """Write a fresh, closed run file with every dataset the run will need.

    The file is built under a temporary name (:func:`temporary_name`) and moved onto
    ``path`` atomically (:func:`place_new_file`), so an existing file is never left
    half-written; with ``exclusive`` the move fails (ConfigError ``out``) if ``path``
    exists by then, so no run overwrites a file it did not create.

    Parameters
    ----------
    attrs : dict
        Root attributes; dicts/lists are stored as JSON strings.
    temperatures : ndarray, shape (T,)
    theory : dict name → ndarray (T,)
    record_shapes : dict name → shape of one record
    record_dtypes : dict name → dtype
    checkpoint : dict field → ndarray
        The sampler state at the start: it fixes the shapes and dtypes of the two slots
        and is stored in slot 0 as a valid checkpoint at step 0 (no records), so a run
        killed before its first flush still resumes, from the beginning.
    snapshot_shape : tuple or None
        Shape of one snapshot (T, M, n_spins), or None for no snapshots.
    """
    tmp = temporary_name(path)
    remove_stale_temporaries(path)
    try:
        _write_layout(tmp, attrs, temperatures, theory, record_shapes, record_dtypes,
                      checkpoint, snapshot_shape, chunk_records)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    place_new_file(tmp, path, force=not exclusive)


def _write_layout(tmp: str, attrs: dict[str, Any], temperatures: np.ndarray,
                  theory: dict[str, np.ndarray], record_shapes: dict[str, tuple],
                  record_dtypes: dict[str, Any], checkpoint: dict[str, np.ndarray],
                  snapshot_shape: tuple | None, chunk_records: int) -> None:
    """The body of :func:`create_layout`: the layout written into ``tmp``."""
    with h5py.File(tmp, "w", libver="latest") as f:
        for k, v in attrs.items():
            f.attrs[k] = v if isinstance(v, (str, int, float, np.number)) else dumps(v)
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["spinicl_version"] = __version__
        f.attrs.setdefault("created", now())
        f.attrs["updated"] = now()
        f.attrs.setdefault("status", "running")
        f.attrs.setdefault("message", "")
        f.create_dataset("ladder/T", data=np.asarray(temperatures, dtype=float))
        for k, v in theory.items():
            f.create_dataset(f"theory/{k}", data=np.asarray(v, dtype=float))
        for k, shape in record_shapes.items():
            # an empty axis (no pairs with one copy) gets an unlimited max size, so the
            # chunk shape (at least 1 along every axis) stays valid
            maxshape = (None, *[s if s > 0 else None for s in shape])
            f.create_dataset(f"trace/{k}", shape=(0, *shape), maxshape=maxshape,
                             dtype=record_dtypes.get(k, "f8"),
                             chunks=(chunk_records, *[max(s, 1) for s in shape]))
        if snapshot_shape is not None:
            f.create_dataset("snapshots/W", shape=(0, *snapshot_shape),
                             maxshape=(None, *snapshot_shape), dtype="f8",
                             chunks=(1, *snapshot_shape))
        for k, v in checkpoint.items():
            v = np.asarray(v)
            f.create_dataset(f"checkpoint/slot0/{k}", data=v)
            f.create_dataset(f"checkpoint/slot1/{k}", shape=v.shape, dtype=v.dtype)
        # meta: seq 0, slot 0, step 0, 0 records, 0 snapshots, valid
        f.create_dataset("checkpoint/meta", data=np.array([0, 0, 0, 0, 0, 1], dtype=np.int64))


class RunWriter:
    """Appends records and checkpoints to a run file in SWMR mode.

    Parameters
    ----------
    path : str
        An existing, cleanly closed run file (see :func:`create_layout`).
    flush_every : int
        Flush (and checkpoint) after this many buffered records...
    flush_seconds : float
        ... or when this many seconds passed since the last flush, whichever first.
    """

    def __init__(self, path: str, flush_every: int = 50, flush_seconds: float = 5.0):
        self.path = path
        self.flush_every = max(1, int(flush_every))
        self.flush_seconds = float(flush_seconds)
        self.f = _open_swmr_writer(path)
        self._buffer: list[dict[str, np.ndarray]] = []
        self._snap_buffer: list[np.ndarray] = []
        self._last_flush = time.monotonic()
        meta = self.f["checkpoint/meta"][...]
        self._seq = int(meta[0])
        self._slot = int(meta[1])
        self.n_records = self.f["trace/step"].shape[0]
        self.n_snapshots = self.f["snapshots/W"].shape[0] if "snapshots/W" in self.f else 0

    # ---------------------------------------------------------------- records
    def append(self, record: dict[str, np.ndarray], snapshot: np.ndarray | None = None
               ) -> bool:
        """Buffer one record (and optional snapshot). Returns True when it is time to
        flush (the caller then calls :meth:`flush` with a checkpoint)."""
        self._buffer.append(record)
        if snapshot is not None:
            self._snap_buffer.append(np.asarray(snapshot, dtype=float))
        return (len(self._buffer) >= self.flush_every
                or time.monotonic() - self._last_flush >= self.flush_seconds)

    @property
    def checkpoint_step(self) -> int:
        """The step of the last complete checkpoint in the file (-1 if it cannot be read,
        e.g. after :meth:`close`)."""
        with contextlib.suppress(Exception):  # closed handle, I/O error: only reported
            return int(self.f["checkpoint/meta"][2])
        return -1

    def write_records(self) -> None:
        """Write the buffered records and snapshots now, without a checkpoint (what a
        failing run keeps before :func:`finish_run`: records up to the failure, readable
        once the status is final)."""
        if self._buffer:
            k = len(self._buffer)
            for name in self._buffer[0]:
                ds = self.f[f"trace/{name}"]
                data = np.stack([np.asarray(r[name]) for r in self._buffer])
                ds.resize(self.n_records + k, axis=0)
                ds[self.n_records:] = data
            self.n_records += k
            self._buffer.clear()
        if self._snap_buffer:
            ds = self.f["snapshots/W"]
            k = len(self._snap_buffer)
            ds.resize(self.n_snapshots + k, axis=0)
            ds[self.n_snapshots:] = np.stack(self._snap_buffer)
            self.n_snapshots += k
            self._snap_buffer.clear()

    def flush(self, state: dict[str, np.ndarray], step: int,
              temperatures: np.ndarray | None = None) -> None:
        """Write buffered records, then a checkpoint of ``state`` taken at ``step``.

        Order: records → flush → checkpoint slot → flush → meta → flush. A kill between
        any two leaves the previous meta pointing at a complete checkpoint.

        Raises
        ------
        OSError
            ``ENOSPC`` *before* anything is written when the file system has not room
            for this flush with a margin: HDF5 hitting a full disk in the middle of a
            SWMR write can leave the library in a state where closing the file crashes
            the process (measured: a segfault with h5py 3.16), so the run stops first,
            with its last checkpoint intact.
        """
        self._check_space(state)
        self.write_records()
        if temperatures is not None:
            self.f["ladder/T"][...] = np.asarray(temperatures, dtype=float)
        self.f.flush()
        slot = 1 - self._slot
        grp = self.f[f"checkpoint/slot{slot}"]
        for k, v in state.items():
            grp[k][...] = v
        self.f.flush()
        self._seq += 1
        self._slot = slot
        self.f["checkpoint/meta"][...] = np.array(
            [self._seq, slot, step, self.n_records, self.n_snapshots, 1], dtype=np.int64)
        self.f.flush()
        self._last_flush = time.monotonic()

    def _check_space(self, state: dict[str, np.ndarray]) -> None:
        need = sum(np.asarray(v).nbytes for r in self._buffer for v in r.values())
        need += sum(a.nbytes for a in self._snap_buffer)
        need += sum(np.asarray(v).nbytes for v in state.values())
        need = 2 * need + SPACE_MARGIN
        try:
            st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return
        if st.f_bavail * st.f_frsize < need:
            raise OSError(errno.ENOSPC, "No space left on device (checked before writing)",
                          self.path)

    def close(self) -> None:
        """Close the SWMR handle (records and checkpoints already flushed stay); the final
        status is written by :func:`finish_run`."""
        if self.f:
            self.f.close()
            self.f = None


def _open_swmr_writer(path: str) -> h5py.File:
    """Open ``path`` for writing directly in SWMR mode (no plain write-mode window),
    waiting for a reader that holds its lock (:func:`open_locked_retry`)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)

    def opener() -> h5py.File:
        fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE,
                            fapl)
        return h5py.File(fid)

    return open_locked_retry(opener, path)


def finish_run(path: str, status: str, message: str = "",
               summary: dict[str, dict[str, np.ndarray]] | None = None,
               groups: dict[str, tuple[dict[str, Any], dict[str, Any]]] | None = None
               ) -> None:
    """Write the final status, its message and /summary/<observable>/<stat> (T,).

    ``groups`` maps a top-level group name (``"thermo"``, ``"overlap_histogram"``) to
    (datasets: relative path → array, attrs: dict); each group is replaced whole.

    The run file must be closed (no writer). The change is made on a copy that then
    atomically replaces ``path``: a kill at any moment leaves either the old file
    (resumable from its last checkpoint) or the finished one, never a file left open
    for write.
    """
    tmp = path + ".finish"
    try:
        shutil.copyfile(path, tmp)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if exc.errno != errno.ENOSPC:
            raise
        # no room for a copy (a full disk): the status and message in place, no summary
        with open_locked_retry(lambda: h5py.File(path, "r+", libver="latest"), path) as f:
            f.attrs["status"] = status
            f.attrs["message"] = message
        return
    try:
        with open_locked_retry(lambda: h5py.File(tmp, "r+", libver="latest"), tmp) as f:
            f.attrs["status"] = status
            f.attrs["message"] = message
            f.attrs["updated"] = now()
            if summary is not None:
                if "summary" in f:
                    del f["summary"]
                for name, stats in summary.items():
                    for stat, arr in stats.items():
                        f.create_dataset(f"summary/{name}/{stat}", data=np.asarray(arr))
            for gname, (datasets, gattrs) in (groups or {}).items():
                if gname in f:
                    del f[gname]
                grp = f.create_group(gname)
                for key, arr in datasets.items():
                    grp.create_dataset(key, data=np.asarray(arr))
                for key, val in gattrs.items():
                    grp.attrs[key] = val
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------- reading
def open_run(path: str) -> h5py.File:
    """Open a run file read-only (works after a SIGKILL: SWMR read).

    Raises
    ------
    StoreError
        Missing, not HDF5, or not a spinicl run file.
    """
    if not os.path.exists(path):
        raise StoreError(f"{path}: no such file")
    if os.path.isdir(path):
        raise StoreError(f"{path}: a directory, not a run file")
    try:
        f = open_swmr_read(path)
    except OSError as exc:
        try:
            f = RunFile(path, "r")
        except OSError:
            raise StoreError(f"{path}: not a readable HDF5 file ({_short(exc)})") from None
    try:
        fmt = f.attrs.get("format")
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        f.close()
        raise damaged(path, exc) from None
    if fmt != FORMAT_NAME:
        f.close()
        raise StoreError(f"{path}: not a spinicl run file (no format={FORMAT_NAME!r} "
                         "attribute)")
    return f


#: Metadata read attempts of a SWMR reader (HDF5's default, 100, retries a checksum
#: failure with a doubling pause: on a truncated file that is hours; 28 attempts make
#: at most ≈ 0.3 s in all, ample for the moments a live writer rewrites a block).
SWMR_READ_ATTEMPTS = 28


def open_swmr_read(path: str) -> RunFile:
    """``h5py.File(path, "r", swmr=True)`` that gives up on a truncated file in well
    under a second instead of retrying for hours (:data:`SWMR_READ_ATTEMPTS`); a read
    failure inside its ``with`` block leaves as :class:`StoreError` (:class:`RunFile`)."""
    return RunFile(_open_swmr_reader(path))


def _open_swmr_reader(path: str) -> h5py.h5f.FileID:
    """Open ``path`` read-only in SWMR mode with :data:`SWMR_READ_ATTEMPTS` attempts."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_EARLIEST, h5py.h5f.LIBVER_LATEST)
    setter = _hdf5_function("H5Pset_metadata_read_attempts")
    if setter is not None:
        setter(fapl.id, SWMR_READ_ATTEMPTS)
    return h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ,
                         fapl)


_HDF5_FUNCTIONS: dict[str, Any] = {}


def _hdf5_function(name: str):
    """A function of the HDF5 library h5py runs on (ctypes), or None where not found."""
    if name in _HDF5_FUNCTIONS:
        return _HDF5_FUNCTIONS[name]
    import ctypes
    import glob

    fn = None
    libs = []
    with contextlib.suppress(OSError), open("/proc/self/maps") as fh:  # Linux: h5py's copy
        libs = sorted({w for line in fh for w in line.split()
                       if os.path.basename(w).startswith(("libhdf5.", "libhdf5-"))})
    libs += glob.glob(os.path.join(os.path.dirname(h5py.__file__), os.pardir, "h5py.libs",
                                   "libhdf5-*"))
    for lib in libs:
        try:
            fn = getattr(ctypes.CDLL(lib), name)
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
        fn.restype = ctypes.c_int
        break
    _HDF5_FUNCTIONS[name] = fn
    return fn


def damaged(path: str, exc: BaseException) -> StoreError:
    """The one-line error for a file whose contents cannot be read (truncated, torn)."""
    return StoreError(f"{path}: damaged or truncated run file, cannot be read "
                      f"({type(exc).__name__}: {_short(exc)})")


class RunFile(h5py.File):
    """A run file opened by :func:`open_run`: a failure to read it inside its ``with``
    block (HDF5's OSError or RuntimeError on a truncated or torn file) leaves as a
    one-line :class:`StoreError` naming the file."""

    def __exit__(self, exc_type, exc, tb):
        path = self.filename
        super().__exit__(exc_type, exc, tb)
        if (exc is not None and isinstance(exc, OSError | RuntimeError)
                and not isinstance(exc, StoreError) and _is_h5_error(exc, tb)):
            raise damaged(path, exc) from None
        return False


def _is_h5_error(exc: BaseException, tb) -> bool:
    """True when ``exc`` was raised inside h5py (not by the caller's own code)."""
    while tb is not None:
        if "h5py" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return isinstance(exc, OSError) and "Unable to" in str(exc)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160]


def read_attrs(f: h5py.File) -> dict[str, Any]:
    """Root attributes, JSON strings decoded."""
    out = {}
    for k, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, str) and v[:1] in "{[":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def read_checkpoint(f: h5py.File) -> tuple[dict[str, np.ndarray] | None, dict[str, int]]:
    """The last complete checkpoint (None if none was written) and its meta."""
    meta = f["checkpoint/meta"][...]
    info = dict(zip(("seq", "slot", "step", "n_records", "n_snapshots", "valid"),
                    map(int, meta), strict=True))
    if not info["valid"]:
        return None, info
    grp = f[f"checkpoint/slot{info['slot']}"]
    state = {k: grp[k][()] for k in grp}
    return state, info


def read_traces(f: h5py.File, n_records: int | None = None,
                names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Traces (first ``n_records`` records) as arrays."""
    names = list(names) if names is not None else list(f["trace"])
    return {k: f[f"trace/{k}"][:n_records] if n_records is not None else f[f"trace/{k}"][...]
            for k in names}


def copy_for_resume(path: str, attr_updates: dict[str, Any] | None = None
                    ) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, int]]:
    """Rebuild ``path`` from its last checkpoint, for resuming.

    ``attr_updates`` (root attributes, already encoded) are written into the rebuilt
    file before it replaces the old one (e.g. a new config with more steps).

    Reads the file (read-only, SWMR: works after a SIGKILL), writes the records up to the
    last checkpoint and that checkpoint into a fresh file, and atomically replaces the
    old one. Records written after the checkpoint are dropped: the resumed run computes
    them again, identically.

    Returns
    -------
    attrs : dict
        Root attributes (config decoded).
    state : dict
        The checkpointed sampler state.
    meta : dict
        seq, slot, step, n_records, n_snapshots.
    """
    with open_run(path) as f:
        attrs = read_attrs(f)
        state, meta = read_checkpoint(f)
        if state is None:
            raise StoreError(f"{path}: no checkpoint was written before the run stopped; "
                             "start it again with 'spinicl sample ... --force'")
        n = meta["n_records"]
        traces = read_traces(f, n)
        shapes = {k: f[f"trace/{k}"].shape[1:] for k in f["trace"]}
        dtypes = {k: f[f"trace/{k}"].dtype for k in f["trace"]}
        theory = {k: f[f"theory/{k}"][...] for k in f["theory"]}
        temps = f["ladder/T"][...]
        snaps = f["snapshots/W"][: meta["n_snapshots"]] if "snapshots/W" in f else None
        snap_shape = f["snapshots/W"].shape[1:] if "snapshots/W" in f else None
        raw_attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    raw_attrs["status"] = "running"
    raw_attrs.update(attr_updates or {})
    create_layout(path + ".resume", attrs=raw_attrs, temperatures=temps, theory=theory,
                  record_shapes=shapes, record_dtypes=dtypes, checkpoint=state,
                  snapshot_shape=snap_shape)
    with open_locked_retry(lambda: h5py.File(path + ".resume", "r+", libver="latest"),
                           path + ".resume") as g:
        for k, v in traces.items():
            g[f"trace/{k}"].resize(n, axis=0)
            g[f"trace/{k}"][...] = v
        if snaps is not None:
            g["snapshots/W"].resize(snaps.shape[0], axis=0)
            g["snapshots/W"][...] = snaps
        for k, v in state.items():
            g[f"checkpoint/slot0/{k}"][...] = v
        g["checkpoint/meta"][...] = np.array(
            [meta["seq"], 0, meta["step"], n, meta["n_snapshots"], 1], dtype=np.int64)
    os.replace(path + ".resume", path)
    return attrs, state, meta
