"""Who is calling: bearer tokens checked by guards, before any body is read."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from openticket.application.access import Requester
from openticket.application.errors import Forbidden
from openticket.application.identity.service import IdentityService
from openticket.application.ports.identity import InvalidToken
from openticket.domain.identity import Role

REQUESTER = "openticket.requester"
IDENTITY = "identity"
TICKETS = "tickets"
METRICS = "metrics"
POLICY = "http_policy"
"""The app state's key of the ``HttpPolicy``."""


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def identify(connection: ASGIConnection[Any, Any, Any, Any], token: str | None) -> Requester:
    """The requester behind ``token``; ``InvalidToken`` (401) for none or a bad one."""
    if token is None:
        raise InvalidToken("this needs a bearer token")
    identity: IdentityService = connection.app.state[IDENTITY]
    requester = identity.authenticate(token)
    connection.scope[REQUESTER] = requester  # type: ignore[literal-required]  # our own key
    return requester


async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: any signed-in user.

    Guards are coroutines: Litestar runs a plain function guard in a worker thread, and
    the hop there and back costs more than checking the token's signature here.
    """
    identify(connection, bearer_token(connection))


def role_guard(*roles: Role) -> Any:
    """Guard: a signed-in user with one of ``roles`` (admins always pass)."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        requester = identify(connection, bearer_token(connection))
        if not requester.is_admin and not requester.has_role(*roles):
            raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}")

    return guard


async def provide_requester(request: ASGIConnection[Any, Any, Any, Any]) -> Requester:
    """Dependency: the requester a guard identified."""
    requester = request.scope.get(REQUESTER)
    if not isinstance(requester, Requester):
        return identify(request, bearer_token(request))
    return requester
