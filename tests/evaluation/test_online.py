"""A/B statistics: each matches scipy / statsmodels on the same data, and Monte Carlo checks of
their error rates (A/A false positives, peeking, interval coverage)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from movierec.errors import ConfigError, DataError
from movierec.evaluation import online as O

TOL = 1e-9


def _close(a, b, tol=TOL):
    assert np.allclose(a, b, rtol=tol, atol=tol), (a, b)


@pytest.fixture
def arms():
    rng = np.random.default_rng(7)
    return rng.normal(3.5, 1.0, 400), rng.normal(3.62, 1.4, 300)


# -- tests against scipy ------------------------------------------------------------------
def test_welch_matches_scipy(arms):
    a, b = arms
    r = O.welch_ttest(a, b, alpha=0.1)
    ref = stats.ttest_ind(b, a, equal_var=False)
    _close(r.statistic, ref.statistic)
    _close(r.pvalue, ref.pvalue)
    _close(r.df, ref.df)
    ci = ref.confidence_interval(confidence_level=0.9)
    _close([r.ci_low, r.ci_high], [ci.low, ci.high])
    _close(r.estimate, b.mean() - a.mean())


def test_welch_from_stats_broadcasts_like_a_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 2, 30))
    m, v = x.mean(-1), x.var(-1, ddof=1)
    r = O.welch_from_stats(m[:, 0], v[:, 0], 30, m[:, 1], v[:, 1], 30)
    for i in (0, 17, 49):
        one = O.welch_ttest(x[i, 0], x[i, 1])
        _close([r.statistic[i], r.pvalue[i], r.ci_low[i]], [one.statistic, one.pvalue, one.ci_low])


def test_welch_degenerate_is_nan_not_an_error():
    r = O.welch_ttest([1.0], [2.0, 3.0])
    assert math.isnan(r.pvalue) and r.estimate == 1.5
    with pytest.raises(DataError, match="NaN"):
        O.welch_ttest([1.0, np.nan], [2.0, 3.0])


def test_chi2_rates_matches_scipy_and_z_squared():
    s, n = np.array([130, 161]), np.array([1000, 1010])
    r = O.chi2_rates(s, n)
    ref = stats.chi2_contingency(np.stack([s, n - s], 1), correction=False)
    _close([r.statistic, r.pvalue], [ref.statistic, ref.pvalue])
    assert r.df == ref.dof == 1
    _close(r.statistic, O.proportions_ztest(s[0], n[0], s[1], n[1]).statistic ** 2)
    s3, n3 = np.array([130, 161, 150]), np.array([1000, 1010, 990])
    ref3 = stats.chi2_contingency(np.stack([s3, n3 - s3], 1), correction=False)
    r3 = O.chi2_rates(s3, n3)
    _close([r3.statistic, r3.pvalue], [ref3.statistic, ref3.pvalue])
    assert r3.df == 2
    with pytest.raises(DataError):
        O.chi2_rates([5, 20], [10, 10])


def test_srm_matches_scipy_and_trips_on_52_48():
    r = O.srm_check([52_000, 48_000], [50, 50])
    ref = stats.chisquare([52_000, 48_000], [50_000, 50_000])
    _close([r.statistic, r.pvalue], [ref.statistic, ref.pvalue])
    assert r.flagged and r.pvalue < 1e-30
    fair = np.random.default_rng(3).binomial(100_000, 0.5)
    ok = O.srm_check([fair, 100_000 - fair], [1, 1])
    assert not ok.flagged and ok.pvalue > 0.01
    # weights need not sum to 1, and a 20/80 design is judged against 20/80
    assert not O.srm_check([20_100, 79_900], [0.2, 0.8]).flagged
    assert O.srm_check([50_000, 50_000], [0.2, 0.8]).flagged
    # a unit in an arm that should get none is a mismatch; an empty 0-weight arm is not
    assert O.srm_check([10, 10, 1], [1, 1, 0]).flagged
    assert O.srm_check([10, 10, 0], [1, 1, 0]).df == 1


def test_preference_matches_binomtest():
    r = O.preference_test(41, 63)
    ref = stats.binomtest(63, 104, 0.5)
    _close(r.pvalue, ref.pvalue)
    ci = ref.proportion_ci(0.95, method="exact")
    _close([r.ci_low, r.ci_high], [ci.low, ci.high])
    assert r.share_b == 63 / 104 and r.pvalue < 0.05
    assert O.preference_test(50, 50).pvalue == 1.0
    assert O.preference_test(0, 0).pvalue == 1.0


# -- tests against statsmodels ------------------------------------------------------------
def test_proportions_ztest_matches_statsmodels():
    sp = pytest.importorskip("statsmodels.stats.proportion")
    r = O.proportions_ztest(130, 1000, 161, 1010)
    z, p = sp.proportions_ztest([161, 130], [1010, 1000])
    _close([r.statistic, r.pvalue], [z, p])
    lo, hi = sp.confint_proportions_2indep(161, 1010, 130, 1000, method="wald", compare="diff")
    _close([r.ci_low, r.ci_high], [lo, hi])


def test_holm_and_bh_match_multipletests():
    mt = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(0, 0.05, 6), rng.uniform(0, 1, 14), [0.01, 0.01, 1.0]])
    rng.shuffle(p)
    _close(O.holm(p), mt.multipletests(p, method="holm")[1], 1e-12)
    _close(O.benjamini_hochberg(p), mt.multipletests(p, method="fdr_bh")[1], 1e-12)
    # by hand: sorted 0.01, 0.02, 0.04 -> holm 0.03, 0.04, 0.04; bh 0.03, 0.03, 0.04
    _close(O.holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    _close(O.benjamini_hochberg([0.04, 0.01, 0.02]), [0.04, 0.03, 0.03])


def test_power_of_means_matches_statsmodels():
    sp = pytest.importorskip("statsmodels.stats.power")
    P = sp.NormalIndPower()
    for ratio in (1.0, 2.0, 0.5):
        _close(O.power_means(300, 0.3, 1.5, 0.05, ratio), P.power(0.2, 300, 0.05, ratio), 1e-12)
        n = O.sample_size_means(0.3, 1.5, 0.05, 0.8, ratio)
        # n is the exact root of statsmodels' own power equation ...
        _close(P.power(0.2, n, 0.05, ratio), 0.8)
        # ... which its solver finds to about 1e-8 (its brentq tolerance, not ours)
        assert n == pytest.approx(sp.zt_ind_solve_power(0.2, None, 0.05, 0.8, ratio), rel=1e-7)
        d = O.mde_means(n, 1.5, 0.05, 0.8, ratio)
        _close(d, 0.3)
        _close(P.power(O.mde_means(1000, 1.0, ratio=ratio), 1000, 0.05, ratio), 0.8)


def test_power_of_proportions_matches_statsmodels():
    sp = pytest.importorskip("statsmodels.stats.proportion")
    for ratio in (1.0, 2.0, 0.5):
        # statsmodels' sample 1 is our control: prop1 = prop2 + diff, nobs2 = ratio * nobs1
        ref = sp.power_proportions_2indep(-0.01, 0.11, 9000, ratio=ratio).power
        _close(O.power_proportions(9000, 0.10, 0.01, ratio=ratio), ref, 1e-12)
        n = O.sample_size_proportions(0.10, 0.01, ratio=ratio)
        _close(sp.power_proportions_2indep(-0.01, 0.11, n, ratio=ratio).power, 0.8)
        onetail = sp.samplesize_proportions_2indep_onetail(-0.01, 0.11, 0.8, ratio=ratio)
        assert abs(n - onetail) < 0.1 and math.ceil(n) == math.ceil(onetail)
        _close(O.mde_proportions(n, 0.10, ratio=ratio), 0.01)


# -- power: the textbook number, and errors -----------------------------------------------
def test_sample_size_textbook_10_to_11_percent():
    z_a, z_b = stats.norm.isf(0.025), stats.norm.ppf(0.8)
    pa, pb = 0.10, 0.11
    pbar = (pa + pb) / 2
    # Fleiss, pooled variance under the null, far tail ignored
    textbook = (
        z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(pa * (1 - pa) + pb * (1 - pb))
    ) ** 2 / 0.01**2
    assert textbook == pytest.approx(14750.79, abs=0.01)
    n = O.sample_size_proportions(0.10, 0.01)
    assert abs(n - textbook) < 0.1 and math.ceil(n) == math.ceil(textbook) == 14751
    # the unpooled textbook formula lands one unit lower, also "about 14,750"
    unpooled = (z_a + z_b) ** 2 * (pa * (1 - pa) + pb * (1 - pb)) / 0.01**2
    assert math.ceil(unpooled) == 14749
    # means: (z_a + z_b)^2 * 2 sd^2 / mde^2, less a sliver: the far tail adds some power
    m = O.sample_size_means(0.1, 1.1)
    assert -0.01 < m - (z_a + z_b) ** 2 * 2 * 1.1**2 / 0.1**2 < 0
    assert n < textbook


def test_power_input_errors():
    with pytest.raises(ConfigError, match="baseline"):
        O.sample_size_proportions(1.5, 0.01)
    with pytest.raises(ConfigError, match="mde"):
        O.sample_size_proportions(0.95, 0.1)
    with pytest.raises(ConfigError, match="power"):
        O.sample_size_means(0.1, 1.0, power=0.01)
    with pytest.raises(ConfigError, match="ratio"):
        O.sample_size_means(0.1, 1.0, ratio=0)
    with pytest.raises(DataError, match="cannot detect"):
        O.mde_proportions(2, 0.5)


# -- relative lift ------------------------------------------------------------------------
def test_lift_delta_method_formula_and_coverage():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 3.0, 5.0, 6.0])
    r = O.relative_lift(a, b)
    ma, mb = 2.5, 4.0
    sa2, sb2 = a.var(ddof=1) / 4, b.var(ddof=1) / 4
    _close(r.estimate, mb / ma - 1)
    _close(r.se, math.sqrt(sb2 / ma**2 + mb**2 * sa2 / ma**4))
    _close(r.ci_high - r.estimate, stats.norm.isf(0.025) * r.se)
    # coverage of the true lift (+10%) over 4000 simulated experiments
    rng = np.random.default_rng(11)
    n = 400
    xa = rng.normal(2.0, 1.0, (4000, n))
    xb = rng.normal(2.2, 1.2, (4000, n))
    s = O.lift_from_stats(
        xa.mean(1), xa.std(1, ddof=1) / n**0.5, xb.mean(1), xb.std(1, ddof=1) / n**0.5
    )
    cover = np.mean((s.ci_low <= 0.1) & (0.1 <= s.ci_high))
    assert 0.935 <= cover <= 0.965, cover


# -- CUPED --------------------------------------------------------------------------------
def test_cuped_theta_reduction_and_unbiased_effect():
    rng = np.random.default_rng(2)
    n = 20_000
    x = rng.gamma(2.0, 5.0, n)  # pre-period activity
    g = rng.integers(0, 2, n)
    y = 0.6 * x + rng.normal(0, 4, n) + 0.5 * g  # true effect 0.5
    c = O.cuped(y, x)
    _close(c.theta, np.cov(x, y)[0, 1] / x.var(ddof=1))
    _close(c.variance_reduction, 1 - c.adjusted.var() / y.var())
    cp = O.cuped(y, x, groups=g)
    r = np.corrcoef(
        np.r_[x[g == 0] - x[g == 0].mean(), x[g == 1] - x[g == 1].mean()],
        np.r_[y[g == 0] - y[g == 0].mean(), y[g == 1] - y[g == 1].mean()],
    )[0, 1]
    _close(cp.variance_reduction, r**2)
    # var(0.6 x) = 0.36 * 50 = 18 against noise 16: rho^2 = 18 / 34
    assert cp.variance_reduction == pytest.approx(18 / 34, abs=0.03)
    plain = O.welch_ttest(y[g == 0], y[g == 1])
    adj = O.welch_ttest(cp.adjusted[g == 0], cp.adjusted[g == 1])
    # same target, narrower interval: se shrinks by about sqrt(1 - reduction)
    assert abs(adj.estimate - 0.5) < 3 * adj.se
    assert adj.se / plain.se == pytest.approx(math.sqrt(1 - cp.variance_reduction), rel=0.02)
    # an unrelated covariate gives (almost) nothing
    assert O.cuped(y, rng.normal(size=n)).variance_reduction < 0.001
    assert O.cuped(y, np.ones(n)).theta == 0.0


# -- sequential ---------------------------------------------------------------------------
def test_msprt_formula_and_interval_agree():
    d, v, tau2 = 0.3, 0.01, 0.02
    lam = math.sqrt(v / (v + tau2)) * math.exp(tau2 * d**2 / (2 * v * (v + tau2)))
    r = O.msprt(d, v, tau2)
    _close(r.pvalue, min(1.0, 1 / lam))
    # p <= alpha exactly when the confidence sequence excludes 0
    rng = np.random.default_rng(4)
    ds, vs = rng.normal(0, 0.3, 2000), rng.uniform(0.001, 0.05, 2000)
    for di, vi in zip(ds, vs, strict=True):
        s = O.msprt(di, vi, tau2)
        assert (s.pvalue <= 0.05) == (s.ci_low > 0 or s.ci_high < 0)
        assert s.can_stop == (s.pvalue <= 0.05)
    # over looks the p-value only falls and the interval only narrows
    seq = O.msprt(ds[:50], vs[:50], tau2)
    assert np.all(np.diff(seq.pvalue) <= 0) and np.all(np.diff(seq.ci_high) <= 0)
    # GrowthBook's tuning rho^2 = (-2 ln a + ln(1 - 2 ln a)) / N*, tau2 = rho^2 sigma^2
    sigma2, nstar = 2.5, 5000
    rho2 = (-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / nstar
    _close(O.mixture_tau2(sigma2 / nstar), rho2 * sigma2)
    with pytest.raises(ConfigError):
        O.msprt(0.1, 0.01, tau2=0)


def _peeking(effect: float, rng, n_exp=1000, looks=20, per_look=50):
    """Cumulative per-look Welch statistics of n_exp experiments, vectorised."""
    xa = rng.normal(0.0, 1.0, (n_exp, looks * per_look))
    xb = rng.normal(effect, 1.0, (n_exp, looks * per_look))
    n = per_look * np.arange(1, looks + 1)
    idx = n - 1

    def cum(x):
        s, s2 = np.cumsum(x, 1)[:, idx], np.cumsum(x**2, 1)[:, idx]
        m = s / n
        return m, (s2 - n * m**2) / (n - 1)

    (ma, va), (mb, vb) = cum(xa), cum(xb)
    return O.welch_from_stats(ma, va, n, mb, vb, n), n


def test_aa_false_positive_rate_of_ttest_is_5_percent():
    rng = np.random.default_rng(21)
    x = rng.normal(0, 1, (2, 2000, 200))
    r = O.welch_from_stats(
        x[0].mean(1), x[0].var(1, ddof=1), 200, x[1].mean(1), x[1].var(1, ddof=1), 200
    )
    fpr = np.mean(r.pvalue < 0.05)
    assert 0.035 <= fpr <= 0.065, fpr


def test_peeking_inflates_the_ttest_but_not_the_sequential_test():
    rng = np.random.default_rng(8)
    w, n = _peeking(0.0, rng)
    naive = np.mean((w.pvalue < 0.05).any(axis=1))
    tau2 = O.mixture_tau2(2.0 / n[-1])  # planned: the last look, sd 1 per arm
    seq = [O.msprt(w.estimate[i], w.se[i] ** 2, tau2) for i in range(len(w.estimate))]
    fpr_seq = np.mean([s.can_stop for s in seq])
    assert naive > 0.15, naive  # 20 looks: about 25% false positives
    assert fpr_seq <= 0.05 + 0.015, fpr_seq
    # and the sequential test still finds a real effect by the end
    w1, _ = _peeking(0.2, np.random.default_rng(9), n_exp=200)
    found = np.mean([O.msprt(w1.estimate[i], w1.se[i] ** 2, tau2).can_stop for i in range(200)])
    assert found > 0.8, found


# -- the CLI ------------------------------------------------------------------------------
_EXE = Path(sys.executable).with_name("movierec")
CMD = [str(_EXE)] if _EXE.exists() else [sys.executable, "-m", "movierec.cli"]


def _ab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CMD, "ab", "size", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_ab_size_prints_the_textbook_number():
    r = _ab("--baseline", "0.10", "--mde", "0.01")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "control 14751, treatment 14751 (total 29502)" in lines[0]
    r2 = _ab("--baseline", "3.5", "--mde", "0.1", "--sd", "1.1", "--ratio", "2", "--power", "0.9")
    nc = math.ceil(O.sample_size_means(0.1, 1.1, 0.05, 0.9, 2.0))
    assert r2.returncode == 0 and f"control {nc}," in r2.stdout
    bad = _ab("--baseline", "1.5", "--mde", "0.01")
    assert bad.returncode == 1 and bad.stderr.startswith("error: baseline")
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
