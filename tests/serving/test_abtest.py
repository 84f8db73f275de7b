"""Experiments: config validation, deterministic hash assignment, team-draft interleaving."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from movierec.errors import ConfigError
from movierec.evaluation.online import preference_test, srm_check
from movierec.serving.abtest import (
    INTERLEAVED,
    Experiment,
    bucket,
    credit_clicks,
    parse_experiments,
    pick,
    team_draft,
    winner,
)


def exp(**kw) -> Experiment:
    raw = {"name": "ease-vs-pop", "variants": {"control": "pop", "treatment": "ease"}, **kw}
    return parse_experiments([raw])[0]


# -- hashing ------------------------------------------------------------------------------
def test_bucket_is_the_documented_sha256_formula():
    h = int.from_bytes(hashlib.sha256(b"ease-vs-pop:42").digest()[:8], "big")
    assert bucket("ease-vs-pop", 42) == (h >> 11) / 2**53
    assert bucket("ease-vs-pop", 42) == bucket("ease-vs-pop", "42")
    # pinned: changing the formula would silently reshuffle every running experiment
    assert bucket("salt", "u1") == 0.5382267192698044
    us = [bucket("s", i) for i in range(2000)]
    assert 0 <= min(us) and max(us) < 1


def test_same_id_same_variant_across_processes():
    e = exp()
    ids = list(range(500)) + [f"session-{i}" for i in range(100)]
    here = [e.assign(i) for i in ids]
    code = (
        "import json, sys\n"
        "from movierec.serving.abtest import parse_experiments\n"
        "e = parse_experiments([{'name': 'ease-vs-pop',"
        " 'variants': {'control': 'pop', 'treatment': 'ease'}}])[0]\n"
        "ids = json.loads(sys.stdin.read())\n"
        "print(json.dumps([e.assign(i) for i in ids]))\n"
    )
    # a different PYTHONHASHSEED: nothing may depend on Python's salted hash()
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    r = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert json.loads(r.stdout) == here
    assert set(here) == {"control", "treatment"}


def test_100k_ids_split_50_50():
    e = exp()
    counts = Counter(e.assign(i) for i in range(100_000))
    c = [counts["control"], counts["treatment"]]
    assert stats.chisquare(c).pvalue > 0.01
    assert not srm_check(c, e.weight_list).flagged


def test_weights_are_honoured():
    e = exp(weights={"control": 20, "treatment": 80})
    counts = Counter(e.assign(i) for i in range(50_000))
    assert stats.chisquare([counts["control"], counts["treatment"]], [10_000, 40_000]).pvalue > 0.01
    three = parse_experiments(
        [
            {
                "name": "t",
                "variants": {"a": "m", "b": "m", "c": "m"},
                "weights": {"a": 1, "b": 0, "c": 1},
            }
        ]
    )[0]
    got = Counter(three.assign(i) for i in range(5000))
    assert got["b"] == 0 and got["a"] > 2000 and got["c"] > 2000
    assert pick(0.0, [1, 1]) == 0 and pick(0.5, [1, 1]) == 1 and pick(0.999999, [1, 1]) == 1


def test_two_salts_are_independent():
    a, b = exp(), exp(salt="another")
    ids = range(100_000)
    table = np.zeros((2, 2))
    for i in ids:
        table[int(a.assign(i) == "treatment"), int(b.assign(i) == "treatment")] += 1
    assert stats.chi2_contingency(table, correction=False).pvalue > 0.01
    # the check has teeth: the same salt is perfectly dependent
    same = np.zeros((2, 2))
    for i in range(2000):
        t = int(a.assign(i) == "treatment")
        same[t, t] += 1
    assert stats.chi2_contingency(same, correction=False).pvalue < 1e-100


# -- the experiment definition ------------------------------------------------------------
def test_defaults_and_shorthand():
    e = exp()
    assert e.salt == "ease-vs-pop" and e.control == "control" and e.unit == "user"
    assert e.weight_list == [0.5, 0.5] and e.variants["treatment"].model == "ease"
    e2 = exp(
        variants={"pop": "pop", "ease": {"model": "ease", "params": {"k": 20}}},
        control="ease",
        status="running",
        mode="ab",
        unit="session",
        primary_metric="ctr",
        guardrails=["mean_rating"],
        start="2024-05-01T00:00:00Z",
    )
    assert e2.control == "ease" and e2.variants["ease"].params == {"k": 20}
    assert e2.start.year == 2024 and e2.guardrails == ["mean_rating"]
    # the dump validates back to the same experiment
    assert Experiment.model_validate(e2.model_dump()) == e2


def test_stopped_serves_control_to_everyone():
    e = exp(status="stopped", control="treatment")
    assert {e.assign(i) for i in range(1000)} == {"treatment"}


def test_interleave_mode():
    e = exp(mode="interleave")
    assert e.assign(7) == INTERLEAVED
    assert exp(mode="interleave", status="stopped").assign(7) == "control"
    lists = {"control": [1, 2, 3, 4], "treatment": [5, 1, 6, 7]}
    m1 = e.interleave(lists, 6, "req-1")
    assert m1 == e.interleave(lists, 6, "req-1")
    assert set(m1.teams) == {"control", "treatment"}
    with pytest.raises(ConfigError, match="ranking"):
        e.interleave({"control": [1]}, 5, "r")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"variants": {"only": "pop"}}, "at least two"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"control": "nope"}, "control: 'nope' is not a variant"),
        ({"weights": {"control": 1}}, "weights: give one weight"),
        ({"weights": {"control": -1, "treatment": 1}}, "weights must be >= 0"),
        ({"unit": "device"}, "unit"),
        ({"status": "paused"}, "status"),
        ({"mode": "interleave", "variants": {"a": "x", "b": "y", "c": "z"}}, "exactly two"),
        ({"variants": {"a": "x", INTERLEAVED: "y"}}, "reserved"),
    ],
)
def test_config_errors_name_the_key(change, words):
    with pytest.raises(ConfigError, match="experiments.ease-vs-pop") as ei:
        exp(**change)
    assert words in str(ei.value)


def test_parse_experiments_list_rules():
    assert parse_experiments(None) == []
    with pytest.raises(ConfigError, match="a list"):
        parse_experiments({"name": "x"})
    raw = {"name": "x", "variants": {"a": "m", "b": "n"}}
    with pytest.raises(ConfigError, match="unique"):
        parse_experiments([raw, raw])


# -- team draft ---------------------------------------------------------------------------
def test_team_draft_hand_example():
    # a picks first (coin), then b (fewer picks), ...; 3 is shown once, for whoever placed it
    m = team_draft([1, 2, 3, 4], [3, 1, 5, 6], 6, seed="r1")
    assert m.items == [1, 3, 5, 2, 6, 4]
    assert m.teams == ["a", "b", "b", "a", "b", "a"]


def test_team_draft_invariants():
    rng = np.random.default_rng(0)
    firsts = Counter()
    for s in range(400):
        a = list(rng.permutation(30)[:12])
        b = list(rng.permutation(30)[:12])
        m = team_draft(a, b, 10, seed=s)
        assert len(m.items) == 10 == len(set(m.items))
        na = nb = 0
        for item, t in zip(m.items, m.teams, strict=True):
            ranking = a if t == "a" else b
            # each pick is the team's best item not shown yet
            shown = set(m.items[: na + nb])
            assert item == next(x for x in ranking if x not in shown)
            na, nb = na + (t == "a"), nb + (t == "b")
            assert abs(na - nb) <= 1
        firsts[m.teams[0]] += 1
        assert team_draft(a, b, 10, seed=s) == m
    assert stats.binomtest(firsts["a"], 400).pvalue > 0.01  # the coin is fair


def test_team_draft_edge_cases():
    assert team_draft([1, 2, 3], [1, 2, 3], seed=1).items == [1, 2, 3]
    m = team_draft([1, 2], [], 5, seed=1)
    assert m.items == [1, 2] and m.teams == ["a", "a"]
    m = team_draft([1], [2, 3, 4], None, seed=1)
    assert sorted(m.items) == [1, 2, 3, 4] and m.teams.count("a") == 1
    assert team_draft([1, 2, 3], [4, 5, 6], 0).items == []
    assert (
        len({tuple(team_draft(list(range(8)), list(range(8, 16)), 8, s).teams) for s in range(50)})
        > 5
    )


def test_credit_clicks_and_winner():
    m = team_draft([1, 2, 3, 4], [3, 1, 5, 6], 6, seed="r1")  # teams a b b a b a
    c = credit_clicks(m, [5, 6, 2, 99])
    assert c == {"a": 1, "b": 2}
    assert winner(c, "a", "b") == "b"
    assert winner(credit_clicks(m, []), "a", "b") is None


def test_random_clicks_show_no_preference_and_a_better_ranker_wins():
    """Team draft is fair: clicks blind to the teams give a share near 1/2, while a ranker
    that puts the movies users like on top wins clearly."""
    rng = np.random.default_rng(3)
    wins = Counter()
    good_wins = Counter()
    for user in range(600):
        a = list(rng.permutation(50)[:10])
        b = list(rng.permutation(50)[:10])
        m = team_draft(a, b, 10, seed=f"exp:{user}")
        clicks = [m.items[i] for i in rng.choice(10, 2, replace=False)]
        wins[winner(credit_clicks(m, clicks), "a", "b")] += 1
        liked = set(rng.choice(50, 8, replace=False).tolist())
        good = sorted(liked) + [x for x in range(50) if x not in liked]
        g = team_draft(a, good[:10], 10, seed=f"exp:{user}")
        good_wins[winner(credit_clicks(g, [x for x in g.items if x in liked]), "a", "b")] += 1
    assert preference_test(wins["a"], wins["b"]).pvalue > 0.01
    p = preference_test(good_wins["a"], good_wins["b"])
    assert p.share_b > 0.8 and p.pvalue < 1e-10
