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
``spinicl bench --suite --sampler package.module:make_sampler`` benches it.
"""

from __future__ import annotations

import importlib
import math
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


def load_sampler(spec: str) -> UserSampler:
    """Import ``"package.module:factory"``.

    Raises
    ------
    ConfigError
        (parameter ``sampler``) for a spec without ``:``, a module that does not import,
        a missing attribute or one that is not callable.
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
        raise ConfigError("sampler", "a module that imports without error", spec,
                          f"{type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError("sampler", f"a module:factory whose module defines {attr}", spec)
    if not callable(factory):
        raise ConfigError("sampler", "module:factory naming a callable", spec)
    return UserSampler(spec, factory)


def build_user_sampler(user: UserSampler, target: SamplerTarget) -> Any:
    """Call the factory; check that the result has callable ``init`` and ``step``."""
    try:
        sampler = user.factory(target)
    except Exception as exc:  # noqa: BLE001 - the user's factory
        raise ConfigError("sampler", "a factory that builds a sampler for the target",
                          user.spec, f"{type(exc).__name__}: {exc}") from None
    for fn in ("init", "step"):
        if not callable(getattr(sampler, fn, None)):
            raise ConfigError("sampler", "a factory returning an object with init(position) "
                              "and step(rng, state)", user.spec, f"no callable {fn}")
    return sampler


def check_state(user: UserSampler, state: Any, shape: tuple[int, int]) -> np.ndarray:
    """``state.position`` as a float array of ``shape``, else ConfigError."""
    pos = getattr(state, "position", None)
    if pos is None:
        raise ConfigError("sampler", "a sampler whose state has .position", user.spec)
    pos = np.asarray(pos)
    if pos.shape != shape:
        raise ConfigError("sampler", f"a sampler whose state.position has shape {shape}",
                          user.spec, f"got {pos.shape}")
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


def validate(user: UserSampler, target: SamplerTarget, start: np.ndarray,
             seed: int) -> None:
    """Build the sampler, init on ``start`` and take one step: refuse a sampler that
    does not follow the interface before any measurement (ConfigError)."""
    sampler = build_user_sampler(user, target)
    try:
        state = sampler.init(np.array(start, copy=True))
    except Exception as exc:  # noqa: BLE001
        raise ConfigError("sampler", "a sampler whose init(position) runs", user.spec,
                          f"{type(exc).__name__}: {exc}") from None
    check_state(user, state, start.shape)
    try:
        out = sampler.step(np.random.default_rng(seed), state)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError("sampler", "a sampler whose step(rng, state) runs", user.spec,
                          f"{type(exc).__name__}: {exc}") from None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ConfigError("sampler", "a sampler whose step returns (state, info)", user.spec)
    check_state(user, out[0], start.shape)


__all__ = ["SamplerTarget", "UserSampler", "acceptance_of", "build_user_sampler",
           "check_state", "load_sampler", "validate"]
