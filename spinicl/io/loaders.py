"""Run and sweep files into pandas, xarray and ArviZ; CSV / netCDF export; sweep info.

Readers (all read-only, none changes a file; each works on a file still being written):

* :func:`load_sweep` — a sweep file as a tidy :class:`pandas.DataFrame`, one row per grid
  point × temperature (pending and failed points keep one row with ``T`` = NaN).
* :func:`load_run` — a run file as an :class:`xarray.Dataset` (traces, ladder, summary,
  exact references, root attributes).
* :func:`run_summary` — the per-temperature summary table of a run as a DataFrame.
* :func:`to_inference_data` — a run as :class:`arviz.InferenceData`, every temperature kept.
* :func:`export_file` — ``spinicl export FILE.h5 -o OUT.csv|OUT.nc``.
* :func:`sweep_info` / :func:`format_sweep_info` — ``spinicl info SWEEP.h5``.

pandas and xarray (and arviz, h5netcdf for the functions that need them) are the optional
``export`` extra: ``pip install "spinicl[export]"``; they are imported inside the
functions, so ``import spinicl.io.loaders`` itself needs only numpy and h5py.
Sweep files are read through :func:`spinicl.io.sweep_file.read_sweep` (as the plots read
them), run files through :func:`spinicl.io.run.open_run`.

Conventions
-----------
Temperatures keep the file's ladder order (coldest rung first); ``rung`` is the index in
that ladder and ``beta`` = 1/T. Statistics stored per neighbouring pair of rungs
(``swap_accept``: T−1 values) are put on the colder rung of the pair in the per-temperature
tables (the hottest rung gets NaN), and on a ``pair_of_rungs`` dimension in the xarray
and ArviZ objects.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from spinicl.config import ConfigError
from spinicl.io.hdf5 import as_str, open_read, plain
from spinicl.io.run import FORMAT_NAME as RUN_FORMAT
from spinicl.io.sweep_file import FORMAT_NAME as SWEEP_FORMAT
from spinicl.io.sweep_file import PointResults, read_sweep
from spinicl.observables import OBSERVABLES

if TYPE_CHECKING:  # pragma: no cover - typing only
    import arviz
    import pandas as pd
    import xarray as xr

__all__ = [
    "MissingExtraError",
    "export_file",
    "file_kind",
    "format_sweep_info",
    "format_value",
    "is_sweep_file",
    "load_run",
    "load_sweep",
    "run_summary",
    "sweep_info",
    "to_inference_data",
]

#: Order of the statistics columns (others, if a file has them, follow sorted).
STAT_ORDER = ("mean", "stderr", "exact", "tau_int", "ess", "rhat")
#: Grid columns that are not axes of the grid.
GRID_META = ("status", "message", "seconds")
#: Grid-point statuses as the sweep writer stores them → the words ``spinicl info`` uses.
STATUS_WORDS = {"done": "complete", "failed": "failed", "pending": "pending",
                "running": "running"}
#: Observables in the ``spinicl info`` table of a sweep (``overlap_ratio`` = q/Q).
INFO_OBSERVABLES = ("energy", "test_mse_novel", "overlap_ratio")
RATIOS = {"overlap_ratio": ("overlap", "self_overlap"),
          "overlap_ratio_active": ("overlap_active", "self_overlap_active")}
EXPORT_SUFFIXES = (".csv", ".nc")


class MissingExtraError(ImportError):
    """An optional dependency of the ``export`` extra is not installed (one-line message)."""


def _need(module: str):
    """Import an optional dependency or raise :class:`MissingExtraError`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"this needs the optional package {module}: "
                                'pip install "spinicl[export]"') from None


# =========================================================================== files
def file_kind(path: str | os.PathLike) -> str:
    """``"run"`` or ``"sweep"``, from the file's ``format`` attribute.

    Raises
    ------
    ConfigError
        ``path``: missing, not HDF5, or neither a spinicl run nor a sweep file.
    """
    p = os.fspath(path)
    fmt = None
    with open_read(p, swmr=True, tries=1) as f:
        fmt = as_str(f.attrs.get("format", ""))
    if fmt == RUN_FORMAT:
        return "run"
    if fmt == SWEEP_FORMAT:
        return "sweep"
    raise ConfigError("path", "a spinicl run or sweep file", p,
                      f"format attribute is {fmt!r}" if fmt else "no format attribute")


def is_sweep_file(path: str | os.PathLike) -> bool:
    """True for a readable spinicl sweep file; False for anything else (never raises:
    for ``spinicl info`` to choose between the sweep and the run report)."""
    try:
        return file_kind(path) == "sweep"
    except (ConfigError, OSError):
        return False


def _obs_order(names) -> list[str]:
    known = [k for k in OBSERVABLES if k in names]   # the table's order, then the rest
    return known + sorted(k for k in names if k not in OBSERVABLES)


def _stat_order(names) -> list[str]:
    return [k for k in STAT_ORDER if k in names] + sorted(k for k in names
                                                          if k not in STAT_ORDER)


