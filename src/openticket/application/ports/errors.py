"""Errors that ports may raise. Adapters translate their driver's errors into these."""

from __future__ import annotations

from typing import ClassVar


class PortError(Exception):
    """Base of every error a port declares; ``code`` is the stable machine word."""

    code: ClassVar[str] = "port_error"


class AdapterUnavailable(PortError):
    """The backing service cannot be reached now; the call may succeed when retried."""

    code = "service_unavailable"


class ConcurrencyError(PortError):
    """Someone else saved the aggregate since it was loaded (optimistic concurrency)."""

    code = "concurrent_update"


class DuplicateError(PortError):
    """An aggregate with this id (or another unique key) exists already."""

    code = "conflict"


class EmailTaken(DuplicateError):
    """Another user has registered this e-mail address."""

    code = "email_taken"


class SeatAlreadyTicketed(DuplicateError):
    """A live ticket exists for this seat of this session: the final double-sale fence."""

    code = "seat_already_ticketed"

    def __init__(self, session_id: object, seat_id: str) -> None:
        super().__init__(f"seat {seat_id} of session {session_id} already has a ticket")
        self.session_id = session_id
        self.seat_id = seat_id


class InvalidInput(PortError):
    """The store cannot hold a value it was given (a NUL in a text, a number out of range).

    Caused by the data, not by the store: the caller's input is at fault (400/422), and
    the same call with other data works.
    """

    code = "invalid_input"


class NotInTransaction(PortError):
    """A unit of work was used outside ``async with`` or after it ended."""

    code = "not_in_transaction"
