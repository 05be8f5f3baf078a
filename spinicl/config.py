"""Validated parameters: one place for every range check and its message.

Every entry point (Python API and command line) validates its parameters here, before
any work starts. A bad value raises :class:`ConfigError`, whose message names the
parameter, its allowed range and the value received; the command line prints that one
line and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

RHO_VARIANTS = ("intended", "paper")


class ConfigError(ValueError):
    """A parameter outside its allowed range.

    Parameters
    ----------
    param : str
        Parameter name as in the Python API (``lam``, ``sigma_x``...); the command line
        shows it as ``--lam``, ``--sigma-x``.
    allowed : str
        The allowed range in words, e.g. ``"> 0"`` or ``"an integer in 1..P = 100"``.
    got : object
        The value received.
    note : str, optional
        One short sentence on why the range is what it is.
    """

    def __init__(self, param: str, allowed: str, got: Any = None, note: str = ""):
        self.param = param
        self.allowed = allowed
        self.got = got
        self.note = note
        super().__init__(self.message())

    def message(self, name: str | None = None) -> str:
        got = "" if self.got is None else f" (got {self.got!r})"
        note = f": {self.note}" if self.note else ""
        return f"{name or self.param} must be {self.allowed}{got}{note}"

    def cli_message(self) -> str:
        """The message with the parameter spelled as a command-line option (``--sigma-x``)."""
        return self.message("--" + self.param.replace("_", "-"))


# --------------------------------------------------------------------------- checks
def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int in ``[low, high]`` or raise :class:`ConfigError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) and not (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    ):
        raise ConfigError(name, _range_text(low, high, integer=True), value)
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ConfigError(name, _range_text(low, high, integer=True), value)
    return v


def check_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    note: str = "",
) -> float:
    """Return ``value`` as a finite float in the given (open or closed) interval."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, _interval_text(low, high, low_open, high_open), value) from None
    bad = not math.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        raise ConfigError(name, _interval_text(low, high, low_open, high_open), value, note)
    return v


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(name, "one of " + ", ".join(choices), value)
    return str(value)


def _range_text(low: int | None, high: int | None, integer: bool) -> str:
    kind = "an integer" if integer else "a number"
    if low is not None and high is not None:
        return f"{kind} in {low}..{high}"
    if low is not None:
        return f"{kind} >= {low}"
    if high is not None:
        return f"{kind} <= {high}"
    return kind


