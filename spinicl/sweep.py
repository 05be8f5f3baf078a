"""Sweeps over task diversity × context length × weight decay × disorder (docs/model.md §5).

A sweep is a TOML grid; one grid point = one disorder sample = one run, whose replica
exchange covers the temperature axis. Points run on an executor (a local process pool,
a Dask cluster, or a Dask LocalCluster on loopback); the coordinator is the single writer.

Crash safety: each finished point is first written to its own small HDF5 file in the
journal folder ``OUT.points/`` (temporary name + ``os.replace``: atomic), then merged into
the sweep file, which is opened only for short merges. A rerun merges what the journal
holds, skips every completed point and runs the rest (failed points are retried); the
journal is removed once the sweep is complete. A point lost with a worker is simply run
again: the writer keys results by point id, so nothing is lost or written twice.

The sweep file, its journal, its writer and its readers: :mod:`spinicl.io.sweep_file`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinicl import registry
from spinicl.config import (
    DEFAULT_INIT,
    ConfigError,
    SampleConfig,
    TaskConfig,
    check_choice,
    check_init_file,
    check_int,
    parse_temperatures,
)
from spinicl.io.sweep_file import SweepWriter, sweep_lock
from spinicl.progress import ProgressLine
from spinicl.signals import stop_requests

MODES = ("sample", "theory")
EXECUTORS = ("local", "dask", "dask-local")
#: Grid axes, in the order of the product (the last varies fastest).
AXES = ("P", "alpha", "tau", "K", "kappa", "N", "alpha_L", "lam", "seed")
#: Grid keys in the variables of the D → ∞ theory (Lu et al.), each setting a count:
#: key → (count set, its multiplier as a power of D, words for messages).
SCALED_AXES = {"alpha": ("P", 2, "P = alpha·D²"), "tau": ("P", 2, "P = tau·D²"),
               "kappa": ("K", 1, "K = kappa·D"), "alpha_L": ("N", 1, "N = alpha_L·D")}
#: Grid keys that set the same task parameter: at most one of each group.
_EXCLUSIVE = (("P", "alpha", "tau"), ("K", "kappa"), ("N", "alpha_L"))
TASK_KEYS = tuple(f.name for f in dataclasses.fields(TaskConfig))
SAMPLE_KEYS = ("model", "dk", "sampler", "step", "gamma", "precondition", "temps", "beta",
               "copies", "steps", "burn_in", "record_every", "swap_every", "adapt_ladder",
               "representation", "memory_budget", "init") + tuple(registry.all_sampler_options())
#: Keys of the optional ``[plot]`` section: the figure drawn when the sweep completes.
PLOT_KEYS = ("kind", "x", "y", "z", "by", "contour", "contour_z", "where", "zmax")
PLOT_KINDS = ("phase", "cut")
SECTIONS = {"sweep": ("mode", "name", "baselines"), "task": TASK_KEYS, "grid": AXES,
            "sampler": SAMPLE_KEYS, "plot": PLOT_KEYS}

PRESETS: dict[str, str] = {
    "demo": """
# spinicl demo sweep: D = 10, eight task diversities α = P/D² from 0.1 to 3, a 12-rung
# temperature ladder T ∈ [1e-5, 1e-1], two disorder seeds; MALA with replica exchange.
[sweep]
mode = "sample"
name = "demo"

[task]
D = 10
N = 20
lam = 0.01
test_prompts = 500

[grid]
alpha = [0.1, 0.2, 0.35, 0.6, 0.9, 1.2, 2.0, 3.0]
seed = [0, 1]

[sampler]
sampler = "mala"
temps = "1e-5:1e-1:12"
copies = 2
steps = 8000
burn_in = 2000
record_every = 20
swap_every = 10
""",
    "theory-demo": """
# The demo grid with the exact solution only (fast path, finer grid).
[sweep]
mode = "theory"
name = "theory-demo"

[task]
D = 10
N = 20
lam = 0.01
test_prompts = 1000

[grid]
alpha = [0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.9, 1.2, 1.5, 2.0, 3.0, 5.0]
seed = [0, 1, 2]

