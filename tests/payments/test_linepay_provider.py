"""The LINE Pay adapter against the loopback LINE Pay v3 server: the provider contract,
the signature, the return codes, and a confirm whose answer is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from uuid import uuid4

import httpx
import pytest

from openticket.adapters.payments.linepay import LinePayProvider, signature
from openticket.application.ports.payments import (
    InvalidWebhookSignature,
    PaymentProvider,
    PaymentProviderError,
    PaymentProviderUnavailable,
    PaymentRequest,
    ProviderPayment,
    ProviderStatus,
)
from openticket.domain.shared import Money, OrderId, PaymentId, UserId
from openticket.testing.contracts import PaymentProviderContract

from .conftest import free_port
from .linepay_server import LinePayServer

pytestmark = pytest.mark.linepay

CHANNEL_ID, CHANNEL_SECRET = "1656001234", "linepay-test-channel-secret"


@pytest.fixture(scope="module")
def linepay_server() -> Iterator[LinePayServer]:
    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=CHANNEL_SECRET) as server:
        yield server


def linepay(base: str, *, timeout: float = 5, secret: str = CHANNEL_SECRET) -> LinePayProvider:
    return LinePayProvider(
        CHANNEL_ID,
        secret,
        api_base=base,
        confirm_url="http://127.0.0.1:8000/api/payments/linepay/confirm",
        cancel_url="http://127.0.0.1:8000/api/payments/linepay/cancel",
        timeout=timeout,
    )


@pytest.fixture
async def linepay_provider(linepay_server: LinePayServer) -> AsyncIterator[LinePayProvider]:
    provider = linepay(linepay_server.base_url)
    yield provider
    await provider.stop()


class LinePayBuyer:
    """The buyer on LINE Pay's page: approves (or is declined) there."""

    def __init__(self, server: LinePayServer) -> None:
        self._server = server

    async def approve(self, payment: ProviderPayment) -> None:
        assert payment.redirect_url is not None
        async with httpx.AsyncClient() as browser:
            page = await browser.get(payment.redirect_url, params={"action": "approve"})
        assert page.status_code == 302, page.text

    async def decline(self, payment: ProviderPayment) -> None:
        self._server.decline(payment.provider_transaction_id)


class TestLinePayProvider(PaymentProviderContract):
    captures_on_confirm = True
    idempotent_create = False  # 1172 for a used orderId; a lost answer means a new request

    @pytest.fixture
    def provider(self, linepay_provider: LinePayProvider) -> LinePayProvider:
        return linepay_provider

    @pytest.fixture
    def buyer(self, linepay_server: LinePayServer) -> LinePayBuyer:
        return LinePayBuyer(linepay_server)

    @pytest.fixture
    async def unreachable_provider(self) -> AsyncIterator[LinePayProvider]:
        provider = linepay(f"http://127.0.0.1:{free_port()}", timeout=1)
        yield provider
        await provider.stop()

    @pytest.fixture(autouse=True)
    def _server(self, linepay_server: LinePayServer) -> None:
        self.server = linepay_server

    async def refunded_at_provider(
        self, provider: PaymentProvider, payment: ProviderPayment
    ) -> Money:
        refunds = self.server.transactions[payment.provider_transaction_id]["refunds"]
        return Money(Decimal(sum(refunds)), self.price.currency)


# --- the signature ----------------------------------------------------------------------------


def test_the_signature_is_the_documented_hmac_known_answers() -> None:
    """Expected values computed independently with ``openssl dgst -sha256 -hmac``."""
    assert signature("s3cr3t", "/v3/payments/request", '{"amount":100}', "nonce-1") == (
        "a68U12BfLVB9mAcwbcsZKM5SYdI2X+3XK89XZ28F/mk="
    )
    assert signature(
        "s3cr3t", "/v3/payments/requests/2026120200000000001/check", "", "nonce-2"
    ) == ("yfJA1WmeQg6zhUuF+7kNqk0h01gTOYpVvgffijBTDBE=")
    assert signature(
        "a1b2c3d4e5",
        "/v3/payments/2026120200000000001/confirm",
        '{"amount":5600,"currency":"TWD"}',
        "0f8fad5b-d9cb-469f-a165-70867728950e",
    ) == ("vo0sWBLIgkTQhE/9Kg5YOho5E9yLDyhMquiXe24grGU=")


async def test_a_wrong_secret_is_refused_by_the_server(linepay_server: LinePayServer) -> None:
    provider = linepay(linepay_server.base_url, secret="not-the-secret")
    try:
        with pytest.raises(PaymentProviderError, match="1106"):
            await provider.create_payment(_request(Money("100", "TWD")))
    finally:
        await provider.stop()


# --- the request ----------------------------------------------------------------------------


def _request(amount: Money, *seats: tuple[str, Money]) -> PaymentRequest:
    return PaymentRequest(
        payment_id=PaymentId(uuid4()),
        order_id=OrderId(uuid4()),
        user_id=UserId(uuid4()),
        amount=amount,
        idempotency_key=f"{uuid4()}:1",
        items=seats,
    )


