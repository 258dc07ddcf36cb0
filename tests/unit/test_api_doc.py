"""docs/api.md against what the server serves and what the code can answer.

Three sources must agree: the OpenAPI document the app builds, the error codes the
source code can put in an error body, and the reference a user reads. The codes are
found by reading the source (not from a list kept here), so a new code anywhere in
``api/`` or ``actor_service/`` fails this test until it is documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from actor_service import errors
from api.app import create_app
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "api.md").read_text()
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Z]{5,}$")
HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (\S+)`\s*$", re.M)


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings(store="memory")).openapi()


def sections() -> dict[tuple[str, str], str]:
    """``(method, path)`` -> the text of its ``###`` section."""
    marks = list(HEADING.finditer(DOC))
    out = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(DOC)
        out[(m.group(1), m.group(2))] = DOC[m.end() : end].split("\n## ")[0]
    return out


def served(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): op
        for path, ops in openapi["paths"].items()
        for method, op in ops.items()
    }


def test_every_served_endpoint_is_documented_and_nothing_else(openapi: dict[str, Any]) -> None:
    ops, documented = set(served(openapi)), set(sections())
    assert ops - documented == set(), "served but not in docs/api.md"
    assert documented <= ops, "in docs/api.md but not served"


def test_each_endpoint_documents_its_statuses_and_parameters(openapi: dict[str, Any]) -> None:
    docs = sections()
    for key, op in served(openapi).items():
        text = docs[key]
        for status in op.get("responses", {}):
            assert re.search(rf"`{status}\b", text), f"{key}: status {status} not documented"
        for p in op.get("parameters", []):
            if p["in"] == "query":
                assert f"`{p['name']}`" in text, f"{key}: query parameter {p['name']}"


def test_every_schema_field_is_documented(openapi: dict[str, Any]) -> None:
    fields = set()
    for schema in openapi["components"]["schemas"].values():
        fields |= set(schema.get("properties", {}))
    missing = sorted(f for f in fields if f'"{f}"' not in DOC and f"`{f}`" not in DOC)
    assert not missing, f"fields not in docs/api.md: {missing}"


# --------------------------------------------------------------------------- error codes


def _constants(node: ast.AST) -> set[str]:
    return {
        n.value
        for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and CODE.match(n.value)
    }


def _code_parameters(trees: list[ast.Module]) -> dict[str, int]:
    """Callables with a parameter named ``code`` -> its positional index (self excluded)."""
    out: dict[str, int] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for f in node.body:
                    if isinstance(f, ast.FunctionDef) and f.name == "__init__":
                        names = [a.arg for a in f.args.args][1:]
                        if "code" in names:
                            out[node.name] = names.index("code")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in node.args.args]
                names = names[1:] if names[:1] in (["self"], ["cls"]) else names
                if "code" in names and node.name != "__init__":
                    out[node.name] = names.index("code")
    return out


def emitted_codes() -> set[str]:
    """Every SNAKE_CASE string the source puts where an error code goes.

    That is: assigned to a ``code`` name or attribute, the value of a ``"code"`` key,
    a ``code=`` keyword, the ``code`` argument of any function or class taking one,
    or the second element of a ``(status, code, ...)`` tuple with a 4xx/5xx status.
    """
    files = [p for d in ("api", "actor_service") for p in sorted((ROOT / d).rglob("*.py"))]
    trees = [ast.parse(p.read_text(), str(p)) for p in files]
    takes = _code_parameters(trees)
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(getattr(t, "id", getattr(t, "attr", None)) == "code" for t in targets):
                    found |= _constants(node.value)
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == "code":
                        found |= _constants(v)
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
                status, code = node.elts[:2]
                if isinstance(status, ast.Constant) and isinstance(status.value, int):
                    if 400 <= status.value < 600:
                        found |= _constants(code)
            elif isinstance(node, ast.Call):
                f = node.func
                name = getattr(f, "id", getattr(f, "attr", None))
                for kw in node.keywords:
                    if kw.arg == "code":
                        found |= _constants(kw.value)
                if name in takes and len(node.args) > takes[name]:
                    found |= _constants(node.args[takes[name]])
    return found


