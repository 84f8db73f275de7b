"""`movierec compare` end to end on the real MovieLens 100K with a few fast models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.experiment import report
from movierec.experiment.config import parse_config
from movierec.experiment.runner import compare

CONFIG = {
    "dataset": "ml-100k",
    "seed": 0,
    "split": {"kind": "temporal_per_user", "n_val": 1, "n_test": 5, "min_train": 5},
    "learning_curve": {"enabled": True, "sizes": [0.1, 1.0]},
    "models": {
        "popularity": {"model": "popularity"},
        "biases": {"model": "biases"},
        "ease": {"model": "ease", "params": {"l2": 500.0}},
        "ease_small_l2": {"model": "ease", "params": {"l2": 50.0}},
        "content": {"model": "content"},
        "ials": {"model": "ials", "params": {"factors": 16, "iterations": 5}},
    },
}


@pytest.fixture(scope="module")
def run(ml100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    cfg = parse_config({**CONFIG, "output": str(out)})
    return compare(cfg, progress=False)


def test_writes_every_file(run) -> None:
    out = run.out
    for name in ("report.html", "results.json", "per_user.parquet"):
        assert (out / name).is_file()
    for label in CONFIG["models"]:
        assert (out / "models" / label / "model.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_results_are_real_numbers(run) -> None:
    res = json.loads((run.out / "results.json").read_text())
    s = res["test"]["summary"]
    assert set(s) == set(CONFIG["models"])
    # the evaluator's reference protocol: 812 users with a relevant test rating
    assert all(v["users_evaluated"] == 812 for v in s.values())
    # the order is by the primary metric, best first
    vals = [s[m]["ndcg@10"] for m in res["order"]]
    assert vals == sorted(vals, reverse=True)
    assert s["ease"]["ndcg@10"] > s["popularity"]["ndcg@10"] > 0
    assert (
        s["biases"]["rmse"] == pytest.approx(s["biases"]["rmse"])
        and 0.8 < s["biases"]["rmse"] < 1.2
    )
    assert res["validation_to_test"]["model"] == res["best"]
    assert len(res["learning_curve"]) == 2
    for label, p in res["production"].items():
        assert (
            p["artifact_mb"] > 0 and p["latency_ms_median"] > 0 and p["throughput_users_s"] > 0
        ), label
    assert res["split"]["leaks"]["pairs_train_test"] == 0
    per_user = pl.read_parquet(run.out / "per_user.parquet")
    assert set(per_user["part"].unique()) == {"test", "validation"}
    mine = per_user.filter((pl.col("model") == "ease") & (pl.col("part") == "test"))["ndcg@10"]
    assert np.isclose(mine.mean(), s["ease"]["ndcg@10"])


def test_report_has_every_section_and_plot(run) -> None:
    page = (run.out / "report.html").read_text()
    for sec in report.SECTIONS:
        assert f'id="{sec}"' in page
    res = json.loads((run.out / "results.json").read_text())
    titles = [p["title"] for p in res["plots"]]
    for want in (
        "Rating distribution",
        "Ratings per movie",
        "ndcg@K",
        "hit@K",
        "Per-activity buckets",
        "Factor norms",
        "TF-IDF top terms",
        "Hybrid item similarity",
    ):
        assert any(want in t for t in titles), want
    assert any(t.startswith("Learning curve") for t in titles)
    assert page.count("data:image/png;base64,") == len(titles)


def test_failure_halfway_leaves_no_report(ml100k, tmp_path, monkeypatch) -> None:
    out = tmp_path / "out"
    cfg = parse_config(
        {**CONFIG, "output": str(out), "models": {"popularity": {"model": "popularity"}}}
    )

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write", boom)
    with pytest.raises(RuntimeError):
        compare(cfg, progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
def test_report_in_headless_chromium(run) -> None:
    """Open report.html in Debian's chromium: every section is there, every image loaded."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: `make test` installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
    ]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page()
            page.goto((run.out / "report.html").as_uri())
            for sec in report.SECTIONS:
                assert page.locator(f"section#{sec}").count() == 1, sec
            imgs = page.locator("img")
            assert imgs.count() >= 9
            broken = page.evaluate(
                "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length"
            )
            assert broken == 0
            assert "ndcg@10" in page.locator("section#models").inner_text()
        finally:
            browser.close()


def test_cli_compare_prints_table_and_path(ml100k, tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    import yaml

    small = {
        **CONFIG,
        "learning_curve": {"enabled": False},
        "models": {"popularity": {"model": "popularity"}},
    }
    cfg.write_text(yaml.safe_dump({**small, "output": str(tmp_path / "o")}))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run(
        [str(Path(".venv/bin/movierec").resolve()), "compare", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "ndcg@10" in r.stdout and "report: " in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**small, "modles": {}}))
    r = subprocess.run(
        [str(Path(".venv/bin/movierec").resolve()), "compare", "--config", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 1 and "modles" in r.stderr and "Traceback" not in r.stderr
