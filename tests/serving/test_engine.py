"""The serving engine without HTTP: parity with model.recommend, filters before the top-K,
fallbacks, fold-in of stored ratings, sessions, similar movies, cache, atomic reload."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from serving_data import BEST, COLD_RAW, MODELS, build_run, train_data

from movierec.artifacts import load_bundle
from movierec.errors import ArtifactError, ConfigError, UnknownIdError
from movierec.serving.config import CacheConfig, ServeConfig, load_serve_config
from movierec.serving.engine import Cache, Engine, Filters, NotReadyError, discover
from movierec.serving.store import Store

DRAMA_USER = 1  # raw id; the first taste group loves the Drama half (items 0..19)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def engine(run: Path, tmp_path: Path) -> Engine:
    store = Store(f"sqlite:///{tmp_path / 'fb.db'}")
    yield Engine(run, store=store)
    store.close()


def ids(res: dict) -> list[int]:
    return [m["movieId"] for m in res["items"]]


def test_discover_artifact_folder_and_compare_run(run: Path, tmp_path: Path) -> None:
    found, best = discover(run)
    assert set(found) == set(MODELS) and best == BEST
    found, best = discover(run / "models")  # the parent's results.json still names the best
    assert set(found) == set(MODELS) and best == BEST
    found, best = discover(run / "models" / "ials")
    assert list(found) == ["ials"] and best is None
    with pytest.raises(ArtifactError, match="does not exist"):
        discover(run / "nope")
    with pytest.raises(ArtifactError, match="holds no movierec artifact"):
        discover(tmp_path)


def test_default_is_the_runs_best_and_config_can_choose(run: Path, engine: Engine) -> None:
    assert engine.models()["default"] == BEST
    info = {m["label"]: m for m in engine.models()["models"]}
    assert info["svd"]["rating_model"] and not info["ials"]["rating_model"]
    assert info["ials"]["fold_in"] and info["ials"]["trained_on"] == "all"
    assert info["ials"]["fingerprint"] == train_data().fingerprint()
    e2 = Engine(run, ServeConfig(default="ials", models=["ials", "popularity"]))
    assert e2.models()["default"] == "ials" and len(e2.models()["models"]) == 2
    with pytest.raises(ConfigError, match=r"models \['nope'\] are not in"):
        Engine(run, ServeConfig(models=["nope"]))


@pytest.mark.parametrize("label", list(MODELS))
def test_parity_with_model_recommend(run: Path, engine: Engine, label: str) -> None:
    b = load_bundle(run / "models" / label)
    for dense in (0, 7, 31, 58, 59):  # 59 is the cold user: the fallback on both sides
        raw = int(b.user_map.raw[dense])
        want, _ = b.model.recommend([dense], k=10)
        got = engine.recommend_user(raw, k=10, model=label)
        assert ids(got) == b.item_map.to_raw(want[0][want[0] >= 0]).tolist()
        assert got["model"] == label
        known = bool(b.model.known_users([dense])[0])
        assert got["fallback"] == (None if known else "popularity")


def test_unknown_users_get_the_flagged_fallback(engine: Engine) -> None:
    for raw in (COLD_RAW, 99_999):
        res = engine.recommend_user(raw, k=5, model="ials")
        assert res["fallback"] == "popularity" and len(res["items"]) == 5
        assert all(m["because"] == [] for m in res["items"])
    res = engine.recommend_user(DRAMA_USER, k=5, model="ials")
    assert res["fallback"] is None and res["request_id"]


def test_seen_excluded_and_movie_objects(engine: Engine) -> None:
    b = engine.state.get("ials").catalog
    seen = set(b.raw[b.user_history(b.user_index(DRAMA_USER))[0]].tolist())
    res = engine.recommend_user(DRAMA_USER, k=40, model="ials")
    assert not seen & set(ids(res)) and len(res["items"]) == 40 - len(seen)
    first = res["items"][0]
    assert set(first) == {"movieId", "title", "year", "genres", "score", "rank", "because"}
    assert [m["rank"] for m in res["items"]] == list(range(1, len(res["items"]) + 1))
    scores = [m["score"] for m in res["items"]]
    assert scores == sorted(scores, reverse=True)
    # "because": movies she rated highly
    liked = {int(b.raw[i]) for i, r in zip(*b.user_history(0), strict=True) if r >= 4}
    becs = [x["movieId"] for m in res["items"][:5] for x in m["because"]]
    assert becs and set(becs) <= liked


def test_filters_apply_before_the_top_k(engine: Engine) -> None:
    cat = engine.state.get("ials").catalog
    seen = set(cat.user_history(cat.user_index(DRAMA_USER))[0].tolist())
    comedy = [j for j in range(cat.n_items) if "Comedy" in cat.genres[j] and j not in seen]
    # she loves Drama: without the mask first, a top-10 would hold hardly any comedy
    res = engine.recommend_user(DRAMA_USER, k=10, model="ials", filters=Filters(("Comedy",)))
    assert len(res["items"]) == min(10, len(comedy))
    assert all(m["genres"] == ["Comedy"] for m in res["items"])
    f = Filters(year_min=1995, year_max=1999)
    got = engine.recommend_user(DRAMA_USER, k=10, model="ials", filters=f)["items"]
    assert got and all(1995 <= m["year"] <= 1999 for m in got)
    top = ids(engine.recommend_user(DRAMA_USER, k=3, model="ials"))
    res = engine.recommend_user(DRAMA_USER, k=3, model="ials", filters=Filters(exclude=(top[0],)))
    assert top[0] not in ids(res) and ids(res)[:2] == top[1:]
    many = int(np.sort(cat.counts)[-5])
    res = engine.recommend_user(99_999, k=10, filters=Filters(min_ratings=many))
    assert res["items"] and all(
        cat.counts[cat.movie_index(m["movieId"])] >= many for m in res["items"]
    )
    with pytest.raises(ConfigError, match="unknown genre 'Comdy'; choose from Comedy, Drama"):
        engine.recommend_user(DRAMA_USER, filters=Filters(("Comdy",)))


@pytest.mark.parametrize("label", ["ials", "ease", "svd", "itemknn"])
def test_posted_ratings_reach_the_next_recommendations(engine: Engine, label: str) -> None:
    before = engine.recommend_user(DRAMA_USER, k=10, model=label)
    assert engine.recommend_user(DRAMA_USER, k=10, model=label)["items"] == before["items"]
    assert engine.cache.hits == 1
    sv = engine.state.get(label)
    cat = sv.catalog
    hist_i, hist_r = cat.user_history(0)
    comedies = [j for j in range(20, 40) if j not in set(hist_i.tolist())][:4]
    for j in comedies:
        engine.rate_user(DRAMA_USER, int(cat.raw[j]), 5.0)
    after = engine.recommend_user(DRAMA_USER, k=10, model=label)
    assert engine.cache.hits == 1  # her entries were invalidated: recomputed
    # her vector folded in from training history plus the stored ratings
    items = np.concatenate([hist_i, comedies])
    ratings = np.concatenate([hist_r, np.full(4, 5.0, np.float32)])
    order = np.argsort(items)
    want, _ = sv.model.recommend_new(items[order], ratings[order], k=10)
    assert ids(after) == cat.raw[want[want >= 0]].tolist()
    assert not set(cat.raw[comedies].tolist()) & set(ids(after))  # newly rated: excluded


def test_loved_comedies_move_comedies_up(engine: Engine) -> None:
    def first_comedy() -> int:
        got = engine.recommend_user(DRAMA_USER, k=40, model="ease")["items"]
        return next(n for n, m in enumerate(got) if "Comedy" in m["genres"])

    before = first_comedy()
    cat = engine.state.get("ease").catalog
    seen = set(cat.user_history(0)[0].tolist())
    for j in [j for j in range(20, 40) if j not in seen][:-3]:
        engine.rate_user(DRAMA_USER, int(cat.raw[j]), 5.0)
    assert first_comedy() < before


def test_unknown_user_with_stored_ratings_is_folded_in(engine: Engine) -> None:
    new = 123_456
    engine.rate_user(new, 7, 5.0)
    engine.rate_user(new, 17, 4.5)
    res = engine.recommend_user(new, k=5, model="ials")
    assert res["fallback"] is None and not {7, 17} & set(ids(res))
    assert sum("Drama" in m["genres"] for m in res["items"]) >= 4


def test_ratings_stored_before_the_start_are_read(run: Path, tmp_path: Path) -> None:
    """The engine skips the store read only for users it knows have no stored rating."""
    url = f"sqlite:///{tmp_path / 'before.db'}"
    with Store(url) as s:
        s.add_rating(7, 5.0, user=654_321)
        s.add_rating(17, 4.5, user=654_321)
    store = Store(url)
    try:
        e = Engine(run, store=store)
        res = e.recommend_user(654_321, k=5, model="ials")
        assert res["fallback"] is None and not {7, 17} & set(ids(res))
        assert e.recommend_user(111_111, k=5, model="ials")["fallback"] == "popularity"
        e.rate_user(111_111, 7, 5.0)  # a new rater is read from then on
        assert e.recommend_user(111_111, k=5, model="ials")["fallback"] is None
    finally:
        store.close()


def test_models_without_fold_in_still_exclude_new_ratings(run: Path, engine: Engine) -> None:
    sv = engine.state.get("ials")
    sv.fold_in = False  # as for a model without fold_in
    try:
        top = ids(engine.recommend_user(DRAMA_USER, k=5, model="ials"))
        engine.rate_user(DRAMA_USER, top[0], 4.0)
        after = ids(engine.recommend_user(DRAMA_USER, k=5, model="ials"))
        assert top[0] not in after and after[:4] == top[1:]
    finally:
        sv.fold_in = True


def test_ratings_validated(engine: Engine) -> None:
    with pytest.raises(ConfigError, match="steps of 0.5"):
        engine.rate_user(1, 7, 4.3)
    with pytest.raises(ConfigError, match="steps of 0.5"):
        engine.rate_user(1, 7, 5.5)
    with pytest.raises(UnknownIdError, match="movie 8 is not in the served catalogue"):
        engine.rate_user(1, 8, 4.0)
    for k in (0, 1001):
        with pytest.raises(ConfigError, match="k must be between 1 and 1000"):
            engine.recommend_user(1, k=k)
    with pytest.raises(ConfigError, match="unknown model '../x'; loaded:"):
        engine.recommend_user(1, model="../x")


def test_history_feedback_first(engine: Engine) -> None:
    cat = engine.state.get(None).catalog
    rated = cat.user_history(0)[0]
    new = int(cat.raw[next(j for j in range(40) if j not in set(rated.tolist()))])
    again = int(cat.raw[rated[0]])  # re-rated: the stored rating replaces the training one
    engine.rate_user(DRAMA_USER, again, 1.0)
    engine.rate_user(DRAMA_USER, new, 2.0)
    h = engine.history(DRAMA_USER, limit=1000)["items"]
    assert [(x["movieId"], x["rating"], x["source"]) for x in h[:2]] == [
        (new, 2.0, "feedback"),
        (again, 1.0, "feedback"),
    ]
    assert h[0]["timestamp"] and h[2]["timestamp"] is None
    train = [x for x in h if x["source"] == "train"]
    assert len(train) == rated.size - 1 and again not in {x["movieId"] for x in train}
    assert [x["rating"] for x in train] == sorted((x["rating"] for x in train), reverse=True)
    assert engine.history(99_999)["items"] == []


def test_predictions(engine: Engine) -> None:
    b = load_bundle(engine.state.get("svd").folder)
    got = engine.predict(DRAMA_USER, 397, model="svd")
    assert got["prediction"] == pytest.approx(float(b.model.predict([0], [39])[0]))
    assert got["fallback"] is False
    assert engine.predict(99_999, 397, model="svd")["fallback"] is True
    with pytest.raises(ConfigError, match="predicts no ratings; rating models loaded: svd"):
        engine.predict(DRAMA_USER, 397, model="ials")
    with pytest.raises(UnknownIdError):
        engine.predict(DRAMA_USER, 8, model="svd")


def test_sessions_popularity_first_then_folded_in(engine: Engine) -> None:
    sid = engine.create_session()["session_id"]
    first = engine.recommend_session(sid, k=5, model="ials")
    assert first["fallback"] == "popularity" and len(first["items"]) == 5
    comedy = engine.recommend_session(sid, k=5, model="ials", filters=Filters(("Comedy",)))
    assert all(m["genres"] == ["Comedy"] for m in comedy["items"])
    for m in (207, 217, 227, 237):  # four Comedy movies, loved
        engine.rate_session(sid, m, 5.0)
    live = engine.recommend_session(sid, k=5, model="ials")
    assert live["fallback"] is None
    assert not {207, 217, 227, 237} & set(ids(live))
    assert all(m["genres"] == ["Comedy"] for m in live["items"])
    assert any(m["because"] for m in live["items"])
    got = engine.session_ratings(sid)["items"]
    assert [x["movieId"] for x in got] == [207, 217, 227, 237]
    with pytest.raises(UnknownIdError, match="unknown session 'nope'"):
        engine.recommend_session("nope")
    with pytest.raises(UnknownIdError, match="unknown session"):
        engine.rate_session("nope", 7, 4.0)


@pytest.mark.parametrize("label", ["ease", "itemknn", "svd", "popularity"])
def test_sessions_fold_in_for_each_model(engine: Engine, label: str) -> None:
    sid = engine.create_session()["session_id"]
    for m in (7, 17, 27):
        engine.rate_session(sid, m, 5.0)
    res = engine.recommend_session(sid, k=5, model=label)
    assert len(res["items"]) == 5 and not {7, 17, 27} & set(ids(res))
    if label != "popularity":
        assert res["fallback"] is None
    if label in ("ease", "itemknn"):
        assert sum("Drama" in m["genres"] for m in res["items"]) >= 4


def test_session_favorite_fuses_content(engine: Engine) -> None:
    sid = engine.create_session()["session_id"]
    cat = engine.state.get(None).catalog
    fav = 207  # a Comedy: content-similar movies are the other comedies
    plain = engine.recommend_session(sid, k=10)
    res = engine.recommend_session(sid, k=10, favorite=fav)
    assert res["favorite"]["movieId"] == fav and fav not in ids(res)
    content, _ = cat.content_model().similar_items([cat.movie_index(fav)], k=10)
    content_raw = set(cat.raw[content[0]].tolist())
    assert len(content_raw & set(ids(res))) > len(content_raw & set(ids(plain)))
    assert any({"movieId": fav, "title": "Movie 20"} in m["because"] for m in res["items"])
    with pytest.raises(UnknownIdError):
        engine.recommend_session(sid, favorite=8)


def test_similar_kinds(engine: Engine) -> None:
    cf = engine.similar(37, k=5, kind="cf", model="ease")
    assert cf["kind"] == "cf" and len(cf["items"]) == 5 and 37 not in ids(cf)
    assert all(m["genres"] == ["Drama"] for m in cf["items"])
    content = engine.similar(37, k=5, kind="content", model="popularity")
    assert all(m["genres"] == ["Drama"] for m in content["items"])
    hybrid = engine.similar(37, k=5, kind="hybrid", model="ials")
    assert len(hybrid["items"]) == 5 and 37 not in ids(hybrid)
    with pytest.raises(ConfigError, match="'popularity' has no item similarity; use kind=content"):
        engine.similar(37, kind="cf", model="popularity")
    with pytest.raises(ConfigError, match="kind must be one of"):
        engine.similar(37, kind="x")
    with pytest.raises(UnknownIdError):
        engine.similar(8)


def test_search_and_movie_details(engine: Engine) -> None:
    res = engine.search("moive 3", limit=3)
    assert res["items"][0]["title"] == "Movie 3" and 0 < res["items"][0]["match"] <= 100
    assert engine.search("Movie 3 (1993)", limit=5)["items"][0]["movieId"] == 37
    only = engine.search("movie", limit=50, filters=Filters(("Comedy",), year_min=2000))
    assert only["items"] and all(
        m["genres"] == ["Comedy"] and m["year"] >= 2000 for m in only["items"]
    )
    d = engine.movie(37)
    assert d["title"] == "Movie 3" and d["year"] == 1993
    assert d["links"] == {
        "imdb": "https://www.imdb.com/title/tt0001003/",
        "tmdb": "https://www.themoviedb.org/movie/2003",
    }
    cat = engine.state.get(None).catalog
    assert d["n_ratings"] == int(cat.counts[3]) > 0 and 1 <= d["mean_rating"] <= 5
    assert engine.genres() == {"genres": ["Comedy", "Drama"]}
    with pytest.raises(UnknownIdError):
        engine.movie(8)


def test_cache_lru_ttl_and_generations(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Cache(size=2, ttl_s=10)
    k1, k2, k3 = c.key("a", 1), c.key("b", 1), c.key("c", 1)
    c.put(k1, 1)
    c.put(k2, 2)
    assert c.get(k1) == 1
    c.put(k3, 3)  # evicts b, the least recently used
    assert c.get(k2) is None and c.get(k1) == 1 and c.get(k3) == 3
    c.invalidate("a")
    assert c.get(c.key("a", 1)) is None
    t = [1000.0]
    monkeypatch.setattr("movierec.serving.engine.time.monotonic", lambda: t[0])
    k = c.key("d")
    c.put(k, 4)
    t[0] += 11
    assert c.get(k) is None
    assert c.hits == 3 and c.misses == 3


def test_cache_can_be_off(run: Path) -> None:
    e = Engine(run, ServeConfig(cache=CacheConfig(size=0)))
    e.recommend_user(1)
    e.recommend_user(1)
    assert e.cache.hits == 0 and len(e.cache) == 0


def test_a_full_cache_adds_no_objects_for_the_collector() -> None:
    import gc

    c = Cache(size=2000, ttl_s=60)
    value = {
        "items": [
            {"movieId": i, "genres": ["Drama"], "because": [{"movieId": 1}]} for i in range(10)
        ]
    }
    gc.collect()
    before = len(gc.get_objects())
    for i in range(2000):
        c.put(c.key(("user", i), "ials", "v1", 10), copy.deepcopy(value))
    gc.collect()
    # a dict value would keep ~40 tracked objects per entry alive; JSON text keeps none
    assert len(gc.get_objects()) - before < 2000 * 3
    assert c.get(c.key(("user", 7), "ials", "v1", 10)) == value


def test_loading_freezes_the_models_objects(run: Path) -> None:
    import gc

    gc.unfreeze()
    Engine(run)
    assert gc.get_freeze_count() > 10_000  # titles, genres, id maps, the models' params
    gc.unfreeze()


def test_every_model_ranks_once_before_it_is_served(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool, bool]] = []
    real = Engine._rank_user

    def spy(self, sv, user, stored, k, f):
        seen.append((sv.label, bool(stored), self._state is None))
        return real(self, sv, user, stored, k, f)

    monkeypatch.setattr(Engine, "_rank_user", spy)
    e = Engine(run)
    labels = {m["label"] for m in e.models()["models"]}
    assert {label for label, _, before in seen if before} == labels  # all, before the swap
    folded = {m["label"] for m in e.models()["models"] if m["fold_in"]}
    assert {label for label, stored, _ in seen if stored} == folded


def test_ranker_batches_equal_lists_ranked_one_by_one(engine: Engine) -> None:
    import asyncio
    import threading

    from movierec.serving.engine import UserJob

    sv = engine.state.get("ials")
    users = [*range(1, 41), COLD_RAW] * 3  # known users and a cold one (popularity)
    filters = [Filters(), Filters(("Comedy",)), Filters(year_min=1995)]
    cases = [(u, f, k) for u in users for f, k in [(filters[u % 3], 3 + u % 7)]]
    want = {c: engine._rank_user(sv, c[0], [], c[2], c[1]) for c in set(cases)}
    got: dict = {}
    gate = threading.Barrier(8)

    def worker(part: list) -> None:
        gate.wait()
        for c in part:
            got.setdefault(c, []).append(engine.ranker.run(UserJob(sv, c[0], [], c[2], c[1])))

    threads = [threading.Thread(target=worker, args=(cases[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    async def from_the_loop() -> list:
        jobs = [UserJob(sv, u, [], k, f) for u, f, k in cases]
        return await asyncio.gather(*(engine.ranker.arun(j) for j in jobs))

    for c, r in zip(cases, asyncio.run(from_the_loop()), strict=True):
        got[c].append(r)
    assert engine.ranker.ranked >= 2 * len(cases)
    assert engine.ranker.batches < engine.ranker.ranked  # requests that waited shared a batch
    for c, rs in got.items():
        assert len(rs) == 2 * cases.count(c)
        for r in rs:
            assert ids(r) == ids(want[c]) and r["fallback"] == want[c]["fallback"]
            np.testing.assert_allclose(
                [m["score"] for m in r["items"]], [m["score"] for m in want[c]["items"]],
                rtol=1e-5, atol=1e-6,
            )  # fmt: skip
    # a bad job in a batch fails alone; the others in it are answered
    good, bad = UserJob(sv, 1, [], 5, Filters()), UserJob(sv, 2, [], 5, Filters(("Nope",)))
    engine._rank_batch([good, bad])
    assert ids(good.result) == ids(engine._rank_user(sv, 1, [], 5, Filters()))
    assert isinstance(bad.error, ConfigError) and bad.result is None
    with pytest.raises(ConfigError, match="unknown genre 'Nope'"):
        engine.ranker.run(UserJob(sv, 2, [], 5, Filters(("Nope",))))
    engine.ranker.close()
    assert engine.ranker.run(UserJob(sv, 3, [], 4, Filters()))["items"]  # starts again


def test_explain_names_the_most_similar_liked_movies(run: Path) -> None:
    m = load_bundle(run / "models" / "ials").model
    items, ratings = np.arange(0, 20), np.r_[np.full(10, 5.0), np.full(10, 1.0)]
    recs = np.array([25, 30, 3, 39])
    liked = items[ratings >= max(ratings.mean(), 3.5)]
    got = m.explain(items, ratings, recs, n=2)
    v = m.item_vectors().astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for sims, why in zip(v[recs] @ v[liked].T, got, strict=True):  # cosine, in float64
        want = [int(liked[j]) for j in np.argsort(-sims, kind="stable")[:2] if sims[j] > 0]
        assert why == want
    # a batch explains each user as alone
    users = [(items, ratings, recs), (items[5:], ratings[5:], recs[::-1]), ([], [], recs)]
    assert m.explain_many(users, n=3) == [m.explain(*u, n=3) for u in users]
    assert m.explain_many(users, n=3)[2] == [[], [], [], []]


def test_reload_swaps_atomically_and_refuses_bad_artifacts(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    e = Engine(copy)
    old = e.state
    e.recommend_user(1)
    assert len(e.cache) == 1
    arrays = copy / "models" / "ials" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="arrays.npz does not match its checksum"):
        e.reload()
    assert e.state is old  # still serving the old models
    assert e.recommend_user(1, model="ials")["items"]
    shutil.rmtree(copy / "models" / "ials")
    st = e.reload()
    assert e.state is st is not old and "ials" not in st.models and len(e.cache) == 0
    assert e.reload("models/ease").default == "ease"
    with pytest.raises(ConfigError, match="outside the served folder"):
        e.reload("../../")
    with pytest.raises(ConfigError, match="outside the served folder"):
        e.reload(str(run))


def test_not_ready_until_loaded(run: Path) -> None:
    e = Engine(run, load=False)
    assert not e.ready
    with pytest.raises(NotReadyError, match="not loaded yet"):
        e.recommend_user(1)
    e.load()
    assert e.ready and e.recommend_user(1)["items"]


def test_serve_config(tmp_path: Path) -> None:
    p = tmp_path / "serve.yaml"
    p.write_text("default: ials\ncache: {size: 5, ttl_s: 2}\napi_key_env: MY_KEY\n")
    cfg = load_serve_config(p, store="sqlite:///x.db")
    assert cfg.default == "ials" and cfg.cache.size == 5 and cfg.store == "sqlite:///x.db"
    p.write_text("admin_token: hunter2\n")
    with pytest.raises(ConfigError, match="admin_token: Extra inputs are not permitted"):
        load_serve_config(p)
    p.write_text("admin_token_env: 'abc-123 secret'\n")
    with pytest.raises(ConfigError, match="not an environment variable name"):
        load_serve_config(p)
    p.write_text(json.dumps({"cache": {"size": -1}}))
    with pytest.raises(ConfigError, match="cache.size"):
        load_serve_config(p)
