"""The `movierec` command. User errors print one line and exit 1, without a traceback."""

from __future__ import annotations

import atexit
import errno
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from movierec.errors import MovierecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(no_args_is_help=True, help="Fetch, inspect and generate MovieLens data.")
app.add_typer(data_app, name="data")
feedback_app = typer.Typer(no_args_is_help=True, help="The feedback store of `movierec serve`.")
app.add_typer(feedback_app, name="feedback")
ab_app = typer.Typer(no_args_is_help=True, help="Online experiments: sample size, reports.")
app.add_typer(ab_app, name="ab")


def _tty() -> bool:
    return sys.stderr.isatty()


def _echo(text: str) -> None:
    typer.echo(text)


def _load(dataset: str, allow_synthetic: bool = False):
    """Load a release or folder; with ``allow_synthetic``, fall back to generated ml-100k
    when no source of the release can be reached (never when data fails to load)."""
    from movierec.data import load
    from movierec.errors import SourceUnreachableError

    try:
        return load(dataset)
    except SourceUnreachableError as e:
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
            generate("ml-100k", out, seed=0, force=True)
        (out / ".movierec-synthetic").touch()
        return load(out, synthetic=True)


# -- data ------------------------------------------------------------------------------------
@data_app.command("list")
def data_list() -> None:
    """Known releases and which are cached."""
    from movierec.data.fetch import list_releases
    from movierec.tables import text_table

    rows = [
        [r["name"], r["size"], "cached" if r["cached"] else "-", r["description"]]
        for r in list_releases()
    ]
    _echo(text_table(rows, right={1}))


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
    force: Annotated[
        bool, typer.Option("--force", help="Replace the CSV files of a non-empty --out")
    ] = False,
) -> None:
    """Write a MovieLens-shaped generated release (ml-25m CSV layout)."""
    from movierec.data.synth import generate

    summary = generate(like, out, scale=scale, seed=seed, progress=_tty(), order=order, force=force)
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
    tune: Annotated[
        int | None,
        typer.Option(
            "--tune",
            help="Nested CV: this many Optuna trials inside each outer fold's training part",
        ),
    ] = None,
) -> None:
    """Rating prediction: RMSE/MAE by k-fold cross validation or a temporal holdout.

    With --tune N, each model is tuned (N trials on an inner 80/20 split of the outer
    training part), refitted there and scored on the outer test fold (nested CV); a blend
    is not searched itself: its sub-models take the params chosen for them on that fold.
    """
    from movierec import split as S
    from movierec.evaluation.rating import cross_validate, format_table, holdout

    given = _read_params(params) if params else {}
    names = [n.strip() for n in models.split(",") if n.strip()]
    unused = [n for n in given if n not in names]
    if unused:
        raise MovierecError(
            f"{params} has params for {', '.join(unused)}, not in --models {','.join(names)}; "
            "add them to --models or remove them from the file"
        )
    ds = _load(dataset)
    if tune is not None:
        from movierec.experiment.tuning import format_nested, nested_cv

        if split != "kfold":
            raise MovierecError("--tune runs nested k-fold CV; drop --split or use --split kfold")
        say = (lambda s: typer.echo(s, err=True)) if _tty() else None
        res = nested_cv(ds, {n: given.get(n, {}) for n in names}, folds, tune, seed, progress=say)
        _echo(json.dumps(res) if as_json else format_nested(res))
        return
    built = {n: _make(n, given.get(n, {}), params) for n in names}
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
    from movierec.experiment.config import yaml_load
    from movierec.models import REGISTRY

    try:
        raw = yaml_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read params ({' '.join(str(e).split())})") from e
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{path}: expected a mapping of model name -> params")
    unknown = [str(k) for k in raw if str(k).lower() not in REGISTRY]
    if unknown:
        raise ConfigError(
            f"{path}: unknown model(s) {', '.join(unknown)}; choose from {', '.join(REGISTRY)}"
        )
    return raw


def _make(name: str, params: dict[str, Any], source: Path | None) -> Any:
    """A model from --params, a bad param type or value named in one line."""
    from movierec.errors import ConfigError
    from movierec.experiment.config import check_param_types
    from movierec.models import REGISTRY, make_model

    where = f"{source}: {name}." if source else f"{name}: "
    if name.lower() not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(REGISTRY)}")
    try:
        check_param_types(name, params)
        return make_model(name, **params)
    except (ConfigError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}{e}") from None


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
    ks = _cutoffs(k)
    _echo(run_evaluate(ds, split, names, ks, threshold, as_json, save_recs))


