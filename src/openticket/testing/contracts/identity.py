"""Contracts of the identity ports: password hashing and access tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.clock import Clock
from openticket.application.ports.identity import InvalidToken, PasswordHasher, TokenIssuer
from openticket.domain.identity import Role
from openticket.testing.contracts._builders import new_user

PASSWORD = "correct horse battery staple"  # noqa: S105 - the suite's sample password


class PasswordHasherContract:
    """What every ``PasswordHasher`` must do. Subclasses define the fixture ``hasher``."""

    async def test_a_hash_does_not_contain_the_password(self, hasher: PasswordHasher) -> None:
        """What is stored gives the password away to nobody who reads it."""
        password_hash = await hasher.hash(PASSWORD)
        assert password_hash != PASSWORD
        assert PASSWORD not in password_hash

    async def test_verify_accepts_the_right_password_only(self, hasher: PasswordHasher) -> None:
        """The password verifies; near misses do not."""
        password_hash = await hasher.hash(PASSWORD)
        assert await hasher.verify(password_hash, PASSWORD) is True
        for wrong in (PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1], ""):
            assert await hasher.verify(password_hash, wrong) is False, repr(wrong)

    async def test_non_ascii_passwords_verify(self, hasher: PasswordHasher) -> None:
        """Passwords are text, not bytes of one encoding."""
        password = "pässwörd-チケット-🎟"  # noqa: S105 - a sample password
        password_hash = await hasher.hash(password)
        assert await hasher.verify(password_hash, password) is True
        for wrong in ("pässwörd-チケット-🎫", "pässwörd-チケツト-🎟", "pässwörd-チケット-"):
            assert await hasher.verify(password_hash, wrong) is False, wrong

    async def test_two_hashes_of_one_password_differ(self, hasher: PasswordHasher) -> None:
        """Every hash has its own salt; both still verify."""
        first, second = await hasher.hash(PASSWORD), await hasher.hash(PASSWORD)
        assert first != second
        assert await hasher.verify(first, PASSWORD) is True
        assert await hasher.verify(second, PASSWORD) is True

    async def test_verify_unknown_spends_the_time_and_returns_nothing(
        self, hasher: PasswordHasher
    ) -> None:
        """The stand-in for an unknown user completes and answers ``None``."""
        verify_unknown: Callable[[str], Awaitable[object]] = hasher.verify_unknown
        assert await verify_unknown(PASSWORD) is None

    async def test_a_fresh_hash_needs_no_rehash(self, hasher: PasswordHasher) -> None:
        """Today's parameters are not weaker than today's parameters."""
        assert hasher.needs_rehash(await hasher.hash(PASSWORD)) is False


class TokenIssuerContract:
    """What every ``TokenIssuer`` must do.

    Subclasses define the fixture ``token_issuer``, built with the ``clock`` fixture
    (default: a ``FakeClock``); one that checks expiry against real time overrides
    ``clock`` and :meth:`pass_time`, and should issue short-lived tokens (a few
    seconds: a JWT's ``exp`` has whole seconds, so give it at least 3).
    """

    @pytest.fixture
    def clock(self) -> Clock:
        """The clock the issuer is built with (default: a ``FakeClock``)."""
        return FakeClock()

    async def pass_time(self, clock: Clock, seconds: float) -> None:
        """Let ``seconds`` pass for the issuer. Override for an issuer that uses real time."""
        if not isinstance(clock, FakeClock):
            raise TypeError("override pass_time() when the clock is not a FakeClock")
        clock.advance(seconds)

    async def test_verify_gives_back_who_the_token_speaks_for(
        self, token_issuer: TokenIssuer, clock: Clock
    ) -> None:
        """The user's id and roles, and an expiry ``expires_in`` seconds from issue."""
        user = new_user(roles=(Role.BUYER, Role.ORGANIZER))
        other = new_user()
        issued_at = clock.now()
        token = token_issuer.issue(user)
        assert token.token_type == "bearer"  # noqa: S105 - a token kind, not a secret
        assert token.expires_in > 0
        claims = token_issuer.verify(token.access_token)
        assert claims.user_id == user.user_id
        assert claims.roles == frozenset({Role.BUYER, Role.ORGANIZER})
        lives = (claims.expires_at - issued_at).total_seconds()
        assert token.expires_in - 1 <= lives <= token.expires_in + 1

        other_token = token_issuer.issue(other)
        assert other_token.access_token != token.access_token
        other_claims = token_issuer.verify(other_token.access_token)
        assert other_claims.user_id == other.user_id
        assert other_claims.roles == frozenset({Role.BUYER})

    async def test_a_tampered_token_is_invalid(self, token_issuer: TokenIssuer) -> None:
        """Changing any one character (start, middle, near the end) breaks the token."""
        token = token_issuer.issue(new_user()).access_token
        for position in (0, len(token) // 3, len(token) // 2, 2 * len(token) // 3, len(token) - 2):
            original = token[position]
            replacement = "A" if original != "A" else "B"
            tampered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(InvalidToken):
                token_issuer.verify(tampered)

    async def test_an_expired_token_is_invalid(
        self, token_issuer: TokenIssuer, clock: Clock
    ) -> None:
        """Valid through most of its life, refused once ``expires_in`` has passed."""
        token = token_issuer.issue(new_user())
        await self.pass_time(clock, token.expires_in / 2)
        token_issuer.verify(token.access_token)
        await self.pass_time(clock, token.expires_in / 2 + 1)
        with pytest.raises(InvalidToken):
            token_issuer.verify(token.access_token)

    async def test_garbage_is_invalid(self, token_issuer: TokenIssuer) -> None:
        """Anything that is not a token this issuer made raises ``InvalidToken``."""
        token = token_issuer.issue(new_user()).access_token
        for garbage in ("", "garbage", "a.b.c", "...", f"Bearer {token}", token + "A", token[:-4]):
            with pytest.raises(InvalidToken):
                token_issuer.verify(garbage)
