"""Benchmark: where the client's CPU goes per chunk, by part of the stack, in trickle.

Two runs of the Locust process ``loadtest run chat`` starts (the same command line), each
against ``bench/blaster.py`` in trickle (40 chunks 5 ms apart, think time 0), the blaster on
CPU 0 and the client on CPU 1:

1. **plain**: chunks consumed (the blaster's count) and the client's user and system CPU
   seconds (``/proc`` via psutil) over a settled window: the CPU microseconds per chunk, split
   into user space and kernel (socket calls, epoll, the loopback path);
2. **profiled**: the same, with ``cProfile`` on during the measured window only (a wrapper
   of the chat scenario turns it on and off); every function's own time (``tottime``) is
   summed by the part of the stack its file belongs to (``PARTS``), and each part's share of
   the profiled total is applied to the plain run's µs per chunk (cProfile's clock is wall
   time, so a C call's own time includes its system call: shares apply to user + kernel).

The profiler slows Python code more than C code, so the split is an estimate of where time
goes, not a measurement of each part to the microsecond; the total per chunk and the kernel
share come from the plain run, without a profiler. Per-stream work (a user_message, a row,
the Locust task) is spread over the reply's 40 chunks, as it is in a real run.

    .venv/bin/python bench/hot_path.py                     # 300 users, 12 s windows (~1 min)
    .venv/bin/python bench/hot_path.py --users 100 --seconds 5 --out /tmp/quick.json

Writes bench/results/hot_path.json (with provenance). Only 127.0.0.1, bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from blaster import Blaster
from provenance import provenance, write_result

RESULTS = Path(__file__).resolve().parent / "results" / "hot_path.json"
REPO = Path(__file__).resolve().parents[1]
SERVER_CPU, CLIENT_CPU = 0, 1
CHUNKS = 40

#: (part, substrings of a profiled function's file or name); the first match wins.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("socket calls (recvmsg_into, send, in C)",
     ("'recvmsg_into'", "'recv_into'", "'recv'", "'send'", "'sendall'")),
    ("kernel receive stamps (loadtest/receive_stamps.py)", ("loadtest/receive_stamps.py",)),
    ("frame fast path (loadtest/frame_fast_path.py)", ("loadtest/frame_fast_path.py",)),
    ("transport (loadtest/transport/)", ("loadtest/transport/",)),
    ("websockets Sans-I/O (handshake, control frames)", ("websockets/",)),
    ("decode JSON into typed messages (msgspec)", ("msgspec", "loadtest/protocol/")),
    ("stream tracking and session (loadtest/session/)", ("loadtest/session/",)),
    ("recording: histograms, windows (loadtest/metrics/, hdrh)", ("loadtest/metrics/", "hdrh")),
    ("Locust users and our user classes (locust/, loadtest/users/)",
     ("locust/", "loadtest/users/", "scenarios/")),
    ("gevent hub, greenlet switches, timers", ("gevent", "greenlet")),
]  # fmt: skip
OTHER = "other (stdlib, builtins)"
TOP = 6  # functions listed per part


def part_of(file: str, name: str) -> str:
    label = f"{file}:{name}"
    for part, needles in PARTS:
        if any(needle in label for needle in needles):
            return part
    return OTHER


#: The chat scenario, plus a greenlet that profiles every greenlet of the process (they all run
#: on the main thread, which ``sys.setprofile`` covers) during the measured window only:
#: start-up, the ramp and the final report would otherwise count, and the wait for the report
#: process would show up as CPU.
PROFILING_LOCUSTFILE = """
import cProfile
import gevent
from locust import events
from chat import SteadyChat  # noqa: F401  (the scenario's user class)

_profiler = cProfile.Profile()


@events.test_start.add_listener
def _profile_window(**_):
    def window():
        gevent.sleep({warmup})
        _profiler.enable()
        gevent.sleep({seconds})
        _profiler.disable()
        _profiler.dump_stats({path!r})

    gevent.spawn(window)
