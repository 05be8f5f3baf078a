"""The replica-overlap distribution P(q) of a run, one curve per temperature
(:func:`plot_overlap`).

*Run file*: ``/overlap_histogram/<overlap|overlap_active>/{edges, counts, outside,
exact_mean, exact_var}`` written when the run finished (:func:`spinicl.runner.thermo_traces`:
fixed edges over [−Q̄, Q̄], Q̄ the largest post-burn-in self-overlap; counts over all
post-burn-in records and pairs of copies), ``/ladder/T``, config JSON. A run file without
that group (written before it, still running, or with one copy) is refused with a
:class:`~spinicl.config.ConfigError` naming ``path``.
"""

from __future__ import annotations

import os

import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D

from spinicl.config import ConfigError
from spinicl.io.hdf5 import as_str, json_attr, open_read
from spinicl.io.run import FORMAT_NAME as RUN_FORMAT
from spinicl.plots.style import STYLE, fmt_tex, level_colorbar, new_figure, save_figure


def overlap_density(counts: np.ndarray, edges: np.ndarray, outside: np.ndarray | None = None
                    ) -> np.ndarray:
    """P(q) per rung: counts / (all samples of the rung × bin width), shape (T, bins);
    samples outside the edges count in the normalisation (NaN for a rung with none)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=1)
    if outside is not None:
        total = total + np.asarray(outside, dtype=float).sum(axis=1)
    width = np.diff(np.asarray(edges, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / (total[:, None] * width[None, :])


def plot_overlap(run_path: str | os.PathLike, out: str | os.PathLike = "pq.png", *,
                 active: bool = False, exact: bool = True, cmap: str = "plasma",
                 title: str | None = None, figsize: tuple[float, float] = (4.8, 3.2)
                 ) -> list[str]:
    """P(q) of the replica overlap per temperature, from the run's ``/overlap_histogram``.

    Parameters
    ----------
    run_path : path
        A finished (complete or interrupted) run file with ≥ 2 copies.
    out : path
        ``.png`` or ``.pdf`` writes both.
    active : bool
        ``overlap_active`` (the active spins) instead of ``overlap``.
    exact : bool
        Merged model: draw the Gaussian approximation N(⟨q⟩, Var q) of each rung dashed
        (its exact mean and variance, :func:`spinicl.analysis.thermo.merged_overlap_moments`)
        and mark the exact mean ⟨q⟩ = ‖m‖²/n by a dotted vertical line.
    cmap : str
        Coldest (dark) to hottest (bright), as ``plot trace``.
    title : str, optional
    figsize : (float, float)

    Returns
    -------
    list of str
        The files written.
    """
    name = "overlap_active" if active else "overlap"
    with open_read(run_path, swmr=True, fmt=RUN_FORMAT) as f:
        grp = f"overlap_histogram/{name}"
        if grp not in f or "ladder/T" not in f:
            raise ConfigError("path", f"a finished run file with /{grp} (≥ 2 copies)",
                              os.fspath(run_path),
                              note="written when a run finishes; files from before it "
                                   "have none")
        edges = np.asarray(f[f"{grp}/edges"][...], dtype=float)
        counts = np.asarray(f[f"{grp}/counts"][...])
        outside = np.asarray(f[f"{grp}/outside"][...]) if f"{grp}/outside" in f else None
        mean_ex = (np.asarray(f[f"{grp}/exact_mean"][...], dtype=float)
                   if f"{grp}/exact_mean" in f else None)
        var_ex = (np.asarray(f[f"{grp}/exact_var"][...], dtype=float)
                  if f"{grp}/exact_var" in f else None)
        ladder = np.asarray(f["ladder/T"][...], dtype=float)
        cfg = json_attr(f, "config")
        status = as_str(f.attrs.get("status", ""))
        records = int(f["overlap_histogram"].attrs.get("records", 0))
    dens = overlap_density(counts, edges, outside)
    nT = ladder.size
    cmap_ = mpl.colormaps[cmap]
    cols = [cmap_(v) for v in np.linspace(0.0, 0.85, nT)] if nT > 1 else [cmap_(0.0)]
    filled = np.nonzero(counts.sum(axis=0) > 0)[0]
    if filled.size:   # the x range the samples use, padded by a few bins
        lo, hi = edges[max(filled[0] - 3, 0)], edges[min(filled[-1] + 4, edges.size - 1)]
    else:
        lo, hi = edges[0], edges[-1]
    with mpl.rc_context(STYLE):
        fig = new_figure(*figsize)
        ax = fig.subplots(1, 1)
        drew_exact = False
        for k in range(nT):
            if np.all(~np.isfinite(dens[k])):
                continue
            ax.stairs(np.nan_to_num(dens[k]), edges, color=cols[k], lw=1.0)
            if exact and mean_ex is not None and var_ex is not None \
                    and np.isfinite(mean_ex[k]) and np.isfinite(var_ex[k]) and var_ex[k] > 0:
                x = np.linspace(lo, hi, 400)
                g = np.exp(-0.5 * (x - mean_ex[k]) ** 2 / var_ex[k]) / np.sqrt(
                    2 * np.pi * var_ex[k])
                ax.plot(x, g, color=cols[k], ls="--", lw=0.8, alpha=0.9)
                drew_exact = True
        if exact and mean_ex is not None and np.any(np.isfinite(mean_ex)):
            for mval in np.unique(np.round(mean_ex[np.isfinite(mean_ex)], 12)):
                ax.axvline(mval, color="0.35", ls=":", lw=0.8)
        ax.set_xlim(lo, hi)
        top = float(np.nanmax(dens)) if np.any(np.isfinite(dens)) else 0.0
        ax.set_ylim(0.0, 1.45 * top if top > 0 else 1.0)   # room for the legend
        sym = r"q_{ab}^{\rm act}" if active else r"q_{ab}"
        ax.set_xlabel(f"${sym}$")
        ax.set_ylabel(f"$P({sym})$")
        if nT > 1:
            level_colorbar(fig, ax, ladder, cols, True, r"temperature $T$")
        if drew_exact:
            ax.legend(handles=[Line2D([], [], color="0.3", lw=1.0, label="samples"),
                               Line2D([], [], color="0.3", ls="--", lw=0.8,
                                      label="Gaussian, exact mean and variance"),
                               Line2D([], [], color="0.35", ls=":", lw=0.8,
                                      label=r"exact $\langle q\rangle$")],
                      loc="upper right", fontsize=7, handlelength=1.8)
        task = cfg.get("task", {}) if isinstance(cfg.get("task"), dict) else {}
        parts = [f"{s} = {fmt_tex(task[k])}" for k, s in (("D", "D"), ("N", "N"), ("P", "P"),
                                                          ("lam", r"\lambda")) if k in task]
        head = ("$" + r",\ ".join(parts) + "$\n" if parts else "") + ", ".join(
            [str(cfg.get("sampler", "")), f"{records} records after burn-in"]
            + ([status] if status and status != "complete" else []))
        if nT == 1:
            head += f", $T = {fmt_tex(ladder[0])}$"
        fig.suptitle(head if title is None else title, x=0.02, ha="left", fontsize=9)
    return save_figure(fig, out)


__all__ = ["overlap_density", "plot_overlap"]
