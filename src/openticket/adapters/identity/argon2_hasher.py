"""Password hashes with argon2id (argon2-cffi), computed off the event loop."""

from __future__ import annotations

import asyncio
import secrets

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

MIN_MEMORY_COST_KIB = 19_456
"""19 MiB: the OWASP floor for argon2id (with t=2, p=1)."""
MIN_TIME_COST = 2
MIN_PARALLELISM = 1


class Argon2PasswordHasher:
    """A ``PasswordHasher``: argon2id, at least m=19 MiB, t=2, p=1.

    One hash or verify costs tens of milliseconds of CPU, so both run in a worker
    thread: the event loop keeps serving other requests meanwhile.
    """

    def __init__(
        self,
        *,
        memory_cost: int = MIN_MEMORY_COST_KIB,
        time_cost: int = MIN_TIME_COST,
        parallelism: int = MIN_PARALLELISM,
    ) -> None:
        """Configure the parameters (``memory_cost`` in KiB); weaker than the floor is refused.

        Raises ``ValueError`` when a parameter is below m=19456 KiB, t=2 or p=1.
        """
        if memory_cost < MIN_MEMORY_COST_KIB:
            raise ValueError(f"argon2 memory_cost must be at least {MIN_MEMORY_COST_KIB} KiB")
        if time_cost < MIN_TIME_COST:
            raise ValueError(f"argon2 time_cost must be at least {MIN_TIME_COST}")
        if parallelism < MIN_PARALLELISM:
            raise ValueError(f"argon2 parallelism must be at least {MIN_PARALLELISM}")
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # Made once, with today's parameters, so that verify_unknown costs what a real verify does.
        self._unknown_user_hash = self._argon2.hash(secrets.token_urlsafe(32))

    @property
    def unknown_user_hash(self) -> str:
        """The stand-in hash ``verify_unknown`` checks against (of a random, forgotten password)."""
        return self._unknown_user_hash

    async def hash(self, password: str) -> str:
        """A new argon2id hash of ``password`` with a fresh salt, in PHC string form."""
        return await asyncio.to_thread(self._argon2.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; a malformed or foreign hash never matches."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    async def verify_unknown(self, password: str) -> None:
        """Spend one verify's time for a user that does not exist (the answer is dropped)."""
        await asyncio.to_thread(self._verify, self._unknown_user_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than today's (or is not argon2)."""
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        except UnicodeEncodeError:
            # A lone surrogate cannot be UTF-8 encoded, so no stored hash can be of it.
            return False
