"""The analysis of an online experiment: from the store's exposure and outcome rows to the
report (a JSON-ready dict), its text form and its HTML page with plots.

The unit of analysis is the experiment's unit (user or session), never the impression:
every metric is first computed per unit, then compared between arms with the tests of
:mod:`movierec.evaluation.online`. Per-list metrics use the offline definitions of
:mod:`movierec.evaluation.metrics` on the list's click gains (a shown movie that was
clicked has gain 1):

- ``ctr``: the unit's share of lists with a click (``hit_rate_at_k`` per list, averaged);
- ``precision``: clicked share of the shown movies (``precision_at_k``, averaged);
- ``mrr``: reciprocal rank of the first click (``reciprocal_rank_at_k``, averaged);
- ``clicks``: distinct (list, movie) clicks of the unit;
- ``conversion``: 1 if the unit clicked at all (a rate: z-test and chi-square);
- ``mean_rating``: mean value of the unit's ``rating`` events on recommended movies (units
  that rated none are left out of that metric).

Means are compared with Welch's t-test, rates with the two-proportion z-test (and a
chi-square across all arms), lifts with delta-method intervals; Holm adjusts the p-values
of the decision family (non-control variants x the primary metric and the guardrails).
The sample-ratio-mismatch check comes first and blocks the verdict at p < 0.001. CUPED
uses each unit's pre-experiment activity (its training ratings plus the ratings stored
before the experiment's ``start``, logged with the exposure) as the covariate. The sequential test (mSPRT, always-valid p-values) is evaluated at
daily looks, so the report can say whether stopping now is valid.
"""

from __future__ import annotations

import base64
import io
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from movierec.evaluation import metrics as M
from movierec.evaluation import online as O
from movierec.serving.abtest import INTERLEAVED, METRICS, Experiment, winner

RATES = ("conversion",)
DAY = 86_400.0
MAX_LOOKS = 60


# -- columnar log --------------------------------------------------------------------------
@dataclass
class Log:
    """Exposures and outcomes of one experiment as arrays (exposure index e, unit index u)."""

    units: list[str]
    unit_of: np.ndarray  # e -> u
    variant_of: np.ndarray  # u -> variant index (of its first exposure)
    first_ts: np.ndarray  # u -> ts of its first exposure
    pre: np.ndarray  # u -> covariate (NaN: unknown)
    ts: np.ndarray  # e -> ts
    k: np.ndarray  # e -> list length
    click_e: np.ndarray  # distinct clicks: exposure, position (0-based), ts, team index
    click_pos: np.ndarray
    click_ts: np.ndarray
    click_team: np.ndarray
    rate_e: np.ndarray  # rating events on shown movies: exposure, value, ts
    rate_v: np.ndarray
    rate_ts: np.ndarray
    switched: int  # units whose exposures carry more than one variant


def build_log(
    exp: Experiment, exposures: list[dict[str, Any]], outcomes: list[dict[str, Any]]
) -> tuple[Log, list[str]]:
    """The columnar :class:`Log` of the experiment's rows and the arm names (variants, or
    the two teams when interleaving); exposures before ``exp.start`` are left out."""
    arms = list(exp.variants)
    vidx = {n: i for i, n in enumerate(arms)}
    start = exp.start_ts
    rows = [
        r
        for r in exposures
        if (start is None or r["ts"] >= start)
        and (r["variant"] == INTERLEAVED if exp.mode == "interleave" else r["variant"] in vidx)
    ]
    rows.sort(key=lambda r: (r["ts"], r["request_id"]))
    units: dict[str, int] = {}
    unit_of = np.empty(len(rows), np.int64)
    ts = np.empty(len(rows), np.float64)
    k = np.empty(len(rows), np.int64)
    var_first: list[int] = []
    first_ts: list[float] = []
    pre: list[float] = []
    switched: set[int] = set()
    pos_of: dict[str, tuple[int, dict[int, int], list[str] | None]] = {}
    for e, r in enumerate(rows):
        u = units.setdefault(r["unit"], len(units))
        v = 0 if exp.mode == "interleave" else vidx[r["variant"]]
        if u == len(var_first):
            var_first.append(v)
            first_ts.append(float(r["ts"]))
            pre.append(np.nan if r.get("pre") is None else float(r["pre"]))
        elif var_first[u] != v:
            switched.add(u)
        unit_of[e], ts[e], k[e] = u, r["ts"], len(r["items"])
        pos_of[r["request_id"]] = (e, {int(m): i for i, (m, _) in enumerate(r["items"])},
                                   r.get("teams"))  # fmt: skip
    ce, cp, ct, cteam, re_, rv, rt = [], [], [], [], [], [], []
    seen: set[tuple[int, int]] = set()
    for o in sorted(outcomes, key=lambda o: o["ts"]):
        hit = pos_of.get(o["request_id"])
        if hit is None:
            continue
        e, pos, teams = hit
        p = pos.get(int(o["movie_id"]))
        if p is None:
            continue
        if o["type"] == "click" and (e, p) not in seen:
            seen.add((e, p))
            ce.append(e)
            cp.append(p)
            ct.append(float(o["ts"]))
            cteam.append(arms.index(teams[p]) if teams and teams[p] in arms else -1)
        elif o["type"] == "rating" and o["value"] is not None:
            re_.append(e)
            rv.append(float(o["value"]))
            rt.append(float(o["ts"]))
    i64, f64 = np.int64, np.float64
    log = Log(
        list(units), unit_of, np.array(var_first, i64), np.array(first_ts, f64),
        np.array(pre, f64), ts, k, np.array(ce, i64), np.array(cp, i64), np.array(ct, f64),
        np.array(cteam, i64), np.array(re_, i64), np.array(rv, f64), np.array(rt, f64),
        len(switched),
    )  # fmt: skip
    return log, arms


