"""Stack files conform to Pulumi.yaml's declared config types, as the CLI would check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import stackfiles

ROOT = Path(__file__).resolve().parent.parent
PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool, "array": list}


def _declared() -> dict[str, dict[str, Any]]:
    return stackfiles.project()["config"]


def _conforms(value: Any, declaration: dict[str, Any]) -> bool:
    kind = declaration.get("type")
    if kind is None:
        # Untyped (object) keys: the schema has no object type; infra/settings checks the rest.
        return isinstance(value, dict)
    if kind == "integer" and isinstance(value, bool):
        return False
    if not isinstance(value, PYTHON_TYPES[kind]):
        return False
    return kind != "array" or all(_conforms(v, declaration["items"]) for v in value)


def test_project_file_matches_the_design() -> None:
    project = stackfiles.project()
    assert project["name"] == "mlops"
    assert project["runtime"]["name"] == "python"
    assert project["main"] == "infra/"
    assert project["stackConfigDir"] == "stacks"
    for key, declaration in _declared().items():
        assert key.startswith("mlops:"), key
        assert declaration.get("description"), f"{key} has no description"
        assert declaration.get("type", "string") in PYTHON_TYPES, key


def test_every_settings_key_is_declared() -> None:
    from infra.settings import ProjectSettings

    model_keys = {f"mlops:{f.alias}" for f in ProjectSettings.model_fields.values()}
    assert set(_declared()) == model_keys


@pytest.mark.parametrize("stack", stackfiles.stack_names())
def test_stack_file_conforms_to_declared_types(stack: str) -> None:
    config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    declared = _declared()
    for key, value in config.items():
        if not key.startswith("mlops:"):
            continue
        assert key in declared, f"{stack}: {key} is not declared in Pulumi.yaml"
        assert _conforms(value, declared[key]), f"{stack}: {key} does not match {declared[key]}"


def test_conformance_check_can_fail() -> None:
    assert not _conforms("yes", {"type": "boolean"})
    assert not _conforms(True, {"type": "integer"})
    assert not _conforms(["a", 1], {"type": "array", "items": {"type": "string"}})
    assert not _conforms("raw", {"description": "object"})
    assert _conforms(["a"], {"type": "array", "items": {"type": "string"}})
