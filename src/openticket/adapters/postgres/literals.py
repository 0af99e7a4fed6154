"""Statements with their values written in, for the unit of work's one-round-trip batches.

:func:`bind` turns ``(query, params)`` into SQL text with the values as literals, as
psycopg's ``ClientCursor.mogrify`` does, for the values a unit of work writes most:
``None``, ``bool``, ``int``, ``str``, ``UUID``, a finite ``Decimal``, an aware
``datetime`` (in UTC), a list of UUIDs, text or decimals and ``Jsonb`` of plain JSON
values, at ``%s`` or ``%(name)s`` placeholders. Any other value (a naive moment, text
with a NUL character, a subclass of those types) is written by psycopg's own quoting;
so is a whole statement with other placeholders (``%b``, ``%t``) or values that do not
match them (psycopg raises its error), and every statement on a connection whose
strings are not standard-conforming UTF-8.

Why by hand
    ``mogrify`` is general: it looks up a dumper per value, dumps it to bytes, quotes
    those through libpq and decodes the result again, 5 µs for a statement without
    values and 36 µs for an outbox insert of six on this machine. A purchase binds about
    twenty statements this way in its API process (``docs/performance.md``).

Quoting
    With ``standard_conforming_strings`` on (PostgreSQL's default since 9.1, checked
    per connection), a string literal is the text between single quotes with each
    quote doubled; a backslash is an ordinary character. PostgreSQL's text cannot hold
    NUL (0x00): such a value goes to psycopg, which refuses it with ``DataError``. Other
    types are written as psycopg writes them (``'…'::uuid``, ``'…'::timestamptz``,
    ``'…'::jsonb``, ``'{…}'::uuid[]``, a bare number, ``true``/``false``, ``NULL``),
    so the server infers the same types. ``tests/integration/postgres/test_literals.py``
    reads every kind back from the server, text drawn by Hypothesis included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import attrs
import msgspec
import psycopg
from psycopg.types.datetime import DatetimeDumper
from psycopg.types.json import Jsonb

_json_encode: Final = msgspec.json.Encoder().encode

Fallback = Callable[[str, Any], str]
"""psycopg's ``mogrify`` of the same connection: ``(query, params)`` to SQL text."""


class _NotHere(Exception):
    """A value this module does not write: psycopg writes it."""


def _text(value: str) -> str:
    if "\x00" in value:
        raise _NotHere
    return "'" + value.replace("'", "''") + "'"


def _uuid(value: UUID) -> str:
    return f"'{value}'::uuid"


def _signed(text: str) -> str:
    return " " + text if text[0] == "-" else text  # " -1": no "--" comment after a "-"


def _integer(value: int) -> str:
    return _signed(str(value))


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _in_utc(value: datetime) -> str:
    """An aware moment as PostgreSQL reads it: in UTC (it takes offsets up to 15:59 only)."""
    return str(value.astimezone(UTC))


def _moment(value: datetime) -> str:
    if value.tzinfo is None:
        raise _NotHere  # psycopg writes a naive moment as a ``timestamp``
    try:
        return f"'{_in_utc(value)}'::timestamptz"
    except OverflowError as e:  # before year 1 in UTC: psycopg's dumper refuses it
        raise _NotHere from e


def _json(value: Jsonb) -> str:
    if value.dumps is not None:  # a custom serializer: psycopg calls it
        raise _NotHere
    try:
        text = _json_encode(value.obj).decode()
    except (TypeError, msgspec.EncodeError) as e:
        raise _NotHere from e
    return _text(text) + "::jsonb"


def _numeric(value: Decimal) -> str:
    if not value.is_finite():
        raise _NotHere  # psycopg writes 'NaN'::numeric, 'Infinity'::numeric
    return _signed(str(value))


def _array_item(item: object) -> str:
    if type(item) is UUID:
        return str(item)
    if type(item) is str:  # quoted for the array's syntax, then the whole as text
        return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if type(item) is Decimal and item.is_finite():
        return str(item)
    raise _NotHere


_ARRAY_CASTS: Final[dict[type, str]] = {UUID: "::uuid[]", Decimal: "::numeric[]", str: ""}
"""As psycopg types them: a text array is left for the server to type."""


def _list(value: list[Any]) -> str:
    if not value:
        raise _NotHere  # psycopg writes an empty list as '{}' for the server to type
    kind = type(value[0])
    if any(type(item) is not kind for item in value):
        raise _NotHere
    cast = _ARRAY_CASTS.get(kind)
    if cast is None:
        raise _NotHere
    return _text("{" + ",".join(map(_array_item, value)) + "}") + cast


