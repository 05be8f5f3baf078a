"""The sampler suite's targets: fixed tasks whose answers are known (docs/model.md §6).

A target is a task configuration, a model (merged or factored, with its d_k and data
representation) and an inverse temperature β, with the references a sampler is measured
against:

* merged model (Gaussian, docs/model.md §1.4): the exact mean m = A⁻¹h, the covariance
  diagonal diag((βA)⁻¹), the spectrum of A, the slowest active mode (eigenvector u of A's
  smallest eigenvalue on the active spins), the exact energy mean E(m) + n/(2β) and
  variance n/(2β²), and the slowest-mode projection (W − m)·u ~ N(0, 1/(βλ_min));
* factored model (quartic, docs/model.md §1.5): the ground-state reference of
  ``model.ground_state()`` — exact (the nuclear-norm optimum) when its rank is ≤ d_k,
  else the best of ``REFERENCE_RESTARTS`` (32) seeded local minimisations ("best
  known"). A factored target has no condition number (its Hessian depends on the
  point); ``References.merged_condition_number`` is that of the merged A of its data.

Dense targets get their references from one symmetric eigendecomposition of A. The large
matrix-free target has P < n prompts, so A = λI + SᵀS/P is λ plus a rank-P term: its
references come exactly from the P × P matrix SSᵀ/P (Woodbury), without ever forming the
n × n matrix A.

    model, refs = build_target("tiny-merged")     # the model and its References
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinicl.config import ConfigError, TaskConfig

#: Default inverse temperature of every full-size target: "low temperature" (docs/model.md §1.3).
LOW_TEMPERATURE_BETA = 1e4


@dataclass(frozen=True)
class Target:
    """One target of the suite.

    Attributes
    ----------
    name : str
    description : str
        One line.
    task : TaskConfig
    model : {"merged", "factored"}
    beta : float
        Inverse temperature of the measured chains.
    representation : {"dense", "matrix-free"}
    dk : int or None
        Rank of the factors (factored model).
    samplers : tuple of str
        spinicl's rows by default (:func:`spinicl.suite.parse_sampler_spec` syntax).
    ladder_temperatures : tuple of float
        Replica-exchange ladder of the ``+re`` rows, coldest (1/β) first.
    n : int
        Spins per chain (recorded here so that the suite can be listed without building).
    condition_number : float
        λ_max/λ_min of A on the active spins (merged targets); NaN for factored targets,
        which have none. Measured at the target's seed; :func:`build_target` recomputes
        it.
    group : str
        ``"main"`` (the suite) or ``"tiny"`` (seconds-long targets for tests).
    """

    name: str
    description: str
    task: TaskConfig
    model: str
    beta: float
    representation: str
    dk: int | None
    samplers: tuple[str, ...]
    ladder_temperatures: tuple[float, ...] = ()
    n: int = 0
    condition_number: float = math.nan
    group: str = "main"

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly description (task as a dict)."""
        return {"name": self.name, "description": self.description,
                "task": self.task.to_dict(), "model": self.model, "beta": self.beta,
                "representation": self.representation, "dk": self.dk,
                "samplers": list(self.samplers),
                "ladder_temperatures": list(self.ladder_temperatures), "n": self.n,
                "condition_number": self.condition_number, "group": self.group}


def _ladder(beta: float, t_max: float, rungs: int) -> tuple[float, ...]:
    t = np.geomspace(1.0 / beta, t_max, rungs)
    return tuple(float(x) for x in t)


_MERGED_SAMPLERS = ("exact", "mala/diag", "baoab/diag", "baoab/dense")
_FACTORED_SAMPLERS = ("mala/diag", "hmc/diag", "gibbs", "mala/diag+re", "gibbs+re")

