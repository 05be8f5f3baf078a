"""Shared helpers of the figure scripts in ``scripts/``: arguments, parallel map, CSV files,
figure style and the paper's published numbers.

Every figure script is run as ``python scripts/<name>.py [--quick] [--jobs J] [--out DIR]``
and writes ``<name>.png``/``.pdf`` (``<name>_quick.*`` with ``--quick``) and CSV files of every
plotted number into ``scripts/output/<name>/``. A hidden ``--tiny`` flag runs an even smaller
version (for ``tests/test_scripts.py``); its files are named ``<name>_tiny.*``.

The paper's numbers below are copied from ``docs/paper-reference.md`` (the authors'
released data of Li, Bai & Huang, arXiv:2408.02288); each script cites the table it uses.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT_ROOT = Path(__file__).resolve().parent / "output"

# =========================================================================== paper data
#: Fig. 4b as published: (N, AMP mean, AMP s.d., Adam mean, Adam s.d.); D = 20, P = 10⁴,
#: 10³ test prompts, 50 disorder samples. AMP: the paper's cavity iteration (no Onsager
#: term), λ = 0.01, β = 100; Adam: torch weight_decay 0.01 (λ = 0.005), lr 1e-3, 5000 epochs.
PAPER_FIG4B = np.array([
    (20, 0.5343, 0.0302, 0.5364, 0.0273),
    (40, 0.3618, 0.0160, 0.3584, 0.0167),
    (60, 0.2773, 0.0140, 0.2749, 0.0125),
    (80, 0.2240, 0.0127, 0.2195, 0.0128),
    (100, 0.1923, 0.0089, 0.1885, 0.0085),
    (120, 0.1663, 0.0086, 0.1611, 0.0087),
    (140, 0.1484, 0.0081, 0.1420, 0.0079),
    (160, 0.1353, 0.0073, 0.1293, 0.0068),
    (180, 0.1235, 0.0068, 0.1163, 0.0057),
    (200, 0.1128, 0.0051, 0.1057, 0.0048),
])
PAPER_FIG4B_REPEATS = 50

#: Fig. S4 as published: (c, AMP mean, Adam mean) over 20 repeats (NaN-free); D = 20,
#: N = 200, P = 10⁴, token covariance LᵀL (the paper's code), AMP λ = 0.01 (≤ 200 sweeps,
#: tol 5e-6), Adam λ = 0.005. No spread was released.
PAPER_FIGS4 = np.array([
    (0.05, 0.1522, 0.1463), (0.10, 0.2451, 0.2391), (0.15, 0.3403, 0.3487),
    (0.20, 0.4213, 0.4283), (0.25, 0.4751, 0.4790), (0.30, 0.5148, 0.5051),
    (0.35, 0.5216, 0.5014), (0.40, 0.5186, 0.5019), (0.45, 0.5055, 0.4721),
    (0.50, 0.4791, 0.4555), (0.55, 0.4441, 0.4047), (0.60, 0.4078, 0.3729),
    (0.65, 0.3606, 0.3324), (0.70, 0.3193, 0.2854), (0.75, 0.2692, 0.2472),
    (0.80, 0.2163, 0.1921), (0.85, 0.1592, 0.1495), (0.90, 0.1054, 0.0974),
    (0.95, 0.0512, 0.0501),
])
PAPER_FIGS4_REPEATS = 20

#: Fig. 4a as published (released 50 × 50 array; only these rows were copied): alignment of
#: the paper's AMP mean at N = 2 and N = 100, at every 7th P of linspace(20, 1000, 50)
#: (P = 20, 160, ..., 1000); NaN where none of the 10 repeats met the 1e-6 rule.
#: D = 20, λ = 1, β = 100. 234 of the 2500 cells are NaN; finite range 0.194 … 0.871.
#: The released code gives lower values on the N = 100 row (docs/paper-reference.md).
PAPER_FIG4A_P = np.array([20, 160, 300, 440, 580, 720, 860, 1000])
PAPER_FIG4A_ROWS = {
    2: np.array([np.nan, np.nan, np.nan, np.nan, 0.270, 0.374, 0.390, 0.411]),
    100: np.array([np.nan, 0.469, 0.614, 0.688, 0.760, 0.811, 0.831, 0.866]),
}
PAPER_FIG4A_NAN_CELLS = 234
PAPER_FIG4A_CELLS = 2500
PAPER_FIG4A_REPEATS = 10


# =========================================================================== arguments
def parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The common command line: --quick, hidden --tiny, --seeds, --jobs, --out, --replot."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seeds", type=int, default=None, help="disorder samples per point")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="worker processes (default: 2)")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default scripts/output/<figure>/)")
    ap.add_argument("--replot", action="store_true",
                    help="redraw the figure from the saved CSV files (no computation)")
    return ap


def setup(args: argparse.Namespace, name: str, full: dict, quick: dict, tiny: dict
          ) -> tuple[dict, Path, str]:
    """The chosen settings (``--seeds`` applied), the output folder and the file stem."""
    if args.tiny:
        s, stem = dict(tiny), f"{name}_tiny"
    elif args.quick:
        s, stem = dict(quick), f"{name}_quick"
    else:
        s, stem = dict(full), name
    if args.seeds is not None:
        s["seeds"] = args.seeds
    out = args.out if args.out is not None else OUTPUT_ROOT / name
    out.mkdir(parents=True, exist_ok=True)
    return s, out, stem


# =========================================================================== parallel
def _init_worker() -> None:
    """One BLAS and one Numba thread per worker (2 cores shared)."""
    with contextlib.suppress(Exception):
        import numba

        numba.set_num_threads(1)


def single_threaded():
    """Context manager pinning BLAS to one thread."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def pmap(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
         label: str = "jobs") -> list[Any]:
    """``[fn(j) for j in jobs]`` on ``workers`` processes (fork), in order, with a progress
    line every ~10 %. ``fn`` must be a module-level function."""
    t0 = time.perf_counter()
    out: list[Any] = []
    step = max(1, len(jobs) // 10)
    if workers <= 1 or len(jobs) <= 1:
        _init_worker()
        for i, j in enumerate(jobs):
            out.append(fn(j))
            if (i + 1) % step == 0:
                print(f"  {i + 1}/{len(jobs)} {label}, {time.perf_counter() - t0:.0f} s",
                      flush=True)
        return out
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"),
                             initializer=_init_worker) as ex:
        for i, r in enumerate(ex.map(fn, jobs, chunksize=1)):
            out.append(r)
            if (i + 1) % step == 0:
                print(f"  {i + 1}/{len(jobs)} {label}, {time.perf_counter() - t0:.0f} s",
                      flush=True)
    return out


