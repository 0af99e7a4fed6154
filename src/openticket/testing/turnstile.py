"""A loopback Cloudflare Turnstile siteverify for the tests, in-process, standard library only.

``with TurnstileServer(secret="…") as server:`` serves on ``server.siteverify_url``
(``http://127.0.0.1:PORT/turnstile/v0/siteverify``, a free port) from a daemon thread.
The tests play the browser with :meth:`TurnstileServer.issue_token` (the token the
widget would hand the page) and point the adapter at the server.

It speaks siteverify's documented protocol:

* ``POST /turnstile/v0/siteverify`` with a form (``application/x-www-form-urlencoded``)
  or JSON body: ``secret``, ``response`` (the token), ``remoteip`` and
  ``idempotency_key`` optional. It answers 200 ``{"success", "error-codes",
  "messages"}``, on success with ``challenge_ts``, ``hostname``, ``action`` and
  ``cdata``; a body that is neither answers 400 ``bad-request``.
* Error codes: ``missing-input-secret``, ``invalid-input-secret`` (not the server's
  secret nor a test secret), ``missing-input-response``, ``invalid-input-response`` (a
  token it did not issue, or longer than 2048 characters), ``timeout-or-duplicate`` (a
  token used before, or issued more than 300 seconds ago).
* A token succeeds once. Verified again with the idempotency key of its first
  successful verification, it answers that success again; otherwise
  ``timeout-or-duplicate``.
* Cloudflare's test secrets take any token: ``1x…AA`` passes, ``2x…AA`` fails with
  ``invalid-input-response``, ``3x…AA`` answers ``timeout-or-duplicate``.
* Anything else answers 404.

Tests look at and steer it: :attr:`TurnstileServer.calls` (the fields of every
siteverify call), :meth:`TurnstileServer.answer_next` (a canned answer, such as a 500
or Cloudflare's ``internal-error``), :meth:`TurnstileServer.delay_next`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

SITEVERIFY_PATH = "/turnstile/v0/siteverify"
TOKEN_LIFETIME = timedelta(seconds=300)
MAX_TOKEN_LENGTH = 2048
TEST_SECRET_PASSES = "1x0000000000000000000000000000000AA"  # noqa: S105  # published test key
TEST_SECRET_FAILS = "2x0000000000000000000000000000000AA"  # noqa: S105  # published test key
TEST_SECRET_SPENT = "3x0000000000000000000000000000000AA"  # noqa: S105  # published test key
DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"  # noqa: S105  # published test token
"""What Cloudflare's test site keys hand the page (the test secrets accept any token)."""


@dataclass
class _Token:
    """One token the server issued, and what became of it."""

    hostname: str
    action: str
    cdata: str
    issued_at: datetime
    answer: dict[str, Any] | None = None
    """The success it answered the first time, once verified."""
    idempotency_key: str | None = None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class _Canned:
    status: int
    body: bytes
    content_type: str


