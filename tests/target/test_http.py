"""REST endpoints of the target: health, login/refresh, consultations."""

from __future__ import annotations

import time

import jwt
import pytest


@pytest.fixture(scope="module")
def target(start_target):
    return start_target(["--profile", "fixed", "--token-ttl", "120"])


@pytest.fixture(scope="module")
def secret(target):
    return target.secret


def test_health_is_ok(target):
    assert target.http("GET", "/health") == (200, {"status": "ok"})


def test_login_issues_short_lived_hs256_access_and_longer_refresh_tokens(target, secret):
    before = int(time.time())
    body = target.login("Bob@Example.com")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 120
    access = jwt.decode(body["access_token"], secret, algorithms=["HS256"])
    refresh = jwt.decode(body["refresh_token"], secret, algorithms=["HS256"])
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert before <= access["iat"] <= int(time.time())
    assert access["exp"] - access["iat"] == 120
    assert refresh["exp"] > access["exp"]
    assert access["sub"] == body["user_id"] == refresh["sub"]


def test_user_id_is_derived_from_the_email_and_stable(target):
    assert target.login("bob@example.com")["user_id"] == target.login(" BOB@example.com")["user_id"]
    assert target.login("bob@example.com")["user_id"] != target.login("eve@example.com")["user_id"]


@pytest.mark.parametrize(
    "body", [{"email": "", "password": "x"}, {"email": "a@b.c", "password": ""}, {}, None])
def test_login_with_empty_credentials_is_401(target, body):
    status, answer = target.http("POST", "/auth/login", body)
    assert status == 401 and "error" in answer


def test_refresh_gives_a_new_pair_for_the_same_user(target, secret):
    first = target.login("carol@example.com")
    status, body = target.http("POST", "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 200
    assert body["user_id"] == first["user_id"]
    claims = jwt.decode(body["access_token"], secret, algorithms=["HS256"])
    assert claims["type"] == "access" and claims["sub"] == first["user_id"]


def test_refresh_refuses_access_tokens_garbage_and_expired_tokens(target, secret):
    access = target.login()["access_token"]
    now = int(time.time())
    expired = jwt.encode({"sub": "u", "iat": now - 20, "exp": now - 10, "type": "refresh"},
                         secret, "HS256")
    forged = jwt.encode({"sub": "u", "exp": now + 60, "type": "refresh"},
                        "a-different-secret-of-sufficient-length", "HS256")
    for token in (access, "not-a-jwt", expired, forged, ""):
        status, body = target.http("POST", "/auth/refresh", {"refresh_token": token})
        assert status == 401, token
        assert body["error"]


def test_consultation_is_created_for_the_token_subject(target):
    login = target.login("dave@example.com")
    status, body = target.consultation(login["access_token"])
    assert status == 201
    assert body["user_id"] == login["user_id"]  # not the "ignored" user_id of the request body
    assert body["consultation_type"] == "nutrition"
    assert body["status"] == "active"
    assert body["created_at"].endswith("Z") and body["id"]


def test_consultation_needs_a_valid_token_and_api_key(target):
    token = target.login()["access_token"]
    assert target.consultation(token, api_key="wrong")[0] == 401
    assert target.consultation("garbage")[0] == 401
    assert target.consultation(target.mint(ttl_s=-5))[0] == 401
    status, _ = target.http("POST", "/consultations", {"consultation_type": "x"},
                            {"Authorization": f"Bearer {token}"})  # no X-API-Key at all
    assert status == 401


def test_consultation_with_a_bad_body_is_400(target):
    token = target.login()["access_token"]
    status, body = target.http("POST", "/consultations", {"user_id": "u"},
                               {"Authorization": f"Bearer {token}", "X-API-Key": target.api_key})
    assert status == 400 and "consultation_type" in body["error"]

