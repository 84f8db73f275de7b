"""Model registry: short names -> classes, imported lazily (NCF needs torch)."""

from __future__ import annotations

import importlib
from typing import Any

from movierec.errors import ConfigError
from movierec.models.base import Recommender

REGISTRY: dict[str, str] = {
    "globalmean": "movierec.models.baselines:GlobalMean",
    "biases": "movierec.models.baselines:Biases",
    "svd": "movierec.models.mf:SVD",
    "svdpp": "movierec.models.mf:SVDpp",
    "als": "movierec.models.als:ALS",
    "nmf": "movierec.models.nmf:NMF",
    "knnbaseline": "movierec.models.knn:KNNBaseline",
    "popularity": "movierec.models.popularity:Popularity",
    "itemknn": "movierec.models.itemknn:ItemKNN",
    "ials": "movierec.models.ials:ImplicitALS",
    "bpr": "movierec.models.bpr:BPR",
    "ease": "movierec.models.ease:EASE",
    "content": "movierec.models.content:ContentTFIDF",
    "weighted": "movierec.models.hybrid:WeightedHybrid",
    "rrf": "movierec.models.hybrid:RRFHybrid",
    "switching": "movierec.models.hybrid:SwitchingHybrid",
    "ncf": "movierec.models.ncf:NCF",
    "bayesmf": "movierec.models.bayes:BayesMF",
    "blend": "movierec.models.blend:RatingBlend",
    "p3alpha": "movierec.models.graph:P3alpha",
    "rp3beta": "movierec.models.graph:RP3beta",
    "slim": "movierec.models.slim:SLIM",
    "sequential": "movierec.models.sequential:SequentialTransitions",
    "sasrec": "movierec.models.sasrec:SASRec",
}


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name`` (case-insensitive)."""
    key = name.lower()
    if key not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(REGISTRY)}")
    mod, cls = REGISTRY[key].split(":")
    try:
        return getattr(importlib.import_module(mod), cls)
    except ImportError as e:
        raise ConfigError(f"model {name!r} needs an optional dependency: {e}") from e


def make_model(name: str, **params: Any) -> Recommender:
    """Build the model registered under ``name`` with ``params`` (validated)."""
    cls = model_class(name)
    try:
        return cls(**params)
    except TypeError as e:
        raise ConfigError(f"bad parameters for model {name!r}: {e}") from e
