"""The replica-overlap distribution P(q) of a run, one curve per temperature
(:func:`plot_overlap`).

*Run file*: ``/overlap_histogram/<overlap|overlap_active>/{edges, counts, outside,
exact_mean, exact_var}`` written when the run finished (:func:`spinicl.runner.thermo_traces`:
``edges`` (T, bins + 1), fixed per rung from that rung's own spread of q; files written
before per-rung edges hold one (bins + 1,) vector over [−Q̄, Q̄] shared by every rung, and
are read as well; counts over all post-burn-in records and pairs of copies),
``/ladder/T``, config JSON. A run file without that group (written before it, still
running, or with one copy) is refused with a :class:`~spinicl.config.ConfigError` naming
``path``.
"""

from __future__ import annotations

import os

import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D

from spinicl.analysis.thermo import histogram_moments
from spinicl.config import ConfigError
from spinicl.io.hdf5 import as_str, json_attr, open_read
from spinicl.io.run import FORMAT_NAME as RUN_FORMAT
from spinicl.plots.style import STYLE, fmt_tex, level_colorbar, new_figure, save_figure


def per_rung_edges(edges: np.ndarray, n_temps: int) -> np.ndarray:
    """Stored bin edges as one row per rung, (T, bins + 1): per-rung edges as they are,
    an old file's single (bins + 1,) vector repeated."""
    e = np.asarray(edges, dtype=float)
    return np.array(np.broadcast_to(e, (n_temps, e.shape[-1]))) if e.ndim == 1 else e


