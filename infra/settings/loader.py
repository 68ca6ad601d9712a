"""`load`: a stack's flat Pulumi config to `PlatformSettings`, every problem
of the file reported at once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import (
    ValidationError,
)

from infra.settings.checks import (
    _check_cloud_support,
    _check_gcp_project,
    _check_namespaces,
    _check_region,
)
from infra.settings.errors import NAMESPACE, SettingsError, stack_file
from infra.settings.fields import Model
from infra.settings.models import (
    PROVIDER_NAMESPACES,
    REGION_KEYS,
    PlatformSettings,
    ProjectSettings,
)
from infra.settings.pools import check_pool_region


def _decode(value: Any) -> Any:
    """Config values reach a program as strings; objects and lists JSON-encoded."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = f"{NAMESPACE}{loc[0]}"
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed beside the unknown one at `loc`, for the error message."""
    model: Any = ProjectSettings
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, Model)):
            return []
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        model = field.annotation
    if not (isinstance(model, type) and issubclass(model, Model)):
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _problem(error: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc)
        return f"unknown key (known keys: {', '.join(known)})" if known else "unknown key"
    if kind == "missing":
        return "is required but missing"
    if kind in ("model_type", "dict_type"):
        return f"expected a mapping of settings, got {error.get('input')!r}"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if "input" in error and kind not in ("model_type", "dict_type"):
        shown = error["input"]
        if isinstance(shown, str | int | float | bool) and repr(shown) not in message:
            message = f"{shown!r}: {message}"
    return message


def _all_errors(exc: ValidationError, stack: str) -> list[SettingsError]:
    found = []
    for error in sorted(exc.errors(), key=lambda e: tuple(str(p) for p in e["loc"])):
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        key = _key_path(loc) if loc else f"{NAMESPACE}*"
        found.append(SettingsError(stack_file(stack), key, _problem(error, loc)))
    return found


def load(stack: str, values: Mapping[str, Any]) -> PlatformSettings:
    """Validate a stack's flat config (`{"mlops:lake": "...json...", "aws:region": ...}`).

    Every problem of the file is reported at once, one line each (`SettingsError`)."""
    own = {
        key[len(NAMESPACE) :]: _decode(v) for key, v in values.items() if key.startswith(NAMESPACE)
    }
    problems: list[SettingsError] = []
    project: ProjectSettings | None = None
    try:
        project = ProjectSettings.model_validate(own)
    except ValidationError as exc:
        problems += _all_errors(exc, stack)
    cloud = project.cloud if project else own.get("cloud")
    if not isinstance(cloud, str) or cloud not in PROVIDER_NAMESPACES:
        cloud = None
    problems += _check_namespaces(stack, cloud, values)
    region_problems = list(_check_region(stack, cloud, values)) if cloud is not None else []
    problems += region_problems
    if cloud is not None:
        problems += _check_gcp_project(stack, cloud, values)
    if project is not None:
        problems += _check_cloud_support(stack, project.cloud, project)
        if project.cloud == "aws" and not region_problems:
            # Only in a region that exists: else the region's own line says it all.
            for name, pool in sorted(project.accelerator_pools.items()):
                problems += check_pool_region(stack, str(values["aws:region"]), name, pool)
    if problems:
        raise SettingsError.of(problems)
    assert project is not None  # no problem means the model validated
    return PlatformSettings(
        stack=stack,
        stack_file=stack_file(stack),
        region=str(values[REGION_KEYS[project.cloud]]),
        gcp_project=str(values["gcp:project"]) if project.cloud == "gcp" else None,
        # The validated objects themselves: validators run once, on the stack file's keys.
        **{field: getattr(project, field) for field in ProjectSettings.model_fields},
    )