# -- per-unit metrics ----------------------------------------------------------------------
def unit_metrics(log: Log, until: float = math.inf) -> dict[str, np.ndarray]:
    """Every metric per unit from the data up to ``until`` (NaN: the unit has no value,
    e.g. not exposed yet, or no rating for ``mean_rating``), plus ``present`` (exposed by
    then) and ``exposures``."""
    n_u, n_e = len(log.units), log.ts.size
    ex = log.ts <= until
    present = log.first_ts <= until
    cm = log.click_ts <= until
    gains = np.zeros((n_e, int(log.k.max()) if n_e else 1), np.float64)
    gains[log.click_e[cm], log.click_pos[cm]] = 1.0
    hit, prec, rr = (np.zeros(n_e) for _ in range(3))
    for kk in np.unique(log.k):
        rows = log.k == kk
        if kk == 0:
            continue
        g = gains[rows]
        hit[rows] = M.hit_rate_at_k(g, int(kk))
        prec[rows] = M.precision_at_k(g, int(kk))
        rr[rows] = M.reciprocal_rank_at_k(g, int(kk))
    w = ex.astype(np.float64)
    n_exp = np.bincount(log.unit_of, w, n_u)
    clicks = np.bincount(log.unit_of, w * gains.sum(axis=1), n_u)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "ctr": np.bincount(log.unit_of, w * hit, n_u) / n_exp,
            "precision": np.bincount(log.unit_of, w * prec, n_u) / n_exp,
            "mrr": np.bincount(log.unit_of, w * rr, n_u) / n_exp,
            "clicks": np.where(present, clicks, np.nan),
            "conversion": np.where(present, (clicks > 0).astype(np.float64), np.nan),
        }
        rm = log.rate_ts <= until
        ru = log.unit_of[log.rate_e[rm]]
        out["mean_rating"] = np.bincount(ru, log.rate_v[rm], n_u) / np.bincount(ru, None, n_u)
    out["present"] = present
    out["exposures"] = n_exp
    return out


# -- statistics ----------------------------------------------------------------------------
def _f(x: Any) -> float | None:
    """A float for JSON (None for NaN / infinite)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_f(v) if isinstance(v, float | np.floating) else v) for k, v in d.items()}


def arm_summary(y: np.ndarray, rate: bool, alpha: float) -> dict[str, Any]:
    """Mean of one arm's per-unit values with its interval (t for means, Wald for rates)."""
    y = y[np.isfinite(y)]
    n = int(y.size)
    if n == 0:
        return {"n": 0, "mean": None, "se": None, "ci_low": None, "ci_high": None, "sd": None}
    m = float(y.mean())
    sd = float(y.std(ddof=1)) if n > 1 else float("nan")
    se = math.sqrt(m * (1 - m) / n) if rate else sd / math.sqrt(n)
    q = stats.norm.isf(alpha / 2) if rate else stats.t.isf(alpha / 2, max(n - 1, 1))
    return _clean(
        {"n": n, "mean": m, "se": se, "ci_low": m - q * se, "ci_high": m + q * se, "sd": sd}
    )


