"""The feedback store on SQLite and on a real PostgreSQL 15, plus export and retraining."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from serving.pg import postgres  # noqa: F401  (the session-scoped cluster fixture)
from typer.testing import CliRunner
from workflow_data import write_checkerboard, write_config

from movierec.artifacts import load_bundle
from movierec.cli import app
from movierec.data import load
from movierec.errors import ConfigError, ConflictError, DataError, StoreError, UnknownIdError
from movierec.experiment import commands as C
from movierec.serving.store import TABLES, Base, RatingRow, Store, export, merge_feedback


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedback.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(url: str):
    s = Store(url)
    yield s
    s.close()


def _exposure(rid: str, **kw) -> dict:
    row = {
        "request_id": rid,
        "unit": "user:1",
        "experiment": "exp1",
        "variant": "B",
        "model_version": "ials@abc",
        "items": [[50, 1], [172, 2]],
        "ts": 100,
    }
    return {**row, **kw}


def test_round_trip_of_every_method(store: Store) -> None:
    assert [store.count(t) for t in TABLES] == [0, 0, 0, 0]
    a, created = store.add_rating(50, 4.5, user=7, ts=100)
    assert created and a > 0
    store.add_rating(172, 3.0, user=7, ts=90, source="web")
    store.add_rating(50, 2.0, user=7, ts=200)  # a re-rating: the latest wins, at its new place
    store.add_rating(1, 5.0, user=8, ts=150)
    assert store.user_ratings(7) == [(172, 3.0, 90), (50, 2.0, 200)]
    assert store.user_ratings(999) == []
    sid, created = store.create_session()
    assert created and store.has_session(sid) and not store.has_session("nope")
    assert len(sid) >= 16 and sid.replace("-", "").replace("_", "").isalnum()
    store.add_rating(1, 4.0, session=sid, ts=10)
    store.add_rating(2, 1.5, session=sid, ts=11)
    assert store.session_ratings(sid) == [(1, 4.0, 10), (2, 1.5, 11)]
    df = store.ratings_frame()
    assert df.columns == ["user", "item", "rating", "timestamp", "source"]
    assert df.schema["user"] == pl.Int64 and df.schema["rating"] == pl.Float64
    assert df.rows() == [
        (7, 172, 3.0, 90, "web"),
        (7, 50, 4.5, 100, "api"),
        (8, 1, 5.0, 150, "api"),
        (7, 50, 2.0, 200, "api"),
    ]  # session ratings are not user ratings
    store.add_exposures([_exposure("r1"), _exposure("r2", unit=f"session:{sid}", variant=None)])
    store.add_exposures([_exposure("r1")])  # a retried flush stores nothing new
    store.add_exposures([])
    o, created = store.add_outcome("r1", 50, "click")
    assert created and o > 0
    store.add_outcome("r1", 172, "rating", value=4.0, ts=120)
    assert [store.count(t) for t in TABLES] == [6, 1, 2, 2]
    with store.engine.connect() as c:
        items = c.execute(sa.text("SELECT items FROM exposures WHERE request_id='r2'")).scalar()
    assert (json.loads(items) if isinstance(items, str) else items) == [[50, 1], [172, 2]]


def test_bad_input_is_refused_with_one_line(store: Store) -> None:
    with pytest.raises(ConfigError, match="exactly one of a user or a session"):
        store.add_rating(1, 4.0)
    with pytest.raises(ConfigError, match="exactly one"):
        store.add_rating(1, 4.0, user=1, session="x")
    with pytest.raises(DataError, match="out of range"):
        store.add_rating(1, 7.0, user=1)
    with pytest.raises(UnknownIdError, match="unknown session 'nope'"):
        store.add_rating(1, 4.0, session="nope")
    with pytest.raises(UnknownIdError, match="unknown request_id 'zz'"):
        store.add_outcome("zz", 1, "click")
    with pytest.raises(ConfigError, match="unknown table 'users'"):
        store.count("users")
    assert store.count("ratings") == 0 and store.count("outcomes") == 0


def test_idempotency_keys_store_once_and_refuse_a_different_body(store: Store) -> None:
    first = store.add_rating(50, 4.0, user=1, idempotency_key="k1")
    assert first[1] is True
    assert store.add_rating(50, 4.0, user=1, idempotency_key="k1") == (first[0], False)
    # a retry arrives later: the server's time is not part of the request
    assert store.add_rating(50, 4.0, user=1, idempotency_key="k1", ts=2**40) == (first[0], False)
    for other in (
        {"movie": 50, "rating": 3.5, "user": 1},
        {"movie": 51, "rating": 4.0, "user": 1},
        {"movie": 50, "rating": 4.0, "user": 2},
    ):
        with pytest.raises(ConflictError, match="idempotency key 'k1' was already used"):
            store.add_rating(idempotency_key="k1", **other)
    assert store.count("ratings") == 1
    sid, _ = store.create_session(idempotency_key="s1")
    assert store.create_session(idempotency_key="s1") == (sid, False)
    assert store.create_session()[0] != sid and store.count("sessions") == 2
    store.add_exposures([_exposure("r1")])
    o = store.add_outcome("r1", 50, "click", idempotency_key="o1")
    assert store.add_outcome("r1", 50, "click", idempotency_key="o1") == (o[0], False)
    with pytest.raises(ConflictError):
        store.add_outcome("r1", 51, "click", idempotency_key="o1")
    assert store.count("outcomes") == 1


def test_eight_threads_store_exactly_4000_ratings(store: Store) -> None:
    errors: list[BaseException] = []
    ids: list[list[int]] = [[] for _ in range(8)]

    def work(t: int) -> None:
        try:
            for j in range(500):
                ids[t].append(store.add_rating(j % 97 + 1, 0.5 + j % 10 / 2, user=t + 1)[0])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert store.count("ratings") == 4000
    assert len({i for part in ids for i in part}) == 4000


def test_concurrent_replays_of_one_key_store_once(store: Store) -> None:
    got: list[tuple[int, bool]] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for j in range(20):
            got.append(store.add_rating(j + 1, 4.0, user=5, idempotency_key=f"key-{j}"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 160 and store.count("ratings") == 20
    assert sum(created for _, created in got) == 20
    assert len({rid for rid, _ in got}) == 20


def _schema_diff(engine: sa.Engine) -> list:
    with engine.connect() as c:
        return compare_metadata(MigrationContext.configure(c), Base.metadata)


def test_migrations_create_the_schema_and_are_a_noop_when_current(url: str) -> None:
    with Store(url) as s:
        with s.engine.connect() as c:
            assert c.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                ("0002",)
            ]
        assert set(sa.inspect(s.engine).get_table_names()) >= set(TABLES)
        assert _schema_diff(s.engine) == []  # the migration builds exactly the ORM's schema
        rid, _ = s.add_rating(3, 4.0, user=1)
    with Store(url) as s:  # reopening: nothing to upgrade, nothing lost
        with s.engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert s.user_ratings(1)[0][:2] == (3, 4.0) and s.count("ratings") == 1


def test_stores_opened_at_once_migrate_once(url: str) -> None:
    errors: list[BaseException] = []
    opened: list[Store] = []

    def work() -> None:
        try:
            opened.append(Store(url))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(opened) == 4
    opened[0].add_rating(1, 4.0, user=1)
    assert opened[3].count("ratings") == 1
    for s in opened:
        s.close()


_WRITER = """
import sys
from movierec.serving.store import Store
s = Store(sys.argv[1])
print("ready", flush=True)
for j in range(100000):
    rid, _ = s.add_rating(j % 50 + 1, 4.0, user=j % 7 + 1, idempotency_key=f"w{j}")
    print(rid, flush=True)
