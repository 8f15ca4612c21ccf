"""Token sources: where JWTs come from, and that no secret ever leaks into an error or a repr."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from loadtest.auth import (
    CHOOSE_ONE,
    AuthRefused,
    LoginTokens,
    MintedTokens,
    StaticToken,
    Token,
    TokenFile,
    TokenSource,
    api_key_from_environment,
    choose_token_source,
    http_base_url,
    jwt_expiry,
    load_login_file,
    token_source_from_options,
    without_token_sources,
)
from loadtest.errors import AuthError, LoadtestError, UsageError
from loadtest.rest import RestError

SECRET = "test-secret-that-is-at-least-32-bytes-long!"
NOW = 1_700_000_000.0  # fixed, in the past: tests never read the clock


def make_jwt(exp: float | None, secret: str = SECRET) -> str:
    claims: dict[str, object] = {"sub": "someone"}
    if exp is not None:
        claims["exp"] = int(exp)
    return jwt.encode(claims, secret, algorithm="HS256")


def assert_one_line_without(exc: LoadtestError, *secrets: str) -> None:
    """The error is fit for a terminal and carries none of the secrets."""
    text = str(exc)
    assert text and "\n" not in text
    for secret in secrets:
        assert secret not in text
        assert secret not in repr(exc)


class TestToken:
    def test_expiry_is_read_from_the_jwt_without_verifying(self) -> None:
        token = Token.parse(make_jwt(NOW + 60, secret="a-key-we-do-not-have-0123456789abcdef"))
        assert token.expires_at == NOW + 60

    def test_opaque_tokens_have_unknown_expiry_and_never_expire(self) -> None:
        token = Token.parse("opaque-token")
        assert token.expires_at is None
        assert not token.is_expired(now=NOW + 10**9)

    def test_fallback_expiry_only_for_opaque_tokens(self) -> None:
        assert Token.parse("opaque", expires_at=NOW).expires_at == NOW
        assert Token.parse(make_jwt(NOW + 60), expires_at=NOW).expires_at == NOW + 60

    @pytest.mark.parametrize("value", ["a.b.c", "a.!!!.c", "x.bnVsbA.y", "a.eyJleHAiOiJzb29uIn0.c"])
    def test_garbage_that_looks_like_a_jwt_has_no_expiry(self, value: str) -> None:
        assert jwt_expiry(value) is None

    def test_is_expired_with_skew(self) -> None:
        token = Token.parse(make_jwt(NOW + 60))
        assert not token.is_expired(now=NOW)
        assert not token.is_expired(now=NOW + 54)
        assert token.is_expired(now=NOW + 55)  # within the default 5 s skew
        assert not token.is_expired(now=NOW + 55, skew_s=0)
        assert token.is_expired(now=NOW + 61, skew_s=0)

    def test_repr_shows_a_fingerprint_never_the_value(self) -> None:
        value = make_jwt(NOW)
        token = Token.parse(value, refresh_token="refresh-secret-value")
        for text in (repr(token), str(token), f"{token}", repr([token])):
            assert value not in text
            assert "refresh-secret-value" not in text
            assert token.fingerprint in text
        assert len(token.fingerprint) == 8


class TestStaticToken:
    def test_same_token_for_everyone(self) -> None:
        source = StaticToken("tok-123")
        assert source.token_for(0) == source.token_for(99)
        assert source.token_for(0).value == "tok-123"
        assert isinstance(source, TokenSource)

    def test_refresh_is_impossible_and_says_so_without_the_token(self) -> None:
        source = StaticToken("tok-123")
        with pytest.raises(AuthError) as info:
            source.refresh(0, source.token_for(0))
        assert_one_line_without(info.value, "tok-123")
        assert "tok-123" not in repr(source)

    def test_empty_token_is_a_usage_error(self) -> None:
        with pytest.raises(UsageError):
            StaticToken("  ")


class TestTokenFile:
    def test_round_robin_skipping_comments_and_blank_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "tokens.txt"
        path.write_text("# tokens for staging\n\ntok-a\n  tok-b  \n# retired: tok-x\ntok-c\n")
        source = TokenFile(path)
        assert [source.token_for(i).value for i in range(7)] == [
            "tok-a", "tok-b", "tok-c", "tok-a", "tok-b", "tok-c", "tok-a",
        ]  # fmt: skip
        assert "tok-a" not in repr(source)

    @pytest.mark.parametrize("content", [None, "", "# only a comment\n\n"])
    def test_missing_or_empty_file_is_a_one_line_usage_error(
        self, tmp_path: Path, content: str | None
    ) -> None:
        path = tmp_path / "tokens.txt"
        if content is not None:
            path.write_text(content)
        with pytest.raises(UsageError) as info:
            TokenFile(path)
        assert str(path) in str(info.value)
        assert_one_line_without(info.value)

    def test_refresh_moves_to_the_next_unexpired_token(self, tmp_path: Path) -> None:
        old, stale, fresh = make_jwt(NOW - 10), make_jwt(NOW - 5), make_jwt(NOW + 600)
        path = tmp_path / "tokens.txt"
        path.write_text(f"{old}\n{stale}\n{fresh}\n")
        source = TokenFile(path, clock=lambda: NOW)
        assert source.refresh(0, source.token_for(0)).value == fresh

    def test_refresh_skips_the_refused_token_even_if_not_expired(self, tmp_path: Path) -> None:
        path = tmp_path / "tokens.txt"
        path.write_text("tok-a\ntok-b\n")
        source = TokenFile(path)
        assert source.refresh(0, source.token_for(0)).value == "tok-b"
        assert source.refresh(1, source.token_for(1)).value == "tok-a"

    def test_refresh_fails_when_all_are_expired(self, tmp_path: Path) -> None:
        values = [make_jwt(NOW - 100), make_jwt(NOW - 50)]
        path = tmp_path / "tokens.txt"
        path.write_text("\n".join(values))
        source = TokenFile(path, clock=lambda: NOW)
        with pytest.raises(AuthError) as info:
            source.refresh(0, source.token_for(0))
        assert_one_line_without(info.value, *values)


class TestMintedTokens:
    def test_minted_token_verifies_with_the_secret_and_has_the_claims(self) -> None:
        source = MintedTokens(SECRET, ttl_s=120, clock=lambda: NOW)
        token = source.token_for(7)
        claims = jwt.decode(
            token.value, SECRET, algorithms=["HS256"], options={"verify_exp": False}
        )
        assert claims == {
            "sub": "loadtest-user-7",
            "iat": int(NOW),
            "exp": int(NOW) + 120,
            "type": "access",
        }
        assert token.expires_at == NOW + 120
        assert token.refresh_token is None

    def test_users_get_distinct_subjects_and_extra_claims(self) -> None:
        source = MintedTokens(SECRET, subject_prefix="u", claims={"aud": "fitiq"})
        claims = jwt.decode(
            source.token_for(3).value, SECRET, algorithms=["HS256"], audience="fitiq"
        )
        assert claims["sub"] == "u3"
        assert claims["aud"] == "fitiq"

    def test_refresh_re_mints_a_later_token(self) -> None:
        clock = iter([NOW, NOW + 1000]).__next__
        source = MintedTokens(SECRET, ttl_s=900, clock=clock)
        first = source.token_for(1)
        assert first.is_expired(now=NOW + 1000)
        second = source.refresh(1, first)
        assert not second.is_expired(now=NOW + 1000)

    def test_secret_never_in_repr_or_errors(self) -> None:
        assert SECRET not in repr(MintedTokens(SECRET))
        with pytest.raises(UsageError):
            MintedTokens("")
        with pytest.raises(UsageError) as info:
            MintedTokens(SECRET, ttl_s=0)
        assert_one_line_without(info.value, SECRET)


class TestLoginFile:
    def test_parses_email_password_splitting_on_the_first_comma(self, tmp_path: Path) -> None:
        path = tmp_path / "logins.csv"
        path.write_text(
            "# test accounts\nalice@example.com,pa,ss,word\n\n bob@example.com , pw2 \n"
        )
        credentials = load_login_file(path)
        assert [(c.email, c.password, c.name) for c in credentials] == [
            ("alice@example.com", "pa,ss,word", "logins.csv:2"),
            ("bob@example.com", "pw2", "logins.csv:4"),
        ]

    def test_a_credential_is_shown_by_its_line_never_its_email_or_password(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "logins.csv"
        path.write_text("alice@example.com,hunter2\n")
        [credential] = load_login_file(path)
        assert repr(credential) == "Credential(logins.csv:1)"

    @pytest.mark.parametrize("bad", ["no-comma-hunter2", ",hunter2", "carol@example.com,"])
    def test_malformed_line_names_the_line_never_the_password(
        self, tmp_path: Path, bad: str
    ) -> None:
        path = tmp_path / "logins.csv"
        path.write_text(f"alice@example.com,pw1\n{bad}\n")
        with pytest.raises(UsageError) as info:
            load_login_file(path)
        assert f"{path}:2:" in str(info.value)
        assert_one_line_without(info.value, "hunter2")

    def test_missing_and_empty_files(self, tmp_path: Path) -> None:
        with pytest.raises(UsageError, match="not found"):
            load_login_file(tmp_path / "nope.csv")
        (tmp_path / "empty.csv").write_text("# nothing\n")
        with pytest.raises(UsageError, match="no credentials"):
            load_login_file(tmp_path / "empty.csv")


class TestOneTokenSourceRule:
    """The rule the CLI, the launcher and the scenarios share (loadtest.auth.environment)."""

    def test_nothing_typed_and_nothing_set_means_no_auth(self) -> None:
        assert choose_token_source({}, environ={}) is None

    def test_one_typed_beats_any_in_the_environment(self) -> None:
        stale = {"LOADTEST_JWT_SECRET": "stale", "LOADTEST_TOKEN": "x"}
        choice = choose_token_source({"tokens_file": "t.txt"}, environ=stale)
        assert choice is not None and choice.name == "tokens_file"
        assert not choice.from_environment

    def test_empty_environment_values_count_as_unset(self) -> None:
        environ = {"LOADTEST_TOKEN": "", "LOADTEST_LOGIN_FILE": "", "LOADTEST_JWT_SECRET": SECRET}
        choice = choose_token_source({}, environ)
        assert choice is not None and choice.name == "jwt_secret" and choice.from_environment

    def test_an_empty_typed_value_is_a_mistake_not_a_request_for_no_auth(self) -> None:
        with pytest.raises(UsageError, match="--token is empty"):
            choose_token_source({"token": ""}, environ={"LOADTEST_JWT_SECRET": SECRET})

    def test_two_in_the_environment_are_named_by_variable_never_by_value(self) -> None:
        environ = {"LOADTEST_TOKEN": "tok-secret", "LOADTEST_JWT_SECRET": SECRET}
        with pytest.raises(UsageError) as info:
            choose_token_source({}, environ)
        assert str(info.value) == (
            f"{CHOOSE_ONE}; got LOADTEST_TOKEN, LOADTEST_JWT_SECRET from the environment"
        )
        assert_one_line_without(info.value, "tok-secret", SECRET)

    def test_a_choice_travels_to_a_child_as_its_one_variable(self) -> None:
        choice = choose_token_source({"login_file": "logins.csv"}, environ={})
        assert choice is not None
        assert choice.environment() == {"LOADTEST_LOGIN_FILE": str(Path("logins.csv").resolve())}
        assert "logins.csv" not in repr(choice)
        parent = {"LOADTEST_JWT_SECRET": "stale", "LOADTEST_API_KEY": "k", "PATH": "/bin"}
        assert without_token_sources(parent) == {"LOADTEST_API_KEY": "k", "PATH": "/bin"}

    def test_the_api_key_variable_counts_empty_as_unset(self) -> None:
        assert api_key_from_environment({"LOADTEST_API_KEY": ""}) is None
        assert api_key_from_environment({"LOADTEST_API_KEY": "k"}) == "k"


def test_the_package_still_exports_every_name_it_had() -> None:
    import loadtest.auth

    for name in loadtest.auth.__all__:
        assert getattr(loadtest.auth, name) is not None
    assert sorted(loadtest.auth.__all__) == sorted(loadtest.auth._HOMES)


class TestFromOptions:
    def test_none_given_means_no_auth(self) -> None:
        assert token_source_from_options(environ={}) is None

    def test_each_option_builds_its_source(self, tmp_path: Path) -> None:
        tokens = tmp_path / "tokens.txt"
        tokens.write_text("tok\n")
        logins = tmp_path / "logins.csv"
        logins.write_text("a@example.com,pw\n")
        assert isinstance(token_source_from_options(token="t", environ={}), StaticToken)
        assert isinstance(token_source_from_options(tokens_file=tokens, environ={}), TokenFile)
        assert isinstance(token_source_from_options(jwt_secret=SECRET, environ={}), MintedTokens)
        login = token_source_from_options(
            login_file=logins, base_url="wss://api.example.com/", environ={}
        )
        assert isinstance(login, LoginTokens)
        assert login.base_url == "https://api.example.com"

    def test_environment_fallbacks(self, tmp_path: Path) -> None:
        source = token_source_from_options(environ={"LOADTEST_TOKEN": "env-tok"})
        assert isinstance(source, StaticToken)
        assert source.token_for(0).value == "env-tok"
        source = token_source_from_options(environ={"LOADTEST_JWT_SECRET": SECRET})
        assert isinstance(source, MintedTokens)

    def test_explicit_option_wins_over_environment(self) -> None:
        source = token_source_from_options(jwt_secret=SECRET, environ={"LOADTEST_TOKEN": "x"})
        assert isinstance(source, MintedTokens)

    def test_empty_environment_values_count_as_unset(self) -> None:
        environ = {"LOADTEST_TOKEN": "", "LOADTEST_JWT_SECRET": SECRET}
        assert isinstance(token_source_from_options(environ=environ), MintedTokens)

    def test_more_than_one_is_a_usage_error_without_secrets(self) -> None:
        with pytest.raises(UsageError) as info:
            token_source_from_options(token="tok-secret", jwt_secret=SECRET, environ={})
        assert str(info.value) == f"{CHOOSE_ONE}; got --token, --jwt-secret"
        assert_one_line_without(info.value, "tok-secret", SECRET)
        environ = {"LOADTEST_TOKEN": "tok-secret", "LOADTEST_JWT_SECRET": SECRET}
        with pytest.raises(UsageError) as info:
            token_source_from_options(environ=environ)
        assert_one_line_without(info.value, "tok-secret", SECRET)

    def test_login_file_needs_a_target(self, tmp_path: Path) -> None:
        logins = tmp_path / "logins.csv"
        logins.write_text("a@example.com,pw\n")
        with pytest.raises(UsageError, match="--host"):
            token_source_from_options(login_file=logins, environ={})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("wss://api.example.com/", "https://api.example.com"),
        ("https://api.example.com/v1/", "https://api.example.com/v1"),
        ("HTTP://h:1", "http://h:1"),
    ],
)
def test_http_base_url(url: str, expected: str) -> None:
    assert http_base_url(url) == expected


@pytest.mark.parametrize("url", ["ftp://h", "localhost:8080", "ws://"])
def test_http_base_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(UsageError):
        http_base_url(url)


# --- LoginTokens against a real HTTP server, in a subprocess (this process is gevent-patched) ---

AUTH_SERVER = textwrap.dedent(
    """
    import itertools, json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    USERS = {"alice@example.com": "alice-PASSWORD-1", "bob@example.com": "bob-PASSWORD-2"}
    counter = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def tokens(self, kind, who):
            n = next(counter)
            return {"access_token": f"{kind}-access-{who}-{n}",
                    "refresh_token": f"refresh-{who}-{n}",
                    "token_type": "Bearer", "expires_in": 900}

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers.get("X-API-Key") != "key-123":
                return self.answer(403, {"error": "bad api key"})
            if self.path == "/auth/login":
                if USERS.get(body.get("email")) != body.get("password"):
                    return self.answer(401, {"error": "invalid credentials"})
                return self.answer(200, {"data": self.tokens("login", body["email"])})
            if self.path == "/auth/refresh":
                refresh = body.get("refresh_token", "")
                if refresh.startswith("refresh-"):
                    return self.answer(200, self.tokens("refreshed", refresh.split("-")[1]))
                if refresh == "server-error":
                    return self.answer(503, {"error": "down"})
                return self.answer(401, {"error": "refresh token revoked"})
            self.answer(404, {"error": "not found"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture(scope="module")
def auth_server() -> Iterator[str]:
    """Base URL of a tiny login/refresh server running in a subprocess."""
    process = subprocess.Popen(
        [sys.executable, "-c", AUTH_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=5)


CREDENTIALS = [("alice@example.com", "alice-PASSWORD-1"), ("bob@example.com", "bob-PASSWORD-2")]


class TestLoginTokens:
    def test_logs_users_in_round_robin(self, auth_server: str) -> None:
        source = LoginTokens(auth_server, CREDENTIALS, api_key="key-123", clock=lambda: NOW)
        tokens = [source.token_for(i) for i in range(3)]
        assert [t.value.split("-")[2] for t in tokens] == [
            "alice@example.com", "bob@example.com", "alice@example.com",
        ]  # fmt: skip
        assert all(t.value.startswith("login-access-") for t in tokens)
        assert tokens[0].expires_at == NOW + 900
        assert tokens[0].refresh_token is not None and tokens[0].refresh_token.startswith(
            "refresh-"
        )

    def test_ws_url_and_proxy_environment_are_handled(
        self, auth_server: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A proxy that does not exist: honouring it would fail the login.
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        source = LoginTokens(auth_server.replace("http://", "ws://"), CREDENTIALS, "key-123")
        assert source.token_for(0).value.startswith("login-access-")

    def test_refresh_uses_the_refresh_endpoint(self, auth_server: str) -> None:
        source = LoginTokens(auth_server, CREDENTIALS, api_key="key-123")
        refreshed = source.refresh(0, source.token_for(0))
        assert refreshed.value.startswith("refreshed-access-")

    def test_refused_refresh_falls_back_to_login(self, auth_server: str) -> None:
        source = LoginTokens(auth_server, CREDENTIALS, api_key="key-123")
        revoked = Token("old-access", NOW, refresh_token="revoked")
        assert source.refresh(1, revoked).value.startswith("login-access-bob")
        no_refresh = Token("old-access", NOW)
        assert source.refresh(0, no_refresh).value.startswith("login-access-alice")

    def test_refresh_server_error_is_an_auth_error_not_a_login(self, auth_server: str) -> None:
        source = LoginTokens(auth_server, CREDENTIALS, api_key="key-123")
        with pytest.raises(AuthError) as info:
            source.refresh(0, Token("old-access", NOW, refresh_token="server-error"))
        assert "503" in str(info.value)
        assert not isinstance(info.value, AuthRefused)  # an outage, not a refusal
        assert_one_line_without(info.value, "server-error", "old-access")

    def test_wrong_password_is_a_401_auth_error_without_the_password(
        self, auth_server: str
    ) -> None:
        source = LoginTokens(auth_server, [("alice@example.com", "wrong-PASSWORD")], "key-123")
        with pytest.raises(AuthRefused) as info:
            source.token_for(0)
        assert "401" in str(info.value)
        assert info.value.status == 401
        assert (info.value.call, info.value.kind) == ("POST /auth/login", "401")
        assert "credential 1" in str(info.value), "named by its place, not its email"
        assert_one_line_without(info.value, "wrong-PASSWORD", "alice@example.com")

    def test_a_refusal_from_a_login_file_names_its_line(
        self, auth_server: str, tmp_path: Path
    ) -> None:
        path = tmp_path / "logins.csv"
        path.write_text("# staging\nalice@example.com,wrong-PASSWORD\n")
        source = LoginTokens(auth_server, load_login_file(path), "key-123")
        with pytest.raises(AuthRefused) as info:
            source.token_for(0)
        assert "logins.csv:2" in str(info.value)
        assert_one_line_without(info.value, "wrong-PASSWORD", "alice@example.com")

    def test_login_failures_are_rest_errors_to_count_by_call_and_kind(
        self, auth_server: str
    ) -> None:
        source = LoginTokens(auth_server, CREDENTIALS, api_key="key-123")
        with pytest.raises(RestError) as info:
            source.refresh(0, Token("old-access", NOW, refresh_token="server-error"))
        assert isinstance(info.value, AuthError), "and still an AuthError for older callers"
        assert info.value.failure == "POST /auth/refresh 503"
        assert info.value.elapsed_ms >= 0

    def test_api_key_is_sent_and_never_shown(self, auth_server: str) -> None:
        source = LoginTokens(auth_server, CREDENTIALS, api_key="wrong-key-456")
        with pytest.raises(AuthError) as info:
            source.token_for(0)
        assert "403" in str(info.value)
        assert_one_line_without(info.value, "wrong-key-456", "alice-PASSWORD-1")
        assert "wrong-key-456" not in repr(source)
        assert "alice-PASSWORD-1" not in repr(source)

    def test_unreachable_target_is_a_one_line_auth_error(self, auth_server: str) -> None:
        # Port 9 (discard) on loopback is closed on any sane test machine.
        source = LoginTokens("http://127.0.0.1:9", CREDENTIALS, timeout_s=2)
        started = time.monotonic()
        with pytest.raises(AuthError) as info:
            source.token_for(0)
        assert time.monotonic() - started < 2
        assert_one_line_without(info.value, "alice-PASSWORD-1")
