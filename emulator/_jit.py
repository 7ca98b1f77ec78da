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

import numpy as np
from numba import config, njit

try:
    from numba.core.cpu import CPUTargetOptions as _Opts

    _BORROW = {"_nrt": False} if hasattr(_Opts, "_nrt") else {}
except ImportError:  # pragma: no cover - another Numba layout: keep the default
    _BORROW = {}


def hot(fn):
    """``njit`` for a per-step kernel: cached, GIL released, no bounds checks, borrowing its
    arrays (no reference counting; the function must not allocate or return an array)."""
    return njit(cache=True, nogil=True, boundscheck=False, **_BORROW)(fn)


# ---- bit intrinsics of the kernels ----------------------------------------------------------
if config.DISABLE_JIT:  # pure-Python run (coverage of the kernels): the intrinsics have no body
    def trailing_zeros(w):
        w = int(w)
        return (w & -w).bit_length() - 1

    def popcount(w):
        return int(w).bit_count()

    def bits64(m8, start, bit):
        b = np.packbits((np.asarray(m8[start:start + 64]) & bit) != 0, bitorder="little")
        return np.uint64(int.from_bytes(b.tobytes(), "little"))

    def add_bits64(acc, at, m8, start, shift):
        acc[at:at + 64] += (m8[start:start + 64] >> shift) & 1

    def _add_marks64(acc, at, w, m8, start, n, tail, nbits, wt=None, acc16=None, at16=0):
        for k in range(n + (tail > 0)):
            m = m8[start + 64 * k:start + 64 * (k + 1)].copy()
            if k == n:
                m[tail:] = 0
            for b in range(nbits):
                acc[at + b * w:at + b * w + 64] += (m >> b) & 1
            if wt is not None:
                acc16[at16:at16 + 64] += (m & 1).astype(np.uint16) * wt[start + 64 * k:][:64]

    def add_marks64_1(acc, at, w, m8, start, n, tail):
        _add_marks64(acc, at, w, m8, start, n, tail, 1)

    def add_marks64_3(acc, at, w, m8, start, n, tail):
        _add_marks64(acc, at, w, m8, start, n, tail, 3)

    def add_marks64_1w(acc, at, w, m8, start, n, tail, wt, acc16, at16):
        _add_marks64(acc, at, w, m8, start, n, tail, 1, wt, acc16, at16)

    def add_marks64_3w(acc, at, w, m8, start, n, tail, wt, acc16, at16):
        _add_marks64(acc, at, w, m8, start, n, tail, 3, wt, acc16, at16)

    def sum_rows(acc, tab, idx, n, w):
        for e in range(n):
            r = int(idx[e]) * w
            acc[:w] += tab[r:r + w]
