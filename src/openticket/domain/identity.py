"""Identity context: users, their roles and status. Passwords are hashed outside."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import attrs

from openticket.domain.shared import Aggregate, DomainError, UserId, ValidationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 100

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


class Role(StrEnum):
    """What a user may do. Everybody who registers is a buyer."""

    BUYER = "buyer"
    ORGANIZER = "organizer"
    STAFF = "staff"
    ADMIN = "admin"


class UserStatus(StrEnum):
    """Whether a user may sign in."""

    ACTIVE = "active"
    DISABLED = "disabled"


class InvalidEmail(ValidationError):
    """Not an e-mail address we can accept."""

    code = "invalid_email"


class WeakPassword(ValidationError):
    """A password outside the accepted length."""

    code = "invalid_password"


class UserDisabled(DomainError):
    """The account may not sign in."""

    code = "user_disabled"


def normalise_email(email: object) -> str:
    """Trim and lower-case an address, and refuse what is not one."""
    if not isinstance(email, str):
        raise InvalidEmail("an e-mail address must be a string")
    normalised = email.strip().lower()
    if len(normalised) > MAX_EMAIL_LENGTH or not _EMAIL.match(normalised):
        raise InvalidEmail(f"{email!r} is not an e-mail address")
    return normalised


def check_password_policy(password: object) -> None:
    """Passwords are 8-128 characters; anything else is refused before hashing."""
    if not isinstance(password, str) or not (
        MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    ):
        raise WeakPassword(f"a password has {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters")


def _roles(value: Iterable[Role | str]) -> frozenset[Role]:
    if isinstance(value, str):
        raise ValidationError("roles must be a collection of roles, not one string")
    given = list(value)
    # an unknown role is bad input (a 422), not a ValueError from the enum
    unknown = [r for r in given if r not in Role.__members__.values()]
    if unknown:
        raise ValidationError(f"unknown roles: {', '.join(map(str, unknown))}")
    roles = frozenset(Role(r) for r in given)
    if not roles:
        raise ValidationError("a user has at least one role")
    return roles


def _display_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ValidationError(f"a display name has 1-{MAX_DISPLAY_NAME_LENGTH} characters")
    return name


@attrs.define(kw_only=True)
class User(Aggregate):
    """Someone who buys, organizes, checks tickets or administers."""

    user_id: UserId
    email: str = attrs.field(converter=normalise_email)
    display_name: str = attrs.field(converter=_display_name)
    password_hash: str
    roles: frozenset[Role] = attrs.field(converter=_roles, default=frozenset({Role.BUYER}))
    status: UserStatus = UserStatus.ACTIVE
    created_at: datetime

    def has_role(self, *roles: Role) -> bool:
        """Whether the user has any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def ensure_active(self) -> None:
        """Raise ``UserDisabled`` for an account that may not sign in."""
        if self.status is not UserStatus.ACTIVE:
            raise UserDisabled(f"user {self.user_id} is disabled")

    def grant(self, role: Role) -> None:
        """Give the user another role."""
        self.roles = self.roles | {role}

    def change_password_hash(self, password_hash: str) -> None:
        """Store a new hash (password change or a rehash with stronger parameters)."""
        self.password_hash = password_hash

    def disable(self) -> None:
        """Stop the user from signing in."""
        self.status = UserStatus.DISABLED