def _per_rung(v: np.ndarray, n_temps: int) -> np.ndarray | None:
    """A stored statistic as one value per rung: (T,) as is, (T−1,) per neighbouring
    pair onto the colder rung (NaN on the hottest); None for any other shape."""
    v = np.asarray(v, dtype=float).reshape(-1)
    if v.size == n_temps:
        return v
    if v.size == n_temps - 1:
        return np.append(v, np.nan)
    return None


# =========================================================================== sweeps
def _sweep_tables(path: str) -> tuple[dict[str, np.ndarray], list[dict[str, Any] | None]]:
    """The /grid columns and, per grid row, its ladder ``T`` (T,) and its statistics
    ``stats`` {(observable, statistic): (T,)} (None for a point without results), from
    :func:`spinicl.io.sweep_file.read_sweep`."""
    data = read_sweep(path)
    points: list[dict[str, Any] | None] = []
    for pt in data.points:
        if pt is None:
            points.append(None)
            continue
        stats = {}
        for obs, per_stat in pt.summary.items():
            for stat, v in per_stat.items():
                v = _per_rung(v, pt.T.size)
                if v is not None:
                    stats[(obs, stat)] = v
        points.append({"T": pt.T, "stats": stats})
    return data.grid, points


def load_sweep(path: str | os.PathLike) -> pd.DataFrame:
    """A sweep file as a tidy table: one row per grid point × temperature.

    Works on sample- and theory-mode sweeps and on a sweep still running or stopped
    (points that are pending or failed, or whose results are not in the file yet, keep
    one row with ``rung``/``T``/``beta`` and every statistic missing).

    Parameters
    ----------
    path : path-like
        A sweep file written by ``spinicl sweep``.

    Returns
    -------
    pandas.DataFrame, shape (Σ_points max(1, T_point), columns)
        Columns, in this order: every /grid axis column (``id``, ``D``, ``N``, ``P``,
        ``K``, ``alpha``, ``lam``, ``seed``, then any other the file has); ``rung``
        (nullable Int64: index in the point's ladder, coldest first), ``T``, ``beta``;
        for every observable of any point, ``<obs>_<stat>`` for each stored statistic
        (``mean``, ``stderr``, ``exact``, ``tau_int``, ``ess``, and ``rhat`` in sample
        mode; theory mode has ``stderr`` = 0, ``ess`` = inf); then ``status``
        (pending | done | failed), ``message``, ``seconds``. ``swap_accept`` statistics
        (one per neighbouring pair of rungs) sit on the colder rung of each pair.
        Values are the stored float64 numbers, unchanged; NaN where a point lacks one.

    Raises
    ------
    ConfigError
        ``path``: missing, unreadable, or not a sweep file.
    MissingExtraError
        pandas is not installed.
    """
    pd = _need("pandas")
    p = os.fspath(path)
    grid, points = _sweep_tables(p)
    axes = [c for c in grid if c not in GRID_META]
    front = ["id"] + [c for c in ("D", "N", "P", "K", "alpha", "lam", "seed") if c in axes]
    axes = front + sorted(c for c in axes if c not in front)
    found: dict[str, set[str]] = {}
    for pt in points:
        for obs, stat in (pt["stats"] if pt else ()):
            found.setdefault(obs, set()).add(stat)
    keys = [(o, s) for o in _obs_order(found) for s in _stat_order(found[o])]
    sizes = np.array([pt["T"].size if pt else 1 for pt in points], dtype=np.int64)
    out: dict[str, Any] = {c: np.repeat(grid[c], sizes) for c in axes}

    def column(get) -> np.ndarray:
        parts = [np.asarray(get(pt), dtype=float) if pt else np.full(1, np.nan)
                 for pt in points]
        return np.concatenate(parts) if parts else np.zeros(0)

    rung = np.concatenate([np.arange(pt["T"].size) if pt else np.zeros(1, np.int64)
                           for pt in points]) if points else np.zeros(0, np.int64)
    missing = np.repeat([pt is None for pt in points], sizes)
    out["rung"] = pd.arrays.IntegerArray(rung.astype(np.int64), missing.astype(bool))
    out["T"] = column(lambda pt: pt["T"])
    with np.errstate(divide="ignore"):
        out["beta"] = 1.0 / out["T"]
    for o, s in keys:
        out[f"{o}_{s}"] = column(lambda pt, k=(o, s): pt["stats"].get(
            k, np.full(pt["T"].size, np.nan)))
    for c in GRID_META:
        if c in grid:
            out[c] = np.repeat(grid[c], sizes)
    return pd.DataFrame(out)


# =========================================================================== runs
def _valid_records(f: h5py.File, status: str) -> int:
    """How many records of a run file are complete.

    Every trace is cut to the shortest one (the writer resizes them one after the other).
    While the status is ``running`` — a live writer, or one killed — only records up to
    the last checkpoint are guaranteed written and flushed (the writer flushes records
    before it updates /checkpoint/meta), so the count stops there. Finally the series of
    steps must increase (a resized row not yet written reads as step 0).
    """
    if "trace/step" not in f:
        return 0
    n = min(f[f"trace/{k}"].shape[0] for k in f["trace"])
    if status == "running" and "checkpoint/meta" in f:
        n = min(n, int(f["checkpoint/meta"][3]))
    step = f["trace/step"][:n]
    bad = np.flatnonzero(np.diff(np.concatenate([[0], step])) <= 0)
    return int(bad[0]) if bad.size else n


