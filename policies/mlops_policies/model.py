"""The one view of a resource every rule reads, and the rule declarations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["mandatory", "advisory", "disabled"]


@dataclass(frozen=True)
class Resource:
    type: str
    urn: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False
    # property name -> URNs of the resources that property's value came from
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def depends_on(self, prop: str, other: Resource) -> bool:
        return other.urn in self.property_dependencies.get(prop, ())


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


ResourceCheck = Callable[[Resource], Iterable[str]]
StackCheck = Callable[[Sequence[Resource]], Iterable[tuple[str, str]]]
# A check that reads the rule's settings from the environment's pack config.
ConfiguredCheck = Callable[[Resource, Mapping[str, Any]], Iterable[str]]


@dataclass(frozen=True)
class Rule:
    """One control, whatever the cloud. `resource_checks` look at one resource;
    `stack_checks` look at how resources relate (an S3 bucket and the separate
    resources that configure it) and yield (urn, message) pairs."""

    name: str
    description: str
    level: Level
    resource_checks: tuple[ResourceCheck, ...] = ()
    stack_checks: tuple[StackCheck, ...] = ()
    remediation: str = ""
    configured_checks: tuple[ConfiguredCheck, ...] = ()
    # JSON schema properties of the rule's settings in policies/config/<env>.json.
    config_properties: Mapping[str, Any] = field(default_factory=dict)

    def findings(
        self, resources: Sequence[Resource], config: Mapping[str, Any] | None = None
    ) -> Iterable[tuple[str, str]]:
        for check in self.stack_checks:
            yield from check(resources)
        for resource in resources:
            for check in self.resource_checks:
                for message in check(resource):
                    yield resource.urn, message
            for configured in self.configured_checks:
                for message in configured(resource, config or {}):
                    yield resource.urn, message


@dataclass(frozen=True)
class Exemption:
    """A known, reasoned exception to a rule for the resources `applies` selects."""

    id: str
    policy: str
    reason: str
    applies: Callable[[Resource], bool]


def by_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


def configuring(
    resources: Sequence[Resource], target: Resource, config_type: str, prop: str = "bucket"
) -> list[Resource]:
    """Resources of `config_type` whose `prop` points at `target` (by dependency or by name)."""
    name = target.props.get(prop)
    return [
        r
        for r in resources
        if r.type == config_type
        and (r.depends_on(prop, target) or (name is not None and r.props.get(prop) == name))
    ]


def section(props: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested block of inputs as a mapping; a one-element list block counts as
    its element, and anything absent or malformed as empty."""
    found = as_list(props.get(key))
    value = found[0] if found else {}
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """A property that may be one value or many, as a list; absent is empty.
    Under the engine, lists arrive as sequence proxies and mappings as mapping
    proxies, so neither is tested against `list` or `dict`."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]
