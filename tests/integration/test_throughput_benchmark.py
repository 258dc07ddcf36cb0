"""Smoke test of ``python -m benchmarks.throughput``: it runs end to end and its JSON
has every field; and the floor app it measures answers and writes like a push and a pop.
Correctness only: no number is judged here (timed assertions on a shared 2-core host
would be flaky); the targets are the benchmark's own business.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from actor_service.runtime.embedded import EmbeddedRuntime
from actor_service.stores.memory import MemoryStore
from actor_service.stores.postgres import TABLE
from api.app import create_app
from api.invoker import EmbeddedInvoker
from api.settings import Settings
from benchmarks import turn
from benchmarks.floor_app import APP_ID
from benchmarks.serving import start_floor
from supervise.pgserver import PostgresServer


def test_throughput_benchmark_writes_every_field(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.throughput", "--seconds", "1",
         "--runtimes", "embedded", "--out", str(out)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["generator"] in ("wrk", "aiohttp")
    assert result["pgbench"]["reference_tps"] > 0
    for when in ("start", "end"):
        assert {"PostgreSQL", "pgbench", "other"} <= set(result["pgbench"][when]["cpu_us_per_tx"])
    floor = [p for p in result["points"] if p["runtime"] == "floor"]
    assert {(p["mode"], p["op"], p["queues"], p["connections"]) for p in floor} == {
        ("bare", "push", 50, 16), ("bare", "pop", 50, 16)
    }  # fmt: skip
    points = [p for p in result["points"] if p["runtime"] != "floor"]
    assert {(p["mode"], p["op"], p["queues"], p["connections"]) for p in points} == {
        (mode, op, queues, conns)
        for mode in ("optimised", "baseline")
        for op, queues, conns in (("push", 50, 16), ("push", 1, 16), ("push", 50, 1),
                                  ("pop", 50, 16), ("pop", 1, 16))
    }  # fmt: skip
    for p in floor + points:
        assert p["runtime"] in ("embedded", "floor")
        assert p["requests"] > 0 and p["errors"] == 0, p
        assert p["p50_ms"] > 0
        # a 16-connection point is judged against pgbench in slices around it
        assert (p["pgbench_tps"] or 0) > 0 if p["connections"] > 1 else p["pgbench_tps"] is None
        assert {"server", "PostgreSQL", "load generator", "other"} <= set(p["cpu_us_per_op"])
        if p["op"] == "pop":
            assert p["empty_fraction"] == 0.0, p  # the queues were filled beyond need
        # the per-hop breakdown comes from the server's /metrics (the floor has none)
        if p["runtime"] == "floor":
            assert p["hops_ms"] == {}, p
        else:
            hops = p["hops_ms"]
            assert {"gateway", "actor call", "state load", "state save"} <= set(hops), p
            assert hops["actor call"] > 0 and hops["state save"] > 0, p
            # the stages nest (a request at the edge of the window may be counted by
            # one stage and not yet by the other: a little slack)
            assert hops["gateway"] >= 0.9 * hops["actor call"], p
            if p["coalesced_requests"] == 0:  # one turn per request
                assert hops["actor call"] >= 0.9 * hops["state save"], p
    names = {t["name"] for t in result["targets"]}
    assert names == {
        "embedded push 50q c=16 / pgbench", "embedded pop 50q c=16 / pgbench",
        "embedded push 1q c=16 / 50q", "embedded pop 1q c=16 / 50q",
        "embedded push c=1 (p50) / baseline",
    }  # fmt: skip
    assert all(isinstance(t["met"], bool) for t in result["targets"])
    for t in result["targets"]:
        if t["against"] == "pgbench" and "50q" in t["point"]:
            assert isinstance(t["floor"], float) and t["floor"] > 0, t
            above = float(t["goal"].split()[1]) > t["floor"]
            assert t["out_of_reach"] == (above and not t["met"]), t
        else:
            assert t["floor"] is None and t["out_of_reach"] is False, t


@pytest.mark.parametrize(
    "form",
    ["bare", *(pytest.param(f, marks=pytest.mark.dapr) for f in ("dapr", "dapr-component"))],
)
def test_floor_app_pushes_and_pops_durably(pg: PostgresServer, tmp_path: Path, form: str) -> None:
    """The floor app must do a real push's and pop's work: two rows written per call; its
    Dapr form must do it in daprd's calls back (one per operation, none skipped), and with
    component state write the rows through daprd (keyed by daprd with the floor's app id)."""
    url = pg.database(f"test_floor_app_{form.replace('-', '_')}", fresh=True)
    state = "component" if form == "dapr-component" else "direct"
    floor = start_floor(url, tmp_path / "floor.log", dapr=form != "bare", dapr_state=state)
    try:
        with httpx.Client(base_url=floor.url, timeout=10) as c:
            for n in (1, 2):
                r = c.post("/queue/f-1/push", json={"item": {"n": n}, "priority": 1})
                assert r.status_code == 200 and r.json()["depth"] == n, r.text
            assert r.json()["ids"] == ["0000000000000002"]
            assert c.get("/queue/f-1").json() == {"depth": 2}
            # a push rewrites its segment whole, as pushpop's does: the first item stays
            with psycopg.connect(url) as conn:
                (stored,) = conn.execute(
                    f"SELECT value FROM {TABLE} WHERE key LIKE %s", ("%||f-1||s:1:0",)
                ).fetchone()
            assert [e[:2] for e in stored["items"]] == [[1, {"n": 1}], [2, {"n": 2}]]
            popped = c.post("/queue/f-1/pop?depth=1").json()["items"]
            assert [(i["item"], i["priority"]) for i in popped] == [({"n": 1}, 1)]
            assert c.get("/queue/f-1").json() == {"depth": 1}
            assert c.post("/queue/f-2/pop?depth=1").json() == {"items": []}
            calls = c.get("/floor").json()["actor_calls"]
            # the Dapr form: start_floor's probe pops, then these five through daprd
            assert calls >= 5 if form != "bare" else calls == 0
    finally:
        floor.stop()
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute(f"SELECT key, value FROM {TABLE}").fetchall())
    # the pop of f-1 wrote its meta (head 1, tail 2) and head segment (the item left);
    # the empty f-2 pop wrote its two rows too
    app = APP_ID if form == "dapr-component" else "pushpop"  # daprd keys rows by app id
    meta, segment = rows[f"{app}||QueueActor||f-1||meta"], rows[f"{app}||QueueActor||f-1||s:1:0"]
    assert meta["next_id"] == 3 and meta["pri"]["1"][:2] == [1, 2]
    assert segment["start"] == 1 and [e[:2] for e in segment["items"]] == [[2, {"n": 2}]]
    assert {f"{app}||QueueActor||f-2||meta", f"{app}||QueueActor||f-2||s:1:0"} <= set(rows)
    assert not any(k.startswith("pushpop||") for k in rows) or app == "pushpop", sorted(rows)


