"""Stack files as the Pulumi CLI reads them: Pulumi.yaml defaults under the stack's values.

Listing stacks needs only the standard library (CI lists them before installing
anything); reading them needs PyYAML, imported where it is used."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILE = ROOT / "Pulumi.yaml"
STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.-]+)\.yaml$")


def project() -> dict[str, Any]:
    """Pulumi.yaml, parsed once per version of the file (every stack read needs it)."""
    return copy.deepcopy(_project(PROJECT_FILE.read_text()))


@functools.lru_cache(maxsize=4)
def _project(text: str) -> dict[str, Any]:
    import yaml

    # The project's own file: libyaml's parser where PyYAML has it, which is
    # many times faster; stack files keep the pure parser and its error marks.
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def stacks_dir() -> Path:
    return ROOT / project()["stackConfigDir"]


def list_stacks(directory: Path) -> list[str]:
    """Stack names from `<directory>/Pulumi.<stack>.yaml`, sorted."""
    if not directory.is_dir():
        return []
    names = (STACK_FILE.match(p.name) for p in directory.iterdir())
    return sorted(m["stack"] for m in names if m)


# `mlops:cloud: aws` as a stack file writes it: the listing reads the two keys
# that route a stack without a YAML parser, since CI lists stacks first.
_ROUTING = re.compile(
    r"^\s+mlops:(?P<key>cloud|environment):\s*[\"']?(?P<value>[A-Za-z0-9_-]+)[\"']?\s*(#.*)?$"
)


def routing(path: Path) -> dict[str, str]:
    """`{"cloud": ..., "environment": ...}` as far as the file states them."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = _ROUTING.match(line)
        if match:
            found[match["key"]] = match["value"]
    return found


def stack_names() -> list[str]:
    return list_stacks(stacks_dir())


def _qualified(key: str, name: str) -> str:
    return key if ":" in key else f"{name}:{key}"


def project_defaults() -> dict[str, Any]:
    data = project()
    out: dict[str, Any] = {}
    for key, decl in (data.get("config") or {}).items():
        if isinstance(decl, dict) and ("default" in decl or "value" in decl):
            out[_qualified(key, data["name"])] = decl.get("value", decl.get("default"))
        elif not isinstance(decl, dict):
            out[_qualified(key, data["name"])] = decl
    return out


def stack_name(argument: str) -> str:
    """A stack named by its name, its file name (with or without `Pulumi.`) or its path."""
    name = Path(argument).name
    name = name.removesuffix(".yaml") if name.endswith(".yaml") else name
    return name.removeprefix("Pulumi.")


def stack_values(stack: str) -> dict[str, Any]:
    """The stack's config: project defaults, then the stack file's own values."""
    path = stacks_dir() / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(stack_names()) or "none"
        raise FileNotFoundError(f"stacks/Pulumi.{stack}.yaml: no such stack file (stacks: {known})")
    data = _read_stack_file(stack, path)
    _check_top_level(stack, data)
    name = project()["name"]
    values = project_defaults()
    values.update({_qualified(k, name): v for k, v in (data.get("config") or {}).items()})
    _check_representable(stack, values)
    return values


def _check_representable(stack: str, values: dict[str, Any]) -> None:
    """Settings reach the program as JSON; a value YAML reads as a date, a set or
    bytes (unquoted `2026-01-01`, `!!set`, `!!binary`) inside an object is not."""
    from infra.settings import SettingsError, stack_file

    problems = []
    for key, value in values.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError, RecursionError) as error:
            problems.append(
                SettingsError(
                    stack_file(stack),
                    key,
                    f"holds a value settings cannot take ({error}); quote dates and "
                    "use plain lists and mappings",
                )
            )
    if problems:
        raise SettingsError.of(problems)


def _read_stack_file(stack: str, path: Path) -> dict[str, Any]:
    """The file as YAML; a file that is not YAML, or not a mapping, is one line
    naming where it breaks."""
    import yaml

    from infra.settings import SettingsError, stack_file

    try:
        data = yaml.safe_load(path.read_text())
    except RecursionError:
        raise SettingsError(
            stack_file(stack), "(file)", "not valid YAML: nested too deeply"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise SettingsError(stack_file(stack), where, f"not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(
            stack_file(stack),
            "(file)",
            f"expected a mapping with `config:`, got {type(data).__name__}",
        )
    return data


# What a Pulumi stack file may hold at its top level.
TOP_LEVEL_KEYS = ("config", "encryptedkey", "encryptionsalt", "environment", "secretsprovider")


def _check_top_level(stack: str, data: dict[str, Any]) -> None:
    """A misspelt top-level key (`confg:`) is an error naming it, not a missing cloud."""
    from infra.settings import SettingsError, stack_file

    problems = [
        SettingsError(
            stack_file(stack),
            str(key),
            f"unknown top-level key (known: {', '.join(TOP_LEVEL_KEYS)})",
        )
        for key in sorted(data, key=str)
        if key not in TOP_LEVEL_KEYS
    ]
    config = data.get("config")
    if "config" not in data:
        problems.append(SettingsError(stack_file(stack), "config", "is required but missing"))
    elif config is not None and not isinstance(config, dict):
        problems.append(
            SettingsError(
                stack_file(stack),
                "config",
                f"expected a mapping of settings, got {type(config).__name__}",
            )
        )
    else:
        problems += [
            SettingsError(
                stack_file(stack),
                str(key),
                "a setting's name is text, like mlops:cloud, not "
                f"{'nothing' if key is None else type(key).__name__}",
            )
            for key in (config or {})
            if not isinstance(key, str)
        ]
    if problems:
        raise SettingsError.of(problems)


def as_engine_strings(values: dict[str, Any]) -> dict[str, str]:
    """Config reaches a program as strings: objects and lists JSON, booleans lowercase."""

    def encode(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    return {key: encode(value) for key, value in values.items()}
