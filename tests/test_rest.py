"""The one REST client: every failure is one RestError with a call and a kind, bounded in time,
never through a proxy, never following a redirect; and POST /consultations as the app does it.

Over real sockets on 127.0.0.1: the reference target for the real calls, and tiny gevent servers
in this (patched) process for the misbehaving ones.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import gevent
import pytest
from gevent.server import StreamServer

from loadtest.consultations import CREATE_CALL, create_consultation
from loadtest.errors import LoadtestError, UsageError
from loadtest.rest import RestClient, RestError, classify_failure
from loadtest.target.process import TargetProcess
from tests.targets import API_KEY, TARGET_ENV, mint


@pytest.fixture(scope="module")
def target() -> Iterator[TargetProcess]:
    with TargetProcess(["--profile", "fixed", "--ttfc-ms", "5"], env=TARGET_ENV) as process:
        yield process


def serve(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A one-trick HTTP server in a greenlet: reads the request, then ``answer(sock)``."""

    def handle(sock: socket.socket, _address: object) -> None:
        sock.recv(65536)
        answer(sock)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stop(timeout=1)


def raw_answer(data: bytes) -> Callable[[socket.socket], None]:
    def answer(sock: socket.socket) -> None:
        sock.sendall(data)
        sock.close()

    return answer


@pytest.fixture
def not_json() -> Iterator[str]:
    body = b"<html>gateway</html>"
    yield from serve(raw_answer(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)))  # fmt: skip


@pytest.fixture
def json_without_id() -> Iterator[str]:
    body = b'{"status": "active"}'
    yield from serve(raw_answer(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)))  # fmt: skip


@pytest.fixture
def redirecting() -> Iterator[str]:
    yield from serve(raw_answer(
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/steal\r\n"
        b"Content-Length: 0\r\n\r\n"))  # fmt: skip


@pytest.fixture
def hanging_up() -> Iterator[str]:
    yield from serve(lambda sock: sock.close())


