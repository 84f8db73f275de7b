"""MLflow tracking of experiment runs, off by default and a no-op when off.

mlflow (``mlflow-skinny``) is imported only when tracking is on. One MLflow run is
opened per model::

    tracker = Tracker.from_config(cfg)          # or Tracker("sqlite:///runs/mlflow.db")
    with tracker.run("svd", params={"n_factors": 100}, tags={"dataset": "ml-100k"}) as run:
        run.log_metrics({"ndcg@10": 0.31, "rmse": 0.91})
        run.log_timings({"fit": 12.5})
        run.log_artifact("runs/report.html")

Metric names are made MLflow-safe: ``ndcg@10`` is logged as ``ndcg_at_10``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from movierec.errors import ConfigError

_UNSAFE = re.compile(r"[^0-9A-Za-z_\-. /]")
_MAX_PARAM = 6000


def metric_key(name: str) -> str:
    """An MLflow-safe metric/param key: ``ndcg@10`` -> ``ndcg_at_10``."""
    return _UNSAFE.sub("_", name.replace("@", "_at_"))


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def default_uri(output: str | os.PathLike) -> str:
    """``sqlite:///<output>/mlflow.db`` (absolute path)."""
    return f"sqlite:///{Path(output).expanduser().resolve() / 'mlflow.db'}"


class RunHandle:
    """One open MLflow run (or a no-op when tracking is off)."""

    def __init__(self, client: Any, run_id: str | None) -> None:
        self._client = client
        self.run_id = run_id

    @property
    def active(self) -> bool:
        return self._client is not None

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params (nested mappings flattened to ``a.b``; values as strings)."""
        if not self.active or not params:
            return
        from mlflow.entities import Param

        items = [Param(metric_key(k), str(v)[:_MAX_PARAM]) for k, v in _flatten(params).items()]
        for a in range(0, len(items), 100):
            self._client.log_batch(self.run_id, params=items[a : a + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Log numeric metrics; non-numeric and non-finite values are skipped."""
        if not self.active or not metrics:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = []
        for k, v in metrics.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if math.isfinite(float(v)):
                items.append(Metric(metric_key(k), float(v), now, step))
        for a in range(0, len(items), 500):
            self._client.log_batch(self.run_id, metrics=items[a : a + 500])

    def log_timings(self, timings: Mapping[str, float]) -> None:
        """Log durations in seconds as ``time_<name>_s`` metrics."""
        self.log_metrics({f"time_{k}_s": v for k, v in timings.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self.active:
            return
        for k, v in tags.items():
            self._client.set_tag(self.run_id, metric_key(k), str(v))

    def log_artifact(self, path: str | os.PathLike, folder: str | None = None) -> None:
        """Copy a file (e.g. the HTML report) into the run's artifacts."""
        if not self.active:
            return
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"cannot log artifact {p}: it does not exist")
        self._client.log_artifact(self.run_id, str(p), folder)


class Tracker:
    """Logs runs to MLflow, or does nothing.

    Parameters
    ----------
    uri : str or None
        MLflow tracking URI (``sqlite:///path/mlflow.db``, a folder, a server URL);
        None turns tracking off (every method is a no-op and mlflow is not imported).
    experiment : str
        MLflow experiment name (created when missing).
    artifact_location : str, optional
        Where a newly created experiment stores artifacts; default for a sqlite URI is
        ``mlartifacts/`` next to the database file.
    """

    def __init__(
        self, uri: str | None, experiment: str = "movierec", artifact_location: str | None = None
    ) -> None:
        self.uri = uri
        self.experiment = experiment
        self._client: Any = None
        self._experiment_id: str | None = None
        self._artifact_location = artifact_location

    @classmethod
    def from_config(cls, cfg: Any) -> Tracker:
        """The tracker an experiment config asks for (off unless ``tracking.enabled``)."""
        t = cfg.tracking
        if not t.enabled:
            return cls(None, t.experiment)
        return cls(t.uri or default_uri(cfg.output), t.experiment)

    @property
    def enabled(self) -> bool:
        return self.uri is not None

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:  # pragma: no cover - mlflow-skinny is a dependency
            raise ConfigError(f"tracking needs mlflow-skinny: {e}") from e
        assert self.uri is not None
        location = self._artifact_location
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            if location is None:
                location = (db.parent / "mlartifacts").resolve().as_uri()
        # creating a new database logs alembic/mlflow INFO lines; keep the terminal clean
        loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        try:
            client = MlflowClient(tracking_uri=self.uri)
            exp = client.get_experiment_by_name(self.experiment)
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
        if exp is None:
            self._experiment_id = client.create_experiment(
                self.experiment, artifact_location=location
            )
        else:
            self._experiment_id = exp.experiment_id
        self._client = client
        return client

    @contextmanager
    def run(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Iterator[RunHandle]:
        """Open a run named ``name``; it ends FINISHED, or FAILED if the block raises."""
        if not self.enabled:
            yield RunHandle(None, None)
            return
        client = self._connect()
        r = client.create_run(
            self._experiment_id,
            run_name=name,
            tags={metric_key(k): str(v) for k, v in (tags or {}).items()},
        )
        handle = RunHandle(client, r.info.run_id)
        t0 = time.perf_counter()
        status = "FAILED"
        try:
            handle.log_params(params or {})
            yield handle
            status = "FINISHED"
        finally:
            try:
                handle.log_metrics({"time_run_s": time.perf_counter() - t0})
            finally:
                client.set_terminated(r.info.run_id, status=status)

    def log_model_run(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        timings: Mapping[str, float] | None = None,
        artifacts: list[str | os.PathLike] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Log one finished model run in a single call; returns the run id (None when off)."""
        with self.run(name, params=params, tags=tags) as run:
            run.log_metrics(metrics or {})
            run.log_timings(timings or {})
            for a in artifacts or []:
                run.log_artifact(a)
        return run.run_id
