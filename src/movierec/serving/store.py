"""The feedback store: ratings, anonymous sessions, exposures and outcomes (SQLAlchemy 2).

One source of truth for what visitors told the service. An SQLite file by default
(``sqlite:///feedback.db``), PostgreSQL with ``postgresql+psycopg://user:pw@host/db``.
The schema is versioned by the Alembic migrations in ``migrations/`` and upgraded to the
newest revision whenever a :class:`Store` is opened (a no-op when it is current; several
processes opening the same store at once are serialized by a lock).

Durability: every writing method commits before it returns, so an acknowledged write is
on disk. SQLite runs in WAL mode with ``synchronous=FULL``: each commit fsyncs the
write-ahead log, so an acknowledged write survives a killed process *and* a power loss
(``NORMAL`` would only survive the former). PostgreSQL's default ``synchronous_commit=on``
gives the same guarantee.

Idempotency: writes accept an ``idempotency_key`` (the ``Idempotency-Key`` header). The
key is unique in the table, so a replay, even a concurrent one, stores nothing and returns
the first row's id; a key reused with a different body raises
:class:`~movierec.errors.ConflictError`.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from movierec.atomic import stage_dir
from movierec.errors import ConfigError, ConflictError, DataError, StoreError, UnknownIdError

MIGRATIONS = Path(__file__).parent / "migrations"
TABLES = ("ratings", "sessions", "exposures", "outcomes")
log = logging.getLogger("movierec.serving")
_PG_LOCK = 0x6D6F7669  # pg_advisory_xact_lock key serializing migrations ("movi")
# integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite
_ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class SessionRow(Base):
    """An anonymous visitor."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class RatingRow(Base):
    """One rating by a known user or by a session (exactly one of the two)."""

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (session_id IS NULL)", name="one_owner"),
    )
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    movie_id: Mapped[int] = mapped_column(BigInteger)
    rating: Mapped[float] = mapped_column(Float)
    ts: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class ExposureRow(Base):
    """A list shown to a unit (user or session): which model/variant served which ranks."""

    __tablename__ = "exposures"
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(255))
    experiment: Mapped[str | None] = mapped_column(String(255), index=True)
    variant: Mapped[str | None] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(255))
    items: Mapped[list[list[int]]] = mapped_column(JSON)
    ts: Mapped[int] = mapped_column(BigInteger)
    #: interleaving: the team (variant) that placed each position of ``items``
    teams: Mapped[list[str] | None] = mapped_column(JSON)
    #: the unit's pre-experiment activity (training ratings), the CUPED covariate
    pre: Mapped[float | None] = mapped_column(Float)


def _insert_exposures(sqlite: bool) -> Any:
    """The statement that logs a batch of exposures given as one JSON array ``:rows``
    (a retried flush after an unknown outcome skips the rows already logged)."""
    table = ExposureRow.__table__
    cols = ", ".join(c.key for c in table.columns)
    if sqlite:  # json_extract gives arrays as JSON text and JSON null as SQL NULL
        got = ", ".join(f"json_extract(value, '$.{c.key}')" for c in table.columns)
        return text(
            f"INSERT INTO exposures ({cols}) SELECT {got} FROM json_each(:rows) "
            "WHERE true ON CONFLICT (request_id) DO NOTHING"  # WHERE: SQLite's upsert rule
        )
    from sqlalchemy.dialects import postgresql

    types = ", ".join(f"{c.key} {c.type.compile(postgresql.dialect())}" for c in table.columns)
    return text(
        f"INSERT INTO exposures ({cols}) SELECT {cols} FROM "
        f"json_to_recordset(CAST(:rows AS json)) AS x({types}) ON CONFLICT (request_id) DO NOTHING"
    )


