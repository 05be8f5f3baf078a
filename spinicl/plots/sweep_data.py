"""The numbers behind the sweep figures: a sweep read for plotting, disorder averages over
the seeds, the tables of a phase diagram and of a cut, and the D → ∞ test error
(docs/model.md §5).

Reading conventions
-------------------
*Sweep file* (``format = "spinicl-sweep"``, read by :func:`spinicl.io.sweep_file.read_sweep`):
``/grid/<column>`` (one row per grid point: ``id, D, N, P, K, alpha, lam, seed, status,
message, seconds``) and, for finished points, ``/points/<id>/ladder/T`` (T,) and
``/points/<id>/summary/<observable>/{mean, stderr, tau_int, ess, exact}`` (T,). Only
points with status ``"done"`` are plotted; failed ones are counted in the title. The
temperature ladder of the first finished point is the reference; a point whose ladder
differs from it by more than a relative 1e-6 (an adapted ladder) is interpolated onto it
linearly in log T (NaN outside its range).

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
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from spinicl.config import ConfigError
from spinicl.io.sweep_file import PointResults, read_sweep
from spinicl.observables import DERIVED
from spinicl.plots.style import fmt_plain

#: Grid columns that can be plot axes; with ``T`` (the ladder) these are the axes.
GRID_AXES = ("alpha", "P", "K", "N", "lam", "D", "tau", "kappa", "alpha_L")
AXES = (*GRID_AXES, "T")
#: Parameters that must be fixed (by the data or by ``where``) when not an axis, in the
#: order they are reported.
_CONTROLLED = ("D", "N", "lam", "K", "P", "alpha", "T")
# ============================================================================ sweeps
@dataclass
class Sweep:
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


def read_plot_sweep(path: str | os.PathLike, observables: Sequence[str]) -> Sweep:
    """Read the grid, the reference ladder and the summaries of ``observables``
    (:func:`spinicl.io.sweep_file.read_sweep`).

    Unknown names in ``observables`` are skipped here (the caller validates them against
    :attr:`Sweep.observables` and raises with the parameter's name).
    """
    wanted: set[str] = set()
    for name in observables:
        wanted.add(name)
        if name in DERIVED:
            wanted.update(DERIVED[name])
    data = read_sweep(path, observables=sorted(wanted), stats=("mean", "stderr", "exact"))
    cols = data.grid
    if "status" not in cols:
        raise ConfigError("path", "a spinicl sweep file whose /grid has id and status "
                          "columns", data.path, note="missing ['status']")
    status = np.array([str(s) for s in cols["status"]])
    done = (status == "done") & np.array([pt is not None for pt in data.points], dtype=bool)
    n_failed = int(np.sum(status == "failed"))
    n_pending = int(np.sum(~done) - n_failed)
    grid = {k: v[done] for k, v in cols.items()}
    if "alpha" not in grid and "P" in grid and "D" in grid:
        grid["alpha"] = grid["P"] / grid["D"].astype(float) ** 2
    if "K" not in grid and "P" in grid:
        grid["K"] = grid["P"]
    _add_asymptotic_columns(grid)
    ids = grid["id"].astype(np.int64)
    if ids.size == 0:
        raise ConfigError("path", "a sweep file with at least one finished point",
                          data.path, note=f"{n_failed} failed, {n_pending} pending")
    results = [pt for pt, ok in zip(data.points, done, strict=True) if ok]
    ladder = results[0].T
    stored = tuple(sorted(results[0].names))
    unfinished = {k: v[~done] for k, v in cols.items()}
    unfinished["status"] = np.where(status[~done] == "failed", "failed", "pending")
    sweep = Sweep(data.path, data.config, grid, ids, n_failed, n_pending, ladder, stored,
                   unfinished)
    for name in sorted(wanted & set(stored)):
        sweep.stats[name] = _read_stats(results, name, ladder)
    for name in observables:
        if name in DERIVED and name not in sweep.stats:
            a, b = DERIVED[name]
            if a in sweep.stats and b in sweep.stats:
                sweep.stats[name] = _ratio(sweep.stats[a], sweep.stats[b])
    return sweep


def _add_asymptotic_columns(grid: dict[str, np.ndarray]) -> None:
    """τ = P/D², κ = K/D (∞ for K = P) and N/D, for files written without them."""
    if not all(c in grid for c in ("D", "N", "P", "K")):
        return
    D = np.asarray(grid["D"], dtype=float)
    P = np.asarray(grid["P"], dtype=float)
    K = np.asarray(grid["K"], dtype=float)
    grid.setdefault("tau", P / D**2)
    grid.setdefault("kappa", np.where(K >= P, np.inf, K / D))
    grid.setdefault("alpha_L", np.asarray(grid["N"], dtype=float) / D)


def _read_stats(results: Sequence[PointResults], name: str, ladder: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, stderr, exact), each (points, T') on the reference ladder; NaN if absent."""
    rows: list[np.ndarray] = []
    for pt in results:
        g = pt.summary.get(name)
        width = g["mean"].shape[0] if g is not None and "mean" in g else pt.T.size
        triple = [np.asarray(g[stat], dtype=float) if g is not None and stat in g
                  else np.full(width, np.nan) for stat in ("mean", "stderr", "exact")]
        rows.append(np.stack([_onto_ladder(v, pt.T, ladder) for v in triple]))
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
class Averaged:
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
    sweep: Sweep
    #: (x index, y index, value) of every point behind the means (the seeds)
    samples: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def check_observable(sweep: Sweep, param: str, z: str) -> None:
    """ConfigError ``param`` unless ``z`` is an observable of the sweep (stored or derived)."""
    if z not in sweep.observables:
        raise ConfigError(param, "one of " + ", ".join(sweep.observables), z)


def _check_axis(param: str, name: str, sweep: Sweep | None = None) -> None:
    if name not in (*AXES, "seed"):
        raise ConfigError(param, "one of " + ", ".join((*AXES, "seed")), name)
    if sweep is not None and name != "T" and name not in sweep.grid:
        present = [a for a in (*AXES, "seed") if a == "T" or a in sweep.grid]
        raise ConfigError(param, "a column of this sweep's grid: " + ", ".join(present), name)


def _table(sweep: Sweep, z: str) -> dict[str, np.ndarray]:
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
                shown = ", ".join(fmt_plain(v) for v in vals)
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
    return " ".join(f"--where {k}={fmt_plain(v)}" for k, v in where.items())


def average(sweep: Sweep, x: str, y: str, z: str,
             where: Mapping[str, float] | None, param_y: str = "y",
             notes: list[str] | None = None) -> Averaged:
    """Disorder-average ``z`` on the (x, y) grid; see the module docstring for errors."""
    _check_axis("x", x, sweep)
    _check_axis(param_y, y, sweep)
    if x == y:
        raise ConfigError(param_y, f"an axis other than x = {x}", y)
    check_observable(sweep, "z", z)
    tab, chosen = _apply_where(_table(sweep, z), where, notes)
    for axis in (x, y):
        bad = ~np.isfinite(tab[axis])
        if bad.any():  # κ = ∞ (K = P) has no place on a κ axis
            if notes is not None:
                notes.append(f"{int(bad.sum())} rows with {axis} = ∞ left out of the "
                             f"{axis} axis (K = P: one task per prompt)")
            tab = {k: v[~bad] for k, v in tab.items()}
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
            shown = ", ".join(fmt_plain(v) for v in vals[:8]) + (", ..." if vals.size > 8
                                                                  else "")
            raise ConfigError(
                "where", f"a fixed value for {p} (this sweep varies it: {shown}), "
                f"e.g. --where {p}={fmt_plain(vals[0])}", _where_text(where))
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
    return Averaged(xv, yv, mean.reshape(shape), stderr.reshape(shape),
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
    avg = average(read_plot_sweep(sweep_path, [z]), x, y, z, where)
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
    avg = average(read_plot_sweep(sweep_path, [z]), x, by, z, where, param_y="by")
    return CutData(avg.x, avg.y, avg.mean, avg.stderr, avg.exact)


def task_value(sweep: Sweep, key: str) -> float:
    """A task parameter that is not a grid column (σ_x, σ_w, σ_ε, ρ), from the config."""
    from spinicl.config import TaskConfig

    task = sweep.config.get("task", {}) if isinstance(sweep.config, dict) else {}
    return float(task.get(key, getattr(TaskConfig, key)))


def asymptotic_curve(sweep_path: str | os.PathLike | Sweep, x: str, z: str,
                     fixed: Mapping[str, float], xs: np.ndarray) -> np.ndarray:
    """The D → ∞ test error of the sweep's model along ``x``, in spinicl's units.

    The sweep's parameters are mapped onto the variables of Lu et al. (arXiv:2405.11751):
    α = N/D, κ = K/D (∞ for K = P), τ = P/D², λ_L = D(1 + 1/N)²λ/(σ_x⁶σ_w²),
    ρ = σ_ε²/(σ_xσ_w)², errors × (σ_xσ_w)² (:mod:`spinicl.theory.asymptotic`).

    Parameters
    ----------
    sweep_path : path or loaded sweep
    x : str
        The axis (``alpha``/``tau``/``P``, ``K``/``kappa``, ``N``/``alpha_L``, ``lam``).
    z : {"test_mse_novel", "test_mse_in_distribution"}
    fixed : mapping
        The other parameters (``D`` required; ``N``, ``P`` or ``alpha``, ``K``, ``lam``).
        A missing ``K`` means K = P (κ = ∞).
    xs : ndarray, shape (n,)
        Values of ``x``.

    Returns
    -------
    ndarray, shape (n,)
        NaN where no formula exists (the in-distribution error where the ridge is not
        negligible, i.e. moves the ICL error by more than
        :data:`spinicl.theory.asymptotic.NEGLIGIBLE_RIDGE`) or outside the theory's domain.
    """
    from spinicl.theory.asymptotic import (
        NEGLIGIBLE_RIDGE,
        asymptotic_test_mse,
        lam_from_spinicl,
    )

    sweep = sweep_path if isinstance(sweep_path, Sweep) else read_plot_sweep(sweep_path, ())
    xs = np.asarray(xs, dtype=float)
    D = float(fixed["D"])
    N = np.full(xs.shape, float(fixed.get("N", np.nan)))
    if "P" in fixed:
        P = np.full(xs.shape, float(fixed["P"]))
    else:
        P = np.full(xs.shape, float(fixed.get("alpha", fixed.get("tau", np.nan))) * D**2)
    K = np.full(xs.shape, float(fixed.get("K", np.inf)))
    lam = np.full(xs.shape, float(fixed.get("lam", task_value(sweep, "lam"))))
    if x in ("alpha", "tau"):
        P = xs * D**2
    elif x == "P":
        P = xs.copy()
    elif x == "K":
        K = xs.copy()
    elif x == "kappa":
        K = xs * D
    elif x == "N":
        N = xs.copy()
    elif x == "alpha_L":
        N = xs * D
    elif x == "lam":
        lam = xs.copy()
    else:
        return np.full(xs.shape, np.nan)
    sx, sw = task_value(sweep, "sigma_x"), task_value(sweep, "sigma_w")
    scale = (sx * sw) ** 2
    kappa = np.where(K >= P, np.inf, K / D)
    lam_L = lam_from_spinicl(lam, D, N, sx, sw)
    which = "novel" if z == "test_mse_novel" else "in_distribution"
    rho = task_value(sweep, "sigma_eps") ** 2 / scale
    ok = np.isfinite(N) & np.isfinite(P) & (N > 0) & (P > 0)
    out = np.full(xs.shape, np.nan)
    if not ok.any():
        return out
    a, k, t = N[ok] / D, kappa[ok], P[ok] / D**2
    with np.errstate(all="ignore"):
        if which == "novel":
            out[ok] = scale * asymptotic_test_mse(a, k, t, lam_L[ok], rho, which)
        else:  # only a ridgeless formula exists: use it where the ridge is negligible
            ridge = asymptotic_test_mse(a, k, t, lam_L[ok], rho, "novel")
            free = asymptotic_test_mse(a, k, t, 0.0, rho, "novel")
            small = np.abs(ridge - free) < NEGLIGIBLE_RIDGE * free
            out[ok] = np.where(small, scale * asymptotic_test_mse(a, k, t, 0.0, rho, which),
                               np.nan)
    return out