def _cutoffs(text: str) -> list[int]:
    """``-k 5,10,20`` as ints >= 1; anything else is a ConfigError saying what to give."""
    from movierec.errors import ConfigError

    parts = [x.strip() for x in text.split(",")]
    if not all(x.isdigit() and int(x) >= 1 for x in parts):
        raise ConfigError(f"-k {text!r}: give cut-offs as integers >= 1, comma-separated (5,10,20)")
    return [int(x) for x in parts]


# -- experiments -------------------------------------------------------------------------------
@app.command("compare")
def compare(
    config: Annotated[Path, typer.Option(help="Experiment YAML, e.g. configs/ml-100k.yaml")],
    out: Annotated[Path | None, typer.Option(help="Output folder (overrides the config)")] = None,
    data: Annotated[
        str | None, typer.Option(help="Data folder (overrides the config); a URI with Spark")
    ] = None,
    track: Annotated[
        str | None, typer.Option(help="Log to MLflow; 'default' = sqlite in the output folder")
    ] = None,
    engine: Annotated[str, typer.Option(help="local, or spark (als and ials on MLlib)")] = "local",
    master: Annotated[
        str | None,
        typer.Option(help="Spark master with --engine spark (default local[2]; spark-submit's)"),
    ] = None,
) -> None:
    """Train every model of the config, evaluate, and write report.html, results.json and artifacts."""
    from movierec.errors import ConfigError
    from movierec.experiment.config import load_config
    from movierec.experiment.runner import compare as run_compare

    cfg = load_config(config)
    if engine == "spark":
        from movierec.spark.run import compare as spark_compare  # needs the `spark` extra

        text, where = spark_compare(cfg, out=out, data=data, master=master)
        _echo(text)
        _echo(f"\nresults: {where / 'results.json'}")
        return
    if engine != "local":
        raise ConfigError(f"unknown --engine {engine!r}; choose local or spark")
    res = run_compare(
        cfg,
        out=out,
        data=Path(data) if data is not None else None,
        track=(True if track == "default" else track),
    )
    _echo(res.table)
    _echo(f"\nreport: {res.out / 'report.html'}")


Sets = Annotated[list[str] | None, typer.Option("--set", help="Config override key.path=value")]


@app.command("train")
def train(
    config: Annotated[Path, typer.Option(help="Experiment YAML")],
    model: Annotated[str, typer.Option(help="Model label in the config")],
    out: Annotated[Path, typer.Option(help="Artifact folder to write")],
    set_: Sets = None,
    on: Annotated[
        str, typer.Option(help="all: every rating (for serving); train: the split's train part")
    ] = "all",
    feedback: Annotated[
        str | None,
        typer.Option(help="Feedback store URL whose user ratings are merged in first"),
    ] = None,
    engine: Annotated[str, typer.Option(help="local, or spark (als and ials on MLlib)")] = "local",
    master: Annotated[
        str | None,
        typer.Option(help="Spark master with --engine spark (default local[2]; spark-submit's)"),
    ] = None,
) -> None:
    """Fit one model of a config (on all ratings or the train part) and save the artifact."""
    from movierec.experiment import commands

    _echo(
        commands.train(
            config,
            model,
            out,
            overrides=set_,
            on=on,
            feedback=feedback,
            engine=engine,
            master=master,
        )
    )


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


# -- feedback ----------------------------------------------------------------------------------
@feedback_app.command("export")
def feedback_export(
    db: Annotated[str, typer.Option(help="Store URL, e.g. sqlite:///feedback.db")],
    out: Annotated[Path, typer.Option(help="Folder to write ratings.csv into")],
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty folder")] = False,
) -> None:
    """Write the stored user ratings as a MovieLens ratings.csv (atomically)."""
    from movierec.serving.store import export as export_feedback

    _echo(export_feedback(db, out, force=force))


