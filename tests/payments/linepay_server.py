"""A loopback LINE Pay Online API v3 for the tests, in-process, standard library only.

``with LinePayServer(channel_id="1234567890", channel_secret="s3cr3t") as server:`` serves
on ``server.base_url`` (``http://127.0.0.1:PORT``, a free port) from a daemon thread.

It speaks LINE Pay's documented wire protocol, so that the real adapter can be tested:

* Every ``/v3`` call is authenticated by ``X-LINE-ChannelId``, ``X-LINE-Authorization-Nonce``
  and ``X-LINE-Authorization`` (see :func:`sign`); POSTs must be ``application/json``. A
  wrong channel, a missing nonce, a bad signature or a nonce seen before answer ``1106``.
* ``POST /v3/payments/request``, ``POST /v3/payments/<tx>/confirm``,
  ``POST /v3/payments/<tx>/refund`` and ``GET /v3/payments/requests/<tx>/check`` answer
  HTTP 200 ``{"returnCode", "returnMessage", "info"?}``. Transaction ids are 19-digit JSON
  numbers, above 2**53 on purpose: a client must keep them exact.
* The buyer's side, driven by the tests as a browser would: ``GET /pay/<tx>?action=approve``
  (or ``cancel``) redirects (302) to the confirm (cancel) URL with ``transactionId`` and
  ``orderId`` added to its query.
* Return codes: ``1106`` (authentication, any call); request: ``2102`` bad JSON, ``2101``
  fields missing or amounts not adding up, ``1178`` currency, ``1183`` amount <= 0,
  ``1172`` orderId used; confirm: ``1150`` unknown, ``1152`` confirmed before, ``1169``
  not approved, ``1180`` cancelled or expired, ``1281`` declined, ``1153`` other amount or
  currency; refund: ``1150``, ``1155`` not confirmed, ``1165`` nothing left, ``1164`` more
  than is left; check: ``0000`` reserved, ``0110`` authorized, ``0121`` cancelled or
  expired, ``0122`` failed, ``0123`` confirmed (refunded or not), ``1150``.
* Anything else answers HTTP 404 ``{"returnCode": "9000", "returnMessage": "not found"}``.

Tests look at and steer the server in-process: :attr:`LinePayServer.transactions`,
:attr:`LinePayServer.calls`, :meth:`LinePayServer.delay_next`,
:meth:`LinePayServer.fail_next`, :meth:`LinePayServer.expire`, :meth:`LinePayServer.decline`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.message import Message
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, NoReturn, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

Amount = int | Decimal
_T = TypeVar("_T")

CURRENCIES = frozenset({"TWD", "USD", "THB", "JPY"})
FIRST_TRANSACTION_ID = 2026120200000000001

MESSAGES = {
    "0000": "Success.",
    "0110": "Finished the LINE Pay authentication. Can proceed to Confirm API.",
    "0121": "Canceled by the user or exceeded the time limit for LINE Pay authentication.",
    "0122": "Payment failed.",
    "0123": "Payment completed.",
    "1106": "Header information error.",
    "1150": "Transaction record not found.",
    "1152": "There is a history of transactions with the same transactionId.",
    "1153": "The requested amount and the real payment amount are different.",
    "1155": "The transaction is not eligible for refund.",
    "1164": "Exceeded refundable amount.",
    "1165": "The transaction has already been refunded.",
    "1169": "The payment method and password must be verified by LINE Pay.",
    "1172": "There is a record of transactions with the same order number.",
    "1178": "The currency is not supported by the merchant.",
    "1180": "The payment has expired.",
    "1183": "The payment amount must be greater than 0.",
    "1281": "An error occurred during credit card payment.",
    "2101": "Parameter error.",
    "2102": "JSON data format error.",
    "9000": "Internal error.",
}
"""returnMessage for each returnCode the server gives (``fail_next`` may ask for others)."""

CHECK_CODES = {
    "reserved": "0000",
    "authorized": "0110",
    "cancelled": "0121",
    "expired": "0121",
    "failed": "0122",
    "confirmed": "0123",
    "refunded": "0123",
}
"""What ``GET /v3/payments/requests/<tx>/check`` answers for each status."""

_CONFIRM = re.compile(r"/v3/payments/([^/]+)/confirm")
_REFUND = re.compile(r"/v3/payments/([^/]+)/refund")
_CHECK = re.compile(r"/v3/payments/requests/([^/]+)/check")
_PAY = re.compile(r"/pay/([^/]+)")


def sign(secret: str, path: str, payload: str, nonce: str) -> str:
    """LINE Pay v3's ``X-LINE-Authorization``.

    ``base64(HMAC-SHA256(secret, secret + path + payload + nonce))``, where ``payload`` is
    the request body for a POST and the query string without ``?`` (maybe empty) for a GET.
    """
    message = (secret + path + payload + nonce).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass
class Transaction:
    """One payment at the server, from the request to its refunds."""

    transaction_id: int
    order_id: str
    amount: Amount
    currency: str
    confirm_url: str
    cancel_url: str
    status: str = "reserved"
    """reserved → authorized | cancelled | expired | failed; authorized → confirmed
    (→ refunded once nothing is left)."""
    confirm_calls: int = 0
    refunds: list[Amount] = field(default_factory=list)

    @property
    def remaining(self) -> Amount:
        """What is left to refund."""
        return self.amount - sum(self.refunds)

    def snapshot(self) -> dict[str, Any]:
        """The transaction as :attr:`LinePayServer.transactions` shows it."""
        return {
            "order_id": self.order_id,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "confirm_calls": self.confirm_calls,
            "refunds": list(self.refunds),
        }


class _Result(NamedTuple):
    """What a /v3 call answers: its returnCode, and info on success."""

    code: str
    info: dict[str, Any] | None = None
    message: str | None = None


@dataclass(frozen=True)
class _Reply:
    """An HTTP response, ready to send."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Delay:
    fragment: str
    seconds: float
    after_processing: bool


