"""The decorator of the engine's per-step kernels.

Every Numba function call with array arguments normally increments and decrements the
reference count of each array (one atomic operation each way, so two per array per call), and
a kernel taking the packed network receives twenty-odd arrays.  Measured on this project's
LeNet-5 (T = 100, 5 % activity): a ``_scatter`` call with no spike cost ~600 ns, a large part
of the engine's time per step.  The per-step kernels only borrow arrays that their caller
holds for the whole sample: they allocate nothing and return no array, so they are compiled
without the runtime's reference counting (Numba's ``_nrt=False`` option), and a call costs
tens of nanoseconds.  A Numba that does not know the option compiles them as usual.
"""

from __future__ import annotations

from numba import njit

try:
    from numba.core.cpu import CPUTargetOptions as _Opts

    _BORROW = {"_nrt": False} if hasattr(_Opts, "_nrt") else {}
except ImportError:  # pragma: no cover - another Numba layout: keep the default
    _BORROW = {}


def hot(fn):
    """``njit`` for a per-step kernel: cached, GIL released, no bounds checks, borrowing its
    arrays (no reference counting; the function must not allocate or return an array)."""
    return njit(cache=True, nogil=True, boundscheck=False, **_BORROW)(fn)
