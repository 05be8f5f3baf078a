"""``spinicl bench``: which sampler should I use for my D, N, P, T?

:func:`bench_samplers` runs each requested sampler (and preconditioner) on one task for a
fixed wall-clock budget and measures what a user pays for: chain-steps per second,
effective samples per second of the energy and of the slowest mode, acceptance, the
integrated autocorrelation times and the peak memory. :func:`format_bench_table` prints
the rows. The exact Cholesky sampler (merged model, dense representation) is the
reference row: it draws an independent sample per chain-step, so its chain-steps per
second *are* its samples per second, and every other row is also given as a fraction
of that.

Protocol of one row
-------------------
1. **Setup** (not timed against the budget; reported as ``setup_seconds``): build the
   sampler (Cholesky, curvature estimate) and its start. For the merged model with the
   dense representation the chains start from *exact* independent draws
   m + L⁻ᵀz/√β, so what is measured is the stationary mixing, not the relaxation from a
   bad start; otherwise they start from the sampler's default start.
2. **Warm-up** (not timed): a first call that loads or compiles the Numba kernels, then
   burn-in steps (MALA adapts its step size toward acceptance 0.574 here) for
   ``warmup_fraction`` × the budget, at least ``MIN_BURN_IN`` steps.
3. **Throughput** (``throughput_fraction`` × the budget): the frozen kernel runs in
   blocks of about 50 ms without recording; chain_steps_per_s = R · steps / seconds.
4. **Mixing** (the rest of the budget): one step per call, recording after every step
   the energy and the projection of W − m on the slowest mode of every chain. τ_int and
   the effective sample size come from :func:`spinicl.analysis.diagnostics.summarize` (Sokal
   window, autocorrelation pooled over the R chains, ESS summed over chains). The ESS
   per second is the ESS per chain-step times the throughput of step 3, so the Python
   overhead of recording every single step is not charged to the sampler (a production
   run records every ``record_every`` ≥ 10 steps).

The *slowest mode* (docs/model.md §1.4) is the eigenvector u of A = λI + SᵀS/P with the smallest
eigenvalue on the active subspace (the D+1 inactive spins are decoupled at eigenvalue λ
and excluded); the recorded observable is (W − m)·u (τ and ESS do not depend on the
shift m; the matrix-free path records W·u). For the factored model, whose law is not
Gaussian, the slowest observable is the one with the largest τ_int among the energy,
the projections of the effective weights W = W_qᵀW_k on the merged model's slowest and
fastest active modes and on the identity direction, and the self-overlap Q = ‖W‖²/n.

Peak memory is the high-water mark of the resident set size of the process during the
row (Linux: reset through ``/proc/self/clear_refs`` before the row and read from
``VmHWM`` after it; elsewhere the lifetime maximum of ``getrusage``).

Timings are only comparable within one call (same machine, same load): the ratios are
the robust output.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg as sla

from spinicl import linalg, registry
from spinicl.analysis.diagnostics import summarize, tau_int_stderr
from spinicl.config import (
    ConfigError,
    TaskConfig,
    check_beta,
    check_choice,
    check_float,
    check_int,
    check_lam_for_sampling,
)
from spinicl.models import MODELS, REPRESENTATIONS, MergedModel, active_mask

#: Samplers the bench knows (the registry's, the exact reference first).
BENCH_SAMPLERS = tuple(sorted(registry.sampler_names(),
                              key=lambda s: not registry.SAMPLERS[s].exact_reference))

#: The default rows.
DEFAULT_SAMPLERS = ("exact", "mala", "ula", "baoab")
#: Preconditioners (the registry's).
BENCH_PRECONDITIONERS = registry.preconditioner_names()
#: Default inverse temperature (low temperature, docs/model.md §1.3).
DEFAULT_BETA = 1e4
#: Fewest burn-in steps of a row (MALA step-size adaptation).
MIN_BURN_IN = 100
#: Fewest recorded steps of a row (whatever the budget).
MIN_RECORDS = 32
#: A τ_int estimate is called reliable when each chain is at least this many τ long
RELIABLE_RUN_IN_TAU = 20.0
#: ... and the relative standard error of τ (Sokal, pooled over chains) is below this.
RELIABLE_TAU_ERROR = 0.2

#: Keys of every row returned by :func:`bench_samplers`.
ROW_KEYS = (
    "sampler", "precondition", "status", "note", "model", "representation", "D", "N", "P",
    "lam", "beta", "replicas", "step_size", "setup_seconds", "burn_in_steps", "steps",
    "recorded_steps", "seconds", "chain_steps_per_s", "acceptance", "tau_int_energy",
    "tau_int_slowest", "slowest_observable", "slowest_eigenvalue", "ess_energy",
    "ess_slowest", "ess_per_s_energy", "ess_per_s_slowest", "ratio_energy",
    "ratio_slowest", "speed_ratio", "tau_error_energy", "tau_error_slowest",
    "tau_reliable", "gamma", "peak_memory_mb",
)

#: Columns of :func:`format_bench_table`: (header, row key, format).
TABLE_COLUMNS = (
    ("sampler", "sampler", "s"),
    ("precond", "precondition", "s"),
    ("chain-steps/s", "chain_steps_per_s", "g"),
    ("ESS/s energy", "ess_per_s_energy", "g"),
    ("ESS/s slowest", "ess_per_s_slowest", "g"),
    ("energy/exact", "ratio_energy", "r"),
    ("slowest/exact", "ratio_slowest", "r"),
    ("accept", "acceptance", "f"),
    ("tau energy", "tau_int_energy", "g"),
    ("tau slowest", "tau_int_slowest", "g"),
    ("peak MB", "peak_memory_mb", "m"),
)


# --------------------------------------------------------------------------- memory
def reset_peak_memory() -> bool:
    """Reset the resident-set high-water mark of this process (Linux ≥ 4.0).

    Returns
    -------
    bool
        True when the mark was reset (then :func:`peak_memory_mb` measures from now).
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb() -> float:
    """Peak resident set size of this process in MiB (since the last reset on Linux).

    Reads ``VmHWM`` from ``/proc/self/status``; elsewhere ``getrusage`` (lifetime peak).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return math.nan
    # kilobytes on Linux, bytes on macOS
    return peak / 1024.0**2 if sys.platform == "darwin" else peak / 1024.0


# --------------------------------------------------------------------------- modes
def slowest_active_mode(model: MergedModel, tol: float = 1e-8) -> tuple[float, np.ndarray]:
    """Smallest eigenvalue of A = λI + SᵀS/P on the active subspace and its eigenvector.

    The D+1 inactive spins (last column of W) are decoupled at eigenvalue λ and excluded
    (docs/model.md §1.4); the eigenvalue problem is solved on the D(D+1) active spins only.

    Parameters
    ----------
    model : MergedModel
        Dense representation: LAPACK on the active block of A (O(n³)); matrix-free: Lanczos
        (``scipy.sparse.linalg.eigsh``) on the operator W ↦ WA.
    tol : float
        Lanczos tolerance (matrix-free only).

    Returns
    -------
    eigenvalue : float
    vector : ndarray, shape (n,)
        Unit eigenvector, zero on the inactive spins.
    """
    idx = np.flatnonzero(active_mask(model.D))
    n = model.n_spins
    if model.representation == "dense":
        A = model.precision()[np.ix_(idx, idx)]
        vals, vecs = sla.eigh(A, subset_by_index=[0, 0])
        val, sub = float(vals[0]), vecs[:, 0]
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh

        def matvec(x: np.ndarray) -> np.ndarray:
            full = np.zeros(n)
            full[idx] = np.ravel(x)
            return model.precision_product(full[None])[0][idx]

        op = LinearOperator((idx.size, idx.size), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(idx.size)
        vals, vecs = eigsh(op, k=1, which="SA", tol=tol, v0=v0,
                           maxiter=max(1000, 20 * idx.size))
        val, sub = float(vals[0]), vecs[:, 0]
    u = np.zeros(n)
    u[idx] = sub / np.linalg.norm(sub)
    return val, u


def _top_active_mode(model: MergedModel) -> np.ndarray:
    """Eigenvector of the largest eigenvalue of A (dense) or of a power iteration."""
    idx = np.flatnonzero(active_mask(model.D))
    n = model.n_spins
    u = np.zeros(n)
    if model.representation == "dense":
        A = model.precision()[np.ix_(idx, idx)]
        _, vecs = sla.eigh(A, subset_by_index=[idx.size - 1, idx.size - 1])
        u[idx] = vecs[:, 0]
    else:
        v = np.zeros(n)
        v[idx] = np.random.default_rng(1).standard_normal(idx.size)
        for _ in range(100):
            v /= np.linalg.norm(v)
            v = model.precision_product(v[None])[0]
            v[~active_mask(model.D)] = 0.0
        u = v
    return u / np.linalg.norm(u)


def _is_reference(row: dict[str, Any]) -> bool:
    """A row of the exact reference sampler (independent draws)."""
    entry = registry.SAMPLERS.get(row.get("sampler"))
    return entry is not None and entry.exact_reference


def _exact_start(model: MergedModel, beta: float, replicas: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Ridge mean m and R exact independent draws m + L⁻ᵀz/√β (dense representation)."""
    L = model.cholesky(required=True)
    m = linalg.ridge_mean(model.field, chol=L)
    z = np.random.default_rng(np.random.SeedSequence([seed, 7])).standard_normal(
        (model.n_spins, replicas))
    return m, linalg.gaussian_draw(m, L, z.T, beta)


