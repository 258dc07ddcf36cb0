"""The gateway one way (docs/layout.md): each piece of a request's path defined once, in
the module the path reaches it in, and no module of the path calling back up into one it
came through. Read from the source, like tests/unit/test_layout.py."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("actor_service", "api", "supervise", "load_tests", "benchmarks")


@functools.cache
def project_files() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts): p
        for pkg in SOURCES
        for p in sorted((ROOT / pkg).rglob("*.py"))
    }


@functools.cache
def definitions() -> dict[str, set[str]]:
    """The names of the functions and classes each module defines."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        module: {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, kinds)}
        for module, path in project_files().items()
    }


def defined(name: str) -> list[str]:
    """The modules that define a function or class called ``name``."""
    return sorted(module for module, names in definitions().items() if name in names)


def api_imports(module: str) -> set[str]:
    path = project_files()[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("api"):
            found.add(node.module)
    return found


def test_each_piece_of_the_path_is_defined_once() -> None:
    assert defined("PushpopApp") == defined("ObserveMiddleware") == ["api.asgi"]
    assert defined("read_body") == ["api.request_body"]
    assert defined("build_store") == defined("open_store") == ["actor_service.stores.factory"]
    assert defined("check_store") == ["actor_service.stores.factory"]
    assert defined("CoalescingInvoker") == ["api.coalescer"]


def test_the_deadline_is_set_in_one_place() -> None:
    """The embedded runtime sets a call's deadline; group commit sets its batch's (a task of
    its own). Tests may set it to simulate a caller."""
    setting = sorted(
        module
        for module, path in project_files().items()
        if re.search(r"\bcall_deadline\.set\(", path.read_text())
    )
    assert setting == ["actor_service.runtime.embedded", "actor_service.stores.batching"]


def test_no_module_of_the_path_calls_back_up() -> None:
    """The entry does not import the module that builds it; the invoker interface knows no
    invoker; the runtimes' invokers know no coalescer; the CLI checks ``--store`` with the
    factory's check."""
    assert "api.app" not in api_imports("api.asgi")
    assert api_imports("api.actor_calls") == set()
    for runtime in ("api.invoker", "api.dapr.invoker"):
        assert "api.coalescer" not in api_imports(runtime), runtime
    assert "api.actor_calls" in api_imports("api.coalescer")  # the check sees imports
    assert "check_store" in project_files()["api.cli"].read_text()
