"""``spinicl bench --suite``: every sampler on every target, against known answers.

:func:`run_suite` runs spinicl's samplers, user samplers (:mod:`spinicl.user_sampler`)
and the peers of :mod:`spinicl.peers` (BlackJAX, NumPyro) on the targets of
:mod:`spinicl.targets`; :func:`format_suite_table` prints the rows, :func:`plot_suite`
draws them. docs/model.md §6 defines every column; in short, per (target, sampler) row:

Stationary phase (same protocol as :func:`spinicl.bench.bench_samplers`)
    R chains start from the same draws for every row — exact independent draws of the
    Boltzmann law on merged targets, the ground-state reference plus diagonal thermal
    noise on factored ones — then an untimed warm-up (compilation, step-size adaptation,
    ``warmup_fraction`` × the budget), a throughput phase without recording
    (``chain_steps_per_s`` = R × steps / s) and a mixing phase recording after every
    step the energy and the slow observables. τ_int and ESS come from
    :func:`spinicl.analysis.diagnostics.summarize`; ESS/s = ESS per chain-step ×
    chain-steps/s. The slowest observable is the projection (W − m)·u on the slowest
    active mode (merged) or, on factored targets, the one with the largest τ among the
    energy, the projections of the effective W = W_qᵀW_k on the merged model's slowest
    and largest active modes and on the identity, and Q = ‖W‖²/n (gauge invariant).
Bias
    Merged: z-scores of the energy mean against E(m) + n/(2β), of the slowest-mode mean
    against 0 and of its second moment against 1/(βλ_min), each with the standard error
    of the measured τ. Factored: the energy excess ⟨E⟩ − E_ref over the ground-state
    reference, also in units of the thermal scale n/(2β).
Time to reference
    From the random start N(0, 1/(D+1)) (the paper's training initialisation; the same
    draws for every row), with the sampler's own adaptation running, wall-clock seconds
    until the lowest energy among the R chains is ≤ E_ref + n/(2β) (E_ref: E(m) or the
    ground-state energy); None when the relaxation budget ran out first.

Rows built on replica exchange (``+re``) run the target's ladder with R copies per rung;
their chain-steps count the coldest rung's chains only, so the hotter rungs are paid for.
Compile and set-up times are reported apart (``setup_seconds``, and the peers'
``compile_seconds``, ``tuning_seconds``) and never enter a rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spinicl import registry
from spinicl.analysis.diagnostics import summarize, tau_int_stderr
from spinicl.bench import (
    MIN_BURN_IN,
    MIN_RECORDS,
    RELIABLE_RUN_IN_TAU,
    RELIABLE_TAU_ERROR,
    _block,
    _clean,
    _top_active_mode,
    slowest_active_mode,
)
from spinicl.config import ConfigError, check_float, check_int
from spinicl.targets import References, Target, build_target, resolve_targets
from spinicl.user_sampler import (
    SamplerTarget,
    UserSampler,
    acceptance_of,
    build_user_sampler,
    check_state,
    load_sampler,
    raised_by_the_sampler,
    validate,
)

#: Peers known to the suite (the adapters live in :mod:`spinicl.peers`).
KNOWN_PEERS = ("blackjax-mala", "blackjax-hmc", "numpyro-nuts")

#: Keys of every row.
ROW_KEYS = (
    "target", "sampler", "kind", "what", "library", "status", "note", "replicas",
    "setup_seconds", "compile_seconds", "tuning_seconds", "chain_steps_per_s",
    "acceptance", "step_size", "recorded_steps", "tau_int_energy", "tau_int_slowest",
    "slowest_observable", "ess_per_s_energy", "ess_per_s_slowest", "ratio_slowest",
    "tau_error", "tau_reliable", "z_energy", "z_slowest_mean", "z_slowest_second_moment",
    "max_abs_z", "energy_mean", "energy_excess", "energy_excess_thermal",
    "time_to_reference", "relaxation_steps", "relaxation_min_energy", "reached",
)


# --------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class SamplerSpec:
    """A spinicl row: ``NAME[/PRECONDITIONER][+re]`` (e.g. ``mala/diag+re``)."""

    kind: str
    precondition: str = "none"
    replica_exchange: bool = False

    @property
    def label(self) -> str:
        pre = "" if self.precondition == "none" else f"/{self.precondition}"
        return self.kind + pre + ("+re" if self.replica_exchange else "")


def parse_sampler_spec(text: str) -> SamplerSpec:
    """Parse ``NAME[/PRECONDITIONER][+re]`` (ConfigError ``samplers`` otherwise)."""
    allowed = ("NAME[/PRECONDITIONER][+re] with NAME in " + ", ".join(
        registry.sampler_names()) + " and PRECONDITIONER in "
        + ", ".join(registry.preconditioner_names()))
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("samplers", allowed, text)
    s = text.strip()
    re_ = s.endswith("+re")
    if re_:
        s = s[:-3]
    name, _, pre = s.partition("/")
    pre = pre or "none"
    if name not in registry.SAMPLERS or pre not in registry.PRECONDITIONERS:
        raise ConfigError("samplers", allowed, text)
    return SamplerSpec(name, pre, re_)


def parse_sampler_list(samplers: Any) -> tuple[SamplerSpec, ...]:
    """The rows of ``samplers``, a comma-separated string or a list, duplicates dropped
    (ConfigError ``samplers`` for a bad entry or a list without any)."""
    items = [x.strip() for x in samplers.split(",")] if isinstance(samplers, str) \
        else [str(x).strip() for x in samplers]
    specs = tuple(dict.fromkeys(parse_sampler_spec(x) for x in items if x))
    if not specs:
        raise ConfigError("samplers", "at least one NAME[/PRECONDITIONER][+re], e.g. "
                          "mala/diag (leave --samplers out for each target's own rows)",
                          samplers)
    return specs


def parse_peers(peers: Any) -> tuple[str, ...]:
    """Peer names from a comma-separated string or a list (ConfigError ``peers``)."""
    if peers is None:
        return ()
    if isinstance(peers, str):
        peers = [x.strip() for x in peers.split(",")]
    out = []
    for p in peers:
        p = str(p).strip()
        if not p:
            continue
        if p == "all":
            out.extend(KNOWN_PEERS)
        elif p not in KNOWN_PEERS:
            raise ConfigError("peers", "names among " + ", ".join(KNOWN_PEERS) + " (or all)",
                              p)
        else:
            out.append(p)
    return tuple(dict.fromkeys(out))


def peer_availability(names: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """The peers that can run and one message per peer that cannot.

    Returns
    -------
    usable : tuple of str
    messages : list of str
        ``"peer X skipped: needs jax, blackjax (pip install -e '.[bench]')"``.
    """
    if not names:
        return (), []
    try:
        from spinicl import peers as peer_module
    except ImportError as exc:
        return (), [f"peer {p} skipped: spinicl.peers is not available ({exc})"
                    for p in names]
    usable, msgs = [], []
    for p in names:
        missing = list(peer_module.missing_packages(p))
        if missing:
            msgs.append(f"peer {p} skipped: needs {', '.join(missing)} "
                        "(pip install -e '.[bench]')")
        else:
            usable.append(p)
    return tuple(usable), msgs


# --------------------------------------------------------------------------- recording
class Recorder:
    """The observables of a row, from positions: ``recorder(W) -> (R, k)``.

    Column 0 is the energy. Merged: then (W − m)·u (u the slowest active mode).
    Factored: the projections of W_eff = W_qᵀW_k on the merged model's slowest and
    largest active modes and on the identity, and Q = ‖W_eff‖²/(D+1)².
    """

    def __init__(self, model: Any, refs: References):
        self.model = model
        self.factored = not model.gaussian
        if self.factored:
            merged = model.merged
            _, self.u_slow = slowest_active_mode(merged)
            self.u_top = _top_active_mode(merged)
            d1 = model.D + 1
            self.u_id = np.eye(d1).ravel() / math.sqrt(d1)
            self.names = ("energy", "proj_slowest_mode", "proj_top_mode", "proj_identity",
                          "Q")
        else:
            self.u_slow = refs.slowest_mode
            self.shift = float(refs.mean @ refs.slowest_mode)
            self.names = ("energy", "proj_slowest_mode")

    def __call__(self, W: np.ndarray, energy: np.ndarray | None = None) -> np.ndarray:
        W = np.asarray(W, dtype=np.float64)
        if energy is None:
            energy = self.model.energy_and_grad(W)[0]
        if not self.factored:
            return np.stack([energy, W @ self.u_slow - self.shift], axis=1)
        We = self.model.effective_weights(W)
        return np.stack([energy, We @ self.u_slow, We @ self.u_top, We @ self.u_id,
                         np.einsum("ri,ri->r", We, We) / We.shape[1]], axis=1)


def stationary_start(model: Any, refs: References, replicas: int, seed: int) -> np.ndarray:
    """The shared start of the stationary phase, (R, n): exact draws (merged) or the
    ground-state factors plus N(0, 1/(β H_ii)) noise (factored), seeded by ``seed``."""
    if refs.kind == "gaussian":
        return refs.exact_draws(replicas, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    d = model.diag_curvature()
    z = rng.standard_normal((replicas, refs.n))
    return refs.ground_factors[None, :] + z / np.sqrt(refs.beta * d[None, :])


def random_start(model: Any, replicas: int, seed: int) -> np.ndarray:
    """The shared start of the relaxation phase, (R, n): i.i.d. N(0, 1/(D+1))."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9]))
    return rng.normal(0.0, 1.0 / math.sqrt(model.D + 1), (replicas, model.n_spins))


