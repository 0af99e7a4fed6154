"""Errors of the application layer (beside the domain's rules and the ports' failures)."""

from __future__ import annotations

from typing import ClassVar


class ApplicationError(Exception):
    """Base of application errors; ``code`` is the stable machine word."""

    code: ClassVar[str] = "application_error"


class NotFound(ApplicationError):
    """No such thing — or it is not yours to see (both answer 404, nothing leaked)."""

    code = "not_found"


class Forbidden(ApplicationError):
    """The caller's role does not allow this."""

    code = "forbidden"


class UnknownPaymentProvider(ApplicationError):
    """No payment provider of that name is configured."""

    code = "unknown_provider"


class SeatingUnavailable(ApplicationError):
    """The partition actor is not running (shutting down or not started)."""

    code = "service_unavailable"
