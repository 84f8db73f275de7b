"""Every endpoint through FastAPI's TestClient: shapes, status codes, errors, security."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_data import BEST, MODELS, build_run

from movierec.artifacts import load_bundle
from movierec.serving.app import create_app
from movierec.serving.config import ServeConfig
from movierec.serving.engine import Engine
from movierec.serving.store import Store

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("app"))


def _client(run: Path, tmp: Path, **cfg) -> TestClient:
    store = Store(f"sqlite:///{tmp / 'fb.db'}")
    engine = Engine(run, ServeConfig(**cfg), store)
    return TestClient(create_app(engine=engine), raise_server_exceptions=False)


@pytest.fixture
def client(run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("MOVIEREC_ADMIN_TOKEN", TOKEN)
    c = _client(run, tmp_path)
    yield c
    c.app.state.engine.store.close()


def ids(body: dict) -> list[int]:
    return [m["movieId"] for m in body["items"]]


def test_health_ready_models_genres(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready").json()
    assert r["status"] == "ready" and r["default"] == BEST
    assert {m["label"] for m in r["models"]} == set(MODELS)
    m = next(m for m in r["models"] if m["label"] == "ials")
    assert set(m) == {
        "label", "class", "version", "trained_on", "fingerprint", "n_users", "n_items",
        "rating_model", "fold_in",
    }  # fmt: skip
    assert m["class"] == "ImplicitALS" and m["trained_on"] == "all" and len(m["version"]) == 12
    assert client.get("/models").json()["models"] == r["models"]
    assert client.get("/genres").json() == {"genres": ["Comedy", "Drama"]}


def test_ready_is_503_while_loading(run: Path, tmp_path: Path) -> None:
    engine = Engine(run, load=False)
    c = TestClient(create_app(engine=engine))  # no lifespan: nothing loads it
    r = c.get("/ready")
    assert r.status_code == 503 and r.json()["status"] == "loading"
    assert c.get("/health").status_code == 200
    r = c.get("/users/1/recommendations")
    assert r.status_code == 503 and "not loaded yet" in r.json()["detail"]


def test_app_loads_in_the_background(run: Path, tmp_path: Path) -> None:
    cfg = ServeConfig(store=f"sqlite:///{tmp_path / 'bg.db'}")
    with TestClient(create_app(run, cfg)) as c:
        for _ in range(200):
            if c.get("/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert c.get("/ready").json()["default"] == BEST


def test_user_recommendations_equal_model_recommend(client: TestClient, run: Path) -> None:
    for label in MODELS:
        b = load_bundle(run / "models" / label)
        want, _ = b.model.recommend([4], k=7)
        r = client.get("/users/5/recommendations", params={"k": 7, "model": label})
        assert r.status_code == 200
        body = r.json()
        assert ids(body) == b.item_map.to_raw(want[0]).tolist()
        assert body["model"] == label and body["fallback"] is None and body["user"] == 5
        assert body["request_id"]


def test_filters_fallback_and_exclude(client: TestClient) -> None:
    r = client.get(
        "/users/1/recommendations",
        params={"genres": "Comedy", "year_min": 2000, "exclude": "207,217", "k": 50},
    ).json()
    assert r["items"] and all(
        m["genres"] == ["Comedy"] and m["year"] >= 2000 and m["movieId"] not in (207, 217)
        for m in r["items"]
    )
    r = client.get("/users/424242/recommendations", params={"k": 3}).json()
    assert r["fallback"] == "popularity" and len(r["items"]) == 3
    r = client.get("/users/1/recommendations", params={"genres": "Comdy"})
    assert r.status_code == 422 and "unknown genre 'Comdy'" in r.json()["detail"]
    r = client.get("/users/1/recommendations", params={"exclude": "1,x"})
    assert r.status_code == 422 and "exclude must be comma-separated" in r.json()["detail"]


def test_bad_input_is_4xx_with_one_line(client: TestClient) -> None:
    for params in ({"k": 0}, {"k": 1001}, {"k": "ten"}):
        r = client.get("/users/1/recommendations", params=params)
        assert r.status_code == 422 and r.json()["detail"].startswith("query.k:")
    r = client.get("/users/1/recommendations", params={"model": "../../etc"})
    assert r.status_code == 422 and "unknown model '../../etc'; loaded:" in r.json()["detail"]
    r = client.get("/users/-3/recommendations")
    assert r.status_code == 422
    r = client.post(
        "/users/1/ratings", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    for body in ({"movieId": 7, "rating": 4.3}, {"movieId": 7, "rating": 6}, {"movieId": 7}):
        r = client.post("/users/1/ratings", json=body)
        assert r.status_code == 422 and "\n" not in r.json()["detail"]
    r = client.post("/users/1/ratings", json={"movieId": 8, "rating": 4})
    assert r.status_code == 404 and r.json() == {"detail": "movie 8 is not in the served catalogue"}
    assert client.get("/movies/8").status_code == 404
    assert client.get("/nope").status_code == 404


def test_body_size_limit(client: TestClient) -> None:
    big = b'{"users": [' + b"1," * 40_000 + b"1]}"
    r = client.post(
        "/recommendations/batch", content=big, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and "request body over" in r.json()["detail"]

    def chunks():
        yield b'{"users": ['
        for _ in range(40_000):
            yield b"1,"
        yield b"1]}"

    r = client.post("/recommendations/batch", content=chunks())
    assert r.status_code == 413


def test_rating_then_recommendations_reflect_it(client: TestClient) -> None:
    before = ids(client.get("/users/1/recommendations", params={"k": 5}).json())
    r = client.post("/users/1/ratings", json={"movieId": before[0], "rating": 4.5})
    assert r.status_code == 201
    assert r.json() == {"user": 1, "movieId": before[0], "rating": 4.5, "stored": True}
    after = ids(client.get("/users/1/recommendations", params={"k": 5}).json())
    assert before[0] not in after
    h = client.get("/users/1/history").json()["items"][0]
    assert h["movieId"] == before[0] and h["source"] == "feedback" and h["rating"] == 4.5


def test_idempotency_keys(client: TestClient) -> None:
    store = client.app.state.engine.store
    n = store.count("ratings")
    h = {"Idempotency-Key": "abc-1"}
    for _ in range(3):
        assert (
            client.post("/users/9/ratings", json={"movieId": 7, "rating": 3}, headers=h).status_code
            == 201
        )
    assert store.count("ratings") == n + 1
    r = client.post("/users/9/ratings", json={"movieId": 7, "rating": 4}, headers=h)
    assert r.status_code == 409 and "already used" in r.json()["detail"]
    s1 = client.post("/sessions", headers={"Idempotency-Key": "s-1"}).json()
    assert client.post("/sessions", headers={"Idempotency-Key": "s-1"}).json() == s1


def test_predictions(client: TestClient) -> None:
    r = client.get("/users/1/predictions/7", params={"model": "svd"}).json()
    assert set(r) == {"user", "movieId", "model", "prediction", "fallback"}
    assert 1 <= r["prediction"] <= 5 and r["fallback"] is False
    r = client.get("/users/1/predictions/7", params={"model": "ials"})
    assert r.status_code == 422 and "predicts no ratings" in r.json()["detail"]


def test_sessions(client: TestClient) -> None:
    r = client.post("/sessions")
    assert r.status_code == 201
    sid = r.json()["session_id"]
    rec = client.get(f"/sessions/{sid}/recommendations", params={"model": "ials"}).json()
    assert rec["fallback"] == "popularity" and rec["favorite"] is None and len(rec["items"]) == 10
    for m in (207, 217, 227):
        r = client.post(f"/sessions/{sid}/ratings", json={"movieId": m, "rating": 5})
        assert r.status_code == 201 and r.json()["session_id"] == sid
    rec = client.get(
        f"/sessions/{sid}/recommendations", params={"model": "ials", "k": 4, "favorite": 237}
    ).json()
    assert rec["fallback"] is None and rec["favorite"]["movieId"] == 237
    assert len(rec["items"]) == 4 and all(m["genres"] == ["Comedy"] for m in rec["items"])
    assert [x["movieId"] for x in client.get(f"/sessions/{sid}/ratings").json()["items"]] == [
        207, 217, 227,
    ]  # fmt: skip
    assert client.get("/sessions/nope/recommendations").status_code == 404
    assert (
        client.post("/sessions/nope/ratings", json={"movieId": 7, "rating": 5}).status_code == 404
    )
    assert client.get("/sessions/bad%20id/ratings").status_code == 422


def test_movies(client: TestClient) -> None:
    r = client.get("/movies/search", params={"q": "moive 3", "limit": 3}).json()
    assert r["query"] == "moive 3" and r["items"][0]["title"] == "Movie 3"
    assert set(r["items"][0]) == {"movieId", "title", "year", "genres", "match"}
    r = client.get("/movies/search", params={"q": "movie", "genres": "Comedy", "limit": 50})
    assert all(m["genres"] == ["Comedy"] for m in r.json()["items"])
    assert client.get("/movies/search").status_code == 422
    d = client.get("/movies/37").json()
    assert d["links"]["imdb"] == "https://www.imdb.com/title/tt0001003/"
    for kind in ("cf", "content", "hybrid"):
        s = client.get("/movies/37/similar", params={"kind": kind, "k": 4}).json()
        assert s["kind"] == kind and s["movieId"] == 37 and len(s["items"]) == 4
        assert all(m["genres"] == ["Drama"] for m in s["items"])
    r = client.get("/movies/37/similar", params={"kind": "cf", "model": "popularity"})
    assert r.status_code == 422 and "use kind=content" in r.json()["detail"]
    assert client.get("/movies/37/similar", params={"kind": "x"}).status_code == 422


def test_batch(client: TestClient) -> None:
    r = client.post("/recommendations/batch", json={"users": [1, 31, 99999], "k": 3}).json()
    assert r["model"] == BEST and [x["user"] for x in r["results"]] == [1, 31, 99999]
    assert [x["fallback"] for x in r["results"]] == [None, None, "popularity"]
    assert all(len(x["items"]) == 3 for x in r["results"])
    single = client.get("/users/31/recommendations", params={"k": 3}).json()
    assert r["results"][1]["items"] == single["items"]


def test_admin_reload(client: TestClient, run: Path, tmp_path: Path) -> None:
    assert client.post("/admin/reload").status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert client.post("/admin/reload", headers=bad).status_code == 401
    ok = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/admin/reload", headers=ok)
    assert r.status_code == 200 and r.json()["status"] == "reloaded"
    r = client.post("/admin/reload", headers=ok, json={"path": "/etc"})
    assert r.status_code == 422 and "outside the served folder" in r.json()["detail"]
    r = client.post("/admin/reload", headers=ok, json={"path": "models/ials"})
    assert r.status_code == 200 and r.json()["default"] == "ials"


def test_bad_artifact_refused_old_model_keeps_serving(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEREC_ADMIN_TOKEN", TOKEN)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    c = _client(copy, tmp_path)
    before = c.get("/ready").json()
    (copy / "models" / "ease" / "model.json").write_text("{truncated")
    r = c.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422 and "model.json is unreadable or truncated" in r.json()["detail"]
    assert c.get("/ready").json() == before
    assert c.get("/users/1/recommendations").json()["model"] == BEST


def test_admin_disabled_without_a_token(run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MOVIEREC_ADMIN_TOKEN", raising=False)
    c = _client(run, tmp_path)
    r = c.post("/admin/reload", headers={"Authorization": "Bearer x"})
    assert r.status_code == 403 and "MOVIEREC_ADMIN_TOKEN" in r.json()["detail"]


def test_api_key_for_writes(run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MY_KEY", "k1")
    c = _client(run, tmp_path, api_key_env="MY_KEY")
    body = {"movieId": 7, "rating": 4}
    assert c.post("/users/1/ratings", json=body).status_code == 401
    assert c.post("/sessions").status_code == 401
    assert c.post("/users/1/ratings", json=body, headers={"X-API-Key": "k1"}).status_code == 201
    assert c.get("/users/1/recommendations").status_code == 200  # reads stay open


def test_cors_off_by_default_on_when_configured(run: Path, tmp_path: Path) -> None:
    h = {"Origin": "http://example.org"}
    c = _client(run, tmp_path)
    assert "access-control-allow-origin" not in c.get("/health", headers=h).headers
    c = _client(run, tmp_path, cors_origins=["http://example.org"])
    assert (
        c.get("/health", headers=h).headers["access-control-allow-origin"] == "http://example.org"
    )


def test_crash_is_a_one_line_500(client: TestClient, monkeypatch, caplog) -> None:
    def boom(*a, **k):
        raise RuntimeError("secret internals")

    # raised in the ranker thread, handed to the waiting request
    monkeypatch.setattr(client.app.state.engine, "_rank_users", boom)
    r = client.get("/users/1/recommendations")
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error; the server log has the details"}
    assert "Traceback" not in r.text and "secret" not in r.text
    assert "secret internals" in caplog.text


def test_metrics(client: TestClient) -> None:
    client.get("/users/1/recommendations")
    client.get("/users/1/recommendations")
    client.get("/movies/8")
    client.post("/users/1/ratings", json={"movieId": 7, "rating": 4})
    text = client.get("/metrics").text
    assert (
        'movierec_requests_total{method="GET",route="/users/{userId}/recommendations",status="200"} 2.0'
        in text
    )
    assert 'route="/movies/{movieId}",status="404"' in text
    assert "movierec_request_seconds_bucket" in text
    assert "movierec_cache_hits_total 1.0" in text and "movierec_cache_misses_total 1.0" in text
    assert "movierec_cache_hit_ratio 0.5" in text
    assert "movierec_store_write_seconds_count 1.0" in text
    assert 'movierec_model_info{class="EASE",default="True",label="ease"' in text


def test_page_static_and_docs(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/users/{userId}/recommendations" in paths and "/admin/reload" in paths
