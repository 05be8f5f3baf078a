"""Counter-based random numbers: one independent stream per replica slot.

Every random number a sampler uses is a pure function of ``(key, counter, index)``:

* ``key`` — a 64-bit word per replica slot (and one per copy for the swap decisions),
  derived once from the run's seed through :class:`numpy.random.SeedSequence`;
* ``counter`` — the global step counter (or the swap-event counter) kept in the state;
* ``index`` — the position inside the step (spin index, or a tagged slot for the
  Metropolis uniform), ``tag << 40 | i``.

The hash is two rounds of the SplitMix64 finaliser (Steele, Lea & Flood 2014),
``mix(mix(key + counter·φ) ⊕ (index·K + K'))``; uniforms take its top 53 bits. The
normals of one (key, counter) are a SplitMix64 sequence started at that hash (one
finaliser round per word) fed to a 256-layer ziggurat (several times faster than
Box–Muller, which spends its time in log/sin/cos). Nothing depends on the order in
which replicas are processed, so a trajectory is identical for any number of Numba
threads, and a resumed run (same counter) continues bit for bit. Numba's global
``np.random`` is never used.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_K1 = np.uint64(0xD1B54A32D192ED03)
_K2 = np.uint64(0x8CB92BA72F3D8DD7)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO53 = 1.0 / 9007199254740992.0

#: Index tags (bits 40+ of the index) separating the uses of one (key, counter).
TAG_NOISE = 0
TAG_ACCEPT = 1
TAG_SWAP = 2


@njit(cache=True, inline="always")
def mix64(x: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijection of 64-bit words with full avalanche."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@njit(cache=True, inline="always")
def hash3(key: np.uint64, counter: np.int64, index: np.int64) -> np.uint64:
    """64 random bits from (key, counter, index)."""
    x = mix64(key + np.uint64(counter) * _GOLD)
    return mix64(x ^ (np.uint64(index) * _K1 + _K2))


@njit(cache=True, inline="always")
def uniform(key: np.uint64, counter: np.int64, index: np.int64) -> float:
    """A uniform in the open interval (0, 1) (53-bit resolution)."""
    return (np.float64(hash3(key, counter, index) >> _S11) + 0.5) * _TWO53


def _ziggurat_tables(n_layers: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Layer edges x_0 > x_1 = r > ... > x_N = 0 and f(x_i) of the normal ziggurat
    (Marsaglia & Tsang 2000): every layer has area v, layer 0 includes the tail."""
    r, v = 3.6541528853610088, 0.00492867323399
    x = np.zeros(n_layers + 1)
    x[0], x[1] = v / np.exp(-0.5 * r * r), r
    for i in range(1, n_layers - 1):
        x[i + 1] = np.sqrt(-2.0 * np.log(v / x[i] + np.exp(-0.5 * x[i] ** 2)))
    return x, np.exp(-0.5 * x * x)


_ZX, _ZF = _ziggurat_tables()
_ZR = float(_ZX[1])
_M8 = np.uint64(255)
_S8 = np.uint64(8)
_ONE = np.uint64(1)


@njit(cache=True, inline="always")
def stream_start(key: np.uint64, counter: np.int64, tag: np.int64) -> np.uint64:
    """Start of the SplitMix64 sequence of stream (key, counter, tag)."""
    return hash3(key, counter, tag << 40)


@njit(cache=True, inline="always")
def _unit(s: np.uint64) -> float:
    """A uniform in (0, 1) from the SplitMix64 word at state s."""
    return (np.float64(np.int64(mix64(s) >> _S11)) + 0.5) * _TWO53