class _Observables:
    """What a row records per step: named scalar observables per chain."""

    def __init__(self, model: Any, beta: float, replicas: int, seed: int):
        self.factored = not model.gaussian
        merged = MergedModel(model.data, model.lam) if self.factored else model
        self.dense = model.representation == "dense"
        self.slowest_eigenvalue, self.u_slow = slowest_active_mode(merged)
        self.mean = None
        self.start = None
        if not self.factored and self.dense:
            self.mean, self.start = _exact_start(merged, beta, replicas, seed)
        self.shift = 0.0 if self.mean is None else float(self.mean @ self.u_slow)
        if self.factored:
            d1 = model.D + 1
            self.u_top = _top_active_mode(merged)
            self.u_id = np.eye(d1).ravel() / math.sqrt(d1)
            self.names = ("energy", "proj_slowest_mode", "proj_top_mode",
                          "proj_identity", "Q")
        else:
            self.names = ("energy", "proj_slowest_mode")

    def __call__(self, sampler: Any, state: Any) -> np.ndarray:
        """Observables of one step, shape (n_observables, R)."""
        energy = state.energy
        if not self.factored:
            return np.stack([energy, state.W @ self.u_slow - self.shift])
        W = sampler.model.effective_weights(state.W)
        return np.stack([energy, W @ self.u_slow, W @ self.u_top, W @ self.u_id,
                         np.einsum("ri,ri->r", W, W) / W.shape[1]])


