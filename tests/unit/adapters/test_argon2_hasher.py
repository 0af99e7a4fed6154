"""Argon2PasswordHasher: argon2id at OWASP strength, no false matches, rehash on weak hashes."""

from __future__ import annotations

import asyncio
import re

import argon2
import pytest

from openticket.adapters.identity import Argon2PasswordHasher

PASSWORD = "correct horse battery staple"

_PHC = re.compile(
    r"^\$(?P<type>argon2(?:id|i|d))\$v=(?P<v>\d+)\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$"
)


def parameters(password_hash: str) -> dict[str, str]:
    """The type, version and cost parameters from a PHC-format argon2 hash."""
    match = _PHC.match(password_hash)
    assert match is not None, password_hash
    return match.groupdict()


@pytest.fixture
def hasher() -> Argon2PasswordHasher:
    return Argon2PasswordHasher()


async def test_stored_hashes_are_argon2id_with_at_least_19_mib_and_two_passes(
    hasher: Argon2PasswordHasher,
) -> None:
    found = parameters(await hasher.hash(PASSWORD))
    assert found["type"] == "argon2id"
    assert found["v"] == "19"
    assert int(found["m"]) >= 19_456
    assert int(found["t"]) >= 2
    assert int(found["p"]) >= 1


async def test_stronger_parameters_are_used_when_configured() -> None:
    hasher = Argon2PasswordHasher(memory_cost=32_768, time_cost=3, parallelism=2)
    found = parameters(await hasher.hash(PASSWORD))
    assert (found["type"], found["m"], found["t"], found["p"]) == ("argon2id", "32768", "3", "2")


@pytest.mark.parametrize(
    "weaker",
    [
        {"memory_cost": 19_455},
        {"memory_cost": 4_096},
        {"time_cost": 1},
        {"parallelism": 0},
        {"memory_cost": 65_536, "time_cost": 1},
    ],
)
def test_parameters_below_the_floor_are_refused(weaker: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least"):
        Argon2PasswordHasher(**weaker)


async def test_verify_accepts_the_password_and_refuses_others(
    hasher: Argon2PasswordHasher,
) -> None:
    password_hash = await hasher.hash(PASSWORD)
    assert await hasher.verify(password_hash, PASSWORD) is True
    assert await hasher.verify(password_hash, "correct horse battery stapler") is False
    assert await hasher.verify(password_hash, "") is False


async def test_a_hash_made_elsewhere_with_other_argon2_parameters_still_verifies(
    hasher: Argon2PasswordHasher,
) -> None:
    older = argon2.PasswordHasher(memory_cost=8_192, time_cost=1, parallelism=1).hash(PASSWORD)
    assert await hasher.verify(older, PASSWORD) is True
    assert await hasher.verify(older, "wrong password") is False


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "garbage",
        "$argon2id$",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",  # well-formed but not a real hash
        "$argon2id$v=19$m=0,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!not-base64!!!$!!!",
        "pbkdf2$1000$c2FsdA==$ZGlnZXN0",  # the memory hasher's format
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        PASSWORD,  # a plaintext "hash" must not match its own text
    ],
)
async def test_malformed_or_foreign_hashes_never_match_and_never_raise(
    hasher: Argon2PasswordHasher, malformed: str
) -> None:
    assert await hasher.verify(malformed, PASSWORD) is False
    assert hasher.needs_rehash(malformed) is True


async def test_a_password_that_cannot_be_encoded_does_not_match(
    hasher: Argon2PasswordHasher,
) -> None:
    password_hash = await hasher.hash(PASSWORD)
    assert await hasher.verify(password_hash, "lone surrogate \ud800") is False


async def test_a_fresh_hash_needs_no_rehash(hasher: Argon2PasswordHasher) -> None:
    assert hasher.needs_rehash(await hasher.hash(PASSWORD)) is False


@pytest.mark.parametrize(
    ("memory_cost", "time_cost", "parallelism"),
    [(8_192, 2, 1), (19_456, 1, 1), (4_096, 1, 1)],
)
def test_a_hash_with_weaker_parameters_needs_rehash(
    hasher: Argon2PasswordHasher, memory_cost: int, time_cost: int, parallelism: int
) -> None:
    weaker = argon2.PasswordHasher(
        memory_cost=memory_cost, time_cost=time_cost, parallelism=parallelism
    ).hash(PASSWORD)
    assert hasher.needs_rehash(weaker) is True


async def test_a_hash_needs_rehash_once_the_parameters_are_raised() -> None:
    old_hash = await Argon2PasswordHasher().hash(PASSWORD)
    stronger = Argon2PasswordHasher(memory_cost=32_768, time_cost=3)
    assert stronger.needs_rehash(old_hash) is True
    assert await stronger.verify(old_hash, PASSWORD) is True  # so login can rehash it
    assert stronger.needs_rehash(await stronger.hash(PASSWORD)) is False


async def test_an_argon2i_hash_needs_rehash_to_argon2id(hasher: Argon2PasswordHasher) -> None:
    argon2i = argon2.PasswordHasher(
        memory_cost=19_456, time_cost=2, parallelism=1, type=argon2.Type.I
    ).hash(PASSWORD)
    assert hasher.needs_rehash(argon2i) is True


async def test_the_unknown_user_stand_in_costs_what_a_real_hash_costs(
    hasher: Argon2PasswordHasher,
) -> None:
    real = await hasher.hash(PASSWORD)
    stand_in = hasher.unknown_user_hash
    assert parameters(stand_in) == parameters(real)
    assert hasher.needs_rehash(stand_in) is False
    assert await hasher.verify_unknown(PASSWORD) is None
    assert await hasher.verify(stand_in, PASSWORD) is False


async def test_the_stand_in_follows_configured_parameters() -> None:
    stronger = Argon2PasswordHasher(memory_cost=32_768, time_cost=3, parallelism=2)
    assert parameters(stronger.unknown_user_hash) == parameters(await stronger.hash(PASSWORD))
    assert parameters(stronger.unknown_user_hash)["m"] == "32768"


async def test_two_hashers_do_not_share_a_stand_in() -> None:
    assert Argon2PasswordHasher().unknown_user_hash != Argon2PasswordHasher().unknown_user_hash


async def test_the_event_loop_keeps_serving_while_passwords_are_hashed(
    hasher: Argon2PasswordHasher,
) -> None:
    """Other requests make progress during a hash, a verify and an unknown-user verify."""
    password_hash = await hasher.hash(PASSWORD)
    for work in (
        hasher.hash(PASSWORD),
        hasher.verify(password_hash, PASSWORD),
        hasher.verify_unknown(PASSWORD),
    ):
        task = asyncio.ensure_future(work)
        turns = 0
        while not task.done():
            turns += 1
            await asyncio.sleep(0)
        await task
        # A call that held the loop would finish before this coroutine ran again.
        assert turns > 1
