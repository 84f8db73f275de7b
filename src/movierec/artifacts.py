"""Save and load fitted models as checksummed folders: JSON + ``.npz``, never pickle.

An artifact is a folder::

    model.json      format version, movierec version, class, registry name, params,
                    training-data fingerprint, learned scalars, array manifest, and the
                    sha256 of every other file (and of its own content)
    arrays.npz      numpy arrays and scipy sparse matrices (data/indices/indptr/shape)
    user_ids.npy    raw user ids of the dense indices       (when saved with ``train``)
    item_ids.npy    raw movie ids of the dense indices      (when saved with ``train``)
    items.parquet   raw id, title, year, genres per item    (when saved with ``train``)
    history.npz     the training ratings as CSR              (when saved with ``train``)
    sub/<attr>/     a nested Recommender (hybrids), itself an artifact

A run of :func:`save_run` (``movierec compare``) keeps one copy of what several artifacts
share: the training data (ids, items, history) in ``_train/`` beside them, and a sub-model
that is also a model of the run (or of an earlier hybrid) is written once; the others
reference it by relative path with its checksum. Each artifact still loads on its own with
:func:`load` / :func:`load_bundle` (as long as it stays in its run folder), and loading
verifies every referenced file. The users' seen items, which are the training history, are
read back from ``history.npz`` instead of being stored again with every model.

What is saved is the learned state (see :mod:`movierec.models.base`): every attribute
ending with ``_`` holding an array, a sparse matrix, a scalar, a list/tuple of those, or
a nested :class:`~movierec.models.base.Recommender` (also inside lists). Params are
encoded the same way, so a hybrid whose params hold sub-models round-trips too.

:func:`load` verifies the format, the movierec version, every checksum, every array's
dtype and shape, and reads arrays with ``allow_pickle=False``; anything tampered with,
truncated or incompatible raises :class:`~movierec.errors.ArtifactError` naming the file.
Writes are atomic: the artifact is built in a temporary folder next to ``path``, fsynced
and renamed into place, so an existing artifact is replaced only by a complete one.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

import movierec
from movierec.atomic import alive, check_interrupt, clean_stale, stage_dir
from movierec.data.dataset import Dataset, IdMap
from movierec.errors import ArtifactError, UnknownIdError
from movierec.models.base import Recommender

FORMAT = "movierec-model"
FORMAT_VERSION = 2
#: Format versions this movierec reads (1: no references, no shared training data).
READABLE_VERSIONS = (1, 2)
#: The run-level training data folder written by :func:`save_run`.
TRAIN_DIR = "_train"
MODEL_JSON = "model.json"
ARRAYS = "arrays.npz"
HISTORY = "history.npz"
USER_IDS = "user_ids.npy"
ITEM_IDS = "item_ids.npy"
ITEMS = "items.parquet"
_SCALARS = (type(None), bool, int, float, str)
_SPARSE_FORMATS = ("csr", "csc")
_TRAIN_FILES = (USER_IDS, ITEM_IDS, ITEMS, HISTORY)
# learned state that is the training history itself, read back from history.npz
_HISTORY_STATE = {"seen_indptr_": "indptr", "seen_indices_": "indices"}


@dataclass
class _Context:
    """Shared by every model written in one save: models already written (by object
    identity: folder and model.json checksum) and the training history file."""

    refs: dict[int, tuple[Path, str]] = field(default_factory=dict)
    history: Path | None = None
    history_sha256: str = ""
    history_arrays: dict[str, np.ndarray] = field(default_factory=dict)


# -- encoding ---------------------------------------------------------------------------------
class _Writer:
    """Collects arrays and sub-models while learned state is turned into a JSON spec."""

    def __init__(self, folder: Path, ctx: _Context | None = None) -> None:
        self.folder = folder
        self.arrays: dict[str, np.ndarray] = {}
        self.ctx = ctx or _Context()

    def _array(self, key: str, a: np.ndarray) -> dict[str, Any]:
        if a.dtype.hasobject:
            raise ArtifactError(f"cannot save {key!r}: object arrays need pickle")
        self.arrays[key] = np.ascontiguousarray(a)
        return {"t": "array", "key": key}

    def encode(self, value: Any, key: str) -> dict[str, Any]:
        if isinstance(value, Recommender):
            if id(value) in self.ctx.refs:  # already written: reference it
                target, digest = self.ctx.refs[id(value)]
                rel = os.path.relpath(target, self.folder)
                return {"t": "ref", "dir": Path(rel).as_posix(), "json_sha256": digest}
            rel = f"sub/{key}"
            _write_model(value, self.folder / rel, None, ctx=self.ctx)
            return {"t": "model", "dir": rel}
        if isinstance(value, np.ndarray):
            return self._array(key, value)
        if sp.issparse(value):
            fmt = value.format if value.format in _SPARSE_FORMATS else "csr"
            m = value.asformat(fmt)
            m.sort_indices()
            return {
                "t": "sparse",
                "format": fmt,
                "orig_format": value.format,
                "array_api": isinstance(value, sp.sparray),
                "shape": list(m.shape),
                "data": self._array(f"{key}.data", m.data)["key"],
                "indices": self._array(f"{key}.indices", m.indices)["key"],
                "indptr": self._array(f"{key}.indptr", m.indptr)["key"],
            }
        if isinstance(value, np.generic):
            if value.dtype.hasobject:
                raise ArtifactError(f"cannot save {key!r}: object scalars need pickle")
            return {"t": "npscalar", "dtype": value.dtype.str, "v": value.item()}
        if isinstance(value, _SCALARS):
            return {"t": "scalar", "v": value}
        if isinstance(value, list | tuple):
            return {
                "t": "tuple" if isinstance(value, tuple) else "list",
                "items": [self.encode(v, f"{key}.{j}") for j, v in enumerate(value)],
            }
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {
                "t": "dict",
                "items": {k: self.encode(v, f"{key}.{k}") for k, v in value.items()},
            }
        raise ArtifactError(
            f"cannot save {key!r} of type {type(value).__name__}: learned state must be arrays, "
            "sparse matrices, scalars, lists/tuples of those, or nested Recommenders"
        )


class _Reader:
    """Turns a JSON spec back into values, reading arrays from a verified npz."""

    def __init__(
        self,
        folder: Path,
        arrays: dict[str, np.ndarray],
        extra: tuple[type, ...],
        meta: dict[str, Any] | None = None,
        root: Path | None = None,
        cache: dict[Any, Any] | None = None,
    ):
        self.folder = folder
        self.arrays = arrays
        self.extra = extra
        self.meta = meta or {}
        self.root = root or folder
        self.cache = {} if cache is None else cache

    def _array(self, key: str) -> np.ndarray:
        if key not in self.arrays:
            raise ArtifactError(f"{self.folder / ARRAYS}: array {key!r} is missing")
        return self.arrays[key]

    def decode(self, spec: Any) -> Any:
        if not isinstance(spec, dict) or "t" not in spec:
            raise ArtifactError(f"{self.folder / MODEL_JSON}: malformed state entry {spec!r}")
        t = spec["t"]
        if t == "scalar":
            return spec["v"]
        if t == "npscalar":
            return np.dtype(spec["dtype"]).type(spec["v"])
        if t == "array":
            return self._array(spec["key"])
        if t == "sparse":
            parts = (
                self._array(spec["data"]),
                self._array(spec["indices"]),
                self._array(spec["indptr"]),
            )
            shape = tuple(spec["shape"])
            if spec.get("array_api"):
                cls = sp.csr_array if spec["format"] == "csr" else sp.csc_array
            else:
                cls = sp.csr_matrix if spec["format"] == "csr" else sp.csc_matrix
            try:
                m = cls(parts, shape=shape)
            except ValueError as e:
                raise ArtifactError(f"{self.folder / ARRAYS}: bad sparse matrix: {e}") from e
            return m.asformat(spec.get("orig_format", spec["format"]))
        if t in ("list", "tuple"):
            items = [self.decode(s) for s in spec["items"]]
            return tuple(items) if t == "tuple" else items
        if t == "dict":
            return {k: self.decode(s) for k, s in spec["items"].items()}
        if t == "model":
            rel = Path(spec["dir"])
            if rel.is_absolute() or ".." in rel.parts:
                raise ArtifactError(f"{self.folder / MODEL_JSON}: bad sub-model folder {rel}")
            return _read_model(self.folder / rel, self.extra, self.root, self.cache)
        if t == "ref":
            target = _inside(self.folder, spec["dir"], self.root, "referenced model")
            meta = _read_meta(target)
            if meta.get("json_sha256") != spec.get("json_sha256"):
                raise ArtifactError(
                    f"{target / MODEL_JSON} is not the model {self.folder / MODEL_JSON} was "
                    "saved with (checksum mismatch): save the run again"
                )
            return _read_model(target, self.extra, self.root, self.cache, meta)
        if t == "history":
            h = self.meta.get("history") or {}
            f = _inside(self.folder, h.get("file", HISTORY), self.root, "training history")
            return _history(f, h.get("sha256"), self.cache)[spec["part"]]
        raise ArtifactError(f"{self.folder / MODEL_JSON}: unknown state kind {t!r}")


def _inside(folder: Path, rel: str, root: Path, what: str) -> Path:
    """``folder / rel``, refused when it leaves the folder that holds the loaded artifact."""
    target = (folder / rel).resolve()
    if Path(rel).is_absolute() or not target.is_relative_to(root.resolve().parent):
        raise ArtifactError(f"{folder / MODEL_JSON}: {what} {rel!r} is outside the run folder")
    return target


def _history(path: Path, digest: str | None, cache: dict[Any, Any]) -> dict[str, np.ndarray]:
    """The arrays of a training history file, its checksum verified (once per load)."""
    if path not in cache:
        if not path.is_file():
            raise ArtifactError(f"{path} is missing: the artifact's training history is gone")
        if digest is not None and _sha256(path) != digest:
            raise ArtifactError(
                f"{path} does not match its checksum: the file was modified or truncated"
            )
        cache[path] = _load_npz(path, None)
    return cache[path]


# -- files ------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_checksum(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "json_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(Path(root) / name, "rb") as f:
                os.fsync(f.fileno())
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _registry_name(cls: type) -> str:
    from movierec.models import REGISTRY

    path = _class_path(cls)
    for name, target in REGISTRY.items():
        if target == path:
            return name
    return str(getattr(cls, "name", cls.__name__.lower()))


def _items_table(train: Dataset) -> pl.DataFrame:
    """Raw id, title, year, genres per item, plus ``imdbId``/``tmdbId`` when the release has
    links (row i = item i)."""
    t = train.item_table.select("index", "item", "title", "year", "genres")
    links = train.links
    if links is not None and {"item", "imdb", "tmdb"} <= set(links.columns):
        ids = links.select(
            "item",
            pl.col("imdb").cast(pl.Int64).alias("imdbId"),
            pl.col("tmdb").cast(pl.Int64).alias("tmdbId"),
        ).unique("item", keep="first")
        t = t.join(ids, on="item", how="left").sort("index")
    return t.drop("index")


def _write_train(train: Dataset, folder: Path) -> dict[str, str]:
    """Write the training data's id maps, items table and ratings; returns their sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / USER_IDS, train.user_map.raw, allow_pickle=False)
    np.save(folder / ITEM_IDS, train.item_map.raw, allow_pickle=False)
    _items_table(train).write_parquet(folder / ITEMS)
    csr = train.csr()
    np.savez(
        folder / HISTORY,
        allow_pickle=False,
        indptr=csr.indptr.astype(np.int64),
        indices=csr.indices.astype(np.int32),
        ratings=csr.data.astype(np.float32),
    )
    return {f: _sha256(folder / f) for f in _TRAIN_FILES}


