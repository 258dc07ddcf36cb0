"""Dapr's control plane and sidecars as child processes on loopback.

:class:`Placement`, :class:`Scheduler` and :class:`Sidecar` (``daprd``) from the binaries
``scripts/build_dapr.sh`` builds: each listener on 127.0.0.1 and a free port of its own,
logs in a caller-chosen directory, stopped at exit (docs/scaling.md, "Ports on one
machine"). Standard library and ``httpx`` only, so test fixtures can import it.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import httpx

from supervise.dapr_build import (
    DAPR_VERSION,
    DaprProcessError,
    dapr_bin_dir,
    dapr_install_dir,
    dapr_is_built,
    ensure_dapr_built,
)
from supervise.ports import free_port

__all__ = [
    "COMPONENTS_DIR",
    "DAPR_VERSION",
    "ControlPlaneProcess",
    "DaprProcess",
    "DaprProcessError",
    "Placement",
    "Scheduler",
    "Sidecar",
    "dapr_bin_dir",
    "dapr_install_dir",
    "dapr_is_built",
    "ensure_dapr_built",
    "free_port",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPONENTS_DIR = REPO_ROOT / "components"
"""``postgres/`` and ``sqlite/`` hold one actor state store each; ``config.yaml`` is shared."""

LOOPBACK = "127.0.0.1"

# Env vars daprd reads as credentials. They are never inherited from our own
# environment, only set from explicit arguments, so a token exported in the
# developer's shell cannot silently switch API authentication on.
_TOKEN_ENV_VARS = ("DAPR_API_TOKEN", "APP_API_TOKEN")


# Every started process (strong references: a child must be stopped even if the
# caller dropped its handle), so that the atexit hook can stop what still runs.
_STARTED: set[DaprProcess] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    """Stop (SIGTERM, then SIGKILL) every child still running at interpreter exit."""
    for process in list(_STARTED):
        if process.is_running():
            process.stop(timeout=5.0)


def _die_with_parent() -> None:
    """In the forked child: ask Linux for SIGKILL when the parent thread exits."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:  # not Linux or no libc: the atexit hook is the fallback
        pass


class ProcessOptions(TypedDict, total=False):
    """Keyword options every :class:`DaprProcess` accepts (see its constructor)."""

    name: str | None
    bin_dir: Path | str | None
    cwd: Path | str | None
    log_level: str
    extra_args: Sequence[str]
    die_with_parent: bool
    new_session: bool


class ProcessEnvOptions(ProcessOptions, total=False):
    """:class:`ProcessOptions` plus ``env`` (which :class:`Sidecar` takes positionally)."""

    env: Mapping[str, str] | None


