"""Your own sampler in spinicl's suite: the interface and its loader (docs/model.md §6.2).

The interface is modelled on BlackJAX: a factory receives the target and returns an
object with two functions over an explicit state, for a batch of R chains at once::

    def make_sampler(target) -> sampler
    sampler.init(position)            -> state       # position (R, n) float64
    sampler.step(rng, state)          -> (state, info)

* ``state.position`` is the (R, n) array of the chains' positions (any other fields are
  yours: energies, gradients, momenta, step sizes);
* ``rng`` is a ``numpy.random.Generator`` seeded from the suite's recorded seed;
* ``info`` may be None or have ``info.acceptance`` (a number or an (R,) array).

``target`` (:class:`SamplerTarget`) hands over the model: ``n`` (spins per chain),
``beta``, ``lam``, ``curvature`` (λ_max of the energy's Hessian: a step-size scale),
``energy(W) -> (R,)`` and ``energy_and_grad(W) -> ((R,), (R, n))`` (one batched matrix
product for the merged model), the log density being −β·energy. The step may be NumPy or
Numba; the suite times it exactly as it times a built-in sampler.

``load_sampler("package.module:make_sampler")`` imports the factory;
``spinicl bench --suite --sampler package.module:make_sampler`` benches it. Before any
measurement the suite builds every user sampler on every chosen target, inits it and takes
one step (:func:`validate`): a factory, ``init`` or ``step`` that raises or calls
``sys.exit``, or a state whose position is not a finite, real floating-point (R, n)
array, is refused with one line naming ``sampler``.
"""

from __future__ import annotations

import importlib
import math
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spinicl.config import ConfigError


@dataclass(frozen=True)
class SamplerTarget:
    """What a user sampler is given.

    Attributes
    ----------
    name : str
        The suite target's name.
    n : int
        Spins per chain.
    beta : float
        Inverse temperature: the log density is −β·E(W) + const.
    lam : float
        Weight decay λ of E (the smallest curvature of the merged model is ≥ λ).
    curvature : float
        λ_max of the Hessian of E (exact for the merged model; an estimate at the
        reference point for the factored one).
    energy : callable
        ``energy(W)``: W (R, n) → E (R,).
    energy_and_grad : callable
        ``energy_and_grad(W)``: W (R, n) → (E (R,), ∇E (R, n)).
    """

    name: str
    n: int
    beta: float
    lam: float
    curvature: float
    energy: Callable[[np.ndarray], np.ndarray]
    energy_and_grad: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def from_model(cls, name: str, model: Any, beta: float) -> SamplerTarget:
        """The target of a spinicl model (its numpy energy and gradient)."""
        def energy(W: np.ndarray) -> np.ndarray:
            return model.energy_and_grad(W)[0]

        curv = float(np.max(model.curvature(np.array([beta]))))
        return cls(name=name, n=int(model.n_spins), beta=float(beta), lam=float(model.lam),
                   curvature=curv, energy=energy, energy_and_grad=model.energy_and_grad)


@dataclass(frozen=True)
class UserSampler:
    """A loaded factory and the spec it came from."""

    spec: str
    factory: Callable[[SamplerTarget], Any]

    @property
    def label(self) -> str:
        """Row name: the spec (module:factory)."""
        return self.spec


def raised_by_the_sampler(exc: BaseException) -> bool:
    """Whether a ``BaseException`` that escaped a user's code is the code's own doing.

    ``SystemExit`` (``sys.exit`` in a factory), ``GeneratorExit`` and any other
    ``BaseException`` are; a stop by a signal is not: :class:`spinicl.signals.Stopped`
    (the command line's SIGINT/SIGTERM), and a ``KeyboardInterrupt`` while SIGINT has
    Python's default handler (a real Ctrl-C outside the command line). Under the command
    line SIGINT raises ``Stopped``, so a ``KeyboardInterrupt`` there came from the code.
    """
    from spinicl.signals import Stopped

    if isinstance(exc, Stopped):
        return False
    if isinstance(exc, KeyboardInterrupt):
        try:
            return signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        except ValueError:      # not the main thread: assume a real interrupt
            return False
    return True