[sampler]
temps = "1e-5:1e-1:16"
""",
}


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PointSpec:
    """One grid point: its id, task and sampling configuration."""

    id: int
    mode: str
    sample: SampleConfig
    baselines: bool = False

    @property
    def task(self) -> TaskConfig:
        return self.sample.task

    def row(self) -> dict[str, Any]:
        t = self.task
        return {"id": self.id, "D": t.D, "N": t.N, "P": t.P, "K": t.pool_size,
                "alpha": t.alpha, "lam": t.lam, "seed": t.seed, "tau": t.P / t.D**2,
                "kappa": math.inf if t.K is None else t.K / t.D, "alpha_L": t.N / t.D}


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: mode, fixed task keys, grid axes and sampling options."""

    mode: str
    name: str
    task: dict[str, Any]
    grid: dict[str, list]
    sampler: dict[str, Any]
    source: str = "<preset>"
    points: tuple[PointSpec, ...] = field(default=(), compare=False)
    baselines: bool = False
    plot: dict[str, Any] = field(default_factory=dict, compare=False)

    def canonical(self) -> dict[str, Any]:
        """What the numbers depend on (hashed); the ``[plot]`` section is not part of it,
        nor ``init`` at its default ``"ridge"`` (sweeps written before the key existed
        keep their hash)."""
        sampler = dict(self.sampler)
        if sampler.get("init") == DEFAULT_INIT:
            del sampler["init"]
        out = {"mode": self.mode, "name": self.name, "task": self.task, "grid": self.grid,
               "sampler": sampler}
        if self.baselines:
            out["baselines"] = True
        return out

    @property
    def hash(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _line_of(text: str, key: str) -> int | None:
    """Line number (1-based) where ``key`` is assigned in a TOML text."""
    pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=|^\s*\[\s*{re.escape(key)}\s*\]")
    for i, line in enumerate(text.splitlines(), 1):
        if pat.search(line):
            return i
    return None


def _where(source: str, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{source}, line {line}" if line else source


def parse_sweep(text: str, source: str = "<preset>") -> SweepConfig:
    """Parse and validate a sweep TOML text.

    Raises
    ------
    ConfigError
        Unknown key or section, wrong type, bad value or empty grid; the message names the
        file, the line and the key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", "valid TOML", source, str(exc)) from None
    for sec, body in data.items():
        if sec not in SECTIONS:
            raise ConfigError("config", "sections [sweep], [task], [grid], [sampler]",
                              sec, f"unknown section ({_where(source, text, sec)})")
        if not isinstance(body, dict):
            raise ConfigError("config", f"a table [{sec}]", body, _where(source, text, sec))
        for key in body:
            if key not in SECTIONS[sec]:
                raise ConfigError(f"{sec}.{key}", "a known key: " + ", ".join(SECTIONS[sec]),
                                  key, f"unknown key ({_where(source, text, key)})")
    sw = data.get("sweep", {})
    mode = sw.get("mode", "sample")
    if mode not in MODES:
        raise ConfigError("sweep.mode", "sample or theory", mode, _where(source, text, "mode"))
    name = str(sw.get("name", "sweep"))
    baselines = sw.get("baselines", False)
    if not isinstance(baselines, bool):
        raise ConfigError("sweep.baselines", "true or false", baselines,
                          _where(source, text, "baselines"))
    plot = _check_plot(dict(data.get("plot", {})), source, text)
    task = dict(data.get("task", {}))
    grid = {k: v for k, v in data.get("grid", {}).items()}
    sampler = dict(data.get("sampler", {}))
    for k, v in grid.items():
        if not isinstance(v, list):
            grid[k] = [v]
        if not grid[k]:
            raise ConfigError(f"grid.{k}", "a non-empty list", v,
                              f"empty grid ({_where(source, text, k)})")
    for group in _EXCLUSIVE:
        given = [k for k in group if k in grid or k in task]
        if len(given) > 1:
            raise ConfigError("grid", "at most one of " + ", ".join(group) + " (they set "
                              "the same parameter)", given, _where(source, text, given[-1]))
    for k in grid:
        if k in task:
            raise ConfigError(f"task.{k}", "given either in [task] or in [grid], not both",
                              k, _where(source, text, k))
    cfg = SweepConfig(mode=mode, name=name, task=task, grid=grid, sampler=sampler,
                      source=source, baselines=baselines, plot=plot)
    points = _expand(cfg, text)
    if not points:
        raise ConfigError("grid", "at least one point", 0, source)
    return dataclasses.replace(cfg, points=tuple(points))


def _check_plot(plot: dict[str, Any], source: str, text: str) -> dict[str, Any]:
    """Type-check the ``[plot]`` section (names are checked against the file when drawn)."""
    def bad(key: str, allowed: str) -> ConfigError:
        return ConfigError(f"plot.{key}", allowed, plot[key], _where(source, text, key))

    if "kind" in plot and plot["kind"] not in PLOT_KINDS:
        raise bad("kind", "phase or cut")
    for key in ("x", "y", "by", "contour_z"):
        if key in plot and not isinstance(plot[key], str):
            raise bad(key, "an axis or observable name (a string)")
    if "z" in plot:
        z = plot["z"]
        zs = [z] if isinstance(z, str) else z
        if not isinstance(zs, list) or not zs or not all(isinstance(v, str) for v in zs):
            raise bad("z", "an observable name or a list of names")
    if "contour" in plot:
        c = plot["contour"]
        cs = c if isinstance(c, list) else [c]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in cs):
            raise bad("contour", "a number or a list of numbers")
        plot["contour"] = [float(v) for v in cs]
    if "zmax" in plot and (isinstance(plot["zmax"], bool)
                           or not isinstance(plot["zmax"], int | float)
                           or not plot["zmax"] > 0):
        raise bad("zmax", "a number > 0")
    if "where" in plot:
        w = plot["where"]
        if not isinstance(w, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in w.values()):
            raise bad("where", "a table of numbers, e.g. where = { N = 20 }")
    return plot


def _expand(cfg: SweepConfig, text: str) -> list[PointSpec]:
    axes = [k for k in AXES if k in cfg.grid]
    values = [cfg.grid[k] for k in axes]
    s = dict(cfg.sampler)
    options = {k: s.pop(k) for k in registry.all_sampler_options() if k in s}
    if options:
        s["options"] = options
    try:
        temps = parse_temperatures(s.pop("temps", None), s.pop("beta", None))
    except ConfigError as exc:
        raise ConfigError(f"sampler.{exc.param}", exc.allowed, exc.got,
                          _where(cfg.source, text, exc.param)) from None
    points = []
    for i, combo in enumerate(itertools.product(*values)):
        kw = dict(cfg.task)
        for k, v in zip(axes, combo, strict=True):
            if k in SCALED_AXES:
                target, power, words = SCALED_AXES[k]
                D = int(kw.get("D", TaskConfig.D))
                if k == "kappa" and (v == "P" or v == math.inf):
                    kw["K"] = None  # κ = ∞: one task per prompt
                    continue
                ok = isinstance(v, int | float) and not isinstance(v, bool)
                count = float(v) * D**power if ok else math.nan
                if not (ok and 0.5 <= count < 2**62):
                    raise ConfigError(f"grid.{k}", f"numbers with {words} (D = {D}) a "
                                      "finite count >= 1" + (', or "P"' if k == "kappa"
                                                              else ""), v,
                                      _where(cfg.source, text, k)) from None
                kw[target] = round(count)
            else:
                kw[k] = v
        try:
            task = TaskConfig(**kw)
            sample = SampleConfig(task=task, temperatures=temps, **s)
        except ConfigError as exc:
            key = exc.param
            raise ConfigError(key, exc.allowed, exc.got,
                              f"{exc.note + '; ' if exc.note else ''}"
                              f"{_where(cfg.source, text, key)}") from None
        except TypeError as exc:
            raise ConfigError("config", "keys of the right type", cfg.source,
                              str(exc)) from None
        if not points:   # an init file: read once, before any work
            try:
                check_init_file(sample)
            except ConfigError as exc:
                raise ConfigError(exc.param, exc.allowed, exc.got,
                                  _where(cfg.source, text, "init")) from None
        points.append(PointSpec(i, cfg.mode, sample, cfg.baselines))
    if cfg.mode == "theory" and points and not registry.MODELS[points[0].sample.model].gaussian:
        gaussian = ", ".join(k for k, v in registry.MODELS.items() if v.gaussian)
        raise ConfigError("sweep.mode", f"sample for the {points[0].sample.model} model "
                          f"(theory mode needs a Gaussian model: {gaussian})", "theory")
    return points


def load_sweep(path: str | None = None, preset: str | None = None) -> SweepConfig:
    """A sweep from a TOML file or a built-in preset."""
    if (path is None) == (preset is None):
        raise ConfigError("config", "a TOML file or --preset NAME (one of them)", path)
    if preset is not None:
        check_choice("preset", preset, tuple(PRESETS))
        return parse_sweep(PRESETS[preset], f"<preset {preset}>")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError("config", "a readable TOML file", path, exc.strerror) from None
    except UnicodeDecodeError:
        raise ConfigError("config", "a TOML text file", path, "not UTF-8 text") from None
    return parse_sweep(text, path)


# --------------------------------------------------------------------------- points
def run_point(spec: PointSpec, scratch: str | None = None,
              stop_flag: dict | None = None) -> dict[str, Any]:
    """Run one grid point (in a worker, or in the coordinator with one local worker).

    Never raises: a failure is returned as status. Numba and BLAS run on one thread
    during the point (restored afterwards).

    Parameters
    ----------
    spec : PointSpec
    scratch : str, optional
        Folder for the point's temporary run file (default: the system's).
    stop_flag : dict, optional
        The coordinator's ``{"signum": ...}`` stop flag when the point runs in its
        process: the sampling loop polls it (see :func:`spinicl.runner.run_sample`).

    Returns
    -------
    dict with id, status ("done"/"failed"), message, seconds, temperatures (T,),
    summary {observable: {mean, stderr, tau_int, ess, exact}: (T,) arrays}.
    """
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    out: dict[str, Any] = {"id": spec.id, "status": "done", "message": ""}
    numba_threads = None
    try:
        with contextlib.suppress(Exception):
            import numba

            numba_threads = numba.get_num_threads()
            numba.set_num_threads(1)
        with threadpool_limits(limits=1, user_api="blas"):
            if spec.mode == "theory":
                temps, summary = _theory_point(spec)
            else:
                temps, summary = _sample_point(spec, scratch, stop_flag)
            if spec.baselines:
                summary.update(_baseline_summaries(spec, len(temps)))
        out["temperatures"] = temps
        out["summary"] = summary
    except Exception as exc:  # noqa: BLE001 - a failed point is data, not a crash
        out["status"] = "failed"
        out["message"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        if numba_threads is not None:
            with contextlib.suppress(Exception):
                import numba

                numba.set_num_threads(numba_threads)
    out["seconds"] = time.perf_counter() - t0
    return out


def _theory_point(spec: PointSpec) -> tuple[np.ndarray, dict]:
    """The summaries of a theory-mode point (:func:`spinicl.observables.theory_summaries`):
    closed forms where they exist; ``alignment`` and ``gd_cosine`` are the thermal
    averages ⟨f(W)⟩ from exact Gaussian draws seeded by the point's seed (in the
    matrix-free representation A is formed from n products and factored when
    n ≤ CHOLESKY_MAX_SPINS; above, no factor to draw with: NaN), the ground
    state's values are ``alignment_ground_state`` and ``gd_cosine_ground_state``."""
    from spinicl.models import build_model
    from spinicl.models.merged import CHOLESKY_MAX_SPINS
    from spinicl.observables import theory_summaries
    from spinicl.prompts import make_task
    from spinicl.theory.gaussian import gaussian_theory

    cfg = spec.sample
    task = make_task(cfg.task, keep_test_context=False)  # no baselines here
    model = build_model(task, cfg.model, representation=cfg.representation,
                        memory_budget=cfg.memory_budget)
    th = gaussian_theory(model, task, seed=cfg.task.seed)
    temps = np.asarray(cfg.temperatures, dtype=float)
    chol = None
    if th.chol is None and model.n_spins <= CHOLESKY_MAX_SPINS:
        # matrix-free: form A from n products (the cost of the dense Gram) to draw with
        A = model.precision_product(np.eye(model.n_spins))
        chol = np.linalg.cholesky(0.5 * (A + A.T))
    return temps, theory_summaries(th, temps, seed=cfg.task.seed, chol=chol)


