"""Schemathesis against the app's own OpenAPI schema: every operation, no 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from serving_data import build_run

from movierec.serving.app import create_app
from movierec.serving.config import ServeConfig
from movierec.serving.engine import Engine
from movierec.serving.store import Store


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fuzz")
    mp = pytest.MonkeyPatch()
    mp.setenv("MOVIEREC_ADMIN_TOKEN", "fuzz-token")
    models = {"popularity": {}, "ease": {"l2": 10.0, "threshold": 4.0}, "svd": {"n_factors": 4}}
    run = build_run(root, models)
    store = Store(f"sqlite:///{Path(root) / 'fb.db'}")
    app = create_app(engine=Engine(run, ServeConfig(), store))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.close()
    mp.undo()


def test_no_server_errors(api) -> None:
    # one bounded hypothesis run per operation (the pytest plugin's fixture loader is not
    # used: it does not work with this pytest)
    failures: list[str] = []
    for result in api.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case) -> None:
            r = case.call()
            where = f"{case.method} {case.formatted_path}"
            assert r.status_code < 500, f"{where}: {r.status_code} {r.text}"
            if r.status_code >= 400:
                assert "detail" in r.json() and "Traceback" not in r.text, where

        try:
            check()
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, failures


def test_every_operation_is_in_the_schema(api) -> None:
    ops = {(r.method.upper(), r.path) for r in (x.ok() for x in api.get_all_operations())}
    for want in [
        ("GET", "/users/{userId}/recommendations"),
        ("POST", "/users/{userId}/ratings"),
        ("GET", "/sessions/{sid}/recommendations"),
        ("POST", "/sessions/{sid}/ratings"),
        ("GET", "/movies/{movieId}/similar"),
        ("POST", "/recommendations/batch"),
        ("POST", "/admin/reload"),
        ("POST", "/events"),
        ("GET", "/experiments"),
        ("GET", "/experiments/{name}/report"),
    ]:
        assert want in ops
    assert len(ops) == 21
