"""LINE Pay behind the ``PaymentProvider`` port (Online API v3).

::

    create_payment ── POST /v3/payments/request ──► paymentUrl.web: the buyer approves there
    the buyer's browser comes back to our confirmUrl?transactionId&orderId (untrusted)
    confirm_payment ── POST /v3/payments/{transactionId}/confirm, with the amount WE stored
    verify_payment ─── GET  /v3/payments/requests/{transactionId}/check (reconciliation)
    refund ─────────── POST /v3/payments/{transactionId}/refund

Every call is signed: ``X-LINE-Authorization`` = base64(HMAC-SHA256(channel secret,
channel secret + path + body (POST) or query string (GET) + nonce)), a fresh nonce per
call (:func:`signature`). The signed body is sent byte for byte as signed.

**Transaction ids** are 19-digit numbers, beyond what a double holds: they are kept as
strings from the moment the answer is parsed (Python's JSON reads them exactly).

**Amounts** travel in major units (TWD and JPY whole, USD and THB with cents); the
request lists one product per seat, and its package and total add up to the order's.

**Return codes** (``returnCode``, HTTP is 200 either way): ``0000`` success; ``1172``
(that orderId was used — our first request went through but its answer was lost) is
answered by a new request under a fresh orderId, the lost reservation lapsing unpaid;
``1152`` on confirm (confirmed before) and ``1165`` on refund (refunded before) mean the
retried call had already done its work; ``1169`` on confirm (the buyer has not approved
yet) is pending; ``1180`` (expired) and the card errors ``1280``–``1299`` are failures;
``1145``, ``1198``, ``1199`` and ``9000`` (in process, a duplicated call, internal) are
"try again later" (``PaymentProviderUnavailable``), as is no answer at all; every other
code is a refusal (``PaymentProviderError``).

Capture is with the confirm (LINE Pay's default), so a payment that was approved but
never confirmed takes no money: cancelling it means never confirming it, and the check
tells whether money came in after all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from uuid import uuid4

import httpx

from openticket.application.ports.payments import (
    InvalidWebhookSignature,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
    ProviderRefund,
    ProviderStatus,
    WebhookNotice,
    refuse_any_options,
)
from openticket.domain.shared import Money

SUCCESS: Final = "0000"
ORDER_ID_USED: Final = "1172"
CONFIRMED_BEFORE: Final = "1152"
REFUNDED_BEFORE: Final = "1165"
NOT_APPROVED_YET: Final = "1169"
EXPIRED: Final = "1180"
TRY_AGAIN: Final = frozenset({"1145", "1198", "1199", "9000"})
"""Codes after which the same call may succeed later."""
CARD_ERRORS: Final = frozenset(str(code) for code in range(1280, 1300))

CHECK_STATUS: Final[Mapping[str, tuple[ProviderStatus, str | None]]] = {
    "0000": (ProviderStatus.PENDING, None),  # reserved: the buyer has not approved
    "0110": (ProviderStatus.PENDING, None),  # approved: it can be confirmed
    "0121": (ProviderStatus.FAILED, "cancelled_or_expired"),
    "0122": (ProviderStatus.FAILED, "failed"),
    "0123": (ProviderStatus.SUCCEEDED, None),
}
"""What a Check Payment Status answer means."""

CURRENCIES: Final = frozenset({"TWD", "JPY", "USD", "THB"})
WHOLE: Final = frozenset({"TWD", "JPY"})


def signature(secret: str, path: str, payload: str, nonce: str) -> str:
    """The ``X-LINE-Authorization`` of a call (``payload``: the body, or the query)."""
    message = (secret + path + payload + nonce).encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _number(amount: Money) -> int | float:
    """An amount as LINE Pay writes it: whole for TWD and JPY, else with cents."""
    if amount.currency not in CURRENCIES:
        raise PaymentProviderError(f"LINE Pay does not take {amount.currency}")
    value = amount.amount
    if value == value.to_integral_value():
        return int(value)
    if amount.currency in WHOLE or value != value.quantize(Decimal("0.01")):
        raise PaymentProviderError(f"{value} {amount.currency} has too many decimals")
    return float(value)


class LinePayProvider:
    """The ``PaymentProvider`` of LINE Pay; see the module docstring."""

    def __init__(
        self,
        channel_id: str,
        channel_secret: str,
        *,
        api_base: str,
        confirm_url: str,
        cancel_url: str,
        timeout: float = 20.0,
    ) -> None:
        if not channel_id or not channel_secret:
            raise ValueError("LINE Pay needs a channel id and secret (OPENTICKET_LINEPAY_*)")
        self._channel_id = channel_id
        self._secret = channel_secret
        self._confirm_url = confirm_url
        self._cancel_url = cancel_url
        self._http = httpx.AsyncClient(base_url=api_base.rstrip("/"), timeout=timeout)

    @property
    def name(self) -> str:
        """``linepay``."""
        return "linepay"

    async def start(self) -> None:
        """Nothing to open: the HTTP client connects on first use."""

    async def stop(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # --- the port -------------------------------------------------------------------

    def check_options(self, options: Mapping[str, str]) -> None:
        """LINE Pay takes no options from the buyer: any is refused."""
        refuse_any_options(self.name, options)

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """A payment request; the buyer approves it at ``redirect_url``."""
        self.check_options(request.options)
        total = _number(request.amount)
        lines = request.items or ((request.description or "Tickets", request.amount),)
        products = [
            {"id": label, "name": label, "quantity": 1, "price": _number(price)}
            for label, price in lines
        ]
        body: dict[str, Any] = {
            "amount": total,
            "currency": request.amount.currency,
            "orderId": str(request.payment_id),
            "packages": [
                {"id": "tickets", "amount": total, "name": "OpenTicket", "products": products}
            ],
            "redirectUrls": {"confirmUrl": self._confirm_url, "cancelUrl": self._cancel_url},
        }
        code, info = await self._post("/v3/payments/request", body)
        if code == ORDER_ID_USED:  # our earlier request's answer was lost: reserve anew
            body["orderId"] = f"{request.payment_id}-{secrets.token_hex(4)}"
            code, info = await self._post("/v3/payments/request", body)
        self._expect(code, "request a payment")
        try:
            transaction = str(info["transactionId"])
            redirect = str(info["paymentUrl"]["web"])
        except (KeyError, TypeError) as e:
            raise PaymentProviderError(f"LINE Pay's request answer lacks {e}") from e
        return ProviderPayment(
            provider_transaction_id=transaction,
            status=ProviderStatus.PENDING,
            redirect_url=redirect,
        )

    async def confirm_payment(self, provider_transaction_id: str, amount: Money) -> ProviderPayment:
        """Confirm (capture) what the buyer approved, for ``amount`` — ours, not theirs."""
        code, _ = await self._post(
            f"/v3/payments/{provider_transaction_id}/confirm",
            {"amount": _number(amount), "currency": amount.currency},
        )
        if code == SUCCESS:
            return self._payment(provider_transaction_id, ProviderStatus.SUCCEEDED)
        if code == CONFIRMED_BEFORE:  # a repeated confirm: see how the first one ended
            return await self.verify_payment(provider_transaction_id)
        if code == NOT_APPROVED_YET:
            return self._payment(provider_transaction_id, ProviderStatus.PENDING)
        if code == EXPIRED or code in CARD_ERRORS:
            reason = "expired" if code == EXPIRED else f"linepay_{code}"
            return self._payment(provider_transaction_id, ProviderStatus.FAILED, reason)
        self._expect(code, "confirm a payment")
        raise AssertionError("unreachable")  # pragma: no cover

    async def verify_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Check Payment Status: reserved, approved, cancelled, failed or completed."""
        code, _ = await self._get(f"/v3/payments/requests/{provider_transaction_id}/check")
        known = CHECK_STATUS.get(code)
        if known is None:
            self._expect(code, "check a payment")
            raise PaymentProviderError(f"LINE Pay answered the check with {code}")
        status, reason = known
        return self._payment(provider_transaction_id, status, reason)

    async def cancel_payment(self, provider_transaction_id: str) -> ProviderPayment:
        """Never confirmed, it takes no money; the check tells if it came in after all."""
        checked = await self.verify_payment(provider_transaction_id)
        if checked.status is ProviderStatus.PENDING:
            return self._payment(provider_transaction_id, ProviderStatus.FAILED, "cancelled")
        return checked

    async def refund(
        self, provider_transaction_id: str, amount: Money, idempotency_key: str
    ) -> ProviderRefund:
        """Refund ``amount``; a retried refund that LINE Pay had done answers the same."""
        code, info = await self._post(
            f"/v3/payments/{provider_transaction_id}/refund", {"refundAmount": _number(amount)}
        )
        if code == REFUNDED_BEFORE:
            return ProviderRefund(provider_refund_id=f"refunded:{idempotency_key}", amount=amount)
        self._expect(code, "refund a payment")
        refund_id = info.get("refundTransactionId", idempotency_key)
        return ProviderRefund(provider_refund_id=str(refund_id), amount=amount)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookNotice | None:
        """LINE Pay sends no webhooks: the buyer's return is the inbound step."""
        raise InvalidWebhookSignature("LINE Pay sends no webhooks; its confirm URL is the way in")

    # --- the wire ---------------------------------------------------------------------

    def _headers(self, path: str, payload: str) -> dict[str, str]:
        nonce = str(uuid4())
        return {
            "Content-Type": "application/json",
            "X-LINE-ChannelId": self._channel_id,
            "X-LINE-Authorization-Nonce": nonce,
            "X-LINE-Authorization": signature(self._secret, path, payload, nonce),
        }

    async def _post(self, path: str, body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        return await self._send("POST", path, self._headers(path, text), text.encode())

    async def _get(self, path: str, query: str = "") -> tuple[str, dict[str, Any]]:
        target = f"{path}?{query}" if query else path
        return await self._send("GET", target, self._headers(path, query), None)

    async def _send(
        self, method: str, target: str, headers: Mapping[str, str], content: bytes | None
    ) -> tuple[str, dict[str, Any]]:
        try:
            answer = await self._http.request(method, target, headers=headers, content=content)
        except httpx.TransportError as e:  # timeouts included
            raise PaymentProviderUnavailable(f"LINE Pay did not answer {target}: {e!r}") from e
        if answer.status_code >= 500:
            raise PaymentProviderUnavailable(f"LINE Pay failed {target}: {answer.status_code}")
        try:
            reply = answer.json()
            code = str(reply["returnCode"])
        except (ValueError, KeyError, TypeError) as e:
            raise PaymentProviderError(f"LINE Pay answered {target} with no returnCode") from e
        info = reply.get("info")
        return code, info if isinstance(info, dict) else {}

    @staticmethod
    def _expect(code: str, what: str) -> None:
        if code == SUCCESS:
            return
        if code in TRY_AGAIN:
            raise PaymentProviderUnavailable(f"LINE Pay could not {what} now ({code})")
        raise PaymentProviderError(f"LINE Pay refused to {what} ({code})")

    @staticmethod
    def _payment(
        transaction: str, status: ProviderStatus, reason: str | None = None
    ) -> ProviderPayment:
        return ProviderPayment(
            provider_transaction_id=transaction, status=status, failure_reason=reason
        )
