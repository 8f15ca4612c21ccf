"""The client's messages as they go on the wire: id key, exact bytes, timestamps."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtest.protocol import MessageType, encode_message, utc_timestamp


class TestEncoding:
    @pytest.mark.parametrize("id_key", ["message_id", "messageId"])
    def test_user_message_carries_the_chosen_id_key(self, id_key: str) -> None:
        body = json.loads(
            encode_message(MessageType.USER_MESSAGE, "u1", "Hello", id_key=id_key)
        )
        assert body["type"] == "user_message"
        assert body[id_key] == "u1"
        assert body["content"] == "Hello"
        assert body["timestamp"].endswith("Z")

    @settings(max_examples=300, deadline=None)
    @given(st.text(), st.sampled_from(["message_id", "messageId"]))
    def test_bytes_are_those_of_compact_json_dumps(self, content: str, id_key: str) -> None:
        stamp = "2026-12-02T10:00:00.123Z"
        body = {"type": "user_message", "content": content, id_key: "u1", "timestamp": stamp}
        try:
            expected = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:  # a lone surrogate: not sendable either way
            with pytest.raises(msgspec.EncodeError):
                encode_message(MessageType.USER_MESSAGE, "u1", content, id_key=id_key,
                               timestamp=stamp)  # fmt: skip
            return
        encoded = encode_message(
            MessageType.USER_MESSAGE, "u1", content, id_key=id_key, timestamp=stamp
        )
        assert encoded == expected

    def test_the_timestamp_is_now_in_utc_to_the_millisecond(self) -> None:
        before = datetime.now(UTC)
        stamp = utc_timestamp()
        after = datetime.now(UTC)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before - timedelta(milliseconds=1) <= moment <= after

    def test_a_given_moment_is_written_as_the_guide_writes_it(self) -> None:
        moment = datetime(2025, 1, 27, 10, 0, 1, 987654, tzinfo=UTC)
        assert utc_timestamp(moment) == "2025-01-27T10:00:01.987Z"

    def test_unknown_id_key_is_refused(self) -> None:
        with pytest.raises(ValueError):
            encode_message(MessageType.PING, "p1", id_key="id")
