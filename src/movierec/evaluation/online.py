"""Statistics of online experiments (A/B tests and interleaving) as pure functions on arrays.

Conventions used throughout:

- arm ``a`` is the control and arm ``b`` the treatment; every estimate is ``b - a`` (or
  ``b / a - 1`` for a relative lift), so a positive number means the treatment is higher;
- every test is two-sided, ``alpha`` is its size and intervals have coverage ``1 - alpha``;
- the unit of analysis is the experiment unit (user or session): pass one value per unit
  (for a rate, the unit's own rate or 0/1 outcome), never one value per impression;
- the ``*_from_stats`` functions take summary statistics and broadcast like numpy, so one
  call can evaluate many experiments (or many looks at one) at once;
- degenerate input (fewer than two units in an arm, zero variance) gives NaN, not an error,
  so a report on an experiment that has just started still renders.

Distributions come from :mod:`scipy.stats`; nothing here needs statsmodels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import optimize, stats

from movierec.errors import ConfigError, DataError

Number = Any  # a float, or an ndarray of them when the inputs broadcast


def _plain(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


class _Result:
    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values (lists for arrays), ready for JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class Comparison(_Result):
    """An estimated difference between two arms with its test and interval.

    Attributes
    ----------
    estimate : float
        The treatment minus control difference (or relative lift, see the function).
    se : float
        Standard error of ``estimate``.
    statistic : float
        The test statistic (t or z).
    pvalue : float
        Two-sided p-value of "no difference".
    ci_low, ci_high : float
        The ``1 - alpha`` confidence interval of ``estimate``.
    df : float or None
        Degrees of freedom (Welch's t-test only).
    """

    estimate: Number
    se: Number
    statistic: Number
    pvalue: Number
    ci_low: Number
    ci_high: Number
    df: Number | None = None


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")


def _values(x: Any, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)):
        raise DataError(f"{name} holds NaN or infinite values; drop or fill them first")
    return v


# -- means -------------------------------------------------------------------------------------
def welch_from_stats(
    mean_a: Number,
    var_a: Number,
    n_a: Number,
    mean_b: Number,
    var_b: Number,
    n_b: Number,
    alpha: float = 0.05,
) -> Comparison:
    """Welch's unequal-variance t-test of ``mean_b - mean_a`` from summary statistics.

    Parameters
    ----------
    mean_a, var_a, n_a : float or array
        Control mean, sample variance (``ddof=1``) and number of units.
    mean_b, var_b, n_b : float or array
        The same for the treatment.
    alpha : float
        Size of the test; the interval has coverage ``1 - alpha``.

    Returns
    -------
    Comparison
        ``t = (mean_b - mean_a) / sqrt(var_a / n_a + var_b / n_b)`` with the
        Welch-Satterthwaite degrees of freedom, and ``estimate -/+ t_{1-alpha/2, df} * se``.
    """
    _check_alpha(alpha)
    mean_a, var_a, n_a, mean_b, var_b, n_b = (
        np.asarray(x, dtype=np.float64) for x in (mean_a, var_a, n_a, mean_b, var_b, n_b)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ua, ub = var_a / n_a, var_b / n_b
        se = np.sqrt(ua + ub)
        diff = mean_b - mean_a
        df = (ua + ub) ** 2 / (ua**2 / (n_a - 1) + ub**2 / (n_b - 1))
        t = diff / se
        p = 2 * stats.t.sf(np.abs(t), df)
        half = stats.t.isf(alpha / 2, df) * se
    return Comparison(
        *(_scalar(v) for v in (diff, se, t, p, diff - half, diff + half, df))  # type: ignore[arg-type]
    )


def _scalar(v: np.ndarray) -> Number:
    return float(v) if np.ndim(v) == 0 else v


def welch_ttest(a: Any, b: Any, alpha: float = 0.05) -> Comparison:
    """Welch's t-test of the treatment mean minus the control mean, one value per unit.

    Equals ``scipy.stats.ttest_ind(b, a, equal_var=False)`` (statistic and p-value); see
    :func:`welch_from_stats` for the interval.

    Parameters
    ----------
    a, b : array-like
        Per-unit values of the control and the treatment.
    alpha : float
        Size of the test.

    Returns
    -------
    Comparison
    """
    a, b = _values(a, "a"), _values(b, "b")
    va = a.var(ddof=1) if a.size > 1 else np.nan
    vb = b.var(ddof=1) if b.size > 1 else np.nan
    ma = a.mean() if a.size else np.nan
    mb = b.mean() if b.size else np.nan
    return welch_from_stats(ma, va, a.size, mb, vb, b.size, alpha)


# -- rates -------------------------------------------------------------------------------------
def proportions_ztest(
    x_a: Number, n_a: Number, x_b: Number, n_b: Number, alpha: float = 0.05
) -> Comparison:
    """Two-proportion z-test of ``x_b / n_b - x_a / n_a``.

    The statistic uses the pooled rate under the null,
    ``z = (p_b - p_a) / sqrt(p (1 - p) (1 / n_a + 1 / n_b))`` with ``p = (x_a + x_b) /
    (n_a + n_b)`` (as ``statsmodels.stats.proportion.proportions_ztest``); the interval is
    the unpooled Wald interval ``(p_b - p_a) -/+ z_{1-alpha/2} sqrt(p_a q_a / n_a + p_b q_b
    / n_b)``, and ``se`` is that unpooled standard error.

    Parameters
    ----------
    x_a, n_a : int or array
        Control successes (units that converted) and units.
    x_b, n_b : int or array
        The same for the treatment.
    alpha : float
        Size of the test.

    Returns
    -------
    Comparison
    """
    _check_alpha(alpha)
    x_a, n_a, x_b, n_b = (np.asarray(v, dtype=np.float64) for v in (x_a, n_a, x_b, n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        pa, pb = x_a / n_a, x_b / n_b
        p = (x_a + x_b) / (n_a + n_b)
        z = (pb - pa) / np.sqrt(p * (1 - p) * (1 / n_a + 1 / n_b))
        pval = 2 * stats.norm.sf(np.abs(z))
        se = np.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
        half = stats.norm.isf(alpha / 2) * se
    diff = pb - pa
    return Comparison(
        *(_scalar(v) for v in (diff, se, z, pval, diff - half, diff + half))  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class ChiSquare(_Result):
    """A chi-square test: statistic, p-value, degrees of freedom."""

    statistic: float
    pvalue: float
    df: int


def chi2_rates(successes: Any, totals: Any) -> ChiSquare:
    """Pearson's chi-square test that k arms share one rate (no continuity correction).

    The k x 2 table ``[successes, totals - successes]`` against its independence
    expectation; equals ``scipy.stats.chi2_contingency(table, correction=False)``. For two
    arms the statistic is the square of :func:`proportions_ztest`'s z.

    Parameters
    ----------
    successes, totals : array-like of int, length k >= 2
        Converted units and units per arm.

    Returns
    -------
    ChiSquare
    """
    s, n = _values(successes, "successes"), _values(totals, "totals")
    if s.size != n.size or s.size < 2 or np.any(s < 0) or np.any(s > n):
        raise DataError("chi2_rates needs k >= 2 arms with 0 <= successes <= totals")
    obs = np.stack([s, n - s], axis=1)
    exp = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((obs - exp) ** 2 / exp))
    df = s.size - 1
    return ChiSquare(chi2, float(stats.chi2.sf(chi2, df)), df)


# -- relative lift -----------------------------------------------------------------------------
def lift_from_stats(
    mean_a: Number, se_a: Number, mean_b: Number, se_b: Number, alpha: float = 0.05
) -> Comparison:
    """Relative lift ``mean_b / mean_a - 1`` with its delta-method interval.

    For independent arms, ``Var(mb / ma) ~= se_b**2 / ma**2 + mb**2 * se_a**2 / ma**4``
    (first-order Taylor expansion of the ratio); the interval is
    ``lift -/+ z_{1-alpha/2} * se`` and the z-test is of "lift = 0".

    Parameters
    ----------
    mean_a, se_a : float or array
        Control mean and the standard error of that mean.
    mean_b, se_b : float or array
        The same for the treatment.
    alpha : float
        Size of the test.

    Returns
    -------
    Comparison
        ``estimate`` is the relative lift (0.05 means +5 %).
    """
    _check_alpha(alpha)
    ma, sa, mb, sb = (np.asarray(v, dtype=np.float64) for v in (mean_a, se_a, mean_b, se_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = mb / ma - 1
        se = np.sqrt(sb**2 / ma**2 + mb**2 * sa**2 / ma**4)
        z = lift / se
        p = 2 * stats.norm.sf(np.abs(z))
        half = stats.norm.isf(alpha / 2) * se
    return Comparison(
        *(_scalar(v) for v in (lift, se, z, p, lift - half, lift + half))  # type: ignore[arg-type]
    )


def relative_lift(a: Any, b: Any, alpha: float = 0.05) -> Comparison:
    """Relative lift of the treatment mean over the control mean, one value per unit.

    See :func:`lift_from_stats`; the standard errors are ``sd (ddof=1) / sqrt(n)``.
    """
    a, b = _values(a, "a"), _values(b, "b")
    se = [x.std(ddof=1) / math.sqrt(x.size) if x.size > 1 else np.nan for x in (a, b)]
    ma = a.mean() if a.size else np.nan
    mb = b.mean() if b.size else np.nan
    return lift_from_stats(ma, se[0], mb, se[1], alpha)


# -- sample ratio mismatch ---------------------------------------------------------------------
@dataclass(frozen=True)
class SRM(_Result):
    """Sample-ratio-mismatch check.

    Attributes
    ----------
    statistic, pvalue, df : float, float, int
        Chi-square goodness of fit of the unit counts against the configured weights.
    expected : list of float
        Units each arm should have had.
    flagged : bool
        ``pvalue < threshold``: the assignment or the logging is broken, and no verdict on
        the experiment should be drawn until it is explained.
    """

    statistic: float
    pvalue: float
    df: int
    expected: list[float]
    flagged: bool


def srm_check(counts: Any, weights: Any, threshold: float = 0.001) -> SRM:
    """Chi-square goodness of fit of units per arm against the configured traffic weights.

    Parameters
    ----------
    counts : array-like of int
        Units seen per arm.
    weights : array-like of float
        Configured traffic weights, same order (normalised here, need not sum to 1).
    threshold : float
        Flag a mismatch at ``pvalue < threshold`` (0.001, as GrowthBook).

    Returns
    -------
    SRM
        Equals ``scipy.stats.chisquare(counts, expected)``. Arms with weight 0 and no units
        are left out; a unit in an arm of weight 0 is an infinite mismatch.
    """
    c, w = _values(counts, "counts"), _values(weights, "weights")
    if c.size != w.size or c.size < 2 or np.any(w < 0) or w.sum() <= 0 or np.any(c < 0):
        raise DataError("srm_check needs >= 2 arms, counts >= 0 and weights >= 0 (not all 0)")
    expected = c.sum() * w / w.sum()
    keep = (w > 0) | (c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((c[keep] - expected[keep]) ** 2 / expected[keep]))
    df = int(keep.sum()) - 1
    p = float(stats.chi2.sf(chi2, df)) if c.sum() > 0 else 1.0
    return SRM(chi2 if c.sum() > 0 else 0.0, p, df, expected.tolist(), bool(p < threshold))


# -- CUPED -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cuped(_Result):
    """CUPED-adjusted metric.

    Attributes
    ----------
    adjusted : ndarray
        ``y - theta * (x - mean(x))`` per unit; analyse it with the usual tests.
    theta : float
        ``cov(y, x) / var(x)``, pooled within arms when ``groups`` is given.
    variance_reduction : float
        ``1 - var(adjusted) / var(y)`` (within arms), which equals the squared (pooled)
        correlation of ``y`` and ``x``; intervals shrink by ``1 - sqrt(1 - reduction)``.
    """

    adjusted: np.ndarray
    theta: float
    variance_reduction: float


def cuped(y: Any, x: Any, groups: Any = None) -> Cuped:
    """CUPED (Deng et al. 2013): remove the part of a metric a pre-period covariate predicts.

    Parameters
    ----------
    y : array-like
        The metric per unit during the experiment.
    x : array-like
        The same units' pre-experiment covariate (e.g. activity before the start), which the
        treatment cannot have changed.
    groups : array-like, optional
        Each unit's arm. When given, ``theta`` comes from the covariance pooled within arms
        (so a treatment effect does not leak into it); otherwise from all units at once.

    Returns
    -------
    Cuped
        The covariate is centred at its overall mean, so each arm's adjusted mean stays an
        unbiased estimate of its plain mean and differences between arms keep their meaning.
    """
    y, x = _values(y, "y"), _values(x, "x")
    if y.size != x.size:
        raise DataError(f"cuped: y has {y.size} units but x has {x.size}")
    if groups is None:
        yc, xc = y - y.mean(), x - x.mean()
    else:
        g = np.asarray(groups).ravel()
        if g.size != y.size:
            raise DataError(f"cuped: {g.size} group labels for {y.size} units")
        _, inv = np.unique(g, return_inverse=True)
        counts = np.bincount(inv)
        yc = y - (np.bincount(inv, y) / counts)[inv]
        xc = x - (np.bincount(inv, x) / counts)[inv]
    sxx, syy, sxy = float(xc @ xc), float(yc @ yc), float(xc @ yc)
    theta = sxy / sxx if sxx > 0 else 0.0
    resid = yc - theta * xc
    reduction = 1 - float(resid @ resid) / syy if syy > 0 else 0.0
    return Cuped(y - theta * (x - x.mean()), theta, reduction)


# -- multiple comparisons ----------------------------------------------------------------------
def _pvalues(p: Any) -> np.ndarray:
    v = _values(p, "p-values")
    if np.any((v < 0) | (v > 1)):
        raise DataError("p-values must lie in [0, 1]")
    return v


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` over the sorted p-values; reject
    where ``adj <= alpha``. Equals ``statsmodels.stats.multitest.multipletests(p,
    method="holm")[1]``.

    Parameters
    ----------
    pvalues : array-like
        Raw p-values (e.g. variants x metrics, flattened).

    Returns
    -------
    ndarray
        Adjusted p-values in the input order.
    """
    p = _pvalues(pvalues)
    order = np.argsort(p, kind="stable")
    m = p.size
    adj = np.maximum.accumulate(p[order] * np.arange(m, 0, -1))
    out = np.empty_like(p)
    out[order] = np.minimum(adj, 1.0)
    return out


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false-discovery-rate control).

    ``adj_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the sorted p-values. Equals
    ``multipletests(p, method="fdr_bh")[1]``.

    Parameters
    ----------
    pvalues : array-like
        Raw p-values.

    Returns
    -------
    ndarray
        Adjusted p-values in the input order.
    """
    p = _pvalues(pvalues)
    order = np.argsort(p, kind="stable")
    m = p.size
    raw = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(raw[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adj, 1.0)
    return out


# -- sequential testing ------------------------------------------------------------------------
@dataclass(frozen=True)
class Sequential(_Result):
    """Always-valid inference at the latest look (or at each look, for sequences).

    Attributes
    ----------
    estimate : float or ndarray
        The difference estimate at each look.
    pvalue : float or ndarray
        Always-valid p-value: the running minimum of ``1 / Lambda`` over the looks given.
    ci_low, ci_high : float or ndarray
        The confidence sequence (running intersection over the looks given).
    can_stop : bool
        True when the latest always-valid p-value is <= alpha (the confidence sequence
        excludes 0): stopping now and declaring a difference keeps the type-I error at
        alpha however often and whenever the data were looked at. False: there is no
        valid claim of a difference yet (keep collecting, or stop without claiming one).
    """

    estimate: Number
    pvalue: Number
    ci_low: Number
    ci_high: Number
    can_stop: bool


def mixture_tau2(planned_var: float, alpha: float = 0.05) -> float:
    """A mixture variance that makes the confidence sequence tightest near a planned size.

    ``tau2 = V* (-2 log alpha + log(1 - 2 log alpha))`` where ``V*`` is the variance of the
    difference estimate expected at the planned sample size (e.g. ``sd**2 (1/n_a + 1/n_b)``
    from :func:`sample_size_means`). This is GrowthBook's tuning
    ``rho**2 = (-2 log alpha + log(-2 log alpha + 1)) / N*`` written on the scale of the
    estimate (``tau2 = rho**2 sigma**2``, ``V* = sigma**2 / N*``). Fix it before the
    experiment starts: choosing it from the data breaks the guarantee.
    """
    _check_alpha(alpha)
    if not planned_var > 0:
        raise ConfigError(f"planned_var must be > 0, got {planned_var}")
    la = -2 * math.log(alpha)
    return planned_var * (la + math.log(1 + la))


def msprt(diff: Any, var: Any, tau2: float, alpha: float = 0.05) -> Sequential:
    """Mixture sequential probability ratio test (Johari, Pekelis and Walsh 2017).

    With the difference estimate ``d_n`` at a look, its variance ``V_n`` (e.g.
    ``var_a / n_a + var_b / n_b``) and a normal mixture ``N(0, tau2)`` over the true
    difference, the mixture likelihood ratio against "no difference" is::

        Lambda_n = sqrt(V_n / (V_n + tau2)) * exp(tau2 * d_n**2 / (2 V_n (V_n + tau2)))

    The always-valid p-value is ``min(1, min_{m <= n} 1 / Lambda_m)`` and the confidence
    sequence is ``d_n -/+ sqrt(V_n (V_n + tau2) / tau2 * (2 log(1/alpha) + log((V_n +
    tau2) / V_n)))``, the same normal-mixture boundary as Howard et al. (2021) and
    GrowthBook's sequential intervals. Under "no difference" the chance that the p-value
    ever drops to alpha, over any number of looks, is at most alpha (exactly so for
    normal estimates with known variance, asymptotically with estimated variances).

    Parameters
    ----------
    diff, var : float or 1-d array
        The estimate and its variance at one look, or at each successive look (cumulative
        data, in time order).
    tau2 : float
        The mixture variance, on the scale of ``diff**2``: larger values favour detecting
        large effects early, smaller ones small effects late. Pick it with
        :func:`mixture_tau2` from the planned sample size, before looking at data.
    alpha : float
        Size of the test.

    Returns
    -------
    Sequential
    """
    _check_alpha(alpha)
    if not tau2 > 0:
        raise ConfigError(f"tau2 must be > 0, got {tau2}")
    d = np.asarray(diff, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    scalar = d.ndim == 0 and v.ndim == 0
    if d.ndim > 1 or v.ndim > 1:
        raise DataError("msprt takes the looks of one experiment: scalars or 1-d arrays")
    d, v = (x.copy() for x in np.broadcast_arrays(np.atleast_1d(d), np.atleast_1d(v)))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2 * v * (v + tau2))
        p = np.exp(-np.maximum(log_lr, 0.0))
        half = np.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log((v + tau2) / v)))
    # a look with no usable variance (too few units) says nothing: p 1, unbounded interval
    bad = ~np.isfinite(log_lr)
    p[bad] = 1.0
    half[bad] = np.inf
    p = np.minimum.accumulate(p)
    lo = np.maximum.accumulate(np.where(bad, -np.inf, d - half))
    hi = np.minimum.accumulate(np.where(bad, np.inf, d + half))
    can_stop = bool(p[-1] <= alpha)
    if scalar:
        return Sequential(float(d[0]), float(p[0]), float(lo[0]), float(hi[0]), can_stop)
    return Sequential(d, p, lo, hi, can_stop)


def sequential_ttest(a: Any, b: Any, tau2: float, alpha: float = 0.05) -> Sequential:
    """Always-valid test of ``mean(b) - mean(a)`` at the current look (see :func:`msprt`).

    ``V = var_a / n_a + var_b / n_b`` as in Welch's test. For the running minimum over
    earlier looks, call :func:`msprt` with the estimates of every look.
    """
    w = welch_ttest(a, b)
    return msprt(w.estimate, w.se**2, tau2, alpha)


# -- power and sample size ---------------------------------------------------------------------
def _check_power(alpha: float, power: float, ratio: float) -> None:
    _check_alpha(alpha)
    if not alpha < power < 1:
        raise ConfigError(f"power must be in (alpha, 1), got {power}")
    if not ratio > 0:
        raise ConfigError(f"ratio (treatment units per control unit) must be > 0, got {ratio}")


def _two_sided_power(shift: Number, crit_ratio: Number, alpha: float) -> Number:
    # P(|Z| > crit) when the statistic is N(shift, 1) and its null sd is crit_ratio x that
    z = stats.norm.isf(alpha / 2)
    return stats.norm.sf(z * crit_ratio - shift) + stats.norm.cdf(-z * crit_ratio - shift)


def _solve(f, lo: float, hi: float) -> float:
    while f(hi) < 0:
        hi *= 2
        if hi > 1e15:
            raise ConfigError("no sample size reaches that power; check the effect size")
    return float(optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-15, maxiter=500))


def power_means(
    n: Number, mde: float, sd: float, alpha: float = 0.05, ratio: float = 1.0
) -> Number:
    """Power of the two-sided z-test of two means with ``n`` control units.

    The treatment has ``ratio * n`` units and both arms share the standard deviation
    ``sd``; the estimate has sd ``sd * sqrt((1 + 1/ratio) / n)``. Both tails count, as in
    ``statsmodels.stats.power.NormalIndPower().power(mde / sd, n, alpha, ratio)``.
    """
    _check_alpha(alpha)
    shift = abs(mde) / sd * np.sqrt(np.asarray(n, dtype=np.float64) / (1 + 1 / ratio))
    return _scalar(_two_sided_power(shift, 1.0, alpha))


def sample_size_means(
    mde: float, sd: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """Control units needed to detect an absolute difference ``mde`` in a mean.

    Solves :func:`power_means` ``= power`` exactly (not rounded; the treatment needs
    ``ratio`` times as many). Close to the textbook
    ``(z_{1-alpha/2} + z_{power})**2 (1 + 1/ratio) sd**2 / mde**2``, which ignores the far
    tail; equals ``statsmodels.stats.power.zt_ind_solve_power(mde / sd, None, alpha,
    power, ratio)``.
    """
    _check_power(alpha, power, ratio)
    if not (mde != 0 and sd > 0):
        raise ConfigError(f"need mde != 0 and sd > 0, got mde={mde}, sd={sd}")
    z = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
    guess = z**2 * (1 + 1 / ratio) * sd**2 / mde**2
    return _solve(lambda n: power_means(n, mde, sd, alpha, ratio) - power, 1e-12, 2 * guess)


def mde_means(
    n: float, sd: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """Smallest absolute difference in a mean detected with the given power at ``n``
    control units (and ``ratio * n`` treatment units); the inverse of
    :func:`sample_size_means`."""
    _check_power(alpha, power, ratio)
    if not (n > 0 and sd > 0):
        raise ConfigError(f"need n > 0 and sd > 0, got n={n}, sd={sd}")
    z = stats.norm.isf(alpha / 2) + stats.norm.ppf(power)
    guess = z * sd * math.sqrt((1 + 1 / ratio) / n)
    return _solve(lambda d: power_means(n, d, sd, alpha, ratio) - power, 1e-300, 2 * guess)


def _prop_sds(baseline: float, mde: float, ratio: float) -> tuple[float, float]:
    pa, pb = baseline, baseline + mde
    pooled = (pa + ratio * pb) / (1 + ratio)
    sd_null = math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio))
    sd_alt = math.sqrt(pa * (1 - pa) + pb * (1 - pb) / ratio)
    return sd_null, sd_alt


def _check_rates(baseline: float, mde: float) -> None:
    if not 0 < baseline < 1:
        raise ConfigError(
            f"baseline must be a rate in (0, 1), got {baseline} (for a mean, give its sd)"
        )
    if mde == 0 or not 0 < baseline + mde < 1:
        raise ConfigError(
            f"mde must be a non-zero absolute change with 0 < baseline + mde < 1, got {mde}"
        )


def power_proportions(
    n: Number, baseline: float, mde: float, alpha: float = 0.05, ratio: float = 1.0
) -> Number:
    """Power of the pooled two-proportion z-test (:func:`proportions_ztest`) at ``n`` control
    units, control rate ``baseline`` and treatment rate ``baseline + mde``.

    Under the null the estimate's sd uses the pooled rate
    ``p = (baseline + ratio (baseline + mde)) / (1 + ratio)``, under the alternative each
    arm's own rate; both tails count. Equals
    ``statsmodels.stats.proportion.power_proportions_2indep``.
    """
    _check_alpha(alpha)
    _check_rates(baseline, mde)
    sd_null, sd_alt = _prop_sds(baseline, mde, ratio)
    shift = abs(mde) * np.sqrt(np.asarray(n, dtype=np.float64)) / sd_alt
    return _scalar(_two_sided_power(shift, sd_null / sd_alt, alpha))


def sample_size_proportions(
    baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """Control units needed to detect a rate moving from ``baseline`` to ``baseline + mde``.

    Solves :func:`power_proportions` ``= power`` exactly (not rounded; the treatment needs
    ``ratio`` times as many). The textbook closed form (Fleiss, pooled variance under the
    null, far tail ignored) is::

        n = (z_{1-alpha/2} sd_null + z_{power} sd_alt)**2 / mde**2
        sd_null = sqrt(p (1 - p) (1 + 1/ratio)),  sd_alt = sqrt(p_a q_a + p_b q_b / ratio)

    and differs from this by a small fraction of a unit: for 0.10 -> 0.11, alpha 0.05 and
    power 0.8 both give 14,750.7..., i.e. 14,751 units per arm.
    """
    _check_power(alpha, power, ratio)
    _check_rates(baseline, mde)
    sd_null, sd_alt = _prop_sds(baseline, mde, ratio)
    guess = (stats.norm.isf(alpha / 2) * sd_null + stats.norm.ppf(power) * sd_alt) ** 2 / mde**2
    return _solve(
        lambda n: power_proportions(n, baseline, mde, alpha, ratio) - power, 1e-12, 2 * guess
    )


def mde_proportions(
    n: float, baseline: float, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> float:
    """Smallest absolute rise of a rate over ``baseline`` detected with the given power at
    ``n`` control units (the inverse of :func:`sample_size_proportions`, upward changes)."""
    _check_power(alpha, power, ratio)
    if not 0 < baseline < 1:
        raise ConfigError(
            f"baseline must be a rate in (0, 1), got {baseline} (for a mean, give its sd)"
        )
    if not n > 0:
        raise ConfigError(f"n must be > 0, got {n}")
    top = (1 - baseline) * (1 - 1e-12)
    f = lambda d: power_proportions(n, baseline, d, alpha, ratio) - power  # noqa: E731
    if f(top) < 0:
        raise DataError(f"{n:g} units per arm cannot detect any rise of a {baseline:g} rate")
    return float(optimize.brentq(f, 1e-15, top, xtol=1e-15, rtol=1e-15, maxiter=500))


# -- interleaving ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preference(_Result):
    """Interleaving preference: how often units preferred ranker B over ranker A.

    Attributes
    ----------
    wins_a, wins_b : int
        Units whose credited clicks favoured A / B (ties left out).
    share_b : float
        ``wins_b / (wins_a + wins_b)``; 0.5 means no preference.
    pvalue : float
        Two-sided exact binomial test of ``share_b = 0.5``.
    ci_low, ci_high : float
        Clopper-Pearson interval of ``share_b``.
    """

    wins_a: int
    wins_b: int
    share_b: float
    pvalue: float
    ci_low: float
    ci_high: float


def preference_test(wins_a: int, wins_b: int, alpha: float = 0.05) -> Preference:
    """Binomial test of an interleaving experiment's preference share.

    Parameters
    ----------
    wins_a, wins_b : int
        Number of units (users or sessions, not impressions) that preferred each ranker:
        a unit prefers the team credited with more of its clicks; ties are not counted.
    alpha : float
        Size of the test.

    Returns
    -------
    Preference
        ``pvalue`` equals ``scipy.stats.binomtest(wins_b, wins_a + wins_b, 0.5).pvalue``.
    """
    _check_alpha(alpha)
    wa, wb = int(wins_a), int(wins_b)
    if wa < 0 or wb < 0:
        raise DataError(f"win counts must be >= 0, got {wa} and {wb}")
    n = wa + wb
    if n == 0:
        return Preference(wa, wb, float("nan"), 1.0, 0.0, 1.0)
    res = stats.binomtest(wb, n, 0.5)
    ci = res.proportion_ci(confidence_level=1 - alpha, method="exact")
    return Preference(wa, wb, wb / n, float(res.pvalue), float(ci.low), float(ci.high))
