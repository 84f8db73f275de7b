"""Content-based recommendation: TF-IDF over title words, genres and tags."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import normalize

from movierec.data.dataset import Dataset
from movierec.kernels.content import csr_times_dense_t, profiles_t
from movierec.models.base import Recommender

_WORD = re.compile(r"[a-z0-9]+")
PROFILES = ("centered", "rating")


def _tokens(doc: list[str]) -> list[str]:
    # documents are already token lists; the vectorizer must not split them again
    return doc


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS and len(w) > 1]


def item_documents(train: Dataset, use_tags: bool = True) -> dict[str, list[list[str]]]:
    """Token lists per item (aligned to item index) for the three fields.

    ``title``: lower-case title words without English stop words; ``genres``: one token per
    genre; ``tags``: the words of the tags users gave the movie, only tags time-stamped no
    later than the last training rating (so a temporal split cannot leak future tags).
    """
    table = train.item_table
    titles = [_words(t) for t in table["title"].to_list()]
    genres = [[g.lower().replace(" ", "_") for g in gs] for gs in table["genres"].to_list()]
    tags: list[list[str]] = [[] for _ in range(train.n_items)]
    if use_tags and train.tags is not None and train.tags.height:
        t = train.tags
        if train.n_ratings and "timestamp" in t.columns:
            t = t.filter(pl.col("timestamp") <= int(train.timestamps.max()))
        idx = train.item_map.index(t["item"].to_numpy(), missing="minus1")
        for i, text in zip(idx.tolist(), t["tag"].cast(pl.String).to_list(), strict=True):
            if i >= 0 and text:
                tags[i].extend(_words(text))
    return {"title": titles, "genres": genres, "tags": tags}


class ContentTFIDF(Recommender):
    r"""Content-based scores: cosine between a user's TF-IDF profile and each movie.

    Each movie is a document of three fields, each turned into TF-IDF vectors (scikit-learn
    ``TfidfVectorizer``, smooth idf, sublinear tf), L2-normalized per field, scaled by
    ``title_weight``, ``genre_weight`` and ``tag_weight``, concatenated and L2-normalized
    again: :math:`v_i`. A user's profile is the weighted mean of the vectors of the movies
    she rated,

    .. math:: p_u = \sum_{i \in I_u} w_{ui} v_i, \qquad
              \text{score}(u, j) = \cos(p_u, v_j),

    with :math:`w_{ui} = r_{ui} - \bar r_u` (``profile="centered"``: disliked movies pull the
    profile away; a user whose ratings are all equal falls back to ``w = r``) or
    :math:`w_{ui} = r_{ui}` (``profile="rating"``). Ratings below ``threshold`` are left
    out. Movies need no training ratings to be scored: any movie with metadata in
    ``Dataset.item_table`` (or tags) gets a vector, so brand-new movies are recommended
    and listed by :meth:`similar_items` (cosine of :math:`v`).

    Parameters
    ----------
    profile : {"centered", "rating"}
    threshold : float
        Ratings below it are ignored for the profile.
    title_weight, genre_weight, tag_weight : float
        Relative weight of each field (0 drops it).
    use_tags : bool
        Use the release's tags when it has them.
    min_df : int
        Terms in fewer movies are dropped.
    """

    name = "content"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "title_weight": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.0, 0.5, 1.0]},
        "genre_weight": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.5, 1.0, 2.0]},
        "tag_weight": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.0, 1.0, 2.0]},
    }

    def __init__(
        self,
        profile: str = "centered",
        threshold: float = 0.0,
        title_weight: float = 0.5,
        genre_weight: float = 1.0,
        tag_weight: float = 1.0,
        use_tags: bool = True,
        min_df: int = 1,
    ) -> None:
        self.profile = profile
        self.threshold = threshold
        self.title_weight = title_weight
        self.genre_weight = genre_weight
        self.tag_weight = tag_weight
        self.use_tags = use_tags
        self.min_df = min_df

    def _fit(self, train: Dataset) -> None:
        self._check(self.profile in PROFILES, f"profile must be one of {PROFILES}")
        self._check(int(self.min_df) >= 1, f"min_df must be >= 1, got {self.min_df}")
        w = {"title": self.title_weight, "genres": self.genre_weight, "tags": self.tag_weight}
        self._check(
            min(w.values()) >= 0 and max(w.values()) > 0, "field weights must be >= 0, one > 0"
        )
        docs = item_documents(train, self.use_tags)
        blocks, vocab = [], []
        for field, weight in w.items():
            if weight == 0 or not any(docs[field]):
                continue
            vec = TfidfVectorizer(
                analyzer=_tokens, min_df=int(self.min_df), sublinear_tf=True, norm="l2"
            )
            try:
                m = vec.fit_transform(docs[field])
            except ValueError:  # every term below min_df
                continue
            blocks.append(m * float(weight))
            vocab.extend(f"{field}:{t}" for t in vec.get_feature_names_out())
        self._check(bool(blocks), "no movie metadata to build TF-IDF vectors from")
        v = normalize(sp.hstack(blocks).tocsr().astype(np.float32), norm="l2", axis=1)
        self.tfidf_ = v.tocsr()
        self.vocabulary_ = vocab
        self.user_ratings_ = train.csr().astype(np.float32, copy=False)  # the data set's own

    def _weights(self, x: sp.csr_matrix) -> sp.csr_matrix:
        """Profile weights of rating rows (CSR, one row per user)."""
        x = x.copy()
        x.data = np.where(x.data >= self.threshold, x.data, 0.0).astype(np.float32)
        x.eliminate_zeros()
        if self.profile == "centered":
            counts = np.diff(x.indptr)
            sums = np.asarray(x.sum(axis=1)).ravel()
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
            centred = x.data - np.repeat(mean, counts)
            rows = np.repeat(np.arange(counts.size), counts)
            spread = np.bincount(rows, weights=np.abs(centred), minlength=counts.size)
            flat = (spread < 1e-6)[rows]
            x.data = np.where(flat, x.data, centred).astype(np.float32)
        return x

    def _profile_scores(self, x: sp.csr_matrix) -> np.ndarray:
        # profiles are small (users x terms, made dense); the users x items product is a
        # dense block computed by item chunks on every core, never a sparse product
        w, v = self._weights(x), self.tfidf_
        vip = v.indptr.astype(np.int64)
        vix, vd = v.indices.astype(np.int32, copy=False), v.data.astype(np.float32, copy=False)
        pt = profiles_t(w.indptr.astype(np.int64), w.indices, w.data, vip, vix, vd, int(v.shape[1]))
        return csr_times_dense_t(vip, vix, vd, pt)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._profile_scores(self.user_ratings_[users])

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        return np.asarray((self.tfidf_[items] @ self.tfidf_.T).todense(), dtype=np.float32)

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Scores of a new user from her (item, rating) pairs: cosine to her profile."""
        self._require_fitted()
        items = np.asarray(items, dtype=np.int64)
        r = np.asarray(ratings, dtype=np.float32)
        x = sp.csr_matrix((r, (np.zeros(items.size, np.int64), items)), shape=(1, self.n_items_))
        return self._profile_scores(x)[0]

    def top_terms(self, item: int, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` heaviest terms of an item's vector: [(field:term, weight)], heaviest first."""
        self._require_fitted()
        i = int(self._items(item)[0])
        row = self.tfidf_[i]
        order = np.argsort(-row.data, kind="stable")[:n]
        return [(self.vocabulary_[row.indices[o]], float(row.data[o])) for o in order]
