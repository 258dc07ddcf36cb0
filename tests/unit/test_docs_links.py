"""The README and docs/ hold together: every relative link resolves, the README stays short.

Sections moved from the README into docs/ files by topic; a link to a moved heading or a
renamed file would silently lead nowhere. These tests parse the markdown links of
README.md and docs/*.md and require each relative target file, and its #anchor when the
target is markdown, to exist; and the README to stay a newcomer's page, under 10 KB.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]`]|`[^`]*`)*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def links(text: str) -> list[str]:
    """Targets of ``[text](target)`` and ``![alt](target)`` outside fenced code blocks."""
    return LINK.findall(FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a markdown page, with GitHub's -1, -2 for repeats."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def test_the_parsers_see_links_and_anchors() -> None:
    text = "[a](x.md) ![b](y.png) [`c`](z.md#h) [d](https://e.org)\n```\n[no](no.md)\n```"
    assert links(text) == ["x.md", "y.png", "z.md#h", "https://e.org"]
    assert slug("Service core (`make bench`)") == "service-core-make-bench"
    assert slug("`GET /queues`") == "get-queues"
    assert slug("One embedded host per database; more hosts") == (
        "one-embedded-host-per-database-more-hosts"
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    targets = links(page.read_text())
    assert targets or page.name != "README.md", "the README links nowhere"
    broken: list[str] = []
    for target in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        file = (page.parent / path_part).resolve() if path_part else page
        if ROOT.resolve() not in file.parents and file != ROOT.resolve():
            broken.append(f"{target} (outside the repository)")
        elif not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_readme_is_under_10_kb() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size < 10_000, f"README.md is {size} bytes: move detail into docs/"


def test_readme_commands_are_the_makefiles_and_ci_runs_make_test() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block, "README has no command block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "`.ci/run` calls" in readme
