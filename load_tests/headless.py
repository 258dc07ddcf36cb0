"""Run one variant headless with Locust as a library, in this (child) process.

    python -m load_tests.headless --variant S3a --host http://127.0.0.1:8000 --out DIR

Why a child process: Locust monkey-patches the whole process with gevent on import;
the orchestrator (``pushpop-bench``) also runs asyncio (prepopulation), threads
(resource monitor, fault injection) and matplotlib, which should not share a process
with that. Here, with ``locust.env.Environment``, we get Locust's events directly.

``--workers N`` makes this process a Locust master and starts N worker processes (the
same module with ``--role worker``); histograms and ledger entries are merged on the
master (see ``scenarios/base.py``).

Writes into ``--out``: Locust's ``locust_stats.csv``, ``locust_stats_history.csv``,
``locust_failures.csv``, ``locust_exceptions.csv``, ``locust_stats.json`` and
``locust_report.html``; and ours: ``histograms.hlog``, ``counters.csv``,
``depth.csv``, ``started.json``, ``ledger.json``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import locust
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.html import get_html_report
from locust.log import setup_logging
from locust.runners import WORKER_REPORT_INTERVAL
from locust.stats import (
    CSV_STATS_INTERVAL_SEC,
    PERCENTILES_TO_REPORT,
    StatsCSVFileWriter,
    save_stats_json,
    stats_history,
)

import load_tests.scenarios.base as base
from load_tests import catalog
from load_tests.catalog import VARIANTS
from load_tests.shapes import RateShape

log = logging.getLogger("pushpop.headless")

STOP_TIMEOUT = 15.0  # closed-loop users finish their current arrival when stopping


def load_user_class(ref: str, overrides: dict[str, Any]) -> type[base.QueueUser]:
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    p.add_argument("--host", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--duration", type=float, default=None, help="seconds (steady variants)")
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--bucket", type=float, default=1.0)
    p.add_argument("--model", choices=["open", "closed"], default="open")
    p.add_argument("--users", type=int, default=8, help="closed model: concurrent users")
    p.add_argument("--run-id", default="")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--role", choices=["local", "master", "worker"], default=None)
    p.add_argument("--master-port", type=int, default=0)
    p.add_argument("--drain-limit", type=int, default=20_000)
    p.add_argument("--set", action="append", default=[], help="user class attribute k=v")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    role = args.role or ("master" if args.workers > 0 else "local")
    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging("INFO")
    variant = VARIANTS[args.variant]
    user_cls = load_user_class(variant.user, parse_overrides(args.set))
    generators = max(1, args.workers)
    options = get_parser().parse_args(
        [
            "--host", args.host,
            "--pushpop-model", args.model,
            "--pushpop-out", str(args.out) if role != "worker" else "",
            "--pushpop-run-id", args.run_id,
            "--pushpop-time-scale", str(args.time_scale),
            "--pushpop-bucket", str(args.bucket),
            "--pushpop-drain-limit", str(args.drain_limit),
            "--pushpop-generators", str(generators),
            "--stop-timeout", str(int(STOP_TIMEOUT)),
        ]
    )  # fmt: skip
    shape = None
    if args.model == "open":
        schedule = variant.build_schedule(args.duration, args.time_scale)
        shape = RateShape(schedule, generators=generators)
    env = Environment(
        user_classes=[user_cls],
        shape_class=shape,
        events=locust.events,
        host=args.host,
        parsed_options=options,
        stop_timeout=STOP_TIMEOUT,
    )
    if role == "worker":
        runner = env.create_worker_runner("127.0.0.1", args.master_port)
        env.events.init.fire(environment=env, runner=runner, web_ui=None)
        runner.greenlet.join()
        return 0

    workers: list[subprocess.Popen[bytes]] = []
    if role == "master":
        runner = env.create_master_runner("127.0.0.1", args.master_port or 0)
        port = runner.server.port
        for i in range(args.workers):
            cmd = [sys.executable, "-m", "load_tests.headless", *(argv or sys.argv[1:])]
            cmd += ["--role", "worker", "--master-port", str(port)]
            with open(args.out / f"worker-{i}.log", "wb") as wlog:
                workers.append(subprocess.Popen(cmd, stdout=wlog, stderr=subprocess.STDOUT))
        deadline = time.time() + 60
        while runner.worker_count < args.workers:
            if time.time() > deadline:
                log.error("only %d of %d workers connected", runner.worker_count, args.workers)
                return 2
            gevent.sleep(0.1)
    else:
        runner = env.create_local_runner()
    env.events.init.fire(environment=env, runner=runner, web_ui=None)

    csv_writer = StatsCSVFileWriter(
        env, PERCENTILES_TO_REPORT, str(args.out / "locust"), full_history=True
    )
    greenlets = [gevent.spawn(csv_writer), gevent.spawn(stats_history, runner)]

    if shape is not None:
        runner.start_shape()
    else:
        runner.start(args.users, spawn_rate=args.users)
        gevent.spawn_later(args.duration or 10.0, runner.stop)
    base.FINISHED.wait()
    if (args.out / "setup_error.txt").exists():
        runner.quit()
        return 1
    if workers:
        # workers report Locust's statistics every WORKER_REPORT_INTERVAL s, stopped or not:
        # wait for one more round so the request counts include their last requests
        gevent.sleep(WORKER_REPORT_INTERVAL + 0.5)
    runner.quit()
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)  # one more CSV round with the final numbers
    save_stats_json(runner.stats, str(args.out / "locust_stats"))
    (args.out / "locust_report.html").write_text(
        get_html_report(env, show_download_link=False), encoding="utf-8"
    )
    for g in greenlets:
        g.kill(block=True)
    csv_writer.close_files()
    for w in workers:
        try:
            w.wait(timeout=2)
        except subprocess.TimeoutExpired:
            w.terminate()  # everything it measured has been merged already
            w.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
