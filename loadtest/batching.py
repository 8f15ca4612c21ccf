"""Rapid messages as the FitIQ guide's client batches them: several typed, one sent.

The guide's ``OptimizedWebSocketManager`` does not send a message when the user taps send. It
appends the text to a queue and (re)starts a 0.3 s timer; each further message within 0.3 s
restarts the timer again; when the timer fires it sends *one* ``user_message`` whose content is
the queued texts joined with a single space, and empties the queue::

    sendUserMessage(c): queue.append(c); timer.invalidate(); timer = 0.3 s → flush()
    flush():            send(queue.joined(separator: " ")); queue.removeAll()

So a user who types "I ran 5k today", "knee hurts a bit", "should I rest?" within 0.3 s of each
other puts one message on the wire, "I ran 5k today knee hurts a bit should I rest?", 0.3 s
after the *last* of them. A :class:`BatchedTurn` is that, planned up front: the prompt cut at
word boundaries into 2–3 fragments, the gaps the user typed them with (each under the 0.3 s
window, so the timer never fires in between), the moment the client sends (the gaps plus the
0.3 s wait, from the first fragment) and the one content it sends.

What the server sees is one ordinary ``user_message``; the measured stream (TTFS, TTFC) starts
when it is sent, so the 0.3 s the client held it back is not in those numbers. A turn that is not
batched is sent at once, as the guide's plain ``ConsultationWebSocketManager`` does (its
optimised subclass would hold even a lone message 0.3 s; that shifts it in time but changes
nothing the server sees).

Pure: the random source is passed in.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

#: The guide's ``Timer.scheduledTimer(withTimeInterval: 0.3, …)``.
BATCH_WINDOW_S = 0.3
#: How far apart the user types the fragments of one batched turn: always inside the window.
FRAGMENT_GAP_S = (0.05, 0.25)
#: A batched turn is typed as this many quick messages (inclusive).
FRAGMENTS = (2, 3)


@dataclass(frozen=True, slots=True)
class BatchedTurn:
    """One turn typed as several quick messages and sent as one.

    Attributes:
        fragments: what the user typed, in order.
        gaps_s: seconds between consecutive fragments (one fewer than fragments).
        send_after_s: seconds from the first fragment until the client sends: the gaps plus
            the 0.3 s the timer waits after the last fragment.
        content: the one ``user_message`` content: the fragments joined with a space.
    """

    fragments: tuple[str, ...]
    gaps_s: tuple[float, ...]
    send_after_s: float
    content: str


def join_as_client(fragments: list[str] | tuple[str, ...]) -> str:
    """What the guide's ``flushMessageQueue`` sends: ``messageQueue.joined(separator: " ")``."""
    return " ".join(fragments)


def split_at_words(prompt: str, parts: int, rng: random.Random) -> tuple[str, ...]:
    """Cut a prompt into ``parts`` non-empty runs of whole words at random places (fewer if it
    has fewer words). Joining the runs with spaces gives the prompt back, whitespace
    normalised."""
    words = prompt.split()
    parts = max(1, min(parts, len(words)))
    if parts == 1:
        return (" ".join(words),)
    cuts = sorted(rng.sample(range(1, len(words)), parts - 1))
    bounds = [0, *cuts, len(words)]
    return tuple(" ".join(words[a:b]) for a, b in itertools.pairwise(bounds))


def plan_batched_turn(prompt: str, rng: random.Random) -> BatchedTurn:
    """Plan one turn typed as 2–3 quick messages (1 if the prompt is a single word).

    Returns:
        The plan; ``content`` is what goes on the wire, ``send_after_s`` when.
    """
    fragments = split_at_words(prompt, rng.randint(*FRAGMENTS), rng)
    gaps = tuple(rng.uniform(*FRAGMENT_GAP_S) for _ in fragments[1:])
    return BatchedTurn(
        fragments=fragments,
        gaps_s=gaps,
        send_after_s=sum(gaps) + BATCH_WINDOW_S,
        content=join_as_client(fragments),
    )