def encode_exposure(r: dict[str, Any]) -> bytes:
    """One exposure row (see :meth:`Store.add_exposures`) checked and encoded as JSON."""
    teams, pre = r.get("teams"), r.get("pre")
    return orjson.dumps(
        {
            "request_id": str(r["request_id"]),
            "unit": str(r["unit"]),
            "experiment": r.get("experiment"),
            "variant": r.get("variant"),
            "model_version": str(r["model_version"]),
            "items": [[int(m), int(k)] for m, k in r["items"]],
            "ts": int(time.time()) if r.get("ts") is None else int(r["ts"]),
            "teams": None if teams is None else [str(t) for t in teams],
            "pre": None if pre is None else float(pre),
        }
    )


class OutcomeRow(Base):
    """What happened after an exposure (a click, a rating, ...)."""

    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("exposures.request_id"), index=True)
    movie_id: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    ts: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)


class ExperimentRow(Base):
    """An experiment's definition as the service last ran it (so a report needs only the
    store)."""

    __tablename__ = "experiments"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated: Mapped[int] = mapped_column(BigInteger)


_MODELS: dict[str, type[Base]] = {
    "ratings": RatingRow,
    "sessions": SessionRow,
    "exposures": ExposureRow,
    "outcomes": OutcomeRow,
    "experiments": ExperimentRow,
}


def _no_empty(key: str | None) -> str | None:
    """An idempotency key; an empty (or blank) one means none."""
    return (key or "").strip() or None


def _reason(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _url(url: str) -> URL:
    try:
        u = make_url(url)
    except ArgumentError as e:
        raise ConfigError(
            f"{url!r} is not a database URL; give e.g. sqlite:///feedback.db or "
            "postgresql+psycopg://user:password@host/db"
        ) from e
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver we ship with
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported feedback store {u.render_as_string(hide_password=True)!r}: "
            "use sqlite:///FILE or postgresql+psycopg://..."
        )
    return u


