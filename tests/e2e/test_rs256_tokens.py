"""RS256 tokens from key files, chosen by settings alone."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import AsyncTestClient

from openticket.adapters.memory import MemoryPasswordHasher
from openticket.entrypoints.bootstrap import build_container
from openticket.entrypoints.settings import Settings

pytestmark = pytest.mark.e2e


async def test_a_private_key_file_switches_the_api_to_rs256(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "jwt.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    container = build_container(
        Settings(jwt_private_key_file=str(private)), password_hasher=MemoryPasswordHasher()
    )
    async with AsyncTestClient(app=container.http_app()) as client:
        await client.post(
            "/api/auth/register",
            json={"email": "r@example.com", "password": "a-long-password", "display_name": "R"},
        )
        token = (
            await client.post(
                "/api/auth/token", json={"email": "r@example.com", "password": "a-long-password"}
            )
        ).json()["access_token"]
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        forged = jwt.encode(
            jwt.decode(token, options={"verify_signature": False}) | {"roles": ["admin"]},
            "x" * 40,
            algorithm="HS256",
            headers={"kid": jwt.get_unverified_header(token)["kid"]},
        )
        refused = await client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