class LinePayServer:
    """The loopback LINE Pay server; see the module's documentation for the protocol."""

    def __init__(self, channel_id: str, channel_secret: str) -> None:
        self.channel_id = channel_id
        self.channel_secret = channel_secret
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(FIRST_TRANSACTION_ID)
        self._transactions: dict[str, Transaction] = {}
        self._order_ids: set[str] = set()
        self._nonces: set[str] = set()
        self._calls: list[tuple[str, str, str]] = []
        self._delays: list[_Delay] = []
        self._failures: list[tuple[str, str]] = []
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> LinePayServer:
        """Listen on a free port of 127.0.0.1 and serve from a daemon thread."""
        if self._listener is not None:
            raise RuntimeError("the LINE Pay test server is already running")
        self._stopping.clear()
        self._listener = _Listener(self)
        host, port = self._listener.server_address[:2]
        self._base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._listener.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="linepay-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: open connections are cut, answers held back by a delay are dropped."""
        listener, thread = self._listener, self._thread
        if listener is None or thread is None:
            return
        listener.shutdown()
        listener.close_connections()
        self._stopping.set()  # wakes delayed answers, whose connections are cut already
        listener.server_close()
        thread.join()
        self._listener = self._thread = None

    def __enter__(self) -> LinePayServer:
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
            raise RuntimeError("the LINE Pay test server has not been started")
        return self._base_url

    # -- what tests look at and steer --------------------------------------------------------

    @property
    def transactions(self) -> dict[str, dict[str, Any]]:
        """A snapshot, keyed by transaction id as a string.

        Each: ``order_id``, ``amount``, ``currency``, ``status``, ``confirm_calls`` (the
        authenticated, well-formed confirm calls for it, whatever they answered, but not
        those :meth:`fail_next` answered) and ``refunds`` (the amounts refunded, in order).
        """
        with self._lock:
            return {key: tx.snapshot() for key, tx in self._transactions.items()}

    @property
    def calls(self) -> list[tuple[str, str, str]]:
        """``(method, path, returnCode)`` of every /v3 call so far, in order."""
        with self._lock:
            return list(self._calls)

    def delay_next(
        self, path_fragment: str, seconds: float, *, after_processing: bool = True
    ) -> None:
        """Make the next /v3 call whose path contains ``path_fragment`` answer late.

        With ``after_processing`` (the default) the call takes effect at once and its
        answer leaves ``seconds`` later: what a client time-out after the work was done
        looks like. Otherwise the call waits ``seconds`` before anything happens.
        """
        with self._lock:
            self._delays.append(_Delay(path_fragment, seconds, after_processing))

    def fail_next(self, path_fragment: str, return_code: str) -> None:
        """Make the next authenticated /v3 call whose path contains ``path_fragment``
        answer ``return_code`` (4 characters), without any effect."""
        if len(return_code) != 4:
            raise ValueError(f"a returnCode has 4 characters, not {return_code!r}")
        with self._lock:
            self._failures.append((path_fragment, return_code))

    def expire(self, transaction_id: int | str) -> None:
        """The buyer's authorization ran out: ``expired`` (confirm 1180, check 0121)."""
        self._end_unpaid(transaction_id, "expired")

    def decline(self, transaction_id: int | str) -> None:
        """LINE Pay refused the payment: ``failed`` (confirm 1281, check 0122)."""
        self._end_unpaid(transaction_id, "failed")

    def _end_unpaid(self, transaction_id: int | str, status: str) -> None:
        with self._lock:
            tx = self._transactions[str(transaction_id)]
            if tx.status not in ("reserved", "authorized"):
                raise ValueError(f"transaction {transaction_id} is already {tx.status}")
            tx.status = status

    # -- serving (called by the request handler's threads) ---------------------------------

    def _answer(self, method: str, path: str, query: str, headers: Message, body: bytes) -> _Reply:
        if path.startswith("/v3/"):
            return self._answer_api(method, path, query, headers, body)
        if method == "GET" and (match := _PAY.fullmatch(path)):
            return self._buyer(match[1], query)
        return _json_reply({"returnCode": "9000", "returnMessage": "not found"}, status=404)

    def _answer_api(
        self, method: str, path: str, query: str, headers: Message, body: bytes
    ) -> _Reply:
        with self._lock:
            delay = _take(self._delays, path, lambda d: d.fragment)
        if delay is not None and not delay.after_processing:
            self._stopping.wait(delay.seconds)
        with self._lock:
            reply = self._process(method, path, query, headers, body)
        if delay is not None and delay.after_processing:
            self._stopping.wait(delay.seconds)
        return reply

    def _process(self, method: str, path: str, query: str, headers: Message, body: bytes) -> _Reply:
        """One /v3 call, under the lock: route, authenticate, act, and record it."""
        handler = self._route(method, path)
        if handler is None:
            self._calls.append((method, path, "9000"))
            return _json_reply({"returnCode": "9000", "returnMessage": "not found"}, status=404)
        payload = _payload(method, query, body)
        if payload is None or not self._authenticate(method, path, payload, headers):
            result = _Result("1106")
        elif (failure := _take(self._failures, path, lambda f: f[0])) is not None:
            result = _Result(failure[1])
        else:
            result = handler(payload)
        self._calls.append((method, path, result.code))
        answer: dict[str, Any] = {
            "returnCode": result.code,
            "returnMessage": result.message or MESSAGES.get(result.code, "Error."),
        }
        if result.info is not None:
            answer["info"] = result.info
        return _json_reply(answer)

    def _route(self, method: str, path: str) -> Callable[[str], _Result] | None:
        if method == "POST" and path == "/v3/payments/request":
            return self._request_payment
        if method == "POST" and (match := _CONFIRM.fullmatch(path)):
            return partial(self._confirm, match[1])
        if method == "POST" and (match := _REFUND.fullmatch(path)):
            return partial(self._refund, match[1])
        if method == "GET" and (match := _CHECK.fullmatch(path)):
            return partial(self._check, match[1])
        return None

    def _authenticate(self, method: str, path: str, payload: str, headers: Message) -> bool:
        """Check the channel, nonce and signature; a good call uses its nonce up."""
        nonce = headers.get("X-LINE-Authorization-Nonce", "")
        expected = sign(self.channel_secret, path, payload, nonce)
        good = (
            (method != "POST" or headers.get_content_type() == "application/json")
            and headers.get("X-LINE-ChannelId") == self.channel_id
            and bool(nonce)
            and hmac.compare_digest(headers.get("X-LINE-Authorization", ""), expected)
            and nonce not in self._nonces
        )
        if good:
            self._nonces.add(nonce)
        return good

    def _request_payment(self, payload: str) -> _Result:
        try:
            data = _load(payload)
        except ValueError:
            return _Result("2102")
        error = _request_error(data)
        if error is not None:
            return _Result(error)
        if data["orderId"] in self._order_ids:
            return _Result("1172")
        tx = Transaction(
            transaction_id=next(self._ids),
            order_id=data["orderId"],
            amount=_plain(data["amount"]),
            currency=data["currency"],
            confirm_url=data["redirectUrls"]["confirmUrl"],
            cancel_url=data["redirectUrls"]["cancelUrl"],
        )
        self._transactions[str(tx.transaction_id)] = tx
        self._order_ids.add(tx.order_id)
        token = f"{secrets.randbelow(10**12):012d}"
        return _Result(
            "0000",
            {
                "paymentUrl": {
                    "web": f"{self.base_url}/pay/{tx.transaction_id}",
                    "app": f"line://pay/payment/{token}",
                },
                "transactionId": tx.transaction_id,
                "paymentAccessToken": token,
            },
        )

    def _confirm(self, key: str, payload: str) -> _Result:
        try:
            data = _load(payload)
        except ValueError:
            return _Result("2102")
        if not (
            isinstance(data, dict)
            and _is_amount(data.get("amount"))
            and _is_text(data.get("currency"))
        ):
            return _Result("2101")
        tx = self._transactions.get(key)
        if tx is None:
            return _Result("1150")
        tx.confirm_calls += 1
        refusal = {
            "confirmed": "1152",
            "refunded": "1152",
            "reserved": "1169",
            "cancelled": "1180",
            "expired": "1180",
            "failed": "1281",  # declined: a credit card payment error
        }.get(tx.status)
        if refusal is not None:
            return _Result(refusal)
        if data["amount"] != tx.amount or data["currency"] != tx.currency:
            return _Result("1153")
        tx.status = "confirmed"
        pay_info = [{"method": "BALANCE", "amount": tx.amount}]
        info = {"orderId": tx.order_id, "transactionId": tx.transaction_id, "payInfo": pay_info}
        return _Result("0000", info)

    def _refund(self, key: str, payload: str) -> _Result:
        try:
            data = _load(payload)
        except ValueError:
            return _Result("2102")
        asked = data.get("refundAmount") if isinstance(data, dict) else None
        if not isinstance(data, dict) or (asked is not None and not _is_positive(asked)):
            return _Result("2101")
        tx = self._transactions.get(key)
        if tx is None:
            return _Result("1150")
        if tx.status not in ("confirmed", "refunded"):
            return _Result("1155")
        if tx.remaining <= 0:
            return _Result("1165")
        amount = tx.remaining if asked is None else _plain(asked)
        if amount > tx.remaining:
            return _Result("1164")
        tx.refunds.append(_plain(amount))
        if tx.remaining <= 0:
            tx.status = "refunded"
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return _Result(
            "0000", {"refundTransactionId": next(self._ids), "refundTransactionDate": when}
        )

    def _check(self, key: str, _query: str) -> _Result:
        tx = self._transactions.get(key)
        if tx is None:
            return _Result("1150")
        code = CHECK_CODES[tx.status]
        return _Result(code, message="reserved transaction." if code == "0000" else None)

    def _buyer(self, key: str, query: str) -> _Reply:
        """The buyer approves or cancels on LINE Pay's page, and is sent back to the shop."""
        action = parse_qs(query).get("action", [""])[0]
        with self._lock:
            tx = self._transactions.get(key)
            if tx is None:
                return _json_reply({"returnCode": "9000", "returnMessage": "not found"}, 404)
            if action not in ("approve", "cancel"):
                return _json_reply({"returnCode": "2101", "returnMessage": "action?"}, 400)
            if tx.status != "reserved":
                message = f"the transaction is {tx.status}"
                return _json_reply({"returnCode": "9000", "returnMessage": message}, 409)
            tx.status = "authorized" if action == "approve" else "cancelled"
            url = tx.confirm_url if action == "approve" else tx.cancel_url
            back = urlencode({"transactionId": tx.transaction_id, "orderId": tx.order_id})
        separator = "&" if "?" in url else "?"
        return _Reply(302, headers={"Location": f"{url}{separator}{back}"})