def _baseline_summaries(spec: PointSpec, n_temps: int) -> dict[str, dict[str, np.ndarray]]:
    """The ICL baselines of the point's prompts as temperature-independent summaries.

    Each ``baseline_<name>_test_mse_<set>`` (one-step GD, Bayes ridge, dMMSE where it
    applies; see :func:`spinicl.theory.baselines.baselines`) is stored like an observable: its
    value repeated over the ladder as ``mean``, its standard error over test prompts as
    ``stderr``, ``exact`` NaN; so cuts and phase plots draw it beside the samples.
    """
    from spinicl.prompts import make_task
    from spinicl.theory.baselines import baselines

    values = baselines(make_task(spec.task, keep_test_context=True))
    out = {}
    for key, v in values.items():
        if "_test_mse_" not in key or key.endswith("_stderr"):
            continue
        out[key] = {"mean": np.full(n_temps, v),
                    "stderr": np.full(n_temps, values.get(key + "_stderr", np.nan)),
                    "tau_int": np.full(n_temps, np.nan), "ess": np.full(n_temps, np.nan),
                    "exact": np.full(n_temps, np.nan)}
    return out


def _sample_point(spec: PointSpec, scratch: str | None,
                  stop_flag: dict | None = None) -> tuple[np.ndarray, dict]:
    from spinicl.io.run import open_run
    from spinicl.observables import thermo_summaries
    from spinicl.runner import run_sample

    d = tempfile.mkdtemp(prefix=f"point{spec.id}-", dir=scratch)
    try:
        path = os.path.join(d, "run.h5")
        res = run_sample(spec.sample, path, progress=False, stop_flag=stop_flag)
        if res.status != "complete":
            raise RuntimeError(res.message or res.status)
        with open_run(path) as f:
            temps = f["ladder/T"][...]
            summary = {name: {k: f[f"summary/{name}/{k}"][...] for k in f[f"summary/{name}"]}
                       for name in f["summary"]}
            thermo = ({k: f[f"thermo/{k}"][...] for k in f["thermo"]} if "thermo" in f
                      else {})
        summary.update(thermo_summaries(thermo))
        return temps, summary
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------- executors
class SweepProgress(ProgressLine):
    """The progress line over grid points: done / running / failed, ETA."""

    def show(self, done: int, running: int, failed: int, force: bool = False) -> None:
        self.update(done + failed, f"({done} done, {running} running, {failed} failed)",
                    force)