#: Every target by name (main suite first, then the tiny ones).
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("merged-well", "merged, D=20, P=1e4, lambda=0.01: well conditioned (the README's "
           "default task)", TaskConfig(D=20, N=100, P=10_000, lam=0.01, test_prompts=1),
           "merged", LOW_TEMPERATURE_BETA, "dense", None, _MERGED_SAMPLERS,
           n=441, condition_number=26.8),
    Target("merged-ill", "merged, D=20, P=100 < 420 active spins, lambda=1e-3: the "
           "unspanned directions feel only lambda", TaskConfig(D=20, N=100, P=100, lam=1e-3,
                                                              test_prompts=1),
           "merged", LOW_TEMPERATURE_BETA, "dense", None, _MERGED_SAMPLERS,
           n=441, condition_number=3025.0),
    Target("merged-correlated", "merged, D=20, P=1e4, tokens correlated (rho=0.5), label "
           "noise sigma_eps=0.5", TaskConfig(D=20, N=100, P=10_000, lam=0.01, rho=0.5,
                                             sigma_eps=0.5, test_prompts=1),
           "merged", LOW_TEMPERATURE_BETA, "dense", None, _MERGED_SAMPLERS,
           n=441, condition_number=38.9),
    Target("merged-large", "merged, D=100 (n=10201), N=50, P=2000, matrix-free: one "
           "gradient is two GEMMs through the prompt factors",
           TaskConfig(D=100, N=50, P=2000, lam=0.01, test_prompts=1),
           "merged", LOW_TEMPERATURE_BETA, "matrix-free", None,
           ("mala/diag", "baoab/diag", "baoab/none"), n=10_201, condition_number=180.3),
    Target("factored-dk2", "factored W = Wq^T Wk, d_k=2 < rank 4 of the nuclear-norm "
           "optimum (non-convex, several minima), D=4, T=1e-4",
           TaskConfig(D=4, N=12, P=3000, lam=0.05, test_prompts=1), "factored",
           LOW_TEMPERATURE_BETA, "dense", 2, _FACTORED_SAMPLERS,
           _ladder(LOW_TEMPERATURE_BETA, 1e-2, 8), n=20, condition_number=math.nan),
    Target("factored-full", "factored W = Wq^T Wk, d_k=D+1=5 (ground state exact: "
           "nuclear norm), D=4, T=1e-4",
           TaskConfig(D=4, N=12, P=3000, lam=0.05, test_prompts=1), "factored",
           LOW_TEMPERATURE_BETA, "dense", 5, _FACTORED_SAMPLERS,
           _ladder(LOW_TEMPERATURE_BETA, 1e-2, 8), n=50, condition_number=math.nan),
    Target("tiny-merged", "merged, D=3, P=200 (16 spins; for tests)",
           TaskConfig(D=3, N=10, P=200, lam=0.05, test_prompts=1), "merged", 1e3, "dense",
           None, ("exact", "mala/diag"), n=16, condition_number=9.46, group="tiny"),
    Target("tiny-factored", "factored, D=2, d_k=1 (6 spins, two minima; for tests)",
           TaskConfig(D=2, N=8, P=200, lam=0.05, test_prompts=1), "factored", 1e3, "dense",
           1, ("mala/diag", "mala/diag+re"), _ladder(1e3, 1e-1, 4), n=6,
           condition_number=math.nan, group="tiny"),
)}

#: Names that stand for several targets.
GROUPS: dict[str, tuple[str, ...]] = {
    "all": tuple(k for k, t in TARGETS.items() if t.group == "main"),
    "tiny": tuple(k for k, t in TARGETS.items() if t.group == "tiny"),
}


def target_names(group: str = "all") -> tuple[str, ...]:
    """Names of a group (``all``: the main suite; ``tiny``: the test targets)."""
    return GROUPS[group]


def resolve_targets(names: Any) -> tuple[Target, ...]:
    """Targets from names: a comma-separated string or a list of names/groups.

    ``None`` or ``"all"`` give the main suite; ``"tiny"`` the test targets. Duplicates
    are dropped, order kept.

    Raises
    ------
    ConfigError
        For an unknown name, or a string or list without any name (``""``, ``","``).
    """
    if names is None:
        names = ["all"]
    if isinstance(names, str):
        names = [x.strip() for x in names.split(",")]
    try:
        items = [str(x).strip() for x in names if str(x).strip()]
    except TypeError:
        raise ConfigError("suite", "target names", names) from None
    if not items:
        raise ConfigError("suite", "comma-separated target names or groups (all, tiny; "
                          "--suite alone runs every target)", names if not isinstance(
                              names, list) else ",".join(map(str, names)))
    out: list[str] = []
    for item in items:
        if item in GROUPS:
            out.extend(GROUPS[item])
        elif item in TARGETS:
            out.append(item)
        else:
            raise ConfigError("suite", "target names among " + ", ".join(
                list(TARGETS) + list(GROUPS)), item)
    return tuple(TARGETS[k] for k in dict.fromkeys(out))


