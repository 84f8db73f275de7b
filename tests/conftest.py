"""Shared fixtures: the real MovieLens 100K (fetched once through the project's own code)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def ml100k():
    """The real ml-100k, fetched from GroupLens or the PyPI mirror and cached."""
    from movierec.data import load

    home = os.environ.get("MOVIEREC_TEST_HOME")
    old = os.environ.get("MOVIEREC_HOME")
    if home:
        os.environ["MOVIEREC_HOME"] = home
    try:
        return load("ml-100k")
    finally:
        if home:
            if old is None:
                os.environ.pop("MOVIEREC_HOME", None)
            else:
                os.environ["MOVIEREC_HOME"] = old
