"""``movierec ab simulate``: replay held-out MovieLens behaviour through the real service.

The ratings are split in time per user (each user's last ``test_fraction`` of ratings
are her future). The variant models are fitted on the past part and served by the real
app (:func:`movierec.serving.app.create_app`, in process through FastAPI's TestClient),
with the experiment of the serving config. Each simulated visitor is a real user: she
arrives on a random day, comes back on each later day with probability ``return_p``, is
assigned by the service, is shown its list and clicks each shown movie independently with

    p(click) = noise + (1 - noise) * 0.9 * clip((r - 1) / 4, 0, 1)

where ``r`` is her real future rating of the movie (``p = noise`` for a movie she never
rated). A click on a movie she rated also posts her rating as a ``rating`` event. The
outcomes go through ``POST /events``; the report is the service's own.

:func:`repeat` is the fast path used to check the statistics over many experiments: the
same schedule, click model, assignment (:meth:`Experiment.assign`), interleaving
(:meth:`Experiment.interleave`) and analysis (:func:`movierec.experiment.abreport.analyze`)
on the models' lists computed once, without HTTP or a store.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.experiment.abreport import DAY, analyze
from movierec.serving.abtest import INTERLEAVED, Experiment


# -- the world -----------------------------------------------------------------------------
@dataclass
class World:
    """The past (to train on), each user's future ratings, and who can visit."""

    train: Dataset
    future: dict[int, dict[int, float]]  # raw user -> raw movie -> rating
    users: np.ndarray  # raw ids of users with a past and a future
    pre: dict[int, float]  # raw user -> training ratings (the CUPED covariate)


def split_future(ds: Dataset, test_fraction: float = 0.2, min_train: int = 5) -> World:
    """Each user's last ``test_fraction`` of ratings (by time, at least one) are her future;
    users with fewer than ``min_train`` past ratings only have a past."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.lexsort((ds.items, ds.timestamps, ds.users))
    u = ds.users[order]
    n = np.bincount(u, minlength=ds.n_users)
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    rank = np.arange(u.size) - first[u]
    n_test = np.maximum(1, np.ceil(test_fraction * n).astype(np.int64))
    keep_all = n - n_test < min_train
    is_test = np.zeros(u.size, bool)
    is_test[order] = (rank >= n[u] - n_test[u]) & ~keep_all[u]
    train = ds.subset(~is_test, name=f"{ds.name}:past")
    test = ds.subset(is_test, name=f"{ds.name}:future")
    raw_u = ds.user_map.to_raw(test.users)
    raw_i = ds.item_map.to_raw(test.items)
    future: dict[int, dict[int, float]] = {}
    for a, b, r in zip(raw_u.tolist(), raw_i.tolist(), test.ratings.tolist(), strict=True):
        future.setdefault(int(a), {})[int(b)] = float(r)
    counts = train.user_counts()
    pre = {int(r): float(c) for r, c in zip(ds.user_map.raw.tolist(), counts.tolist(), strict=True)}
    users = np.array(sorted(future), dtype=np.int64)
    return World(train, future, users, pre)


def click_prob(rating: float | None, noise: float) -> float:
    """Chance a visitor clicks a shown movie she will rate ``rating`` (None: never)."""
    if rating is None:
        return noise
    return noise + (1 - noise) * 0.9 * min(max((rating - 1) / 4, 0.0), 1.0)


def clicks(shown: list[int], future: dict[int, float], rng: np.random.Generator, noise: float):
    """The shown movies a visitor clicks, with her rating of each (None if unrated)."""
    p = np.array([click_prob(future.get(m), noise) for m in shown])
    hit = rng.random(len(shown)) < p
    return [(m, future.get(m)) for m, h in zip(shown, hit.tolist(), strict=True) if h]


def schedule(
    users: np.ndarray, days: int, rng: np.random.Generator, return_p: float = 0.5
) -> list[tuple[float, int]]:
    """Visits as (seconds since the start, raw user), in time order: a first visit on a
    uniform day, then each later day with probability ``return_p``."""
    out = []
    first = rng.integers(0, days, users.size)
    for u, d0 in zip(users.tolist(), first.tolist(), strict=True):
        for d in range(d0, days):
            if d == d0 or rng.random() < return_p:
                out.append((d * DAY + float(rng.uniform(0, DAY - 120)), int(u)))
    out.sort()
    return out


def experiment_of(cfg: Any) -> Experiment:
    """The running experiment on users of a serving config."""
    exps = [e for e in cfg.experiments if e.unit == "user" and e.status == "running"]
    if not exps:
        raise ConfigError(
            "the serving config has no running experiment on users: add one under "
            "experiments: (unit: user) to simulate"
        )
    return exps[0]


def fit_models(
    exp: Experiment, train: Dataset, seed: int, params: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The variant models, fitted on the past: a variant's model label is a registered
    model name (``popularity``, ``ease``, ``ials``...), with ``params[name]`` (e.g. the
    ones a compare run tuned) or its defaults."""
    from movierec.models import REGISTRY, make_model

    unused = sorted(set(params or {}) - {v.model for v in exp.variants.values()})
    if unused:
        raise ConfigError(
            f"params given for {', '.join(unused)}, which no variant of {exp.name!r} serves; "
            "remove them or name them in the experiment"
        )
    out = {}
    for v in exp.variants.values():
        if v.model in out:
            continue
        if v.model.lower() not in REGISTRY:
            raise ConfigError(
                f"simulate trains each variant's model by name; {v.model!r} is not one of "
                f"{', '.join(REGISTRY)}"
            )
        m = make_model(v.model, **(params or {}).get(v.model, {}))
        if "random_state" in m.get_params():
            m.set_params(random_state=seed)
        out[v.model] = m.fit(train)
    return out


