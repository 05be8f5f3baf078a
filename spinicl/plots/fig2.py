"""The paper's Fig. 2 for a run and a training file (``spinicl compare --plot``): the
trained weights beside the Boltzmann mean, and the losses per epoch. The numbers come
from :mod:`spinicl.analysis.compare`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
)

from spinicl.analysis.compare import load_pair, post_burn_in
from spinicl.config import ConfigError
from spinicl.models import mse
from spinicl.plots.style import STYLE, fmt_tex, new_figure, output_paths, save_figure


def _pick_temperature(temperatures: np.ndarray, temperature: float | None) -> int:
    if temperature is None:
        return int(np.argmin(temperatures))
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = float("nan")
    allowed = ("a temperature of the run's ladder (within a factor 1.5): "
               + ", ".join(f"{x:.4g}" for x in temperatures))
    if not (math.isfinite(t) and t > 0):
        raise ConfigError("temperature", allowed, temperature)
    k = int(np.argmin(np.abs(np.log(temperatures) - math.log(t))))
    if abs(math.log(temperatures[k] / t)) > math.log(1.5):
        raise ConfigError("temperature", allowed, temperature)
    return k


def _plain_log_labels(axis: Any, lo: float, hi: float) -> None:
    """Log-axis labels as plain numbers (0.3, 1, 6): decades always, and 2 and 5 times a
    decade (plus 3 below 1.5 decades) when the axis spans less than 2.5 decades."""
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    mants = (2, 3, 5) if decades < 1.5 else (2, 5) if decades < 2.5 else ()

    def fmt(v: float, _pos: Any = None) -> str:
        if v <= 0:
            return ""
        e = math.floor(math.log10(v) + 1e-9)
        mant = round(v / 10**e, 6)
        if mant != 1 and mant not in mants:
            return ""
        return f"{v:.10g}" if -4 <= e <= 4 else f"${mant:g}\times10^{{{e}}}$"

    axis.set_major_formatter(FuncFormatter(fmt))
    axis.set_minor_formatter(FuncFormatter(fmt))


def _fast_start(epoch: np.ndarray, loss: np.ndarray) -> bool:
    """True when ``loss`` has made 90 % of its (log) descent within the first 10 % of the
    epochs: the curve would hug the left axis on a linear epoch scale."""
    ok = np.isfinite(loss) & (loss > 0)
    if ok.sum() < 3 or epoch[-1] < 20:
        return False
    x, y = epoch[ok], np.log(loss[ok])
    drop = y[0] - y[-1]
    if drop <= 0:
        return False
    reached = np.flatnonzero(y <= y[0] - 0.9 * drop)
    return bool(reached.size) and x[reached[0]] < 0.1 * epoch[-1]


def _align_loss_panel(fig: Any, heat_axes: list[Any], cax: Any, ax: Any) -> None:
    """Lay the figure out once (constrained), then freeze it with the loss panel given
    the heatmaps' height and moved next to the colour bar's labels."""
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    heat = heat_axes[0].get_position()
    box = ax.get_position()
    inv = fig.transFigure.inverted()
    cbar_right = inv.transform(cax.get_tightbbox().extents.reshape(2, 2))[1, 0]
    label_left = inv.transform(ax.get_tightbbox().extents.reshape(2, 2))[0, 0]
    gap = 0.14 / fig.get_figwidth()  # inches between the colour bar and the y label
    x0 = max(box.x0 - (label_left - cbar_right) + gap, box.x0 - 0.5 * box.width)
    x0 = min(x0, box.x0)
    x1 = box.x1
    for _ in range(3):  # the new width may bring other tick labels: keep them inside
        ax.set_position((x0, heat.y0, x1 - x0, heat.height))
        fig.draw_without_rendering()
        right = inv.transform(ax.get_tightbbox().extents.reshape(2, 2))[1, 0]
        over = right - (1.0 - 0.04 / fig.get_figwidth())
        if over <= 0:
            break
        x1 -= over


def plot_weights_and_losses(run_path: str | os.PathLike, train_path: str | os.PathLike,
                            out: str | os.PathLike = "fig2.png",
                            temperature: float | None = None) -> list[str]:
    """The paper's Fig. 2 for a run and a training file: weights side by side, losses.

    Panels, left to right: the trained effective weights W ((D+1)×(D+1), row a, column
    b); the Boltzmann mean ⟨W⟩ at the chosen temperature (mean of the post-burn-in
    snapshots, or the exact m when the run has none — merged model); the exact ground
    state m = A⁻¹h (merged model, when the mean shown is from snapshots) — all on one
    diverging colour scale centred at 0, with a shared colour bar; then the training and
    novel-task test MSE per epoch (log y), with the samples' mean test MSE at the chosen
    temperature and, when known, the exact ground state's as horizontal lines.

    Parameters
    ----------
    run_path, train_path : str or PathLike
        As :func:`compare_run_and_training` (same validation, same errors).
    out : str or PathLike
        ``.png`` or ``.pdf`` (or no suffix) writes both, same stem; ``.svg``/``.eps``
        that file only.
    temperature : float, optional
        A temperature of the run's ladder (nearest rung within a factor 1.5); default the
        coldest.

    Returns
    -------
    list of str
        The paths written.

    Raises
    ------
    ConfigError
        ``run``, ``train`` (see :func:`compare_run_and_training`), ``temperature`` (not
        near a rung of the ladder), ``out`` (an unsupported suffix).
    """
    output_paths(out)  # validate the suffix before any work
    pair = load_pair(run_path, train_path)
    k = _pick_temperature(pair.temperatures, temperature)
    temp = float(pair.temperatures[k])
    tr = pair.training
    model = pair.model
    D = pair.cfg.task.D
    d1 = D + 1
    W = model.effective_weights(tr["theta"][None])[0].reshape(d1, d1)
    bm = pair.means
    means, source, exact = bm.means, bm.source, bm.exact
    cfg_train = tr["train_config"]
    epochs = int(tr.get("summary", {}).get("epochs_run", tr["history"]["epoch"][-1]))
    Ttex = fmt_tex(temp)
    lr = tr.get("summary", {}).get("lr")
    lr_txt = f", lr = {lr:.3g}" if isinstance(lr, (int, float)) else ""
    panels: list[tuple[str, np.ndarray | None, str]] = [
        ("trained " + r"$W$", W, f"{cfg_train.optimizer}, {epochs} epochs"),
    ]
    if source == "snapshots":
        panels.append((r"Boltzmann $\langle W\rangle$", means[k].reshape(d1, d1),
                       f"$T = {Ttex}$, {bm.n_samples} samples"))
        if exact is not None:
            panels.append((r"ground state $m$", exact.reshape(d1, d1),
                           r"$A^{-1}h$, $\langle W\rangle$ at $T \to 0$"))
    elif source == "exact":
        panels.append((r"Boltzmann $\langle W\rangle = m$", exact.reshape(d1, d1),
                       "exact (no snapshots)"))
    else:
        panels.append((r"Boltzmann $\langle W\rangle$", None,
                       f"$T = {Ttex}$"))
    vmax = max(float(np.max(np.abs(p[1]))) for p in panels if p[1] is not None)
    vmax = vmax if vmax > 0 else 1.0
    norm = Normalize(-vmax, vmax)
    cmap = mpl.colormaps["RdBu_r"]

    hist = tr["history"]
    ep = np.asarray(hist["epoch"], dtype=float)
    keep = post_burn_in(pair)
    eps_samples = pair.traces.get("test_mse_novel")
    eps_mean = (float(np.nanmean(eps_samples[keep, k])) if eps_samples is not None
                and keep.any() else float("nan"))
    gs_eps = tr.get("compare", {}).get("ground_state_test_mse_novel")
    gs_eps = float(gs_eps) if isinstance(gs_eps, (int, float)) else float("nan")
    if exact is not None and not math.isclose(pair.cfg.task.lam, tr["lam"]):
        gs_eps = float("nan")  # the file's ground state is at the training λ: skip
    if exact is not None and not math.isfinite(gs_eps):
        gs_eps = float(mse(exact[None], pair.task.test_novel)[0])

    n_heat = len(panels)
    task = pair.cfg.task
    lam_txt = (f"\\lambda = {fmt_tex(task.lam)}" if math.isclose(task.lam, tr["lam"])
               else f"\\lambda_{{\\rm run}} = {fmt_tex(task.lam)},\\ "
               f"\\lambda_{{\\rm train}} = {fmt_tex(tr['lam'])}")
    head = (f"$D = {D},\\ N = {task.N},\\ P = {fmt_tex(task.P)}"
            + (f",\\ K = {fmt_tex(task.K)}" if task.K is not None else "")
            + f",\\ {lam_txt}$, {pair.cfg.model}"
            + (f" ($d_k = {model.dk}$)" if getattr(model, "dk", None) is not None else ""))
    letters = "abcdefg"
    with mpl.rc_context(STYLE):
        fig = new_figure(1.6 * n_heat + 0.55 + 2.45, 2.3)
        # the colour bar hangs off the last heatmap (inset axes follow its aspect-fixed
        # box, so it has the heatmaps' height); the gridspec column only reserves room
        gs = fig.add_gridspec(1, n_heat + 2, width_ratios=[1.0] * n_heat + [0.22, 1.45])
        heat_axes = []
        for i, (title, mat, sub) in enumerate(panels):
            ax = fig.add_subplot(gs[0, i])
            heat_axes.append(ax)
            ax.set_title(f"({letters[i]}) {title}\n{sub}", fontsize=8)
            ax.set_aspect("equal")
            ax.tick_params(top=False, right=False, direction="out", length=2.5)
            # rows and columns are numbered a, b = 1 … D+1 (as in scripts/fig2_weights.py)
            if mat is None:
                ax.set_xlim(0.5, d1 + 0.5)
                ax.set_ylim(d1 + 0.5, 0.5)
                ax.set_facecolor("0.94")
                ax.text(0.5, 0.5, "not available:\nthe run has\nno snapshots",
                        transform=ax.transAxes, ha="center", va="center", color="0.35",
                        fontsize=7.5)
            else:
                ax.imshow(mat, cmap=cmap, norm=norm, interpolation="nearest",
                          origin="upper", extent=(0.5, d1 + 0.5, d1 + 0.5, 0.5))
            ticks = MaxNLocator(nbins=4, integer=True, min_n_ticks=2).tick_values(1, d1)
            ticks = [int(t) for t in ticks if 1 <= t <= d1]
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.set_xlabel("column $b$", labelpad=1)
            if i == 0:
                ax.set_ylabel("row $a$", labelpad=1)
            else:
                ax.set_yticklabels([])
        spacer = fig.add_subplot(gs[0, n_heat])
        spacer.set_axis_off()
        cax = heat_axes[-1].inset_axes((1.07, 0.0, 0.07, 1.0))
        sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = fig.colorbar(sm, cax=cax)
        cb.set_label(r"$W_{ab}$", labelpad=2)
        cb.ax.tick_params(length=2.5, direction="out")
        cb.outline.set_linewidth(0.6)

        ax = fig.add_subplot(gs[0, n_heat + 1])
        c_train, c_test = "#1f5fa8", "#c8452c"
        ax.plot(ep, hist["train_mse"], color=c_train, label="training MSE")
        ax.plot(ep, hist["test_mse_novel"], color=c_test, label="test MSE (novel tasks)")
        handles = [Line2D([], [], color=c_train, label="training"),
                   Line2D([], [], color=c_test, label="test (novel tasks)")]
        if math.isfinite(eps_mean):
            ax.axhline(eps_mean, color=c_test, ls=":", lw=1.1, zorder=3)
            handles.append(Line2D([], [], color=c_test, ls=":", lw=1.1,
                                  label=rf"Boltzmann $\langle\varepsilon\rangle$, $T = {Ttex}$"))
        if math.isfinite(gs_eps):
            ax.axhline(gs_eps, color="0.25", ls="--", lw=0.9)
            handles.append(Line2D([], [], color="0.25", ls="--", lw=0.9,
                                  label="ground state (test)"))
        pos = np.concatenate([np.asarray(hist["train_mse"]),
                              np.asarray(hist["test_mse_novel"]), [eps_mean, gs_eps]])
        pos = pos[np.isfinite(pos) & (pos > 0)]
        if pos.size:
            ax.set_yscale("log")
            lo, hi = float(pos.min()), float(pos.max())
            hi = max(hi, lo * 1.01)
            ax.set_ylim(lo / (hi / lo) ** 0.06, hi * (hi / lo) ** 0.12)
            _plain_log_labels(ax.yaxis, *ax.get_ylim())
        ax.set_xlim(ep[0], ep[-1] if ep[-1] > ep[0] else ep[0] + 1)
        if _fast_start(ep, np.asarray(hist["test_mse_novel"], dtype=float)):
            # most of the fall happens in the first tenth of the epochs: log-like axis
            ax.set_xscale("symlog", linthresh=1.0, linscale=0.6)
            ax.set_xlim(0, ep[-1])
            top = math.floor(math.log10(max(float(ep[-1]), 1.0)))
            ax.xaxis.set_major_locator(FixedLocator([0.0] + [10.0**e for e in range(top + 1)]))
            ax.xaxis.set_major_formatter(FuncFormatter(
                lambda v, _p: "0" if v == 0 else f"{v:g}" if v < 1e4
                else f"$10^{{{round(math.log10(v))}}}$"))
            ax.xaxis.set_minor_locator(FixedLocator(
                [j * 10.0**e for e in range(top + 1) for j in range(2, 10)]))
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE")
        ax.set_title(f"({letters[n_heat]}) training ({cfg_train.optimizer}{lr_txt})",
                     fontsize=8)
        ax.legend(handles=handles, loc="best", fontsize=7, handlelength=1.8)
        fig.suptitle(head, x=0.01, ha="left", fontsize=9)
        _align_loss_panel(fig, heat_axes, cax, ax)
    return save_figure(fig, out)
