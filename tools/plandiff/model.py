"""A plan as the diff reads it: resources, changes, findings and the
markers of `pulumi preview --json`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.plandiff.costs import CostChange

REPO_ROOT = Path(__file__).resolve().parents[2]
# The pseudo-property of a resource renamed with an alias: its state moves, the
# cloud resource stays as it is.
RENAMED = "(name, by alias)"

# Markers in `pulumi preview --json` output.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")
REPLACE_OPS = frozenset({"replace", "create-replacement", "delete-replaced"})
DELETE_OPS = frozenset({"delete", "delete-replaced", "discard", "discard-replaced"})
IGNORED_OPS = frozenset({"read", "read-replacement", "refresh"})
VALUE_WIDTH = 80


class _Missing:
    """A property absent on one side of a diff (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- model -------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    parent: str
    protect: bool
    inputs: Mapping[str, Any]
    # retainOnDelete: leaving the stack only forgets it; the cloud keeps it.
    retained: bool = False
    # Input property -> URNs of the resources its value came from.
    sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # URNs the resource was known by before: renamed with an alias, not replaced.
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class PropertyDiff:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    before: Resource
    after: Resource
    properties: tuple[PropertyDiff, ...]
    replace_reasons: tuple[str, ...]

    @property
    def replaces(self) -> bool:
        return bool(self.replace_reasons)

    @property
    def protect_flip(self) -> bool:
        return self.before.protect != self.after.protect


@dataclass(frozen=True)
class Finding:
    """A WARNING: something a reviewer must look at before merging."""

    urn: str
    type: str
    message: str

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    message: str
    urn: str


STATUS_CHANGED = "changed"
STATUS_UNCHANGED = "no changes"
STATUS_NEW = "new stack"
STATUS_REMOVED = "stack file removed"
STATUS_BASE_FAILED = "base plan failed"
STATUS_HEAD_FAILED = "plan failed"


@dataclass(frozen=True)
class StackDiff:
    stack: str
    status: str
    resources: int
    added: tuple[Resource, ...] = ()
    removed: tuple[Resource, ...] = ()
    changed: tuple[Change, ...] = ()
    warnings: tuple[Finding, ...] = ()
    violations: tuple[Violation, ...] = ()
    detail: str = ""
    # The monthly cost from base to head; None where the head has no cost figures.
    cost: CostChange | None = None

    def count(self, level: str) -> int:
        return sum(1 for v in self.violations if v.level == level)

    @property
    def comparable(self) -> bool:
        return self.status not in (STATUS_BASE_FAILED, STATUS_HEAD_FAILED, STATUS_REMOVED)


# --- reading plans -------------------------------------------------------------


def _resource(state: Mapping[str, Any]) -> Resource:
    return Resource(
        urn=str(state.get("urn", "")),
        type=str(state.get("type", "")),
        parent=str(state.get("parent", "")),
        protect=bool(state.get("protect", False)),
        inputs=state.get("inputs") or {},
        retained=bool(state.get("retainOnDelete", False)),
        sources={
            prop: tuple(urns) for prop, urns in (state.get("propertyDependencies") or {}).items()
        },
        aliases=tuple(state.get("aliases") or ()),
    )


def _steps(plan: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(plan.get("steps") or [])


def is_preview(plan: Mapping[str, Any]) -> bool:
    """True for a real `pulumi preview --json` against existing state.

    An offline plan (and a preview of an empty stack) only creates; anything
    else carries its own before-state, so the ops say what changes.
    """
    return any(s.get("op") != "create" or "oldState" in s for s in _steps(plan))


def plan_resources(plan: Mapping[str, Any]) -> dict[str, Resource]:
    """The resources a plan ends with, by URN."""
    found: dict[str, Resource] = {}
    for step in _steps(plan):
        op = step.get("op")
        if op in IGNORED_OPS or op in DELETE_OPS or not step.get("newState"):
            continue
        found[step["urn"]] = _resource(step["newState"])
    return found


@dataclass(frozen=True)
class _PreviewFacts:
    before: dict[str, Resource]
    after: dict[str, Resource]
    replace: dict[str, tuple[str, ...]]
    paths: dict[str, tuple[str, ...]]


def _preview_facts(plan: Mapping[str, Any]) -> _PreviewFacts:
    """Before/after states and the engine's own replace decisions."""
    facts = _PreviewFacts({}, {}, {}, {})
    reasons: dict[str, set[str]] = {}
    for step in _steps(plan):
        op, urn = step.get("op"), step.get("urn", "")
        if op in IGNORED_OPS:
            continue
        if step.get("oldState"):
            facts.before[urn] = _resource(step["oldState"])
        if op not in DELETE_OPS and step.get("newState"):
            facts.after[urn] = _resource(step["newState"])
        detailed = step.get("detailedDiff") or {}
        if op in REPLACE_OPS:
            forced = [p for p, d in detailed.items() if str(d.get("kind", "")).endswith("replace")]
            reasons.setdefault(urn, set()).update(step.get("replaceReasons") or forced)
        if step.get("diffReasons") or detailed:
            facts.paths[urn] = tuple(sorted(set(step.get("diffReasons") or []) | set(detailed)))
    for urn, found in reasons.items():
        facts.replace[urn] = tuple(sorted(found)) or ("provider requires replacement",)
    return facts


def plan_violations(plan: Mapping[str, Any]) -> tuple[Violation, ...]:
    found = [
        Violation(
            policy=str(v.get("policyName", "")),
            level=str(v.get("enforcementLevel", "advisory")),
            message=str(v.get("message", "")),
            urn=str(v.get("urn", "")),
        )
        for v in plan.get("policyViolations") or []
    ]
    return tuple(sorted(found, key=lambda v: (v.level != "mandatory", v.policy, v.urn, v.message)))


def code(text: str) -> str:
    """Inline code that survives backticks in the text (Markdown fences)."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]
