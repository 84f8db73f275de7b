"""Prefetch hints for the factor rows that SGD, BPR, NMF and iALS kernels read at random.

Each helper is inlined into its kernel and has no effect on results, only on how long the
kernel waits for memory.
"""

import numba as nb
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _prefetch_intrinsic(write: int):  # type: ignore[no-untyped-def]
    """An intrinsic ``f(arr, row, col)`` hinting the CPU to load ``arr[row, col]`` into cache
    (llvm.prefetch, high locality, data cache; ``write``: 1 to write the line, 0 to only
    read it). It has no effect on results."""

    @intrinsic
    def prefetch(typingctx, arr, row, col):  # type: ignore[no-untyped-def]
        def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
            aryty = sig.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            r = context.cast(builder, args[1], sig.args[1], types.intp)
            c = context.cast(builder, args[2], sig.args[2], types.intp)
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [r, c], wraparound=False)
            i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
            builder.call(fn, [i8p, i32(write), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(arr, row, col), codegen

    return prefetch


_prefetch = _prefetch_intrinsic(1)
_prefetch_read = _prefetch_intrinsic(0)


@intrinsic
def _line_step(typingctx, arr):  # type: ignore[no-untyped-def]
    """The elements of ``arr``'s dtype in a 64-byte cache line, a compile-time constant.
    (``64 // arr.itemsize`` is an integer division at run time, and ``range`` with a
    run-time step divides again for its trip count: 7% of an SVD epoch at ML-100K.)"""
    step = max(1, 64 // (arr.dtype.bitwidth // 8))

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return context.get_constant(types.intp, step)

    return types.intp(arr), codegen


@nb.njit(inline="always")
def prefetch_row(a, row):  # type: ignore[no-untyped-def]
    """Prefetch row ``row`` of a matrix for writing (no effect on results)."""
    nf = a.shape[1]
    for f in range(0, nf, _line_step(a)):  # one 64-byte cache line at a time
        _prefetch(a, row, f)
    _prefetch(a, row, nf - 1)


@nb.njit(inline="always")
def prefetch_row_read(a, row):  # type: ignore[no-untyped-def]
    """Prefetch row ``row`` of a matrix for reading only (rows other threads read)."""
    nf = a.shape[1]
    for f in range(0, nf, _line_step(a)):
        _prefetch_read(a, row, f)
    _prefetch_read(a, row, nf - 1)
