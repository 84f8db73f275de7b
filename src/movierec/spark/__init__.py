"""The Spark engine (the ``spark`` extra): read, split, train ALS / implicit ALS with MLlib,
evaluate at scale and export a normal movierec artifact.

Nothing here is imported by the rest of movierec unless ``--engine spark`` is asked for, so
movierec works without pyspark. Modules: :mod:`~movierec.spark.io` (MovieLens files into
DataFrames), :mod:`~movierec.spark.split` (the three split kinds, row for row as
:mod:`movierec.split`), :mod:`~movierec.spark.train` (MLlib ALS with movierec's params),
:mod:`~movierec.spark.evaluate` (RMSE/MAE and full-catalogue top-K metrics),
:mod:`~movierec.spark.export` (a Spark fit as an ALS / ImplicitALS artifact) and
:mod:`~movierec.spark.run` (what ``movierec train|compare --engine spark`` do).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

from movierec.errors import ConfigError

#: Spark settings applied unless the caller (or spark-submit) sets them.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
}


def require_spark() -> Any:
    """The pyspark module, or a ConfigError saying how to install it."""
    try:
        import pyspark
    except ImportError:
        raise ConfigError(
            "the Spark engine needs pyspark: pip install 'movierec[spark]' (and Java 17+)"
        ) from None
    return pyspark


def session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """The active SparkSession, or a new one on ``master`` with the UI off.

    ``master=None`` keeps the master ``spark-submit`` was given, and means ``local[2]``
    outside spark-submit. A local master binds to 127.0.0.1 unless ``SPARK_LOCAL_IP``
    says otherwise.
    """
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # launched by spark-submit
    if master is None and not submitted:
        master = "local[2]"
    if master is not None and master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # local Python workers run this interpreter (its movierec, numpy, pyarrow)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.appName("movierec")
    if master is not None:
        b = b.master(master)
    defaults = dict(DEFAULT_CONF)
    defaults["spark.ui.showConsoleProgress"] = "true" if sys.stderr.isatty() else "false"
    if master is not None and master.startswith("local"):
        # Spark's 200 shuffle partitions suit clusters; one machine wants a few per core
        defaults["spark.sql.shuffle.partitions"] = "8"
    for k, v in {**defaults, **(conf or {})}.items():
        b = b.config(k, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyspark's notice about pandas 3
        try:
            s = b.getOrCreate()
        except Exception as e:  # no Java, bad master URL, port in use: one line
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ConfigError(f"cannot start Spark on {master!r}: {first}") from e
    s.sparkContext.setLogLevel("ERROR")
    return s
