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
from contract import global_mean_rmse

from movierec.artifacts import ARRAYS, HISTORY, TRAIN_DIR, load_bundle
from movierec.errors import ArtifactError, ConfigError
from movierec.experiment import report, tuning
from movierec.experiment.config import parse_config
from movierec.experiment.runner import compare, with_validation
from movierec.split import temporal_per_user

EASE = {"l2": 500.0}
CONFIG = {
    "dataset": "ml-100k",
    "seed": 0,
    "split": {"kind": "temporal_per_user", "n_val": 1, "n_test": 5, "min_train": 5},
    "learning_curve": {"enabled": True, "sizes": [0.1, 1.0]},
    "models": {
        "popularity": {"model": "popularity"},
        "biases": {"model": "biases"},
        "ease": {"model": "ease", "params": EASE},
        "content": {"model": "content"},
        "weighted": {
            "model": "weighted",
            "params": {"models": {"ease": EASE, "content": {}}, "weights": [0.9, 0.1]},
        },
        "ials": {"model": "ials", "params": {"factors": 16, "iterations": 5}},
    },
}


@pytest.fixture(scope="module")
def run(ml100k, tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    cfg = parse_config({**CONFIG, "output": str(out)})
    return compare(cfg, progress=False)


@pytest.fixture(scope="module")
def split(ml100k):
    return temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)


@pytest.fixture(scope="module")
def res(run):
    return json.loads((run.out / "results.json").read_text())


def test_writes_every_file(run) -> None:
    out = run.out
    for name in ("report.html", "results.json", "per_user.parquet"):
        assert (out / name).is_file()
    for label in CONFIG["models"]:
        assert (out / "models" / label / "model.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_chosen_on_validation_reported_on_test(res, split) -> None:
    val, test = res["validation"]["summary"], res["test"]["summary"]
    assert set(val) == set(test) == set(CONFIG["models"])
    # the evaluator's reference protocol: 812 users with a relevant test rating
    assert all(v["users_evaluated"] == 812 for v in test.values())
    n_val = np.unique(split.validation.users[split.validation.ratings >= 4]).size
    assert all(v["users_evaluated"] == n_val for v in val.values())
    # best and order come from validation, whatever test says
    vals = [val[m]["ndcg@10"] for m in res["order"]]
    assert vals == sorted(vals, reverse=True)
    assert res["best"] == max(val, key=lambda m: val[m]["ndcg@10"]) == res["order"][0]
    assert res["chosen_on"] == "validation" and res["refit"] is True
    assert [val[m]["ndcg@10"] for m in val] != [test[m]["ndcg@10"] for m in val]
    d = res["validation_to_test"]
    assert d["model"] == res["best"]
    assert (
        d["validation"] == val[res["best"]]["ndcg@10"] and d["test"] == test[res["best"]]["ndcg@10"]
    )
    assert test["ease"]["ndcg@10"] > test["popularity"]["ndcg@10"] > 0
    # the biases beat the training mean (1.21 on this test part; biases measured 1.03)
    assert 0.8 < test["biases"]["rmse"] < global_mean_rmse(split.train, split.test) - 0.1
    assert len(res["learning_curve"]) == 2
    for label, p in res["production"].items():
        assert p["artifact_mb"] > 0 and p["latency_ms_median"] > 0, label
    assert res["split"]["leaks"]["pairs_train_test"] == 0
    # how well validation ranks the models: Spearman across models, recomputed here
    from scipy.stats import spearmanr

    models = sorted(val)
    rho = spearmanr([val[m]["ndcg@10"] for m in models], [test[m]["ndcg@10"] for m in models])
    assert res["rank_correlation"] == pytest.approx(rho.statistic, abs=1e-12)


def test_test_models_were_refitted_on_train_and_validation(run, split) -> None:
    n = split.train.n_ratings + split.validation.n_ratings
    for label in CONFIG["models"]:
        b = load_bundle(run.out / "models" / label)
        assert b.meta["train"]["n_ratings"] == n, label
        assert b.history.nnz == n
        assert b.meta["extra"]["trained_on"] == "train+validation"  # shown by the service's /ready
    # so the validation items are history: excluded from every test list
    tv = with_validation(split)
    ease = load_bundle(run.out / "models" / "ease").model
    users = np.unique(split.validation.users)
    items, _ = ease.recommend(users, k=10)
    va = set(zip(split.validation.users.tolist(), split.validation.items.tolist(), strict=True))
    assert not any((u, i) in va for u, row in zip(users, items, strict=True) for i in row)
    assert tv.n_ratings == n


def test_per_user_rows_of_both_parts(run, res) -> None:
    per_user = pl.read_parquet(run.out / "per_user.parquet")
    assert set(per_user["part"].unique()) == {"test", "validation"}
    for part in ("test", "validation"):
        mine = per_user.filter((pl.col("model") == "ease") & (pl.col("part") == part))["ndcg@10"]
        assert np.isclose(mine.mean(), res[part]["summary"]["ease"]["ndcg@10"])


def test_significance_is_holm_corrected(res) -> None:
    sig = res["significance"]
    assert set(sig) == set(CONFIG["models"]) - {res["best"]}
    p = {m: d["t_pvalue"] for m, d in sig.items()}
    h = {m: d["t_pvalue_holm"] for m, d in sig.items()}
    assert all(h[m] >= p[m] for m in sig)
    # Holm: the smallest p is multiplied by the number of comparisons
    smallest = min(p, key=p.get)
    assert h[smallest] == pytest.approx(min(1.0, len(sig) * p[smallest]))
    assert all(d["wilcoxon_pvalue_holm"] >= d["wilcoxon_pvalue"] for d in sig.values())


def test_shared_sub_models_and_history_are_stored_once(run) -> None:
    models = run.out / "models"
    # the EASE and content of `weighted` are the models `ease` and `content`: referenced
    meta = json.loads((models / "weighted" / "model.json").read_text())
    refs = meta["state"]["models_"]["items"]
    assert [r["t"] for r in refs] == ["ref", "ref"]
    assert [r["dir"] for r in refs] == ["../ease", "../content"]
    assert not (models / "weighted" / "sub").exists()
    weighted = load_bundle(models / "weighted")
    ease = load_bundle(models / "ease")
    np.testing.assert_array_equal(weighted.model.models_[0].weights_, ease.model.weights_)
    np.testing.assert_array_equal(weighted.model.score([0, 5]), weighted.model.score([0, 5]))
    # one copy of the training history in the run, referenced by every artifact
    histories = sorted(p.relative_to(models).as_posix() for p in models.rglob(HISTORY))
    assert histories == [f"{TRAIN_DIR}/{HISTORY}"]
    assert (weighted.history != ease.history).nnz == 0


def test_a_changed_referenced_model_is_refused(run, tmp_path) -> None:
    copy = tmp_path / "models"
    shutil.copytree(run.out / "models", copy)
    f = copy / "ease" / ARRAYS
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"ease/arrays\.npz"):
        load_bundle(copy / "weighted")
    shutil.rmtree(copy / "ease")
    shutil.copytree(run.out / "models" / "ease", copy / "ease")
    load_bundle(copy / "weighted")  # restored: loads again
    h = copy / TRAIN_DIR / HISTORY
    h.write_bytes(h.read_bytes()[:-8])
    with pytest.raises(ArtifactError, match=r"history\.npz"):
        load_bundle(copy / "popularity")


