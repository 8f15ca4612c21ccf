"""REST honours the WebSocket's TLS options: against a target with a private CA, login, refresh,
consultations and the storm's admin call work with ``ca_file`` or ``insecure`` and fail as
``"tls"`` without them; a proxy in the environment changes nothing; a refused login is counted
by call and status and names the credential by its line, never by its email.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from loadtest.auth import AuthRefused, LoginFailed, LoginTokens, Token, load_login_file
from loadtest.consultations import create_consultation
from loadtest.rest import RestClient, RestError
from loadtest.target.process import TargetProcess
from loadtest.users.storm import order_restart
from tests.targets import API_KEY, TARGET_ENV

EMAIL = "ana.CANARY@example.com"
PASSWORD = "pw-CANARY-1"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TargetProcess]]:
    """A private CA's PEM file, and a TLS target whose certificate it issued."""
    folder = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key, ca = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(cert)
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(cert, append=True)
    issued.private_key_pem.write_to_path(key)
    authority.cert_pem.write_to_path(ca)
    args = ["--profile", "fixed", "--ttfc-ms", "5", "--tls-cert", str(cert), "--tls-key", str(key)]
    with TargetProcess(args, env=TARGET_ENV) as target:
        assert target.base_url.startswith("https://")
        yield str(ca), target


@pytest.fixture
def logins(tmp_path: Path) -> Path:
    path = tmp_path / "logins.csv"
    path.write_text(f"# accounts\n{EMAIL},{PASSWORD}\n")
    return path


def log_in_and_create(rest: RestClient, target: TargetProcess, logins: Path) -> str:
    """What one user does before its WebSocket: log in, refresh, create a consultation."""
    source = LoginTokens(target.base_url, load_login_file(logins), API_KEY, rest=rest)
    token = source.token_for(0)
    # A source whose login the target refuses: only /auth/refresh can produce a token.
    cannot_log_in = LoginTokens(target.base_url, [(EMAIL, "")], API_KEY, rest=rest)
    refreshed = cannot_log_in.refresh(0, Token("stale", None, token.refresh_token))
    assert refreshed.refresh_token != token.refresh_token, "a new pair from /auth/refresh"
    return create_consultation(rest, target.base_url, 0, "nutrition", refreshed.value, API_KEY)


def test_the_private_ca_is_trusted_with_ca_file(
    ca_file: tuple[str, TargetProcess], logins: Path
) -> None:
    ca, target = ca_file
    assert log_in_and_create(RestClient(ca_file=ca), target, logins)


def test_insecure_trusts_any_certificate(ca_file: tuple[str, TargetProcess], logins: Path) -> None:
    _, target = ca_file
    assert log_in_and_create(RestClient(insecure=True), target, logins)


def test_without_the_ca_every_call_fails_as_tls(
    ca_file: tuple[str, TargetProcess], logins: Path
) -> None:
    _, target = ca_file
    rest = RestClient()  # the system CAs know nothing of ours
    source = LoginTokens(target.base_url, load_login_file(logins), API_KEY, rest=rest)
    with pytest.raises(LoginFailed) as login:
        source.token_for(0)
    assert not isinstance(login.value, AuthRefused), "an outage of trust, not a refusal"
    assert (login.value.call, login.value.kind) == ("POST /auth/login", "tls")
    with pytest.raises(RestError) as consultation:
        create_consultation(rest, target.base_url, 0, "nutrition", "any-token", API_KEY)
    assert (consultation.value.call, consultation.value.kind) == ("POST /consultations", "tls")
    with pytest.raises(RestError) as storm:
        order_restart(target.base_url, 0, 0.0, rest)
    assert (storm.value.call, storm.value.kind) == ("POST /admin/restart", "tls")


def test_a_proxy_in_the_environment_is_ignored(
    ca_file: tuple[str, TargetProcess], logins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, target = ca_file
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert log_in_and_create(RestClient(ca_file=ca), target, logins)


def test_a_refused_login_is_counted_by_call_and_status_without_the_email(
    ca_file: tuple[str, TargetProcess], tmp_path: Path
) -> None:
    ca, target = ca_file
    # The reference target refuses only an empty password, which a login file cannot hold.
    source = LoginTokens(target.base_url, [(EMAIL, "")], API_KEY, rest=RestClient(ca_file=ca))
    with pytest.raises(AuthRefused) as info:
        source.token_for(0)
    refused = info.value
    assert (refused.call, refused.kind, refused.status) == ("POST /auth/login", "401", 401)
    assert refused.failure == "POST /auth/login 401"
    text = str(refused)
    assert "\n" not in text and "credential 1" in text
    for secret in (EMAIL, "ana.CANARY", API_KEY):
        assert secret not in text and secret not in repr(refused)


def test_the_storm_orders_its_restart_through_the_same_client(
    ca_file: tuple[str, TargetProcess],
) -> None:
    ca, target = ca_file
    before = target.stats()["restarts"]
    order_restart(target.ws_url, 0, 0.0, RestClient(ca_file=ca))
    assert target.stats()["restarts"] == before + 1


def test_a_locust_process_logs_in_with_its_ca_file(
    ca_file: tuple[str, TargetProcess], logins: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--ca-file`` (read in users/context.py) reaches login and refresh, not only the socket."""
    import argparse

    from loadtest.users.context import UserContext
    from loadtest.users.options import OPTIONS

    ca, target = ca_file
    defaults = {flag.lstrip("-").replace("-", "_"): kw.get("default") for flag, kw in OPTIONS}
    options = argparse.Namespace(**{**defaults, "ca_file": ca})
    for name in ("LOADTEST_TOKEN", "LOADTEST_TOKENS_FILE", "LOADTEST_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOADTEST_LOGIN_FILE", str(logins))
    monkeypatch.setenv("LOADTEST_API_KEY", API_KEY)
    context = UserContext.from_options(target.ws_url, options)
    assert isinstance(context.tokens, LoginTokens)
    assert context.tokens.rest is context.rest, "one client for every REST call"
    assert context.rest is not None and context.rest.ca_file == ca
    assert context.tokens.token_for(0).refresh_token
