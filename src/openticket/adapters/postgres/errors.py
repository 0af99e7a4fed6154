"""PostgreSQL driver errors translated into the ports' errors, and connection settings."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg
from psycopg.conninfo import conninfo_to_dict

from openticket.application.ports.errors import (
    AdapterUnavailable,
    ConcurrencyError,
    DuplicateError,
    EmailTaken,
    PortError,
)

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


_UNAVAILABLE_CLASSES = ("08", "53", "57")
"""SQLSTATE classes: connection exception, insufficient resources, operator intervention."""


def translate(error: BaseException) -> PortError:
    """The port error for a driver error (the caller raises it ``from`` the original)."""
    if isinstance(error, PortError):
        return error
    if isinstance(error, pg.UniqueViolation):
        constraint = error.diag.constraint_name or ""
        if constraint == "users_email_key":
            return EmailTaken("this e-mail address is registered")
        return DuplicateError(f"another row has the same key ({constraint})")
    if isinstance(error, pg.SerializationFailure | pg.DeadlockDetected | pg.LockNotAvailable):
        return ConcurrencyError(f"a concurrent change got in the way: {error.sqlstate}")
    if isinstance(error, psycopg_pool.PoolTimeout):
        return DatabaseUnreachable(f"no PostgreSQL connection free in time: {error}")
    if isinstance(error, psycopg.Error):
        state = error.sqlstate or ""
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError) and (
            not state or state[:2] in _UNAVAILABLE_CLASSES
        ):
            return DatabaseUnreachable(f"PostgreSQL connection failed: {error}")
        return StorageError(f"PostgreSQL refused a statement ({state}): {error}")
    return StorageError(f"{type(error).__name__}: {error}")