def test_builds_benchmark_serves_a_git_revision_next_to_the_checkout(tmp_path: Path) -> None:
    """``python -m benchmarks.builds``: the base revision is really served from its own
    worktree (not the installed checkout), both builds answer the same load without
    errors, and the worktree is gone afterwards."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "builds.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.builds", "--base", "HEAD", "--rounds", "2",
         "--seconds", "1", "--points", "push50,pop1", "--out", str(out)],
        check=True, timeout=240, capture_output=True, cwd=root,
    )  # fmt: skip
    result = json.loads(out.read_text())
    head, base = (Path(result["builds"][b]["code"]) for b in ("head", "base"))
    assert head == root / "api" / "__init__.py"
    assert not base.is_relative_to(root) and base.name == "__init__.py", base
    assert not base.exists(), "the base worktree was left behind"
    listed = subprocess.run(["git", "-C", str(root), "worktree", "list"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert str(base.parents[1]) not in listed
    assert [p["point"] for p in result["points"]] == ["push50", "pop1"]
    for p in result["points"]:
        for build in ("base", "head"):
            runs = p["samples"][build]
            assert len(runs) == 2, p
            assert all(r["rate"] > 0 and r["errors"] == 0 and r["server_us"] > 0 for r in runs), p
            assert p[f"{build}_rate"] > 0


def test_turn_benchmark_times_every_method_on_real_calls(tmp_path: Path) -> None:
    """``python -m benchmarks.turn``: every method's calls really ran (the benchmark
    raises on an error reply or an empty pop) and each round has a figure for each."""
    out = tmp_path / "turn.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.turn", "--calls", "300", "--rounds", "2",
         "--out", str(out)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["calls"] == 300 and len(result["rounds"]) == 2
    for r in [*result["rounds"], result["median"]]:
        assert set(r) == {"Push", "Pop", "Stats", "HTTP push", "HTTP pop"}, r
        assert all(v > 0 for v in r.values()), r


def test_turn_benchmark_times_a_git_revision_from_its_worktree(tmp_path: Path) -> None:
    """``benchmarks.turn --base``: every round of each build ran (the base's from its own
    worktree: each round checks which ``actor_service`` it imported and fails otherwise),
    and the worktree is gone afterwards."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "turn.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks.turn", "--base", "HEAD", "--calls", "200",
         "--rounds", "2", "--out", str(out)],
        check=True, timeout=240, capture_output=True, cwd=root,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["base"] == "HEAD"
    for build in ("base", "head"):
        assert len(result["samples"][build]) == 2
        assert all(v > 0 for r in result["samples"][build] for v in r.values())
        assert set(result["median"][build]) == {"Push", "Pop", "Stats", "HTTP push", "HTTP pop"}
    listed = subprocess.run(["git", "-C", str(root), "worktree", "list"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    # its own worktree (another run's may be up at the same time)
    assert "pushpop-base-" in result["worktree"] and result["worktree"] not in listed, listed
    assert not Path(result["worktree"]).exists()


def test_turn_benchmark_refuses_to_time_empty_pops() -> None:
    """A pop that finds its queue empty costs less than a real one: a figure made of them
    would flatter the actor, so the benchmark stops instead."""

    async def go() -> None:
        rt = EmbeddedRuntime(MemoryStore(), idle_timeout=3600)
        await rt.start()
        real = rt.invoke

        async def pushes_lost(actor_id: str, method: str, payload: dict) -> dict:
            if method == "Push":
                return {"ok": {}}
            return await real(actor_id, method, payload)

        rt.invoke = pushes_lost  # type: ignore[method-assign]
        try:
            calls = turn.calls_of(rt, create_app(Settings.from_env(), EmbeddedInvoker(rt)))
            with pytest.raises(RuntimeError, match="found their queue empty"):
                await turn._round(rt, calls, 100)
        finally:
            await rt.stop()

    asyncio.run(go())