else:
    from llvmlite import ir as _llir
    from numba.core import types as _nbtypes
    from numba.cpython.unsafe.numbers import trailing_zeros  # noqa: F401 (re-exported)
    from numba.extending import intrinsic

    @intrinsic
    def bits64(typingctx, m8, start, bit):
        """Bit i set iff ``m8[start + i] & bit != 0``, for i < 64 (the caller guarantees the
        64 bytes exist).  Written as one 64-lane byte test, which LLVM lowers to the target's
        mask instructions (``vptestmb`` into a mask register on AVX-512, byte-sign moves on
        AVX2/SSE2) instead of a fold per byte."""
        if not (isinstance(m8, _nbtypes.Array) and m8.dtype == _nbtypes.uint8
                and m8.ndim == 1 and m8.layout == "C"
                and isinstance(start, _nbtypes.Integer) and isinstance(bit, _nbtypes.Integer)):
            return None

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            at = context.cast(builder, args[1], signature.args[1], _nbtypes.intp)
            ptr = builder.gep(ary.data, [at])
            vty = _llir.VectorType(_llir.IntType(8), 64)
            vec = builder.load(builder.bitcast(ptr, vty.as_pointer()), align=1)
            ne = builder.icmp_unsigned("!=", builder.and_(vec, _splat8(builder, args[2], vty)),
                                       _llir.Constant(vty, None))
            return builder.bitcast(ne, _llir.IntType(64))

        return _nbtypes.uint64(m8, start, bit), codegen

    def _splat8(builder, value, vty):
        i8 = _llir.IntType(8)
        b8 = builder.trunc(value, i8) if value.type.width > 8 else value
        one = builder.insert_element(_llir.Constant(vty, _llir.Undefined), b8,
                                     _llir.Constant(_llir.IntType(32), 0))
        return builder.shuffle_vector(one, _llir.Constant(vty, _llir.Undefined),
                                      _llir.Constant(_llir.VectorType(_llir.IntType(32), 64),
                                                     None))

    def _vector_ptrs(context, builder, signature, args, vty):
        """Pointers to ``vty`` at ``args[0][args[1]]`` and ``args[2][args[3]]`` (array,
        offset pairs of an intrinsic's arguments)."""
        ptrs = []
        for k, i in ((0, 1), (2, 3)):
            ary = context.make_array(signature.args[k])(context, builder, args[k])
            off = context.cast(builder, args[i], signature.args[i], _nbtypes.intp)
            ptrs.append(builder.bitcast(builder.gep(ary.data, [off]), vty.as_pointer()))
        return ptrs

    def _sum_loop(builder, n_, init, step, name):
        """The IR of ``xs = init; for k in range(n_): xs += step(k)`` with the sums ``xs``
        (vectors) held in registers (phi nodes) for the whole loop; returns their final
        values, at the end of the block the builder is left in."""
        intp = n_.type
        zero = _llir.Constant(intp, 0)
        entry = builder.block
        loop = builder.append_basic_block(f"{name}.loop")
        done = builder.append_basic_block(f"{name}.done")
        builder.cbranch(builder.icmp_signed(">", n_, zero), loop, done)
        builder.position_at_end(loop)
        k = builder.phi(intp)
        xs = [builder.phi(a.type) for a in init]
        ys = [builder.add(x, y) for x, y in zip(xs, step(k))]
        k1 = builder.add(k, _llir.Constant(intp, 1))
        k.add_incoming(zero, entry)
        k.add_incoming(k1, loop)
        for x, a, y in zip(xs, init, ys):
            x.add_incoming(a, entry)
            x.add_incoming(y, loop)
        builder.cbranch(builder.icmp_signed("<", k1, n_), loop, done)
        builder.position_at_end(done)
        rs = [builder.phi(a.type) for a in init]  # (phis first in a block)
        for r, a, y in zip(rs, init, ys):
            r.add_incoming(a, entry)
            r.add_incoming(y, loop)
        return rs

    @intrinsic
    def add_bits64(typingctx, acc, at, m8, start, shift):
        """``acc[at:at+64] += (m8[start:start+64] >> shift) & 1`` in uint8 lanes (wrapping:
        the caller empties ``acc`` before 255 adds), as one 64-lane vector operation."""
        u8 = (isinstance(acc, _nbtypes.Array) and acc.dtype == _nbtypes.uint8
              and acc.ndim == 1 and acc.layout == "C" and isinstance(m8, _nbtypes.Array)
              and m8.dtype == _nbtypes.uint8 and m8.ndim == 1 and m8.layout == "C")
        if not (u8 and isinstance(at, _nbtypes.Integer) and isinstance(start, _nbtypes.Integer)
                and isinstance(shift, _nbtypes.Integer)):
            return None

        def codegen(context, builder, signature, args):
            vty = _llir.VectorType(_llir.IntType(8), 64)
            ptrs = _vector_ptrs(context, builder, signature, args, vty)
            m = builder.load(ptrs[1], align=1)
            bit = builder.and_(builder.lshr(m, _splat8(builder, args[4], vty)),
                               _splat8(builder, _llir.Constant(_llir.IntType(8), 1), vty))
            builder.store(builder.add(builder.load(ptrs[0], align=1), bit), ptrs[0], align=1)
            return context.get_dummy_value()

        return _nbtypes.none(acc, at, m8, start, shift), codegen

    def _marks_loop(nbits, weighted=False):
        """An intrinsic ``(acc, at, w, m8, start, n, tail[, wt, acc16, at16])``: for k < n, bit b <
        ``nbits`` of the 64 mark bytes ``m8[start + 64k:][:64]`` added to
        ``acc[at + b·w:][:64]`` (uint8 lanes, wrapping: the caller empties ``acc`` before they
        could), then, if ``tail`` > 0, the first ``tail`` (< 64) bytes at ``start + 64n`` to
        the first ``tail`` lanes (64 bytes are read there: ``m8`` needs them).  ``weighted``:
        also the weight bytes ``wt[start + 64k:][:64]`` of the neurons whose bit 0 is set
        added to the uint16 lanes ``acc16[at16:][:64]`` (``wt`` indexed like ``m8``, as long;
        16-bit, so that the weighted sums are rarely emptied).  The sums stay
        in vector registers for the whole loop: one load and store of ``acc`` per call, where
        one :func:`add_bits64` per piece and bit loads and stores them each time (and, both
        being uint8 arrays that LLVM must assume overlap, waits for the store before the next
        load)."""
        def typer_(acc, at, w, m8, start, n, tail, *wt):
            arrs = (acc, m8) + tuple(wt[:1])
            u8 = all(isinstance(a, _nbtypes.Array) and a.dtype == _nbtypes.uint8
                     and a.ndim == 1 and a.layout == "C" for a in arrs)
            if not (u8 and len(wt) == 3 * int(weighted) and all(
                    isinstance(a, _nbtypes.Integer) for a in (at, w, start, n, tail))):
                return None
            if weighted and not (isinstance(wt[1], _nbtypes.Array)
                                 and wt[1].dtype == _nbtypes.uint16 and wt[1].ndim == 1
                                 and wt[1].layout == "C" and isinstance(wt[2], _nbtypes.Integer)):
                return None

            def codegen(context, builder, signature, args):
                intp = context.get_value_type(_nbtypes.intp)
                vty = _llir.VectorType(_llir.IntType(8), 64)
                cast = (lambda k: context.cast(builder, args[k], signature.args[k],
                                               _nbtypes.intp))
                at_, w_, start_, n_ = cast(1), cast(2), cast(4), cast(5)
                acc_ = context.make_array(signature.args[0])(context, builder, args[0]).data
                m8_ = context.make_array(signature.args[3])(context, builder, args[3]).data
                ptrs = [builder.bitcast(builder.gep(acc_, [builder.add(
                    at_, builder.mul(w_, _llir.Constant(intp, b)))]), vty.as_pointer())
                    for b in range(nbits)]
                wt_ = (context.make_array(signature.args[7])(context, builder, args[7]).data
                       if weighted else None)
                v16 = _llir.VectorType(_llir.IntType(16), 64)
                if weighted:
                    a16 = context.make_array(signature.args[8])(context, builder, args[8]).data
                    ptrs.append(builder.bitcast(builder.gep(a16, [cast(9)]), v16.as_pointer()))

                def lanes(m, at8):
                    """The values added to each lane set for the mark bytes m."""
                    ys = [builder.and_(m if b == 0 else builder.lshr(
                        m, _splat8(builder, _llir.Constant(_llir.IntType(8), b), vty)), one)
                        for b in range(nbits)]
                    if weighted:
                        wv = builder.load(builder.bitcast(builder.gep(wt_, [at8]),
                                                          vty.as_pointer()), align=1)
                        ys.append(builder.zext(builder.select(builder.icmp_unsigned(
                            "!=", ys[0], _llir.Constant(vty, None)), wv,
                            _llir.Constant(vty, None)), v16))
                    return ys
                init = [builder.load(p, align=1) for p in ptrs]
                one = _splat8(builder, _llir.Constant(_llir.IntType(8), 1), vty)
                zero = _llir.Constant(intp, 0)

                def piece(k):
                    at8 = builder.add(start_, builder.shl(k, _llir.Constant(intp, 6)))
                    m = builder.load(builder.bitcast(builder.gep(m8_, [at8]),
                                                     vty.as_pointer()), align=1)
                    return lanes(m, at8)
                rs = _sum_loop(builder, n_, init, piece, "marks")
                for r, p in zip(rs, ptrs):
                    builder.store(r, p, align=1)
                # the last, partial piece: lanes < tail
                tail_ = cast(6)
                part = builder.append_basic_block("marks.tail")
                end = builder.append_basic_block("marks.end")
                builder.cbranch(builder.icmp_signed(">", tail_, zero), part, end)
                builder.position_at_end(part)
                at8 = builder.add(start_, builder.shl(n_, _llir.Constant(intp, 6)))
                m = builder.load(builder.bitcast(builder.gep(m8_, [at8]), vty.as_pointer()),
                                 align=1)
                iota = _llir.Constant(vty, list(range(64)))
                keep = builder.icmp_unsigned("<", iota, _splat8(builder, tail_, vty))
                m = builder.select(keep, m, _llir.Constant(vty, None))
                for r, p, y in zip(rs, ptrs, lanes(m, at8)):
                    builder.store(builder.add(r, y), p, align=1)
                builder.branch(end)
                builder.position_at_end(end)
                return context.get_dummy_value()

            return _nbtypes.none(acc, at, w, m8, start, n, tail, *wt), codegen

        # (Numba's intrinsics take no *args: a typer of each arity)
        if weighted:
            def typer(typingctx, acc, at, w, m8, start, n, tail, wt, acc16, at16):
                return typer_(acc, at, w, m8, start, n, tail, wt, acc16, at16)
        else:
            def typer(typingctx, acc, at, w, m8, start, n, tail):
                return typer_(acc, at, w, m8, start, n, tail)
        return intrinsic(typer)

    add_marks64_1 = _marks_loop(1)
    add_marks64_3 = _marks_loop(3)
    add_marks64_1w = _marks_loop(1, True)
    add_marks64_3w = _marks_loop(3, True)

    def _rows_loop(w):
        """An intrinsic ``(acc, tab, idx, n)``: ``acc[:w] += tab[idx[e]·w:][:w]`` for e < n
        (``acc``, ``tab`` both int64 or both int32; int32 ``idx`` ≥ 0), the sums held in
        ``w / 8`` vector registers for the whole loop: a spike costs its row's loads and adds,
        where an 8-lane add per spike that stored the sums waited for that store at the next
        spike."""
        nv = w // 8

        def typer(typingctx, acc, tab, idx, n):
            ok = (all(isinstance(a, _nbtypes.Array) and a.dtype in (_nbtypes.int64,
                                                                     _nbtypes.int32)
                      and a.ndim == 1 and a.layout == "C" for a in (acc, tab))
                  and acc.dtype == tab.dtype
                  and isinstance(idx, _nbtypes.Array) and idx.dtype == _nbtypes.int32
                  and idx.ndim == 1 and idx.layout == "C" and isinstance(n, _nbtypes.Integer))
            if not ok:
                return None

            def codegen(context, builder, signature, args):
                intp = context.get_value_type(_nbtypes.intp)
                bits = 64 if signature.args[0].dtype == _nbtypes.int64 else 32
                vty = _llir.VectorType(_llir.IntType(bits), 8)
                al = bits // 8
                data = (lambda k: context.make_array(signature.args[k])(
                    context, builder, args[k]).data)
                acc_, tab_, idx_ = data(0), data(1), data(2)
                n_ = context.cast(builder, args[3], signature.args[3], _nbtypes.intp)
                ptrs = [builder.bitcast(builder.gep(acc_, [_llir.Constant(intp, 8 * j)]),
                                        vty.as_pointer()) for j in range(nv)]
                init = [builder.load(p, align=al) for p in ptrs]

                def row(e):
                    r0 = builder.mul(builder.zext(builder.load(builder.gep(idx_, [e])), intp),
                                     _llir.Constant(intp, w))
                    return [builder.load(builder.bitcast(builder.gep(
                        tab_, [builder.add(r0, _llir.Constant(intp, 8 * j))]),
                        vty.as_pointer()), align=al) for j in range(nv)]
                for r, p in zip(_sum_loop(builder, n_, init, row, "rows"), ptrs):
                    builder.store(r, p, align=al)
                return context.get_dummy_value()

            return _nbtypes.none(acc, tab, idx, n), codegen

        return intrinsic(typer)

    _sum_rows8, _sum_rows16, _sum_rows24, _sum_rows32 = (_rows_loop(w) for w in (8, 16, 24, 32))

    @njit(cache=True, inline="always")
    def sum_rows(acc, tab, idx, n, w):
        """``acc[:w] += tab[idx[e]·w:][:w]`` for e < n, w = 8, 16, 24 or 32: one loop per
        width with its sums in vector registers (:func:`_rows_loop`)."""
        if w == 8:
            _sum_rows8(acc, tab, idx, n)
        elif w == 16:
            _sum_rows16(acc, tab, idx, n)
        elif w == 24:
            _sum_rows24(acc, tab, idx, n)
        else:
            _sum_rows32(acc, tab, idx, n)

    @intrinsic
    def popcount(typingctx, w):
        """The number of set bits of a uint64 (one ``popcnt`` instruction)."""
        if w != _nbtypes.uint64:
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return _nbtypes.uint64(w), codegen


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
