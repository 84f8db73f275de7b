"""Errors a user can cause. The CLI prints them in one line and exits non-zero."""


class MovierecError(Exception):
    """Base class: the message says what went wrong and what to fix."""


class DataError(MovierecError):
    """A data folder, file or value is missing or malformed."""


class FetchError(MovierecError):
    """A release could not be downloaded, verified or extracted."""


class ConfigError(MovierecError):
    """A config file or a model parameter is invalid."""


class UnknownIdError(MovierecError):
    """A user or movie id is not known to the model or data set."""


class ArtifactError(MovierecError):
    """A saved model is missing, tampered with, truncated or incompatible."""


class ConflictError(MovierecError):
    """A request reuses an idempotency key with a different body."""


class StoreError(MovierecError):
    """The feedback store cannot be reached, opened or written."""


class SourceUnreachableError(FetchError):
    """No source of a release could be reached (network down, host or file missing)."""