def compare(ya: np.ndarray, yb: np.ndarray, rate: bool, alpha: float) -> dict[str, Any]:
    """Control ``ya`` vs treatment ``yb`` (per-unit values): difference test and lift."""
    ya, yb = ya[np.isfinite(ya)], yb[np.isfinite(yb)]
    if rate:
        d = O.proportions_ztest(ya.sum(), ya.size, yb.sum(), yb.size, alpha)
        sa = math.sqrt(ya.mean() * (1 - ya.mean()) / ya.size) if ya.size else np.nan
        sb = math.sqrt(yb.mean() * (1 - yb.mean()) / yb.size) if yb.size else np.nan
        ma, mb = (ya.mean() if ya.size else np.nan), (yb.mean() if yb.size else np.nan)
        lift = O.lift_from_stats(ma, sa, mb, sb, alpha)
        test = "two-proportion z-test"
    else:
        d = O.welch_ttest(ya, yb, alpha)
        lift = O.relative_lift(ya, yb, alpha)
        test = "Welch t-test"
    return {"test": test, "diff": _clean(d.to_dict()), "lift": _clean(lift.to_dict())}


def _diff_var(ya: np.ndarray, yb: np.ndarray, rate: bool) -> tuple[float, float, float]:
    """(difference, its variance, pooled per-unit variance) of two arms' values."""
    ya, yb = ya[np.isfinite(ya)], yb[np.isfinite(yb)]
    if ya.size < 2 or yb.size < 2:
        return np.nan, np.nan, np.nan
    if rate:
        va, vb = ya.mean() * (1 - ya.mean()), yb.mean() * (1 - yb.mean())
    else:
        va, vb = ya.var(ddof=1), yb.var(ddof=1)
    pooled = ((ya.size - 1) * va + (yb.size - 1) * vb) / (ya.size + yb.size - 2)
    return float(yb.mean() - ya.mean()), float(va / ya.size + vb / yb.size), float(pooled)


def look_times(log: Log, start: float | None) -> np.ndarray:
    """Daily looks from the start (at most 60; ten equal steps when under two days), the
    last one at the latest exposure or outcome."""
    if log.ts.size == 0:
        return np.zeros(0)
    t0 = start if start is not None else float(log.ts.min())
    end = max(float(log.ts.max()), float(log.click_ts.max()) if log.click_ts.size else 0.0,
              float(log.rate_ts.max()) if log.rate_ts.size else 0.0)  # fmt: skip
    span = max(end - t0, 0.0)
    if span >= 2 * DAY:
        step = DAY * max(1, math.ceil(span / DAY / MAX_LOOKS))
        looks = t0 + step * np.arange(1, math.ceil(span / step) + 1)
    else:
        looks = t0 + span * np.arange(1, 11) / 10
    looks[-1] = end
    return np.unique(looks)


def sequential(
    looks: list[tuple[float, float, float]], planned: float, alpha: float
) -> dict[str, Any]:
    """mSPRT over looks of (difference, its variance, pooled per-unit variance).

    Each look's mixture variance is :func:`online.mixture_tau2` of the variance the
    difference would have at the planned size (``pooled * planned``, ``planned`` being
    ``1/n_a* + 1/n_b*``): a scale-free choice fixed by the plan, not by the effect seen.
    The p-value is the running minimum, the confidence sequence the running intersection.
    """
    ps, lo, hi = [], [], []
    for d, v, pooled in looks:
        if not (np.isfinite(v) and v > 0 and pooled > 0):
            ps.append(1.0)
            lo.append(-np.inf)
            hi.append(np.inf)
            continue
        s = O.msprt(d, v, O.mixture_tau2(pooled * planned, alpha), alpha)
        ps.append(s.pvalue)
        lo.append(s.ci_low)
        hi.append(s.ci_high)
    p = np.minimum.accumulate(np.array(ps)) if ps else np.ones(1)
    lo_a = np.maximum.accumulate(np.array(lo)) if lo else np.array([-np.inf])
    hi_a = np.minimum.accumulate(np.array(hi)) if hi else np.array([np.inf])
    return {
        "pvalue": float(p[-1]),
        "ci_low": _f(lo_a[-1]),
        "ci_high": _f(hi_a[-1]),
        "can_stop": bool(p[-1] <= alpha),
        "pvalues": [float(x) for x in p],
        "ci_lows": [_f(x) for x in lo_a],
        "ci_highs": [_f(x) for x in hi_a],
    }