@dataclass
class SweepResult:
    path: str
    done: int
    failed: int
    total: int
    interrupted: bool = False
    ran: int = 0


def run_sweep(cfg: SweepConfig, out: str, *, executor: str = "local",
              workers: int | None = None, scheduler: str | None = None,
              progress: bool = True, command_line: str = "",
              connect_timeout: float = 5.0) -> SweepResult:
    """Run (or continue) a sweep into ``out``.

    Parameters
    ----------
    cfg : SweepConfig
    out : str
        Sweep file; an existing one must come from the same config (it is continued).
    executor : {"local", "dask", "dask-local"}
    workers : int, optional
        Local processes / LocalCluster workers (default: the number of cores). With
        ``executor="local"`` and one worker the points run one after the other in this
        process (no worker process to start); the results are the same number for
        number, and SIGINT/SIGTERM still stop the sweep after the finished points are
        written (the interrupted point runs again on the rerun).
    scheduler : str, optional
        Address of a running Dask scheduler (executor "dask").
    """
    executor = check_choice("executor", executor, EXECUTORS)
    workers = os.cpu_count() or 1 if workers is None else check_int("workers", workers, 1)
    if executor == "dask" and not scheduler:
        raise ConfigError("scheduler", "an address such as tcp://host:8786 with "
                          "--executor dask", scheduler)
    if not out or not out.strip() or os.path.isdir(out):
        raise ConfigError("out", "a file path (not empty, not a directory)", out)
    d = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(d) or not os.access(d, os.W_OK):
        raise ConfigError("out", "a path in an existing, writable directory", out)
    with sweep_lock(out):
        return _run_sweep_locked(cfg, out, executor, workers, scheduler, progress,
                                 command_line, connect_timeout)


