"""What is known without sampling.

* :mod:`spinicl.theory.gaussian` — the exact solution of the merged (Gaussian) model at
  every temperature: mean, covariance, exact draws, free energy, closed forms of every
  observable, ULA's biased stationary law; the factored model's ground state (nuclear-norm
  optimum) where it is exact.
* :mod:`spinicl.theory.amp` — the paper's AMP / cavity iteration (``paper`` and
  ``onsager`` variants) as one compiled kernel.
* :mod:`spinicl.theory.baselines` — the algorithms in-context learning is said to
  implement: one-step gradient descent, Bayes-optimal ridge, the discrete-pool posterior
  (dMMSE).
* :mod:`spinicl.theory.asymptotic` — the D → ∞ theory of the same model (Lu et al.,
  arXiv:2405.11751) and the dictionary to spinicl's variables.
"""

from spinicl.theory.gaussian import (
    GaussianTheory,
    factored_ground_state,
    gaussian_theory,
)

__all__ = ["GaussianTheory", "factored_ground_state", "gaussian_theory"]
