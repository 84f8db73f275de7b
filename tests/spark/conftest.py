"""One local[2] SparkSession for all Spark tests, and small generated MovieLens data."""

from __future__ import annotations

import importlib.util
import os
import shutil

import numpy as np
import pytest


def _need_spark() -> None:
    why = None
    if importlib.util.find_spec("pyspark") is None:
        why = "pyspark is not installed (pip install 'movierec[spark]')"
    elif shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        why = "no Java runtime for Spark (install Java 17+)"
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Spark tests cannot run in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def spark():
    _need_spark()
    from movierec.spark import session

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    s = session(
        "local[2]",
        {
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "1g",
        },
    )
    yield s
    s.stop()


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    """A generated ml-100k-shaped release (189 users, 336 movies, 20,000 ratings)."""
    from movierec.data.synth import generate

    out = tmp_path_factory.mktemp("synth") / "ml-small"
    generate("ml-100k", out, scale=0.2, seed=1, force=True)
    return out


@pytest.fixture(scope="session")
def local(folder):
    from movierec.data import load

    return load(folder, cache=False)


@pytest.fixture(scope="session")
def sdata(spark, folder):
    from movierec.spark import io

    d = io.read(spark, folder)
    yield d
    d.close()


@pytest.fixture(scope="session")
def coarse(local):
    """The same ratings with timestamps rounded to days: many ties inside each user."""
    ds = local.subset(np.arange(local.n_ratings))
    ds.timestamps = (ds.timestamps // 86400) * 86400
    return ds


@pytest.fixture(scope="session")
def per_user(sdata):
    from movierec.spark.split import make_split

    s = make_split(sdata, "temporal_per_user", n_val=1, n_test=5, min_train=5)
    yield s
    s.close()


@pytest.fixture(scope="session")
def local_per_user(local):
    from movierec.split import make_split

    return make_split(local, "temporal_per_user", n_val=1, n_test=5, min_train=5)