# --------------------------------------------------------------------------- chains
class _SpiniclChains:
    """A spinicl sampler behind the suite's minimal interface."""

    def __init__(self, model: Any, spec: SamplerSpec, target: Target, replicas: int,
                 seed: int):
        from spinicl.samplers import Ladder, make_sampler

        self.replicas = replicas
        if spec.replica_exchange:
            temps = target.ladder_temperatures or (1.0 / target.beta,)
            ladder = Ladder.from_temperatures(temps)
        else:
            ladder = Ladder.from_betas([target.beta])
        self.sampler = make_sampler(model, spec.kind, ladder=ladder, copies=replicas,
                                    precondition=spec.precondition, seed=seed,
                                    adapt_ladder=spec.replica_exchange and ladder.n_temps > 2,
                                    blas_threads=1, threads=1)

    def init(self, start: np.ndarray) -> Any:
        return self.sampler.init(np.tile(start, (self.sampler.n_temps, 1)))

    def run(self, state: Any, n: int, burn_in: bool = False) -> tuple[Any, None]:
        return self.sampler.run(state, n, burn_in=burn_in)[0], None

    def cold(self, state: Any) -> tuple[np.ndarray, np.ndarray | None]:
        return state.W[: self.replicas], state.energy[: self.replicas]

    def accepted(self, state: Any) -> float:
        return float(np.sum(state.accepted[: self.replicas]))

    def step_size(self, state: Any) -> float:
        return float(state.step_size[0])