# --------------------------------------------------------------------------- rows
def _clean(v: Any) -> Any:
    """JSON-friendly scalars: numpy → Python, NaN/inf → None."""
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else None
    return v


def _empty_row(kind: str, precond: str, common: dict[str, Any]) -> dict[str, Any]:
    row = dict.fromkeys(ROW_KEYS)
    row.update(common)
    row.update(sampler=kind, precondition=precond, status="ok", note="")
    return row


def _block(sampler: Any, state: Any, seconds: float, step_time: float, min_steps: int,
           burn_in: bool) -> tuple[Any, int, float]:
    """Run blocks of ~50 ms until ``seconds`` have passed and ``min_steps`` are done."""
    chunk = max(1, int(0.05 / max(step_time, 1e-9)))
    steps = 0
    t0 = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and steps >= min_steps:
            break
        n = chunk if elapsed < seconds else min(chunk, min_steps - steps)
        state, _ = sampler.run(state, n, burn_in=burn_in)
        steps += n
    return state, steps, time.perf_counter() - t0


def _bench_row(model: Any, kind: str, precond: str, obs: _Observables, *, beta: float,
               replicas: int, budget: float, seed: int, gamma: float, blas_threads: int,
               warmup_fraction: float, throughput_fraction: float,
               step_fraction: float | None, common: dict[str, Any]) -> dict[str, Any]:
    from spinicl.samplers import Ladder, SamplerDivergence, make_sampler

    row = _empty_row(kind, precond, common)
    reset_ok = reset_peak_memory()
    t0 = time.perf_counter()
    try:
        sampler = make_sampler(model, kind, ladder=Ladder.from_betas([beta]), copies=replicas,
                               precondition=precond, seed=seed, gamma=gamma,
                               blas_threads=blas_threads)
    except ConfigError as exc:
        row.update(status="skipped", note=str(exc))
        return row
    try:
        state = sampler.init(obs.start)
        if step_fraction is not None and not registry.SAMPLERS[kind].exact_reference:
            state = state._replace(step_size=step_fraction * sampler.stability_bound)
        row["setup_seconds"] = time.perf_counter() - t0
        # warm-up: compile/load the kernels, estimate the step time, burn in
        state, _ = sampler.run(state, 1, burn_in=True)
        t1 = time.perf_counter()
        state, _ = sampler.run(state, 4, burn_in=True)
        step_time = (time.perf_counter() - t1) / 4
        state, burn, _ = _block(sampler, state, warmup_fraction * budget, step_time,
                                MIN_BURN_IN, True)
        row["burn_in_steps"] = burn + 5
        acc0 = state.accepted.copy()
        # throughput: the frozen kernel, no recording
        state, steps_a, secs_a = _block(sampler, state, throughput_fraction * budget,
                                        step_time, 1, False)
        rate = replicas * steps_a / secs_a
        # mixing: record every step
        rec_budget = (1.0 - throughput_fraction) * budget
        records: list[np.ndarray] = []
        t2 = time.perf_counter()
        while time.perf_counter() - t2 < rec_budget or len(records) < MIN_RECORDS:
            state, _ = sampler.run(state, 1)
            records.append(obs(sampler, state))
        secs_b = time.perf_counter() - t2
    except SamplerDivergence as exc:
        row.update(status="diverged", note=str(exc).splitlines()[0])
        row["peak_memory_mb"] = peak_memory_mb()
        return row
    n_b = len(records)
    series = np.stack(records)                      # (n_b, n_obs, R)
    stats = {name: summarize(series[:, i, :]) for i, name in enumerate(obs.names)}
    if obs.factored:
        slow_name = max(obs.names, key=lambda k: stats[k]["tau_int"])
    else:
        slow_name = "proj_slowest_mode"
    se, ss = stats["energy"], stats[slow_name]
    err_e = tau_int_stderr(series[:, 0, :]) / se["tau_int"]
    err_s = tau_int_stderr(series[:, obs.names.index(slow_name), :]) / ss["tau_int"]
    tau_max = max(se["tau_int"], ss["tau_int"])
    reliable = bool(n_b >= RELIABLE_RUN_IN_TAU * tau_max
                    and max(err_e, err_s) <= RELIABLE_TAU_ERROR)
    per_step = 1.0 / (replicas * n_b)
    total_steps = steps_a + n_b
    row.update(
        step_size=float(np.mean(state.step_size)),
        steps=int(total_steps),
        recorded_steps=int(n_b),
        seconds=secs_a + secs_b,
        chain_steps_per_s=rate,
        acceptance=float(np.mean(state.accepted - acc0) / total_steps),
        tau_int_energy=se["tau_int"],
        tau_int_slowest=ss["tau_int"],
        slowest_observable=slow_name,
        ess_energy=se["ess"],
        ess_slowest=ss["ess"],
        ess_per_s_energy=se["ess"] * per_step * rate,
        ess_per_s_slowest=ss["ess"] * per_step * rate,
        tau_error_energy=err_e,
        tau_error_slowest=err_s,
        tau_reliable=reliable,
        gamma=gamma if registry.SAMPLERS[kind].friction else None,
        peak_memory_mb=peak_memory_mb(),
    )
    notes = []
    if not reliable:
        notes.append(f"tau uncertain (relative error {max(err_e, err_s):.0%}, "
                     f"{n_b / tau_max:.0f} tau per chain): raise the budget")
    if not reset_ok:
        notes.append("peak memory is the process lifetime maximum")
    row["note"] = "; ".join(notes)
    return row


