"""The HTML pieces every page shares: style, number formatting, tables, images, verdicts.

Why self-contained pages: a report is mailed, attached to a pull request or opened from
CI artifacts; every plot is a base64 PNG inside the page, and the same PNGs are also
written to ``plots/`` next to it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from load_tests.evaluation.check import CHECK_HEADERS, Check
from load_tests.evaluation.verdict import Evaluation, VariantEvaluation

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#1d2329;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #dde;
padding-bottom:.2em}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #d5d9de;padding:3px 8px;text-align:right}th{background:#f3f5f7}
td.l,th.l{text-align:left}.verdict{font-size:1.15em;padding:.6em 1em;border-radius:6px;
margin:.8em 0}.PASS{background:#e3f5e5;border:1px solid #7bc47f}.FAIL{background:#fde8e8;
border:1px solid #e08080}.SKIP{background:#f3f3f3;border:1px solid #bbb}
.warn{background:#fff6e0;border-left:4px solid #f0b400;padding:.4em .8em;margin:.3em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.muted{color:#667}
code{background:#f3f5f7;padding:0 3px;border-radius:3px}
"""


# --------------------------------------------------------------------------- html helpers


def esc(x: Any) -> str:
    return html.escape(str(x))


def fmt(x: Any, digits: int = 3) -> str:
    """Numbers for people: thousands separators, no exponents, ~3 significant digits."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        a = abs(x)
        if a >= 100 or x == int(x):
            return f"{x:,.0f}"
        if a >= 10:
            return f"{x:.1f}"
        if a >= 0.01:
            return f"{x:.{digits}g}"
        return f"{x:.2e}" if x else "0"
    return esc(x)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    head = "".join(
        f"<th class='{'l' if i < left else ''}'>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f"<td class='{'l' if i < left else ''}'>{c if isinstance(c, Raw) else fmt(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


class Raw(str):
    """Already-escaped HTML for a table cell."""


def png(fig: Figure, plots_dir: Path | None, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    if plots_dir is not None:
        plots_dir.mkdir(parents=True, exist_ok=True)
        (plots_dir / f"{name}.png").write_bytes(data)
    return f"<img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'>"


def page(title: str, body: str) -> str:
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}"
        f"<p class='muted'>generated {now} by pushpop-bench</p></body></html>"
    )


def verdict_html(verdict: VariantEvaluation | Evaluation | None) -> str:
    """The verdict box and, under it, every metric next to its limit and its baseline."""
    if verdict is None:
        return ""
    reasons = "".join(f"<li>{esc(r)}</li>" for r in verdict.reasons)
    box = (
        f"<div class='verdict {esc(verdict.status)}'><b>{esc(verdict.line)}</b>"
        f"{f'<ul>{reasons}</ul>' if reasons else ''}</div>"
    )
    if isinstance(verdict, Evaluation):
        rows = [[v.variant, *_status_cells(c)] for v in verdict.variants for c in v.checks]
        headers = ["variant", *CHECK_HEADERS]
        summary = f"checks of every variant ({len(rows)})"
        if verdict.baseline:
            summary += f" against the baseline {verdict.baseline}"
        details = f"<summary>{esc(summary)}</summary>{table(headers, rows, 2)}"
        return box + f"<details>{details}</details>"
    rows = [_status_cells(c) for c in verdict.checks]
    return box + (table(CHECK_HEADERS, rows) if rows else "")


def _status_cells(check: Check) -> list[Any]:
    cells: list[Any] = list(check.cells())
    css = "FAIL" if check.failed else "PASS"
    cells[-1] = Raw(f"<b class='{css}'>{esc(cells[-1])}</b>")
    return cells
