from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from openticket.domain.identity import (
    InvalidEmail,
    Role,
    User,
    UserDisabled,
    UserStatus,
    WeakPassword,
    check_password_policy,
    normalise_email,
)
from openticket.domain.shared import UserId, ValidationError


def make_user(now: datetime, **changes: Any) -> User:
    fields: dict[str, Any] = {
        "user_id": UserId(UUID(int=1)),
        "email": "ada@example.com",
        "display_name": "Ada",
        "password_hash": "$argon2id$...",
        "created_at": now,
    }
    fields.update(changes)
    return User(**fields)


def test_an_email_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Ada.Lovelace@Example.COM \n") == "ada.lovelace@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "ada@@example.com",
        "ada@exa mple.com",
        "ada lovelace@example.com",
        "ada@example.",
        "ada@.example.com",
        "a" * 65 + "@example.com",
        "ada@" + "e" * 250 + ".com",
        None,
    ],
)
def test_addresses_we_cannot_accept_are_refused(email: Any) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(email)


@pytest.mark.parametrize(
    "password", ["x" * 8, "x" * 128, "correct horse battery staple", "密碼密碼密碼密碼"]
)
def test_passwords_of_8_to_128_characters_are_accepted(password: str) -> None:
    check_password_policy(password)


@pytest.mark.parametrize("password", ["", "x" * 7, "x" * 129, None, 12345678])
def test_passwords_outside_the_policy_are_refused(password: Any) -> None:
    with pytest.raises(WeakPassword):
        check_password_policy(password)


def test_a_new_user_is_an_active_buyer_with_a_normalised_email(now: datetime) -> None:
    user = make_user(now, email=" Ada@Example.com", display_name="  Ada  ")
    assert user.email == "ada@example.com"
    assert user.display_name == "Ada"
    assert user.roles == frozenset({Role.BUYER})
    assert user.status is UserStatus.ACTIVE
    user.ensure_active()


def test_granting_a_role_keeps_the_others(now: datetime) -> None:
    user = make_user(now)
    user.grant(Role.ORGANIZER)
    assert user.roles == frozenset({Role.BUYER, Role.ORGANIZER})
    assert user.has_role(Role.ORGANIZER, Role.ADMIN)
    assert not user.has_role(Role.STAFF, Role.ADMIN)


def test_roles_may_be_given_by_name(now: datetime) -> None:
    assert make_user(now, roles=["staff", Role.ADMIN]).roles == frozenset({Role.STAFF, Role.ADMIN})


def test_roles_may_come_from_any_iterable(now: datetime) -> None:
    names = ("organizer", "staff")
    assert make_user(now, roles=(n for n in names)).roles == frozenset({Role.ORGANIZER, Role.STAFF})


@pytest.mark.parametrize(
    "roles", [[], ["superuser"], "buyer"], ids=["none", "unknown", "one-string"]
)
def test_roles_must_be_known_and_at_least_one(now: datetime, roles: Any) -> None:
    with pytest.raises(ValidationError):
        make_user(now, roles=roles)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_display_name_has_1_to_100_characters(now: datetime, name: str) -> None:
    with pytest.raises(ValidationError):
        make_user(now, display_name=name)


def test_a_disabled_user_may_not_sign_in(now: datetime) -> None:
    user = make_user(now)
    user.disable()
    with pytest.raises(UserDisabled):
        user.ensure_active()


def test_a_new_password_hash_replaces_the_old_one(now: datetime) -> None:
    user = make_user(now)
    user.change_password_hash("$argon2id$new")
    assert user.password_hash == "$argon2id$new"
