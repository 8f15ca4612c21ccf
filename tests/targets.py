"""Shared helpers for tests that talk to the reference target over real sockets."""

from __future__ import annotations

import time

import jwt

SECRET = "test-secret-0123456789abcdef0123456789"
API_KEY = "test-api-key"
TARGET_ENV = {"LOADTEST_JWT_SECRET": SECRET, "LOADTEST_API_KEY": API_KEY}


def mint(user: str = "u1", ttl_s: float = 600, secret: str = SECRET) -> str:
    """An access token the target accepts (or, with another secret, refuses)."""
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + int(ttl_s), "type": "access"}
    return jwt.encode(claims, secret, algorithm="HS256")