# --------------------------------------------------------------------------- references
@dataclass
class References:
    """What a target's samples are compared with (all float64; n spins).

    Merged targets fill ``mean``, ``covariance_diagonal``, ``spectrum`` (eigenvalues of A,
    ascending, all n), ``active_spectrum_range``, ``slowest_*``, ``energy_*``; factored
    targets fill ``ground_*`` and ``merged_condition_number`` (that of the merged A of
    the same data, a scale of the landscape). Both: ``n``, ``beta``, ``thermal_energy`` =
    n/(2β) (the equipartition scale of the energy, the tolerance of "reaching the
    reference"), ``reference_energy`` (E(m) or the ground-state energy),
    ``condition_number`` (merged only; NaN for factored targets).
    """

    n: int
    beta: float
    reference_energy: float
    thermal_energy: float
    condition_number: float
    kind: str                                   # "gaussian" | "exact" | "best known"
    mean: np.ndarray | None = None              # (n,)
    covariance_diagonal: np.ndarray | None = None
    spectrum: np.ndarray | None = None          # eigenvalues of A, ascending (n,)
    active_spectrum_range: tuple[float, float] = (math.nan, math.nan)
    slowest_eigenvalue: float = math.nan
    slowest_mode: np.ndarray | None = None      # (n,) unit, zero on inactive spins
    top_mode: np.ndarray | None = None          # (n,) eigenvector of the largest eigenvalue
    energy_mean: float = math.nan
    energy_variance: float = math.nan
    slowest_variance: float = math.nan          # of (W − m)·u: 1/(β λ_min)
    ground_factors: np.ndarray | None = None    # factored: θ at the reference (n,)
    ground_W: np.ndarray | None = None          # factored: effective W ((D+1)²,)
    ground_note: str = ""
    merged_condition_number: float = math.nan   # factored: of the merged A of the data
    draw_factor: Any = field(default=None, repr=False)  # z (R, n) -> exact draws (merged)

    def exact_draws(self, replicas: int, seed: int) -> np.ndarray:
        """``replicas`` independent draws from the exact Boltzmann law (merged targets),
        shape (R, n), from ``SeedSequence([seed, 7])`` (the same stream as ``bench``)."""
        if self.draw_factor is None:
            raise ConfigError("target", "a merged target (exact draws)", self.kind)
        z = np.random.default_rng(np.random.SeedSequence([seed, 7])).standard_normal(
            (replicas, self.n))
        return self.mean[None, :] + self.draw_factor(z) / math.sqrt(self.beta)

    def summary(self) -> dict[str, Any]:
        """Scalars for tables and JSON."""
        out = {"n": self.n, "beta": self.beta, "kind": self.kind,
               "reference_energy": self.reference_energy,
               "thermal_energy": self.thermal_energy,
               "condition_number": self.condition_number}
        if self.kind == "gaussian":
            out.update(energy_mean=self.energy_mean, energy_variance=self.energy_variance,
                       slowest_eigenvalue=self.slowest_eigenvalue,
                       slowest_variance=self.slowest_variance,
                       largest_active_eigenvalue=self.active_spectrum_range[1])
        else:
            out.update(ground_note=self.ground_note,
                       merged_condition_number=self.merged_condition_number)
        return out


def _merged_dense_references(model: Any, beta: float) -> References:
    """Every merged reference from one eigendecomposition of the dense A (O(n³))."""
    from spinicl.models import active_mask

    A = model.precision()
    vals, vecs = np.linalg.eigh(A)
    mean = model.ridge_mean()
    cov_diag = np.einsum("ik,k->i", vecs**2, 1.0 / vals) / beta
    act = active_mask(model.D)
    idx = np.flatnonzero(act)
    avals, avecs = np.linalg.eigh(A[np.ix_(idx, idx)])
    u = np.zeros(model.n_spins)
    u[idx] = avecs[:, 0]
    top = np.zeros(model.n_spins)
    top[idx] = avecs[:, -1]
    L = np.linalg.cholesky(A)
    import scipy.linalg as sla

    def draw(z: np.ndarray) -> np.ndarray:
        return sla.solve_triangular(L, z.T, lower=True, trans="T").T

    return _merged_refs(model, beta, mean, cov_diag, vals, (float(avals[0]),
                        float(avals[-1])), u, top, draw)


def _merged_refs(model: Any, beta: float, mean, cov_diag, spectrum, arange, u, top,
                 draw) -> References:
    n = model.n_spins
    e_m = float(model.energy(mean[None])[0])
    return References(
        n=n, beta=beta, reference_energy=e_m, thermal_energy=n / (2 * beta),
        condition_number=arange[1] / arange[0], kind="gaussian", mean=mean,
        covariance_diagonal=cov_diag, spectrum=spectrum, active_spectrum_range=arange,
        slowest_eigenvalue=arange[0], slowest_mode=u, top_mode=top,
        energy_mean=e_m + n / (2 * beta), energy_variance=n / (2 * beta**2),
        slowest_variance=1.0 / (beta * arange[0]), draw_factor=draw)


