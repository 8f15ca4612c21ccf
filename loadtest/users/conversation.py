"""A Locust user that holds whole conversations, one consultation each, as the app's users do.

Each conversation: create a consultation (``POST /consultations``, unless ``--consultation-id``
pins one), connect, talk for ``--conversation-turns`` turns (send, read the whole streamed
reply, think), leave with close 1000; after a pause, the next conversation starts a new
consultation. Pauses come from :class:`~loadtest.thinking.ThinkTime` (lognormal by default); a
share of turns (``--batch-share``) is typed as 2–3 quick messages that the client joins into one
``user_message`` after its 0.3 s batching wait (:mod:`loadtest.batching`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gevent
from locust import task

from loadtest.batching import plan_batched_turn
from loadtest.errors import UsageError
from loadtest.session import SessionEnded
from loadtest.thinking import ThinkTime, draw_turns, parse_range
from loadtest.users.chat import ConsultationUser
from loadtest.users.options import parse_think_time


@dataclass(frozen=True, slots=True)
class ConversationPlan:
    """How conversations go, from the options: turns, pauses, batching."""

    turns: tuple[int, int]
    think: ThinkTime
    batch_share: float

    @classmethod
    def from_options(cls, options: Any) -> ConversationPlan:
        """Raises:
        UsageError: a bad ``--conversation-turns``, think or batch option, as one line.
        """
        try:
            turns = parse_range(str(options.conversation_turns), "--conversation-turns")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        try:
            low, high = parse_think_time(str(options.think_time))
        except ValueError as exc:
            raise UsageError(f"--think-time: {exc}") from None
        try:
            think = ThinkTime(
                distribution=options.think_distribution,
                low_s=low,
                high_s=high,
                median_s=options.think_median,
                sigma=options.think_sigma,
                cap_s=options.think_cap,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        share = float(options.batch_share)
        if not 0.0 <= share <= 1.0:
            raise UsageError(f"--batch-share is a share between 0 and 1, not {share:g}")
        return cls(turns=turns, think=think, batch_share=share)


class ConversationUser(ConsultationUser):
    """Conversations of several turns, each in a consultation of its own."""

    abstract = True

    @classmethod
    def check_options(cls, options: Any) -> None:
        ConversationPlan.from_options(options)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.plan = ConversationPlan.from_options(environment.parsed_options)

    def wait_time(self) -> float:
        # The pause between leaving one conversation and starting the next.
        return self.plan.think.draw(self.context.rng)

    @task
    def conversation(self) -> None:
        session = self.open_session()  # a new consultation, unless --consultation-id
        if session is None:
            return  # refused: counted; wait_time paces the next attempt
        rng = self.context.rng
        try:
            for turn in range(draw_turns(self.plan.turns, rng)):
                if turn:
                    gevent.sleep(self.plan.think.draw(rng))
                content = self.context.prompts.next()
                if self.plan.batch_share and rng.random() < self.plan.batch_share:
                    batched = plan_batched_turn(content, rng)
                    gevent.sleep(batched.send_after_s)  # typing, then the client's 0.3 s
                    content = batched.content
                stream = session.send_user_message(content)
                if stream.error_kind == "connection_lost" and session.config.retry_interrupted:
                    self.recorder.retried = True
                    session.send_user_message(content)
        except SessionEnded as ended:
            session.close(wait=False)
            self.session = None
            self.stop_if_refused(ended.reason)
            return
        session.close()
        self.session = None