def _trace_dims(name: str, shape: tuple[int, ...], n_temps: int) -> tuple[str, ...]:
    kinds = {"T": "temperature", "M": "copy", "M2": "pair", "T-1": "pair_of_rungs"}
    spec = OBSERVABLES[name].shape if name in OBSERVABLES else None
    if spec is not None and len(spec) == len(shape) - 1:
        return ("record", *[kinds[s] for s in spec])
    dims = ["record"]
    for k, s in enumerate(shape[1:], 1):
        dims.append("temperature" if k == 1 and s == n_temps else f"{name}_dim{k}")
    return tuple(dims)


def _read_run(path: str) -> dict[str, Any]:
    """Everything :func:`load_run` needs, read in one open."""
    from spinicl.io.run import StoreError, open_run

    try:
        f = open_run(path)
    except StoreError as exc:
        raise ConfigError("path", "a spinicl run file", path, str(exc)) from None
    with f:
        attrs = {k: plain(v) for k, v in f.attrs.items()}
        status = str(attrs.get("status", ""))
        n = _valid_records(f, status)
        T = np.asarray(f["ladder/T"][...], dtype=float)
        traces = {k: f[f"trace/{k}"][:n] for k in f["trace"]} if "trace" in f else {}
        theory = {k: f[f"theory/{k}"][...] for k in f["theory"]} if "theory" in f else {}
        summary = ({o: {s: f[f"summary/{o}/{s}"][...] for s in f[f"summary/{o}"]}
                    for o in f["summary"]} if "summary" in f else None)
        thermo = ({k: f[f"thermo/{k}"][...] for k in f["thermo"]
                   if isinstance(f[f"thermo/{k}"], h5py.Dataset)} if "thermo" in f else {})
        thermo_attrs = ({k: plain(v) for k, v in f["thermo"].attrs.items()}
                        if "thermo" in f else {})
    return {"attrs": attrs, "n": n, "T": T, "traces": traces, "theory": theory,
            "summary": summary, "thermo": thermo, "thermo_attrs": thermo_attrs}


def _burn_in(attrs: dict[str, Any]) -> int:
    if "burn_in" in attrs:
        return int(attrs["burn_in"])
    try:
        return int(json.loads(attrs.get("config", "{}")).get("burn_in", 0))
    except (TypeError, ValueError):
        return 0


def _summary_from_records(traces: dict[str, np.ndarray], theory: dict[str, np.ndarray],
                          attrs: dict[str, Any], temperatures: np.ndarray
                          ) -> dict[str, dict[str, np.ndarray]]:
    """The run summary computed by the runner's own code, from the records after burn-in
    (overlap pairs, swap rounds and ULA references handled exactly as in ``/summary``)."""
    from spinicl.config import SampleConfig
    from spinicl.runner import summarize_traces

    try:
        cfg = SampleConfig.from_dict(json.loads(attrs.get("config", "{}")))
    except (KeyError, TypeError, ValueError):  # no usable config: copies as chains
        from spinicl.runner import summarize_columns

        keep = traces["step"] > _burn_in(attrs)
        return {name: summarize_columns(data[keep].reshape(int(keep.sum()), data.shape[1],
                                                            -1))
                for name, data in traces.items() if name != "step" and data.ndim >= 2}
    return summarize_traces(traces, theory, cfg, temperatures)


