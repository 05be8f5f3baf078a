"""`spinicl sample` and `spinicl resume`: the sampling loop, signals, progress, summary.

The loop advances the sampler in blocks that end on record boundaries (and on the end of
burn-in), appends one record per block, and flushes records + a checkpoint every
``flush_every`` records or ``flush_seconds``. Block boundaries depend only on the global
step, so a run resumed from any checkpoint repeats exactly the blocks, records and random
numbers of an uninterrupted run: the two files are equal bit for bit.
"""

from __future__ import annotations

import contextlib
import errno
import json
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from spinicl.analysis.diagnostics import summarize
from spinicl.analysis.thermo import EXACT_OVERLAP_MAX_SPINS, OVERLAP_HIST_EDGES
from spinicl.config import ConfigError, SampleConfig
from spinicl.io.run import (
    RunWriter,
    StoreError,
    check_new_file,
    copy_for_resume,
    create_layout,
    finish_run,
    open_run,
    read_attrs,
    read_checkpoint,
    read_traces,
)
from spinicl.models import build_model
from spinicl.observables import (
    OBSERVABLES,
    SHAPES,
    ObservableSet,
    exact_references,
    record_shape,
)
from spinicl.progress import ProgressLine
from spinicl.prompts import make_task
from spinicl.signals import Stopped, stop_requests

#: Spawn key of the sampler's random stream under the task seed (the task uses 0..3).
SAMPLER_STREAM = 7


