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

import hashlib
import os
from pathlib import Path

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


# Numba's on-disk cache of a function is invalidated by edits to that function's own file only,
# while the engine's kernels call, inline and freeze constants of other modules: after an edit
# of emulator/work.py the cached ``kernels._run_chunk`` kept running the old code.  So the
# cached kernels are dropped whenever any of these sources changes (a hash of them is kept
# beside the cache; an installed, read-only package is left alone).
_HERE = Path(__file__).resolve().parent
_SOURCES = [_HERE / f for f in ("kernels.py", "work.py", "compile.py", "_jit.py")] + [
    _HERE.parent / "hw_models" / f for f in ("network.py", "rng.py")]


def drop_stale_cache(cache_dir: Path = _HERE / "__pycache__") -> bool:
    """Remove the cached kernels in ``cache_dir`` if the engine's sources changed since they
    were compiled; True if something was removed."""
    h = hashlib.sha256()
    try:
        for f in _SOURCES:
            h.update(f.read_bytes())
    except OSError:
        return False
    digest = h.hexdigest()
    stamp = cache_dir / "kernel-sources.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    if not cache_dir.is_dir():
        return False
    removed = False
    for pattern in ("kernels.*.nbi", "kernels.*.nbc", "work.*.nbi", "work.*.nbc"):
        for f in cache_dir.glob(pattern):
            try:
                f.unlink()
                removed = True
            except OSError:
                pass
    try:
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:
        pass
    return removed


drop_stale_cache()
