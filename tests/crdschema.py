"""Chaos Mesh CRD schemas (tests/data/chaosmesh/, vendored from chaos-mesh/chaos-mesh) and
a checker for what the API server's structural-schema validation would refuse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "chaosmesh"
SCHEMAS = {d["kind"]: d for d in (json.loads(p.read_text()) for p in DATA.glob("*.json"))}


def violations(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """What the API server's structural-schema validation would refuse, with unknown fields
    refused too (``kubectl``'s strict field validation): type, enum, required, bounds,
    properties / additionalProperties, items."""
    out: list[str] = []
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool,
             "number": (int, float)}  # fmt: skip
    if (kind and not isinstance(value, types[kind])) or (
        kind == "integer" and isinstance(value, bool)
    ):
        return [f"{where or '.'}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        out.append(f"{where}: {value} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        out.append(f"{where}: {value} > {schema['maximum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties")
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{where}.{key}: required")
        for key, item in value.items():
            if props is not None and key in props:
                out += violations(item, props[key], f"{where}.{key}")
            elif "additionalProperties" in schema:
                out += violations(item, schema["additionalProperties"], f"{where}.{key}")
            elif props is not None and kind == "object" and where != ".metadata":
                out.append(f"{where}.{key}: unknown field")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += violations(item, schema["items"], f"{where}[{i}]")
    return out