def test_report_has_every_section_and_plot(run, res) -> None:
    page = (run.out / "report.html").read_text()
    for sec in report.SECTIONS:
        assert f'id="{sec}"' in page
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


def _section(page: str, sec: str) -> str:
    return page.split(f'<section id="{sec}">')[1].split("</section>")[0]


def test_report_states_the_protocol_and_shows_each_table_once(run, res) -> None:
    page = (run.out / "report.html").read_text()
    assert "test is the held-out estimate" in page and "refitted on train + validation" in page
    assert "<pre>" not in page
    models = _section(page, "models")
    assert models.count("<table>") == 1 and "validation<br>ndcg@10" in models
    assert "test (held out)" in models
    # rows in validation order, with the validation number beside the test one
    rows = models.split("<tr")[3:]
    assert [r.split("<td>")[1].split("<")[0] for r in rows] == res["order"]
    val = res["validation"]["summary"][res["best"]]["ndcg@10"]
    assert f"{val:.4f}" in rows[0]
    sig = _section(page, "significance")
    assert "Holm" in sig and sig.count("<tr>") == len(CONFIG["models"])
    buckets = _section(page, "buckets")
    assert buckets.count("<table>") == 1 and "cold (&lt; 20)" in buckets
    assert buckets.count("<tr>") == 1 + len(CONFIG["models"])  # one row per model


def test_tuning_hook_refit_switch_and_no_validation(ml100k, tmp_path, monkeypatch) -> None:
    seen = {}

    def fake_tune(cfg, split, progress=None, report=None):
        seen["train"] = split.train.n_ratings
        report["ease"] = {"trials": 3, "seconds": 0.5}
        return {"ease": {"l2": 123.0}}

    monkeypatch.setattr(tuning, "tune_for_compare", fake_tune)
    small = {
        **CONFIG,
        "learning_curve": {"enabled": False},
        "models": {"popularity": {"model": "popularity"}, "ease": {"model": "ease"}},
        "tuning": {"enabled": True},
        "refit": False,
        "output": str(tmp_path / "o"),
    }
    r = compare(parse_config(small), progress=False)
    res = r.results
    assert res["tuned"] == {"ease": {"l2": 123.0}} and res["refit"] is False
    assert res["config"]["models"]["ease"]["params"]["l2"] == 123.0
    b = load_bundle(r.out / "models" / "ease")
    assert b.model.l2 == 123.0
    # no refit: the test models are the train fits, validation items still excluded
    assert b.meta["train"]["n_ratings"] == seen["train"]
    page = (r.out / "report.html").read_text()
    assert "l2=123.0" in _section(page, "tuning") and "no refit" in page
    with pytest.raises(ConfigError, match="chooses the best model on validation"):
        compare(parse_config({**small, "split": {**CONFIG["split"], "n_val": 0}}), progress=False)


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
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
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
            # the models table fits the page at 1280 px: no horizontal scrolling
            fits = page.evaluate(
                "(() => { const d = document.querySelector('#models .scroll');"
                " return d.scrollWidth <= d.clientWidth; })()"
            )
            assert fits
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
    assert "validation ndcg@10" in r.stdout and "test ndcg@10" in r.stdout
    assert "report: " in r.stdout
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


def test_report_template_escapes_what_it_shows(run, res) -> None:
    plots = [(p["title"], run.out / p["file"], p["caption"]) for p in res["plots"]]
    evil = {**res, "dataset": {**res["dataset"], "name": "<script>alert(1)</script>"}}
    page = report.render(evil, plots)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