def load_run(path: str | os.PathLike) -> xr.Dataset:
    """A run file as an xarray Dataset.

    Works on a run still running (SWMR read; records up to its last checkpoint) and on an
    interrupted, failed or killed one (its complete records only).

    Parameters
    ----------
    path : path-like
        A run file written by ``spinicl sample``.

    Returns
    -------
    xarray.Dataset
        Dimensions ``record`` (n, complete records), ``temperature`` (T), ``copy`` (M),
        ``pair`` (M(M−1)/2), ``pair_of_rungs`` (T−1).

        * coordinates: ``step`` (record), ``warmup`` (record, bool: step ≤ burn-in),
          ``T`` and ``beta`` (temperature, the final ladder, coldest first), ``copy``
          (copy), ``copy_a``/``copy_b`` (pair), ``rung_a``/``rung_b`` (pair_of_rungs);
        * one variable per trace, as stored: (record, temperature, copy) per copy,
          (record, temperature, pair) for ``overlap``/``overlap_active``,
          (record, pair_of_rungs) for ``swap_accept``;
        * ``<obs>_<stat>`` for the summary (mean, stderr, tau_int, ess, rhat, exact):
          over temperature, or pair_of_rungs for the per-pair ones. Read from /summary,
          or computed from the records after burn-in as the runner does when the file
          has none yet (``attrs["summary_source"]`` says which);
        * ``theory_<name>`` (temperature) for every /theory reference;
        * ``thermo_<name>`` for every /thermo array: the log Z ratios over
          pair_of_rungs, ``weight_ess`` as ``thermo_weight_ess_colder`` / ``_hotter``
          (pair_of_rungs), the rest over temperature; absent in files written before
          /thermo; ``attrs["thermo_reference"]`` says whether log Z, f, s are absolute.
          (/overlap_histogram is not loaded: :func:`spinicl.plots.plot_overlap` or h5py.)

        ``attrs``: the root attributes of the file (``config`` and ``seeds`` as the JSON
        strings stored: ``json.loads(ds.attrs["config"])``), plus ``n_records`` and
        ``summary_source``.

    Raises
    ------
    ConfigError
        ``path``: missing, unreadable, or not a run file.
    MissingExtraError
        xarray is not installed.
    """
    xr = _need("xarray")
    p = os.fspath(path)
    r = _read_run(p)
    T, n = r["T"], r["n"]
    nT = T.size
    traces = r["traces"]
    step = np.asarray(traces.get("step", np.zeros(0, dtype=np.int64)), dtype=np.int64)
    burn = _burn_in(r["attrs"])
    data_vars: dict[str, Any] = {}
    M = None
    for name in _obs_order(traces):
        if name == "step":
            continue
        arr = traces[name]
        dims = _trace_dims(name, arr.shape, nT)
        if "copy" in dims:
            M = arr.shape[dims.index("copy")]
        data_vars[name] = (dims, arr)
    if M is None:
        pairs = next((traces[k].shape[2] for k in traces
                      if "pair" in _trace_dims(k, traces[k].shape, nT)), 0)
        M = round((1 + math.sqrt(1 + 8 * pairs)) / 2) if pairs else 0
    summary = r["summary"]
    source = "file"
    if summary is None:
        source = f"computed from {n} records" if n else "none (no records yet)"
        summary = (_summary_from_records(traces, r["theory"], r["attrs"], T) if n else {})
    for obs in _obs_order(summary):
        for stat in _stat_order(summary[obs]):
            v = np.asarray(summary[obs][stat], dtype=float).reshape(-1)
            dim = ("temperature" if v.size == nT else
                   "pair_of_rungs" if v.size == nT - 1 else f"{obs}_{stat}_dim0")
            data_vars[f"{obs}_{stat}"] = ((dim,), v)
    for name in sorted(r["theory"]):
        data_vars[f"theory_{name}"] = (("temperature",),
                                       np.asarray(r["theory"][name], dtype=float))
    for name in sorted(r["thermo"]):   # /thermo (files written before it: none)
        v = np.asarray(r["thermo"][name], dtype=float)
        if name == "weight_ess" and v.ndim == 2 and v.shape == (nT - 1, 2):
            data_vars["thermo_weight_ess_colder"] = (("pair_of_rungs",), v[:, 0])
            data_vars["thermo_weight_ess_hotter"] = (("pair_of_rungs",), v[:, 1])
            continue
        dims = (("temperature",) if v.ndim == 1 and v.size == nT else
                ("pair_of_rungs",) if v.ndim == 1 and v.size == nT - 1 else
                tuple(f"thermo_{name}_dim{i}" for i in range(v.ndim)))
        data_vars[f"thermo_{name}"] = (dims, v)
    pa, pb = np.triu_indices(M, 1) if M else (np.zeros(0, int), np.zeros(0, int))
    with np.errstate(divide="ignore"):
        beta = 1.0 / T
    coords = {"step": ("record", step), "warmup": ("record", step <= burn),
              "T": ("temperature", T), "beta": ("temperature", beta),
              "copy": ("copy", np.arange(M)), "copy_a": ("pair", pa.astype(np.int64)),
              "copy_b": ("pair", pb.astype(np.int64)),
              "rung_a": ("pair_of_rungs", np.arange(max(nT - 1, 0))),
              "rung_b": ("pair_of_rungs", np.arange(1, max(nT, 1)))}
    attrs = dict(r["attrs"])
    attrs.update(n_records=int(n), summary_source=source, source_file=os.path.abspath(p))
    if r["thermo_attrs"]:
        attrs["thermo_reference"] = str(r["thermo_attrs"].get("reference", ""))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def run_summary(path: str | os.PathLike) -> pd.DataFrame:
    """The per-temperature summary of a run (what ``export RUN.h5 -o OUT.csv`` writes).

    Returns
    -------
    pandas.DataFrame, shape (T, columns)
        ``rung``, ``T``, ``beta``, then ``<obs>_<stat>`` per observable (mean, stderr,
        exact, tau_int, ess, rhat; ``swap_accept`` on the colder rung of each pair, NaN
        on the hottest), then ``theory_<name>`` for each /theory reference. From /summary
        or, while the file has none, from the complete records after burn-in.
    """
    pd = _need("pandas")
    r = _read_run(os.fspath(path))
    T = r["T"]
    summary = r["summary"]
    if summary is None:
        summary = (_summary_from_records(r["traces"], r["theory"], _burn_in(r["attrs"]),
                                         T.size) if r["n"] else {})
    with np.errstate(divide="ignore"):
        cols: dict[str, Any] = {"rung": np.arange(T.size), "T": T, "beta": 1.0 / T}
    for obs in _obs_order(summary):
        for stat in _stat_order(summary[obs]):
            v = _per_rung(summary[obs][stat], T.size)
            if v is not None:
                cols[f"{obs}_{stat}"] = v
    for name in sorted(r["theory"]):
        cols[f"theory_{name}"] = np.asarray(r["theory"][name], dtype=float)
    return pd.DataFrame(cols)


