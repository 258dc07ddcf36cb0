"""``pushpop serve --runtime dapr``: the Dapr-mode app under uvicorn, next to its daprd.

:class:`supervise.dapr_host.DaprHost` runs placement, scheduler and daprd and restarts
daprd when it dies; this module gives it the app's side (readiness, the calls to let
end and the actors to forget after daprd died) and the order of shutdown: daprd, the
app, the control plane. ``PUSHPOP_DAPR_SIDECAR=external`` serves only the app
(docs/scaling.md has the settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from types import FrameType

import uvicorn

from actor_service.runtime.dapr.host import reset_hosted_actors
from actor_service.runtime.dapr.sidecar import MAX_MESSAGE_BYTES
from actor_service.stores.base import redact
from actor_service.stores.claim import Claim, claim_for, holding
from api.dapr.app import create_dapr_app
from api.dapr.invoker import wait_until_ready
from api.http_server import uvicorn_config
from api.settings import Settings
from supervise.dapr_host import READY_TIMEOUT, DaprHost

log = logging.getLogger("pushpop.dapr")


def describe_state(settings: Settings) -> str:
    if settings.store == "postgres":
        return (
            f"postgres {redact(settings.database_url or '')} "
            "(Dapr component state.postgresql v1, table state)"
        )
    return f"sqlite {Path(settings.sqlite_path).resolve()} (Dapr component state.sqlite v1)"


class _Server(uvicorn.Server):
    """uvicorn, but a signal starts *our* orderly shutdown (daprd first, then the app).

    uvicorn would re-raise a captured signal after serving, which (SIGTERM's default
    action) would end the process before the control plane is stopped; this handler does
    not record the signal, so ``serve()`` simply returns.
    """

    def __init__(self, config: uvicorn.Config, owner: DaprModeServer) -> None:
        super().__init__(config)
        self.owner = owner

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        dapr = self.owner.dapr
        if dapr.stopping:  # a second Ctrl-C: stop now
            self.force_exit = True
            self.should_exit = True
            return
        dapr.stopping = True
        loop = self.owner.loop
        if loop is None:
            self.should_exit = True
            return
        loop.call_soon_threadsafe(lambda: loop.create_task(self.owner.shutdown(self)))


class DaprModeServer:
    """One ``pushpop serve --runtime dapr``: the app, and the Dapr processes it needs."""

    def __init__(self, settings: Settings, log_level: str, claim: Claim | None = None) -> None:
        self.log_level = log_level
        self.claim = claim
        self.loop: asyncio.AbstractEventLoop | None = None
        self._announced = False  # the first "ready" line is said once, restarts after it
        self.dapr = DaprHost(
            app_id=settings.app_id,
            app_port=settings.port,
            store=settings.store,
            database_url=settings.database_url,
            sqlite_path=settings.sqlite_path,
            max_body_mib=MAX_MESSAGE_BYTES // (1024 * 1024),
            log_level=settings.dapr_log_level or log_level,
            run_dir=Path(settings.dapr_run_dir or tempfile.mkdtemp(prefix="pushpop-dapr-")),
            placement_address=settings.placement_address,
            scheduler_address=settings.scheduler_address,
            host_ip=settings.dapr_host_ip,
            runinfo=settings.dapr_runinfo,
        )
        sidecar = self.dapr.sidecar
        # The SDK reads DAPR_* from the environment (dapr.conf.settings): point anything
        # in this process that uses SDK defaults at our sidecar, with our token.
        os.environ.update(sidecar.sdk_env())
        self.settings = dataclasses.replace(
            settings,
            dapr_http_port=sidecar.http_port,
            dapr_grpc_port=sidecar.grpc_port,
            dapr_api_token=self.dapr.dapr_api_token,
            app_api_token=self.dapr.app_api_token,
        )
        self.app = create_dapr_app(self.settings, claim=self.claim)

    def run(self) -> None:
        config = uvicorn_config(self.app, self.settings, self.log_level)
        server = _Server(config, self)
        try:
            self.dapr.start_control_plane()
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(self._main(server))
        finally:
            self.dapr.stop_all()

    async def _main(self, server: _Server) -> None:
        self.loop = asyncio.get_running_loop()
        invoker = self.app.state.invoker
        supervisor = asyncio.create_task(
            self.dapr.keep_sidecar_running(
                ready=lambda: wait_until_ready(invoker, READY_TIMEOUT),
                after_exit=self._after_sidecar_exit,
                on_ready=self._on_ready,
            ),
            name="pushpop-daprd-supervisor",
        )
        try:
            await server.serve()
        finally:
            self.dapr.stopping = True
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            # before the loop closes: a readiness wait still running in a worker thread
            # ends when daprd does, and the loop waits for its threads on the way out
            await self.dapr.stop_sidecar()

    async def shutdown(self, server: _Server) -> None:
        """daprd first (it drains actors through the app), then the app."""
        log.info("stopping daprd, then the app")
        try:
            await self.dapr.stop_sidecar()
        finally:
            server.should_exit = True

    def _on_ready(self, restarts: int) -> None:
        if self._announced:
            log.warning("daprd is back (restart %d)", restarts)
            return
        self._announced = True
        dapr, s = self.dapr, self.settings
        log.warning(
            "pushpop ready (Dapr mode) on http://%s:%s: actors of app id %r via "
            "daprd at 127.0.0.1:%s (placement %s, scheduler %s); state in %s; "
            "Dapr logs in %s",
            s.host, s.port, s.app_id, dapr.sidecar.http_port, dapr.placement_address,
            dapr.scheduler_address, describe_state(s), dapr.run_dir,
        )  # fmt: skip

    async def _after_sidecar_exit(self) -> None:
        # Calls daprd had sent may still be running here: let them end (their state
        # calls fail fast now), then drop every cached actor, before a new daprd can
        # route the same actor ids here again.
        await self.app.state.sidecar_calls.wait_idle(self.settings.request_timeout)
        dropped = reset_hosted_actors()
        log.warning("forgot %d cached actor(s); restarting daprd", dropped)


def serve_external(settings: Settings, log_level: str) -> None:
    """Only the app, for a sidecar run by someone else (Compose, the Kubernetes injector)."""
    log.warning(
        "pushpop (Dapr mode, external sidecar at 127.0.0.1:%s) on http://%s:%s; state lives "
        "in the sidecar's actor state store",
        settings.dapr_http_port, settings.host, settings.port,
    )  # fmt: skip
    with holding(dapr_claim(settings)) as claim:
        app = create_dapr_app(settings, claim=claim)
        uvicorn.Server(uvicorn_config(app, settings, log_level)).run()


def dapr_claim(settings: Settings) -> Claim | None:
    """The shared claim of a Dapr-mode host, to take before anything starts: Dapr-mode
    hosts share a database with each other (placement keeps one activation per actor),
    never with an embedded host, whose cache would go stale under them (stores/claim.py)."""
    claim = claim_for(
        settings.store, "shared", database_url=settings.database_url,
        sqlite_path=settings.sqlite_path,
    )  # fmt: skip
    if claim is None:
        log.warning(
            "no database URL known to this app (the sidecar's component has it): it cannot "
            "check that no embedded host uses the same database"
        )
    return claim


def serve_with_sidecar(settings: Settings, log_level: str) -> None:
    """Entry point of ``pushpop serve --runtime dapr`` (see the module docstring)."""
    if settings.dapr_sidecar.lower() == "external":
        serve_external(settings, log_level)
        return
    # A signal before uvicorn takes over: SIGINT unwinds through DaprModeServer.run's
    # finally; SIGTERM ends us at once, and die_with_parent takes the Dapr processes along.
    with holding(dapr_claim(settings)) as claim:
        DaprModeServer(settings, log_level, claim).run()


__all__ = ["DaprModeServer", "describe_state", "serve_external", "serve_with_sidecar"]
