"""Microbenchmark: what compiling the chunk path with mypyc would save (issue 12's open lever).

The package is copied into a scratch folder and modules of the chunk path are compiled there
with ``mypyc`` (nothing in the repository is built), two ways:

- ``compiled``: the frame fast path, the stream tracker and the receive stamps;
- ``compiled_with_decoding``: those and the decoding and message modules too (msgspec's
  structs and decoder, called from compiled code).

A worker process then feeds chunk frames through the real read path
(``WebSocketConnection._consume`` into a session's supervisor and tracker, as a hub read does)
importing the package interpreted (this checkout) or from a compiled copy, each way in turn,
``--repeats`` times. The figure is CPU µs per chunk (``time.process_time``), min/median/max
over repeats. No network.

- ``one_chunk_read``: a read holding one whole chunk frame (trickle: most reads);
- ``burst_read``: a read holding a 40-chunk reply's chunk frames back to back (a loaded
  generator's reads).

The connection and supervisor stay interpreted in every way: mypyc would need gevent's types
(it ships no stubs) and the transport's mixin classes compiled together.

    .venv/bin/python bench/compiled_path.py [--loops 100000] [--repeats 7]

Writes bench/results/compiled_path.json (with provenance).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from provenance import provenance, repeats, write_result

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "compiled_path.json"
_FAST_PATH = (
    "loadtest/frame_fast_path.py",
    "loadtest/protocol/tracking.py",
    "loadtest/receive_stamps.py",
)
#: Each compiled way: the chunk path's modules mypyc compiles for it (all compile unchanged).
COMPILED: dict[str, tuple[str, ...]] = {
    "compiled": _FAST_PATH,
    "compiled_with_decoding": (
        *_FAST_PATH,
        "loadtest/protocol/decoding.py",
        "loadtest/protocol/messages.py",
    ),
}
CHUNKS_PER_BURST = 40


def compile_copy(scratch: Path, modules: tuple[str, ...]) -> None:
    """Copy the package into ``scratch`` and compile ``modules`` there."""
    shutil.copytree(
        ROOT / "loadtest", scratch / "loadtest", ignore=shutil.ignore_patterns("__pycache__")
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", *modules],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"mypyc failed: {(done.stdout + done.stderr).strip()[-800:]}")


def run_worker(package_root: Path, loops: int, compiled: bool) -> dict[str, Any]:
    """One timing of every step in a fresh process importing the package from there."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", "--loops", str(loops),
         *(["--expect-compiled"] if compiled else [])],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"worker failed: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout)


