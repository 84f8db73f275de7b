"""The YAML experiment config: a strict pydantic schema, loading with overrides, dumping.

Every level forbids unknown keys, so a typo is an error naming the key path, and every
model's params are checked by building the model. A minimal config::

    dataset: ml-100k
    split: {kind: temporal_per_user, n_val: 1, n_test: 5}
    models:
      svd: {model: svd, params: {n_factors: 100}}
      pop: {model: popularity}

Relative paths (``data``, ``output``) are taken relative to the current directory.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from movierec.atomic import write_text
from movierec.errors import ConfigError, DataError, MovierecError, SourceUnreachableError
from movierec.evaluation.metrics import RATING_METRICS

_STRICT = ConfigDict(extra="forbid", validate_assignment=False)
_METRIC = re.compile(r"^(?P<name>[a-z_]+)(@(?P<k>\d+))?$")


class _Strict(BaseModel):
    model_config = _STRICT


# -- split ------------------------------------------------------------------------------------
class TemporalPerUser(_Strict):
    """Each user's last ``n_test`` ratings to test, the ``n_val`` before them to validation."""

    kind: Literal["temporal_per_user"] = "temporal_per_user"
    n_val: int = Field(1, ge=0)
    n_test: int = Field(5, ge=0)
    min_train: int = Field(5, ge=0)


class TemporalGlobal(_Strict):
    """One global time cut: train / validation / test fractions in time order."""

    kind: Literal["temporal_global"]
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)


class RandomHoldout(_Strict):
    """Random ratings to test and validation (``seed`` defaults to the experiment seed)."""

    kind: Literal["random_holdout"]
    test_fraction: float = Field(0.2, gt=0, lt=1)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    seed: int | None = None


SplitConfig = Annotated[
    TemporalPerUser | TemporalGlobal | RandomHoldout, Field(discriminator="kind")
]
SPLIT_KINDS = ("temporal_per_user", "temporal_global", "random_holdout")


# -- models -----------------------------------------------------------------------------------
_SCALAR_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def check_param_types(model: str, params: dict[str, Any]) -> None:
    """Params annotated as plain scalars (``int``, ``float | None``, ...) must be given as
    such: YAML ``true`` for ``n_factors`` or ``"abc"`` for ``l2`` is a ConfigError."""
    import inspect

    from movierec.models import model_class

    sig = inspect.signature(model_class(model).__init__)
    for name, v in params.items():
        p = sig.parameters.get(name)
        if p is None or not isinstance(p.annotation, str):
            continue
        kinds = [t.strip() for t in p.annotation.split("|")]
        if not all(k in _SCALAR_TYPES or k == "None" for k in kinds):
            continue
        if v is None and "None" in kinds:
            continue
        ok = any(
            isinstance(v, _SCALAR_TYPES[k]) and (k == "bool" or not isinstance(v, bool))
            for k in kinds
            if k != "None"
        )
        if not ok:
            want = " or ".join({"int": "an integer", "float": "a number"}.get(k, k) for k in kinds)
            hint = (
                "; write numbers without quotes, e.g. 0.5 or 1.0e+3" if isinstance(v, str) else ""
            )
            raise ConfigError(f"params.{name}: expected {want}, got {v!r}{hint}")


class ModelSpec(_Strict):
    """One model of the experiment under a label.

    Attributes
    ----------
    model : str
        Registry name (``svd``, ``ials``, ...); defaults to the label.
    params : dict
        Constructor params, checked by building the model.
    optional : bool
        Skip (with a note) instead of failing when the model's module or optional
        dependency (e.g. torch for ``ncf``) is not installed.
    search : dict, optional
        A search space for ``movierec tune`` replacing the built-in one (same format as
        the model class's ``search_space``, see :mod:`movierec.experiment.tuning`).
    """

    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    optional: bool = False
    search: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _build(self, info: ValidationInfo) -> ModelSpec:
        ctx = info.context or {}
        if not ctx.get("check_models", True):
            return self
        from movierec.models import REGISTRY, make_model, model_class

        if self.model.lower() not in REGISTRY:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(REGISTRY)}")
        try:
            model_class(self.model)
        except ConfigError as e:
            if self.optional:
                return self
            raise ValueError(f"{e} (set `optional: true` to skip it when missing)") from None
        valid = model_class(self.model)._param_names()
        for name in self.params:
            if name not in valid:
                raise ValueError(
                    f"@params.{name}@unknown parameter of {self.model}; valid: {', '.join(valid)}"
                )
        try:
            check_param_types(self.model, self.params)
        except ConfigError as e:
            sub, _, msg = str(e).partition(": ")
            raise ValueError(f"@{sub}@{msg}") from None
        try:
            make_model(self.model, **self.params)
        except (ConfigError, TypeError, ValueError) as e:
            raise ValueError(f"@params@{e}") from None
        return self

    def available(self) -> bool:
        """Whether the model's class can be imported here."""
        from movierec.models import model_class

        try:
            model_class(self.model)
        except ConfigError:
            return False
        return True