def _pick_users(world: World, units: int, rng: np.random.Generator) -> np.ndarray:
    if units < 2:
        raise ConfigError(f"--units must be >= 2, got {units}")
    if units > world.users.size:
        raise ConfigError(
            f"only {world.users.size} users have a past and a future in this data set; use "
            f"--units <= {world.users.size} or a larger release"
        )
    return np.sort(rng.choice(world.users, units, replace=False))


def _lost(exp: Experiment, users: np.ndarray, skew: float, rng: np.random.Generator) -> set[int]:
    """A deliberately broken arm: each visitor assigned to a non-control variant is lost
    (never reaches the service) with probability ``skew``."""
    if skew <= 0:
        return set()
    return {int(u) for u in users.tolist()
            if exp.assign(int(u)) not in (exp.control, INTERLEAVED) and rng.random() < skew}  # fmt: skip


# -- through the service -------------------------------------------------------------------
def simulate(
    config: str | Path,
    dataset: str | Path,
    units: int,
    days: int = 14,
    seed: int = 0,
    noise: float = 0.02,
    k: int = 10,
    db: str | None = None,
    skew: float = 0.0,
    return_p: float = 0.5,
    params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one experiment through the real app; returns its report plus ``simulation``
    (what was replayed). ``params``: model name -> params (see :func:`fit_models`)."""
    from fastapi.testclient import TestClient

    from movierec import artifacts
    from movierec.data import load
    from movierec.serving.app import create_app
    from movierec.serving.config import load_serve_config
    from movierec.serving.engine import Engine
    from movierec.serving.store import Store

    t_start = time.perf_counter()
    cfg = load_serve_config(config)
    exp = experiment_of(cfg)
    world = split_future(load(dataset))
    rng = np.random.default_rng(seed)
    people = _pick_users(world, units, rng)
    visits = schedule(people, days, rng, return_p)
    lost = _lost(exp, people, skew, rng)
    tmp = Path(tempfile.mkdtemp(prefix="movierec-ab-"))
    for label, m in fit_models(exp, world.train, seed, params).items():
        artifacts.save(m, tmp / "models" / label, train=world.train, extra={"label": label})
    url = db or f"sqlite:///{tmp / 'ab.db'}"
    cfg = cfg.model_copy(update={"store": url, "models": None, "default": None})
    store = Store(url)
    engine = Engine(tmp / "models", cfg, store)
    # by default the experiment starts at a UTC midnight, so simulated days are calendar days
    start = exp.start_ts if exp.start_ts is not None else (time.time() // DAY - days) * DAY
    now = [math.floor(start)]
    t0 = now[0]
    engine.clock = lambda: now[0]
    n_req = n_click = n_lost = 0
    try:
        with TestClient(create_app(engine=engine)) as client:
            day_events: list[tuple[float, dict[str, Any]]] = []
            day = 0
            for at, user in visits:
                if int(at // DAY) != day:
                    n_click += _post(client, day_events, now)
                    day = int(at // DAY)
                if user in lost:
                    n_lost += 1
                    continue
                now[0] = t0 + at
                r = client.get(f"/users/{user}/recommendations", params={"k": k})
                if r.status_code != 200:
                    raise ConfigError(f"the service answered {r.status_code}: {r.text[:200]}")
                body = r.json()
                n_req += 1
                shown = [m["movieId"] for m in body["items"]]
                for j, (movie, rating) in enumerate(clicks(shown, world.future[user], rng, noise)):
                    ev = {"request_id": body["request_id"], "movieId": movie, "type": "click"}
                    day_events.append((t0 + at + 30 + j, ev))
                    if rating is not None:
                        day_events.append((t0 + at + 31 + j, {**ev, "type": "rating",
                                                              "value": rating}))  # fmt: skip
            n_click += _post(client, day_events, now)
            rep = client.get(f"/experiments/{exp.name}/report").json()
    finally:
        engine.close()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)  # the fitted models, and the store unless --db
    rep["simulation"] = {
        "dataset": str(dataset), "units": int(units), "days": days, "seed": seed,
        "noise": noise, "k": k, "skew": skew, "requests": n_req, "events": n_click,
        "visits_lost_to_skew": n_lost, "store": store.safe_url if db else "temporary, removed",
        "seconds": round(time.perf_counter() - t_start, 1),
    }  # fmt: skip
    return rep


def _post(client: Any, events: list[tuple[float, dict[str, Any]]], now: list[float]) -> int:
    for at, ev in events:
        now[0] = at
        r = client.post("/events", json=ev)
        if r.status_code != 201:
            raise ConfigError(f"POST /events answered {r.status_code}: {r.text[:200]}")
    n = len(events)
    events.clear()
    return n


# -- the fast path -------------------------------------------------------------------------
def rankings(models: dict[str, Any], world: World, k: int) -> dict[str, dict[int, list[int]]]:
    """Each model's top-``k`` of every user, as raw movie ids (what the service serves a
    known user without stored ratings: her past excluded)."""
    ds = world.train
    dense = ds.user_map.index(world.users)
    out = {}
    for label, m in models.items():
        items, _ = m.recommend(dense, k)
        raw = ds.item_map.raw
        out[label] = {
            int(u): [int(raw[j]) for j in row if j >= 0]
            for u, row in zip(world.users.tolist(), items.tolist(), strict=True)
        }
    return out


def replay(
    exp: Experiment,
    world: World,
    lists: dict[str, dict[int, list[int]]],
    users: np.ndarray,
    days: int,
    rng: np.random.Generator,
    noise: float = 0.02,
    k: int = 10,
    skew: float = 0.0,
    return_p: float = 0.5,
    tag: str = "r",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The exposure and outcome rows one experiment would leave in the store (same
    schedule, assignment, interleaving and click model as :func:`simulate`)."""
    exposures, outcomes = [], []
    base = exp.start_ts or 0.0
    visits = schedule(users, days, rng, return_p)
    lost = _lost(exp, users, skew, rng)
    for n, (at0, user) in enumerate(visits):
        at = base + at0
        if user in lost:
            continue
        rid = f"{tag}{n}"
        variant = exp.assign(user)
        teams = None
        if variant == INTERLEAVED:
            merged = exp.interleave(
                {name: lists[v.model][user] for name, v in exp.variants.items()}, k, rid
            )
            shown, teams = [int(x) for x in merged.items], list(merged.teams)
        else:
            shown = lists[exp.variants[variant].model][user][
                : exp.variants[variant].params.get("k", k)
            ]
        exposures.append(
            {"request_id": rid, "unit": f"user:{user}", "variant": variant, "ts": at,
             "items": [[m, i + 1] for i, m in enumerate(shown)], "teams": teams,
             "pre": world.pre.get(user)}
        )  # fmt: skip
        for j, (movie, rating) in enumerate(clicks(shown, world.future[user], rng, noise)):
            outcomes.append({"request_id": rid, "movie_id": movie, "type": "click",
                             "value": None, "ts": at + 30 + j})  # fmt: skip
            if rating is not None:
                outcomes.append({"request_id": rid, "movie_id": movie, "type": "rating",
                                 "value": rating, "ts": at + 31 + j})  # fmt: skip
    return exposures, outcomes


