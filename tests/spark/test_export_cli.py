"""Spark-trained artifacts are normal movierec artifacts; the CLI's --engine spark."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from movierec.artifacts import load_bundle
from movierec.models.als import ALS
from movierec.models.ials import ImplicitALS


def _config(tmp_path, data, refit=True):
    p = tmp_path / "spark.yaml"
    p.write_text(
        f"""
dataset: ml-small
data: {data}
seed: 0
output: {tmp_path / "runs"}
refit: {str(refit).lower()}
split: {{kind: temporal_per_user, n_val: 1, n_test: 5, min_train: 5}}
metrics: {{k: [5, 10], threshold: 4.0, primary: ndcg@10}}
learning_curve: {{enabled: false}}
tuning: {{enabled: false}}
models:
  als: {{model: als, params: {{n_factors: 6, n_epochs: 4, reg: 0.1, reg_bias: 0.1}}}}
  ials: {{model: ials, params: {{factors: 6, iterations: 4, regularization: 0.1, reg_scaling: 1.0}}}}
  popularity: {{model: popularity}}
"""
    )
    return p


@pytest.fixture(scope="module")
def trained(spark, folder, tmp_path_factory):
    """`movierec train --engine spark` for als and ials (in-process, the test session)."""
    from movierec.experiment import commands

    tmp = tmp_path_factory.mktemp("train")
    cfg = _config(tmp, folder)
    out = {}
    for name in ("als", "ials"):
        text = commands.train(cfg, name, tmp / name, on="train", engine="spark")
        assert "with Spark MLlib" in text and f"saved to {tmp / name}" in text
        out[name] = (tmp / name, text)
    return out


def test_train_text_and_artifact(trained, local_per_user):
    path, text = trained["als"]
    assert "validation RMSE" in text and "regParam=0.1" in text
    b = load_bundle(path)
    assert isinstance(b.model, ALS)
    assert b.meta["extra"]["engine"] == "spark" and b.meta["extra"]["trained_on"] == "train"
    assert b.meta["train"]["fingerprint"] == local_per_user.train.fingerprint()
    local = ALS(n_factors=6, n_epochs=2).fit(local_per_user.train)
    assert set(b.model.learned_state()) == set(local.learned_state())
    for k in ("seen_indptr_", "seen_indices_", "user_count_", "item_count_"):
        np.testing.assert_array_equal(getattr(b.model, k), getattr(local, k))
    # local means are float32 sums (numpy), Spark sums doubles: equal to ~1e-7
    np.testing.assert_allclose(b.model.fallback_bu_, local.fallback_bu_, atol=1e-6)
    np.testing.assert_allclose(b.model.fallback_bi_, local.fallback_bi_, atol=1e-6)
    ib = load_bundle(trained["ials"][0])
    assert isinstance(ib.model, ImplicitALS) and ib.model.item_factors_.shape[1] == 6


def test_recommend_and_serve_without_spark(trained):
    from movierec.experiment import commands

    path = trained["ials"][0]
    b = load_bundle(path)
    user = int(b.user_map.raw[0])
    text = commands.recommend(path, user, k=5)
    assert f"top 5 for user {user}" in text
    code = f"""
import sys
sys.modules["pyspark"] = None  # any import of pyspark now fails
from movierec.artifacts import load_bundle
from movierec.serving.engine import discover
b = load_bundle({str(path)!r})
items, scores = b.model.recommend([0], k=5)
assert (items >= 0).all() and "pyspark" not in [m for m in sys.modules if sys.modules[m]]
print("ok", len(items[0]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok 5" in r.stdout, r.stderr[-2000:]


def test_compare_on_spark(spark, folder, tmp_path):
    from movierec.spark.run import compare

    cfg = _config(tmp_path, folder, refit=False)
    from movierec.experiment.config import load_config

    text, out = compare(load_config(cfg), out=tmp_path / "cmp")
    res = json.loads((out / "results.json").read_text())
    assert set(res["models"]) == {"als", "ials"} and "popularity" in res["skipped"]
    for name in ("als", "ials"):
        t = res["models"][name]["test"]
        assert 0 < t["ndcg@10"] <= 1 and t["users_evaluated"] > 0
        assert res["models"][name]["validation"]["users_evaluated"] > 0
        assert load_bundle(out / "artifacts" / name).model.n_items_ > 0
    assert res["models"]["als"]["test"]["rmse"] > 0
    assert "not run on Spark: popularity" in text and "ndcg@10 (test)" in text


def test_cli_bad_data_is_one_line(spark, tmp_path, capsys, monkeypatch):
    from movierec import cli

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4,5\n1,3,9,6\n")
    cfg = _config(tmp_path, bad)
    argv = ["movierec", "train", "--config", str(cfg), "--model", "als"]
    argv += ["--engine", "spark", "--master", "local[2]", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "line 3: rating 9 is out of range" in err, err
    monkeypatch.setattr(sys, "argv", [*argv[:5], "popularity", *argv[6:]])
    with pytest.raises(SystemExit):
        cli.main()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no Spark MLlib version" in err, err
