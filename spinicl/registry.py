"""One registry of the models, samplers and preconditioners, their options and the rules
of which go together.

Read by config validation (:class:`spinicl.config.SampleConfig`), the CLI (choices, help
and the samplers' own options), sweeps (their ``[sampler]`` keys), ``bench`` and
:func:`spinicl.samplers.make_sampler`. Nothing here imports Numba: an entry names the
module that implements it, loaded on first use.

Adding a sampler: write its module (a compiled step and a
:class:`~spinicl.samplers.common.Kernel`) and add one :class:`SamplerEntry` below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spinicl.config import ConfigError, check_choice, check_float, check_int


@dataclass(frozen=True)
class Option:
    """A sampler's own option: ``--NAME`` on the command line, a key in TOML files.

    ``kind`` is ``"int"`` or ``"float"``; ``low``/``high`` are inclusive bounds.
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None

    def check(self, value: Any) -> Any:
        if self.kind == "int":
            return check_int(self.name, value, self.low, self.high)
        return check_float(self.name, value, low=self.low, high=self.high)


def _merged_spins(D: int, dk: int | None = None) -> int:
    return (D + 1) ** 2


def _factored_spins(D: int, dk: int | None = None) -> int:
    return 2 * (dk or D + 1) * (D + 1)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    help: str
    #: The Boltzmann law is Gaussian (exact draws, a Cholesky factor when dense; its
    #: theory is the closed form of spinicl.theory.gaussian). Otherwise its theory is its
    #: exact ground state (the model's ``ground_state()``, ``theory_summary()``).
    gaussian: bool
    #: Number of spins at token dimension D and factor rank dk (None: the default).
    spins: Callable[[int, int | None], int] = _merged_spins
    #: Default of ``adapt_ladder`` (a rugged landscape: adapt the replica-exchange ladder
    #: during burn-in when there are >= 3 rungs).
    adapt_ladder: bool = False
    #: Has factors of a rank d_k (``--dk``).
    factor_rank: bool = False


@dataclass(frozen=True)
class SamplerEntry:
    name: str
    module: str
    kernel: str
    help: str
    options: tuple[Option, ...] = ()
    #: Needs a Gaussian model with a Cholesky factor (dense representation).
    needs_cholesky: bool = False
    #: Preconditioners it accepts (None: all).
    preconditioners: tuple[str, ...] | None = None
    #: Models it runs on (None: all).
    models: tuple[str, ...] | None = None
    #: Takes the friction γ (``--gamma``).
    friction: bool = False
    #: Independent exact draws: the reference of ``bench`` (one row, no preconditioner).
    exact_reference: bool = False
    #: Its stationary law is not the Boltzmann law: "module:function" of that law's
    #: closed-form averages on a Gaussian model and "module:NAMES" of the observables it
    #: gives (see :func:`stationary_law`), and a note on the bias for tables.
    stationary_law: str | None = None
    stationary_observables: str | None = None
    stationary_note: str = ""


@dataclass(frozen=True)
class PreconditionerEntry:
    name: str
    help: str
    needs_cholesky: bool = False


MODELS: dict[str, ModelEntry] = {
    "merged": ModelEntry("merged", "merged weights W ((D+1)² spins, Gaussian law)", True,
                         spins=_merged_spins),
    "factored": ModelEntry("factored", "factored W = W_qᵀW_k (2·d_k·(D+1) spins, quartic)",
                           False, spins=_factored_spins, adapt_ladder=True,
                           factor_rank=True),
}

