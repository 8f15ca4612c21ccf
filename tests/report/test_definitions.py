"""Metric definitions are written once: the code's and docs/metrics.md's tables agree."""

from __future__ import annotations

import re
from pathlib import Path

from loadtest.metrics.catalog import GENERATOR_METRICS, METRICS
from loadtest.metrics.definitions import GENERATOR_DEFINITIONS, LATENCY_DEFINITIONS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def docs_rows(start: str, end: str) -> dict[str, list[str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index(start) : text.index(end)]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"^\| `([a-z_]+)` \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split(" | ")]
    return rows


def test_the_latency_table_of_the_docs_is_the_code_s() -> None:
    rows = docs_rows("## Latency metrics", "Read the percentiles together")
    assert list(rows) == list(LATENCY_DEFINITIONS)
    for key, (from_to, one_sample_per, excluded) in rows.items():
        definition = LATENCY_DEFINITIONS[key]
        assert (definition.from_to, definition.one_sample_per, definition.excluded) == (
            from_to, one_sample_per, excluded,
        ), key  # fmt: skip


def test_the_generator_table_of_the_docs_is_the_code_s() -> None:
    rows = docs_rows("Generator-health metric", "A full collection")
    assert {key: cells[0] for key, cells in rows.items()} == {
        key: definition.from_to for key, definition in GENERATOR_DEFINITIONS.items()
    }


def test_every_recorded_metric_has_a_definition() -> None:
    assert set(LATENCY_DEFINITIONS) == set(METRICS)
    assert set(GENERATOR_DEFINITIONS) == set(GENERATOR_METRICS)