def _mde(ya: np.ndarray, yb: np.ndarray, rate: bool, alpha: float) -> dict[str, Any] | None:
    ya, yb = ya[np.isfinite(ya)], yb[np.isfinite(yb)]
    if ya.size < 2 or yb.size < 2:
        return None
    ratio = yb.size / ya.size
    base = float(ya.mean())
    try:
        if rate:
            mde = O.mde_proportions(ya.size, base, alpha, 0.8, ratio)
        else:
            _, _, pooled = _diff_var(ya, yb, False)
            mde = O.mde_means(ya.size, math.sqrt(pooled), alpha, 0.8, ratio)
    except Exception:  # noqa: BLE001 - a degenerate arm (rate 0 or 1, no variance): no MDE
        return None
    return _clean(
        {"n_control": int(ya.size), "n_treatment": int(yb.size), "baseline": base,
         "mde": mde, "mde_relative": mde / base if base else float("nan"), "power": 0.8}
    )  # fmt: skip


# -- the report ----------------------------------------------------------------------------
def analyze(
    exp: Experiment,
    exposures: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
    *,
    timeline: bool = True,
) -> dict[str, Any]:
    """The report of an experiment from its exposure and outcome rows (as
    :meth:`movierec.serving.store.Store.experiment_rows` returns them).

    ``timeline=False`` skips the daily looks (and so the sequential test).
    """
    log, arms = build_log(exp, exposures, outcomes)
    alpha = exp.alpha
    rep: dict[str, Any] = {
        "experiment": exp.definition(),
        "generated_at": time.time(),
        "alpha": alpha,
        "units": len(log.units),
        "exposures": int(log.ts.size),
        "first_exposure": _f(log.ts.min()) if log.ts.size else None,
        "last_exposure": _f(log.ts.max()) if log.ts.size else None,
        "units_switched_variant": log.switched,
        "warnings": [],
    }
    if log.switched:
        rep["warnings"].append(
            f"{log.switched} units saw more than one variant (the salt or weights changed "
            "mid-experiment?); each counts in the arm of its first exposure"
        )
    if exp.mode == "interleave":
        return _json(_interleave_report(exp, log, arms, rep, timeline))
    return _json(_ab_report(exp, log, arms, rep, timeline))


