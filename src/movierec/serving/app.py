"""The FastAPI app: a thin HTTP shell over :class:`~movierec.serving.engine.Engine`.

Routes only translate (parse and bound the input, call the engine, map its errors to
status codes); scoring never runs on the event loop: user recommendations await the
engine's ranker thread, and every other route that touches a model is a plain ``def``
(the threadpool). ``create_app`` builds the app;
``create_app_from_env`` is the factory ``uvicorn --workers N`` imports in each worker.
See ``.notes/api.md`` for the contract.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from movierec.errors import (
    ArtifactError,
    ConfigError,
    ConflictError,
    DataError,
    MovierecError,
    StoreError,
    UnknownIdError,
)
from movierec.serving.config import ServeConfig, load_serve_config
from movierec.serving.engine import MAX_K, Engine, Filters, NotReadyError
from movierec.serving.metrics import CONTENT_TYPE_LATEST, Metrics, now

log = logging.getLogger("movierec.serving")
WEB = Path(__file__).parent / "web"
ENV_ARGS = "MOVIEREC_SERVE"
ID_MAX = 2**31 - 1


class JSONResponse(Response):
    """JSON rendered by orjson: a recommendation list encodes ~5x faster than with the
    standard library, a large share of a cache hit's time. NaN becomes null."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


_STATUS: list[tuple[type[MovierecError], int]] = [
    (UnknownIdError, 404),
    (ConflictError, 409),
    (NotReadyError, 503),
    (StoreError, 503),
    (ArtifactError, 422),
    (ConfigError, 422),
    (DataError, 422),
]


# -- bodies ------------------------------------------------------------------------------------
class RatingIn(BaseModel):
    """A rating: raw MovieLens movie id, 0.5 to 5 in steps of 0.5."""

    model_config = ConfigDict(extra="forbid")
    movieId: int = Field(ge=0, le=ID_MAX)
    rating: float = Field(ge=0.5, le=5.0, multiple_of=0.5)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[Annotated[int, Field(ge=0, le=ID_MAX)]] = Field(max_length=1000)
    k: int = Field(10, ge=1, le=MAX_K)
    model: str | None = Field(None, max_length=200)


class EventIn(BaseModel):
    """An outcome of a served list: a click, a rating (value 0.5..5) or a watch."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    movieId: int = Field(ge=0, le=ID_MAX)
    type: str = Field(max_length=32, description="click, rating or watch")
    value: float | None = Field(None, ge=0, le=1e9)


class ReloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, max_length=4096)


UserId = Annotated[int, PathParam(ge=0, le=ID_MAX, description="Raw MovieLens userId")]
MovieId = Annotated[int, PathParam(ge=0, le=ID_MAX, description="Raw MovieLens movieId")]
SessionId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
K = Annotated[int, Query(ge=1, le=MAX_K)]
Model = Annotated[str | None, Query(max_length=200, description="A loaded model's label")]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _key(key: str | None) -> str | None:
    """An Idempotency-Key header; empty means none."""
    return (key or "").strip() or None


class FilterQuery(BaseModel):
    """The list filters of the recommendation, similar-movie and search routes."""

    genres: str | None = Field(None, max_length=2000, description="Comma-separated, any of")
    year_min: int | None = Field(None, ge=0, le=9999)
    year_max: int | None = Field(None, ge=0, le=9999)
    min_ratings: int | None = Field(None, ge=0, le=ID_MAX)
    exclude: str | None = Field(None, max_length=20000, description="Comma-separated movieIds")

    def filters(self) -> Filters:
        g = tuple(sorted({x.strip() for x in (self.genres or "").split(",") if x.strip()}))
        ex: list[int] = []
        for x in (self.exclude or "").split(","):
            x = x.strip()
            if not x:
                continue
            if not x.isdigit() or int(x) > ID_MAX:
                raise ConfigError(f"exclude must be comma-separated movie ids, got {x!r}")
            ex.append(int(x))
        return Filters(g, self.year_min, self.year_max, self.min_ratings, tuple(sorted(set(ex))))


class RecommendQuery(FilterQuery):
    """The query of ``GET /users/{userId}/recommendations``."""

    k: int = Field(10, ge=1, le=MAX_K)
    model: str | None = Field(None, max_length=200, description="A loaded model's label")


def _query_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI query parameters of ``model``, for a route that validates its query itself."""
    schema = model.model_json_schema()
    return {
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": p}
            for n, p in schema["properties"].items()
        ]
    }


