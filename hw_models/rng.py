"""The counter-based random numbers used by stochastic input encoders.

A value depends only on its key ``(seed, sample, step, neuron)``, never on call order, batch size
or thread count, so the compiled engine and the NumPy reference draw the same numbers.  The
mixer is SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
generators"), applied once per key component:

``mix64(seed, sample, step, neuron) = f(f(f(f(seed) ^ sample) ^ step) ^ neuron)`` with ``f`` the
SplitMix64 finaliser of ``z + 0x9E3779B97F4A7C15`` (all arithmetic modulo 2^64).

A Bernoulli input neuron with value ``x`` out of ``input_max`` spikes iff
``((mix64(...) >> 32) * input_max) >> 32 < x`` (see :mod:`hw_models.network`).
"""

from __future__ import annotations

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
MUL1 = 0xBF58476D1CE4E5B9
MUL2 = 0x94D049BB133111EB
MASK = (1 << 64) - 1


def splitmix64(z: int) -> int:
    """SplitMix64 step on a Python int (the readable definition)."""
    z = (z + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * MUL1) & MASK
    z = ((z ^ (z >> 27)) * MUL2) & MASK
    return z ^ (z >> 31)


def mix64(seed: int, sample: int, step: int, neuron: int) -> int:
    """The 64-bit hash of one key (Python ints; the readable definition)."""
    h = splitmix64(seed & MASK)
    h = splitmix64(h ^ (sample & MASK))
    h = splitmix64(h ^ (step & MASK))
    return splitmix64(h ^ (neuron & MASK))


def _splitmix64_np(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MUL1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MUL2)
    return z ^ (z >> np.uint64(31))


def mix64_array(seed: int, sample: int, step: int, neurons: np.ndarray) -> np.ndarray:
    """Vectorised :func:`mix64` over an array of neuron indices (uint64 result)."""
    with np.errstate(over="ignore"):
        h = _splitmix64_np(np.array([seed & MASK], dtype=np.uint64))
        h = _splitmix64_np(h ^ np.uint64(sample & MASK))
        h = _splitmix64_np(h ^ np.uint64(step & MASK))
        return _splitmix64_np(h ^ np.asarray(neurons).astype(np.uint64))


def bernoulli_draw(seed: int, sample: int, step: int, neurons: np.ndarray,
                   input_max: int) -> np.ndarray:
    """``r ∈ [0, input_max)`` per neuron: spike iff ``r < x``."""
    h = mix64_array(seed, sample, step, neurons)
    return (((h >> np.uint64(32)) * np.uint64(input_max)) >> np.uint64(32)).astype(np.int64)
