"""Throwaway PostgreSQL clusters for the tests, the benchmarks and ``pushpop-bench``.

Tests and benchmarks run against a *real* PostgreSQL with no set-up by hand: this finds
Debian's server binaries, creates a cluster in a temporary directory on a free loopback
port and removes it again, running it as the ``postgres`` user when we are root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from supervise.ports import free_port

__all__ = ["PostgresServer", "find_pg_bin"]


def find_pg_bin() -> Path:
    """The newest installed ``/usr/lib/postgresql/N/bin`` (or ``PUSHPOP_PG_BIN``)."""
    override = os.environ.get("PUSHPOP_PG_BIN")
    if override:
        return Path(override)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found; run `make setup` (installs Debian's "
        "postgresql package) or set PUSHPOP_PG_BIN"
    )


class PostgresServer:
    """One PostgreSQL cluster owned by this process: ``start()``, ``stop()``, ``restart()``.

    ``kill()`` and ``start()`` are separate so that fault tests can take the
    database away under load and bring it back on the same port and data.
    """

    def __init__(self, port: int | None = None, base_dir: Path | None = None) -> None:
        self.bin = find_pg_bin()
        self.port = port or free_port()
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="pushpop-pg-"))
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "postgres.log"
        self.user = "postgres"
        self.password = "pushpop"
        self.dbname = "pushpop"
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.dbname}"

    def database(self, name: str, *, fresh: bool = False) -> str:
        """The URL of database ``name`` in this cluster: created if missing, or dropped and
        created anew with ``fresh`` (so its rows and sessions are the caller's own)."""
        import psycopg

        if fresh:
            self.drop(name)
        base = self.url.rsplit("/", 1)[0]
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if not exists.fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return f"{base}/{name}"

    def drop(self, *names: str) -> None:
        """Drop databases of this cluster, ending their sessions (absent ones are skipped)."""
        import psycopg

        base = self.url.rsplit("/", 1)[0]
        with psycopg.connect(base + "/postgres", autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _cmd(self, *args: str) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *args]
        return list(args)

    def _chown(self, path: Path) -> None:
        if self._run_as:
            pw = pwd.getpwnam(self._run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def init(self) -> None:
        """Create the cluster (trust auth on loopback only, tuned for a test box)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.base_dir)
        pwfile = self.base_dir / "pw"
        pwfile.write_text(self.password)
        self._chown(pwfile)
        subprocess.run(
            self._cmd(
                str(self.bin / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--pwfile",
                str(pwfile),
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "shared_buffers = 256MB\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
            )

    def start(self, timeout: float = 30.0) -> PostgresServer:
        if not self.data_dir.exists():
            self.init()
        logf = open(self.log_file, "ab")  # the child owns it
        self._proc = subprocess.Popen(
            self._cmd(str(self.bin / "postgres"), "-D", str(self.data_dir)),
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logf.close()
        self._wait_ready(timeout)
        self._ensure_database()
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc and self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                import psycopg

                with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", connect_timeout=2):
                    return
            except OSError:
                pass
            except Exception as exc:  # server up but still starting
                if "starting up" not in str(exc) and "does not exist" in str(exc):
                    return
            time.sleep(0.1)
        raise TimeoutError(f"postgres did not start in {timeout}s; see {self.log_file}")

    def _ensure_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` = SIGINT, ``immediate`` = SIGQUIT) and wait for it."""
        if not self._proc:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, sig)
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (its children exit on their own)."""
        if self._proc and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None
        # children notice the dead postmaster and exit; wait so the port frees up
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    time.sleep(0.1)
            except OSError:
                break
        pidfile = self.data_dir / "postmaster.pid"
        if pidfile.exists():
            pidfile.unlink()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
