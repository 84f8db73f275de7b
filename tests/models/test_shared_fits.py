"""One fit of a sub-model shared by a model and the hybrids built on it (issue 10, item 8)."""

from __future__ import annotations

from contract import checkerboard

from movierec.models import make_model
from movierec.models.hybrid import fit_shared, shared_fits

SUBS = {"ease": {"l2": 10}, "content": {}}


def test_inside_shared_fits_one_object_per_class_params_and_data() -> None:
    _, train = checkerboard()
    with shared_fits():
        ease = fit_shared(make_model("ease", l2=10.0), train)
        w = fit_shared(make_model("weighted", models=SUBS), train)
        r = fit_shared(make_model("rrf", models=SUBS), train)
        other = fit_shared(make_model("ease", l2=20.0), train)
        again = fit_shared(make_model("ease", l2=10.0), train.subset(train.users >= 0))
    assert w.models_[0] is ease and r.models_[0] is ease  # 10 and 10.0: the same model
    assert w.models_[1] is r.models_[1]
    assert other is not ease and again is not ease  # other params, other training data
    # outside the block every fit is its own
    assert make_model("weighted", models=SUBS).fit(train).models_[0] is not ease
