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
from decimal import ROUND_HALF_UP, Decimal
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


def half_up(value: float) -> str:
    """Two decimals rounded half up, as the docs' figure markers are checked
    (``tests/test_doc_figures.py``): ``:.2f`` writes 1.605 as 1.60, the prose as 1.61."""
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def ratio_row() -> list[str]:
    record = load("compare_baseline")
    target = "≥ 2.0× (never < 1.5×)"
    if record is None:
        return ["chunks per client CPU-second vs websocket-client", target, NOT_MEASURED, "", ""]
    ratio = record["ratio_ours_to_baseline"]
    per_cpu = record["chunks_per_client_cpu_s"]
    figure = (
        f"{half_up(ratio['median'])}× median of {ratio['n']} (min {half_up(ratio['min'])}, max "
        f"{half_up(ratio['max'])}); ours {per_cpu['ours']['median']:.0f}, baseline "
        f"{per_cpu['baseline']['median']:.0f}"
    )
    clock = (record.get("setup") or {}).get("receive_clock")
    if clock:
        figure += f" (receive clock: {clock})"
    read_ratio = record.get("ratio_ours_read_to_baseline")
    if read_ratio:
        cost = record["kernel_clock_us_per_chunk"]
        figure += (
            f"; with --receive-clock read {read_ratio['median']:.2f}× (min "
            f"{read_ratio['min']:.2f}, max {read_ratio['max']:.2f}), the kernel's stamps "
            f"costing {cost['median']:.2f} µs per chunk (min {cost['min']:.2f}, max "
            f"{cost['max']:.2f})"
        )
    met = "met" if ratio["min"] >= 1.5 and ratio["median"] >= 2.0 else "missed"
    return [
        "chunks per client CPU-second vs websocket-client",
        target,
        figure,
        met,
        f"compare_baseline.json, {when(record)}",
    ]


def full_core_row() -> list[str]:
    what = "the same, both clients at a full core (blaster trickle)"
    target = "(no target: measured)"
    record = load("compare_baseline_full_core")
    if record is None:
        return [what, target, NOT_MEASURED, "", ""]
    ratio, per_cpu = record["ratio_ours_to_baseline"], record["chunks_per_client_cpu_s"]
    busy = record["client_cores_busy"]
    figure = (
        f"{half_up(ratio['median'])}× median of {ratio['n']} (min {half_up(ratio['min'])}, max "
        f"{half_up(ratio['max'])}) at {record['setup']['users']} users; ours "
        f"{per_cpu['ours']['median']:.0f}, baseline {per_cpu['baseline']['median']:.0f}; cores "
        f"busy {busy['ours']['median']:.3f} / {busy['baseline']['median']:.3f}"
    )
    return [what, target, figure, "", f"compare_baseline_full_core.json, {when(record)}"]


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


def per_client_cpu_s(figure: dict[str, Any]) -> str:
    """A repeats block of chunks per client CPU-second, median first, then its spread."""
    return (
        f"{figure['median']:.0f} per client CPU-second (min {figure['min']:.0f}, max "
        f"{figure['max']:.0f})"
    )


def trickle_row() -> list[str]:
    what, target = "trickle chunks/s per core, full metrics", "≥ 50,000"
    record = load("throughput")
    if record is None or "trickle" not in record or not record["trickle"]["per_core"]:
        return [what, target, NOT_MEASURED, "", ""]
    part = record["trickle"]
    per_core = part["per_core"]
    figure = (
        f"{per_client_cpu_s(per_core)} at {part['per_core_step_users']} users, "
        f"{part['per_core_chunks_per_s']['median']:.0f}/s; one core at most "
        f"{part['one_core_max']['median']:.0f}/s ({part['one_core_max_step_users']} users)"
    )
    met = "met" if per_core["min"] >= part["target"] else "missed"
    return [what, target, figure, met, f"throughput.json, {when(record)}"]


def burst_row() -> list[str]:
    what, target = "burst chunks/s per core", "≥ 150,000"
    record = load("throughput")
    if record is None or "burst" not in record:
        return [what, target, NOT_MEASURED, "", ""]
    part = record["burst"]
    per_core, rate = part["per_core"], part["chunks_per_s"]
    figure = f"{per_client_cpu_s(per_core)}; {rate['median']:.0f}/s"
    met = "met" if per_core["min"] >= part["target"] else "missed"
    return [what, target, figure, met, f"throughput.json, {when(record)}"]


