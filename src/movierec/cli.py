"""The `movierec` command. User errors print one line and exit 1, without a traceback."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from movierec.errors import MovierecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(no_args_is_help=True, help="Fetch, inspect and generate MovieLens data.")
app.add_typer(data_app, name="data")


def _tty() -> bool:
    return sys.stderr.isatty()


def _echo(text: str) -> None:
    typer.echo(text)


def _load(dataset: str, allow_synthetic: bool = False):
    """Load a release or folder; with ``allow_synthetic``, fall back to generated ml-100k."""
    from movierec.data import load
    from movierec.errors import FetchError

    try:
        return load(dataset)
    except FetchError as e:
        if not allow_synthetic:
            raise
        from movierec.data.fetch import home
        from movierec.data.synth import generate

        typer.echo(
            f"no source reachable for {dataset} ({e}); using a generated ml-100k-shaped set (synthetic)",
            err=True,
        )
        out = home() / "synthetic" / "ml-100k"
        if not (out / "ratings.csv").exists():
            generate("ml-100k", out, seed=0)
        (out / ".movierec-synthetic").touch()
        return load(out, synthetic=True)


# -- data ------------------------------------------------------------------------------------
@data_app.command("list")
def data_list() -> None:
    """Known releases and which are cached."""
    from movierec.data.fetch import list_releases

    for r in list_releases():
        mark = "cached" if r["cached"] else "-"
        _echo(f"{r['name']:<16} {r['size']:>8}  {mark:<7} {r['description']}")


@data_app.command("fetch")
def data_fetch(
    name: str,
    base_url: Annotated[str | None, typer.Option(help="Mirror of files.grouplens.org")] = None,
    no_mirror: Annotated[
        bool, typer.Option("--no-mirror", help="Never use the PyPI mirror")
    ] = False,
    timeout: float = 30.0,
) -> None:
    """Download a release (checksum verified, extracted atomically) into the cache."""
    from movierec.data.fetch import fetch

    path = fetch(name, base_url=base_url, mirror=not no_mirror, progress=_tty(), timeout=timeout)
    _echo(str(path))


@data_app.command("info")
def data_info(
    dataset: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
) -> None:
    """Users, movies, ratings, density, histogram, activity quantiles, time range."""
    ds = _load(dataset)
    st = ds.stats()
    if as_json:
        _echo(json.dumps(st))
        return
    _echo(format_stats(st))


def format_stats(st: dict[str, Any]) -> str:
    """The data summary as aligned text."""
    from datetime import UTC, datetime

    def day(t: int | None) -> str:
        return "-" if t is None else datetime.fromtimestamp(t, UTC).date().isoformat()

    lines = [
        f"data set          {st['name']}",
        f"users             {st['users']:,}",
        f"movies            {st['movies']:,} rated ({st['movies_in_catalogue']:,} in the catalogue)",
        f"ratings           {st['ratings']:,}",
        f"density           {st['density']:.4%}",
        f"mean rating       {st['rating_mean']:.3f}",
        f"time range        {day(st['time_min'])} .. {day(st['time_max'])}",
        f"tags              {st['tags']:,}",
        f"duplicates        {st['duplicates_dropped']:,} dropped (kept the latest rating)",
        "histogram         " + "  ".join(f"{k}:{v:,}" for k, v in st["rating_histogram"].items()),
    ]
    for what in ("ratings_per_user", "ratings_per_movie"):
        q = st[what]
        lines.append(
            f"{what.replace('_', ' '):<18}" + "  ".join(f"{k}={v:g}" for k, v in q.items())
        )
    return "\n".join(lines)


@data_app.command("synth")
def data_synth(
    like: Annotated[str, typer.Option(help="Shape to imitate, e.g. ml-25m")] = "ml-25m",
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("ml-synth"),
    scale: float = 1.0,
    seed: int = 0,
    order: Annotated[
        str, typer.Option(help="Rows per user by movieId (as released) or timestamp")
    ] = "movieId",
) -> None:
    """Write a MovieLens-shaped generated release (ml-25m CSV layout)."""
    from movierec.data.synth import generate

    summary = generate(like, out, scale=scale, seed=seed, progress=_tty(), order=order)
    (Path(out) / ".movierec-synthetic").touch()
    _echo(json.dumps({k: v for k, v in summary.items() if not isinstance(v, dict)}))


# -- rating cross-validation --------------------------------------------------------------------
@app.command("cv")
def cv(
    dataset: Annotated[str, typer.Option(help="Release name or folder")] = "ml-100k",
    models: Annotated[str, typer.Option(help="Comma-separated model names")] = "biases,svd",
    folds: int = 5,
    seed: int = 0,
    split: Annotated[str, typer.Option(help="kfold or temporal_global (70/15/15)")] = "kfold",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
    params: Annotated[
        Path | None,
        typer.Option(help="YAML of model name -> params, e.g. configs/tuned-rating.yaml"),
    ] = None,
) -> None:
    """Rating prediction: RMSE/MAE by k-fold cross validation or a temporal holdout."""
    from movierec import split as S
    from movierec.evaluation.rating import cross_validate, format_table, holdout
    from movierec.models import make_model

    given = _read_params(params) if params else {}
    ds = _load(dataset)
    names = [n.strip() for n in models.split(",") if n.strip()]
    built = {n: make_model(n, **given.get(n, {})) for n in names}
    if split == "kfold":
        res = cross_validate(ds, built, folds=folds, seed=seed)
    elif split == "temporal_global":
        res = holdout(S.temporal_global(ds), built)
    else:
        raise MovierecError(f"unknown --split {split!r}; choose kfold or temporal_global")
    _echo(json.dumps(res) if as_json else format_table(res))


def _read_params(path: Path) -> dict[str, dict[str, Any]]:
    import yaml

    from movierec.errors import ConfigError

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read params ({e})") from e
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{path}: expected a mapping of model name -> params")
    return raw


# -- top-N evaluation ---------------------------------------------------------------------------
@app.command("evaluate")
def evaluate(
    dataset: Annotated[str, typer.Option(help="Release name or folder")] = "ml-100k",
    split: str = "temporal_per_user",
    models: Annotated[str, typer.Option(help="Comma-separated model names")] = "popularity",
    k: Annotated[str, typer.Option("-k", help="Cut-offs, comma-separated")] = "5,10,20",
    threshold: float = 4.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document")] = False,
    save_recs: Annotated[
        Path | None, typer.Option(help="Write top-K lists (.csv/.parquet)")
    ] = None,
) -> None:
    """Top-N: rank the full catalogue for every test user and report metrics at K."""
    from movierec.evaluation.evaluator import run_evaluate

    ds = _load(dataset)
    names = [n.strip() for n in models.split(",") if n.strip()]
    ks = [int(x) for x in k.split(",")]
    _echo(run_evaluate(ds, split, names, ks, threshold, as_json, save_recs))


# -- experiments -------------------------------------------------------------------------------
@app.command("compare")
def compare(
    config: Annotated[Path, typer.Option(help="Experiment YAML, e.g. configs/ml-100k.yaml")],
    out: Annotated[Path | None, typer.Option(help="Output folder (overrides the config)")] = None,
    data: Annotated[Path | None, typer.Option(help="Data folder (overrides the config)")] = None,
    track: Annotated[
        str | None, typer.Option(help="Log to MLflow; 'default' = sqlite in the output folder")
    ] = None,
) -> None:
    """Train every model of the config, evaluate, and write report.html, results.json and artifacts."""
    from movierec.experiment.config import load_config
    from movierec.experiment.runner import compare as run_compare

    cfg = load_config(config)
    res = run_compare(cfg, out=out, data=data, track=(True if track == "default" else track))
    _echo(res.table)
    _echo(f"\nreport: {res.out / 'report.html'}")


Sets = Annotated[list[str] | None, typer.Option("--set", help="Config override key.path=value")]


@app.command("train")
def train(
    config: Annotated[Path, typer.Option(help="Experiment YAML")],
    model: Annotated[str, typer.Option(help="Model label in the config")],
    out: Annotated[Path, typer.Option(help="Artifact folder to write")],
    set_: Sets = None,
) -> None:
    """Fit one model of a config on its training part and save the artifact."""
    from movierec.experiment import commands

    _echo(commands.train(config, model, out, overrides=set_))


@app.command("recommend")
def recommend(
    artifact: Path,
    user: Annotated[int, typer.Option(help="Raw MovieLens userId")],
    k: Annotated[int, typer.Option("-k", help="List length")] = 10,
    history: Annotated[int, typer.Option(help="Rated movies to show first")] = 5,
) -> None:
    """A user's top-K with titles, genres, scores and 'because you rated ...'."""
    from movierec.experiment import commands

    _echo(commands.recommend(artifact, user, k=k, history=history))


