"""Users in PostgreSQL."""

from __future__ import annotations

from typing import Any, Final, LiteralString

from openticket.adapters.postgres.executor import Executor, Row
from openticket.adapters.postgres.repositories.shared import Table, insert_versioned, save_versioned
from openticket.domain.identity import Role, User, UserStatus, email_to_find
from openticket.domain.shared import UserId

USERS: Final = Table(
    "users",
    (
        "user_id",
        "email",
        "display_name",
        "password_hash",
        "roles",
        "status",
        "created_at",
        "version",
    ),
)

_INSERT: Final[LiteralString] = USERS.insert()
_BY_ID: Final[LiteralString] = USERS.select() + " WHERE user_id = %(user_id)s"
_BY_EMAIL: Final[LiteralString] = USERS.select() + " WHERE email = %(email)s"
_UPDATE: Final[LiteralString] = USERS.update(
    "email", "display_name", "password_hash", "roles", "status"
)


def _user(row: Row) -> User:
    return User(
        user_id=UserId(row.user_id),
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        roles=frozenset(Role(r) for r in row.roles),
        status=UserStatus(row.status),
        created_at=row.created_at,
        version=row.version,
    )


def _user_params(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "email": user.email,
        "display_name": user.display_name,
        "password_hash": user.password_hash,
        "roles": sorted(r.value for r in user.roles),
        "status": user.status.value,
        "created_at": user.created_at,
    }


class PostgresUserRepository:
    """Users in PostgreSQL; e-mails are unique (``EmailTaken``)."""

    def __init__(self, uow: Executor) -> None:
        self._uow = uow

    async def add(self, user: User) -> None:
        """Store a new user."""
        await insert_versioned(self._uow, USERS, user.user_id, user, _INSERT, _user_params(user))

    async def get(self, user_id: UserId) -> User | None:
        """The user with this id, if any."""
        row = await self._uow.fetch_one(_BY_ID, {"user_id": user_id})
        return None if row is None else _user(row)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this e-mail (compared normalised); None for what is no address."""
        address = email_to_find(email)
        if address is None:
            return None
        row = await self._uow.fetch_one(_BY_EMAIL, {"email": address})
        return None if row is None else _user(row)

    async def save(self, user: User) -> None:
        """Store changes to a loaded user."""
        await save_versioned(self._uow, USERS, user.user_id, user, _UPDATE, _user_params(user))