class _Listener(ThreadingHTTPServer):
    """The HTTP server; it keeps its connections, so that ``stop()`` can cut them."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: concurrent clients are not refused

    def __init__(self, app: LinePayServer) -> None:
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
            with contextlib.suppress(OSError):  # already closed by the client
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

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read :attr:`LinePayServer.calls` instead."""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        reply = self.server.app._answer(self.command, url.path, url.query, self.headers, body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunked(self) -> bytes:
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)


# -- helpers ------------------------------------------------------------------------------


def _json_reply(answer: dict[str, Any], status: int = 200) -> _Reply:
    body = json.dumps(answer, separators=(",", ":"), default=_number).encode()
    return _Reply(status, body, {"Content-Type": "application/json"})


def _payload(method: str, query: str, body: bytes) -> str | None:
    """What the signature covers: the body (UTF-8) of a POST, the query of a GET."""
    if method != "POST":
        return query
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _take(items: list[_T], path: str, fragment: Callable[[_T], str]) -> _T | None:
    """Remove and return the first item whose fragment is in ``path``."""
    for n, item in enumerate(items):
        if fragment(item) in path:
            return items.pop(n)
    return None


def _load(payload: str) -> Any:
    """JSON with exact decimals; NaN and Infinity are not JSON (ValueError)."""
    return json.loads(payload, parse_float=Decimal, parse_constant=_not_json)


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _number(value: object) -> int | float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _plain(amount: Amount) -> Amount:
    """An integral amount as an int (100.0 is 100), others as they are."""
    return int(amount) if amount == int(amount) else amount


