"""Every benchmark figure the docs cite is the figure in its result file, and says which.

A figure cites its source with an HTML comment right after it, invisible when rendered
(the syntax is in ``bench/README.md``, "Citing a figure in the docs")::

    **39.0 KiB**<!-- bench: idle_capacity.json#memory_per_connection_kib -->
    **9.55 / 9.60 / 9.65 s**<!-- bench: report_speed.json#report_s.min, report_s.median,
    report_s.max -->
    | 51.26 ms<!-- bench: accuracy.json#runs[0].client_ttfc_ms.p50 --> |

The marker names a file under ``bench/results/`` and, after ``#``, a path into its JSON: keys
joined by ``.``, ``[i]`` for a list index, ``["a.b"]`` for a key holding a dot; more paths, comma
separated, for a figure of several numbers (a later path without ``file#`` reads the same file);
a path may end in ``/N`` or ``*N`` (a unit conversion, e.g. bytes ``/1e6`` to MB).

The figure a marker cites is the ``**bold**`` span just before it, or else the run of numbers,
units and separators (``/ → – , ( )`` …) just before it, e.g. ``0.43 / 2.44 ms``. Its numbers,
in order, must equal the paths' values rounded half-up to the decimals shown; ``,`` separates
thousands and a ``k`` suffix means thousands (``45k`` is 45,240 rounded to 45).

What must be marked (checked in ``docs/*.md``, ``README.md`` and ``scenarios/README.md``): in
every section (text between two headings) that names a ``bench/results/`` file or a
``bench/*.py`` script,

- every bold span with a digit in it;
- every table cell that is a figure: only numbers, units of measurement (ms, s, µs, MB, MiB,
  KiB, %, ×, /s …) and separators, e.g. ``51.26 ms``, ``0.43 / 2.44 ms``, ``40,626``, ``0.98``.
  A cell mixing numbers with words (``trickle, 800 conns``, ``think 0.5–1.5 s``) is a label or a
  setup, not required; mark (or bold and mark) the measured figures in it.

Fenced code blocks and inline code are never figures. A section citing a result file that has
no ``provenance`` block (measured before ``bench/provenance.py``) must say that its figures
predate it (the word "predate" or "predates"), so a reader knows they were not re-measured on
the current code.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "scenarios" / "README.md"]

MARKER = re.compile(r"<!--\s*bench:\s*(?P<refs>.*?)\s*-->", re.S)
BOLD = re.compile(r"\*\*(?=\S)(?P<text>.+?)(?<=\S)\*\*", re.S)
NUMBER = re.compile(
    r"(?<![\w.,])(?P<sign>[+\-−]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?P<k>k(?![A-Za-z]))?(?!\w)"
)
UNIT = re.compile(
    r"(?<![A-Za-z])(?:MB/h|KiB|MiB|GiB|kB|MB|GB|µs|us|ns|ms|min|s|h|B|%|×|x)(?![A-Za-z])|/s\b"
)
SEPARATORS = re.compile(r"[\s/,;:()~≈→–—+\-−]+")
CITING = re.compile(r"bench/results/[\w.-]+\.json|bench/[\w-]+\.py")
HEADING = re.compile(r"^#{1,6} ", re.M)
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]+`")
PATH_STEP = re.compile(r'\.?(?P<key>[A-Za-z_][\w-]*)|\[(?P<index>\d+)\]|\["(?P<quoted>[^"]*)"\]')
CONVERSION = re.compile(r"\s*(?P<op>[*/])\s*(?P<by>\d+(?:\.\d+)?(?:e\d+)?)\s*$")


@dataclass(frozen=True)
class Reference:
    file: str
    path: str
    op: str | None = None
    by: Decimal | None = None


def parse_refs(refs: str) -> list[Reference]:
    """``a.json#x.y, z[0]/1024`` → references; a path without ``file#`` reuses the last file."""
    parsed: list[Reference] = []
    file = None
    for part in (part.strip() for part in refs.split(",")):
        if "#" in part:
            file, part = (piece.strip() for piece in part.split("#", 1))
        if not file:
            raise ValueError(f"marker {refs!r}: {part!r} names no result file (file.json#path)")
        conversion = CONVERSION.search(part)
        if conversion:
            part = part[: conversion.start()]
            parsed.append(Reference(file, part, conversion["op"], Decimal(conversion["by"])))
        else:
            parsed.append(Reference(file, part))
    return parsed


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (``runs[1].p99``, ``file_bytes["a.b"]``); KeyError if absent."""
    position, value = 0, data
    while position < len(path):
        step = PATH_STEP.match(path, position)
        if not step or step.end() == position:
            raise KeyError(f"bad path {path!r} at {path[position:]!r}")
        if step["index"] is not None:
            if not isinstance(value, list) or int(step["index"]) >= len(value):
                raise KeyError(f"{path!r}: no index [{step['index']}]")
            value = value[int(step["index"])]
        else:
            key = step["key"] if step["key"] is not None else step["quoted"]
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"{path!r}: no key {key!r}")
            value = value[key]
        position = step.end()
    return value


def numbers(text: str) -> list[re.Match[str]]:
    return list(NUMBER.finditer(INLINE_CODE.sub(" ", text)))


def shown_equals(number: re.Match[str], value: Decimal) -> tuple[bool, str]:
    """Whether a number as written equals ``value`` rounded half-up to its decimals."""
    shown = Decimal(number["int"].replace(",", "") + (number["frac"] or ""))
    if number["sign"] in ("-", "−"):
        shown = -shown
    if number["k"]:
        value = value / 1000
    quantum = Decimal(1).scaleb(-len(number["frac"] or ".") + 1)
    expected = value.quantize(quantum, rounding=ROUND_HALF_UP)
    return shown == expected, f"{expected}{number['k'] or ''}"


def trailing_figure(before: str) -> str:
    """The run of numbers, units and separators at the end of ``before``."""
    start = len(before)
    while True:
        for pattern in (NUMBER, UNIT, SEPARATORS):
            match = next(
                (m for m in pattern.finditer(before, 0, start) if m.start() < m.end() == start),
                None,
            )
            if match:
                start = match.start()
                break
        else:
            return before[start:]


def is_figure_cell(cell: str) -> bool:
    """A table cell holding only numbers, units and separators (and at least one number)."""
    text = MARKER.sub(" ", cell).replace("**", " ")
    if not NUMBER.search(text) or INLINE_CODE.search(text):
        return False
    rest = SEPARATORS.sub(" ", UNIT.sub(" ", NUMBER.sub(" ", text)))
    return not rest.strip()


def outside_fences(text: str) -> str:
    """``text`` with fenced code blocks blanked (same offsets and line count)."""
    return FENCE.sub(lambda block: re.sub(r"[^\n]", " ", block.group()), text)


def load_result(results: Path, name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        path = results / name
        if path.parent != results or not path.is_file():
            raise FileNotFoundError(f"no result file bench/results/{name}")
        cache[name] = json.loads(path.read_text())
    return cache[name]


def check_markers(text: str, results: Path, cache: dict[str, Any]) -> list[str]:
    """Every marker's file and paths exist and its figure equals their values."""
    problems = []
    body = outside_fences(text)
    for marker in MARKER.finditer(body):
        line = body.count("\n", 0, marker.start()) + 1
        where = f"line {line}: {marker.group()}"
        before = body[: marker.start()]
        line_start = before.rfind("\n") + 1
        bold = re.search(r"\*\*(?=\S)((?:(?!\*\*).)+?)(?<=\S)\*\*\s*$", before, re.S)
        if bold:
            figure = bold.group(1)
        else:
            figure = trailing_figure(before[max(line_start, before.rfind("|") + 1) :])
        shown = numbers(figure)
        try:
            refs = parse_refs(marker["refs"])
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        if len(shown) != len(refs):
            problems.append(
                f"{where}: the figure {figure.strip()!r} shows {len(shown)} number(s) "
                f"but the marker names {len(refs)}"
            )
            continue
        for number, ref in zip(shown, refs, strict=True):
            try:
                raw = lookup(load_result(results, ref.file, cache), ref.path)
            except (FileNotFoundError, KeyError) as error:
                problems.append(f"{where}: {ref.file}#{ref.path}: {error}")
                continue
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                problems.append(f"{where}: {ref.file}#{ref.path} is {raw!r}, not a number")
                continue
            try:
                value = Decimal(repr(raw))
                if ref.op == "/":
                    value = value / ref.by
                elif ref.op == "*":
                    value = value * ref.by
            except (InvalidOperation, ArithmeticError) as error:
                problems.append(f"{where}: {ref.file}#{ref.path}: {error}")
                continue
            equal, expected = shown_equals(number, value)
            if not equal:
                problems.append(
                    f"{where}: the doc says {number.group()} but {ref.file}#{ref.path} "
                    f"is {raw} (shown as {expected})"
                )
    return problems


