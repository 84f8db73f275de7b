import numpy as np
import polars as pl
import pytest
from contract import N_ITEMS, ModelContract, checkerboard

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.models.content import ContentTFIDF

NEW = 7  # the brand-new movie: metadata, no training rating


def with_metadata() -> tuple[Dataset, Dataset]:
    """The checkerboard with richer metadata: movies 3 and NEW alone share two genres."""
    full, _ = checkerboard()
    genres = [["Drama"] if k < N_ITEMS // 2 else ["Comedy"] for k in range(N_ITEMS)]
    genres[3] = genres[NEW] = ["Horror", "Sci-Fi"]
    movies = full.movies.with_columns(pl.Series("genres", genres, dtype=pl.List(pl.String)))
    raw = full.item_map.to_raw([3, 12])
    tags = pl.DataFrame(
        {
            "user": [1, 2],
            "item": raw.tolist(),
            "tag": ["time travel", "future spoiler"],
            "timestamp": [0, 10**12],
        },
        schema={"user": pl.Int64, "item": pl.Int64, "tag": pl.String, "timestamp": pl.Int64},
    )
    full = Dataset(
        full.users,
        full.items,
        full.ratings,
        full.timestamps,
        full.user_map,
        full.item_map,
        movies,
        tags=tags,
        name="meta",
    )
    train = full.subset((full.items != NEW) & (full.users != full.n_users - 1))
    return full, train


class TestContentTFIDF(ModelContract):
    model_class = ContentTFIDF
    params = {"threshold": 0.0}

    def test_brand_new_movie_is_scored_and_similar(self) -> None:
        full, train = with_metadata()
        assert train.item_counts()[NEW] == 0
        m = ContentTFIDF().fit(train)
        s = m.score([0])[0]
        assert np.isfinite(s[NEW])
        items, sims = m.similar_items([3], k=1)
        assert items[0, 0] == NEW and sims[0, 0] > 0.5
        # a new user who loved movie 3 gets the new movie first
        rec, _ = m.recommend_new([3, 25], [5.0, 1.0], k=1)
        assert rec[0] == NEW

    def test_tags_before_training_end_only(self) -> None:
        _, train = with_metadata()
        m = ContentTFIDF().fit(train)
        assert "tags:travel" in m.vocabulary_ and "tags:spoiler" not in m.vocabulary_
        terms = dict(m.top_terms(3, n=10))
        assert {"genres:horror", "genres:sci-fi", "tags:time"} <= set(terms)
        assert list(terms.values()) == sorted(terms.values(), reverse=True)
        assert ContentTFIDF(use_tags=False).fit(train).vocabulary_.count("tags:travel") == 0

    def test_centered_profile_pushes_away_dislikes(self, data) -> None:
        m = ContentTFIDF().fit(data[1])
        s = m.fold_in([0, 1, 25], [5.0, 5.0, 1.0])
        assert s[:20].mean() > 0 > s[20:].mean()

    def test_fold_in_matches_trained_user(self, data, fitted) -> None:
        csr = data[1].csr()
        u = 4
        it = csr.indices[csr.indptr[u] : csr.indptr[u + 1]]
        r = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
        np.testing.assert_allclose(fitted.fold_in(it, r), fitted.score([u])[0], atol=1e-6)

    def test_bad_params(self, data) -> None:
        with pytest.raises(ConfigError):
            ContentTFIDF(profile="mean").fit(data[1])
        with pytest.raises(ConfigError):
            ContentTFIDF(title_weight=0, genre_weight=0, tag_weight=0).fit(data[1])


def test_dense_block_kernel_equals_sparse_product() -> None:
    import scipy.sparse as sp

    from movierec.kernels.content import csr_times_dense_t

    rng = np.random.default_rng(3)
    # sizes not multiples of the kernel's item chunk or user tile
    v = sp.random(203, 37, density=0.2, format="csr", dtype=np.float32, random_state=4)
    pt = rng.random((37, 21), dtype=np.float32)
    got = csr_times_dense_t(v.indptr.astype(np.int64), v.indices, v.data, pt)
    assert got.shape == (21, 203)
    np.testing.assert_allclose(got, (v @ pt).T, rtol=1e-5, atol=1e-6)


def test_scores_are_the_cosine_of_profile_and_item() -> None:
    from sklearn.preprocessing import normalize

    m = ContentTFIDF(profile="rating").fit(checkerboard()[1])
    users = np.arange(10)
    prof = normalize(m.user_ratings_[users] @ m.tfidf_, norm="l2", axis=1)
    want = (prof @ m.tfidf_.T).toarray()
    np.testing.assert_allclose(m.score(users), want, rtol=1e-5, atol=1e-6)
