"""What the ``movierec`` CLI commands do, as functions returning printable text.

Each function's parameters map 1:1 to the command's options; the CLI only parses them,
prints the returned text and turns :class:`~movierec.errors.MovierecError` into a one-line
message. Raw MovieLens ids are used throughout (``--user 42`` is userId 42).

=========================================  ===============================================
``movierec train --config F --model L``    :func:`train`
``movierec recommend DIR --user U -k 10``  :func:`recommend`
``movierec similar DIR --movie "title"``   :func:`similar`
``movierec predict DIR --user U --movie M`` :func:`predict`
``movierec export DIR --format csv``       :func:`export`
``movierec tune --config F --model L``     :func:`tune`
=========================================  ===============================================
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import movierec
from movierec.artifacts import Bundle, load_bundle, save
from movierec.atomic import write_table, write_text
from movierec.data import search
from movierec.errors import ArtifactError, ConfigError
from movierec.evaluation.metrics import lower_is_better
from movierec.experiment.config import load_config
from movierec.tables import text_table

EXPORT_FORMATS = ("csv", "parquet")


# -- formatting -------------------------------------------------------------------------------
def _movie_label(items: pl.DataFrame, i: int) -> str:
    row = items.row(int(i), named=True)
    year = f" ({row['year']})" if row.get("year") is not None else ""
    return f"{row['title'] or '(untitled)'}{year}"


def _genres(items: pl.DataFrame, i: int) -> str:
    g = items["genres"][int(i)]
    return "|".join(g) if g is not None and len(g) else "-"


def _need_items(b: Bundle, path: Path) -> pl.DataFrame:
    if b.items is None or b.history is None:
        raise ArtifactError(
            f"{path} was saved without its training data; save it with save(model, path, train)"
        )
    return b.items


def _table(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return text_table(rows, right=right, indent=2).splitlines() if rows else []


# -- title lookup -----------------------------------------------------------------------------
def find_movie(b: Bundle, movie: str | int) -> int:
    """Dense index of a movie given by raw id or (fuzzy) title (see
    :func:`movierec.data.search.find_movie`; ties listed most rated first)."""
    assert b.items is not None
    return search.find_movie(
        b.items, movie, item_map=b.item_map, popularity=getattr(b.model, "item_count_", None)
    )


# -- commands ---------------------------------------------------------------------------------
def train(
    config: str | os.PathLike,
    model: str,
    out: str | os.PathLike,
    overrides: list[str] | None = None,
    on: str = "all",
    feedback: str | None = None,
    engine: str = "local",
    master: str | None = None,
) -> str:
    """``movierec train --config FILE --model LABEL --out DIR [--on all|train] [--feedback URL]``.

    Fits the model labelled ``model`` in the config on every rating of the data set
    (``on="all"``, for serving) or on the split's training part (``on="train"``, which
    also reports the validation RMSE of rating models), and saves it with the training
    data (raw ids, titles, ratings) as an artifact in ``out``; ``trained_on`` is recorded
    in the artifact's extra. With ``feedback`` (a feedback store URL), the stored user
    ratings are merged into the data first (see :func:`movierec.serving.store.merge_feedback`).
    ``engine="spark"`` trains als / ials with Spark MLlib on ``master`` instead (see
    :mod:`movierec.spark`) and saves the same kind of artifact.
    """
    from movierec.evaluation.metrics import rmse
    from movierec.experiment.tracking import Tracker

    if on not in ("all", "train"):
        raise ConfigError(f"unknown --on {on!r}; choose all (serving) or train (the split's part)")
    if engine not in ("local", "spark"):
        raise ConfigError(f"unknown --engine {engine!r}; choose local or spark")
    cfg = load_config(config, overrides)
    if engine == "spark":
        if feedback is not None:
            raise ConfigError("--feedback works with --engine local only")
        from movierec.spark.run import train as spark_train  # needs the `spark` extra

        return spark_train(cfg, model, out, master=master, on=on)
    spec = cfg.spec(model)
    ds = cfg.load_dataset()
    note: dict[str, Any] | None = None
    if feedback is not None:
        from movierec.serving.store import merge_feedback

        ds, note = merge_feedback(ds, feedback)
    split = cfg.make_split(ds) if on == "train" else None
    data = split.train if split is not None else ds
    m = cfg.build_model(model)
    t0 = time.perf_counter()
    m.fit(data)
    fit_s = time.perf_counter() - t0
    metrics: dict[str, float] = {}
    if split is not None and m.rating_model and split.validation.n_ratings:
        v = split.validation
        metrics["validation_rmse"] = rmse(m.predict(v.users, v.items), v.ratings)
    extra = {
        "label": model,
        "config": cfg.model_dump(mode="json"),
        "trained_on": on,
        "split": None if split is None else {"kind": split.kind, "params": split.params},
        "fit_s": fit_s,
        "metrics": metrics,
    }
    if note is not None:
        extra["feedback"] = note
    path = save(m, out, train=data, extra=extra)
    Tracker.from_config(cfg).log_model_run(
        f"train-{model}",
        params={"model": spec.model, **m.get_params()},
        metrics=metrics,
        timings={"fit": fit_s},
        tags={"dataset": ds.label, "split": split.kind if split else "none", "trained_on": on},
    )
    part = f"{split.kind} train part" if split is not None else "all ratings"
    lines = []
    if note is not None:
        lines.append(
            f"merged feedback from {note['store']}: {note['merged']:,} of {note['rows']:,} "
            f"stored ratings ({note['new_users']:,} new users, {note['replaced']:,} replaced "
            f"older ratings); {note['dropped_unknown_movies']:,} dropped for unknown movies"
        )
    lines.append(
        f"trained {model} ({type(m).__name__}) on {ds.label}, {part} (trained_on={on}): "
        f"{data.n_ratings:,} ratings, {data.n_users:,} users, "
        f"{data.n_items:,} movies in {fit_s:.1f} s"
    )
    if metrics:
        lines.append(f"validation RMSE {metrics['validation_rmse']:.4f}")
    lines.append(f"saved to {path}")
    return "\n".join(lines)


def recommend(artifact: str | os.PathLike, user: int, k: int = 10, history: int = 5) -> str:
    """``movierec recommend DIR --user RAW_ID -k 10 [--history 5]``.

    Shows the user's highest-rated training movies, then the top ``k`` unseen movies with
    year, genres and score, and for models with item similarity (factor, kNN, EASE,
    content) the liked movie most similar to each recommendation.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    path = Path(artifact)
    b = load_bundle(path)
    items = _need_items(b, path)
    assert b.history is not None
    u = int(b.user_index(user)[0])
    m = b.model
    row = b.history[u]
    rated, ratings = row.indices, row.data
    name = b.meta.get("extra", {}).get("label") or b.meta.get("name")
    lines: list[str] = []
    if rated.size:
        order = np.lexsort((rated, -ratings))[: max(history, 0)]
        lines.append(
            f"user {user}: {rated.size} training ratings (mean {ratings.mean():.2f}); highest rated:"
        )
        lines += _table(
            [
                [f"{ratings[j]:.1f}", _movie_label(items, rated[j]), _genres(items, rated[j])]
                for j in order
            ],
            right={0},
        )
    else:
        lines.append(f"user {user} has no training ratings: showing the fallback's choices")
    recs, scores = m.recommend([u], k=k)
    recs, scores = recs[0], scores[0]
    keep = recs >= 0
    recs, scores = recs[keep], scores[keep]
    why = m.explain(rated, ratings, recs, n=1)
    lines.append(f"top {recs.size} for user {user} ({name}):")
    rows = []
    for n, (i, s, w) in enumerate(zip(recs, scores, why, strict=True), 1):
        reason = ""
        if w:
            r = ratings[np.searchsorted(rated, w[0])]
            reason = f"because you rated {_movie_label(items, w[0])} {r:.1f}"
        rows.append([f"{n}.", _movie_label(items, i), _genres(items, i), f"{s:.3f}", reason])
    lines += _table(rows, right={0, 3})
    return "\n".join(lines)