class RunStopped(Exception):
    """Raised inside the loop when SIGINT/SIGTERM arrives (after a clean flush)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@dataclass
class RunResult:
    """Outcome of a run: file path, final status, steps done, records written."""

    path: str
    status: str
    step: int
    n_records: int
    message: str = ""
    exit_code: int = 0


def sampler_seed(seed: int) -> int:
    """The sampler's seed, a stream of the task seed distinct from the task's own."""
    ss = np.random.SeedSequence(seed, spawn_key=(SAMPLER_STREAM,))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


# --------------------------------------------------------------------------- building
def build_run(cfg: SampleConfig):
    """Task, model, exact references, observables and sampler of a run config."""
    from spinicl.samplers import Ladder, make_sampler
    from spinicl.theory.gaussian import gaussian_theory

    task = make_task(cfg.task, keep_test_context=False)  # no baselines here
    model = build_model(task, cfg.model, dk=cfg.dk, representation=cfg.representation,
                        memory_budget=cfg.memory_budget)
    theory = None
    if model.gaussian:   # closed-form references; the ground state is their mean m
        theory = gaussian_theory(model, task, seed=cfg.task.seed)
        ground = theory.mean
    else:                # the exact ground state where the model has a solver (else None)
        ground = model.ground_state().W
    observables = ObservableSet(model, task, ground)
    ladder = Ladder.from_temperatures(list(cfg.temperatures))
    sampler = make_sampler(model, cfg.sampler, ladder=ladder, copies=cfg.copies,
                           step=cfg.step, gamma=cfg.gamma, precondition=cfg.precondition,
                           swap_every=cfg.swap_every, adapt_ladder=cfg.adapt_ladder,
                           seed=sampler_seed(cfg.task.seed), **cfg.options)
    return task, model, theory, observables, sampler


def amp_references(model, task, theory, temperatures: np.ndarray) -> dict[str, np.ndarray]:
    """The paper's AMP (its own defaults) at every temperature, for /theory.

    Returns ``amp_test_mse_novel``, ``amp_relative_distance`` (‖m_AMP − m‖/‖m‖) and
    ``amp_sweeps``, each (T,); empty where AMP does not apply (factored model, or no
    dense couplings).
    """
    if theory is None or getattr(model, "representation", "") != "dense":
        return {}
    from spinicl.models import mse
    from spinicl.theory.amp import amp_for_model

    out = {k: np.full(len(temperatures), np.nan)
           for k in ("amp_test_mse_novel", "amp_relative_distance", "amp_sweeps")}
    for k, t in enumerate(temperatures):
        res = amp_for_model(model, 1.0 / t, variant="paper", seed=task.config.seed,
                            m_exact=theory.mean)
        out["amp_test_mse_novel"][k] = mse(res.m[None], task.test_novel)[0]
        out["amp_relative_distance"][k] = res.relative_distance
        out["amp_sweeps"][k] = res.sweeps
    return out


def _temperatures(sampler, state) -> np.ndarray:
    return 1.0 / np.asarray(sampler.report(state)["betas"], dtype=float)


# --------------------------------------------------------------------------- loop
def _loop(cfg: SampleConfig, sampler, state, observables: ObservableSet, writer: RunWriter,
          progress: ProgressLine, step: int,
          stop_flag: dict | None = None) -> tuple[Any, int]:
    """Advance from ``step`` to ``cfg.total_steps``; returns (state, step).

    Polls ``stop_flag`` (see :func:`run_sample`) or, without one, the flag of its own
    SIGINT/SIGTERM handlers.
    """
    from spinicl.samplers import SamplerDivergence

    total, burn = cfg.total_steps, cfg.burn_in
    start = step
    n_rec = writer.n_records
    stops = stop_requests() if stop_flag is None else contextlib.nullcontext(stop_flag)
    with stops as flag:
        while step < total:
            if flag["signum"] is not None:
                writer.flush(sampler.state_to_dict(state), step,
                             _temperatures(sampler, state))
                raise RunStopped(flag["signum"])
            n = cfg.record_every - step % cfg.record_every
            if step < burn:
                n = min(n, burn - step)
            n = min(n, total - step)
            try:
                state, info = sampler.run(state, n, burn_in=step < burn)
            except SamplerDivergence as exc:
                raise _Diverged(str(exc), getattr(exc, "state", None)) from None
            step += n
            if step % cfg.record_every and step != burn and step != total:
                continue
            energies = np.asarray(sampler.energies(state))
            positions = np.asarray(sampler.positions(state))
            rec = observables.compute(positions, energies, step, info.accept,
                                      info.swap_accept)
            snap = None
            if cfg.snapshot_every and n_rec % cfg.snapshot_every == 0:
                snap = positions
            n_rec += 1
            if writer.append(rec, snap):
                writer.flush(sampler.state_to_dict(state), step,
                             _temperatures(sampler, state))
            progress.update(step, _status_text(sampler, state, energies, info))
    writer.flush(sampler.state_to_dict(state), step, _temperatures(sampler, state))
    if step > start:   # a resume of a run that had done every step runs none
        progress.update(step, _status_text(sampler, state, energies, info), force=True)
    return state, step


def _status_text(sampler, state, energies: np.ndarray, info) -> str:
    coldest = int(np.argmin(_temperatures(sampler, state)))
    return (f"⟨E⟩(coldest) = {float(energies[coldest].mean()):.4g}  "
            f"accept = {float(np.mean(info.accept)):.2f}")


class _Diverged(Exception):
    def __init__(self, message: str, state):
        self.state = state
        super().__init__(message)


def _execute(cfg: SampleConfig, path: str, sampler, state, observables, step: int,
             progress_on: bool, stop_flag: dict | None = None, theory=None) -> RunResult:
    """Run the loop on an open layout, then close the file with its status and summary.

    SIGINT/SIGTERM only set ``stop_flag`` here (the caller holds it, or own handlers):
    the loop stops at its next record, and a signal that arrives after the last step
    lets the file be finished as complete; the result then carries the exit code
    128 + signal and says so.
    """
    if stop_flag is None:
        with stop_requests() as flag:
            return _execute(cfg, path, sampler, state, observables, step, progress_on,
                            flag, theory)
    writer = RunWriter(path, flush_every=cfg.flush_every, flush_seconds=cfg.flush_seconds)
    progress = ProgressLine(cfg.total_steps, "steps", step, progress_on)
    status, message, code = "complete", "", 0
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            state, step = _loop(cfg, sampler, state, observables, writer, progress, step,
                                stop_flag)
    except RunStopped as exc:
        status, code = "interrupted", 128 + exc.signum
        message = (f"stopped by {exc} at step {writer.checkpoint_step}; continue with: "
                   f"spinicl resume {path}")
    except _Diverged as exc:
        status, code = "failed", 1
        message = f"diverged: {exc}"
        with contextlib.suppress(Exception):
            writer.write_records()
    except OSError as exc:
        status, code = "failed", 1
        reason = "disk full" if exc.errno == errno.ENOSPC else str(exc).splitlines()[0]
        message = f"I/O error writing {path}: {reason}"
    finally:
        progress.close()
    try:
        writer.close()
        summary = summarize_file(path, cfg)
        try:
            groups = thermo_file(path, summary, cfg, theory)
        except (ConfigError, ValueError, FloatingPointError, np.linalg.LinAlgError):
            groups = None   # never lose a run's status and summary to its thermodynamics
        finish_run(path, status, message, summary, groups)
    except OSError as exc:
        if not message:
            status, code = "failed", 1
            message = f"I/O error finishing {path}: {str(exc).splitlines()[0]}"
    if stop_flag["signum"] is not None and code == 0:
        code = 128 + int(stop_flag["signum"])
        message = (f"stopped by {signal.Signals(stop_flag['signum']).name} after the last "
                   f"step: {path} is complete")
    return RunResult(path, status, step, writer.n_records, message, code)


def run_sample(cfg: SampleConfig, path: str, *, force: bool = False,
               command_line: str = "", progress: bool = True,
               stop_flag: dict | None = None) -> RunResult:
    """Run a sampling job into a new HDF5 file.

    Parameters
    ----------
    cfg : SampleConfig
    path : str
        Output file (refused if it exists, unless ``force``).
    force : bool
    command_line : str
        Recorded in the file.
    progress : bool
        Show a progress line on stderr.
    stop_flag : dict, optional
        A ``{"signum": ...}`` flag from :func:`spinicl.signals.stop_requests` that the
        caller holds (the sweep coordinator running points in its own process): the loop
        polls it instead of installing its own SIGINT/SIGTERM handlers, so a signal that
        arrives while the run is being set up still stops it. Default: own handlers.

    Returns
    -------
    RunResult
    """
    check_new_file(path, force)
    try:
        return _new_run(cfg, path, force, command_line, progress, stop_flag)
    except Stopped as exc:  # raised in set-up only: nothing is written before the file
        raise Stopped(exc.signum, f"before {path} was created; nothing was written"
                      ) from None


def _new_run(cfg: SampleConfig, path: str, force: bool, command_line: str, progress: bool,
             stop_flag: dict | None) -> RunResult:
    """The body of :func:`run_sample` after its checks: set-up (interruptible: a signal
    raises :class:`Stopped` before anything is written), then the file is created and run
    with signals only recorded, so it is complete, interrupted or failed, never half-built.
    """
    task, model, theory, observables, sampler = build_run(cfg)
    state = sampler.init(start=cfg.init)
    T, M = len(cfg.temperatures), cfg.copies
    shapes = {k: record_shape(k, T, M) for k in SHAPES}
    dtypes = {"step": "i8"}
    temps = _temperatures(sampler, state)
    attrs = {"config": cfg.to_dict(), "seeds": {**task.seeds,
                                                 "sampler_seed": sampler_seed(cfg.task.seed)},
             "command_line": command_line, "model": cfg.model, "sampler": cfg.sampler,
             "representation": model.representation, "n_spins": model.n_spins,
             "total_steps": cfg.total_steps, "burn_in": cfg.burn_in}
    if not model.gaussian:  # the ground-state reference (exact or best known), for info
        attrs["ground_state"] = model.ground_state().rows
    snap_shape = (T, M, model.n_spins) if cfg.snapshot_every else None
    refs = exact_references(theory, 1.0 / temps, model.gaussian,
                            sampler=cfg.sampler, steps=np.asarray(state.step_size),
                            precondition=cfg.precondition, model=model, task=task)
    refs.update(amp_references(model, task, theory, temps))
    stops = stop_requests() if stop_flag is None else contextlib.nullcontext(stop_flag)
    with stops as flag:
        create_layout(path, attrs=attrs, temperatures=temps, theory=refs,
                      record_shapes=shapes, record_dtypes=dtypes,
                      checkpoint=sampler.state_to_dict(state), snapshot_shape=snap_shape,
                      exclusive=not force)  # never overwrites a file created meanwhile
        return _execute(cfg, path, sampler, state, observables, 0, progress, flag, theory)


def resume_run(path: str, steps: int | None = None, progress: bool = True) -> RunResult:
    """Continue a run from its last checkpoint (after Ctrl-C, SIGTERM, SIGKILL, a crash).

    Parameters
    ----------
    path : str
    steps : int, optional
        New number of production steps (default: the original); must not be below what
        was already done.
    progress : bool
    """
    try:
        with open_run(path) as f:
            attrs = read_attrs(f)
            _, meta = read_checkpoint(f)
        cfg = SampleConfig.from_dict(attrs["config"])
        if steps is not None:
            cfg = cfg.replace(steps=steps)
        if meta["valid"] and meta["step"] > cfg.total_steps:
            raise ConfigError("steps", f">= {meta['step'] - cfg.burn_in} (already done)",
                              steps)
        _, _, theory, observables, sampler = build_run(cfg)
    except Stopped as exc:  # set-up: nothing written yet
        raise Stopped(exc.signum, f"before the resume started; {path} is unchanged"
                      ) from None
    updates = None if steps is None else {"config": json.dumps(cfg.to_dict(), sort_keys=True),
                                          "total_steps": cfg.total_steps}
    with stop_requests() as flag:  # from here the file is rebuilt and run: record only
        _, state_dict, meta = copy_for_resume(path, updates)
        state = sampler.state_from_dict(state_dict)
        return _execute(cfg, path, sampler, state, observables, meta["step"], progress,
                        flag, theory)


# --------------------------------------------------------------------------- summary
SUMMARY_STATS = ("mean", "stderr", "tau_int", "ess", "rhat", "var", "tau_ok",
                 "records_needed")


def summarize_columns(x: np.ndarray, pairs: bool = False) -> dict[str, np.ndarray]:
    """Per-temperature statistics of a trace, the copies as independent chains.

    Parameters
    ----------
    x : ndarray, shape (records, T, chains)
    pairs : bool
        The columns are the M(M−1)/2 pairs of copies (overlaps): they share replicas,
        so they are not independent chains. Their average over pairs is taken per
        record and summarised as one series (its variance includes every covariance
        between pairs that share a copy).

    Returns
    -------
    dict stat → ndarray (T,): mean, stderr (from τ_int, Geyer's initial monotone
    sequence over the chains), tau_int (in records), ess (summed over chains), rhat
    (split R-hat; NaN with one chain), var (variance of one value), tau_ok (1: the run
    holds ≥ 50 τ and τ is stable between its halves; 0: too short for a trustworthy τ),
    records_needed (records per chain for a trustworthy τ). All NaN where fewer than
    4 records.
    """
    T = x.shape[1]
    out = {k: np.full(T, np.nan) for k in SUMMARY_STATS}
    if x.shape[0] < 4:
        return out
    for k in range(T):
        col = x[:, k, :]
        if not np.all(np.isfinite(col)) or col.shape[1] == 0:
            continue
        out["var"][k] = float(col.var(ddof=1)) if col.size > 1 else np.nan
        if pairs:
            col = col.mean(axis=1, keepdims=True)
        st = summarize(col, check=True)
        for name in SUMMARY_STATS:
            if name != "var":
                out[name][k] = st.get(name, np.nan)
    return out


def swap_attempt_weights(steps: np.ndarray, start: int, swap_every: int,
                         n_pairs: int) -> np.ndarray:
    """Swap rounds of each neighbouring pair inside every record interval.

    Round e (e = 0, 1, … after every ``swap_every`` steps, at step (e+1)·swap_every)
    attempts the pairs k ≡ e (mod 2) (DEO schedule). Record r covers steps
    (steps[r−1], steps[r]] with steps[−1] = ``start``.

    Returns
    -------
    ndarray, shape (records, n_pairs), int
    """
    steps = np.asarray(steps, dtype=np.int64)
    prev = np.concatenate([[int(start)], steps[:-1]])
    hi, lo = steps // swap_every, prev // swap_every      # rounds j = e + 1 in (lo, hi]

    def count(x: np.ndarray, parity: int) -> np.ndarray:  # 1 ≤ j ≤ x, j ≡ parity (mod 2)
        return (x + parity) // 2

    out = np.empty((steps.size, n_pairs), dtype=np.int64)
    for k in range(n_pairs):
        par = (k + 1) % 2                                  # e ≡ k  ⇔  j ≡ k + 1
        out[:, k] = count(hi, par) - count(lo, par)
    return out


def summarize_swaps(swap: np.ndarray, steps: np.ndarray, start: int, swap_every: int
                    ) -> dict[str, np.ndarray]:
    """Swap acceptance per neighbouring pair over the records after burn-in, (T−1,).

    ``mean`` is the pooled fraction of accepted attempts (records weighted by their
    number of swap rounds, :func:`swap_attempt_weights`), never NaN while any round
    happened; ``stderr`` from the series of per-record rates that hold a round; ``rounds``
    the number of swap rounds of each pair.
    """
    n_pairs = swap.shape[1] if swap.ndim == 2 else 0
    out = {k: np.full(n_pairs, np.nan) for k in ("mean", "stderr", "tau_int", "ess", "rounds")}
    if n_pairs == 0 or swap.shape[0] == 0:
        return out
    w = swap_attempt_weights(steps, start, swap_every, n_pairs)
    for k in range(n_pairs):
        ok = (w[:, k] > 0) & np.isfinite(swap[:, k])
        out["rounds"][k] = float(w[ok, k].sum())
        if not ok.any():
            continue
        out["mean"][k] = float(np.sum(w[ok, k] * swap[ok, k]) / np.sum(w[ok, k]))
        if ok.sum() >= 4:
            st = summarize(swap[ok, k])
            out["stderr"][k], out["tau_int"][k], out["ess"][k] = (
                st["stderr"], st["tau_int"], st["ess"])
    return out


def _refs_on_ladder(ref: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Exact references computed at temperatures t0, re-evaluated at t1.

    Every closed form here is affine in T = 1/β (mean + trace·T, also ULA's at a fixed
    step), so an adapted ladder's references follow exactly from a straight line through
    the stored ones.
    """
    ref = np.asarray(ref, dtype=float)
    if t0.shape != t1.shape or np.array_equal(t0, t1) or t0.size < 2 \
            or not np.all(np.isfinite(ref)):
        return ref
    slope, icpt = np.polyfit(t0, ref, 1)
    return icpt + slope * t1