# =========================================================================== tables
def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.8g}"
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (bool, np.bool_)):
        return int(bool(v))
    return v


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """Rows (dicts; the union of their keys, in first-seen order) to a CSV file."""
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, "")) for k in keys})


def read_csv(path: Path) -> list[dict]:
    """A CSV file back as dicts; numbers become floats (empty cells NaN), text stays text."""
    def conv(v: str) -> Any:
        if v == "":
            return float("nan")
        try:
            return float(v)
        except ValueError:
            return v

    with open(path, newline="") as fh:
        return [{k: conv(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def aggregate(rows: Iterable[dict], keys: Sequence[str], value: str = "value",
              skip_nan: bool = True) -> list[dict]:
    """Mean, s.d. (ddof = 1), standard error and count of ``value`` per distinct ``keys``."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(float(r[value]))
    out = []
    for key in sorted(groups, key=lambda k: tuple(str(x) if isinstance(x, str) else x
                                                  for x in k)):
        v = np.asarray(groups[key])
        if skip_nan:
            v = v[np.isfinite(v)]
        n = int(v.size)
        mean = float(v.mean()) if n else float("nan")
        std = float(v.std(ddof=1)) if n > 1 else float("nan")
        out.append({**dict(zip(keys, key, strict=True)), "mean": mean, "std": std,
                    "sem": std / math.sqrt(n) if n > 1 else float("nan"), "n": n})
    return out


def seed_means(rows: Iterable[dict], keys: Sequence[str]) -> list[dict]:
    """Mean over seeds per distinct ``keys``: ``{**keys, mean, stderr, seeds}`` rows (the
    columns of the finite-D ``*_points.csv`` files), from :func:`aggregate`."""
    return [{**{k: a[k] for k in keys}, "mean": a["mean"], "stderr": a["sem"],
             "seeds": a["n"]} for a in aggregate(rows, keys, skip_nan=False)]


def seeds_at(s: dict, D: int) -> int:
    """Disorder samples at dimension D: ``s["seeds"]`` at the largest D, more at smaller D
    (∝ (D_max/D)², at most ``s["max_factor"]`` times), so every D has a similar error."""
    return round(s["seeds"] * min((max(s["Ds"]) / D) ** 2, s["max_factor"]))


def fit_in_inverse_D(D: np.ndarray, y: np.ndarray, se: np.ndarray):
    """a + b/D + c/D² (a + b/D with fewer than 4 sizes), weighted by ``se``
    (:func:`spinicl.analysis.scaling.fit_finite_size`)."""
    from spinicl.analysis.scaling import fit_finite_size

    return fit_finite_size(D, y, se, 2 if len(D) >= 4 else 1)


def select(points: Iterable[dict], x: str, **where: Any) -> tuple[np.ndarray, ...]:
    """(x, mean, std, sem) of the aggregated rows matching ``where``, sorted by x."""
    sel = sorted((p for p in points if all(p.get(k) == v for k, v in where.items())),
                 key=lambda p: p[x])
    return (np.array([p[x] for p in sel], dtype=float),
            np.array([p["mean"] for p in sel], dtype=float),
            np.array([p["std"] for p in sel], dtype=float),
            np.array([p["sem"] for p in sel], dtype=float))


# =========================================================================== figures
STYLE = {"font.size": 9, "axes.labelsize": 10, "legend.fontsize": 7.5,
         "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "axes.spines.top": False,
         "axes.spines.right": False, "savefig.dpi": 200, "pdf.fonttype": 42,
         "axes.titlesize": 9.5, "axes.titlelocation": "left"}


def pyplot():
    """matplotlib.pyplot on the Agg backend with the scripts' style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def save(fig: Any, out: Path, stem: str) -> list[Path]:
    """PNG (200 dpi) and PDF of a figure; closes it."""
    import matplotlib.pyplot as plt

    paths = [out / f"{stem}.{ext}" for ext in ("png", "pdf")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths


def elapsed(t0: float) -> str:
    s = time.perf_counter() - t0
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"