def workers_row() -> list[str]:
    what, target = "burst chunks/s, 1 vs 2 workers (unpinned)", "(no target: measured)"
    record = load("throughput")
    if record is None or "workers" not in record:
        return [what, target, NOT_MEASURED, "", ""]
    part = record["workers"]
    speedup = part["speedup"]
    figure = (
        f"{part['one_worker_chunks_per_s']['median']:.0f} → "
        f"{part['two_workers_chunks_per_s']['median']:.0f}/s, {speedup['median']:.2f}× "
        f"(min {speedup['min']:.2f}, max {speedup['max']:.2f})"
    )
    return [what, target, figure, "", f"throughput.json, {when(record)}"]


def overhead_row() -> list[str]:
    what = "overhead p99 (our ttfc − target's, from arrival) at 500 streams/core, < 70 % CPU"
    target = "≤ 2 ms"
    record = load("accuracy")
    steps = {step["users"]: step for step in (record or {}).get("steps", [])}
    if record is None or 500 not in steps:
        return [what, target, NOT_MEASURED, "", ""]
    parts = []
    for users, step in sorted(steps.items()):
        p99, cpu = step["overhead_p99_ms"], step["client_cores_busy"]
        part = f"{users}: {p99['median']:.3f} ms (max {p99['max']:.3f}) at {cpu['median']:.2f} core"
        handler = step.get("overhead_vs_handler_p99_ms")
        if handler:
            part += f", {handler['median']:.2f} ms against the target's handler stamp"
        parts.append(part)
    clock = (record.get("setup") or {}).get("receive_clock")
    if clock:
        parts.append(f"receive clock: {clock}")
    met = "met" if steps[500]["met"] else "missed"
    return [what, target, "; ".join(parts), met, f"accuracy.json, {when(record)}"]


TARGET_ROWS: list[Callable[[], list[str]]] = [
    ratio_row,
    full_core_row,
    trickle_row,
    burst_row,
    workers_row,
    overhead_row,
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
    steps = load("stream_path")
    if steps is not None:
        for step, label in STREAM_PATH_LEVERS.items():
            figure = steps["steps"][step]
            rows.append(
                [
                    label,
                    f"{figure['before_us']['median']:.2f} → {figure['now_us']['median']:.2f} µs "
                    f"({figure['speedup']}×)",
                    f"stream_path.json, {when(steps)}",
                ]
            )
    compiled = load("compiled_path")
    if compiled is not None:
        for step, label in (("one_chunk_read", "one chunk"), ("burst_read", "40 chunks")):
            figure = compiled["steps"][step]
            rows.append(
                [
                    f"mypyc-compile fast path, tracker, stamps (not shipped): read of {label}, "
                    "µs per chunk from _consume on",
                    f"{figure['interpreted_us_per_chunk']['median']:.3f} → "
                    f"{figure['compiled_us_per_chunk']['median']:.3f} µs "
                    f"({figure['compiled_saves_us_per_chunk']:.3f} saved)",
                    f"compiled_path.json, {when(compiled)}",
                ]
            )
    return rows


#: bench/stream_path.py's steps, as the levers table names them.
STREAM_PATH_LEVERS = {
    "track_chunk": "decode and track a chunk (receive(parse_server_frame) → receive_text)",
    "encode_message": "encode a user_message with its id (json.dumps + uuid4 → msgspec + pool)",
    "text_frame": "frame it (websockets' send_text → client_text_frame)",
    "record_gaps": "record a reply's 39 gaps (one by one → kept, counted when read)",
    "settle_gaps": "count those 39 gaps vectorised (512 → SETTLE_EVERY at a time)",
    "build_row": "build a reply's streams.csv row (durations rounded → unrounded)",
    "write_row": "format that row (a call per cell → only cells csv writes otherwise)",
}


def hot_path_rows() -> tuple[str, list[list[str]]]:
    """The per-chunk CPU split of bench/hot_path.py, heaviest part first."""
    record = load("hot_path")
    if record is None:
        return "", []
    plain = record["plain"]
    caption = (
        f"Hot path, CPU per trickle chunk ({plain['us_per_chunk']} µs: "
        f"{plain['user_us_per_chunk']} user, {plain['kernel_us_per_chunk']} kernel, at "
        f"{plain['chunks_per_s']} chunks/s and {plain['client_cores_busy']} core; "
        f"hot_path.json, {when(record)}):"
    )
    rows = [
        [
            part["part"],
            f"{part['us_per_chunk']:.2f} µs",
            f"{part['share']:.1%}",
            ", ".join(f["function"] for f in part["heaviest"][:2]),
        ]
        for part in record["parts"]
    ]
    return caption, rows


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
        lines += ["", "Levers, CPU per frame or per step (median of repeats):", ""]
        lines += table(["lever", "before → after", "from"], levers)
    caption, hot = hot_path_rows()
    if hot:
        lines += ["", caption, ""]
        lines += table(["part", "per chunk", "share", "heaviest functions"], hot)
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
