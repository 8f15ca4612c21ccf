"""What simulated users say: a corpus of health-coach prompts and a reproducible picker.

The shipped corpus (``loadtest/data/prompts.txt``) holds realistic user messages about
nutrition, workouts, sleep, stress, weight and injuries, of very different lengths: one-liners of
2 to 4 words ("Any tips?", "My knee hurts."), most of 5 to 30, and long multi-sentence stories
of 100 to 120 words (the longest 118), so what users send varies the way chat traffic does. A
user's own file can replace it.
"""

from __future__ import annotations

import importlib.resources
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from loadtest.errors import UsageError

PACKAGED_PROMPTS = "data/prompts.txt"


def load_prompts(path: Path | None = None) -> list[str]:
    """Read prompts, one per line; blank lines and lines starting with ``#`` are skipped.

    Args:
        path: a user's prompt file, or ``None`` for the corpus shipped with the package (read
            through :mod:`importlib.resources`, so it works from a wheel or a zip).

    Returns:
        The prompts, stripped, in file order.

    Raises:
        UsageError: the file is missing, unreadable, not UTF-8, or holds no prompt.
    """
    if path is None:
        resource = importlib.resources.files("loadtest").joinpath(PACKAGED_PROMPTS)
        text = resource.read_text(encoding="utf-8")
        where = f"packaged {PACKAGED_PROMPTS}"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"prompts file not found: {path}") from None
        except OSError as exc:
            raise UsageError(f"cannot read prompts file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"prompts file is not UTF-8 text: {path}") from None
        where = str(path)
    prompts = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not prompts:
        raise UsageError(f"prompts file has no prompts: {where}")
    return prompts


class PromptPicker:
    """Deals prompts in a shuffled order, reshuffling after each pass, reproducibly per seed.

    Dealing from a shuffled deck rather than drawing independently means every prompt is used
    once per pass, so short runs still cover short and long prompts evenly. Give each user its
    own picker (e.g. ``seed=run_seed + user_index``): a picker is not shared between greenlets.

    Args:
        prompts: the corpus, e.g. from :func:`load_prompts`.
        seed: makes the sequence reproducible; ``None`` seeds from the OS.

    Raises:
        ValueError: ``prompts`` is empty (a caller bug: :func:`load_prompts` never returns
            an empty list).
    """

    def __init__(self, prompts: Sequence[str], seed: int | str | None = None) -> None:
        if not prompts:
            raise ValueError("PromptPicker needs at least one prompt")
        self._prompts = list(prompts)
        self._rng = random.Random(seed)
        self._deck: list[str] = []

    def next(self) -> str:
        """The next prompt.

        Returns:
            One prompt; each appears once per pass over the corpus.
        """
        if not self._deck:
            self._deck = self._prompts.copy()
            self._rng.shuffle(self._deck)
        return self._deck.pop()

    def __next__(self) -> str:
        return self.next()

    def __iter__(self) -> Iterator[str]:
        return self
