"""One reader per MovieLens layout, auto-detected from a folder or a .zip.

Layouts: ``ml-100k`` (u.data, u.item, u.genre, u.user), ``dat`` (ml-1m and ml-10m:
``::``-separated ratings.dat, movies.dat, users.dat or tags.dat), ``csv`` (ml-20m, ml-25m,
ml-32m, ml-latest, ml-latest-small: ratings.csv, movies.csv, tags.csv, links.csv) and
``recbole`` (RecBole atomic files: ml-100k.inter, .item, .user with typed headers).
"""

from __future__ import annotations

import codecs
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import polars as pl

from movierec.data.dataset import Dataset
from movierec.errors import DataError

_YEAR = re.compile(r"^(.*?)\s*\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")
_ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
_NO_GENRE = {"(no genres listed)", "unknown", ""}
_MARKERS = ("ratings.csv", "ratings.dat", "u.data")
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def expand_path(path: str | Path) -> Path:
    """``path`` with ``~`` expanded; an empty path or an unknown ``~user`` is a DataError."""
    text = str(path)
    if not text.strip():
        raise DataError("no data set given (an empty path); give a release name or a folder")
    try:
        return Path(text).expanduser()
    except RuntimeError as e:
        raise DataError(f"{text}: cannot expand '~' ({e}); give the full path") from e


def _release_root(names: list[str], where: Path) -> PurePosixPath:
    """The one folder (relative) holding a release's marker file; several are an error."""
    roots = sorted(
        {
            PurePosixPath(n).parent
            for n in names
            if PurePosixPath(n).name in _MARKERS or n.endswith(".inter")
        },
        key=lambda r: (len(r.parts), str(r)),
    )
    if len(roots) > 1:
        shown = ", ".join(str(where / r) for r in roots[:6])
        raise DataError(
            f"{where} holds {len(roots)} MovieLens releases ({shown}); give one of those folders"
        )
    return roots[0] if roots else PurePosixPath(".")


