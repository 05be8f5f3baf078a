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
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, float) and float(value).is_integer()
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


# --------------------------------------------------------------------------- task
@dataclass(frozen=True)
class TaskConfig:
    """Parameters of the in-context regression task and of the energy (DESIGN §1.1, §1.3).

    Parameters
    ----------
    D : int
        Token (input) dimension, >= 1.
    N : int
        Context length (examples per prompt), >= 1.
    P : int
        Number of pre-training prompts, >= 1.
    K : int or None
        Task diversity: size of the pool of task vectors, in 1..P. ``None`` means K = P,
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
        paper's code, whose realised covariance is LᵀL with C = LLᵀ (paper-reference.md).
    seed : int
        Root seed (>= 0) of every random number of the task, through ``SeedSequence``.
    test_prompts : int
        Number of prompts in each test set (novel-task and in-distribution), >= 1.
    """

    D: int = 20
    N: int = 100
    P: int = 10_000
    K: int | None = None
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
        set_(self, "N", check_int("N", self.N, 1))
        set_(self, "P", check_int("P", self.P, 1))
        if self.K is not None:
            k = self.K
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.P:
                note = "a pool larger than P is never fully used" if isinstance(k, int) and \
                    k > self.P else ""
                raise ConfigError("K", f"an integer in 1..P = {self.P}", k, note)
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
        set_(self, "test_prompts", check_int("test_prompts", self.test_prompts, 1))

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
