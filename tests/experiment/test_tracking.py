"""MLflow tracking: runs read back through mlflow's own client; a no-op when off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from movierec.experiment.config import parse_config
from movierec.experiment.tracking import Tracker, default_uri, metric_key


def test_metric_keys_are_mlflow_safe() -> None:
    assert metric_key("ndcg@10") == "ndcg_at_10"
    assert metric_key("hit@5 (se)") == "hit_at_5 _se_"
    assert metric_key("time_fit_s") == "time_fit_s"


def test_off_is_a_no_op_that_never_imports_mlflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from movierec.experiment.tracking import Tracker\n"
        "t = Tracker(None)\n"
        "assert not t.enabled\n"
        "with t.run('x', params={'a': 1}) as r:\n"
        "    r.log_metrics({'ndcg@10': 0.5}); r.log_artifact('/does/not/exist')\n"
        "assert t.log_model_run('y', metrics={'rmse': 1.0}) is None\n"
        "assert 'mlflow' not in sys.modules, 'mlflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_from_config_default_uri(tmp_path: Path) -> None:
    base = {"models": {"p": {"model": "popularity"}}, "output": str(tmp_path / "out")}
    assert not Tracker.from_config(parse_config(base)).enabled
    on = Tracker.from_config(
        parse_config({**base, "tracking": {"enabled": True, "experiment": "e"}})
    )
    assert on.uri == default_uri(tmp_path / "out") == f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    assert on.experiment == "e"
    custom = {**base, "tracking": {"enabled": True, "uri": "sqlite:////x/y.db"}}
    assert Tracker.from_config(parse_config(custom)).uri == "sqlite:////x/y.db"


@pytest.mark.slow  # creating an MLflow sqlite database runs its migrations (~10-20 s)
def test_sqlite_runs_read_back(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "exp")
    report = tmp_path / "report.html"
    report.write_text("<html>report</html>")
    run_id = tracker.log_model_run(
        "svd",
        params={"n_factors": 10, "sub": {"lr": 0.01}},
        metrics={"ndcg@10": 0.25, "rmse": 0.91, "skipped": float("nan"), "label": "x"},
        timings={"fit": 1.5},
        artifacts=[report],
        tags={"dataset": "ml-100k"},
    )
    with pytest.raises(RuntimeError), tracker.run("broken") as r:
        failed_id = r.run_id
        raise RuntimeError("model blew up")

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("exp")
    assert exp is not None
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "svd"
    assert run.data.params == {"n_factors": "10", "sub.lr": "0.01"}
    m = run.data.metrics
    assert m["ndcg_at_10"] == 0.25 and m["rmse"] == 0.91 and m["time_fit_s"] == 1.5
    assert "skipped" not in m and "label" not in m and m["time_run_s"] >= 0
    assert run.data.tags["dataset"] == "ml-100k"
    assert [a.path for a in client.list_artifacts(run_id)] == ["report.html"]
    # artifacts live next to the database, not in the working directory
    assert list((tmp_path / "mlartifacts").rglob("report.html"))
    assert client.get_run(failed_id).info.status == "FAILED"
    runs = client.search_runs([exp.experiment_id])
    assert {r.info.run_name for r in runs} == {"svd", "broken"}
    # a second tracker on the same database reuses the experiment
    again = Tracker(uri, "exp").log_model_run("als", metrics={"rmse": 0.95})
    assert client.get_run(again).info.experiment_id == exp.experiment_id
    with pytest.raises(Exception, match="does not exist"), tracker.run("x") as r:
        r.log_artifact(tmp_path / "missing.html")