# -- the rest ---------------------------------------------------------------------------------
class MetricsConfig(_Strict):
    """Cut-offs, relevance threshold and the metric that ranks models and drives tuning."""

    k: list[int] = Field(default_factory=lambda: [5, 10, 20], min_length=1)
    threshold: float = 4.0
    primary: str = "ndcg@10"

    @field_validator("k")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("every k must be >= 1")
        return sorted(set(v))

    @model_validator(mode="after")
    def _primary_in_k(self) -> MetricsConfig:
        m = _METRIC.match(self.primary)
        if not m:
            raise ValueError(f"primary {self.primary!r} must look like 'ndcg@10' or 'rmse'")
        if m["k"] is None and m["name"] not in RATING_METRICS:
            raise ValueError(f"primary {self.primary!r} needs a cut-off, e.g. '{m['name']}@10'")
        if m["k"] is not None and int(m["k"]) not in self.k:
            raise ValueError(f"primary {self.primary!r}: {m['k']} is not in k {self.k}")
        return self


class LearningCurveConfig(_Strict):
    """Accuracy against training-set size (fractions of the training part)."""

    enabled: bool = False
    sizes: list[float] = Field(default_factory=lambda: [0.1, 0.25, 0.5, 1.0], min_length=1)

    @field_validator("sizes")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < x <= 1 for x in v):
            raise ValueError("sizes are fractions of the training part in (0, 1]")
        return sorted(set(v))


class TrackingConfig(_Strict):
    """MLflow tracking; the default URI is ``sqlite:///<output>/mlflow.db``."""

    enabled: bool = False
    uri: str | None = None
    experiment: str = "movierec"


