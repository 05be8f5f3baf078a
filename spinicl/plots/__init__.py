"""Publication figures from sweep, run and training files.

* :mod:`spinicl.plots.sweeps` — :func:`plot_phase`, a phase diagram of one observable over
  two axes of a sweep (task diversity α = P/D², temperature T, ...), disorder-averaged
  over the seeds; :func:`plot_cut`, curves of one observable against one axis, one curve
  per value of another, with error bars, the exact value where the file has one, the
  stored baselines and the D → ∞ theory; :func:`plot_sweep`, the figure a sweep's
  ``[plot]`` section asks for;
* :mod:`spinicl.plots.sweep_data` — the numbers behind those figures (:func:`phase_data`,
  :func:`cut_data`, :func:`asymptotic_curve`), so that a figure can be checked number by
  number;
* :mod:`spinicl.plots.trace` — :func:`plot_trace`, the records of a run against the step,
  one colour per temperature, burn-in shaded, exact values dashed;
* :mod:`spinicl.plots.overlap` — :func:`plot_overlap`, the replica-overlap distribution
  P(q) of a run per temperature (its ``/overlap_histogram``), the merged model's exact
  Gaussian approximation dashed;
* :mod:`spinicl.plots.fig2` — :func:`plot_weights_and_losses`, the paper's Fig. 2 for a
  run and a training file;
* :mod:`spinicl.plots.style` — symbols, labels, the style and :func:`save_figure`.

Errors
------
A missing or foreign file, an unknown observable or axis raises
:class:`spinicl.config.ConfigError` naming the parameter (``path``, ``x``, ``y``, ``z``,
``by``, ``where``, ``observables``, ``out``).
"""

from spinicl.plots.fig2 import plot_weights_and_losses
from spinicl.plots.overlap import overlap_density, plot_overlap
from spinicl.plots.style import (
    AXIS_SYMBOLS,
    OBSERVABLE_SYMBOLS,
    observable_label,
    save_figure,
)
from spinicl.plots.sweep_data import (
    CutData,
    PhaseData,
    asymptotic_curve,
    cut_data,
    phase_data,
)
from spinicl.plots.sweeps import plot_cut, plot_phase, plot_sweep
from spinicl.plots.trace import plot_trace

__all__ = [
    "AXIS_SYMBOLS",
    "OBSERVABLE_SYMBOLS",
    "CutData",
    "PhaseData",
    "asymptotic_curve",
    "cut_data",
    "observable_label",
    "overlap_density",
    "phase_data",
    "plot_cut",
    "plot_overlap",
    "plot_phase",
    "plot_sweep",
    "plot_trace",
    "plot_weights_and_losses",
    "save_figure",
]