async def _filters(q: Annotated[FilterQuery, Query()]) -> Filters:
    return q.filters()


async def _engine(request: Request) -> Engine:
    return request.app.state.engine


async def _write_key(request: Request) -> None:
    key = request.app.state.config.api_key()
    if key is None:
        return
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPException(401, "this server needs an API key for writes: send X-API-Key")


async def _admin(request: Request) -> None:
    cfg: ServeConfig = request.app.state.config
    token = cfg.admin_token()
    if token is None:
        raise HTTPException(
            403,
            f"admin endpoints are disabled: start the server with the {cfg.admin_token_env} "
            "environment variable set to a token",
        )
    auth = request.headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401,
            "admin endpoints need Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


E = Annotated[Engine, Depends(_engine)]
F = Annotated[Filters, Depends(_filters)]


# -- routes ------------------------------------------------------------------------------------
meta = APIRouter(tags=["service"])
users = APIRouter(prefix="/users", tags=["users"])
sessions = APIRouter(prefix="/sessions", tags=["sessions"])
movies = APIRouter(prefix="/movies", tags=["movies"])
experiments = APIRouter(tags=["experiments"])
admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(_admin)])


@meta.get("/health")
def health() -> dict[str, str]:
    """Alive (answers even while the model loads)."""
    return {"status": "ok"}


@meta.get("/ready")
def ready(engine: E) -> Any:
    """The loaded models (label, class, version, training data); 503 while loading."""
    if not engine.ready:
        status = "error" if engine.load_error else "loading"
        detail = engine.load_error or "the model is loading; retry shortly"
        return JSONResponse({"status": status, "detail": detail}, status_code=503)
    return {"status": "ready", **engine.models()}


@meta.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@meta.get("/models")
def list_models(engine: E) -> dict[str, Any]:
    return engine.models()


@meta.get("/genres")
def genres(engine: E) -> dict[str, Any]:
    return engine.genres()


@meta.post("/recommendations/batch")
def batch(body: BatchIn, engine: E) -> JSONResponse:
    """Recommendations for many users at once (offline jobs)."""
    return JSONResponse(engine.batch(body.users, body.k, body.model))


@users.get("/{userId}/recommendations", openapi_extra=_query_doc(RecommendQuery))
async def user_recommendations(userId: UserId, request: Request) -> JSONResponse:
    """Top-k unseen movies; unknown users get the popularity fallback (flagged)."""
    # the busiest route validates its query in one pass: FastAPI's per-parameter
    # validation was a third of a cached request's time
    try:
        q = RecommendQuery.model_validate(request.query_params)
    except ValidationError as e:
        errors = [{**x, "loc": ("query", *x["loc"])} for x in e.errors()]
        raise RequestValidationError(errors) from None
    engine: Engine = request.app.state.engine
    return JSONResponse(await engine.recommend_user_async(userId, q.k, q.model, q.filters()))


@users.get("/{userId}/history")
def user_history(
    userId: UserId, engine: E, limit: Annotated[int, Query(ge=1, le=10_000)] = 50
) -> JSONResponse:
    return JSONResponse(engine.history(userId, limit))


@users.get("/{userId}/predictions/{movieId}")
def user_prediction(userId: UserId, movieId: MovieId, engine: E, model: Model = None) -> Any:
    return engine.predict(userId, movieId, model)


@users.post("/{userId}/ratings", status_code=201, dependencies=[Depends(_write_key)])
def user_rating(userId: UserId, body: RatingIn, engine: E, key: IdemKey = None) -> Any:
    """Store a rating; the user's next recommendations reflect it."""
    return engine.rate_user(userId, body.movieId, body.rating, _key(key))


@sessions.post("", status_code=201, dependencies=[Depends(_write_key)])
def new_session(engine: E, key: IdemKey = None) -> Any:
    """A session for an anonymous visitor."""
    return engine.create_session(_key(key))


