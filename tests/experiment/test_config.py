"""The YAML experiment config: strict schema, one-line errors, overrides, dump round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from movierec.errors import ConfigError
from movierec.experiment.config import (
    ExperimentConfig,
    dump_config,
    load_config,
    parse_config,
)
from movierec.models import REGISTRY, model_class

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = {"models": {"pop": {"model": "popularity"}}}


def _err(raw: dict, **kw) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "exp.yaml", **kw)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("exp.yaml: ")
    return msg


@pytest.mark.parametrize("name", ["ml-100k.yaml", "ml-25m.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    cfg = load_config(ROOT / "configs" / name)
    assert cfg.dataset == name.removesuffix(".yaml")
    for label, spec in cfg.available_models().items():
        m = cfg.build_model(label)
        assert isinstance(m, model_class(spec.model)), label
        assert {k: m.get_params()[k] for k in spec.params} == spec.params


def test_ml100k_lists_every_registered_model() -> None:
    cfg = load_config(ROOT / "configs" / "ml-100k.yaml", check_models=False)
    assert {s.model for s in cfg.models.values()} == set(REGISTRY)
    # everything not marked optional must be importable today
    for spec in cfg.models.values():
        if not spec.optional:
            model_class(spec.model)


def test_unknown_keys_are_named_with_their_path() -> None:
    assert "exp.yaml: foo: unknown key" in _err({**MINIMAL, "foo": 1})
    assert "metrics.tresh: unknown key" in _err({**MINIMAL, "metrics": {"tresh": 4}})
    msg = _err({**MINIMAL, "split": {"kind": "temporal_per_user", "n_vall": 2}})
    assert "split.n_vall: unknown key" in msg
    assert "models.pop.parms: unknown key" in _err(
        {"models": {"pop": {"model": "popularity", "parms": {}}}}
    )
    msg = _err({"models": {"pop": {"model": "popularity", "params": {"treshold": 1}}}})
    assert "models.pop.params.treshold: unknown parameter of popularity" in msg
    assert "threshold" in msg  # lists the valid names


def test_bad_values_are_explained() -> None:
    assert "unknown split kind 'temporal'" in _err({**MINIMAL, "split": {"kind": "temporal"}})
    assert "unknown model 'svdd'" in _err({"models": {"a": {"model": "svdd"}}})
    assert "7 is not in k" in _err({**MINIMAL, "metrics": {"primary": "ndcg@7"}})
    assert "needs a cut-off" in _err({**MINIMAL, "metrics": {"primary": "ndcg"}})
    assert "every k must be >= 1" in _err({**MINIMAL, "metrics": {"k": [0, 10]}})
    assert "split.n_test" in _err({**MINIMAL, "split": {"kind": "temporal_per_user", "n_test": -1}})
    assert "buckets" in _err({**MINIMAL, "buckets": [100, 20]})
    assert "models" in _err({"models": {}})
    # several problems are all reported, in one line
    msg = _err({"models": {"a": {"model": "svdd"}}, "seed": "x", "bar": 2})
    assert "models.a" in msg and "seed" in msg and "bar" in msg


def test_same_model_under_two_labels_and_label_as_default_name() -> None:
    cfg = parse_config(
        {
            "models": {
                "pop": {"model": "popularity"},
                "pop_recent": {"model": "popularity", "params": {"half_life_days": 30}},
                "biases": None,
                "popularity": {"params": {"threshold": 4.0}},
            }
        }
    )
    assert cfg.models["biases"].model == "biases"
    assert cfg.models["popularity"].model == "popularity"
    a, b = cfg.build_model("pop"), cfg.build_model("pop_recent")
    assert type(a) is type(b) and b.half_life_days == 30 and a.half_life_days is None
    with pytest.raises(ConfigError, match="no model labelled 'nope'"):
        cfg.build_model("nope")


def test_seed_fills_random_state_and_random_split_seed() -> None:
    cfg = parse_config(
        {
            "seed": 7,
            "split": {"kind": "random_holdout", "test_fraction": 0.1},
            "models": {
                "a": {"model": "ials"},
                "b": {"model": "ials", "params": {"random_state": 1}},
            },
        }
    )
    assert cfg.build_model("a").random_state == 7
    assert cfg.build_model("b").random_state == 1
    assert cfg.split_params() == {"test_fraction": 0.1, "val_fraction": 0.1, "seed": 7}


def test_overrides_strings_and_dicts(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"models": {"pop": {"model": "popularity"}}}))
    cfg = load_config(
        p,
        [
            "seed=3",
            "metrics.k=[5, 10]",
            "metrics.primary=recall@5",
            "models.pop.params.half_life_days=14.5",
            "models.ease.model=ease",
        ],
    )
    assert cfg.seed == 3 and cfg.metrics.k == [5, 10] and cfg.metrics.primary == "recall@5"
    assert cfg.models["pop"].params == {"half_life_days": 14.5}
    assert set(cfg.models) == {"pop", "ease"}
    cfg = load_config(p, {"split.kind": "temporal_global", "split.fractions": [0.6, 0.2, 0.2]})
    assert cfg.split.kind == "temporal_global" and cfg.split_params()["fractions"] == (
        0.6,
        0.2,
        0.2,
    )
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(p, ["seed"])
    with pytest.raises(ConfigError, match="seed.x"):
        load_config(p, ["seed=1", "seed.x=2"])
    with pytest.raises(ConfigError, match="c.yaml: foo: unknown key"):
        load_config(p, ["foo=1"])


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  pop: {model: popularity\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: invalid YAML"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(lst)


def test_dump_round_trip_is_exact_and_atomic(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs" / "ml-100k.yaml", check_models=False)
    out = dump_config(cfg, tmp_path / "sub" / "again.yaml", header="tuned\nby a test")
    text = out.read_text()
    assert text.startswith("# tuned\n# by a test\n")
    back = load_config(out, check_models=False)
    assert back.model_dump() == cfg.model_dump()
    assert [p.name for p in out.parent.iterdir()] == ["again.yaml"]  # no temp file left
    # optional/search appear only where set
    raw = yaml.safe_load(text)
    assert "optional" not in raw["models"]["svd"] and raw["models"]["ncf"]["optional"] is True


def test_optional_models_are_skipped_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "ghost", "movierec.models.ghost_not_there:Ghost")
    cfg = parse_config(
        {"models": {"pop": {"model": "popularity"}, "g": {"model": "ghost", "optional": True}}}
    )
    assert list(cfg.available_models()) == ["pop"]
    msg = _err({"models": {"g": {"model": "ghost"}}})
    assert "models.g" in msg and "optional: true" in msg
    # without model checks the config still reads (e.g. to inspect it elsewhere)
    assert isinstance(
        parse_config({"models": {"g": {"model": "ghost"}}}, check_models=False), ExperimentConfig
    )


def test_split_and_data_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workflow_data import write_checkerboard

    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path / "home"))
    data = write_checkerboard(tmp_path / "cb")
    for split in (
        {"kind": "temporal_per_user", "n_val": 2, "n_test": 3},
        {"kind": "temporal_global", "fractions": [0.6, 0.2, 0.2]},
        {"kind": "random_holdout", "test_fraction": 0.25, "val_fraction": 0.25},
    ):
        cfg = parse_config({**MINIMAL, "data": str(data), "split": split})
        ds = cfg.load_dataset()
        s = cfg.make_split(ds)
        assert s.kind == split["kind"]
        assert s.train.n_ratings + s.validation.n_ratings + s.test.n_ratings == ds.n_ratings
        assert s.validation.n_ratings > 0 and s.test.n_ratings > 0
    from movierec.errors import DataError

    cfg = parse_config({**MINIMAL, "data": str(tmp_path / "nowhere")})
    with pytest.raises(DataError):
        cfg.load_dataset()
