"""The ``openticket`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from openticket import __version__


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="openticket",
        description="OpenTicket: sell seats to high-demand events without selling one twice.",
    )
    parser.add_argument("--version", action="version", version=f"openticket {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help(sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
