"""Peer samplers on a spinicl model: BlackJAX MALA, BlackJAX HMC and NumPyro NUTS.

Optional adapters (the extra ``bench``: jax, blackjax, numpyro) that run another library's
kernel on exactly the Boltzmann law p_β(x) ∝ exp(−βE(x)) a spinicl model defines, from
the caller's starting positions, so that its numbers land in the same table as spinicl's
own samplers. Nothing here imports JAX at module level: ``import spinicl.peers`` works
without the optional packages, :func:`missing_packages` says what a peer lacks, and
:func:`run_peer` imports them when it runs.

The target
----------
:func:`jax_energy` writes E(x) in JAX from the model's public data (docs/model.md §1.3–1.5),
equal to ``model.energy_and_grad`` to rounding (≤ 1e-15 relative measured), for every model
kind: merged dense (E = ½xᵀA₀x − hᵀx + e₀ + (λ/2)‖x‖², the Gram A₀ and field h of
the data term), merged matrix-free (through the prompt factors c, q and labels y, blocked
over prompts like spinicl's own kernel: the n × n Gram is never formed) and factored
(x = (vec W_q, vec W_k), E = E₀(W_qᵀW_k) + (λ/2)‖x‖²). By default the gradient is
written by hand and attached with ``jax.custom_jvp`` — one pass over the data per
gradient, as spinicl's kernels do (``W A₀`` once, not twice as reverse-mode autodiff of
the quadratic form does); ``gradient="autodiff"`` leaves it to ``jax.grad``. The log
density handed to the peer is −βE; NumPyro's potential is βE. The model's data arrays are
arguments of the compiled functions, never constants folded into them.

Protocol of :func:`run_peer`
----------------------------
The R chains start from the caller's positions (the same ones every sampler gets).
Compilation (ahead of time, ``jax.jit(...).lower(...).compile()``) is never timed and is
reported as ``compile_seconds``. Steps run in one compiled block (a ``lax.fori_loop`` over
a number of steps given at run time; the block grows until it lasts about
``min(0.25 s, budget/50)``, or is ``block_steps`` long) that can also write the
positions after every ``thin``-th step into a buffer on the device (donated to each
call and reused: nothing is allocated per block, and nothing is written when nothing is
recorded).

* ``mode="stationary"``: untimed tuning from ``start`` (``tuning_seconds``), then ¼ of the
  budget of throughput without recording (chain_steps_per_s = R·steps/seconds; ``cores``
  = process CPU time / wall time of this phase), then ¾ of the budget recording
  ``record`` after every step: a block keeps the positions of its steps and they are
  copied to the host at once. A block holds at most ``HOST_COPY_BYTES`` (64 MiB) of
  positions (and at most ``MAX_RECORD_SLOTS``); when fewer than ``MIN_RECORD_BLOCK``
  steps fit, it keeps every ``thin``-th step instead (``thin`` is reported; 1 unless
  R·n forces it; τ from the trace is then in units of ``thin`` steps). At least
  ``MIN_RECORDS`` records are taken.
* ``mode="relaxation"``: the clock starts at ``start``; the peer's own adaptation is part
  of the timed run (time to a reference includes tuning). ``record`` is applied to the
  start (time 0) and after every block, and the run stops at the budget or as soon as the
  smallest first column of a record over the chains (the energy) is ≤
  ``reference_energy``. The first blocks are one step long and grow, so the time
  resolution is a block (≤ about budget/50).

The clock: ``times`` are seconds since the start of the timed phase on a clock that runs
while the peer computes; the caller's ``record`` (and the copy of the positions it reads)
is not charged, neither in ``times`` nor against the budget, so a call lasts the budget
plus the time spent in ``record`` (plus compilation and untimed tuning). Stationary
``times`` within a recording block are interpolated linearly over the block.

The peers
---------
* ``blackjax-mala``: ``blackjax.mala`` (no mass matrix, like spinicl's ``mala`` without
  preconditioner); its step size tuned by spinicl's own rule: log ε follows a
  Robbins–Monro step toward mean acceptance 0.574 over the chains during the first
  ``tuning_steps`` (default 500) steps, then frozen; it starts from spinicl's initial
  step (1.36 n^(−1/3) over the curvature bound). ``step_size`` is reported in spinicl's
  units (η = βε: the move is x − η∇E + √(2η/β)ξ).
* ``blackjax-hmc``: ``blackjax.hmc`` with L = ``leapfrog_steps`` (8) leapfrog steps, tuned
  per chain (vmapped) by ``blackjax.window_adaptation`` over ``tuning_steps`` (200)
  steps (dual averaging toward acceptance 0.8, diagonal inverse mass matrix, Stan's
  windows). The adaptation is one library call: in relaxation mode it is timed as one
  piece and recorded at its end. ``step_size``: median over chains.
* ``numpyro-nuts``: NumPyro's NUTS with its default settings (dual averaging toward 0.8, a
  diagonal mass matrix, Stan's windows, maximum tree depth 10) and its own warm-up of
  ``tuning_steps`` (200) steps; the chains are vmapped (what ``chain_method="vectorized"``
  does) through NumPyro's functional interface ``numpyro.infer.hmc.hmc`` (the model's
  data are passed as model arguments). NUTS adapts while its step counter is below the
  warm-up length. ``grads_per_step`` is the mean number of leapfrog steps per chain-step;
  vmapped NUTS runs each step until the chain with the largest tree is done
  (``grads_per_step_max``). ``step_size``: median over chains.

Precision and threads
---------------------
Everything runs in float64 on JAX's CPU backend, inside ``jax.enable_x64(True)`` and
``jax.default_device(cpu)`` (context managers: the process's own settings are back when
:func:`run_peer` returns, so other JAX users in the process keep 32-bit defaults if they
had them; the peer's arrays are converted to NumPy before they are returned).

``threads=1`` computes on one thread: BLAS and Numba (for ``record``) through
threadpoolctl for the duration of the call, and XLA through
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` *and* by
building JAX's CPU client while the calling thread is pinned to one CPU (the flags alone
leave XLA's compute pool with one thread per core); the affinity is restored at once, so
the operating system may still move the work to whichever core is free. XLA reads its
flags and sizes its pool once per process, when the CPU client is built: the first JAX
computation of the process decides. If the client already exists (JAX used before, or
``blackjax`` imported, which builds it), the setting cannot change any more: the result
says so in ``notes`` and reports ``xla_compute_threads`` (the threads of XLA's pool) and
``cores`` (measured) — call :func:`run_peer` first, or start a fresh process, to pin.
``threads=k`` pins the client to k CPUs the same way; ``threads=None`` leaves every
library at its default.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from spinicl.config import ConfigError, check_beta, check_choice, check_float, check_int

#: The peers, as ``spinicl bench --peers`` names them.
PEER_NAMES: tuple[str, ...] = ("blackjax-mala", "blackjax-hmc", "numpyro-nuts")
#: The packages each peer imports.
PEER_PACKAGES: dict[str, tuple[str, ...]] = {
    "blackjax-mala": ("jax", "blackjax"),
    "blackjax-hmc": ("jax", "blackjax"),
    "numpyro-nuts": ("jax", "numpyro"),
}
#: How to install them.
INSTALL_HINT = "pip install -e '.[bench]'"
MODES = ("stationary", "relaxation")
#: ``"one-product"``: hand-written gradient through ``jax.custom_jvp``; ``"autodiff"``:
#: ``jax.grad`` of the energy.
GRADIENTS = ("one-product", "autodiff")
#: Tuning (MALA) or warm-up (HMC, NUTS) steps by default.
DEFAULT_TUNING_STEPS = {"blackjax-mala": 500, "blackjax-hmc": 200, "numpyro-nuts": 200}
#: Leapfrog steps of BlackJAX HMC (best of L ∈ {4, 8, 16} for ESS/s at D = 20).
HMC_LEAPFROG_STEPS = 8
#: Acceptance toward which the MALA step size is tuned (spinicl's rule).
TARGET_ACCEPT_MALA = 0.574
#: Stationary mode: fraction of the budget for throughput (the rest records).
THROUGHPUT_FRACTION = 0.25
#: Largest host copy of positions per recording block, bytes.
HOST_COPY_BYTES = 64 * 2**20
#: Shortest recording block, steps (below it positions are thinned instead).
MIN_RECORD_BLOCK = 8
#: Most positions one recording block keeps.
MAX_RECORD_SLOTS = 256
#: Stationary mode records at least this many steps, whatever the budget.
MIN_RECORDS = 32
#: Longest block, steps.
MAX_BLOCK_STEPS = 4096
#: Target wall time of a block: min(this, budget / BLOCKS_PER_BUDGET) seconds.
MAX_BLOCK_SECONDS = 0.25
BLOCKS_PER_BUDGET = 50
#: Elements of the largest temporary the matrix-free energy allocates per prompt block.
PROMPT_BLOCK_ELEMENTS = 1 << 21
#: XLA flags for one compute thread (with the pinned client, see the module docstring).
XLA_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class PeerUnavailable(ImportError):
    """A peer's packages are missing or do not import; the message says which and how
    to install them."""


# --------------------------------------------------------------------------- packages
def check_peer(name: Any) -> str:
    """The peer name, or :class:`ConfigError` naming ``peers`` and the allowed names."""
    if not isinstance(name, str) or name not in PEER_NAMES:
        raise ConfigError("peers", "one of " + ", ".join(PEER_NAMES), name)
    return name


def missing_packages(name: str) -> list[str]:
    """Packages the peer ``name`` needs that are not available, in import order.

    A package counts as available when it is imported already or Python's import system
    finds it; none is imported here (importing ``blackjax`` builds JAX's CPU client, which
    would fix XLA's thread count before :func:`run_peer` can pin it). A package blocked
    with ``sys.modules[name] = None`` counts as missing. A package that is found but fails
    to import is reported by :func:`run_peer` (:class:`PeerUnavailable`).

    Parameters
    ----------
    name : str
        One of :data:`PEER_NAMES`.

    Returns
    -------
    list of str
        Empty when every package is there.

    Raises
    ------
    ConfigError
        For an unknown name (parameter ``peers``).
    """
    missing = []
    for package in PEER_PACKAGES[check_peer(name)]:
        if package in sys.modules:
            if sys.modules[package] is None:
                missing.append(package)
            continue
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def missing_message(name: str, missing: list[str] | None = None) -> str:
    """One line for a peer that cannot run ("" when nothing is missing), e.g.
    ``peer blackjax-hmc skipped: needs jax, blackjax (pip install -e '.[bench]')``."""
    missing = missing_packages(name) if missing is None else missing
    if not missing:
        return ""
    return f"peer {name} skipped: needs {', '.join(missing)} ({INSTALL_HINT})"


def library_versions(name: str) -> str:
    """Versions of the peer's libraries, e.g. ``"blackjax 1.7.1, jax 0.10.2"`` (from the
    installed metadata; nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in reversed(PEER_PACKAGES[check_peer(name)]):
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} (not installed)")
    return ", ".join(out)


