"""``openticket users create``: an account with chosen roles, for a real deployment.

The first admin of a deployment is made here: accounts made over the API are buyers.
The password comes from a prompt (asked twice) on a terminal, or as one line on stdin
otherwise, and never from the command line, where other users of the machine could
read it in the process list.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Sequence
from typing import TextIO

from openticket.adapters.postgres import DatabaseUnreachable, MigrationError
from openticket.application.ports.errors import EmailTaken
from openticket.domain.identity import (
    InvalidEmail,
    Role,
    WeakPassword,
    check_password_policy,
    normalise_email,
)
from openticket.domain.shared import ValidationError
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.migrate import apply_migrations
from openticket.entrypoints.settings import Settings

PROG = "openticket users create"


class PasswordNotGiven(ValueError):
    """No usable password came from the prompt or stdin."""


def read_password(stdin: TextIO) -> str:
    """The new account's password: prompted twice on a terminal, else stdin's first line."""
    if stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("password again: ") != first:
            raise PasswordNotGiven("the two passwords differ; nothing was made")
        return first
    line = stdin.readline().rstrip("\r\n")
    if not line:
        raise PasswordNotGiven(
            "no password on stdin: give it as one line, e.g."
            " printf '%s\\n' \"$ADMIN_PASSWORD\" | openticket users create ..."
        )
    return line


async def create_user(
    settings: Settings,
    *,
    email: str,
    roles: Sequence[Role],
    display_name: str | None,
    stdin: TextIO,
) -> int:
    """Make the account; the exit code (2: bad input or settings, 1: not made)."""
    if settings.storage != "postgres":
        print(
            f"{PROG}: users made here live in PostgreSQL and the embedded profile keeps"
            " nothing: set OPENTICKET_DATABASE_URL (the embedded profile has demo accounts)",
            file=sys.stderr,
        )
        return 2
    try:
        address = normalise_email(email)
        password = read_password(stdin)
        check_password_policy(password)
    except (InvalidEmail, WeakPassword, PasswordNotGiven) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    try:
        await apply_migrations(settings.database_url, settings.database_schema or None, prefix=PROG)
    except (DatabaseUnreachable, MigrationError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    container = build_container(settings)
    database = container.postgres_database()
    try:
        await database.start()
        user = await container.identity().register(
            email=address,
            password=password,
            display_name=display_name or address.split("@", 1)[0],
            roles=roles,
        )
    except DatabaseUnreachable as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except EmailTaken:
        print(f"{PROG}: {address} has an account already; nothing was made", file=sys.stderr)
        return 1
    except ValidationError as e:  # a display name the domain refuses
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    finally:
        await database.stop()
    names = ", ".join(sorted(role.value for role in user.roles))
    print(f"{PROG}: made {user.email} (id {user.user_id}, roles {names})")
    print(
        "next: openticket serve (with the same OPENTICKET_DATABASE_URL), then sign in:"
        f" curl -s -X POST {settings.public_url.rstrip('/')}/api/auth/token"
        f' -H \'content-type: application/json\' -d \'{{"email": "{user.email}",'
        ' "password": "..."}\''
    )
    return 0
