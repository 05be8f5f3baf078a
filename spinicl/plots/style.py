"""What every spinicl figure shares: symbols and names of observables and axes, number
formatting, the matplotlib style, and writing a figure to disk.

Output
------
Every plot function takes ``out``: a path ending in ``.png`` or ``.pdf`` writes *both*
(same stem; PNG at 200 dpi), ``.svg``/``.eps`` writes just that file, no suffix writes
``out.png`` and ``out.pdf`` (:func:`save_figure`). Figures are
:class:`matplotlib.figure.Figure` objects (Agg canvas, no pyplot state, :func:`new_figure`);
the style (:data:`STYLE`) is applied with :func:`matplotlib.rc_context` during drawing only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import (
    FixedFormatter,
    FixedLocator,
    MaxNLocator,
    NullLocator,
)

from spinicl.config import ConfigError
from spinicl.observables import OBSERVABLES

#: Observable name → its symbol (matplotlib mathtext): a view of the one table,
#: :data:`spinicl.observables.OBSERVABLES` (which also holds words, trace symbols, scales).
OBSERVABLE_SYMBOLS: dict[str, str] = {k: o.symbol for k, o in OBSERVABLES.items()
                                      if o.name != "step"}

#: Axis name → its label.
AXIS_SYMBOLS: dict[str, str] = {
    "alpha": r"task diversity $\alpha = P/D^2$",
    "T": r"temperature $T = 1/\beta$",
    "P": r"prompts $P$",
    "K": r"task pool $K$",
    "N": r"context length $N$",
    "lam": r"weight decay $\lambda$",
    "D": r"dimension $D$",
    "seed": "disorder seed",
    "tau": r"$\tau = P/D^2$",
    "kappa": r"task diversity $\kappa = K/D$",
    "alpha_L": r"context ratio $N/D$",
}
SHORT_AXIS = {"alpha": r"\alpha", "T": "T", "P": "P", "K": "K", "N": "N",
               "lam": r"\lambda", "D": "D", "seed": r"{\rm seed}", "tau": r"\tau",
               "kappa": r"\kappa", "alpha_L": "N/D"}

_INT_COLUMNS = ("D", "N", "P", "K", "seed")

STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.labelsize": 10,
    "axes.titlesize": 9,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.linewidth": 0.8,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.major.size": 3.5,
    "ytick.major.size": 3.5,
    "xtick.minor.size": 2,
    "ytick.minor.size": 2,
    "lines.linewidth": 1.3,
    "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42,
}
PNG_DPI = 200


# ============================================================================ labels
def fmt_plain(v: float) -> str:
    """A number for titles and legends: integers plain, others to 4 significant digits."""
    v = float(v)
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def fmt_tex(v: float) -> str:
    """A number for mathtext: integers plain, powers of ten as 10^k, else 3 digits."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return fmt_plain(v)
    if v.is_integer() and abs(v) < 1e5:
        return str(int(v))
    e = math.floor(math.log10(abs(v)))
    mant = v / 10**e
    if abs(e) <= 2:
        return f"{v:.3g}"
    if np.isclose(abs(mant), 1.0, rtol=1e-6):
        return ("-" if v < 0 else "") + f"10^{{{e}}}"
    return rf"{mant:.2g}\times 10^{{{e}}}"


def observable_label(name: str, symbol_only: bool = False, trace: bool = False) -> str:
    """Axis label of an observable: ``"ICL error (novel tasks) $\\varepsilon_{ICL}$"``
    (:data:`~spinicl.observables.OBSERVABLES`; an unknown name: the name, spaced).
    ``trace``: the symbol of one record (no thermal average) where the table has one."""
    obs = OBSERVABLES.get(name)
    if obs is None:
        return name.replace("_", " ")
    if trace and obs.trace_symbol is not None:
        return obs.trace_symbol
    return obs.label(symbol_only)


def log_like(name: str) -> bool:
    """Observable ``name`` is positive and spread over decades (the table's log_scale)."""
    obs = OBSERVABLES.get(name)
    return obs is not None and obs.log_scale


def auto_log(axis: str, values: np.ndarray) -> bool:
    """Log scale for an axis: T always; alpha, P, K, lam when they span > 1 decade."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if axis == "T":
        return bool(v.size and (v > 0).all())
    if axis in ("N", "D", "seed") or v.size < 2 or (v <= 0).any():
        return False
    return bool(v.max() / v.min() > 10.0)


def auto_log_values(name: str, Z: np.ndarray) -> bool:
    """True when observable ``name`` is positive and ``Z`` spans more than a decade."""
    v = Z[np.isfinite(Z)]
    if not log_like(name) or v.size < 2 or (v <= 0).any():
        return False
    return bool(v.max() / v.min() > 10.0)


def integer_ticks(axis: Any, name: str, log: bool) -> None:
    """Integer tick marks on a linear axis of an integer parameter (N, D, P, K)."""
    if not log and name in _INT_COLUMNS:
        axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))


def cell_edges(v: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around centres ``v`` (n,) → (n+1,), geometric midpoints when ``log``."""
    v = np.asarray(v, dtype=float)
    t = np.log(v) if log else v
    if t.size == 1:
        half = 0.5 * math.log(10) if log else (0.5 * abs(t[0]) if t[0] else 0.5)
        e = np.array([t[0] - half, t[0] + half])
    else:
        mid = 0.5 * (t[1:] + t[:-1])
        e = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return np.exp(e) if log else e


