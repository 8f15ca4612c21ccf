"""The prompt corpus and the reproducible picker."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from loadtest.errors import UsageError
from loadtest.prompts import PromptPicker, load_prompts


def test_packaged_corpus_is_realistic_in_size_and_length() -> None:
    prompts = load_prompts()
    assert 50 <= len(prompts) <= 100
    assert len(set(prompts)) == len(prompts)
    words = [len(prompt.split()) for prompt in prompts]
    assert min(words) >= 2 and max(words) <= 150
    # Lengths really vary: short one-liners, everyday questions, long multi-sentence stories.
    assert sum(n <= 4 for n in words) >= 5
    assert sum(5 <= n <= 30 for n in words) >= 40
    assert sum(n >= 100 for n in words) >= 3
    assert not any(prompt.startswith("#") for prompt in prompts)


def test_user_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# mine\n\n  How do I sleep better?  \nWhat is a good warm-up?\n")
    assert load_prompts(path) == ["How do I sleep better?", "What is a good warm-up?"]


@pytest.mark.parametrize("content", [None, "", "\n# nothing here\n"])
def test_missing_or_empty_file_is_a_usage_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "prompts.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as info:
        load_prompts(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_picker_is_deterministic_per_seed() -> None:
    prompts = load_prompts()
    first = list(islice(PromptPicker(prompts, seed=1), 100))
    assert first == list(islice(PromptPicker(prompts, seed=1), 100))
    assert first != list(islice(PromptPicker(prompts, seed=2), 100))


def test_picker_uses_every_prompt_once_per_pass() -> None:
    prompts = ["a", "b", "c", "d"]
    picker = PromptPicker(prompts, seed=5)
    for _ in range(3):
        assert sorted(picker.next() for _ in prompts) == prompts


def test_picker_needs_prompts() -> None:
    with pytest.raises(ValueError):
        PromptPicker([], seed=0)
