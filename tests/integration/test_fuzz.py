"""Schemathesis against a running server's ``/openapi.json``: no 5xx, answers as documented.

Thousands of generated requests per run, every endpoint; schema-violating ones must get a
4xx. The strategies run under hypothesis ``@given`` (not ``@schema.parametrize()``) so the
test can count the cases run, steer a share to valid queue ids and collect every distinct
failure. ``PUSHPOP_FUZZ_EXAMPLES`` (default 2000) sets the budget, ``PUSHPOP_FUZZ_SEED``
replays a run.
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess

BUDGET = int(os.environ.get("PUSHPOP_FUZZ_EXAMPLES", "2000"))
SEED = int(os.environ.get("PUSHPOP_FUZZ_SEED", str(random.randrange(2**32))))
TIME_LIMIT = max(240.0, BUDGET * 0.12)  # seconds; a bound, not a target
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_server(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server of its own (its own database), so the fuzzer's purges touch nothing else."""
    name = f"pushpop_fuzz_{uuid.uuid4().hex[:8]}"
    admin = pg.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = ServerProcess(
        store="postgres",
        database_url=pg.url.rsplit("/", 1)[0] + "/" + name,
        log_path=tmp_path_factory.mktemp("fuzz") / "server.log",
        env={"PUSHPOP_API_KEYS": "", "PUSHPOP_API_KEYS_FILE": "", "PUSHPOP_MAX_LOCKS": ""},
    ).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Tally:
    cases: int = 0
    by_run: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    # (operation, what failed) -> (count, first report)
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def fail(self, op: str, what: str, detail: str) -> None:
        n, first = self.failures.get((op, what), (0, detail))
        self.failures[(op, what)] = (n + 1, first)


@dataclass
class Run:
    """One hypothesis run: an operation, a generation mode, maybe fixed queue ids."""

    label: str
    operation: Any
    strategy: st.SearchStrategy[Any]
    weight: float
    exhausted: bool = False


def build_runs(schema: Any, valid_ids: list[str]) -> list[Run]:
    runs: list[Run] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if "{queue_id}" not in op.path:
            runs.append(Run(f"{op.label} positive", op, op.as_strategy(), 0.2))
            continue
        fixed = st.one_of(
            [
                op.as_strategy(GenerationMode.POSITIVE, path_parameters={"queue_id": q})
                for q in valid_ids
            ]
        )
        runs += [
            Run(f"{op.label} positive, valid queue ids", op, fixed, 5.0),
            Run(f"{op.label} positive", op, op.as_strategy(GenerationMode.POSITIVE), 2.0),
            Run(f"{op.label} negative", op, op.as_strategy(GenerationMode.NEGATIVE), 3.0),
        ]
    return runs


def execute(run: Run, case: Any, session: requests.Session, url: str, tally: Tally) -> None:
    """Send one case and validate it; record, never raise (so hypothesis keeps going)."""
    tally.cases += 1
    tally.by_run[run.label] = tally.by_run.get(run.label, 0) + 1
    try:
        response = case.call(base_url=url, session=session, timeout=30)
    except requests.RequestException as exc:
        session.close()  # e.g. a 500 made uvicorn drop the connection
        tally.fail(run.operation.label, f"transport error {type(exc).__name__}", repr(exc)[:500])
        return
    tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
    try:
        case.validate_response(response, checks=CHECKS, transport_kwargs={"base_url": url})
    except (AssertionError, BaseExceptionGroup) as exc:
        failures = getattr(exc, "exceptions", None) or [exc]
        for f in failures:
            what = f"{getattr(f, 'code', '')} {getattr(f, 'title', type(f).__name__)}".strip()
            tally.fail(run.operation.label, what, str(exc)[:1500])


def fuzz(run: Run, examples: int, session: requests.Session, url: str, tally: Tally) -> None:
    before = tally.by_run.get(run.label, 0)

    @seed(SEED + zlib.crc32(run.label.encode()) + tally.cases)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=run.strategy)
    def body(case: Any) -> None:
        execute(run, case, session, url, tally)

    try:
        body()
    except Unsatisfiable:
        tally.skipped.append(f"{run.label}: no such cases can be generated")
        run.exhausted = True
        return
    # hypothesis stops early once it has tried every distinct input
    if tally.by_run.get(run.label, 0) - before < examples // 2:
        run.exhausted = True


def test_fuzz_every_endpoint_against_the_openapi_document(fuzz_server: ServerProcess) -> None:
    url = fuzz_server.url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=30)
    run_id = uuid.uuid4().hex[:6]
    runs = build_runs(schema, [f"fz-{run_id}-a", f"fz-{run_id}-b.c:d_e", f"fz-{run_id}-z"])
    assert len({r.operation.label for r in runs}) >= 11, [r.label for r in runs]
    tally = Tally()
    started = time.monotonic()
    print(f"fuzz seed {SEED} (PUSHPOP_FUZZ_SEED), budget {BUDGET} cases")
    with requests.Session() as session:
        while tally.cases < BUDGET and time.monotonic() - started < TIME_LIMIT:
            live = [r for r in runs if not r.exhausted]
            if not live:
                break
            missing = BUDGET - tally.cases
            total_weight = sum(r.weight for r in live)
            for run in live:
                share = math.ceil(missing * run.weight / total_weight * 1.1)
                fuzz(run, max(share, 1), session, url, tally)
                if time.monotonic() - started > TIME_LIMIT:
                    break
    took = time.monotonic() - started
    log = Path(fuzz_server.log_path).read_text(errors="replace")
    statuses = dict(sorted(tally.statuses.items()))
    summary = (
        f"{tally.cases} cases in {took:.0f}s (seed {SEED}); statuses {statuses}"
        + "".join(f"\n  {n:5d}  {label}" for label, n in sorted(tally.by_run.items()))
        + "".join(f"\n  skipped: {s}" for s in tally.skipped)
    )
    print(summary)
    problems = [
        f"[{n}x] {op}: {what}\n{first}" for (op, what), (n, first) in sorted(tally.failures.items())
    ]
    if "Traceback" in log:
        problems.append(f"the server logged a traceback (see {fuzz_server.log_path})")
    assert tally.cases >= BUDGET, f"only {tally.cases} of {BUDGET} cases ran: {summary}"
    assert fuzz_server.proc is not None and fuzz_server.proc.poll() is None, "the server died"
    assert not problems, f"{len(problems)} distinct failures; {summary}\n\n" + "\n\n".join(problems)