def summarize_traces(traces: dict[str, np.ndarray], theory: dict[str, np.ndarray],
                     cfg: SampleConfig, temperatures: np.ndarray | None = None
                     ) -> dict[str, dict[str, np.ndarray]]:
    """The run summary from its records (after burn-in) and exact references.

    Parameters
    ----------
    traces : dict name → ndarray (records, ...)
    theory : dict name → ndarray (T,)
        References at ``cfg.temperatures`` (the ladder the run started with).
    cfg : SampleConfig
    temperatures : ndarray (T,), optional
        The final ladder (after adaptation); references are moved onto it.

    Returns
    -------
    dict observable → dict stat → ndarray: see :func:`summarize_columns`, plus
    ``exact``, ``steps_needed`` (production steps for a trustworthy τ) and, where the
    sampler's own law differs from Boltzmann's (ULA), ``boltzmann`` and ``bias``
    (exact − boltzmann). ``swap_accept``: :func:`summarize_swaps`.
    """
    from spinicl.observables import BOLTZMANN_PREFIX

    steps = traces["step"]
    keep = steps > cfg.burn_in
    t0 = np.asarray(cfg.temperatures, dtype=float)
    t1 = t0 if temperatures is None else np.asarray(temperatures, dtype=float)
    out: dict[str, dict] = {}
    for name, data in traces.items():
        if name == "step" or data.ndim < 2:
            continue
        x = data[keep]
        T = data.shape[1]
        if name == "swap_accept":
            before = steps[steps <= cfg.burn_in]
            start = int(before[-1]) if before.size else 0
            out[name] = summarize_swaps(x.reshape(x.shape[0], T), steps[keep], start,
                                        cfg.swap_every)
            continue
        pairs = name in OBSERVABLES and OBSERVABLES[name].pairs
        stats = summarize_columns(x.reshape(x.shape[0], T, int(np.prod(data.shape[2:]))),
                                  pairs=pairs)
        stats["steps_needed"] = stats["records_needed"] * cfg.record_every
        stats["exact"] = _refs_on_ladder(theory.get(name, np.full(T, np.nan)), t0, t1)
        if BOLTZMANN_PREFIX + name in theory:
            stats["boltzmann"] = _refs_on_ladder(theory[BOLTZMANN_PREFIX + name], t0, t1)
            stats["bias"] = stats["exact"] - stats["boltzmann"]
        out[name] = stats
    return out


