"""Domain errors. Their class names are the error vocabulary of the ASL files.

A Lambda's exception class name becomes the ``Error`` that Step Functions' Retry
and Catch match on; ``tests/unit/test_asl_lint.py`` checks that every name used in
``ErrorEquals`` exists here (or is a ``States.*``/``Lambda.*`` name).
"""

from __future__ import annotations


class ComplaintsError(Exception):
    """Base of every domain error."""


class TransientError(ComplaintsError):
    """Worth retrying: throttling, a lost race, a dependency briefly unavailable."""


class ConflictError(TransientError):
    """A conditional write lost against a concurrent writer; re-read and retry."""


class MailDeliveryError(TransientError):
    """The mail service refused or failed to accept a message."""


class CaseNotFoundError(ComplaintsError):
    """No case with that number (in that tenant)."""


class InvalidTransitionError(ComplaintsError):
    """The case is not in a phase where this step can happen."""


class SupersededError(ComplaintsError):
    """The case was re-opened or resumed by a newer execution: this one ends quietly."""


class ConfigurationError(ComplaintsError):
    """Tenant or policy configuration is missing or inconsistent."""


class InvalidInputError(ComplaintsError):
    """A form, an API body or a mail did not carry what the step needs."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class LinkNotFoundError(ComplaintsError):
    """Unknown or forged link id."""


class LinkForbiddenError(ComplaintsError):
    """The link exists but the request may not act on it (bad form token, wrong recipient)."""


class LinkGoneError(ComplaintsError):
    """The link was used or has expired; ``detail`` says by whom and when."""

    def __init__(self, message: str, *, reason: str, decided_by: str | None = None,
                 decided_at: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.decided_by = decided_by
        self.decided_at = decided_at


class RateLimitedError(ComplaintsError):
    """Too many requests for one link in a minute."""


class TaskNotOpenError(ComplaintsError):
    """The human step this token or link belongs to is no longer waiting."""