def _check_precond(precondition: Any) -> tuple[str, ...]:
    if isinstance(precondition, str):
        precondition = (precondition,)
    try:
        pre = tuple(precondition)
    except TypeError:
        raise ConfigError("precondition", "a preconditioner or a list of them ("
                          + ", ".join(BENCH_PRECONDITIONERS) + ")", precondition) from None
    if not pre:
        raise ConfigError("precondition", "at least one of " + ", ".join(
            BENCH_PRECONDITIONERS), list(pre))
    out = tuple(check_choice("precondition", p, BENCH_PRECONDITIONERS) for p in pre)
    return tuple(dict.fromkeys(out))


def _check_samplers(samplers: Any) -> tuple[str, ...]:
    if isinstance(samplers, str):
        samplers = (samplers,)
    try:
        s = tuple(samplers)
    except TypeError:
        raise ConfigError("samplers", "a list of samplers (" + ", ".join(BENCH_SAMPLERS)
                          + ")", samplers) from None
    if not s:
        raise ConfigError("samplers", "at least one of " + ", ".join(BENCH_SAMPLERS), [])
    out = tuple(check_choice("sampler", k, BENCH_SAMPLERS) for k in s)
    return tuple(dict.fromkeys(out))


def bench_samplers(task_config: TaskConfig,
                   samplers: Sequence[str] = DEFAULT_SAMPLERS, *,
                   model: str = "merged", beta: float | None = None,
                   temperature: float | None = None, replicas: int = 16,
                   budget_seconds: float = 5.0,
                   precondition: str | Sequence[str] = ("none",), seed: int = 0,
                   representation: str = "auto", memory_budget: Any = None,
                   dk: int | None = None, gamma: float = 1.0, blas_threads: int = 1,
                   warmup_fraction: float = 0.2, throughput_fraction: float = 0.25,
                   step_fraction: float | None = None,
                   progress: Any = None) -> list[dict[str, Any]]:
    """Benchmark samplers on one task: throughput, ESS per second, acceptance, memory.

    Every sampler runs with one temperature and ``replicas`` independent chains for
    ``budget_seconds`` of wall-clock time after an untimed warm-up (see the module
    docstring for the protocol). Each preconditioner in ``precondition`` gives one row
    per gradient sampler; the exact sampler has a single row (``precondition="none"``).
    A combination the model does not support (the exact sampler on the factored model
    or on the matrix-free representation; the dense preconditioner there) gives a row
    with ``status="skipped"`` and the reason in ``note``.

    Parameters
    ----------
    task_config : TaskConfig
        The task (D, N, P, K, λ, seed...); λ must be > 0.
    samplers : sequence of {"exact", "mala", "ula", "baoab"}
        Rows in this order (duplicates dropped).
    model : {"merged", "factored"}
    beta, temperature : float, optional
        Inverse temperature or temperature (at most one; default β = 10⁴). For the
        merged model the mixing per step does not depend on β (the Gaussian rescales).
    replicas : int
        Independent chains R (copies at the one temperature), >= 1.
    budget_seconds : float
        Timed wall-clock seconds per row, > 0 (warm-up and setup come on top: a row
        takes about 1.2× the budget plus setup).
    precondition : str or sequence of {"none", "diag", "dense"}
    seed : int
        Seed of the sampler streams and of the exact start.
    representation : {"auto", "dense", "matrix-free"}
    memory_budget : int, str or None
        For the automatic choice of representation (see :func:`spinicl.models.build_model`).
    dk : int, optional
        Rank of the factored model (default D+1).
    gamma : float
        BAOAB friction.
    blas_threads : int
        BLAS threads of the samplers (pinned during a run).
    warmup_fraction, throughput_fraction : float
        Burn-in time (untimed) and the share of the budget spent measuring the
        throughput without recording; the rest records every step for the ESS.
    step_fraction : float, optional
        Step size as a fraction of each sampler's stability bound, in (0, 1) (MALA: the
        start of its adaptation). Default: the library's default steps (ULA 0.1, BAOAB
        0.8 of the bound on the merged model).
    progress : callable, optional
        Called with each finished row (e.g. to print a line).

    Returns
    -------
    list of dict
        One row per (sampler, preconditioner) with the keys :data:`ROW_KEYS`:
        ``chain_steps_per_s`` (R × steps / s), ``ess_per_s_energy`` and
        ``ess_per_s_slowest`` (ESS pooled over chains per second), ``acceptance``,
        ``tau_int_energy``, ``tau_int_slowest``, ``peak_memory_mb``, and where an exact
        row exists ``ratio_energy``/``ratio_slowest`` (ESS/s over the exact sampler's
        samples/s) and ``speed_ratio`` (chain-steps/s over the exact sampler's).
        Floats that are undefined are None.

    Raises
    ------
    ConfigError
        For any invalid parameter, before any work starts.
    """
    from spinicl.models import build_model
    from spinicl.prompts import make_task

    if not isinstance(task_config, TaskConfig):
        raise ConfigError("task_config", "a TaskConfig", type(task_config).__name__)
    check_lam_for_sampling(task_config.lam)
    kinds = _check_samplers(samplers)
    model = check_choice("model", model, MODELS)
    if beta is not None and temperature is not None:
        raise ConfigError("beta", "given alone (not together with temperature)", beta)
    if temperature is not None:
        beta = 1.0 / check_float("temperature", temperature, low=0.0, low_open=True)
    beta = check_beta(DEFAULT_BETA if beta is None else beta)
    replicas = check_int("replicas", replicas, 1)
    budget = check_float("budget_seconds", budget_seconds, low=0.0, low_open=True)
    pre = _check_precond(precondition)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    representation = check_choice("representation", representation, REPRESENTATIONS)
    if dk is not None:
        dk = check_int("dk", dk, 1)
    gamma = check_float("gamma", gamma, low=0.0, low_open=True)
    blas_threads = check_int("blas_threads", blas_threads, 1)
    warmup_fraction = check_float("warmup_fraction", warmup_fraction, low=0.0)
    throughput_fraction = check_float("throughput_fraction", throughput_fraction,
                                      low=0.0, high=1.0, low_open=True, high_open=True)
    if step_fraction is not None:
        step_fraction = check_float("step_fraction", step_fraction, low=0.0, high=1.0,
                                    low_open=True, high_open=True,
                                    note="a fraction of the stability bound")
    if progress is not None and not callable(progress):
        raise ConfigError("progress", "a callable or None", type(progress).__name__)

    task = make_task(task_config, keep_test_context=False)
    ham = build_model(task, model, representation=representation,
                      memory_budget=memory_budget, dk=dk)
    obs = _Observables(ham, beta, replicas, seed)
    common = {"model": model, "representation": ham.representation, "D": task_config.D,
              "N": task_config.N, "P": task_config.P, "lam": task_config.lam, "beta": beta,
              "replicas": replicas, "slowest_eigenvalue": obs.slowest_eigenvalue}
    rows = []
    for kind in kinds:
        for p in (("none",) if registry.SAMPLERS[kind].exact_reference else pre):
            row = _bench_row(ham, kind, p, obs, beta=beta, replicas=replicas, budget=budget,
                             seed=seed, gamma=gamma, blas_threads=blas_threads,
                             warmup_fraction=warmup_fraction,
                             throughput_fraction=throughput_fraction,
                             step_fraction=step_fraction, common=common)
            rows.append(row)
            if progress is not None:
                progress({k: _clean(v) for k, v in row.items()})
    exact = next((r for r in rows if _is_reference(r) and r["status"] == "ok"), None)
    if exact is not None:
        ref = exact["chain_steps_per_s"]
        for r in rows:
            if r["status"] != "ok":
                continue
            r["ratio_energy"] = r["ess_per_s_energy"] / ref
            r["ratio_slowest"] = r["ess_per_s_slowest"] / ref
            r["speed_ratio"] = r["chain_steps_per_s"] / ref
    return [{k: _clean(v) for k, v in r.items()} for r in rows]


