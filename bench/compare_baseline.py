"""Benchmark: chunk messages per client CPU-second, ours vs a hand-written websocket-client user.

Issue 12's headline figure. One reference target (``loadtest serve --profile fixed``: 40 chunks
2 ms apart, no think time, no WebSocket pings) serves both clients in turn, in interleaved rounds
(the order alternates each round, so drift on a shared machine hits both alike):

- ``ours``: ``loadtest run chat -u 50 --host <target> -- --think-time 0`` (full metrics);
- ``baseline``: ``locust -f bench/baseline_websocket_client.py`` (``websocket-client`` with
  ``skip_utf8_validation=True``, one ``json.loads`` per frame, two pseudo-requests per reply);
- with ``--with-read-clock``, ``ours_read`` too: ours with ``--receive-clock read`` (frames
  stamped when read, not by the kernel), to price the kernel's receive stamps in the same
  rounds (``kernel_clock_us_per_chunk``: ours − ours_read, CPU µs per chunk, per round);
- with ``--ours-from DIR``, ``ours_from`` too: ours importing the package from ``DIR`` (a
  ``git worktree`` of other code), to measure a code change side by side in the same rounds
  (``ratio_ours_from_to_ours``, round by round). Every client starts in a scratch directory
  with ``PYTHONPATH`` naming its checkout: started in a checkout, ``python -m`` would import that
  checkout's package whatever ``PYTHONPATH`` says. ``setup.loadtest_imported_from`` records
  where each one's package came from.

Each client runs ``--warmup`` seconds (connections opened, allocator and TCP warm) before a
measured window of ``--seconds``. Over that window only:

- chunks come from the target's own counter (``GET /admin/stats`` ``chunks_sent``, counted as
  each reply ends): the same neutral count for both clients;
- client CPU is the user+system time of the client's whole process tree, read from the OS
  (``/proc`` via psutil) at both ends of the window: start-up, imports and report writing are
  outside it.

By default the target is pinned to CPU 0 and the clients to CPU 1 (``--no-pin`` to leave both
to the scheduler), so that each client has one core, as in the issue's figures.

``--server blaster`` puts ``bench/blaster.py`` (trickle: one chunk per packet, ``--chunk-gap-ms``
apart) in the reference target's place, for loads the reference target cannot send: with
``--users 600 --chunk-gap-ms 5`` both clients have their core full, so the ratio is how much
load one core of each takes in. Chunks then are those the blaster counts *consumed* (a reply
counts once its connection asks again).

    .venv/bin/python bench/compare_baseline.py                       # 5 rounds of 30 s
    .venv/bin/python bench/compare_baseline.py --seconds 10 --rounds 1 --out /tmp/quick.json
    .venv/bin/python bench/compare_baseline.py --server blaster --users 600 --chunk-gap-ms 5 \
        --rounds 3 --seconds 15 --out bench/results/compare_baseline_full_core.json

Writes bench/results/compare_baseline.json (with provenance). Only 127.0.0.1, bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from blaster import Blaster
from provenance import provenance, repeats, write_result

from loadtest.target.process import TargetProcess

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "compare_baseline.json"
BASELINE_LOCUSTFILE = BENCH / "baseline_websocket_client.py"
TARGET_CPU, CLIENT_CPU = 0, 1
#: The issue's target: at least 2.0x the baseline in the same run (never below 1.5x).
TARGET_RATIO = 2.0


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and all its living descendants."""
    return sum(tree_cpu_times(pid))


def tree_cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and all its living descendants."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    user = system = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        user += times.user
        system += times.system
    return user, system


@dataclass(frozen=True)
class Server:
    """What a client run needs of the server it loads: where it is, its process, its count."""

    base_url: str
    ws_url: str
    pid: int
    chunks: Callable[[], int]
    #: The blaster serves no ``POST /consultations``: ours is given an id instead.
    consultation_id: str | None = None

    @classmethod
    def of_target(cls, target: TargetProcess) -> Server:
        return cls(
            target.base_url, target.ws_url, target.pid or 0, lambda: target.stats()["chunks_sent"]
        )

    @classmethod
    def of_blaster(cls, blaster: Blaster) -> Server:
        return cls(blaster.ws_url, blaster.ws_url, blaster.pid, blaster.consumed_chunks, "c-bench")


