"""spinicl: the spin-glass theory of in-context learning, simulated.

A one-layer linear-attention transformer trained on in-context linear regression is a
spin glass whose real-valued spins are the attention weights (Li, Bai & Huang,
arXiv:2408.02288). spinicl builds its couplings from generated prompts, gives the exact
Gaussian solution of the merged model, and samples the Boltzmann distribution.
"""

import os

# Numba's parallel regions run on OpenMP. With the default (spin-waiting) policy, a step
# with several threads collapses when another process holds a core: measured on a
# loaded 2-core machine, a 2-thread BAOAB step at R = 256 took 15–51 ms against 3.9–7.5 ms
# with PASSIVE waiting (1 thread: 3.7–8 ms). Set before Numba first starts OpenMP; a
# value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from spinicl.config import ConfigError, TaskConfig
from spinicl.prompts import PromptSet, Task, make_task

__all__ = ["ConfigError", "PromptSet", "Task", "TaskConfig", "__version__", "make_task"]
