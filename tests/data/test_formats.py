"""Readers of every MovieLens layout, on small files written by the tests in the real formats."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.data import load, read
from movierec.data.formats import split_title
from movierec.errors import DataError, MovierecError

# ----------------------------------------------------------------------------- helpers


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def raw_triples(ds) -> set[tuple[int, int, float, int]]:
    """(raw user, raw movie, rating, timestamp) of every rating."""
    u = ds.user_map.to_raw(ds.users)
    i = ds.item_map.to_raw(ds.items)
    return {
        (int(a), int(b), float(r), int(t))
        for a, b, r, t in zip(u, i, ds.ratings, ds.timestamps, strict=True)
    }


def check_canonical(ds) -> None:
    assert ds.users.dtype == np.int32 and ds.items.dtype == np.int32
    assert ds.ratings.dtype == np.float32
    assert ds.timestamps.dtype == np.int64
    n = ds.n_ratings
    assert ds.users.size == ds.items.size == ds.timestamps.size == n
    assert ds.users.min() >= 0 and ds.users.max() < ds.n_users
    assert ds.items.min() >= 0 and ds.items.max() < ds.n_items
    # every user and movie in the maps has at least one rating
    assert (ds.user_counts() > 0).all() and (ds.item_counts() > 0).all()


def movie(ds, raw_id: int) -> dict:
    rows = ds.movies.filter(pl.col("item") == raw_id).to_dicts()
    assert len(rows) == 1, f"movie {raw_id} appears {len(rows)} times"
    return rows[0]


# ----------------------------------------------------------------------------- ml-100k

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES_100K)


def ml100k_files() -> dict[str, bytes]:
    u_data = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t1\t5\t881251000\n"
    u_item = (
        "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|"
        + flags("Animation", "Children's", "Comedy")
        + "\n242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|"
        + flags("Comedy")
        + "\n302|Café (1994)|01-Jan-1994||http://us.imdb.com/Title?Caf%E9+(1994)|"
        + flags("Crime", "Film-Noir", "Mystery", "Thriller")
        + "\n377|Heavyweights (1994)|01-Jan-1994||http://us.imdb.com/M/title-exact?Heavyweights%20(1994)|"
        + flags("Children's", "Comedy")
        + "\n267|unknown||||"
        + flags("unknown")
        + "\n"
    )
    u_genre = "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES_100K)) + "\n"
    u_user = "22|25|M|writer|40206\n186|39|F|executive|00000\n196|49|M|writer|55105\n"
    return {
        "u.data": u_data.encode(),
        "u.item": u_item.encode("latin-1"),
        "u.genre": u_genre.encode(),
        "u.user": u_user.encode(),
    }


def test_ml100k_layout(tmp_path: Path) -> None:
    ds = read(write(tmp_path / "ml-100k", ml100k_files()))
    check_canonical(ds)
    assert ds.notes["layout"] == "ml-100k"
    assert ds.name == "ml-100k"
    assert (ds.n_users, ds.n_items, ds.n_ratings) == (3, 4, 4)
    assert raw_triples(ds) == {
        (196, 242, 3.0, 881250949),
        (186, 302, 3.0, 891717742),
        (22, 377, 1.0, 878887116),
        (196, 1, 5.0, 881251000),
    }
    assert ds.user_map.raw.tolist() == [22, 186, 196]
    assert ds.item_map.raw.tolist() == [1, 242, 302, 377]
    cafe = movie(ds, 302)
    assert cafe["title"] == "Café" and cafe["year"] == 1994
    assert cafe["genres"] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
    toy = movie(ds, 1)
    assert (toy["title"], toy["year"]) == ("Toy Story", 1995)
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    unknown = movie(ds, 267)  # in the catalogue, never rated; "unknown" genre means none
    assert unknown["year"] is None and unknown["genres"] == []
    assert ds.movies.height == 5
    # item_table is aligned to dense item indices
    assert ds.item_table["title"].to_list() == ["Toy Story", "Kolya", "Café", "Heavyweights"]
    info = ds.user_info.sort("user")
    assert info["user"].to_list() == [22, 186, 196]
    assert info["occupation"].to_list() == ["writer", "executive", "writer"]
    assert info["zip"].to_list() == ["40206", "00000", "55105"]  # leading zeros kept
    assert ds.tags is None and ds.links is None


def test_ml100k_without_u_genre_uses_the_standard_genres(tmp_path: Path) -> None:
    files = ml100k_files()
    del files["u.genre"], files["u.user"]
    ds = read(write(tmp_path / "x", files))
    assert movie(ds, 377)["genres"] == ["Children's", "Comedy"]
    assert ds.user_info is None


# ----------------------------------------------------------------------------- ml-1m

ML1M = {
    "ratings.dat": b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    b"6040::3952::1::956715648\n",
    "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "3952::Misérables, Les (1995)::Drama|Musical\n"
    "73::Contender, The (2000)::Drama|Thriller\n".encode("latin-1"),
    "users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n6040::M::25::6::11106\n",
}


def test_ml1m_layout(tmp_path: Path) -> None:
    ds = read(write(tmp_path / "ml-1m", ML1M))
    check_canonical(ds)
    assert ds.notes["layout"] == "dat"
    assert raw_triples(ds) == {
        (1, 1193, 5.0, 978300760),
        (1, 661, 3.0, 978302109),
        (2, 1193, 4.0, 978298413),
        (6040, 3952, 1.0, 956715648),
    }
    assert ds.user_map.raw.tolist() == [1, 2, 6040]
    assert ds.item_map.raw.tolist() == [661, 1193, 3952]
    m = movie(ds, 3952)
    assert (m["title"], m["year"], m["genres"]) == ("Misérables, Les", 1995, ["Drama", "Musical"])
    assert movie(ds, 661)["genres"] == ["Animation", "Children's", "Musical"]
    assert ds.movies.height == 4
    info = ds.user_info.sort("user")
    assert info["user"].to_list() == [1, 2, 6040]
    assert info["gender"].to_list() == ["F", "M", "M"]
    assert info["zip"].to_list() == ["48067", "70072", "11106"]


# ----------------------------------------------------------------------------- ml-10m

ML10M = {
    "ratings.dat": b"1::122::5::838985046\n1::185::4.5::838983525\n71567::2338::0.5::912580553\n",
    "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n"
    "185::Net, The (1995)::Action|Crime|Thriller\n"
    "2338::I Still Know What You Did Last Summer (1998)::Horror|Mystery|Thriller\n"
    "8::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::(no genres listed)\n".encode(),
    "tags.dat": "15::4973::excellent!::1215184630\n"
    "20::1747::Oscar: Best Picture::1188263867\n"
    "20::2338::pas très bien::1188263880\n".encode(),
}


def test_ml10m_layout_in_a_subfolder(tmp_path: Path) -> None:
    write(tmp_path / "ml-10m" / "ml-10M100K", ML10M)
    ds = read(tmp_path / "ml-10m")
    check_canonical(ds)
    assert ds.notes["layout"] == "dat"
    assert raw_triples(ds) == {
        (1, 122, 5.0, 838985046),
        (1, 185, 4.5, 838983525),
        (71567, 2338, 0.5, 912580553),
    }
    amelie = movie(ds, 8)
    assert amelie["title"] == "Amélie (Fabuleux destin d'Amélie Poulain, Le)"
    assert amelie["year"] == 2001 and amelie["genres"] == []
    assert movie(ds, 185)["title"] == "Net, The"
    tags = ds.tags.sort("timestamp")
    assert tags.columns[:4] == ["user", "item", "tag", "timestamp"]
    assert tags["tag"].to_list() == ["Oscar: Best Picture", "pas très bien", "excellent!"]
    assert tags["item"].to_list() == [1747, 2338, 4973]  # raw ids, even for unrated movies
    assert tags["timestamp"].dtype == pl.Int64
    assert ds.user_info is None
    assert ds.stats()["tags"] == 3


# ----------------------------------------------------------------------------- csv (ml-25m)

RATINGS_CSV = (
    b"userId,movieId,rating,timestamp\n"
    b"1,296,5.0,1147880044\n"
    b"1,306,3.5,1147868817\n"
    b"3,1,4.0,1439472215\n"
    b"3,171749,0.5,1439472256\n"
    b"162541,296,2.5,1240953372\n"
)
MOVIES_CSV = (
    b"movieId,title,genres\n"
    b"1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    b'296,"Good, the Bad and the Ugly, The (1966)",Action|Adventure|Western\n'
    b"306,Three Colors: Red (Trois couleurs: Rouge) (1994),Drama\n"
    b"171749,Black Mirror,(no genres listed)\n"
    b'209171,"Women of Devil\'s Island (1962)",Action|Adventure|Drama\n'
)
TAGS_CSV = (
    b"userId,movieId,tag,timestamp\n"
    b"3,260,classic,1439472355\n"
    b'4,296,"dark comedy, violence",1573943598\n'
    b"4,1,Pixar,1573943600\n"
)
LINKS_CSV = b"movieId,imdbId,tmdbId\n1,0114709,862\n296,0060196,429\n171749,2085059,\n"
CSV_FILES = {
    "ratings.csv": RATINGS_CSV,
    "movies.csv": MOVIES_CSV,
    "tags.csv": TAGS_CSV,
    "links.csv": LINKS_CSV,
    "README.txt": b"Summary\n=======\n",
}


def check_csv_release(ds) -> None:
    check_canonical(ds)
    assert ds.notes["layout"] == "csv"
    assert raw_triples(ds) == {
        (1, 296, 5.0, 1147880044),
        (1, 306, 3.5, 1147868817),
        (3, 1, 4.0, 1439472215),
        (3, 171749, 0.5, 1439472256),
        (162541, 296, 2.5, 1240953372),
    }
    assert ds.user_map.raw.tolist() == [1, 3, 162541]
    assert ds.item_map.raw.tolist() == [1, 296, 306, 171749]
    good = movie(ds, 296)
    assert good["title"] == "Good, the Bad and the Ugly, The"
    assert good["year"] == 1966 and good["genres"] == ["Action", "Adventure", "Western"]
    red = movie(ds, 306)
    assert (red["title"], red["year"]) == ("Three Colors: Red (Trois couleurs: Rouge)", 1994)
    bm = movie(ds, 171749)
    assert (bm["title"], bm["year"], bm["genres"]) == ("Black Mirror", None, [])
    assert ds.movies.height == 5  # unrated movies stay in the catalogue
    assert ds.movies["year"].dtype == pl.Int32
    tags = ds.tags.sort("timestamp")
    assert tags["tag"].to_list() == ["classic", "dark comedy, violence", "Pixar"]
    assert tags["user"].to_list() == [3, 4, 4] and tags["item"].to_list() == [260, 296, 1]
    links = ds.links.sort("item")
    assert links["item"].to_list() == [1, 296, 171749]
    assert links["imdb"].to_list() == [114709, 60196, 2085059]
    assert links["tmdb"].to_list() == [862, 429, None]
    assert ds.user_info is None
    st = ds.stats()
    assert (st["users"], st["movies"], st["ratings"]) == (3, 4, 5)
    assert st["density"] == pytest.approx(5 / 12)
    assert st["rating_histogram"] == {"0.5": 1, "2.5": 1, "3.5": 1, "4": 1, "5": 1}


def test_csv_layout(tmp_path: Path) -> None:
    ds = read(write(tmp_path / "ml-25m", CSV_FILES))
    check_csv_release(ds)
    assert ds.name == "ml-25m"


def zip_release(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(f"{top}/"), b"")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return path


def test_csv_zip_reads_like_the_folder(tmp_path: Path) -> None:
    folder = read(write(tmp_path / "ml-25m", CSV_FILES))
    zipped = read(zip_release(tmp_path / "ml-25m.zip", "ml-25m", CSV_FILES))
    check_csv_release(zipped)
    for a in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(zipped, a), getattr(folder, a))
    assert zipped.user_map == folder.user_map and zipped.item_map == folder.item_map
    for t in ("movies", "tags", "links"):
        assert getattr(zipped, t).equals(getattr(folder, t))
    assert zipped.fingerprint() == folder.fingerprint()


def test_csv_ratings_only(tmp_path: Path) -> None:
    ds = read(write(tmp_path / "r", {"ratings.csv": RATINGS_CSV}))
    assert ds.n_ratings == 5 and ds.movies.height == 0
    assert ds.item_table["title"].to_list() == ["", "", "", ""]
    assert ds.tags is None and ds.links is None


# ----------------------------------------------------------------------------- recbole

RB_INTER = (
    b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    b"196\t242\t3\t881250949\n"
    b"186\t302\t3\t891717742.0\n"
    b"22\t377\t1\t878887116\n"
)
RB_ITEM = (
    b"item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    b"242\tKolya\t1996\tComedy\n"
    b"302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
    b"377\tHeavyweights\t1994\tChildren's Comedy\n"
    b"1\tToy Story\t1995\tAnimation Children's Comedy\n"
)
RB_USER = (
    b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    b"196\t49\tM\twriter\t55105\n"
    b"186\t39\tF\texecutive\t00000\n"
    b"22\t25\tM\twriter\t40206\n"
)


def test_recbole_layout(tmp_path: Path) -> None:
    files = {"ml-100k.inter": RB_INTER, "ml-100k.item": RB_ITEM, "ml-100k.user": RB_USER}
    ds = read(write(tmp_path / "rb", files), name="ml-100k")
    check_canonical(ds)
    assert ds.notes["layout"] == "recbole" and ds.name == "ml-100k"
    assert raw_triples(ds) == {
        (196, 242, 3.0, 881250949),
        (186, 302, 3.0, 891717742),
        (22, 377, 1.0, 878887116),
    }
    lac = movie(ds, 302)
    assert (lac["title"], lac["year"]) == ("L.A. Confidential", 1997)
    assert lac["genres"] == ["Crime", "Film-Noir", "Mystery", "Thriller"]
    assert movie(ds, 377)["genres"] == ["Children's", "Comedy"]
    assert ds.movies.height == 4
    info = ds.user_info.sort("user")
    assert info["user"].to_list() == [22, 186, 196]
    assert info["occupation"].to_list() == ["writer", "executive", "writer"]


def test_recbole_inter_only(tmp_path: Path) -> None:
    ds = read(write(tmp_path / "rb", {"ml-100k.inter": RB_INTER}))
    assert ds.n_ratings == 3 and ds.movies.height == 0 and ds.user_info is None


# ----------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("text", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("Good, the Bad and the Ugly, The (1966)", "Good, the Bad and the Ugly, The", 1966),
        ("Black Mirror", "Black Mirror", None),
        ("Babylon 5 (1994-1998)", "Babylon 5", 1994),
        ("Stranger Things (2016-)", "Stranger Things", 2016),
        ("Tokyo Tribe (2014) ", "Tokyo Tribe", 2014),
        ("1984 (1984)", "1984", 1984),
        ("Three Colors: Red (Trois couleurs: Rouge) (1994)", "Three Colors: Red (Trois couleurs: Rouge)", 1994),
        ("Amélie (Fabuleux destin d'Amélie Poulain, Le)", "Amélie (Fabuleux destin d'Amélie Poulain, Le)", None),
    ],
)  # fmt: skip
def test_split_title(text: str, title: str, year: int | None) -> None:
    assert split_title(text) == (title, year)


# ----------------------------------------------------------------------------- bad input


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("MOVIEREC_HOME", str(h))
    return h


def assert_fails(path: Path, home: Path, *words: str) -> DataError:
    """``load(path)`` raises DataError naming what to fix, and writes no cache or temp file."""
    where = path if path.is_dir() else path.parent
    before = sorted(where.rglob("*")) if where.exists() else []
    with pytest.raises(DataError) as info:
        load(path)
    msg = str(info.value)
    assert isinstance(info.value, MovierecError)
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
    assert "\n" not in msg
    parsed = home / "parsed"
    assert not parsed.exists() or not any(parsed.iterdir()), list(parsed.rglob("*"))
    after = sorted(where.rglob("*")) if where.exists() else []
    assert after == before  # nothing written next to the source
    return info.value


def test_missing_folder(tmp_path: Path, home: Path) -> None:
    assert_fails(tmp_path / "no" / "such", home, "no such file or folder")


def test_folder_without_a_known_layout(tmp_path: Path, home: Path) -> None:
    folder = write(tmp_path / "junk", {"notes.txt": b"hello\n", "data.json": b"{}"})
    assert_fails(folder, home, "no known MovieLens layout", "ratings.csv")


def test_empty_folder(tmp_path: Path, home: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_fails(tmp_path / "empty", home, "no known MovieLens layout")


def test_missing_columns_in_ratings_csv(tmp_path: Path, home: Path) -> None:
    folder = write(tmp_path / "r", {"ratings.csv": b"userId,movieId,timestamp\n1,2,3\n"})
    assert_fails(folder, home, "ratings.csv", "missing column", "rating")


def test_non_numeric_rating(tmp_path: Path, home: Path) -> None:
    data = b"userId,movieId,rating,timestamp\n1,2,4.0,10\n1,3,four,11\n"
    folder = write(tmp_path / "r", {"ratings.csv": data})
    assert_fails(folder, home, "ratings.csv", "'rating'", "non-numeric")


def test_non_numeric_user_id_in_dat(tmp_path: Path, home: Path) -> None:
    folder = write(tmp_path / "r", {"ratings.dat": b"1::2::3::4\nx::2::3::5\n"})
    assert_fails(folder, home, "ratings.dat", "'user'", "non-numeric")


@pytest.mark.parametrize("bad", ["7", "0", "5.5", "-1", "nan"])
def test_out_of_range_rating(tmp_path: Path, home: Path, bad: str) -> None:
    data = f"userId,movieId,rating,timestamp\n1,2,4.0,10\n1,3,{bad},11\n".encode()
    folder = write(tmp_path / "r", {"ratings.csv": data})
    assert_fails(folder, home, "out of range", "[0.5, 5]", "row 2")


def test_empty_rating_value(tmp_path: Path, home: Path) -> None:
    data = b"userId,movieId,rating,timestamp\n1,2,,10\n"
    folder = write(tmp_path / "r", {"ratings.csv": data})
    assert_fails(folder, home, "ratings.csv", "'rating'", "empty")


@pytest.mark.parametrize("content", [b"userId,movieId,rating,timestamp\n", b""])
def test_empty_ratings_file(tmp_path: Path, home: Path, content: bytes) -> None:
    folder = write(tmp_path / "r", {"ratings.csv": content})
    assert_fails(folder, home, "ratings", "give a file with")


def test_u_data_with_wrong_column_count(tmp_path: Path, home: Path) -> None:
    files = ml100k_files()
    files["u.data"] = b"196\t242\t3\n186\t302\t3\n"
    assert_fails(write(tmp_path / "ml-100k", files), home, "u.data", "4", "column")


def test_truncated_zip(tmp_path: Path, home: Path) -> None:
    good = zip_release(tmp_path / "good.zip", "ml-25m", CSV_FILES).read_bytes()
    bad = tmp_path / "src" / "ml-25m.zip"
    bad.parent.mkdir()
    bad.write_bytes(good[: len(good) // 2])
    assert_fails(bad, home, "zip", "download it again")


def test_not_a_zip(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "src" / "ml-25m.zip"
    bad.parent.mkdir()
    bad.write_bytes(b"<html>404 Not Found</html>")
    assert_fails(bad, home, "not a readable zip")


def test_corrupt_data_inside_zip(tmp_path: Path, home: Path) -> None:
    """Central directory intact, compressed bytes of ratings.csv damaged."""
    rows = "".join(
        f"{u},{m},{(u * m) % 10 / 2 + 0.5},{1000 + u * m}\n"
        for u in range(1, 60)
        for m in range(1, 40)
    )
    files = {"ratings.csv": ("userId,movieId,rating,timestamp\n" + rows).encode()}
    data = bytearray(zip_release(tmp_path / "good.zip", "ml-25m", files).read_bytes())
    start = data.find(b"ratings.csv") + len("ratings.csv") + 20
    for k in range(start, start + 60):
        data[k] ^= 0xFF
    bad = tmp_path / "src" / "ml-25m.zip"
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    assert_fails(bad, home, "corrupt")


# ----------------------------------------------------------------------------- duplicates


def test_duplicates_keep_the_latest(tmp_path: Path, home: Path) -> None:
    data = (
        b"userId,movieId,rating,timestamp\n"
        b"1,10,3.0,100\n"
        b"1,10,4.0,300\n"  # latest of three: kept
        b"1,10,5.0,200\n"
        b"2,10,2.0,500\n"
        b"2,10,3.5,500\n"  # equal timestamps: the later row is kept
        b"2,20,1.0,50\n"
        b"3,20,4.5,60\n"
    )
    ds = load(write(tmp_path / "dup", {"ratings.csv": data}))
    assert raw_triples(ds) == {
        (1, 10, 4.0, 300),
        (2, 10, 3.5, 500),
        (2, 20, 1.0, 50),
        (3, 20, 4.5, 60),
    }
    assert ds.n_ratings == 4
    assert ds.notes["duplicates_dropped"] == 3
    assert ds.stats()["duplicates_dropped"] == 3
    # the count survives the parsed cache
    again = load(tmp_path / "dup")
    assert again.notes["duplicates_dropped"] == 3 and again.stats()["duplicates_dropped"] == 3


def test_no_duplicates_counts_zero(tmp_path: Path) -> None:
    ds = read(write(tmp_path / "ml-25m", CSV_FILES))
    assert ds.notes["duplicates_dropped"] == 0 and ds.stats()["duplicates_dropped"] == 0


# ----------------------------------------------------------------------------- parsed cache


def arrays_equal(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k)) and getattr(a, k).dtype == getattr(b, k).dtype
        for k in ("users", "items", "ratings", "timestamps")
    ) and (a.user_map == b.user_map and a.item_map == b.item_map)


def test_cache_hit_returns_identical_data(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write(tmp_path / "ml-25m", CSV_FILES)
    first = load(folder)
    parsed = list((home / "parsed").iterdir())
    assert len(parsed) == 1 and (parsed[0] / "meta.json").exists()
    assert {p.name for p in parsed[0].glob("*.npy")} >= {"users.npy", "ratings.npy"}

    import movierec.data as data_mod

    def no_parse(*a, **k):
        raise AssertionError("the source was parsed again despite a valid cache")

    monkeypatch.setattr(data_mod, "read", no_parse)
    second = load(folder)
    assert arrays_equal(first, second)
    for t in ("movies", "tags", "links"):
        assert getattr(second, t).equals(getattr(first, t))
    assert second.name == first.name and second.notes == first.notes
    assert second.stats() == first.stats()


def test_cache_invalidated_when_ratings_change(tmp_path: Path, home: Path) -> None:
    folder = write(tmp_path / "ml-25m", CSV_FILES)
    first = load(folder)
    assert first.n_ratings == 5
    new = b"userId,movieId,rating,timestamp\n7,1,1.5,1000\n8,1,2.0,2000\n"
    (folder / "ratings.csv").write_bytes(new)
    st = (folder / "ratings.csv").stat()
    os.utime(folder / "ratings.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = load(folder)
    assert raw_triples(second) == {(7, 1, 1.5, 1000), (8, 1, 2.0, 2000)}
    # the rebuilt cache is reused
    assert arrays_equal(load(folder), second)
    assert len(list((home / "parsed").iterdir())) == 1


def test_cache_invalidated_on_same_size_new_mtime(tmp_path: Path, home: Path) -> None:
    folder = write(
        tmp_path / "r", {"ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,10\n"}
    )
    assert raw_triples(load(folder)) == {(1, 1, 4.0, 10)}
    (folder / "ratings.csv").write_bytes(b"userId,movieId,rating,timestamp\n2,1,3.0,10\n")
    st = (folder / "ratings.csv").stat()
    os.utime(folder / "ratings.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    assert raw_triples(load(folder)) == {(2, 1, 3.0, 10)}


@pytest.mark.parametrize("keep", [0, 10, 100, -8])
def test_corrupt_cache_is_rebuilt(tmp_path: Path, home: Path, keep: int) -> None:
    folder = write(tmp_path / "ml-25m", CSV_FILES)
    first = load(folder)
    (cache,) = list((home / "parsed").iterdir())
    npy = cache / "ratings.npy"
    data = npy.read_bytes()
    npy.write_bytes(data[:keep])  # 0 bytes, mid-header, header only, data cut short
    second = load(folder)
    assert arrays_equal(first, second)
    # and the cache was rewritten whole
    assert npy.read_bytes() == data
    assert arrays_equal(load(folder), first)


@pytest.mark.parametrize("victim", ["meta.json", "movies.parquet", "items.npy"])
def test_damaged_or_missing_cache_files_are_rebuilt(
    tmp_path: Path, home: Path, victim: str
) -> None:
    folder = write(tmp_path / "ml-25m", CSV_FILES)
    first = load(folder)
    (cache,) = list((home / "parsed").iterdir())
    target = cache / victim
    target.write_bytes(b"garbage")
    assert arrays_equal(load(folder), first)
    target.unlink()
    second = load(folder)
    assert arrays_equal(second, first) and second.movies.equals(first.movies)


def test_zip_source_is_cached_and_invalidated(tmp_path: Path, home: Path) -> None:
    z = zip_release(tmp_path / "ml-25m.zip", "ml-25m", CSV_FILES)
    assert load(z).n_ratings == 5
    assert load(z).n_ratings == 5
    files = dict(CSV_FILES, **{"ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,10\n"})
    z.unlink()
    zip_release(z, "ml-25m", files)
    st = z.stat()
    os.utime(z, ns=(st.st_atime_ns, st.st_mtime_ns + 3_000_000_000))
    assert load(z).n_ratings == 1
