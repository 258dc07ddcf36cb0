"""The physical limit (``pushpop-bench limit``): raw PostgreSQL against the service, same work.

pgbench runs exactly the statements a push and a pop send to the ``state`` table (the
store's own), then the service runs closed-loop at the same concurrency (``LIMIT-push``,
``LIMIT-pop``); the ratio says how much of this PostgreSQL the service reaches.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from actor_service.stores.postgres import GET, SCHEMA, inline_statement
from load_tests.catalog import VARIANTS
from load_tests.harness import Harness
from load_tests.measure.pgbench import run_pgbench
from load_tests.runner import judge, run_variant
from load_tests.settings import RunSettings


def sample_values(item_bytes: int = 64, segment_items: int = 50) -> tuple[str, str]:
    """A metadata row and a half-full segment shaped like the actor's (sizes matter)."""
    now = time.time()
    meta = {
        "out": [], "pri": {"1": [0, segment_items, now]}, "gone": {}, "recv": {}, "xseq": 0,
        "locks": {}, "next_id": segment_items + 1,
    }  # fmt: skip
    item = {"n": 1234567, "pad": "x" * max(0, item_bytes - 30)}
    segment = {"items": [[i + 1, item, now] for i in range(segment_items)], "start": 0}
    return json.dumps(meta, separators=(",", ":")), json.dumps(segment, separators=(",", ":"))


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def scripts(prefix: str, item_bytes: int) -> dict[str, str]:
    meta, seg = sample_values(item_bytes)
    key_meta = f"'{prefix}' || :q || '||meta'"
    key_seg = f"'{prefix}' || :q || '||s:1:0'"
    # the store's own statement (one multi-row upsert in autocommit), not a copy of it
    upserts = inline_statement([(key_meta, _lit(meta)), (key_seg, _lit(seg))])
    head = "\\set q random(1, :queues)\n"
    return {
        "push": f"{head}{upserts}\n",
        "pop": f"{head}{GET % (key_meta,)};\n{GET % (key_seg,)};\n{upserts}\n",
    }


def physical_limit(
    harness: Harness,
    out_dir: Path,
    *,
    concurrency: int = 8,
    seconds: float = 10.0,
    item_bytes: int = 64,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console()
    if not harness.database_url:
        raise RuntimeError("`limit` needs PostgreSQL: use --store postgres (or --database-url)")
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"pushpop||QueueActor||limit-{uuid.uuid4().hex[:6]}-"
    meta, seg = sample_values(item_bytes)
    with psycopg.connect(harness.database_url, autocommit=True) as conn:
        with conn.transaction():
            for statement in SCHEMA:
                conn.execute(statement)
        for q in range(1, concurrency + 1):
            for key, value in ((f"{prefix}{q}||meta", meta), (f"{prefix}{q}||s:1:0", seg)):
                conn.execute(
                    "INSERT INTO state (key, value, isbinary) VALUES (%s, %s::jsonb, false) "
                    "ON CONFLICT (key) DO NOTHING",
                    (key, value),
                )
    results: dict[str, Any] = {"concurrency": concurrency, "seconds": seconds, "ops": {}}
    settings = RunSettings(
        duration=seconds, model="closed", users=concurrency, report=True,
        overrides=[f"queue_count={concurrency}", "rate_per_user=100000"],
    )  # fmt: skip
    for op, text in scripts(prefix, item_bytes).items():
        (out_dir / f"pgbench_{op}.sql").write_text(text)
        with console.status(f"pgbench {op}: {concurrency} clients, {seconds:g} s"):
            raw = run_pgbench(harness.database_url, text, concurrency, seconds,
                              define={"queues": concurrency})  # fmt: skip
        (out_dir / f"pgbench_{op}.txt").write_text(raw.output)
        outcome = run_variant(
            VARIANTS[f"LIMIT-{op}"], harness, out_dir / f"service_{op}", settings, console
        )
        judge([outcome], settings, console=console)  # its verdict files and report.html
        summary = outcome.summary
        service = summary.throughput.requests_per_s if summary else None
        ratio = service / raw.tps if service and raw.tps else None
        results["ops"][op] = {
            "pgbench_tps": raw.tps,
            "pgbench_latency_ms": raw.latency_avg_ms,
            "service_rps": service,
            "service_p50_ms": summary.latency(op, "p50") if summary else None,
            "service_p99_ms": summary.latency(op, "p99") if summary else None,
            "ratio": round(ratio, 3) if ratio else None,
        }
    with psycopg.connect(harness.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM state WHERE key LIKE %s", (prefix + "%",))
    (out_dir / "limit.json").write_text(json.dumps(results, indent=1))
    t = Table(title=f"Physical limit at concurrency {concurrency} ({seconds:g} s each)")
    for col in ("op", "pgbench tx/s", "pgbench avg ms", "service req/s", "service p50 ms",
                "service p99 ms", "service / PostgreSQL"):  # fmt: skip
        t.add_column(col, justify="right")
    for op, r in results["ops"].items():
        t.add_row(
            op, _f(r["pgbench_tps"]), _f(r["pgbench_latency_ms"]), _f(r["service_rps"]),
            _f(r["service_p50_ms"]), _f(r["service_p99_ms"]),
            f"{r['ratio']:.0%}" if r["ratio"] else "-",
        )  # fmt: skip
    console.print(t)
    return results


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"