class DaprProcess:
    """One Dapr binary run as a child process, with its output in a log file.

    Subclasses fill in :meth:`command` and :meth:`health_url`. Instances pick
    their ports when constructed and keep them across ``stop()``/``start()``,
    so a fault test can kill a process and bring it back at the same address.
    Usable as a context manager: ``with Placement(log_dir) as p: ...`` starts
    it, waits until it is ready and stops it on exit.
    """

    binary: str = ""
    ready_timeout: float = 30.0

    def __init__(
        self,
        log_dir: Path | str,
        *,
        name: str | None = None,
        bin_dir: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        log_level: str = "info",
        extra_args: Sequence[str] = (),
        die_with_parent: bool = False,
        new_session: bool = False,
    ) -> None:
        """``log_dir`` receives ``<name>.log``; ``bin_dir`` defaults to the built Dapr
        (building it on first use); ``env`` is added to the inherited environment;
        ``cwd`` defaults to ``log_dir``; ``extra_args`` are appended to the command.
        ``die_with_parent`` (Linux): the child gets SIGKILL when the thread that started
        it dies, so a launcher killed with SIGKILL leaves no sidecar holding its ports
        and its place in the placement table. Start such children from a long-lived
        thread (the main thread): the signal follows the starting *thread*.
        ``new_session``: run in a process group of its own, so that a signal to the
        parent's group (Ctrl-C in a terminal, ``kill -- -PGID``) does not reach it and
        the parent decides when and in which order to stop it.
        """
        self.log_dir = Path(log_dir)
        self.name = name or self.binary
        self.bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.env = dict(env or {})
        self.cwd = Path(cwd) if cwd is not None else self.log_dir
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.die_with_parent = die_with_parent
        self.new_session = new_session
        self.log_path = self.log_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # -- to be provided by subclasses -------------------------------------

    def command(self) -> list[str]:
        """Arguments after the binary path."""
        raise NotImplementedError

    def health_url(self) -> str:
        """URL that answers 2xx once the process is ready."""
        raise NotImplementedError

    def health_headers(self) -> dict[str, str]:
        """Extra headers for the readiness probe."""
        return {}

    def child_env(self) -> dict[str, str]:
        """Environment of the child: ours, minus Dapr tokens, plus ``env``."""
        child = {k: v for k, v in os.environ.items() if k not in _TOKEN_ENV_VARS}
        child.update(self.env)
        return child

    # -- lifecycle ------------------------------------------------------------

    @property
    def executable(self) -> Path:
        """Path of the binary (building Dapr first if ``bin_dir`` was not given)."""
        bin_dir = self.bin_dir if self.bin_dir is not None else ensure_dapr_built()
        return bin_dir / self.binary

    @property
    def pid(self) -> int | None:
        """Process id while a child exists (running or not yet reaped)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the child has exited, else ``None``."""
        return self._proc.poll() if self._proc is not None else None

    def is_running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def argv(self) -> list[str]:
        """The full command line (useful in logs and error messages)."""
        return [str(self.executable), *self.command(), *self.extra_args]

    def start(self) -> Self:
        """Spawn the process (no-op if it is already running); does not wait."""
        if self.is_running():
            return self
        argv = self.argv()
        executable = Path(argv[0])
        if not os.access(executable, os.X_OK):
            raise DaprProcessError(f"{executable} not found; run scripts/build_dapr.sh")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        # Append, so the log of a restarted process keeps what came before.
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- {stamp} starting: {' '.join(argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.child_env(),
                cwd=self.cwd,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
                start_new_session=self.new_session,
            )
        _STARTED.add(self)
        return self

    def wait_ready(self, timeout: float | None = None) -> Self:
        """Poll :meth:`health_url` until it answers 2xx.

        Raises :class:`DaprProcessError`, with the end of the log, if the process
        exits or the deadline passes first.
        """
        self._poll(self.health_url(), self.ready_timeout if timeout is None else timeout)
        return self

    def _poll(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 2xx while the process stays alive."""
        if self._proc is None:
            raise DaprProcessError(f"{self.name} was not started")
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        with httpx.Client(timeout=2.0, headers=self.health_headers()) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise DaprProcessError(
                        f"{self.name} exited with code {code} before {url} was ready\n"
                        + self.log_tail()
                    )
                try:
                    response = client.get(url)
                    if response.is_success:
                        return
                    last_error = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise DaprProcessError(
                        f"{self.name} not ready at {url} after {timeout} s ({last_error})\n"
                        + self.log_tail()
                    )
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``timeout`` seconds.

        Returns the exit code, or ``None`` if the process was never started.
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            try:
                self._proc.send_signal(signal.SIGTERM)
                return self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL at once: simulates a crash. Returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.kill()
        return self._proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log file (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = text.splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path}:\n" + "\n".join(tail)

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.name} pid={self.pid} {state}>"


class ControlPlaneProcess(DaprProcess):
    """What placement and the scheduler share: a gRPC port sidecars dial, and health and
    metrics listeners, all on loopback ports of their own."""

    def __init__(
        self,
        log_dir: Path | str,
        *,
        port: int | None = None,
        healthz_port: int | None = None,
        metrics_port: int | None = None,
        **kwargs: Unpack[ProcessEnvOptions],
    ) -> None:
        super().__init__(log_dir, **kwargs)
        self.port = port or free_port()
        self.healthz_port = healthz_port or free_port()
        self.metrics_port = metrics_port or free_port()

    @property
    def address(self) -> str:
        """``host:port`` for daprd's ``--placement-host-address``/``--scheduler-host-address``."""
        return f"{LOOPBACK}:{self.port}"

    def listener_flags(self) -> list[str]:
        # a loopback listen address is also what the scheduler tells sidecars to dial
        # (otherwise it advertises the host's IP)
        return [
            "--port", str(self.port),
            "--listen-address", LOOPBACK,
            "--healthz-port", str(self.healthz_port),
            "--healthz-listen-address", LOOPBACK,
            "--metrics-port", str(self.metrics_port),
            "--metrics-listen-address", LOOPBACK,
            "--log-level", self.log_level,
        ]  # fmt: skip

    def health_url(self) -> str:
        return f"http://{LOOPBACK}:{self.healthz_port}/healthz"


class Placement(ControlPlaneProcess):
    """Dapr's actor placement service (single node, in-memory raft log).

    Ports: ``port`` (gRPC, what sidecars connect to), ``healthz_port``,
    ``metrics_port`` and ``raft_port`` (raft binds it even with one node).
    """

    binary = "placement"

    def __init__(
        self,
        log_dir: Path | str,
        *,
        raft_port: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(log_dir, **kwargs)
        self.raft_port = raft_port or free_port()

    def command(self) -> list[str]:
        return [
            "--id", "dapr-placement-0",
            "--initial-cluster", f"dapr-placement-0={LOOPBACK}:{self.raft_port}",
            *self.listener_flags(),
        ]  # fmt: skip


class Scheduler(ControlPlaneProcess):
    """Dapr's scheduler (actor reminders and jobs) with an embedded etcd.

    ``data_dir`` holds the etcd data; it defaults to ``<log_dir>/<name>-data``
    and survives ``stop()``/``start()`` so reminders survive a restart.
    Ports: ``port`` (gRPC), ``healthz_port``, ``metrics_port``, and the etcd
    ``etcd_client_port`` and ``etcd_peer_port``.
    """

    binary = "scheduler"
    ready_timeout = 60.0  # embedded etcd elects itself leader first

    def __init__(
        self,
        log_dir: Path | str,
        *,
        data_dir: Path | str | None = None,
        etcd_client_port: int | None = None,
        etcd_peer_port: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(log_dir, **kwargs)
        self.data_dir = Path(data_dir) if data_dir else self.log_dir / f"{self.name}-data"
        self.etcd_client_port = etcd_client_port or free_port()
        self.etcd_peer_port = etcd_peer_port or free_port()

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return super().start()

    def command(self) -> list[str]:
        return [
            "--id", "dapr-scheduler-server-0",
            *self.listener_flags(),
            "--etcd-data-dir", str(self.data_dir / "etcd"),
            "--etcd-client-port", str(self.etcd_client_port),
            "--etcd-client-listen-address", LOOPBACK,
            "--etcd-initial-cluster",
            f"dapr-scheduler-server-0=http://{LOOPBACK}:{self.etcd_peer_port}",
            "--identity-directory-write", str(self.data_dir / "identity"),
        ]  # fmt: skip


class Sidecar(DaprProcess):
    """``daprd`` for one app in self-hosted mode.

    ``resources_path`` is a components folder (``components/postgres`` or
    ``components/sqlite``: exactly one actor state store), ``config_path`` a
    Dapr Configuration (``components/config.yaml``). ``env`` is added to the
    sidecar's environment; the PostgreSQL component reads
    ``PUSHPOP_DATABASE_URL`` from there. ``app_api_token`` is sent by daprd to
    the app (header ``dapr-api-token``); ``dapr_api_token`` is required from
    callers of the Dapr API. ``cwd`` (default ``log_dir``) is where relative
    SQLite files of the components land.

    Ports: ``http_port``, ``grpc_port`` (Dapr API), ``internal_grpc_port``
    (sidecar-to-sidecar actor calls) and ``metrics_port``.
    """

    binary = "daprd"

    def __init__(
        self,
        app_id: str,
        app_port: int | None,
        resources_path: Path | str,
        config_path: Path | str | None,
        env: Mapping[str, str] | None,
        placement_address: str | None,
        scheduler_address: str | None,
        app_api_token: str | None = None,
        dapr_api_token: str | None = None,
        *,
        log_dir: Path | str,
        http_port: int | None = None,
        grpc_port: int | None = None,
        internal_grpc_port: int | None = None,
        metrics_port: int | None = None,
        app_max_concurrency: int | None = None,
        graceful_shutdown_seconds: int | None = None,
        **kwargs: Unpack[ProcessOptions],
    ) -> None:
        kwargs.setdefault("name", f"daprd-{app_id}")
        super().__init__(log_dir, env=env, **kwargs)
        self.app_id = app_id
        self.app_port = app_port
        self.resources_path = Path(resources_path)
        self.config_path = Path(config_path) if config_path is not None else None
        self.placement_address = placement_address
        self.scheduler_address = scheduler_address
        self.app_api_token = app_api_token
        self.dapr_api_token = dapr_api_token
        self.app_max_concurrency = app_max_concurrency
        self.graceful_shutdown_seconds = graceful_shutdown_seconds
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.internal_grpc_port = internal_grpc_port or free_port()
        self.metrics_port = metrics_port or free_port()
        self._own_private_ports = (internal_grpc_port is None, metrics_port is None)

    def repick_private_ports(self) -> None:
        """New internal-gRPC and metrics ports, where this object picked them.

        Nobody outside daprd holds these two (peers learn the internal address from
        placement at each start), so a restart can move them when something took one
        while daprd was down. The HTTP and gRPC API ports stay: the app holds them.
        """
        own_internal, own_metrics = self._own_private_ports
        if own_internal:
            self.internal_grpc_port = free_port()
        if own_metrics:
            self.metrics_port = free_port()

    @property
    def http_endpoint(self) -> str:
        """Base URL of the Dapr HTTP API (``DAPR_HTTP_ENDPOINT`` for the SDK)."""
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` of the Dapr gRPC API (``DAPR_GRPC_ENDPOINT`` for the SDK)."""
        return f"{LOOPBACK}:{self.grpc_port}"

    def sdk_env(self) -> dict[str, str]:
        """Env vars that point the Python SDK in the *app* process at this sidecar."""
        env = {
            "DAPR_HTTP_PORT": str(self.http_port),
            "DAPR_GRPC_PORT": str(self.grpc_port),
            "DAPR_HTTP_ENDPOINT": self.http_endpoint,
            "DAPR_GRPC_ENDPOINT": self.grpc_endpoint,
        }
        if self.dapr_api_token:
            env["DAPR_API_TOKEN"] = self.dapr_api_token
        if self.app_api_token:
            env["APP_API_TOKEN"] = self.app_api_token
        return env

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        if self.app_api_token:
            env["APP_API_TOKEN"] = self.app_api_token
        if self.dapr_api_token:
            env["DAPR_API_TOKEN"] = self.dapr_api_token
        return env

    def command(self) -> list[str]:
        args = [
            "--mode", "standalone",
            "--app-id", self.app_id,
            "--dapr-listen-addresses", LOOPBACK,
            "--dapr-http-port", str(self.http_port),
            "--dapr-grpc-port", str(self.grpc_port),
            "--dapr-internal-grpc-listen-address", LOOPBACK,
            "--dapr-internal-grpc-port", str(self.internal_grpc_port),
            "--metrics-port", str(self.metrics_port),
            "--metrics-listen-address", LOOPBACK,
            "--resources-path", str(self.resources_path),
            "--log-level", self.log_level,
        ]  # fmt: skip
        if self.app_port is not None:
            args += [
                "--app-port", str(self.app_port),
                "--app-protocol", "http",
                "--app-channel-address", LOOPBACK,
            ]  # fmt: skip
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        if self.placement_address:
            args += ["--placement-host-address", self.placement_address]
        if self.scheduler_address:
            args += ["--scheduler-host-address", self.scheduler_address]
        if self.app_max_concurrency is not None:
            args += ["--app-max-concurrency", str(self.app_max_concurrency)]
        if self.graceful_shutdown_seconds is not None:
            args += ["--dapr-graceful-shutdown-seconds", str(self.graceful_shutdown_seconds)]
        return args

    def health_url(self) -> str:
        # "outbound" is ready once components are loaded and the API serves;
        # the plain /v1.0/healthz also waits for the app (see wait_app_ready).
        return f"{self.http_endpoint}/v1.0/healthz/outbound"

    def health_headers(self) -> dict[str, str]:
        return {"dapr-api-token": self.dapr_api_token} if self.dapr_api_token else {}

    def wait_app_ready(self, timeout: float = 30.0) -> Self:
        """Wait for ``/v1.0/healthz``: the sidecar *and* its app channel are up."""
        self._poll(f"{self.http_endpoint}/v1.0/healthz", timeout)
        return self
