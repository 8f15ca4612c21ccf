"""The scrubber that keeps secrets out of output, and its place in ``logging``."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.redaction import (
    REDACTED,
    LogRedaction,
    Redactor,
    ScrubbingWriter,
    install_log_redaction,
    known_secrets,
)
from tests.targets import mint

API_KEY = "CANARYKEY123"
PASSWORD = "CANARY pass/word,789"
redactor = Redactor([API_KEY, PASSWORD])


class TestShapes:
    """Secrets made at run time are found by what they look like."""

    def test_a_jwt_anywhere(self) -> None:
        token = mint("u1", secret="some-other-secret-0123456789abcdef")
        assert redactor.scrub(f"refused {token}.") == f"refused {REDACTED}."

    def test_an_unsigned_jwt(self) -> None:
        assert redactor.scrub("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.") == REDACTED

    def test_the_token_query_parameter_of_a_request_line(self) -> None:
        line = "> GET /ws/consultation?consultation_id=c-1&token=opaque-value_1 HTTP/1.1"
        expected = f"> GET /ws/consultation?consultation_id=c-1&token={REDACTED} HTTP/1.1"
        assert redactor.scrub(line) == expected

    @pytest.mark.parametrize("name", ["access_token", "refresh_token", "api_key", "apiKey",
                                      "password", "client_secret", "my_token"])
    def test_other_secret_parameters(self, name: str) -> None:
        assert redactor.scrub(f"/x?{name}=s3cr3t&page=2") == f"/x?{name}={REDACTED}&page=2"

    @pytest.mark.parametrize("header", ["X-API-Key", "x-api-key", "X-Api-Key", "API-KEY"])
    def test_the_api_key_header_in_any_case(self, header: str) -> None:
        assert redactor.scrub(f"> {header}: opaque-key") == f"> {header}: {REDACTED}"

    def test_the_whole_authorization_header_value(self) -> None:
        assert redactor.scrub("Authorization: Bearer abc.def") == f"Authorization: {REDACTED}"

    @pytest.mark.parametrize("key", ["password", "access_token", "refresh_token", "token"])
    def test_json_values(self, key: str) -> None:
        body = json.dumps({"email": "a@example.com", key: 'he said "x"', "n": 1})
        assert json.loads(redactor.scrub(body)) == {"email": "a@example.com", key: REDACTED,
                                                     "n": 1}

    def test_python_reprs_of_headers(self) -> None:
        assert redactor.scrub("{'X-API-Key': 'k1', 'Host': 'h'}") == (
            f"{{'X-API-Key': '{REDACTED}', 'Host': 'h'}}")
        assert redactor.scrub("[('X-API-Key', 'k1'), ('Host', 'h')]") == (
            f"[('X-API-Key', '{REDACTED}'), ('Host', 'h')]")

    def test_the_password_of_a_url(self) -> None:
        assert redactor.scrub("--host wss://coach:pw1@api.example.com/ws") == (
            f"--host wss://coach:{REDACTED}@api.example.com/ws")

    @pytest.mark.parametrize("line", [
        "against http://127.0.0.1:38239 (embedded target)",
        "wss://user@host.example.com:443/ws",
        "> Sec-WebSocket-Key: PlMalzFgIfDKStdGdfQW/w==",
        "< Sec-WebSocket-Accept: uaitUyFxGpKVmizswdohxLG+Rk4=",
        "> GET /ws/consultation?consultation_id=loadtest-user-0.859c HTTP/1.1",
        "< TEXT '{\"type\":\"ai_message_chunk\",\"message_id\":\"m-1\",\"content\":\"Eat\"}'",
        "ttfc_ms             1   322.81   322.81",
        "--id-key message_id",
    ])
    def test_text_without_secrets_is_untouched(self, line: str) -> None:
        assert redactor.scrub(line) == line

    def test_scrubbing_twice_changes_nothing(self) -> None:
        once = redactor.scrub(f"?token=t1 X-API-Key: {API_KEY} {{\"password\": \"p\"}}")
        assert redactor.scrub(once) == once


class TestKnownSecrets:
    """Secrets the process was given are found literally, however they are spelled."""

    def test_as_given_url_encoded_and_json_escaped(self) -> None:
        from urllib.parse import quote, quote_plus

        for spelling in (PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD),
                         json.dumps(PASSWORD)[1:-1]):
            assert redactor.scrub(f"login as {spelling} failed") == f"login as {REDACTED} failed"

    def test_a_secret_containing_another_is_removed_whole(self) -> None:
        assert Redactor(["abcd", "abcdefgh"]).scrub("x abcdefgh y") == f"x {REDACTED} y"

    def test_very_short_values_are_left_to_the_shapes(self) -> None:
        short = Redactor(["abc", ""])
        assert len(short) == 0
        assert short.scrub("abc password=abc") == f"abc password={REDACTED}"

    def test_added_at_run_time(self) -> None:
        late = Redactor()
        late.add("opaque-session-token")
        assert late.scrub("got opaque-session-token") == f"got {REDACTED}"

    def test_from_the_environment_and_the_files_it_names(self, tmp_path: Path) -> None:
        tokens = tmp_path / "tokens.txt"
        tokens.write_text("# comment\nopaque-token-1\n\n  opaque-token-2  \n")
        logins = tmp_path / "logins.csv"
        logins.write_text("a@example.com, pass,with,commas\nb@example.com,second-pass\n")
        environ = {
            "LOADTEST_API_KEY": "env-api-key", "LOADTEST_TOKEN": "env-token",
            "LOADTEST_JWT_SECRET": "env-jwt-secret", "LOADTEST_TOKENS_FILE": str(tokens),
            "LOADTEST_LOGIN_FILE": str(logins), "HOME": "/root",
        }  # fmt: skip
        assert sorted(known_secrets(environ)) == sorted([
            "env-api-key", "env-token", "env-jwt-secret", "opaque-token-1", "opaque-token-2",
            "pass,with,commas", "second-pass"])
        assert Redactor.from_environment(environ).scrub("pw second-pass") == f"pw {REDACTED}"

    def test_a_missing_file_adds_nothing(self, tmp_path: Path) -> None:
        assert known_secrets({"LOADTEST_TOKENS_FILE": str(tmp_path / "absent")}) == []


class CountingRedactor(Redactor):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets)
        self.calls = 0

    def scrub(self, text: str) -> str:
        self.calls += 1
        return super().scrub(text)


@pytest.fixture
def installed() -> Iterator[LogRedaction]:
    redaction = install_log_redaction(CountingRedactor([API_KEY]))
    yield redaction
    redaction.uninstall()


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with a handler made *after* the redaction was installed, as Locust's are.

    Outside logging's tree (no parent), so that pytest's own capture handlers on the root
    logger neither see its records nor format them.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.Logger("tests.redaction", logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream


class TestLogRecords:
    """Every handler writes scrubbed records, however the secret got into them."""

    def test_percent_args_are_scrubbed_after_formatting(self, installed: LogRedaction,
                                                       log: tuple) -> None:
        logger, stream = log
        logger.info("> %s: %s", "X-API-Key", "runtime-key")  # websockets' header line
        logger.info("> GET %s HTTP/1.1", "/ws?token=t1")
        assert stream.getvalue() == (
            f"INFO tests.redaction: > X-API-Key: {REDACTED}\n"
            f"INFO tests.redaction: > GET /ws?token={REDACTED} HTTP/1.1\n")

    def test_exception_messages_and_tracebacks(self, installed: LogRedaction, log: tuple) -> None:
        logger, stream = log
        try:
            raise ValueError(f"refused key {API_KEY}")
        except ValueError:
            logger.exception("connect failed")
        assert API_KEY not in stream.getvalue()
        assert f"ValueError: refused key {REDACTED}" in stream.getvalue()

    def test_stack_info(self, installed: LogRedaction, log: tuple) -> None:
        logger, stream = log
        # The stack shows the source of this very line, canary included.
        logger.info("here", stack_info=True, extra={"key": "CANARYKEY123"})
        assert "Stack (most recent call last)" in stream.getvalue()
        assert API_KEY not in stream.getvalue()

    def test_bad_logging_arguments_do_not_leak_raw(self, installed: LogRedaction,
                                                   log: tuple) -> None:
        logger, stream = log
        logger.info("two %s %s", API_KEY)
        assert API_KEY not in stream.getvalue()
        assert "bad logging arguments" in stream.getvalue()

    def test_records_below_the_handlers_level_are_never_scanned(self, installed: LogRedaction,
                                                                log: tuple) -> None:
        logger, stream = log
        redactor = installed.redactor
        assert isinstance(redactor, CountingRedactor)
        for _ in range(100):
            logger.debug("< TEXT %r", "chunk")
        assert redactor.calls == 0 and stream.getvalue() == ""

    def test_a_factory_installed_before_is_chained_and_scrubbed(self, log: tuple) -> None:
        logger, stream = log
        original = logging.getLogRecordFactory()
        seen: list[str] = []

        def plugin_factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = original(*args, **kwargs)
            seen.append(record.name)
            return record

        logging.setLogRecordFactory(plugin_factory)
        redaction = install_log_redaction(Redactor([API_KEY]))
        try:
            logger.info("key %s", API_KEY)
        finally:
            redaction.uninstall()
            logging.setLogRecordFactory(original)
        assert seen == ["tests.redaction"]
        assert stream.getvalue() == f"INFO tests.redaction: key {REDACTED}\n"

    def test_installing_again_replaces_the_redactor_without_stacking(
            self, installed: LogRedaction) -> None:
        factory = logging.getLogRecordFactory()
        again = install_log_redaction(Redactor(["other-secret"]))
        assert again is installed and logging.getLogRecordFactory() is factory
        assert again.redactor.scrub("other-secret") == REDACTED

    def test_uninstall_restores_the_previous_factory(self) -> None:
        before = logging.getLogRecordFactory()
        install_log_redaction(Redactor()).uninstall()
        assert logging.getLogRecordFactory() is before


class TestScrubbingWriter:
    """Text written without logging (print, tracebacks) is scrubbed line by line."""

    def test_a_secret_printed_in_pieces_is_found_in_the_whole_line(self) -> None:
        out = io.StringIO()
        print("X-API-Key:", "runtime-key", "token=", file=ScrubbingWriter(out, redactor))
        print("?token=", "t1", sep="", file=ScrubbingWriter(out, redactor))
        assert out.getvalue() == f"X-API-Key: {REDACTED}\n?token={REDACTED}\n"

    def test_nothing_is_passed_on_before_the_end_of_its_line(self) -> None:
        out = io.StringIO()
        writer = ScrubbingWriter(out, redactor)
        assert writer.write(f"one\ntwo {API_KEY[:4]}") == len(f"one\ntwo {API_KEY[:4]}")
        writer.write(f"{API_KEY[4:]} three")
        assert out.getvalue() == "one\n"
        writer.flush()  # a partial line goes out on flush, as a prompt must
        assert out.getvalue() == f"one\ntwo {REDACTED} three"

    def test_the_rest_is_the_wrapped_streams(self) -> None:
        out = io.StringIO()
        assert ScrubbingWriter(out, redactor).getvalue == out.getvalue
