"""The training file (``spinicl-training``) of ``spinicl train`` (docs/model.md §4).

:func:`write_training` stores a :class:`spinicl.training.TrainResult` (root attributes as
a run file's: format, version, config and seeds as JSON, command line; the arrays under
``/training``); :func:`read_training` reads it back, validated, for ``spinicl compare``
(:mod:`spinicl.analysis.compare`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import h5py
import numpy as np

from spinicl import __version__, registry
from spinicl.config import ConfigError
from spinicl.io.hdf5 import decode_attr
from spinicl.io.run import check_new_file, dumps, now, place_new_file, temporary_name
from spinicl.prompts import Task
from spinicl.training import HISTORY_KEYS, TrainConfig, TrainResult, same_prompts

#: ``format`` attribute of a training file (docs/model.md §4; compare ``spinicl-run``).
TRAINING_FORMAT = "spinicl-training"
TRAINING_FORMAT_VERSION = 1
_TRAINING_ALLOWED = f"a spinicl training file (format={TRAINING_FORMAT})"


def write_training(path: str | os.PathLike, task: Task, result: TrainResult,
                   compare: dict[str, Any] | None = None, command_line: str = "",
                   force: bool = False) -> str:
    """Write a training result to a new HDF5 file (format ``spinicl-training``).

    Layout::

        /                     attrs: format = "spinicl-training", format_version = 1,
                                     spinicl_version, config (JSON: {"task": task config,
                                     "train": TrainConfig, "lam": λ of training, "model",
                                     "dk"}), seeds (JSON: {"task": ..., "train": ...}),
                                     command_line, created
        /training             attrs: summary (JSON, ``TrainResult.summary()``), model,
                                     lam, step_rule
        /training/history/<key>   (records,) per-record arrays (``HISTORY_KEYS``)
        /training/W           ((D+1)²,) effective merged weights, row-major
        /training/theta       (n_params,) raw parameters (W, or vec W_q ‖ vec W_k)
        /training/compare/<key>   scalar datasets (float, bool or string), e.g. the
                                  output of :func:`compare_to_ground_state`

    The file is built under a temporary name and moved onto ``path`` atomically (without
    ``force`` exclusively: a file created meanwhile by anyone else is never overwritten,
    see :func:`spinicl.io.run.place_new_file`): an existing file is never left
    half-written.

    Parameters
    ----------
    path : str or PathLike
        Output file; refused if it exists unless ``force``.
    task : Task
        The task trained on (its config and seeds are recorded).
    result : TrainResult
    compare : dict, optional
        Scalars to store under ``/training/compare`` (values: int, float, bool, str or
        None; None is stored as NaN).
    command_line : str
        Recorded in the file.
    force : bool
        Overwrite an existing file.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ConfigError
        ``out`` (exists without ``force``, a directory, unwritable), ``task`` (not the
        task the result was trained on) or ``compare`` (a non-scalar value).
    """
    path = os.fspath(path)
    check_new_file(path, force)
    if result.task_config and not same_prompts(result.task_config, task.config.to_dict()):
        raise ConfigError("task", "the task the model was trained on (same task config and "
                          "seed)", task.config.to_dict())
    compare = dict(compare or {})
    for k, v in compare.items():
        if v is not None and not isinstance(v, (bool, int, float, str, np.generic)):
            raise ConfigError("compare", "a dict of scalars (number, bool, str or None)",
                              f"{k}: {type(v).__name__}")
    config = {"task": task.config.to_dict(), "train": result.config.to_dict(),
              "lam": float(result.lam), "model": result.model, "dk": result.dk}
    seeds = {"task": task.seeds, "train": result.seeds}
    tmp = temporary_name(path)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = TRAINING_FORMAT
            f.attrs["format_version"] = TRAINING_FORMAT_VERSION
            f.attrs["spinicl_version"] = __version__
            f.attrs["config"] = dumps(config)
            f.attrs["seeds"] = dumps(seeds)
            f.attrs["command_line"] = str(command_line)
            f.attrs["created"] = now()
            g = f.create_group("training")
            g.attrs["summary"] = dumps(result.summary())
            g.attrs["model"] = result.model
            g.attrs["lam"] = float(result.lam)
            g.attrs["step_rule"] = result.step_rule
            for k, v in result.history.items():
                g.create_dataset(f"history/{k}", data=np.asarray(v))
            g.create_dataset("W", data=np.asarray(result.W, dtype=np.float64))
            g.create_dataset("theta", data=np.asarray(result.theta, dtype=np.float64))
            c = g.create_group("compare")
            for k, v in compare.items():
                if v is None:
                    v = float("nan")
                elif isinstance(v, np.generic):
                    v = v.item()
                c.create_dataset(k, data=v)
        place_new_file(tmp, path, force)  # exclusive without force
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path


def read_training(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a training file written by :func:`write_training`.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    dict
        ``path``; ``attrs`` (root attributes, JSON decoded); ``config`` (``{"task",
        "train", "lam", "model", "dk"}``); ``task_config`` (dict), ``train_config``
        (:class:`TrainConfig`), ``lam`` (float), ``model`` (str), ``dk`` (int or None);
        ``seeds``; ``summary`` (dict); ``history`` (dict of str → ndarray (records,));
        ``W`` (ndarray ((D+1)²,)); ``theta`` (ndarray (n_params,)); ``compare`` (dict of
        scalars).

    Raises
    ------
    ConfigError
        ``path``: a missing, unreadable, foreign (another ``format``) or corrupt file
        (missing datasets, undecodable config, inconsistent shapes).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError("path", _TRAINING_ALLOWED, path, note="no such file")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise ConfigError("path", _TRAINING_ALLOWED, path, note="not an HDF5 file") from None
    with f:
        fmt = f.attrs.get("format", "")
        fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
        if fmt != TRAINING_FORMAT:
            raise ConfigError("path", _TRAINING_ALLOWED, path,
                              note=f"its format is {fmt!r}" if fmt else "no format attribute")
        try:
            attrs = {k: decode_attr(v) for k, v in f.attrs.items()}
            config = attrs["config"]
            g = f["training"]
            history = {k: g[f"history/{k}"][...] for k in g["history"]}
            W = np.asarray(g["W"][...], dtype=np.float64)
            theta = np.asarray(g["theta"][...], dtype=np.float64)
            compare = {k: decode_attr(g[f"compare/{k}"][()]) for k in g.get("compare", {})}
            summary = decode_attr(g.attrs.get("summary", "{}"))
            task_config = dict(config["task"])
            train_config = TrainConfig.from_dict(config["train"])
            lam = float(config["lam"])
            model = str(config.get("model", train_config.model))
            dk = config.get("dk")
            D = int(task_config["D"])
        except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
            raise ConfigError("path", _TRAINING_ALLOWED, path,
                              note=f"corrupt: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:120] if str(exc) else ''}"
                              ) from None
    entry = registry.MODELS.get(model)
    n_params = entry.spins(D, int(dk) if dk else None) if entry is not None else -1
    lengths = {len(v) for v in history.values()}
    if (W.shape != ((D + 1) ** 2,) or theta.shape != (n_params,) or len(lengths) > 1
            or not set(HISTORY_KEYS) <= set(history)):
        raise ConfigError("path", _TRAINING_ALLOWED, path,
                          note="corrupt: inconsistent weights or history")
    return {"path": path, "attrs": attrs, "config": config, "task_config": task_config,
            "train_config": train_config, "lam": lam, "model": model,
            "dk": None if dk is None else int(dk), "seeds": attrs.get("seeds", {}),
            "summary": summary if isinstance(summary, dict) else {}, "history": history,
            "W": W, "theta": theta, "compare": compare}