# =========================================================================== ArviZ
def to_inference_data(path: str | os.PathLike, burn_in: bool = True) -> arviz.InferenceData:
    """A run as :class:`arviz.InferenceData`, every temperature (hot rungs too) kept.

    ArviZ's ``chain`` is a copy (independent replica at each temperature) and ``draw`` a
    record; all variables keep a ``temperature`` dimension (coordinates ``T``, ``beta``).
    ArviZ needs one chain count per group, so the groups are:

    * ``posterior``: every per-copy observable except ``accept``, (chain=copy, draw,
      temperature);
    * ``sample_stats``: ``accept`` (chain=copy, draw, temperature);
    * ``posterior_pairs``: ``overlap`` and ``overlap_active`` with chain = pair of copies
      (M(M−1)/2 chains; coordinates ``copy_a``, ``copy_b`` on chain) — the pairs are the
      chains of these series, as in the run's own summary;
    * ``swap_stats``: ``swap_accept`` (chain of size 1, draw, pair_of_rungs).

    ``arviz.ess(idata)``, ``arviz.summary(idata)`` and ``arviz.plot_trace(idata)`` work
    on the posterior; pass ``idata.posterior_pairs`` (or ``group="posterior_pairs"`` to
    ``arviz.summary``) for the overlaps.

    Parameters
    ----------
    path : path-like
        A run file (complete, running or stopped: see :func:`load_run`).
    burn_in : bool
        True (default): records with step ≤ burn-in go to the ``warmup_*`` groups and the
        others to the groups above; False: every record in the groups above.

    Returns
    -------
    arviz.InferenceData
        The file's root attributes (JSON strings) are in ``idata.posterior.attrs``.

    Raises
    ------
    MissingExtraError
        arviz (or xarray) is not installed.
    """
    az = _need("arviz")
    ds = load_run(path)
    warm = ds["warmup"].values if burn_in else np.zeros(ds.sizes["record"], dtype=bool)

    def group(names: Sequence[str], chain_dim: str | None, keep: np.ndarray):
        names = [k for k in names if k in ds]
        if not names or any(ds.sizes[d] == 0 for k in names for d in ds[k].dims
                            if d != "record"):
            return None  # e.g. one copy (no pairs) or one temperature (no swaps)
        sub = ds[names].isel(record=np.flatnonzero(keep))
        sub = sub.drop_vars([c for c in ("warmup",) if c in sub.coords])
        if chain_dim is None:
            sub = sub.expand_dims(chain=[0])
        else:
            sub = sub.rename({chain_dim: "chain"})
            if chain_dim == "copy":
                sub = sub.drop_vars("chain")
            sub = sub.assign_coords(chain=np.arange(sub.sizes["chain"]))
        sub = sub.rename({"record": "draw"}).assign_coords(draw=np.arange(int(keep.sum())))
        order = [d for d in ("chain", "draw") if d in sub.dims]
        sub = sub.transpose(*order, ...)
        keep_dims = set(sub.dims)
        sub = sub.drop_vars([c for c in sub.coords if not set(sub[c].dims) <= keep_dims])
        sub.attrs = {k: v for k, v in ds.attrs.items()
                     if isinstance(v, (str, int, float))}
        sub.attrs["inference_library"] = "spinicl"
        return sub

    per_copy = [k for k in ds.data_vars if ds[k].dims == ("record", "temperature", "copy")]
    pairs = [k for k in ds.data_vars if ds[k].dims == ("record", "temperature", "pair")]
    rungs = [k for k in ds.data_vars if ds[k].dims == ("record", "pair_of_rungs")]
    spec = {"posterior": ([k for k in per_copy if k != "accept"], "copy"),
            "sample_stats": (["accept"], "copy"),
            "posterior_pairs": (pairs, "pair"),
            "swap_stats": (rungs, None)}
    groups = {}
    for name, (names, chain_dim) in spec.items():
        g = group(names, chain_dim, ~warm)
        if g is not None:
            groups[name] = g
        if burn_in and warm.any():
            g = group(names, chain_dim, warm)
            if g is not None:
                groups[f"warmup_{name}"] = g
    return az.InferenceData(**groups)


# =========================================================================== export
def _frame_to_dataset(df: pd.DataFrame) -> xr.Dataset:
    """A table as a netCDF-safe Dataset over one ``row`` dimension (nullable integers
    with missing values become float64 with NaN, strings stay strings)."""
    xr = _need("xarray")
    out = {}
    for c in df.columns:
        s = df[c]
        if str(s.dtype) == "Int64":
            v = s.to_numpy(dtype=float, na_value=np.nan) if s.isna().any() \
                else s.to_numpy(dtype=np.int64)
        elif s.dtype == object or str(s.dtype).startswith("str"):
            v = s.astype(str).to_numpy(dtype=object)
        else:
            v = s.to_numpy()
        out[c] = (("row",), v)
    return xr.Dataset(out, coords={"row": np.arange(len(df))})


