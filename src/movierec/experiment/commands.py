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

import difflib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import movierec
from movierec.artifacts import Bundle, load_bundle, save
from movierec.atomic import write_table
from movierec.errors import ArtifactError, ConfigError, UnknownIdError
from movierec.experiment.config import RATING_METRICS, load_config

EXPORT_FORMATS = ("csv", "parquet")
_ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "el", "das", "der", "die")
_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")


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
    if not rows:
        return []
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [
            r[c].rjust(widths[c]) if c in right else r[c].ljust(widths[c]) for c in range(len(r))
        ]
        out.append("  " + "  ".join(cells).rstrip())
    return out


# -- title lookup -----------------------------------------------------------------------------
def _normalize(title: str) -> str:
    t = title.lower().strip()
    # MovieLens writes "Godfather, The": compare as "the godfather"
    m = re.match(r"^(.*),\s*(" + "|".join(re.escape(a) for a in _ARTICLES) + r")$", t)
    if m:
        t = f"{m[2]} {m[1]}"
    t = re.sub(r"[^\w\s]", " ", t)
    return " ".join(t.split())


def find_movie(b: Bundle, movie: str | int) -> int:
    """Dense index of a movie given by raw id or (fuzzy) title.

    Exact title matches win (``"toy story"`` is Toy Story, not Toy Story 2); a year in
    parentheses narrows them; otherwise a unique title containing the query is taken.
    Several matches raise :class:`ConfigError` listing them; none raises
    :class:`UnknownIdError` with the closest titles.
    """
    items = b.items
    assert items is not None
    text = str(movie).strip()
    if not text:
        raise ConfigError("give a movie id or title")
    if text.isdigit() and b.item_map is not None:
        pos = b.item_map.index(int(text), missing="minus1")[0]
        if pos >= 0:
            return int(pos)
    m = _YEAR.match(text)
    query, year = (m["title"], int(m["year"])) if m else (text, None)
    q = _normalize(query)
    titles = [_normalize(t or "") for t in items["title"].to_list()]
    years = items["year"].to_list()

    def ok_year(j: int) -> bool:
        return year is None or years[j] == year

    exact = [j for j, t in enumerate(titles) if t == q and ok_year(j)]
    if len(exact) == 1:
        return exact[0]
    cands = exact or [j for j, t in enumerate(titles) if q and q in t and ok_year(j)]
    if len(cands) == 1:
        return cands[0]
    if cands:
        counts = getattr(b.model, "item_count_", None)
        if counts is not None:
            cands.sort(key=lambda j: -int(counts[j]))
        shown = ", ".join(f"{_movie_label(items, j)} [id {items['item'][j]}]" for j in cands[:8])
        more = f" and {len(cands) - 8} more" if len(cands) > 8 else ""
        raise ConfigError(
            f"{text!r} matches {len(cands)} movies: {shown}{more}; give the year, e.g. "
            f'"{_movie_label(items, cands[0])}", or the movie id'
        )
    by_norm: dict[str, int] = {}
    for j, t in enumerate(titles):
        by_norm.setdefault(t, j)
    close = difflib.get_close_matches(q, list(by_norm), n=5, cutoff=0.6)
    hint = (
        "; did you mean: "
        + ", ".join(
            f"{_movie_label(items, by_norm[c])} [id {items['item'][by_norm[c]]}]" for c in close
        )
        if close
        else ""
    )
    raise UnknownIdError(f"no movie matches {text!r}{hint}")


# -- explanations -----------------------------------------------------------------------------
def _because(model: Any, recs: np.ndarray, liked: np.ndarray) -> list[int | None]:
    """For each recommended item, the liked item most similar to it (None if no signal)."""
    if liked.size == 0 or recs.size == 0:
        return [None] * recs.size
    try:
        sims = np.asarray(model._similar_scores(recs.astype(np.int64)))
    except (ConfigError, NotImplementedError, AttributeError):
        return [None] * recs.size
    if hasattr(sims, "toarray"):
        sims = sims.toarray()
    sub = np.asarray(sims)[:, liked]
    best = np.argmax(sub, axis=1)
    return [
        int(liked[b]) if np.isfinite(sub[r, b]) and sub[r, b] > 0 else None
        for r, b in enumerate(best)
    ]


# -- commands ---------------------------------------------------------------------------------
def train(
    config: str | os.PathLike,
    model: str,
    out: str | os.PathLike,
    overrides: list[str] | None = None,
) -> str:
    """``movierec train --config FILE --model LABEL --out DIR [--set key=value ...]``.

    Fits the model labelled ``model`` in the config on the split's training part and
    saves it with the training data (raw ids, titles, ratings) as an artifact in ``out``.
    """
    from movierec.evaluation.metrics import rmse
    from movierec.experiment.tracking import Tracker

    cfg = load_config(config, overrides)
    spec = cfg.spec(model)
    ds = cfg.load_dataset()
    split = cfg.make_split(ds)
    m = cfg.build_model(model)
    t0 = time.perf_counter()
    m.fit(split.train)
    fit_s = time.perf_counter() - t0
    metrics: dict[str, float] = {}
    if m.rating_model and split.validation.n_ratings:
        v = split.validation
        metrics["validation_rmse"] = rmse(m.predict(v.users, v.items), v.ratings)
    extra = {
        "label": model,
        "config": cfg.model_dump(mode="json"),
        "split": {"kind": split.kind, "params": split.params},
        "fit_s": fit_s,
        "metrics": metrics,
    }
    path = save(m, out, train=split.train, extra=extra)
    Tracker.from_config(cfg).log_model_run(
        f"train-{model}",
        params={"model": spec.model, **m.get_params()},
        metrics=metrics,
        timings={"fit": fit_s},
        tags={"dataset": ds.label, "split": split.kind},
    )
    lines = [
        f"trained {model} ({type(m).__name__}) on {ds.label}, {split.kind} train part: "
        f"{split.train.n_ratings:,} ratings, {split.train.n_users:,} users, "
        f"{split.train.n_items:,} movies in {fit_s:.1f} s",
    ]
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
    liked = rated[ratings >= max(float(ratings.mean()), 3.5)] if rated.size else rated
    why = _because(m, recs, liked.astype(np.int64))
    lines.append(f"top {recs.size} for user {user} ({name}):")
    rows = []
    for n, (i, s, w) in enumerate(zip(recs, scores, why, strict=True), 1):
        reason = ""
        if w is not None:
            r = ratings[np.searchsorted(rated, w)]
            reason = f"because you rated {_movie_label(items, w)} {r:.1f}"
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
    tmp = out_dir / ".metadata.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out_dir / "metadata.json")
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

    Searches the params of the model labelled ``model`` on the validation part and
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
    where = f"{folds}-fold CV on the training part" if folds else "the validation part"
    lines = [
        f"tuned {model} on {where}: {len(states)} trials ({n_done} complete, {n_pruned} pruned) "
        f"in {took:.0f} s, {sampler} sampler",
        f"best {metric} {study.best_value:.4f} (trial {study.best_trial.number})",
    ]
    default = study.user_attrs.get("default_value")
    if default is not None:
        better = (
            default - study.best_value if metric in RATING_METRICS else study.best_value - default
        )
        lines.append(f"the config's params scored {default:.4f} (improvement {better:+.4f})")
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