"""


def locust_command(host: str, users: int, run_s: int, out: Path, locustfile: Path) -> list[str]:
    return [
        "-m", "locust", "-f", str(locustfile), "--headless",
        "--host", host, "-u", str(users), "-r", str(users), "-t", f"{run_s}s",
        "--loadtest-out", str(out), "--loadtest-scenario", "chat", "--stop-timeout", "0",
        "--think-time", "0", "--consultation-id", "c-bench",
    ]  # fmt: skip


def run_once(
    blaster: Blaster, args: argparse.Namespace, out: Path, profile: Path | None
) -> dict[str, Any]:
    run_s = int(args.warmup + args.seconds + 2)
    locustfile = REPO / "scenarios" / "chat.py"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOADTEST_")}
    if profile is not None:
        locustfile = out.parent / "profiled_chat.py"
        locustfile.write_text(PROFILING_LOCUSTFILE.format(
            warmup=args.warmup, seconds=args.seconds, path=str(profile)
        ))  # fmt: skip
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "scenarios"), str(REPO)])
    client = subprocess.Popen(
        [sys.executable, *locust_command(blaster.ws_url, args.users, run_s, out, locustfile)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {CLIENT_CPU}),
    )  # fmt: skip
    process = psutil.Process(client.pid)
    try:
        time.sleep(args.warmup)
        chunks_0, cpu_0, wall_0 = (
            blaster.consumed_chunks(),
            process.cpu_times(),
            time.perf_counter(),
        )
        time.sleep(args.seconds)
        chunks_1, cpu_1, wall_1 = (
            blaster.consumed_chunks(),
            process.cpu_times(),
            time.perf_counter(),
        )
        client.wait(timeout=run_s + 120)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    chunks = chunks_1 - chunks_0
    user_s, system_s = cpu_1.user - cpu_0.user, cpu_1.system - cpu_0.system
    return {
        "chunks": chunks,
        "chunks_per_s": round(chunks / (wall_1 - wall_0)),
        "client_cores_busy": round((user_s + system_s) / (wall_1 - wall_0), 3),
        "user_us_per_chunk": round(user_s / chunks * 1e6, 2),
        "kernel_us_per_chunk": round(system_s / chunks * 1e6, 2),
        "us_per_chunk": round((user_s + system_s) / chunks * 1e6, 2),
    }


def split(profile: Path) -> tuple[dict[str, float], dict[str, list[tuple[str, float]]]]:
    """Share of the profiled own-time per part (fractions summing to 1), and each part's
    heaviest functions with their shares of the whole."""
    stats = pstats.Stats(str(profile))
    totals: dict[str, float] = {}
    functions: dict[str, list[tuple[str, float]]] = {}
    for (file, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        part = part_of(file, name)
        totals[part] = totals.get(part, 0.0) + tottime
        where = f"{_short(file)}:{line}({name})" if file != "~" else name
        functions.setdefault(part, []).append((where, tottime))
    whole = sum(totals.values())
    heaviest = {
        part: [(where, t / whole) for where, t in sorted(rows, key=lambda r: -r[1])[:TOP]]
        for part, rows in functions.items()
    }
    return {part: seconds / whole for part, seconds in totals.items()}, heaviest


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3", str(REPO) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=12.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("needs two CPUs (server on one, client on the other)")
    record: dict[str, Any] = {
        "benchmark": "hot_path",
        "provenance": provenance(["msgspec", "hdrhistogram", "psutil"]),
        "setup": {
            "server": f"bench/blaster.py trickle, {CHUNKS} chunks {args.gap_ms} ms apart",
            "client": f"the Locust process of loadtest run chat, {args.users} users, think 0",
            "pinned": "server CPU 0, client CPU 1",
            "window_s": args.seconds,
        },
    }
    with (
        tempfile.TemporaryDirectory() as scratch,
        Blaster("trickle", chunks=CHUNKS, gap_ms=args.gap_ms, cpu=SERVER_CPU) as blaster,
    ):
        plain = run_once(blaster, args, Path(scratch) / "plain", None)
        print(json.dumps({"plain": plain}), flush=True)
        profile = Path(scratch) / "client.prof"
        profiled = run_once(blaster, args, Path(scratch) / "profiled", profile)
        print(json.dumps({"profiled": profiled}), flush=True)
        shares, heaviest = split(profile)
    # cProfile's clock is wall time: a C call's own time includes the system call it makes,
    # so shares apply to all the CPU per chunk (user + kernel); the profiled client ran at a
    # full core, so the hub's wait for readiness (idle) is a negligible part of it.
    parts = [
        {
            "part": part,
            "share": round(share, 4),
            "us_per_chunk": round(share * plain["us_per_chunk"], 2),
            "heaviest": [
                {"function": where, "us_per_chunk": round(f * plain["us_per_chunk"], 3)}
                for where, f in heaviest[part]
            ],
        }
        for part, share in sorted(shares.items(), key=lambda item: -item[1])
    ]
    record.update(plain=plain, profiled=profiled, parts=parts)
    write_result(args.out, record)
    print(f"{plain['us_per_chunk']} µs per chunk: {plain['user_us_per_chunk']} user, "
          f"{plain['kernel_us_per_chunk']} kernel ({plain['chunks_per_s']} chunks/s, "
          f"{plain['client_cores_busy']} core)")  # fmt: skip
    for row in parts:
        print(f"  {row['us_per_chunk']:6.2f} µs  {row['share']:6.1%}  {row['part']}")
        for function in row["heaviest"][:3]:
            print(f"           {function['us_per_chunk']:6.3f} µs  {function['function']}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
