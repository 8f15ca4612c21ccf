"""Benchmark: chunks per second one core of ``loadtest run chat`` takes in, trickle and burst.

Issue 12's throughput targets: trickle (one chunk per packet, the realistic case) at least
50,000 chunks/s per core with full metrics, burst at least 150,000/s. The reference target
cannot feed that much from one core (``bench/results/target_ceiling.json``), so the server is
``bench/blaster.py``: websockets' handshake and close, reply frames made once per reply and
written straight to the transport. The client is the product as users run it: ``loadtest run
chat`` (every stream timed, every chunk's gap recorded, rows, windows, reports).

Three parts, each a list of steps; every step is one client run with ``--warmup`` seconds
before a measured window of ``--seconds``:

- ``trickle``: 40 chunks per reply, one per connection every ``--gap-ms`` (5 ms), think time 0,
  users swept upwards (offered load = users / gap). Server on CPU 0, client on CPU 1.
- ``burst``: 500 chunks per reply written at once, so one read holds many chunks. Pinned alike.
- ``workers``: the burst load from ``--workers 1`` and ``--workers 2`` with nothing pinned:
  what a second worker process adds on this two-core machine (the server shares the cores).

Over each window: chunks *consumed* come from the server (a reply counts when its connection
asks again, i.e. after the client read ``ai_message_complete``); client CPU is the user+system
time of the client's process tree from ``/proc`` (psutil). Figures per step: chunks/s, client
cores busy, chunks per client CPU-second, and the run's own ``generator.saturated`` verdict.

Headline figures (the README table reads them):

- ``trickle.per_core``: chunks per client CPU-second at the busiest trickle step in which the
  client was below 90 % of its core and the run itself flagged no window of the measured span
  saturated, in any repeat (it kept up, so every read held one chunk: a client starved of CPU,
  by its own load or by the hypervisor, reads several chunks at once and looks cheaper per
  chunk); ``trickle.
  one_core_max``: the highest rate measured with the client on one core at all (frames pile up
  in the socket once it falls behind, so that step is no longer pure trickle);
- ``burst.per_core``: chunks per client CPU-second at the burst step, ``burst.chunks_per_s``.

    .venv/bin/python bench/throughput.py                  # all parts (~6 min)
    .venv/bin/python bench/throughput.py --parts trickle --seconds 5 --out /tmp/quick.json

Writes bench/results/throughput.json (with provenance). Only 127.0.0.1, bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from blaster import Blaster, Mode
from compare_baseline import tree_cpu_s
from provenance import provenance, repeats, write_result

RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"
SERVER_CPU, CLIENT_CPU = 0, 1
TRICKLE_TARGET, BURST_TARGET = 50_000, 150_000
#: Below this share of its core the client kept up with a trickle step.
KEPT_UP_CORES = 0.9


def client_env() -> dict[str, str]:
    """No token source, no API key: the blaster checks none, and nothing secret is needed."""
    return {key: value for key, value in os.environ.items() if not key.startswith("LOADTEST_")}


def run_client(
    blaster: Blaster, users: int, workers: int, pin: bool, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    run_s = int(args.warmup + args.seconds + 2)
    command = [
        sys.executable, "-m", "loadtest.cli", "run", "chat", "--host", blaster.ws_url,
        "-u", str(users), "-r", str(min(users, 500)), "-t", f"{run_s}s", "--out", str(out),
        "--format", "json",
        *(["--workers", str(workers)] if workers > 1 else []),
        "--", "--think-time", "0", "--consultation-id", "c-bench",
        "--receive-clock", args.receive_clock,
    ]  # fmt: skip
    started = time.perf_counter()
    client = subprocess.Popen(
        command,
        env=client_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.sched_setaffinity(0, {CLIENT_CPU})) if pin else None,
    )

    def sample() -> tuple[int, float, float, float]:
        """Chunks consumed, client and server CPU seconds, and the time, at one instant."""
        return (
            blaster.consumed_chunks(),
            tree_cpu_s(client.pid),
            tree_cpu_s(blaster.pid),
            time.perf_counter(),
        )

    try:
        time.sleep(args.warmup)
        chunks_0, cpu_0, server_0, wall_0 = sample()
        measured_from = time.time()
        time.sleep(args.seconds)
        chunks_1, cpu_1, server_1, wall_1 = sample()
        measured_to = time.time()
        if client.poll() is not None:
            raise RuntimeError(f"client exited early ({client.returncode}): {_tail(client)}")
        client.wait(timeout=run_s + 180)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if client.returncode not in (0, 1):
        raise RuntimeError(f"client failed ({client.returncode}): {_tail(client)}")
    chunks, cpu, wall = chunks_1 - chunks_0, cpu_1 - cpu_0, wall_1 - wall_0
    summary = json.loads((out / "summary.json").read_text())
    generator = summary.get("generator", {})
    window = json.loads((out / "run.json").read_text())["load"].get("window_s") or 1.0
    flagged_while_measured = [
        start for start in generator.get("saturated_windows", [])
        if start < measured_to and start + window > measured_from
    ]  # fmt: skip
    return {
        "users": users,
        "workers": workers,
        "window_s": round(wall, 3),
        "chunks": chunks,
        "chunks_per_s": round(chunks / wall),
        "client_cpu_s": round(cpu, 3),
        "client_cores_busy": round(cpu / wall, 3),
        "server_cores_busy": round((server_1 - server_0) / wall, 3),
        "chunks_per_client_cpu_s": round(chunks / cpu) if cpu else None,
        "generator_saturated": generator.get("saturated"),
        "windows_flagged_while_measured": len(flagged_while_measured),
        "streams_failed": summary["counts"]["streams_failed"],
        "ttfc_ms_p99": summary["metrics"]["ttfc_ms"].get("p99"),
        "run_wall_s": round(time.perf_counter() - started, 1),
    }


def _tail(client: subprocess.Popen[bytes]) -> str:
    assert client.stderr is not None
    return client.stderr.read().decode(errors="replace")[-800:]


def run_part(
    mode: Mode,
    steps: list[tuple[int, int]],
    chunks: int,
    pin: bool,
    args: argparse.Namespace,
    scratch: Path,
) -> list[dict[str, Any]]:
    """Each (users, workers) step ``--repeat`` times, against one blaster."""
    runs = []
    with Blaster(mode, chunks=chunks, gap_ms=args.gap_ms, cpu=SERVER_CPU if pin else None) as b:
        for repeat in range(args.repeat):
            for users, workers in steps:
                out = scratch / f"{mode}-{users}-{workers}-{repeat}"
                run = run_client(b, users, workers, pin, args, out)
                run.update(part=mode if pin else "workers", repeat=repeat)
                runs.append(run)
                print(json.dumps(run), flush=True)
    return runs


def median_of(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return repeats([run[key] for run in runs], 0)


def trickle_headline(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_users: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        by_users.setdefault(run["users"], []).append(run)
    kept_up = [
        group for group in by_users.values()
        if max(run["client_cores_busy"] for run in group) < KEPT_UP_CORES
        and not any(run["windows_flagged_while_measured"] for run in group)
    ]  # fmt: skip
    busiest = max(kept_up, key=lambda group: min(r["chunks_per_s"] for r in group), default=None)
    fastest = max(by_users.values(), key=lambda group: min(r["chunks_per_s"] for r in group))
    return {
        "per_core_step_users": busiest[0]["users"] if busiest else None,
        "per_core": median_of(busiest, "chunks_per_client_cpu_s") if busiest else None,
        "per_core_chunks_per_s": median_of(busiest, "chunks_per_s") if busiest else None,
        "one_core_max_step_users": fastest[0]["users"],
        "one_core_max": median_of(fastest, "chunks_per_s"),
        "one_core_max_cores_busy": median_of(fastest, "client_cores_busy"),
        "target": TRICKLE_TARGET,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["trickle", "burst", "workers"],
                        choices=["trickle", "burst", "workers"])  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per step")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before the window")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every step")
    parser.add_argument("--trickle-users", type=int, nargs="+", default=[100, 200, 300, 400, 600])
    parser.add_argument("--gap-ms", type=float, default=5.0, help="trickle: ms between chunks")
    parser.add_argument("--burst-users", type=int, default=20)
    parser.add_argument("--burst-chunks", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--receive-clock", choices=["kernel", "read"], default="kernel",
                        help="how the client stamps received frames (the run's option)")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        parser.error("needs two CPUs (server on one, client on the other)")

    record: dict[str, Any] = {
        "benchmark": "throughput",
        "provenance": provenance(["msgspec", "hdrhistogram", "psutil"]),
        "setup": {
            "client": "loadtest run chat, think time 0, full metrics",
            "receive_clock": args.receive_clock,
            "server": "bench/blaster.py (websockets handshake, frames written raw)",
            "warmup_s": args.warmup,
            "window_s": args.seconds,
            "repeat": args.repeat,
            "trickle": {"chunks_per_reply": 40, "gap_ms": args.gap_ms,
                        "users": args.trickle_users, "pinned": "server CPU 0, client CPU 1"},
            "burst": {"chunks_per_reply": args.burst_chunks, "users": args.burst_users,
                      "pinned": "server CPU 0, client CPU 1"},
            "workers": {"chunks_per_reply": args.burst_chunks, "users": 2 * args.burst_users,
                        "workers": [1, 2], "pinned": "nothing"},
            "chunks_counted_by": "server: a reply's chunks when its connection asks again",
            "cpu_counted_by": "client process tree user+system, psutil (/proc)",
        },
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if "trickle" in args.parts:
            steps = [(users, 1) for users in args.trickle_users]
            runs = run_part("trickle", steps, 40, True, args, scratch)
            record["trickle"] = {**trickle_headline(runs), "runs": runs}
        if "burst" in args.parts:
            runs = run_part("burst", [(args.burst_users, 1)], args.burst_chunks, True, args,
                            scratch)  # fmt: skip
            record["burst"] = {
                "per_core": median_of(runs, "chunks_per_client_cpu_s"),
                "chunks_per_s": median_of(runs, "chunks_per_s"),
                "client_cores_busy": median_of(runs, "client_cores_busy"),
                "target": BURST_TARGET,
                "runs": runs,
            }
        if "workers" in args.parts:
            steps = [(2 * args.burst_users, 1), (2 * args.burst_users, 2)]
            runs = run_part("burst", steps, args.burst_chunks, False, args, scratch)
            one = [run for run in runs if run["workers"] == 1]
            two = [run for run in runs if run["workers"] == 2]
            record["workers"] = {
                "one_worker_chunks_per_s": median_of(one, "chunks_per_s"),
                "two_workers_chunks_per_s": median_of(two, "chunks_per_s"),
                "speedup": repeats(
                    [b["chunks_per_s"] / a["chunks_per_s"] for a, b in zip(one, two, strict=True)]
                ),
                "runs": runs,
            }
    write_result(args.out, record)
    for part in ("trickle", "burst", "workers"):
        if part in record:
            shown = {k: v for k, v in record[part].items() if k != "runs"}
            print(f"{part}: {json.dumps(shown)}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