class _UserChains:
    """A user sampler behind the same interface (acceptance from ``info.acceptance``)."""

    def __init__(self, user: UserSampler, starget: SamplerTarget, replicas: int, seed: int):
        self.user = user
        self.sampler = build_user_sampler(user, starget)
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 13]))
        self.replicas = replicas
        self.n = starget.n
        self._acc = 0.0

    def init(self, start: np.ndarray) -> Any:
        state = self.sampler.init(np.array(start, copy=True))
        check_state(self.user, state, (self.replicas, self.n))
        return state

    def run(self, state: Any, n: int, burn_in: bool = False) -> tuple[Any, None]:
        step = self.sampler.step
        acc = 0.0
        for _ in range(n):  # the user's step is the unit of work; one call per step
            state, info = step(self.rng, state)
            acc += acceptance_of(info)
        self._acc += acc * self.replicas
        return state, None

    def cold(self, state: Any) -> tuple[np.ndarray, None]:
        return np.asarray(state.position), None

    def accepted(self, state: Any) -> float:
        return self._acc

    def step_size(self, state: Any) -> float:
        return math.nan


def _measure_stationary(chains: Any, recorder: Recorder, start: np.ndarray, budget: float,
                        warmup_fraction: float, throughput_fraction: float
                        ) -> dict[str, Any]:
    """Warm-up, throughput and mixing phases (:mod:`spinicl.bench`'s protocol)."""
    R = start.shape[0]
    t0 = time.perf_counter()
    state = chains.init(start)
    state, _ = chains.run(state, 1, True)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    state, _ = chains.run(state, 4, True)
    step_time = (time.perf_counter() - t1) / 4
    state, burn, _ = _block(chains, state, warmup_fraction * budget, step_time,
                            MIN_BURN_IN, True)
    acc0 = chains.accepted(state)
    state, steps_a, secs_a = _block(chains, state, throughput_fraction * budget, step_time,
                                    1, False)
    rate = R * steps_a / secs_a
    records = []
    rec_budget = (1.0 - throughput_fraction) * budget
    t2 = time.perf_counter()
    while time.perf_counter() - t2 < rec_budget or len(records) < MIN_RECORDS:
        state, _ = chains.run(state, 1)
        records.append(recorder(*chains.cold(state)))
    total = steps_a + len(records)
    return {"setup_seconds": setup, "chain_steps_per_s": rate, "step_time": step_time,
            "trace": np.stack(records), "burn_in_steps": burn + 5,
            "acceptance": (chains.accepted(state) - acc0) / (R * total),
            "step_size": chains.step_size(state)}


def _measure_relaxation(chains: Any, recorder: Recorder, start: np.ndarray,
                        threshold: float, budget: float, step_time: float
                        ) -> dict[str, Any]:
    """Seconds until the lowest chain energy is ≤ ``threshold`` (adaptation on).

    The energy is checked after 1, 2, 4, ... steps, then every ~20 ms of sampling, so
    the time resolution is fine where relaxations are short."""
    state = chains.init(start)
    largest = max(1, int(0.02 / max(step_time, 1e-9)))
    chunk = 1           # checks after 1, 2, 4, ... steps, then every ~20 ms of sampling
    steps = 0
    t0 = time.perf_counter()
    emin = math.inf
    while True:
        state, _ = chains.run(state, chunk, True)
        steps += chunk
        chunk = min(2 * chunk, largest)
        W, E = chains.cold(state)
        if E is None:
            E = recorder.model.energy_and_grad(W)[0]
        emin = min(emin, float(np.min(E)))
        elapsed = time.perf_counter() - t0
        if emin <= threshold:
            return {"time_to_reference": elapsed, "reached": True,
                    "relaxation_steps": steps, "relaxation_min_energy": emin}
        if elapsed >= budget:
            return {"time_to_reference": None, "reached": False,
                    "relaxation_steps": steps, "relaxation_min_energy": emin}