def _use_history(ctx: _Context, folder: Path, digests: dict[str, str]) -> None:
    ctx.history = folder / HISTORY
    ctx.history_sha256 = digests[HISTORY]
    with np.load(ctx.history, allow_pickle=False) as z:
        ctx.history_arrays = {"indptr": z["indptr"], "indices": z["indices"]}


def _is_history(ctx: _Context, key: str, value: Any) -> bool:
    part = _HISTORY_STATE.get(key)
    if part is None or ctx.history is None or not isinstance(value, np.ndarray):
        return False
    h = ctx.history_arrays[part]
    return value.dtype == h.dtype and np.array_equal(value, h)


def _write_model(
    model: Recommender,
    folder: Path,
    train: Dataset | None,
    extra: dict[str, Any] | None = None,
    *,
    ctx: _Context | None = None,
    train_dir: tuple[Path, dict[str, str]] | None = None,
) -> str:
    """Write one model (and its sub-models) into ``folder`` (not atomic by itself); returns
    the checksum of its model.json. ``train_dir``: (folder, checksums) of training data
    already written for several models, referenced instead of written again."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx = ctx or _Context()
    digests: dict[str, str] = {}
    if train is not None and train_dir is None:
        digests = _write_train(train, folder)
        _use_history(ctx, folder, digests)
    elif train_dir is not None:
        digests = train_dir[1]
        if ctx.history != train_dir[0] / HISTORY:
            _use_history(ctx, train_dir[0], digests)
    w = _Writer(folder, ctx)
    params = {k: w.encode(v, f"params.{k}") for k, v in model.get_params().items()}
    state: dict[str, Any] = {}
    for k, v in sorted(model.learned_state().items()):
        if _is_history(ctx, k, v):
            state[k] = {"t": "history", "part": _HISTORY_STATE[k]}
        else:
            state[k] = w.encode(v, k)
    np.savez(folder / ARRAYS, allow_pickle=False, **w.arrays)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "movierec_version": movierec.__version__,
        "class": _class_path(type(model)),
        "name": _registry_name(type(model)),
        "params": params,
        "state": state,
        "arrays": {
            k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in sorted(w.arrays.items())
        },
    }
    if train is not None:
        meta["train"] = {
            "fingerprint": train.fingerprint(),
            "name": train.name,
            "synthetic": bool(train.synthetic),
            "n_users": train.n_users,
            "n_items": train.n_items,
            "n_ratings": train.n_ratings,
        }
        if train_dir is not None:
            rel = Path(os.path.relpath(train_dir[0], folder)).as_posix()
            meta["train"].update(dir=rel, sha256=digests)
    if any(v.get("t") == "history" for v in state.values()) and ctx.history is not None:
        rel = Path(os.path.relpath(ctx.history, folder)).as_posix()
        meta["history"] = {"file": rel, "sha256": ctx.history_sha256}
    files = sorted(
        rel
        for rel in (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        if rel != MODEL_JSON
    )
    meta["files"] = {f: _sha256(folder / f) for f in files}
    if extra:
        meta["extra"] = extra
    meta["json_sha256"] = _json_checksum(meta)
    (folder / MODEL_JSON).write_text(json.dumps(meta, indent=1, allow_nan=True))
    ctx.refs[id(model)] = (folder, meta["json_sha256"])
    return meta["json_sha256"]


def save(
    model: Recommender,
    path: str | os.PathLike,
    train: Dataset | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save a fitted model as an artifact folder at ``path``, atomically.

    Parameters
    ----------
    model : Recommender
        A fitted model.
    path : path
        The artifact folder. An existing artifact there is replaced once the new one is
        complete; an existing folder that is not an artifact is refused.
    train : Dataset, optional
        The training data: its fingerprint, raw id maps, item metadata and ratings are
        saved with the model so the CLI can speak in raw ids and titles.
    extra : dict, optional
        JSON-serializable notes (e.g. the config label) stored in ``model.json``.

    Returns
    -------
    Path
        The artifact folder.
    """
    model._require_fitted()
    path = Path(path).expanduser()
    if path.exists() and not (path / MODEL_JSON).is_file():
        if not path.is_dir() or any(path.iterdir()):
            raise ArtifactError(
                f"{path} exists and is not a movierec artifact; choose a new or empty folder"
            )
    _recover(path)
    tmp = stage_dir(path.parent, f".{path.name}.tmp-")
    old: Path | None = None
    try:
        _write_model(model, tmp, train, extra)
        _fsync_tree(tmp)
        check_interrupt()
        if path.exists():
            old = stage_dir(path.parent, f".{path.name}.old-")
            os.replace(path, old / "a")
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and (old / "a").exists() and not path.exists():
            os.replace(old / "a", path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return path


def _nests(model: Recommender) -> bool:
    """Whether the model holds sub-models (a hybrid)."""
    for v in model.learned_state().values():
        vals = v if isinstance(v, list | tuple) else [v]
        if any(isinstance(x, Recommender) for x in vals):
            return True
    return False


def save_run(
    models: dict[str, Recommender],
    path: str | os.PathLike,
    train: Dataset,
    extra: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Path]:
    """Save models fitted on the same ``train`` as artifacts ``path/<label>``, atomically.

    The training data is written once (``path/_train``) and every artifact references it;
    a sub-model that is the same fitted object as a model of the run (or of a hybrid saved
    before) is written once and referenced (hybrids are saved after plain models). Every
    artifact loads on its own with :func:`load` and :func:`load_bundle` while the folder
    stays whole; a referenced file that changed is refused.

    Returns label -> artifact folder.
    """
    path = Path(path).expanduser()
    for label in models:
        if label == TRAIN_DIR or not label or Path(label).name != label or label.startswith("."):
            raise ArtifactError(
                f"cannot save a model labelled {label!r}: use a plain folder name, not {TRAIN_DIR}"
            )
    if path.exists():
        raise ArtifactError(f"{path} exists; save_run writes a new folder")
    tmp = stage_dir(path.parent, f".{path.name}.tmp-")
    try:
        data = tmp / TRAIN_DIR
        train_dir = (data, _write_train(train, data))
        ctx = _Context()
        for label in sorted(models, key=lambda k: _nests(models[k])):
            models[label]._require_fitted()
            note = {"label": label, **((extra or {}).get(label) or {})}
            _write_model(models[label], tmp / label, train, note, ctx=ctx, train_dir=train_dir)
        _fsync_tree(tmp)
        check_interrupt()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {label: path / label for label in models}


def _recover(path: Path) -> None:
    """Undo what a killed :func:`save` left: a previous artifact moved aside but not yet
    replaced is put back; stale ``.old-`` folders are removed (``.tmp-`` ones by stage_dir)."""
    prefix = f".{path.name}.old-"
    for aside in sorted(path.parent.glob(f"{prefix}*")):
        pid = aside.name[len(prefix) :].split("-", 1)[0]
        dead = pid.isdigit() and not alive(int(pid))
        if dead and not path.exists() and (aside / "a" / MODEL_JSON).is_file():
            os.replace(aside / "a", path)
    clean_stale(path.parent, prefix)


# -- loading ----------------------------------------------------------------------------------
def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def _read_meta(folder: Path) -> dict[str, Any]:
    f = folder / MODEL_JSON
    if folder.is_file():
        raise ArtifactError(
            f"{folder} is a file, not a movierec artifact folder; give the folder that "
            "`movierec train --out` wrote"
        )
    if not folder.is_dir():
        raise ArtifactError(f"{folder} is not a movierec artifact folder (it does not exist)")
    if not f.is_file():
        raise ArtifactError(f"{f} is missing: {folder} is not a movierec artifact")
    try:
        meta = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{f} is unreadable or truncated: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{f} is not a movierec model file")
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise ArtifactError(
            f"{f} has format version {meta.get('format_version')!r}; this movierec "
            f"({movierec.__version__}) reads versions {READABLE_VERSIONS}: re-train the model"
        )
    written = str(meta.get("movierec_version", "0"))
    if _version_tuple(written) > _version_tuple(movierec.__version__):
        raise ArtifactError(
            f"{f} was written by movierec {written}, newer than this {movierec.__version__}: "
            "upgrade movierec"
        )
    if meta.get("json_sha256") != _json_checksum(meta):
        raise ArtifactError(f"{f} was modified after it was written (checksum mismatch)")
    for rel, digest in meta.get("files", {}).items():
        p = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ArtifactError(f"{f} lists a file outside the artifact: {rel}")
        if not p.is_file():
            raise ArtifactError(f"{p} is missing from the artifact")
        if _sha256(p) != digest:
            raise ArtifactError(
                f"{p} does not match its checksum: the file was modified or truncated"
            )
    return meta


def _load_npz(path: Path, manifest: dict[str, dict[str, Any]] | None) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ArtifactError(f"{path} is unreadable: {e}") from e
    if manifest is not None:
        if set(arrays) != set(manifest):
            raise ArtifactError(f"{path}: arrays {sorted(arrays)} differ from the manifest")
        for k, spec in manifest.items():
            a = arrays[k]
            if a.dtype.str != spec["dtype"] or list(a.shape) != spec["shape"]:
                raise ArtifactError(
                    f"{path}: array {k!r} is {a.dtype.str}{list(a.shape)}, "
                    f"expected {spec['dtype']}{spec['shape']}"
                )
    return arrays


def _resolve_class(meta: dict[str, Any], folder: Path, extra: tuple[type, ...]) -> type:
    path = str(meta.get("class", ""))
    for cls in extra:
        if _class_path(cls) == path:
            return cls
    from movierec.models import REGISTRY, model_class

    name = meta.get("name")
    if name in REGISTRY and REGISTRY[name] == path:
        try:
            return model_class(name)
        except Exception as e:
            raise ArtifactError(f"{folder / MODEL_JSON}: cannot load model {name!r}: {e}") from e
    mod, _, qual = path.partition(":")
    # only movierec's own classes are imported by name; others must be passed explicitly
    if not mod.startswith("movierec.") or not qual:
        raise ArtifactError(
            f"{folder / MODEL_JSON}: class {path!r} is not a movierec model; pass it to "
            "load(..., classes=[...]) if you trust it"
        )
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ArtifactError(f"{folder / MODEL_JSON}: class {path!r} not found: {e}") from e
    if not (isinstance(obj, type) and issubclass(obj, Recommender)):
        raise ArtifactError(f"{folder / MODEL_JSON}: {path!r} is not a Recommender")
    return obj


def _read_model(
    folder: Path,
    extra: tuple[type, ...],
    root: Path | None = None,
    cache: dict[Any, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> Recommender:
    cache = {} if cache is None else cache
    key = ("model", folder.resolve())
    if key in cache:  # one object saved once (a shared sub-model) loads as one object
        return cache[key]
    meta = meta or _read_meta(folder)
    arrays = _load_npz(folder / ARRAYS, meta.get("arrays", {}))
    cls = _resolve_class(meta, folder, extra)
    r = _Reader(folder, arrays, extra, meta, root or folder, cache)
    params = {k: r.decode(s) for k, s in meta.get("params", {}).items()}
    try:
        model = cls(**params)
    except (TypeError, ValueError) as e:
        raise ArtifactError(
            f"{folder / MODEL_JSON}: params do not fit {cls.__name__} in this movierec: {e}"
        ) from e
    for k, s in meta.get("state", {}).items():
        if not k.endswith("_") or k.startswith("_"):
            raise ArtifactError(f"{folder / MODEL_JSON}: {k!r} is not a learned attribute")
        setattr(model, k, r.decode(s))
    cache[key] = model
    return model


def load(path: str | os.PathLike, classes: Iterable[type[Recommender]] = ()) -> Recommender:
    """Load a fitted model saved by :func:`save`, verifying every checksum.

    Parameters
    ----------
    path : path
        The artifact folder.
    classes : iterable of Recommender subclasses
        Model classes outside movierec that may be instantiated (movierec's own models
        are always allowed; nothing else is imported by name).

    Raises
    ------
    ArtifactError
        Missing, tampered with, truncated or written by an incompatible version; the
        message names the file.
    """
    folder = Path(path).expanduser()
    return _read_model(folder, tuple(classes), folder, {})


@dataclass
class Bundle:
    """A loaded artifact: the model plus what it was trained on, in raw ids.

    Attributes
    ----------
    model : Recommender
    user_map, item_map : IdMap or None
        Raw ids of the model's dense users/items (None if saved without ``train``).
    items : polars DataFrame or None
        ``item`` (raw movieId), ``title``, ``year``, ``genres``; row i is item i.
    history : scipy CSR matrix or None
        The training ratings, users x items.
    meta : dict
        The parsed ``model.json``.
    """

    model: Recommender
    user_map: IdMap | None = None
    item_map: IdMap | None = None
    items: pl.DataFrame | None = None
    history: sp.csr_matrix | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def user_index(self, raw: Any) -> np.ndarray:
        """Dense indices of raw user ids (UnknownIdError naming the id)."""
        if self.user_map is None:
            raise ArtifactError("this artifact was saved without its training data's id maps")
        try:
            return self.user_map.index(raw)
        except UnknownIdError:
            raise UnknownIdError(
                f"user {raw} is not in this model's training data "
                f"(raw user ids {self.user_map.raw[0]}..{self.user_map.raw[-1]})"
            ) from None

    def item_index(self, raw: Any) -> np.ndarray:
        """Dense indices of raw movie ids (UnknownIdError naming the id)."""
        if self.item_map is None:
            raise ArtifactError("this artifact was saved without its training data's id maps")
        try:
            return self.item_map.index(raw)
        except UnknownIdError:
            raise UnknownIdError(f"movie id {raw} is not in this model's training data") from None


def load_bundle(path: str | os.PathLike, classes: Iterable[type[Recommender]] = ()) -> Bundle:
    """Load the model with its id maps, item table and training ratings (when saved)."""
    folder = Path(path).expanduser()
    cache: dict[Any, Any] = {}
    model = _read_model(folder, tuple(classes), folder, cache)
    meta = json.loads((folder / MODEL_JSON).read_text())
    b = Bundle(model, meta=meta)
    if "train" not in meta:
        return b
    data = folder
    if meta["train"].get("dir", ".") != ".":  # the run's shared training data
        data = _inside(folder, meta["train"]["dir"], folder, "training data")
        for name, digest in meta["train"].get("sha256", {}).items():
            f = data / name
            if not f.is_file():
                raise ArtifactError(f"{f} is missing: the run's training data is incomplete")
            if f != data / HISTORY and _sha256(f) != digest:
                raise ArtifactError(
                    f"{f} does not match its checksum: the file was modified or truncated"
                )
    try:
        b.user_map = IdMap(np.load(data / USER_IDS, allow_pickle=False))
        b.item_map = IdMap(np.load(data / ITEM_IDS, allow_pickle=False))
        b.items = pl.read_parquet(data / ITEMS)
    except Exception as e:  # checksums passed, so this is a version problem
        raise ArtifactError(f"{data}: cannot read the id maps or items table: {e}") from e
    digest = meta["train"].get("sha256", {}).get(HISTORY)
    h = _history((data / HISTORY).resolve(), digest, cache)
    n_u, n_i = len(b.user_map), len(b.item_map)
    try:
        b.history = sp.csr_matrix((h["ratings"], h["indices"], h["indptr"]), shape=(n_u, n_i))
    except (KeyError, ValueError) as e:
        raise ArtifactError(f"{data / HISTORY}: bad training ratings: {e}") from e
    if getattr(model, "n_users_", n_u) != n_u or getattr(model, "n_items_", n_i) != n_i:
        raise ArtifactError(f"{folder}: the id maps do not match the model's dimensions")
    if b.items.height != n_i:
        raise ArtifactError(f"{folder / ITEMS}: {b.items.height} rows for {n_i} items")
    return b
