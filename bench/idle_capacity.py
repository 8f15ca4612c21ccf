"""Benchmark: idle heartbeating connections one process holds, and memory per connection.

One process (gevent, monkey-patched as a Locust worker is) opens ``--connections`` idle
consultations through our real stack (:class:`~loadtest.session.ConsultationSession`: the
supervisor, the app-level heartbeat, the transport's reader) against the reference target on
127.0.0.1 (``loadtest serve --processes N``, so that no target process holds more than its
share). Each connection also gets one greenlet that sleeps in a loop, as the idle scenario's
Locust user does (``--no-user-greenlet`` leaves it out). Memory per connection is the slope of
RSS (after ``gc.collect()``) between ``--small`` and ``--connections`` held connections, so
the interpreter's baseline cancels out; each count is held for ``--hold`` seconds first, so
every connection has heartbeated at least once. Every repeat runs in a fresh child process
(memory freed by one repeat would flatter the next).

Heartbeats "on time": the pong round trip (``pong_rtt_ms``) and how late each ping left
against its schedule (``ping_lateness_ms``: send time minus previous send plus the interval),
both at the full count, plus pongs missed.

    .venv/bin/python bench/idle_capacity.py [--connections 10000] [--small 1000] [--repeats 3]
    .venv/bin/python bench/idle_capacity.py --breakdown 2000   # where the memory goes

``--breakdown N`` holds N connections under tracemalloc and prints the top allocation sites
by file and line (per connection), the live greenlets per connection and their saved stack
sizes; it writes nothing. File descriptors: the soft limit is raised to the hard limit
(``resource.setrlimit``) if needed; a hard limit too low for the count is reported and the
count lowered to what fits. Writes bench/results/idle_capacity.json with provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

SECRET = "bench-secret-0123456789abcdef0123456789"
TARGET_ENV = {"LOADTEST_JWT_SECRET": SECRET}
#: Descriptors besides the connections: interpreter, pipes, the target's admin calls.
FD_HEADROOM = 200


def raise_fd_limit(wanted: int) -> dict[str, Any]:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    new_soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"soft_before": soft, "soft": new_soft, "hard": hard, "wanted": wanted,
            "enough": new_soft >= wanted}  # fmt: skip


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- the child


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Hold the connections in this process and measure (runs with gevent patched)."""
    from gevent import monkey

    monkey.patch_all()
    import gc

    import gevent
    import gevent.pool
    import greenlet
    from hdrh.histogram import HdrHistogram

    from loadtest.auth import MintedTokens
    from loadtest.reconnect import ReconnectPolicy
    from loadtest.rest import RestClient
    from loadtest.session import ConsultationSession, Endpoints, SessionConfig

    pong_rtt = HdrHistogram(1, 60_000_000, 3)  # µs
    lateness = HdrHistogram(1, 60_000_000, 3)  # µs
    counts = {"pings_sent": 0, "pongs_received": 0, "pongs_missed": 0, "disconnects": 0,
              "connect_failures": 0}  # fmt: skip
    interval = args.interval

    class Observer:
        """Per session, as the real recorder is: a pointer to shared stats and one float."""

        __slots__ = ("last_ping",)

        def __init__(self) -> None:
            self.last_ping = 0.0

        def ping_sent(self) -> None:
            now = time.perf_counter()
            counts["pings_sent"] += 1
            if self.last_ping:
                late_us = (now - self.last_ping - interval) * 1e6
                lateness.record_value(max(1, int(late_us)))
            self.last_ping = now

        def pong_received(self, rtt_ms: float) -> None:
            counts["pongs_received"] += 1
            pong_rtt.record_value(max(1, int(rtt_ms * 1000)))

        def pong_missed(self) -> None:
            counts["pongs_missed"] += 1

        def disconnected(self, close_code: int) -> None:
            counts["disconnects"] += 1

        def connect_failed(self, kind: str) -> None:
            counts["connect_failures"] += 1

        def __getattr__(self, name: str):
            return _nothing

    def _nothing(*args: object) -> None:
        return None

    config = SessionConfig(
        endpoints=Endpoints.from_base_url(args.base_url),
        consultation_id="idle-bench",
        heartbeat_interval_s=interval,
        pong_timeout_s=args.pong_timeout,
        reconnect=ReconnectPolicy(max_attempts=0),
    )
    tokens = MintedTokens(SECRET)
    rest = RestClient.for_connect_options(config.connect)  # one per process, as in a worker
    sessions: list[ConsultationSession] = []
    holders: list[gevent.Greenlet] = []

    def hold(session: ConsultationSession) -> None:  # the idle scenario's user, in short
        while session.ended is None:
            gevent.sleep(1.0)

    def open_one(index: int) -> None:
        session = ConsultationSession(config, Observer(), tokens, user_index=index, rest=rest)
        try:
            session.start()
        except Exception:  # counted by the observer; the figure says how many are held
            return
        sessions.append(session)
        if args.user_greenlet:
            holders.append(gevent.spawn(hold, session))

    def open_up_to(total: int) -> float:
        started = time.perf_counter()
        pool = gevent.pool.Pool(args.connect_concurrency)
        for index in range(len(sessions), total):
            pool.spawn(open_one, index)
        pool.join()
        return time.perf_counter() - started

    def live_greenlets() -> list[Any]:
        return [o for o in gc.get_objects() if isinstance(o, greenlet.greenlet) and o]

    def held() -> int:
        return sum(1 for s in sessions if s.connection is not None and s.connection.is_open)

    def settle() -> dict[str, Any]:
        gevent.sleep(args.hold)
        gc.collect()
        gevent.sleep(0.2)
        greenlets = live_greenlets()
        stacks = sorted(g._stack_saved for g in greenlets)
        return {
            "open": held(),
            "rss_mb": round(rss_bytes() / 2**20, 2),
            "greenlets": len(greenlets),
            "greenlet_stack_saved_bytes_median": stacks[len(stacks) // 2] if stacks else 0,
            "greenlet_stack_saved_bytes_total": sum(stacks),
        }

    if args.breakdown:
        import tracemalloc

        open_up_to(200)  # warm: imports, caches, the first of every allocation
        gevent.sleep(args.interval + 1)
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        rss_before = rss_bytes()
        open_up_to(200 + args.breakdown)
        gevent.sleep(args.hold)
        gc.collect()
        after = tracemalloc.take_snapshot()
        rss_after = rss_bytes()
        filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
        stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
        traced = sum(stat.size_diff for stat in stats)
        greenlets = live_greenlets()
        by_function: dict[str, list[int]] = {}
        for g in greenlets:
            frame = getattr(g, "gr_frame", None)
            run = getattr(g, "_run", None) or getattr(g, "run", None)
            name = getattr(run, "__qualname__", None) or (frame.f_code.co_name if frame else "?")
            by_function.setdefault(name, []).append(g._stack_saved)
        added = args.breakdown
        return {
            "connections_added": added,
            "open": held(),
            "rss_per_connection_bytes": round((rss_after - rss_before) / added),
            "traced_per_connection_bytes": round(traced / added),
            "top_sites": [
                {
                    "site": f"{s.traceback[0].filename.split('site-packages/')[-1]}:"
                    f"{s.traceback[0].lineno}",
                    "bytes_per_connection": round(s.size_diff / added, 1),
                    "blocks_per_connection": round(s.count_diff / added, 2),
                }
                for s in stats[: args.top]
                if s.size_diff
            ],
            "greenlets": {
                name: {
                    "count": len(sizes),
                    "per_connection": round(len(sizes) / (added + 200), 2),
                    "stack_saved_bytes_median": sorted(sizes)[len(sizes) // 2],
                }
                for name, sizes in sorted(by_function.items(), key=lambda kv: -len(kv[1]))
            },
        }

    points = []
    open_up_to(args.small)
    points.append({"wanted": args.small, **settle()})
    seconds_to_open = open_up_to(args.connections)
    # Heartbeats on time: measured over the hold at the full count only.
    pong_rtt.reset()
    lateness.reset()
    opening = dict(counts)
    for key in counts:
        counts[key] = 0
    large = settle()
    points.append({"wanted": args.connections, "seconds_to_open": round(seconds_to_open, 1),
                   **large})  # fmt: skip

    def spread(histogram: HdrHistogram) -> dict[str, float]:
        return {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in (50, 99, 99.9)} | {
            "max": histogram.get_max_value() / 1000,
            "count": histogram.get_total_count(),
        }

    small, big = points
    connections = big["open"] - small["open"]
    return {
        "points": points,
        "kib_per_connection": round((big["rss_mb"] - small["rss_mb"]) * 1024 / connections, 2),
        "greenlets_per_connection": round((big["greenlets"] - small["greenlets"]) / connections, 3),
        "connect_failures_while_opening": opening["connect_failures"],
        "at_full_count": dict(counts) | {"pong_rtt_ms": spread(pong_rtt),
                                         "ping_lateness_ms": spread(lateness)},
    }  # fmt: skip


# --------------------------------------------------------------------------- the parent


def run_child(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--base-url", base_url,
               "--connections", str(args.connections), "--small", str(args.small),
               "--hold", str(args.hold), "--interval", str(args.interval),
               "--pong-timeout", str(args.pong_timeout),
               "--connect-concurrency", str(args.connect_concurrency),
               "--breakdown", str(args.breakdown), "--top", str(args.top)]  # fmt: skip
    if not args.user_greenlet:
        command.append("--no-user-greenlet")
    budget = 120 + args.hold * 3 + args.connections / 100
    done = subprocess.run(command, capture_output=True, text=True, timeout=budget, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def runs_of(runs: list[dict[str, Any]], median_kib: float) -> list[dict[str, Any]]:
    middle = min(runs, key=lambda run: abs(run["kib_per_connection"] - median_kib))
    small, large = middle["points"]
    full = middle["at_full_count"]
    return [
        {"users": small["wanted"], "peak_open": small["open"], "rss_mb": small["rss_mb"]},
        {
            "users": large["wanted"],
            "peak_open": large["open"],
            "rss_mb": large["rss_mb"],
            "pongs_missed": full["pongs_missed"],
            "connection_failures": middle["connect_failures_while_opening"]
            + full["connect_failures"],
            "pong_rtt_ms_p99": full["pong_rtt_ms"]["p99"],
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--hold",
        type=float,
        default=12.0,
        help="seconds each count is held before measuring (> --interval)",
    )
    parser.add_argument("--interval", type=float, default=5.0, help="heartbeat interval, s")
    parser.add_argument("--pong-timeout", type=float, default=10.0)
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--target-processes", type=int, default=2)
    parser.add_argument("--no-user-greenlet", dest="user_greenlet", action="store_false")
    parser.add_argument(
        "--breakdown",
        type=int,
        default=0,
        metavar="N",
        help="tracemalloc breakdown at N connections instead; writes nothing",
    )
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "idle_capacity.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    wanted = max(args.connections, args.breakdown + 200) + FD_HEADROOM
    limits = raise_fd_limit(wanted)  # the child and the target inherit it
    if args.child:
        print(json.dumps(child(args)))
        return
    if not limits["enough"]:
        fits = limits["soft"] - FD_HEADROOM
        print(f"fd limit {limits['soft']} (hard {limits['hard']}) < {wanted}: "
              f"holding {fits} instead", file=sys.stderr)  # fmt: skip
        args.connections = min(args.connections, fits)

    from provenance import provenance, repeats, write_result

    from loadtest.target.process import TargetProcess

    origin = provenance(["hdrhistogram", "aiohttp"])  # before the run: the code measured
    target_args = ["--profile", "fixed", "--processes", str(args.target_processes)]
    with TargetProcess(target_args, env=TARGET_ENV) as target:
        if args.breakdown:
            print(json.dumps(run_child(args, target.base_url), indent=2))
            return
        runs = []
        for index in range(args.repeats):
            run = run_child(args, target.base_url)
            runs.append(run)
            print(f"repeat {index + 1}: {run['kib_per_connection']} KiB/connection, "
                  f"{run['points'][-1]['open']} held, "
                  f"pong p99 {run['at_full_count']['pong_rtt_ms']['p99']} ms",
                  file=sys.stderr)  # fmt: skip
    kib = repeats([run["kib_per_connection"] for run in runs], digits=2)
    record = {
        "benchmark": "idle_capacity",
        "provenance": origin | {"repeats": kib},
        "setup": {
            "connections": args.connections,
            "small": args.small,
            "hold_s": args.hold,
            "heartbeat_interval_s": args.interval,
            "pong_timeout_s": args.pong_timeout,
            "user_greenlet": args.user_greenlet,
            "target": " ".join(target_args),
            "fd_limit": limits,
            "ephemeral_ports": Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split(),
            "stack": "ConsultationSession (supervisor, heartbeat, transport), one process",
        },
        # The median repeat's two counts, as older files had them (bench/readme_table.py
        # and the docs read these): connections held, RSS after gc, misses, failures.
        "runs": runs_of(runs, kib["median"]),
        "memory_per_connection_kib": kib["median"],
        "memory_per_connection_kib_repeats": kib,
        "greenlets_per_connection": repeats([r["greenlets_per_connection"] for r in runs]),
        "pong_rtt_ms_p99_at_full_count": repeats(
            [r["at_full_count"]["pong_rtt_ms"]["p99"] for r in runs]
        ),
        "ping_lateness_ms_p99_at_full_count": repeats(
            [r["at_full_count"]["ping_lateness_ms"]["p99"] for r in runs]
        ),
        "pongs_missed_at_full_count": [r["at_full_count"]["pongs_missed"] for r in runs],
        "repeats": runs,
    }
    write_result(args.out, record)
    print(json.dumps({k: v for k, v in record.items() if k != "repeats"}, indent=2))


if __name__ == "__main__":
    main()