def similar(artifact: str | os.PathLike, movie: str, k: int = 10) -> str:
    """``movierec similar DIR --movie "toy story" -k 10`` (title, fuzzy, or raw movie id)."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    path = Path(artifact)
    b = load_bundle(path)
    items = _need_items(b, path)
    i = find_movie(b, movie)
    sims, scores = b.model.similar_items([i], k=k)
    lines = [f"movies most similar to {_movie_label(items, i)} [id {items['item'][i]}]:"]
    rows = [
        [f"{n}.", _movie_label(items, j), _genres(items, j), f"{s:.3f}"]
        for n, (j, s) in enumerate(zip(sims[0], scores[0], strict=True), 1)
        if j >= 0
    ]
    return "\n".join(lines + _table(rows, right={0, 3}))


def predict(artifact: str | os.PathLike, user: int, movie: str) -> str:
    """``movierec predict DIR --user 42 --movie 1`` (movie by raw id or title)."""
    path = Path(artifact)
    b = load_bundle(path)
    items = _need_items(b, path)
    assert b.history is not None
    u = int(b.user_index(user)[0])
    i = find_movie(b, movie)
    pred, fb = b.model.predict([u], [i], return_fallback=True)
    lo, hi = b.model.rating_scale_
    line = (
        f"user {user}, {_movie_label(items, i)} [id {items['item'][i]}]: "
        f"predicted rating {pred[0]:.2f} (scale {lo:g}-{hi:g})"
    )
    if fb[0]:
        line += "; from the biases fallback (no training ratings for this user or movie)"
    row = b.history[u]
    pos = np.searchsorted(row.indices, i)
    if pos < row.indices.size and row.indices[pos] == i:
        line += f"; the user rated it {row.data[pos]:.1f} in training"
    return line


_USER_F = ("user_factors_", "pu_", "user_vectors_")
_ITEM_F = ("item_factors_", "qi_", "item_vectors_")
_USER_B = ("bu_", "user_bias_", "user_biases_")
_ITEM_B = ("bi_", "item_bias_", "item_biases_")
_MEAN = ("mu_", "global_mean_")


def _first(model: Any, names: tuple[str, ...], shape0: int, ndim: int) -> np.ndarray | None:
    for n in names:
        v = getattr(model, n, None)
        if isinstance(v, np.ndarray) and v.ndim == ndim and v.shape[0] == shape0:
            return v
    return None


def export(
    artifact: str | os.PathLike, format: str = "csv", out: str | os.PathLike | None = None
) -> str:
    """``movierec export DIR --format csv|parquet [--out FOLDER]``.

    Writes ``users.<fmt>`` (user_id, n_ratings, bias, f0..), ``items.<fmt>`` (movie_id,
    title, year, genres, n_ratings, bias, f0..) and ``metadata.json`` (the scoring
    formula, global mean, rating scale, params) so the factors serve without movierec.
    The default folder is ``<DIR>-export`` next to the artifact. For SVD++ the user
    vectors include the implicit term, so the dot-product formula is exact.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    path = Path(artifact)
    b = load_bundle(path)
    items = _need_items(b, path)
    assert b.user_map is not None
    m = b.model
    nu, ni = m.n_users_, m.n_items_
    user_f = _first(m, _USER_F, nu, 2)
    if user_f is not None and hasattr(m, "_user_vectors"):
        # models with an implicit term (SVD++) build the effective user vector here
        user_f = np.asarray(m._user_vectors(np.arange(nu)))
    item_f = _first(m, _ITEM_F, ni, 2)
    user_b = _first(m, _USER_B, nu, 1)
    item_b = _first(m, _ITEM_B, ni, 1)
    mean = next((getattr(m, n) for n in _MEAN if isinstance(getattr(m, n, None), float)), None)
    has_f = user_f is not None and item_f is not None
    if not has_f and (user_b is None or item_b is None):
        raise ConfigError(
            f"{type(m).__name__} has no user/item factors or biases to export; "
            "export works for factor models (svd, svdpp, als, nmf, ials, bpr) and biases"
        )
    out_dir = Path(out) if out is not None else path.parent / f"{path.name}-export"
    out_dir.mkdir(parents=True, exist_ok=True)
    users = {"user_id": b.user_map.raw, "n_ratings": np.asarray(m.user_count_, np.int32)}
    its: dict[str, Any] = {
        "movie_id": items["item"].to_numpy(),
        "title": items["title"].to_list(),
        "year": items["year"].to_list(),
        "genres": ["|".join(g) for g in items["genres"].to_list()],
        "n_ratings": np.asarray(m.item_count_, np.int32),
    }
    if user_b is not None and item_b is not None:
        users["bias"] = np.asarray(user_b, np.float64)
        its["bias"] = np.asarray(item_b, np.float64)
    n_f = 0
    if has_f:
        assert user_f is not None and item_f is not None
        n_f = int(user_f.shape[1])
        for f in range(n_f):
            users[f"f{f}"] = user_f[:, f]
            its[f"f{f}"] = item_f[:, f]
    terms = []
    if mean is not None and user_b is not None:
        terms += ["global_mean", "users.bias", "items.bias"]
    if has_f:
        terms.append("dot(users.f*, items.f*)")
    formula = " + ".join(terms)
    if m.rating_model:
        lo, hi = m.rating_scale_
        formula = f"rating = clip({formula}, {lo:g}, {hi:g})"
    else:
        formula = f"score = {formula} (rank by score; higher is better)"
    meta = {
        "movierec_version": movierec.__version__,
        "model": b.meta.get("name"),
        "class": b.meta.get("class"),
        "label": b.meta.get("extra", {}).get("label"),
        "params": {
            k: v
            for k, v in m.get_params().items()
            if isinstance(v, str | int | float | bool | type(None))
        },
        "rating_model": bool(m.rating_model),
        "formula": formula,
        "global_mean": mean,
        "rating_scale": list(m.rating_scale_),
        "n_factors": n_f,
        "n_users": nu,
        "n_items": ni,
        "train_fingerprint": b.meta.get("train", {}).get("fingerprint"),
        "files": {"users": f"users.{format}", "items": f"items.{format}"},
        "note": "users/items with n_ratings == 0 had no training data: serve them a fallback",
    }
    write_table(pl.DataFrame(users), out_dir / f"users.{format}", format)
    write_table(pl.DataFrame(its), out_dir / f"items.{format}", format)
    write_text(out_dir / "metadata.json", json.dumps(meta, indent=1))
    return (
        f"exported {nu:,} users and {ni:,} movies ({n_f} factors"
        f"{', with biases' if 'bias' in users else ''}) to {out_dir}: "
        f"users.{format}, items.{format}, metadata.json\n{formula}"
    )


