"""The verdict as CI-readable files: JUnit XML, and a markdown table for a pull request.

Why JUnit: every CI system shows JUnit results natively (failed tests listed, history
kept), so a load test whose p99 went over its limit shows up like a failing test.
Layout: one ``<testsuite>`` per variant, one ``<testcase>`` per metric check (its
value, limit and status), plus one for the ledger and one per other problem (errors,
an abort). The file follows the Jenkins JUnit schema (``junit-4.xsd``); the tests
validate it against that schema.

Rendered from the one :class:`~load_tests.evaluation.verdict.Evaluation`, like the
console and the HTML, so it cannot disagree with the exit code.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

from load_tests.evaluation.check import CHECK_HEADERS
from load_tests.evaluation.codes import EXIT_LEDGER
from load_tests.evaluation.verdict import Evaluation, VariantEvaluation

CLASS_PREFIX = "pushpop-bench"


def _case(suite: ET.Element, variant: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(
        suite, "testcase", name=name, classname=f"{CLASS_PREFIX}.{variant}", time=f"{seconds:g}"
    )


def _suite(root: ET.Element, v: VariantEvaluation, stamp: str) -> tuple[int, int, int]:
    """One variant's test cases; returns (tests, failures, skipped)."""
    suite = ET.SubElement(root, "testsuite", name=v.variant, timestamp=stamp)
    tests = failures = skipped = 0
    if v.skipped:
        ET.SubElement(_case(suite, v.variant, "variant"), "skipped").text = v.skipped
        tests, skipped = 1, 1
    for c in v.checks if not v.skipped else []:
        case = _case(suite, v.variant, c.metric)
        tests += 1
        detail = "  ".join(f"{h}: {cell}" for h, cell in zip(CHECK_HEADERS, c.cells(), strict=True))
        if c.failed:
            failures += 1
            failure = ET.SubElement(case, "failure", message=c.reason(), type=c.status)
            failure.text = detail
        else:
            ET.SubElement(case, "system-out").text = detail
    if v.ledger is not None and not v.skipped:
        tests += 1
        case = _case(suite, v.variant, "ledger")
        broken = [p.why for p in v.problems if p.code == EXIT_LEDGER]
        if broken or v.ledger != "ok":
            failures += 1
            why = "; ".join(broken) or f"ledger {v.ledger}"
            ET.SubElement(case, "failure", message=why, type="LEDGER").text = why
        else:
            ET.SubElement(case, "system-out").text = f"ledger {v.ledger}"
    for i, p in enumerate(q for q in v.problems if q.code != EXIT_LEDGER):
        tests += 1
        failures += 1
        case = _case(suite, v.variant, f"problem {i + 1} (exit {p.code})")
        ET.SubElement(case, "failure", message=p.why, type="PROBLEM").text = p.why
    ET.SubElement(suite, "system-out").text = v.text()
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return tests, failures, skipped


def junit_xml(evaluation: Evaluation, name: str = CLASS_PREFIX, seconds: float = 0.0) -> str:
    """The evaluation as a JUnit XML document (``<testsuites>`` at the root)."""
    root = ET.Element("testsuites", name=name, time=f"{seconds:.1f}")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    tests = failures = 0
    for v in evaluation.variants:
        t, f, _ = _suite(root, v, stamp)
        tests, failures = tests + t, failures + f
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_junit(path: Path, evaluation: Evaluation, name: str = CLASS_PREFIX) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(evaluation, name) + "\n", encoding="utf-8")
    return path


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown_table(evaluation: Evaluation, title: str, *, verdict: str | None = None) -> str:
    """The evaluation as a markdown table, fit for a pull-request comment.

    ``verdict`` (``compare``'s regression line): only the metrics that have a baseline
    are listed, and that line closes the table instead of the evaluation's.
    """
    compared_only = verdict is not None
    head = ["variant", *CHECK_HEADERS]
    lines = [f"### {_md(title)}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join("---" for _ in head) + "|"]  # fmt: skip
    for v in evaluation.variants:
        for c in v.checks:
            if compared_only and c.baseline is None:
                continue
            cells = c.cells()
            cells[-1] = f"**{cells[-1]}**" if c.failed else cells[-1]
            lines.append("| " + " | ".join(_md(x) for x in [v.variant, *cells]) + " |")
    lines += ["", f"**{_md(verdict or evaluation.line)}**"]
    if verdict is None:
        lines += [f"- {_md(r)}" for r in evaluation.reasons]
    return "\n".join(lines) + "\n"
