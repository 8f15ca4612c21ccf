"""WebSocket handshake answers: who gets in, and the HTTP status of everyone else."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def strict(start_target):
    return start_target(["--profile", "fixed", "--strict"])


@pytest.fixture(scope="module")
def lenient(start_target):
    return start_target(["--profile", "fixed"])


def test_owner_with_token_and_api_key_is_accepted_and_told_its_connection_id(strict):
    token, consultation = strict.session()
    with strict.connect(token, consultation) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["X-Connection-Id"].startswith("c0_")


def test_missing_bad_or_forged_token_is_401(strict):
    _, consultation = strict.session()
    assert strict.handshake_status(token="", consultation_id=consultation) == 401
    assert strict.handshake_status(token="garbage", consultation_id=consultation) == 401
    refresh = strict.login()["refresh_token"]
    assert strict.handshake_status(token=refresh, consultation_id=consultation) == 401


def test_expired_token_is_401(strict):
    token, consultation = strict.session()
    expired = strict.mint(sub=strict.login()["user_id"], ttl_s=-1)
    assert strict.handshake_status(token=expired, consultation_id=consultation) == 401
    with strict.connect(token, consultation):  # the same consultation with a live token works
        pass


def test_wrong_or_missing_api_key_is_401(strict):
    token, consultation = strict.session()
    assert strict.handshake_status(token=token, consultation_id=consultation,
                                   api_key="wrong") == 401
    assert strict.handshake_status(token=token, consultation_id=consultation,
                                   api_key=None) == 401


def test_someone_elses_consultation_is_403_in_both_modes(strict, lenient):
    for target in (strict, lenient):
        _, alices = target.session("alice@example.com")
        bobs_token, _ = target.session("bob@example.com")
        assert target.handshake_status(token=bobs_token, consultation_id=alices) == 403


def test_unknown_consultation_is_404_when_strict_and_accepted_when_lenient(strict, lenient):
    assert strict.handshake_status(token=strict.login()["access_token"],
                                   consultation_id="no-such-consultation") == 404
    with lenient.connect(lenient.login()["access_token"], "no-such-consultation") as ws:
        assert ws.response.status_code == 101


def test_client_minted_token_with_the_shared_secret_is_accepted(lenient):
    with lenient.connect(lenient.mint(sub="user_minted"), "any-id") as ws:
        assert ws.response.status_code == 101


def test_refusals_are_counted_by_status(strict):
    before = strict.process.stats()["handshakes_rejected"]
    assert strict.handshake_status(token="garbage", consultation_id="x") == 401
    after = strict.process.stats()["handshakes_rejected"]
    assert after["401"] == before["401"] + 1
