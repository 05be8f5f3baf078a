"""What is recorded per replica at each record (docs/model.md §1.6).

An :class:`ObservableSet` is built once per run (it holds the test sets, the ground state
and the exact references) and turns the sampler's configurations, shape
(n_temps, copies, n_spins), into one record: a dict of arrays whose shapes are listed in
:data:`SHAPES`. Observables are computed on the effective merged weights W (for the
factored model W = W_qᵀW_k, gauge invariant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from spinicl.models import Model, active_mask, alignment, gd_cosine, mse
from spinicl.prompts import Task

#: Observable name → shape of one record, in terms of T (temperatures), M (copies) and
#: M2 = M(M−1)/2 (pairs of copies). ``step`` is a scalar per record.
SHAPES = {
    "step": (),
    "energy": ("T", "M"),
    "train_mse": ("T", "M"),
    "test_mse_novel": ("T", "M"),
    "test_mse_in_distribution": ("T", "M"),
    "self_overlap": ("T", "M"),
    "overlap": ("T", "M2"),
    "self_overlap_active": ("T", "M"),
    "overlap_active": ("T", "M2"),
    "alignment": ("T", "M"),
    "gd_cosine": ("T", "M"),
    "distance_to_ground_state": ("T", "M"),
    "accept": ("T", "M"),
    "swap_accept": ("T-1",),
}

#: Units / meaning, for tables and plot labels.
LABELS = {
    "energy": "E",
    "train_mse": r"$\varepsilon_{\rm train}$",
    "test_mse_novel": r"$\varepsilon_{\rm ICL}$ (novel tasks)",
    "test_mse_in_distribution": r"$\varepsilon_{\rm ID}$ (pool tasks)",
    "self_overlap": "Q",
    "overlap": r"$q_{ab}$",
    "self_overlap_active": r"$Q_{\rm act}$",
    "overlap_active": r"$q_{ab,\rm act}$",
    "alignment": "alignment",
    "gd_cosine": "cos(W, GD)",
    "distance_to_ground_state": r"$\|W-W_0\|^2/n$",
    "accept": "acceptance",
    "swap_accept": "swap acceptance",
}


#: Largest number of merged weights (D+1)² for which the MSEs go through the n × n
#: quadratic forms of each prompt set (3 matrices of n² doubles) instead of predictions.
QUADRATIC_MSE_MAX = 2048


def _mse_quadratic(prompts, w0: np.ndarray, chunk: int = 1024
                   ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(B, g, mse(w0), w0) with B = SᵀS/P_t and g = B w0 − Sᵀy/P_t of a prompt set."""
    n = w0.shape[0]
    B = np.zeros((n, n))
    b = np.zeros(n)
    for start, S in prompts.feature_chunks(chunk):
        B += S.T @ S
        b += S.T @ prompts.y[start:start + S.shape[0]]
    B /= prompts.n_prompts
    b /= prompts.n_prompts
    return B, B @ w0 - b, float(mse(w0[None], prompts)[0]), w0


def record_shape(name: str, n_temps: int, copies: int) -> tuple[int, ...]:
    """Concrete shape of one record of ``name``."""
    sizes = {"T": n_temps, "M": copies, "M2": copies * (copies - 1) // 2,
             "T-1": max(n_temps - 1, 0)}
    return tuple(sizes[s] for s in SHAPES[name])