def _decode(data: bytes) -> str:
    """Text of a file whose encoding is decided from its bytes: UTF-8 (BOM dropped) if it
    decodes as such, else latin-1 (the encoding of the older MovieLens releases)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _int(value: str, name: str, what: str, line: int | str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(
            f"{name}: line {line}: {what} {value!r} is not an integer; fix or remove that line"
        ) from None


def _ints(col: pl.Series, name: str, first_line: int, integral_floats: bool = False) -> pl.Series:
    """``col`` (strings) as Int64; a bad value is a DataError naming the file, line and value."""
    if col.dtype == pl.Int64:
        return col
    out = col.cast(pl.Int64, strict=False)
    if integral_floats and out.null_count() > col.null_count():
        # timestamps may be written as floats (RecBole) when they are whole numbers
        f = col.cast(pl.Float64, strict=False)
        whole = f.is_not_null() & (f == f.floor()) & (f.abs() < 2.0**63)
        out = out.fill_null(pl.when(whole).then(f).otherwise(None).cast(pl.Int64))
    bad = out.is_null() & col.is_not_null()
    if bad.any():
        k = int(bad.arg_true()[0])
        v = str(col[k])
        if _INTEGER.match(v):
            why = f"{v!r}, too large (ids and timestamps must fit in 64 bits)"
        elif col[k : k + 1].cast(pl.Float64, strict=False).null_count():
            why = f"a non-numeric value {v!r}"
        else:
            why = f"{v!r}, not an integer (ids and timestamps are whole numbers)"
        raise DataError(
            f"{name}: line {k + first_line}: column {col.name!r} has {why}; fix or remove that line"
        )
    return out


class Source:
    """Files of a release in a folder or a zip, found wherever the marker files sit."""

    def __init__(self, path: str | Path) -> None:
        p = expand_path(path)
        if not p.exists():
            raise DataError(f"{p}: no such file or folder; give a MovieLens folder or .zip")
        self.path = p
        self.zip: zipfile.ZipFile | None = None
        if p.is_file():
            if p.suffix.lower() != ".zip" and not zipfile.is_zipfile(p):
                raise DataError(
                    f"{p} is a file, not a MovieLens folder or .zip; give the folder that "
                    f"holds it ({p.parent})"
                )
            try:
                self.zip = zipfile.ZipFile(p)
                names = [n for n in self.zip.namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(f"{p}: not a readable zip ({e}); download it again") from e
        else:
            try:
                names = [f.relative_to(p).as_posix() for f in p.rglob("*") if f.is_file()]
            except OSError as e:
                raise DataError(f"{p}: cannot list the folder ({e.strerror or e})") from e
        root = _release_root(names, p)
        self.files = {
            PurePosixPath(n).name: n for n in sorted(names) if PurePosixPath(n).parent == root
        }

    def has(self, name: str) -> bool:
        return name in self.files

    def read(self, name: str) -> bytes:
        rel = self.files[name]
        try:
            if self.zip is not None:
                return self.zip.read(rel)
            return (self.path / rel).read_bytes()
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{self.path}: cannot read {name} ({e}); the file is corrupt") from e

    def table(self, name: str) -> bytes | Path:
        """What polars should parse: the file's path in a folder (read in parallel, no
        copy), or its bytes inside a zip."""
        if self.zip is not None:
            return self.read(name)
        return self.path / self.files[name]

    def signature(self) -> list[tuple[str, int, int]]:
        """(name, size, mtime_ns) of the source, to tell when a cache is stale."""
        if self.zip is not None:
            st = self.path.stat()
            return [(self.path.name, st.st_size, st.st_mtime_ns)]
        out = []
        for n in sorted(self.files.values()):
            st = (self.path / n).stat()
            out.append((n, st.st_size, st.st_mtime_ns))
        return out


def detect(src: Source) -> str:
    """Name of the layout of ``src``: ml-100k, dat, csv or recbole."""
    if src.has("ratings.csv"):
        return "csv"
    if src.has("ratings.dat"):
        return "dat"
    if src.has("u.data"):
        return "ml-100k"
    if any(n.endswith(".inter") for n in src.files):
        return "recbole"
    raise DataError(
        f"{src.path}: no known MovieLens layout (expected ratings.csv, ratings.dat, u.data "
        "or a RecBole .inter file)"
    )


def split_title(title: str) -> tuple[str, int | None]:
    """'Toy Story (1995)' -> ('Toy Story', 1995); a title without a year gives None."""
    m = _YEAR.match(title.strip())
    if m:
        return m.group(1).strip(), int(m.group(2))
    return title.strip(), None


def _movies_frame(ids: list[int], titles: list[str], genres: list[list[str]]) -> pl.DataFrame:
    parts = [split_title(t) for t in titles]
    return pl.DataFrame(
        {
            "item": ids,
            "title": [p[0] for p in parts],
            "year": [p[1] for p in parts],
            "genres": [[g for g in gs if g not in _NO_GENRE] for gs in genres],
        },
        schema={
            "item": pl.Int64,
            "title": pl.String,
            "year": pl.Int32,
            "genres": pl.List(pl.String),
        },
    )


def _head(data: bytes | Path, n: int = 65536) -> bytes:
    """The first ``n`` bytes of a table given as bytes or a path."""
    if isinstance(data, bytes):
        return data[:n]
    with open(data, "rb") as f:
        return f.read(n)


def _csv(data: bytes | Path, name: str, columns: dict[str, pl.DataType], **kw) -> pl.DataFrame:
    """Read a delimited file with the given typed columns; errors name the file and column."""
    try:
        df = pl.read_csv(data, **kw)
    except (pl.exceptions.PolarsError, ValueError) as e:
        raise DataError(f"{name}: cannot parse ({str(e).splitlines()[0]}); fix the file") from e
    if not columns:
        return df
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; found {df.columns}")
    out = []
    for c, t in columns.items():
        if t == pl.Int64:
            out.append(_ints(df[c], name, 2))
            continue
        try:
            out.append(df[c].cast(t, strict=True))
        except pl.exceptions.PolarsError as e:
            raise DataError(f"{name}: column {c!r} has a non-numeric or bad value; fix it") from e
    frame = pl.DataFrame(out)
    nulls = [c for c in columns if frame[c].null_count()]
    if nulls:
        raise DataError(f"{name}: empty value(s) in column(s) {nulls}; fix the file")
    return frame


_RATING_TYPES = {"user": pl.Int64, "item": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64}


def _ratings_delimited(data: bytes | Path, name: str, sep: str, header: bool) -> pl.DataFrame:
    """Ratings as (user, item, rating, timestamp): a typed fast read, and on failure a
    string read that finds the offending column for the error message."""
    head = _head(data)
    if not head.strip():
        raise DataError(f"{name}: the ratings file is empty; give a file with ratings")
    kw: dict = {"separator": sep, "has_header": header, "quote_char": None}
    rename = dict(zip(_RATING_TYPES, _RATING_TYPES, strict=True))
    if header:
        line = _decode(head.split(b"\n", 1)[0]).strip()
        first = [c.strip() for c in line.split(sep)]
        alias = {"userid": "user", "movieid": "item", "rating": "rating", "timestamp": "timestamp"}
        rename = {c: alias[c.lower()] for c in first if c.lower() in alias}
        missing = sorted(set(alias.values()) - set(rename.values()))
        if missing:
            want = "userId,movieId,rating,timestamp"
            raise DataError(
                f"{name}: missing column(s) {missing}; expected header {want}, found {line[:80]!r}"
            )
        fast = {
            "columns": list(rename),
            "schema_overrides": {c: _RATING_TYPES[rename[c]] for c in rename},
        }
    else:
        fast = {"new_columns": list(_RATING_TYPES), "schema_overrides": dict(_RATING_TYPES)}
    try:
        df = pl.read_csv(data, **kw, **fast).rename(rename)
        if df.width == 4 and not any(df[c].null_count() for c in df.columns):
            return df.select(list(_RATING_TYPES))
    except (pl.exceptions.PolarsError, ValueError):
        pass
    try:
        df = pl.read_csv(data, **kw, infer_schema=False)
    except (pl.exceptions.PolarsError, ValueError) as e:
        raise DataError(f"{name}: cannot parse ({str(e).splitlines()[0]}); fix the file") from e
    if header:
        return _typed(df.select(list(rename)).rename(rename), name, first_line=2)
    if df.width != 4:
        raise DataError(
            f"{name}: expected 4 columns (user, movie, rating, timestamp), found {df.width}"
        )
    return _typed(df.rename(dict(zip(df.columns, _RATING_TYPES, strict=True))), name)


def _typed(df: pl.DataFrame, name: str, first_line: int = 1) -> pl.DataFrame:
    """Typed rating columns from strings; a bad value names the file, line and value."""
    out = []
    for c, t in _RATING_TYPES.items():
        col = df[c]
        if col.null_count():
            k = int(col.is_null().arg_true()[0])
            raise DataError(
                f"{name}: line {k + first_line}: column {c!r} is empty; fix or remove that line"
            )
        if t == pl.Int64:
            col = _ints(col, name, first_line, integral_floats=c == "timestamp")
        else:
            typed = col.cast(t, strict=False)
            bad = typed.is_null()
            if bad.any():
                k = int(bad.arg_true()[0])
                raise DataError(
                    f"{name}: line {k + first_line}: column 'rating' has a non-numeric value "
                    f"{col[k]!r}; fix or remove that line"
                )
            col = typed
        out.append(col)
    return pl.DataFrame(out)


def check_ratings(ratings: pl.DataFrame, name: str, first_line: int) -> None:
    """Every rating a finite number in [0.5, 5], else a DataError naming the file and line."""
    r = ratings["rating"]
    bad = ~((r >= 0.5) & (r <= 5.0)).fill_null(False)
    if bad.any():
        k = int(bad.arg_true()[0])
        raise DataError(
            f"{name}: line {k + first_line} (row {k + 1}): rating {r[k]:g} is out of range; "
            "ratings must lie in [0.5, 5]"
        )


def _read_ratings_csv(src: Source, name: str) -> pl.DataFrame:
    return _ratings_delimited(src.table(name), name, ",", header=True)


def _read_ml100k(src: Source) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    ratings = _ratings_delimited(src.table("u.data"), "u.data", "\t", header=False)
    genres_names = _ML100K_GENRES
    if src.has("u.genre"):
        lines = _decode(src.read("u.genre")).splitlines()
        genres_names = [ln.split("|")[0] for ln in lines if ln.strip()]
    ids, titles, genres = [], [], []
    items = _decode(src.read("u.item")).splitlines() if src.has("u.item") else []
    for n, ln in enumerate(items, 1):
        if not ln.strip():
            continue
        f = ln.split("|")
        if len(f) < 5 + len(genres_names):
            raise DataError(
                f"u.item: line {n} has {len(f)} fields, expected {5 + len(genres_names)}"
            )
        ids.append(_int(f[0], "u.item", "movie id", n))
        titles.append(f[1])
        flags = f[5 : 5 + len(genres_names)]
        genres.append([g for g, x in zip(genres_names, flags, strict=True) if x.strip() == "1"])
    extra: dict = {}
    if src.has("u.user"):
        u = _csv(
            src.read("u.user"), "u.user", {}, separator="|", has_header=False, infer_schema=False
        )
        if u.width != 5:
            raise DataError(
                f"u.user: expected 5 '|'-separated fields (user|age|gender|occupation|zip), "
                f"found {u.width}; fix the file"
            )
        u.columns = ["user", "age", "gender", "occupation", "zip"]
        extra["user_info"] = u.with_columns(
            _ints(u["user"], "u.user", 1), _ints(u["age"], "u.user", 1)
        )
    return ratings, _movies_frame(ids, titles, genres), extra


def _split_dat(text: str, n: int, name: str = "") -> list[list[str]]:
    """Split ``::`` lines into n fields; the middle field may itself contain '::'."""
    rows = []
    for k, ln in enumerate(text.splitlines(), 1):
        if not ln.strip():
            continue
        parts = ln.split("::")
        if len(parts) > n:
            head = parts[: n - 2] if n > 2 else parts[:1]
            parts = [*head, "::".join(parts[len(head) : len(parts) - 1]), parts[-1]]
        if len(parts) != n:
            raise DataError(
                f"{name}: line {k} has {len(parts)} '::' fields, expected {n}; fix that line"
            )
        rows.append(parts)
    return rows


def _read_dat(src: Source) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    raw = src.read("ratings.dat")
    ratings = _ratings_delimited(raw.replace(b"::", b"\x1f"), "ratings.dat", "\x1f", header=False)
    ids, titles, genres = [], [], []
    if src.has("movies.dat"):
        rows = _split_dat(_decode(src.read("movies.dat")), 3, "movies.dat")
        for n, (mid, title, gen) in enumerate(rows, 1):
            ids.append(_int(mid, "movies.dat", "movie id", n))
            titles.append(title)
            genres.append(gen.split("|"))
    extra: dict = {}
    if src.has("tags.dat"):
        rows = _split_dat(_decode(src.read("tags.dat")), 4, "tags.dat")
        extra["tags"] = pl.DataFrame(
            {
                "user": [_int(r[0], "tags.dat", "user id", n) for n, r in enumerate(rows, 1)],
                "item": [_int(r[1], "tags.dat", "movie id", n) for n, r in enumerate(rows, 1)],
                "tag": [r[2] for r in rows],
                "timestamp": [
                    _int(r[3], "tags.dat", "timestamp", n) for n, r in enumerate(rows, 1)
                ],
            },
            schema={"user": pl.Int64, "item": pl.Int64, "tag": pl.String, "timestamp": pl.Int64},
        )
    if src.has("users.dat"):
        rows = _split_dat(_decode(src.read("users.dat")), 5, "users.dat")
        u = pl.DataFrame(rows, schema=["user", "gender", "age", "occupation", "zip"], orient="row")
        extra["user_info"] = u.with_columns(_ints(u["user"], "users.dat", 1))
    return ratings, _movies_frame(ids, titles, genres), extra


def _read_csv_layout(src: Source) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    ratings = _read_ratings_csv(src, "ratings.csv")
    movies = _movies_frame([], [], [])
    if src.has("movies.csv"):
        m = _csv(
            src.table("movies.csv"),
            "movies.csv",
            {"movieId": pl.Int64, "title": pl.String, "genres": pl.String},
            infer_schema=False,
        )
        movies = _movies_frame(
            m["movieId"].to_list(),
            m["title"].to_list(),
            [g.split("|") for g in m["genres"].to_list()],
        )
    extra: dict = {}
    if src.has("tags.csv"):
        t = _csv(
            src.table("tags.csv"),
            "tags.csv",
            {"userId": pl.Int64, "movieId": pl.Int64, "tag": pl.String, "timestamp": pl.Int64},
            infer_schema=False,
        )
        extra["tags"] = t.rename({"userId": "user", "movieId": "item"})
    if src.has("links.csv"):
        raw = _csv(src.table("links.csv"), "links.csv", {}, infer_schema=False)
        if "movieId" not in raw.columns:
            raise DataError(f"links.csv: missing column 'movieId'; found {raw.columns}")
        extra["links"] = pl.DataFrame(
            {
                "item": _ints(raw["movieId"].fill_null(""), "links.csv", 2),
                "imdb": raw["imdbId"].cast(pl.Int64, strict=False)
                if "imdbId" in raw.columns
                else None,
                "tmdb": raw["tmdbId"].cast(pl.Int64, strict=False)
                if "tmdbId" in raw.columns
                else None,
            }
        )
    return ratings, movies, extra


def _read_recbole(src: Source) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    inter = next(n for n in src.files if n.endswith(".inter"))
    stem = inter[: -len(".inter")]

    def atomic(name: str) -> pl.DataFrame:
        df = _csv(src.read(name), name, {}, separator="\t", infer_schema=False, quote_char=None)
        return df.rename({c: c.split(":")[0] for c in df.columns})

    r = atomic(inter)
    need = {"user_id", "item_id", "rating", "timestamp"}
    if not need <= set(r.columns):
        raise DataError(f"{inter}: missing column(s) {sorted(need - set(r.columns))}")
    r = r.rename({"user_id": "user", "item_id": "item"})
    ratings = _typed(r, inter, first_line=2)
    movies = _movies_frame([], [], [])
    if src.has(stem + ".item"):
        m = atomic(stem + ".item")
        lost = [c for c in ("item_id", "movie_title") if c not in m.columns]
        if lost:
            raise DataError(f"{stem}.item: missing column(s) {lost}; found {m.columns}")
        titles = m["movie_title"].to_list()
        years = m["release_year"].to_list() if "release_year" in m.columns else [None] * len(titles)
        full = [t if y in (None, "") else f"{t} ({y})" for t, y in zip(titles, years, strict=True)]
        gen = [(g or "").split(" ") for g in m["class"].to_list()] if "class" in m.columns else None
        movies = _movies_frame(
            _ints(m["item_id"], f"{stem}.item", 2).to_list(), full, gen or [[] for _ in titles]
        )
    extra: dict = {}
    if src.has(stem + ".user"):
        u = atomic(stem + ".user")
        if "user_id" not in u.columns:
            raise DataError(f"{stem}.user: missing column 'user_id'; found {u.columns}")
        u = u.rename({"user_id": "user"})
        extra["user_info"] = u.with_columns(_ints(u["user"], f"{stem}.user", 2))
    return ratings, movies, extra


_RATINGS_FILE = {  # layout -> (ratings file, line number of its first row)
    "ml-100k": ("u.data", 1),
    "dat": ("ratings.dat", 1),
    "csv": ("ratings.csv", 2),
    "recbole": (".inter", 2),
}
_READERS = {
    "ml-100k": _read_ml100k,
    "dat": _read_dat,
    "csv": _read_csv_layout,
    "recbole": _read_recbole,
}


def read(path: str | Path, name: str | None = None, synthetic: bool = False) -> Dataset:
    """Parse a MovieLens release (folder or .zip) of any layout into a :class:`Dataset`."""
    src = Source(path)
    layout = detect(src)
    ratings, movies, extra = _READERS[layout](src)
    file, first_line = _RATINGS_FILE[layout]
    if layout == "recbole":
        file = next(n for n in src.files if n.endswith(".inter"))
    check_ratings(ratings, file, first_line)
    cols = [ratings[c].to_numpy() for c in _RATING_TYPES]
    del ratings  # to_numpy copied the chunked columns: free polars' copy before mapping ids
    return Dataset.from_raw(
        *cols,
        movies,
        name=name or src.path.name,
        synthetic=synthetic,
        notes={"layout": layout, "source": str(src.path)},
        **extra,
    )