def _refusal(user_spec: str, allowed: str, exc: BaseException) -> ConfigError:
    """The one-line refusal of a user's code that raised ``exc``."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return ConfigError("sampler", allowed, user_spec,
                       f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def load_sampler(spec: str) -> UserSampler:
    """Import ``"package.module:factory"``.

    Raises
    ------
    ConfigError
        (parameter ``sampler``) for a spec without ``:``, a module that does not import
        (or exits while importing), a missing attribute or one that is not callable.
    """
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError("sampler", "module:factory, e.g. my_package.my_module:make_sampler",
                          spec)
    mod_name, attr = (x.strip() for x in spec.split(":"))
    if not mod_name or not attr:
        raise ConfigError("sampler", "module:factory, e.g. my_package.my_module:make_sampler",
                          spec)
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError("sampler", "an importable module:factory (is its folder on "
                          "PYTHONPATH?)", spec, f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a user module failing at import
        raise _refusal(spec, "a module that imports without error", exc) from None
    except BaseException as exc:  # sys.exit at import; a real interrupt goes on
        if not raised_by_the_sampler(exc):
            raise
        raise _refusal(spec, "a module that imports without error", exc) from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError("sampler", f"a module:factory whose module defines {attr}", spec)
    if not callable(factory):
        raise ConfigError("sampler", "module:factory naming a callable", spec)
    return UserSampler(spec, factory)


def call_user(user: UserSampler, allowed: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, a call into the user's code; whatever it raises (``sys.exit``
    included, a real interrupt excluded: :func:`raised_by_the_sampler`) becomes
    ConfigError ``sampler`` saying ``allowed``."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the user's code
        raise _refusal(user.spec, allowed, exc) from None
    except BaseException as exc:
        if not raised_by_the_sampler(exc):
            raise
        raise _refusal(user.spec, allowed, exc) from None


def build_user_sampler(user: UserSampler, target: SamplerTarget) -> Any:
    """Call the factory; check that the result has callable ``init`` and ``step``."""
    sampler = call_user(user, "a factory that builds a sampler for the target",
                        user.factory, target)
    for fn in ("init", "step"):
        if not callable(getattr(sampler, fn, None)):
            raise ConfigError("sampler", "a factory returning an object with init(position) "
                              "and step(rng, state)", user.spec, f"no callable {fn}")
    return sampler


def check_state(user: UserSampler, state: Any, shape: tuple[int, int],
                after: str = "init") -> np.ndarray:
    """``state.position``: a finite, real floating-point array of ``shape``, else
    ConfigError ``sampler`` (``after`` names the call that returned the state)."""
    pos = getattr(state, "position", None)
    if pos is None:
        raise ConfigError("sampler", "a sampler whose state has .position", user.spec,
                          f"none after {after}")
    try:
        pos = np.asarray(pos)
    except Exception as exc:  # noqa: BLE001 - an exotic object
        raise _refusal(user.spec, "a sampler whose state.position is an array", exc) \
            from None
    if pos.shape != shape:
        raise ConfigError("sampler", f"a sampler whose state.position has shape {shape}",
                          user.spec, f"got {pos.shape} after {after}")
    if not np.issubdtype(pos.dtype, np.floating):
        raise ConfigError("sampler", "a sampler whose state.position holds real "
                          "floating-point numbers", user.spec,
                          f"got dtype {pos.dtype} after {after}")
    bad = int(np.size(pos) - np.count_nonzero(np.isfinite(pos)))
    if bad:
        raise ConfigError("sampler", "a sampler whose state.position is finite", user.spec,
                          f"{bad} of {pos.size} entries are NaN or infinite after {after}")
    return pos


def acceptance_of(info: Any) -> float:
    """Mean ``info.acceptance`` (NaN when the sampler reports none)."""
    acc = getattr(info, "acceptance", None)
    if acc is None:
        return math.nan
    try:
        return float(np.mean(acc))
    except (TypeError, ValueError):
        return math.nan


def validate(user: UserSampler, target: SamplerTarget, start: np.ndarray, seed: int,
             other_starts: tuple[np.ndarray, ...] = ()) -> None:
    """Build the sampler, init on ``start`` and take one step, then init on each of
    ``other_starts``: refuse a sampler that does not follow the interface before any
    measurement (ConfigError ``sampler``).

    The states must hold finite, real floating-point positions of the start's shape; a
    factory, ``init`` or ``step`` that raises (or calls ``sys.exit``) is refused.
    """
    sampler = build_user_sampler(user, target)
    state = call_user(user, "a sampler whose init(position) runs", sampler.init,
                      np.array(start, copy=True))
    check_state(user, state, start.shape, "init")
    out = call_user(user, "a sampler whose step(rng, state) runs", sampler.step,
                    np.random.default_rng(seed), state)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ConfigError("sampler", "a sampler whose step returns (state, info)", user.spec,
                          f"got {type(out).__name__}")
    check_state(user, out[0], start.shape, "the first step")
    for other in other_starts:
        state = call_user(user, "a sampler whose init(position) runs", sampler.init,
                          np.array(other, copy=True))
        check_state(user, state, other.shape, "init")


__all__ = ["SamplerTarget", "UserSampler", "acceptance_of", "build_user_sampler",
           "call_user", "check_state", "load_sampler", "raised_by_the_sampler", "validate"]