def _interval_text(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_beta(beta: Any, name: str = "beta") -> float:
    """Inverse temperature: a finite number > 0."""
    return check_float(name, beta, low=0.0, low_open=True, note="the inverse temperature 1/T")


def check_lam_for_sampling(lam: float) -> float:
    """Sampling needs lam > 0: with lam = 0 the inactive spins are free (improper law)."""
    return check_float(
        "lam",
        lam,
        low=0.0,
        low_open=True,
        note="with lam <= 0 the Boltzmann distribution is improper (free inactive spins)",
    )


# --------------------------------------------------------------------------- memory
def available_memory_bytes() -> int:
    """Available physical memory in bytes (Linux ``/proc/meminfo``; a sysconf fallback)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


DEFAULT_MEMORY_FRACTION = 0.5

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2,
          "MIB": 1024**2, "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4,
          "TB": 1024**4, "TIB": 1024**4}


def parse_memory(value: Any) -> int:
    """Parse a memory size: bytes as a number, or a string such as ``"512MB"``, ``"4G"``.

    Returns the size in bytes; raises :class:`ConfigError` naming ``memory_budget``.
    """
    if value is None:
        return int(DEFAULT_MEMORY_FRACTION * available_memory_bytes())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        size = float(value)
    else:
        text = str(value).strip().upper().replace(" ", "")
        num = text.rstrip("KMGTIB")
        unit = text[len(num):]
        if unit not in _UNITS:
            raise ConfigError("memory_budget", "a size such as 2GB, 512MB or 1e9 (bytes)", value)
        try:
            size = float(num) * _UNITS[unit]
        except ValueError:
            raise ConfigError(
                "memory_budget", "a size such as 2GB, 512MB or 1e9 (bytes)", value
            ) from None
    if not math.isfinite(size) or size <= 0:
        raise ConfigError("memory_budget", "a positive size such as 2GB", value)
    return int(size)


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


# --------------------------------------------------------------------------- limits
#: Upper bounds tied to memory or sense, checked before any work starts. The memory a task
#: needs (:meth:`TaskConfig.prompt_bytes`) is also compared with the available RAM.
MAX_N = 1_000_000
MAX_P = 1_000_000_000
MAX_TEST_PROMPTS = 100_000_000
MAX_DK = 10_000
#: Steps (burn-in or production): 10¹⁰ is hours even at a microsecond per step.
MAX_STEPS = 10**10
#: Temperatures of a ladder (each holds copies of the whole state).
MAX_RUNGS = 10_000
#: Replicas of one run (bench) or copies × rungs of a sample.
MAX_REPLICAS = 100_000


def check_prompt_memory(task: TaskConfig, what: str = "P") -> None:
    """Refuse a task whose prompts alone do not fit in the available RAM.

    Raises
    ------
    ConfigError
        Naming ``what`` (default ``P``), with the estimate and the RAM available.
    """
    need = task.prompt_bytes()
    have = available_memory_bytes()
    if need > have:
        raise ConfigError(what, "small enough that the prompts fit in memory", getattr(
            task, what, None), f"P = {task.P}, N = {task.N}, D = {task.D}, test prompts = "
            f"{task.test_prompts} need about {format_bytes(need)}, "
            f"{format_bytes(have)} available")


# --------------------------------------------------------------------------- task
@dataclass(frozen=True)
class TaskConfig:
    """Parameters of the in-context regression task and of the energy (docs/model.md §1.1, §1.3).

    Parameters
    ----------
    D : int
        Token (input) dimension, >= 1.
    N : int
        Context length (examples per prompt), >= 1.
    P : int
        Number of pre-training prompts, >= 1.
    K : int, "P" or None
        Task diversity: size of the pool of task vectors, in 1..P. ``None`` (or the
        string ``"P"``, as in a sweep grid ``K = [1, 10, "P"]``) means K = P,
        one fresh task per prompt (the paper's single-instance setting).
    lam : float
        Weight decay λ of the energy E (>= 0; sampling needs > 0).
    sigma_x, sigma_w, sigma_eps : float
        Scales of the inputs, of the task vectors and of the label noise (>= 0;
        sigma_x and sigma_w > 0).
    rho : float
        Equal correlation between the N+1 tokens of a prompt, in (-1/N, 1).
    rho_variant : {"intended", "paper"}
        ``intended`` draws token covariance C = (1-rho) I + rho 11ᵀ; ``paper`` reproduces the
        paper's code, whose realised covariance is LᵀL with C = LLᵀ (docs/paper-reference.md).
    seed : int
        Root seed (>= 0) of every random number of the task, through ``SeedSequence``.
    test_prompts : int
        Number of prompts in each test set (novel-task and in-distribution), >= 1.
    """

    D: int = 20
    N: int = 100
    P: int = 10_000
    K: int | str | None = None
    lam: float = 0.01
    sigma_x: float = 1.0
    sigma_w: float = 1.0
    sigma_eps: float = 0.0
    rho: float = 0.0
    rho_variant: str = "intended"
    seed: int = 0
    test_prompts: int = 2000

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "D", check_int("D", self.D, 1, 10_000))
        set_(self, "N", check_int("N", self.N, 1, MAX_N))
        set_(self, "P", check_int("P", self.P, 1, MAX_P))
        if isinstance(self.K, str) and self.K.strip().upper() == "P":
            set_(self, "K", None)  # K = "P": one task per prompt, the default
        if self.K is not None:
            k = self.K
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.P:
                note = "a pool larger than P is never fully used" if isinstance(k, int) and \
                    k > self.P else ""
                raise ConfigError("K", f'an integer in 1..P = {self.P}, or "P"', k, note)
            if k == self.P:
                set_(self, "K", None)
        set_(self, "lam", check_float("lam", self.lam, low=0.0))
        set_(self, "sigma_x", check_float("sigma_x", self.sigma_x, low=0.0, low_open=True))
        set_(self, "sigma_w", check_float("sigma_w", self.sigma_w, low=0.0, low_open=True))
        set_(self, "sigma_eps", check_float("sigma_eps", self.sigma_eps, low=0.0))
        low = -1.0 / self.N
        set_(
            self,
            "rho",
            check_float(
                "rho", self.rho, low=low, high=1.0, low_open=True, high_open=True,
                note=f"the equicorrelation of N+1 = {self.N + 1} tokens is positive definite "
                f"only for -1/N < rho < 1",
            ),
        )
        set_(self, "rho_variant", check_choice("rho_variant", self.rho_variant, RHO_VARIANTS))
        set_(self, "seed", check_int("seed", self.seed, 0, 2**63 - 1))
        set_(self, "test_prompts", check_int("test_prompts", self.test_prompts, 1,
                                             MAX_TEST_PROMPTS))

    def prompt_bytes(self) -> int:
        """Estimated peak bytes of generating the prompts: P training and two sets of
        test prompts, each (N+1) tokens of D inputs and a label, in float64."""
        return 8 * (self.P + 2 * self.test_prompts) * (self.N + 1) * (self.D + 1)

    @property
    def pool_size(self) -> int:
        """K, with the default K = P resolved."""
        return self.P if self.K is None else self.K

    @property
    def n_spins(self) -> int:
        """Spins of the merged model, (D+1)²."""
        return (self.D + 1) ** 2

    @property
    def n_active(self) -> int:
        """Spins that enter a prediction, D(D+1) (the last column of W never does)."""
        return self.D * (self.D + 1)

    @property
    def alpha(self) -> float:
        """Pre-training load α = P / D²."""
        return self.P / self.D**2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TaskConfig:
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- sampling
DEFAULT_TEMPS = "1e-5:1e-1:auto"
#: Marker of an automatic rung count in ``TMIN:TMAX:auto``.
AUTO_COUNT = "auto"


def parse_temperatures(temps: str | None = None, beta: float | None = None
                       ) -> tuple[float, ...] | str:
    """Temperatures of the ladder, ascending.

    Parameters
    ----------
    temps : str, optional
        ``"TMIN:TMAX:COUNT"`` (geometric, fixed), ``"TMIN:TMAX:auto"`` (geometric, the
        rung count chosen from the model when the run is configured: every pair's
        predicted swap acceptance ≥ 0.25, see :func:`spinicl.samplers.tempering.
        auto_temperatures`) or ``"T1,T2,..."``; default ``1e-5:1e-1:auto``.
    beta : float, optional
        A single inverse temperature instead (no replica exchange).

    Returns
    -------
    tuple of float, ascending, all > 0; or the normalised string ``"TMIN:TMAX:auto"``
    (resolved by :class:`SampleConfig`).
    """
    if beta is not None:
        if temps is not None:
            raise ConfigError("temps", "omitted when --beta is given (one or the other)",
                              temps)
        return (1.0 / check_beta(beta),)
    text = DEFAULT_TEMPS if temps is None else str(temps).strip()
    allowed = ("TMIN:TMAX:COUNT or TMIN:TMAX:auto (geometric) or a list T1,T2,... of "
               "temperatures > 0")
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            if parts[2].strip().lower() == AUTO_COUNT:
                tmin, tmax = float(parts[0]), float(parts[1])
                if not (0 < tmin < tmax and math.isfinite(tmax)):
                    raise ValueError
                return f"{tmin!r}:{tmax!r}:{AUTO_COUNT}"
            tmin, tmax, count = float(parts[0]), float(parts[1]), int(parts[2])
            if not (0 < tmin < tmax and math.isfinite(tmax)) or count < 2:
                raise ValueError
            if count > MAX_RUNGS:
                raise ConfigError("temps", f"a ladder of 2..{MAX_RUNGS} temperatures", text)
            values = tuple(float(t) for t in np.geomspace(tmin, tmax, count))
        else:
            values = tuple(float(t) for t in text.split(",") if t.strip())
    except ConfigError:
        raise
    except ValueError:
        raise ConfigError("temps", allowed, text) from None
    if not values or any(not (math.isfinite(t) and t > 0) for t in values):
        raise ConfigError("temps", allowed, text)
    if len(values) > MAX_RUNGS:
        raise ConfigError("temps", f"a ladder of at most {MAX_RUNGS} temperatures", text)
    if len(set(values)) != len(values):
        raise ConfigError("temps", "distinct temperatures", text)
    return tuple(sorted(values))


def _resolve_auto_ladder(cfg: SampleConfig) -> tuple[float, ...]:
    """Temperatures of a ``TMIN:TMAX:auto`` (or ``TMIN:TMAX:COUNT``) spec for this model."""
    spec = parse_temperatures(cfg.temperatures)
    if not isinstance(spec, str):
        return spec
    from spinicl import registry
    from spinicl.samplers.tempering import auto_temperatures

    tmin, tmax = (float(x) for x in spec.split(":")[:2])
    return auto_temperatures(registry.model_spins(cfg.model, cfg.task.D, cfg.dk), tmin, tmax)


INIT_CHOICES = ("ridge", "random")
#: The default start (left out of a config's dict and hashes, as before the key existed).
DEFAULT_INIT = "ridge"
INIT_SUFFIXES = (".npy", ".h5", ".hdf5")


def check_init(value: Any) -> str:
    """``--init``: ``ridge``, ``random`` or a file name ending in .npy, .h5 or .hdf5."""
    if isinstance(value, str) and (value in INIT_CHOICES or (
            value.lower().endswith(INIT_SUFFIXES) and len(value) > 4)):
        return value
    raise ConfigError("init", "ridge, random, or a .npy or run .h5 file", value)


def init_n_spins(cfg: SampleConfig) -> int:
    """Number of spins of ``cfg``'s model (for checking an ``--init`` file's shape)."""
    d1 = cfg.task.D + 1
    return 2 * (cfg.dk or d1) * d1 if cfg.model == "factored" else d1 * d1


def check_init_file(cfg: SampleConfig) -> None:
    """An ``init`` file of ``cfg`` exists, reads, and holds one start or one per replica.

    Nothing to check for ``ridge`` and ``random``. ConfigError ``init`` otherwise (a
    missing or unreadable file, the wrong number of spins, non-finite entries, or a
    number of starts other than 1 or temperatures × copies), before any work.
    """
    if cfg.init in INIT_CHOICES:
        return
    from spinicl.samplers.driver import load_start

    X = load_start(cfg.init, init_n_spins(cfg))
    R = len(cfg.temperatures) * cfg.copies
    if X.ndim > 1 and int(np.prod(X.shape[:-1])) != R:
        raise ConfigError("init", f"{R} replicas ({len(cfg.temperatures)} temperatures "
                          f"× {cfg.copies} copies) or one (n_spins,) start",
                          f"{cfg.init}: shape {X.shape}")


@dataclass(frozen=True)
class SampleConfig:
    """Everything that defines a sampling run (``spinicl sample``).

    Parameters
    ----------
    task : TaskConfig
    model : {"merged", "factored"}
    dk : int or None
        Rank of the factors (factored model; default D+1).
    sampler : {"mala", "ula", "baoab", "exact", "hmc"}
        See :mod:`spinicl.registry` (which also holds the compatibility rules).
    step : float or None
        Step size η (None: the sampler's default from the spectrum of A).
    gamma : float
        BAOAB friction (> 0).
    precondition : {"none", "diag", "dense"}
    temperatures : tuple of float or str
        The ladder, ascending (one value: no replica exchange); or ``"TMIN:TMAX:auto"``
        (default ``1e-5:1e-1:auto``), resolved here to the geometric ladder whose every
        neighbouring pair has predicted swap acceptance ≥ 0.25 for this model's number of
        spins (86 rungs at D = 20 merged; :func:`spinicl.samplers.tempering.
        auto_temperatures`).
    copies : int
        Replicas per temperature (>= 1; >= 2 for overlaps).
    steps : int
        Production steps after burn-in (>= 1).
    burn_in : int
        Burn-in steps (>= 0): step sizes and the ladder adapt here only.
    record_every, swap_every : int
        Steps between records, and between replica-exchange swap rounds (>= 1).
    adapt_ladder : bool or None
        Equalise swap rejection during burn-in. None (default): on for the factored
        model (no closed form places its rungs), off for the merged one (its geometric
        ladder is already the exact equal-rejection ladder).
    snapshot_every : int
        Records between weight snapshots (0: none).
    flush_every : int
        Records between flushes/checkpoints (also every ``flush_seconds``).
    representation : {"auto", "dense", "matrix-free"}
    memory_budget : str or int or None
    options : dict
        The sampler's own options (:mod:`spinicl.registry`; ``leapfrog`` for hmc),
        completed with their defaults.
    init : str
        The start (:meth:`spinicl.samplers.driver.Sampler.start`): ``"ridge"`` (default:
        the ridge mean, factored: its balanced factors, plus thermal noise per rung),
        ``"random"`` (every spin N(0, 1/(D+1)), the paper's training start) or a ``.npy``
        / run ``.h5`` file (its existence and shape are checked by ``spinicl sample``).
    """

    task: TaskConfig = TaskConfig()
    model: str = "merged"
    dk: int | None = None
    sampler: str = "mala"
    step: float | None = None
    gamma: float = 1.0
    precondition: str = "none"
    temperatures: tuple[float, ...] | str = DEFAULT_TEMPS
    copies: int = 2
    steps: int = 10_000
    burn_in: int = 2_000
    record_every: int = 25
    swap_every: int = 5
    adapt_ladder: bool | None = None
    snapshot_every: int = 0
    flush_every: int = 50
    flush_seconds: float = 5.0
    representation: str = "auto"
    memory_budget: str | int | None = None
    options: dict = dataclasses.field(default_factory=dict)
    init: str = DEFAULT_INIT

    def __post_init__(self) -> None:
        from spinicl import registry

        set_ = object.__setattr__
        set_(self, "init", check_init(self.init))
        set_(self, "model", check_choice("model", self.model, registry.model_names()))
        if self.dk is not None:
            set_(self, "dk", check_int("dk", self.dk, 1, MAX_DK))
            from spinicl import registry

            registry.check_dk(self.model, self.dk)
        set_(self, "sampler", check_choice("sampler", self.sampler,
                                           registry.sampler_names()))
        if not isinstance(self.options, dict):
            raise ConfigError("options", "a table of the sampler's options", self.options)
        set_(self, "options", registry.sampler_options(self.sampler, self.options))
        if self.step is not None:
            set_(self, "step", check_float("step", self.step, low=0.0, low_open=True))
        set_(self, "gamma", check_float("gamma", self.gamma, low=0.0, low_open=True))
        set_(self, "precondition", check_choice("precondition", self.precondition,
                                                registry.preconditioner_names()))
        if isinstance(self.temperatures, str):
            set_(self, "temperatures", _resolve_auto_ladder(self))
        temps = tuple(float(t) for t in self.temperatures)
        if not temps or any(not (math.isfinite(t) and t > 0) for t in temps):
            raise ConfigError("temps", "temperatures > 0", self.temperatures)
        if len(temps) > MAX_RUNGS:
            raise ConfigError("temps", f"at most {MAX_RUNGS} temperatures", len(temps))
        set_(self, "temperatures", tuple(sorted(temps)))
        set_(self, "copies", check_int("copies", self.copies, 1, 1024))
        if len(temps) * self.copies > MAX_REPLICAS:
            raise ConfigError("copies", f"at most {MAX_REPLICAS} replicas in all "
                              f"(temperatures × copies; {len(temps)} temperatures)",
                              self.copies)
        set_(self, "steps", check_int("steps", self.steps, 1, MAX_STEPS))
        set_(self, "burn_in", check_int("burn_in", self.burn_in, 0, MAX_STEPS))
        set_(self, "record_every", check_int("record_every", self.record_every, 1))
        set_(self, "swap_every", check_int("swap_every", self.swap_every, 1))
        set_(self, "snapshot_every", check_int("snapshot_every", self.snapshot_every, 0))
        set_(self, "flush_every", check_int("flush_every", self.flush_every, 1))
        set_(self, "flush_seconds",
             check_float("flush_seconds", self.flush_seconds, low=0.0, low_open=True))
        if self.adapt_ladder is not None and not isinstance(self.adapt_ladder,
                                                            (bool, np.bool_)):
            raise ConfigError("adapt_ladder", "true or false", self.adapt_ladder)
        set_(self, "representation", check_choice(
            "representation", self.representation, registry.REPRESENTATIONS))
        parse_memory(self.memory_budget)  # a bad size is refused before any work
        check_prompt_memory(self.task)
        if self.adapt_ladder is None:
            set_(self, "adapt_ladder",
                 registry.MODELS[self.model].adapt_ladder and len(self.temperatures) >= 3
                 and self.burn_in > 0)
        set_(self, "adapt_ladder", bool(self.adapt_ladder))
        check_lam_for_sampling(self.task.lam)
        registry.check(self.model, self.sampler, self.precondition, self.representation)
        if self.adapt_ladder and len(self.temperatures) < 3:
            raise ConfigError("adapt_ladder", "off with fewer than 3 temperatures",
                              len(self.temperatures))

    @property
    def total_steps(self) -> int:
        return self.burn_in + self.steps

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["task"] = self.task.to_dict()
        d["temperatures"] = list(self.temperatures)
        if self.options:
            d["options"] = dict(self.options)
        else:           # samplers without options: the dict (and its hashes) of before
            del d["options"]
        if self.init == DEFAULT_INIT:   # the default start: the dict (and hashes) of before
            del d["init"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleConfig:
        d = dict(d)           # files written before sampler options existed have none
        d["task"] = TaskConfig(**d["task"])
        d["temperatures"] = tuple(d["temperatures"])
        return cls(**d)

    def replace(self, **changes: Any) -> SampleConfig:
        return dataclasses.replace(self, **changes)
