"""The ``openticket`` command.

Every failure a person can cause is one line on stderr and an exit code, never a
traceback: 2 for a wrong command line or setting (``SettingsError``), 1 for what the
world refused (a port in use, a database that does not answer, an e-mail taken).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import textwrap
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, NoReturn

from openticket._version import __version__
from openticket.domain.identity import Role
from openticket.entrypoints.settings import (
    Group,
    Settings,
    SettingsError,
    grouped,
    unknown_variables,
)

WIDTH = 100


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (and exit code 2)."""

    def error(self, message: str) -> NoReturn:
        """Say what is wrong in one line and where the help is."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def settings_help(only: Iterable[Group] | None = None) -> str:
    """The settings under their headings, with their defaults (secrets' never shown)."""
    lines = ["settings (environment variables; unset or empty means the default):"]
    sections = grouped(only)
    indent = 4 + max(len(variable) for _, rows in sections for variable, _, _ in rows)
    for group, rows in sections:
        lines += ["", f"{group}:"]
        for variable, default, text in rows:
            shown = f" (default: {default})" if default else ""
            lines += textwrap.wrap(
                f"{text}{shown}",
                WIDTH,
                initial_indent=f"  {variable:<{indent - 2}}",
                subsequent_indent=" " * indent,
                break_on_hyphens=False,
            )
    return "\n".join(lines)


def port(text: str) -> int:
    """A TCP port for ``--port``: 1-65535, or 0 for any free one."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: ports are 1-65535 (0: any free port)")
    return number


def count(text: str) -> int:
    """A number of things for ``--replicas``: 1 or more."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use a number of 1 or more")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser with every sub-command."""
    parser = Parser(
        prog="openticket",
        description="OpenTicket: sell seats to high-demand events without selling one twice.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"openticket {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command", parser_class=Parser)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (embedded profile with no configuration)",
        description="Run the HTTP and WebSocket API. With no OPENTICKET_* settings: in-memory "
        "adapters, mock payments, demo accounts and a sale open now. With "
        "OPENTICKET_DATABASE_URL nothing is seeded unless --demo is given.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument(
        "--port", type=port, default=8000, help="port to listen on (0: any free port)"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed the demo accounts and a sale on persistent storage too (never in "
        "production: their password is published)",
    )
    worker = commands.add_parser(
        "worker",
        help="run partition actors for the API processes (needs NATS and PostgreSQL)",
        description="Own seat-hold partitions by lease in NATS KV and answer their seat "
        "commands. Several workers split the partitions; when one stops or dies, the others "
        "take its partitions over within seconds.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--partitions",
        default="",
        help="partitions this worker prefers, e.g. 0-7 or 0,2,4 (default: none; it then "
        "takes over partitions nobody owns)",
    )
    worker.add_argument(
        "--replica",
        default=None,
        metavar="auto|N",
        help="with --replicas: prefer this replica's share of the partitions instead of "
        "--partitions (contiguous ranges, replica 0 first); auto: the number the host name "
        "ends in (-<n>: a Kubernetes StatefulSet pod's ordinal)",
    )
    worker.add_argument(
        "--replicas",
        type=count,
        default=None,
        metavar="M",
        help="with --replica: how many workers share the partitions",
    )
    worker.add_argument("--id", default=None, help="worker id (default: host name and pid)")
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the PostgreSQL schema (OPENTICKET_DATABASE_URL)",
        description="Apply the SQL migrations shipped with OpenTicket that the database "
        "lacks, in order, each recorded in schema_migrations. Running it again is a no-op.",
        epilog=settings_help([Group.DATABASE]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (default: OPENTICKET_DATABASE_URL)",
    )
    migrate.add_argument(
        "--schema", default=None, help="schema of the tables (default: OPENTICKET_DATABASE_SCHEMA)"
    )
    users = commands.add_parser(
        "users",
        help="make accounts in PostgreSQL (the first admin of a deployment)",
        description="Accounts for a deployment on PostgreSQL.",
        epilog=settings_help([Group.DATABASE]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = users.add_subparsers(dest="action", metavar="action", parser_class=Parser)
    actions.required = True
    create = actions.add_parser(
        "create",
        help="make an account with the roles given",
        description="Make an account with the roles given, e.g. the first admin: "
        "openticket users create --email you@example.com --role admin. The password is "
        "asked twice on a terminal, or read as one line from stdin. Pending migrations are "
        "applied first, as serve does.",
        epilog=settings_help([Group.DATABASE]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("--email", required=True, help="the account's e-mail address")
    create.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=[role.value for role in Role],
        help="a role of the account; repeat for several",
    )
    create.add_argument(
        "--display-name", default=None, help="the name shown (default: the e-mail's local part)"
    )
    audit = commands.add_parser(
        "audit",
        help="check a sale's books: no seat sold twice, every payment ended as tickets or a refund",
        description="Read the books of one session in PostgreSQL (and the parked stream when "
        "NATS is configured) and check every promise of the platform: no seat sold twice; "
        "live tickets only of completed orders, a ticket for each of their seats; every "
        "captured payment ended as tickets or exactly one refund; no order still open past "
        "its expiry, no payment still waiting after its order closed; every stored event "
        "published; nothing parked. Exit 0 when every promise holds, 1 when one is broken "
        "(the report names the ids), 2 for bad arguments, 3 when the books cannot be read.",
        epilog=settings_help([Group.DATABASE, Group.NATS]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("--session", required=True, help="the session's id")
    audit.add_argument(
        "--grace-seconds",
        type=float,
        default=60.0,
        help="how long a step may still be under way before it counts as a problem (default: 60)",
    )
    audit.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop where it is installed, else on asyncio's own loop."""
    try:
        import uvloop  # noqa: PLC0415  # optional: not on every platform
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    for warning in unknown_variables():
        print(f"openticket: warning: {warning}", file=sys.stderr)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        for problem in e.problems:
            print(f"openticket: {problem}", file=sys.stderr)
        return 2
    try:
        return _command(args, settings)
    except KeyboardInterrupt:  # Ctrl+C once the command stopped what it ran
        return 130


