"""terraform/ parsed with python-hcl2 into plain dicts, for structural tests."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from tests.deploy.tools import TERRAFORM

_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


@dataclass
class Config:
    """Every block of the configuration, merged across files."""

    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[kind][name]

    def all_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.resources.get(kind, {})


def _merge_typed(into: dict[str, dict[str, dict[str, Any]]], blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        for kind, named in block.items():
            for name, body in named.items():
                assert name not in into.setdefault(kind, {}), f"{kind}.{name} declared twice"
                into[kind][name] = body


@functools.cache
def load() -> Config:
    """Parse every terraform/*.tf once per test session."""
    config = Config()
    for path in sorted(TERRAFORM.glob("*.tf")):
        text = path.read_text()
        config.files[path.name] = text
        parsed = hcl2.loads(text, serialization_options=_OPTIONS)
        _merge_typed(config.resources, parsed.get("resource", []))
        _merge_typed(config.data, parsed.get("data", []))
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        for block in parsed.get("locals", []):
            for key in block:
                assert key not in config.locals, f"local.{key} declared twice"
            config.locals.update(block)
        config.terraform.extend(parsed.get("terraform", []))
    return config


def first(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The first nested block called `name` (hcl2 gives nested blocks as lists)."""
    value = body[name]
    return value[0] if isinstance(value, list) else value
