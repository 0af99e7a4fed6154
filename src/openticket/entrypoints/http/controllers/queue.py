"""The waiting room of a session sold through a queue (api.md, "Waiting room")."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter

from openticket.application.access import Requester
from openticket.application.errors import NotFound
from openticket.application.facade import OpenTicket
from openticket.application.gate.waiting_room import WaitingRoom
from openticket.domain.identity import Role
from openticket.domain.shared import SessionId
from openticket.entrypoints.http.auth import POLICY, provide_requester, role_guard
from openticket.entrypoints.http.openapi import READ, SIGNED_IN, problems
from openticket.entrypoints.http.proxies import client_of
from openticket.entrypoints.http.schemas import QueueOut, queue_out


def _gate(tickets: OpenTicket) -> WaitingRoom:
    if tickets.gate is None:
        raise NotFound("this server runs no waiting room")
    return tickets.gate


class QueueController(Controller):
    """Join a session's waiting room and watch the entry."""

    path = "/api/sessions/{session_id:uuid}/queue"
    tags = ["waiting room"]
    guards = [role_guard(Role.BUYER)]
    security = SIGNED_IN
    dependencies = {"requester": Provide(provide_requester)}

    @post(
        "/",
        status_code=201,
        summary="Join a session's waiting room",
        operation_id="joinQueue",
        responses=problems(*READ, 401, 403, 404, 409, 422, 503),
    )
    async def join(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
        challenge_token: Annotated[
            str | None, HeaderParameter(name="X-Challenge-Token", required=False, max_length=4096)
        ] = None,
    ) -> QueueOut:
        """The buyer's entry; joining again answers the same entry (idempotent).

        Before the sale starts the entry is in the pre-queue: ``position`` is null and
        ``draw_at`` says when the draw puts the pre-queue in a random order. Once
        admitted, ``admission_token`` is what ``POST /api/orders`` needs in
        ``X-Admission-Token``. 409 ``queue_not_enabled`` for a session sold without a
        queue, 422 ``sale_not_open`` after the sale. A join that looks scripted (by its
        pace, its address, its device: ``X-Device-Id``) is taken at the back of the queue.
        A session with ``challenge_required`` needs a solved Cloudflare Turnstile token in
        ``X-Challenge-Token`` for a first join (403 ``challenge_failed``; 503 when the
        check cannot be made: retry with the same token).
        """
        client = client_of(request, count_loopback=request.app.state[POLICY].limit_loopback)
        gate = _gate(tickets)
        entry = await gate.join(requester, SessionId(session_id), client, challenge_token)
        return queue_out(entry)

    @get(
        "/{queue_id:uuid}",
        summary="A buyer's entry in a session's waiting room",
        operation_id="readQueueEntry",
        responses=problems(*READ, 401, 403, 404, 409),
    )
    async def read(
        self,
        session_id: FromPath[UUID],
        queue_id: FromPath[UUID],
        tickets: NamedDependency[OpenTicket],
        requester: NamedDependency[Requester],
    ) -> QueueOut:
        """The same shape as the join; 404 for another buyer's entry."""
        entry = await _gate(tickets).entry(requester, SessionId(session_id), queue_id)
        return queue_out(entry)