# -- serving -----------------------------------------------------------------------------------
@app.command("serve")
def serve(
    path: Annotated[Path, typer.Argument(help="Artifact, folder of artifacts, or compare run")],
    host: str = "127.0.0.1",
    port: int = 8000,
    db: Annotated[str | None, typer.Option(help="Feedback store URL (default: config)")] = None,
    config: Annotated[Path | None, typer.Option(help="Serving config YAML")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = True,
) -> None:
    """The REST API and web page over trained artifacts (FastAPI + uvicorn)."""
    # one BLAS and one numba thread per request: requests run side by side instead
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import uvicorn

    from movierec.errors import ConfigError
    from movierec.serving.app import ENV_ARGS
    from movierec.serving.config import load_serve_config
    from movierec.serving.engine import discover
    from movierec.serving.store import Store

    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    cfg = load_serve_config(config, store=db)
    discover(path)  # a wrong path fails here, in one line, before the server starts
    if workers > 1:
        import tempfile

        from movierec.atomic import stage_dir

        # the workers' request counters go to files here, so /metrics sums all workers
        # (the folder of a server that is gone is removed by the next one; a live one's
        # files keep their age, so only the pid decides)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(
            stage_dir(tempfile.gettempdir(), ".movierec-metrics-", max_age=None)
        )
    Store(cfg.store).close()  # reachable, and migrated once before the workers start
    os.environ[ENV_ARGS] = json.dumps(
        {
            "path": str(path.resolve()),
            "config": None if config is None else str(config.resolve()),
            "db": cfg.store,
            "workers": workers,
        }
    )
    typer.echo(f"serving {path} on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(
        "movierec.serving.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
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
    from movierec.tables import text_table

    head = ["part", "ratings", "users", "movies", "cold u", "cold m", "mean"]
    rows = []
    for name, p in rep["parts"].items():
        mean = "-" if p["mean_rating"] is None else f"{p['mean_rating']:.3f}"
        counts = (p[c] for c in ("ratings", "users", "movies", "cold_users", "cold_movies"))
        rows.append([name, *(f"{n:,}" for n in counts), mean])
    leaks = "leak checks: " + ", ".join(f"{k}={v}" for k, v in rep["leaks"].items())
    return text_table(rows, head, right=range(1, len(head))) + "\n" + leaks


# -- online experiments ------------------------------------------------------------------------
@ab_app.command("size")
def ab_size(
    baseline: Annotated[float, typer.Option(help="Control rate (or mean, with --sd)")],
    mde: Annotated[float, typer.Option(help="Absolute change to detect, e.g. 0.01")],
    alpha: Annotated[float, typer.Option(help="Two-sided test size")] = 0.05,
    power: Annotated[float, typer.Option(help="Chance to detect the change")] = 0.8,
    ratio: Annotated[float, typer.Option(help="Treatment units per control unit")] = 1.0,
    sd: Annotated[
        float | None, typer.Option(help="Per-unit standard deviation: size a test of means")
    ] = None,
) -> None:
    """Units per arm an A/B test needs (pooled two-proportion z-test, or z-test of means)."""
    import math

    from movierec.evaluation import online

    if sd is None:
        n = online.sample_size_proportions(baseline, mde, alpha, power, ratio)
        what = f"a rate {baseline:g} -> {baseline + mde:g}"
    else:
        n = online.sample_size_means(mde, sd, alpha, power, ratio)
        what = f"a mean {baseline:g} -> {baseline + mde:g} (sd {sd:g})"
    rel = f" ({mde / baseline:+.1%})" if baseline else ""
    nc, nt = math.ceil(n - 1e-9), math.ceil(ratio * n - 1e-9)
    _echo(
        f"per-arm units: control {nc}, treatment {nt} (total {nc + nt}) to detect {what}{rel}"
        f" at two-sided alpha {alpha:g} with power {power:g}"
    )


@ab_app.command("report")
def ab_report(
    name: Annotated[str, typer.Argument(help="The experiment's name")],
    db: Annotated[
        str, typer.Option(help="Store URL of `movierec serve`, e.g. sqlite:///feedback.db")
    ],
    config: Annotated[
        Path | None, typer.Option(help="Serving config (default: the definition in the store)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write an HTML report with plots")] = None,
) -> None:
    """An experiment's analysis from the store: SRM, metrics per variant, tests, CUPED,
    sequential p-values, MDE (text, JSON or HTML)."""
    from movierec.errors import UnknownIdError
    from movierec.experiment.abreport import analyze, format_report, render_html
    from movierec.serving.abtest import Experiment
    from movierec.serving.store import Store

    with Store(db, create=False) as store:
        exp = None
        if config is not None:
            from movierec.serving.config import load_serve_config

            exp = next((e for e in load_serve_config(config).experiments if e.name == name), None)
        if exp is None:
            stored = store.experiments()
            if name not in stored:
                known = ", ".join(sorted(stored)) or "none"
                raise UnknownIdError(
                    f"unknown experiment {name!r} in {store.safe_url}; known: {known}"
                )
            exp = Experiment.model_validate(stored[name])
        rep = analyze(exp, *store.experiment_rows(name))
    if html is not None:
        from movierec.atomic import write_text

        write_text(html, render_html(rep))
    _echo(json.dumps(rep, indent=1) if as_json else format_report(rep))


@ab_app.command("simulate")
def ab_simulate(
    config: Annotated[Path, typer.Option(help="Serving config with a running experiment on users")],
    dataset: Annotated[str, typer.Option(help="Release name (ml-100k) or MovieLens folder")],
    units: Annotated[int, typer.Option(help="Simulated visitors (distinct real users)")],
    days: Annotated[int, typer.Option(help="Days the experiment runs")] = 14,
    seed: int = 0,
    noise: Annotated[float, typer.Option(help="Click chance on a movie she never rated")] = 0.02,
    k: Annotated[int, typer.Option(help="List length")] = 10,
    skew: Annotated[
        float, typer.Option(help="Lose this share of non-control visitors (an SRM drill)")
    ] = 0.0,
    repeat: Annotated[
        int, typer.Option(help="Run N experiments on the fast path and print detection rates")
    ] = 0,
    db: Annotated[str | None, typer.Option(help="Store URL to keep (default: a temp file)")] = None,
    params: Annotated[
        Path | None,
        typer.Option(help="YAML of model name -> params for the variants' models (else defaults)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    html: Annotated[Path | None, typer.Option(help="Also write the HTML report")] = None,
) -> None:
    """Replay held-out MovieLens behaviour through the real service and report the
    experiment; with --repeat N, N experiments on the fast path (false-positive rate or
    power)."""
    from movierec.errors import ConfigError
    from movierec.experiment import simulate as S

    if days < 1 or not 0 <= noise <= 1 or not 0 <= skew <= 1:
        raise ConfigError("need --days >= 1 and --noise, --skew in [0, 1]")
    given = _read_params(params) if params else None
    for name, p in (given or {}).items():
        _make(name, p, params)  # a bad param named in one line, before any fitting
    if repeat:
        out = S.repeat(config, dataset, units, repeat, days, seed, noise, k, skew, params=given)
        _echo(json.dumps(out, indent=None if not as_json else 1))
        return
    from movierec.experiment.abreport import format_report, render_html

    rep = S.simulate(config, dataset, units, days, seed, noise, k, db, skew, params=given)
    if html is not None:
        from movierec.atomic import write_text

        write_text(html, render_html(rep))
    sim = rep["simulation"]
    line = (
        f"simulated {sim['units']} users over {sim['days']} days: {sim['requests']} lists "
        f"served, {sim['events']} events posted, in {sim['seconds']} s (store {sim['store']})"
    )
    _echo(json.dumps(rep, indent=1) if as_json else line + "\n" + format_report(rep))


def _interrupted(e: BaseException | None) -> bool:
    """A KeyboardInterrupt, or an error raised while one was pending (numba's dispatcher
    turns a Ctrl-C inside a kernel into a SystemError caused by it)."""
    for _ in range(20):
        if e is None:
            return False
        if isinstance(e, KeyboardInterrupt):
            return True
        e = e.__cause__ or e.__context__
    return False


_OS_HINTS = {
    errno.EACCES: "choose a folder you can write to",
    errno.EPERM: "choose a folder you can write to",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.ENOSPC: "the disk is full; free some space or choose another folder",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another folder",
    errno.EEXIST: "a file is in the way; remove it or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "that is a folder; give a file path",
}


def _os_message(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    hint = _OS_HINTS.get(e.errno or 0, "check the path")
    return f"{where}{e.strerror or e}; {hint}"


def _stop(message: str, code: int) -> None:
    typer.echo(message, err=True)
    if code == 130:
        # a Ctrl-C that landed in native code (numba) can leave CPython's "unhandled
        # KeyboardInterrupt" flag set, and the process would then die by SIGINT at exit
        # instead of exiting 130: end with 130 once the rest has been flushed
        atexit.register(_exit_130)
    raise SystemExit(code) from None


def _exit_130() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    """Entry point: run the app; user errors become one line on stderr and exit code 1,
    Ctrl-C prints "interrupted" and exits 130 (after what was staged is removed).
    BLAS threads are limited inside the library (:func:`movierec.models.base.blas_limit`)."""
    from movierec.atomic import check_interrupt, on_sigint

    signal.signal(signal.SIGINT, on_sigint)
    try:
        # in this mode typer returns Ctrl-C (KeyboardInterrupt) as the exit code 130
        rc = app(standalone_mode=False)
        check_interrupt()
    except MovierecError as e:
        _stop(f"error: {e}", 1)
    except KeyboardInterrupt:
        _stop("interrupted", 130)
    except typer.Exit as e:
        raise SystemExit(e.exit_code) from None
    except MemoryError:
        _stop("error: out of memory; use a smaller data set (or --scale)", 1)
    except Exception as e:
        if _interrupted(e):
            _stop("interrupted", 130)
        if isinstance(e, OSError):
            _stop(f"error: {_os_message(e)}", 1)
        # usage errors (click's, vendored by typer) know how to print themselves
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            raise SystemExit(e.exit_code) from None
        raise
    if rc == 130:
        _stop("interrupted", 130)
    if isinstance(rc, int) and rc:
        raise SystemExit(rc)


if __name__ == "__main__":
    main()