class Store:
    """The feedback store (thread-safe: a connection pool, one session per call).

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///feedback.db`` (a file, created if missing) or
        ``postgresql+psycopg://user:password@host:port/db``.
    create : bool
        With False, a missing SQLite file is an error instead of a new, empty store (for
        readers such as ``feedback export``, where a new file means a mistyped path).

    Raises
    ------
    StoreError
        The database cannot be reached or opened (the message hides the password).
    """

    def __init__(self, url: str = "sqlite:///feedback.db", *, create: bool = True) -> None:
        u = _url(url)
        self.url = u
        self.safe_url = u.render_as_string(hide_password=True)
        self.sqlite = u.get_backend_name() == "sqlite"
        if self.sqlite and u.database in (None, "", ":memory:"):
            raise ConfigError("the feedback store needs a file: give sqlite:///PATH/feedback.db")
        if self.sqlite and not create and not Path(u.database or "").is_file():
            raise StoreError(f"no feedback store at {u.database}: check the path in --db")
        try:
            if self.sqlite:
                self.engine = create_engine(
                    u, connect_args={"check_same_thread": False, "timeout": 30}
                )
                event.listen(self.engine, "connect", _sqlite_connect)
                event.listen(self.engine, "begin", _sqlite_begin)
            else:
                self.engine = create_engine(
                    u, pool_pre_ping=True, connect_args={"connect_timeout": 10}
                )
        except NoSuchModuleError as e:
            raise ConfigError(f"no database driver for {self.safe_url}: {_reason(e)}") from e
        self._writer = self.engine.execution_options(sqlite_immediate=True)
        self._log_exposures = _insert_exposures(self.sqlite)
        self._closed = False
        self._lock = threading.Lock()
        try:
            self._migrate()
        except DBAPIError as e:
            self.engine.dispose()
            raise StoreError(
                f"cannot connect to the feedback store at {self.safe_url}: {_reason(e)}"
            ) from None

    # -- plumbing -----------------------------------------------------------------------
    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._writer.begin() as conn:
            if not self.sqlite:
                # several servers starting at once: one migrates, the others wait, then no-op
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """One transaction; database failures become one-line :class:`StoreError`."""
        if self._closed:
            raise StoreError(f"the feedback store at {self.safe_url} is closed")
        try:
            with Session(self._writer if write else self.engine, expire_on_commit=False) as s:
                yield s
        except IntegrityError:
            raise
        except DBAPIError as e:
            what = "write to" if write else "read"
            raise StoreError(
                f"cannot {what} the feedback store at {self.safe_url}: {_reason(e)}"
            ) from None

    def _insert(self, row: Base) -> None:
        with self._session(write=True) as s:
            s.add(row)
            s.commit()

    def _by_key(self, model: type[Base], key: str) -> Any:
        with self._session() as s:
            return s.scalars(select(model).where(model.idempotency_key == key)).first()

    # -- ratings ------------------------------------------------------------------------
    def add_rating(
        self,
        movie: int,
        rating: float,
        *,
        user: int | None = None,
        session: str | None = None,
        source: str = "api",
        idempotency_key: str | None = None,
        ts: int | None = None,
    ) -> tuple[int, bool]:
        """Store one rating by a user or a session; returns ``(row id, created)``.

        A replayed ``idempotency_key`` stores nothing and returns the first row's id with
        ``created=False``; the same key with a different body raises ConflictError. An
        unknown session raises UnknownIdError.
        """
        if (user is None) == (session is None):
            raise ConfigError("a rating belongs to exactly one of a user or a session")
        idempotency_key = _no_empty(idempotency_key)
        rating = float(rating)
        if not 0.5 <= rating <= 5.0:
            raise DataError(f"rating {rating:g} is out of range: give 0.5 to 5")
        row = RatingRow(
            user_id=None if user is None else int(user),
            session_id=session,
            movie_id=int(movie),
            rating=rating,
            ts=int(time.time()) if ts is None else int(ts),
            source=source,
            idempotency_key=idempotency_key,
        )
        # the time is when the server took it, not part of the request: a retry is later
        body = ("user_id", "session_id", "movie_id", "rating", "source")
        return self._add_keyed(row, RatingRow, body, "rating")

    def _add_keyed(
        self, row: Any, model: type[Base], body: tuple[str, ...], what: str
    ) -> tuple[int, bool]:
        try:
            self._insert(row)
            return int(row.id), True
        except IntegrityError as e:
            key = row.idempotency_key
            first = self._by_key(model, key) if key is not None else None
            if first is None:
                self._missing_parent(row, e)
            if any(getattr(first, c) != getattr(row, c) for c in body):
                raise ConflictError(
                    f"idempotency key {key!r} was already used for a different {what}; "
                    "send a new key for a new request"
                ) from None
            return int(first.id), False

    def _missing_parent(self, row: Any, e: IntegrityError) -> None:
        if isinstance(row, RatingRow) and row.session_id is not None:
            if not self.has_session(row.session_id):
                raise UnknownIdError(
                    f"unknown session {row.session_id!r}: create one with POST /sessions"
                ) from None
        if isinstance(row, OutcomeRow) and not self._has_exposure(row.request_id):
            raise UnknownIdError(
                f"unknown request_id {row.request_id!r}: no recommendations were logged under it"
            ) from None
        raise StoreError(f"the feedback store refused the write: {_reason(e)}") from None

    def _ratings(self, column: Any, value: Any) -> list[tuple[int, float, int]]:
        with self._session() as s:
            rows = s.execute(
                select(RatingRow.movie_id, RatingRow.rating, RatingRow.ts)
                .where(column == value)
                .order_by(RatingRow.ts, RatingRow.id)
            ).all()
        latest: dict[int, tuple[int, float, int]] = {}
        for m, r, t in rows:
            latest.pop(m, None)  # re-inserting moves a re-rated movie to its newest place
            latest[m] = (int(m), float(r), int(t))
        return list(latest.values())

    def user_ratings(self, user: int) -> list[tuple[int, float, int]]:
        """``(movie, rating, ts)`` of a user's stored ratings: the latest per movie, oldest first."""
        return self._ratings(RatingRow.user_id, int(user))

    def rated_users(self) -> set[int]:
        """Raw ids of the users with at least one stored rating."""
        with self._session() as s:
            rows = s.execute(
                select(RatingRow.user_id).where(RatingRow.user_id.is_not(None)).distinct()
            ).all()
        return {int(u) for (u,) in rows}

    def session_ratings(self, sid: str) -> list[tuple[int, float, int]]:
        """``(movie, rating, ts)`` of a session's ratings: the latest per movie, oldest first."""
        return self._ratings(RatingRow.session_id, sid)

    def ratings_frame(self) -> pl.DataFrame:
        """Every stored rating by a known user, oldest first (re-ratings included).

        Columns ``user``, ``item`` (raw ids, Int64), ``rating`` (Float64), ``timestamp``
        (Int64, unix seconds) and ``source``; session ratings are left out.
        """
        with self._session() as s:
            rows = s.execute(
                select(
                    RatingRow.user_id,
                    RatingRow.movie_id,
                    RatingRow.rating,
                    RatingRow.ts,
                    RatingRow.source,
                )
                .where(RatingRow.user_id.is_not(None))
                .order_by(RatingRow.ts, RatingRow.id)
            ).all()
        schema = {
            "user": pl.Int64,
            "item": pl.Int64,
            "rating": pl.Float64,
            "timestamp": pl.Int64,
            "source": pl.String,
        }
        return pl.DataFrame(rows, schema=schema, orient="row")

    # -- sessions -----------------------------------------------------------------------
    def create_session(self, idempotency_key: str | None = None) -> tuple[str, bool]:
        """A new anonymous session id (url-safe); a replayed key returns the first one."""
        idempotency_key = _no_empty(idempotency_key)
        row = SessionRow(
            id=secrets.token_urlsafe(16), created=int(time.time()), idempotency_key=idempotency_key
        )
        try:
            self._insert(row)
            return row.id, True
        except IntegrityError as e:
            first = self._by_key(SessionRow, idempotency_key) if idempotency_key else None
            if first is None:
                raise StoreError(f"the feedback store refused the write: {_reason(e)}") from None
            return first.id, False

    def has_session(self, sid: str) -> bool:
        """Whether ``sid`` names a stored session."""
        with self._session() as s:
            return s.get(SessionRow, sid) is not None

    # -- events -------------------------------------------------------------------------
    def add_exposures(self, rows: list[dict[str, Any]] | list[bytes]) -> None:
        """Log shown lists in one transaction; a ``request_id`` already logged is skipped.

        Each row has ``request_id``, ``unit``, ``experiment``, ``variant``,
        ``model_version``, ``items`` (list of ``[movieId, rank]``) and ``ts``, and
        optionally ``teams`` (interleaving: the variant that placed each item) and ``pre``
        (the unit's pre-experiment activity); or is such a row already encoded by
        :func:`encode_exposure` (what :class:`ExposureWriter` queues).

        The whole batch is one statement over one JSON array: the database unpacks it, so
        Python runs one call per batch, not one per row (a writer thread that re-takes the
        GIL for each row falls behind a busy server).
        """
        if not rows:
            return
        payload = b"[" + b",".join(r if isinstance(r, bytes) else encode_exposure(r) for r in rows)
        with self._session(write=True) as s:
            s.execute(self._log_exposures, {"rows": (payload + b"]").decode()})
            s.commit()

    def _has_exposure(self, request_id: str) -> bool:
        with self._session() as s:
            return s.get(ExposureRow, request_id) is not None

    def exposure(self, request_id: str) -> dict[str, Any] | None:
        """The logged exposure ``request_id`` as a dict (the columns), or None."""
        with self._session() as s:
            row = s.get(ExposureRow, str(request_id))
            return None if row is None else _row_dict(row)

    def experiment_rows(self, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The exposures of experiment ``name`` (oldest first) and their outcomes.

        Exposures are dicts of the exposure columns; outcomes have ``request_id``,
        ``movie_id``, ``type``, ``value`` and ``ts``.
        """
        with self._session() as s:
            ex = s.scalars(
                select(ExposureRow)
                .where(ExposureRow.experiment == name)
                .order_by(ExposureRow.ts, ExposureRow.request_id)
            ).all()
            oc = s.execute(
                select(
                    OutcomeRow.request_id,
                    OutcomeRow.movie_id,
                    OutcomeRow.type,
                    OutcomeRow.value,
                    OutcomeRow.ts,
                )
                .join(ExposureRow, ExposureRow.request_id == OutcomeRow.request_id)
                .where(ExposureRow.experiment == name)
                .order_by(OutcomeRow.ts, OutcomeRow.id)
            ).all()
        cols = ("request_id", "movie_id", "type", "value", "ts")
        return [_row_dict(r) for r in ex], [dict(zip(cols, r, strict=True)) for r in oc]

    def exposure_counts(self) -> dict[str, dict[str, int]]:
        """``{experiment: {"exposures": n, "units": m}}`` for every experiment logged."""
        with self._session() as s:
            rows = s.execute(
                select(
                    ExposureRow.experiment,
                    func.count(),
                    func.count(ExposureRow.unit.distinct()),
                )
                .where(ExposureRow.experiment.is_not(None))
                .group_by(ExposureRow.experiment)
            ).all()
        return {str(e): {"exposures": int(n), "units": int(u)} for e, n, u in rows}

    # -- experiment definitions ---------------------------------------------------------
    def save_experiments(self, definitions: list[dict[str, Any]]) -> None:
        """Record the definitions the service runs (JSON-ready dicts with a ``name``); a
        name already stored gets the new definition."""
        if not definitions:
            return
        now = int(time.time())
        with self._session(write=True) as s:
            for d in definitions:
                row = s.get(ExperimentRow, d["name"])
                if row is None:
                    s.add(ExperimentRow(name=d["name"], definition=d, updated=now))
                elif row.definition != d:
                    row.definition, row.updated = d, now
            s.commit()

    def experiments(self) -> dict[str, dict[str, Any]]:
        """The stored experiment definitions by name."""
        with self._session() as s:
            return {r.name: r.definition for r in s.scalars(select(ExperimentRow)).all()}

    def add_outcome(
        self,
        request_id: str,
        movie: int,
        type: str,
        value: float | None = None,
        ts: int | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, bool]:
        """Log what happened after an exposure; returns ``(row id, created)``.

        An unknown ``request_id`` raises UnknownIdError; keys behave as in
        :meth:`add_rating`.
        """
        idempotency_key = _no_empty(idempotency_key)
        row = OutcomeRow(
            request_id=str(request_id),
            movie_id=int(movie),
            type=str(type),
            value=None if value is None else float(value),
            ts=int(time.time()) if ts is None else int(ts),
            idempotency_key=idempotency_key,
        )
        body = ("request_id", "movie_id", "type", "value")  # not ts: a retry is later
        return self._add_keyed(row, OutcomeRow, body, "outcome")

    def count(self, table: str) -> int:
        """Number of rows in ``table`` (ratings, sessions, exposures, outcomes or experiments)."""
        if table not in _MODELS:
            raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(_MODELS)}")
        with self._session() as s:
            return int(s.scalar(select(func.count()).select_from(_MODELS[table])) or 0)

    # -- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Close every pooled connection; later calls raise StoreError."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.safe_url!r})"


class ExposureWriter:
    """Writes exposures to a :class:`Store` in batches, from a background thread.

    :meth:`submit` only appends to an in-memory queue (it never waits for the database),
    and one thread writes what is queued in one transaction per batch, at most
    ``interval_s`` after the first row arrived (sooner once ``batch`` rows are waiting).

    What is guaranteed (the meaning of "acknowledged" for exposures): a recommendation
    response acknowledges the list, not that its exposure is on disk yet. An exposure is
    durable once its batch commits (normally within ``interval_s``); until then it is kept
    in memory and retried, with backoff, while the store is unreachable, and never
    dropped. :meth:`wait_for` (called by ``POST /events`` before an outcome is stored)
    flushes at once and returns when the request's exposure is committed, so no outcome
    is accepted whose exposure could still be lost; :meth:`close` (server shutdown)
    drains the queue. Only a hard kill (SIGKILL, power loss) within the flush interval
    can lose exposures, and those have no outcome. ``max_queue`` bounds the memory: past
    it, :meth:`submit` waits for the writer (back-pressure) instead of dropping rows.
    """

    def __init__(
        self, store: Store, batch: int = 5000, interval_s: float = 0.05, max_queue: int = 100_000
    ) -> None:
        self.store, self.batch = store, batch
        self.interval_s, self.max_queue = interval_s, max_queue
        #: (request_id, the row encoded): bytes, not nested lists for the GC to walk
        self._queue: list[tuple[str, bytes]] = []
        self._pending: set[str] = set()  # queued or being written
        self._cond = threading.Condition()
        self._urgent = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="movierec-exposures", daemon=True
            )
            self._thread.start()

    def submit(self, row: dict[str, Any]) -> None:
        """Queue one exposure (a dict as :meth:`Store.add_exposures` takes)."""
        rid, data = str(row["request_id"]), encode_exposure(row)
        with self._cond:
            if self._closed:
                raise StoreError("the exposure log is closed; the server is shutting down")
            self._start()
            while len(self._pending) >= self.max_queue and not self._closed:
                self._urgent = True
                self._cond.notify_all()
                self._cond.wait(1.0)
            self._queue.append((rid, data))
            self._pending.add(rid)
            if len(self._queue) == 1 or len(self._queue) >= self.batch:
                self._cond.notify_all()

    def pending(self, request_id: str) -> bool:
        """Whether ``request_id``'s exposure is queued but not committed yet."""
        with self._cond:
            return str(request_id) in self._pending

    def __len__(self) -> int:
        with self._cond:
            return len(self._pending)

    def wait_for(self, request_id: str, timeout: float = 30.0) -> bool:
        """Flush now and wait until ``request_id``'s exposure is committed (True), or was
        never queued here (True); False after ``timeout`` (the store is unreachable)."""
        rid = str(request_id)
        deadline = time.monotonic() + timeout
        with self._cond:
            while rid in self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._urgent = True
                self._cond.notify_all()
                self._cond.wait(min(left, 0.5))
            return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Write everything queued so far; False if it did not finish within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._urgent = True
                self._cond.notify_all()
                self._cond.wait(min(left, 0.5))
            return True

    def close(self, timeout: float = 30.0) -> bool:
        """Drain the queue and stop the thread; True when nothing was left unwritten."""
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return done

    def _run(self) -> None:
        backoff = self.interval_s
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                if not self._urgent and len(self._queue) < self.batch and not self._closed:
                    self._cond.wait(self.interval_s)  # gather a batch
                rows, self._queue = self._queue[: self.batch], self._queue[self.batch :]
                self._urgent = False
            try:
                self.store.add_exposures([data for _, data in rows])
            except Exception as e:  # noqa: BLE001 - kept and retried, never dropped
                self.failures += 1
                self.last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
                log.error("exposure log: %s; %d rows kept, retrying", self.last_error, len(rows))
                with self._cond:
                    self._queue[:0] = rows
                    if self._closed or self.store._closed:
                        return  # shutting down with the store gone: nothing can be written
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = self.interval_s
            with self._cond:
                self.written += len(rows)
                self._pending.difference_update(rid for rid, _ in rows)
                self._cond.notify_all()


def _row_dict(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # transactions are begun by _sqlite_begin, not by the driver's implicit BEGIN
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    # a new file's switch to WAL can be refused as busy, without the busy handler, while
    # another connection opens it at the same moment: retry within the busy timeout
    end = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if ("lock" not in str(e) and "busy" not in str(e)) or time.monotonic() > end:
                raise
            time.sleep(0.02)
    for pragma in ("synchronous=FULL", "foreign_keys=ON"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # writers take the write lock up front so the busy timeout applies (no deadlock on
    # a read-then-write upgrade); readers stay deferred and never block under WAL
    immediate = conn.get_execution_options().get("sqlite_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# -- export and the retraining loop -----------------------------------------------------------
def latest_ratings(frame: pl.DataFrame) -> pl.DataFrame:
    """The latest rating per (user, item) of a :meth:`Store.ratings_frame` (oldest first)."""
    return frame.unique(["user", "item"], keep="last", maintain_order=True)


def export(url: str, out: str | os.PathLike, force: bool = False) -> str:
    """``movierec feedback export --db URL --out DIR [--force]``.

    Writes ``DIR/ratings.csv`` (userId,movieId,rating,timestamp: the MovieLens CSV layout,
    the latest rating per user and movie) atomically: staged in a folder beside ``DIR``,
    fsynced, renamed into place. A non-empty ``DIR`` is refused unless ``force``.
    """
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ConfigError(f"{out} exists and is not empty; choose a new folder or pass --force")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; choose a folder")
    with Store(url, create=False) as store:
        frame = store.ratings_frame()
        anonymous = store.count("ratings") - frame.height
    df = latest_ratings(frame).select(
        pl.col("user").alias("userId"),
        pl.col("item").alias("movieId"),
        pl.col("rating"),
        pl.col("timestamp"),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = stage_dir(out.parent, f".{out.name}.tmp-")
    old: Path | None = None
    try:
        df.write_csv(tmp / "ratings.csv")
        for p in (tmp / "ratings.csv", tmp):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if out.exists():
            old = stage_dir(out.parent, f".{out.name}.old-")
            os.replace(out, old / "a")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "a").exists() and not out.exists():
            os.replace(old / "a", out)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    users = df["userId"].n_unique() if df.height else 0
    line = f"exported {df.height:,} ratings by {users:,} users to {out / 'ratings.csv'}"
    if anonymous:
        line += f" ({anonymous:,} session ratings left out: anonymous visitors have no userId)"
    return line


def merge_feedback(ds: Any, url: str) -> tuple[Any, dict[str, Any]]:
    """``ds`` with the stored user ratings of the store at ``url`` merged in.

    A stored rating replaces an older rating of the same user and movie (the latest wins,
    as when a release has duplicates); new users are welcome; ratings of movies missing
    from the data set's movie table (and from its ratings) are dropped and counted.

    Returns
    -------
    (Dataset, dict)
        The merged data set and a summary: ``rows`` (stored user ratings), ``merged``,
        ``replaced`` (older data-set ratings overridden), ``new_users`` and
        ``dropped_unknown_movies``.
    """
    import numpy as np

    from movierec.data.dataset import Dataset

    with Store(url, create=False) as store:
        safe = store.safe_url
        fb = latest_ratings(store.ratings_frame())
    known = np.union1d(ds.movies["item"].to_numpy().astype(np.int64), ds.item_map.raw)
    ok = np.isin(fb["item"].to_numpy(), known)
    kept = fb.filter(pl.Series(ok))
    note: dict[str, Any] = {
        "store": safe,
        "rows": fb.height,
        "merged": kept.height,
        "dropped_unknown_movies": int((~ok).sum()),
    }
    users = ds.user_map.to_raw(ds.users)
    items = ds.item_map.to_raw(ds.items)
    fu, fi = kept["user"].to_numpy(), kept["item"].to_numpy()
    old = pl.DataFrame({"user": users, "item": items, "old_ts": ds.timestamps})
    # on equal timestamps the stored rating wins: it comes later in the merged rows
    hits = kept.join(old, on=["user", "item"], how="inner")
    note["replaced"] = int((hits["timestamp"] >= hits["old_ts"]).sum())
    note["kept_newer_data_set_rating"] = hits.height - note["replaced"]
    note["new_users"] = int(np.setdiff1d(np.unique(fu), ds.user_map.raw).size)
    merged = Dataset.from_raw(
        np.concatenate([users, fu]),
        np.concatenate([items, fi]),
        np.concatenate([ds.ratings, kept["rating"].to_numpy().astype(np.float32)]),
        np.concatenate([ds.timestamps, kept["timestamp"].to_numpy()]),
        ds.movies,
        tags=ds.tags,
        links=ds.links,
        user_info=ds.user_info,
        name=ds.name,
        synthetic=ds.synthetic,
        notes={**ds.notes, "feedback": note},
    )
    return merged, note
