"""PostgreSQL driver errors translated into the ports' errors, and connection settings.

What a port error says reaches API clients (its message is the problem's ``detail``),
so it names neither the database nor a statement, its parameters or the server's
address; the driver's own words go to the log (and stay on the error's ``__cause__``).
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
import structlog
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict

from openticket.application.ports.errors import (
    AdapterUnavailable,
    ConcurrencyError,
    DuplicateError,
    EmailTaken,
    InvalidInput,
    PortError,
    SeatAlreadyTicketed,
)
from openticket.domain.catalog import QuotaExhausted, UserLimitReached
from openticket.domain.shared import DomainError

_log = structlog.get_logger("openticket.postgres")

SEAT_FENCE = "tickets_session_id_seat_id_key"
"""The unique key of live tickets per seat: the final double-sale fence."""

_FENCE_DETAIL = re.compile(r"=\((?P<session>[^,]*), (?P<seat>.*)\) already exists")

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class DatabaseUnreachable(AdapterUnavailable):
    """PostgreSQL did not answer (down, wrong address, refused the login)."""


class StorageError(PortError):
    """PostgreSQL refused a statement for a reason that retrying will not change."""

    code = "storage_error"


def check_schema(schema: str | None) -> str | None:
    """Refuse schema names that would need quoting (they go into ``search_path``)."""
    if schema is not None and not _SCHEMA.fullmatch(schema):
        raise ValueError(f"schema {schema!r} must be lower-case letters, digits and '_'")
    return schema


def connection_kwargs(schema: str | None) -> dict[str, Any]:
    """Session settings of every connection: UTC times and, if given, the schema."""
    options = "-c TimeZone=UTC"
    if check_schema(schema) is not None:
        options += f" -c search_path={schema}"
    return {"options": options}


def redacted(conninfo: str) -> str:
    """The connection string without its password, for messages."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or 5432
    dbname = params.get("dbname") or params.get("user") or ""
    return f"{host}:{port}/{dbname}"


def connect_error(conninfo: str, error: BaseException) -> DatabaseUnreachable:
    """The error of a failed connection attempt, naming where and why."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DatabaseUnreachable(f"cannot reach PostgreSQL at {redacted(conninfo)}: {reason}")


DRIVER_ERRORS = (psycopg.Error, UnicodeEncodeError)
"""What running a statement may raise: the driver's errors, and the text codec's for a
string that is not Unicode (a lone surrogate), raised before anything is sent."""

_UNAVAILABLE_CLASSES = ("08", "53", "57")
"""SQLSTATE classes: connection exception, insufficient resources, operator intervention."""

_INVALID_INPUT = {
    "22001": "a text of the request is too long to be stored",
    "22003": "a number of the request is out of range",
    "22007": "a date or time of the request cannot be stored",
    "22008": "a date or time of the request is out of range",
    "22021": "a text of the request is not valid UTF-8",
    "22P05": "a text of the request holds a character that cannot be stored",
}
"""What a data exception (SQLSTATE class 22) says to the client, by SQLSTATE."""


_UNSTORABLE_TEXT = _INVALID_INPUT["22P05"]


_LIMIT_REFUSALS = {"OTL01": "cap", "OTL02": "quota"}
"""SQLSTATEs of ``order_limits_check`` (migration 0004): the buyer's cap, the quota."""


def limit_refusal(error: BaseException) -> DomainError | None:
    """The domain error of an order that ``order_limits_check`` refused, else None.

    The function's detail is ``"<limit> <taken>"``: the cap or quota and the seats
    counted against it without the refused order.
    """
    state = getattr(error, "sqlstate", None)
    kind = _LIMIT_REFUSALS.get(state or "")
    if kind is None or not isinstance(error, psycopg.Error):
        return None
    limit, taken = (int(n) for n in (error.diag.message_detail or "0 0").split())
    if kind == "cap":
        return UserLimitReached.counted(cap=limit, taken=taken)
    return QuotaExhausted.counted(quota=limit, taken=taken)


def translate(error: BaseException) -> PortError:
    """The port error for a driver error (the caller raises it ``from`` the original).

    Errors caused by the data (SQLSTATE class 22; what psycopg refuses to send: NUL in
    a text, a string that is not Unicode) are the caller's input at fault,
    ``InvalidInput``; a statement the server refused for another reason is a
    ``StorageError`` (a fault of ours), logged with the driver's message.
    """
    if isinstance(error, PortError):
        return error
    if isinstance(error, pg.UniqueViolation):
        constraint = error.diag.constraint_name or ""
        if constraint == "users_email_key":
            return EmailTaken("this e-mail address is registered")
        if constraint == SEAT_FENCE:
            found = _FENCE_DETAIL.search(error.diag.message_detail or "")
            if found is None:
                return SeatAlreadyTicketed("?", "?")
            return SeatAlreadyTicketed(UUID(found["session"]), found["seat"])
        return DuplicateError("another record has the same key")
    if isinstance(error, pg.SerializationFailure | pg.DeadlockDetected | pg.LockNotAvailable):
        return ConcurrencyError(f"a concurrent change got in the way: {error.sqlstate}")
    if isinstance(error, psycopg_pool.PoolTimeout):
        return DatabaseUnreachable("no database connection was free in time")
    if isinstance(error, psycopg.DataError | UnicodeEncodeError):
        state = getattr(error, "sqlstate", None) or ""
        # logged all the same: a data exception of our own making would be a bug to find
        _log.info("storage_refused_input", sqlstate=state, error=str(error).split("\n")[0])
        if isinstance(error, UnicodeEncodeError) or (not state and "NUL" in str(error)):
            return InvalidInput(_UNSTORABLE_TEXT)
        return InvalidInput(_INVALID_INPUT.get(state, "a value of the request cannot be stored"))
    if isinstance(error, psycopg.Error):
        state = error.sqlstate or ""
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError) and (
            not state or state[:2] in _UNAVAILABLE_CLASSES
        ):
            _log.warning("database_connection_failed", sqlstate=state, error=str(error))
            return DatabaseUnreachable("the database connection failed")
        _log.error("storage_refused", sqlstate=state, error=str(error))
        return StorageError(f"the storage refused a statement (SQLSTATE {state or 'none'})")
    _log.error("storage_failed", error=repr(error))
    return StorageError(f"the storage failed ({type(error).__name__})")