@pytest.fixture
def silent() -> Iterator[str]:
    """Accepts TCP (the kernel's backlog does, with no accept()) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def closed_port() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    return f"http://127.0.0.1:{port}"


def consultation(client: RestClient, base: str, **kwargs: object) -> str:
    options = {"token_value": mint("loadtest-user-3"), "api_key": API_KEY, **kwargs}
    return create_consultation(client, base, 3, "nutrition", **options)  # type: ignore[arg-type]


def assert_one_line_without(exc: LoadtestError, *secrets: str) -> None:
    text = str(exc)
    assert text and "\n" not in text
    for secret in secrets:
        assert secret not in text and secret not in repr(exc)


class TestCreateConsultation:
    def test_creates_one_as_the_app_does_and_reports_the_call_once(
        self, target: TargetProcess
    ) -> None:
        calls: list[tuple[str, float, str | None]] = []
        consultation_id = consultation(
            RestClient(), target.base_url, observe=lambda *call: calls.append(call)
        )
        assert consultation_id
        [(name, elapsed_ms, error)] = calls
        assert (name, error) == ("POST /consultations", None)
        assert 0 < elapsed_ms < 10_000

    def test_the_server_decides_the_owner_from_the_token(self, target: TargetProcess) -> None:
        first = consultation(RestClient(), target.base_url)
        second = consultation(RestClient(), target.base_url)
        assert first != second

    def test_a_refusal_is_a_rest_error_with_the_status_as_kind(
        self, target: TargetProcess
    ) -> None:
        calls: list[tuple[str, float, str | None]] = []
        token = mint("loadtest-user-3")
        with pytest.raises(RestError) as info:
            consultation(RestClient(), target.base_url, api_key="wrong-key-CANARY",
                         token_value=token, observe=lambda *call: calls.append(call))
        error = info.value
        assert (error.call, error.kind, error.status) == (CREATE_CALL, "401", 401)
        assert error.failure == "POST /consultations 401", "the rest_failures breakdown key"
        assert calls == [(CREATE_CALL, error.elapsed_ms, "401")]
        assert_one_line_without(error, "wrong-key-CANARY", token)

    def test_without_a_token_the_target_refuses(self, target: TargetProcess) -> None:
        with pytest.raises(RestError) as info:
            consultation(RestClient(), target.base_url, token_value=None)
        assert info.value.kind == "401"

    def test_an_answer_without_an_id_is_invalid(self, json_without_id: str) -> None:
        calls: list[tuple[str, float, str | None]] = []
        with pytest.raises(RestError) as info:
            consultation(RestClient(), json_without_id, observe=lambda *c: calls.append(c))
        assert info.value.kind == "invalid"
        assert [kind for _, _, kind in calls] == ["invalid"]


class TestFailuresAreClassified:
    def test_an_answer_that_is_not_json_is_invalid(self, not_json: str) -> None:
        with pytest.raises(RestError) as info:
            RestClient().post_json(not_json, "/consultations", {})
        assert info.value.kind == "invalid"

    def test_a_closed_port_is_refused_at_once(self, closed_port: str) -> None:
        with pytest.raises(RestError) as info:
            RestClient(timeout_s=5).post_json(closed_port, "/auth/login", {})
        assert (info.value.call, info.value.kind) == ("POST /auth/login", "refused")
        assert info.value.elapsed_ms < 1000

    def test_a_server_that_hangs_up_is_a_reset(self, hanging_up: str) -> None:
        with pytest.raises(RestError) as info:
            RestClient().post_json(hanging_up, "/consultations", {})
        assert info.value.kind == "reset"

    def test_a_server_that_never_answers_times_out_within_the_timeout(
        self, silent: str
    ) -> None:
        started = time.monotonic()
        with pytest.raises(RestError) as info:
            RestClient(timeout_s=0.5).post_json(silent, "/consultations", {})
        took = time.monotonic() - started
        assert info.value.kind == "timeout"
        assert 0.4 <= took < 1.5
        assert 400 <= info.value.elapsed_ms < 1500

    def test_an_unknown_host_is_a_dns_failure(self) -> None:
        with pytest.raises(RestError) as info:
            RestClient(timeout_s=5).post_json("http://no-such-host.invalid", "/x", {})
        assert info.value.kind in ("dns", "timeout")  # a sandbox resolver may just stall

    def test_a_redirect_is_not_followed_so_credentials_stay_with_the_target(
        self, redirecting: str
    ) -> None:
        with pytest.raises(RestError) as info:
            RestClient().post_json(redirecting, "/auth/login", {}, {"X-API-Key": "CANARY"})
        assert info.value.kind == "307"

    def test_proxies_from_the_environment_are_never_used(
        self, target: TargetProcess, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, "http://127.0.0.1:1")  # honouring it would be "refused"
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        assert consultation(RestClient(), target.base_url)

    def test_the_message_shows_the_address_never_userinfo(self, closed_port: str) -> None:
        with_userinfo = closed_port.replace("http://", "http://ann:CANARY-pw@")
        with pytest.raises(RestError) as info:
            RestClient().post_json(with_userinfo, "/x", {})
        assert closed_port.removeprefix("http://") in str(info.value)
        assert_one_line_without(info.value, "CANARY-pw", "ann")

    def test_an_outer_gevent_timeout_still_reaches_its_owner(self, silent: str) -> None:
        with pytest.raises(gevent.Timeout), gevent.Timeout(0.2):
            RestClient(timeout_s=5).post_json(silent, "/x", {})


def test_classification_matches_the_handshake_kinds() -> None:
    import ssl

    assert classify_failure(ssl.SSLCertVerificationError("bad cert")) == "tls"
    assert classify_failure(TimeoutError()) == "timeout"
    assert classify_failure(ConnectionRefusedError()) == "refused"
    assert classify_failure(socket.gaierror()) == "dns"
    assert classify_failure(ConnectionResetError()) == "reset"
    assert classify_failure(OSError("something else")) == "error"


def test_a_missing_ca_file_is_a_usage_error_at_start() -> None:
    with pytest.raises(UsageError) as info:
        RestClient(ca_file="/no/such/ca.pem")
    assert "--ca-file" in str(info.value)