def summarize_file(path: str, cfg: SampleConfig | None = None) -> dict[str, dict]:
    """Post-burn-in mean, standard error, τ_int, ESS and exact value per temperature.

    Standard errors come from the integrated autocorrelation time (Geyer's initial
    monotone sequence) of each copy's series after burn-in, the copies pooled as
    independent chains; overlaps between copies from the series of their per-record
    average over pairs (:func:`summarize_columns`).
    """
    with open_run(path) as f:
        attrs = read_attrs(f)
        cfg = cfg or SampleConfig.from_dict(attrs["config"])
        traces = read_traces(f)
        theory = {k: f[f"theory/{k}"][...] for k in f["theory"]}
        temps = f["ladder/T"][...]
    return summarize_traces(traces, theory, cfg, temps)


def _nan_or(fn, *shape):
    """fn() (a tuple of arrays), or NaN arrays of ``shape`` where the traces are too short
    or not finite (ConfigError from the estimators)."""
    try:
        return fn()
    except (ConfigError, FloatingPointError, KeyError, ValueError, ZeroDivisionError):
        return tuple(np.full(s, np.nan) for s in shape)


def thermo_traces(traces: dict[str, np.ndarray], summary: dict[str, dict],
                  cfg: SampleConfig, temperatures: np.ndarray, n_spins: int,
                  theory=None) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The spin-glass observables of a run: the /thermo and /overlap_histogram groups.

    From the post-burn-in records (estimators of :mod:`spinicl.analysis.thermo`; the M
    copies of a rung as independent chains, overlaps over the M(M−1)/2 pairs).

    /thermo (``temperature`` = T rungs, ``pair_of_rungs`` = T − 1 neighbouring pairs):

    * ``log_z_ratio``, ``log_z_ratio_stderr`` (T−1,): log Z(β_k) − log Z(β_{k+1}) by the
      stepping stone; ``weight_ess`` (T−1, 2) its bridge weights' Kish ESS fraction on
      the colder and the hotter rung (≲ 0.1: the rungs overlap poorly);
    * ``log_z_ratio_ti``, ``log_z_ratio_ti_stderr`` (T−1,): thermodynamic integration
      (linear in T) of ``/summary/energy`` mean and stderr;
    * ``log_z_ratio_exact`` (T−1,): the merged model's exact ratios, NaN otherwise;
    * ``log_z``, ``free_energy``, ``entropy`` (per spin) and their ``_stderr`` (T,):
      absolute for the merged model (log Z_hot = exact log Z at the hottest rung), else
      relative to the hottest rung (log Z_hot := 0, entropy 0 there): attr ``reference``
      says which; ``log_z_exact``, ``free_energy_exact``, ``entropy_exact`` (merged);
    * ``heat_capacity``, ``heat_capacity_stderr``, ``heat_capacity_exact`` (T,):
      C = β²Var(E) (total), exact n/2 for the merged model;
    * ``binder``, ``binder_stderr``, ``binder_exact`` (T,): Binder cumulant of
      /trace/overlap (:func:`spinicl.analysis.thermo.binder_cumulant`: delta-method
      error of the influence series averaged over the pairs of each record, as they
      share copies), exact from the merged model's overlap moments.

    The log Z quantities need ≥ 2 rungs, the Binder cumulant ≥ 2 copies: otherwise they
    are not written. Exact values need the merged (Gaussian) model with a sampler that
    targets the Boltzmann law (not ULA) and, for the overlap, its dense covariance and at
    most :data:`EXACT_OVERLAP_MAX_SPINS` spins (one n×n eigendecomposition per rung). Too
    few (< 4) or non-finite post-burn-in records give NaN.

    /overlap_histogram/<overlap|overlap_active>/ (≥ 2 copies): ``edges`` (T, 101), one
    row per rung from that rung's own spread of q (:func:`spinicl.analysis.thermo.
    overlap_edges`: its 0.1–99.9 % quantile range widened by a quarter on each side, cut
    to [min q, max q]; fewer than 4 records: [−1, 1], no counts),
    ``counts`` (T, 100) over all records and pairs, ``outside`` (T, 2) below / above,
    ``exact_mean``, ``exact_var`` (T,) of the merged model's overlap (NaN otherwise).

    Returns
    -------
    dict group → (datasets, attrs), as :func:`spinicl.io.run.finish_run` takes it.
    """
    from spinicl import registry
    from spinicl.analysis import thermo as th

    steps = np.asarray(traces["step"])
    keep = steps > cfg.burn_in
    n_keep = int(keep.sum())
    t = np.asarray(temperatures, dtype=float)
    b = 1.0 / t
    T = t.size
    exact = theory is not None and registry.stationary_law(cfg.sampler) is None
    dense = (exact and getattr(theory, "chol", None) is not None
             and int(n_spins) <= EXACT_OVERLAP_MAX_SPINS)

    def post(name: str) -> np.ndarray | None:
        if name not in traces:
            return None
        x = np.asarray(traces[name])[keep]
        return x.reshape(n_keep, T, -1)

    ds: dict[str, Any] = {}
    E = post("energy")
    if E is not None:
        C, C_se = _nan_or(lambda: th.heat_capacity(E, b), T, T)
        ds.update(heat_capacity=C, heat_capacity_stderr=C_se,
                  heat_capacity_exact=np.full(T, th.merged_heat_capacity(theory)
                                              if exact else np.nan))
    reference = "none"
    if E is not None and T >= 2:
        lz_hot = th.merged_log_z(theory, b[-1]) if exact else np.nan
        absolute = bool(np.isfinite(lz_hot))
        reference = ("absolute (log Z at the hottest rung from the exact merged model)"
                     if absolute else "relative to the hottest rung (log Z_hot := 0)")
        hot = float(lz_hot) if absolute else 0.0

        def _ss():
            r = th.stepping_stone(E, b)
            return r.log_z_ratio, r.log_z_ratio_stderr, r.log_z, r.log_z_stderr, r.weight_ess

        ratio, ratio_se, lz, lz_se, ess = _nan_or(_ss, T - 1, T - 1, T, T, (T - 1, 2))
        en = summary.get("energy", {})
        ti = _nan_or(lambda: tuple(th.thermodynamic_integration(
            en["mean"], b, en["stderr"]).values()), T - 1, T - 1, T, T)
        f, f_se = th.free_energy_per_spin(lz, b, n_spins, lz_se, hot)
        s, s_se = _nan_or(lambda: th.entropy_per_spin(E, b, n_spins,
                                                      hot if absolute else None), T, T)
        nan_t = np.full(T, np.nan)
        lz_exact = (np.array([th.merged_log_z(theory, x) for x in b]) if exact else nan_t)
        ds.update(log_z_ratio=ratio, log_z_ratio_stderr=ratio_se, weight_ess=ess,
                  log_z_ratio_ti=ti[0], log_z_ratio_ti_stderr=ti[1],
                  log_z_ratio_exact=lz_exact[:-1] - lz_exact[1:],
                  log_z=lz + hot, log_z_stderr=lz_se, log_z_exact=lz_exact,
                  free_energy=f, free_energy_stderr=f_se,
                  free_energy_exact=-lz_exact / (b * n_spins),
                  entropy=s, entropy_stderr=s_se,
                  entropy_exact=(np.array([th.merged_entropy_per_spin(theory, x) for x in b])
                                 if exact else nan_t))
    hist: dict[str, Any] = {}
    for name, active in (("overlap", False), ("overlap_active", True)):
        q = post(name)
        if q is None or q.shape[2] == 0:
            continue
        moments = ([th.merged_overlap_moments(theory, x, active=active) for x in b]
                   if dense else None)
        if name == "overlap":
            ds["binder"], ds["binder_stderr"] = _nan_or(lambda q=q: th.binder_cumulant(q),
                                                        T, T)
            ds["binder_exact"] = (np.array([m["binder"] for m in moments]) if moments
                                  else np.full(T, np.nan))
        if n_keep >= 4 and np.all(np.isfinite(q)):
            h = th.overlap_histogram(q, th.overlap_edges(q, OVERLAP_HIST_EDGES))
        else:   # nothing to histogram: placeholder edges over [−1, 1], no counts
            h = {"edges": np.tile(np.linspace(-1.0, 1.0, OVERLAP_HIST_EDGES), (T, 1)),
                 "counts": np.zeros((T, OVERLAP_HIST_EDGES - 1), np.int64),
                 "outside": np.zeros((T, 2), np.int64)}
        for key in ("edges", "counts", "outside"):
            hist[f"{name}/{key}"] = h[key]
        hist[f"{name}/exact_mean"] = (np.array([m["mean"] for m in moments]) if moments
                                      else np.full(T, np.nan))
        hist[f"{name}/exact_var"] = (np.array([m["var"] for m in moments]) if moments
                                     else np.full(T, np.nan))
    out = {"thermo": (ds, {"reference": reference, "n_spins": int(n_spins),
                           "records": n_keep,
                           "method": "stepping stone (geometric bridge at the midpoint "
                                     "beta); TI linear in T; Binder delta method, pairs "
                                     "averaged per record"})}
    if hist:
        out["overlap_histogram"] = (hist, {
            "records": n_keep,
            "edges": f"per rung (T, {OVERLAP_HIST_EDGES}), evenly spaced: with a, b the "
                     "0.1 % and 99.9 % quantiles of the rung's post-burn-in q (all records "
                     "and pairs), the range [a - (b-a)/4, b + (b-a)/4] cut to [min q, max "
                     "q], its ends at the centres of the first and last bin"})
    return out


def thermo_file(path: str, summary: dict[str, dict], cfg: SampleConfig | None = None,
                theory=None) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """:func:`thermo_traces` of a run file (``theory``: the merged model's
    :class:`~spinicl.theory.gaussian.GaussianTheory` for the exact values, or None)."""
    with open_run(path) as f:
        attrs = read_attrs(f)
        cfg = cfg or SampleConfig.from_dict(attrs["config"])
        traces = read_traces(f)
        temps = f["ladder/T"][...]
    n_spins = int(attrs.get("n_spins") or (theory.n_spins if theory is not None else 1))
    return thermo_traces(traces, summary, cfg, temps, n_spins, theory)


__all__ = ["RunResult", "StoreError", "resume_run", "run_sample", "summarize_file",
           "thermo_file", "thermo_traces"]


def ladder_report(temperatures: np.ndarray, swap_mean: np.ndarray, energy_var: np.ndarray,
                  round_trips: np.ndarray | None, steps_done: int) -> dict[str, Any]:
    """Communication barrier, recommended rung count, round trips and stuck pairs.

    Parameters
    ----------
    temperatures : ndarray (T,), ascending
    swap_mean : ndarray (T−1,)
        Swap acceptance per neighbouring pair after burn-in.
    energy_var : ndarray (T,)
        Variance of the energy per rung after burn-in (heat capacity β²Var E).
    round_trips : ndarray (copies,) or None
        Completed cold → hot → cold trips of each copy's walkers (whole run).
    steps_done : int

    Returns
    -------
    dict with ``barrier`` (Λ = Σ rejection, saturates at 1 per pair),
    ``barrier_heat_capacity`` (Λ from the heat capacity, :func:`heat_capacity_barrier`),
    ``recommended_rungs`` (≈ 2Λ: acceptance ≈ 0.5), ``rungs_for_target`` (geometric rungs
    for acceptance ≥ ``target``), ``round_trips``, ``round_trips_per_copy``,
    ``stuck_pairs`` (pairs below STUCK_ACCEPTANCE: index, T_k, T_k+1, acceptance).
    """
    from spinicl.samplers.tempering import (
        AUTO_TARGET,
        STUCK_ACCEPTANCE,
        communication_barrier,
        heat_capacity_barrier,
        rungs_for_acceptance,
    )

    t = np.asarray(temperatures, dtype=float)
    acc = np.asarray(swap_mean, dtype=float)
    lam_r = communication_barrier(1.0 - acc) if acc.size else 0.0
    lam_c = heat_capacity_barrier(1.0 / t, energy_var) if t.size > 1 else float("nan")
    lam = lam_c if np.isfinite(lam_c) else lam_r
    rungs = None
    if t.size > 1 and lam > 0:
        n_eff = 2.0 * np.pi * (lam / np.log(t[-1] / t[0])) ** 2   # c_n ≈ √(n/2π)
        rungs = int(rungs_for_acceptance(t[0], t[-1], n_eff, AUTO_TARGET))
    stuck = [{"pair": k, "T": [float(t[k]), float(t[k + 1])], "acceptance": float(a)}
             for k, a in enumerate(acc) if np.isfinite(a) and a < STUCK_ACCEPTANCE]
    rt = None if round_trips is None else np.asarray(round_trips, dtype=int)
    return {"barrier": float(lam_r), "barrier_heat_capacity": float(lam_c),
            "recommended_rungs": int(np.ceil(2 * lam)) if t.size > 1 else 1,
            "rungs_for_target": rungs, "target": AUTO_TARGET,
            "round_trips": None if rt is None else int(rt.sum()),
            "round_trips_per_copy": None if rt is None else rt.tolist(),
            "steps": int(steps_done), "stuck_pairs": stuck}


def file_info(path: str) -> dict[str, Any]:
    """Everything `spinicl info` shows: config, status, progress, summary with z-scores,
    the ladder's barrier and round trips, and warnings.

    Works on a running, interrupted, failed or killed file (read-only SWMR open). Where
    the file holds no /summary yet, it is computed from the records so far.

    ``max_abs_z`` is the largest |z| against a closed form over the summary and the
    /thermo block (TI log Z ratios, C, Binder, and the stepping-stone log Z ratios and
    the log Z, f, s built on them where every pair of rungs involved has bridge weights
    that overlap well: the others are warned about as unreliable), and
    ``max_abs_z_at`` says where: ``{"abs_z", "z", "quantity", "T"}`` (a summary
    observable's name, or ``"thermo <name>"``; T a rung's temperature or a pair's two).
    """
    from spinicl.io.run import read_checkpoint

    with open_run(path) as f:
        attrs = read_attrs(f)
        ckpt, meta = read_checkpoint(f)
        n_records = f["trace/step"].shape[0]
        steps = f["trace/step"][...]
        step = int(steps[-1]) if n_records else 0
        temps = f["ladder/T"][...]
        has_summary = "summary" in f
        summary = ({name: {k: f[f"summary/{name}/{k}"][...] for k in f[f"summary/{name}"]}
                    for name in f["summary"]} if has_summary else None)
        swap = f["trace/swap_accept"][...] if "trace/swap_accept" in f else None
        energy = f["trace/energy"][...] if "trace/energy" in f else None
        thermo = ({k: f[f"thermo/{k}"][...] for k in f["thermo"]} if "thermo" in f
                  else None)
        thermo_ref = str(f["thermo"].attrs.get("reference", "")) if "thermo" in f else ""
    cfg = SampleConfig.from_dict(attrs["config"])
    if summary is None:
        summary = summarize_file(path, cfg) if n_records else {}
    thermo_source = "file"
    if thermo is None and n_records:   # running, or written before /thermo: no exact values
        try:
            ds, tattrs = thermo_file(path, summary, cfg)["thermo"]
            thermo, thermo_ref = ds, tattrs["reference"]
            thermo_source = f"computed from {n_records} records (no exact values)"
        except (ConfigError, ValueError, FloatingPointError, KeyError):
            thermo = None
    table: dict[str, list[dict]] = {}
    worst = None
    short: list[dict] = []
    done = max(step - cfg.burn_in, 0)
    for name, st in summary.items():
        rows = []
        if name == "swap_accept":
            continue  # per neighbouring pair, shown on its own line
        for k in range(len(st["mean"])):
            row = {s: float(st[s][k]) for s in ("mean", "stderr", "tau_int", "ess", "exact")}
            for extra in ("boltzmann", "bias", "tau_ok", "steps_needed"):
                if extra in st:
                    row[extra] = float(st[extra][k])
            z = None
            if np.isfinite(row["exact"]) and row["stderr"] > 0:
                z = (row["mean"] - row["exact"]) / row["stderr"]
                worst = _worse(worst, z, name, float(temps[k]))
            row["z"] = z
            if row.get("tau_ok") == 0.0 and np.isfinite(row["stderr"]) and row["stderr"] > 0:
                short.append({"observable": name, "T": float(temps[k]),
                              "tau_int": row["tau_int"],
                              "more_steps": int(max(row["steps_needed"] - done, 0))})
            rows.append(row)
        table[name] = rows
    swap_mean = None
    ladder = None
    warnings: list[str] = []
    if swap is not None and swap.size and swap.shape[1]:
        keep = steps > cfg.burn_in
        before = steps[steps <= cfg.burn_in]
        sw = summarize_swaps(swap[keep], steps[keep], int(before[-1]) if before.size else 0,
                             cfg.swap_every)
        swap_mean = [float(x) for x in sw["mean"]]
        ev = (energy[keep].reshape(int(keep.sum()), len(temps), -1)
              if energy is not None and keep.sum() > 1 else None)
        var = (np.array([ev[:, k].var(ddof=1) for k in range(len(temps))]) if ev is not None
               else np.full(len(temps), np.nan))
        ladder = ladder_report(temps, sw["mean"], var,
                               None if ckpt is None else ckpt.get("round_trips"),
                               int(meta["step"]))
        for p in ladder["stuck_pairs"]:
            warnings.append(
                f"swap pair {p['pair']} (T = {p['T'][0]:.3g} ↔ {p['T'][1]:.3g}) accepts "
                f"{p['acceptance']:.4f} after burn-in: these rungs do not exchange. Use more "
                f"rungs (--temps TMIN:TMAX:auto, or about {ladder['rungs_for_target']} "
                "geometric rungs) or --adapt-ladder.")
    thermo_block = (_thermo_info(thermo, temps, thermo_ref, thermo_source)
                    if thermo else None)
    if thermo_block:
        poor = [p["weight_ess"] is not None and p["weight_ess"] < WEIGHT_ESS_WARN
                for p in thermo_block["pairs"]]
        for p, bad in zip(thermo_block["pairs"], poor, strict=True):
            for key, what in (("z_stepping_stone", "log_z_ratio"),
                              ("z_ti", "log_z_ratio_ti")):
                if p[key] is not None and not (bad and key == "z_stepping_stone"):
                    worst = _worse(worst, p[key], f"thermo {what}", p["T"])
        for k, r in enumerate(thermo_block["rungs"]):
            chain_bad = any(poor[k:])   # log Z_k sums the ratios of the pairs k, k+1, ...
            for name in THERMO_RUNG_QUANTITIES:
                if r.get(f"z_{name}") is not None and not (chain_bad
                                                           and name in LOG_Z_QUANTITIES):
                    worst = _worse(worst, r[f"z_{name}"], f"thermo {name}", r["T"])
        for p in thermo_block["pairs"]:
            if p["weight_ess"] is not None and p["weight_ess"] < WEIGHT_ESS_WARN:
                warnings.append(
                    f"rungs T = {p['T'][0]:.3g} and {p['T'][1]:.3g} overlap poorly "
                    f"(stepping-stone weight ESS {p['weight_ess']:.3f} < {WEIGHT_ESS_WARN:g}"
                    "): their log Z ratio and its error are unreliable; add rungs between "
                    "them.")
    for s_ in short:
        warnings.append(
            f"{s_['observable']} at T = {s_['T']:.3g}: run too short for a trustworthy τ "
            f"(τ ≈ {s_['tau_int']:.1f} records, fewer than 50 τ or τ still growing); about "
            f"{s_['more_steps']} more steps needed (spinicl resume --steps).")
    return {"path": path, "status": attrs.get("status"), "message": attrs.get("message", ""),
            "config": cfg.to_dict(), "seeds": attrs.get("seeds"),
            "command_line": attrs.get("command_line"), "created": attrs.get("created"),
            "updated": attrs.get("updated"), "step": step, "total_steps": cfg.total_steps,
            "n_records": n_records, "checkpoint_step": meta["step"],
            "temperatures": [float(t) for t in temps], "swap_accept": swap_mean,
            "ladder": ladder, "too_short": short, "warnings": warnings,
            "summary": table, "max_abs_z": None if worst is None else worst["abs_z"],
            "max_abs_z_at": worst,
            "ground_state": attrs.get("ground_state"), "thermo": thermo_block}


#: Per-rung /thermo quantities with z-scores against the closed forms (``info``).
THERMO_RUNG_QUANTITIES = ("heat_capacity", "binder", "log_z", "free_energy", "entropy")
#: Those built on the stepping-stone log Z ratios down to the hottest rung.
LOG_Z_QUANTITIES = ("log_z", "free_energy", "entropy")


def _worse(worst: dict | None, z: float, quantity: str, T) -> dict:
    """The larger of ``worst`` and a new z-score, as ``{"abs_z", "z", "quantity", "T"}``
    (T: a rung's temperature, or the [T_k, T_k+1] of a pair of rungs)."""
    if worst is not None and worst["abs_z"] >= abs(z):
        return worst
    return {"abs_z": abs(float(z)), "z": float(z), "quantity": quantity, "T": T}


#: ``info`` warns when a pair's stepping-stone bridge weights have a smaller Kish ESS
#: fraction than this (the rungs overlap poorly).
WEIGHT_ESS_WARN = 0.1


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _z(x, ref, *errs) -> float | None:
    se = float(np.sqrt(sum(float(e) ** 2 for e in errs)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (float(x) - float(ref)) / se if se > 0 else float("nan")
    return _num(z)


def _thermo_info(th: dict[str, np.ndarray], temps: np.ndarray, reference: str,
                 source: str) -> dict[str, Any]:
    """The /thermo block of :func:`file_info`: per pair of neighbouring rungs the log Z
    ratio by stepping stone, TI and exact with z-scores and the smaller bridge-weight ESS
    fraction; per rung C, Binder, log Z, f, s with exact values and z-scores.
    Non-finite values are None."""
    n_t = len(temps)

    def g(name, k, pairs=False):
        v = th.get(name)
        n = n_t - 1 if pairs else n_t
        return float(np.ravel(v)[k]) if v is not None and np.size(v) == n else float("nan")

    ess = th.get("weight_ess")
    pairs = []
    for k in range(n_t - 1):
        ss, se = g("log_z_ratio", k, True), g("log_z_ratio_stderr", k, True)
        ti, se_ti = g("log_z_ratio_ti", k, True), g("log_z_ratio_ti_stderr", k, True)
        ex = g("log_z_ratio_exact", k, True)
        w = (float(np.min(ess[k])) if ess is not None and np.shape(ess)[:1] == (n_t - 1,)
             else float("nan"))
        pairs.append({"pair": k, "T": [float(temps[k]), float(temps[k + 1])],
                      "stepping_stone": _num(ss), "stepping_stone_stderr": _num(se),
                      "ti": _num(ti), "ti_stderr": _num(se_ti), "exact": _num(ex),
                      "z_stepping_stone": _z(ss, ex, se), "z_ti": _z(ti, ex, se_ti),
                      "z_stepping_stone_vs_ti": _z(ss, ti, se, se_ti),
                      "weight_ess": _num(w)})
    rungs = []
    for k, t in enumerate(temps):
        row: dict[str, Any] = {"T": float(t)}
        for name in THERMO_RUNG_QUANTITIES:
            if name not in th:
                continue
            x, se, ex = g(name, k), g(f"{name}_stderr", k), g(f"{name}_exact", k)
            row.update({name: _num(x), f"{name}_stderr": _num(se), f"{name}_exact": _num(ex),
                        f"z_{name}": _z(x, ex, se)})
        rungs.append(row)
    return {"source": source, "reference": reference, "pairs": pairs, "rungs": rungs}


def format_thermo_lines(block: dict[str, Any] | None) -> list[str]:
    """The compact text of :func:`file_info`'s ``thermo`` block (``spinicl info``)."""
    if not block:
        return []

    def v(x, w=10, p=".5g"):
        return ("—" if x is None else format(x, p)).rjust(w)

    def zs(x):
        return "".rjust(6) if x is None else f"{x:+6.2f}"

    out = ["", f"thermodynamics ({block['source']}; log Z, f, s {block['reference']}):"]
    if block["pairs"]:
        out.append(f"  {'log Z(T_k)/Z(T_k+1)':21s}{'stepping st.':>12s} {'± err':>8s} "
                   f"{'TI':>10s} {'± err':>8s} {'exact':>10s} {'z_SS':>6s} {'z_TI':>6s} "
                   f"{'SS−TI':>6s} {'w.ESS':>6s}")
        for p in block["pairs"]:
            ess = "".rjust(6) if p["weight_ess"] is None else f"{p['weight_ess']:6.2f}"
            out.append(f"  {p['T'][0]:8.3g} → {p['T'][1]:<8.3g}  "
                       f"{v(p['stepping_stone'], 12)} {v(p['stepping_stone_stderr'], 8, '.2g')} "
                       f"{v(p['ti'], 10)} {v(p['ti_stderr'], 8, '.2g')} {v(p['exact'], 10)} "
                       f"{zs(p['z_stepping_stone'])} {zs(p['z_ti'])} "
                       f"{zs(p['z_stepping_stone_vs_ti'])} {ess}")
    rows = block["rungs"]
    if rows and any("heat_capacity" in r or "binder" in r for r in rows):
        out.append(f"  {'T':>10s} {'C=β²Var E':>10s} {'± err':>8s} {'exact':>8s} {'z':>6s}"
                   f" {'Binder':>9s} {'± err':>8s} {'exact':>9s} {'z':>6s}")
        for r in rows:
            out.append(f"  {r['T']:10.3g} {v(r.get('heat_capacity'), 10, '.4g')} "
                       f"{v(r.get('heat_capacity_stderr'), 8, '.2g')} "
                       f"{v(r.get('heat_capacity_exact'), 8, '.4g')} "
                       f"{zs(r.get('z_heat_capacity'))} {v(r.get('binder'), 9, '.4f')} "
                       f"{v(r.get('binder_stderr'), 8, '.2g')} "
                       f"{v(r.get('binder_exact'), 9, '.4f')} {zs(r.get('z_binder'))}")
    return out