def tune(
    config: str | os.PathLike,
    model: str,
    trials: int = 30,
    metric: str | None = None,
    sampler: str = "tpe",
    folds: int | None = None,
    seed: int | None = None,
    out: str | os.PathLike | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
) -> str:
    """``movierec tune --config F --model LABEL [--trials 30] [--metric ndcg@10|rmse]
    [--sampler tpe|grid] [--folds N] [--seed S] [--out FILE] [--timeout SEC] [--set k=v]``.

    Searches the params of the model labelled ``model`` on the tuning split of the training
    part (each user's last ``tuning.n_tune`` training ratings), checks them on validation and
    writes the config with the best params to ``out`` (default ``<config>-<label>-tuned.yaml``
    next to the config).
    """
    import optuna

    from movierec.experiment.tracking import Tracker
    from movierec.experiment.tuning import tune as run_tune

    cfg = load_config(config, overrides)
    cfg.spec(model)
    cp = Path(config)
    target = Path(out) if out is not None else cp.with_name(f"{cp.stem}-{model}-tuned.yaml")
    t0 = time.perf_counter()
    best, study = run_tune(
        cfg,
        model,
        trials=trials,
        metric=metric,
        sampler=sampler,
        folds=folds,
        seed=seed,
        out=target,
        timeout=timeout,
    )
    took = time.perf_counter() - t0
    metric = study.user_attrs["metric"]
    states = [t.state for t in study.trials]
    n_done = states.count(optuna.trial.TrialState.COMPLETE)
    n_pruned = states.count(optuna.trial.TrialState.PRUNED)
    where = study.user_attrs["objective"]
    lines = [
        f"tuned {model} on {where}: {len(states)} trials ({n_done} complete, {n_pruned} pruned) "
        f"in {took:.0f} s, {sampler} sampler",
        f"best {metric} {study.best_value:.4f} (trial {study.best_trial.number})",
    ]
    default = study.user_attrs.get("default_value")
    if default is not None:
        better = (
            default - study.best_value if lower_is_better(metric) else study.best_value - default
        )
        lines.append(f"the config's params scored {default:.4f} (improvement {better:+.4f})")
    if "validation_tuned" in study.user_attrs:
        d = study.user_attrs.get("validation_default")
        was = "" if d is None else f" (the config's params {d:.4f})"
        lines.append(
            f"check on the validation part (not used to choose): {metric} "
            f"{study.user_attrs['validation_tuned']:.4f}{was}"
        )
    if study.user_attrs.get("ignored_params"):
        lines.append(
            f"ignored (not params of the model): {', '.join(study.user_attrs['ignored_params'])}"
        )
    lines.append("best params: " + ", ".join(f"{k}={v!r}" for k, v in best.items()))
    lines.append(f"wrote {target}")
    Tracker.from_config(cfg).log_model_run(
        f"tune-{model}",
        params={"model": cfg.spec(model).model, **best},
        metrics={f"best_{metric}": study.best_value, "trials": len(states)},
        timings={"tune": took},
    )
    return "\n".join(lines)