_WRITERS: Final[dict[type, Callable[[Any], str]]] = {
    str: _text,
    UUID: _uuid,
    int: _integer,
    bool: _boolean,
    datetime: _moment,
    Jsonb: _json,
    Decimal: _numeric,
    list: _list,
}
"""By exact type: a subclass (a ``StrEnum``…) may dump differently, psycopg writes it."""

_PLACEHOLDER: Final = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<kind>.)", re.DOTALL)


@attrs.frozen
class _Cut:
    """A query cut at its placeholders: ``pieces[0] value pieces[1] value …``."""

    pieces: tuple[str, ...]
    keys: tuple[int, ...] | tuple[str, ...]
    """Where each value comes from: positions, or names (a name may repeat)."""


_cuts: dict[str, _Cut | None] = {}
"""The queries cut so far; ``None`` for those left to psycopg."""


def _cut(query: str) -> _Cut | None:
    if query in _cuts:
        return _cuts[query]
    pieces: list[str] = []
    names: list[str] = []
    positions = 0
    start = 0
    found: _Cut | None = None
    for match in _PLACEHOLDER.finditer(query):
        name, kind = match.group("name"), match.group("kind")
        if kind == "%" and name is None:
            continue  # "%%": stays in the piece, made "%" below
        if kind != "s":  # %b, %t, a stray %: psycopg's to judge
            break
        pieces.append(query[start : match.start()].replace("%%", "%"))
        start = match.end()
        if name is None:
            positions += 1
        else:
            names.append(name)
    else:
        pieces.append(query[start:].replace("%%", "%"))
        if not (positions and names):  # mixed placeholders: psycopg refuses them
            keys = tuple(names) if names else tuple(range(positions))
            found = _Cut(tuple(pieces), keys)
    if len(_cuts) < 1024:  # statements are literals in the code: a small, fixed set
        _cuts[query] = found
    return found


def bind(
    query: str,
    params: Sequence[Any] | Mapping[str, Any] | None,
    fallback: Fallback,
) -> str:
    """``query`` with ``params`` written in; ``fallback(query, params)`` for the rest.

    ``fallback`` is psycopg's ``mogrify`` (of a cursor of the same connection): it
    writes what this module does not, and raises psycopg's error for bad values.
    """
    if params is None:
        return query
    cut = _cut(query)
    if cut is None:
        return fallback(query, params)
    named = type(params) is dict or isinstance(params, Mapping)
    keys = cut.keys
    if (keys and isinstance(keys[0], str)) != named or (not named and len(keys) != len(params)):
        return fallback(query, params)  # psycopg says what is wrong
    pieces = cut.pieces
    out = [pieces[0]]
    writers = _WRITERS
    for key, piece in zip(keys, pieces[1:], strict=True):
        try:
            value = params[key]  # type: ignore[index,call-overload]
        except KeyError:
            return fallback(query, params)  # psycopg names what is missing
        out.append(_literal(value, writers.get(type(value)), fallback))
        out.append(piece)
    return "".join(out)


def _literal(value: Any, writer: Callable[[Any], str] | None, fallback: Fallback) -> str:
    if value is None:
        return "NULL"
    if writer is not None:
        try:
            return writer(value)
        except _NotHere:
            pass
    return fallback("%(value)s", {"value": value})


class UtcDatetimeDumper(DatetimeDumper):
    """A moment as text in UTC: PostgreSQL takes offsets up to 15:59, Python up to 23:59."""

    def dump(self, obj: datetime) -> bytes:
        """The moment in UTC, as ``timestamptz`` text (``DataError`` before year 1 there)."""
        try:
            return (_in_utc(obj) if obj.tzinfo else str(obj)).encode()
        except OverflowError as e:
            raise psycopg.DataError(f"a moment out of range: {e}") from e


class Mogrify:
    """psycopg's quoting (``ClientCursor.mogrify``, moments in UTC) on a connection.

    The cursor is made when first called: most batches never need it.
    """

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn
        self._cursor: psycopg.AsyncClientCursor[Any] | None = None

    def __call__(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None) -> str:
        """``query`` with ``params`` written in by psycopg."""
        cursor = self._cursor
        if cursor is None:
            cursor = self._cursor = psycopg.AsyncClientCursor(self._conn)
            cursor.adapters.register_dumper(datetime, UtcDatetimeDumper)
        return cursor.mogrify(query, params)


def writes_literals(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether :func:`bind` may write values for ``conn`` (UTF-8, standard strings)."""
    status = conn.pgconn.parameter_status
    return status(b"standard_conforming_strings") == b"on" and status(b"client_encoding") == b"UTF8"
