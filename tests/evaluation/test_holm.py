"""Holm's step-down adjustment, against values worked out by hand."""

from __future__ import annotations

import numpy as np

from movierec.evaluation.analysis import holm


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 0.02, 0.03, 0.06, max(0.06, 0.04) = 0.06
    out = holm([0.01, 0.04, 0.03, np.nan, 0.005])
    np.testing.assert_allclose(out, [0.03, 0.06, 0.06, np.nan, 0.02])
    assert holm([0.6, 0.7]).tolist() == [1.0, 1.0]  # capped at 1
    assert holm([]).size == 0 and np.isnan(holm([np.nan])).all()