class ModelTuning(_Strict):
    """Per-model overrides of the ``tuning:`` defaults."""

    trials: int | None = Field(None, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    metric: str | None = None


class TuningConfig(_Strict):
    """Tune models before ``compare`` fits them, on a tuning split inside the training part.

    The tuning split holds out each user's last ``n_tune`` training ratings (the ratings
    just before her validation ones); a model is fitted on the rest of the training part
    and scored there, so neither validation nor test ratings take part in the choice.

    Attributes
    ----------
    enabled : bool
        Tune in ``compare`` (``movierec tune`` uses the other keys either way).
    models : list of labels, or label -> {trials, time_budget_s, metric}, optional
        Which models; None tunes every model that has a search space.
    trials : int
        Trials per model (Optuna TPE, seeded by ``seed``).
    time_budget_s : float, optional
        Seconds for all models together; what one model leaves unused goes to the next.
    model_time_budget_s : float, optional
        Seconds per model (each stops at the smaller of this and its share of the total).
    metric : str, optional
        Objective; default ``metrics.primary``.
    n_tune, min_train : int
        Tuning split: each user's last ``n_tune`` training ratings, for users who keep at
        least ``min_train`` ratings to fit on.
    """

    enabled: bool = False
    models: dict[str, ModelTuning | None] | None = None
    trials: int = Field(20, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    model_time_budget_s: float | None = Field(None, gt=0)
    metric: str | None = None
    n_tune: int = Field(5, ge=1)
    min_train: int = Field(5, ge=1)

    @field_validator("models", mode="before")
    @classmethod
    def _list_of_labels(cls, v: Any) -> Any:
        # `models: [ials, ease]` means those labels with the section's defaults
        return dict.fromkeys(v) if isinstance(v, list | tuple) else v

    @model_validator(mode="after")
    def _metrics(self) -> TuningConfig:
        per = self.models.values() if self.models else []
        for m in [self.metric, *(s.metric for s in per if s is not None)]:
            if m is None:
                continue
            g = _METRIC.match(m)
            if not g or (g["k"] is None and g["name"] not in RATING_METRICS):
                raise ValueError(f"metric {m!r} must be rmse, mae or look like 'ndcg@10'")
        return self

    def per_model(self, label: str) -> ModelTuning:
        """The settings for ``label`` with the section's defaults filled in."""
        own = (self.models or {}).get(label) or ModelTuning()
        return ModelTuning(
            trials=own.trials or self.trials,
            time_budget_s=own.time_budget_s or self.model_time_budget_s,
            metric=own.metric or self.metric,
        )


class ExperimentConfig(_Strict):
    """A whole experiment: data, split, models, metrics and where results go."""

    dataset: str = "ml-100k"
    data: Path | None = None
    synthetic_fallback: bool = False
    seed: int = 0
    output: Path = Path("runs")
    split: SplitConfig = Field(default_factory=TemporalPerUser)
    models: dict[str, ModelSpec] = Field(min_length=1)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    learning_curve: LearningCurveConfig = Field(default_factory=LearningCurveConfig)
    buckets: tuple[int, int] = (20, 100)
    #: compare: refit every model on train + validation before the test evaluation (the
    #: validation ratings are then history); False tests the models fitted on train only,
    #: with validation items still excluded from each user's candidates
    refit: bool = True
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)

    @field_validator("models", mode="before")
    @classmethod
    def _default_model_names(cls, v: Any) -> Any:
        # `svd: {params: ...}` or `svd:` means the model registered as "svd"
        if isinstance(v, dict):
            out = {}
            for label, spec in v.items():
                spec = {} if spec is None else spec
                if isinstance(spec, dict) and "model" not in spec:
                    spec = {"model": str(label), **spec}
                out[label] = spec
            return out
        return v

    @model_validator(mode="after")
    def _tuning_models(self, info: ValidationInfo) -> ExperimentConfig:
        tm = self.tuning.models
        if tm is None:
            return self
        for label in tm:
            if label not in self.models:
                raise ValueError(
                    f"@tuning.models@{label!r} is not a model label; have: {', '.join(self.models)}"
                )
        if not (info.context or {}).get("check_models", True):
            return self
        from movierec.models import model_class

        for label in tm:
            spec = self.models[label]
            if not spec.available():
                continue
            cls = model_class(spec.model)
            if not (spec.search or cls.search_space):
                raise ValueError(
                    f"@tuning.models@{label} ({spec.model}) has no search space; "
                    f"add `search:` under models.{label}"
                )
            metric = self.tuning.per_model(label).metric or self.metrics.primary
            if metric in RATING_METRICS and not cls.rating_model:
                raise ValueError(
                    f"@tuning.models@{label} ranks items and has no {metric}; tune it on ndcg@10"
                )
        return self

    @field_validator("buckets")
    @classmethod
    def _ascending(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 < v[0] < v[1]:
            raise ValueError("buckets are two training-rating counts 0 < cold_below < warm_from")
        return v

    # -- helpers for the runner, tuning and the CLI -------------------------------------------
    def split_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`movierec.split.make_split` (seed filled in)."""
        p = self.split.model_dump(exclude={"kind"})
        if isinstance(self.split, RandomHoldout) and p["seed"] is None:
            p["seed"] = self.seed
        if isinstance(self.split, TemporalGlobal):
            p["fractions"] = tuple(p["fractions"])
        return p

    def spec(self, label: str) -> ModelSpec:
        """The model spec under ``label`` (ConfigError listing the labels)."""
        if label not in self.models:
            raise ConfigError(
                f"no model labelled {label!r} in the config; have: {', '.join(self.models)}"
            )
        return self.models[label]

    def available_models(self) -> dict[str, ModelSpec]:
        """The models to run: all, minus optional ones whose module is missing."""
        return {k: s for k, s in self.models.items() if not s.optional or s.available()}

    def build_model(self, label: str, **overrides: Any) -> Any:
        """A new, unfitted model for ``label``; ``random_state`` defaults to ``seed``."""
        from movierec.models import make_model, model_class

        s = self.spec(label)
        params = {**s.params, **overrides}
        if "random_state" in model_class(s.model)._param_names() and "random_state" not in params:
            params["random_state"] = self.seed
        return make_model(s.model, **params)

    def load_dataset(self) -> Any:
        """The data set: ``data`` (folder) or ``dataset`` (release name or folder).

        With ``synthetic_fallback``, a release whose sources cannot be reached is replaced
        by a generated one of the same shape (marked synthetic in every report). Data of
        your own (``data``, or a folder) that fails to load is always an error.
        """
        from movierec.data import load

        source = str(self.data) if self.data is not None else self.dataset
        try:
            return load(source)
        except SourceUnreachableError as e:
            if not self.synthetic_fallback or self.data is not None:
                raise
            from movierec.data.synth import generate

            print(
                f"no source reachable for {self.dataset} ({e}); "
                "running on a generated look-alike, labelled synthetic",
                file=sys.stderr,
            )
            out = Path(self.output) / "synthetic-data" / Path(self.dataset).name
            if not (out / "ratings.csv").exists():
                try:
                    generate(self.dataset, out, seed=self.seed, force=True)
                except (KeyError, MovierecError) as g:
                    raise DataError(
                        f"{e}; and no synthetic fallback for {self.dataset!r}: {g}"
                    ) from g
            return load(out, synthetic=True)

    def make_split(self, ds: Any) -> Any:
        """Split ``ds`` as configured."""
        from movierec.split import make_split

        return make_split(ds, self.split.kind, **self.split_params())


# -- loading ----------------------------------------------------------------------------------
class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (instead of keeping
    the last one silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (give each key once)", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


def yaml_load(text: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, but a duplicate key is a ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _loc(loc: tuple[Any, ...]) -> str:
    parts = []
    for j, p in enumerate(loc):
        # discriminated unions put the tag in the path: split.temporal_per_user.n_val
        if j > 0 and loc[j - 1] == "split" and p in SPLIT_KINDS:
            continue
        parts.append(str(p))
    return ".".join(parts) or "(top level)"


def _message(err: ValidationError, source: str) -> str:
    out = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        loc = _loc(e["loc"])
        if msg.startswith("@"):
            # a model validator names a key below its own location: @params.name@message
            sub, _, msg = msg[1:].partition("@")
            loc = sub if loc == "(top level)" else f"{loc}.{sub}"
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        elif e["type"] == "union_tag_invalid":
            tag = (e.get("ctx") or {}).get("tag", "?")
            msg = f"unknown split kind {tag!r}; choose one of {', '.join(SPLIT_KINDS)}"
        out.append(f"{loc}: {msg}")
    return f"{source}: " + "; ".join(out)


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = d
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted!r}: {k!r} is not a mapping")
        node = nxt
    node[keys[-1]] = value


def _apply_overrides(raw: dict[str, Any], overrides: Any) -> None:
    if not overrides:
        return
    items = overrides.items() if isinstance(overrides, dict) else None
    if items is None:
        pairs = []
        for o in overrides:
            key, eq, value = str(o).partition("=")
            if not eq or not key.strip():
                raise ConfigError(f"override {o!r} must look like key.path=value")
            try:
                pairs.append((key.strip(), yaml.safe_load(value)))
            except yaml.YAMLError as e:
                raise ConfigError(f"override {o!r}: the value is not valid YAML: {e}") from None
        items = pairs
    for key, value in items:
        _set_path(raw, key, value)


def parse_config(
    raw: dict[str, Any], source: str = "config", overrides: Any = None, *, check_models: bool = True
) -> ExperimentConfig:
    """Validate an already-parsed config mapping (see :func:`load_config`)."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the config must be a mapping of keys, got {type(raw).__name__}"
        )
    raw = dict(raw)
    _apply_overrides(raw, overrides)
    try:
        return ExperimentConfig.model_validate(raw, context={"check_models": check_models})
    except ValidationError as e:
        raise ConfigError(_message(e, source)) from None


def load_config(
    path: str | os.PathLike, overrides: Any = None, *, check_models: bool = True
) -> ExperimentConfig:
    """Read and validate a YAML experiment config.

    Parameters
    ----------
    path : path
        The YAML file.
    overrides : list of "key.path=value" strings, or dict of key path -> value, optional
        Applied before validation; values are parsed as YAML (``seed=3``,
        ``models.svd.params.n_factors=50``, ``metrics.k=[5,10]``).
    check_models : bool
        Build every model to check its params (turn off to read a config whose models
        are not installed here).

    Raises
    ------
    ConfigError
        One line naming the file, the key path and what is wrong.
    """
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {p}: {e.strerror or e}") from None
    try:
        raw = yaml_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}:{where}: invalid YAML: {problem}") from None
    return parse_config(raw or {}, str(p), overrides, check_models=check_models)


def dump_config(cfg: ExperimentConfig, path: str | os.PathLike, header: str | None = None) -> Path:
    """Write ``cfg`` as YAML (atomically: temp file in the same folder, fsync, rename).

    ``header`` lines are written first as ``#`` comments.
    """
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    data = cfg.model_dump(mode="json")
    for spec in data["models"].values():
        if not spec.get("optional"):
            spec.pop("optional", None)
        if spec.get("search") is None:
            spec.pop("search", None)
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    return write_text(p, text)