def client_command(
    kind: str,
    target: Server,
    users: int,
    run_s: int,
    scratch: Path,
    receive_clock: str = "kernel",
) -> list[str]:
    """The client's command line; ``ours_read`` is ours on the read clock whatever
    ``receive_clock`` (the run's ``--receive-clock``) says."""
    if kind == "ours_read":
        receive_clock = "read"
    if kind.startswith("ours"):
        return [
            sys.executable, "-m", "loadtest.cli", "run", "chat",
            "--host", target.base_url, "-u", str(users), "-r", str(users), "-t", f"{run_s}s",
            "--out", str(scratch / f"ours-{time.monotonic_ns()}"), "--format", "json",
            "--", "--think-time", "0", "--receive-clock", receive_clock,
            *(["--consultation-id", target.consultation_id] if target.consultation_id else []),
        ]  # fmt: skip
    return [
        sys.executable, "-m", "locust", "-f", str(BASELINE_LOCUSTFILE), "--headless",
        "--host", target.ws_url, "-u", str(users), "-r", str(users), "-t", f"{run_s}s",
        "--stop-timeout", "0", "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip


def package_root(kind: str, args: argparse.Namespace) -> Path:
    """The checkout whose ``loadtest`` a client imports: ``--ours-from`` for ``ours_from``,
    else the one this script is in."""
    return Path(args.ours_from).resolve() if kind == "ours_from" else REPO


def client_env(kind: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    return {**env, "PYTHONPATH": str(package_root(kind, args))}


def imported_from(kind: str, args: argparse.Namespace, env: dict[str, str], cwd: Path) -> str:
    """Where a client of this kind imports ``loadtest`` from, asked the way it is started."""
    done = subprocess.run(
        [sys.executable, "-c", "import loadtest; print(loadtest.__file__)"],
        env=client_env(kind, args, env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(done.stdout.strip()).parent)


def measure(
    kind: str, target: Server, args: argparse.Namespace, env: dict[str, str], scratch: Path
) -> dict[str, Any]:
    """One client run, started in ``scratch``; the figures of its measured window."""
    run_s = int(args.warmup + args.seconds + 2)
    pin = (lambda: os.sched_setaffinity(0, {CLIENT_CPU})) if args.pin else None
    started = time.perf_counter()
    client = subprocess.Popen(
        client_command(kind, target, args.users, run_s, scratch, args.receive_clock),
        env=client_env(kind, args, env),
        cwd=scratch,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=pin,
    )
    try:
        time.sleep(args.warmup)
        chunks_0, (user_0, system_0) = target.chunks(), tree_cpu_times(client.pid)
        server_0, wall_0 = tree_cpu_s(target.pid), time.perf_counter()
        time.sleep(args.seconds)
        chunks_1, (user_1, system_1) = target.chunks(), tree_cpu_times(client.pid)
        server_1, wall_1 = tree_cpu_s(target.pid), time.perf_counter()
        if client.poll() is not None:
            raise RuntimeError(
                f"{kind} client exited early ({client.returncode}): "
                f"{client.stderr.read().decode(errors='replace')[-600:]}"
            )
        _, stderr = client.communicate(timeout=run_s + 120)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    chunks, wall = chunks_1 - chunks_0, wall_1 - wall_0
    user, system = user_1 - user_0, system_1 - system_0
    cpu = user + system
    if client.returncode not in (0, 1):  # locust exits 1 when a request failed
        raise RuntimeError(
            f"{kind} client failed ({client.returncode}): {stderr.decode(errors='replace')[-600:]}"
        )
    return {
        "client": kind,
        "window_s": round(wall, 3),
        "chunks": chunks,
        "client_cpu_s": round(cpu, 3),
        "client_cores_busy": round(cpu / wall, 3),
        "server_cores_busy": round((server_1 - server_0) / wall, 3),
        "chunks_per_s": round(chunks / wall),
        "chunks_per_client_cpu_s": round(chunks / cpu) if cpu else None,
        "client_user_us_per_chunk": round(user / chunks * 1e6, 2) if chunks else None,
        "client_system_us_per_chunk": round(system / chunks * 1e6, 2) if chunks else None,
        "run_wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the window")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=40)
    parser.add_argument("--chunk-gap-ms", type=float, default=2.0)
    parser.add_argument(
        "--server",
        choices=["reference", "blaster"],
        default="reference",
        help="the reference target (default) or bench/blaster.py (trickle)",
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="target on CPU 0, clients on CPU 1",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--receive-clock",
        choices=["kernel", "read"],
        default="kernel",
        help="how ours stamps received frames (the run's option)",
    )
    parser.add_argument(
        "--with-read-clock",
        action="store_true",
        help="also run ours with --receive-clock read in every round (ours_read)",
    )
    parser.add_argument(
        "--ours-from",
        metavar="DIR",
        help="also run ours importing loadtest from DIR (another checkout) in every round",
    )
    args = parser.parse_args()
    if args.ours_from and not (Path(args.ours_from) / "loadtest" / "__init__.py").is_file():
        parser.error(f"--ours-from: no loadtest package in {args.ours_from}")
    if args.with_read_clock and args.receive_clock == "read":
        parser.error("--with-read-clock compares against --receive-clock kernel")
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        parser.error("--pin needs two CPUs; use --no-pin")

    secret = secrets.token_urlsafe(32)
    env = {**os.environ, "LOADTEST_JWT_SECRET": secret}
    env.pop("LOADTEST_API_KEY", None)
    target_args = [
        "--profile",
        "fixed",
        "--ttfc-ms",
        "0",
        "--chunks",
        str(args.chunks),
        "--chunk-gap-ms",
        str(args.chunk_gap_ms),
        "--ws-ping-interval",
        "0",
    ]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        if args.server == "blaster":
            blaster = Blaster(
                "trickle",
                chunks=args.chunks,
                gap_ms=args.chunk_gap_ms,
                cpu=TARGET_CPU if args.pin else None,
            )
            target = Server.of_blaster(stack.enter_context(blaster))
        else:
            reference = TargetProcess(target_args, env={"LOADTEST_JWT_SECRET": secret})
            target = Server.of_target(stack.enter_context(reference))
            if args.pin:
                for process in [psutil.Process(target.pid), *psutil.Process(target.pid).children()]:
                    process.cpu_affinity([TARGET_CPU])
        kinds = [
            "baseline",
            "ours",
            *(["ours_read"] if args.with_read_clock else []),
            *(["ours_from"] if args.ours_from else []),
        ]
        sources = {
            kind: imported_from(kind, args, env, Path(scratch))
            for kind in kinds
            if kind != "baseline"
        }
        if args.ours_from and sources["ours_from"] == sources["ours"]:
            raise SystemExit(f"--ours-from imports the same package as ours: {sources['ours']}")
        for round_index in range(args.rounds):
            shift = round_index % len(kinds)  # each client goes first in turn
            order = kinds[shift:] + kinds[:shift]
            for kind in order:
                run = measure(kind, target, args, env, Path(scratch))
                run["round"] = round_index
                runs.append(run)
                print(json.dumps(run), flush=True)

    def per_chunk(kind: str, part: str) -> list[float]:
        return [run[f"client_{part}_us_per_chunk"] for run in runs if run["client"] == kind]

    def figures(kind: str) -> list[float]:
        return [run["chunks_per_client_cpu_s"] for run in runs if run["client"] == kind]

    def busy(kind: str) -> list[float]:
        return [run["client_cores_busy"] for run in runs if run["client"] == kind]

    def of_round(kind: str, index: int) -> dict[str, Any]:
        return next(r for r in runs if r["round"] == index and r["client"] == kind)

    def ratios_to_baseline(kind: str) -> list[float]:
        return [
            of_round(kind, i)["chunks_per_client_cpu_s"]
            / of_round("baseline", i)["chunks_per_client_cpu_s"]
            for i in range(args.rounds)
        ]

    def cpu_us_per_chunk(run: dict[str, Any]) -> float:
        return run["client_user_us_per_chunk"] + run["client_system_us_per_chunk"]

    ratios = ratios_to_baseline("ours")
    record = {
        "benchmark": "compare_baseline",
        "provenance": provenance(["websocket-client", "aiohttp", "psutil", "msgspec"]),
        "setup": {
            "users": args.users,
            "think_time_s": 0,
            "chunks_per_reply": args.chunks,
            "chunk_gap_ms": args.chunk_gap_ms,
            "warmup_s": args.warmup,
            "window_s": args.seconds,
            "rounds": args.rounds,
            "pinned": args.pin,
            "receive_clock": args.receive_clock,
            "target": (
                "bench/blaster.py trickle"
                if args.server == "blaster"
                else "loadtest serve --profile fixed (aiohttp), --ws-ping-interval 0"
            ),
            "chunks_counted_by": (
                "blaster, chunks consumed"
                if args.server == "blaster"
                else "target /admin/stats chunks_sent"
            ),
            "cpu_counted_by": "client process tree user+system, psutil (/proc)",
            "loadtest_imported_from": sources,
        },
        "chunks_per_client_cpu_s": {kind: repeats(figures(kind), 0) for kind in kinds},
        "client_cores_busy": {kind: repeats(busy(kind), 3) for kind in kinds},
        "client_us_per_chunk": {
            kind: {part: repeats(per_chunk(kind, part), 2) for part in ("user", "system")}
            for kind in kinds
        },
        "ratio_ours_to_baseline": repeats(ratios),
        "target_ratio": TARGET_RATIO,
        "runs": runs,
    }
    if args.with_read_clock:
        record["ratio_ours_read_to_baseline"] = repeats(ratios_to_baseline("ours_read"))
        # What the kernel's receive stamps cost, round by round (same hour, same target).
        record["kernel_clock_us_per_chunk"] = repeats(
            [
                cpu_us_per_chunk(of_round("ours", i)) - cpu_us_per_chunk(of_round("ours_read", i))
                for i in range(args.rounds)
            ],
            2,
        )
    if args.ours_from:
        record["ratio_ours_from_to_ours"] = repeats(
            [
                of_round("ours_from", i)["chunks_per_client_cpu_s"]
                / of_round("ours", i)["chunks_per_client_cpu_s"]
                for i in range(args.rounds)
            ]
        )
    write_result(args.out, record)
    median = record["ratio_ours_to_baseline"]["median"]
    print(
        f"ours / baseline chunks per client CPU-second: {median:.2f}x median over "
        f"{args.rounds} round(s) (target {TARGET_RATIO:.1f}x); wrote {args.out}"
    )
    if args.ours_from:
        change = record["ratio_ours_from_to_ours"]["median"]
        print(f"ours from {args.ours_from} / ours: {change:.3f}x median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
