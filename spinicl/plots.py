"""Publication figures from sweep and run files: phase diagrams, cuts and traces.

Three figures (sweeps: docs/model.md §5):

* :func:`plot_phase` — a phase diagram of one observable over two axes of a sweep
  (task diversity α = P/D², temperature T, ...), disorder-averaged over the seeds;
* :func:`plot_cut` — curves of one observable against one axis, one curve per value of
  another, with error bars and the exact value where the file has one;
* :func:`plot_trace` — the records of a run against the step, one colour per temperature,
  burn-in shaded, exact values dashed.

The data behind the first two are returned by :func:`phase_data` and :func:`cut_data`,
so that a figure can be checked number by number.

Reading conventions
-------------------
*Sweep file* (``format = "spinicl-sweep"``): ``/grid/<column>`` (one row per grid point:
``id, D, N, P, K, alpha, lam, seed, status, message, seconds``) and, for finished points,
``/points/<id>/ladder/T`` (T,) and ``/points/<id>/summary/<observable>/{mean, stderr,
tau_int, ess, exact}`` (T,). Only points with status ``"done"`` are plotted; failed ones
are counted in the title. The temperature ladder of the first finished point is the
reference; a point whose ladder differs from it by more than a relative 1e-6 (an adapted
ladder) is interpolated onto it linearly in log T (NaN outside its range).

*Disorder average.* Points that share the plotted coordinates (they differ only in the
seed) are averaged: the value is the mean over seeds, its error bar the standard error
over seeds ``std(ddof=1)/sqrt(n_seeds)`` — this contains the thermal (Monte Carlo) noise
of each seed's estimate as well as the sample-to-sample fluctuations — and, where a
single seed contributes, that point's own Monte Carlo standard error.

*Derived observables.* ``overlap_ratio`` = ⟨q_ab⟩/⟨Q⟩ per point and temperature, from the
stored ``overlap`` and ``self_overlap`` summaries (``overlap_ratio_active`` likewise from
``overlap_active`` and ``self_overlap_active``); its standard error follows by linear
error propagation (the two estimates treated as independent), its exact value is the
ratio of the exact values. A file that stores the ratio itself is read directly.

*Run file* (``format = "spinicl-run"``): ``/trace/step`` (records,), ``/trace/<name>``
(records, T, M) or (records, T, M2) for pair observables (averaged over the last axis),
``/theory/<name>`` (T,), ``/ladder/T`` (T,), config JSON with ``burn_in``. It may still be
written (SWMR): the shortest of the datasets read sets the number of records.

Output
------
Every plot function takes ``out``: a path ending in ``.png`` or ``.pdf`` writes *both*
(same stem; PNG at 200 dpi), ``.svg``/``.eps`` writes just that file, no suffix writes
``out.png`` and ``out.pdf``. It returns the list of written paths. Figures are
:class:`matplotlib.figure.Figure` objects (Agg canvas, no pyplot state); the style is
applied with :func:`matplotlib.rc_context` during drawing only.

Errors
------
A missing or foreign file, an unknown observable or axis raises
:class:`spinicl.config.ConfigError` naming the parameter (``path``, ``x``, ``y``, ``z``,
``by``, ``where``, ``observables``, ``out``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import h5py
import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedFormatter,
    FixedLocator,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from spinicl.config import ConfigError

__all__ = [
    "AXIS_SYMBOLS",
    "OBSERVABLE_SYMBOLS",
    "CutData",
    "PhaseData",
    "cut_data",
    "phase_data",
    "plot_cut",
    "plot_phase",
    "plot_sweep",
    "plot_trace",
    "save_figure",
]

SWEEP_FORMAT = "spinicl-sweep"
RUN_FORMAT = "spinicl-run"

#: Observable name → its symbol (matplotlib mathtext), for colorbars and axis labels.
OBSERVABLE_SYMBOLS: dict[str, str] = {
    "energy": r"$\langle E\rangle$",
    "train_mse": r"$\varepsilon_{\rm train}$",
    "test_mse_novel": r"$\varepsilon_{\rm ICL}$",
    "test_mse_in_distribution": r"$\varepsilon_{\rm ID}$",
    "self_overlap": r"$Q$",
    "overlap": r"$q_{ab}$",
    "self_overlap_active": r"$Q_{\rm act}$",
    "overlap_active": r"$q_{ab}^{\rm act}$",
    "overlap_ratio": r"$q/Q$",
    "overlap_ratio_active": r"$q_{\rm act}/Q_{\rm act}$",
    "alignment": r"$\cos(W, I_{D+1})$",
    "gd_cosine": r"$\cos(W, W_{\rm GD})$",
    "distance_to_ground_state": r"$\|W-m\|^2/n$",
    "free_energy": r"$f$",
    "accept": r"$p_{\rm acc}$",
    "swap_accept": r"$p_{\rm swap}$",
}

#: Symbols of single records (no thermal average), for trace panels.
TRACE_SYMBOLS: dict[str, str] = {"energy": r"$E$"}

#: Observable name → a few words, printed before the symbol on colorbars and y axes.
OBSERVABLE_NAMES: dict[str, str] = {
    "energy": "energy",
    "train_mse": "training error",
    "test_mse_novel": "ICL error (novel tasks)",
    "test_mse_in_distribution": "in-distribution error",
    "self_overlap": "self-overlap",
    "overlap": "replica overlap",
    "self_overlap_active": "self-overlap (active)",
    "overlap_active": "overlap (active)",
    "overlap_ratio": "overlap ratio",
    "overlap_ratio_active": "overlap ratio (active)",
    "alignment": "alignment",
    "gd_cosine": "cosine with one-step GD",
    "distance_to_ground_state": "distance to ground state",
    "free_energy": "free energy per spin",
    "accept": "acceptance",
    "swap_accept": "swap acceptance",
}

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
}
_SHORT_AXIS = {"alpha": r"\alpha", "T": "T", "P": "P", "K": "K", "N": "N",
               "lam": r"\lambda", "D": "D", "seed": r"{\rm seed}"}

#: Grid columns that can be plot axes; with ``T`` (the ladder) these are the axes.
GRID_AXES = ("alpha", "P", "K", "N", "lam", "D")
AXES = (*GRID_AXES, "T")
#: Parameters that must be fixed (by the data or by ``where``) when not an axis, in the
#: order they are reported.
_CONTROLLED = ("D", "N", "lam", "K", "P", "alpha", "T")
_INT_COLUMNS = ("D", "N", "P", "K", "seed")

#: Derived observables: name → (numerator, denominator) stored summaries.
DERIVED: dict[str, tuple[str, str]] = {
    "overlap_ratio": ("overlap", "self_overlap"),
    "overlap_ratio_active": ("overlap_active", "self_overlap_active"),
}
#: Observables that are positive and spread over decades: log colour / y scale when
#: they span more than one decade.
_LOG_LIKE = ("energy", "train_mse", "test_mse_novel", "test_mse_in_distribution",
             "distance_to_ground_state", "self_overlap", "self_overlap_active")

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


# ============================================================================ files
def _open(path: str | os.PathLike, fmt: str, swmr: bool = False) -> h5py.File:
    """Open an HDF5 file read-only and check its ``format`` attribute.

    Raises
    ------
    ConfigError
        ``path``: missing, not HDF5 or another format.
    """
    kind = "sweep" if fmt == SWEEP_FORMAT else "run"
    allowed = f"a spinicl {kind} file (format={fmt})"
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError("path", allowed, path, note="no such file")
    f = None
    if swmr:
        try:
            f = h5py.File(path, "r", swmr=True)
        except OSError:
            f = None
    if f is None:
        try:
            f = h5py.File(path, "r")
        except OSError:
            raise ConfigError("path", allowed, path, note="not an HDF5 file") from None
    got = _as_str(f.attrs.get("format", ""))
    if got != fmt:
        f.close()
        raise ConfigError("path", allowed, path,
                          note=f"its format is {got!r}" if got else "no format attribute")
    return f


def _as_str(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return _as_str(v[()])
    return str(v)


def _json_attr(f: h5py.File, key: str) -> dict[str, Any]:
    raw = f.attrs.get(key)
    if raw is None:
        return {}
    try:
        out = json.loads(_as_str(raw))
    except (json.JSONDecodeError, TypeError):
        return {}
    return out if isinstance(out, dict) else {}


def _read_column(ds: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.array(ds.asstr()[...], dtype=object)
    if ds.dtype.kind == "S":
        return np.array([b.decode() for b in ds[...]], dtype=object)
    return ds[...]


# ============================================================================ sweeps
@dataclass
class _Sweep:
    """The parts of a sweep file a plot needs.

    ``grid`` maps column → (points,) array over the *finished* points only; ``ladder`` is
    the reference ladder (T,); ``stats`` caches observable → (mean, stderr, exact), each
    (points, T') with T' = T (or T−1 for neighbour-pair observables such as swap_accept).
    """

    path: str
    config: dict[str, Any]
    grid: dict[str, np.ndarray]
    ids: np.ndarray
    n_failed: int
    n_pending: int
    ladder: np.ndarray
    stored: tuple[str, ...]
    unfinished: dict[str, np.ndarray] = field(default_factory=dict)
    stats: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def observables(self) -> tuple[str, ...]:
        derived = tuple(k for k, (a, b) in DERIVED.items()
                        if k not in self.stored and a in self.stored and b in self.stored)
        return self.stored + derived


def _load_sweep(path: str | os.PathLike, observables: Sequence[str]) -> _Sweep:
    """Read the grid, the reference ladder and the summaries of ``observables``.

    Unknown names in ``observables`` are skipped here (the caller validates them against
    :attr:`_Sweep.observables` and raises with the parameter's name).
    """
    with _open(path, SWEEP_FORMAT) as f:
        if "grid" not in f:
            raise ConfigError("path", "a spinicl sweep file with a /grid table",
                              os.fspath(path))
        cols = {k: _read_column(f["grid"][k]) for k in f["grid"]}
        missing = [c for c in ("id", "status") if c not in cols]
        if missing:
            raise ConfigError("path", "a spinicl sweep file whose /grid has id and status "
                              "columns", os.fspath(path), note=f"missing {missing}")
        status = np.array([str(s) for s in cols["status"]])
        done = status == "done"
        done &= np.array([f"points/{int(i)}/ladder/T" in f for i in cols["id"]], dtype=bool)
        n_failed = int(np.sum(status == "failed"))
        n_pending = int(np.sum(~done) - n_failed)
        grid = {k: v[done] for k, v in cols.items()}
        if "alpha" not in grid and "P" in grid and "D" in grid:
            grid["alpha"] = grid["P"] / grid["D"].astype(float) ** 2
        if "K" not in grid and "P" in grid:
            grid["K"] = grid["P"]
        ids = grid["id"].astype(np.int64)
        if ids.size == 0:
            raise ConfigError("path", "a sweep file with at least one finished point",
                              os.fspath(path),
                              note=f"{n_failed} failed, {n_pending} pending")
        ladder = np.asarray(f[f"points/{int(ids[0])}/ladder/T"][...], dtype=float)
        summary0 = f.get(f"points/{int(ids[0])}/summary")
        stored = tuple(sorted(summary0)) if summary0 is not None else ()
        unfinished = {k: v[~done] for k, v in cols.items()}
        unfinished["status"] = np.where(status[~done] == "failed", "failed", "pending")
        sweep = _Sweep(os.fspath(path), _json_attr(f, "config"), grid, ids, n_failed,
                       n_pending, ladder, stored, unfinished)
        wanted: set[str] = set()
        for name in observables:
            if name in stored:
                wanted.add(name)
            elif name in DERIVED:
                wanted.update(DERIVED[name])
        for name in sorted(wanted & set(stored)):
            sweep.stats[name] = _read_stats(f, ids, name, ladder)
    for name in observables:
        if name in DERIVED and name not in sweep.stats:
            a, b = DERIVED[name]
            if a in sweep.stats and b in sweep.stats:
                sweep.stats[name] = _ratio(sweep.stats[a], sweep.stats[b])
    return sweep


def _read_stats(f: h5py.File, ids: np.ndarray, name: str, ladder: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, stderr, exact), each (points, T') on the reference ladder; NaN if absent."""
    rows: list[np.ndarray] = []
    for pid in ids:
        g = f.get(f"points/{int(pid)}/summary/{name}")
        lad = np.asarray(f[f"points/{int(pid)}/ladder/T"][...], dtype=float)
        width = g["mean"].shape[0] if g is not None and "mean" in g else lad.size
        triple = []
        for stat in ("mean", "stderr", "exact"):
            if g is not None and stat in g:
                triple.append(np.asarray(g[stat][...], dtype=float).reshape(-1))
            else:
                triple.append(np.full(width, np.nan))
        triple = [_onto_ladder(v, lad, ladder) for v in triple]
        rows.append(np.stack(triple))
    width = max(r.shape[1] for r in rows)
    arr = np.full((len(rows), 3, width), np.nan)
    for i, r in enumerate(rows):
        arr[i, :, : r.shape[1]] = r
    return arr[:, 0], arr[:, 1], arr[:, 2]


def _onto_ladder(v: np.ndarray, lad: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Values ``v`` given on ladder ``lad`` (or its T−1 neighbour pairs), on ``ref``."""
    if v.size == lad.size:
        src, dst = lad, ref
    elif v.size == lad.size - 1:
        src, dst = _pair_temperatures(lad), _pair_temperatures(ref)
    else:
        return v
    if src.size == dst.size and np.allclose(src, dst, rtol=1e-6, atol=0.0):
        return v
    good = np.isfinite(v)
    if good.sum() < 2:
        return np.full(dst.size, np.nan)
    return np.interp(np.log(dst), np.log(src[good]), v[good], left=np.nan, right=np.nan)


def _pair_temperatures(ladder: np.ndarray) -> np.ndarray:
    """Geometric midpoints of neighbouring temperatures, (T−1,)."""
    return np.sqrt(ladder[:-1] * ladder[1:])


def _ratio(num: tuple[np.ndarray, ...], den: tuple[np.ndarray, ...]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, stderr, exact) of num/den from the two summaries."""
    mq, sq, eq = num
    mQ, sQ, eQ = den
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mq / mQ
        s = np.abs(r) * np.sqrt((sq / mq) ** 2 + (sQ / mQ) ** 2)
        s = np.where((sq == 0) & (sQ == 0), 0.0, s)
        e = eq / eQ
    return r, s, e


# ----------------------------------------------------------------------- averaging
@dataclass
class _Averaged:
    """Disorder averages on a 2-D grid of coordinates (rows: y, columns: x)."""

    x: np.ndarray
    y: np.ndarray
    mean: np.ndarray      # (ny, nx)
    stderr: np.ndarray    # (ny, nx)
    exact: np.ndarray     # (ny, nx)
    count: np.ndarray     # (ny, nx) seeds contributing
    fixed: dict[str, float]
    n_failed: int
    n_pending: int
    theory_mode: bool
    sweep: _Sweep
    #: (x index, y index, value) of every point behind the means (the seeds)
    samples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _check_observable(sweep: _Sweep, param: str, z: str) -> None:
    if z not in sweep.observables:
        raise ConfigError(param, "one of " + ", ".join(sweep.observables), z)


def _check_axis(param: str, name: str, sweep: _Sweep | None = None) -> None:
    if name not in (*AXES, "seed"):
        raise ConfigError(param, "one of " + ", ".join((*AXES, "seed")), name)
    if sweep is not None and name != "T" and name not in sweep.grid:
        present = [a for a in (*AXES, "seed") if a == "T" or a in sweep.grid]
        raise ConfigError(param, "a column of this sweep's grid: " + ", ".join(present), name)


def _table(sweep: _Sweep, z: str) -> dict[str, np.ndarray]:
    """Long table: one row per (finished point, temperature) with coordinates and stats."""
    mean, stderr, exact = sweep.stats[z]
    n_pts, width = mean.shape
    temps = sweep.ladder if width == sweep.ladder.size else _pair_temperatures(sweep.ladder)
    tab: dict[str, np.ndarray] = {}
    for col in (*GRID_AXES, "seed"):
        if col in sweep.grid:
            tab[col] = np.repeat(np.asarray(sweep.grid[col], dtype=float), width)
    tab["T"] = np.tile(temps, n_pts)
    tab["point"] = np.repeat(np.arange(n_pts), width)
    tab["mean"] = mean.reshape(-1)
    tab["stderr"] = stderr.reshape(-1)
    tab["exact"] = exact.reshape(-1)
    return tab


def _unique_close(v: np.ndarray, rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values (merging values within ``rtol``) and each entry's index."""
    order = np.argsort(v, kind="stable")
    sv = v[order]
    new = np.ones(sv.size, dtype=bool)
    new[1:] = ~np.isclose(sv[1:], sv[:-1], rtol=rtol, atol=0.0)
    group = np.cumsum(new) - 1
    idx = np.empty(v.size, dtype=np.int64)
    idx[order] = group
    values = np.array([sv[group == g].mean() for g in range(group[-1] + 1)]) if v.size \
        else np.empty(0)
    return values, idx


def _apply_where(tab: dict[str, np.ndarray], where: Mapping[str, float] | None,
                 notes: list[str] | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Keep the rows matching ``where``; T picks the nearest ladder temperature (log).

    When T is not a rung of the ladder, a line naming the rung used is appended to
    ``notes``.
    """
    chosen: dict[str, float] = {}
    if not where:
        return tab, chosen
    keep = np.ones(tab["mean"].size, dtype=bool)
    for key, value in where.items():
        if key not in tab or key in ("point", "mean", "stderr", "exact"):
            allowed = [k for k in (*AXES, "seed") if k in tab]
            raise ConfigError("where", "keys among " + ", ".join(allowed), f"{key}={value}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError("where", f"a number for {key}", f"{key}={value}") from None
        vals, _ = _unique_close(tab[key])
        if key == "T":
            if not value > 0:
                raise ConfigError("where", "a temperature T > 0", f"T={value}")
            pick = vals[np.argmin(np.abs(np.log(vals) - np.log(value)))]
            if notes is not None and not np.isclose(pick, value, rtol=1e-6, atol=0.0):
                notes.append(f"--where T={value:g}: not a rung of the ladder; using the "
                             f"nearest rung T = {pick:.4g}")
        else:
            hit = np.isclose(vals, value, rtol=1e-6, atol=1e-12)
            if not hit.any():
                shown = ", ".join(_fmt_plain(v) for v in vals)
                raise ConfigError("where", f"a value of {key} in the sweep ({shown})",
                                  f"{key}={value:g}")
            pick = vals[hit][0]
        keep &= np.isclose(tab[key], pick, rtol=1e-6, atol=1e-12)
        chosen[key] = float(pick)
    return {k: v[keep] for k, v in tab.items()}, chosen


def _where_text(where: Mapping[str, float] | None) -> str | None:
    """``where`` as the command line spells it: ``--where N=20 --where T=0.001``."""
    if not where:
        return None
    return " ".join(f"--where {k}={_fmt_plain(v)}" for k, v in where.items())


def _average(sweep: _Sweep, x: str, y: str, z: str,
             where: Mapping[str, float] | None, param_y: str = "y",
             notes: list[str] | None = None) -> _Averaged:
    """Disorder-average ``z`` on the (x, y) grid; see the module docstring for errors."""
    _check_axis("x", x, sweep)
    _check_axis(param_y, y, sweep)
    if x == y:
        raise ConfigError(param_y, f"an axis other than x = {x}", y)
    _check_observable(sweep, "z", z)
    tab, chosen = _apply_where(_table(sweep, z), where, notes)
    if tab["mean"].size == 0:
        raise ConfigError("where", "a selection that matches finished points",
                          _where_text(where))
    xv, ix = _unique_close(tab[x])
    yv, iy = _unique_close(tab[y])
    cell = iy * xv.size + ix
    # Every controlled parameter that is not an axis must be fixed inside each cell.
    fixed: dict[str, float] = {}
    follows = set()  # parameters set by another one: the error names the other
    if "K" in tab and "P" in tab and np.allclose(tab["K"], tab["P"]):
        follows.add("K")  # K = P, one task per prompt: it follows P
    if "alpha" in tab and "P" in tab and "D" in tab and np.unique(tab["D"]).size == 1:
        follows.add("P")  # at fixed D, P follows α
    for p in _CONTROLLED:
        if p in (x, y) or p not in tab:
            continue
        vals, ip = _unique_close(tab[p])
        if vals.size == 1:
            fixed[p] = float(vals[0])
            continue
        if p in follows:
            continue
        order = np.lexsort((ip, cell))
        c, q = cell[order], ip[order]
        varies = np.any((c[1:] == c[:-1]) & (q[1:] != q[:-1]))
        if varies:
            shown = ", ".join(_fmt_plain(v) for v in vals[:8]) + (", ..." if vals.size > 8
                                                                  else "")
            raise ConfigError(
                "where", f"a fixed value for {p} (this sweep varies it: {shown}), "
                f"e.g. --where {p}={_fmt_plain(vals[0])}", _where_text(where))
    fixed.update({k: v for k, v in chosen.items() if k not in (x, y)})
    shape = (yv.size, xv.size)
    n = np.bincount(cell, weights=np.isfinite(tab["mean"]), minlength=xv.size * yv.size)
    m = np.where(np.isfinite(tab["mean"]), tab["mean"], 0.0)
    s1 = np.bincount(cell, weights=m, minlength=n.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        dev = np.where(np.isfinite(tab["mean"]), tab["mean"] - mean[cell], 0.0)
        var = np.bincount(cell, weights=dev**2, minlength=n.size) / (n - 1)
        sem = np.sqrt(var / n)
    single_se = np.full(n.size, np.nan)
    one = n[cell] == 1
    good = one & np.isfinite(tab["mean"])
    single_se[cell[good]] = tab["stderr"][good]
    stderr = np.where(n >= 2, sem, np.where(n == 1, single_se, np.nan))
    ex_n = np.bincount(cell, minlength=n.size)
    ex_fin = np.bincount(cell, weights=np.isfinite(tab["exact"]), minlength=n.size)
    ex_sum = np.bincount(cell, weights=np.where(np.isfinite(tab["exact"]), tab["exact"], 0.0),
                         minlength=n.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where((ex_fin == ex_n) & (ex_n > 0), ex_sum / ex_n, np.nan)
    mode = str(sweep.config.get("mode", "")).lower()
    fin = np.isfinite(tab["mean"]) & np.isfinite(tab["exact"])
    theory_mode = mode == "theory" or bool(
        fin.all() and np.allclose(tab["mean"], tab["exact"], rtol=1e-12, atol=0.0)
        and np.all(tab["stderr"][fin] == 0))
    # unfinished points inside the selection (the ``where`` values), for the title
    sel = np.ones(len(sweep.unfinished.get("status", ())), dtype=bool)
    for k, v in chosen.items():
        if k in sweep.unfinished and k != "T":
            sel &= np.isclose(np.asarray(sweep.unfinished[k], dtype=float), v, rtol=1e-6)
    st = sweep.unfinished.get("status", np.empty(0))[sel]
    return _Averaged(xv, yv, mean.reshape(shape), stderr.reshape(shape),
                     exact.reshape(shape), n.reshape(shape).astype(int), fixed,
                     int(np.sum(st == "failed")), int(np.sum(st == "pending")),
                     theory_mode, sweep, (ix, iy, tab["mean"]))


class PhaseData(NamedTuple):
    """Disorder-averaged observable on a 2-D grid.

    Attributes
    ----------
    x : ndarray, shape (nx,)
        Distinct values of the x axis, ascending.
    y : ndarray, shape (ny,)
        Distinct values of the y axis, ascending.
    Z : ndarray, shape (ny, nx)
        Mean over seeds; NaN where no finished point.
    Z_stderr : ndarray, shape (ny, nx)
        Standard error over seeds (one seed: its Monte Carlo standard error).
    """

    x: np.ndarray
    y: np.ndarray
    Z: np.ndarray
    Z_stderr: np.ndarray


class CutData(NamedTuple):
    """Disorder-averaged curves of an observable, one per value of ``by``.

    Attributes
    ----------
    x : ndarray, shape (nx,)
    by : ndarray, shape (nb,)
    Z : ndarray, shape (nb, nx)
        Mean over seeds; NaN where no finished point.
    Z_stderr : ndarray, shape (nb, nx)
    exact : ndarray, shape (nb, nx)
        Mean over seeds of the exact value; NaN where any seed has none.
    """

    x: np.ndarray
    by: np.ndarray
    Z: np.ndarray
    Z_stderr: np.ndarray
    exact: np.ndarray


def phase_data(sweep_path: str | os.PathLike, x: str = "alpha", y: str = "T",
               z: str = "test_mse_novel", where: Mapping[str, float] | None = None
               ) -> PhaseData:
    """The numbers behind :func:`plot_phase`.

    Parameters
    ----------
    sweep_path : path
        A sweep file (``format = "spinicl-sweep"``).
    x, y : str
        Axes: ``alpha, P, K, N, lam, D`` (grid columns) or ``T`` (the ladder).
    z : str
        An observable stored in the points' summaries, or a derived one
        (``overlap_ratio``, ``overlap_ratio_active``).
    where : mapping, optional
        Fixed values for parameters the sweep varies besides x, y and the seed, e.g.
        ``{"N": 100}``; ``T`` selects the nearest ladder temperature.

    Returns
    -------
    PhaseData
        ``(x (nx,), y (ny,), Z (ny, nx), Z_stderr (ny, nx))``.

    Raises
    ------
    ConfigError
        ``path``, ``x``, ``y``, ``z`` or ``where``.
    """
    avg = _average(_load_sweep(sweep_path, [z]), x, y, z, where)
    return PhaseData(avg.x, avg.y, avg.mean, avg.stderr)


def cut_data(sweep_path: str | os.PathLike, x: str = "alpha", z: str = "test_mse_novel",
             by: str = "T", where: Mapping[str, float] | None = None) -> CutData:
    """The numbers behind :func:`plot_cut`.

    Parameters
    ----------
    sweep_path : path
    x : str
        The abscissa (an axis, see :func:`phase_data`).
    z : str
        The observable.
    by : str
        One curve per value of this axis.
    where : mapping, optional
        As in :func:`phase_data`.

    Returns
    -------
    CutData
        ``(x (nx,), by (nb,), Z (nb, nx), Z_stderr (nb, nx), exact (nb, nx))``.
    """
    avg = _average(_load_sweep(sweep_path, [z]), x, by, z, where, param_y="by")
    return CutData(avg.x, avg.y, avg.mean, avg.stderr, avg.exact)


# ============================================================================ labels
def _fmt_plain(v: float) -> str:
    v = float(v)
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def _fmt_tex(v: float) -> str:
    """A number for mathtext: integers plain, powers of ten as 10^k, else 3 digits."""
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return _fmt_plain(v)
    if v.is_integer() and abs(v) < 1e5:
        return str(int(v))
    e = math.floor(math.log10(abs(v)))
    mant = v / 10**e
    if abs(e) <= 2:
        return f"{v:.3g}"
    if np.isclose(abs(mant), 1.0, rtol=1e-6):
        return ("-" if v < 0 else "") + f"10^{{{e}}}"
    return rf"{mant:.2g}\times 10^{{{e}}}"


def observable_label(name: str, symbol_only: bool = False) -> str:
    """Axis label of an observable: ``"ICL error (novel tasks) $\\varepsilon_{ICL}$"``."""
    sym = OBSERVABLE_SYMBOLS.get(name, name.replace("_", " "))
    if symbol_only or name not in OBSERVABLE_NAMES:
        return sym
    return f"{OBSERVABLE_NAMES[name]}  {sym}"


def _title(avg: _Averaged, skip: Sequence[str] = ()) -> str:
    parts = []
    fixed = avg.fixed
    for p in ("D", "N", "P", "K", "alpha", "lam", "T"):
        if p not in fixed or p in skip:
            continue
        if p == "K" and "P" in fixed and np.isclose(fixed["K"], fixed["P"]):
            continue
        if p == "alpha" and "P" in fixed:
            continue
        parts.append(f"{_SHORT_AXIS[p]} = {_fmt_tex(fixed[p])}")
    line = "$" + r",\ ".join(parts) + "$" if parts else ""
    seeds = np.unique(avg.count[avg.count > 0])
    if seeds.size:
        s = f"{seeds.max()}" if seeds.size == 1 else f"{seeds.min()}–{seeds.max()}"
        word = "seed" if seeds.max() == 1 else "seeds"
        extra = f"mean over {s} {word}"
    else:
        extra = "no data"
    if avg.theory_mode:
        extra = "exact theory, " + extra
    notes = []
    if avg.n_failed:
        notes.append(f"{avg.n_failed} failed point{'s' if avg.n_failed > 1 else ''} omitted")
    if avg.n_pending:
        notes.append(f"{avg.n_pending} pending")
    if notes:
        extra += " (" + ", ".join(notes) + ")"
    return f"{line}\n{extra}" if line else extra


def _auto_log(axis: str, values: np.ndarray) -> bool:
    """Log scale for an axis: T always; alpha, P, K, lam when they span > 1 decade."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if axis == "T":
        return bool(v.size and (v > 0).all())
    if axis in ("N", "D", "seed") or v.size < 2 or (v <= 0).any():
        return False
    return bool(v.max() / v.min() > 10.0)


def _auto_log_values(name: str, Z: np.ndarray) -> bool:
    v = Z[np.isfinite(Z)]
    if name not in _LOG_LIKE or v.size < 2 or (v <= 0).any():
        return False
    return bool(v.max() / v.min() > 10.0)


def _integer_ticks(axis: Any, name: str, log: bool) -> None:
    """Integer tick marks on a linear axis of an integer parameter (N, D, P, K)."""
    if not log and name in _INT_COLUMNS:
        axis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))


def _edges(v: np.ndarray, log: bool) -> np.ndarray:
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
def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _outputs(out: str | os.PathLike) -> list[str]:
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


def save_figure(fig: Figure, out: str | os.PathLike) -> list[str]:
    """Write ``fig`` to ``out`` (PNG and PDF, see the module docstring); return the paths."""
    paths = _outputs(out)
    for p in paths:
        d = os.path.dirname(p)
        if d:
            os.makedirs(d, exist_ok=True)
        with mpl.rc_context(STYLE):
            fig.savefig(p, dpi=PNG_DPI if p.lower().endswith(".png") else 300,
                        metadata=None if p.lower().endswith((".png", ".eps"))
                        else {"Creator": "spinicl"})
            if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
                # Laid out by the first draw: freeze it, so the next format is not re-laid
                # out (same positions in PNG and PDF, one layout pass instead of two).
                fig.set_layout_engine("none")
    return paths


# ============================================================================ phase
def plot_phase(sweep_path: str | os.PathLike, x: str = "alpha", y: str = "T",
               z: str = "test_mse_novel", out: str | os.PathLike = "phase.png", *,
               where: Mapping[str, float] | None = None, log_z: bool | None = None,
               log_x: bool | None = None, log_y: bool | None = None,
               contours: Sequence[float] | None = None, contour_z: str | None = None,
               threshold: bool = True, cmap: str = "viridis",
               zmax: float | str | None = "auto",
               title: str | None = None, figsize: tuple[float, float] = (4.6, 3.5),
               notes: list[str] | None = None) -> list[str]:
    """Phase diagram: the disorder-averaged observable ``z`` over the (x, y) plane.

    Parameters
    ----------
    sweep_path : path
        A sweep file.
    x, y : str
        Axes (``alpha, P, K, N, lam, D, T``); T is always on a log scale, alpha, P, K
        and λ when they span more than a decade, N and D linear.
    z : str
        Observable (stored, or the derived ``overlap_ratio``, ``overlap_ratio_active``).
    out : path
        Output file; ``.png`` or ``.pdf`` writes both.
    where : mapping, optional
        Values for the other parameters the sweep varies (see :func:`phase_data`).
    log_z : bool, optional
        Logarithmic colour scale (default: for positive MSE-like observables spanning
        more than one decade within the colour range).
    zmax : float, "auto" or None
        Upper end of the colour scale; larger values are drawn in the top colour (the
        colour bar's arrow says so). ``"auto"`` (default): for MSE-like observables over
        a temperature axis, twice the largest value at the coldest temperature, so that
        the hot corner (where the error grows like 1/β) does not squeeze the
        low-temperature structure into the darkest tenth of the scale; None: the data's
        maximum.
    log_x, log_y : bool, optional
        Override the automatic axis scales.
    contours : sequence of float, optional
        Levels of contour lines, labelled, e.g. ``(0.5,)`` with ``contour_z =
        "overlap_ratio"``.
    contour_z : str, optional
        Observable for the contour lines (default ``z``).
    threshold : bool
        Mark the interpolation threshold P = D(D+1) (α = (D+1)/D) when x or y is α or P
        and D is fixed.
    cmap : str
    title : str, optional
        Replaces the automatic title (fixed parameters, seeds, failed points).
    figsize : (float, float)
        Inches.
    notes : list, optional
        Receives one line per choice made for the caller (a temperature snapped to the
        nearest rung, a capped colour scale).

    Returns
    -------
    list of str
        The files written.
    """
    names = [z] + ([contour_z] if contour_z else [])
    sweep = _load_sweep(sweep_path, names)
    avg = _average(sweep, x, y, z, where, notes=notes)
    lines = None
    if contours:
        cz = contour_z or z
        if cz != z:
            _check_observable(sweep, "contour_z", cz)
            lines = _average(sweep, x, y, cz, where)
        else:
            lines = avg
    lx = _auto_log(x, avg.x) if log_x is None else bool(log_x)
    ly = _auto_log(y, avg.y) if log_y is None else bool(log_y)
    Zm = np.ma.masked_invalid(avg.mean)
    finite = avg.mean[np.isfinite(avg.mean)]
    cap = _colour_cap(avg, z, x, y, zmax)
    capped = cap is not None and finite.size > 0 and finite.max() > cap
    shown = np.minimum(avg.mean, cap) if capped else avg.mean
    if capped and notes is not None:
        notes.append(f"colour scale capped at {z} = {cap:.4g} (data up to "
                     f"{finite.max():.4g}); set zmax to change it")
    lz = _auto_log_values(z, shown) if log_z is None else bool(log_z)
    top = cap if capped else (finite.max() if finite.size else 1.0)
    if lz and finite.size and (finite > 0).any():
        pos = finite[finite > 0]
        norm: Normalize = LogNorm(vmin=pos.min(), vmax=top)
        Zm = np.ma.masked_where(~(avg.mean > 0), avg.mean)
    else:
        norm = Normalize(vmin=finite.min() if finite.size else 0.0, vmax=top)
    with mpl.rc_context(STYLE):
        fig = _new_figure(*figsize)
        ax = fig.add_subplot()
        ax.set_facecolor("0.88")
        mesh = ax.pcolormesh(_edges(avg.x, lx), _edges(avg.y, ly), Zm, cmap=cmap,
                             norm=norm, shading="flat", rasterized=True)
        ax.set_xscale("log" if lx else "linear")
        ax.set_yscale("log" if ly else "linear")
        _integer_ticks(ax.xaxis, x, lx)
        _integer_ticks(ax.yaxis, y, ly)
        _plain_log_ticks(ax.xaxis, avg.x, lx)
        _plain_log_ticks(ax.yaxis, avg.y, ly)
        ax.set_xlabel(AXIS_SYMBOLS[x])
        ax.set_ylabel(AXIS_SYMBOLS[y])
        cb = fig.colorbar(mesh, ax=ax, pad=0.02, fraction=0.06, aspect=25,
                          extend="max" if capped else "neither")
        cb.set_label(observable_label(z))
        if lz:
            _plain_log_ticks(cb.ax.yaxis, np.array([norm.vmin, norm.vmax]), True)
        cb.ax.tick_params(direction="out", which="both")
        ax.tick_params(which="both", color="w")
        if lines is not None and avg.x.size >= 2 and avg.y.size >= 2:
            crossover = _is_gaussian(sweep) and (contour_z or z).startswith("overlap_ratio")
            _draw_contours(ax, cb, lines, contours or (), contour_z or z, norm,
                           same=lines is avg, crossover=crossover)
        if threshold:
            _draw_threshold(ax, avg, x, y)
        if not np.isfinite(avg.mean).all():
            ax.text(0.99, 0.01, "grey: no data", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=7, color="0.3")
        ax.set_title(_title(avg) if title is None else title, loc="left")
    return save_figure(fig, out)


def _is_gaussian(sweep: _Sweep) -> bool:
    """True for a sweep of the merged model, whose Boltzmann law is Gaussian at every T."""
    sampler = sweep.config.get("sampler", {}) if isinstance(sweep.config, dict) else {}
    return str(sampler.get("model", "merged")) == "merged"


def _colour_cap(avg: _Averaged, z: str, x: str, y: str, zmax: float | str | None
                ) -> float | None:
    """The upper end of the colour scale asked for by ``zmax`` (None: no cap)."""
    if zmax is None:
        return None
    if isinstance(zmax, str):
        if zmax != "auto":
            raise ConfigError("zmax", "a number > 0, auto or none", zmax)
        if z not in _LOG_LIKE or "T" not in (x, y):
            return None
        cold = avg.mean[0] if y == "T" else avg.mean[:, 0]  # the coldest row / column
        cold = cold[np.isfinite(cold)]
        return float(2.0 * cold.max()) if cold.size and cold.max() > 0 else None
    if not (isinstance(zmax, int | float) and zmax > 0):
        raise ConfigError("zmax", "a number > 0, auto or none", zmax)
    return float(zmax)


def _plain_log_ticks(axis: Any, values: np.ndarray, log: bool) -> None:
    """Tick labels of a log axis as plain numbers (0.3, 2, 50) when it spans < 2 decades.

    Matplotlib's default labels such a short axis with minor labels like "3×10⁰"; over
    two decades or more the powers of ten stay (10⁻⁴, 10⁻³, ...) without minor labels.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not log or v.size == 0:
        return
    if v.max() / v.min() >= 100.0:
        axis.set_minor_formatter(NullFormatter())
        return
    plain = FuncFormatter(lambda t, _pos: _fmt_plain(float(f"{t:.3g}")))
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(NullFormatter())


def _draw_contours(ax, cb, avg: _Averaged, levels: Sequence[float], name: str,
                   norm: Normalize, same: bool, crossover: bool = False) -> None:
    """Labelled contour lines; ``crossover`` marks them as a crossover (Gaussian model)."""
    Z = np.ma.masked_invalid(avg.mean)
    fin = avg.mean[np.isfinite(avg.mean)]
    lv = sorted(float(v) for v in levels if fin.size and fin.min() < v < fin.max())
    if not lv:
        return
    cs = ax.contour(avg.x, avg.y, Z, levels=lv, colors="w", linewidths=1.4)
    sym = OBSERVABLE_SYMBOLS.get(name, name).strip("$")
    ax.clabel(cs, fmt={v: f"${sym} = {_fmt_tex(v)}$" for v in lv}, fontsize=7.5,
              inline=True, inline_spacing=3)
    if crossover:
        ax.text(0.01, 0.01, "merged model: Gaussian at every T; the line marks a\n"
                "smooth crossover, not a phase transition", transform=ax.transAxes,
                ha="left", va="bottom", fontsize=6.5, color="w")
    if same:
        for v in lv:
            cb.ax.axhline(v, color="w", lw=1.4)


def _draw_threshold(ax, avg: _Averaged, x: str, y: str) -> None:
    """Dotted line at the interpolation threshold P = D(D+1) (α = (D+1)/D)."""
    D = avg.fixed.get("D")
    if D is None:
        return
    for axis, vals, vertical in ((x, avg.x, True), (y, avg.y, False)):
        if axis not in ("alpha", "P"):
            continue
        c = (D + 1) / D if axis == "alpha" else D * (D + 1)
        if not vals.min() <= c <= vals.max():
            continue
        kw = {"color": "w", "ls": (0, (1.5, 1.5)), "lw": 1.1, "alpha": 0.9}
        if vertical:
            ax.axvline(c, **kw)
            ax.annotate(r"$P = D(D{+}1)$", (c, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -3), textcoords="offset points", ha="left", va="top",
                        fontsize=7.5, color="w")
        else:
            ax.axhline(c, **kw)


# ============================================================================ cut
#: Baselines a sweep can store (``[sweep] baselines = true``): name → legend label.
BASELINE_LABELS = {"gd": "one-step GD", "bayes": "Bayes ridge", "dmmse": "dMMSE"}
_BASELINE_STYLES = {"gd": (0, (4, 1.5, 1, 1.5)), "bayes": (0, (1, 1.2)), "dmmse": (0, (6, 2))}
_Z_MARKERS = ("o", "s", "^", "D", "v")


def plot_cut(sweep_path: str | os.PathLike, x: str = "alpha",
             z: str | Sequence[str] = "test_mse_novel",
             by: str = "T", out: str | os.PathLike = "cut.png", *,
             where: Mapping[str, float] | None = None,
             by_values: Sequence[float] | None = None, log_x: bool | None = None,
             log_y: bool | None = None, cmap: str | None = None,
             baselines: bool = True, seeds: bool = True,
             title: str | None = None, figsize: tuple[float, float] = (4.6, 3.4),
             notes: list[str] | None = None) -> list[str]:
    """Curves of the disorder-averaged ``z`` against ``x``, one per value of ``by``.

    Markers with error bars are the simulation (mean over seeds, standard error; see the
    module docstring); small faint dots are the individual seeds (the disorder spread);
    dashed lines of the same colour are the exact values where the file has them. In a
    theory-mode sweep (mean = exact) the curves are drawn once, solid. Up to 7 curves get
    a legend, more a colour bar. Several observables (e.g. the novel-task and the
    in-distribution error) share the axes with one marker shape each; the ICL baselines
    stored by a sweep with ``baselines = true`` are drawn as grey lines.

    Parameters
    ----------
    sweep_path : path
    x : str
        Abscissa (``alpha, P, K, N, lam, D, T``).
    z : str or sequence of str
        The observable(s) (stored or derived).
    by : str
        One curve per value of this axis (``seed`` gives one curve per disorder sample).
    out : path
        ``.png`` or ``.pdf`` writes both.
    where : mapping, optional
        Values for other parameters the sweep varies.
    by_values : sequence of float, optional
        Draw only the curves nearest to these values of ``by``.
    log_x, log_y : bool, optional
        Override the automatic scales (y: log for positive MSE-like observables spanning
        more than a decade).
    cmap : str, optional
        Default ``plasma`` for T (cold dark, hot bright), ``viridis`` otherwise.
    baselines : bool
        Draw the stored baselines of each plotted test error.
    seeds : bool
        Draw the individual seeds behind each mean.
    title : str, optional
    figsize : (float, float)
    notes : list, optional
        Receives one line per choice made for the caller (a snapped temperature).

    Returns
    -------
    list of str
    """
    zs = [z] if isinstance(z, str) else list(z)
    if not zs:
        raise ConfigError("z", "at least one observable", zs)
    base_names = [f"baseline_{b}_{name}" for name in zs for b in BASELINE_LABELS] \
        if baselines else []
    sweep = _load_sweep(sweep_path, zs + base_names)
    avgs = [_average(sweep, x, by, name, where, param_y="by",
                     notes=notes if k == 0 else None) for k, name in enumerate(zs)]
    avg = avgs[0]
    rows = np.arange(avg.y.size)
    if by_values is not None:
        want = np.asarray(list(by_values), dtype=float)
        if want.size == 0:
            raise ConfigError("by_values", "at least one value", list(by_values))
        if _auto_log(by, avg.y):
            rows = np.unique([np.argmin(np.abs(np.log(avg.y) - np.log(w))) for w in want
                              if w > 0])
        else:
            rows = np.unique([np.argmin(np.abs(avg.y - w)) for w in want])
    lx = _auto_log(x, avg.x) if log_x is None else bool(log_x)
    everything = np.concatenate([np.concatenate([a.mean[rows], a.exact[rows]]).ravel()
                                 for a in avgs])
    ly = _auto_log_values(zs[0], everything) if log_y is None else bool(log_y)
    cmap_ = mpl.colormaps[cmap or ("plasma" if by == "T" else "viridis")]
    log_by = _auto_log(by, avg.y)
    cnorm: Normalize = (LogNorm(avg.y.min(), avg.y.max()) if log_by
                        else Normalize(avg.y.min(), avg.y.max()))
    if avg.y.size == 1:
        cnorm = Normalize(avg.y[0] - 1, avg.y[0] + 1)

    def colour(v: float) -> tuple:
        return cmap_(0.05 + 0.8 * float(cnorm(v)))  # avoid the palest end of the map

    has_exact = any(bool(np.isfinite(a.exact[rows]).any()) and not a.theory_mode
                    for a in avgs)
    several = len(zs) > 1
    with mpl.rc_context(STYLE):
        fig = _new_figure(*figsize)
        ax = fig.add_subplot()
        for k, (name, a) in enumerate(zip(zs, avgs, strict=True)):
            marker = _Z_MARKERS[k % len(_Z_MARKERS)]
            for r in rows:
                c = colour(a.y[r])
                m, se = a.mean[r], a.stderr[r]
                ok = np.isfinite(m)
                lab = f"${_SHORT_AXIS[by]} = {_fmt_tex(a.y[r])}$" if k == 0 else None
                if seeds and a.samples is not None:
                    ix, iy, val = a.samples
                    sel = (iy == r) & np.isfinite(val) & (a.count[iy, ix] > 1)
                    ax.plot(a.x[ix[sel]], val[sel], ".", color=c, ms=2.2, alpha=0.45,
                            zorder=2)
                if a.theory_mode:
                    ax.plot(a.x[ok], m[ok], "-", marker=marker, color=c, ms=3.2, label=lab)
                else:
                    ax.errorbar(a.x[ok], m[ok], yerr=np.nan_to_num(se[ok]), fmt=marker,
                                color=c, ms=3.5, mfc=c, mec="k", mew=0.3, capsize=2,
                                elinewidth=0.9, ls="none" if has_exact else "-", lw=0.9,
                                label=lab, zorder=3)
                e = a.exact[r]
                if has_exact and np.isfinite(e).any():
                    ok = np.isfinite(e)
                    ax.plot(a.x[ok], e[ok], "--", color=c, lw=1.1, zorder=1)
        drawn_baselines = _draw_baselines(ax, sweep, zs, x, by, where, rows, avg, colour) \
            if baselines else []
        ax.set_xscale("log" if lx else "linear")
        ax.set_yscale("log" if ly else "linear")
        _integer_ticks(ax.xaxis, x, lx)
        _plain_log_ticks(ax.xaxis, avg.x, lx)
        _plain_log_ticks(ax.yaxis, everything, ly)
        ax.set_xlabel(AXIS_SYMBOLS.get(x, x))
        ax.set_ylabel(observable_label(zs[0]) if not several else
                      ",  ".join(observable_label(n, symbol_only=True) for n in zs))
        if threshold_ok := ("D" in avg.fixed and x in ("alpha", "P")):
            D = avg.fixed["D"]
            cval = (D + 1) / D if x == "alpha" else D * (D + 1)
            threshold_ok = avg.x.min() <= cval <= avg.x.max()
            if threshold_ok:
                ax.axvline(cval, color="0.5", ls=":", lw=1.0, zorder=0)
                ax.annotate(r"$P = D(D{+}1)$", (cval, 1.0),
                            xycoords=("data", "axes fraction"), xytext=(3, -3),
                            textcoords="offset points", ha="left", va="top", fontsize=7.5,
                            color="0.4")
        style = []
        if several:
            style += [Line2D([], [], color="0.3", marker=_Z_MARKERS[k % len(_Z_MARKERS)],
                             ms=3.5, ls="none", label=observable_label(n, symbol_only=True))
                      for k, n in enumerate(zs)]
        if has_exact:
            style += [] if several else [Line2D([], [], color="0.3", marker="o", ms=3.5,
                                                ls="none", label="simulation")]
            style += [Line2D([], [], color="0.3", ls="--", lw=1.1, label="exact")]
        style += drawn_baselines
        if rows.size <= 7:
            handles, _ = ax.get_legend_handles_labels()
            handles = [h for h in handles if h.get_label() and
                       not h.get_label().startswith("_")]
            if len(handles) + len(style) <= 4:
                ax.legend(handles=handles + style, loc="best", handlelength=1.6)
            else:  # beside the axes, so it never hides a curve
                ax.legend(handles=handles + style, loc="upper left",
                          bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, handlelength=1.6)
        else:
            _level_colorbar(fig, ax, avg.y[rows], [colour(v) for v in avg.y[rows]],
                            log_by, AXIS_SYMBOLS.get(by, by))
            if style:
                fig.legend(handles=style, loc="outside lower center",
                           ncol=min(len(style), 3), handlelength=1.8)
        ax.set_title(_title(avg) if title is None else title, loc="left")
    return save_figure(fig, out)


def _draw_baselines(ax: Any, sweep: _Sweep, zs: Sequence[str], x: str, by: str,
                    where: Mapping[str, float] | None, rows: np.ndarray, avg: _Averaged,
                    colour: Any) -> list[Line2D]:
    """Grey (or, per ``by`` value, coloured) lines of the stored baselines of each z."""
    handles: dict[str, Line2D] = {}
    grey = "#2a7d4f"  # baselines in green, apart from the exact (dashed) curves
    for k, name in enumerate(zs):
        marker = _Z_MARKERS[k % len(_Z_MARKERS)] if len(zs) > 1 else None
        for b, label in BASELINE_LABELS.items():
            key = f"baseline_{b}_{name}"
            if key not in sweep.stats:
                continue
            a = _average(sweep, x, by, key, where, param_y="by")
            ls = _BASELINE_STYLES[b]
            # a baseline does not depend on T: one grey line instead of one per rung
            for r in (rows[:1] if by == "T" else rows):
                v = a.mean[r]
                ok = np.isfinite(v)
                c = grey if by == "T" else colour(avg.y[r])
                ax.plot(a.x[ok], v[ok], color=c, ls=ls, lw=1.1, zorder=1, marker=marker,
                        ms=3.0, mfc="none", mew=0.8)
            handles.setdefault(b, Line2D([], [], color=grey, ls=ls, lw=1.1, label=label))
    return list(handles.values())


def plot_sweep(sweep_path: str | os.PathLike, out: str | os.PathLike | None = None,
               spec: Mapping[str, Any] | None = None,
               notes: list[str] | None = None) -> list[str]:
    """The figure a sweep draws when it completes, following the sweep's own axes.

    Without a ``spec`` (the sweep TOML's ``[plot]`` section) the figure is chosen from
    the grid: a phase diagram of the novel-task error over (first varied grid axis, T)
    — α, P, K, N or λ, in the order the TOML lists them — with the q/Q = ½ line of the
    active spins; other varied axes are fixed at their middle value (named in the
    title). A grid that varies only the seed gives a cut of the error against T, one
    curve per seed.

    Parameters
    ----------
    sweep_path : path
    out : path, optional
        Default: ``phase.png`` (or ``cut.png``) beside the sweep file.
    spec : mapping, optional
        ``kind`` ("phase" or "cut"), ``x``, ``y``, ``z`` (a name, or a list for a cut),
        ``by``, ``contour`` (levels), ``contour_z``, ``where`` ({axis: value}), ``zmax``.
    notes : list, optional
        Receives the choices made (axes, fixed values, capped colour scale).

    Returns
    -------
    list of str
        The files written.
    """
    spec = dict(spec or {})
    sweep = _load_sweep(sweep_path, ())
    grid_keys = [k for k in (sweep.config.get("grid") or {}) if k != "seed"]
    varied = []
    for k in grid_keys:
        if k in sweep.grid and np.unique(np.asarray(sweep.grid[k], dtype=float)).size > 1:
            varied.append(k)
    if not varied:  # old files without a config: any varied column
        varied = [k for k in GRID_AXES if k in sweep.grid
                  and np.unique(np.asarray(sweep.grid[k], dtype=float)).size > 1]
        if "alpha" in varied and "P" in varied:
            varied.remove("P")
    kind = spec.get("kind", "phase" if varied else "cut")
    x = spec.get("x", varied[0] if varied else "T")
    where = dict(spec.get("where") or {})
    for k in varied:
        if k != x and k not in where and k != spec.get("y") and k != spec.get("by"):
            vals = np.unique(np.asarray(sweep.grid[k], dtype=float))
            where[k] = float(vals[(vals.size - 1) // 2])
            if notes is not None:
                notes.append(f"the sweep also varies {k}: plotted at {k} = "
                             f"{_fmt_plain(where[k])} (choose with a [plot] section)")
    z = spec.get("z", "test_mse_novel")
    d = os.path.dirname(os.path.abspath(os.fspath(sweep_path)))
    if kind == "cut":
        by = spec.get("by", "seed" if x == "T" else "T")
        return plot_cut(sweep_path, x=x, z=z, by=by, where=where or None,
                        out=out or os.path.join(d, "cut.png"), notes=notes)
    if not isinstance(z, str):
        raise ConfigError("plot.z", "one observable name for a phase diagram", z)
    y = spec.get("y", "T")
    has_ratio = "overlap_ratio_active" in sweep.observables
    contour_z = spec.get("contour_z", "overlap_ratio_active" if has_ratio else None)
    contours = spec.get("contour", [0.5] if contour_z else None)
    return plot_phase(sweep_path, x=x, y=y, z=z, where=where or None,
                      contours=contours, contour_z=contour_z,
                      zmax=spec.get("zmax", "auto"),
                      out=out or os.path.join(d, "phase.png"), notes=notes)


def _level_colorbar(fig: Figure, ax: Any, values: np.ndarray, colours: Sequence[Any],
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
    bounds = _edges(values, log=log)
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
        labels = [f"${_fmt_tex(v)}$" for v in ticks]
    cb.ax.yaxis.set_major_locator(FixedLocator(ticks))
    cb.ax.yaxis.set_major_formatter(FixedFormatter(labels))
    cb.ax.yaxis.set_minor_locator(NullLocator())
    cb.ax.tick_params(direction="out", which="both", length=2.5)
    cb.set_label(label)
    return cb


# ============================================================================ trace
def _trace_values(f: h5py.File, name: str, n: int) -> np.ndarray:
    """(records, T) trace of ``name`` averaged over copies / pairs (NaN if none)."""
    if name in DERIVED and f"trace/{name}" not in f:
        a, b = DERIVED[name]
        with np.errstate(divide="ignore", invalid="ignore"):
            return _trace_values(f, a, n) / _trace_values(f, b, n)
    data = np.asarray(f[f"trace/{name}"][:n], dtype=float)
    if data.ndim == 1:
        return data[:, None]
    data = data.reshape(data.shape[0], data.shape[1], -1)
    if data.shape[2] == 0:
        return np.full(data.shape[:2], np.nan)
    return data.mean(axis=2)


def _trace_spread(f: h5py.File, name: str, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    if f"trace/{name}" not in f:
        return None
    data = np.asarray(f[f"trace/{name}"][:n], dtype=float)
    if data.ndim < 3 or data.shape[2] < 2:
        return None
    return data.min(axis=2), data.max(axis=2)


def _run_observables(f: h5py.File) -> list[str]:
    stored = [k for k in f["trace"] if k != "step"] if "trace" in f else []
    derived = [k for k, (a, b) in DERIVED.items()
               if k not in stored and a in stored and b in stored]
    return stored + derived


def plot_trace(run_path: str | os.PathLike,
               observables: Sequence[str] = ("energy", "test_mse_novel", "overlap"),
               out: str | os.PathLike = "trace.png", *, spread: bool = False,
               log_y: bool | None = None, max_points: int = 4000, cmap: str = "plasma",
               title: str | None = None, figsize: tuple[float, float] | None = None
               ) -> list[str]:
    """Records of a run against the step, one colour per temperature, one panel each.

    Parameters
    ----------
    run_path : path
        A run file (``format = "spinicl-run"``), complete or still being written.
    observables : sequence of str
        Trace names (``energy``, ``test_mse_novel``, ``overlap``...) or derived
        ``overlap_ratio``; per-copy / per-pair records are averaged over the copies.
    out : path
        ``.png`` or ``.pdf`` writes both.
    spread : bool
        Shade the range over copies lightly.
    log_y : bool, optional
        Log scale in every panel (default: per panel, for positive traces spanning more
        than a decade).
    max_points : int
        Records are thinned to at most this many per line.
    cmap : str
        Coldest (dark) to hottest (bright).
    title : str, optional
    figsize : (float, float), optional
        Default 4.8 inches wide, 1.7 inches per panel.

    Returns
    -------
    list of str
    """
    if isinstance(observables, str):
        observables = [observables]
    observables = list(observables)
    if not observables:
        raise ConfigError("observable", "at least one observable name", observables)
    with _open(run_path, RUN_FORMAT, swmr=True) as f:
        if "trace/step" not in f or "ladder/T" not in f:
            raise ConfigError("path", "a spinicl run file with /trace/step and /ladder/T",
                              os.fspath(run_path))
        avail = _run_observables(f)
        for name in observables:
            if name not in avail:
                raise ConfigError("observable", "names among " + ", ".join(avail), name)
        cfg = _json_attr(f, "config")
        status = _as_str(f.attrs.get("status", ""))
        ladder = np.asarray(f["ladder/T"][...], dtype=float)
        lengths = [f["trace/step"].shape[0]]
        for name in observables:
            for part in DERIVED.get(name, (name,)) if f"trace/{name}" not in f else (name,):
                lengths.append(f[f"trace/{part}"].shape[0])
        n = int(min(lengths))
        if n == 0:
            raise ConfigError("path", "a run file with at least one record",
                              os.fspath(run_path), note="no records yet")
        step = np.asarray(f["trace/step"][:n], dtype=float)
        series = {k: _trace_values(f, k, n) for k in observables}
        spreads = {k: _trace_spread(f, k, n) for k in observables} if spread else {}
        theory = {}
        for k in observables:
            if f"theory/{k}" in f:
                theory[k] = np.asarray(f[f"theory/{k}"][...], dtype=float)
            elif k in DERIVED and all(f"theory/{p}" in f for p in DERIVED[k]):
                a, b = DERIVED[k]
                with np.errstate(divide="ignore", invalid="ignore"):
                    theory[k] = f[f"theory/{a}"][...] / f[f"theory/{b}"][...]
    burn_in = cfg.get("burn_in")
    stride = max(1, math.ceil(n / max(int(max_points), 2)))
    sel = np.arange(0, n, stride)
    if sel[-1] != n - 1:
        sel = np.append(sel, n - 1)
    nT = ladder.size
    cmap_ = mpl.colormaps[cmap]
    cols = [cmap_(v) for v in np.linspace(0.0, 0.85, nT)] if nT > 1 else [cmap_(0.0)]
    npan = len(observables)
    size = figsize or (4.8, 1.0 + 1.55 * npan)
    with mpl.rc_context(STYLE):
        fig = _new_figure(*size)
        axes = fig.subplots(npan, 1, sharex=True, squeeze=False)[:, 0]
        for ax, name in zip(axes, observables, strict=True):
            vals = series[name]
            fin = vals[np.isfinite(vals)]
            if not fin.size:
                ax.text(0.5, 0.5, "not recorded (needs ≥ 2 copies)" if "overlap" in name
                        else "no finite values", transform=ax.transAxes, ha="center",
                        va="center", color="0.4")
                ax.set_yticks([])
            for k in range(min(nT, vals.shape[1]) if fin.size else 0):
                if spreads.get(name) is not None:
                    lo, hi = spreads[name]
                    ax.fill_between(step[sel], lo[sel, k], hi[sel, k], color=cols[k],
                                    alpha=0.15, lw=0, rasterized=True)
                ax.plot(step[sel], vals[sel, k], color=cols[k], lw=0.8)
                ex = theory.get(name)
                if ex is not None and k < ex.size and np.isfinite(ex[k]):
                    ax.axhline(ex[k], color=cols[k], ls="--", lw=0.9, alpha=0.9)
            ly = (_auto_log_values(name, vals) or (fin.size > 1 and (fin > 0).all()
                                                   and fin.max() / fin.min() > 100))
            ly = ly if log_y is None else bool(log_y)
            if ly and fin.size and (fin > 0).all():
                ax.set_yscale("log")
            if burn_in and burn_in > 0:
                ax.axvspan(min(step[0], 0.0), burn_in, color="0.9", lw=0, zorder=0)
            ax.set_ylabel(TRACE_SYMBOLS.get(name, observable_label(name, symbol_only=True)))
            ax.set_xlim(min(step[0], 0.0), step[-1])
        if burn_in and burn_in > 0 and step[0] <= burn_in:
            axes[0].text(0.5 * (min(step[0], 0.0) + min(burn_in, step[-1])), 1.0,
                         "burn-in", transform=axes[0].get_xaxis_transform(), ha="center",
                         va="bottom", fontsize=7.5, color="0.35")
        axes[-1].set_xlabel("step")
        if nT > 1:
            _level_colorbar(fig, list(axes), ladder, cols, True, r"temperature $T$")
        has_exact = any(np.isfinite(v).any() for v in theory.values())
        if has_exact:
            axes[0].legend(handles=[Line2D([], [], color="0.3", lw=0.8, label="samples"),
                                    Line2D([], [], color="0.3", ls="--", lw=0.9,
                                           label="exact")],
                           loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2,
                           fontsize=7.5, borderaxespad=0.1, handlelength=1.8)
        head = _run_title(cfg, status, n, step)
        if nT == 1:
            head += f", $T = {_fmt_tex(ladder[0])}$"
        fig.suptitle(head if title is None else title,
                     x=0.02, ha="left", fontsize=9)
    return save_figure(fig, out)


def _run_title(cfg: Mapping[str, Any], status: str, n: int, step: np.ndarray) -> str:
    task = cfg.get("task", {}) if isinstance(cfg.get("task"), dict) else {}
    parts = []
    for key, sym in (("D", "D"), ("N", "N"), ("P", "P"), ("K", "K"), ("lam", r"\lambda")):
        v = task.get(key, cfg.get(key))
        if v is not None and not (key == "K" and v == task.get("P", cfg.get("P"))):
            parts.append(f"{sym} = {_fmt_tex(v)}")
    head = "$" + r",\ ".join(parts) + "$" if parts else ""
    bits = [str(cfg["sampler"])] if cfg.get("sampler") else []
    if cfg.get("model") and cfg.get("model") != "merged":
        bits.append(str(cfg["model"]))
    bits.append(f"{n} records to step {int(step[-1])}")
    if status and status != "complete":
        bits.append(status)
    return (head + "\n" if head else "") + ", ".join(bits)
