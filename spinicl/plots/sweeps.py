"""Figures of a sweep: phase diagrams (:func:`plot_phase`), cuts (:func:`plot_cut`, with
the stored baselines and the D → ∞ overlay) and the figure a sweep's ``[plot]`` section
asks for (:func:`plot_sweep`). The numbers drawn come from
:mod:`spinicl.plots.sweep_data`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    NullFormatter,
)

from spinicl.config import ConfigError
from spinicl.plots.style import (
    AXIS_SYMBOLS,
    OBSERVABLE_SYMBOLS,
    SHORT_AXIS,
    STYLE,
    auto_log,
    auto_log_values,
    cell_edges,
    fmt_plain,
    fmt_tex,
    integer_ticks,
    level_colorbar,
    log_like,
    new_figure,
    observable_label,
    save_figure,
)
from spinicl.plots.sweep_data import (
    GRID_AXES,
    Averaged,
    Sweep,
    asymptotic_curve,
    average,
    check_observable,
    read_plot_sweep,
    task_value,
)


def _title(avg: Averaged, skip: Sequence[str] = ()) -> str:
    parts = []
    fixed = avg.fixed
    for p in ("D", "N", "P", "K", "alpha", "lam", "T"):
        if p not in fixed or p in skip:
            continue
        if p == "K" and "P" in fixed and np.isclose(fixed["K"], fixed["P"]):
            continue
        if p == "alpha" and "P" in fixed:
            continue
        parts.append(f"{SHORT_AXIS[p]} = {fmt_tex(fixed[p])}")
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
    sweep = read_plot_sweep(sweep_path, names)
    avg = average(sweep, x, y, z, where, notes=notes)
    lines = None
    if contours:
        cz = contour_z or z
        if cz != z:
            check_observable(sweep, "contour_z", cz)
            lines = average(sweep, x, y, cz, where)
        else:
            lines = avg
    lx = auto_log(x, avg.x) if log_x is None else bool(log_x)
    ly = auto_log(y, avg.y) if log_y is None else bool(log_y)
    Zm = np.ma.masked_invalid(avg.mean)
    finite = avg.mean[np.isfinite(avg.mean)]
    cap = _colour_cap(avg, z, x, y, zmax)
    capped = cap is not None and finite.size > 0 and finite.max() > cap
    shown = np.minimum(avg.mean, cap) if capped else avg.mean
    if capped and notes is not None:
        notes.append(f"colour scale capped at {z} = {cap:.4g} (data up to "
                     f"{finite.max():.4g}); set zmax to change it")
    lz = auto_log_values(z, shown) if log_z is None else bool(log_z)
    top = cap if capped else (finite.max() if finite.size else 1.0)
    if lz and finite.size and (finite > 0).any():
        pos = finite[finite > 0]
        norm: Normalize = LogNorm(vmin=pos.min(), vmax=top)
        Zm = np.ma.masked_where(~(avg.mean > 0), avg.mean)
    else:
        norm = Normalize(vmin=finite.min() if finite.size else 0.0, vmax=top)
    with mpl.rc_context(STYLE):
        fig = new_figure(*figsize)
        ax = fig.add_subplot()
        ax.set_facecolor("0.88")
        mesh = ax.pcolormesh(cell_edges(avg.x, lx), cell_edges(avg.y, ly), Zm, cmap=cmap,
                             norm=norm, shading="flat", rasterized=True)
        ax.set_xscale("log" if lx else "linear")
        ax.set_yscale("log" if ly else "linear")
        integer_ticks(ax.xaxis, x, lx)
        integer_ticks(ax.yaxis, y, ly)
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
            _draw_kappa_c(ax, avg, x, y)
        if not np.isfinite(avg.mean).all():
            ax.text(0.99, 0.01, "grey: no data", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=7, color="0.3")
        ax.set_title(_title(avg) if title is None else title, loc="left")
    return save_figure(fig, out)


def _is_gaussian(sweep: Sweep) -> bool:
    """True for a sweep of a model whose Boltzmann law is Gaussian at every T (merged)."""
    from spinicl import registry

    sampler = sweep.config.get("sampler", {}) if isinstance(sweep.config, dict) else {}
    entry = registry.MODELS.get(str(sampler.get("model", "merged")))
    return entry is not None and entry.gaussian


def _colour_cap(avg: Averaged, z: str, x: str, y: str, zmax: float | str | None
                ) -> float | None:
    """The upper end of the colour scale asked for by ``zmax`` (None: no cap)."""
    if zmax is None:
        return None
    if isinstance(zmax, str):
        if zmax != "auto":
            raise ConfigError("zmax", "a number > 0, auto or none", zmax)
        if not log_like(z) or "T" not in (x, y):
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
    plain = FuncFormatter(lambda t, _pos: fmt_plain(float(f"{t:.3g}")))
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(NullFormatter())


def _draw_contours(ax, cb, avg: Averaged, levels: Sequence[float], name: str,
                   norm: Normalize, same: bool, crossover: bool = False) -> None:
    """Labelled contour lines; ``crossover`` marks them as a crossover (Gaussian model)."""
    Z = np.ma.masked_invalid(avg.mean)
    fin = avg.mean[np.isfinite(avg.mean)]
    lv = sorted(float(v) for v in levels if fin.size and fin.min() < v < fin.max())
    if not lv:
        return
    cs = ax.contour(avg.x, avg.y, Z, levels=lv, colors="w", linewidths=1.4)
    sym = OBSERVABLE_SYMBOLS.get(name, name).strip("$")
    ax.clabel(cs, fmt={v: f"${sym} = {fmt_tex(v)}$" for v in lv}, fontsize=7.5,
              inline=True, inline_spacing=3)
    if crossover:
        ax.text(0.01, 0.01, "merged model: Gaussian at every T; the line marks a\n"
                "smooth crossover, not a phase transition", transform=ax.transAxes,
                ha="left", va="bottom", fontsize=6.5, color="w")
    if same:
        for v in lv:
            cb.ax.axhline(v, color="w", lw=1.4)


def _draw_threshold(ax, avg: Averaged, x: str, y: str) -> None:
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
             baselines: bool = True, seeds: bool = True, asymptotic: bool = False,
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
    asymptotic : bool
        Overlay the D → ∞ test error of the same model (Lu et al., arXiv:2405.11751;
        :func:`asymptotic_curve`) on test-error cuts, and the κ_c = min(τ, 1) line on
        cuts against K or κ. The D → ∞ values are ground-state (T → 0) values.
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
    sweep = read_plot_sweep(sweep_path, zs + base_names)
    avgs = [average(sweep, x, by, name, where, param_y="by",
                     notes=notes if k == 0 else None) for k, name in enumerate(zs)]
    avg = avgs[0]
    rows = np.arange(avg.y.size)
    if by_values is not None:
        want = np.asarray(list(by_values), dtype=float)
        if want.size == 0:
            raise ConfigError("by_values", "at least one value", list(by_values))
        if auto_log(by, avg.y):
            rows = np.unique([np.argmin(np.abs(np.log(avg.y) - np.log(w))) for w in want
                              if w > 0])
        else:
            rows = np.unique([np.argmin(np.abs(avg.y - w)) for w in want])
    lx = auto_log(x, avg.x) if log_x is None else bool(log_x)
    everything = np.concatenate([np.concatenate([a.mean[rows], a.exact[rows]]).ravel()
                                 for a in avgs])
    ly = auto_log_values(zs[0], everything) if log_y is None else bool(log_y)
    cmap_ = mpl.colormaps[cmap or ("plasma" if by == "T" else "viridis")]
    log_by = auto_log(by, avg.y)
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
        fig = new_figure(*figsize)
        ax = fig.add_subplot()
        for k, (name, a) in enumerate(zip(zs, avgs, strict=True)):
            marker = _Z_MARKERS[k % len(_Z_MARKERS)]
            for r in rows:
                c = colour(a.y[r])
                m, se = a.mean[r], a.stderr[r]
                ok = np.isfinite(m)
                lab = f"${SHORT_AXIS[by]} = {fmt_tex(a.y[r])}$" if k == 0 else None
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
        if asymptotic:
            drawn_baselines += _draw_asymptotic(ax, sweep, zs, x, by, avg, rows, colour,
                                                lx, notes)
            _draw_kappa_c(ax, avg, x, None, colour="0.4")
        ax.set_xscale("log" if lx else "linear")
        ax.set_yscale("log" if ly else "linear")
        integer_ticks(ax.xaxis, x, lx)
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
            level_colorbar(fig, ax, avg.y[rows], [colour(v) for v in avg.y[rows]],
                            log_by, AXIS_SYMBOLS.get(by, by))
            if style:
                fig.legend(handles=style, loc="outside lower center",
                           ncol=min(len(style), 3), handlelength=1.8)
        ax.set_title(_title(avg) if title is None else title, loc="left")
    return save_figure(fig, out)


def _draw_asymptotic(ax: Any, sweep: Sweep, zs: Sequence[str], x: str, by: str,
                     avg: Averaged, rows: np.ndarray, colour: Any, log_x: bool,
                     notes: list[str] | None) -> list[Line2D]:
    """Solid thin lines of the D → ∞ theory for each test error in ``zs``."""
    wanted = [z for z in zs if z in ("test_mse_novel", "test_mse_in_distribution")]
    if not wanted or "D" not in avg.fixed or task_value(sweep, "rho") != 0.0:
        if notes is not None:
            notes.append("no D → ∞ curve: it needs a test error, a fixed D and "
                         "independent tokens (rho = 0)")
        return []
    lo, hi = float(np.min(avg.x)), float(np.max(avg.x))
    xs = np.geomspace(lo, hi, 400) if log_x and lo > 0 else np.linspace(lo, hi, 400)
    drawn = False
    for z in wanted:
        for r in (rows[:1] if by == "T" else rows):
            fixed = dict(avg.fixed)
            if by != "T":
                fixed[by] = float(avg.y[r])
            if "K" not in fixed and not np.allclose(sweep.grid.get("K", 0),
                                                    sweep.grid.get("P", 1)):
                continue
            v = asymptotic_curve(sweep, x, z, fixed, xs)
            if not np.isfinite(v).any():
                if notes is not None and z == "test_mse_in_distribution":
                    notes.append("no D → ∞ in-distribution curve at finite ridge: only "
                                 "the ridgeless formula exists")
                continue
            ax.plot(xs, v, color="k" if by == "T" else colour(avg.y[r]), lw=1.0,
                    ls="-", zorder=2, alpha=0.85)
            drawn = True
    return [Line2D([], [], color="k", lw=1.0, label=r"$D\to\infty$ (Lu et al.)")] \
        if drawn else []


def _draw_kappa_c(ax: Any, avg: Averaged, x: str, y: str | None,
                  colour: str = "w") -> None:
    """The memorisation → ICL threshold κ_c = min(τ, 1) (K_c = D·min(P/D², 1))."""
    D = avg.fixed.get("D")
    if D is None or x not in ("K", "kappa"):
        return
    unit = 1.0 if x == "kappa" else D
    kw = {"color": colour, "ls": (0, (4, 2)), "lw": 1.0, "alpha": 0.9, "zorder": 2}
    tau = avg.fixed.get("tau", avg.fixed.get("alpha"))
    if tau is None and "P" in avg.fixed:
        tau = avg.fixed["P"] / D**2
    if y in ("tau", "alpha", "P"):
        ys = avg.y if y != "P" else avg.y / D**2
        ax.plot(unit * np.minimum(ys, 1.0), avg.y, **kw)
    elif tau is not None:
        c = unit * min(float(tau), 1.0)
        if np.min(avg.x) <= c <= np.max(avg.x):
            ax.axvline(c, **kw)
            ax.annotate(r"$\kappa_c = \min(\tau, 1)$", (c, 0.0),
                        xycoords=("data", "axes fraction"), xytext=(3, 3),
                        textcoords="offset points", fontsize=7, color=colour)


def _draw_baselines(ax: Any, sweep: Sweep, zs: Sequence[str], x: str, by: str,
                    where: Mapping[str, float] | None, rows: np.ndarray, avg: Averaged,
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
            a = average(sweep, x, by, key, where, param_y="by")
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
    sweep = read_plot_sweep(sweep_path, ())
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
                             f"{fmt_plain(where[k])} (choose with a [plot] section)")
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
