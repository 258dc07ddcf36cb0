"""Offline JSON schemas for ``kubeconform``, so ``deploy/k8s`` validates without a network.

kubeconform downloads its schemas from GitHub; where that is not reachable, this script
builds the same "standalone strict" schemas from two sources found in the Go module
cache (both fetched through the Go module proxy):

* Kubernetes' OpenAPI v2 document, ``api/openapi-spec/swagger.json`` of the module
  ``k8s.io/kubernetes`` (built-in kinds: Deployment, Service, PodDisruptionBudget, ...);
* Dapr's CRDs, ``charts/dapr/crds/*.yaml`` of ``github.com/dapr/dapr`` (Component,
  Configuration, Resiliency, ...).

Usage::

    python deploy/k8s/kubeconform_schemas.py OUT_DIR [--swagger FILE] [--dapr-crds DIR]
    kubeconform -strict -summary \\
        -schema-location 'OUT_DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json' deploy/k8s

"Strict" (as kubeconform's own schemas): every object schema with properties gets
``additionalProperties: false``, so a misspelt field is an error.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path
from typing import Any

import yaml

GOMODCACHE = Path(os.environ.get("GOMODCACHE") or Path.home() / "go" / "pkg" / "mod")


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and out.get("type", "object") == "object":
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


NUMBER_OR_STRING = {"type": ["string", "number"]}


def _inline(schema: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Resolve ``#/definitions/...`` refs in place (recursive types stay open).

    ``IntOrString`` and ``Quantity`` are strings in the OpenAPI document but accept
    numbers in manifests (``maxSurge: 1``, ``cpu: 1``), as kubeconform's own schemas do.
    """
    if isinstance(schema, dict):
        if schema.get("format") == "int-or-string":
            return dict(NUMBER_OR_STRING)
        ref = schema.get("$ref")
        if isinstance(ref, str):  # (JSONSchemaProps also has a *property* named $ref)
            name = ref.rsplit("/", 1)[-1]
            if name in seen:  # e.g. JSONSchemaProps: allow anything below
                return {}
            if name.endswith(".resource.Quantity"):
                return dict(NUMBER_OR_STRING)
            return _inline(copy.deepcopy(defs[name]), defs, (*seen, name))
        return {k: _inline(v, defs, seen) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, defs, seen) for v in schema]
    return schema


def _kind_suffix(group: str, version: str) -> str:
    """kubeconform's ``{{ .KindSuffix }}``: ``-{first label of group}-{version}``."""
    return f"-{group.split('.')[0]}-{version}" if group else f"-{version}"


def from_swagger(swagger: Path, out: Path) -> int:
    defs = json.loads(swagger.read_text())["definitions"]
    n = 0
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            full = _strict(_inline(copy.deepcopy(schema), defs, (name,)))
            path = out / f"{gvk['kind'].lower()}{_kind_suffix(gvk['group'], gvk['version'])}.json"
            path.write_text(json.dumps(full))
            n += 1
    return n


def from_crds(crd_dir: Path, out: Path) -> int:
    n = 0
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group = crd["spec"]["group"]
            kind = crd["spec"]["names"]["kind"]
            for ver in crd["spec"]["versions"]:
                schema = ver.get("schema", {}).get("openAPIV3Schema")
                if schema is None:
                    continue
                name = f"{kind.lower()}{_kind_suffix(group, ver['name'])}.json"
                (out / name).write_text(json.dumps(_strict(schema)))
                n += 1
    return n


def default_swagger() -> Path | None:
    found = sorted(GOMODCACHE.glob("k8s.io/kubernetes@v*/api/openapi-spec/swagger.json"))
    return found[-1] if found else None


def default_dapr_crds() -> Path | None:
    found = sorted(GOMODCACHE.glob("github.com/dapr/dapr@v*/charts/dapr/crds"))
    return found[-1] if found else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--swagger", type=Path, default=None)
    p.add_argument("--dapr-crds", type=Path, default=None)
    args = p.parse_args()
    swagger = args.swagger or default_swagger()
    crds = args.dapr_crds or default_dapr_crds()
    if swagger is None or crds is None:
        raise SystemExit(
            "need Kubernetes' swagger.json and Dapr's CRDs: GOSUMDB=off go mod download "
            "k8s.io/kubernetes@v1.32.4 (no checksum entry for it), scripts/build_dapr.sh"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    n = from_swagger(swagger, args.out) + from_crds(crds, args.out)
    print(f"{n} schemas in {args.out} (from {swagger} and {crds})")


if __name__ == "__main__":
    main()
