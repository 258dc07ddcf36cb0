"""``pushpop-bench ab``: an A/A run reads "same"; the verdict needs every round to agree.

The A/A run is the real command in its own process: a git worktree of HEAD and this
checkout served side by side on one throwaway PostgreSQL, a few short interleaved
slices. The verdict logic is a pure function, tested on synthetic slices.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from load_tests.ab import interleaved
from load_tests.evaluation.ab import BETTER, METRICS, SAME, WORSE, Metric, compare, overall

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / ".venv" / "bin" / "pushpop-bench"
RATE, P99 = METRICS[0], METRICS[2]


def test_a_against_a_reads_same_and_exits_0(tmp_path: Path) -> None:
    cmd = [str(BENCH), "ab", "--base", "HEAD", "--slices", "4", "--slice-seconds", "1.5",
           "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = tmp_path.glob("*-ab/ab.json")
    summary = json.loads(result.read_text())
    assert summary["verdict"] == SAME and summary["errors"] == 0
    assert [c["verdict"] for c in summary["comparisons"]] == [SAME] * len(METRICS)
    # both builds were really loaded, in 4 slices each, and base came from the worktree
    assert all(len(summary["slices"][b]) == 4 for b in ("base", "head"))
    assert all(s["requests/s"] > 0 for b in ("base", "head") for s in summary["slices"][b])
    assert summary["code"]["head"] == str(ROOT / "api" / "__init__.py")
    assert summary["code"]["base"] != summary["code"]["head"]
    assert not Path(summary["code"]["base"]).exists(), "the base worktree was left behind"
    assert "same" in proc.stdout


@pytest.mark.parametrize(
    ("head", "verdict"),
    [
        ([80, 83, 79, 82], WORSE),  # every round slower by more than 5 %
        ([120, 111, 125, 118], BETTER),
        ([100, 97, 103, 99], SAME),  # within the margin
        ([90, 91, 89, 102], SAME),  # 10 % slower in median, but one round disagrees
        ([96, 97, 96, 96], SAME),  # every round slower, but by less than the margin
    ],
)
def test_rate_verdict_needs_the_whole_band_beyond_the_margin(
    head: list[float], verdict: str
) -> None:
    c = compare(RATE, [100.0] * 4, head)
    assert c.verdict == verdict
    assert (c.low, c.high) == (min(head) / 100, max(head) / 100)


def test_lower_is_better_metrics_and_the_noise_band() -> None:
    base = [10.0, 20.0, 10.0, 20.0]  # a noisy base: the ratios pair slices of one round
    assert compare(P99, base, [13.0, 26.0, 13.0, 25.0]).verdict == WORSE  # +25 % each round
    assert compare(P99, base, [7.0, 14.0, 7.5, 15.0]).verdict == BETTER
    # the medians differ by 25 %, the rounds do not agree: same
    assert compare(P99, base, [20.0, 20.0, 10.0, 30.0]).verdict == SAME
    c = compare(Metric("x", "ms", False, 0.0), [1.0, 1.0], [1.01, 0.99])
    assert c.verdict == SAME and c.ratio == pytest.approx(1.0)
    with pytest.raises(ValueError):
        compare(RATE, [1.0], [1.0, 2.0])


def test_overall_and_the_interleaving() -> None:
    same, worse = compare(RATE, [1.0] * 2, [1.0] * 2), compare(RATE, [1.0] * 2, [0.5] * 2)
    better = compare(RATE, [1.0] * 2, [2.0] * 2)
    assert overall([same, better]) == BETTER and overall([better, worse]) == WORSE
    assert overall([same, same]) == SAME
    order = [name for _, name in interleaved(3)]
    assert order == ["base", "head", "head", "base", "base", "head"]
