"""Identity context: users, their roles and status. Passwords are hashed outside."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

import attrs

from openticket.domain.shared import (
    Aggregate,
    DomainError,
    UserId,
    ValidationError,
    human_text,
    refused_character,
)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
MAX_EMAIL_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 100

_ASCII_WHITESPACE = " \t\n\r\f\v"
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


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
    """The one spelling of an address we store and look up; ``InvalidEmail`` if none.

    NFKC first, so compatibility lookalikes (fullwidth ``ａdmin``, the Kelvin sign, ligatures)
    become the letters they stand for, then trimmed and lower-cased. What is still not
    printable ASCII afterwards is refused: Cyrillic or Greek lookalikes, zero-width and
    bidi characters, controls, whitespace inside. International domains are given in
    their ASCII ``xn--`` form; internationalised local parts are not taken.
    """
    if not isinstance(email, str):
        raise InvalidEmail("an e-mail address must be a string")
    # only ASCII white space is trimmed (NFKC made other spaces ASCII): a C1 "next line"
    # or a line separator is a control inside the address, not around it
    normalised = unicodedata.normalize("NFKC", email).strip(_ASCII_WHITESPACE)
    if not (normalised.isascii() and normalised.isprintable()):
        raise InvalidEmail(
            f"{email!r} is not an e-mail address in ASCII "
            "(give an international domain in its xn-- form)"
        )
    normalised = normalised.lower()
    if len(normalised) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(normalised):
        raise InvalidEmail(f"{email!r} is not an e-mail address")
    return normalised


def email_to_find(email: object) -> str | None:
    """``email`` as ``normalise_email`` spells it, or None if it is no address (nobody has it)."""
    try:
        return normalise_email(email)
    except InvalidEmail:
        return None


def check_password_policy(password: object) -> None:
    """Passwords are 8-128 characters of text; anything else is refused before hashing.

    Any script is welcome (a passphrase in Chinese); what human text may not hold —
    controls, invisible format characters, lone surrogates (see ``refused_character``)
    — no keyboard types, so a password holding it is a mistake or a probe.
    """
    if not isinstance(password, str) or not (
        MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    ):
        raise WeakPassword(f"a password has {MIN_PASSWORD_LENGTH}-{MAX_PASSWORD_LENGTH} characters")
    if not is_typable_password(password):
        raise WeakPassword("a password may not hold control or invisible characters")


def is_typable_password(password: str) -> bool:
    """Whether ``password`` holds only characters human text may hold."""
    return refused_character(password) is None


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


def normalise_display_name(value: object) -> str:
    """A display name, trimmed: 1-100 characters of human text (see ``human_text``)."""
    # trimmed only once it is clean: a control at either end is refused, not trimmed away
    clean = isinstance(value, str) and refused_character(value) is None
    name = value.strip() if clean and isinstance(value, str) else value
    return human_text(name, "a display name", max_length=MAX_DISPLAY_NAME_LENGTH)


@attrs.define(kw_only=True)
class User(Aggregate):
    """Someone who buys, organizes, checks tickets or administers."""

    user_id: UserId
    email: str = attrs.field(converter=normalise_email)
    display_name: str = attrs.field(converter=normalise_display_name)
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