def documented_codes() -> dict[str, str]:
    """The error-code table: code -> status as written (``400``, ``4xx``)."""
    return dict(
        (code, status)
        for status, code in re.findall(r"^\| (\d{3}|\dxx) \| `([A-Z_]+)` \|", DOC, re.M)
    )


def test_every_code_the_source_can_emit_is_documented() -> None:
    found = emitted_codes()
    # the scanner must keep finding the codes of each mechanism, or it proves nothing
    assert {"INVALID_ITEM", "INVALID_DEPTH", "LOCK_EXPIRED", "STATE_CORRUPT",
            "REQUEST_TIMEOUT", "NOT_FOUND", "HTTP_ERROR", "URI_TOO_LONG",
            "UNSUPPORTED_MEDIA_TYPE", "INSUFFICIENT_STORAGE"} <= found  # fmt: skip
    table = documented_codes()
    missing = sorted(found - set(table))
    assert not missing, f"error codes the code can send, missing from docs/api.md: {missing}"


def _subclasses(cls: type) -> list[type]:
    return [c for s in cls.__subclasses__() for c in (s, *_subclasses(s))]


def test_documented_statuses_match_the_error_classes() -> None:
    table = documented_codes()
    for cls in _subclasses(errors.PushpopError):
        if "code" in vars(cls):
            assert table.get(cls.code) == str(cls.status), f"{cls.code}: {cls.status}"
    assert table["STATE_CORRUPT"] == "500" and "/repair" in DOC


def test_readme_links_stay_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)]+)\)", readme)
    outside = [t for t in targets if t.startswith(("../", "/")) or "shared/API.md" in t]
    assert not outside, f"README links outside the repository: {outside}"
    assert "(docs/api.md)" in readme
    for t in targets:
        if not re.match(r"[a-z]+://|#", t):
            assert (ROOT / t.split("#")[0]).exists(), f"README links to a missing file: {t}"


# ---------------------------------------------------------------------- OpenAPI soundness
def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_ref_of_the_openapi_document_resolves(openapi: dict[str, Any]) -> None:
    """``#/components/schemas/PushEntry`` was referenced by the push body and not defined."""
    refs = _refs(openapi)
    assert "#/components/schemas/ErrorBody" in refs  # the walk finds refs at all
    for ref in sorted(set(refs)):
        assert ref.startswith("#/"), ref
        node: Any = openapi
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_queue_id_parameters_carry_the_contract_pattern(openapi: dict[str, Any]) -> None:
    """A fuzzer reading the document must not generate ids the service refuses (400)."""
    seen = 0
    for path, ops in openapi["paths"].items():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] == "queue_id":
                    seen += 1
                    schema = param["schema"]
                    assert (schema.get("minLength"), schema.get("maxLength")) == (1, 128), path
                    pattern = re.compile(schema["pattern"])
                    for good in ("a", "Q" * 128, "a.b_c:d-e"):
                        assert pattern.search(good), (path, good)
                    for bad in ("a b", "a/b", "é", "a|b"):
                        assert not pattern.search(bad), (path, bad)
    assert seen >= 7


async def test_a_405_allows_every_method_of_its_path(openapi: dict[str, Any]) -> None:
    """``OPTIONS /queue/x`` answered ``allow: GET`` though ``DELETE`` is served too:
    Starlette names only the first route of a path. Every method of each path now."""
    import httpx

    app = create_app(Settings(store="memory"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for path, ops in openapi["paths"].items():
                url = re.sub(r"\{[^}]+\}", "x", path)
                r = await c.request("OPTIONS", url)
                assert r.status_code == 405, (url, r.status_code)
                assert r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
                allowed = {m.strip() for m in r.headers["allow"].split(",")}
                assert {m.upper() for m in ops} <= allowed, (url, allowed)
                assert "OPTIONS" not in allowed