# --------------------------------------------------------------------------- table
def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "-"
    if kind == "s":
        return str(v)
    if kind == "f":
        return f"{v:.3f}"
    if kind == "m":
        return f"{v:.0f}"
    if kind == "r":
        return f"{v:.3g}x"
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_bench_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`bench_samplers` as a fixed-width text table.

    A header line names the task and the settings (from the first row); skipped or
    diverged rows show ``-`` and their reason below the table.

    Parameters
    ----------
    rows : sequence of dict

    Returns
    -------
    str
    """
    rows = list(rows)
    if not rows:
        return "(no rows)"
    head = [h for h, _, _ in TABLE_COLUMNS]
    body = [[_fmt(r.get(k), f) for _, k, f in TABLE_COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    r0 = rows[0]
    beta = r0.get("beta")
    out = [f"{r0.get('model')} model ({r0.get('representation')}), D={r0.get('D')}, "
           f"N={r0.get('N')}, P={r0.get('P')}, lam={r0.get('lam')}, beta={beta:g}, "
           f"R={r0.get('replicas')} chains; slowest active eigenvalue of A = "
           + (f"{r0['slowest_eigenvalue']:.4g}" if r0.get("slowest_eigenvalue") else "-"),
           line(head), line(["-" * w for w in widths])]
    out += [line(b) for b in body]
    notes = []
    exact = next((r["sampler"] for r in rows
                  if _is_reference(r) and r.get("status") == "ok"), None)
    if exact:
        notes.append(f"x/exact: ESS per second over the {exact} sampler's independent "
                     "samples per second (its chain-steps/s).")
    for r in rows:
        if r.get("note"):
            tag = "" if r.get("status") == "ok" else f"{r.get('status')}: "
            notes.append(f"{r['sampler']}/{r['precondition']}: {tag}{r['note']}")
    for name in dict.fromkeys(r.get("sampler") for r in rows if r.get("status") == "ok"):
        law = registry.stationary_law(name) if name in registry.SAMPLERS else None
        if law is not None:
            notes.append(f"{name} is biased at its finite step: {law.note}")
    slow = {r.get("slowest_observable") for r in rows if r.get("slowest_observable")}
    if slow and slow != {"proj_slowest_mode"}:
        notes.append("slowest observable (largest tau): " + ", ".join(
            f"{r['sampler']}/{r['precondition']}={r['slowest_observable']}"
            for r in rows if r.get("slowest_observable")))
    return "\n".join(out + notes)
