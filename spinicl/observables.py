"""What is recorded per replica at each record, and the one table of observables
(docs/model.md §1.6).

:data:`OBSERVABLES` is the single description of every observable spinicl knows: its
record shape, how it is obtained (:attr:`Observable.kind`), its closed-form thermal
average where one exists (:attr:`Observable.exact`), its symbol, words and plot scale.
Recording (:class:`ObservableSet`, :func:`record_shape`), the exact references
(:func:`exact_references`), the theory-mode sweep (:func:`theory_summaries`), the loaders
and the plots all read it. An :class:`ObservableSet` is built once per run (it holds the
test sets, the ground state and the exact references) and turns the sampler's
configurations, shape (n_temps, copies, n_spins), into one record: a dict of arrays whose
shapes are listed in :data:`SHAPES`. Observables are computed on the effective merged
weights W (for the factored model W = W_qᵀW_k, gauge invariant).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations, pairwise

import numpy as np

from spinicl.models import Model, active_mask, alignment, gd_cosine, mse
from spinicl.prompts import Task

#: Kinds of observable (:attr:`Observable.kind`).
KINDS = ("record", "sampler", "derived", "theory", "thermo")


@dataclass(frozen=True)
class Observable:
    """One observable: one row of :data:`OBSERVABLES`.

    Attributes
    ----------
    name : str
        Its key in /trace, /summary, /theory and sweep files.
    kind : {"record", "sampler", "derived", "theory", "thermo"}
        How it is obtained: ``record``, computed from the configurations at each record
        (:meth:`ObservableSet.compute`); ``sampler``, reported by the sampler (acceptance,
        the record's step); ``derived``, the ratio of two stored summaries
        (:attr:`derived_from`), formed when read; ``theory``, a closed form at every
        temperature with no record (theory-mode sweeps); ``thermo``, a whole-run
        estimate from the post-burn-in records (a run's ``/thermo``, see
        :attr:`thermo`), with its closed form in theory mode.
    shape : tuple of str or None
        Shape of one record in terms of T (temperatures), M (copies), M2 = M(M−1)/2
        (pairs of copies) and T-1 (neighbouring rungs); ``()`` a scalar; None: never
        recorded (derived and theory kinds).
    words : str
        A few words, before the symbol on colour bars and y axes.
    symbol : str
        Mathtext symbol of its thermal average.
    trace_symbol : str or None
        Symbol of one record (no thermal average) on trace panels; None: ``symbol``.
    log_scale : bool
        Positive and spread over decades: log colour / y scale when it spans > 1 decade.
    derived_from : (str, str) or None
        ``derived``: (numerator, denominator) stored summaries.
    function : callable W → (R,), or None
        How a per-replica observable that depends on the merged weights W (R, (D+1)²)
        alone is computed (recording and the theory-mode draws); None: computed with the
        run's test sets, pairs or ground state (:meth:`ObservableSet.compute`), or not
        from W.
    exact : callable (theory, beta) → float, or None
        Its closed-form Boltzmann average from a
        :class:`~spinicl.theory.gaussian.GaussianTheory` (Gaussian models; NaN for the
        others); None: no closed form (the average is sampled, or has none). For an
        observable of neighbouring pairs of rungs (:attr:`rung_pairs`) it takes
        (theory, β_k, β_{k+1}).
    thermo : bool
        A run file stores it in ``/thermo/<name>`` with ``<name>_stderr`` and
        ``<name>_exact`` (:func:`spinicl.runner.thermo_traces`); a sample-mode sweep point
        copies them into its summary as ``mean``, ``stderr``, ``exact``
        (:func:`thermo_summaries`).
    rung_pairs : bool
        One value per neighbouring pair of rungs (T−1 values: β_k, β_{k+1}), not per rung.
    """

    name: str
    kind: str
    shape: tuple[str, ...] | None
    words: str
    symbol: str
    trace_symbol: str | None = None
    log_scale: bool = False
    derived_from: tuple[str, str] | None = None
    function: Callable[[np.ndarray], np.ndarray] | None = None
    exact: Callable[..., float] | None = None
    thermo: bool = False
    rung_pairs: bool = False

    @property
    def recorded(self) -> bool:
        """Stored per record in /trace (``record`` and ``sampler`` kinds)."""
        return self.shape is not None

    @property
    def pairs(self) -> bool:
        """One value per pair of copies (M2): averaged over pairs, not copies."""
        return self.shape is not None and self.shape[1:2] == ("M2",)

    def label(self, symbol_only: bool = False) -> str:
        """Axis label: ``"ICL error (novel tasks)  $\\varepsilon_{\\rm ICL}$"``."""
        return self.symbol if symbol_only else f"{self.words}  {self.symbol}"


def _table(*rows: Observable) -> dict[str, Observable]:
    return {o.name: o for o in rows}


#: Every observable, by name (the order of tables and summaries).
OBSERVABLES: dict[str, Observable] = _table(
    Observable("step", "sampler", (), "step", r"$t$"),
    Observable("energy", "record", ("T", "M"), "energy", r"$\langle E\rangle$",
               trace_symbol=r"$E$", log_scale=True,
               exact=lambda th, b: th.energy_mean(b)),
    Observable("train_mse", "record", ("T", "M"), "training error",
               r"$\varepsilon_{\rm train}$", log_scale=True,
               exact=lambda th, b: th.train_mse_mean(b)),
    Observable("test_mse_novel", "record", ("T", "M"), "ICL error (novel tasks)",
               r"$\varepsilon_{\rm ICL}$", log_scale=True,
               exact=lambda th, b: th.test_mse_mean(b, "novel")),
    Observable("test_mse_in_distribution", "record", ("T", "M"), "in-distribution error",
               r"$\varepsilon_{\rm ID}$", log_scale=True,
               exact=lambda th, b: th.test_mse_mean(b, "in_distribution")),
    Observable("self_overlap", "record", ("T", "M"), "self-overlap", r"$Q$",
               log_scale=True, exact=lambda th, b: th.self_overlap_mean(b)),
    Observable("overlap", "record", ("T", "M2"), "replica overlap", r"$q_{ab}$",
               exact=lambda th, b: th.overlap_mean()),
    Observable("self_overlap_active", "record", ("T", "M"), "self-overlap (active)",
               r"$Q_{\rm act}$", log_scale=True,
               exact=lambda th, b: th.self_overlap_mean(b, active=True)),
    Observable("overlap_active", "record", ("T", "M2"), "overlap (active)",
               r"$q_{ab}^{\rm act}$", exact=lambda th, b: th.overlap_mean(active=True)),
    Observable("alignment", "record", ("T", "M"), "alignment", r"$\cos(W, I_{D+1})$",
               function=alignment),
    Observable("gd_cosine", "record", ("T", "M"), "cosine with one-step GD",
               r"$\cos(W, W_{\rm GD})$", function=gd_cosine),
    Observable("distance_to_ground_state", "record", ("T", "M"), "distance to ground state",
               r"$\|W-m\|^2/n$", log_scale=True,
               exact=lambda th, b: th.distance_to_ground_state_mean(b)),
    Observable("accept", "sampler", ("T", "M"), "acceptance", r"$p_{\rm acc}$"),
    Observable("swap_accept", "sampler", ("T-1",), "swap acceptance", r"$p_{\rm swap}$"),
    Observable("overlap_ratio", "derived", None, "overlap ratio", r"$q/Q$",
               derived_from=("overlap", "self_overlap"),
               exact=lambda th, b: th.overlap_ratio(b)),
    Observable("overlap_ratio_active", "derived", None, "overlap ratio (active)",
               r"$q_{\rm act}/Q_{\rm act}$",
               derived_from=("overlap_active", "self_overlap_active"),
               exact=lambda th, b: th.overlap_ratio(b, active=True)),
    Observable("free_energy", "theory", None, "free energy per spin", r"$f$",
               exact=lambda th, b: th.free_energy(b), thermo=True),
    Observable("alignment_ground_state", "theory", None, "alignment of the ground state",
               r"$\cos(m, I_{D+1})$", exact=lambda th, b: th.alignment),
    Observable("gd_cosine_ground_state", "theory", None,
               "cosine of the ground state with one-step GD", r"$\cos(m, W_{\rm GD})$",
               exact=lambda th, b: th.gd_cosine),
    Observable("heat_capacity", "thermo", None, "heat capacity",
               r"$C=\beta^2\,{\rm Var}\,E$", thermo=True,
               exact=lambda th, b: _thermo().merged_heat_capacity(th)),
    Observable("binder", "thermo", None, "Binder cumulant of the overlap",
               r"$1-\langle q^4\rangle/(3\langle q^2\rangle^2)$", thermo=True,
               exact=lambda th, b: _thermo().merged_binder(th, b)),
    Observable("entropy", "thermo", None, "entropy per spin", r"$s$", thermo=True,
               exact=lambda th, b: _thermo().merged_entropy_per_spin(th, b)),
    Observable("log_z_ratio", "thermo", None, "log partition-function ratio of neighbours",
               r"$\ln Z(T_k)/Z(T_{k+1})$", thermo=True, rung_pairs=True,
               exact=lambda th, b0, b1: (_thermo().merged_log_z(th, b0)
                                         - _thermo().merged_log_z(th, b1))),
)

def _thermo():
    """:mod:`spinicl.analysis.thermo` (imported when a closed form is first needed)."""
    from spinicl.analysis import thermo

    return thermo


#: Observable name → shape of one record (the recorded rows of :data:`OBSERVABLES`).
SHAPES: dict[str, tuple[str, ...]] = {k: o.shape for k, o in OBSERVABLES.items()
                                      if o.shape is not None}
#: Derived observables: name → (numerator, denominator) stored summaries.
DERIVED: dict[str, tuple[str, str]] = {k: o.derived_from for k, o in OBSERVABLES.items()
                                       if o.derived_from is not None}


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
        for name, obs in OBSERVABLES.items():
            if obs.function is not None:
                rec[name] = tm(obs.function(W))
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


def exact_references(theory, betas: np.ndarray, gaussian: bool = True, *,
                     sampler: str = "mala", steps: np.ndarray | None = None,
                     precondition: str = "none", model=None, task: Task | None = None
                     ) -> dict[str, np.ndarray]:
    """Closed-form averages per temperature of the law the sampler targets (NaN: none),
    for every recorded observable but ``step`` (the :attr:`Observable.exact` of its row).

    MALA, BAOAB, HMC (positions) and the exact sampler target the Boltzmann law. A sampler
    whose registry entry names a ``stationary_law`` does not (ULA: its stationary law is
    Gaussian with the exact mean m and covariance (βA)⁻¹(I − ηA/2)⁻¹): for it the entry
    ``name`` holds that law's own stationary mean and ``boltzmann_<name>`` the Boltzmann
    one beside it (the bias is their difference).

    Parameters
    ----------
    theory : GaussianTheory or None
        The Gaussian model's exact solution (None, or ``gaussian=False``: all NaN).
    betas : ndarray, shape (T,)
    gaussian : bool
        The model's Boltzmann law is Gaussian (``model.gaussian``).
    sampler : str
        A sampler of :mod:`spinicl.registry`.
    steps : ndarray (T,), optional
        The step per rung (needed for a sampler with a ``stationary_law``).
    precondition : {"none", "diag", "dense"}
    model, task
        The model and its task (needed for a ``stationary_law``: test-set traces).

    Returns
    -------
    dict name → ndarray (T,)
    """
    T = len(betas)
    out = {name: np.full(T, np.nan) for name in SHAPES if name != "step"}
    if theory is None or not gaussian:
        return out
    for name in out:
        exact = OBSERVABLES[name].exact
        if exact is not None:
            out[name] = np.array([exact(theory, b) for b in betas], dtype=float)
    from spinicl import registry

    law = registry.stationary_law(sampler)
    if law is not None:
        for name in law.observables:
            out[BOLTZMANN_PREFIX + name] = out[name].copy()
            out[name] = np.full(T, np.nan)
        if steps is not None and theory.chol is not None and model is not None \
                and task is not None:
            from spinicl.config import ConfigError

            try:
                out.update(law.references(theory, model, task,
                                          np.asarray(betas, dtype=float),
                                          np.asarray(steps, dtype=float), precondition))
            except ConfigError:   # an unstable step: no stationary law
                pass
    return out


#: /theory key of the Boltzmann value of an observable whose ``exact`` is another law's
#: (ULA: its own stationary mean).
BOLTZMANN_PREFIX = "boltzmann_"

#: Exact Gaussian draws per rung behind the theory-mode averages of observables without a
#: closed form (``alignment``, ``gd_cosine``).
THEORY_DRAWS = 256


def theory_summaries(theory, temperatures: np.ndarray, seed: int,
                     draws: int = THEORY_DRAWS, chol: np.ndarray | None = None
                     ) -> dict[str, dict[str, np.ndarray]]:
    """The summaries of a theory-mode sweep point: every observable of :data:`OBSERVABLES`
    but the sampler's, at each temperature, as ``mean``, ``stderr``, ``tau_int``, ``ess``
    and ``exact`` arrays (T,).

    * An observable with a closed form (:attr:`Observable.exact`): ``mean = exact``,
      ``stderr`` 0, ``ess`` ∞.
    * A function of W without one (:attr:`Observable.function`: ``alignment``,
      ``gd_cosine``): its thermal average
      ⟨f(W)⟩ estimated from ``draws`` exact independent Gaussian draws per rung
      (:meth:`~spinicl.theory.gaussian.GaussianTheory.sample`, a generator seeded by
      ``seed``), ``mean`` ± the standard error of that mean, ``ess = draws``, ``exact``
      NaN (a ratio of Gaussian forms has no closed form). These are the same quantities a
      sample-mode point stores under the same names. Exact draws need a Cholesky factor
      of A (``theory.chol``, else ``chol``); without one (the matrix-free representation
      of a model too large to factor) they are NaN.
    * ``alignment_ground_state`` and ``gd_cosine_ground_state``: alignment(m) and
      gd_cosine(m) of the ground state m (the T → 0 limits of the two above).
    * The spin-glass observables (:attr:`Observable.thermo`: ``free_energy``,
      ``heat_capacity`` = n/2, ``binder``, ``entropy``, and ``log_z_ratio`` with T−1
      values, one per neighbouring pair of rungs) from their closed forms; ``binder``
      needs a dense factor of A and at most
      :data:`spinicl.analysis.thermo.EXACT_OVERLAP_MAX_SPINS` spins, the log Z
      quantities log det A (NaN otherwise).

    Parameters
    ----------
    theory : GaussianTheory
    temperatures : ndarray, shape (T,)
    seed : int
        Seed of the draws (the point's task seed): the same point gives the same values.
    draws : int
    chol : ndarray (n, n), optional
        A lower Cholesky factor of A to draw with when ``theory`` has none.
    """
    temps = np.asarray(temperatures, dtype=float)
    T = temps.size
    L = theory.chol if theory.chol is not None else chol
    draws_at = None
    if L is not None:
        from spinicl import linalg

        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7E0A1]))
        draws_at = [linalg.gaussian_draw(theory.mean, L,
                                         rng.standard_normal((L.shape[0], draws)).T, 1.0 / t)
                    for t in temps]
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, obs in OBSERVABLES.items():
        if obs.kind in ("sampler", "derived"):   # no draws; ratios are formed when read
            continue
        width = max(T - 1, 0) if obs.rung_pairs else T
        row = {"mean": np.full(width, np.nan), "stderr": np.zeros(width),
               "tau_int": np.full(width, np.nan), "ess": np.full(width, np.inf),
               "exact": np.full(width, np.nan)}
        if obs.exact is not None and obs.rung_pairs:
            row["exact"] = np.array([obs.exact(theory, 1.0 / t0, 1.0 / t1)
                                     for t0, t1 in pairwise(temps)],
                                    dtype=float)
            row["mean"] = row["exact"].copy()
        elif obs.exact is not None:
            row["exact"] = np.array([obs.exact(theory, 1.0 / t) for t in temps], dtype=float)
            row["mean"] = row["exact"].copy()
        elif obs.function is not None:
            row["ess"] = np.full(T, float(draws))
            if draws_at is None:
                row["stderr"] = np.full(T, np.nan)
            else:
                vals = np.stack([obs.function(W) for W in draws_at])   # (T, draws)
                row["mean"] = vals.mean(axis=1)
                row["stderr"] = vals.std(axis=1, ddof=1) / np.sqrt(draws)
        out[name] = row
    return out


def thermo_summaries(thermo: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The spin-glass observables of a run as sweep-point summaries.

    Every row of :data:`OBSERVABLES` with :attr:`Observable.thermo` that the run's
    ``/thermo`` holds becomes ``{"mean", "stderr", "exact"}`` from ``/thermo/<name>``,
    ``<name>_stderr`` and ``<name>_exact`` (NaN where one is missing): (T,) per rung, or
    (T−1,) per neighbouring pair of rungs (``log_z_ratio``). Whether log Z, f and s are
    absolute (merged model with a Boltzmann sampler) or relative to the hottest rung is
    the run's ``/thermo`` attribute ``reference``.

    Parameters
    ----------
    thermo : dict name → ndarray
        The datasets of a run file's ``/thermo`` group.
    """
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, obs in OBSERVABLES.items():
        if not obs.thermo or name not in thermo:
            continue
        mean = np.asarray(thermo[name], dtype=float).reshape(-1)
        row = {"mean": mean}
        for stat, key in (("stderr", f"{name}_stderr"), ("exact", f"{name}_exact")):
            v = thermo.get(key)
            row[stat] = (np.asarray(v, dtype=float).reshape(-1)
                         if v is not None and np.size(v) == mean.size
                         else np.full(mean.size, np.nan))
        out[name] = row
    return out