def _json(x: Any) -> Any:
    """``x`` with numpy scalars made plain and NaN / infinity made None (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return _f(x)
    return x


def _ab_report(
    exp: Experiment, log: Log, arms: list[str], rep: dict[str, Any], timeline: bool
) -> dict[str, Any]:
    alpha = exp.alpha
    um = unit_metrics(log)
    counts = np.bincount(log.variant_of, minlength=len(arms))
    weights = exp.weight_list
    srm = O.srm_check(counts, weights) if counts.sum() else None
    rep["srm"] = {
        **(srm.to_dict() if srm else {"statistic": 0.0, "pvalue": 1.0, "df": len(arms) - 1,
                                      "expected": [0.0] * len(arms), "flagged": False}),
        "counts": {a: int(c) for a, c in zip(arms, counts, strict=True)},
        "weights": dict(zip(arms, weights, strict=True)),
        "threshold": 0.001,
    }  # fmt: skip
    control = arms.index(exp.control)
    family = list(dict.fromkeys([exp.primary_metric, *exp.guardrails]))
    rep["metrics"] = list(METRICS)
    rep["family"] = family
    variants = []
    for i, a in enumerate(arms):
        sel = log.variant_of == i
        variants.append(
            {
                "name": a,
                "model": exp.variants[a].model,
                "params": exp.variants[a].params,
                "control": i == control,
                "units": int(sel.sum()),
                "exposures": int(um["exposures"][sel].sum()),
                "metrics": {m: arm_summary(um[m][sel], m in RATES, alpha) for m in METRICS},
            }
        )
    rep["variants"] = variants
    ya_of = {m: um[m][log.variant_of == control] for m in METRICS}
    comps = []
    for i, a in enumerate(arms):
        if i == control:
            continue
        sel = log.variant_of == i
        for m in METRICS:
            c = compare(ya_of[m], um[m][sel], m in RATES, alpha)
            comps.append({"variant": a, "metric": m, "in_family": m in family, **c})
    for m in RATES:
        ok = [np.isfinite(um[m][log.variant_of == i]) for i in range(len(arms))]
        x = [float(np.nansum(um[m][log.variant_of == i])) for i in range(len(arms))]
        n = [int(o.sum()) for o in ok]
        if all(v > 0 for v in n):
            chi = O.chi2_rates(x, n).to_dict()
            for c in comps:
                if c["metric"] == m:
                    c["chi2"] = _clean(chi)
    fam = [c for c in comps if c["in_family"]]
    raw = [c["diff"]["pvalue"] for c in fam]
    adj = O.holm([1.0 if p is None else p for p in raw]) if fam else []
    for c, p in zip(fam, adj, strict=True):
        c["pvalue_holm"] = float(p)
        c["significant"] = bool(p <= alpha)
    rep["comparisons"] = comps
    rep["cuped"] = _cuped(exp, log, um, arms, control, family)
    rep["power"] = {
        a: _mde(ya_of[exp.primary_metric], um[exp.primary_metric][log.variant_of == i],
                exp.primary_metric in RATES, alpha)
        for i, a in enumerate(arms) if i != control
    }  # fmt: skip
    rep["timeline"] = _timeline(exp, log, arms, control, family) if timeline else None
    rep["verdict"] = _verdict(exp, rep)
    return rep


def _cuped(
    exp: Experiment, log: Log, um: dict[str, np.ndarray], arms: list[str], control: int,
    family: list[str],
) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    if not np.isfinite(log.pre).any():
        return out
    x_all = np.nan_to_num(log.pre, nan=0.0)
    for i, a in enumerate(arms):
        if i == control:
            continue
        for m in family:
            y = um[m]
            sel = ((log.variant_of == control) | (log.variant_of == i)) & np.isfinite(y)
            g = (log.variant_of[sel] == i).astype(np.int64)
            if min(int(g.sum()), int((1 - g).sum())) < 2:
                continue
            c = O.cuped(y[sel], x_all[sel], groups=g)
            raw = O.welch_ttest(y[sel][g == 0], y[sel][g == 1], exp.alpha)
            adj = O.welch_ttest(c.adjusted[g == 0], c.adjusted[g == 1], exp.alpha)
            w_raw, w_adj = raw.ci_high - raw.ci_low, adj.ci_high - adj.ci_low
            out.append(
                {
                    "variant": a, "metric": m, "covariate": "pre-experiment training ratings",
                    "theta": _f(c.theta), "variance_reduction": _f(c.variance_reduction),
                    "diff": _clean(adj.to_dict()), "raw": _clean(raw.to_dict()),
                    "ci_width_raw": _f(w_raw), "ci_width_cuped": _f(w_adj),
                    "interval_shrink": _f(1 - w_adj / w_raw) if w_raw > 0 else None,
                }
            )  # fmt: skip
    return out


def _timeline(
    exp: Experiment, log: Log, arms: list[str], control: int, family: list[str]
) -> dict[str, Any]:
    looks = look_times(log, exp.start_ts)
    w = exp.weight_list
    per_look = [unit_metrics(log, t) for t in looks]
    out: dict[str, Any] = {
        "ts": [float(t) for t in looks],
        "units": {a: [int((u["present"] & (log.variant_of == i)).sum()) for u in per_look]
                  for i, a in enumerate(arms)},
        "series": [],
    }  # fmt: skip
    for i, a in enumerate(arms):
        if i == control:
            continue
        planned = 1 / (exp.planned_units * w[control]) + 1 / (exp.planned_units * w[i])
        for m in family:
            rate = m in RATES
            dv, lifts, naive = [], [], []
            for u in per_look:
                ya = u[m][(log.variant_of == control) & u["present"]]
                yb = u[m][(log.variant_of == i) & u["present"]]
                dv.append(_diff_var(ya, yb, rate))
                c = compare(ya, yb, rate, exp.alpha)
                lifts.append(c["lift"])
                naive.append(c["diff"]["pvalue"])
            seq = sequential(dv, planned, exp.alpha)
            out["series"].append(
                {
                    "variant": a, "metric": m,
                    "diff": [_f(d) for d, _, _ in dv],
                    "lift": [x["estimate"] for x in lifts],
                    "lift_low": [x["ci_low"] for x in lifts],
                    "lift_high": [x["ci_high"] for x in lifts],
                    "pvalue_naive": naive,
                    "sequential": seq,
                }
            )  # fmt: skip
    return out


def _verdict(exp: Experiment, rep: dict[str, Any]) -> dict[str, Any]:
    prim = [c for c in rep["comparisons"] if c["metric"] == exp.primary_metric]
    seq = {}
    if rep.get("timeline"):
        seq = {s["variant"]: s["sequential"] for s in rep["timeline"]["series"]
               if s["metric"] == exp.primary_metric}  # fmt: skip
    can_stop = any(s["can_stop"] for s in seq.values())
    v: dict[str, Any] = {"primary_metric": exp.primary_metric, "can_stop": can_stop}
    small = [x for x in rep["variants"] if x["units"] < 2]
    if rep["srm"]["flagged"]:
        v["status"] = "blocked"
        v["text"] = (
            f"Sample ratio mismatch (p = {rep['srm']['pvalue']:.2g} < 0.001): units per variant "
            f"{rep['srm']['counts']} do not match the weights; fix assignment or logging "
            "before reading any result."
        )
        v["can_stop"] = False
        return v
    if small:
        v["status"] = "collecting"
        v["text"] = "Not enough units yet: every variant needs at least two."
        return v
    parts, status = [], "no difference"
    for c in prim:
        d, p = c["diff"], c.get("pvalue_holm", c["diff"]["pvalue"])
        lift = c["lift"]["estimate"]
        lift_s = "n/a" if lift is None else f"{lift:+.1%}"
        if c.get("significant"):
            status = "significant"
            word = "better" if (d["estimate"] or 0) > 0 else "worse"
            parts.append(f"{c['variant']} is {word} than {exp.control} on {c['metric']} "
                         f"(lift {lift_s}, Holm p = {p:.3g})")  # fmt: skip
        else:
            parts.append(f"{c['variant']} vs {exp.control}: no significant difference on "
                         f"{c['metric']} (lift {lift_s}, Holm p = {p:.3g})")  # fmt: skip
    for c in rep["comparisons"]:
        if (
            c["metric"] in exp.guardrails
            and c.get("significant")
            and (c["diff"]["estimate"] or 0) < 0
        ):
            parts.append(f"guardrail {c['metric']} is worse for {c['variant']} (Holm p = "
                         f"{c['pvalue_holm']:.3g})")  # fmt: skip
    stop = "yes" if can_stop else "no"
    v["status"] = status
    v["text"] = "; ".join(parts) + f". Stopping now is valid (sequential test): {stop}."
    return v


def _interleave_report(
    exp: Experiment, log: Log, arms: list[str], rep: dict[str, Any], timeline: bool
) -> dict[str, Any]:
    a, b = arms
    rep["srm"] = None

    def prefs(until: float = math.inf) -> tuple[int, int, int]:
        m = log.click_ts <= until
        u = log.unit_of[log.click_e[m]]
        t = log.click_team[m]
        n = len(log.units)
        ca = np.bincount(u[t == 0], minlength=n)
        cb = np.bincount(u[t == 1], minlength=n)
        wins = [winner({a: int(x), b: int(y)}, a, b) for x, y in zip(ca, cb, strict=True)]
        present = int((log.first_ts <= until).sum())
        wa, wb = wins.count(a), wins.count(b)
        return wa, wb, present - wa - wb

    wa, wb, ties = prefs()
    pt = O.preference_test(wa, wb, exp.alpha)
    rep["interleave"] = {"a": a, "b": b, "ties": ties, **_clean(pt.to_dict()),
                         "significant": bool(pt.pvalue <= exp.alpha)}  # fmt: skip
    rep["variants"] = [
        {"name": n, "model": exp.variants[n].model, "params": exp.variants[n].params,
         "control": n == exp.control, "units": len(log.units), "exposures": int(log.ts.size),
         "wins": w, "clicks": int((log.click_team == j).sum())}
        for j, (n, w) in enumerate(((a, wa), (b, wb)))
    ]  # fmt: skip
    rep["comparisons"], rep["cuped"], rep["power"] = [], [], {}
    rep["timeline"] = None
    if timeline:
        looks = look_times(log, exp.start_ts)
        share, lo, hi, pv = [], [], [], []
        for t in looks:
            x = O.preference_test(*prefs(t)[:2], alpha=exp.alpha)
            share.append(_f(x.share_b))
            lo.append(_f(x.ci_low))
            hi.append(_f(x.ci_high))
            pv.append(_f(x.pvalue))
        rep["timeline"] = {"ts": [float(t) for t in looks], "share_b": share, "ci_low": lo,
                           "ci_high": hi, "pvalue": pv}  # fmt: skip
    better = b if (pt.share_b or 0.5) > 0.5 else a
    if wa + wb == 0:
        text = "No unit has clicked yet: no preference to test."
        status = "collecting"
    elif pt.pvalue <= exp.alpha:
        text = (f"Units prefer {better}: {b} won {wb} and {a} won {wa} units (share "
                f"{pt.share_b:.1%} for {b}, binomial p = {pt.pvalue:.3g}).")  # fmt: skip
        status = "significant"
    else:
        text = (f"No significant preference: {b} won {wb} and {a} won {wa} units "
                f"(binomial p = {pt.pvalue:.3g}).")  # fmt: skip
        status = "no difference"
    rep["verdict"] = {"status": status, "text": text, "primary_metric": "preference",
                      "can_stop": None}  # fmt: skip
    return rep


# -- text ----------------------------------------------------------------------------------
def _n(x: Any, fmt: str = ".4g") -> str:
    return "-" if x is None else format(x, fmt)


def format_report(rep: dict[str, Any]) -> str:
    """The report as plain text (what ``movierec ab report`` prints)."""
    from movierec.tables import text_table

    e = rep["experiment"]
    lines = [f"experiment {e['name']} ({e['mode']}, unit {e['unit']}, {e['status']}): "
             f"{rep['units']:,} units, {rep['exposures']:,} exposures"]  # fmt: skip
    srm = rep.get("srm")
    if srm:
        flag = "MISMATCH" if srm["flagged"] else "ok"
        lines.append(f"sample ratio: {flag} (chi-square p = {srm['pvalue']:.3g}; units "
                     f"{srm['counts']}, weights {srm['weights']})")  # fmt: skip
    lines.append("verdict: " + rep["verdict"]["text"])
    for w in rep.get("warnings", []):
        lines.append("warning: " + w)
    if e["mode"] == "interleave":
        i = rep["interleave"]
        lines.append(f"preference for {i['b']}: {_n(i['share_b'], '.3f')} "
                     f"[{_n(i['ci_low'], '.3f')}, {_n(i['ci_high'], '.3f')}], wins "
                     f"{i['a']} {i['wins_a']} / {i['b']} {i['wins_b']}, ties {i['ties']}, "
                     f"binomial p = {i['pvalue']:.3g}")  # fmt: skip
        return "\n".join(lines)
    head = ["variant", "units", "exposures", *rep["metrics"]]
    rows = []
    for v in rep["variants"]:
        cells = [f"{_n(v['metrics'][m]['mean'])} ±{_n(_half(v['metrics'][m]), '.2g')}"
                 for m in rep["metrics"]]  # fmt: skip
        rows.append([v["name"] + (" (control)" if v["control"] else ""), f"{v['units']:,}",
                     f"{v['exposures']:,}", *cells])  # fmt: skip
    lines.append(text_table(rows, head, right=range(1, len(head))))
    head = ["variant", "metric", "diff", "95% CI", "lift", "lift CI", "p", "Holm p"]
    rows = []
    for c in rep["comparisons"]:
        d, lf = c["diff"], c["lift"]
        rows.append([c["variant"], c["metric"] + ("*" if c["in_family"] else ""),
                     _n(d["estimate"]), f"[{_n(d['ci_low'])}, {_n(d['ci_high'])}]",
                     _pct(lf["estimate"]), f"[{_pct(lf['ci_low'])}, {_pct(lf['ci_high'])}]",
                     _n(d["pvalue"], ".3g"), _n(c.get("pvalue_holm"), ".3g")])  # fmt: skip
    lines.append(text_table(rows, head, right=range(2, len(head))))
    lines.append("* decision family (Holm-adjusted): primary metric and guardrails")
    for c in rep["cuped"]:
        lines.append(f"CUPED {c['variant']} {c['metric']}: variance reduced "
                     f"{_share(c['variance_reduction'])}, interval {_n(c['ci_width_raw'])} -> "
                     f"{_n(c['ci_width_cuped'])} ({_share(c['interval_shrink'])} narrower); diff "
                     f"{_n(c['diff']['estimate'])} "
                     f"[{_n(c['diff']['ci_low'])}, {_n(c['diff']['ci_high'])}]")  # fmt: skip
    for s in (rep.get("timeline") or {}).get("series", []):
        q = s["sequential"]
        lines.append(f"sequential {s['variant']} {s['metric']}: always-valid p = "
                     f"{q['pvalue']:.3g}, confidence sequence [{_n(q['ci_low'])}, "
                     f"{_n(q['ci_high'])}]; stopping now is valid: "
                     f"{'yes' if q['can_stop'] else 'no'}")  # fmt: skip
    for a, p in rep["power"].items():
        if p:
            lines.append(f"MDE {a} on {e['primary_metric']} at {p['n_control']:,} + "
                         f"{p['n_treatment']:,} units (power 0.8): {_n(p['mde'])} "
                         f"({_pct(p['mde_relative'])} of {_n(p['baseline'])})")  # fmt: skip
    return "\n".join(lines)


def _half(s: dict[str, Any]) -> float | None:
    if s["ci_high"] is None or s["mean"] is None:
        return None
    return s["ci_high"] - s["mean"]


def _share(x: Any) -> str:
    return "-" if x is None else f"{x:.1%}"


def _pct(x: Any) -> str:
    return "-" if x is None else f"{x:+.1%}"


# -- HTML ----------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def plots(rep: dict[str, Any]) -> list[dict[str, str]]:
    """The report's plots as PNG data URIs: cumulative lift with its band over time, and
    per-variant bars with intervals (interleaving: the preference share over time)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    tl = rep.get("timeline")
    if tl and tl["ts"]:
        t0 = tl["ts"][0] - (tl["ts"][1] - tl["ts"][0] if len(tl["ts"]) > 1 else DAY)
        days = [(t - t0) / DAY for t in tl["ts"]]
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        if rep["experiment"]["mode"] == "interleave":
            y, lo, hi = (np.array(tl[k], dtype=float) for k in ("share_b", "ci_low", "ci_high"))
            ax.plot(days, y, marker="o", label=f"share preferring {rep['interleave']['b']}")
            ax.fill_between(days, lo, hi, alpha=0.25)
            ax.axhline(0.5, color="grey", lw=1)
            ax.set_ylabel("preference share")
            title = "Preference share over time (95% exact band)"
        else:
            for s in tl["series"]:
                if s["metric"] != rep["experiment"]["primary_metric"]:
                    continue
                y, lo, hi = (np.array(s[k], dtype=float) for k in ("lift", "lift_low", "lift_high"))
                ax.plot(days, 100 * y, marker="o", label=f"{s['variant']} vs control")
                ax.fill_between(days, 100 * lo, 100 * hi, alpha=0.25)
            ax.axhline(0, color="grey", lw=1)
            ax.set_ylabel(f"lift of {rep['experiment']['primary_metric']} (%)")
            title = "Cumulative lift over time (95% delta-method band)"
        ax.set_xlabel("days since start")
        ax.legend(fontsize=8)
        out.append({"title": title, "src": _png(fig), "alt": "cumulative lift"})
    if rep["experiment"]["mode"] != "interleave" and rep["variants"]:
        metric = rep["experiment"]["primary_metric"]
        names = [v["name"] for v in rep["variants"]]
        s = [v["metrics"][metric] for v in rep["variants"]]
        mean = np.array([x["mean"] if x["mean"] is not None else np.nan for x in s])
        lo = np.array([x["ci_low"] if x["ci_low"] is not None else np.nan for x in s])
        hi = np.array([x["ci_high"] if x["ci_high"] is not None else np.nan for x in s])
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        ax.bar(names, mean, yerr=[mean - lo, hi - mean], capsize=6, color="#4f46e5", alpha=0.8)
        ax.set_ylabel(metric)
        out.append({"title": f"{metric} per variant (95% intervals)", "src": _png(fig),
                    "alt": "per-variant bars"})  # fmt: skip
    return out


def render_html(rep: dict[str, Any]) -> str:
    """A self-contained HTML page of the report (plots embedded)."""
    from movierec.experiment.report import _env

    return (
        _env()
        .get_template("abreport.html.j2")
        .render(rep=rep, text=format_report(rep), plots=plots(rep))
    )
