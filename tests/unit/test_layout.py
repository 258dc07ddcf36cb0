"""The layout stays a map: arrows one way, modules a reader can hold.

``actor_service`` (the queue and both actor hosts) imports neither ``api`` nor
``load_tests``; ``api`` (the gateway) does not import ``load_tests``; ``supervise`` (the
child processes) imports none of them; ``benchmarks`` may import them all; inside each, no
import cycle (a package ``__init__``'s imports count); no module over 600 lines. The map
(docs/layout.md): the embedded and the Dapr actor host side by side under
``actor_service/runtime``, ``actor.py`` importing neither, no process started from ``api``.

Why a test: import cycles and thousand-line modules come back one convenient import at a
time; read from the source (no imports, no Locust), this fails on the commit that does it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("actor_service", "api", "benchmarks", "load_tests", "supervise")
# what each package may import of the others: the arrows point one way
MAY_IMPORT = {
    "actor_service": set(),
    "api": {"actor_service", "supervise"},
    "benchmarks": {"actor_service", "api", "load_tests", "supervise"},
    "load_tests": {"actor_service", "api", "supervise"},
    "supervise": set(),
}
MAX_LINES = 600
# Nothing may be over the limit.
OVER_LIMIT_ELSEWHERE: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports anywhere, in functions too.

    ``from load_tests.x import y`` counts as importing ``load_tests.x.y`` when that is a
    module, else ``load_tests.x``. The parent packages Python runs first count too: a
    package ``__init__`` re-exporting its submodules while they import it is a cycle.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in known:
                    found.add(sub)
                elif node.module in known:
                    found.add(node.module)
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return (found | (parents & known)) - {module_name(path)}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    mods = modules()
    graph = {name: imports_of(path, set(mods)) for name, path in mods.items()}
    assert cycles(graph) == []
    # the check sees what it must: the command line uses the runner and the evaluation
    assert {"load_tests.evaluation.verdict", "load_tests.settings"} <= graph["load_tests.cli"]
    # and the packages run before the modules imported from them
    assert "actor_service.stores" in graph["actor_service.stores.postgres"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_packages_import_one_way() -> None:
    mods = modules()
    wrong = []
    for name, path in mods.items():
        pkg = name.split(".")[0]
        for dep in imports_of(path, set(mods)):
            other = dep.split(".")[0]
            if other != pkg and other not in MAY_IMPORT[pkg]:
                wrong.append(f"{name} -> {dep}")
    assert wrong == []
    # the check sees what it must: the gateway reaches the queue
    assert "actor_service.runtime.embedded" in imports_of(mods["api.invoker"], set(mods))


def test_no_module_over_600_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in modules().values()}
    over = {p: n for p, n in sizes.items() if n > MAX_LINES and p not in OVER_LIMIT_ELSEWHERE}
    assert over == {}


def test_scripts_are_thin_entry_points_to_the_cli() -> None:
    """The load plan's script names stay, as a few lines each over ``pushpop-bench``."""
    mods = modules()
    for name, path in mods.items():
        if not name.startswith("load_tests.scripts.") or name == "load_tests.scripts":
            continue
        code = [ln for ln in path.read_text().split('"""')[-1].splitlines() if ln.strip()]
        assert len(code) <= 15, (name, len(code))
        assert imports_of(path, set(mods)) == {"load_tests", "load_tests.cli"}, name


def defined_classes(path: Path) -> set[str]:
    return {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)}


def test_actor_hosts_side_by_side_under_the_runtime() -> None:
    """Both hosts in ``actor_service/runtime``; the state provider and the turn lock
    they share are one module and one class; the gateway holds no actor host."""
    mods = modules()
    known = set(mods)
    hosts = {"actor_service.runtime.embedded", "actor_service.runtime.dapr.host"}
    assert hosts <= known
    for user in ("actor_service.runtime.embedded", "actor_service.runtime.dapr.guard"):
        assert "actor_service.runtime.turns" in imports_of(mods[user], known), user
    for host in hosts:
        assert "actor_service.runtime.store_state" in imports_of(mods[host], known), host
    # one class each, defined once
    where = {
        name: sorted(m for m, p in mods.items() if name in defined_classes(p))
        for name in ("Turn", "_Turn", "StoreStateProvider", "StoreStateReads", "SidecarGuard")
    }
    assert where == {
        "Turn": ["actor_service.runtime.turns"],
        "_Turn": [],
        "StoreStateProvider": ["actor_service.runtime.store_state"],
        "StoreStateReads": ["actor_service.runtime.store_state"],
        "SidecarGuard": ["actor_service.runtime.dapr.guard"],
    }
    # the runtime's docstring promises only modules that exist
    doc = ast.get_docstring(ast.parse(mods["actor_service.runtime"].read_text())) or ""
    promised = {f"actor_service.runtime{m}" for m in re.findall(r":mod:`(\.\w+)`", doc)}
    assert "actor_service.runtime.dapr" in promised and promised <= known
    # the gateway's Dapr side is the client of daprd: no module of api imports the SDK
    sdk = [
        name
        for name, path in mods.items()
        if name.startswith("api.") and any(m.split(".")[0] == "dapr" for m in all_imports(path))
    ]
    assert sdk == []


def test_the_actor_does_not_import_its_hosts() -> None:
    mods = modules()
    deps = imports_of(mods["actor_service.actor"], set(mods))
    assert not {d for d in deps if d.startswith("actor_service.runtime")}, deps
    assert "actor_service.sdk_compat" in deps  # the check sees the actor's imports


def test_no_process_started_from_the_gateway() -> None:
    """Process supervision lives in ``supervise``; the CLI's Dapr launcher uses it."""
    mods = modules()
    gone = {"api.pgserver", "api.ports", "api.testing", "api.dapr.processes",
            "api.dapr.launcher", "api.dapr.build"}  # fmt: skip
    assert gone.isdisjoint(mods)
    spawning = [n for n in mods if n.startswith("api") and "subprocess" in all_imports(mods[n])]
    assert spawning == []
    assert {"supervise.dapr_host", "supervise.pgserver", "supervise.server"} <= set(mods)
    assert "subprocess" in all_imports(mods["supervise.dapr_processes"])  # the check can fail
    assert "supervise.dapr_host" in imports_of(mods["api.dapr.serve"], set(mods))


def all_imports(path: Path) -> set[str]:
    """Every module name ``path`` imports (absolute imports, the project's or not)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found