class TurnstileServer:
    """The loopback siteverify; see the module's documentation for the protocol.

    ``now`` is the server's clock (for the tokens' 300 seconds); tokens issued with an
    earlier ``issued_at`` are as old as that.
    """

    def __init__(
        self,
        secret: str = "0x4AAAAAAAloopbackTurnstileSecret",  # noqa: S107  # the tests' own
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secret = secret
        self._now = now
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tokens: dict[str, _Token] = {}
        self._calls: list[dict[str, str]] = []
        self._canned: list[_Canned] = []
        self._delays: list[float] = []
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> TurnstileServer:
        """Listen on a free port of 127.0.0.1 and serve from a daemon thread."""
        if self._listener is not None:
            raise RuntimeError("the Turnstile test server is already running")
        self._stopping.clear()
        self._listener = _Listener(self)
        host, port = self._listener.server_address[:2]
        self._base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._listener.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="turnstile-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: open connections are cut, delayed answers dropped."""
        listener, thread = self._listener, self._thread
        if listener is None or thread is None:
            return
        listener.shutdown()
        listener.close_connections()
        self._stopping.set()
        listener.server_close()
        thread.join()
        self._listener = self._thread = None

    def __enter__(self) -> TurnstileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (still known after :meth:`stop`)."""
        if self._base_url is None:
            raise RuntimeError("the Turnstile test server has not been started")
        return self._base_url

    @property
    def siteverify_url(self) -> str:
        """The URL to give the adapter."""
        return self.base_url + SITEVERIFY_PATH

    # -- what tests do, look at and steer ---------------------------------------------------

    def issue_token(
        self,
        *,
        action: str = "",
        hostname: str = "localhost",
        cdata: str = "",
        issued_at: datetime | None = None,
    ) -> str:
        """A token as the widget hands it to the page once the visitor passed."""
        token = "0." + secrets.token_urlsafe(384)
        with self._lock:
            self._tokens[token] = _Token(
                hostname=hostname,
                action=action,
                cdata=cdata,
                issued_at=issued_at if issued_at is not None else self._now(),
            )
        return token

    @property
    def calls(self) -> list[dict[str, str]]:
        """The fields of every siteverify call so far (``secret``, ``response``, …), in order."""
        with self._lock:
            return [dict(call) for call in self._calls]

    def answer_next(
        self, status: int, body: bytes | dict[str, Any], *, content_type: str = "application/json"
    ) -> None:
        """Answer the next siteverify call with ``status`` and ``body``, without looking at it."""
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        with self._lock:
            self._canned.append(_Canned(status, raw, content_type))

    def delay_next(self, seconds: float) -> None:
        """Make the next siteverify call answer ``seconds`` late (its effect is at once)."""
        with self._lock:
            self._delays.append(seconds)

    # -- serving (called by the request handler's threads) ----------------------------------

    def _answer(self, method: str, path: str, content_type: str, body: bytes) -> _Reply:
        if method != "POST" or path != SITEVERIFY_PATH:
            return _json(404, {"success": False, "error-codes": ["not-found"]})
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0.0
            canned = self._canned.pop(0) if self._canned else None
            fields = _fields(content_type, body)
            self._calls.append(fields if fields is not None else {})
            if canned is not None:
                reply = _Reply(canned.status, canned.body, canned.content_type)
            elif fields is None:
                reply = _json(400, _failure("bad-request"))
            else:
                reply = _json(200, self._verify(fields))
        if delay:
            self._stopping.wait(delay)
        return reply

    def _verify(self, fields: dict[str, str]) -> dict[str, Any]:
        secret, token = fields.get("secret", ""), fields.get("response", "")
        if not secret:
            return _failure("missing-input-secret")
        if secret not in (self.secret, TEST_SECRET_PASSES, TEST_SECRET_FAILS, TEST_SECRET_SPENT):
            return _failure("invalid-input-secret")
        if not token:
            return _failure("missing-input-response")
        now = self._now()
        if secret == TEST_SECRET_PASSES:
            return _success(now, "example.com", "", "")
        if secret == TEST_SECRET_FAILS:
            return _failure("invalid-input-response")
        if secret == TEST_SECRET_SPENT:
            return _failure("timeout-or-duplicate")
        issued = self._tokens.get(token) if len(token) <= MAX_TOKEN_LENGTH else None
        if issued is None:
            return _failure("invalid-input-response")
        key = fields.get("idempotency_key") or None
        if issued.answer is not None:
            if key is not None and key == issued.idempotency_key:
                return issued.answer
            return _failure("timeout-or-duplicate")
        if now - issued.issued_at > TOKEN_LIFETIME:
            return _failure("timeout-or-duplicate")
        issued.answer = _success(now, issued.hostname, issued.action, issued.cdata)
        issued.idempotency_key = key
        return issued.answer


class _Listener(ThreadingHTTPServer):
    """The HTTP server; it keeps its connections, so that ``stop()`` can cut them."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, app: TurnstileServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open (keep-alive or in-flight) connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (or a connection ``stop()`` cut) is no error."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError) or (
            isinstance(error, OSError) and self.app._stopping.is_set()
        ):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 plumbing: read the request, let the server answer, write the reply."""

    protocol_version = "HTTP/1.1"
    server: _Listener

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read :attr:`TurnstileServer.calls` instead."""

    def _dispatch(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        reply = self.server.app._answer(self.command, path, self.headers.get_content_type(), body)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


# -- helpers --------------------------------------------------------------------------------


def _fields(content_type: str, body: bytes) -> dict[str, str] | None:
    """The call's fields from a form or JSON body; ``None`` if it is neither."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if content_type == "application/x-www-form-urlencoded":
        return {name: values[-1] for name, values in parse_qs(text).items()}
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return {name: value for name, value in data.items() if isinstance(value, str)}
    return None


def _failure(code: str) -> dict[str, Any]:
    return {"success": False, "error-codes": [code], "messages": []}


def _success(now: datetime, hostname: str, action: str, cdata: str) -> dict[str, Any]:
    return {
        "success": True,
        "error-codes": [],
        "challenge_ts": now.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "hostname": hostname,
        "action": action,
        "cdata": cdata,
        "messages": [],
    }


def _json(status: int, answer: dict[str, Any]) -> _Reply:
    return _Reply(status, json.dumps(answer, separators=(",", ":")).encode())