# --------------------------------------------------------------------------- statistics
def trace_statistics(trace: np.ndarray, names: Sequence[str], refs: References,
                     rate: float) -> dict[str, Any]:
    """τ, ESS/s and bias of a recorded trace (T, R, k) (column 0: the energy).

    Parameters
    ----------
    trace : ndarray, shape (T, R, k)
        Observables after consecutive steps of R chains.
    names : sequence of str
        The k observable names (:class:`Recorder`).
    refs : References
    rate : float
        Chain-steps per second of the row's throughput phase.

    Returns
    -------
    dict
        ``tau_int_energy``, ``tau_int_slowest``, ``slowest_observable``,
        ``ess_per_s_energy``, ``ess_per_s_slowest``, ``tau_error``, ``tau_reliable``,
        ``energy_mean`` and the bias keys (merged: ``z_energy``, ``z_slowest_mean``,
        ``z_slowest_second_moment``, ``max_abs_z``; factored: ``energy_excess``,
        ``energy_excess_thermal``).
    """
    trace = np.asarray(trace, dtype=np.float64)
    T, R, _ = trace.shape
    frozen = frozen_chains(trace)
    energy_mean = float(np.mean(trace[:, :, 0]))
    out: dict[str, Any] = {"recorded_steps": T, "frozen_chains": frozen,
                           "energy_mean": energy_mean}
    if refs.kind != "gaussian":
        excess = energy_mean - refs.reference_energy
        out.update(energy_excess=excess, energy_excess_thermal=excess / refs.thermal_energy)
    if frozen == R:
        # No chain moved: no autocorrelation to measure, no information on the law.
        out.update(tau_int_energy=None, tau_int_slowest=None, ess_per_s_energy=0.0,
                   ess_per_s_slowest=0.0, tau_error=None, tau_reliable=False,
                   slowest_observable="proj_slowest_mode" if refs.kind == "gaussian"
                   else None)
        return out
    stats = {nm: summarize(trace[:, :, i]) for i, nm in enumerate(names)}
    if refs.kind == "gaussian":
        slow = "proj_slowest_mode"
    else:
        slow = max(names, key=lambda k: _finite_or(stats[k]["tau_int"], -math.inf))
    se, ss = stats["energy"], stats[slow]
    err_e = _ratio(tau_int_stderr(trace[:, :, 0]), se["tau_int"])
    err_s = _ratio(tau_int_stderr(trace[:, :, list(names).index(slow)]), ss["tau_int"])
    tau_max = max(se["tau_int"], ss["tau_int"])
    per_step = rate / (T * R)
    out.update({"tau_int_energy": se["tau_int"],
                "tau_int_slowest": ss["tau_int"], "slowest_observable": slow,
                "ess_per_s_energy": se["ess"] * per_step,
                "ess_per_s_slowest": ss["ess"] * per_step,
                "tau_error": max(err_e, err_s),
                "tau_reliable": bool(frozen == 0 and T >= RELIABLE_RUN_IN_TAU * tau_max
                                     and max(err_e, err_s) <= RELIABLE_TAU_ERROR)})
    if refs.kind == "gaussian":
        proj = trace[:, :, list(names).index("proj_slowest_mode")]
        sq = summarize(proj**2)
        z = {"z_energy": _ratio(se["mean"] - refs.energy_mean, se["stderr"]),
             "z_slowest_mean": _ratio(stats["proj_slowest_mode"]["mean"],
                                      stats["proj_slowest_mode"]["stderr"]),
             "z_slowest_second_moment": _ratio(sq["mean"] - refs.slowest_variance,
                                               sq["stderr"])}
        out.update(z, max_abs_z=max(abs(v) for v in z.values()))
    return out


def frozen_chains(trace: np.ndarray) -> int:
    """How many of the R chains of a trace (T, R, k) never change over it: every
    recorded observable (the energy among them) equal to its first record. A chain
    that moves changes its energy (a continuous function of the position) at once."""
    trace = np.asarray(trace)
    if trace.shape[0] < 2:
        return 0
    moved = np.any(trace[1:] != trace[:1], axis=(0, 2))
    return int(trace.shape[1] - np.count_nonzero(moved))


def _ratio(a: float, b: float) -> float:
    """a / b, NaN where b is 0 or not finite (a series without variance)."""
    return float(a) / float(b) if b and math.isfinite(b) else math.nan


def _finite_or(x: float, default: float) -> float:
    return x if math.isfinite(x) else default


# --------------------------------------------------------------------------- rows
def _row(target: Target, label: str, kind: str, what: str, replicas: int) -> dict[str, Any]:
    row = dict.fromkeys(ROW_KEYS)
    row.update(target=target.name, sampler=label, kind=kind, what=what, status="ok",
               note="", replicas=replicas)
    return row


def _describe(spec: SamplerSpec, target: Target) -> str:
    pre = {"none": "no preconditioner", "diag": "diagonal preconditioner",
           "dense": "dense A^-1 preconditioner"}[spec.precondition]
    text = f"spinicl {spec.kind}, {pre}"
    if spec.replica_exchange:
        n = len(target.ladder_temperatures) or 1
        text += (f", replica exchange over {n} rungs (T = {1 / target.beta:g} .. "
                 f"{max(target.ladder_temperatures or (1 / target.beta,)):g}, adapted "
                 "during warm-up); the cost of every rung is charged")
    return text


