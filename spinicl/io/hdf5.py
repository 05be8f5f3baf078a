"""Reading spinicl's HDF5 files read-only, whatever their format: the one way every reader
opens a file (retries, SWMR, damaged files as one-line errors) and decodes its attributes
and string columns.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from spinicl.config import ConfigError
from spinicl.io.run import StoreError, open_swmr_read

#: The kind of file each ``format`` attribute names (for messages).
KINDS = {"spinicl-run": "run", "spinicl-sweep": "sweep", "spinicl-training": "training"}


def as_str(v: Any) -> str:
    """An HDF5 string attribute or element (bytes, str, 0-d array) as str."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    return v.decode() if isinstance(v, bytes) else str(v)


def plain(v: Any) -> Any:
    """An HDF5 attribute as a plain Python / netCDF-safe value (JSON strings kept)."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def decode_attr(v: Any) -> Any:
    """bytes → str, JSON strings → objects, numpy scalars → Python scalars."""
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, str) and v[:1] in "{[":
        with contextlib.suppress(json.JSONDecodeError):
            return json.loads(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def json_attr(f: h5py.File, key: str) -> dict[str, Any]:
    """A JSON-object attribute as a dict ({} where absent or not a JSON object)."""
    raw = f.attrs.get(key)
    if raw is None:
        return {}
    try:
        out = json.loads(as_str(raw))
    except (json.JSONDecodeError, TypeError):
        return {}
    return out if isinstance(out, dict) else {}


def read_column(ds: h5py.Dataset) -> np.ndarray:
    """A 1-D dataset as an array; string columns as an object array of str."""
    if h5py.check_string_dtype(ds.dtype) is not None:
        return np.array(ds.asstr()[...], dtype=object)
    if ds.dtype.kind == "S":
        return np.array([b.decode() for b in ds[...]], dtype=object)
    return ds[...]


@contextlib.contextmanager
def open_read(path: str | os.PathLike, swmr: bool, fmt: str | None = None,
              tries: int = 25, wait: float = 0.2) -> Iterator[h5py.File]:
    """Open a spinicl HDF5 file read-only for the duration of a ``with`` block.

    ``swmr=True`` for run files (their writer holds them in SWMR mode; after a SIGKILL
    they open only this way; a truncated file gives up in well under a second,
    :func:`spinicl.io.run.open_swmr_read`). Sweep files are written by short plain
    ``r+`` merges that hold the HDF5 file lock: a failed open is retried for
    ``tries × wait`` seconds.

    Parameters
    ----------
    fmt : str, optional
        The ``format`` attribute the file must have (``spinicl-run``, ``spinicl-sweep``).

    Raises
    ------
    ConfigError
        ``path``: missing, a folder, not a readable HDF5 file, another format, or damaged
        (HDF5 failing inside the block to read what the file's metadata points at).
    """
    p = os.fspath(path)
    allowed = (f"a spinicl {KINDS.get(fmt, fmt)} file (format={fmt})" if fmt
               else "an existing spinicl run or sweep file")
    if not os.path.isfile(p):
        raise ConfigError("path", allowed, p,
                          "no such file" if not os.path.exists(p) else "not a file")
    f = None
    last: OSError | None = None
    for attempt in range(max(1, tries)):
        try:
            f = open_swmr_read(p) if swmr else h5py.File(p, "r")
            break
        except OSError as exc:
            last = exc
            if swmr:
                with contextlib.suppress(OSError):
                    f = h5py.File(p, "r")  # a file written without SWMR (no "latest" libver)
                    break
            if "lock" not in str(exc).lower() or attempt == tries - 1:
                break
            time.sleep(wait)
    if f is None:
        first = str(last).splitlines()[0][:160] if last else "unreadable"
        raise ConfigError("path", allowed if fmt else "a readable HDF5 file", p,
                          f"not a readable HDF5 file: {first}" if fmt else first)
    try:
        if fmt is not None:
            got = as_str(f.attrs.get("format", ""))
            if got != fmt:
                raise ConfigError("path", allowed, p, note=f"its format is {got!r}" if got
                                  else "no format attribute")
        yield f
    except (OSError, RuntimeError) as exc:
        if isinstance(exc, StoreError):
            raise
        # HDF5 failing to read what the file's own metadata points at: truncated / torn
        raise ConfigError("path", allowed if fmt else "an undamaged spinicl run or sweep "
                          "file", p, f"damaged or truncated: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:120] if str(exc) else ''}") from None
    finally:
        f.close()