def display_bins(counts: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbouring stored bins for drawing: to about Rice's 2·n^(1/3) bins for the
    smallest rung sample n (at least 10), by a divisor of the stored bin count, so that a
    short run is not drawn as a comb of single counts. counts (T, bins), edges (T, bins+1).
    """
    bins = counts.shape[1]
    n = int(max(1, counts.sum(axis=1).min()))
    want = max(10, round(2.0 * n ** (1.0 / 3.0)))
    factor = max([f for f in range(1, bins + 1) if bins % f == 0 and bins // f >= want],
                 default=1)
    if factor == 1:
        return counts, edges
    merged = counts.reshape(counts.shape[0], bins // factor, factor).sum(axis=2)
    return merged, edges[:, ::factor]


def overlap_density(counts: np.ndarray, edges: np.ndarray, outside: np.ndarray | None = None
                    ) -> np.ndarray:
    """P(q) per rung: counts / (all samples of the rung × bin width), shape (T, bins);
    ``edges`` (bins + 1,) shared or (T, bins + 1) per rung; samples outside the edges
    count in the normalisation (NaN for a rung with none)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=1)
    if outside is not None:
        total = total + np.asarray(outside, dtype=float).sum(axis=1)
    width = np.diff(per_rung_edges(edges, counts.shape[0]), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts / (total[:, None] * width)


def plot_overlap(run_path: str | os.PathLike, out: str | os.PathLike = "pq.png", *,
                 active: bool = False, exact: bool = True, cmap: str = "plasma",
                 title: str | None = None, figsize: tuple[float, float] = (8.4, 3.3)
                 ) -> list[str]:
    """P(q) of the replica overlap per temperature, from the run's ``/overlap_histogram``.

    Two panels. Left: P(q) of every rung on one q axis (how the distribution narrows and
    moves as T falls). Right: every rung on its own scale, P against the standardised
    overlap z = (q − μ_k)/σ_k, so that cold rungs, whose q spreads over a small fraction
    of a hot rung's range, are as resolved as the hot ones (each rung has its own bins).
    μ_k, σ_k² are the merged model's exact mean and variance of q where the file has them
    (then a shift or a wrong width shows against the dashed unit Gaussian), else the
    histogram's own mean and Sheppard-corrected variance
    (:func:`spinicl.analysis.thermo.histogram_moments`).

    Parameters
    ----------
    run_path : path
        A finished (complete or interrupted) run file with ≥ 2 copies.
    out : path
        ``.png`` or ``.pdf`` writes both.
    active : bool
        ``overlap_active`` (the active spins) instead of ``overlap``.
    exact : bool
        Merged model: draw the Gaussian N(⟨q⟩, Var q) of each rung dashed (its exact mean
        and variance, :func:`spinicl.analysis.thermo.merged_overlap_moments`), mark the
        exact mean ⟨q⟩ = ‖m‖²/n by a dotted vertical line, and standardise the right panel
        with the exact moments.
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
        raw_edges = np.asarray(f[f"{grp}/edges"][...], dtype=float)
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
    nT = ladder.size
    edges = per_rung_edges(raw_edges, counts.shape[0])
    h_mean, h_var = histogram_moments(counts, edges)      # at the stored resolution
    counts, edges = display_bins(counts, edges)
    dens = overlap_density(counts, edges, outside)
    use_exact = (exact and mean_ex is not None and var_ex is not None)
    if use_exact:
        ok = np.isfinite(mean_ex) & np.isfinite(var_ex) & (var_ex > 0)
        mu = np.where(ok, mean_ex, h_mean)
        sd = np.sqrt(np.where(ok, var_ex, h_var))
    else:
        ok = np.zeros(nT, dtype=bool)
        mu, sd = h_mean, np.sqrt(h_var)
    cmap_ = mpl.colormaps[cmap]
    cols = [cmap_(v) for v in np.linspace(0.0, 0.85, nT)] if nT > 1 else [cmap_(0.0)]
    lo, hi = np.inf, -np.inf
    for k in range(counts.shape[0]):   # the central 99 % of every rung's samples, padded
        tot = counts[k].sum()
        if tot > 0:
            cum = np.cumsum(counts[k]) / tot
            i0 = int(np.searchsorted(cum, 0.005))
            i1 = int(np.searchsorted(cum, 0.995))
            a, b = edges[k, i0], edges[k, min(i1 + 1, edges.shape[1] - 1)]
            pad = 0.15 * (b - a)
            lo, hi = min(lo, a - pad), max(hi, b + pad)
    if not lo < hi:
        lo, hi = float(np.min(edges)), float(np.max(edges))
    with mpl.rc_context(STYLE):
        fig = new_figure(*figsize)
        ax, axz = fig.subplots(1, 2)
        drew_exact = False
        zmax = 0.0
        for k in range(nT):
            if np.all(~np.isfinite(dens[k])):
                continue
            left = np.where(dens[k] > 0, dens[k], np.nan)     # log axis: no combs to 0
            ax.stairs(left, edges[k], color=cols[k], lw=1.0)
            if np.isfinite(mu[k]) and np.isfinite(sd[k]) and sd[k] > 0:
                axz.stairs(np.nan_to_num(dens[k]) * sd[k], (edges[k] - mu[k]) / sd[k],
                           color=cols[k], lw=0.9)
                filled = np.nonzero(counts[k] > 0)[0]
                zmax = max(zmax, abs((edges[k, filled[0]] - mu[k]) / sd[k]),
                           abs((edges[k, filled[-1] + 1] - mu[k]) / sd[k]))
            if ok[k]:
                x = np.linspace(lo, hi, 600)
                g = np.exp(-0.5 * (x - mean_ex[k]) ** 2 / var_ex[k]) / np.sqrt(
                    2 * np.pi * var_ex[k])
                ax.plot(x, g, color=cols[k], ls="--", lw=0.8, alpha=0.9)
                drew_exact = True
        if use_exact and np.any(np.isfinite(mean_ex)):
            for mval in np.unique(np.round(mean_ex[np.isfinite(mean_ex)], 12)):
                ax.axvline(mval, color="0.35", ls=":", lw=0.8)
        zr = min(max(zmax, 3.0), 8.0) if zmax > 0 else 4.0
        xz = np.linspace(-zr, zr, 400)
        axz.plot(xz, np.exp(-0.5 * xz**2) / np.sqrt(2 * np.pi), color="k", ls="--", lw=0.9)
        axz.set_xlim(-zr, zr)
        ax.set_xlim(lo, hi)
        top = float(np.nanmax(dens)) if np.any(np.isfinite(dens)) else 0.0
        if top > 0:     # log scale: cold rungs are tall spikes, hot ones wide and low
            ax.set_yscale("log")
            low = float(np.nanmin(np.where(dens > 0, dens, np.nan)))
            ax.set_ylim(max(top * 1e-4, 0.5 * low), top * 8.0)   # room for the legend
        else:
            ax.set_ylim(0.0, 1.0)
        axz.set_ylim(0.0, None)
        sym = r"q_{ab}^{\rm act}" if active else r"q_{ab}"
        ax.set_xlabel(f"${sym}$")
        ax.set_ylabel(f"$P({sym})$")
        which = "exact" if ok.any() else "sampled"
        axz.set_xlabel(f"$({sym} - \\mu_T)/\\sigma_T$ ({which} mean and s.d. per rung)")
        axz.set_ylabel(r"$\sigma_T\, P$")
        axz.text(0.02, 0.97, "dashed: unit Gaussian", transform=axz.transAxes,
                 ha="left", va="top", fontsize=7, color="0.25")
        if nT > 1:
            level_colorbar(fig, axz, ladder, cols, True, r"temperature $T$")
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
            [str(cfg.get("model", "")), str(cfg.get("sampler", "")),
             f"{records} records after burn-in"]
            + ([status] if status and status != "complete" else []))
        if nT == 1:
            head += f", $T = {fmt_tex(ladder[0])}$"
        fig.suptitle(head if title is None else title, x=0.02, ha="left", fontsize=9)
    return save_figure(fig, out)


__all__ = ["display_bins", "overlap_density", "per_rung_edges", "plot_overlap"]
