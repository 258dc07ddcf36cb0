"""Run one variant headless with Locust as a library, in this (child) process.

Why a child: Locust monkey-patches its process with gevent on import, which does not
mix with the orchestrator's asyncio, threads and matplotlib. ``--workers N`` makes this
process a Locust master with N worker processes, whose histograms and ledger entries
are merged here (``scenarios/lifecycle.py``, ``scenarios/listeners.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import locust
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.html import get_html_report
from locust.log import setup_logging
from locust.runners import STATE_RUNNING, STATE_SPAWNING, Runner
from locust.stats import (
    PERCENTILES_TO_REPORT,
    RequestStats,
    StatsCSVFileWriter,
    stats_history,
)

from load_tests import catalog
from load_tests.catalog import VARIANTS
from load_tests.scenarios.listeners import register_listeners
from load_tests.scenarios.options import Options
from load_tests.scenarios.run_state import STATE
from load_tests.scenarios.users import QueueUser
from load_tests.settings import RunSettings, add_headless_arguments
from load_tests.shapes import RateShape

log = logging.getLogger("pushpop.headless")

STOP_TIMEOUT = 15.0  # closed-loop users finish their current arrival when stopping
IDLE_LOOK = 0.05  # s between looks at the generators once their timetable is over


class FinalCSVWriter(StatsCSVFileWriter):
    """Locust's CSV writer, whose last round is written on demand once the run is over
    (its own loop writes one round a second: waiting for the next one cost a second)."""

    def final_round(self) -> None:
        """Rewrite the totals files and append one history row with the final numbers."""
        rewritten = (
            (self.requests_csv_filehandle, self.requests_csv_writer,
             self.requests_csv_columns, self._requests_data_rows),
            (self.failures_csv_filehandle, self.failures_csv_writer,
             self.failures_columns, self._failures_data_rows),
            (self.exceptions_csv_filehandle, self.exceptions_csv_writer,
             self.exceptions_columns, self._exceptions_data_rows),
        )  # fmt: skip
        for handle, writer, columns, rows in rewritten:
            handle.seek(0)
            handle.truncate()
            writer.writerow(columns)
            rows(writer)
        if self.stats_history_csv_filehandle.tell() == 0:  # the loop never ran
            self.stats_history_csv_writer.writerow(self.stats_history_csv_columns)
        self._stats_history_data_rows(self.stats_history_csv_writer, time.time())
        self.close_files()


def stop_when_all_sent(runner: Runner, duration: float) -> None:
    """A local open-model run: stop once the timetable is over and every arrival it asked
    for was sent and answered, rather than at the shape's first tick past the allowance
    for generators running late (``MAX_LATENESS``), which only a late one needs.

    Each generator holds its in-flight arrivals in a pool (``STATE.pools``) and sends
    arrivals that are due without yielding: past the end of the timetable, a generator
    whose pool is empty has nothing left to send. Two looks in a row, with the event
    loop run in between, so that a generator woken for its last slot has run.
    """
    while (started := STATE.run.started_at) is None:  # the run's start replaces STATE.run
        if STATE.finished.is_set():
            return
        gevent.sleep(IDLE_LOOK)
    gevent.sleep(max(0.0, started + duration - time.time()) + IDLE_LOOK)
    idle_looks = 0
    while runner.state in (STATE_SPAWNING, STATE_RUNNING):
        pools = STATE.pools
        idle = len(pools) == runner.user_count and not any(len(p) for p in pools)
        idle_looks = idle_looks + 1 if idle else 0
        if idle_looks >= 2:
            log.info("every arrival of the timetable sent and answered: stopping")
            runner.stop()
            return
        gevent.sleep(IDLE_LOOK)


def load_user_class(ref: str, overrides: dict[str, Any]) -> type[QueueUser]:
    cls = catalog.load_user_class(ref)
    if overrides:
        cls = type(cls.__name__, (cls,), dict(overrides))
    return cls


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``queue_count=8`` -> ``{"queue_count": 8}`` (ints, floats, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """What to run and where (here), how to run it (:class:`RunSettings`' own options)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    p.add_argument("--host", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--run-id", default="")
    p.add_argument("--role", choices=["local", "master", "worker"], default=None)
    p.add_argument("--master-port", type=int, default=0)
    add_headless_arguments(p)
    return p


@dataclass(frozen=True)
class Child:
    """This process's settings: one variant run, and its part in a distributed one."""

    variant: str
    host: str
    out: Path
    run_id: str
    role: str  # local | master | worker
    master_port: int
    settings: RunSettings

    @classmethod
    def parse(cls, argv: list[str] | None) -> Child:
        args = build_parser().parse_args(argv)
        settings = RunSettings.from_headless_args(args)
        role = args.role or ("master" if settings.workers > 0 else "local")
        return cls(args.variant, args.host, args.out, args.run_id, role, args.master_port,
                   settings)  # fmt: skip

    @property
    def generators(self) -> int:
        return max(1, self.settings.workers)

    def locust_argv(self) -> list[str]:
        """The options Locust's own parser gets (ours are declared in ``scenarios/options.py``)."""
        s = self.settings
        ours = Options(
            model=s.model,
            out=str(self.out) if self.role != "worker" else "",
            run_id=self.run_id,
            time_scale=s.time_scale,
            bucket=s.bucket,
            drain_limit=s.drain_limit,
            generators=self.generators,
        )
        return ["--host", self.host, "--stop-timeout", str(int(STOP_TIMEOUT)), *ours.to_argv()]


def main(argv: list[str] | None = None) -> int:
    child = Child.parse(argv)
    settings, role, out = child.settings, child.role, child.out
    out.mkdir(parents=True, exist_ok=True)
    setup_logging("INFO")
    variant = VARIANTS[child.variant]
    user_cls = load_user_class(variant.user, parse_overrides(settings.overrides))
    # our listeners (and the --pushpop-* options) join Locust's events explicitly, as a
    # locustfile does, before Locust's parser is built from them
    register_listeners(locust.events)
    options = get_parser().parse_args(child.locust_argv())
    shape = None
    if settings.model == "open":
        schedule = variant.build_schedule(settings.duration, settings.time_scale)
        shape = RateShape(schedule, generators=child.generators)
    env = Environment(
        user_classes=[user_cls],
        shape_class=shape,
        events=locust.events,
        host=child.host,
        parsed_options=options,
        stop_timeout=STOP_TIMEOUT,
    )
    if role == "worker":
        runner = env.create_worker_runner("127.0.0.1", child.master_port)
        env.events.init.fire(environment=env, runner=runner, web_ui=None)
        runner.greenlet.join()
        return 0

    workers: list[subprocess.Popen[bytes]] = []
    if role == "master":
        runner = env.create_master_runner("127.0.0.1", child.master_port or 0)
        port = runner.server.port
        for i in range(settings.workers):
            cmd = [sys.executable, "-m", "load_tests.headless", *(argv or sys.argv[1:])]
            cmd += ["--role", "worker", "--master-port", str(port)]
            with open(out / f"worker-{i}.log", "wb") as wlog:
                workers.append(subprocess.Popen(cmd, stdout=wlog, stderr=subprocess.STDOUT))
        deadline = time.time() + 60
        while runner.worker_count < settings.workers:
            if time.time() > deadline:
                log.error("only %d of %d workers connected", runner.worker_count, settings.workers)
                return 2
            gevent.sleep(0.1)
    else:
        runner = env.create_local_runner()
    env.events.init.fire(environment=env, runner=runner, web_ui=None)

    csv_writer = FinalCSVWriter(env, PERCENTILES_TO_REPORT, str(out / "locust"), full_history=True)
    greenlets = [gevent.spawn(csv_writer), gevent.spawn(stats_history, runner)]

    if shape is not None:
        runner.start_shape()
        if role == "local":
            greenlets.append(gevent.spawn(stop_when_all_sent, runner, shape.schedule.duration))
    else:
        runner.start(settings.users, spawn_rate=settings.users)
        gevent.spawn_later(settings.duration or 10.0, runner.stop)
    STATE.finished.wait()
    if (out / "setup_error.txt").exists():
        runner.quit()
        return 1
    # (the workers' last Locust statistics came with their final report: lifecycle.py)
    runner.quit()
    for g in greenlets:
        g.kill(block=True)
    csv_writer.final_round()  # the numbers are final now
    (out / "locust_report.html").write_text(
        get_html_report(env, show_download_link=False), encoding="utf-8"
    )
    write_stats_json(runner.stats, out / "locust_stats.json")
    for w in workers:
        try:
            w.wait(timeout=2)
        except subprocess.TimeoutExpired:
            w.terminate()  # everything it measured has been merged already
            w.wait()
    return 0


def write_stats_json(stats: RequestStats, path: Path) -> None:
    """What Locust's ``save_stats_json`` writes, without its side effect: it serializes with
    ``serialize_stats``, the workers' report-and-clear, which zeroes every endpoint's entry
    (not the total). Called before the HTML report, it left every endpoint row at 0."""
    entries = [e.serialize() for e in stats.entries.values() if e.num_requests or e.num_failures]
    path.write_text(json.dumps(entries, indent=4), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
