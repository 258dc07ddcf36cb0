"""``index.html`` of a group or ``run-all``: every verdict, then each group's comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from load_tests.evaluation.verdict import Evaluation
from load_tests.report.charts import depth_rows, plot_depth_latency, plot_scaling
from load_tests.report.html import Raw, esc, fmt, page, png, table, verdict_html
from load_tests.summary import RunSummary


def _numbers(s: RunSummary | None) -> list[Any]:
    """arrivals/s ... ledger of the overview; blanks for a variant that did not run."""
    if s is None:
        return [None] * 8
    return [
        s.throughput.target_rps,
        s.throughput.requests_per_s,
        s.latency("push", "p50"),
        s.latency("push", "p99"),
        s.latency("pop", "p50"),
        s.latency("pop", "p99"),
        s.errors.unexpected,
        s.ledger.get("status"),
    ]


def overview_rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in results:
        s: RunSummary | None = r.get("summary")
        v = r.get("verdict") or {}
        link = (
            Raw(f"<a href='{esc(r['rel'])}/report.html'>{esc(r['variant'])}</a>")
            if s
            else r["variant"]
        )
        status = Raw(f"<b class='{esc(v.get('status', ''))}'>{esc(v.get('status', 'SKIP'))}</b>")
        notes = "; ".join(v.get("reasons", [])[:2]) or r.get("skipped", "")
        rows.append([link, r.get("title", ""), status, *_numbers(s), notes])
    return rows


OVERVIEW_HEADERS = [
    "variant",
    "what",
    "verdict",
    "arrivals/s",
    "requests/s",
    "push p50",
    "push p99",
    "pop p50",
    "pop p99",
    "errors",
    "ledger",
    "notes",
]


def group_section(group: str, title: str, results: list[dict[str, Any]], plots: Path) -> str:
    b = [
        f"<h2>{esc(group)} - {esc(title)}</h2>",
        table(OVERVIEW_HEADERS, overview_rows(results), left=2),
    ]
    done: list[tuple[str, RunSummary]] = [
        (r["variant"], r["summary"]) for r in results if r.get("summary")
    ]
    if group == "S4" and done:
        b.append(table(S4_HEADERS, [_s4_row(v, s) for v, s in done]))
        b.append(png(plot_scaling(done), plots, "S4_scaling"))
    if group == "S5" and done:
        b.append(table(S5_HEADERS, [_s5_row(v, d, s) for d, s, v in depth_rows(done)]))
        b.append(png(plot_depth_latency(done), plots, "S5_latency_vs_depth"))
    if group == "S6" and done:
        rows = [
            [
                v,
                f"{x.start_s:g}-{x.end_s:g} s",
                x.peak_p99_ms,
                x.recovery_s if x.recovered else "not recovered",
            ]
            for v, s in done
            for x in (s.bursts.bursts if s.bursts else [])
        ]
        b.append(table(["variant", "burst", "peak p99 ms", "recovery s"], rows))
    if group in ("S1", "S2"):
        for v, s in done:
            if s.knee:
                b.append(
                    f"<p>{esc(v)}: knee at <b>{fmt(s.knee.knee_rps)} req/s</b> - "
                    f"{esc(s.knee.reason)}</p>"
                )
    return "".join(b)


S4_HEADERS = [
    "variant", "queues", "done/s", "push p50", "push p99", "push p99.9", "pop p50", "pop p99",
    "pop p99.9", "server CPU %", "PG commits/s",
]  # fmt: skip


def _s4_row(variant: str, s: RunSummary) -> list[Any]:
    lat = [s.latency(ep, k) for ep in ("push", "pop") for k in ("p50", "p99", "p99.9")]
    return [
        variant,
        s.queues,
        s.throughput.requests_per_s,
        *lat,
        s.resources.get("server", {}).get("cpu_mean"),
        s.resources.get("pg_stats", {}).get("commits_per_s"),
    ]


S5_HEADERS = [
    "variant", "items in queue", "mean sampled depth", "pop p50", "pop p99", "pop p99.9",
    "push(10) p99", "time in queue p50 ms",
]  # fmt: skip


def _s5_row(variant: str, depth: float, s: RunSummary) -> list[Any]:
    return [
        variant,
        int(depth),
        s.depth.mean,
        s.latency("pop", "p50"),
        s.latency("pop", "p99"),
        s.latency("pop", "p99.9"),
        s.latency("push-refill", "p99"),
        s.time_in_queue_ms.get("p50"),
    ]


def write_index(
    out_dir: Path,
    title: str,
    results: list[dict[str, Any]],
    groups: dict[str, str],
    verdict: Evaluation,
    facts: list[list[Any]],
) -> Path:
    """The run-all (or group) landing page: every variant's verdict and the group tables."""
    plots = out_dir / "plots"
    b = [f"<h1>{esc(title)}</h1>", verdict_html(verdict), table(["", ""], facts)]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_group.setdefault(r["group"], []).append(r)
    for g, rs in by_group.items():
        b.append(group_section(g, groups.get(g, g), rs, plots))
    out = out_dir / "index.html"
    out.write_text(page(title, "".join(b)), encoding="utf-8")
    return out
