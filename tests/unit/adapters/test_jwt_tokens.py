"""JwtTokenIssuer: valid tokens round-trip; every forged, stale or foreign token is refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.utils import base64url_decode, base64url_encode

from openticket.adapters.identity import JwtTokenIssuer
from openticket.adapters.memory.clock import FakeClock
from openticket.application.ports.identity import InvalidToken
from openticket.domain.identity import Role
from openticket.testing.contracts._builders import new_user

SECRET = "unit-test-secret-that-is-long-enough-for-hs256"
TTL = timedelta(minutes=15)


def _pem_pair() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture(scope="module")
def rsa_pem_pair() -> tuple[bytes, bytes]:
    return _pem_pair()


@pytest.fixture(scope="module")
def other_rsa_pem_pair() -> tuple[bytes, bytes]:
    return _pem_pair()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> JwtTokenIssuer:
    return JwtTokenIssuer(clock, secret=SECRET, ttl=TTL)


@pytest.fixture
def rs256_issuer(clock: FakeClock, rsa_pem_pair: tuple[bytes, bytes]) -> JwtTokenIssuer:
    private_pem, public_pem = rsa_pem_pair
    return JwtTokenIssuer(clock, private_key_pem=private_pem, public_key_pem=public_pem, ttl=TTL)


def good_claims(clock: FakeClock, **changes: Any) -> dict[str, Any]:
    """The claims a token of ours carries; ``changes`` overrides, ``None`` drops a claim."""
    now = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "sub": str(uuid4()),
        "roles": ["buyer"],
        "iat": now,
        "nbf": now,
        "exp": now + int(TTL.total_seconds()),
        "iss": "openticket",
        "aud": "openticket",
        "jti": "a-unique-id",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def forge(
    issuer: JwtTokenIssuer, claims: dict[str, Any], *, key: str = SECRET, **headers: Any
) -> str:
    """An HS256 token signed with ``key`` under our kid unless ``headers`` says otherwise."""
    header = {"kid": issuer.key_id, **headers}
    header = {name: value for name, value in header.items() if value is not None}
    return jwt.encode(claims, key, algorithm="HS256", headers=header)


def segment(data: dict[str, Any]) -> str:
    return base64url_encode(json.dumps(data).encode()).decode()


def sign_by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token PyJWT would refuse to make (a PEM as HMAC key, a non-string kid)."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', **header})}.{segment(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64url_encode(signature).decode()}"


def test_a_valid_token_round_trips_user_roles_and_expiry(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    user = new_user(roles=(Role.ORGANIZER, Role.STAFF))
    token = issuer.issue(user)
    assert token.expires_in == 900
    assert token.token_type == "bearer"
    claims = issuer.verify(token.access_token)
    assert claims.user_id == user.user_id
    assert claims.roles == frozenset({Role.ORGANIZER, Role.STAFF})
    assert claims.expires_at == clock.now() + TTL
    assert claims.expires_at.tzinfo is not None


def test_a_token_carries_the_documented_header_and_claims(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    user = new_user(roles=(Role.ADMIN,))
    token = issuer.issue(user).access_token
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert header["kid"] == issuer.key_id
    payload = jwt.decode(token, options={"verify_signature": False})
    now = int(clock.now().timestamp())
    assert payload["sub"] == str(user.user_id)
    assert payload["roles"] == ["admin"]
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (now, now, now + 900)
    assert (payload["iss"], payload["aud"]) == ("openticket", "openticket")
    assert isinstance(payload["jti"], str)
    assert payload["jti"]


def test_two_tokens_for_one_user_in_one_second_differ(issuer: JwtTokenIssuer) -> None:
    user = new_user()
    first, second = issuer.issue(user).access_token, issuer.issue(user).access_token
    assert first != second
    assert issuer.verify(first).user_id == issuer.verify(second).user_id == user.user_id


def test_times_come_from_the_injected_clock_not_the_wall_clock() -> None:
    """A token made in 2001 by a fake clock is valid then; PyJWT alone would call it expired."""
    clock = FakeClock(datetime(2001, 1, 1, tzinfo=UTC))
    issuer = JwtTokenIssuer(clock, secret=SECRET, ttl=TTL)
    token = issuer.issue(new_user()).access_token
    assert issuer.verify(token).expires_at == datetime(2001, 1, 1, 0, 15, tzinfo=UTC)
    clock.advance(TTL)
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_a_token_is_valid_until_the_second_it_expires(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    token = issuer.issue(new_user()).access_token
    clock.advance(TTL - timedelta(seconds=1))
    issuer.verify(token)
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired"):
        issuer.verify(token)


def test_a_token_is_refused_when_the_clock_is_moved_back_before_it_was_issued(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    token = issuer.issue(new_user()).access_token
    clock.advance(-5)
    with pytest.raises(InvalidToken, match="not valid yet"):
        issuer.verify(token)


def test_an_unsigned_alg_none_token_is_refused(issuer: JwtTokenIssuer, clock: FakeClock) -> None:
    token = jwt.encode(good_claims(clock), None, algorithm="none", headers={"kid": issuer.key_id})
    assert token.endswith(".")  # really unsigned
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_an_alg_none_token_with_a_stolen_signature_is_refused(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    genuine = issuer.issue(new_user()).access_token
    _, payload, signature = genuine.split(".")
    header = segment({"alg": "none", "typ": "JWT", "kid": issuer.key_id})
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{payload}.{signature}")
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{payload}.")


def test_an_hs256_token_keyed_with_the_rs256_public_key_is_refused(
    rs256_issuer: JwtTokenIssuer, clock: FakeClock, rsa_pem_pair: tuple[bytes, bytes]
) -> None:
    """Key confusion: the public key is public, so an HMAC made with it proves nothing."""
    _, public_pem = rsa_pem_pair
    # PyJWT itself refuses to use a PEM as an HMAC secret, so sign by hand.
    token = sign_by_hand(
        {"kid": rs256_issuer.key_id}, good_claims(clock, roles=["admin"]), public_pem
    )
    with pytest.raises(InvalidToken):
        rs256_issuer.verify(token)


def test_an_rs256_token_signed_by_another_key_under_our_kid_is_refused(
    rs256_issuer: JwtTokenIssuer, clock: FakeClock, other_rsa_pem_pair: tuple[bytes, bytes]
) -> None:
    other_private, _ = other_rsa_pem_pair
    token = jwt.encode(
        good_claims(clock), other_private, algorithm="RS256", headers={"kid": rs256_issuer.key_id}
    )
    with pytest.raises(InvalidToken):
        rs256_issuer.verify(token)


def test_an_hs256_issuer_refuses_a_genuine_rs256_token(
    rs256_issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    """Only the configured algorithm is accepted, even with a matching kid."""
    hs256 = JwtTokenIssuer(clock, secret=SECRET, key_id=rs256_issuer.key_id)
    with pytest.raises(InvalidToken):
        hs256.verify(rs256_issuer.issue(new_user()).access_token)


def test_a_token_signed_with_another_secret_is_refused(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    token = forge(issuer, good_claims(clock), key="another-secret-that-is-also-long-enough")
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_a_payload_tampered_to_admin_with_the_signature_kept_is_refused(
    issuer: JwtTokenIssuer,
) -> None:
    genuine = issuer.issue(new_user()).access_token
    header, payload, signature = genuine.split(".")
    claims = json.loads(base64url_decode(payload))
    assert claims["roles"] == ["buyer"]
    claims["roles"] = ["admin"]
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{segment(claims)}.{signature}")


def test_the_forging_helper_makes_tokens_the_issuer_accepts(
    issuer: JwtTokenIssuer, clock: FakeClock
) -> None:
    """So each refusal below is due to the one defect it introduces, not to the helper."""
    claims = issuer.verify(forge(issuer, good_claims(clock, roles=["staff"])))
    assert claims.roles == frozenset({Role.STAFF})


def _expired(clock: FakeClock, issuer: JwtTokenIssuer) -> str:
    token = forge(issuer, good_claims(clock))
    clock.advance(TTL + timedelta(seconds=1))
    return token


def _not_before_in_the_future(clock: FakeClock, issuer: JwtTokenIssuer) -> str:
    later = int(clock.now().timestamp()) + 60
    return forge(issuer, good_claims(clock, nbf=later))


FORGERIES: dict[str, Callable[[FakeClock, JwtTokenIssuer], str]] = {
    "expired": _expired,
    "nbf in the future": _not_before_in_the_future,
    "iat in the future": lambda c, i: forge(
        i, good_claims(c, iat=int(c.now().timestamp()) + 60, nbf=None)
    ),
    "wrong aud": lambda c, i: forge(i, good_claims(c, aud="someone-else")),
    "aud list without us": lambda c, i: forge(i, good_claims(c, aud=["someone-else"])),
    "aud shared with another service": lambda c, i: forge(
        i, good_claims(c, aud=["openticket", "billing"])
    ),
    "wrong iss": lambda c, i: forge(i, good_claims(c, iss="https://evil.example")),
    "unknown kid": lambda c, i: forge(i, good_claims(c), kid="some-other-key"),
    "no kid": lambda c, i: forge(i, good_claims(c), kid=None),
    "kid not a string": lambda c, i: sign_by_hand({"kid": 7}, good_claims(c), SECRET.encode()),
    "missing exp": lambda c, i: forge(i, good_claims(c, exp=None)),
    "missing iat": lambda c, i: forge(i, good_claims(c, iat=None)),
    "missing sub": lambda c, i: forge(i, good_claims(c, sub=None)),
    "missing aud": lambda c, i: forge(i, good_claims(c, aud=None)),
    "missing iss": lambda c, i: forge(i, good_claims(c, iss=None)),
    "missing roles": lambda c, i: forge(i, good_claims(c, roles=None)),
    "exp not a number": lambda c, i: forge(i, good_claims(c, exp="tomorrow")),
    "exp a boolean": lambda c, i: forge(i, good_claims(c, exp=True)),
    "exp beyond any calendar": lambda c, i: forge(i, good_claims(c, exp=10**20)),
    "iat not a number": lambda c, i: forge(i, good_claims(c, iat="now")),
    "sub not a UUID": lambda c, i: forge(i, good_claims(c, sub="admin")),
    "sub a UUID in braces": lambda c, i: forge(i, good_claims(c, sub="{" + str(uuid4()) + "}")),
    "sub a number": lambda c, i: forge(i, good_claims(c, sub=42)),
    "unknown role": lambda c, i: forge(i, good_claims(c, roles=["buyer", "superuser"])),
    "role in other case": lambda c, i: forge(i, good_claims(c, roles=["ADMIN"])),
    "roles a string": lambda c, i: forge(i, good_claims(c, roles="admin")),
    "roles empty": lambda c, i: forge(i, good_claims(c, roles=[])),
    "role not a string": lambda c, i: forge(i, good_claims(c, roles=[1])),
}


@pytest.mark.parametrize("make", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_or_stale_token_is_refused(
    issuer: JwtTokenIssuer, clock: FakeClock, make: Callable[[FakeClock, JwtTokenIssuer], str]
) -> None:
    token = make(clock, issuer)
    with pytest.raises(InvalidToken) as refused:
        issuer.verify(token)
    # A refusal is always our port's error: never a PyJWT one leaking out.
    assert type(refused.value) is InvalidToken


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        " ",
        "garbage",
        "a.b.c",
        "...",
        "Bearer x.y.z",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9..",
        "W10.W10.W10",  # headers and payloads that are JSON lists
        "\x00.\x00.\x00",
        "é.é.é",
        "a" * 10_000,
    ],
)
def test_garbage_strings_are_refused(issuer: JwtTokenIssuer, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(garbage)


def test_issuer_and_audience_can_be_configured(clock: FakeClock) -> None:
    ours = JwtTokenIssuer(clock, secret=SECRET, issuer="tickets.example", audience="api")
    default = JwtTokenIssuer(clock, secret=SECRET)
    token = ours.issue(new_user()).access_token
    payload = jwt.decode(token, options={"verify_signature": False})
    assert (payload["iss"], payload["aud"]) == ("tickets.example", "api")
    ours.verify(token)
    with pytest.raises(InvalidToken):
        default.verify(token)  # same key, other issuer/audience


def test_processes_sharing_a_secret_accept_each_others_tokens(clock: FakeClock) -> None:
    first = JwtTokenIssuer.from_secret_or_random(clock, SECRET)
    second = JwtTokenIssuer(clock, secret=SECRET)
    user = new_user()
    assert second.verify(first.issue(user).access_token).user_id == user.user_id


def test_without_a_secret_each_start_makes_its_own(clock: FakeClock) -> None:
    for unset in (None, ""):
        first = JwtTokenIssuer.from_secret_or_random(clock, unset)
        second = JwtTokenIssuer.from_secret_or_random(clock, unset)
        user = new_user()
        assert first.verify(first.issue(user).access_token).user_id == user.user_id
        assert first.key_id != second.key_id
        with pytest.raises(InvalidToken):
            second.verify(first.issue(user).access_token)


def test_a_new_key_gets_a_new_key_id(clock: FakeClock) -> None:
    old = JwtTokenIssuer(clock, secret=SECRET)
    new = JwtTokenIssuer(clock, secret=SECRET + "-rotated")
    assert old.key_id != new.key_id
    with pytest.raises(InvalidToken, match="unknown key"):
        new.verify(old.issue(new_user()).access_token)


def test_rs256_tokens_verify_with_a_public_key_only_verifier_configuration(
    rs256_issuer: JwtTokenIssuer, rsa_pem_pair: tuple[bytes, bytes]
) -> None:
    _, public_pem = rsa_pem_pair
    token = rs256_issuer.issue(new_user()).access_token
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    payload = jwt.decode(
        token,
        public_pem,
        algorithms=["RS256"],
        audience="openticket",
        issuer="openticket",
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert payload["roles"] == ["buyer"]


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({}, "either a secret"),
        ({"secret": "too-short"}, "at least 32 bytes"),
        ({"secret": ""}, "at least 32 bytes"),
        ({"secret": SECRET, "ttl": timedelta(0)}, "at least one second"),
        ({"secret": SECRET, "ttl": timedelta(minutes=-1)}, "at least one second"),
        ({"secret": SECRET, "issuer": ""}, "must not be empty"),
        ({"secret": SECRET, "audience": ""}, "must not be empty"),
        ({"secret": SECRET, "key_id": ""}, "must not be empty"),
    ],
)
def test_weak_or_incomplete_settings_are_refused(
    clock: FakeClock, settings: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        JwtTokenIssuer(clock, **settings)


def test_rsa_settings_that_do_not_fit_together_are_refused(
    clock: FakeClock,
    rsa_pem_pair: tuple[bytes, bytes],
    other_rsa_pem_pair: tuple[bytes, bytes],
) -> None:
    private_pem, _ = rsa_pem_pair
    _, other_public = other_rsa_pem_pair
    with pytest.raises(ValueError, match="does not belong"):
        JwtTokenIssuer(clock, private_key_pem=private_pem, public_key_pem=other_public)
    with pytest.raises(ValueError, match="either"):
        JwtTokenIssuer(clock, secret=SECRET, private_key_pem=private_pem)
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # to see it refused
    small = weak_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="2048"):
        JwtTokenIssuer(clock, private_key_pem=small)