@njit(cache=True)
def _ziggurat_rest(bits: np.uint64, s: np.uint64) -> tuple[float, np.uint64]:
    """|z| for a word whose core test failed: wedge test or tail, then fresh draws.

    ``s`` is the state of the continuation words (advanced by one φ per word used).
    """
    i = np.int64(bits & _M8)
    z = np.float64(np.int64(bits >> _S11)) * _TWO53 * _ZX[i]
    while True:
        if z < _ZX[i + 1]:
            return z, s
        if i == 0:                                   # tail beyond r (Marsaglia 1964)
            while True:
                s += _GOLD
                a = -np.log(_unit(s)) / _ZR
                s += _GOLD
                b = -np.log(_unit(s))
                if 2.0 * b > a * a:
                    return _ZR + a, s
        s += _GOLD                                   # wedge of layer i
        if _ZF[i] + _unit(s) * (_ZF[i + 1] - _ZF[i]) < np.exp(-0.5 * z * z):
            return z, s
        s += _GOLD                                   # rejected: a fresh draw
        w = mix64(s)
        i = np.int64(w & _M8)
        z = np.float64(np.int64(w >> _S11)) * _TWO53 * _ZX[i]


@njit(cache=True)
def fill_normals(key: np.uint64, counter: np.int64, tag: np.int64, out: np.ndarray) -> None:
    """Fill ``out`` (1-D, length n) with standard normals of stream (key, counter, tag).

    The words are the SplitMix64 sequence ``w_j = mix(s + j·φ)``, j = 1, 2, …, from the
    hashed start ``s = hash3(key, counter, tag << 40)`` (one finaliser round per word,
    as in SplitMix64 itself; two streams overlap only if their starts fall within a few
    n·φ of each other, probability ≈ n/2⁶⁴). Normal j comes from word w_j through a
    256-layer ziggurat (Marsaglia & Tsang 2000): layer from the low 8 bits, sign from bit
    8, the abscissa from the top 53 bits. The core test (accepted ≈ 98.8 % of the time)
    runs as a branch-free first pass that the compiler vectorises; the rare rejected
    entries are finished in a second pass (wedge test, the tail beyond r = 3.654, or
    fresh draws) with the continuation words w_{n+1}, w_{n+2}, … in order of j.
    """
    n = out.shape[0]
    s = stream_start(key, counter, tag)
    for j in range(n):
        bits = mix64(s + np.uint64(j + 1) * _GOLD)
        i = bits & _M8
        z = np.float64(np.int64(bits >> _S11)) * _TWO53 * _ZX[i]
        z = z if z < _ZX[i + 1] else np.nan
        out[j] = -z if (bits >> _S8) & _ONE else z
    rest = s + np.uint64(n) * _GOLD
    for j in range(n):
        if np.isnan(out[j]):
            bits = mix64(s + np.uint64(j + 1) * _GOLD)
            z, rest = _ziggurat_rest(bits, rest)
            out[j] = -z if (bits >> _S8) & _ONE else z


def derive_keys(seed: int, n_slots: int, n_copies: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot and per-copy stream keys from a seed.

    Parameters
    ----------
    seed : int
        Root seed (>= 0).
    n_slots : int
        Number of replica slots R.
    n_copies : int
        Number of copies (one swap stream each).

    Returns
    -------
    keys : ndarray of uint64, shape (R,)
    swap_keys : ndarray of uint64, shape (copies,)
    """
    slots, swaps = np.random.SeedSequence(seed).spawn(2)
    return (slots.generate_state(n_slots, dtype=np.uint64),
            swaps.generate_state(n_copies, dtype=np.uint64))


def init_generator(seed: int) -> np.random.Generator:
    """The numpy generator of the initial draws (a third, separate child of the seed)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


@njit(cache=True)
def _normals_batch(keys: np.ndarray, counter: np.int64, tag: np.int64, n: int) -> np.ndarray:
    out = np.empty((keys.shape[0], n))
    for r in range(keys.shape[0]):
        fill_normals(keys[r], counter, tag, out[r])
    return out


def normals(keys: np.ndarray, counter: int, n: int, tag: int = TAG_NOISE) -> np.ndarray:
    """Standard normals of the streams ``keys`` at one counter, shape (len(keys), n).

    The same numbers a sampler draws for its noise at step ``counter`` (for tests).
    """
    return _normals_batch(np.asarray(keys, dtype=np.uint64), np.int64(counter),
                          np.int64(tag), int(n))