def repeat(
    config: str | Path,
    dataset: str | Path,
    units: int,
    repeats: int,
    days: int = 14,
    seed: int = 0,
    noise: float = 0.02,
    k: int = 10,
    skew: float = 0.0,
    return_p: float = 0.5,
    params: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``repeats`` independent experiments (new salt, new sample of users, new clicks)
    on the fast path; the share of them in which each test found a difference.

    For an A/A config (both variants one model) these shares are false-positive rates;
    otherwise they are the power at ``units`` units.
    """
    from scipy import stats

    from movierec.data import load
    from movierec.serving.config import load_serve_config

    t_start = time.perf_counter()
    if repeats < 1:
        raise ConfigError(f"--repeat must be >= 1, got {repeats}")
    exp0 = experiment_of(load_serve_config(config))
    world = split_future(load(dataset))
    lists = rankings(fit_models(exp0, world.train, seed, params), world, k)
    rng = np.random.default_rng(seed)
    tally: dict[str, list[float]] = {}

    def add(key: str, x: Any) -> None:
        if x is not None:
            tally.setdefault(key, []).append(float(x))

    for r in range(repeats):
        exp = exp0.model_copy(update={"salt": f"{exp0.salt}-sim{seed}-{r}"})
        users = _pick_users(world, units, rng)
        ex, oc = replay(exp, world, lists, users, days, rng, noise, k, skew, return_p, f"s{r}-")
        rep = analyze(exp, ex, oc)
        a = exp.alpha
        if exp.mode == "interleave":
            add("interleave_detected", rep["interleave"]["pvalue"] <= a)
            add("preference_share", rep["interleave"]["share_b"])
            continue
        add("srm_flagged", rep["srm"]["flagged"])
        prim = [c for c in rep["comparisons"] if c["metric"] == exp.primary_metric]
        add("fixed_detected", any(c["pvalue_holm"] <= a for c in prim))
        add("lift", prim[0]["lift"]["estimate"])
        for s in rep["timeline"]["series"]:
            if s["metric"] == exp.primary_metric:
                add("peeking_naive_detected", any(p is not None and p <= a
                                                  for p in s["pvalue_naive"]))  # fmt: skip
                add("sequential_detected", s["sequential"]["can_stop"])
        for c in rep["cuped"]:
            if c["metric"] == exp.primary_metric:
                add("cuped_interval_shrink", c["interval_shrink"])
                add("cuped_variance_reduction", c["variance_reduction"])
                add("cuped_detected", c["diff"]["pvalue"] is not None and c["diff"]["pvalue"] <= a)
    out: dict[str, Any] = {
        "experiment": exp0.name, "mode": exp0.mode, "variants": {n: v.model for n, v in
        exp0.variants.items()}, "dataset": str(dataset), "units": units, "repeats": repeats,
        "days": days, "noise": noise, "skew": skew, "seed": seed,
    }  # fmt: skip
    for key, xs in tally.items():
        v = np.array(xs)
        if key.endswith(("_detected", "_flagged")):
            hits = int(v.sum())
            ci = stats.binomtest(hits, v.size).proportion_ci(0.95, method="exact")
            out[key] = {"rate": hits / v.size, "ci": [ci.low, ci.high], "n": int(v.size)}
        else:
            out[key] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    return out
