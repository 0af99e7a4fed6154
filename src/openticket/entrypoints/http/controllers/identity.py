"""``/api/auth/*`` and ``/api/me``."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from openticket.application.access import Requester
from openticket.application.identity.service import IdentityService
from openticket.entrypoints.http.auth import authenticated, provide_requester
from openticket.entrypoints.http.openapi import INPUT, READ, SIGNED_IN, problems
from openticket.entrypoints.http.schemas import (
    RegisterBody,
    TokenBody,
    TokenOut,
    UserOut,
    user_out,
)


class AuthController(Controller):
    """Accounts and tokens."""

    path = "/api/auth"
    tags = ["identity"]
    # a token (or a new account) must not stay in any cache, HTTP/1.0 ones included
    response_headers = [
        ResponseHeader(name="Cache-Control", value="no-store"),
        ResponseHeader(name="Pragma", value="no-cache"),
    ]

    @post(
        "/register",
        status_code=201,
        summary="Register a buyer account",
        operation_id="register",
        responses=problems(*READ, *INPUT, 409, 422),
    )
    async def register(
        self, data: JSONBody[RegisterBody], identity: NamedDependency[IdentityService]
    ) -> UserOut:
        """A new buyer; 409 ``email_taken`` if the address is registered."""
        user = await identity.register(
            email=data.email, password=data.password, display_name=data.display_name
        )
        return user_out(user)

    @post(
        "/token",
        status_code=200,
        summary="Sign in for a bearer token",
        operation_id="signIn",
        responses=problems(*READ, *INPUT, 401, 403),
    )
    async def token(
        self, data: JSONBody[TokenBody], identity: NamedDependency[IdentityService]
    ) -> TokenOut:
        """A bearer token for the right e-mail and password; 401 otherwise."""
        issued = await identity.sign_in(data.email, data.password)
        return TokenOut(issued.access_token, "bearer", issued.expires_in)


class MeController(Controller):
    """The caller's own account."""

    path = "/api/me"
    tags = ["identity"]
    guards = [authenticated]
    security = SIGNED_IN
    dependencies = {"requester": Provide(provide_requester)}

    @get("/", summary="Who am I", operation_id="readMe", responses=problems(*READ, 401, 404))
    async def me(
        self, requester: NamedDependency[Requester], identity: NamedDependency[IdentityService]
    ) -> UserOut:
        """The caller's account."""
        return user_out(await identity.me(requester))
