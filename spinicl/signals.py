"""Graceful stops: SIGINT/SIGTERM, wherever they arrive during a command.

A Python-level ``KeyboardInterrupt`` can surface anywhere — inside h5py, a weakref
callback (where it is swallowed), a half-written record — and is caught by any broad
``except`` on the way. Two layers therefore decide what a signal does:

* :func:`command_signals` covers a whole command (set-up, imports, Numba compilation,
  the final messages): a signal raises :class:`Stopped`, a ``BaseException`` that no
  ``except Exception`` catches, which the command line turns into one line and exit
  status 128 + signal number (130 for SIGINT, 143 for SIGTERM).
* :func:`stop_requests` covers the sections that write files (building a run file, the
  sampling loop, finishing it): a signal only sets a flag, which the loop polls where
  stopping is safe; the section ends with a consistent file, and the flag says how.

A signal that the process ignores (``SIG_IGN``: pool workers, jobs started in the
background by a non-interactive shell) stays ignored under both.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """SIGINT/SIGTERM arrived outside a section that polls for it (see module doc).

    Parameters
    ----------
    signum : int
        The signal.
    detail : str
        What the stop left behind, for the one-line message (may be empty).
    """

    def __init__(self, signum: int, detail: str = ""):
        self.signum = int(signum)
        self.detail = detail
        super().__init__(signal.Signals(self.signum).name)

    @property
    def exit_code(self) -> int:
        """128 + the signal number (the shell's convention)."""
        return 128 + self.signum


def exit_before_start() -> None:
    """For the command line while it imports, before :func:`command_signals` takes over:
    SIGINT/SIGTERM end the process at once with one line and 128 + signal (nothing has
    been written yet, so there is nothing to clean up)."""

    def handler(signum, _frame):
        import os

        os.write(2, f"spinicl: stopped by {signal.Signals(signum).name} while starting; "
                    "nothing was written\n".encode())
        os._exit(128 + signum)

    _install(handler)


def _install(handler: Callable) -> dict:
    """Install ``handler`` for SIGINT/SIGTERM where not ignored; the previous handlers.

    Outside the main thread nothing is installed (an empty dict).
    """
    old = {}
    try:
        for s in SIGNALS:
            prev = signal.getsignal(s)
            if prev is signal.SIG_IGN:
                continue
            signal.signal(s, handler)
            old[s] = prev
    except ValueError:  # not in the main thread
        for s, h in old.items():
            signal.signal(s, h)
        return {}
    return old


def _restore(old: dict) -> None:
    for s, h in old.items():
        signal.signal(s, h)


@contextlib.contextmanager
def command_signals() -> Iterator[None]:
    """For a whole command: SIGINT/SIGTERM raise :class:`Stopped` at once (outside any
    :func:`stop_requests` section, which records them instead)."""

    def handler(signum, frame):
        if _swallowing(frame):  # raised here, the exception would be printed and lost
            import os
            import threading

            threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()  # ask again
            return
        raise Stopped(signum)

    old = _install(handler)
    try:
        yield
    finally:
        _restore(old)


def _swallowing(frame) -> bool:
    """True where an exception raised by a signal handler would be swallowed: in a
    callback that C code calls (Numba's compiler calls llvmlite's object-cache
    callbacks through ctypes), a finaliser, a weakref callback (weakref.py's, and the
    import system's module-lock callback ``_get_module_lock.<locals>.cb``, met when a
    signal arrives while modules are imported)."""
    while frame is not None:
        code = frame.f_code
        if ("llvmlite" in code.co_filename or code.co_name == "__del__"
                or code.co_filename.endswith("weakref.py")
                or (code.co_name == "cb" and "importlib._bootstrap" in code.co_filename)):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def stop_requests() -> Iterator[dict]:
    """Install SIGINT/SIGTERM handlers that record the signal instead of raising.

    Yields
    ------
    dict
        ``{"signum": None}``, set to the signal number when one arrives. Outside the
        main thread no handler can be installed and the flag never changes.
    """
    flag: dict[str, int | None] = {"signum": None}

    def handler(signum, _frame):
        flag["signum"] = signum

    old = _install(handler)
    try:
        yield flag
    finally:
        _restore(old)


def ignore_interrupts() -> None:
    """For worker processes: leave Ctrl-C to the coordinator, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


#: Linux prctl option: the signal a process gets when the thread that started it ends.
PR_SET_PDEATHSIG = 1


def pool_worker_init() -> None:
    """Initializer of pool worker processes: Ctrl-C is left to the coordinator
    (:func:`ignore_interrupts`) and the worker ends with its coordinator
    (:func:`die_with_parent`), even when that is killed with SIGKILL."""
    ignore_interrupts()
    die_with_parent()


def die_with_parent(grace: float = 3.0, poll: float = 0.5) -> None:
    """End this process when its parent dies.

    On Linux the kernel sends SIGTERM at the parent's death (``prctl(PR_SET_PDEATHSIG)``):
    a run in its sampling loop stops cleanly and removes its scratch files. Everywhere, a
    daemon thread polls ``os.getppid()`` every ``poll`` seconds and, once the parent is
    gone, exits the process (``os._exit``) after ``grace`` seconds, in case SIGTERM was
    not delivered or did not end it.

    Parameters
    ----------
    grace : float
        Seconds left to a clean stop before the process exits regardless.
    poll : float
        Seconds between two looks at the parent.
    """
    import multiprocessing as mp
    import os
    import sys
    import threading
    import time

    parent = mp.parent_process()
    ppid = parent.pid if parent is not None and parent.pid else os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != ppid:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(poll)
        time.sleep(grace)
        os._exit(1)

    threading.Thread(target=watch, name="spinicl-parent-watch", daemon=True).start()