def _run_sweep_locked(cfg: SweepConfig, out: str, executor: str, workers: int,
                      scheduler: str | None, progress: bool, command_line: str,
                      connect_timeout: float) -> SweepResult:
    """:func:`run_sweep` once the sweep file's lock is held."""
    client = None
    cluster = None
    environ = dict(os.environ)
    if executor in ("dask", "dask-local"):
        client, cluster = _dask_client(executor, scheduler, workers, connect_timeout)
    try:
        writer = SweepWriter(out, cfg, command_line)
    except BaseException:  # e.g. a sweep file of another config: stop the cluster too
        _close_dask(client, cluster, environ)
        raise
    todo = [p for p in cfg.points if writer.status[p.id] != "done"]
    n_done = sum(s == "done" for s in writer.status)
    # nothing left to run (a rerun of a finished sweep): no progress line at all
    prog = SweepProgress(len(cfg.points), "points", n_done, progress and bool(todo))
    failed = 0
    interrupted = False
    ran = 0
    with stop_requests() as flag:
        try:
            if client is not None:
                gen = _dask_results(client, todo, flag)
            elif workers == 1:
                gen = _inprocess_results(todo, flag)
            else:
                gen = _local_results(todo, workers, flag)
            running = min(len(todo), workers)
            prog.show(n_done, running, failed)
            last = time.monotonic()
            for r in gen:
                writer.add(r)
                ran += 1
                if r["status"] == "done":
                    n_done += 1
                else:
                    failed += 1
                left = len(todo) - ran
                prog.show(n_done, min(left, workers), failed)
                if time.monotonic() - last > 2.0:
                    writer.flush()
                    last = time.monotonic()
        except (SweepStopped, KeyboardInterrupt):
            interrupted = True
        finally:
            prog.show(n_done, 0, failed, force=True)
            prog.close()
            writer.close(interrupted)
            _close_dask(client, cluster, environ)
    return SweepResult(out, n_done, failed, len(cfg.points), interrupted, ran)


