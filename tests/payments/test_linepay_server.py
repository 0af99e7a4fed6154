"""The loopback LINE Pay v3 server speaks the protocol our adapter is written against."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from .linepay_server import LinePayServer, sign

pytestmark = pytest.mark.linepay

CHANNEL_ID = "1234567890"
SECRET = "s3cr3t"


@pytest.fixture
def server() -> Iterator[LinePayServer]:
    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=SECRET) as running:
        yield running


def call(
    server: LinePayServer,
    method: str,
    path: str,
    body: str = "",
    *,
    query: str = "",
    nonce: str | None = None,
    secret: str = SECRET,
    timeout: float = 5,
) -> tuple[dict[str, Any], str]:
    """A signed /v3 call, as the adapter makes it: the answer parsed, and its raw text."""
    nonce = nonce or str(uuid.uuid4())
    signature = sign(secret, path, body if method == "POST" else query, nonce)
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 of the test server
        server.base_url + path + (f"?{query}" if query else ""),
        data=body.encode() if method == "POST" else None,
        method=method,
        headers={
            "Content-Type": "application/json",
            "X-LINE-ChannelId": CHANNEL_ID,
            "X-LINE-Authorization-Nonce": nonce,
            "X-LINE-Authorization": signature,
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
        assert response.status == 200
        assert response.headers.get_content_type() == "application/json"
        text = response.read().decode()
    return json.loads(text), text


def payment_request(order_id: str = "order-1", amount: int = 300, **changes: Any) -> str:
    body: dict[str, Any] = {
        "amount": amount,
        "currency": "TWD",
        "orderId": order_id,
        "packages": [
            {
                "id": "pkg-1",
                "amount": amount,
                "name": "Tickets",
                "products": [{"id": "seat", "name": "Seat A-1", "quantity": 3, "price": 100}],
            }
        ],
        "redirectUrls": {
            "confirmUrl": "https://shop.example/linepay/confirm",
            "cancelUrl": "https://shop.example/linepay/cancel?from=linepay",
        },
    }
    body.update(changes)
    return json.dumps(body)


def reserve(server: LinePayServer, order_id: str = "order-1") -> int:
    answer, _ = call(server, "POST", "/v3/payments/request", payment_request(order_id))
    assert answer["returnCode"] == "0000"
    transaction_id: int = answer["info"]["transactionId"]
    return transaction_id


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def buyer(server: LinePayServer, transaction_id: int, action: str) -> str:
    """The buyer's browser on the payment page: where it is sent back to."""
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{server.base_url}/pay/{transaction_id}?action={action}", timeout=5)
    with redirect.value:
        assert redirect.value.code == 302
        return str(redirect.value.headers["Location"])


def confirm(server: LinePayServer, transaction_id: int, amount: int = 300, **kw: Any) -> str:
    body = json.dumps({"amount": amount, "currency": "TWD"})
    answer, _ = call(server, "POST", f"/v3/payments/{transaction_id}/confirm", body, **kw)
    return str(answer["returnCode"])


def check(server: LinePayServer, transaction_id: int) -> str:
    answer, _ = call(server, "GET", f"/v3/payments/requests/{transaction_id}/check")
    assert "info" not in answer
    return str(answer["returnCode"])


def refund(server: LinePayServer, transaction_id: int, body: str = "{}") -> dict[str, Any]:
    answer, _ = call(server, "POST", f"/v3/payments/{transaction_id}/refund", body)
    return answer


# -- the signature -------------------------------------------------------------------------


def test_sign_matches_openssl_for_a_post_body() -> None:
    # printf '%s' 's3cr3t/v3/payments/request{"amount":100}nonce-1'
    #   | openssl dgst -sha256 -hmac 's3cr3t' -binary | base64
    signature = sign("s3cr3t", "/v3/payments/request", '{"amount":100}', "nonce-1")
    assert signature == "a68U12BfLVB9mAcwbcsZKM5SYdI2X+3XK89XZ28F/mk="


