"""Pure metric functions: rating error and ranking quality."""

from __future__ import annotations

import numpy as np


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error."""
    d = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    d = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.mean(np.abs(d))) if d.size else float("nan")
