"""Run ``pushpop serve`` as a child process: for tests, benchmarks and ``pushpop-bench``.

A real server on a real port: the tests talk HTTP to it, and fault tests SIGKILL it
and start it again on the same port and the same state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from supervise.ports import free_port


class ServerProcess:
    def __init__(
        self,
        *,
        store: str = "sqlite",
        database_url: str | None = None,
        sqlite_path: str | Path | None = None,
        port: int | None = None,
        runtime: str = "embedded",
        env: dict[str, str] | None = None,
        log_path: str | Path | None = None,
        log_level: str = "warning",
        command: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        # another server to run the same way instead of ``pushpop serve`` (the throughput
        # benchmark's floor app); it must listen on ``port``
        self.command = command
        self.store = store
        self.log_level = log_level
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path or f"/tmp/pushpop-server-{self.port}.log")
        self.env = {
            **os.environ,
            "PUSHPOP_STORE": store,
            "PUSHPOP_PORT": str(self.port),
            "PUSHPOP_HOST": "127.0.0.1",
            "PUSHPOP_RUNTIME": runtime,
            **(env or {}),
        }
        if database_url:
            self.env["PUSHPOP_DATABASE_URL"] = database_url
        if sqlite_path:
            self.env["PUSHPOP_SQLITE_PATH"] = str(sqlite_path)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        log = open(self.log_path, "ab")  # the child owns it
        self.proc = subprocess.Popen(
            self.command
            or [sys.executable, "-m", "api.cli", "serve", "--log-level", self.log_level],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                code, tail = self.proc.returncode, self.log_tail()
                raise RuntimeError(f"server exited ({code}); {self.log_path} ends:\n{tail}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(
            f"server not healthy in {timeout}s; {self.log_path} ends:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log: why it did not start, in the test's own report."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(unreadable: {exc})"

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Poll ``GET /ready`` until 200: in Dapr mode ``/health`` answers before daprd is up."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url + "/ready", timeout=10)  # the first actor call may be slow
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url}/ready not 200 within {timeout:g}s: {last}")
