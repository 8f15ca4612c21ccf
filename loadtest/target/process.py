"""Run the target as a child process and drive its admin API.

For tests, ``loadtest run`` without ``--host``, and benchmarks. Uses only ``subprocess``,
``threading`` and ``urllib``, so it works unchanged in a gevent-monkey-patched process (where
these become cooperative); the server itself never runs in the caller's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from loadtest.child_process import die_with_parent
from loadtest.errors import LoadtestError, UsageError

READY_PREFIX = "LOADTEST_TARGET_READY "
STOP_TIMEOUT_S = 5.0
_STDERR_TAIL_CHARS = 2000
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


USAGE_EXIT_CODE = 2  # click's exit code for bad options


class TargetProcess:
    """The reference target in a subprocess: ``with TargetProcess(["--profile", "fixed"]) as t``.

    Args:
        args: extra ``loadtest serve`` arguments (``--port 0`` is always passed first).
        env: variables merged over ``os.environ``; pass secrets here (``LOADTEST_JWT_SECRET``,
            ``LOADTEST_API_KEY``) rather than in ``args``, which ``ps`` shows.
        startup_timeout_s: how long to wait for the ready line.
    """

    def __init__(self, args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 startup_timeout_s: float = 20) -> None:
        self.args = list(args)
        self.env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: Any = None
        self._base_url: str | None = None
        self._pump: threading.Thread | None = None
        # The admin API of our own child on loopback: no proxies, and a TLS target's
        # (self-signed) certificate is not ours to verify.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TargetProcess:
        """Spawn the server and wait until it listens.

        Raises:
            LoadtestError: it exited or did not get ready in time (message ends with the tail
                of its stderr).
        """
        if self._proc is not None:
            raise LoadtestError("target process already started")
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        # lives as long as the child; closed in stop()
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
        command = [sys.executable, "-m", "loadtest.target", "--port", "0", *self.args]
        # Its own session: a Ctrl-C at the terminal is for the load test (which then stops
        # this target itself, after the last stream), not for the target mid-run. It dies
        # with its parent all the same, so a killed parent leaves no server behind.
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env=env, text=True,
                                      start_new_session=True, preexec_fn=die_with_parent)
        lines: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(target=self._pump_stdout, args=(self._proc, lines),
                                      daemon=True, name="loadtest-target-stdout")
        self._pump.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise LoadtestError(self._failure(
                    f"target not ready after {self.startup_timeout_s:g} s"))
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait()
                usage = self._usage_error() if code == USAGE_EXIT_CODE else None
                message = self._failure(f"target exited with code {code} before it was ready")
                self.stop()
                if usage:
                    raise UsageError(f"target: {usage}")
                raise LoadtestError(message)
            if line.startswith(READY_PREFIX):
                self._base_url = line[len(READY_PREFIX):].strip()
                return self

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        """Forward stdout lines, and keep draining it so the pipe never fills."""
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL_CHARS))
        return self._stderr.read().decode(errors="replace").strip()

    def _usage_error(self) -> str | None:
        """click's one-line complaint about the target's options (``Error: …``), if any."""
        for line in reversed(self._stderr_tail().splitlines()):
            if line.startswith("Error: "):
                return line[len("Error: "):].strip()
        return None

    def _failure(self, what: str) -> str:
        """One line: what happened, then the last lines of stderr joined with " | "."""
        lines = [line.strip() for line in self._stderr_tail().splitlines() if line.strip()]
        return f"{what}: {' | '.join(lines[-6:])}" if lines else what

    def stop(self) -> int | None:
        """SIGTERM, wait up to 5 s, then SIGKILL. Returns the exit code (None if never run)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The pump reads stdout until EOF, which the exit brings: let it get there first, as
        # closing a pipe another thread is reading raises ("reentrant call").
        if self._pump is not None:
            self._pump.join(STOP_TIMEOUT_S)
            self._pump = None
        if proc.stdout is not None:
            with contextlib.suppress(OSError, RuntimeError):
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return proc.returncode

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> TargetProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``--tls-cert``)."""
        if self._base_url is None:
            raise LoadtestError("target process not started")
        return self._base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/consultation`` (``wss://`` for a TLS target)."""
        return "ws" + self.base_url[len("http"):] + "/ws/consultation"

    # -- admin API ---------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise LoadtestError(f"admin {method} {path} failed ({exc.code}): {detail}") from None
        except OSError as exc:
            raise LoadtestError(f"admin {method} {path} failed: {exc}") from None

    def set_fault(self, kind: str, value: str | float) -> dict[str, str]:
        """Switch a fault on (or change it), e.g. ``set_fault("stall", "1:200")``."""
        return self._admin("PUT", f"/admin/faults/{kind}", {"value": value})["faults"]

    def clear_fault(self, kind: str) -> dict[str, str]:
        return self._admin("DELETE", f"/admin/faults/{kind}")["faults"]

    def faults(self) -> dict[str, str]:
        return self._admin("GET", "/admin/faults")["faults"]

    def restart(self, refuse_s: float, share: float = 1.0) -> dict[str, Any]:
        """Drop every connection (or ``share`` of them) with 1012 and refuse handshakes (503)
        for ``refuse_s``."""
        return self._admin("POST", "/admin/restart", {"refuse_s": refuse_s, "share": share})

    def freeze(self, seconds: float) -> dict[str, Any]:
        """Stall every reply for ``seconds`` (``POST /admin/freeze``)."""
        return self._admin("POST", "/admin/freeze", {"seconds": seconds})

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "/admin/stats")