SAMPLERS: dict[str, SamplerEntry] = {
    "mala": SamplerEntry("mala", "spinicl.samplers.mala", "MALA",
                         "Metropolis-adjusted Langevin (step adapted during burn-in)"),
    "ula": SamplerEntry("ula", "spinicl.samplers.ula", "ULA",
                        "unadjusted Langevin (biased at finite step)",
                        stationary_law="spinicl.theory.gaussian:ula_references",
                        stationary_observables="spinicl.theory.gaussian:ULA_OBSERVABLES",
                        stationary_note="its stationary covariance is (beta A)^-1 "
                                        "(I - eta A/2)^-1, not (beta A)^-1."),
    "baoab": SamplerEntry("baoab", "spinicl.samplers.baoab", "BAOAB",
                          "underdamped Langevin, BAOAB splitting (friction --gamma)",
                          friction=True),
    "exact": SamplerEntry("exact", "spinicl.samplers.exact", "Exact",
                          "exact independent Gaussian draws (merged, dense)",
                          needs_cholesky=True, preconditioners=("none",),
                          exact_reference=True),
    "hmc": SamplerEntry("hmc", "spinicl.samplers.hmc", "HMC",
                        "Hamiltonian Monte Carlo (step adapted during burn-in)",
                        options=(Option("leapfrog", "int", 10, "HMC leapfrog steps per "
                                        "move (one gradient each).", 1, 1000),)),
    "gibbs": SamplerEntry("gibbs", "spinicl.samplers.gibbs", "Gibbs",
                          "exact block heat bath W_q|W_k, W_k|W_q (factored; any "
                          "representation: uses A0)", preconditioners=("none",),
                          models=("factored",),
                          options=(Option("overrelax", "float", -0.5, "gibbs: "
                                          "overrelaxation alpha of each block draw, "
                                          "x' = mu + alpha (x - mu) + sqrt(1 - alpha^2) "
                                          "sigma z about the conditional mean mu "
                                          "(0: plain heat bath).", -0.99, 0.99),)),
}

PRECONDITIONERS: dict[str, PreconditionerEntry] = {
    "none": PreconditionerEntry("none", "no preconditioner"),
    "diag": PreconditionerEntry("diag", "diagonal: the inverse Hessian diagonal at the "
                                "model's reference point"),
    "dense": PreconditionerEntry("dense", "dense A⁻¹ through the Cholesky factor (merged, "
                                 "dense representation)", needs_cholesky=True),
}

REPRESENTATIONS = ("auto", "dense", "matrix-free")
#: The model of a run that names none.
DEFAULT_MODEL = "merged"

_loaded: dict[str, Any] = {}


def model_names() -> tuple[str, ...]:
    return tuple(MODELS)


def sampler_names() -> tuple[str, ...]:
    return tuple(SAMPLERS)


def preconditioner_names() -> tuple[str, ...]:
    return tuple(PRECONDITIONERS)


def check_dk(model: str, dk: int | None) -> None:
    """ConfigError ``dk`` when a rank d_k is given for a model without factors."""
    if dk is not None and not MODELS[check_choice("model", model, model_names())].factor_rank:
        with_factors = ", ".join(k for k, v in MODELS.items() if v.factor_rank)
        raise ConfigError("dk", f"given only with --model {with_factors} (the {model} "
                          "model has no factors)", dk)


def model_spins(model: str, D: int, dk: int | None = None) -> int:
    """Number of spins of ``model`` at token dimension D (factor rank dk)."""
    return MODELS[check_choice("model", model, model_names())].spins(D, dk)