"""


def test_every_acknowledged_write_survives_sigkill(url: str) -> None:
    Store(url).close()  # migrate first, so the child writes from its first line
    p = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    acked: list[int] = []
    try:
        assert p.stdout.readline().strip() == "ready"
        while len(acked) < 150:
            line = p.stdout.readline()
            assert line, "the writer died early"
            acked.append(int(line))
        p.send_signal(signal.SIGKILL)  # mid-stream: the next write may be half done
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGKILL
    with Store(url) as s:
        with s.engine.connect() as c:
            stored = set(c.execute(sa.select(RatingRow.id)).scalars())
        assert set(acked) <= stored
        assert s.count("ratings") == len(stored) >= 150


def test_unreachable_and_malformed_urls(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port: one line, password hidden
    with pytest.raises(StoreError) as e:
        Store(f"postgresql+psycopg://bob:s3cret@127.0.0.1:{port}/feedback")
    msg = str(e.value)
    assert msg.startswith("cannot connect to the feedback store at postgresql+psycopg://bob:***@")
    assert "s3cret" not in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="not a database URL"):
        Store("feedback.db")
    with pytest.raises(ConfigError, match="unsupported feedback store"):
        Store("mysql://u:p@localhost/db")
    with pytest.raises(StoreError, match="cannot connect to the feedback store at sqlite:///"):
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'f.db'}")
    s = Store(f"sqlite:///{tmp_path / 'f.db'}")
    s.close()
    with pytest.raises(StoreError, match="is closed"):
        s.count("ratings")


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'f.db'}") as s, s.engine.connect() as c:
        pragmas = [
            c.exec_driver_sql(f"PRAGMA {p}").scalar()
            for p in ("journal_mode", "synchronous", "foreign_keys")
        ]
    assert pragmas == ["wal", 2, 1]  # synchronous 2 = FULL


# -- export and the retraining loop -----------------------------------------------------------
def test_export_round_trips_through_data_load(store: Store, url: str, tmp_path: Path) -> None:
    store.add_rating(50, 4.5, user=7, ts=100)
    store.add_rating(50, 2.0, user=7, ts=200)  # the latest wins in the export
    store.add_rating(172, 3.0, user=7, ts=150)
    store.add_rating(1, 5.0, user=8, ts=50)
    sid, _ = store.create_session()
    store.add_rating(1, 1.0, session=sid, ts=60)
    out = tmp_path / "fb"
    text = export(url, out)
    assert text.startswith(f"exported 3 ratings by 2 users to {out / 'ratings.csv'}")
    assert "1 session ratings left out" in text
    head = (out / "ratings.csv").read_text().splitlines()[0]
    assert head == "userId,movieId,rating,timestamp"
    ds = load(out, cache=False)
    got = sorted(
        zip(
            ds.user_map.to_raw(ds.users).tolist(),
            ds.item_map.to_raw(ds.items).tolist(),
            ds.ratings.tolist(),
            ds.timestamps.tolist(),
            strict=True,
        )
    )
    assert got == [(7, 50, 2.0, 200), (7, 172, 3.0, 150), (8, 1, 5.0, 50)]
    # a non-empty folder is refused, --force replaces it whole
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        export(url, out)
    store.add_rating(2, 3.5, user=9, ts=300)
    assert "exported 4 ratings by 3 users" in export(url, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == ["ratings.csv"]
    if url.startswith("sqlite"):  # a mistyped file is not silently a new, empty store
        with pytest.raises(StoreError, match="no feedback store at .*typo.db"):
            export(url.replace("feedback.db", "typo.db"), tmp_path / "fb2")
        assert not (tmp_path / "typo.db").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fb.")]  # no staging left


def test_feedback_export_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'f.db'}"
    with Store(db) as s:
        s.add_rating(3, 4.0, user=1, ts=5)
    r = CliRunner().invoke(app, ["feedback", "export", "--db", db, "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "exported 1 ratings by 1 users" in r.output
    assert (tmp_path / "o" / "ratings.csv").read_text().splitlines()[1] == "1,3,4.0,5"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    data = write_checkerboard(root / "cb")
    models = {"pop": {"model": "popularity"}, "biases": {"model": "biases"}}
    write_config(root / "exp.yaml", data, models)
    return root


def test_train_on_all_or_train_is_recorded(
    workflow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEREC_HOME", str(workflow / "home"))
    cfg = workflow / "exp.yaml"
    full = load(workflow / "cb", cache=False)
    text = C.train(cfg, "biases", tmp_path / "all")
    assert "all ratings (trained_on=all)" in text and "validation RMSE" not in text
    b = load_bundle(tmp_path / "all")
    assert b.meta["extra"]["trained_on"] == "all" and b.meta["extra"]["split"] is None
    assert b.meta["train"]["n_ratings"] == full.n_ratings == b.history.nnz
    assert b.meta["train"]["fingerprint"] == full.fingerprint()
    text = C.train(cfg, "biases", tmp_path / "train", on="train")
    assert "random_holdout train part (trained_on=train)" in text and "validation RMSE" in text
    t = load_bundle(tmp_path / "train")
    assert t.meta["extra"]["trained_on"] == "train"
    assert t.meta["extra"]["split"]["kind"] == "random_holdout"
    assert 0 < t.meta["train"]["n_ratings"] < full.n_ratings
    with pytest.raises(ConfigError, match="unknown --on 'test'"):
        C.train(cfg, "biases", tmp_path / "x", on="test")


def test_train_with_feedback_merges_the_stored_ratings(
    workflow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEREC_HOME", str(workflow / "home"))
    full = load(workflow / "cb", cache=False)
    u0 = int(full.user_map.raw[0])
    row = full.csr()[0]
    i0, i1 = (int(x) for x in full.item_map.raw[row.indices[:2]])
    old = float(row.data[0])
    new = 1.0 if old >= 3 else 5.0
    later = int(full.timestamps.max()) + 10
    db = f"sqlite:///{tmp_path / 'f.db'}"
    with Store(db) as s:
        s.add_rating(i0, new, user=u0, ts=later)  # overrides an older data-set rating
        s.add_rating(i1, 4.0, user=u0, ts=1)  # older than the data set's: the data set's stays
        s.add_rating(37, 5.0, user=10_001, ts=later)  # a new user on a known movie
        s.add_rating(47, 4.0, user=10_001, ts=later)
        s.add_rating(999_999, 4.0, user=10_001, ts=later)  # not in the movie table: dropped
        sid, _ = s.create_session()
        s.add_rating(37, 1.0, session=sid, ts=later)  # anonymous: not training data
    merged, note = merge_feedback(full, db)
    assert note["rows"] == 5 and note["merged"] == 4 and note["dropped_unknown_movies"] == 1
    assert note["new_users"] == 1
    assert note["replaced"] == 1 and note["kept_newer_data_set_rating"] == 1
    assert merged.n_ratings == full.n_ratings + 2
    text = C.train(workflow / "exp.yaml", "pop", tmp_path / "art", feedback=db)
    assert "1 dropped for unknown movies" in text and "1 new users" in text
    b = load_bundle(tmp_path / "art")
    assert b.meta["train"]["n_ratings"] == merged.n_ratings
    assert b.meta["extra"]["feedback"]["merged"] == 4
    assert "10001" not in str(full.user_map.raw.tolist())
    u = int(b.user_index(u0)[0])
    j = int(b.item_index(i0)[0])
    h = b.history[u]
    assert float(h.data[np.searchsorted(h.indices, j)]) == new
    j1 = int(b.item_index(i1)[0])
    assert float(h.data[np.searchsorted(h.indices, j1)]) == float(row.data[1])
    nu = int(b.user_index(10_001)[0])
    rated = set(b.item_map.raw[b.history[nu].indices].tolist())
    assert rated == {37, 47}
    # the CLI passes both options through
    r = CliRunner().invoke(
        app,
        [
            "train",
            "--config",
            str(workflow / "exp.yaml"),
            "--model",
            "pop",
            "--out",
            str(tmp_path / "cli"),
            "--on",
            "train",
            "--feedback",
            db,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "trained_on=train" in r.output and "merged feedback from sqlite:///" in r.output
