"""Numbers computed from samples and files (no drawing):

* :mod:`spinicl.analysis.diagnostics` — autocorrelation times, effective sample sizes,
  standard errors, split R-hat of Monte Carlo series;
* :mod:`spinicl.analysis.compare` — where a trained transformer sits in the sampled
  Boltzmann distribution of a run (``spinicl compare``).
"""
