"""spinicl: the spin-glass theory of in-context learning, simulated.

A one-layer linear-attention transformer trained on in-context linear regression is a
spin glass whose real-valued spins are the attention weights (Li, Bai & Huang,
arXiv:2408.02288). spinicl builds its couplings from generated prompts, gives the exact
Gaussian solution of the merged model, and samples the Boltzmann distribution.
"""

import os
import sys

if os.path.basename(sys.argv[0] if sys.argv else "") in ("spinicl", "-m"):
    # the command line (console script, or `python -m spinicl.cli`): a signal while the
    # modules load ends it with one line, no traceback; cli.main then takes over
    from spinicl.signals import exit_before_start

    exit_before_start()

# Numba's parallel regions run on OpenMP. With the default (spin-waiting) policy, a step
# with several threads collapses when another process holds a core: measured on a
# loaded 2-core machine, a 2-thread BAOAB step at R = 256 took 15–51 ms against 3.9–7.5 ms
# with PASSIVE waiting (1 thread: 3.7–8 ms). Set before Numba first starts OpenMP; a
# value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _numba_cache_dir() -> str:
    """Directory for Numba's compiled-function cache, outside the installed package.

    Numba's ``cache=True`` writes ``*.nbi``/``*.nbc`` files next to the source by
    default, i.e. into ``site-packages/spinicl/**/__pycache__``; ``pip`` does not know
    these files, so an uninstall (or a switch to an editable install) leaves a package
    folder without ``__init__.py`` that shadows the real one. spinicl therefore points
    Numba at a per-user cache: ``$NUMBA_CACHE_DIR`` if set (Numba's own variable, which
    always wins), else ``$XDG_CACHE_HOME/spinicl/numba`` (default ``~/.cache``), else a
    per-user folder in the system's temporary directory when the home is not writable.
    Numba keeps one sub-folder per source path, so several installs never mix.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    import tempfile

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates = [os.path.join(base, "spinicl", "numba"),
                  os.path.join(tempfile.gettempdir(), f"spinicl-numba-{getattr(os, 'getuid', lambda: 0)()}")]
    for path in candidates:
        try:
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError:
            continue
    return candidates[-1]


os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
if "numba" in sys.modules:  # Numba imported before spinicl: update its live configuration
    sys.modules["numba"].config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

__version__ = "0.1.0"

from spinicl.config import ConfigError, TaskConfig
from spinicl.prompts import PromptSet, Task, make_task

__all__ = ["ConfigError", "PromptSet", "Task", "TaskConfig", "__version__", "load_run",
           "load_sweep", "make_task", "to_inference_data"]

#: Loaders imported on first use, so that ``import spinicl`` does not import pandas/xarray.
_LAZY = {"load_sweep": "spinicl.io.loaders", "load_run": "spinicl.io.loaders",
         "to_inference_data": "spinicl.io.loaders"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'spinicl' has no attribute {name!r}")