def test_sign_matches_openssl_for_a_get_without_query() -> None:
    # printf '%s' 's3cr3t/v3/payments/requests/2026120200000000001/checknonce-2' | openssl ...
    path = "/v3/payments/requests/2026120200000000001/check"
    assert sign("s3cr3t", path, "", "nonce-2") == "yfJA1WmeQg6zhUuF+7kNqk0h01gTOYpVvgffijBTDBE="


def test_sign_matches_openssl_for_a_get_with_query() -> None:
    # printf '%s' 's3cr3t/v3/payments/requests/2026120200000000001/checka=1&b=2nonce-3' | ...
    path = "/v3/payments/requests/2026120200000000001/check"
    expected = "eQoDUoDJ6kkYp6vcyt3ce6UlfRznb24CJOnssclo0vc="
    assert sign("s3cr3t", path, "a=1&b=2", "nonce-3") == expected


# -- the protocol --------------------------------------------------------------------------


def test_request_answers_an_exact_19_digit_transaction_id(server: LinePayServer) -> None:
    answer, text = call(server, "POST", "/v3/payments/request", payment_request())

    assert answer["returnCode"] == "0000"
    assert answer["returnMessage"] == "Success."
    info = answer["info"]
    transaction_id = info["transactionId"]
    assert isinstance(transaction_id, int)
    assert len(str(transaction_id)) == 19
    assert transaction_id > 2**53
    assert f'"transactionId":{transaction_id}' in text  # a JSON number, kept exact
    assert info["paymentUrl"]["web"] == f"{server.base_url}/pay/{transaction_id}"
    assert info["paymentUrl"]["app"] == f"line://pay/payment/{info['paymentAccessToken']}"
    assert len(info["paymentAccessToken"]) == 12
    assert info["paymentAccessToken"].isdigit()
    assert server.transactions[str(transaction_id)] == {
        "order_id": "order-1",
        "amount": 300,
        "currency": "TWD",
        "status": "reserved",
        "confirm_calls": 0,
        "refunds": [],
    }


def test_a_bad_signature_is_refused_and_creates_nothing(server: LinePayServer) -> None:
    answer, _ = call(server, "POST", "/v3/payments/request", payment_request(), secret="wrong")

    assert answer == {"returnCode": "1106", "returnMessage": "Header information error."}
    assert server.transactions == {}
    assert server.calls == [("POST", "/v3/payments/request", "1106")]


def test_a_replayed_nonce_is_refused(server: LinePayServer) -> None:
    call(server, "POST", "/v3/payments/request", payment_request("order-1"), nonce="n-1")
    answer, _ = call(
        server, "POST", "/v3/payments/request", payment_request("order-2"), nonce="n-1"
    )

    assert answer["returnCode"] == "1106"
    assert [tx["order_id"] for tx in server.transactions.values()] == ["order-1"]


PRODUCTS_OF_200 = [{"name": "x", "price": 100, "quantity": 2}]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"amount": 400}, "2101", id="packages-add-up-to-300"),
        pytest.param(
            {"packages": [{"id": "p", "amount": 300, "products": []}]}, "2101", id="no-products"
        ),
        pytest.param(
            {"packages": [{"id": "p", "amount": 300, "products": PRODUCTS_OF_200}]},
            "2101",
            id="products-add-up-to-200",
        ),
        pytest.param({"orderId": None}, "2101", id="no-order-id"),
        pytest.param({"currency": "EUR"}, "1178", id="currency"),
        pytest.param({"amount": 0}, "1183", id="zero"),
    ],
)
def test_a_bad_payment_request_is_refused(
    server: LinePayServer, changes: dict[str, Any], code: str
) -> None:
    answer, _ = call(server, "POST", "/v3/payments/request", payment_request(**changes))

    assert answer["returnCode"] == code
    assert "info" not in answer
    assert server.transactions == {}