@app.command("similar")
def similar(
    artifact: Path,
    movie: Annotated[str, typer.Option(help="Title (fuzzy) or raw movieId")],
    k: Annotated[int, typer.Option("-k", help="List length")] = 10,
) -> None:
    """Movies most similar to one movie."""
    from movierec.experiment import commands

    _echo(commands.similar(artifact, movie, k=k))


@app.command("predict")
def predict(
    artifact: Path,
    user: Annotated[int, typer.Option(help="Raw MovieLens userId")],
    movie: Annotated[str, typer.Option(help="Title (fuzzy) or raw movieId")],
) -> None:
    """Predicted rating of one movie by one user (rating models)."""
    from movierec.experiment import commands

    _echo(commands.predict(artifact, user, movie))


@app.command("export")
def export(
    artifact: Path,
    format: Annotated[str, typer.Option(help="csv or parquet")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Output folder")] = None,
) -> None:
    """Write user/item factors and biases plus metadata, for use without movierec."""
    from movierec.experiment import commands

    _echo(commands.export(artifact, format=format, out=out))


@app.command("tune")
def tune(
    config: Annotated[Path, typer.Option(help="Experiment YAML")],
    model: Annotated[str, typer.Option(help="Model label in the config")],
    trials: int = 30,
    metric: Annotated[str | None, typer.Option(help="e.g. ndcg@10 or rmse")] = None,
    sampler: Annotated[str, typer.Option(help="tpe or grid")] = "tpe",
    folds: Annotated[int | None, typer.Option(help="Cross-validate on the training part")] = None,
    seed: int | None = None,
    out: Annotated[Path | None, typer.Option(help="Write the tuned config here")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds")] = None,
    set_: Sets = None,
) -> None:
    """Optuna search on the validation part; prints the best params and writes a config."""
    from movierec.experiment import commands

    _echo(
        commands.tune(
            config,
            model,
            trials=trials,
            metric=metric,
            sampler=sampler,
            folds=folds,
            seed=seed,
            out=out,
            timeout=timeout,
            overrides=set_,
        )
    )


# -- the main job ------------------------------------------------------------------------------
@app.command("demo")
def demo(dataset: str = "ml-100k") -> None:
    """Fetch a release (or fall back to generated data), print its summary and a split report."""
    from movierec import split as S

    ds = _load(dataset, allow_synthetic=True)
    _echo(format_stats(ds.stats()))
    s = S.temporal_per_user(ds)
    _echo("\nsplit temporal_per_user(n_val=1, n_test=5, min_train=5):")
    _echo(format_split(s.report()))


def format_split(rep: dict[str, Any]) -> str:
    """A split report as aligned text."""
    lines = [
        f"{'part':<11}{'ratings':>10}{'users':>8}{'movies':>8}{'cold u':>8}{'cold m':>8}{'mean':>7}"
    ]
    for name, p in rep["parts"].items():
        mean = "-" if p["mean_rating"] is None else f"{p['mean_rating']:.3f}"
        lines.append(
            f"{name:<11}{p['ratings']:>10,}{p['users']:>8,}{p['movies']:>8,}"
            f"{p['cold_users']:>8,}{p['cold_movies']:>8,}{mean:>7}"
        )
    lines.append("leak checks: " + ", ".join(f"{k}={v}" for k, v in rep["leaks"].items()))
    return "\n".join(lines)


def main() -> None:
    """Entry point: run the app; user errors become one line on stderr and exit code 1."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app(standalone_mode=False)
    except MovierecError as e:
        typer.echo(f"error: {e}", err=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise SystemExit(130) from None
    except typer.Exit as e:
        raise SystemExit(e.exit_code) from None
    except Exception as e:
        # usage errors (click's, vendored by typer) know how to print themselves
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            raise SystemExit(e.exit_code) from None
        raise


if __name__ == "__main__":
    main()