# --------------------------------------------------------------------------- JAX set-up
def xla_compute_threads() -> int | None:
    """Threads of XLA's CPU compute pool in this process (named ``tf_XLAEigen`` on Linux;
    None where ``/proc`` is unavailable)."""
    names = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/comm") as fh:
                names.append(fh.read().strip())
    except OSError:
        return None
    return sum(n.startswith("tf_XLAEigen") for n in names)


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def _backends_initialised(jax) -> bool | None:
    """Whether JAX has built its clients already (None: this JAX does not say)."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return None


def _jax_cpu(threads: int | None) -> tuple[Any, Any, str]:
    """Import JAX, build its CPU client with ``threads`` compute threads if it does not
    exist yet, and return ``(jax, cpu_device, note)``; ``note`` says when the thread
    setting could not be applied (the client existed already)."""
    import jax

    note = ""
    initialised = _backends_initialised(jax)
    if threads is not None and initialised is False:
        flags = os.environ.get("XLA_FLAGS")
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        before = _thread_ids()
        if threads == 1:
            os.environ["XLA_FLAGS"] = f"{flags or ''} {XLA_ONE_THREAD_FLAGS}".strip()
        try:
            if cpus and threads < len(cpus):
                os.sched_setaffinity(0, set(sorted(cpus)[:threads]))
            cpu = jax.devices("cpu")[0]
        finally:
            if cpus:
                # the calling thread and every thread XLA started meanwhile get the
                # process's CPUs back; threads that existed before keep theirs
                for tid in {0} | (_thread_ids() - before):
                    try:
                        os.sched_setaffinity(tid, cpus)
                    except OSError:
                        pass
            if threads == 1:
                if flags is None:
                    os.environ.pop("XLA_FLAGS", None)
                else:
                    os.environ["XLA_FLAGS"] = flags
    else:
        cpu = jax.devices("cpu")[0]
        pool = xla_compute_threads()
        if threads is not None and pool != threads:
            note = (f"threads={threads} not applied to XLA: its CPU client existed before "
                    f"this call (it has {pool} compute threads); XLA sizes its pool once "
                    "per process")
    return jax, cpu, note


@contextmanager
def _host_threads(threads: int | None):
    """BLAS/OpenMP (threadpoolctl) and Numba limited to ``threads`` for ``record``."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    numba = sys.modules.get("numba")
    old = numba.get_num_threads() if numba is not None else None
    with threadpool_limits(limits=threads):
        if numba is not None:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            if numba is not None:
                numba.set_num_threads(old)


