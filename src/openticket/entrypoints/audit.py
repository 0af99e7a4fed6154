"""``openticket audit --session ID``: the stored books of a sale, held against its promises.

Reads PostgreSQL (and, with NATS configured, the parked stream) and prints what the sale
did and every promise it broke, as text or (``--json``) one JSON object. Exit codes:
0 every promise holds, 1 something is wrong (the report says what), 2 bad arguments or
settings, 3 the books could not be read (a dependency down).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta
from typing import Any, TextIO
from uuid import UUID

import attrs

from openticket.adapters.nats.connection import NatsUnreachable
from openticket.adapters.postgres import DatabaseUnreachable
from openticket.application.audit import AuditReport
from openticket.application.ports.errors import AdapterUnavailable
from openticket.domain.shared import SessionId
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.logging import configure_logging
from openticket.entrypoints.settings import Settings

PROG = "openticket audit"
HOLDS, BROKEN, USAGE, UNREADABLE = 0, 1, 2, 3


async def run_audit(
    settings: Settings, *, session: str, grace_seconds: float, as_json: bool, out: TextIO
) -> int:
    """Audit one session; the exit code."""
    if settings.storage != "postgres":
        print(
            f"{PROG}: the books of a sale are in PostgreSQL: set OPENTICKET_DATABASE_URL (the"
            " embedded profile keeps nothing to audit after it stops)",
            file=sys.stderr,
        )
        return USAGE
    try:
        session_id = SessionId(UUID(session))
    except ValueError:
        print(f"{PROG}: --session {session!r} is not a session id (a UUID)", file=sys.stderr)
        return USAGE
    if grace_seconds < 0:
        print(f"{PROG}: --grace-seconds must not be negative", file=sys.stderr)
        return USAGE
    configure_logging(level=logging.WARNING)  # on stderr: stdout is the report's
    container = build_container(settings)
    database = container.postgres_database()
    nats = container.nats() if settings.messaging == "nats" else None
    try:
        await database.start()
        if nats is not None:
            await nats.start()
        report = await container.auditor().audit(session_id, grace=timedelta(seconds=grace_seconds))
    except (DatabaseUnreachable, NatsUnreachable, AdapterUnavailable) as e:
        print(f"{PROG}: cannot read the books: {e}", file=sys.stderr)
        return UNREADABLE
    finally:
        if nats is not None:
            await nats.stop()
        await database.stop()
    print(json.dumps(report_json(report)) if as_json else report_text(report), file=out)
    return HOLDS if report.holds else BROKEN


def report_json(report: AuditReport) -> dict[str, Any]:
    """The report as JSON-ready values (the ``--json`` output)."""
    values: dict[str, Any] = attrs.asdict(report, value_serializer=_plain)
    values["holds"] = report.holds
    values["purchases"] = report.purchases
    return values


def _plain(_: object, __: object, value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def report_text(report: AuditReport) -> str:
    """The report as a person reads it."""

    def counts(by: dict[str, int] | Any) -> str:
        return ", ".join(f"{n} {status}" for status, n in sorted(by.items())) or "none"

    def money(by: dict[str, str] | Any) -> str:
        return ", ".join(f"{amount} {currency}" for currency, amount in by.items()) or "none"

    parked = "no NATS configured" if report.messages_parked is None else str(report.messages_parked)
    lines = [
        f"audit of session {report.session_id} at {report.audited_at.isoformat()}"
        f" (grace {report.grace_seconds:g} s)",
        f"  orders:     {counts(report.orders)}",
        f"  seats sold: {report.seats_sold} (tickets voided: {report.tickets_voided})",
        f"  payments:   {counts(report.payments)}",
        f"  money:      captured {money(report.captured)}; refunded {money(report.refunded)}",
        f"  events not published: {report.events_not_published}; messages parked: {parked}",
    ]
    if report.holds:
        lines.append("every promise holds")
    else:
        lines.append(f"{len(report.findings)} problems:")
        lines += [f"  {f.check:<34} {f.subject}: {f.detail}" for f in report.findings]
    return "\n".join(lines)