def _is_amount(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _is_positive(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool) and value > 0


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _request_error(data: Any) -> str | None:
    """The returnCode a payment request's body earns, or None if it is acceptable."""
    if not _has_request_fields(data):
        return "2101"
    if data["currency"] not in CURRENCIES:
        return "1178"
    if data["amount"] <= 0:
        return "1183"
    if not _adds_up(data["amount"], data["packages"]):
        return "2101"
    return None


def _has_request_fields(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    urls, packages = data.get("redirectUrls"), data.get("packages")
    return (
        _is_amount(data.get("amount"))
        and _is_text(data.get("currency"))
        and _is_text(data.get("orderId"))
        and isinstance(urls, dict)
        and _is_text(urls.get("confirmUrl"))
        and _is_text(urls.get("cancelUrl"))
        and isinstance(packages, list)
        and bool(packages)
        and all(_is_package(package) for package in packages)
    )


def _is_package(package: Any) -> bool:
    if not isinstance(package, dict):
        return False
    products = package.get("products")
    return (
        _is_text(package.get("id"))
        and _is_amount(package.get("amount"))
        and isinstance(products, list)
        and bool(products)
        and all(_is_product(product) for product in products)
    )


def _is_product(product: Any) -> bool:
    if not isinstance(product, dict):
        return False
    quantity = product.get("quantity")
    return (
        _is_text(product.get("name"))
        and isinstance(quantity, int)
        and not isinstance(quantity, bool)
        and quantity >= 1
        and _is_amount(product.get("price"))
    )


def _adds_up(amount: Amount, packages: list[dict[str, Any]]) -> bool:
    """The amount is the packages' sum, and each package's the sum of its products."""
    return amount == sum(package["amount"] for package in packages) and all(
        package["amount"] == sum(p["price"] * p["quantity"] for p in package["products"])
        for package in packages
    )
