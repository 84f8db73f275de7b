"""Online experiments: their definition, deterministic assignment, and team-draft interleaving.

An experiment in the serving config::

    experiments:
      - name: ease-vs-pop
        unit: user                 # or session
        variants:
          control: pop             # a model label of the serving config
          treatment: {model: ease, params: {k: 20}}
        weights: {control: 50, treatment: 50}
        primary_metric: ctr
        guardrails: [mean_rating]
        start: 2024-05-01T00:00:00Z   # optional; activity before it is the CUPED covariate

``mode: interleave`` (exactly two variants) merges the two models' lists by team draft for
every request instead of splitting units. Variant ``params``: ``k`` (the list length that
variant serves) and, for a hybrid model, ``weights`` (its blend weights).

Assignment is a pure function of (salt, unit id), so a unit keeps its variant across
restarts, workers and machines, and experiments with different salts split units
independently of each other. No state, no database lookup.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from movierec.errors import ConfigError

#: The variant name a running interleaving experiment reports: every unit sees the merge.
INTERLEAVED = "interleaved"
#: Per-unit metrics an experiment can name (defined in movierec.experiment.abreport).
METRICS = ("ctr", "conversion", "precision", "mrr", "clicks", "mean_rating")
#: Variant params the engine applies.
PARAMS = ("k", "weights")


def bucket(salt: str, unit: Any) -> float:
    """The unit's deterministic bucket in [0, 1).

    ``h = int.from_bytes(sha256(f"{salt}:{unit}".encode("utf-8")).digest()[:8], "big")``
    (the first 8 bytes of the digest as a big-endian unsigned 64-bit integer), and the
    bucket is ``(h >> 11) / 2**53``: its top 53 bits, so the division is exact in a float
    and the result is never 1.0. ``unit`` is formatted with ``str``, so user 42 and "42"
    share a bucket. Anyone can recompute an assignment from these two lines.

    Parameters
    ----------
    salt : str
        The experiment's salt (its name unless configured).
    unit : int or str
        The user id or session id.

    Returns
    -------
    float
    """
    digest = hashlib.sha256(f"{salt}:{unit}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53


def pick(u: float, weights: Sequence[float]) -> int:
    """Index of the arm whose slice of [0, 1) holds ``u``, slices laid out in order with
    widths proportional to ``weights`` (an arm of weight 0 is never picked)."""
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc / total)
    cum[-1] = 1.0
    return bisect.bisect_right(cum, u)


# -- the experiment --------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    """What a variant serves: a model label of the serving config and optional params
    (e.g. ``k`` or hybrid weights) the engine applies for it."""

    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _known(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(v) - set(PARAMS))
        if bad:
            raise ValueError(f"unknown variant params {bad}; supported: {list(PARAMS)}")
        k = v.get("k")
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000):
            raise ValueError(f"params.k must be an integer 1..1000, got {k!r}")
        w = v.get("weights")
        if w is not None and (
            not isinstance(w, list) or not w or not all(isinstance(x, int | float) for x in w)
        ):
            raise ValueError(f"params.weights must be a list of numbers, got {w!r}")
        return v


class Experiment(_Strict):
    """One online experiment (see the module docstring for the YAML form).

    Attributes
    ----------
    name : str
        Unique name; also the default salt.
    salt : str
        Hash salt; change it to reshuffle units, keep it to keep them.
    unit : "user" or "session"
        What is randomised and what the analysis counts.
    variants : dict of name -> Variant
        In order; a plain string is shorthand for ``{model: label}``.
    weights : dict of name -> float
        Traffic shares (any positive scale, normalised); equal when omitted.
    control : str
        The baseline variant, served to everyone when the experiment is stopped; the
        first variant unless named.
    status : "running" or "stopped"
    mode : "ab" or "interleave"
        ``interleave`` needs exactly two variants and merges their lists per request.
    primary_metric : str
        The decision metric (e.g. ``ctr``).
    guardrails : list of str
        Metrics that must not get worse.
    start : datetime, optional
        When exposure counting starts; activity before it is the CUPED covariate.
    planned_units : int
        Units the experiment plans to reach (all arms); tunes the sequential test's
        mixture (:func:`movierec.evaluation.online.mixture_tau2`). Fix it up front.
    alpha : float
        Size of every test (intervals have coverage ``1 - alpha``).
    """

    name: str = Field(min_length=1)
    salt: str = ""
    unit: Literal["user", "session"] = "user"
    variants: dict[str, Variant]
    weights: dict[str, float] = Field(default_factory=dict)
    control: str = ""
    status: Literal["running", "stopped"] = "running"
    mode: Literal["ab", "interleave"] = "ab"
    primary_metric: str = "ctr"
    guardrails: list[str] = Field(default_factory=list)
    start: datetime | None = None
    planned_units: int = Field(1000, ge=4)
    alpha: float = Field(0.05, gt=0, lt=1)

    @field_validator("primary_metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric {v!r}; choose from {list(METRICS)}")
        return v

    @field_validator("guardrails")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for m in v:
            cls._metric(m)
        return v

    @field_validator("variants", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: {"model": x} if isinstance(x, str) else x for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _defaults(self) -> Experiment:
        names = list(self.variants)
        if len(names) < 2:
            raise ValueError("@variants@an experiment needs at least two variants")
        if INTERLEAVED in names:
            raise ValueError(f"@variants@{INTERLEAVED!r} is reserved; rename that variant")
        if self.mode == "interleave" and len(names) != 2:
            raise ValueError("@variants@interleaving compares exactly two variants")
        if self.control and self.control not in self.variants:
            raise ValueError(f"@control@{self.control!r} is not a variant; choose from {names}")
        if self.weights:
            unknown = set(self.weights) ^ set(names)
            if unknown:
                raise ValueError(f"@weights@give one weight per variant {names}")
            if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
                raise ValueError("@weights@weights must be >= 0 and not all 0")
        # frozen model: fill the derived defaults in place once, at validation
        object.__setattr__(self, "salt", self.salt or self.name)
        object.__setattr__(self, "control", self.control or names[0])
        if not self.weights:
            object.__setattr__(self, "weights", dict.fromkeys(names, 1.0))
        return self

    @property
    def start_ts(self) -> float | None:
        """The start as unix seconds (a start without a timezone is taken as UTC)."""
        if self.start is None:
            return None
        st = self.start if self.start.tzinfo else self.start.replace(tzinfo=UTC)
        return st.timestamp()

    def definition(self) -> dict[str, Any]:
        """The experiment as JSON-ready data (what the store keeps for reports)."""
        return self.model_dump(mode="json")

    @property
    def weight_list(self) -> list[float]:
        """Traffic shares in variant order, summing to 1."""
        total = sum(self.weights.values())
        return [self.weights[n] / total for n in self.variants]

    def bucket(self, unit: Any) -> float:
        """The unit's bucket in [0, 1) under this experiment's salt (see :func:`bucket`)."""
        return bucket(self.salt, unit)

    def assign(self, unit: Any) -> str:
        """The variant that serves ``unit``.

        A stopped experiment serves its control to everyone; a running interleaving
        experiment returns :data:`INTERLEAVED` (every unit sees the merged list); otherwise
        the variant whose slice of [0, 1) (widths by the weights, in variant order) holds
        the unit's bucket.
        """
        if self.status == "stopped":
            return self.control
        if self.mode == "interleave":
            return INTERLEAVED
        names = list(self.variants)
        return names[pick(self.bucket(unit), [self.weights[n] for n in names])]

    def interleave(
        self, rankings: dict[str, Sequence[Hashable]], k: int, request_id: str
    ) -> Interleaved:
        """Team-draft merge of the two variants' lists for one request.

        The coin is seeded by ``(salt, request_id)``, so replaying a request reproduces
        its list. ``rankings`` maps each variant name to its ranked movie ids.
        """
        a, b = self.variants
        missing = {a, b} - set(rankings)
        if missing:
            raise ConfigError(f"interleave needs a ranking for variants {sorted(missing)}")
        return team_draft(rankings[a], rankings[b], k, f"{self.salt}:{request_id}", (a, b))


def parse_experiments(raw: Any, source: str = "experiments") -> list[Experiment]:
    """Validate a list of experiment mappings; names must be unique.

    Raises
    ------
    ConfigError
        Naming the experiment and key at fault.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: expected a list of experiments, got {type(raw).__name__}")
    out: list[Experiment] = []
    for i, item in enumerate(raw):
        where = f"{source}[{i}]"
        if isinstance(item, dict) and item.get("name"):
            where = f"{source}.{item['name']}"
        try:
            out.append(Experiment.model_validate(item))
        except ValidationError as e:
            raise ConfigError(_message(e, where)) from None
    names = [e.name for e in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: experiment names must be unique; repeated: {dup}")
    return out


def _message(err: ValidationError, where: str) -> str:
    parts = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        loc = ".".join(str(p) for p in e["loc"])
        if msg.startswith("@"):
            loc, _, msg = msg[1:].partition("@")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        parts.append(f"{loc or '(top level)'}: {msg}")
    return f"{where}: " + "; ".join(parts)


# -- interleaving ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Interleaved:
    """A merged list and, position by position, the team (variant) that placed each item."""

    items: list[Hashable]
    teams: list[str]


def _seed(seed: int | str) -> int:
    if isinstance(seed, int):
        return seed
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big")


def team_draft(
    ranking_a: Sequence[Hashable],
    ranking_b: Sequence[Hashable],
    k: int | None = None,
    seed: int | str = 0,
    names: tuple[str, str] = ("a", "b"),
) -> Interleaved:
    """Team-draft interleaving (Radlinski, Kurup and Joachims 2008).

    Each round the team with fewer picks so far picks next; on a tie a coin decides. A team
    picks its highest-ranked item not yet in the merged list. When one ranking runs out,
    the other fills the rest.

    Parameters
    ----------
    ranking_a, ranking_b : sequence
        The two rankers' lists, best first.
    k : int, optional
        Length of the merged list; all distinct items when omitted.
    seed : int or str
        The per-request coin: an int seeds ``random.Random`` directly; a str is first
        turned into the first 8 bytes of its sha256 (big-endian).
    names : (str, str)
        Team labels for ``ranking_a`` and ``ranking_b``.

    Returns
    -------
    Interleaved
    """
    rng = random.Random(_seed(seed))
    if k is None:
        k = len(set(ranking_a) | set(ranking_b))
    used: set[Hashable] = set()
    items: list[Hashable] = []
    teams: list[str] = []
    lists = (ranking_a, ranking_b)
    pos = [0, 0]
    picks = [0, 0]
    while len(items) < k:
        for t in (0, 1):
            while pos[t] < len(lists[t]) and lists[t][pos[t]] in used:
                pos[t] += 1
        left = [pos[0] < len(ranking_a), pos[1] < len(ranking_b)]
        if not any(left):
            break
        if not left[1]:
            t = 0
        elif not left[0]:
            t = 1
        elif picks[0] != picks[1]:
            t = 0 if picks[0] < picks[1] else 1
        else:
            t = 0 if rng.random() < 0.5 else 1
        item = lists[t][pos[t]]
        used.add(item)
        items.append(item)
        teams.append(names[t])
        picks[t] += 1
    return Interleaved(items, teams)


def credit_clicks(shown: Interleaved, clicked: Sequence[Hashable]) -> dict[str, int]:
    """Clicks credited to each team: a click counts for the team that placed the movie.

    Clicks on movies not in the list are ignored; a movie clicked twice counts twice.
    Every team of the list appears in the result, with 0 when it got no clicks.
    """
    team_of = dict(zip(shown.items, shown.teams, strict=True))
    out = dict.fromkeys(shown.teams, 0)
    for item in clicked:
        t = team_of.get(item)
        if t is not None:
            out[t] += 1
    return out


def winner(credits: dict[str, int], a: str, b: str) -> str | None:
    """The team a unit prefers (more credited clicks over all its requests), or None on a
    tie; feed the counts of ``a`` and ``b`` wins to
    :func:`movierec.evaluation.online.preference_test`."""
    ca, cb = credits.get(a, 0), credits.get(b, 0)
    return a if ca > cb else b if cb > ca else None
