"""What every sampler's step shares: the step signature, the preconditioner, the
preconditioned gradient and move, and the base class of a sampler's description.

Conventions
-----------
A batch holds R replica slots, ``r = k·copies + a`` (rung k, copy a), rows of (R, n)
arrays. The preconditioner is a factor B with M = BBᵀ: ``pmode`` 0 is B = I, 1 is
B = diag(b) with b = diag(H)^{-1/2}, 2 is a dense B = L⁻ᵀ (A = LLᵀ, so M = A⁻¹; merged
model only). Moves are x ← x + B u and a step works with the *whitened* gradient
v = Bᵀ∇E (rows: v = g B).

The step
--------
Every sampler compiles one step with the signature :data:`STEP_SIG` (so that the one
compiled driver, :func:`spinicl.samplers.driver.run_block`, takes it as a first-class
function — its addresses, :func:`spinicl.samplers.driver.function_addresses`, looked up
once per Sampler — and Numba's disk cache still hits)::

    step(X, E, V, S,            # state: spins, energies, whitened gradients, own extra
         Xp, Ep, Vp, Sp,        # out: the proposal (and the extra state it carries)
         work, accp,            # scratch (3, R, n); out: acceptance probability (R,)
         eta, betas, copies, keys, t,     # step size and β per rung, streams, step index
         sp, sv, sm,            # the sampler's own parameters (scalars, vector, matrix)
         energy, M1, M2, v1, fp, ip,      # the model's compiled energy and data bundle
         pmode, bdiag, B, BT)   # the preconditioner

The step never commits: the driver draws the Metropolis uniform (``accp`` of 1 always
accepts), checks divergence, commits, adapts η and swaps. ``S`` is the sampler's own
per-slot state (BAOAB's momenta), shape (R, n) or (R, 0); it stays with its slot when
configurations swap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange, types

from spinicl.models.data import ENERGY_TYPE, F1, F2, I1

F3 = types.Array(types.float64, 3, "C")
U1 = types.Array(types.uint64, 1, "C")
#: Signature of every sampler's compiled step (see the module docstring).
STEP_SIG = types.void(F2, F1, F2, F2, F2, F1, F2, F2, F3, F1, F1, F1, types.int64, U1,
                      types.int64, F1, F1, F2, ENERGY_TYPE, F2, F2, F1, F1, I1,
                      types.int64, F1, F2, F2)
STEP_TYPE = types.FunctionType(STEP_SIG)
#: Scratch arrays (R, n) a step may use: work[0], work[1], work[2].
N_WORK = 3

PRECOND_CODES = {"none": 0, "diag": 1, "dense": 2}


# --------------------------------------------------------------------------- compiled
@njit(cache=True, parallel=True)
def whiten(pmode, G, V, bdiag, B):
    """Whitened gradient V = G B (rows), in place."""
    R, n = G.shape
    if pmode == 2:
        V[:, :] = np.dot(G, B)
    elif pmode == 1:
        for r in prange(R):
            for i in range(n):
                V[r, i] = G[r, i] * bdiag[i]
    else:
        for r in prange(R):
            for i in range(n):
                V[r, i] = G[r, i]


@njit(cache=True, parallel=True)
def move(X, U, out, BT):
    """out = X + U Bᵀ (rows), dense B (``out`` may be X)."""
    R, n = X.shape
    D = np.dot(U, BT)
    for r in prange(R):
        for i in range(n):
            out[r, i] = X[r, i] + D[r, i]


@njit(cache=True, inline="always")
def propose(pmode, X, Xp, U, bdiag, r, i, u):
    """Move u (whitened) of spin i of slot r: X' = X + B u for B = I or diag(b); for a
    dense B only store u (the move is one GEMM afterwards, :func:`finish_move`)."""
    if pmode == 0:
        Xp[r, i] = X[r, i] + u
    elif pmode == 1:
        Xp[r, i] = X[r, i] + u * bdiag[i]
    else:
        U[r, i] = u


@njit(cache=True)
def finish_move(pmode, X, U, Xp, BT):
    """The dense-B part of a move proposed by :func:`propose` (a no-op otherwise)."""
    if pmode == 2:
        move(X, U, Xp, BT)


@njit(types.void(ENERGY_TYPE, F2, F2, F1, F1, I1, types.int64, F1, F2, F2, F1, F2, F2),
      cache=True)
def gradient(energy, M1, M2, v1, fp, ip, pmode, bdiag, B, X, E, G, V):
    """Energies E and whitened gradients V = Bᵀ∇E of X (G: scratch for ∇E)."""
    if pmode == 0:      # no preconditioner: the whitened gradient is the gradient
        energy(X, E, V, M1, M2, v1, fp, ip)
    else:
        energy(X, E, G, M1, M2, v1, fp, ip)
        whiten(pmode, G, V, bdiag, B)


@njit(cache=True, inline="always")
def metropolis_probability(loga):
    """min(1, e^loga), 0 for a non-finite loga."""
    if not np.isfinite(loga):
        return 0.0
    if loga >= 0.0:
        return 1.0
    return np.exp(loga)


# --------------------------------------------------------------------------- set-up
class Preconditioner:
    """The factor B of M = BBᵀ as the kernels take it.

    Attributes
    ----------
    name : {"none", "diag", "dense"}
    pmode : int
    bdiag : ndarray (n,) or (0,)
    B, BT : ndarray (n, n) or (0, 0)
        B = L⁻ᵀ and Bᵀ = L⁻¹ (dense only).
    """

    def __init__(self, model, name: str):
        from spinicl import linalg

        self.name = name
        self.pmode = PRECOND_CODES[name]
        self.bdiag = np.zeros(0)
        self.B = np.zeros((0, 0))
        self.BT = np.zeros((0, 0))
        if name == "diag":
            self.bdiag = np.ascontiguousarray(1.0 / np.sqrt(model.diag_curvature()))
        elif name == "dense":
            Linv = np.ascontiguousarray(linalg.inverse_cholesky(model.cholesky(True)))
            self.B = np.ascontiguousarray(Linv.T)       # v = g B = g L⁻ᵀ
            self.BT = Linv                              # move: x += u Bᵀ = u L⁻¹

    @property
    def args(self) -> tuple:
        return (self.pmode, self.bdiag, self.B, self.BT)


class Kernel:
    """A sampler's description: its compiled step and what the driver needs around it.

    Subclasses (one per sampler module) set the class attributes and may override the
    methods; an instance is built per :class:`~spinicl.samplers.driver.Sampler` with
    the model, the preconditioner name and the sampler's own options.
    """

    #: Registry name.
    name = "base"
    #: The compiled step (signature :data:`STEP_SIG`).
    step: Any = None
    #: Width of the per-slot extra state S: "n" (one number per spin) or 0.
    extra_state = 0
    #: Adapt the step size during burn-in (Robbins–Monro toward ``target_accept``).
    adapts = False
    #: Default target acceptance of the adaptation.
    target_accept = 0.574
    #: Stability bound: 1 → 2/λ_max (first-order moves), 2 → 2/√λ_max (second order).
    bound_order = 1
    #: Default step as a fraction of the stability bound.
    step_fraction = 0.1
    #: Every proposal is accepted (the acceptance reported is 1).
    always_accepts = True

    def __init__(self, model, precondition: str, **options: Any):
        self.model = model
        self.precondition = precondition
        self.options = options

    def check(self) -> None:
        """Refuse unsupported model/option combinations (beyond the registry's rules)."""

    def params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sampler's own parameters (sp, sv, sm) of the step."""
        return np.zeros(0), np.zeros(0), np.zeros((0, 0))

    def default_step(self, bound: np.ndarray) -> np.ndarray:
        """Default step per rung from the stability bound."""
        return self.step_fraction * bound

    def init_extra(self, betas_slot: np.ndarray, n: int, seed: int) -> np.ndarray:
        """The initial extra state S, shape (R, width)."""
        return np.zeros((betas_slot.shape[0], 0))

    def bound_text(self) -> str:
        return "2/sqrt(lambda_max(A))" if self.bound_order == 2 else "2/lambda_max(A)"