def _atomic_write(out: str, write) -> None:
    d = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=os.path.basename(out) + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def export_file(path: str | os.PathLike, out: str | os.PathLike, force: bool = False
                ) -> str:
    """Write a run or sweep file as CSV or netCDF (``spinicl export FILE.h5 -o OUT``).

    ====== ========================================= ======================================
    input  ``OUT.csv``                               ``OUT.nc`` (netCDF-4 via h5netcdf)
    ====== ========================================= ======================================
    sweep  :func:`load_sweep` (one row per point×T)  the same table over a ``row`` dimension
    run    :func:`run_summary` (one row per T)       :func:`load_run` (traces and all)
    ====== ========================================= ======================================

    The output is written under a temporary name in its folder and moved onto ``out``
    (``os.replace``, atomic).

    Parameters
    ----------
    path : path-like
        A spinicl run or sweep file.
    out : path-like
        Ending in ``.csv`` or ``.nc``.
    force : bool
        Overwrite an existing ``out``.

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    ConfigError (a ValueError)
        ``out``: unknown suffix, exists without ``force``, or in a missing / read-only
        folder; ``path``: not a run or sweep file.
    MissingExtraError
        pandas / xarray / h5netcdf not installed.
    """
    from spinicl.io.run import check_new_file

    p, o = os.fspath(path), os.fspath(out)
    suffix = os.path.splitext(o)[1].lower()
    if suffix not in EXPORT_SUFFIXES:
        raise ConfigError("out", "a path ending in .csv or .nc", o)
    check_new_file(o, force)
    if os.path.abspath(o) == os.path.abspath(p):
        raise ConfigError("out", "a path other than the input file", o)
    kind = file_kind(p)
    if suffix == ".nc":
        _need("h5netcdf")
    if kind == "sweep":
        df = load_sweep(p)
        if suffix == ".csv":
            _atomic_write(o, lambda t: df.to_csv(t, index=False))
        else:
            ds = _frame_to_dataset(df)
            ds.attrs.update(_sweep_attrs(p))
            _atomic_write(o, lambda t: ds.to_netcdf(t, engine="h5netcdf"))
    elif suffix == ".csv":
        df = run_summary(p)
        _atomic_write(o, lambda t: df.to_csv(t, index=False))
    else:
        ds = load_run(p)
        _atomic_write(o, lambda t: ds.to_netcdf(t, engine="h5netcdf"))
    return o


def _sweep_attrs(path: str) -> dict[str, Any]:
    """The root attributes of a sweep file that netCDF can hold (str, int, float)."""
    with open_read(path, swmr=False, fmt=SWEEP_FORMAT) as f:
        return {k: plain(v) for k, v in f.attrs.items()
                if isinstance(plain(v), (str, int, float))}


# =========================================================================== info
def _ratio(num: dict[str, float], den: dict[str, float]) -> dict[str, float]:
    """(mean, stderr, exact) of num/den; errors combined as independent (first order)."""
    mq, sq, eq = num["mean"], num["stderr"], num["exact"]
    mQ, sQ, eQ = den["mean"], den["stderr"], den["exact"]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mq / mQ
        s = 0.0 if sq == 0 and sQ == 0 else abs(r) * math.sqrt((sq / mq) ** 2
                                                              + (sQ / mQ) ** 2)
        e = eq / eQ
    return {"mean": float(r), "stderr": float(s), "exact": float(e)}


def _point_values(pt: PointResults | None, rung: str,
                  observables: Sequence[str]) -> dict[str, Any] | None:
    """{T, observable: {mean, stderr, exact} or None} at the coldest or hottest rung."""
    if pt is None or pt.T.size == 0:
        return None
    T = pt.T
    k = int(np.argmin(T) if rung == "coldest" else np.argmax(T))

    def stats(obs: str) -> dict[str, float] | None:
        s = pt.summary.get(obs)
        if s is None or "mean" not in s:
            return None
        out = {}
        for st in ("mean", "stderr", "exact"):
            v = s.get(st, np.zeros(0))
            out[st] = float(v[k]) if k < v.size else float("nan")
        return out

    vals: dict[str, Any] = {"T": float(T[k])}
    for obs in observables:
        if obs in RATIOS:
            a, b = (stats(x) for x in RATIOS[obs])
            vals[obs] = _ratio(a, b) if a and b else None
        else:
            vals[obs] = stats(obs)
    return vals


