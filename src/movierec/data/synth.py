"""MovieLens-shaped synthetic data.

:func:`generate` writes ``ratings.csv``, ``movies.csv``, ``tags.csv`` and ``links.csv``
in the exact layout of the ml-25m release, with the size and the statistical shape of a
chosen release (``like="ml-25m"``), so that everything downstream (readers, splits,
models, benchmarks) can run at full scale without downloading anything.

What is planted, in the order it is generated:

* a catalogue that grows over time (movieIds increase with the date a movie was added,
  with gaps), release years, titles in MovieLens style, genres that follow the planted
  item factors, IMDb/TMDb links;
* users with a first visit drawn from a MovieLens-like activity-by-year curve, one or
  more rating sessions, and a lognormal number of ratings (>= 20) that sums exactly to
  the requested count;
* which movies each user rates: Zipf-Mandelbrot popularity over a rank that favours
  early arrivals (exponent tuned to the real item-popularity Gini, offset calibrated so
  the most-rated movie reaches the share of users it has in the real release) times a
  taste term ``exp(beta * (min(dot(p_u, q_i), cap) - cap))``, restricted to movies
  already in the catalogue, without duplicates, with every movie rated at least once;
* the ratings themselves: ``mu + b_u + b_i + taste_sd * dot(p_u, q_i) + noise`` of rank
  10, mapped to stars by quantile matching to the release's rating histogram;
* tags applied by a minority of users to movies they rated, drawn from a vocabulary tied
  to genres and to how much the user liked the movie.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from movierec.atomic import check_interrupt, stage_dir
from movierec.errors import DataError
from movierec.kernels import synth as _k

__all__ = ["SHAPES", "generate"]

SHAPES: dict[str, tuple[int, int, int]] = {
    "ml-100k": (943, 1682, 100000),
    "ml-1m": (6040, 3706, 1000209),
    "ml-10m": (69878, 10677, 10000054),
    "ml-20m": (138493, 26744, 20000263),
    "ml-25m": (162541, 59047, 25000095),
    "ml-32m": (200948, 84432, 32000204),
    "ml-latest-small": (610, 9724, 100836),
}
"""Release name -> (users, rated movies, ratings) of the real release."""

_STARS = np.arange(1, 11) / 2.0  # 0.5 .. 5.0

# Rating histograms (counts for 0.5, 1.0, ..., 5.0) of the real releases; ml-100k and
# ml-1m only have whole stars, ml-32m uses the ml-25m shape.
_HIST_25M = (393068, 776815, 399490, 1640868, 1262797, 4896928, 3177318, 6639798, 2200539, 3612474)
_HISTS: dict[str, tuple[int, ...]] = {
    "ml-100k": (0, 6110, 0, 11370, 0, 27145, 0, 34174, 0, 21201),
    "ml-1m": (0, 56174, 0, 107557, 0, 261197, 0, 348971, 0, 226310),
    "ml-10m": (94988, 384180, 118278, 790306, 370178, 2356676, 879764, 2875850, 585022, 1544812),
    "ml-20m": (
        239125,
        680732,
        279252,
        1430997,
        883398,
        4291193,
        2200156,
        5561926,
        1534824,
        2898660,
    ),
    "ml-25m": _HIST_25M,
    "ml-32m": _HIST_25M,
    "ml-latest-small": (1370, 2811, 1791, 7551, 5550, 20047, 13136, 26818, 8551, 13211),
}


@dataclass(frozen=True)
class _Profile:
    t0: int  # first and last timestamp of the release
    t1: int
    activity_sigma: float  # lognormal sigma of (ratings per user - 20)
    top_share: float  # most-rated movie's ratings / users
    listed: int  # movies in movies.csv (some never rated)
    max_movie_id: int
    tags: int  # tag applications
    no_genres: float  # share of "(no genres listed)"
    pop_exponent: float  # Zipf-Mandelbrot exponent of movie popularity
    catalog_at_start: float | None = None  # overrides the growth curve (short windows)


# pop_exponent is tuned so a full-size run matches the real release's item-popularity Gini
# where it is published (ml-10m 0.805, ml-20m 0.903, ml-25m 0.942, ml-32m 0.952), else its
# median ratings per movie (ml-100k 27, ml-1m 124) or share of single-rating movies
# (ml-latest-small, about 35%).
_PROFILES: dict[str, _Profile] = {
    "ml-100k": _Profile(874724710, 893286638, 1.14, 583 / 943, 1682, 1817, 1000, 0.002, 1.5, 0.95),
    "ml-1m": _Profile(
        956703932, 1046454590, 1.14, 3428 / 6040, 3883, 3952, 10000, 0.001, 1.25, 0.95
    ),
    "ml-10m": _Profile(
        789652009, 1231131736, 1.52, 34864 / 69878, 10681, 65133, 95580, 0.001, 1.65
    ),
    "ml-20m": _Profile(
        789652009, 1427784002, 1.6, 67310 / 138493, 27278, 131262, 465564, 0.009, 1.9
    ),
    "ml-25m": _Profile(
        789652009, 1574327703, 1.59, 81491 / 162541, 62423, 209171, 1093360, 0.081, 2.1
    ),
    "ml-32m": _Profile(
        789652009, 1697163919, 1.59, 102929 / 200948, 87585, 292757, 2000072, 0.081, 2.0
    ),
    "ml-latest-small": _Profile(
        828124615, 1537799250, 1.45, 329 / 610, 9742, 193609, 3683, 0.004, 1.2
    ),
}

# MovieLens catalogue size over time (decimal year, movies listed), approximate.
_CATALOG_CURVE = np.array(
    [
        (1990.0, 2300.0),
        (1995.0, 2500.0),
        (1997.0, 3000.0),
        (2000.0, 3900.0),
        (2003.0, 6500.0),
        (2006.0, 8700.0),
        (2009.0, 11000.0),
        (2012.0, 17000.0),
        (2015.25, 27300.0),
        (2016.8, 40000.0),
        (2018.0, 50000.0),
        (2019.9, 62400.0),
        (2023.8, 87600.0),
        (2030.0, 120000.0),
    ]
)
# Relative number of new users per year, 1995..2024, shaped after MovieLens history.
_NEW_USERS = np.array(
    [0.01, 1.0, 0.5, 0.3, 0.9, 1.6, 0.9, 0.7, 0.8, 0.8, 1.1, 0.8, 0.7, 0.8, 0.7]
    + [0.6, 0.5, 0.5, 0.35, 0.3, 0.8, 1.0, 1.1, 1.0, 0.9, 1.1, 0.9, 0.8, 0.7, 0.7]
)
_GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# Genre label counts in ml-25m: the prior for genre assignment.
_GENRE_FREQ = np.array(
    [7348, 4145, 2929, 2935, 16870, 5319, 5605, 25606, 2731, 353]
    + [5989, 195, 1054, 2925, 7719, 3595, 8654, 1874, 1399],
    dtype=np.float64,
)
_N_GENRES_P = np.array([0.40, 0.33, 0.18, 0.07, 0.02])

# Planted model (the returned summary reports these).
_RANK = 10
_MU = 3.5
_USER_BIAS_SD = 0.40
_ITEM_BIAS_SD = 0.45
_TASTE_SD = 0.7
_NOISE_SD = 0.7
_SEL_BETA = 1.5
_SEL_CAP = 1.0
_POP_ARRIVAL = 2.0
_ITEM_BIAS_POP_CORR = 0.3
_USER_BIAS_ACTIVITY_CORR = -0.15
_SINGLE_SESSION = 0.45
_SEC_PER_RATING = 25.0
_TAGGER_SHARE = 0.08
_MIN_PER_USER = 20
_INITIAL = 1500
# The flat head of the popularity curve spans at most this share of the catalogue. Full-size
# calibrations land well below it (0.3-2%); at small scales the catalogue shrinks while each
# user keeps a realistic number of ratings, and flattening the head further to hold the top
# movie's real share of users would erase the long tail, so the top movie gets a bigger share.
_MAX_OFFSET = 0.03
_N_CHUNKS = 256
_YEAR_S = 365.25 * 86400.0

# ---------------------------------------------------------------------------------------
# vocabularies

_ADJ = (
    "Silent Red Last Lost Dark Broken Golden Hidden Wild Little Endless Bitter Quiet "
    "Crimson Frozen Burning Secret Lonely Sweet Savage Electric Strange Final Perfect "
    "Brave Hollow Distant Midnight Forgotten Dangerous Blue Black White Green Eternal "
    "Restless Sleeping Falling Rising Wicked Gentle Second Invisible American Tender "
    "Deadly Lucky Crazy Cold Hot Velvet Iron Paper Glass"
).split()
_NOUN = (
    "Harbor River Night Road Heart Storm City Dream Kingdom Shadow Garden Island Mirror "
    "Promise Summer Winter Journey Stranger Witness Sky Fire Ocean Empire Forest Song "
    "Dance Game Machine Planet Station Highway Bridge Letter Window Secret Wolf Tiger "
    "Angel Devil Ghost Queen King Soldier Hunter Thief Detective Doctor Captain Sister "
    "Brother Father Mother Daughter Son Stranger Love War Money Time Memory Silence "
    "Truth Lie Escape Return Revenge Legacy Paradise Horizon Desert Mountain Valley "
    "Moon Star Sun Rain Snow Wind Thunder Echo Code Signal Frontier Colony"
).split()
_NAME = (
    "Jack Anna Max Lucy Sam Kate Charlie Emma Leo Rose Frank Grace Harry Nina Oscar "
    "Maggie Eddie Vera Tom Iris Billy Clara Ray Lola Walter Ruby Felix Edith Hugo Mia"
).split()
_PLACE = (
    "Paris Tokyo Brooklyn Texas Rome Berlin Venice Chinatown Alaska Havana Bombay "
    "Manhattan Vegas Casablanca Moscow Cairo Dublin Memphis Montana Marseille"
).split()
_FOREIGN = (
    "Vie en rose, La|Château rouge, Le|Nuit blanche|Amour fou, L'|Dolce notte, La|"
    "Ciudad perdida, La|Sommer in Berlin|Tiempo de lobos|Fils du vent, Le|"
    "Étrangère, L'|Mädchen aus Wien, Das|Sogno d'estate|Noche oscura|Été indien, L'"
).split("|")
_SHOWS = ("Great Performances", "Masterpiece Theatre", "Columbo", "Tales of Tomorrow")

_GENERIC_TAGS = (
    "atmospheric|visually appealing|thought-provoking|funny|dark comedy|twist ending|"
    "classic|based on a book|surreal|stylized|great soundtrack|quirky|cinematography|"
    "dialogue|nonlinear|psychology|philosophical|social commentary|satire|violence|"
    "predictable|slow|beautiful|emotional|true story|based on a true story|remake|"
    "sequel|franchise|cult film|Oscar (Best Picture)|Oscar (Best Actor)|"
    "Oscar (Best Supporting Actress)|BD-R|DVD-Video|In Netflix queue|seen more than once|"
    "seen at the cinema|own it|clever|witty|intelligent|mindfuck|feel-good|tearjerker|"
    "coming of age|friendship|family|father-son relationship|mother-daughter relationship|"
    "New York City|Los Angeles|London|Paris|small town|road trip|1980s|1970s|1960s|"
    "World War II|Cold War|politics|religion|music|jazz|rock and roll|sports|boxing|"
    "baseball|high school|college|prison|courtroom|journalism|corruption|revenge|"
    "betrayal|redemption|loneliness|addiction|mental illness|suicide|disability|"
    "black and white|independent film|foreign|French|Japanese|Korean|Italian|German|"
    "Spanish|British|animation|stop motion|long|short|hilarious|weird, in a good way|"
    "so bad it's good|overrated|underrated|masterpiece|must see|boring|bad acting|"
    "great acting|ensemble cast|strong female lead|female director|directorial debut|"
    "adapted from:comic|adapted from:game|adapted from:play|Sci-Fi|sci-fi|SciFi|"
    "Comedy|comedy|Drama|drama|cute|cute!|nudity (topless)|gore|R|PG-13|TOPLESS|"
    "netflix|criterion|AFI 100|imdb top 250|National Film Registry|Palme d'Or|"
    "Golden Globe|soundtrack|narrated|voiceover|breaking the fourth wall|unreliable narrator|"
    "multiple storylines|flashbacks|time loop|heist|con artists|serial killer|zombies|"
    "vampires|aliens|robots|dystopia|post-apocalyptic|space|time travel|superhero|"
    "magic|dragons|pirates|ninja|samurai|cowboys|spies|assassin|mafia|gangsters|"
    "police|detective|lawyers|doctors|teachers|kids|dogs|cats|horses|animals"
).split("|")
_GENRE_TAGS: dict[str, tuple[str, ...]] = {
    "Action": ("action", "explosions", "car chase", "martial arts", "fight scenes", "guns"),
    "Adventure": ("adventure", "treasure hunt", "exotic locations", "quest", "jungle"),
    "Animation": ("animation", "Pixar", "anime", "hand-drawn", "computer animation"),
    "Children": ("kids", "family", "Disney", "talking animals", "fairy tale"),
    "Comedy": ("funny", "hilarious", "comedy", "slapstick", "parody", "witty"),
    "Crime": ("crime", "heist", "mafia", "gangsters", "police", "con artists"),
    "Documentary": ("documentary", "true story", "history", "nature", "interviews"),
    "Drama": ("drama", "emotional", "tearjerker", "character study", "melancholic"),
    "Fantasy": ("fantasy", "magic", "dragons", "fairy tale", "mythology", "wizards"),
    "Film-Noir": ("noir", "film noir", "femme fatale", "black and white", "hardboiled"),
    "Horror": ("horror", "scary", "gore", "creepy", "zombies", "vampires", "slasher"),
    "IMAX": ("IMAX", "3D", "spectacle", "visually stunning"),
    "Musical": ("musical", "singing", "dancing", "Broadway", "great soundtrack"),
    "Mystery": ("mystery", "whodunit", "twist ending", "puzzle", "detective"),
    "Romance": ("romance", "love story", "romantic", "chick flick", "relationships"),
    "Sci-Fi": ("sci-fi", "space", "aliens", "time travel", "dystopia", "artificial intelligence"),
    "Thriller": ("thriller", "suspense", "tense", "psychological", "conspiracy"),
    "War": ("war", "World War II", "Vietnam", "anti-war", "military", "battle scenes"),
    "Western": ("western", "cowboys", "gunfight", "frontier", "spaghetti western"),
}
_FIRST = (
    "Alan Alice Ben Carla Dan Diane Ed Elena Gus Hanna Ivan Joan Ken Laura Marco Nadia "
    "Owen Paula Raj Sofia Theo Uma Victor Wanda Yuri Zoe"
).split()
_LAST = (
    "Abbott Barker Castellano Dumont Eriksen Fairfax Garnier Holloway Ibarra Jansen "
    "Kowalski Lindqvist Moreau Novak Okafor Petrov Quinlan Rossi Sandoval Tanaka "
    "Underwood Varga Whitfield Yilmaz Zimmer"
).split()
_POS_TAGS = ("masterpiece", "must see", "excellent", "great movie", "favorite", "amazing")
_NEG_TAGS = ("boring", "overrated", "waste of time", "bad acting", "stupid", "disappointing")


# ---------------------------------------------------------------------------------------
# public API


def generate(
    like: str,
    out: str | Path,
    scale: float = 1.0,
    seed: int = 0,
    progress: bool = False,
    *,
    order: str = "movieId",
    force: bool = False,
) -> dict[str, Any]:
    """Write a synthetic MovieLens-shaped data set in the ml-25m CSV layout.

    Parameters
    ----------
    like : str
        Release whose shape to imitate, a key of :data:`SHAPES` (``"ml-25m"``, ...).
    out : str or Path
        Folder to write ``ratings.csv``, ``movies.csv``, ``tags.csv`` and ``links.csv``
        into (created if missing; those four files are replaced atomically).
    scale : float, default 1.0
        Multiplies users, movies and ratings. Every user keeps at least 20 ratings, and
        ratings never exceed users x movies, which can move the counts at tiny scales.
    seed : int, default 0
        The only source of randomness (>= 0): the same seed writes the same bytes,
        whatever the number of threads.
    progress : bool, default False
        Show a progress display (rich) while generating.
    order : {"movieId", "timestamp"}, default "movieId"
        Order of a user's rows in ``ratings.csv``: by movieId, as in the real releases,
        or ``"timestamp"`` (each user's history in time order).
    force : bool, default False
        Write into ``out`` even when it already holds files (the four CSV files are
        replaced); without it a non-empty ``out`` is refused.

    Returns
    -------
    dict
        ``like``, ``scale``, ``seed``, ``out``, ``users``, ``movies`` (rated),
        ``movies_listed`` (rows of movies.csv), ``ratings``, ``tags``,
        ``top_movie_ratings``, ``seconds`` and ``model``: the planted parameters.

    Raises
    ------
    DataError
        Unknown ``like``, ``scale`` <= 0, negative ``seed``, bad ``order``, a non-empty
        ``out`` without ``force``, a size beyond this machine's memory or disk, or an
        unwritable ``out``.
    """
    t_start = time.perf_counter()
    if like not in SHAPES:
        raise DataError(f"unknown shape {like!r}: choose one of {', '.join(SHAPES)}")
    try:
        scale_f = float(scale)
    except (TypeError, ValueError):
        scale_f = math.nan
    if not math.isfinite(scale_f) or scale_f <= 0:
        raise DataError(f"scale must be a number > 0 (got {scale!r}), e.g. 0.1 or 1.0")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer (got {seed!r})")
    if order not in ("timestamp", "movieId"):
        raise DataError(f"order must be 'timestamp' or 'movieId' (got {order!r})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"output path {out} exists and is not a folder: choose another --out")
    if not force and out.is_dir() and any(out.iterdir()):
        raise DataError(
            f"{out} is not empty: choose a new --out, or pass --force to replace its "
            "ratings.csv, movies.csv, tags.csv and links.csv"
        )
    _check_size(like, scale_f, out)

    with _Steps(progress) as steps:
        steps.step("planning catalogue and users")
        plan = _plan(like, scale_f, int(seed))
        steps.step("calibrating popularity")
        _calibrate_popularity(plan)
        steps.step("sampling ratings")
        ratings = _sample_ratings(plan, by_time=order == "timestamp")
        steps.step("sampling tags")
        tags = _sample_tags(plan, ratings)
        steps.step("writing CSV files")
        _write_all(plan, ratings, tags, out)

    counts = _k.count_items(ratings["items"], plan.n_rated)
    return {
        "like": like,
        "scale": scale_f,
        "seed": int(seed),
        "out": str(out),
        "users": plan.n_users,
        "movies": plan.n_rated,
        "movies_listed": plan.n_listed,
        "ratings": int(ratings["items"].shape[0]),
        "tags": int(tags["user"].shape[0]),
        "top_movie_ratings": int(counts.max()),
        "seconds": round(time.perf_counter() - t_start, 3),
        "model": plan.model_summary(),
    }


# ---------------------------------------------------------------------------------------
# planning


@dataclass
class _Plan:
    like: str
    seed: int
    rng: np.random.Generator
    kseed: np.ndarray  # uint64 keys for the kernels
    t0: int
    t1: int
    n_users: int
    n_rated: int
    n_listed: int
    n_ratings: int
    n_tags: int
    stars: np.ndarray  # star values with non-zero probability
    probs: np.ndarray  # their target shares
    item_time: np.ndarray  # float64[n_listed], arrival in the catalogue
    rated_items: np.ndarray  # int32[n_rated], listed index of each rated movie, by arrival
    movie_ids: np.ndarray  # int64[n_listed]
    years: np.ndarray  # int64[n_listed], release year
    user_f: np.ndarray
    item_f: np.ndarray
    user_b: np.ndarray
    item_b: np.ndarray
    pop_rank: np.ndarray  # int64[n_rated] 1-based popularity rank, rated order
    sess_start: np.ndarray
    sess_span: np.ndarray
    n_sess: np.ndarray
    elig: np.ndarray
    ptr: np.ndarray
    seed_ptr: np.ndarray
    seed_items: np.ndarray  # rated positions (index into rated_items)
    top_share: float
    activity_sigma: float
    no_genres: float
    pop_exponent: float = 1.0
    pop_offset: float = 1.0
    rated_f: np.ndarray = field(init=False)  # item factors of rated movies, by arrival

    def __post_init__(self) -> None:
        self.rated_f = np.ascontiguousarray(self.item_f[self.rated_items])

    def logw(self) -> np.ndarray:
        return -self.pop_exponent * np.log(self.pop_rank + self.pop_offset)

    def model_summary(self) -> dict[str, Any]:
        return {
            "rank": _RANK,
            "global_mean_latent": _MU,
            "user_bias_sd": _USER_BIAS_SD,
            "item_bias_sd": _ITEM_BIAS_SD,
            "taste_sd": _TASTE_SD,
            "noise_sd": _NOISE_SD,
            "selection_beta": _SEL_BETA,
            "selection_cap": _SEL_CAP,
            "popularity_exponent": self.pop_exponent,
            "popularity_offset": round(self.pop_offset, 4),
            "item_bias_popularity_corr": _ITEM_BIAS_POP_CORR,
            "user_bias_activity_corr": _USER_BIAS_ACTIVITY_CORR,
            "activity_sigma": self.activity_sigma,
            "min_ratings_per_user": _MIN_PER_USER,
            "target_top_share": round(self.top_share, 4),
            "rating_histogram": {
                f"{s:.1f}": round(float(p), 5) for s, p in zip(self.stars, self.probs, strict=True)
            },
            "time_range": [self.t0, self.t1],
        }


_BYTES_PER_RATING = 48  # peak memory while generating (measured about 30)
_BYTES_PER_ENTITY = 400  # factors, biases and tables per user or movie
_CSV_BYTES_PER_RATING = 30


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def _check_size(like: str, scale: float, out: Path) -> None:
    """Refuse, before any work, a size that cannot fit in memory or on the target disk."""
    u0, m0, r0 = SHAPES[like]
    n_ratings, n_ent = r0 * scale, (u0 + _PROFILES[like].listed) * scale
    need = _BYTES_PER_RATING * n_ratings + _BYTES_PER_ENTITY * n_ent
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        ram = None
    if ram and need > ram:
        raise DataError(
            f"--like {like} --scale {scale:g} means about {n_ratings:,.0f} ratings and needs "
            f"about {_gb(need)} of memory; this machine has {_gb(ram)}: use a smaller --scale"
        )
    disk = out
    while not disk.exists() and disk != disk.parent:
        disk = disk.parent
    try:
        free = shutil.disk_usage(disk).free
    except OSError:
        return
    csv = _CSV_BYTES_PER_RATING * n_ratings
    if csv > free:
        raise DataError(
            f"--like {like} --scale {scale:g} writes about {_gb(csv)}; {disk} has {_gb(free)} "
            "free: use a smaller --scale or another --out"
        )


def _decimal_year(t: np.ndarray | float) -> np.ndarray:
    return 1970.0 + np.asarray(t, dtype=np.float64) / _YEAR_S


def _unix(year: np.ndarray | float) -> np.ndarray:
    return (np.asarray(year, dtype=np.float64) - 1970.0) * _YEAR_S


def _sizes(like: str, scale: float) -> tuple[int, int, int, int]:
    u0, m0, r0 = SHAPES[like]
    prof = _PROFILES[like]
    n_users = max(3, round(u0 * scale))
    n_rated = max(_MIN_PER_USER + 5, round(m0 * scale))
    n_ratings = round(r0 * scale)
    n_ratings = min(max(n_ratings, _MIN_PER_USER * n_users), n_users * n_rated)
    n_rated = min(n_rated, n_ratings)
    n_listed = max(n_rated, round(prof.listed * scale))
    return n_users, n_rated, n_listed, n_ratings


def _plan(like: str, scale: float, seed: int) -> _Plan:
    prof = _PROFILES[like]
    n_users, n_rated, n_listed, n_ratings = _sizes(like, scale)
    ss = np.random.SeedSequence([seed, 0x6D6C])
    rng = np.random.default_rng(ss)
    kseed = ss.generate_state(4, dtype=np.uint64)
    t0, t1 = prof.t0, prof.t1

    hist = np.asarray(_HISTS[like], dtype=np.float64)
    keep = hist > 0
    stars, probs = _STARS[keep], hist[keep] / hist.sum()

    # --- catalogue: arrival times, which movies are never rated, ids, years
    y0, y1 = float(_decimal_year(t0)), float(_decimal_year(t1))
    if prof.catalog_at_start is not None:
        frac_years = np.array([y0 - 1.0, y0, y1])
        frac = np.array([0.0, prof.catalog_at_start, 1.0])
    else:
        cy, cn = _CATALOG_CURVE[:, 0], _CATALOG_CURVE[:, 1]
        c1 = np.interp(y1, cy, cn)
        frac_years = np.concatenate([[cy[0]], cy[(cy > cy[0]) & (cy < y1)], [y1]])
        frac = np.interp(frac_years, cy, cn) / c1
        frac[0] = 0.0
    q = (np.arange(n_listed) + rng.uniform(0.2, 0.8, n_listed)) / n_listed
    arrival_year = np.interp(q, frac, frac_years)
    item_time = np.maximum(_unix(arrival_year), t0 - 86400.0 * 365 * 5)

    # never-rated movies lean towards recent arrivals
    rated_mask = np.ones(n_listed, dtype=bool)
    n_unrated = n_listed - n_rated
    if n_unrated > 0:
        w = ((np.arange(n_listed) + 1.0) / n_listed) ** 3
        w[: min(n_rated, _INITIAL)] = 0.0  # the first movies are always rated
        unr = rng.choice(n_listed, size=n_unrated, replace=False, p=w / w.sum())
        rated_mask[unr] = False
    rated_items = np.flatnonzero(rated_mask).astype(np.int32)
    # at least the first _INITIAL movies are there from the start (matters at small scales)
    first = rated_items[: min(n_rated, _INITIAL)]
    item_time[first] = np.minimum(item_time[first], float(t0))

    movie_ids = _movie_ids(rng, n_listed, max(prof.max_movie_id * scale, n_listed * 1.08 + 2))
    years = _release_years(rng, arrival_year, y0)

    # --- planted taste model
    user_f = (rng.standard_normal((n_users, _RANK)) / _RANK**0.25).astype(np.float32)
    item_f = (rng.standard_normal((n_listed, _RANK)) / _RANK**0.25).astype(np.float32)
    # popularity rank: noisy, but movies that arrived early tend to be the popular ones
    # (the long tail of a release is mostly recent, obscure additions)
    arrival_q = (np.arange(n_rated) + 0.5) / n_rated
    pop_score = rng.standard_normal(n_rated) - _POP_ARRIVAL * arrival_q
    pop_rank = np.empty(n_rated, dtype=np.int64)
    pop_rank[np.argsort(-pop_score, kind="stable")] = np.arange(1, n_rated + 1)

    # --- users: first visit, sessions, activity
    years_grid = np.arange(1995, 1995 + len(_NEW_USERS))
    lo = np.clip(years_grid, y0, y1)
    hi = np.clip(years_grid + 1, y0, y1)
    yw = _NEW_USERS * (hi - lo)
    if yw.sum() <= 0:
        yw = np.ones_like(yw)
    ychoice = rng.choice(len(yw), size=n_users, p=yw / yw.sum())
    start_year = lo[ychoice] + rng.uniform(size=n_users) * (hi[ychoice] - lo[ychoice])
    t_last = t1 - 3600.0
    sess_start = np.minimum(_unix(start_year), t_last - 60.0)
    sess_start = np.maximum(sess_start, float(t0))

    raw = rng.lognormal(0.0, prof.activity_sigma, n_users)
    single = rng.uniform(size=n_users) < _SINGLE_SESSION
    span = 30 * 86400.0 * (raw / np.median(raw)) ** 0.5 * rng.lognormal(0.0, 1.8, n_users)
    span = np.where(single, 0.0, np.clip(span, 3600.0, None))
    span = np.minimum(span, np.maximum(t_last - sess_start, 0.0))
    last_start = sess_start + span

    # movies arriving after almost every user left are moved earlier (enough raters)
    k_late = min(n_users, 50)
    t_cap = np.sort(last_start)[n_users - k_late]
    r_time = item_time[rated_items]
    item_time[rated_items] = np.minimum(r_time, t_cap)
    rated_time = item_time[rated_items]
    elig = np.searchsorted(rated_time, last_start, side="right").astype(np.int64)
    elig = np.maximum(elig, min(n_rated, _INITIAL))
    if int(elig.sum()) < n_ratings:  # tiny, dense shapes: everything available at once
        item_time[rated_items] = float(t0)
        elig[:] = n_rated

    # nobody rates more than 60% of what is available (real maximum: about 55%)
    cap = np.maximum(np.floor(0.6 * elig).astype(np.int64), _MIN_PER_USER)
    if int(cap.sum()) < n_ratings:
        cap = elig
    n_per_user = _MIN_PER_USER + _allocate(
        n_ratings - _MIN_PER_USER * n_users, raw, cap - _MIN_PER_USER
    )
    ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(n_per_user, out=ptr[1:])

    lam = np.minimum(0.1 * n_per_user**0.7, 300.0)
    n_sess = np.where(single | (span <= 0), 1, 2 + rng.poisson(lam))
    n_sess = np.minimum(n_sess, n_per_user).astype(np.int64)

    # biases: quality correlates with popularity, heavy users rate a bit lower
    z_pop = -np.log(pop_rank.astype(np.float64))
    z_pop = (z_pop - z_pop.mean()) / (z_pop.std() + 1e-12)
    item_b = np.zeros(n_listed)
    rho = _ITEM_BIAS_POP_CORR
    item_b[rated_items] = rho * z_pop + math.sqrt(1 - rho * rho) * rng.standard_normal(n_rated)
    item_b[~rated_mask] = rng.standard_normal(n_unrated)
    item_b = (_ITEM_BIAS_SD * item_b).astype(np.float32)
    z_act = np.log(n_per_user.astype(np.float64))
    z_act = (z_act - z_act.mean()) / (z_act.std() + 1e-12)
    rho = _USER_BIAS_ACTIVITY_CORR
    user_b = rho * z_act + math.sqrt(1 - rho * rho) * rng.standard_normal(n_users)
    user_b = (_USER_BIAS_SD * user_b).astype(np.float32)

    seed_ptr, seed_items = _coverage(rng, rated_time, last_start, n_per_user)

    tag_total = round(prof.tags / SHAPES[like][2] * n_ratings)
    return _Plan(
        like=like,
        seed=seed,
        rng=rng,
        kseed=kseed,
        t0=t0,
        t1=t1,
        n_users=n_users,
        n_rated=n_rated,
        n_listed=n_listed,
        n_ratings=n_ratings,
        n_tags=tag_total,
        stars=stars,
        probs=probs,
        item_time=item_time,
        rated_items=rated_items,
        movie_ids=movie_ids,
        years=years,
        user_f=user_f,
        item_f=item_f,
        user_b=user_b,
        item_b=item_b,
        pop_rank=pop_rank,
        sess_start=sess_start,
        sess_span=span,
        n_sess=n_sess,
        elig=elig,
        ptr=ptr,
        seed_ptr=seed_ptr,
        seed_items=seed_items,
        top_share=prof.top_share,
        activity_sigma=prof.activity_sigma,
        no_genres=prof.no_genres,
        pop_exponent=prof.pop_exponent,
    )


def _allocate(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integers summing to ``total``, proportional to ``weights``, each <= ``caps``."""
    caps = np.maximum(caps.astype(np.int64), 0)
    if total > int(caps.sum()):
        raise DataError("cannot place that many ratings: lower the scale or pick a larger shape")
    x = np.zeros(len(weights))
    active = caps > 0
    rem = float(total)
    while active.any() and rem > 0:
        share = np.zeros(len(weights))
        share[active] = rem * weights[active] / weights[active].sum()
        over = active & (share >= caps)
        if not over.any():
            x[active] = share[active]
            break
        x[over] = caps[over]
        rem -= float(caps[over].sum())
        active &= ~over
    base = np.minimum(np.floor(x).astype(np.int64), caps)
    left = total - int(base.sum())
    if left > 0:
        frac = x - base
        frac[base >= caps] = -1.0
        base[np.argsort(-frac, kind="stable")[:left]] += 1
    return base


def _coverage(
    rng: np.random.Generator,
    rated_time: np.ndarray,
    last_start: np.ndarray,
    n_per_user: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One rater per rated movie (activity-weighted, among users active after its arrival)."""
    n_users = len(n_per_user)
    by_end = np.argsort(last_start, kind="stable")
    end_sorted = last_start[by_end]
    cw = np.cumsum(n_per_user[by_end].astype(np.float64))
    first = np.searchsorted(end_sorted, rated_time, side="left")
    first = np.minimum(first, n_users - 1)
    lo = np.where(first > 0, cw[first - 1], 0.0)

    def draw(idx: np.ndarray) -> np.ndarray:
        r = lo[idx] + rng.uniform(size=len(idx)) * (cw[-1] - lo[idx])
        pos = np.minimum(np.searchsorted(cw, r, side="right"), n_users - 1)
        return by_end[np.maximum(pos, first[idx])]

    owner = draw(np.arange(len(rated_time)))
    cap = np.maximum(n_per_user // 2, 1)
    for _ in range(50):
        cnt = np.bincount(owner, minlength=n_users)
        if not (cnt > cap).any():
            break
        # re-draw the movies beyond each over-full user's cap
        order = np.argsort(owner, kind="stable")
        rank_in_user = np.arange(len(owner)) - np.searchsorted(owner[order], owner[order])
        excess = order[rank_in_user >= cap[owner[order]]]
        owner[excess] = draw(excess)
    else:
        cnt = np.bincount(owner, minlength=n_users)
        for i in np.flatnonzero(cnt[owner] > cap[owner]):
            if cnt[owner[i]] <= cap[owner[i]]:
                continue
            cand = by_end[first[i] :]
            room = cap[cand] - cnt[cand]
            best = cand[int(np.argmax(room))]
            if room.max() <= 0:
                raise DataError("could not spread movies over users: raise the scale")
            cnt[owner[i]] -= 1
            cnt[best] += 1
            owner[i] = best
    seed_items = np.lexsort((np.arange(len(owner)), owner)).astype(np.int32)
    seed_ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_users), out=seed_ptr[1:])
    return seed_ptr, seed_items


def _movie_ids(rng: np.random.Generator, n: int, max_id: float) -> np.ndarray:
    """Increasing ids 1..max_id with gaps that widen for later arrivals."""
    max_id = int(max_id)
    x = np.arange(n) / max(n, 1)
    raw = rng.exponential(size=n) * (0.02 + x**2)
    extra = max_id - n
    gaps = 1 + np.floor(raw / raw.sum() * extra).astype(np.int64)
    ids = np.cumsum(gaps)
    ids[-1] = max_id
    return ids


def _release_years(rng: np.random.Generator, arrival_year: np.ndarray, y0: float) -> np.ndarray:
    """Release year of each movie: new releases and back catalogue, never after arrival."""
    n = len(arrival_year)
    ay = np.floor(arrival_year).astype(np.int64)
    new = rng.uniform(size=n) < 0.6
    lag_new = rng.geometric(0.6, n) - 1
    lag_old = np.floor(rng.exponential(18.0, n)).astype(np.int64)
    lag = np.where(new, lag_new, lag_old)
    # the catalogue present at the start is back catalogue
    initial = arrival_year <= y0
    lag = np.where(initial, np.floor(rng.exponential(15.0, n)).astype(np.int64), lag)
    years = np.maximum(ay - lag, 1902)
    return years


# ---------------------------------------------------------------------------------------
# ratings


def _popularity(plan: _Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer popularity weights (total below 2**52), their cumsum and Fenwick tree."""
    logw = plan.logw()
    w = np.exp(logw - logw.max())
    w = np.maximum(np.floor(w * (2.0**52 / w.sum())), 1.0).astype(np.int64)
    return w, np.cumsum(w), _k.fenwick_build(w)


def _draw_items(
    plan: _Plan,
    users: np.ndarray,
    ptr: np.ndarray,
    seed_ptr: np.ndarray,
    seed_items: np.ndarray,
    key: np.uint64,
) -> np.ndarray:
    w, cum, tree = _popularity(plan)
    # alias tables for geometrically spaced catalogue prefixes (users' availability)
    elig = plan.elig[users]
    lo = int(elig.min())
    bounds = np.unique(np.round(np.geomspace(lo, plan.n_rated, 64)).astype(np.int64))
    bounds[0] = lo
    alias_ptr, alias_table = _k.alias_build(w, bounds)
    return _k.sample_items(
        ptr,
        elig,
        seed_ptr,
        seed_items,
        w,
        cum,
        bounds,
        alias_ptr,
        alias_table,
        tree,
        plan.user_f,
        users.astype(np.int64),
        plan.rated_f,
        _SEL_BETA,
        _SEL_CAP,
        key,
        _N_CHUNKS,
    )


def _pilot_top(plan: _Plan, users: np.ndarray, offset: float) -> float:
    plan.pop_offset = offset
    n = plan.ptr[users + 1] - plan.ptr[users]
    ptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(n, out=ptr[1:])
    lo, hi = plan.seed_ptr[users], plan.seed_ptr[users + 1]
    seed_ptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(hi - lo, out=seed_ptr[1:])
    take = np.concatenate(
        [np.arange(a, b) for a, b in zip(lo, hi, strict=True)] + [np.zeros(0, int)]
    )
    items = _draw_items(plan, users, ptr, seed_ptr, plan.seed_items[take], plan.kseed[3])
    counts = _k.count_items(items, plan.n_rated)
    return float(counts.max()) / len(users)


def _calibrate_popularity(plan: _Plan) -> None:
    """Pick the Zipf-Mandelbrot offset so the top movie reaches its real share of users.

    A pilot of up to 4000 users is sampled for each candidate offset; the root of
    ``share(log offset) - target`` is found by regula falsi (Illinois variant).
    """
    n_pilot = min(plan.n_users, 4000)
    users = np.sort(plan.rng.choice(plan.n_users, size=n_pilot, replace=False))
    target = plan.top_share

    def f(x: float) -> float:
        return _pilot_top(plan, users, math.exp(x)) - target

    a, b = math.log(0.3), math.log(_MAX_OFFSET * plan.n_rated)
    fa, fb = f(a), f(b)
    best = (abs(fa), a) if abs(fa) < abs(fb) else (abs(fb), b)
    if fa * fb < 0:
        side = 0
        for _ in range(12):
            x = (a * fb - b * fa) / (fb - fa)
            fx = f(x)
            best = min(best, (abs(fx), x))
            if abs(fx) < 0.01 * target:
                break
            if fx * fb > 0:
                b, fb = x, fx
                if side == -1:
                    fa /= 2
                side = -1
            else:
                a, fa = x, fx
                if side == 1:
                    fb /= 2
                side = 1
    plan.pop_offset = math.exp(best[1])


def _sample_ratings(plan: _Plan, by_time: bool) -> dict[str, np.ndarray]:
    users = np.arange(plan.n_users)
    items = _draw_items(plan, users, plan.ptr, plan.seed_ptr, plan.seed_items, plan.kseed[0])
    ts, latent = _k.time_and_rate(
        items,
        plan.ptr,
        plan.sess_start,
        plan.sess_span,
        plan.n_sess,
        _SEC_PER_RATING,
        0.35,
        plan.item_time[plan.rated_items],
        plan.t0,
        plan.t1,
        plan.user_f,
        plan.rated_f,
        plan.user_b,
        plan.item_b[plan.rated_items],
        _MU,
        _TASTE_SD,
        _NOISE_SD,
        plan.kseed[1],
        by_time,
        _N_CHUNKS,
    )
    # quantile matching to the release's histogram (thresholds from a sample)
    n = latent.shape[0]
    sample = latent if n <= 2_000_000 else latent[plan.rng.integers(0, n, 2_000_000)]
    thresholds = np.quantile(sample.astype(np.float64), np.cumsum(plan.probs)[:-1])
    codes = _k.quantize(latent, thresholds)
    del latent
    return {"items": items, "ts": ts, "codes": codes}


# ---------------------------------------------------------------------------------------
# movies, tags, links


def _genres(plan: _Plan) -> tuple[list[str], np.ndarray]:
    """Genre strings and an int8 [n_listed, 5] table (-1 padded) that follow item taste."""
    rng = plan.rng
    n = plan.n_listed
    directions = rng.standard_normal((len(_GENRES), _RANK))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    qf = plan.item_f.astype(np.float64)
    qf /= np.linalg.norm(qf, axis=1, keepdims=True) + 1e-12
    score = np.log(_GENRE_FREQ)[None, :] + 2.0 * (qf @ directions.T)
    years = plan.years
    noir = _GENRES.index("Film-Noir")
    imax = _GENRES.index("IMAX")
    score[:, noir] -= np.where((years >= 1940) & (years <= 1960), -2.0, 4.0)
    score[:, imax] -= np.where(years >= 1995, 0.0, 50.0)
    score += rng.gumbel(size=score.shape)
    k = rng.choice(len(_N_GENRES_P), size=n, p=_N_GENRES_P) + 1
    top = np.argsort(-score, axis=1)[:, : len(_N_GENRES_P)]
    table = np.where(np.arange(len(_N_GENRES_P))[None, :] < k[:, None], top, -1).astype(np.int8)
    n_none = max(1, round(plan.no_genres * n))
    w = ((np.arange(n) + 1.0) / n) ** 2
    table[rng.choice(n, size=n_none, replace=False, p=w / w.sum())] = -1
    names = []
    for row in table:
        g = sorted(_GENRES[j] for j in row if j >= 0)
        names.append("|".join(g) if g else "(no genres listed)")
    return names, table


def _titles(plan: _Plan) -> list[str]:
    rng = plan.rng
    n = plan.n_listed
    pick = rng.integers(0, 1 << 30, size=(n, 6))
    kind = rng.choice(16, size=n, p=_TITLE_KINDS / _TITLE_KINDS.sum())
    no_year = np.zeros(n, dtype=bool)
    no_year[rng.choice(n, size=max(1, round(0.006 * n)), replace=False)] = True
    titles = []
    for i in range(n):
        a = [_ADJ[p % len(_ADJ)] for p in pick[i]]
        s = [_NOUN[p % len(_NOUN)] for p in pick[i]]
        who = _NAME[pick[i, 2] % len(_NAME)]
        where = _PLACE[pick[i, 3] % len(_PLACE)]
        t = _title(int(kind[i]), a, s, who, where, pick[i])
        titles.append(t if no_year[i] else f"{t} ({plan.years[i]})")
    return titles


# pattern weights; about one title in six has a comma (", The", "A", alternate titles)
_TITLE_KINDS = np.array([24, 14, 6, 4, 6, 5, 4, 2, 1, 3, 3, 3, 1, 2, 2, 9], dtype=np.float64)


def _title(kind: int, a: list[str], s: list[str], who: str, where: str, p: np.ndarray) -> str:
    match kind:
        case 0:
            return f"{a[0]} {s[0]}"
        case 1:
            return s[0]
        case 2:
            return f"{s[0]}, The"
        case 3:
            return f"{a[0]} {s[0]}, The"
        case 4:
            return f"{s[0]} of {where}"
        case 5:
            return f"{who}'s {s[0]}"
        case 6:
            return f"{who} and {_NAME[p[4] % len(_NAME)]}"
        case 7:
            return f"{s[0]} in {where}, A"
        case 8:
            return f"{a[0]}, the {a[1]} and the {a[2]}, The"
        case 9:
            return f"{a[0]} {s[0]} {2 + p[5] % 3}"
        case 10:
            return f"{s[0]}: {a[1]} {s[1]}"
        case 11:
            return f"{_FOREIGN[p[5] % len(_FOREIGN)]} ({a[0]} {s[0]}, The)"
        case 12:
            return f'"{_SHOWS[p[5] % len(_SHOWS)]}" {a[0]} {s[0]}'
        case 13:
            return f"{s[0]} & {s[1]}"
        case 14:
            return f"{a[0]} {s[0]}: The {s[1]}"
        case _:
            return f"{s[0]} {s[1]}"


def _tag_vocab(
    n_people: int,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Tag strings and id tables; people names take ids ``first_person`` onwards."""
    vocab: list[str] = []
    index: dict[str, int] = {}

    def tid(t: str) -> int:
        if t not in index:
            index[t] = len(vocab)
            vocab.append(t)
        return index[t]

    generic = [tid(t) for t in _GENERIC_TAGS]
    gptr = [0]
    gtags: list[int] = []
    for g in _GENRES:
        gtags.extend(tid(t) for t in _GENRE_TAGS[g])
        gptr.append(len(gtags))
    pos = [tid(t) for t in _POS_TAGS]
    neg = [tid(t) for t in _NEG_TAGS]
    # Zipf-like weights over the generic vocabulary, small weight for the rest
    w = np.full(len(vocab), 0.02)
    w[np.asarray(generic)] = 1.0 / (np.arange(len(generic)) + 3.0) ** 0.9
    first_person = len(vocab)
    n_names = len(_FIRST) * len(_LAST)
    for i in range(n_people):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i // len(_FIRST)) % len(_LAST)]
        vocab.append(f"{first} {last}" if i < n_names else f"{first} {last} {i // n_names + 1}")
    return (
        vocab,
        np.asarray(gptr, dtype=np.int64),
        np.asarray(gtags, dtype=np.int32),
        np.asarray(pos, dtype=np.int32),
        np.asarray(neg, dtype=np.int32),
        np.cumsum(w),
        first_person,
    )


def _sample_tags(plan: _Plan, ratings: dict[str, np.ndarray]) -> dict[str, Any]:
    rng = plan.rng
    genre_names, table = _genres(plan)
    # people credited on movies (fictional names), a few per movie, Zipf-skewed
    n_people = max(20, plan.n_listed // 4)
    vocab, gptr, gtags, pos, neg, gcdf, first_person = _tag_vocab(n_people)
    pw = 1.0 / (np.arange(n_people) + 10.0)
    people = rng.choice(n_people, size=(plan.n_listed, 3), p=pw / pw.sum()) + first_person
    people[rng.uniform(size=people.shape) < 0.4] = -1
    people = people.astype(np.int32)
    n_per_user = np.diff(plan.ptr)
    total = min(plan.n_tags, int(n_per_user.sum()))
    n_taggers = max(1, round(_TAGGER_SHARE * plan.n_users))
    p = np.sqrt(n_per_user.astype(np.float64))
    taggers = np.sort(rng.choice(plan.n_users, size=n_taggers, replace=False, p=p / p.sum()))
    weights = rng.lognormal(0.0, 1.8, n_taggers)
    caps = n_per_user[taggers]
    total = min(total, int(caps.sum()))
    n_tags = _allocate(total, weights, caps)
    u, m, t, ts = _k.sample_tags(
        taggers.astype(np.int64),
        n_tags.astype(np.int64),
        plan.ptr,
        ratings["items"],
        ratings["ts"],
        ratings["codes"],
        len(plan.stars),
        table[plan.rated_items],
        gptr,
        gtags,
        pos,
        neg,
        people[plan.rated_items],
        gcdf,
        0.4,
        0.15,
        0.15,
        plan.t1,
        plan.kseed[2],
    )
    ok = u >= 0
    u, m, t, ts = u[ok], plan.rated_items[m[ok]], t[ok], ts[ok]
    order = np.lexsort((t, ts, m, u))
    return {
        "user": u[order],
        "item": m[order],
        "tag": t[order],
        "ts": ts[order],
        "vocab": vocab,
        "genres": genre_names,
    }


def _links(plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    rng = plan.rng
    n = plan.n_listed
    yy = np.array([1900, 1920, 1940, 1960, 1980, 1990, 1995, 2000, 2005, 2010, 2013, 2016, 2019])
    ii = np.array(
        [1e3, 1.1e4, 3.2e4, 5.4e4, 8.1e4, 9.9e4, 1.14e5, 2.1e5, 4e5, 1.3e6, 2.5e6, 5e6, 9e6]
    )
    years = plan.years.astype(np.float64)
    imdb = np.exp(np.interp(years, yy, np.log(ii)) + rng.normal(0.0, 0.15, n))
    imdb = _strictly_increasing_unique(np.maximum(imdb, 1.0).astype(np.int64))
    arrival = _decimal_year(plan.item_time)
    tmdb = np.where(
        arrival < 2008,
        rng.lognormal(np.log(25000.0), 1.0, n),
        (arrival - 2008.0) * 45000.0 + rng.lognormal(np.log(20000.0), 0.8, n),
    )
    tmdb = _strictly_increasing_unique(np.clip(tmdb, 2.0, None).astype(np.int64))
    return imdb, tmdb


def _strictly_increasing_unique(v: np.ndarray) -> np.ndarray:
    """Make values unique with minimal upward nudges, keeping their order."""
    order = np.argsort(v, kind="stable")
    s = v[order]
    idx = np.arange(len(s))
    s = np.maximum.accumulate(s - idx) + idx
    out = np.empty_like(v)
    out[order] = s
    return out


# ---------------------------------------------------------------------------------------
# writing


def _write_all(
    plan: _Plan, ratings: dict[str, np.ndarray], tags: dict[str, Any], out: Path
) -> None:
    titles = _titles(plan)
    imdb, tmdb = _links(plan)
    missing_tmdb = np.zeros(plan.n_listed, dtype=bool)
    missing_tmdb[
        plan.rng.choice(plan.n_listed, size=max(1, round(0.002 * plan.n_listed)), replace=False)
    ] = True
    ids = plan.movie_ids

    try:
        tmp = stage_dir(out.parent, f".{out.name}.synth-")
    except OSError as exc:
        raise DataError(f"cannot write to {out}: {exc}") from exc
    try:
        n_per_user = np.diff(plan.ptr)
        stars = plan.stars.astype(np.float32)
        frame = pl.DataFrame(
            {
                "userId": np.repeat(np.arange(1, plan.n_users + 1, dtype=np.int32), n_per_user),
                "movieId": ids[plan.rated_items][ratings["items"]].astype(np.int32),
                "rating": stars[ratings["codes"]],
                "timestamp": ratings["ts"],
            }
        )
        frame.write_csv(tmp / "ratings.csv", float_precision=1)
        del frame
        pl.DataFrame(
            {
                "movieId": ids,
                "title": pl.Series(titles, dtype=pl.String),
                "genres": pl.Series(tags["genres"], dtype=pl.String),
            }
        ).write_csv(tmp / "movies.csv")
        vocab = pl.Series(tags["vocab"], dtype=pl.String)
        pl.DataFrame(
            {
                "userId": tags["user"] + 1,
                "movieId": ids[tags["item"]],
                "tag": vocab.gather(tags["tag"]),
                "timestamp": tags["ts"],
            }
        ).write_csv(tmp / "tags.csv")
        pl.DataFrame(
            {
                "movieId": ids,
                "imdbId": pl.Series(imdb).cast(pl.String).str.zfill(7),
                "tmdbId": pl.Series(tmdb).scatter(np.flatnonzero(missing_tmdb), None),
            }
        ).write_csv(tmp / "links.csv")
        names = ("ratings.csv", "movies.csv", "tags.csv", "links.csv")
        for name in names:
            with open(tmp / name, "rb+") as fh:
                os.fsync(fh.fileno())
        check_interrupt()
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if not out.exists():
            # a new folder appears whole: a killed run leaves no partial release behind
            tmp.chmod(0o755)
            os.replace(tmp, out)
        else:
            for name in names:
                os.replace(tmp / name, out / name)
        with contextlib.suppress(OSError):
            fd = os.open(out, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise DataError(f"cannot write to {out}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Steps:
    """Named steps shown with rich when enabled, silent otherwise."""

    def __init__(self, enabled: bool, total: int = 5) -> None:
        self.enabled = enabled
        self.total = total
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Steps:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]synth[/]"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total)
        return self

    def step(self, description: str) -> None:
        if self._progress is not None:
            done = self._progress.tasks[0].completed
            started = bool(self._progress.tasks[0].description)
            self._progress.update(
                self._task, description=description, completed=done + (1 if started else 0)
            )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.total)
            self._progress.stop()