def _finish(row: dict[str, Any], stat: dict[str, Any], trace: np.ndarray,
            recorder: Recorder, refs: References) -> None:
    row.update({k: stat.get(k) for k in ("setup_seconds", "acceptance", "step_size",
                                         "chain_steps_per_s")})
    _statistics(row, trace, recorder, refs, stat["chain_steps_per_s"])


def _statistics(row: dict[str, Any], trace: np.ndarray, recorder: Recorder,
                refs: References, rate: float) -> None:
    """:func:`trace_statistics` into ``row``; status ``stuck`` (ESS 0) when no chain
    moved over the recorded stretch, a note when some did not."""
    st = trace_statistics(trace, recorder.names, refs, rate)
    frozen = st.pop("frozen_chains")
    row.update(st)
    R, T = np.shape(trace)[1], st["recorded_steps"]
    if frozen == R:
        row.update(status="stuck", note=_join(
            row["note"], f"no chain moved over the {T} recorded steps (each kept its start): "
            "ESS 0, relaxation not measured"))
    elif frozen:
        row["note"] = _join(row["note"], f"{frozen} of {R} chains never moved over the "
                            f"{T} recorded steps: tau and ESS unreliable")
    elif not row["tau_reliable"]:
        row["note"] = _join(row["note"], "tau uncertain: raise the budget")


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _spinicl_row(model, refs, target, spec, recorder, starts, *, replicas, seed, budget,
                 relax_seconds, warmup_fraction, throughput_fraction) -> dict[str, Any]:
    from spinicl.samplers import SamplerDivergence

    row = _row(target, spec.label, "spinicl", _describe(spec, target), replicas)
    row["library"] = "spinicl"
    if spec.replica_exchange and not target.ladder_temperatures:
        row.update(status="skipped", note="this target has no replica-exchange ladder")
        return row
    try:
        chains = _SpiniclChains(model, spec, target, replicas, seed)
    except ConfigError as exc:
        row.update(status="skipped", note=str(exc))
        return row
    try:
        stat = _measure_stationary(chains, recorder, starts[0], budget, warmup_fraction,
                                   throughput_fraction)
        _finish(row, stat, stat["trace"], recorder, refs)
        if row["status"] == "ok":
            row.update(_measure_relaxation(chains, recorder, starts[1],
                                           refs.reference_energy + refs.thermal_energy,
                                           relax_seconds, stat["step_time"]))
    except SamplerDivergence as exc:
        row.update(status="diverged", note=str(exc).splitlines()[0])
    return row


