"""Rewrite the figures table of bench/README.md from bench/results/*.json, and nothing else.

Every cell is read from a result file (its path is in the row); a target with no result file
says "not measured yet". Nothing is typed in by hand, so the table cannot drift from the files.

    .venv/bin/python bench/readme_table.py          # rewrite the table in bench/README.md
    .venv/bin/python bench/readme_table.py --check  # exit 1 if the table is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
NOT_MEASURED = "not measured yet"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def when(record: dict[str, Any]) -> str:
    """Commit and date of a result, from its provenance (older files have none)."""
    provenance = record.get("provenance")
    if not provenance:
        return "no provenance (measured before bench/provenance.py)"
    sha = (provenance.get("commit") or {}).get("sha") or "?"
    dirty = " (dirty tree)" if (provenance.get("commit") or {}).get("dirty") else ""
    return f"{sha[:8]}{dirty}, {provenance.get('date_utc', '?')}"


def ratio_row() -> list[str]:
    record = load("compare_baseline")
    target = "≥ 2.0× (never < 1.5×)"
    if record is None:
        return ["chunks per client CPU-second vs websocket-client", target, NOT_MEASURED, "", ""]
    ratio = record["ratio_ours_to_baseline"]
    per_cpu = record["chunks_per_client_cpu_s"]
    figure = (
        f"{ratio['median']:.2f}× median of {ratio['n']} (min {ratio['min']:.2f}, max "
        f"{ratio['max']:.2f}); ours {per_cpu['ours']['median']:.0f}, baseline "
        f"{per_cpu['baseline']['median']:.0f}"
    )
    met = "met" if ratio["min"] >= 1.5 and ratio["median"] >= 2.0 else "missed"
    return [
        "chunks per client CPU-second vs websocket-client",
        target,
        figure,
        met,
        f"compare_baseline.json, {when(record)}",
    ]


def idle_row() -> list[str]:
    record = load("idle_capacity")
    target = "≥ 10,000 per process at ≤ 16 KiB each"
    if record is None:
        return ["idle heartbeating connections", target, NOT_MEASURED, "", ""]
    largest = max(record["runs"], key=lambda run: run["peak_open"])
    kib = record["memory_per_connection_kib"]
    met = "met" if largest["peak_open"] >= 10000 and kib <= 16 else "missed"
    figure = f"{kib} KiB each, {largest['peak_open']} held"
    return [
        "idle heartbeating connections",
        target,
        figure,
        met,
        f"idle_capacity.json, {when(record)}",
    ]


def missing(what: str, target: str) -> Callable[[], list[str]]:
    return lambda: [what, target, NOT_MEASURED, "", ""]


TARGET_ROWS: list[Callable[[], list[str]]] = [
    ratio_row,
    missing("trickle chunks/s per core, full metrics", "≥ 50,000"),
    missing("burst chunks/s per core", "≥ 150,000"),
    missing("overhead p99 (our ttfc − target's) at 500 streams/core, < 70 % CPU", "≤ 2 ms"),
    idle_row,
]


def lever_rows() -> list[list[str]]:
    rows = []
    decode = load("decode_frames")
    if decode is not None:
        ns = decode["ns_per_frame"]
        rows.append(
            [
                "decode a server frame (json.loads + dataclass → msgspec)",
                f"{ns['json_dataclass']['median']:.0f} → {ns['msgspec']['median']:.0f} ns "
                f"({decode['speedup_vs_json_dataclass']['msgspec']}×)",
                f"decode_frames.json, {when(decode)}",
            ]
        )
    frames = load("frame_parse")
    if frames is not None:
        for shape, result in frames["results"].items():
            ns = result["ns_per_frame"]
            rows.append(
                [
                    f"parse a frame, {shape} (websockets → fast path)",
                    f"{ns['websockets']['median']:.0f} → {ns['fast_path']['median']:.0f} ns "
                    f"({result['speedup']}×)",
                    f"frame_parse.json, {when(frames)}",
                ]
            )
    return rows


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell or "" for cell in row) + " |" for row in rows]


def render() -> str:
    lines = [START, "", "Targets of issue 12 (figures from `bench/results/`):", ""]
    lines += table(
        ["what", "target", "latest figure", "verdict", "from"], [row() for row in TARGET_ROWS]
    )
    levers = lever_rows()
    if levers:
        lines += ["", "Levers, CPU per frame (median of repeats):", ""]
        lines += table(["lever", "before → after", "from"], levers)
    return "\n".join([*lines, "", END])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    updated = head + render() + tail
    if args.check:
        if updated != text:
            print("bench/README.md figures are out of date: run bench/readme_table.py")
            return 1
        return 0
    README.write_text(updated)
    print(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