class SweepStopped(Exception):
    """SIGINT/SIGTERM reached the coordinator: stop after writing what is finished."""


@contextlib.contextmanager
def _second_signal_aborts(flag: dict):
    """While a point runs in the coordinator: the first SIGINT/SIGTERM sets ``flag`` (the
    sampling loop stops at its next record), a second one raises KeyboardInterrupt at
    once (for a long set-up, or a theory point, which poll nothing). Only around the
    point: the sweep file is never written while these handlers are installed."""

    def handler(signum, _frame):
        if flag["signum"] is not None:
            raise KeyboardInterrupt
        flag["signum"] = signum

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, handler)
    except ValueError:  # not in the main thread: no handlers, the flag never changes
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _inprocess_results(todo: list[PointSpec], flag: dict):
    """Yield results of points run one by one in this process (one local worker).

    The sampling loop polls the coordinator's stop ``flag`` (no handlers of its own), so
    SIGINT/SIGTERM stop the point in progress at its next record, and a second signal
    abandons it at once (KeyboardInterrupt); that point is not yielded (it runs again on
    the rerun), the sweep stops with :class:`SweepStopped`.
    """
    for p in todo:
        if flag["signum"] is not None:
            raise SweepStopped
        with _second_signal_aborts(flag):
            r = run_point(p, stop_flag=flag)
        if flag["signum"] is not None:
            if r["status"] == "done":
                yield r  # finished before the signal: keep it
            raise SweepStopped
        yield r


