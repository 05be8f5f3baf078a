"""Hamiltonians of linear attention over a batch of replicas (docs/model.md §1.2–1.3, §1.5).

A model is one module behind one interface, the only thing a sampler, the runner or the
CLI asks of it (none of them branches on the model's type):

================================  ========================================================
``name``, ``D``, ``lam``           ``"merged"`` / ``"factored"``, token dimension, λ
``n_spins``, ``active_spins()``    dimension n, and the mask of spins entering predictions
``representation``                 ``"dense"`` or ``"matrix-free"`` (the data term)
``kernel()``                       its compiled batch energy-and-gradient (one signature
                                   for all models, :data:`~.data.ENERGY_SIG`) and the data
                                   bundle it takes
``energy_and_grad(W)``             the same in numpy (reference; (R,), (R, n))
``effective_weights(W)``           merged weights (R, (D+1)²), what observables read
``reference()``                    the default start (ridge mean / its balanced factors)
``diag_curvature()``               Hessian diagonal there (diagonal preconditioner, widths)
``curvature(betas, precondition)`` λ_max of the (preconditioned) Hessian per rung;
                                   ``curvature_exact`` says whether it is exact
``gaussian``                       the Boltzmann law is Gaussian: then ``cholesky()``,
                                   ``ridge_mean()``, ``ground_energy()`` give exact draws
``cholesky(required)``             L with A = LLᵀ, or None (required: ConfigError if none)
``ground_state(required)``         its exact ground state (:class:`~.data.GroundState`:
                                   merged weights, energy, how found; ``W`` None where
                                   no exact solver exists)
``with_data(data)``                the same model on another data term (a minibatch)
================================  ========================================================

Every model works on a batch of R replicas at once: spins ``W`` of shape (R, n_spins),
observables on the effective weights, row-major W_ab at index a·(D+1) + b. Modules:
:mod:`.data` (the data term E₀ in its dense and matrix-free representations, and the
compiled-kernel conventions), :mod:`.merged`, :mod:`.factored`. :func:`build_model`
picks the representation from a memory budget (``representation="auto"``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from spinicl.config import (
    ConfigError,
    check_choice,
    check_float,
    check_int,
    format_bytes,
    parse_memory,
)
from spinicl.models.data import (
    ENERGY_SIG,
    ENERGY_TYPE,
    DataTerm,
    DenseData,
    GroundState,
    KernelData,
    MatrixFreeData,
    active_mask,
    alignment,
    gd_cosine,
    mse,
    predict,
)
from spinicl.models.factored import FactoredModel
from spinicl.models.merged import MergedModel
from spinicl.prompts import PromptSet, Task

REPRESENTATIONS = ("auto", "dense", "matrix-free")


class Model(Protocol):
    """What a sampler needs from a model (see the module docstring)."""

    name: str
    lam: float
    gaussian: bool
    curvature_exact: bool

    @property
    def D(self) -> int: ...
    @property
    def n_spins(self) -> int: ...
    @property
    def representation(self) -> str: ...
    def active_spins(self) -> np.ndarray: ...
    def kernel(self) -> tuple[Any, KernelData]: ...
    def energy_and_grad(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def effective_weights(self, W: np.ndarray) -> np.ndarray: ...
    def reference(self) -> np.ndarray: ...
    def diag_curvature(self) -> np.ndarray: ...
    def curvature(self, betas: np.ndarray, precondition: str = "none") -> np.ndarray: ...
    def cholesky(self, required: bool = False) -> np.ndarray | None: ...
    def ridge_mean(self) -> np.ndarray: ...
    def ground_state(self, required: bool = False) -> GroundState: ...
    def with_data(self, data: DataTerm) -> Model: ...


#: The model classes by name (the registry's entries point here).
MODEL_CLASSES = {"merged": MergedModel, "factored": FactoredModel}
MODELS = tuple(MODEL_CLASSES)


def choose_representation(D: int, P: int, representation: str = "auto",
                          memory_budget=None) -> str:
    """Pick the data representation of E₀ within a memory budget.

    ``auto`` prefers the dense Gram matrix when P > n/2 (one n²R GEMM costs less than the
    two P·n·R matrix-free GEMMs) and it fits the budget; otherwise the matrix-free form.

    Parameters
    ----------
    D, P : int
        Token dimension and number of prompts.
    representation : {"auto", "dense", "matrix-free"}
    memory_budget : int, str or None
        Bytes (or a size such as ``"2GB"``); None means half the available memory.

    Returns
    -------
    str
        ``"dense"`` or ``"matrix-free"``.

    Raises
    ------
    ConfigError
        When the requested (or any) representation does not fit the budget.
    """
    representation = check_choice("representation", representation, REPRESENTATIONS)
    budget = parse_memory(memory_budget)
    need = {"dense": DenseData.bytes_needed(D, P),
            "matrix-free": MatrixFreeData.bytes_needed(D, P)}
    if representation != "auto":
        if need[representation] > budget:
            raise ConfigError(
                "memory_budget", f">= {format_bytes(need[representation])} for the "
                f"{representation} representation at D={D}, P={P}", format_bytes(budget))
        return representation
    n = (D + 1) ** 2
    if P > n / 2 and need["dense"] <= budget:
        return "dense"
    if need["matrix-free"] <= budget:
        return "matrix-free"
    raise ConfigError("memory_budget", f">= {format_bytes(min(need.values()))} at D={D}, "
                      f"P={P}", format_bytes(budget))


def build_data(prompts: PromptSet, representation: str) -> DataTerm:
    """The data term of ``prompts`` in the given representation."""
    if representation == "dense":
        return DenseData.from_prompts(prompts)
    return MatrixFreeData(prompts)


def build_model(task: Task, model: str = "merged", *, lam: float | None = None,
                dk: int | None = None, representation: str = "auto",
                memory_budget=None) -> Model:
    """Build the Hamiltonian of a task.

    Parameters
    ----------
    task : Task
    model : {"merged", "factored"}
    lam : float, optional
        Weight decay λ (default: ``task.config.lam``), >= 0.
    dk : int, optional
        Rank of the factors of the factored model, >= 1 (default D+1).
    representation : {"auto", "dense", "matrix-free"}
    memory_budget : int, str or None

    Returns
    -------
    MergedModel or FactoredModel
    """
    model = check_choice("model", model, MODELS)
    lam = task.config.lam if lam is None else check_float("lam", lam, low=0.0)
    D, P = task.config.D, task.config.P
    rep = choose_representation(D, P, representation, memory_budget)
    data = build_data(task.train, rep)
    if model == "factored":
        dk = D + 1 if dk is None else check_int("dk", dk, 1)
        return FactoredModel(data, lam, dk)
    return MergedModel(data, lam)


__all__ = [
    "ENERGY_SIG", "ENERGY_TYPE", "MODELS", "REPRESENTATIONS", "DataTerm", "DenseData",
    "FactoredModel", "GroundState", "KernelData", "MatrixFreeData", "MergedModel", "Model", "active_mask",
    "alignment", "build_data", "build_model", "choose_representation", "gd_cosine", "mse",
    "predict",
]