def _command(args: argparse.Namespace, settings: Settings) -> int:
    # the heavy imports (drivers, the app) only for the command that needs them
    if args.command == "serve":
        from openticket.entrypoints.serve import serve  # noqa: PLC0415

        return run(serve(settings, host=args.host, port=args.port, demo=args.demo))
    if args.command == "worker":
        try:
            preferred = _preferred(args, settings.partitions)
        except ValueError as e:
            print(f"openticket worker: {e}", file=sys.stderr)
            return 2
        from openticket.entrypoints.worker import work  # noqa: PLC0415

        return run(work(settings, partitions=preferred, worker_id=args.id))
    if args.command == "users":
        from openticket.entrypoints.users import create_user  # noqa: PLC0415

        roles = [Role(name) for name in dict.fromkeys(args.roles)]
        return run(
            create_user(
                settings,
                email=args.email,
                roles=roles,
                display_name=args.display_name,
                stdin=sys.stdin,
            )
        )
    if args.command == "audit":
        from openticket.entrypoints.audit import run_audit  # noqa: PLC0415

        return run(
            run_audit(
                settings,
                session=args.session,
                grace_seconds=args.grace_seconds,
                as_json=args.json,
                out=sys.stdout,
            )
        )
    url = args.database_url or settings.database_url
    if not url:
        print(
            "openticket migrate: no database given; set OPENTICKET_DATABASE_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/openticket) or pass --database-url",
            file=sys.stderr,
        )
        return 2
    schema = args.schema if args.schema is not None else settings.database_schema
    from openticket.entrypoints.migrate import run_migrations  # noqa: PLC0415

    return run(run_migrations(url, schema or None))


def _preferred(args: argparse.Namespace, partitions: int) -> list[int]:
    """The partitions ``worker`` prefers: ``--partitions``, or ``--replica``'s share."""
    from openticket.entrypoints.worker import (  # noqa: PLC0415
        parse_partitions,
        replica_number,
        replica_partitions,
    )

    if args.replica is None and args.replicas is None:
        return parse_partitions(args.partitions, partitions)
    if args.replica is None or args.replicas is None:
        raise ValueError("--replica and --replicas go together: give both (or --partitions)")
    if args.partitions:
        raise ValueError("give either --partitions or --replica/--replicas, not both")
    replica = replica_number(args.replica, socket.gethostname())
    return replica_partitions(replica, args.replicas, partitions)


if __name__ == "__main__":
    raise SystemExit(main())
