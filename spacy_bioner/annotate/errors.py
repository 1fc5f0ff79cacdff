"""The errors of an annotation run: their messages are for the user, one line each."""

from typing import Any, Dict


class AnnotateError(Exception):
    """A run that cannot start or go on; the message says why and what to do."""


class TooManyRejects(AnnotateError):
    """More rejected records than `max_rejects`; `summary` is what was written."""

    def __init__(self, message: str, summary: Dict[str, Any]):
        super().__init__(message)
        self.summary = summary