def _user_row(model, refs, target, user, recorder, starts, *, replicas, seed, budget,
              relax_seconds, warmup_fraction, throughput_fraction) -> dict[str, Any]:
    row = _row(target, user.label, "user", f"user sampler {user.spec}", replicas)
    row["library"] = user.spec.partition(":")[0]
    starget = SamplerTarget.from_model(target.name, model, target.beta)
    try:
        chains = _UserChains(user, starget, replicas, seed)
        stat = _measure_stationary(chains, recorder, starts[0], budget, warmup_fraction,
                                   throughput_fraction)
        _finish(row, stat, stat["trace"], recorder, refs)
        if row["status"] == "ok":
            chains = _UserChains(user, starget, replicas, seed)
            row.update(_measure_relaxation(chains, recorder, starts[1],
                                           refs.reference_energy + refs.thermal_energy,
                                           relax_seconds, stat["step_time"]))
    except ConfigError as exc:  # checked before any measurement: the sampler changed
        row.update(status="failed", note=str(exc).splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - a user sampler failing mid-run
        row.update(status="failed", note=f"{type(exc).__name__}: {exc}".splitlines()[0])
    except BaseException as exc:  # sys.exit in a step; a real interrupt goes on
        if not raised_by_the_sampler(exc):
            raise
        row.update(status="failed", note=f"{type(exc).__name__}: {exc}".splitlines()[0])
    if not np.isfinite(row.get("energy_mean") or 0.0):
        row.update(status="diverged", note=_join(row["note"], "non-finite energies"))
    return row


def _peer_row(model, refs, target, name, recorder, starts, *, replicas, seed, budget,
              relax_seconds) -> dict[str, Any]:
    from spinicl import peers as peer_module

    row = _row(target, name, "peer", f"peer {name}", replicas)
    threshold = refs.reference_energy + refs.thermal_energy
    try:
        res = peer_module.run_peer(name, model, target.beta, starts[0], seed=seed,
                                   budget_seconds=budget, record=recorder,
                                   mode="stationary", threads=1)
        row.update(library=res.get("library"), compile_seconds=res.get("compile_seconds"),
                   tuning_seconds=res.get("tuning_seconds"),
                   chain_steps_per_s=res.get("chain_steps_per_s"),
                   acceptance=res.get("acceptance"), step_size=res.get("step_size"),
                   note=res.get("notes") or "")
        _statistics(row, res["trace"], recorder, refs, float(res["chain_steps_per_s"]))
        if row["status"] != "ok":
            return row
        rel = peer_module.run_peer(name, model, target.beta, starts[1], seed=seed,
                                   budget_seconds=relax_seconds, record=recorder,
                                   mode="relaxation", threads=1, reference_energy=threshold)
        row.update(relaxation_from_trace(rel["trace"], rel["times"], threshold))
    except Exception as exc:  # noqa: BLE001 - an optional peer library failing
        row.update(status="failed", note=f"{type(exc).__name__}: {exc}".splitlines()[0])
    return row


def relaxation_from_trace(trace: np.ndarray, times: np.ndarray, threshold: float
                          ) -> dict[str, Any]:
    """Time to reference from a relaxation record: the first time at which the lowest
    energy (column 0) among the chains is ≤ ``threshold``; None when never."""
    E = np.asarray(trace)[:, :, 0]
    emin = np.min(E, axis=1)
    hit = np.flatnonzero(emin <= threshold)
    times = np.asarray(times, dtype=np.float64)
    if hit.size:
        return {"time_to_reference": float(times[hit[0]]), "reached": True,
                "relaxation_steps": None, "relaxation_min_energy": float(np.min(emin))}
    return {"time_to_reference": None, "reached": False, "relaxation_steps": None,
            "relaxation_min_energy": float(np.min(emin)) if emin.size else None}


# --------------------------------------------------------------------------- suite
def run_suite(targets: Any = None, samplers: Any = None, peers: Any = (),
              user_samplers: Sequence[str | UserSampler] = (), *,
              budget_seconds: float = 5.0, replicas: int = 16, seed: int = 0,
              relax_seconds: float | None = None, warmup_fraction: float = 0.2,
              throughput_fraction: float = 0.25,
              progress: Callable[[dict[str, Any]], None] | None = None,
              notify: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every chosen sampler on every chosen target.

    Parameters
    ----------
    targets : str, sequence of str or None
        Target names or groups (:func:`spinicl.targets.resolve_targets`); None: all.
    samplers : str, sequence of str or None
        spinicl rows, ``NAME[/PRECONDITIONER][+re]`` (comma-separated or a list); None:
        each target's own defaults (``Target.samplers``); an empty list: no spinicl
        rows (peers or user samplers only). A combination a target does not support
        (``exact`` on a factored target) gives a ``skipped`` row.
    peers : str or sequence of str
        Among :data:`KNOWN_PEERS` (or ``"all"``); a peer whose packages are missing is
        skipped with one message through ``notify``.
    user_samplers : sequence of str or UserSampler
        ``"module:factory"`` specs (:mod:`spinicl.user_sampler`); each is built,
        initialised and stepped once on every chosen target before any measurement
        (:func:`spinicl.user_sampler.validate`).
    budget_seconds : float
        Timed seconds of each row's stationary phase (> 0).
    replicas : int
        Chains R per row (>= 2).
    seed : int
        Seed of the starts, of every sampler and of the peers (recorded in the output).
    relax_seconds : float, optional
        Budget of the relaxation from the random start (default ``budget_seconds``).
    warmup_fraction, throughput_fraction : float
        As in :func:`spinicl.bench.bench_samplers`.
    progress : callable, optional
        Called with each finished row.
    notify : callable, optional
        Called with each one-line message (skipped peers).

    Returns
    -------
    dict
        ``settings``, ``targets`` (each with its references' summary), ``rows`` (keys
        :data:`ROW_KEYS`), ``messages``. Undefined floats are None.

    Raises
    ------
    ConfigError
        For an invalid argument, before any measurement.
    """
    chosen = resolve_targets(targets)
    specs = None
    if samplers is not None:
        # an empty list (not a string) asks for no spinicl rows: peers or users only
        specs = (() if not isinstance(samplers, str) and len(samplers) == 0
                 else parse_sampler_list(samplers))
    peer_names = parse_peers(peers)
    users = tuple(u if isinstance(u, UserSampler) else load_sampler(u)
                  for u in (user_samplers or ()))
    if specs == () and not peer_names and not users:
        raise ConfigError("samplers", "at least one row: spinicl samplers, peers or user "
                          "samplers", "none")
    budget = check_float("seconds", budget_seconds, low=0.0, low_open=True)
    relax = budget if relax_seconds is None else check_float(
        "relax_seconds", relax_seconds, low=0.0, low_open=True)
    replicas = check_int("replicas", replicas, 2)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    warmup_fraction = check_float("warmup_fraction", warmup_fraction, low=0.0)
    throughput_fraction = check_float("throughput_fraction", throughput_fraction, low=0.0,
                                      high=1.0, low_open=True, high_open=True)
    usable_peers, messages = peer_availability(peer_names)
    for m in messages:
        if notify is not None:
            notify(m)

    # Every target first: a user sampler is refused (built, initialised and stepped on
    # each target) before anything is measured.
    built = []
    for target in chosen:
        t0 = time.perf_counter()
        model, refs = build_target(target)
        ref_seconds = time.perf_counter() - t0
        starts = (stationary_start(model, refs, replicas, seed),
                  random_start(model, replicas, seed))
        if users:
            starget = SamplerTarget.from_model(target.name, model, target.beta)
            for u in users:
                validate(u, starget, starts[0], seed, other_starts=(starts[1],))
        built.append((target, model, refs, ref_seconds, starts))

    out_targets, rows = [], []
    while built:    # popped, so that each target's arrays are freed after its rows
        target, model, refs, ref_seconds, starts = built.pop(0)
        recorder = Recorder(model, refs)
        info = target.as_dict()
        info["references"] = refs.summary()
        info["reference_seconds"] = ref_seconds
        info["reach_threshold"] = refs.reference_energy + refs.thermal_energy
        info["condition_number"] = refs.condition_number
        out_targets.append(info)
        kw = {"replicas": replicas, "seed": seed, "budget": budget, "relax_seconds": relax}
        target_rows = []
        for spec in (specs if specs is not None else
                     tuple(parse_sampler_spec(s) for s in target.samplers)):
            target_rows.append(_spinicl_row(model, refs, target, spec, recorder, starts,
                                            warmup_fraction=warmup_fraction,
                                            throughput_fraction=throughput_fraction, **kw))
            _emit(progress, target_rows[-1])
        for u in users:
            target_rows.append(_user_row(model, refs, target, u, recorder, starts,
                                         warmup_fraction=warmup_fraction,
                                         throughput_fraction=throughput_fraction, **kw))
            _emit(progress, target_rows[-1])
        for p in usable_peers:
            target_rows.append(_peer_row(model, refs, target, p, recorder, starts, **kw))
            _emit(progress, target_rows[-1])
        exact = next((r for r in target_rows if r["sampler"] == "exact"
                      and r["status"] == "ok"), None)
        if exact is not None:
            for r in target_rows:
                if r["status"] == "ok" and r.get("ess_per_s_slowest") is not None:
                    r["ratio_slowest"] = r["ess_per_s_slowest"] / exact["chain_steps_per_s"]
        rows.extend(target_rows)
    settings = {"budget_seconds": budget, "relax_seconds": relax, "replicas": replicas,
                "seed": seed, "warmup_fraction": warmup_fraction,
                "throughput_fraction": throughput_fraction,
                "samplers": None if specs is None else [s.label for s in specs],
                "peers": list(peer_names), "user_samplers": [u.spec for u in users]}
    return {"settings": settings, "targets": [_clean_tree(t) for t in out_targets],
            "rows": [{k: _clean(r.get(k)) for k in ROW_KEYS} for r in rows],
            "messages": messages}


def _emit(progress: Callable | None, row: dict[str, Any]) -> None:
    if progress is not None:
        progress({k: _clean(row.get(k)) for k in ROW_KEYS})


def _clean_tree(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_tree(v) for v in obj]
    return _clean(obj)


# --------------------------------------------------------------------------- output
def format_target_list() -> str:
    """One line per target: name, n, condition number, β, description."""
    from spinicl.targets import TARGETS

    lines = [f"{'target':<18} {'n':>6} {'cond':>8} {'beta':>7}  description"]
    for t in TARGETS.values():
        cond = "-" if not math.isfinite(t.condition_number) else f"{t.condition_number:.3g}"
        lines.append(f"{t.name:<18} {t.n:>6} {cond:>8} {t.beta:>7g}  {t.description}"
                     + ("" if t.group == "main" else "  [tiny]"))
    lines.append("cond: lambda_max/lambda_min of A on the active spins (merged targets; a "
                 "factored target has none)")
    lines.append("groups: all (every main target), tiny (the test targets)")
    return "\n".join(lines)


def _f(v: Any, spec: str = ".3g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    return format(v, spec)


def _bias(r: dict[str, Any]) -> str:
    if r.get("max_abs_z") is not None:
        return f"|z|<={r['max_abs_z']:.2f}"
    if r.get("energy_excess_thermal") is not None:
        return f"{r['energy_excess_thermal']:+.2f} nT/2"
    return "-"


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


SUITE_COLUMNS = ("sampler", "chain-steps/s", "ESS/s E", "ESS/s slow", "x exact", "bias",
                 "t->ref s", "accept", "setup s")


def format_suite_table(result: dict[str, Any]) -> str:
    """The rows of :func:`run_suite` as text: one block per target."""
    rows = result.get("rows", [])
    out = []
    s = result.get("settings", {})
    out.append(f"spinicl sampler suite: R = {s.get('replicas')} chains, "
               f"{s.get('budget_seconds')} s timed per row, relaxation budget "
               f"{s.get('relax_seconds')} s, seed {s.get('seed')}")
    for t in result.get("targets", []):
        ref = t["references"]
        head = f"\n{t['name']}: {t['description']}\n  n = {ref['n']}, beta = {ref['beta']:g}, "
        if ref["kind"] == "gaussian":
            head += (f"condition number {_f(ref['condition_number'])}, "
                     f"E(m) = {ref['reference_energy']:.6g}, <E> = "
                     f"{ref['energy_mean']:.6g}, slowest eigenvalue "
                     f"{ref['slowest_eigenvalue']:.4g}")
        else:
            head += (f"ground-state reference E = {ref['reference_energy']:.6g} "
                     f"({ref['kind']})")
        head += f"; reached when min chain E <= {t['reach_threshold']:.6g}"
        out.append(head)
        body = []
        for r in (r for r in rows if r["target"] == t["name"]):
            setup = r.get("setup_seconds")
            if r["kind"] == "peer":
                setup = (r.get("compile_seconds") or 0.0) + (r.get("tuning_seconds") or 0.0)
            if r["status"] == "stuck":     # measured: it runs, and never moves
                body.append([r["sampler"], _f(r["chain_steps_per_s"], ".4g"), "0", "0",
                             "-", "stuck", "-", _f(r.get("acceptance"), ".2f"),
                             _f(setup, ".2f")])
                continue
            if r["status"] != "ok":
                body.append([r["sampler"], r["status"]] + [""] * (len(SUITE_COLUMNS) - 2))
                continue
            body.append([r["sampler"] + ("" if r.get("tau_reliable") else " †"),
                         _f(r["chain_steps_per_s"], ".4g"), _f(r["ess_per_s_energy"], ".4g"),
                         _f(r["ess_per_s_slowest"], ".4g"), _f(r.get("ratio_slowest"), ".3f"),
                         _bias(r), _f(r.get("time_to_reference"), ".3g")
                         if r.get("reached") else "not reached",
                         _f(r.get("acceptance"), ".2f"), _f(setup, ".2f")])
        if not body:
            continue
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(SUITE_COLUMNS)]
        out += ["  " + _line(list(SUITE_COLUMNS), widths),
                "  " + _line(["-" * w for w in widths], widths)]
        out += ["  " + _line(b, widths) for b in body]
        for r in (r for r in rows if r["target"] == t["name"]):
            if r.get("note"):
                out.append(f"  {r['sampler']}: {r['note']}")
    out.append("\n† tau uncertain (relative error > 20 % or run < 20 tau). x exact: ESS/s of "
               "the slowest observable over the exact sampler's samples/s. bias: max |z| "
               "against the exact moments (merged) or <E> - E_ref in units of n/(2 beta) "
               "(factored). t->ref: seconds from the random start until the lowest chain "
               "energy is within n/(2 beta) of the reference. setup s: set-up and first "
               "compiled step (peers: compile + tuning), never in a rate.")
    return "\n".join(out)


def plot_suite(result: dict[str, Any], out: str) -> list[str]:
    """Figure: ESS/s of the slowest observable and time to reference, per target and
    sampler (log scales), written by :func:`spinicl.plots.style.save_figure` (``.png`` or
    ``.pdf``: both, no suffix: ``out.png`` and ``out.pdf``; the files carry spinicl's
    mark). Check ``out`` first with :func:`spinicl.plots.style.check_figure_outputs`.
    Returns the paths written."""
    from matplotlib import colormaps

    from spinicl.plots.style import new_figure, save_figure

    rows = [r for r in result["rows"] if r["status"] == "ok"]
    targets = [t["name"] for t in result["targets"]]
    labels = list(dict.fromkeys(r["sampler"] for r in rows))
    fig = new_figure(13, 5.4)
    axes = fig.subplots(1, 2)
    width = 0.8 / max(1, len(labels))
    cmap = colormaps["tab20"]
    kinds = {r["sampler"]: r["kind"] for r in rows}
    for k, lab in enumerate(labels):
        xs, ess, ttr, miss = [], [], [], []
        for i, t in enumerate(targets):
            r = next((r for r in rows if r["target"] == t and r["sampler"] == lab), None)
            if r is None:
                continue
            x = i + (k - (len(labels) - 1) / 2) * width
            if r.get("ess_per_s_slowest"):
                xs.append(x)
                ess.append(r["ess_per_s_slowest"])
            if r.get("reached"):
                ttr.append((x, r["time_to_reference"]))
            else:
                miss.append(x)
        style = {"color": cmap(k % 20), "hatch": "//" if kinds[lab] == "peer" else None,
                 "edgecolor": "white", "linewidth": 0}
        axes[0].bar(xs, ess, width, label=lab + (" (peer)" if kinds[lab] == "peer" else
                                                 " (user)" if kinds[lab] == "user" else ""),
                    **style)
        if ttr:
            axes[1].bar([a for a, _ in ttr], [b for _, b in ttr], width, **style)
        if miss:
            top = result["settings"]["relax_seconds"]
            axes[1].scatter(miss, [top] * len(miss), marker="x", color=cmap(k % 20))
    for ax, title in ((axes[0], "ESS/s of the slowest observable"),
                      (axes[1], "seconds to reach the reference (x: not reached)")):
        if ax.has_data():
            ax.set_yscale("log")
        ax.set_xticks(range(len(targets)))
        ax.set_xticklabels(targets, rotation=25, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="outside lower center",
                   ncol=min(6, max(1, len(names))), fontsize=8, frameon=False)
    s = result["settings"]
    fig.suptitle(f"spinicl sampler suite: R = {s['replicas']} chains, "
                 f"{s['budget_seconds']:g} s per row (hatched: peers)", fontsize=11)
    return save_figure(fig, out)


__all__ = ["KNOWN_PEERS", "ROW_KEYS", "Recorder", "SamplerSpec", "format_suite_table",
           "format_target_list", "frozen_chains", "parse_peers", "parse_sampler_list",
           "parse_sampler_spec", "peer_availability",
           "plot_suite", "random_start", "relaxation_from_trace", "run_suite",
           "stationary_start", "trace_statistics"]
