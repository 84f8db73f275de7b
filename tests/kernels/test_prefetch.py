"""Prefetch helpers: the cache-line step is a per-dtype constant."""

import numba as nb
import numpy as np

from movierec.kernels.prefetch import _line_step


def test_prefetch_steps_one_cache_line() -> None:
    @nb.njit
    def steps(a, b, c):  # type: ignore[no-untyped-def]
        return _line_step(a), _line_step(b), _line_step(c)

    z = np.zeros((1, 1))
    assert steps(z.astype(np.float32), z, z.astype(np.int8)) == (16, 8, 64)