@sessions.post("/{sid}/ratings", status_code=201, dependencies=[Depends(_write_key)])
def session_rating(sid: SessionId, body: RatingIn, engine: E, key: IdemKey = None) -> Any:
    return engine.rate_session(sid, body.movieId, body.rating, _key(key))


@sessions.get("/{sid}/ratings")
def session_ratings(sid: SessionId, engine: E) -> Any:
    return engine.session_ratings(sid)


@sessions.get("/{sid}/recommendations")
def session_recommendations(
    sid: SessionId,
    engine: E,
    filters: F,
    k: K = 10,
    model: Model = None,
    favorite: Annotated[int | None, Query(ge=0, le=ID_MAX)] = None,
) -> JSONResponse:
    """Live recommendations from the session's ratings (popularity before the first);
    with ``favorite``, fused with the movies most similar in content to it."""
    return JSONResponse(engine.recommend_session(sid, k, model, favorite, filters))


@movies.get("/search")
def search(
    engine: E,
    filters: F,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> JSONResponse:
    """Typo-tolerant title search."""
    return JSONResponse(engine.search(q, limit, filters))


@movies.get("/{movieId}")
def movie(movieId: MovieId, engine: E) -> Any:
    return engine.movie(movieId)


@movies.get("/{movieId}/similar")
def similar(
    movieId: MovieId,
    engine: E,
    k: K = 10,
    kind: Annotated[str, Query(pattern="^(cf|content|hybrid)$")] = "cf",
    model: Model = None,
) -> JSONResponse:
    return JSONResponse(engine.similar(movieId, k, kind, model))


@experiments.post("/events", status_code=201, dependencies=[Depends(_write_key)])
def event(body: EventIn, engine: E, key: IdemKey = None) -> Any:
    """Log what happened after a served list (by its ``request_id``); 404 for a request id
    this service never served."""
    return engine.add_event(body.request_id, body.movieId, body.type, body.value, _key(key))


@experiments.get("/experiments")
def list_experiments(engine: E) -> Any:
    """The configured experiments with their units and exposures so far."""
    return engine.list_experiments()


@experiments.get("/experiments/{name}/report")
def experiment_report(
    name: Annotated[str, PathParam(min_length=1, max_length=255)], engine: E
) -> JSONResponse:
    """The experiment's analysis: SRM, per-variant metrics with intervals, tests, lift,
    CUPED, Holm, sequential p-values, MDE and the daily timeline."""
    return JSONResponse(engine.experiment_report(name))


@admin.post("/reload")
def reload(engine: E, body: ReloadIn | None = None) -> Any:
    """Load the artifacts again (or ``path``, inside the served folder), verify them and
    swap them in; a bad artifact is refused and the old model keeps serving."""
    engine.reload(body.path if body else None)
    return {"status": "reloaded", **engine.models()}


# -- middleware and errors ---------------------------------------------------------------------
class _Guard:
    """Pure ASGI middleware: the body size limit (413) and the request metrics."""

    def __init__(self, app: Any, metrics: Metrics, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def _reply(self, send: Any, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = now()
        status = [500]

        async def send_status(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        try:
            too_big = await self._too_big(scope, receive)
            if too_big is None:
                return
            if too_big[0]:
                status[0] = 413
                await self._reply(send, 413, f"request body over {self.max_body} bytes")
                return
            await self.app(scope, too_big[1], send_status)
        finally:
            route = scope.get("route")
            self.metrics.observe(
                getattr(route, "path", "unmatched"), scope.get("method", ""), status[0], now() - t0
            )

    async def _too_big(self, scope: Any, receive: Any) -> tuple[bool, Any] | None:
        """(over the limit?, the receive to pass on); None if the client went away."""
        length = None
        chunked = False
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                length = v
            elif k == b"transfer-encoding":
                chunked = True
        if length is not None:
            return (not length.isdigit() or int(length) > self.max_body), receive
        if not chunked:
            return False, receive
        body, more = b"", True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.max_body:
                return True, receive
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return False, replay


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        msg = e.get("msg", "invalid")
        if e.get("type") == "json_invalid":
            msg = 'the body is not valid JSON; send e.g. {"movieId": 50, "rating": 4.5}'
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts) or "invalid request"


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(MovierecError)
    async def movierec_error(request: Request, exc: MovierecError) -> JSONResponse:
        code = next((c for t, c in _STATUS if isinstance(exc, t)), 400)
        return JSONResponse({"detail": str(exc).splitlines()[0]}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "internal server error; the server log has the details"}, status_code=500
        )


# -- the app -----------------------------------------------------------------------------------
def _load_in_background(engine: Engine) -> None:
    def run() -> None:
        try:
            engine.load()
        except MovierecError as e:
            log.error("error: %s", e)
        except Exception:
            engine.load_error = "unexpected error while loading; see the server log"
            log.exception("loading failed")

    threading.Thread(target=run, name="movierec-load", daemon=True).start()


def _on_sighup(engine: Engine) -> Any:
    def reload_now() -> None:
        try:
            engine.reload()
            log.info("reloaded on SIGHUP")
        except MovierecError as e:
            log.error("reload on SIGHUP refused, still serving the old model: %s", e)

    def handler(signum: int, frame: Any) -> None:
        threading.Thread(target=reload_now, name="movierec-reload", daemon=True).start()

    return handler


def create_app(
    path: str | os.PathLike | None = None,
    config: ServeConfig | None = None,
    *,
    engine: Engine | None = None,
    store: Any = None,
) -> FastAPI:
    """The app serving ``path`` (loaded in the background; /ready says when), or a given
    ``engine``. Without ``store`` (and engine), one is opened from ``config.store``."""
    if engine is None and path is None:
        raise ConfigError("give create_app a path to serve or an engine")
    cfg = engine.config if engine is not None else (config or ServeConfig())
    own_store = False
    if engine is None:
        if store is None:
            from movierec.serving.store import Store

            store = Store(cfg.store)
            own_store = True
        engine = Engine(path, cfg, store, load=False)  # type: ignore[arg-type]
    eng = engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)  # BLAS single-threaded: requests run side by side
        if not eng.ready and not eng.load_error:
            _load_in_background(eng)
        prev = None
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            prev = signal.signal(signal.SIGHUP, _on_sighup(eng))
        try:
            yield
        finally:
            if prev is not None:
                signal.signal(signal.SIGHUP, prev)
            limits.restore_original_limits()
            eng.close()  # drain the exposure queue before the store goes away
            if own_store:
                eng.store.close()

    app = FastAPI(
        title="movierec",
        summary="Movie recommendations from movierec artifacts",
        version=__import__("movierec").__version__,
        lifespan=lifespan,
    )
    app.state.engine = eng
    app.state.config = cfg
    app.state.metrics = Metrics(eng)
    for r in (meta, users, sessions, movies, experiments, admin):
        app.include_router(r)
    _install_errors(app)

    @app.get("/", include_in_schema=False)
    def index() -> Any:
        page = WEB / "index.html"
        if not page.is_file():
            return JSONResponse({"detail": "the web page is not installed"}, status_code=404)
        return FileResponse(page)

    app.mount("/static", StaticFiles(directory=WEB, check_dir=False), name="static")
    if cfg.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=cfg.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Idempotency-Key", "X-API-Key", "Authorization"],
        )  # fmt: skip
    app.add_middleware(_Guard, metrics=app.state.metrics, max_body=cfg.max_body_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """The app factory for ``uvicorn --factory`` (one per worker): reads the served path,
    config file and store URL from the ``MOVIEREC_SERVE`` environment variable (JSON)."""
    args = json.loads(os.environ.get(ENV_ARGS) or "{}")
    if "path" not in args:
        raise ConfigError(f"set {ENV_ARGS} to JSON with the path to serve")
    cfg = load_serve_config(args.get("config"), store=args.get("db"))
    if args.get("workers", 1) > 1 and not cfg.verify_cache_with_store:
        # another worker may take a user's rating: check the store before serving from cache
        cfg = cfg.model_copy(update={"verify_cache_with_store": True})
    return create_app(args["path"], cfg)
