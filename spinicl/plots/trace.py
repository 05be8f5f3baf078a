"""The records of a run against the step (:func:`plot_trace`).

*Run file* (``format = "spinicl-run"``): ``/trace/step`` (records,), ``/trace/<name>``
(records, T, M) or (records, T, M2) for pair observables (averaged over the last axis),
``/theory/<name>`` (T,), ``/ladder/T`` (T,), config JSON with ``burn_in``. It may still be
written (SWMR): the shortest of the datasets read sets the number of records.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D

from spinicl import registry
from spinicl.config import ConfigError
from spinicl.io.hdf5 import as_str, json_attr, open_read
from spinicl.io.run import FORMAT_NAME as RUN_FORMAT
from spinicl.observables import DERIVED
from spinicl.plots.style import (
    STYLE,
    auto_log_values,
    fmt_tex,
    level_colorbar,
    new_figure,
    observable_label,
    save_figure,
)


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
    with open_read(run_path, swmr=True, fmt=RUN_FORMAT) as f:
        if "trace/step" not in f or "ladder/T" not in f:
            raise ConfigError("path", "a spinicl run file with /trace/step and /ladder/T",
                              os.fspath(run_path))
        avail = _run_observables(f)
        for name in observables:
            if name not in avail:
                raise ConfigError("observable", "names among " + ", ".join(avail), name)
        cfg = json_attr(f, "config")
        status = as_str(f.attrs.get("status", ""))
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
        fig = new_figure(*size)
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
            ly = (auto_log_values(name, vals) or (fin.size > 1 and (fin > 0).all()
                                                   and fin.max() / fin.min() > 100))
            ly = ly if log_y is None else bool(log_y)
            if ly and fin.size and (fin > 0).all():
                ax.set_yscale("log")
            if burn_in and burn_in > 0:
                ax.axvspan(min(step[0], 0.0), burn_in, color="0.9", lw=0, zorder=0)
            ax.set_ylabel(observable_label(name, symbol_only=True, trace=True))
            ax.set_xlim(min(step[0], 0.0), step[-1])
        if burn_in and burn_in > 0 and step[0] <= burn_in:
            axes[0].text(0.5 * (min(step[0], 0.0) + min(burn_in, step[-1])), 1.0,
                         "burn-in", transform=axes[0].get_xaxis_transform(), ha="center",
                         va="bottom", fontsize=7.5, color="0.35")
        axes[-1].set_xlabel("step")
        if nT > 1:
            level_colorbar(fig, list(axes), ladder, cols, True, r"temperature $T$")
        has_exact = any(np.isfinite(v).any() for v in theory.values())
        if has_exact:
            axes[0].legend(handles=[Line2D([], [], color="0.3", lw=0.8, label="samples"),
                                    Line2D([], [], color="0.3", ls="--", lw=0.9,
                                           label="exact")],
                           loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2,
                           fontsize=7.5, borderaxespad=0.1, handlelength=1.8)
        head = _run_title(cfg, status, n, step)
        if nT == 1:
            head += f", $T = {fmt_tex(ladder[0])}$"
        fig.suptitle(head if title is None else title,
                     x=0.02, ha="left", fontsize=9)
    return save_figure(fig, out)


def _run_title(cfg: Mapping[str, Any], status: str, n: int, step: np.ndarray) -> str:
    task = cfg.get("task", {}) if isinstance(cfg.get("task"), dict) else {}
    parts = []
    for key, sym in (("D", "D"), ("N", "N"), ("P", "P"), ("K", "K"), ("lam", r"\lambda")):
        v = task.get(key, cfg.get(key))
        if v is not None and not (key == "K" and v == task.get("P", cfg.get("P"))):
            parts.append(f"{sym} = {fmt_tex(v)}")
    head = "$" + r",\ ".join(parts) + "$" if parts else ""
    bits = [str(cfg["sampler"])] if cfg.get("sampler") else []
    if cfg.get("model") and cfg.get("model") != registry.DEFAULT_MODEL:
        bits.append(str(cfg["model"]))
    bits.append(f"{n} records to step {int(step[-1])}")
    if status and status != "complete":
        bits.append(status)
    return (head + "\n" if head else "") + ", ".join(bits)
