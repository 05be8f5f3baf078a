"""Graceful stops: SIGINT/SIGTERM set a flag that long loops poll at safe points.

A Python-level ``KeyboardInterrupt`` can surface anywhere — inside h5py, a weakref
callback (where it is swallowed), a half-written record. Long-running loops therefore
install these handlers and check ``flag["signum"]`` where stopping is safe.
"""

from __future__ import annotations

import contextlib
import signal


@contextlib.contextmanager
def stop_requests():
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

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, handler)
    except ValueError:  # not in the main thread
        old = {}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def ignore_interrupts() -> None:
    """For worker processes: leave Ctrl-C to the coordinator, which stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
