"""The ``openticket`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from openticket import __version__
from openticket.entrypoints.settings import Settings, SettingsError, describe


def _settings_help() -> str:
    lines = ["settings (environment variables):"]
    for variable, default, text in describe():
        shown = f" (default {default})" if default else ""
        lines.append(f"  {variable:<34} {text}{shown}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="openticket",
        description="OpenTicket: sell seats to high-demand events without selling one twice.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"openticket {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (embedded profile with no configuration)",
        description="Run the HTTP and WebSocket API. With no OPENTICKET_* settings: in-memory "
        "adapters, mock payments, demo accounts and a sale open now.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    worker = commands.add_parser(
        "worker",
        help="run partition actors for the API processes (needs NATS and PostgreSQL)",
        description="Own seat-hold partitions by lease in NATS KV and answer their seat "
        "commands. Several workers split the partitions; when one stops or dies, the others "
        "take its partitions over within seconds.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--partitions",
        default="",
        help="partitions this worker prefers, e.g. 0-7 or 0,2,4 (default: none; it then "
        "takes over partitions nobody owns)",
    )
    worker.add_argument("--id", default=None, help="worker id (default: host name and pid)")
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the PostgreSQL schema (OPENTICKET_DATABASE_URL)",
        description="Apply the SQL migrations shipped with OpenTicket that the database "
        "lacks, in order, each recorded in schema_migrations. Running it again is a no-op.",
    )
    migrate.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (default: OPENTICKET_DATABASE_URL)",
    )
    migrate.add_argument(
        "--schema", default=None, help="schema of the tables (default: OPENTICKET_DATABASE_SCHEMA)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"openticket: {e}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from openticket.entrypoints.serve import serve  # noqa: PLC0415  # heavy imports

        return asyncio.run(serve(settings, host=args.host, port=args.port))
    if args.command == "worker":
        from openticket.entrypoints.worker import parse_partitions, work  # noqa: PLC0415

        try:
            preferred = parse_partitions(args.partitions, settings.partitions)
        except ValueError as e:
            print(f"openticket worker: {e}", file=sys.stderr)
            return 2
        return asyncio.run(work(settings, partitions=preferred, worker_id=args.id))
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

    return asyncio.run(run_migrations(url, schema or None))


if __name__ == "__main__":
    raise SystemExit(main())
