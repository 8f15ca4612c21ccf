"""The target's pure parts: fault syntax and dice, profiles, consultation ids."""

from __future__ import annotations

import json
import random

import pytest

from loadtest.target.auth import Authority, TokenRejected, user_id_for
from loadtest.target.faults import (
    DEFAULT_OVERSIZED_BYTES,
    Fault,
    parse_fault_option,
    parse_fault_value,
    roll_stream_faults,
)
from loadtest.target.frames import FrameEncoder
from loadtest.target.profiles import build_profile


@pytest.mark.parametrize(("spec", "expected"), [
    ("drop=0.1", Fault("drop", rate=0.1)),
    ("drop=10%", Fault("drop", rate=0.1)),
    ("stall=0.05:2000", Fault("stall", rate=0.05, ms=2000)),
    ("slow_handshake=1:250", Fault("slow_handshake", rate=1, ms=250)),
    ("oversized=1", Fault("oversized", rate=1, size=DEFAULT_OVERSIZED_BYTES)),
    ("oversized=0.5:4096", Fault("oversized", rate=0.5, size=4096)),
    ("restart=60:5", Fault("restart", every_s=60, refuse_s=5)),
])
def test_fault_specs_parse(spec, expected):
    assert parse_fault_option(spec) == expected
    assert parse_fault_value(expected.kind, expected.text) == expected  # canonical round trip


@pytest.mark.parametrize("spec", ["drop", "drop=", "drop=x", "drop=-0.1", "drop=1.01",
                                  "stall=0.5", "stall=0.5:-1", "restart=0:5", "restart=5",
                                  "nope=1", "drop=0.1:5"])
def test_bad_fault_specs_raise_one_line_value_errors(spec):
    with pytest.raises(ValueError) as info:
        parse_fault_option(spec)
    assert "\n" not in str(info.value)


def test_terminal_faults_take_precedence_in_order_and_others_combine():
    faults = {f.kind: f for f in (Fault("drop", rate=1), Fault("error", rate=1),
                                  Fault("stall", rate=1, ms=30), Fault("binary", rate=1))}
    decided = roll_stream_faults(faults, random.Random(1))
    assert decided.terminal == "error"
    assert decided.stall_ms == 30 and decided.binary
    assert decided.kinds == ["error", "stall", "binary"]
    assert roll_stream_faults({}, random.Random(1)).kinds == []


def test_rates_roll_close_to_their_probability():
    fault = Fault("drop", rate=0.2)
    rng = random.Random(5)
    hits = sum(fault.hits(rng) for _ in range(10_000))
    assert 1800 < hits < 2200
    assert not Fault("drop", rate=0).hits(rng)


def test_fixed_plan_offsets_are_absolute():
    plan = build_profile("fixed", {"ttfc_ms": 50, "chunk_gap_ms": "10", "chunks": 4}).plan(
        random.Random())
    assert plan.start_s == 0
    assert plan.chunk_s == pytest.approx((0.05, 0.06, 0.07, 0.08))
    assert plan.complete_s == pytest.approx(0.08)


def test_realistic_plans_are_seeded_and_bounded():
    profile = build_profile("realistic", {"chunks": 6, "chunks_max": "12"})
    first = [profile.plan(random.Random(3)) for _ in range(2)]
    assert first[0] == first[1]
    counts = {len(profile.plan(random.Random(seed)).chunk_s) for seed in range(200)}
    assert max(counts) <= 12 and min(counts) >= 1 and len(counts) > 5


@pytest.mark.parametrize(("name", "params", "needle"), [
    ("bogus", {}, "unknown profile"),
    ("fixed", {"slots": 2}, "no parameter"),
    ("fixed", {"chunks": "1.5"}, "whole number"),
    ("fixed", {"ttfc_ms": "soon"}, "not a number"),
    ("fixed", {"chunks": 0}, "at least 1"),
    ("capacity", {"slots": 0}, "at least 1"),
    ("realistic", {"gap_sigma": -1}, "negative"),
])
def test_bad_profile_parameters(name, params, needle):
    with pytest.raises(ValueError, match=needle):
        build_profile(name, params)


def test_consultation_ids_know_their_owner_and_reject_forgeries():
    authority = Authority("k" * 32, 60, 600)
    other = Authority("j" * 32, 60, 600)
    owner = user_id_for("a@example.com")
    consultation = authority.new_consultation_id(owner)
    assert authority.consultation_owner(consultation) == owner
    assert other.consultation_owner(consultation) is None
    assert authority.consultation_owner(consultation[:-1] + "0") in (None, owner)
    assert authority.consultation_owner("plain-id") is None


def test_tokens_round_trip_and_types_are_checked():
    authority = Authority("k" * 32, 60, 600)
    pair = authority.mint_pair("user_x")
    assert authority.verify(pair.access_token)["sub"] == "user_x"
    assert authority.verify(pair.refresh_token, token_type="refresh")["sub"] == "user_x"
    with pytest.raises(TokenRejected, match="wrong token type"):
        authority.verify(pair.refresh_token)
    with pytest.raises(TokenRejected, match="invalid token"):
        Authority("z" * 32, 60, 600).verify(pair.access_token)


def test_encoded_frames_are_the_json_the_guide_shows():
    encoder = FrameEncoder("message_id")
    part = encoder.id_part("msg_1")
    assert json.loads(encoder.start(part))["type"] == "ai_message_start"
    chunk = json.loads(encoder.chunk(part, 0))
    assert list(chunk) == ["type", "content", "message_id", "timestamp"]
    assert chunk["content"] == "I "
    with pytest.raises(ValueError):
        json.loads(encoder.malformed_chunk(part, 0))
    assert list(json.loads(FrameEncoder("messageId").pong("p"))) == [
        "type", "messageId", "timestamp"]