# --------------------------------------------------------------------------- energy
@dataclass(frozen=True)
class _EnergySpec:
    """What the JAX energy needs besides its data arrays (static, hashable)."""

    model: str          # "merged" | "factored"
    data: str           # "dense" | "matrix-free"
    d1: int             # D + 1
    dk: int             # factor rank (factored), 0 otherwise
    lam: float
    e0: float           # yᵀy/(2P)
    prompts: int        # P
    blocks: int         # prompt blocks (matrix-free)


def energy_data(model: Any, chains: int = 1) -> tuple[_EnergySpec, dict[str, np.ndarray]]:
    """The model's public data as arrays for :func:`jax_energy`.

    Parameters
    ----------
    model : MergedModel or FactoredModel
        From :func:`spinicl.models.build_model`, dense or matrix-free.
    chains : int
        Chains evaluated at once (sets the prompt block of the matrix-free form so that
        a block's temporaries stay below :data:`PROMPT_BLOCK_ELEMENTS` elements).

    Returns
    -------
    spec : _EnergySpec
    arrays : dict
        Dense: ``gram`` (n₀, n₀) A₀ and ``field`` (n₀,) h, n₀ = (D+1)². Matrix-free:
        ``C``, ``Q`` (blocks, b, D+1) and ``y`` (blocks, b), the prompts zero-padded to
        whole blocks (a zero prompt adds nothing).
    """
    from spinicl.models import DenseData, FactoredModel, MatrixFreeData, MergedModel

    if not isinstance(model, (MergedModel, FactoredModel)):
        raise ConfigError("model", "a merged or factored model from "
                          "spinicl.models.build_model", type(model).__name__)
    data = model.data
    d1 = data.D + 1
    dk = model.dk if isinstance(model, FactoredModel) else 0
    if isinstance(data, DenseData):
        arrays = {"gram": np.asarray(data.gram, np.float64),
                  "field": np.asarray(data.field, np.float64)}
        blocks = 0
    elif isinstance(data, MatrixFreeData):
        ps = data.prompts
        P = ps.c.shape[0]
        size = int(min(P, max(1, PROMPT_BLOCK_ELEMENTS // (max(1, chains) * d1))))
        blocks = -(-P // size)
        pad = blocks * size - P

        def padded(a: np.ndarray) -> np.ndarray:
            a = np.asarray(a, np.float64)
            a = np.concatenate([a, np.zeros((pad,) + a.shape[1:])]) if pad else a
            return np.ascontiguousarray(a.reshape((blocks, size) + a.shape[1:]))

        arrays = {"C": padded(ps.c), "Q": padded(ps.q), "y": padded(ps.y)}
    else:
        raise ConfigError("model", "a model on a dense or matrix-free data term",
                          type(data).__name__)
    spec = _EnergySpec(model=model.name, data=data.kind, d1=d1, dk=dk,
                       lam=float(model.lam), e0=float(data.e0), prompts=int(data.P),
                       blocks=blocks)
    return spec, arrays


def make_energy(jax, spec: _EnergySpec, arrays: dict, gradient: str = "one-product"
                ) -> Callable:
    """E(x) of one spin vector x (n,) in JAX over the data ``arrays`` (concrete arrays,
    or tracers inside a compiled function). Evaluate under ``jax.enable_x64(True)``."""
    jnp = jax.numpy
    d1, dk, lam, e0, P = spec.d1, spec.dk, spec.lam, spec.e0, spec.prompts

    if spec.data == "dense":
        gram, field = arrays["gram"], arrays["field"]

        def data_value(w):
            return 0.5 * w @ (gram @ w) - field @ w + e0

        def data_value_grad(w):
            v = gram @ w                       # the one product A₀w
            return 0.5 * w @ v - field @ w + e0, v - field
    else:
        C, Q, y = arrays["C"], arrays["Q"], arrays["y"]

        def residual(Wm, Cb, Qb, yb):
            # prediction c_μᵀ W q_μ of every prompt of the block
            return yb - jnp.sum((Cb @ Wm) * Qb, axis=1)

        def data_value(w):
            Wm = w.reshape(d1, d1)

            def body(acc, blk):
                r = residual(Wm, *blk)
                return acc + r @ r, None

            total, _ = jax.lax.scan(body, jnp.zeros((), w.dtype), (C, Q, y))
            return 0.5 * total / P

        def data_value_grad(w):
            Wm = w.reshape(d1, d1)

            def body(acc, blk):
                Cb, Qb, yb = blk
                r = residual(Wm, Cb, Qb, yb)
                # Σ_μ r_μ c_μ q_μᵀ: the second product of the pass
                return (acc[0] + r @ r, acc[1] + (Cb * r[:, None]).T @ Qb), None

            zero = (jnp.zeros((), w.dtype), jnp.zeros((d1, d1), w.dtype))
            (total, G), _ = jax.lax.scan(body, zero, (C, Q, y))
            return 0.5 * total / P, -G.reshape(-1) / P

    if spec.model == "merged":
        def value(x):
            return data_value(x) + 0.5 * lam * x @ x

        def value_grad(x):
            e, g = data_value_grad(x)
            return e + 0.5 * lam * x @ x, g + lam * x
    else:
        half = dk * d1

        def merge(x):
            Wq, Wk = x[:half].reshape(dk, d1), x[half:].reshape(dk, d1)
            return Wq, Wk, (Wq.T @ Wk).reshape(-1)

        def value(x):
            return data_value(merge(x)[2]) + 0.5 * lam * x @ x

        def value_grad(x):
            Wq, Wk, w = merge(x)
            e, g0 = data_value_grad(w)
            G = g0.reshape(d1, d1)
            # ∂E₀/∂W_q = W_k Gᵀ, ∂E₀/∂W_k = W_q G (docs/model.md §1.5)
            g = jnp.concatenate([(Wk @ G.T).reshape(-1), (Wq @ G).reshape(-1)])
            return e + 0.5 * lam * x @ x, g + lam * x

    if gradient == "autodiff":
        return value

    energy = jax.custom_jvp(value)

    @energy.defjvp
    def _energy_jvp(primals, tangents):
        (x,), (dx,) = primals, tangents
        e, g = value_grad(x)
        return e, g @ dx

    return energy


def jax_energy(model: Any, gradient: str = "one-product", chains: int = 1) -> Callable:
    """The model's energy E(x) of one spin vector x (n,) as a JAX function.

    Equal to ``model.energy_and_grad`` to rounding for the merged (dense and matrix-free)
    and factored models; ``jax.vmap`` it over chains. Its data are captured as concrete
    float64 arrays (inside :func:`run_peer` they are arguments of the compiled
    functions instead). Call it, and its gradient, under ``jax.enable_x64(True)``.

    Parameters
    ----------
    model : MergedModel or FactoredModel
    gradient : {"one-product", "autodiff"}
        ``"one-product"``: the hand-written gradient through ``jax.custom_jvp`` (one pass
        over the data); ``"autodiff"``: reverse-mode differentiation of E.
    chains : int
        Chains evaluated at once (prompt blocking of the matrix-free form).

    Returns
    -------
    callable
        x ↦ E(x), a float64 scalar.
    """
    gradient = check_choice("gradient", gradient, GRADIENTS)
    spec, arrays = energy_data(model, chains)
    import jax

    with jax.enable_x64(True):
        arrays = {k: jax.numpy.asarray(v) for k, v in arrays.items()}
    return make_energy(jax, spec, arrays, gradient)


# --------------------------------------------------------------------------- kernels
@dataclass
class _Kernel:
    """A peer as seen by the driver (all functions are traced inside compiled blocks).

    ``init(key, start, data) -> state``; ``step(key, state, data) -> (state, acceptance
    (R,), gradient evaluations (R,))``; ``warmup(key, state, data) -> state`` (a separate
    tuning call, HMC) or None; ``adaptive_steps``: the first steps of ``step`` adapt
    (MALA, NUTS); ``position(state) -> (R, n)``; ``step_size(state) -> float`` (host).
    """

    init: Callable
    step: Callable
    position: Callable
    step_size: Callable
    tuning: str
    adaptive_steps: int = 0
    warmup: Callable | None = None


def _log_density(energy_of: Callable, beta: float) -> Callable:
    """``data -> (w -> −β E(w))``: the log density BlackJAX's kernels take, per data."""

    def logdensity_of(data):
        energy = energy_of(data)
        return lambda w: -beta * energy(w)

    return logdensity_of


def _mala(jax, energy_of, beta: float, chains: int, tuning_steps: int, log_eps0: float
          ) -> _Kernel:
    import blackjax

    jnp = jax.numpy
    kernel = blackjax.mala.build_kernel()

    logdensity_of = _log_density(energy_of, beta)

    def init(key, start, data):
        states = jax.vmap(lambda w: blackjax.mala.init(w, logdensity_of(data)))(start)
        return states, jnp.asarray(log_eps0, start.dtype), jnp.zeros((), start.dtype)

    def step(key, carry, data):
        states, log_eps, t = carry
        ld = logdensity_of(data)
        eps = jnp.exp(log_eps)
        states, info = jax.vmap(lambda k, s: kernel(k, s, ld, eps))(
            jax.random.split(key, chains), states)
        acc = info.acceptance_rate
        # spinicl's rule: Robbins–Monro on log ε toward 0.574 while t < tuning_steps
        gain = jnp.where(t < tuning_steps, 1.0 / (t + 10.0) ** 0.6, 0.0)
        log_eps = log_eps + gain * (acc.mean() - TARGET_ACCEPT_MALA)
        return (states, log_eps, t + 1.0), acc, jnp.ones(chains)

    return _Kernel(
        init=init, step=step, position=lambda c: c[0].position,
        step_size=lambda c: float(np.exp(np.asarray(c[1]))) * beta,
        tuning=(f"{tuning_steps} steps of Robbins-Monro on log step toward acceptance "
                f"{TARGET_ACCEPT_MALA} (spinicl's rule), step then frozen"),
        adaptive_steps=tuning_steps)


def _hmc(jax, energy_of, beta: float, chains: int, tuning_steps: int, leapfrog: int
         ) -> _Kernel:
    import blackjax

    jnp = jax.numpy
    kernel = blackjax.hmc.build_kernel()

    logdensity_of = _log_density(energy_of, beta)

    def init(key, start, data):
        states = jax.vmap(lambda w: blackjax.hmc.init(w, logdensity_of(data)))(start)
        return states, jnp.ones(chains, start.dtype), jnp.ones_like(start)

    def warmup(key, carry, data):
        wa = blackjax.window_adaptation(blackjax.hmc, logdensity_of(data),
                                        num_integration_steps=leapfrog,
                                        adaptation_info_fn=lambda *a: None)
        (states, params), _ = jax.vmap(lambda k, w: wa.run(k, w, num_steps=tuning_steps))(
            jax.random.split(key, chains), carry[0].position)
        return states, params["step_size"], params["inverse_mass_matrix"]

    def step(key, carry, data):
        states, eps, imm = carry
        ld = logdensity_of(data)
        states, info = jax.vmap(lambda k, s, e, m: kernel(k, s, ld, e, m, leapfrog))(
            jax.random.split(key, chains), states, eps, imm)
        return (states, eps, imm), info.acceptance_rate, jnp.full(chains, float(leapfrog))

    return _Kernel(
        init=init, step=step, warmup=warmup if tuning_steps > 0 else None,
        position=lambda c: c[0].position,
        step_size=lambda c: float(np.median(np.asarray(c[1]))),
        tuning=(f"blackjax.window_adaptation per chain (vmapped), {tuning_steps} steps: "
                "dual averaging toward acceptance 0.8, diagonal inverse mass matrix; "
                f"L = {leapfrog} fixed"))


def _nuts(jax, energy_of, beta: float, chains: int, tuning_steps: int) -> _Kernel:
    from numpyro.infer.hmc import hmc

    jnp = jax.numpy

    def potential_gen(data):
        energy = energy_of(data)
        return lambda w: beta * energy(w)

    # NUTS with NumPyro's defaults (those of numpyro.infer.NUTS), data as model arguments
    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def init(key, start, data):
        keys = jax.random.split(key, chains)
        return jax.vmap(lambda w, k: init_kernel(
            w, tuning_steps, step_size=1.0, adapt_step_size=True, adapt_mass_matrix=True,
            dense_mass=False, target_accept_prob=0.8, trajectory_length=None,
            max_tree_depth=10, find_heuristic_step_size=False,
            regularize_mass_matrix=True, model_args=(data,), rng_key=k))(start, keys)

    def step(key, state, data):
        state = jax.vmap(lambda s: sample_kernel(s, model_args=(data,)))(state)
        return state, state.accept_prob, state.num_steps.astype(jnp.float64)

    return _Kernel(
        init=init, step=step, position=lambda s: s.z,
        step_size=lambda s: float(np.median(np.asarray(s.adapt_state.step_size))),
        tuning=(f"NumPyro's own warm-up, {tuning_steps} steps per chain: dual averaging "
                "toward acceptance 0.8, diagonal inverse mass matrix (Stan windows)"),
        adaptive_steps=tuning_steps)


# --------------------------------------------------------------------------- driver
class _Compiled:
    """The peer's compiled functions and its state on the device.

    One compiled block, ``block(state, key, buffer, data, steps, thin, keep)``, serves
    tuning, throughput, recording and relaxation: it runs ``steps`` steps (a run-time
    number) and writes the positions after every ``thin``-th step into the first
    ``keep`` slots of a position buffer of :attr:`slots` slots (keep = 0: none). The
    buffer is donated to the call and reused, so nothing is allocated per block. Each
    call also returns the sums over its steps of the mean acceptance and of the mean and
    the largest number of gradient evaluations over the chains.
    """

    def __init__(self, jax, kern: _Kernel, data: dict, start, seed: int, slots: int):
        self.jax, self.kern, self.data, self.slots = jax, kern, data, slots
        self.compile_seconds = 0.0
        jnp = jax.numpy
        k_init, k_warm, self.key = jax.random.split(jax.random.key(seed), 3)
        init = self._compile(jax.jit(kern.init), k_init, start, data)
        self.state = init(k_init, start, data)
        self._k_warm = k_warm
        self._warmup = (None if kern.warmup is None else
                        self._compile(jax.jit(kern.warmup), k_warm, self.state, data))

        def block(state, key, buffer, data, steps, thin, keep):
            def body(i, c):
                s, k, buf, a, g, gm = c
                k, sub = jax.random.split(k)
                s, acc, grads = kern.step(sub, s, data)
                slot = (i + 1) // thin - 1
                buf = jax.lax.cond(
                    ((i + 1) % thin == 0) & (slot < keep),
                    lambda b: jax.lax.dynamic_update_index_in_dim(b, kern.position(s),
                                                                  slot, 0),
                    lambda b: b, buf)
                return s, k, buf, a + acc.mean(), g + grads.mean(), gm + grads.max()

            zero = jnp.zeros((), jnp.float64)
            s, k, buf, a, g, gm = jax.lax.fori_loop(
                0, steps, body, (state, key, buffer, zero, zero, zero))
            return s, k, buf, jnp.stack([a, g, gm])

        self.buffer = jnp.zeros((slots,) + start.shape, jnp.float64)
        one = jnp.asarray(1, jnp.int32)
        self._block = self._compile(jax.jit(block, donate_argnums=(2,)), self.state,
                                    self.key, self.buffer, data, one, one, one)

    def _compile(self, jitted, *args):
        t0 = time.perf_counter()
        out = jitted.lower(*args).compile()
        self.compile_seconds += time.perf_counter() - t0
        return out

    def warmup(self) -> None:
        """The separate tuning call (HMC's window adaptation), blocking."""
        self.state = self.jax.block_until_ready(self._warmup(self._k_warm, self.state,
                                                             self.data))

    def run(self, steps: int, thin: int = 1, keep: int = 0) -> tuple[np.ndarray, float]:
        """Run a block; (stats (3,), seconds). Positions: :meth:`kept`."""
        i32 = self.jax.numpy.int32
        t0 = time.perf_counter()
        self.state, self.key, self.buffer, stats = self._block(
            self.state, self.key, self.buffer, self.data, np.asarray(steps, i32),
            np.asarray(thin, i32), np.asarray(keep, i32))
        stats = np.asarray(self.jax.block_until_ready(stats))
        self.jax.block_until_ready(self.buffer)
        return stats, time.perf_counter() - t0

    def kept(self, keep: int) -> np.ndarray:
        """Copy of the first ``keep`` buffered positions, (keep, R, n)."""
        return np.asarray(self.buffer)[:keep].copy()

    def positions(self) -> np.ndarray:
        """Copy of the current positions, (R, n)."""
        return np.array(self.kern.position(self.state))


def _target_block_seconds(budget: float) -> float:
    return min(MAX_BLOCK_SECONDS, budget / BLOCKS_PER_BUDGET)


def _next_block(n: int, seconds: float, target: float) -> int:
    """Steps of the next block so that it lasts about ``target`` seconds."""
    want = 4 * n if seconds <= 0 else n * target / seconds
    return int(min(MAX_BLOCK_STEPS, max(1, n // 4, min(4 * n, round(want)))))


def record_layout(chains: int, n: int) -> tuple[int, int, str]:
    """(position slots per recording block, thin, note) within :data:`HOST_COPY_BYTES`.

    Blocks keep every step while at least :data:`MIN_RECORD_BLOCK` steps of positions
    (8·R·n bytes each) fit the host copy, at most :data:`MAX_RECORD_SLOTS`; beyond that
    only every ``thin``-th step is kept, so that a block still covers
    :data:`MIN_RECORD_BLOCK` steps.
    """
    fit = HOST_COPY_BYTES // (8 * chains * n)
    if fit >= MIN_RECORD_BLOCK:
        return int(min(fit, MAX_RECORD_SLOTS)), 1, ""
    slots = max(1, int(fit))
    thin = -(-MIN_RECORD_BLOCK // slots)
    note = (f"positions recorded every {thin} steps: R·n = {chains}·{n} leaves room for "
            f"{fit} steps in a {HOST_COPY_BYTES >> 20} MiB host copy")
    if fit == 0:
        note += " (one record alone is larger)"
    return slots, thin, note


def _call_record(record: Callable, W: np.ndarray, chains: int) -> np.ndarray:
    out = np.array(record(W), dtype=np.float64, copy=True)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2 or out.shape[0] != chains:
        raise ValueError(f"record(W) must return an array of shape (R, k) = ({chains}, k) "
                         f"(got {out.shape})")
    return out


def _stationary(comp: _Compiled, kern: _Kernel, record: Callable, budget: float,
                chains: int, thin: int, note: str, block_steps: int | None
                ) -> dict[str, Any]:
    target = _target_block_seconds(budget)
    # ---- tuning (untimed)
    t0 = time.perf_counter()
    if comp._warmup is not None:
        comp.warmup()
    steps, block = 0, block_steps or 1
    while steps < kern.adaptive_steps:
        m = min(block, kern.adaptive_steps - steps)
        _, dt = comp.run(m)
        steps += m
        if not block_steps:
            block = _next_block(m, dt, target)
    _, dt = comp.run(block)        # one block beyond tuning: throughput starts warm
    if not block_steps:
        block = _next_block(block, dt, target)
    tuning_seconds = time.perf_counter() - t0
    # ---- throughput
    clock, done, c0, w0 = 0.0, 0, time.process_time(), time.perf_counter()
    while done == 0 or clock < THROUGHPUT_FRACTION * budget:
        _, dt = comp.run(block)
        clock += dt
        done += block
        if not block_steps:
            block = _next_block(block, dt, target)
    rate = chains * done / clock
    cores = (time.process_time() - c0) / (time.perf_counter() - w0)
    # ---- recording: every thin-th step of blocks of keep·thin steps
    keep = int(min(comp.slots, max(MIN_RECORD_BLOCK // thin, -(-block // thin), 1)))
    rows, times, stats = [], [], np.zeros(3)
    while len(rows) < MIN_RECORDS or clock < budget:
        st, dt = comp.run(keep * thin, thin, keep)
        times.append(clock + dt * np.arange(1, keep + 1) / keep)
        clock += dt
        stats += st
        pos = comp.kept(keep)
        rows.extend(_call_record(record, pos[i], chains) for i in range(keep))
        del pos
    total = len(rows) * thin
    return {"compile_seconds": comp.compile_seconds, "tuning_seconds": tuning_seconds,
            "chain_steps_per_s": rate, "cores": cores,
            "acceptance": float(stats[0] / total), "grads_per_step": float(stats[1] / total),
            "grads_per_step_max": float(stats[2] / total),
            "step_size": kern.step_size(comp.state), "trace": np.stack(rows),
            "times": np.concatenate(times), "thin": thin, "block_steps": block,
            "record_block_steps": keep * thin, "timed_seconds": clock, "note": note}


def _relaxation(comp: _Compiled, kern: _Kernel, record: Callable, budget: float,
                chains: int, reference: float, block_steps: int | None
                ) -> dict[str, Any]:
    target = _target_block_seconds(budget)
    rows = [_call_record(record, comp.positions(), chains)]
    times = [0.0]
    clock, steps, tuning_seconds, stats = 0.0, 0, 0.0, np.zeros(3)
    c0, w0 = time.process_time(), time.perf_counter()
    reached = float(rows[0][:, 0].min()) <= reference
    if not reached and comp._warmup is not None:
        t1 = time.perf_counter()
        comp.warmup()
        clock += time.perf_counter() - t1
        tuning_seconds = clock
        rows.append(_call_record(record, comp.positions(), chains))
        times.append(clock)
        reached = float(rows[-1][:, 0].min()) <= reference
    block = block_steps or 1
    while not reached and clock < budget:
        m = block
        if steps < kern.adaptive_steps:            # blocks end where the tuning ends
            m = min(m, kern.adaptive_steps - steps)
        st, dt = comp.run(m)
        clock += dt
        steps += m
        stats += st
        if steps <= kern.adaptive_steps:
            tuning_seconds = clock
        rows.append(_call_record(record, comp.positions(), chains))
        times.append(clock)
        reached = float(rows[-1][:, 0].min()) <= reference
        if not block_steps:
            block = _next_block(m, dt, target)
    wall = time.perf_counter() - w0
    per_step = 1.0 / steps if steps else math.nan
    return {"compile_seconds": comp.compile_seconds, "tuning_seconds": tuning_seconds,
            "chain_steps_per_s": chains * steps / clock if clock > 0 else math.nan,
            "cores": (time.process_time() - c0) / wall if wall > 0 else math.nan,
            "acceptance": float(stats[0] * per_step),
            "grads_per_step": float(stats[1] * per_step),
            "grads_per_step_max": float(stats[2] * per_step),
            "step_size": kern.step_size(comp.state), "trace": np.stack(rows),
            "times": np.asarray(times), "thin": 1, "block_steps": block,
            "record_block_steps": None, "timed_seconds": clock, "steps": steps,
            "reached": bool(reached), "time_to_reference": times[-1] if reached else None,
            "note": ""}


def run_peer(name: str, model: Any, beta: float, start: np.ndarray, *, seed: int,
             budget_seconds: float, record: Callable[[np.ndarray], np.ndarray],
             mode: str = "stationary", threads: int | None = 1,
             reference_energy: float | None = None, tuning_steps: int | None = None,
             leapfrog_steps: int = HMC_LEAPFROG_STEPS, block_steps: int | None = None,
             gradient: str = "one-product") -> dict[str, Any]:
    """Run a peer sampler on the model's Boltzmann law p_β ∝ exp(−βE) (module docstring).

    Parameters
    ----------
    name : str
        One of :data:`PEER_NAMES`.
    model : MergedModel or FactoredModel
        From :func:`spinicl.models.build_model` (dense or matrix-free).
    beta : float
        Inverse temperature, > 0.
    start : ndarray, shape (R, n)
        Starting positions in the model's spin layout (the factored model: vec W_q
        followed by vec W_k), float64.
    seed : int
        Seed of every random number of the peer (JAX keys); returned as ``seed``.
    budget_seconds : float
        Timed budget, > 0 (see the module docstring for what is timed).
    record : callable
        ``record(W)`` with W (R, n) float64 (NumPy) returns (R, k) floats, the energy
        first in relaxation mode.
    mode : {"stationary", "relaxation"}
    threads : int or None
        Compute threads for XLA, BLAS and Numba (default 1); None: library defaults.
    reference_energy : float
        Relaxation mode (required): stop once the lowest first column of a record is ≤
        this value.
    tuning_steps : int, optional
        Tuning / warm-up steps (default :data:`DEFAULT_TUNING_STEPS`).
    leapfrog_steps : int
        Leapfrog steps of ``blackjax-hmc`` (default 8).
    block_steps : int, optional
        Fixed steps per compiled block (default: grown to about min(0.25 s, budget/50)).
    gradient : {"one-product", "autodiff"}
        How the peer gets ∇E (see :func:`jax_energy`).

    Returns
    -------
    dict
        ``sampler``, ``library`` (versions), ``compile_seconds``, ``tuning_seconds``,
        ``chain_steps_per_s`` (stationary: the throughput phase; relaxation: all timed
        steps), ``cores`` (process CPU time / wall time of that phase), ``acceptance``
        (mean over chains and the recorded, or timed, steps), ``step_size`` (MALA: η in
        units of E; HMC, NUTS: median leapfrog step over chains), ``trace``
        (T, R, k) float64, ``times`` (T,) seconds of the timed clock, ``thin`` (steps per
        record, stationary), ``mode``, ``seed``, ``notes``; also ``grads_per_step``,
        ``grads_per_step_max`` (largest over the chains, mean over steps),
        ``tuning_steps``, ``tuning``, ``block_steps``, ``gradient``, ``threads``,
        ``xla_compute_threads``, ``timed_seconds``, ``budget_seconds`` and, in relaxation
        mode, ``reached``, ``time_to_reference`` (seconds or None) and ``steps``.

    Raises
    ------
    ConfigError
        For a bad argument (before any work).
    PeerUnavailable
        When a package the peer needs is missing or does not import.
    """
    name = check_peer(name)
    beta = check_beta(beta)
    mode = check_choice("mode", mode, MODES)
    gradient = check_choice("gradient", gradient, GRADIENTS)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    budget = check_float("budget_seconds", budget_seconds, low=0.0, low_open=True)
    if threads is not None:
        threads = check_int("threads", threads, 1)
    tuning_steps = (DEFAULT_TUNING_STEPS[name] if tuning_steps is None
                    else check_int("tuning_steps", tuning_steps, 0))
    leapfrog_steps = check_int("leapfrog_steps", leapfrog_steps, 1)
    if block_steps is not None:
        block_steps = check_int("block_steps", block_steps, 1, MAX_BLOCK_STEPS)
    if mode == "relaxation":
        if reference_energy is None:
            raise ConfigError("reference_energy", "a finite number in relaxation mode",
                              None)
        reference_energy = check_float("reference_energy", reference_energy)
    if not callable(record):
        raise ConfigError("record", "a function of positions (R, n) -> (R, k)",
                          type(record).__name__)
    spec, arrays = energy_data(model, 1)
    n = model.n_spins
    start = np.asarray(start, dtype=np.float64)
    if start.ndim != 2 or start.shape[0] < 1 or start.shape[1] != n:
        raise ConfigError("start", f"an array of shape (R, {n}) (R >= 1 chains)",
                          start.shape)
    if not np.all(np.isfinite(start)):
        raise ConfigError("start", "finite positions", "non-finite values")
    chains = start.shape[0]
    missing = missing_packages(name)
    if missing:
        raise PeerUnavailable(missing_message(name, missing))
    spec, arrays = energy_data(model, chains)

    log_eps0 = 0.0
    if name == "blackjax-mala":
        # spinicl's initial MALA step: 1.36 n^(-1/3) / λ_max, in log-density units (ε = η/β)
        curvature = float(np.asarray(model.curvature(np.array([beta])))[0])
        log_eps0 = math.log(1.36 * n ** (-1 / 3) / curvature / beta)

    with ExitStack() as stack:
        stack.enter_context(_host_threads(threads))
        jax, cpu, thread_note = _jax_cpu(threads)
        try:
            for package in PEER_PACKAGES[name]:
                importlib.import_module(package)
        except Exception as exc:  # a broken install: say which package and why
            raise PeerUnavailable(f"peer {name} cannot run: {exc} ({INSTALL_HINT})"
                                  ) from exc
        stack.enter_context(jax.enable_x64(True))
        stack.enter_context(jax.default_device(cpu))
        data = {k: jax.device_put(v, cpu) for k, v in arrays.items()}

        def energy_of(d):
            return make_energy(jax, spec, d, gradient)

        if name == "blackjax-mala":
            kern = _mala(jax, energy_of, beta, chains, tuning_steps, log_eps0)
        elif name == "blackjax-hmc":
            kern = _hmc(jax, energy_of, beta, chains, tuning_steps, leapfrog_steps)
        else:
            kern = _nuts(jax, energy_of, beta, chains, tuning_steps)
        slots, thin, layout_note = (record_layout(chains, n) if mode == "stationary"
                                    else (1, 1, ""))
        comp = _Compiled(jax, kern, data, jax.device_put(start, cpu), seed, slots)
        if mode == "stationary":
            out = _stationary(comp, kern, record, budget, chains, thin, layout_note,
                              block_steps)
        else:
            out = _relaxation(comp, kern, record, budget, chains, reference_energy,
                              block_steps)
        pool = xla_compute_threads()

    notes = [s for s in (thread_note, out.pop("note")) if s]
    if gradient == "autodiff":
        notes.append("gradient by reverse-mode autodiff of E")
    if name == "blackjax-hmc" and mode == "relaxation" and tuning_steps > 0:
        notes.append("the window adaptation is one call: recorded at its end")
    return {"sampler": name, "library": library_versions(name), **out, "mode": mode,
            "seed": seed, "notes": "; ".join(notes), "tuning_steps": tuning_steps,
            "tuning": kern.tuning, "gradient": gradient, "threads": threads,
            "xla_compute_threads": pool, "budget_seconds": budget,
            "chains": chains, "n_spins": n}


__all__ = ["DEFAULT_TUNING_STEPS", "GRADIENTS", "HMC_LEAPFROG_STEPS", "MODES", "PEER_NAMES",
           "PEER_PACKAGES", "PeerUnavailable", "check_peer", "energy_data", "jax_energy",
           "library_versions", "make_energy", "missing_message", "missing_packages",
           "run_peer", "xla_compute_threads"]