def worker(loops: int, expect_compiled: bool) -> int:
    """Time the steps in this process; print µs per chunk of each as JSON."""
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    import loadtest
    from loadtest import frame_fast_path
    from loadtest.protocol import StreamTracker, tracking
    from loadtest.session import ConsultationSession, Endpoints, SessionConfig
    from loadtest.transport.connection import _SHARED_READ_BUFFER, WebSocketConnection

    loaded_compiled = all(
        module.__file__ is not None and module.__file__.endswith(".so")
        for module in (frame_fast_path, tracking)
    )
    if loaded_compiled != expect_compiled:
        print(f"expected compiled={expect_compiled}, loaded {loadtest.__file__}", file=sys.stderr)
        return 1

    class Quiet:
        """An observer and metrics sink that keeps nothing."""

        def __getattr__(self, name: str) -> Any:
            return lambda *args: None

    config = SessionConfig(
        endpoints=Endpoints.from_base_url("ws://127.0.0.1:9"),
        consultation_id="c-1",
        heartbeat_interval_s=None,
    )
    supervisor = ConsultationSession(config, Quiet(), user_index=0)._supervisor
    ours, _theirs = socket.socketpair()  # never read: frames are put in the read buffer
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"))
    protocol.state = State.OPEN
    connection = WebSocketConnection(
        ours, protocol, supervisor, connect_started_at=0.0, handshake_done_at=0.0
    )

    def frame(message: dict[str, str]) -> bytes:
        payload = json.dumps(message, separators=(",", ":")).encode()
        assert len(payload) < 126
        return bytes((0x81, len(payload))) + payload

    stamp = "2026-12-06T00:00:00Z"
    start = frame({"type": "ai_message_start", "message_id": "msg_0_1", "timestamp": stamp})
    chunk = frame({"type": "ai_message_chunk", "content": "word ", "message_id": "msg_0_1",
                   "timestamp": stamp})  # fmt: skip

    def fresh_stream() -> Any:
        supervisor.tracker = StreamTracker()
        stream = supervisor.tracker.begin("u1", 0.0)
        _SHARED_READ_BUFFER[: len(start)] = start
        connection._consume(len(start), 0.5)
        return stream

    def one_chunk_read() -> float:
        stream = fresh_stream()
        _SHARED_READ_BUFFER[: len(chunk)] = chunk
        consume, size, at = connection._consume, len(chunk), 1.0
        began = time.process_time()
        for index in range(loops):
            consume(size, at)
            at += 0.001
            if index % 1000 == 999:
                stream.gaps.clear()  # a reply's gaps, not a million of them
        spent = time.process_time() - began
        assert stream.chunks == loops, stream.chunks
        return spent / loops * 1e6

    def burst_read() -> float:
        stream = fresh_stream()
        burst = chunk * CHUNKS_PER_BURST
        _SHARED_READ_BUFFER[: len(burst)] = burst
        consume, size, at = connection._consume, len(burst), 1.0
        reads = max(1, loops // CHUNKS_PER_BURST)
        began = time.process_time()
        for _ in range(reads):
            consume(size, at)
            at += 0.001
            stream.gaps.clear()
        spent = time.process_time() - began
        assert stream.chunks == reads * CHUNKS_PER_BURST, stream.chunks
        return spent / (reads * CHUNKS_PER_BURST) * 1e6

    print(json.dumps({"one_chunk_read": one_chunk_read(), "burst_read": burst_read()}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=100_000, help="chunks per timing")
    parser.add_argument("--repeats", type=int, default=7, help="timings of each way")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--expect-compiled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.loops, args.expect_compiled)
    try:
        import mypy.version
    except ImportError:
        parser.error("needs mypy (which brings mypyc): .venv/bin/pip install -e '.[bench]'")
    samples: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        roots = {"interpreted": (ROOT, False)}
        for way, modules in COMPILED.items():
            compile_copy(Path(scratch) / way, modules)
            roots[way] = (Path(scratch) / way, True)
        for _ in range(args.repeats):  # in turn, so drift hits every way alike
            for way, (root, compiled) in roots.items():
                for step, us in run_worker(root, args.loops, compiled).items():
                    samples.setdefault(step, {}).setdefault(way, []).append(us)
    figures: dict[str, Any] = {}
    for step, ways in samples.items():
        figures[step] = {f"{way}_us_per_chunk": repeats(values) for way, values in ways.items()}
        interpreted = figures[step]["interpreted_us_per_chunk"]["median"]
        for way in COMPILED:
            saved = interpreted - figures[step][f"{way}_us_per_chunk"]["median"]
            figures[step][f"{way}_saves_us_per_chunk"] = round(saved, 3)
    record = {
        "benchmark": "compiled_path",
        "provenance": provenance(["mypy", "msgspec"]),
        "setup": {
            "compiled_modules": {way: list(modules) for way, modules in COMPILED.items()},
            "mypy": mypy.version.__version__,
            "loops": args.loops,
            "repeats": args.repeats,
            "chunks_per_burst": CHUNKS_PER_BURST,
            "unit": "CPU µs per chunk (process_time), the read path from _consume on",
        },
        "steps": figures,
    }
    write_result(args.out, record)
    for step, figure in figures.items():
        ways = "  ".join(
            f"{way} {figure[f'{way}_us_per_chunk']['median']:.3f}"
            for way in ("interpreted", *COMPILED)
        )
        print(f"{step:15s} µs per chunk: {ways}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
