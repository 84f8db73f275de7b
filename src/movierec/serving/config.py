"""The serving config (YAML): models to serve, fallback, cache, store, secrets' sources.

Secrets never live in the file: it names the environment variables that hold them
(``admin_token_env``, ``api_key_env``). Example::

    default: ials            # label served when a request gives no ?model=
    models: [ials, ease]     # labels to load (default: every artifact found)
    cache: {size: 20000, ttl_s: 300}
    store: sqlite:///feedback.db
    admin_token_env: MOVIEREC_ADMIN_TOKEN
    api_key_env: MOVIEREC_API_KEY   # then writes need the X-API-Key header
    cors_origins: []                # CORS stays off unless origins are listed
    experiments:                    # online experiments (movierec.serving.abtest)
      - name: ease-vs-pop
        variants: {control: popularity, treatment: ease}

At most one experiment per unit (user, session) may be running; a request that names
``?model=`` is outside every experiment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from movierec.errors import ConfigError
from movierec.serving.abtest import Experiment, parse_experiments

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CacheConfig(BaseModel):
    """In-process LRU + TTL cache of recommendation lists (0 entries: off)."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(10_000, ge=0)
    ttl_s: float = Field(300.0, gt=0)


class ServeConfig(BaseModel):
    """What ``movierec serve`` serves and how (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    default: str | None = None
    models: list[str] | None = None
    fallback: Literal["popularity"] = "popularity"
    cache: CacheConfig = CacheConfig()
    store: str = "sqlite:///feedback.db"
    admin_token_env: str = "MOVIEREC_ADMIN_TOKEN"
    api_key_env: str | None = None
    max_body_bytes: int = Field(64 * 1024, ge=256)
    cors_origins: list[str] = []
    #: reloads may name artifacts only inside this folder (default: the served PATH)
    reload_root: str | None = None
    #: check the store for another worker's writes before serving a cached list
    verify_cache_with_store: bool = False
    #: online experiments (see movierec.serving.abtest for the fields)
    experiments: list[Experiment] = []

    @field_validator("experiments", mode="before")
    @classmethod
    def _experiments(cls, v: Any) -> Any:
        if v and all(isinstance(e, Experiment) for e in v):
            exps = list(v)
        else:
            exps = parse_experiments(v)  # ConfigError naming the experiment and key
        for unit in ("user", "session"):
            running = [e.name for e in exps if e.unit == unit and e.status == "running"]
            if len(running) > 1:
                raise ConfigError(
                    f"experiments: {running} all run on {unit}s; at most one experiment per "
                    "unit may run at a time (stop the others)"
                )
        return exps

    @field_validator("admin_token_env", "api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError(
                f"{v!r} is not an environment variable name: the config names the variable "
                "that holds the secret, never the secret itself"
            )
        return v

    def admin_token(self) -> str | None:
        """The admin bearer token from the environment (None: admin endpoints refuse)."""
        return os.environ.get(self.admin_token_env) or None

    def api_key(self) -> str | None:
        """The API key writes must carry (None: writes are open)."""
        return (os.environ.get(self.api_key_env) or None) if self.api_key_env else None


def load_serve_config(path: str | os.PathLike | None = None, **overrides: Any) -> ServeConfig:
    """Read a serving config YAML (None: the defaults); ``overrides`` (non-None) win."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{p}: cannot read the serving config ({e})") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: the serving config must be a mapping")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServeConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        where = f"{path}: " if path is not None else ""
        raise ConfigError(f"{where}{loc}: {err['msg']}") from None