def feature_matrix(model: Any) -> np.ndarray:
    """S (P, n): row μ is c^μ ⊗ q^μ (docs/model.md §1.2), from the prompt factors."""
    ps = model.data.prompts
    return np.einsum("pa,pb->pab", ps.c, ps.q).reshape(ps.c.shape[0], -1)


def _merged_low_rank_references(model: Any, beta: float, seed: int) -> References:
    """Exact references when P < n: A = λI + U diag(s) Uᵀ with U (n, P) from SSᵀ/P.

    A⁻¹ = (1/λ)(I − UUᵀ) + U diag(1/(λ+s)) Uᵀ; A's spectrum is λ + s (P values) and λ
    (n − P times); the slowest active mode is then any active direction orthogonal to
    range(U) (a seeded one).
    """
    from spinicl.models import active_mask

    lam, n = float(model.lam), model.n_spins
    S = feature_matrix(model)
    P = S.shape[0]
    s, V = np.linalg.eigh(S @ S.T / P)
    keep = s > 1e-12 * max(float(s[-1]), 1e-300)
    s, V = s[keep], V[:, keep]
    U = (S.T @ V) / np.sqrt(P * s)                       # (n, r), orthonormal columns
    del S
    h = model.field
    Uh = U.T @ h
    mean = h / lam + U @ (Uh * (1.0 / (lam + s) - 1.0 / lam))
    cov_diag = (1.0 / lam + np.einsum("ik,k->i", U**2, 1.0 / (lam + s) - 1.0 / lam)) / beta
    spectrum = np.sort(np.concatenate([lam + s, np.full(n - s.size, lam)]))
    act = active_mask(model.D).astype(float)
    z = np.random.default_rng(np.random.SeedSequence([seed, 11])).standard_normal(n) * act
    u = z - U @ (U.T @ z)
    u /= np.linalg.norm(u)
    top = U[:, -1].copy()
    scale = 1.0 / np.sqrt(lam + s) - 1.0 / math.sqrt(lam)

    def draw(zz: np.ndarray) -> np.ndarray:     # A^{-1/2} z
        return zz / math.sqrt(lam) + (zz @ U) * scale @ U.T

    return _merged_refs(model, beta, mean, cov_diag, spectrum, (lam, float(lam + s[-1])),
                        u, top, draw)


def _factored_references(model: Any, beta: float) -> References:
    gs = model.ground_state()
    ref = model.reference_state()
    merged = model.merged
    cond = math.nan
    if merged.representation == "dense":
        from spinicl.models import active_mask

        idx = np.flatnonzero(active_mask(model.D))
        ev = np.linalg.eigvalsh(merged.precision()[np.ix_(idx, idx)])
        cond = float(ev[-1] / ev[0])
    kind = "exact" if gs.kind == "nuclear-norm" else "best known"
    note = (f"exact: the nuclear-norm optimum (rank {ref.nuclear_rank} <= d_k = "
            f"{model.dk})" if kind == "exact" else gs.note)
    n = model.n_spins
    return References(n=n, beta=beta, reference_energy=float(gs.energy),
                      thermal_energy=n / (2 * beta), condition_number=math.nan, kind=kind,
                      merged_condition_number=cond,
                      ground_factors=np.asarray(ref.factors, dtype=np.float64).copy(),
                      ground_W=np.asarray(gs.W, dtype=np.float64).copy(), ground_note=note)


def build_target(target: str | Target) -> tuple[Any, References]:
    """The model of a target and its references.

    Parameters
    ----------
    target : str or Target
        A name of :data:`TARGETS` (not a group).

    Returns
    -------
    model : MergedModel or FactoredModel
    references : References

    Raises
    ------
    ConfigError
        For an unknown name.
    """
    from spinicl.models import build_model
    from spinicl.prompts import make_task

    if isinstance(target, str):
        if target not in TARGETS:
            raise ConfigError("target", "one of " + ", ".join(TARGETS), target)
        target = TARGETS[target]
    task = make_task(target.task, keep_test_context=False)
    model = build_model(task, target.model, dk=target.dk,
                        representation=target.representation)
    if target.model == "factored":
        return model, _factored_references(model, target.beta)
    if model.representation == "dense":
        return model, _merged_dense_references(model, target.beta)
    return model, _merged_low_rank_references(model, target.beta, target.task.seed)


__all__ = ["GROUPS", "LOW_TEMPERATURE_BETA", "TARGETS", "References", "Target",
           "build_target", "feature_matrix", "resolve_targets", "target_names"]