def sweep_info(path: str | os.PathLike,
               observables: Sequence[str] = INFO_OBSERVABLES) -> dict[str, Any]:
    """Everything ``spinicl info SWEEP.h5`` shows (JSON-ready apart from NaN floats).

    Works on a complete sweep and on one still running or stopped.

    Parameters
    ----------
    path : path-like
        A sweep file.
    observables : sequence of str
        Observables of the per-point table; ``overlap_ratio`` is q/Q
        (``overlap``/``self_overlap``, errors combined to first order as independent).

    Returns
    -------
    dict
        ``path``, ``name``, ``mode``, ``sweep_status`` (root attribute: running |
        incomplete | interrupted | complete), ``config_hash``, ``spinicl_version``,
        ``command_line``, ``task`` (fixed task keys), ``sampler`` (sampling keys),
        ``grid`` (axis → list of values), ``n_points``, ``counts`` (complete / failed /
        pending / running: grid rows per status; the sweep file does not mark running
        points, so those of a live sweep count as pending), ``journal_unmerged`` (points
        finished in ``PATH.points/`` but not yet merged), ``seconds`` (total / min /
        median / max / n over points with a run time), ``failed`` (list of {id, axes...,
        message}), ``observables`` (stored names), ``table`` (list per point: id, axes,
        status, ``coldest`` and ``hottest``: {T, obs: {mean, stderr, exact} or None}, or
        None when the point has no results).
    """
    p = os.fspath(path)
    needed = {x for obs in observables for x in RATIOS.get(obs, (obs,))}
    data = read_sweep(p, observables=sorted(needed), stats=("mean", "stderr", "exact"))
    attrs, grid, cfg = data.attrs, data.grid, data.config
    ids = [int(i) for i in grid["id"]]
    stored: set[str] = set()
    for pt in data.points:
        if pt is not None:
            stored.update(pt.names)
    table = []
    axis_cols = [c for c in ("D", "N", "P", "K", "alpha", "lam", "seed") if c in grid]
    for i, (pid, pt) in enumerate(zip(ids, data.points, strict=True)):
        row = {"id": pid, **{c: grid[c][i].item() for c in axis_cols},
               "status": str(grid["status"][i]) if "status" in grid else "",
               "coldest": _point_values(pt, "coldest", observables),
               "hottest": _point_values(pt, "hottest", observables)}
        table.append(row)
    status = [str(s) for s in grid.get("status", [])]
    counts = {w: 0 for w in ("complete", "failed", "pending", "running")}
    for s in status:
        counts[STATUS_WORDS.get(s, s)] = counts.get(STATUS_WORDS.get(s, s), 0) + 1
    secs = np.asarray(grid.get("seconds", []), dtype=float)
    secs = secs[np.isfinite(secs)]
    seconds = {"total": float(secs.sum()), "n": int(secs.size),
               "min": float(secs.min()) if secs.size else float("nan"),
               "median": float(np.median(secs)) if secs.size else float("nan"),
               "max": float(secs.max()) if secs.size else float("nan")}
    shown = [c for c in cfg.get("grid", {}) if c in axis_cols] or axis_cols
    failed = [{"id": r["id"], **{c: r[c] for c in shown},
               "message": str(grid["message"][i]) if "message" in grid else ""}
              for i, r in enumerate(table) if r["status"] == "failed"]
    journal = p + ".points"
    unmerged = 0
    if os.path.isdir(journal):
        pending = {pid for pid, s in zip(ids, status, strict=True) if s == "pending"}
        for name in os.listdir(journal):
            stem = name[:-3] if name.endswith(".h5") else ""
            if stem.isdigit() and int(stem) in pending:
                unmerged += 1
    return {"path": p, "format": SWEEP_FORMAT, "name": cfg.get("name", ""),
            "mode": cfg.get("mode", ""), "sweep_status": str(attrs.get("status", "")),
            "config_hash": attrs.get("config_hash", ""),
            "spinicl_version": attrs.get("spinicl_version", ""),
            "command_line": attrs.get("command_line", ""),
            "task": cfg.get("task", {}), "sampler": cfg.get("sampler", {}),
            "grid": cfg.get("grid", {}), "n_points": len(ids), "counts": counts,
            "journal_unmerged": unmerged, "seconds": seconds, "failed": failed,
            "observables": _obs_order(stored), "table_observables": list(observables),
            "table": table}


# ----------------------------------------------------------------------- formatting
def format_value(mean: float, stderr: float | None = None) -> str:
    """``mean(err)`` in the concise notation: two digits of the error on the last digits
    of the mean (``0.01235(56)`` = 0.01235 ± 0.00056, ``1.235(56)e-05``); the mean alone
    (4 significant digits) where the error is 0, NaN or missing; ``—`` for NaN."""
    if mean is None or not math.isfinite(mean):
        return "—"
    if stderr is None or not math.isfinite(stderr) or stderr <= 0:
        return _fmt_num(mean)
    em = math.floor(math.log10(abs(mean))) if mean != 0 else math.floor(math.log10(stderr))
    es = math.floor(math.log10(stderr))
    last = max(es - 1, em - 5)          # the error's 2nd digit, at most 6 digits of mean
    err = round(stderr / 10.0 ** last)
    if err >= 100:                      # rounding carried (9.96 → 100): one place up
        last += 1
        err = round(stderr / 10.0 ** last)
    sci = not -3 <= em <= 4
    if sci:
        dec = max(em - last, 0)
        return f"{mean / 10.0 ** em:.{dec}f}({err * 10 ** max(last - em, 0)})e{em:+03d}"
    if last >= 0:
        return f"{round(mean / 10.0 ** last) * 10 ** last:.0f}({err * 10 ** last})"
    return f"{mean:.{-last}f}({err})"


