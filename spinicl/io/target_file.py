"""The target file (``spinicl export-target``, format ``spinicl-target``; docs/model.md §6.4).

A suite target with its references, for samplers written in any language (HDF5, readable
from Julia's HDF5.jl, C++'s HighFive, R's hdf5r). Layout::

    /        attrs: format = "spinicl-target", format_version (1), spinicl_version,
                    name, description, model (merged | factored), representation,
                    task_config (JSON), seed, beta, n (spins per chain), lam, D, dk
                    (factored), log_density (one line of math), created
    merged, dense:
    /A                    (n, n)  precision of E: A = lam I + S^T S / P
    /h                    (n,)    field h = S^T y / P
    /e0                   ()      constant: E(w) = 0.5 w^T A w - h^T w + e0
    merged, matrix-free (A is n x n: not stored):
    /C, /Q                (P, D+1) prompt factors c, q; row mu of S is kron(c_mu, q_mu)
    /y                    (P,)    query labels; /h, /e0 as above
    merged, both:
    /mean                 (n,)    exact mean m = A^-1 h
    /covariance_diagonal  (n,)    diag((beta A)^-1)
    /covariance_spectrum  (n,)    eigenvalues of (beta A)^-1, descending
    /slowest_mode         (n,)    unit eigenvector of A's smallest active eigenvalue
             attrs: slowest_eigenvalue
    /        attrs (merged): energy_mean = E(m) + n/(2 beta),
                    energy_variance = n/(2 beta^2), energy_ground = E(m),
                    condition_number, slowest_eigenvalue
    factored:
    /gram                 ((D+1)^2, (D+1)^2)  data Gram A0 = S^T S / P
    /h, /e0               as above (for the effective W = Wq^T Wk)
    /ground_state         (n,)    factors theta = (vec Wq, vec Wk), row-major (dk, D+1)
    /ground_state_W       ((D+1)^2,) its effective weights
    /ground_state attrs:  energy_ground, ground_state_kind ("exact" | "best known"),
                          ground_state_note
    /        attrs (factored): energy_ground, ground_state_kind

Spins are row-major: merged W_ab at index a(D+1)+b; factored θ = (vec W_q, vec W_k).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import h5py
import numpy as np

from spinicl import __version__
from spinicl.config import ConfigError
from spinicl.io.run import check_new_file, dumps, now, place_new_file, temporary_name

#: ``format`` attribute of a target file.
TARGET_FORMAT = "spinicl-target"
TARGET_FORMAT_VERSION = 1

#: The log density of each model, one line (E0 of the effective W for the factored one).
LOG_DENSITY = {
    "merged": "log p(w) = -beta * (0.5 * w^T A w - h^T w + e0) + const",
    "factored": ("log p(Wq, Wk) = -beta * (0.5 * w^T gram w - h^T w + e0 + 0.5 * lam * "
                 "(|Wq|_F^2 + |Wk|_F^2)) + const, w = vec(Wq^T Wk) row-major"),
}


def check_target_output(path: str, force: bool = False) -> None:
    """Check ``path`` before any work: :func:`spinicl.io.run.check_new_file`, then
    that its directory takes a file, by creating (and removing) the temporary file the
    writer builds there (permission bits say nothing of a read-only filesystem).

    Raises
    ------
    ConfigError
        Naming ``out``.
    """
    check_new_file(path, force)
    tmp = temporary_name(path)
    try:
        with open(tmp, "xb"):
            pass
    except OSError as exc:
        raise ConfigError("out", "a path in a writable directory", path,
                          exc.strerror or type(exc).__name__) from None
    with contextlib.suppress(OSError):
        os.remove(tmp)


def write_target_file(path: str, target: Any, model: Any, refs: Any, *,
                      force: bool = False) -> str:
    """Write a target and its references (module docstring: the layout).

    Parameters
    ----------
    path : str
        Refused if it exists, unless ``force``.
    target : spinicl.targets.Target
    model : MergedModel or FactoredModel
        Built by :func:`spinicl.targets.build_target`.
    refs : spinicl.targets.References
    force : bool

    Returns
    -------
    str
        ``path``.
    """
    check_new_file(path, force)
    tmp = temporary_name(path)
    data = model.data
    try:
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = TARGET_FORMAT
            a["format_version"] = TARGET_FORMAT_VERSION
            a["spinicl_version"] = __version__
            a["name"] = target.name
            a["description"] = target.description
            a["model"] = target.model
            a["representation"] = model.representation
            a["task_config"] = dumps(target.task.to_dict())
            a["seed"] = int(target.task.seed)
            a["beta"] = float(target.beta)
            a["n"] = int(model.n_spins)
            a["lam"] = float(model.lam)
            a["D"] = int(model.D)
            a["log_density"] = LOG_DENSITY[target.model]
            a["created"] = now()
            f.create_dataset("h", data=np.asarray(data.field, dtype=np.float64))
            f.create_dataset("e0", data=float(data.e0))
            if target.model == "factored":
                a["dk"] = int(model.dk)
                f.create_dataset("gram", data=np.asarray(data.gram, dtype=np.float64))
                g = f.create_dataset("ground_state", data=refs.ground_factors)
                f.create_dataset("ground_state_W", data=refs.ground_W)
                g.attrs["energy_ground"] = float(refs.reference_energy)
                g.attrs["ground_state_kind"] = refs.kind
                g.attrs["ground_state_note"] = refs.ground_note
                a["energy_ground"] = float(refs.reference_energy)
                a["ground_state_kind"] = refs.kind
            else:
                if model.representation == "dense":
                    f.create_dataset("A", data=model.precision())
                else:
                    ps = data.prompts
                    f.create_dataset("C", data=ps.c)
                    f.create_dataset("Q", data=ps.q)
                    f.create_dataset("y", data=ps.y)
                f.create_dataset("mean", data=refs.mean)
                f.create_dataset("covariance_diagonal", data=refs.covariance_diagonal)
                f.create_dataset("covariance_spectrum",
                                 data=np.sort(1.0 / (refs.beta * refs.spectrum))[::-1])
                s = f.create_dataset("slowest_mode", data=refs.slowest_mode)
                s.attrs["slowest_eigenvalue"] = float(refs.slowest_eigenvalue)
                for k in ("energy_mean", "energy_variance", "condition_number",
                          "slowest_eigenvalue"):
                    a[k] = float(getattr(refs, k))
                a["energy_ground"] = float(refs.reference_energy)
        place_new_file(tmp, path, force)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


__all__ = ["LOG_DENSITY", "TARGET_FORMAT", "TARGET_FORMAT_VERSION", "check_target_output",
           "write_target_file"]