# ============================================================================ output
def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on an Agg canvas (no pyplot state), size in inches."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def output_paths(out: str | os.PathLike) -> list[str]:
    """The files :func:`save_figure` writes for ``out``; ConfigError ``out`` for an
    unsupported suffix (call it before any work to fail early)."""
    out = os.fspath(out)
    stem, ext = os.path.splitext(out)
    ext = ext.lower()
    if ext in (".png", ".pdf"):
        return [stem + ".png", stem + ".pdf"]
    if ext in (".svg", ".eps"):
        return [out]
    if ext == "":
        return [out + ".png", out + ".pdf"]
    raise ConfigError("out", "a file name ending in .png or .pdf (both are written), "
                      ".svg or .eps", out)


#: The mark every figure spinicl writes carries (PNG "Software", PDF/SVG/EPS "Creator").
FIGURE_MARK = "spinicl"


def written_by_spinicl(path: str | os.PathLike) -> bool:
    """Whether the existing file ``path`` is a figure spinicl wrote (it carries
    :data:`FIGURE_MARK` in its metadata), so that replacing it loses nothing of the user's."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - (1 << 16)))
            tail = fh.read()
    except OSError:
        return False
    if head.startswith(b"\x89PNG"):
        return b"Software\x00" + FIGURE_MARK.encode() in head
    mark = FIGURE_MARK.encode()
    return (b"Creator (" + mark in head + tail or b"Creator: " + mark in head
            or b"<dc:title>" in head and mark in head)


def check_figure_outputs(out: str | os.PathLike, force: bool = False,
                         param: str = "out") -> list[str]:
    """Check, before any work, the files :func:`save_figure` will write for ``out``.

    ConfigError ``param`` for an unsupported suffix, a directory, a folder that does not
    exist or cannot be written (tried by creating a file there: permission bits are not
    enough on a read-only filesystem), or an existing file that spinicl did not write
    (:func:`written_by_spinicl`) unless ``force``. Returns the paths.
    """
    try:
        paths = output_paths(out)
    except ConfigError as exc:
        raise ConfigError(param, exc.allowed, exc.got) from None
    for p in paths:
        if os.path.isdir(p):
            raise ConfigError(param, "a file path, not a directory", p)
        d = os.path.dirname(os.path.abspath(p))
        if not os.path.isdir(d):
            raise ConfigError(param, "a path in an existing, writable directory", p)
        if os.path.exists(p):
            if not force and not written_by_spinicl(p):
                raise ConfigError(param, "a new file or a figure spinicl wrote (--force "
                                  "replaces any file)", f"{p} exists")
            writable = os.access(p, os.W_OK)
        else:
            try:
                with open(p, "xb"):
                    pass
                os.remove(p)
                writable = True
            except OSError:
                writable = False
        if not writable:
            raise ConfigError(param, "a path in an existing, writable directory", p)
    return paths


def save_figure(fig: Figure, out: str | os.PathLike) -> list[str]:
    """Write ``fig`` to ``out`` (PNG and PDF, see the module docstring); return the paths.

    Every file carries :data:`FIGURE_MARK` in its metadata, so a later command may replace
    it (:func:`check_figure_outputs`) while a file of the user's is never overwritten."""
    paths = output_paths(out)
    for p in paths:
        d = os.path.dirname(p)
        if d:
            os.makedirs(d, exist_ok=True)
        with mpl.rc_context(STYLE):
            fig.savefig(p, dpi=PNG_DPI if p.lower().endswith(".png") else 300,
                        metadata={"Software": FIGURE_MARK} if p.lower().endswith(".png")
                        else {"Creator": FIGURE_MARK})
            if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
                # Laid out by the first draw: freeze it, so the next format is not re-laid
                # out (same positions in PNG and PDF, one layout pass instead of two).
                fig.set_layout_engine("none")
    return paths


def level_colorbar(fig: Figure, ax: Any, values: np.ndarray, colours: Sequence[Any],
                    log: bool, label: str) -> Any:
    """A colour bar with one swatch per value (a ladder), ticked at the values.

    Parameters
    ----------
    values : ndarray, shape (k,)
        Ascending values, one per colour.
    colours : sequence of k colours
    log : bool
        Geometric (log) spacing of the swatches.
    """
    values = np.asarray(values, dtype=float)
    bounds = cell_edges(values, log=log)
    sm = ScalarMappable(norm=BoundaryNorm(bounds, len(colours)),
                        cmap=ListedColormap(list(colours)))
    cb = fig.colorbar(sm, ax=ax, pad=0.02, fraction=0.04, aspect=30)
    if log:
        cb.ax.set_yscale("log")
    lo, hi = bounds[0], bounds[-1]
    decades = np.arange(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
                        + 1) if log else np.empty(0)
    if decades.size >= 3:  # a long log ladder: ticks at the decades it spans
        ticks = 10.0 ** decades
        labels = [f"$10^{{{int(k)}}}$" for k in decades]
    else:
        every = max(1, math.ceil(values.size / 6))
        ticks = values[::every]
        labels = [f"${fmt_tex(v)}$" for v in ticks]
    cb.ax.yaxis.set_major_locator(FixedLocator(ticks))
    cb.ax.yaxis.set_major_formatter(FixedFormatter(labels))
    cb.ax.yaxis.set_minor_locator(NullLocator())
    cb.ax.tick_params(direction="out", which="both", length=2.5)
    cb.set_label(label)
    return cb
