"""A progress line on stderr for every long run (sampling, sweeps, training).

On a terminal the line is redrawn in place at most twice a second; when stderr is a file
or a pipe (a batch job's log), a full line is written every ``log_interval`` seconds
instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    """Bar, count, percent, ETA and free text.

    Parameters
    ----------
    total : int
        Units of work (steps, points, epochs).
    unit : str
        Their name, shown after the count.
    start : int
        Units already done when this line starts (a resumed run). The ETA uses the rate
        since the first :meth:`update` (so set-up time before it, and units done by an
        earlier run, never enter it); the first line shows ``ETA --:--:--``.
    enabled : bool
        False makes every call a no-op.
    """

    def __init__(self, total: int, unit: str = "", start: int = 0, enabled: bool = True,
                 stream: TextIO | None = None, log_interval: float = 30.0):
        self.total = max(int(total), 1)
        self.unit = unit
        self.start = start
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.5 if self.tty else log_interval
        self.t0 = time.monotonic()
        self.last = -float("inf")
        # (time, done) at the first update: the ETA uses the rate since then, so the
        # set-up before the first unit of work (task, Numba compile) does not inflate it
        self.first: tuple[float, int] | None = None

    def update(self, done: int, text: str = "", force: bool = False) -> None:
        """Show ``done`` of ``total`` with ``text`` (rate-limited unless ``force``)."""
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.interval):
            return
        self.last = now
        if self.first is None:
            self.first = (now, done)
        t_first, done_first = self.first
        rate = (done - done_first) / max(now - t_first, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        eta_s = (time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 360_000
                 else "--:--:--")
        frac = min(done / self.total, 1.0)
        bar = "#" * int(30 * frac)
        line = (f"[{bar:<30s}] {done}/{self.total} {self.unit} {100 * frac:5.1f}%  "
                f"ETA {eta_s}  {text}")
        self.stream.write(("\r" + line + " ") if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
