"""Errors of model calls: each one says what happened, where, and what to do next."""

from __future__ import annotations


class ModelError(Exception):
    """Root of every error a model call raises."""


class ServerUnreachable(ModelError):
    """No connection to the model server (refused, DNS, reset) even after retries."""


class ModelNotFound(ModelError):
    """The server answered, but does not have the model."""


class ContextOverflow(ModelError):
    """The prompt does not fit the model's context window."""


class TruncatedAnswer(ModelError):
    """The model stopped at its token limit (`length`): the answer is incomplete."""


class BadServerURL(ModelError):
    """The server's URL cannot be used at all: a setting to fix, not a connection to retry."""


class ModelTimeout(ModelError):
    """The server accepted the request but gave no answer in time."""


class ServerError(ModelError):
    """The server kept failing (5xx or 429) through every retry, or refused the request (4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BadAnswer(ModelError):
    """The answer could not be used: not JSON where JSON was asked, or not the schema, even
    after the model was shown the error and asked again."""


class CassetteMismatch(ModelError):
    """A replayed request differs from the one recorded, or the cassette ran out."""
