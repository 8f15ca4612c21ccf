"""What one server process's handlers share: config, codecs, live settings, counters, records."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loadtest.target.auth import Authority
from loadtest.target.config import ServerConfig
from loadtest.target.control import FAULT_INDEX, ControlPlane, LiveSettings
from loadtest.target.frames import FrameEncoder
from loadtest.target.ground_truth import GroundTruthWriter
from loadtest.target.scheduler import Scheduler

if TYPE_CHECKING:
    from loadtest.target.connection import ConsultationConnection


@dataclass
class TargetContext:
    """Per-process state, built once after the fork (see :func:`build_context`)."""

    config: ServerConfig
    process_index: int
    control: ControlPlane
    settings: LiveSettings
    authority: Authority
    encoder: FrameEncoder
    rng: random.Random
    counters: memoryview
    ground_truth: GroundTruthWriter | None
    slots: asyncio.Semaphore | None
    scheduler: Scheduler
    connections: set[ConsultationConnection] = field(default_factory=set)
    waiting_for_slot: int = 0
    restart_epoch_handled: int = 0  # the last restart this process dropped its sockets for
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def next_id(self, prefix: str) -> str:
        """A process-unique id (``prefix`` + process index + sequence), e.g. ``c0_17``."""
        return f"{prefix}{self.process_index}_{next(self._ids)}"

    def count_fault(self, kind: str) -> None:
        self.counters[FAULT_INDEX[kind]] += 1


def build_context(config: ServerConfig, control: ControlPlane, process_index: int) -> TargetContext:
    """Create the state of one server process. Must run inside that process's event loop."""
    seed = None if config.seed is None else config.seed * 1000 + process_index
    slots = getattr(config.profile, "slots", 0)
    settings = LiveSettings(control)
    return TargetContext(
        config=config,
        process_index=process_index,
        control=control,
        settings=settings,
        authority=Authority(config.jwt_secret, config.token_ttl, config.refresh_ttl),
        encoder=FrameEncoder(config.id_key),
        rng=random.Random(seed),
        counters=control.row(process_index),
        ground_truth=GroundTruthWriter(config.ground_truth) if config.ground_truth else None,
        slots=asyncio.Semaphore(slots) if slots else None,
        scheduler=Scheduler(asyncio.get_running_loop()),
        restart_epoch_handled=settings.restart_epoch,
    )
