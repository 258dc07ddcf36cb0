"""Where a request's time goes, hop by hop, from the server's own ``/metrics``.

Scraped before and after a benchmark point, the sums and counts of each stage the server
times give its mean; the gaps between nested stages are the hops (the gateway's own
work, daprd and its loopback hops, the actor's own turn). See docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

ACTOR_ROUTE = "/actors/{actor_type_name}/{actor_id}/method/{method_name}"
METHODS = {"push": "Push", "pop": "Pop"}


@dataclass(frozen=True)
class Scrape:
    """The sums and counts of one ``/metrics`` scrape that the breakdown needs."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def get(self, name: str, **labels: str) -> float:
        want = tuple(sorted(labels.items()))
        return sum(
            v for (n, ls), v in self.values.items()
            if n == name and all(item in ls for item in want)
        )  # fmt: skip


def scrape(url: str) -> Scrape:
    """The server's counters now; none from a server without Prometheus metrics (the
    floor app)."""
    r = httpx.get(url + "/metrics", timeout=10)
    if not r.headers.get("content-type", "").startswith("text/plain"):
        return Scrape({})
    text = r.text
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count", "_total")):
                key = (sample.name, tuple(sorted(sample.labels.items())))
                values[key] = sample.value
    return Scrape(values)


def _mean_ms(before: Scrape, after: Scrape, name: str, **labels: str) -> float | None:
    count = after.get(f"{name}_count", **labels) - before.get(f"{name}_count", **labels)
    total = after.get(f"{name}_sum", **labels) - before.get(f"{name}_sum", **labels)
    return total / count * 1000 if count > 0 else None


def breakdown(before: Scrape, after: Scrape, op: str) -> dict[str, float]:
    """Mean ms per request (per turn for the state columns) of each stage over a point;
    stages the runtime does not have (the actor route, embedded) are left out."""
    http = "pushpop_http_request_duration_seconds"
    stages = {
        "gateway": _mean_ms(before, after, http, route=f"/queue/{{queue_id}}/{op}"),
        "actor call": _mean_ms(
            before, after, "pushpop_actor_call_duration_seconds", method=METHODS[op]
        ),
        "actor route": _mean_ms(before, after, http, route=ACTOR_ROUTE, method="PUT"),
    }
    turns = after.get("pushpop_actor_turns_total") - before.get("pushpop_actor_turns_total")
    if turns > 0:
        for stage in ("load", "save"):
            name = f"pushpop_actor_state_{stage}_seconds_total"
            stages[f"state {stage}"] = (after.get(name) - before.get(name)) / turns * 1000
    return {k: v for k, v in stages.items() if v is not None}


def derived(stages: dict[str, float]) -> dict[str, float]:
    """The hops between nested stages (see the module docstring)."""
    out: dict[str, float] = {}
    call, route = stages.get("actor call"), stages.get("actor route")
    state = stages.get("state load", 0.0) + stages.get("state save", 0.0)
    if "gateway" in stages and call is not None:
        out["gateway's own"] = stages["gateway"] - call
    if call is not None and route is not None:
        out["daprd + hops"] = call - route
    inner = route if route is not None else call
    if inner is not None:
        out["actor turn's own"] = inner - state
    return out


STAGES = ("gateway", "actor call", "actor route", "state load", "state save")
HOPS = ("gateway's own", "daprd + hops", "actor turn's own")


def table(rows: list[tuple[str, str, float, dict[str, float]]]) -> Table:
    """``(runtime, point, client p50 ms, stages)`` rows as a table of mean ms."""
    out = Table(title="where a request's time goes: mean ms per stage (state: per turn), "
                      "from the server's /metrics; then the hops between them")  # fmt: skip
    for col in ("runtime", "point", "client p50", *STAGES, *HOPS):
        out.add_column(col, justify="left" if col in ("runtime", "point") else "right")
    for runtime, point, p50, stages in rows:
        every = stages | derived(stages)
        cells = [f"{every[c]:.2f}" if c in every else "" for c in (*STAGES, *HOPS)]
        out.add_row(runtime, point, f"{p50:.2f}", *cells)
    return out


__all__ = ["Scrape", "breakdown", "derived", "scrape", "table"]