async def test_a_request_lists_the_seats_adding_up_and_keeps_the_transaction_exact(
    linepay_provider: LinePayProvider, linepay_server: LinePayServer
) -> None:
    price = Money("2800", "TWD")
    started = await linepay_provider.create_payment(
        _request(Money("5600", "TWD"), ("Seat A-1-1", price), ("Seat A-1-2", price))
    )
    assert started.status is ProviderStatus.PENDING
    assert started.redirect_url is not None
    assert started.redirect_url.startswith(linepay_server.base_url)
    transaction = started.provider_transaction_id
    assert len(transaction) == 19
    assert transaction.isdigit()
    assert int(transaction) > 2**53  # a double would have rounded it
    stored = linepay_server.transactions[transaction]
    assert (stored["amount"], stored["currency"]) == (5600, "TWD")


async def test_a_request_whose_answer_was_lost_is_made_again_under_a_fresh_order_id(
    linepay_provider: LinePayProvider, linepay_server: LinePayServer
) -> None:
    request = _request(Money("100", "TWD"))
    first = await linepay_provider.create_payment(request)
    again = await linepay_provider.create_payment(request)  # LINE Pay answers 1172 first
    assert again.provider_transaction_id != first.provider_transaction_id
    codes = [code for _, path, code in linepay_server.calls if path == "/v3/payments/request"]
    assert codes[-2:] == ["1172", "0000"]
    order_ids = {
        linepay_server.transactions[t]["order_id"]
        for t in (first.provider_transaction_id, again.provider_transaction_id)
    }
    assert all(o.startswith(str(request.payment_id)) for o in order_ids)


async def test_currencies_and_decimals_line_pay_cannot_take_are_refused_here(
    linepay_provider: LinePayProvider,
) -> None:
    for amount in (Money("10", "EUR"), Money("10.5", "TWD"), Money("10.123", "USD")):
        with pytest.raises(PaymentProviderError):
            await linepay_provider.create_payment(_request(amount))


# --- confirm and the codes ------------------------------------------------------------------


async def approved(provider: LinePayProvider, amount: Money) -> ProviderPayment:
    started = await provider.create_payment(_request(amount))
    async with httpx.AsyncClient() as browser:
        assert started.redirect_url is not None
        await browser.get(started.redirect_url, params={"action": "approve"})
    return started


async def test_a_confirm_whose_answer_is_lost_is_found_confirmed_by_the_check(
    linepay_server: LinePayServer,
) -> None:
    """Reliability #19: the confirm times out after LINE Pay took the money; the check
    says it is paid, and a repeated confirm (1152) changes nothing."""
    impatient = linepay(linepay_server.base_url, timeout=0.5)
    try:
        amount = Money("900", "TWD")
        started = await approved(impatient, amount)
        transaction = started.provider_transaction_id
        linepay_server.delay_next(f"/{transaction}/confirm", 1.5)
        with pytest.raises(PaymentProviderUnavailable):
            await impatient.confirm_payment(transaction, amount)
        checked = await impatient.verify_payment(transaction)
        assert checked.status is ProviderStatus.SUCCEEDED
        again = await impatient.confirm_payment(transaction, amount)
        assert again.status is ProviderStatus.SUCCEEDED
        assert linepay_server.transactions[transaction]["confirm_calls"] == 2
        assert linepay_server.transactions[transaction]["status"] == "confirmed"
    finally:
        await impatient.stop()


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("1198", None, PaymentProviderUnavailable),  # a duplicated call: try again
        ("9000", None, PaymentProviderUnavailable),  # internal error: try again
        ("1180", ProviderStatus.FAILED, None),  # the payment expired
        ("1281", ProviderStatus.FAILED, None),  # a credit card error
        ("1150", None, PaymentProviderError),  # no such transaction
    ],
)
async def test_confirm_return_codes_are_mapped(
    linepay_provider: LinePayProvider,
    linepay_server: LinePayServer,
    code: str,
    status: ProviderStatus | None,
    error: type[Exception] | None,
) -> None:
    amount = Money("300", "TWD")
    started = await approved(linepay_provider, amount)
    linepay_server.fail_next(f"/{started.provider_transaction_id}/confirm", code)
    if error is not None:
        with pytest.raises(error):
            await linepay_provider.confirm_payment(started.provider_transaction_id, amount)
        return
    answer = await linepay_provider.confirm_payment(started.provider_transaction_id, amount)
    assert answer.status is status
    assert answer.failure_reason


async def test_a_buyer_who_cancelled_on_line_pay_ends_failed(
    linepay_provider: LinePayProvider,
) -> None:
    started = await linepay_provider.create_payment(_request(Money("300", "TWD")))
    assert started.redirect_url is not None
    async with httpx.AsyncClient() as browser:
        back = await browser.get(started.redirect_url, params={"action": "cancel"})
    assert back.status_code == 302
    checked = await linepay_provider.verify_payment(started.provider_transaction_id)
    assert checked.status is ProviderStatus.FAILED


async def test_line_pay_sends_no_webhooks(linepay_provider: LinePayProvider) -> None:
    with pytest.raises(InvalidWebhookSignature):
        await linepay_provider.parse_webhook({}, b"{}")
