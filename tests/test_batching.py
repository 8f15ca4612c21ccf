"""Batched turns model the guide's OptimizedWebSocketManager: typed as several, sent as one."""

from __future__ import annotations

import random

import pytest

from loadtest.batching import (
    BATCH_WINDOW_S,
    join_as_client,
    plan_batched_turn,
    split_at_words,
)
from loadtest.prompts import load_prompts


def test_the_one_message_sent_is_the_fragments_joined_with_a_space() -> None:
    # The guide's flushMessageQueue: messageQueue.joined(separator: " ").
    assert join_as_client(["I ran 5k", "knee hurts"]) == "I ran 5k knee hurts"


@pytest.mark.parametrize("seed", range(20))
def test_a_batched_turn_is_two_or_three_fragments_of_the_prompt_sent_once(seed: int) -> None:
    rng = random.Random(seed)
    prompt = "I ran  five kilometres today and my left knee hurts, should I rest?"
    turn = plan_batched_turn(prompt, rng)
    assert len(turn.fragments) in (2, 3)
    assert all(turn.fragments)
    assert turn.content == join_as_client(turn.fragments) == " ".join(prompt.split())
    # Each fragment comes inside the 0.3 s window, so the guide's timer never fires between
    # them: one user_message, 0.3 s after the last fragment.
    assert len(turn.gaps_s) == len(turn.fragments) - 1
    assert all(0 < gap < BATCH_WINDOW_S for gap in turn.gaps_s)
    assert turn.send_after_s == pytest.approx(sum(turn.gaps_s) + BATCH_WINDOW_S)


def test_a_one_word_prompt_is_one_fragment_still_held_for_the_window() -> None:
    turn = plan_batched_turn("Thanks!", random.Random(0))
    assert turn.fragments == ("Thanks!",) and turn.gaps_s == ()
    assert turn.send_after_s == BATCH_WINDOW_S


def test_split_never_cuts_inside_a_word_and_keeps_the_order() -> None:
    rng = random.Random(4)
    words = ["one", "two", "three", "four", "five"]
    for _ in range(50):
        parts = split_at_words(" ".join(words), 3, rng)
        assert [w for part in parts for w in part.split()] == words
        assert len(parts) == 3
    assert split_at_words("just two", 3, rng) == ("just", "two")


def test_every_shipped_prompt_can_be_batched() -> None:
    rng = random.Random(7)
    for prompt in load_prompts():
        turn = plan_batched_turn(prompt, rng)
        assert turn.content == " ".join(prompt.split())