def _attribute(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class StationaryLaw:
    """A sampler's own stationary law on a Gaussian model (:func:`stationary_law`)."""

    #: (theory, model, task, betas, steps, precondition) → dict name → (T,)
    references: Callable[..., dict]
    #: The observables ``references`` gives.
    observables: tuple[str, ...]
    note: str


def stationary_law(name: str) -> StationaryLaw | None:
    """The stationary law of sampler ``name`` when it is not the Boltzmann law (ULA at
    a finite step), else None."""
    entry = SAMPLERS[check_choice("sampler", name, sampler_names())]
    if entry.stationary_law is None:
        return None
    return StationaryLaw(_attribute(entry.stationary_law),
                         tuple(_attribute(entry.stationary_observables)),
                         entry.stationary_note)


def all_sampler_options() -> dict[str, tuple[str, Option]]:
    """Every sampler's own options by name: (sampler, Option)."""
    return {o.name: (s.name, o) for s in SAMPLERS.values() for o in s.options}


def kernel(name: str):
    """The :class:`~spinicl.samplers.common.Kernel` class of a sampler (imported now)."""
    entry = SAMPLERS[check_choice("sampler", name, sampler_names())]
    if name not in _loaded:
        _loaded[name] = getattr(importlib.import_module(entry.module), entry.kernel)
    return _loaded[name]


def sampler_options(name: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
    """A sampler's own options, checked, with defaults filled in.

    Options of other samplers are refused (unless left at their default), so a typo
    or a forgotten ``--sampler`` is not silently ignored.
    """
    entry = SAMPLERS[check_choice("sampler", name, sampler_names())]
    mine = {o.name: o for o in entry.options}
    others = all_sampler_options()
    out = {}
    for key, value in (given or {}).items():
        if key in mine:
            out[key] = mine[key].check(value)
        elif key in others:
            owner, opt = others[key]
            if value is not None and value != opt.default:
                raise ConfigError(key, f"used only with --sampler {owner}", value)
        else:
            raise ConfigError("options", "options of the sampler ("
                              + (", ".join(mine) or "none") + ")", key)
    for key, opt in mine.items():
        out.setdefault(key, opt.default)
    return out


def _cholesky_available(gaussian: bool, representation: str | None) -> bool | None:
    if not gaussian:
        return False
    if representation in (None, "auto"):
        return None     # not known yet
    return representation == "dense"


def check(model: str, sampler: str, precondition: str,
          representation: str | None = None, built: bool = False) -> None:
    """Refuse a combination of model, sampler and preconditioner that cannot run.

    ``representation`` None or ``"auto"``: checks that need it are left for
    :func:`check_combination` once the model is built.
    """
    m = MODELS[check_choice("model", model, model_names())]
    s = SAMPLERS[check_choice("sampler", sampler, sampler_names())]
    p = PRECONDITIONERS[check_choice("precondition", precondition, preconditioner_names())]
    chol = _cholesky_available(m.gaussian, representation)
    if s.needs_cholesky:
        if not m.gaussian:
            if built:
                raise ConfigError("model", f"merged for the {sampler} sampler (the {model} "
                                  "model is not Gaussian)", model)
            usable = ", ".join(k for k, v in SAMPLERS.items() if not v.needs_cholesky)
            raise ConfigError("sampler", f"{usable} for the {model} model (the {sampler} "
                              "sampler needs a Gaussian model: merged)", sampler)
        if chol is False:
            raise ConfigError("representation", f"dense for the {sampler} sampler (it "
                              "needs the Cholesky factor of A)", representation)
    if s.models is not None and model not in s.models:
        need = " or ".join(s.models)
        if built:
            raise ConfigError("model", f"{need} for the {sampler} sampler", model)
        usable = ", ".join(k for k, v in SAMPLERS.items()
                           if v.models is None or model in v.models)
        raise ConfigError("sampler", f"{usable} for the {model} model (the {sampler} "
                          f"sampler needs the {need} model)", sampler)
    if s.preconditioners is not None and precondition not in s.preconditioners:
        raise ConfigError("precondition", " or ".join(s.preconditioners)
                          + f" for the {sampler} sampler", precondition)
    if p.needs_cholesky:
        if not m.gaussian:
            raise ConfigError("precondition", f"none or diag for the {model} model (the "
                              f"dense A⁻¹ exists for the merged model only)", precondition)
        if chol is False:
            raise ConfigError("precondition", "none or diag with the matrix-free "
                              "representation (dense needs the Cholesky factor of A)",
                              precondition)


def check_combination(model, sampler: str, precondition: str) -> None:
    """:func:`check` for a built model (any object with ``name`` and ``representation``)."""
    name = getattr(model, "name", None)
    if name not in MODELS:
        raise ConfigError("model", "a model of spinicl.models (build_model)",
                          type(model).__name__)
    check(name, sampler, precondition, model.representation, built=True)