def test_malformed_json_and_a_used_order_id_are_refused(server: LinePayServer) -> None:
    answer, _ = call(server, "POST", "/v3/payments/request", '{"amount": 3')
    assert answer["returnCode"] == "2102"
    reserve(server, "order-1")
    answer, _ = call(server, "POST", "/v3/payments/request", payment_request("order-1"))
    assert answer["returnCode"] == "1172"
    assert len(server.transactions) == 1


def test_approve_and_cancel_redirect_back_with_the_ids(server: LinePayServer) -> None:
    approved, cancelled = reserve(server, "order-1"), reserve(server, "order-2")

    assert buyer(server, approved, "approve") == (
        f"https://shop.example/linepay/confirm?transactionId={approved}&orderId=order-1"
    )
    assert buyer(server, cancelled, "cancel") == (
        f"https://shop.example/linepay/cancel?from=linepay&transactionId={cancelled}"
        "&orderId=order-2"
    )
    assert server.transactions[str(approved)]["status"] == "authorized"
    assert server.transactions[str(cancelled)]["status"] == "cancelled"
    assert check(server, cancelled) == "0121"
    assert confirm(server, cancelled) == "1180"


def test_confirm_checks_the_amount_and_happens_once(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    assert confirm(server, transaction_id) == "1169"  # the buyer has not approved yet
    buyer(server, transaction_id, "approve")

    assert confirm(server, transaction_id, amount=299) == "1153"
    assert server.transactions[str(transaction_id)]["status"] == "authorized"
    body = json.dumps({"amount": 300, "currency": "TWD"})
    answer, text = call(server, "POST", f"/v3/payments/{transaction_id}/confirm", body)
    assert answer["returnCode"] == "0000"
    assert answer["info"] == {
        "orderId": "order-1",
        "transactionId": transaction_id,
        "payInfo": [{"method": "BALANCE", "amount": 300}],
    }
    assert f'"transactionId":{transaction_id}' in text
    assert confirm(server, transaction_id) == "1152"
    assert confirm(server, 1234567890123456789) == "1150"
    assert server.transactions[str(transaction_id)]["confirm_calls"] == 4


def test_check_follows_the_payment(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    answer, _ = call(server, "GET", f"/v3/payments/requests/{transaction_id}/check")
    assert answer == {"returnCode": "0000", "returnMessage": "reserved transaction."}
    buyer(server, transaction_id, "approve")
    assert check(server, transaction_id) == "0110"
    confirm(server, transaction_id)
    assert check(server, transaction_id) == "0123"
    refund(server, transaction_id)
    assert check(server, transaction_id) == "0123"
    assert check(server, 1234567890123456789) == "1150"


def test_a_get_signs_its_query_string(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    path = f"/v3/payments/requests/{transaction_id}/check"
    answer, _ = call(server, "GET", path, query="a=1&b=2")
    assert answer["returnCode"] == "0000"

    nonce = "signed-without-the-query"
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 of the test server
        f"{server.base_url}{path}?a=1&b=2",
        headers={
            "X-LINE-ChannelId": CHANNEL_ID,
            "X-LINE-Authorization-Nonce": nonce,
            "X-LINE-Authorization": sign(SECRET, path, "", nonce),
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - as above
        assert json.loads(response.read())["returnCode"] == "1106"


def test_refund_takes_what_is_left_and_no_more(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    assert refund(server, transaction_id)["returnCode"] == "1155"  # not confirmed
    buyer(server, transaction_id, "approve")
    confirm(server, transaction_id)

    assert refund(server, transaction_id, '{"refundAmount": 301}')["returnCode"] == "1164"
    partial = refund(server, transaction_id, '{"refundAmount": 100}')
    assert partial["returnCode"] == "0000"
    whole = refund(server, transaction_id)
    assert whole["returnCode"] == "0000"
    refund_id = whole["info"]["refundTransactionId"]
    assert isinstance(refund_id, int)
    assert len(str(refund_id)) == 19
    assert refund_id != transaction_id
    assert whole["info"]["refundTransactionDate"].endswith("Z")
    assert refund(server, transaction_id)["returnCode"] == "1165"
    assert server.transactions[str(transaction_id)]["refunds"] == [100, 200]
    assert server.transactions[str(transaction_id)]["status"] == "refunded"


def test_refund_twice(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    buyer(server, transaction_id, "approve")
    confirm(server, transaction_id)

    assert refund(server, transaction_id)["returnCode"] == "0000"
    assert refund(server, transaction_id)["returnCode"] == "1165"


def test_expired_and_declined_payments(server: LinePayServer) -> None:
    expired, declined = reserve(server, "order-1"), reserve(server, "order-2")
    buyer(server, declined, "approve")
    server.expire(expired)
    server.decline(declined)

    assert check(server, expired) == "0121"
    assert confirm(server, expired) == "1180"
    assert check(server, declined) == "0122"
    assert confirm(server, declined) == "1281"


# -- fault injection -----------------------------------------------------------------------


def test_a_delayed_answer_times_the_client_out_after_the_effect(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    buyer(server, transaction_id, "approve")
    server.delay_next("/confirm", 2.0)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        confirm(server, transaction_id, timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert server.transactions[str(transaction_id)]["status"] == "confirmed"
    assert confirm(server, transaction_id) == "1152"  # the retry finds it done


def test_a_delay_before_processing_holds_the_effect_back(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    buyer(server, transaction_id, "approve")
    server.delay_next("/confirm", 0.5, after_processing=False)

    started = time.monotonic()
    assert confirm(server, transaction_id) == "0000"
    assert time.monotonic() - started >= 0.5


def test_fail_next_answers_the_code_without_effect(server: LinePayServer) -> None:
    transaction_id = reserve(server)
    buyer(server, transaction_id, "approve")
    server.fail_next("/confirm", "9000")

    assert confirm(server, transaction_id) == "9000"
    assert server.transactions[str(transaction_id)]["status"] == "authorized"
    assert confirm(server, transaction_id) == "0000"
    assert [code for _, _, code in server.calls] == ["0000", "9000", "0000"]


# -- the server itself ---------------------------------------------------------------------


def test_unknown_paths_are_404(server: LinePayServer) -> None:
    for path in ("/v3/payments/unknown", "/pay/1", "/elsewhere"):
        with pytest.raises(urllib.error.HTTPError) as not_found:
            urllib.request.urlopen(server.base_url + path, timeout=5)  # noqa: S310 - loopback
        with not_found.value as response:
            assert response.code == 404
            assert json.loads(response.read())["returnCode"] == "9000"


def test_concurrent_requests_for_one_order_create_one_payment(server: LinePayServer) -> None:
    codes: list[str] = []

    def request(order_id: str) -> None:
        answer, _ = call(server, "POST", "/v3/payments/request", payment_request(order_id))
        codes.append(answer["returnCode"])

    threads = [threading.Thread(target=request, args=(f"order-{n % 5}",)) for n in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes) == ["0000"] * 5 + ["1172"] * 20
    assert len({int(key) for key in server.transactions}) == 5


def ask(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def test_stop_closes_kept_alive_connections() -> None:
    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=SECRET) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        assert ask(connection, "/elsewhere") == 404
    try:
        with pytest.raises(ConnectionError):
            ask(connection, "/elsewhere")
    finally:
        connection.close()


def test_stop_drops_an_answer_held_back_by_a_delay() -> None:
    errors: list[Exception] = []

    def late_request(server: LinePayServer) -> None:
        try:
            call(server, "POST", "/v3/payments/request", payment_request())
        except (ConnectionError, urllib.error.URLError) as error:
            errors.append(error)

    with LinePayServer(channel_id=CHANNEL_ID, channel_secret=SECRET) as server:
        server.delay_next("/request", 30)
        thread = threading.Thread(target=late_request, args=(server,))
        thread.start()
        while not server.calls:  # the call took effect, its answer is held back
            time.sleep(0.01)
        stopping = time.monotonic()
    thread.join(timeout=5)

    assert time.monotonic() - stopping < 5
    assert len(errors) == 1
