"""Identity use cases: register, sign in, who am I — and turning a token into a requester."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from openticket.application.access import Requester
from openticket.application.errors import ApplicationError, NotFound
from openticket.application.ports.clock import Clock, IdGenerator
from openticket.application.ports.errors import EmailTaken
from openticket.application.ports.identity import AccessToken, PasswordHasher, TokenIssuer
from openticket.application.ports.unit_of_work import UnitOfWorkFactory
from openticket.domain.identity import (
    MAX_PASSWORD_LENGTH,
    Role,
    User,
    UserStatus,
    check_password_policy,
    email_to_find,
    is_typable_password,
    normalise_display_name,
    normalise_email,
)
from openticket.domain.shared import UserId


class InvalidCredentials(ApplicationError):
    """Wrong e-mail or password (which one is never said)."""

    code = "unauthorized"


class IdentityService:
    """Accounts and sign-in. Passwords are hashed by the ``PasswordHasher`` port."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._ids = ids

    async def register(
        self,
        *,
        email: str,
        password: str,
        display_name: str,
        roles: Iterable[Role] = (Role.BUYER,),
    ) -> User:
        """A new account; ``EmailTaken`` if the address is registered already.

        The address is stored normalised (``normalise_email``): a lookalike spelling of
        a registered address (fullwidth letters) is that address, so ``EmailTaken``.
        Everything is checked before the password is hashed or anything is read.
        """
        check_password_policy(password)
        address = normalise_email(email)
        name = normalise_display_name(display_name)
        async with self._uow() as uow:
            if await uow.users.get_by_email(address) is not None:
                raise EmailTaken(f"{address} is registered")
        user = User(
            user_id=UserId(self._ids.new_id()),
            email=address,
            display_name=name,
            password_hash=await self._hasher.hash(password),
            roles=frozenset(roles),
            created_at=self._clock.now(),
        )
        async with self._uow() as uow:
            await uow.users.add(user)
            await uow.commit()
        return user

    async def sign_in(self, email: str, password: str) -> AccessToken:
        """A bearer token for the right e-mail and password; ``InvalidCredentials`` otherwise.

        An unknown e-mail costs the same hashing time as a known one, so timing does
        not tell which addresses have accounts. The e-mail is normalised as at
        registration (a fullwidth spelling signs into the account it stands for); one
        that is no address, and a password no account can have (too long, control
        characters), are wrong credentials, refused before any lookup.
        """
        if len(password) > MAX_PASSWORD_LENGTH or not is_typable_password(password):
            raise InvalidCredentials("wrong e-mail or password")
        address = email_to_find(email)
        user = None
        if address is not None:
            async with self._uow() as uow:
                user = await uow.users.get_by_email(address)
        if user is None:
            await self._hasher.verify_unknown(password)
            raise InvalidCredentials("wrong e-mail or password")
        if not await self._hasher.verify(user.password_hash, password):
            raise InvalidCredentials("wrong e-mail or password")
        user.ensure_active()
        if self._hasher.needs_rehash(user.password_hash):
            await self._rehash(user, password)
        return self._tokens.issue(user)

    async def _rehash(self, user: User, password: str) -> None:
        user.change_password_hash(await self._hasher.hash(password))
        async with self._uow() as uow:
            await uow.users.save(user)
            await uow.commit()

    def authenticate(self, token: str) -> Requester:
        """The requester a bearer token speaks for (``InvalidToken`` if it speaks for none)."""
        requester, _ = self.authenticate_until(token)
        return requester

    def authenticate_until(self, token: str) -> tuple[Requester, datetime]:
        """The requester a bearer token speaks for and the moment it stops speaking for them.

        Whatever stays open on one token (a live feed) closes at that moment.
        """
        claims = self._tokens.verify(token)
        return Requester(claims.user_id, claims.roles), claims.expires_at

    async def me(self, by: Requester) -> User:
        """The caller's own account."""
        async with self._uow() as uow:
            user = await uow.users.get(by.user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def ensure_user(
        self, *, email: str, password: str, display_name: str, roles: Iterable[Role]
    ) -> User:
        """The account with this e-mail, created if it does not exist (demo data, admins)."""
        async with self._uow() as uow:
            existing = await uow.users.get_by_email(normalise_email(email))
        if existing is not None:
            return existing
        return await self.register(
            email=email, password=password, display_name=display_name, roles=roles
        )

    async def retire_known_password(self, email: str, known: Iterable[str]) -> User | None:
        """Disable the active account of ``email`` if one of the ``known`` passwords opens it.

        For accounts whose password was published (the demo's, printed by older releases
        on every start). The account is disabled, and its hash replaced by one of a random
        password nobody learns, so the published password now fails like any wrong one
        (401) instead of confirming itself with a 403. Returns the account it disabled, or
        None: no such account, disabled already, or opened by none of ``known``.
        """
        async with self._uow() as uow:
            user = await uow.users.get_by_email(normalise_email(email))
        if user is None or user.status is not UserStatus.ACTIVE:
            return None
        for password in dict.fromkeys(known):
            if await self._hasher.verify(user.password_hash, password):
                break
        else:
            return None
        user.disable()
        user.change_password_hash(await self._hasher.hash(secrets.token_urlsafe(32)))
        async with self._uow() as uow:
            await uow.users.save(user)
            await uow.commit()
        return user
