"""spinicl: the spin-glass theory of in-context learning, simulated.

A one-layer linear-attention transformer trained on in-context linear regression is a
spin glass whose real-valued spins are the attention weights (Li, Bai & Huang,
arXiv:2408.02288). spinicl builds its couplings from generated prompts, gives the exact
Gaussian solution of the merged model, and samples the Boltzmann distribution.
"""

__version__ = "0.1.0"

from spinicl.config import ConfigError, TaskConfig
from spinicl.prompts import PromptSet, Task, make_task

__all__ = ["ConfigError", "PromptSet", "Task", "TaskConfig", "__version__", "make_task"]
