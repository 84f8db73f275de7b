"""Artifacts: exact round trips for every registered model, and refusal of bad files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from contract import assert_same_model, checkerboard

from movierec.artifacts import ARRAYS, MODEL_JSON, _json_checksum, load, load_bundle, save
from movierec.data.dataset import Dataset
from movierec.errors import ArtifactError, ConfigError
from movierec.models.base import Recommender
from movierec.models.baselines import Biases
from movierec.models.popularity import Popularity


@pytest.fixture(scope="module")
def data() -> tuple[Dataset, Dataset]:
    return checkerboard()


# -- nested state, exotic types --------------------------------------------------------------
class Blend(Recommender):
    """Test-only hybrid: averages sub-models held in a learned list."""

    name = "blend"

    def __init__(self, weights: tuple[float, ...] = (0.5, 0.5), scale: float = 1.0) -> None:
        self.weights = weights
        self.scale = scale

    def _fit(self, train: Dataset) -> None:
        self.parts_ = [Biases().fit(train), Popularity().fit(train)]
        self.first_ = self.parts_[0]
        self.matrix_ = train.csr().astype(np.float64)
        self.csc_ = sp.csc_array(train.csc())
        self.np_scalar_ = np.float32(0.1)
        self.info_ = {"note": "x", "n": 3, "none": None}
        self.flag_ = True

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = sum(w * m.score(users) for w, m in zip(self.weights, self.parts_, strict=True))
        return (self.scale * s + self.np_scalar_).astype(np.float32)


def test_nested_models_and_exotic_state(data, tmp_path: Path) -> None:
    full, train = data
    m = Blend(weights=(0.3, 0.7)).fit(train)
    save(m, tmp_path / "b", train=train)
    # first_ and parts_[0] are one object: written once, referenced once, loaded as one
    assert (tmp_path / "b" / "sub" / "first_" / MODEL_JSON).is_file()
    assert (tmp_path / "b" / "sub" / "parts_.1" / MODEL_JSON).is_file()
    assert not (tmp_path / "b" / "sub" / "parts_.0").exists()
    back = load(tmp_path / "b", classes=[Blend])
    assert back.parts_[0] is back.first_
    assert_same_model(m, back, full)
    assert isinstance(back.parts_[0], Biases) and isinstance(back.parts_[1], Popularity)
    assert back.weights == (0.3, 0.7) and isinstance(back.rating_scale_, tuple)
    assert back.np_scalar_.dtype == np.float32 and back.np_scalar_ == m.np_scalar_
    assert isinstance(back.matrix_, sp.csr_matrix) and isinstance(back.csc_, sp.csc_array)
    assert (back.matrix_ != m.matrix_).nnz == 0 and back.matrix_.dtype == np.float64
    assert back.info_ == m.info_ and back.flag_ is True
    np.testing.assert_array_equal(back.first_.bu_, m.first_.bu_)
    # a class outside movierec is not imported by name from a file
    with pytest.raises(ArtifactError, match="not a movierec model"):
        load(tmp_path / "b")


def test_sub_model_tampering_is_caught(data, tmp_path: Path) -> None:
    m = Blend().fit(data[1])
    save(m, tmp_path / "b")
    f = tmp_path / "b" / "sub" / "first_" / ARRAYS  # also parts_[0], referenced
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"first_/arrays\.npz"):
        load(tmp_path / "b", classes=[Blend])


# -- refusing bad artifacts ------------------------------------------------------------------
@pytest.fixture()
def saved(data, tmp_path: Path) -> Path:
    save(Biases().fit(data[1]), tmp_path / "m", train=data[1])
    return tmp_path / "m"


def test_one_changed_byte_in_arrays_is_refused(saved: Path) -> None:
    f = saved / ARRAYS
    raw = bytearray(f.read_bytes())
    raw[100] = (raw[100] + 1) % 256
    f.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"arrays\.npz does not match its checksum"):
        load(saved)


def test_truncated_and_missing_files_are_refused(saved: Path) -> None:
    items = saved / "items.parquet"
    items.write_bytes(items.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match=r"items\.parquet"):
        load_bundle(saved)
    items.unlink()
    with pytest.raises(ArtifactError, match=r"items\.parquet is missing"):
        load(saved)
    (saved / MODEL_JSON).write_text((saved / MODEL_JSON).read_text()[:50])
    with pytest.raises(ArtifactError, match=r"model\.json is unreadable or truncated"):
        load(saved)


def test_edited_model_json_is_refused(saved: Path) -> None:
    meta = json.loads((saved / MODEL_JSON).read_text())
    meta["params"]["reg_u"]["v"] = 0.0
    (saved / MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match=r"model\.json was modified"):
        load(saved)


def _rewrite(saved: Path, **changes: Any) -> None:
    meta = json.loads((saved / MODEL_JSON).read_text())
    meta.update(changes)
    meta["json_sha256"] = _json_checksum(meta)
    (saved / MODEL_JSON).write_text(json.dumps(meta))


def test_incompatible_versions_are_refused(saved: Path) -> None:
    _rewrite(saved, format_version=99)
    with pytest.raises(ArtifactError, match="format version 99"):
        load(saved)
    _rewrite(saved, format_version=1, movierec_version="99.0.0")
    with pytest.raises(ArtifactError, match="upgrade movierec"):
        load(saved)


def test_pickled_array_is_refused_even_with_matching_checksum(saved: Path) -> None:
    # someone rebuilds arrays.npz with an object array and fixes the checksums
    np.savez(saved / ARRAYS, bu_=np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    meta = json.loads((saved / MODEL_JSON).read_text())
    meta["files"][ARRAYS] = hashlib.sha256((saved / ARRAYS).read_bytes()).hexdigest()
    _rewrite(saved, files=meta["files"])
    with pytest.raises(ArtifactError, match=r"arrays\.npz"):
        load(saved)


def test_foreign_class_is_not_imported(saved: Path) -> None:
    _rewrite(saved, **{"class": "os:system", "name": "evil"})
    with pytest.raises(ArtifactError, match="not a movierec model"):
        load(saved)


# -- atomic writes ---------------------------------------------------------------------------
class Unsaveable(Biases):
    def _fit(self, train: Dataset) -> None:
        super()._fit(train)
        self.bad_ = object()


def test_replace_is_atomic_and_failures_keep_the_old_artifact(data, saved: Path) -> None:
    full, train = data
    old = load(saved)
    with pytest.raises(ArtifactError, match="bad_"):
        save(Unsaveable().fit(train), saved)
    assert_same_model(old, load(saved), full)
    assert [p.name for p in saved.parent.iterdir()] == ["m"]  # no temp folders left
    new = Biases(reg_u=1.0).fit(train)
    save(new, saved)
    assert load(saved).reg_u == 1.0
    assert [p.name for p in saved.parent.iterdir()] == ["m"]


def test_refuses_to_overwrite_a_folder_that_is_not_an_artifact(data, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("precious")
    with pytest.raises(ArtifactError, match="not a movierec artifact"):
        save(Biases().fit(data[1]), tmp_path / "docs")
    assert (tmp_path / "docs" / "thesis.tex").read_text() == "precious"
    with pytest.raises(ArtifactError, match="does not exist"):
        load(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="not fitted"):
        save(Biases(), tmp_path / "unfitted")


# -- bundle ----------------------------------------------------------------------------------
def test_bundle_has_raw_ids_titles_and_history(data, saved: Path) -> None:
    full, train = data
    b = load_bundle(saved)
    assert b.user_map == train.user_map and b.item_map == train.item_map
    assert b.items.columns == ["item", "title", "year", "genres"]
    assert b.items["title"][3] == "Movie 3" and b.items["item"][3] == 37
    assert (b.history != train.csr()).nnz == 0
    assert b.meta["train"]["fingerprint"] == train.fingerprint()
    assert b.meta["name"] == "biases"
    assert b.user_index(1)[0] == 0 and b.item_index(17)[0] == 1
    from movierec.errors import UnknownIdError

    with pytest.raises(UnknownIdError, match="user 9999"):
        b.user_index(9999)
    plain = load_bundle(save(Biases().fit(train), saved.parent / "plain"))
    assert plain.user_map is None and plain.items is None and plain.history is None