def sections(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each part of ``text`` between two headings."""
    starts = [0, *(match.start() for match in HEADING.finditer(text)), len(text)]
    return [(start, end) for start, end in itertools.pairwise(starts) if end > start]


def _refs(marker: re.Match[str]) -> list[Reference]:
    try:
        return parse_refs(marker["refs"])
    except ValueError:
        return []  # reported by check_markers


def check_marked(text: str, results: Path, cache: dict[str, Any]) -> list[str]:
    """Every figure of a section citing a benchmark carries a marker (rules: module docstring)."""
    problems = []
    body = outside_fences(text)
    for start, end in sections(text):
        # A command in a code block names a script too, so the section is read as written.
        if not CITING.search(text, start, end):
            continue
        section = INLINE_CODE.sub(lambda code: " " * len(code.group()), body[start:end])
        first_line = text.count("\n", 0, start) + 1
        for bold in BOLD.finditer(section):
            if "\n\n" in bold.group() or not re.search(r"\d", bold["text"]):
                continue
            if not re.match(r"\s*<!--\s*bench:", section[bold.end() :]):
                line = first_line + section.count("\n", 0, bold.start())
                problems.append(f"line {line}: bold figure {bold.group()!r} has no bench marker")
        for offset, row in enumerate(body[start:end].splitlines()):
            if not row.lstrip().startswith("|"):
                continue
            for cell in re.split(r"(?<!\\)\|", row.strip().strip("|")):
                if is_figure_cell(cell) and not MARKER.search(cell):
                    problems.append(
                        f"line {first_line + offset}: table cell {cell.strip()!r} "
                        "has no bench marker"
                    )
        cited = {ref.file for marker in MARKER.finditer(section) for ref in _refs(marker)}
        for name in sorted(cited):
            try:
                record = load_result(results, name, cache)
            except FileNotFoundError:
                continue  # reported by check_markers
            if "provenance" not in record and "predate" not in text[start:end]:
                problems.append(
                    f"line {first_line}: cites {name}, which has no provenance block, "
                    'without saying its figures predate bench/provenance.py ("predate")'
                )
    return problems


def check_document(text: str, results: Path = RESULTS) -> list[str]:
    cache: dict[str, Any] = {}
    return check_markers(text, results, cache) + check_marked(text, results, cache)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_cited_benchmark_figure_is_marked_and_matches_its_result_file(doc: Path) -> None:
    problems = check_document(doc.read_text())
    assert not problems, f"{doc.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_every_marked_figure_of_the_benchmarks_readme_matches_its_result_file() -> None:
    """``bench/README.md`` tells the history of each figure, much of it unmarked on purpose
    (figures of earlier files, read with ``git show``), and its table is generated
    (``bench/readme_table.py --check``); but what it does mark must match the file."""
    readme = ROOT / "bench" / "README.md"
    problems = check_markers(readme.read_text(), RESULTS, {})
    assert not problems, "bench/README.md:\n" + "\n".join(problems)


# --- the checker itself ----------------------------------------------------------------------


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "speed.json").write_text(
        json.dumps(
            {
                "provenance": {"commit": {"sha": "abc"}},
                "report_s": {"min": 9.55, "median": 9.6, "max": 9.65},
                "runs": [{"chunks_per_s": 40626}, {"rss_mb": 342.5}],
                "file_bytes": {"intervals.hlog": 50022316},
                "kib": 39.0,
            }
        )
    )
    (tmp_path / "old.json").write_text(json.dumps({"kib": 39.0}))
    return tmp_path


GOOD = """# Speed

Measured by `bench/speed.py`: **9.55 / 9.60 / 9.65 s**<!-- bench: speed.json#report_s.min,
report_s.median, report_s.max --> and 40,626<!-- bench: speed.json#runs[0].chunks_per_s --> or
**41k chunks/s**<!-- bench: speed.json#runs[0].chunks_per_s -->, peak **343 MiB**<!-- bench:
speed.json#runs[1].rss_mb -->, a log of
50 MB<!-- bench: speed.json#file_bytes["intervals.hlog"]/1e6 -->.

| run | time |
|---|---|
| first | 9.6 s<!-- bench: speed.json#report_s.median --> |

## Unrelated

**3 steps** here cite no benchmark, so they need no marker.
"""


def test_the_checker_accepts_marked_figures_that_match(results: Path) -> None:
    assert check_document(GOOD, results) == []


def test_the_checker_finds_a_wrong_figure(results: Path) -> None:
    doc = GOOD.replace("**9.55 / 9.60", "**9.55 / 9.70")
    (problem,) = check_document(doc, results)
    assert "says 9.70" in problem and "report_s.median is 9.6" in problem


def test_the_checker_finds_a_figure_without_a_marker(results: Path) -> None:
    doc = GOOD.replace("<!-- bench: speed.json#runs[0].chunks_per_s -->, peak", ", peak")
    doc = doc.replace("9.6 s<!-- bench: speed.json#report_s.median -->", "9.6 s")
    problems = check_document(doc, results)
    assert any("bold figure '**41k chunks/s**' has no bench marker" in p for p in problems)
    assert any("table cell '9.6 s' has no bench marker" in p for p in problems)


def test_the_checker_finds_a_missing_file_key_or_number_count(results: Path) -> None:
    doc = (
        "See `bench/x.py`: **1 / 2 s**<!-- bench: speed.json#report_s.min -->, **39.0 KiB**"
        "<!-- bench: gone.json#kib -->, **7**<!-- bench: speed.json#runs[5].x -->."
    )
    problems = check_document(doc, results)
    assert any("shows 2 number(s) but the marker names 1" in p for p in problems)
    assert any("no result file bench/results/gone.json" in p for p in problems)
    assert any("no index [5]" in p for p in problems)


def test_a_figure_from_a_file_without_provenance_must_say_it_predates_it(results: Path) -> None:
    doc = "From `bench/results/old.json`: **39.0 KiB**<!-- bench: old.json#kib -->."
    (problem,) = check_document(doc, results)
    assert "no provenance block" in problem
    assert check_document(doc + " This figure predates bench/provenance.py.", results) == []