def _fmt_num(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—" if x is None or math.isnan(x) else str(x)
    ax = abs(x)
    return f"{x:.4g}" if ax >= 1e5 or (ax < 1e-3 and ax != 0) else f"{x:.5g}"


def _fmt_secs(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.2f} h"


_SHORT = {"energy": "E", "test_mse_novel": "eps_ICL", "overlap_ratio": "q/Q",
          "overlap_ratio_active": "q/Q act", "train_mse": "eps_train",
          "test_mse_in_distribution": "eps_ID", "self_overlap": "Q", "overlap": "q"}


def format_sweep_info(d: dict[str, Any], max_points: int = 60, width: int = 100) -> str:
    """The text of ``spinicl info SWEEP.h5`` (lines of at most ``width`` characters,
    apart from long messages and paths).

    Parameters
    ----------
    d : dict
        From :func:`sweep_info`.
    max_points : int
        Rows of the per-point table (the rest are counted; ``spinicl export`` has all).
    width : int
        Target line width of the table.
    """
    c = d["counts"]
    n = d["n_points"]
    head = f"spinicl sweep {d['name']!r} ({d['mode']} mode), status {d['sweep_status']}"
    lines = ([f"{d['path']}: {head}"] if len(d["path"]) + len(head) + 2 <= width
             else [f"{d['path']}:", head])
    task = d.get("task", {})
    sampler = d.get("sampler", {})

    def wrapped(text: str) -> list[str]:
        return textwrap.wrap(text, width, subsequent_indent="    ", break_long_words=False,
                             break_on_hyphens=False) or [""]

    if task:
        lines += wrapped("task: " + ", ".join(f"{k}={v}" for k, v in task.items()))
    if sampler:
        lines += wrapped("sampler: " + ", ".join(f"{k}={v}" for k, v in sampler.items()))
    for k, v in d.get("grid", {}).items():
        vals = ", ".join(_fmt_num(x) if isinstance(x, float) else str(x) for x in v)
        lines += wrapped(f"grid {k} ({len(v)}): {vals}")
    parts = [f"{c.get('complete', 0)} complete", f"{c.get('failed', 0)} failed",
             f"{c.get('pending', 0)} pending"]
    if c.get("running"):
        parts.append(f"{c['running']} running")
    lines.append(f"points: {n} — " + ", ".join(parts)
                 + (" (pending points of a running sweep may be running now)"
                    if d["sweep_status"] == "running" and c.get("pending") else ""))
    if d.get("journal_unmerged"):
        lines.append(f"journal: {d['journal_unmerged']} finished point(s) in "
                     f"{d['path']}.points not yet merged (rerun the sweep to merge them)")
    s = d["seconds"]
    if s["n"]:
        lines.append(f"run time: {_fmt_secs(s['total'])} in all over {s['n']} point{'s' if s['n'] != 1 else ''}; per "
                     f"point min {_fmt_secs(s['min'])}, median {_fmt_secs(s['median'])}, "
                     f"max {_fmt_secs(s['max'])}")
    if d["failed"]:
        lines.append("failed points:")
        for r in d["failed"]:
            where = " ".join(f"{k}={_fmt_num(v) if isinstance(v, float) else v}"
                             for k, v in r.items() if k not in ("id", "message"))
            lines += ["  " + x for x in wrapped(f"#{r['id']} {where}: {r['message']}")]
    lines.append("")
    lines.extend(_format_table(d, max_points, width))
    return "\n".join(lines)


def _format_table(d: dict[str, Any], max_points: int, width: int) -> list[str]:
    obs = [o for o in d["table_observables"]
           if any((r["coldest"] or {}).get(o) for r in d["table"])]
    rows = [r for r in d["table"]]
    if not rows:
        return ["(no points)"]
    # the grid's own axes that vary (alpha or P as the grid gives it; all when none does)
    axes = [a for a in d.get("grid", {}) if a in rows[0]
            and len({r[a] for r in rows}) > 1] or [a for a in d.get("grid", {})
                                                     if a in rows[0]]
    exact_shown = {o: d["mode"] != "theory" and any(
        math.isfinite(((r["coldest"] or {}).get(o) or {}).get("exact", math.nan))
        for r in rows) for o in obs}
    cells: list[list[str]] = []
    header = ["id", *axes, "T"]
    for o in obs:
        header.append(_SHORT.get(o, o))
        if exact_shown[o]:
            header.append("exact")
    for r in rows[:max_points]:
        base = [str(r["id"]), *[_fmt_num(r[a]) if isinstance(r[a], float) else str(r[a])
                                for a in axes]]
        for which in ("coldest", "hottest"):
            v = r[which]
            if v is None:
                if which == "coldest":  # no results: the status in the T column
                    cells.append([*base, r["status"] or "—",
                                  *[""] * (len(header) - len(base) - 1)])
                continue
            if which == "hottest" and v["T"] == (r["coldest"] or {}).get("T"):
                continue  # one temperature: one line
            line = [*base, f"{v['T']:.3g}"] if which == "coldest" else \
                [*[""] * len(base), f"{v['T']:.3g}"]
            for o in obs:
                st = v.get(o) or {}
                line.append(format_value(st.get("mean", math.nan), st.get("stderr")))
                if exact_shown[o]:
                    line.append(_fmt_num(st.get("exact", math.nan)))
            cells.append(line)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    out = ["per point, coldest and hottest rung (mean(err): mean ± stderr in its last digits)"]
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    out.extend("  ".join(x.rjust(w) for x, w in zip(c, widths, strict=True)).rstrip()
               for c in cells)
    if len(rows) > max_points:
        out.append(f"… {len(rows) - max_points} more points (all of them: "
                   f"spinicl export {d['path']} -o TABLE.csv)")
    if max(len(x) for x in out[1:]) > width:
        out.insert(1, f"(table wider than {width} columns)")
    return out
