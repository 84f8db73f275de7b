"""`movierec ab simulate`: a replay through the real service, and the fast path's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app as cli
from movierec.experiment import simulate as S
from movierec.serving.abtest import Experiment
from movierec.serving.store import Store

pytestmark = pytest.mark.slow

POP_EASE = """experiments:
  - name: pop-vs-ease
    variants: {control: popularity, treatment: ease}
    guardrails: [mean_rating]
"""
AA = """experiments:
  - name: aa
    variants: {control: popularity, treatment: popularity}
"""


def _cfg(tmp: Path, text: str) -> Path:
    p = tmp / "serve.yaml"
    p.write_text(text)
    return p


def test_split_future_is_each_users_last_ratings(ml100k) -> None:
    w = S.split_future(ml100k)
    assert w.users.size == ml100k.n_users  # every ml-100k user has >= 20 ratings
    assert w.train.n_ratings + sum(len(f) for f in w.future.values()) == ml100k.n_ratings
    u = int(w.users[0])
    dense = int(ml100k.user_map.index(u)[0])
    own = ml100k.users == dense
    past = w.train.timestamps[w.train.users == dense]
    fut = ml100k.item_map.index(np.array(list(w.future[u])))
    fut_ts = ml100k.timestamps[own & np.isin(ml100k.items, fut)]
    assert past.max() <= fut_ts.min() and w.pre[u] == past.size


def test_click_model() -> None:
    assert S.click_prob(None, 0.02) == 0.02
    assert S.click_prob(1.0, 0.02) == 0.02
    assert S.click_prob(5.0, 0.0) == pytest.approx(0.9)
    assert S.click_prob(3.0, 0.0) < S.click_prob(4.0, 0.0)


def test_simulate_through_the_service(ml100k, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'sim.db'}"
    rep = S.simulate(_cfg(tmp_path, POP_EASE), "ml-100k", units=60, days=3, seed=1, db=db)
    sim = rep["simulation"]
    assert rep["units"] == 60 and rep["exposures"] == sim["requests"] >= 60
    exp = Experiment.model_validate(rep["experiment"])
    with Store(db, create=False) as store:
        ex, oc = store.experiment_rows(exp.name)
        assert len(ex) == sim["requests"] and len(oc) == sim["events"] > 0
        # assigned by the service with the documented hash
        assert all(r["variant"] == exp.assign(int(r["unit"].split(":")[1])) for r in ex)
        assert {r["ts"] // 86_400 for r in ex} == {ex[0]["ts"] // 86_400 + d for d in range(3)}
    assert rep["verdict"]["text"] and len(rep["timeline"]["ts"]) >= 3
    # the normal report, from the kept store
    res = CliRunner().invoke(cli, ["ab", "report", "pop-vs-ease", "--db", db])
    assert res.exit_code == 0 and "pop-vs-ease" in res.output


def test_fast_path_aa_skew_and_detection(ml100k, tmp_path: Path) -> None:
    aa = S.repeat(_cfg(tmp_path, AA), "ml-100k", units=300, repeats=20, days=5, seed=0)
    assert aa["srm_flagged"]["rate"] == 0.0
    # peeking every day can only find more than the final look; the sequential test less
    assert aa["peeking_naive_detected"]["rate"] >= aa["fixed_detected"]["rate"]
    assert aa["sequential_detected"]["rate"] <= aa["peeking_naive_detected"]["rate"]
    assert abs(aa["lift"]["mean"]) < 0.05
    cfg = _cfg(tmp_path, POP_EASE)
    skew = S.repeat(cfg, "ml-100k", units=900, repeats=3, days=3, seed=0, skew=0.4)
    assert skew["srm_flagged"]["rate"] == 1.0
    ab = S.repeat(cfg, "ml-100k", units=900, repeats=3, days=3, seed=0)
    assert ab["srm_flagged"]["rate"] == 0.0 and ab["fixed_detected"]["rate"] == 1.0
    assert ab["lift"]["mean"] > 0.1


def test_variant_models_take_given_params(ml100k, tmp_path: Path) -> None:
    from movierec.errors import ConfigError
    from movierec.serving.config import load_serve_config

    exp = S.experiment_of(load_serve_config(_cfg(tmp_path, POP_EASE)))
    w = S.split_future(ml100k)
    fitted = S.fit_models(exp, w.train, 0, {"ease": {"l2": 12.5}})
    assert fitted["ease"].get_params()["l2"] == 12.5
    assert S.fit_models(exp, w.train, 0)["ease"].get_params()["l2"] != 12.5
    with pytest.raises(ConfigError, match="no variant of 'pop-vs-ease' serves"):
        S.fit_models(exp, w.train, 0, {"ials": {"factors": 8}})
    bad = tmp_path / "p.yaml"
    bad.write_text("ease: {lambda: 3}\n")  # a wrong name: refused before any fitting
    cmd = ["ab", "simulate", "--config", str(tmp_path / "serve.yaml"), "--dataset", "ml-100k",
           "--units", "20", "--params", str(bad)]  # fmt: skip
    res = CliRunner().invoke(cli, cmd)
    assert isinstance(res.exception, ConfigError) and str(bad) in str(res.exception)


def test_simulate_leaves_no_temporary_files(ml100k, tmp_path: Path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rep = S.simulate(_cfg(tmp_path, POP_EASE), "ml-100k", units=20, days=1, seed=2)
    assert rep["simulation"]["requests"] >= 20 and rep["simulation"]["store"].startswith("temp")
    assert not list(tmp_path.glob("movierec-ab-*"))
