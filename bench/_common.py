"""Helpers shared by the benchmark scripts: machine description, timing, JSON output.

Not part of the package or of CI; every script in ``bench/`` imports this module from
its own folder (``python bench/bench_x.py`` puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_gb() -> float:
    """Physical memory in GiB (/proc/meminfo)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return math.nan


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (NaN where unavailable)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return [math.nan] * 3


def versions() -> dict[str, str]:
    """Versions of the libraries that set the speed."""
    out = {"python": platform.python_version()}
    for name in ("spinicl", "numpy", "scipy", "numba", "h5py", "threadpoolctl", "dask",
                 "distributed", "jax", "blackjax", "numpyro", "torch"):
        try:
            mod = __import__(name)
            out[name] = str(getattr(mod, "__version__", "?"))
        except ImportError:
            out[name] = "not installed"
    return out


def blas_info() -> list[dict[str, Any]]:
    """BLAS libraries loaded (threadpoolctl), with their default thread counts."""
    import numpy  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, used by Numba's np.dot)
    from threadpoolctl import threadpool_info

    return [{k: d.get(k) for k in ("internal_api", "version", "num_threads",
                                    "architecture", "filepath")}
            for d in threadpool_info() if d.get("user_api") == "blas"]


def machine_info() -> dict[str, Any]:
    """Everything RESULTS.md says about the machine and the moment."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    import numba

    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "memory_gb": round(memory_total_gb(), 1),
        "load_average": load_average(),
        "versions": versions(),
        "blas": blas_info(),
    }


def per_call(fn: Callable[[], Any], min_time: float = 0.1, max_calls: int = 10**6
             ) -> float:
    """Seconds per call of ``fn``: call it until ``min_time`` has passed."""
    calls = 0
    t0 = time.perf_counter()
    while True:
        fn()
        calls += 1
        el = time.perf_counter() - t0
        if el >= min_time or calls >= max_calls:
            return el / calls


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine description) and return it."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "machine": machine_info(), **payload}
    path = RESULTS / f"{name}.json"
    with open(path, "w") as fh:
        json.dump(_clean(payload), fh, indent=1)
        fh.write("\n")
    return path


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def say(*args: Any) -> None:
    print(*args, flush=True)
    sys.stdout.flush()