@dataclass
class ObservableSet:
    """Computes the observables of one run.

    Parameters
    ----------
    model : Model
    task : Task
    ground_state : ndarray, shape ((D+1)²,) or None
        Merged weights of the ground state (m for the merged model, the nuclear-norm
        optimum for the factored one); None → ``distance_to_ground_state`` is NaN.
    """

    model: Model
    task: Task
    ground_state: np.ndarray | None = None
    _active: np.ndarray = field(init=False, repr=False)

    _quad: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._active = active_mask(self.model.D)
        self._quad = {}
        d1 = self.model.D + 1
        if d1 * d1 <= QUADRATIC_MSE_MAX:
            w0 = (np.zeros(d1 * d1) if self.ground_state is None
                  else np.asarray(self.ground_state, dtype=float))
            for key, ps in (("train", self.task.train), ("novel", self.task.test_novel),
                            ("in_distribution", self.task.test_in_distribution)):
                self._quad[key] = _mse_quadratic(ps, w0)

    def _mse(self, W: np.ndarray, key: str, prompts) -> np.ndarray:
        """MSE of merged weights W (R, n) on a prompt set, through its quadratic form
        mse(W) = mse(w0) + 2gᵀd + dᵀBd (d = W − w0, B = SᵀS/P_t: one GEMM of R×n²)
        where precomputed, else through the predictions."""
        q = self._quad.get(key)
        if q is None:
            return mse(W, prompts)
        B, g, f0, w0 = q
        d = W - w0[None, :]
        return f0 + 2.0 * (d @ g) + np.einsum("ri,ri->r", d @ B, d)

    def compute(self, positions: np.ndarray, energies: np.ndarray, step: int,
                accept: np.ndarray | None = None,
                swap_accept: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """One record.

        Parameters
        ----------
        positions : ndarray, shape (T, M, n_spins)
            Configurations in ladder order.
        energies : ndarray, shape (T, M)
        step : int
        accept : ndarray, shape (T, M), optional
        swap_accept : ndarray, shape (T-1,), optional

        Returns
        -------
        dict of name → ndarray with the shapes of :data:`SHAPES`.
        """
        T, M, n = positions.shape
        W = self.model.effective_weights(positions.reshape(T * M, n))
        nw = W.shape[1]
        Wa = W[:, self._active]
        rec: dict[str, np.ndarray] = {"step": np.asarray(step, dtype=np.int64),
                                      "energy": np.asarray(energies, dtype=float)}

        def tm(x):
            return np.asarray(x).reshape(T, M)

        rec["train_mse"] = tm(self._mse(W, "train", self.task.train))
        rec["test_mse_novel"] = tm(self._mse(W, "novel", self.task.test_novel))
        rec["test_mse_in_distribution"] = tm(
            self._mse(W, "in_distribution", self.task.test_in_distribution))
        rec["self_overlap"] = tm(np.einsum("ri,ri->r", W, W) / nw)
        rec["self_overlap_active"] = tm(np.einsum("ri,ri->r", Wa, Wa) / Wa.shape[1])
        pairs = list(combinations(range(M), 2))
        W3, Wa3 = W.reshape(T, M, nw), Wa.reshape(T, M, -1)
        rec["overlap"] = np.stack([np.einsum("ti,ti->t", W3[:, a], W3[:, b]) / nw
                                   for a, b in pairs], axis=1) if pairs else np.zeros((T, 0))
        rec["overlap_active"] = (
            np.stack([np.einsum("ti,ti->t", Wa3[:, a], Wa3[:, b]) / Wa3.shape[2]
                      for a, b in pairs], axis=1) if pairs else np.zeros((T, 0)))
        rec["alignment"] = tm(alignment(W))
        rec["gd_cosine"] = tm(gd_cosine(W))
        if self.ground_state is None:
            rec["distance_to_ground_state"] = np.full((T, M), np.nan)
        else:
            d = W - self.ground_state[None, :]
            rec["distance_to_ground_state"] = tm(np.einsum("ri,ri->r", d, d) / nw)
        rec["accept"] = (np.ones((T, M)) if accept is None
                         else np.asarray(accept, dtype=float).reshape(T, M))
        rec["swap_accept"] = (np.full(max(T - 1, 0), np.nan) if swap_accept is None
                              else np.asarray(swap_accept, dtype=float).reshape(-1))
        return rec


def exact_references(theory, betas: np.ndarray, factored: bool = False, *,
                     sampler: str = "mala", steps: np.ndarray | None = None,
                     precondition: str = "none", model=None, task: Task | None = None
                     ) -> dict[str, np.ndarray]:
    """Closed-form averages per temperature of the law the sampler targets (NaN: none).

    MALA, BAOAB (positions) and the exact sampler target the Boltzmann law. ULA does not:
    its stationary law is Gaussian with the exact mean m and covariance
    (βA)⁻¹(I − ηA/2)⁻¹, so for ``sampler="ula"`` the entry ``name`` holds ULA's own
    stationary mean and ``boltzmann_<name>`` the Boltzmann one beside it (the bias is
    their difference).

    Parameters
    ----------
    theory : GaussianTheory or None
        The merged model's exact solution (None, or ``factored=True``: all NaN).
    betas : ndarray, shape (T,)
    factored : bool
    sampler : str
    steps : ndarray (T,), optional
        The ULA step per rung (needed for ``sampler="ula"``).
    precondition : {"none", "diag", "dense"}
    model, task
        The merged model and its task (needed for ``sampler="ula"``: test-set traces).

    Returns
    -------
    dict name → ndarray (T,)
    """
    T = len(betas)
    out = {name: np.full(T, np.nan) for name in SHAPES if name not in ("step",)}
    if theory is None or factored:
        return out
    for k, b in enumerate(betas):
        out["energy"][k] = theory.energy_mean(b)
        out["train_mse"][k] = theory.train_mse_mean(b)
        out["test_mse_novel"][k] = theory.test_mse_mean(b, "novel")
        out["test_mse_in_distribution"][k] = theory.test_mse_mean(b, "in_distribution")
        out["self_overlap"][k] = theory.self_overlap_mean(b)
        out["overlap"][k] = theory.overlap_mean()
        out["self_overlap_active"][k] = theory.self_overlap_mean(b, active=True)
        out["overlap_active"][k] = theory.overlap_mean(active=True)
        out["distance_to_ground_state"][k] = theory.distance_to_ground_state_mean(b)
    if sampler == "ula":
        from spinicl.theory.gaussian import ULA_OBSERVABLES, ula_references

        for name in ULA_OBSERVABLES:
            out[BOLTZMANN_PREFIX + name] = out[name].copy()
            out[name] = np.full(T, np.nan)
        if steps is not None and theory.chol is not None and model is not None \
                and task is not None:
            from spinicl.config import ConfigError

            try:
                out.update(ula_references(theory, model, task,
                                          np.asarray(betas, dtype=float),
                                          np.asarray(steps, dtype=float), precondition))
            except ConfigError:   # an unstable step: ULA has no stationary law
                pass
    return out


#: /theory key of the Boltzmann value of an observable whose ``exact`` is another law's
#: (ULA: its own stationary mean).
BOLTZMANN_PREFIX = "boltzmann_"