def _local_results(todo: list[PointSpec], workers: int, flag: dict):
    """Yield results from a process pool; a lost worker process restarts the pool and
    the unfinished points run again. Polls ``flag`` (a stop request) twice a second."""
    from spinicl.signals import pool_worker_init

    remaining = {p.id: p for p in todo}
    ctx = mp.get_context("spawn")
    barren = 0  # pool restarts in a row that finished no point
    while remaining:
        if barren >= 3:
            for pid in sorted(remaining):
                yield {"id": pid, "status": "failed", "seconds": float("nan"),
                       "message": "worker processes keep dying (3 pool restarts without "
                                  "progress)"}
            return
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                      initializer=pool_worker_init)
        progressed = False
        broken = False
        try:
            futs = {pool.submit(run_point, p): pid for pid, p in remaining.items()}
            pending = set(futs)
            while pending and not broken:
                done, pending = cf.wait(pending, timeout=0.5,
                                        return_when=cf.FIRST_COMPLETED)
                if flag["signum"] is not None:
                    raise SweepStopped
                for fut in done:
                    try:
                        r = fut.result()
                    except cf.process.BrokenProcessPool:
                        broken = True  # a worker died: resubmit what is left
                        continue
                    remaining.pop(futs[fut], None)
                    progressed = True
                    yield r
            barren = 0 if progressed else barren + 1
        except SweepStopped:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.terminate()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


#: Dask configuration for the LocalCluster that :func:`run_sweep` starts. Dask's nanny
#: starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
#: ``distributed.nanny.pre-spawn-environ``). Setting any glibc malloc tunable — at any
#: value — switches off glibc's dynamic mmap threshold, so every numpy temporary above
#: 128 KiB (the observables allocate (block × R·(D+1)) arrays per record) is mmap'ed,
#: page-faulted in and unmapped again: ≈ 40 × more page faults and ≈ 1.4–1.6 × the CPU
#: time per point of the local pool. Unsetting it (None) gives the workers glibc's defaults,
#: as in the local pool; a value in the caller's environment still wins.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


def _close_dask(client, cluster, environ: dict[str, str]) -> None:
    """Close the client and the LocalCluster we started (if any)."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()
        _restore_environ(environ)


def _restore_environ(saved: dict[str, str]) -> None:
    """Undo what a nanny wrote into this process's environment: it sets its pre-spawn
    variables (``OMP_NUM_THREADS=1``, ...) here before spawning each worker, where they
    would reach later local worker processes."""
    import dask

    keys = set(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
    for k in keys | {"PYTHONHASHSEED"}:
        if k not in saved:
            os.environ.pop(k, None)
        elif os.environ.get(k) != saved[k]:
            os.environ[k] = saved[k]


def _dask_client(executor: str, scheduler: str | None, workers: int, timeout: float):
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("executor", "local (dask is not installed: pip install "
                          "'spinicl[dask]')", executor) from None
    if executor == "dask-local":
        # the nanny reads its pre-spawn environment when it is created
        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
        return Client(cluster), cluster
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except (ValueError, TypeError) as exc:  # not an address at all
        raise ConfigError("scheduler", "an address such as tcp://host:8786", scheduler,
                          str(exc).splitlines()[0] if str(exc) else "") from None
    except (OSError, TimeoutError) as exc:
        raise ConfigError("scheduler", "the address of a running Dask scheduler", scheduler,
                          f"no answer within {timeout:g} s ({type(exc).__name__})") from None
    return client, None


def _dask_results(client, todo: list[PointSpec], flag: dict):
    futs = {client.submit(run_point, p, key=f"spinicl-point-{p.id}-{time.time_ns()}",
                          pure=False, retries=2): p.id for p in todo}
    pending = set(futs)
    try:
        while pending:
            if flag["signum"] is not None:
                raise SweepStopped
            done = {f for f in pending if f.done()}
            if not done:
                time.sleep(0.2)
                continue
            pending -= done
            for fut in done:
                try:
                    yield fut.result()
                except Exception as exc:  # noqa: BLE001 - the task died (lost workers)
                    yield {"id": futs[fut], "status": "failed", "seconds": float("nan"),
                           "message": f"{type(exc).__name__}: {exc}"}
    except SweepStopped:
        client.cancel(list(pending))
        raise
