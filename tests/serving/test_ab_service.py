"""Experiments in the service: assignment in responses, exposures, events, the report."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving_data import MODELS, build_run, train_data, user_raw
from typer.testing import CliRunner

from movierec.cli import app as cli
from movierec.errors import ConfigError
from movierec.evaluation import online as O
from movierec.experiment.abreport import analyze
from movierec.serving.abtest import INTERLEAVED, Experiment, team_draft
from movierec.serving.app import create_app
from movierec.serving.config import ServeConfig
from movierec.serving.engine import Engine
from movierec.serving.store import ExposureWriter, Store

AB = {"name": "pop-vs-ease", "variants": {"control": "popularity", "treatment": "ease"},
      "guardrails": ["mean_rating"]}  # fmt: skip
IL = {"name": "il", "unit": "session", "mode": "interleave",
      "variants": {"ials": "ials", "ease": "ease"}}  # fmt: skip
WEIGHTED = {"models": {"ease": {"l2": 10.0, "threshold": 4.0}, "popularity": {}}}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("ab"), {**MODELS, "weighted": WEIGHTED})


def _engine(run: Path, tmp: Path, *experiments: dict, db: str = "fb.db") -> Engine:
    store = Store(f"sqlite:///{tmp / db}")
    return Engine(run, ServeConfig(experiments=list(experiments)), store)


@pytest.fixture
def engine(run: Path, tmp_path: Path) -> Engine:
    e = _engine(run, tmp_path, AB, IL)
    yield e
    e.close()
    e.store.close()


def users(n: int = 30) -> list[int]:
    train = train_data()
    return [user_raw(train, u) for u in range(n)]


def ids(res: dict) -> list[int]:
    return [m["movieId"] for m in res["items"]]


def test_assignment_in_responses_is_stable_across_requests_and_restarts(
    engine: Engine, run: Path, tmp_path: Path
) -> None:
    exp = engine.experiments["pop-vs-ease"]
    first = {}
    for u in users():
        r = engine.recommend_user(u, k=5)
        assert r["experiment"] == "pop-vs-ease" and r["variant"] == exp.assign(u)
        assert r["model"] == exp.variants[r["variant"]].model and len(r["request_id"]) == 32
        # the variant's model serves exactly what that model serves outside the experiment
        assert ids(r) == ids(engine.recommend_user(u, k=5, model=r["model"]))
        first[u] = r["variant"]
    assert set(first.values()) == {"control", "treatment"}
    assert {u: engine.recommend_user(u, k=5)["variant"] for u in first} == first
    again = _engine(run, tmp_path, AB, db="other.db")  # a restart: new process state, new store
    try:
        assert {u: again.recommend_user(u, k=5)["variant"] for u in first} == first
    finally:
        again.close()
        again.store.close()


def test_cuped_covariate_counts_ratings_stored_before_the_start(run: Path, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    e = _engine(run, tmp_path, {**AB, "start": "2026-01-01T00:00:00Z"})
    try:
        u = users()[3]
        b = e.state.get("ease").catalog
        trained = b.user_history(b.user_index(u))[0].size
        unseen = [
            int(m) for m in b.raw if int(m) not in set(b.raw[b.user_history(b.user_index(u))[0]])
        ]
        e.clock = lambda: start - 86_400  # two ratings the day before the start
        e.rate_user(u, unseen[0], 4.0)
        e.rate_user(u, unseen[1], 2.0)
        e.clock = lambda: start + 3_600  # one during the experiment: not a covariate
        e.rate_user(u, unseen[2], 5.0)
        rid = e.recommend_user(u, k=5)["request_id"]
        assert e.flush()
        assert e.store.exposure(rid)["pre"] == trained + 2
    finally:
        e.close()
        e.store.close()


def test_model_param_bypasses_and_batch_does_not_log(engine: Engine) -> None:
    r = engine.recommend_user(users()[0], k=5, model="ials")
    assert r["experiment"] is None and r["variant"] is None and r["model"] == "ials"
    engine.batch(users(5), k=3)
    engine.flush()
    assert engine.store.count("exposures") == 1
    assert engine.store.exposure(r["request_id"])["experiment"] is None


def test_stopped_experiment_serves_its_control_outside_the_analysis(
    run: Path, tmp_path: Path
) -> None:
    e = _engine(run, tmp_path, {**AB, "status": "stopped"})
    try:
        for u in users(10):
            r = e.recommend_user(u, k=4)
            assert r["model"] == "popularity" and r["experiment"] is None
        e.flush()
        assert e.store.exposure_counts() == {}
    finally:
        e.close()
        e.store.close()


def test_variant_params_k_and_hybrid_weights(run: Path, tmp_path: Path) -> None:
    exp = {"name": "w", "variants": {
        "a": {"model": "weighted", "params": {"weights": [1.0, 0.0], "k": 3}},
        "b": {"model": "weighted", "params": {"weights": [0.0, 1.0]}}}}  # fmt: skip
    e = _engine(run, tmp_path, exp)
    try:
        seen = set()
        for u in users():
            r = e.recommend_user(u, k=6)
            seen.add(r["variant"])
            label = "ease" if r["variant"] == "a" else "popularity"
            # weight 1 on one sub-model: that model's own order
            assert ids(r) == ids(e.recommend_user(u, k=6, model=label))[: len(r["items"])]
            assert len(r["items"]) == (3 if r["variant"] == "a" else 6)
        assert seen == {"a", "b"}
        with pytest.raises(ConfigError, match="sets weights"):
            _engine(run, tmp_path, {**exp, "variants": {"a": {"model": "ease", "params":
                    {"weights": [1.0]}}, "b": "ials"}}, db="x.db")  # fmt: skip
    finally:
        e.close()
        e.store.close()


def test_config_errors(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="serves model 'nope', which is not loaded"):
        _engine(run, tmp_path, {"name": "x", "variants": {"a": "ease", "b": "nope"}})
    with pytest.raises(ConfigError, match="at most one experiment per unit"):
        ServeConfig(experiments=[AB, {**AB, "name": "other"}])
    with pytest.raises(ConfigError, match="unknown variant params"):
        ServeConfig(experiments=[{"name": "x", "variants": {"a": {"model": "ease",
                    "params": {"depth": 3}}, "b": "ials"}}])  # fmt: skip


def test_interleave_merges_by_team_draft_and_logs_the_teams(engine: Engine) -> None:
    exp = engine.experiments["il"]
    sid = engine.create_session()["session_id"]
    r = engine.recommend_session(sid, k=8)
    assert r["experiment"] == "il" and r["variant"] == INTERLEAVED and r["model"] == "ials+ease"
    a = ids(engine.recommend_session(sid, k=8, model="ials"))
    b = ids(engine.recommend_session(sid, k=8, model="ease"))
    want = team_draft(a, b, 8, f"{exp.salt}:{r['request_id']}", ("ials", "ease"))
    assert ids(r) == want.items and [m["rank"] for m in r["items"]] == list(range(1, 9))
    engine.flush()
    ex = engine.store.exposure(r["request_id"])
    assert ex["teams"] == want.teams and ex["unit"] == f"session:{sid}"
    assert ex["items"] == [[m, i + 1] for i, m in enumerate(want.items)]


def test_exposures_equal_lists_served_under_concurrent_requests(engine: Engine) -> None:
    sids = [engine.create_session()["session_id"] for _ in range(4)]
    served: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for j in range(25):
            if j % 5 == 0:
                r = engine.recommend_session(sids[(i + j) % 4], k=5)
            else:
                r = engine.recommend_user(users()[(i * 7 + j) % 30], k=5)
            with lock:
                served.append(r["request_id"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert engine.close()  # shutdown drains the queue
    assert len(set(served)) == 200 and engine.store.count("exposures") == 200
    counts = engine.store.exposure_counts()
    assert counts["pop-vs-ease"]["exposures"] == 160 and counts["il"]["exposures"] == 40


def test_writer_keeps_rows_while_the_store_fails_and_drains_on_close(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    calls = {"n": 0}
    real = store.add_exposures

    def flaky(rows):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError("database is down")
        real(rows)

    store.add_exposures = flaky  # type: ignore[method-assign]
    w = ExposureWriter(store, batch=7, interval_s=0.01)
    for i in range(50):
        w.submit({"request_id": f"r{i}", "unit": "user:1", "model_version": "v",
                  "items": [[1, 1]], "ts": 1})  # fmt: skip
    assert w.close(timeout=30) and store.count("exposures") == 50 and w.failures == 2
    store.close()


@pytest.fixture
def client(engine: Engine) -> TestClient:
    return TestClient(create_app(engine=engine), raise_server_exceptions=False)


def test_events(client: TestClient, engine: Engine) -> None:
    engine.writer.interval_s = 60.0  # the exposure is still queued when the event arrives
    r = client.get(f"/users/{users()[0]}/recommendations", params={"k": 5}).json()
    assert {"experiment", "variant", "request_id"} <= set(r)
    rid, movie = r["request_id"], r["items"][0]["movieId"]
    ev = {"request_id": rid, "movieId": movie, "type": "click"}
    got = client.post("/events", json=ev)
    assert got.status_code == 201 and got.json()["stored"] is True
    assert client.post("/events", json={**ev, "type": "rating", "value": 4.5}).status_code == 201
    # idempotency: a replay stores nothing, another body under the key is a conflict
    h = {"Idempotency-Key": "k1"}
    assert client.post("/events", json=ev, headers=h).json()["created"] is True
    assert client.post("/events", json=ev, headers=h).json()["created"] is False
    assert client.post("/events", json={**ev, "type": "watch"}, headers=h).status_code == 409
    # an empty key is no key: both events are stored
    for _ in range(2):
        assert client.post("/events", json=ev, headers={"Idempotency-Key": ""}).status_code == 201
    assert engine.store.count("outcomes") == 5
    bad = client.post("/events", json={**ev, "request_id": "f" * 32})
    assert bad.status_code == 404 and "unknown request_id" in bad.json()["detail"]
    other = client.post("/events", json={**ev, "movieId": 999_999})
    assert other.status_code == 422 and "was not in the list" in other.json()["detail"]
    assert client.post("/events", json={**ev, "type": "like"}).status_code == 422
    assert client.post("/events", json={**ev, "type": "rating"}).status_code == 422
    assert engine.store.count("outcomes") == 5


def test_empty_idempotency_keys_are_none_in_the_store(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 's.db'}") as s:
        assert s.create_session("")[0] != s.create_session("")[0]
        s.add_rating(1, 4.0, user=1, idempotency_key="")
        s.add_rating(2, 4.0, user=1, idempotency_key="  ")
        assert s.count("sessions") == 2 and s.count("ratings") == 2


def test_experiment_routes(client: TestClient, engine: Engine) -> None:
    for u in users():
        client.get(f"/users/{u}/recommendations", params={"k": 5})
    listed = {e["name"]: e for e in client.get("/experiments").json()["experiments"]}
    assert listed["pop-vs-ease"]["units"] == 30 and listed["pop-vs-ease"]["exposures"] == 30
    assert listed["il"]["mode"] == "interleave"
    rep = client.get("/experiments/pop-vs-ease/report").json()
    assert rep["units"] == 30 and rep["srm"]["counts"] and rep["verdict"]["text"]
    assert client.get("/experiments/il/report").json()["interleave"]["wins_a"] == 0
    r = client.get("/experiments/nope/report")
    assert r.status_code == 404 and "unknown experiment 'nope'" in r.json()["detail"]


# -- the report on a hand-built store ----------------------------------------------------------
def _hand_built(store: Store, exp: Experiment, seed: int = 0) -> dict[str, np.ndarray]:
    """Two arms, 3 lists of 4 movies per unit over 3 days; returns the per-unit values."""
    rng = np.random.default_rng(seed)
    rows, want = [], {m: [] for m in ("ctr", "conversion", "clicks", "mean_rating", "pre")}
    arm, outcomes = [], []
    for u in range(60):
        v = "treatment" if u % 5 < 2 else "control"  # 24 / 36: no SRM flag at p < 0.001
        hits, clicks, ratings = 0, 0, []
        for j in range(3):
            rid = f"u{u}-{j}"
            items = [[100 + (u + j + p) % 9, p + 1] for p in range(4)]
            rows.append({"request_id": rid, "unit": f"user:{u}", "experiment": exp.name,
                         "variant": v, "model_version": "x", "items": items,
                         "ts": 1000 + j * 86_400 + u, "pre": float(u % 7)})  # fmt: skip
            clicked = [m for m, _ in items if rng.random() < (0.35 if v == "treatment" else 0.2)]
            hits += bool(clicked)
            clicks += len(clicked)
            for m in clicked:
                outcomes.append((rid, m, "click", None, 1000 + j * 86_400 + u + 5))
                val = float(rng.integers(1, 11)) / 2
                outcomes.append((rid, m, "rating", val, 1000 + j * 86_400 + u + 6))
                ratings.append(val)
        arm.append(v)
        want["ctr"].append(hits / 3)
        want["conversion"].append(float(clicks > 0))
        want["clicks"].append(clicks)
        want["mean_rating"].append(np.mean(ratings) if ratings else np.nan)
        want["pre"].append(float(u % 7))
    store.add_exposures(rows)
    for o in outcomes:
        store.add_outcome(*o[:4], ts=o[4])
    out = {m: np.array(x, dtype=float) for m, x in want.items()}
    out["arm"] = np.array(arm)
    return out


def test_report_numbers_equal_online_on_the_same_arrays(tmp_path: Path) -> None:
    exp = Experiment.model_validate({**AB, "weights": {"control": 60, "treatment": 40}})
    with Store(f"sqlite:///{tmp_path / 'h.db'}") as store:
        want = _hand_built(store, exp)
        rep = analyze(exp, *store.experiment_rows(exp.name))
    a, b = want["arm"] == "control", want["arm"] == "treatment"
    assert rep["units"] == 60 and rep["exposures"] == 180
    srm = O.srm_check([a.sum(), b.sum()], [0.6, 0.4])
    assert rep["srm"]["pvalue"] == pytest.approx(srm.pvalue, abs=1e-12)
    comp = {c["metric"]: c for c in rep["comparisons"]}
    for m in ("ctr", "clicks", "mean_rating"):
        ya, yb = want[m][a], want[m][b]
        ya, yb = ya[np.isfinite(ya)], yb[np.isfinite(yb)]
        w = O.welch_ttest(ya, yb)
        lift = O.relative_lift(ya, yb)
        assert comp[m]["diff"]["estimate"] == pytest.approx(w.estimate, abs=1e-12)
        assert comp[m]["diff"]["pvalue"] == pytest.approx(w.pvalue, abs=1e-12)
        assert comp[m]["diff"]["ci_low"] == pytest.approx(w.ci_low, abs=1e-12)
        assert comp[m]["lift"]["ci_high"] == pytest.approx(lift.ci_high, abs=1e-12)
    ca, cb = want["conversion"][a], want["conversion"][b]
    z = O.proportions_ztest(ca.sum(), ca.size, cb.sum(), cb.size)
    assert comp["conversion"]["diff"]["pvalue"] == pytest.approx(z.pvalue, abs=1e-12)
    chi = O.chi2_rates([ca.sum(), cb.sum()], [ca.size, cb.size])
    assert comp["conversion"]["chi2"]["pvalue"] == pytest.approx(chi.pvalue, abs=1e-12)
    # Holm over the family: ctr (primary) and mean_rating (guardrail)
    holm = O.holm([comp["ctr"]["diff"]["pvalue"], comp["mean_rating"]["diff"]["pvalue"]])
    assert [comp["ctr"]["pvalue_holm"], comp["mean_rating"]["pvalue_holm"]] == pytest.approx(holm)
    assert "pvalue_holm" not in comp["clicks"]
    groups = b.astype(int)
    cu = O.cuped(want["ctr"], want["pre"], groups=groups)
    adj = O.welch_ttest(cu.adjusted[a], cu.adjusted[b])
    got = next(c for c in rep["cuped"] if c["metric"] == "ctr")
    assert got["variance_reduction"] == pytest.approx(cu.variance_reduction, abs=1e-12)
    assert got["diff"]["ci_high"] == pytest.approx(adj.ci_high, abs=1e-12)
    mde = O.mde_means(a.sum(), np.sqrt(((a.sum() - 1) * want["ctr"][a].var(ddof=1)
                      + (b.sum() - 1) * want["ctr"][b].var(ddof=1)) / 58), ratio=b.sum() / a.sum())  # fmt: skip
    assert rep["power"]["treatment"]["mde"] == pytest.approx(mde, rel=1e-9)
    # daily looks: 3 days of data; the last look is all of it, the sequential p a running min
    s = next(x for x in rep["timeline"]["series"] if x["metric"] == "ctr")
    assert len(rep["timeline"]["ts"]) == 3
    assert s["pvalue_naive"][-1] == pytest.approx(comp["ctr"]["diff"]["pvalue"], abs=1e-12)
    assert s["sequential"]["pvalues"] == sorted(s["sequential"]["pvalues"], reverse=True)
    assert rep["verdict"]["can_stop"] == s["sequential"]["can_stop"]


def test_ab_report_cli(tmp_path: Path) -> None:
    exp = Experiment.model_validate(AB)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with Store(url) as store:
        _hand_built(store, exp)
        store.save_experiments([exp.definition()])
    runner = CliRunner()
    html = tmp_path / "r.html"
    res = runner.invoke(cli, ["ab", "report", "pop-vs-ease", "--db", url, "--html", str(html)])
    assert res.exit_code == 0, res.output
    assert "sample ratio" in res.output and "stopping now is valid" in res.output
    page = html.read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "Verdict" in page
    res = runner.invoke(cli, ["ab", "report", "pop-vs-ease", "--db", url, "--json"])
    assert res.exit_code == 0 and '"srm"' in res.output
    res = runner.invoke(cli, ["ab", "report", "nope", "--db", url])
    assert res.exit_code != 0 and "unknown experiment 'nope'" in str(res.exception)
