"""The per-hop breakdown of benchmarks/hops.py: means from counter differences, and the
hops between nested stages (pure arithmetic on two scrapes)."""

from __future__ import annotations

import pytest

from benchmarks.hops import ACTOR_ROUTE, Scrape, breakdown, derived

HTTP = "pushpop_http_request_duration_seconds"


def scrape(requests: int, gateway: float, call: float, route: float | None, turns: int,
           load: float, save: float) -> Scrape:  # fmt: skip
    push = (("method", "POST"), ("route", "/queue/{queue_id}/push"))
    values = {
        (f"{HTTP}_count", push): float(requests),
        (f"{HTTP}_sum", push): gateway,
        ("pushpop_actor_call_duration_seconds_count", (("method", "Push"),)): float(requests),
        ("pushpop_actor_call_duration_seconds_sum", (("method", "Push"),)): call,
        ("pushpop_actor_turns_total", ()): float(turns),
        ("pushpop_actor_state_load_seconds_total", ()): load,
        ("pushpop_actor_state_save_seconds_total", ()): save,
    }
    if route is not None:
        actor = (("method", "PUT"), ("route", ACTOR_ROUTE))
        values[(f"{HTTP}_count", actor)] = float(requests)
        values[(f"{HTTP}_sum", actor)] = route
    return Scrape(values)


def test_dapr_breakdown_is_the_difference_of_two_scrapes() -> None:
    before = scrape(10, 1.0, 0.9, 0.5, 10, 0.01, 0.2)
    after = scrape(110, 4.0, 3.4, 1.5, 110, 0.11, 1.0)  # 100 requests later
    stages = breakdown(before, after, "push")
    assert stages == pytest.approx({"gateway": 30.0, "actor call": 25.0, "actor route": 10.0,
                                    "state load": 1.0, "state save": 8.0})  # fmt: skip
    assert derived(stages) == pytest.approx(
        {"gateway's own": 5.0, "daprd + hops": 15.0, "actor turn's own": 1.0}
    )


def test_embedded_has_no_actor_route_and_no_requests_means_no_stage() -> None:
    before = scrape(0, 0.0, 0.0, None, 0, 0.0, 0.0)
    after = scrape(50, 1.0, 0.8, None, 50, 0.05, 0.5)
    stages = breakdown(before, after, "push")
    assert "actor route" not in stages and stages["actor call"] == pytest.approx(16.0)
    assert derived(stages) == pytest.approx({"gateway's own": 4.0, "actor turn's own": 5.0})
    assert breakdown(after, after, "push") == {}  # nothing happened in between
    assert breakdown(before, after, "pop") == {"state load": 1.0, "state save": 10.0}
