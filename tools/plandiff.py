"""Plan diff: what a change does to every stack, compared with a base revision.

Run from the repository root:

    python -m tools.plandiff --base origin/main [--stack NAME ...] [--out build/plan-diff]
    python -m tools.plandiff --list-stacks [--env dev|staging|prod]

`--base` plans REV in a detached git worktree under the out dir and the working
tree in place (both with `python -m tools.plan`), then writes `<out>/report.md`,
the pull-request report, and prints one summary line per stack. Exit status: 0,
or 1 when the working tree has a mandatory policy violation or a stack it cannot
plan, or 2 for a usage error (unknown revision or stack).

`--list-stacks` prints the stacks as a JSON list of {"stack", "cloud", "env"}
objects, the matrix that the preview and deploy workflows run on.

`diff_plans` and `render_report` are pure functions of plan dicts (the shape of
`pulumi preview --json`), so a real preview works as well as an offline plan;
everything that touches git or subprocesses sits at the bottom of this file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.stackfiles import list_stacks, routing, stack_name

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOUDS = ("aws", "gcp", "azure")
# In deploy order: each wave deploys only after the one before it succeeded.
ENVIRONMENTS = ("dev", "staging", "prod")

# Properties whose change makes the provider delete and recreate the resource.
# Offline plans carry no provider diff, so this table stands in for it. Sources:
# ForceNew in the upstream Terraform schemas (pulumi-aws and pulumi-gcp are built
# on them); for azure-native, the ARM URL path segments plus properties ARM
# refuses to update. `kind` on a storage account only upgrades in place from
# Storage to StorageV2; any other change needs a new account, so every change is
# flagged. Paths may be nested (`versionTemplate.protectionLevel`).
REPLACE_ON_CHANGE: Mapping[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:kms/key:Key": (
        "customKeyStoreId",
        "customerMasterKeySpec",
        "keyUsage",
        "multiRegion",
        "xksKeyId",
    ),
    "aws:ecr/repository:Repository": ("encryptionConfigurations", "name"),
    # Not stateful, but a model version ships as their replacement; listed so
    # the plan diff shows it. A SageMaker model and endpoint configuration are
    # immutable (every input forces a new one); an endpoint only updates.
    "aws:sagemaker/model:Model": (
        "containers",
        "enableNetworkIsolation",
        "executionRoleArn",
        "inferenceExecutionConfig",
        "name",
        "primaryContainer",
        "vpcConfig",
    ),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "asyncInferenceConfig",
        "dataCaptureConfig",
        "kmsKeyArn",
        "name",
        "namePrefix",
        "productionVariants",
        "shadowProductionVariants",
    ),
    "aws:sagemaker/endpoint:Endpoint": ("name",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix"),
    "gcp:storage/bucket:Bucket": ("location", "name", "project"),
    "gcp:kms/keyRing:KeyRing": ("location", "name", "project"),
    "gcp:kms/cryptoKey:CryptoKey": (
        "importOnly",
        "keyRing",
        "name",
        "purpose",
        "skipInitialVersionCreation",
        "versionTemplate.protectionLevel",
    ),
    "gcp:artifactregistry/repository:Repository": (
        "format",
        "kmsKeyName",
        "location",
        "mode",
        "project",
        "repositoryId",
    ),
    "azure-native:storage:StorageAccount": (
        "accountName",
        "isHnsEnabled",
        "kind",
        "location",
        "resourceGroupName",
    ),
    "azure-native:storage:BlobContainer": ("accountName", "containerName", "resourceGroupName"),
    "azure-native:containerregistry:Registry": ("location", "registryName", "resourceGroupName"),
    "azure-native:keyvault:Vault": ("location", "resourceGroupName", "vaultName"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName",),
    "azure-native:resources:ResourceGroup": ("location", "resourceGroupName"),
    "azure-native:keyvault:Key": ("keyName", "resourceGroupName", "vaultName"),
    "azure-native:operationalinsights:Workspace": (
        "location",
        "resourceGroupName",
        "workspaceName",
    ),
    "azure-native:machinelearningservices:Registry": (
        "location",
        "registryName",
        "resourceGroupName",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "location",
        "resourceGroupName",
        "resourceName",
    ),
    "azure-native:machinelearningservices:Workspace": (
        "keyVault",
        "location",
        "resourceGroupName",
        "storageAccount",
        "workspaceName",
    ),
}

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


# --- property diff -------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _child(path: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def _json_document(value: Any) -> Any:
    """The parsed object or array a string holds (an IAM policy, say), else None."""
    if not isinstance(value, str) or value[:1] not in ("{", "["):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def diff_values(old: Any, new: Any, path: str = "") -> list[PropertyDiff]:
    """Leaf-level differences between two JSON values, with readable paths.

    Secrets are compared whole and never descended into, so a path or value
    inside one cannot reach the report. Strings holding JSON documents (policy
    documents) are compared as documents: a one-word change in a policy shows
    as that word, not as two long strings.
    """
    if isinstance(old, dict) and isinstance(new, dict) and not (_is_secret(old) or _is_secret(new)):
        found: list[PropertyDiff] = []
        for key in sorted(set(old) | set(new)):
            found += diff_values(old.get(key, MISSING), new.get(key, MISSING), _child(path, key))
        return found
    if isinstance(old, list) and isinstance(new, list):
        found = []
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else MISSING
            after = new[index] if index < len(new) else MISSING
            found += diff_values(before, after, f"{path}[{index}]")
        return found
    # `type` too: JSON true and 1 are different values, Python's == says equal.
    if type(old) is type(new) and old == new:
        return []
    documents = _json_document(old), _json_document(new)
    if None not in documents:
        return diff_values(*documents, path)
    return [PropertyDiff(path, old, new)]


def forced_replacements(type_: str, paths: Sequence[str]) -> tuple[str, ...]:
    """The changed paths that make `type_` replace, per REPLACE_ON_CHANGE."""
    keys = REPLACE_ON_CHANGE.get(type_, ())
    hits = {
        key
        for key in keys
        for path in paths
        if path == key or path.startswith((f"{key}.", f"{key}["))
    }
    return tuple(sorted(hits))


# --- comparison ------------------------------------------------------------------


def _compare(
    before: Mapping[str, Resource],
    after: Mapping[str, Resource],
    facts: _PreviewFacts | None,
) -> tuple[tuple[Resource, ...], tuple[Resource, ...], tuple[Change, ...]]:
    # An alias carries a resource across a rename: compare it with its old self.
    renamed = {
        urn: alias
        for urn in set(after) - set(before)
        for alias in after[urn].aliases
        if alias in before and alias not in after
    }
    added = tuple(after[u] for u in sorted(set(after) - set(before) - set(renamed)))
    removed = tuple(before[u] for u in sorted(set(before) - set(after) - set(renamed.values())))
    changed = []
    pairs = {urn: urn for urn in set(before) & set(after)} | renamed
    for urn in sorted(pairs):
        old, new = before[pairs[urn]], after[urn]
        props = tuple(diff_values(dict(old.inputs), dict(new.inputs)))
        if old.urn != new.urn:
            props = (PropertyDiff(RENAMED, old.name, new.name), *props)
        if facts is not None and not props and urn in facts.paths:
            # The engine saw a difference the inputs do not show (an output or
            # a provider-side default): keep its paths so the change is visible.
            props = tuple(PropertyDiff(p, MISSING, MISSING) for p in facts.paths[urn])
        if facts is not None:
            reasons = facts.replace.get(urn, ())
        else:
            reasons = forced_replacements(new.type, [p.path for p in props])
        if props or reasons or old.protect != new.protect:
            changed.append(Change(old, new, props, reasons))
    if facts is None:
        changed = _cascade(before, after, pairs, changed)
    return added, removed, tuple(changed)


def _cascade(
    before: Mapping[str, Resource],
    after: Mapping[str, Resource],
    pairs: Mapping[str, str],
    changed: list[Change],
) -> list[Change]:
    """A replaced resource gets a new id and, when autonamed, a new name: every
    input that came from it changes too, though an offline plan shows the same
    value. Follow that to a fixpoint, so a new model version shows its model and
    endpoint configuration replaced and the endpoint updated."""
    by_urn = {change.after.urn: change for change in changed}
    replaced = {urn for urn, change in by_urn.items() if change.replaces}
    frontier = set(replaced)
    while frontier:
        reached: set[str] = set()
        # Every resource on both sides, under its new URN (`pairs`: new -> old).
        for urn in sorted(pairs):
            new = after[urn]
            props = sorted(p for p, urns in new.sources.items() if frontier & set(urns))
            if not props:
                continue
            change = by_urn.get(urn) or Change(before[pairs[urn]], new, (), ())
            known = {p.path for p in change.properties}
            extra = tuple(PropertyDiff(p, MISSING, MISSING) for p in props if p not in known)
            reasons = tuple(
                sorted(set(change.replace_reasons) | set(forced_replacements(new.type, props)))
            )
            by_urn[urn] = Change(change.before, new, change.properties + extra, reasons)
            if reasons and urn not in replaced:
                replaced.add(urn)
                reached.add(urn)
        frontier = reached
    return [by_urn[urn] for urn in sorted(by_urn)]


def _renames(
    added: Sequence[Resource], removed: Sequence[Resource], stateful: frozenset[str]
) -> dict[str, Resource]:
    """Removed stateful URN -> added resource of the same type under the same parent.

    Renaming a resource changes its URN, and Pulumi then deletes the old one and
    creates an empty new one: a replacement that no property diff shows.
    """
    pairs: dict[str, Resource] = {}
    taken: set[str] = set()
    for gone in (r for r in removed if r.type in stateful):
        for new in added:
            if new.urn not in taken and (new.type, new.parent) == (gone.type, gone.parent):
                pairs[gone.urn] = new
                taken.add(new.urn)
                break
    return pairs


def _change_warnings(change: Change, stateful: frozenset[str]) -> list[str]:
    notes = []
    if change.replaces and change.after.type in stateful:
        reasons = ", ".join(_code(r) for r in change.replace_reasons)
        notes.append(f"replaced ({reasons}); the existing resource and its data are deleted")
    if change.protect_flip:
        state = "off" if change.before.protect else "on"
        notes.append(f"deletion protection turned {state}")
    elif change.after.protect and (change.replaces or _updates_cloud(change)):
        action = "replaced, which fails while protected" if change.replaces else "updated"
        notes.append(f"protected resource {action}")
    return notes


def _updates_cloud(change: Change) -> bool:
    """Anything but a rename by alias, which only moves the resource in the state."""
    return any(p.path != RENAMED for p in change.properties)


def _removal_warnings(
    gone: Resource, renamed_to: Resource | None, stateful: frozenset[str]
) -> list[str]:
    notes = []
    if gone.retained and gone.type in stateful:
        kept = "removed from the stack but retained (retainOnDelete): it and its data stay"
        if renamed_to is not None:
            kept += f"; {_code(renamed_to.name)} (same type and parent) takes its place"
        notes.append(kept)
    elif renamed_to is not None:
        notes.append(
            f"deleted, likely renamed to {_code(renamed_to.name)} (same type and parent): "
            "a new, empty resource is created and the old one and its data are deleted"
        )
    elif gone.type in stateful:
        notes.append("deleted with its data")
    if gone.protect:
        notes.append("protected resource removed; `pulumi up` fails until protection is lifted")
    return notes


def find_warnings(
    added: Sequence[Resource],
    removed: Sequence[Resource],
    changed: Sequence[Change],
    stateful: frozenset[str],
) -> tuple[Finding, ...]:
    """One WARNING per resource: stateful replaced/deleted, or protection involved."""
    renames = _renames(added, removed, stateful)
    found = []
    for change in changed:
        notes = _change_warnings(change, stateful)
        if notes:
            found.append(Finding(change.after.urn, change.after.type, "; ".join(notes)))
    for gone in removed:
        notes = _removal_warnings(gone, renames.get(gone.urn), stateful)
        if notes:
            found.append(Finding(gone.urn, gone.type, "; ".join(notes)))
    return tuple(sorted(found, key=lambda f: f.urn))


def default_stateful_types() -> frozenset[str]:
    """STATEFUL_TYPES from the policy pack's catalog: one list for policies and reports."""
    policies = str(REPO_ROOT / "policies")
    if policies not in sys.path:
        sys.path.insert(0, policies)
    from mlops_policies.catalog import STATEFUL_TYPES

    return frozenset(STATEFUL_TYPES)


def diff_plans(
    stack: str,
    base: Mapping[str, Any] | None,
    head: Mapping[str, Any] | None,
    stateful: frozenset[str] | None = None,
) -> StackDiff:
    """Compare one stack's base plan with its head plan (None: the stack is absent).

    A head that is a real preview (`is_preview`) already holds its before-state
    and the engine's replace decisions; it is read on its own and `base` is not
    consulted.
    """
    stateful = default_stateful_types() if stateful is None else stateful
    if head is None:
        return StackDiff(stack, STATUS_REMOVED, 0, detail="the deployed stack is not destroyed")
    facts = _preview_facts(head) if is_preview(head) else None
    if facts is not None:
        before, after = facts.before, facts.after
    else:
        before, after = plan_resources(base or {}), plan_resources(head)
    added, removed, changed = _compare(before, after, facts)
    warnings = find_warnings(added, removed, changed, stateful)
    if base is None and facts is None:
        status = STATUS_NEW
    else:
        status = STATUS_CHANGED if added or removed or changed else STATUS_UNCHANGED
    return StackDiff(
        stack=stack,
        status=status,
        resources=len(after),
        added=added,
        removed=removed,
        changed=changed,
        warnings=warnings,
        violations=plan_violations(head),
    )


def failed_plan(
    stack: str, side: Literal["base", "head"], message: str, head: Mapping[str, Any] | None
) -> StackDiff:
    """A stack whose base or head could not be planned: no diff, only the reason."""
    if side == "head":
        return StackDiff(stack, STATUS_HEAD_FAILED, 0, detail=message)
    head = head or {}
    return StackDiff(
        stack,
        STATUS_BASE_FAILED,
        len(plan_resources(head)),
        violations=plan_violations(head),
        detail=message,
    )


# --- rendering -------------------------------------------------------------------


def _code(text: str) -> str:
    """Inline code that survives backticks in the text (Markdown fences)."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(text: str) -> str:
    """Free text from the plan (policy messages, errors) on one line.

    A zero-width space after `@` keeps a message from mentioning users or
    teams when the report is posted as a comment.
    """
    return " ".join(text.split()).replace("@", "@\u200b")


def _value(value: Any, skip: int = 0) -> str:
    """A value for the report; `skip` drops that many leading characters."""
    if value is MISSING:
        return "(absent)"
    if value == UNKNOWN:
        return "(known after apply)"
    if _is_secret(value):
        return "[secret]"
    text = json.dumps(value, sort_keys=True)
    if skip:
        text = "..." + text[skip:]
    if len(text) > VALUE_WIDTH:
        text = text[: VALUE_WIDTH - 3] + "..."
    return _code(text)


def _common_prefix(first: str, second: str) -> int:
    pairs = zip(first, second, strict=False)
    return next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(first), len(second)))


def _values(old: Any, new: Any) -> str:
    """`old → new`, both clipped to start near the first difference of long strings."""
    skip = 0
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > VALUE_WIDTH:
        skip = max(0, _common_prefix(json.dumps(old), json.dumps(new)) - VALUE_WIDTH // 4)
    return f"{_value(old, skip)} → {_value(new, skip)}"


def _label(type_: str, name: str) -> str:
    return f"{_code(type_)} {_code(name)}"


def _totals(diff: StackDiff) -> str:
    if not diff.comparable:
        return "n/a | n/a | n/a"
    return f"+{len(diff.added)} | -{len(diff.removed)} | ~{len(diff.changed)}"


def _summary_row(diff: StackDiff) -> str:
    warnings = f"**{len(diff.warnings)}**" if diff.warnings else "0"
    mandatory = diff.count("mandatory")
    policy = f"{f'**{mandatory}**' if mandatory else 0} / {diff.count('advisory')}"
    cells = [_code(diff.stack), diff.status, str(diff.resources), _totals(diff), warnings, policy]
    return "| " + " | ".join(cells) + " |"


def _summary_table(diffs: Sequence[StackDiff]) -> list[str]:
    return [
        "| Stack | Status | Resources | Added | Removed | Changed | Warnings "
        "| Policy: mandatory / advisory |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
        *(_summary_row(d) for d in diffs),
    ]


def _notes(diffs: Sequence[StackDiff]) -> list[str]:
    return [f"- {_code(d.stack)}: {d.status}: {_prose(d.detail)}" for d in diffs if d.detail]


def _warning_lines(diffs: Sequence[StackDiff]) -> list[str]:
    total = sum(len(d.warnings) for d in diffs)
    if not total:
        return ["No warnings: nothing stateful or protected is replaced, deleted or touched."]
    lines = [f"### :warning: {total} warning{'s' if total > 1 else ''}", ""]
    for diff in diffs:
        lines += [
            f"- **WARNING** {_code(diff.stack)} {_label(w.type, w.name)}: {w.message}"
            for w in diff.warnings
        ]
    return lines


def _violation_lines(diffs: Sequence[StackDiff]) -> list[str]:
    lines = []
    for diff in diffs:
        lines += [
            f"- {_code(diff.stack)} {_code(v.policy)} on {_code(v.urn.rsplit('::', 1)[-1])}: "
            f"{_prose(v.message)}"
            for v in diff.violations
            if v.level == "mandatory"
        ]
    return ["### Mandatory policy violations", "", *lines] if lines else []


def _change_lines(change: Change) -> list[str]:
    head = f"- {_label(change.after.type, change.after.name)}"
    if change.replaces:
        head += " **replace** (" + ", ".join(_code(r) for r in change.replace_reasons) + ")"
    if change.protect_flip:
        head += (
            f" protect: {json.dumps(change.before.protect)} → {json.dumps(change.after.protect)}"
        )
    lines = [head]
    for prop in change.properties:
        if prop.old is MISSING and prop.new is MISSING:
            lines.append(f"  - {_code(prop.path)}: changed")
        else:
            lines.append(f"  - {_code(prop.path)}: {_values(prop.old, prop.new)}")
    return lines


def _details(diff: StackDiff) -> list[str]:
    advisory = [v for v in diff.violations if v.level != "mandatory"]
    if not (diff.added or diff.removed or diff.changed or advisory):
        return []
    summary = f"{diff.stack}: +{len(diff.added)} -{len(diff.removed)} ~{len(diff.changed)}"
    lines = ["<details>", f"<summary>{summary}</summary>", ""]
    if diff.added:
        lines += ["**Added**", "", *(f"- {_label(r.type, r.name)}" for r in diff.added), ""]
    if diff.removed:
        lines += ["**Removed**", "", *(f"- {_label(r.type, r.name)}" for r in diff.removed), ""]
    if diff.changed:
        lines += ["**Changed**", ""]
        for change in diff.changed:
            lines += _change_lines(change)
        lines.append("")
    if advisory:
        lines += ["**Advisory policy violations**", ""]
        lines += [
            f"- {_code(v.policy)} on {_code(v.urn.rsplit('::', 1)[-1])}: {_prose(v.message)}"
            for v in advisory
        ]
        lines.append("")
    return [*lines, "</details>", ""]


def render_report(diffs: Sequence[StackDiff], base_label: str) -> str:
    """The pull-request report: totals, then warnings, then folded details."""
    ordered = sorted(diffs, key=lambda d: d.stack)
    lines = [f"## Plan diff against {_code(base_label)}", "", *_summary_table(ordered), ""]
    notes = _notes(ordered)
    if notes:
        lines += [*notes, ""]
    lines += [*_warning_lines(ordered), ""]
    violations = _violation_lines(ordered)
    if violations:
        lines += [*violations, ""]
    for diff in ordered:
        lines += _details(diff)
    return "\n".join(lines).rstrip("\n") + "\n"


def summary_line(diff: StackDiff) -> str:
    """One stdout line per stack."""
    counts = (
        f"+{len(diff.added)} -{len(diff.removed)} ~{len(diff.changed)}, "
        f"{len(diff.warnings)} warning(s), "
        if diff.comparable
        else ""
    )
    policy = f"policy {diff.count('mandatory')} mandatory / {diff.count('advisory')} advisory"
    detail = f" ({diff.detail})" if diff.detail else ""
    return f"{diff.stack}: {diff.status}{detail}, {diff.resources} resources, {counts}{policy}"


def exit_status(diffs: Sequence[StackDiff]) -> int:
    failed = any(d.status == STATUS_HEAD_FAILED or d.count("mandatory") for d in diffs)
    return 1 if failed else 0


# --- stacks ----------------------------------------------------------------------


def stack_matrix(stacks_dir: Path, env: str | None = None) -> list[dict[str, str]]:
    """Workflow matrix rows: cloud and env from each file's own `mlops:cloud` and
    `mlops:environment`, which the workflows pick credentials and policy config by.

    A file that does not state them, or whose name says another cloud or env
    (`aws-x-prod` holding a GCP dev stack), is an error rather than a silent
    misroute; any other name is fine.
    """
    rows = []
    for stack in list_stacks(stacks_dir):
        where = f"{stacks_dir.name}/Pulumi.{stack}.yaml"
        stated = routing(stacks_dir / f"Pulumi.{stack}.yaml")
        cloud, stack_env = stated.get("cloud"), stated.get("environment")
        if cloud not in CLOUDS or stack_env not in ENVIRONMENTS:
            raise ValueError(
                f"{where}: needs `mlops:cloud: {'|'.join(CLOUDS)}` and "
                f"`mlops:environment: {'|'.join(ENVIRONMENTS)}` under config: to be routed"
            )
        parts = stack.split("-")
        named_cloud = parts[0] if parts[0] in CLOUDS else cloud
        named_env = parts[-1] if parts[-1] in ENVIRONMENTS else stack_env
        if (named_cloud, named_env) != (cloud, stack_env):
            raise ValueError(
                f"{where}: the name says {named_cloud}/{named_env}, but the file is "
                f"mlops:cloud {cloud}, mlops:environment {stack_env}"
            )
        if env is None or stack_env == env:
            rows.append({"stack": stack, "cloud": cloud, "env": stack_env})
    return rows


# --- planning a revision (git and subprocesses) ------------------------------------


class UsageError(Exception):
    """Bad arguments: reported as one line, exit status 2."""


@dataclass(frozen=True)
class Planned:
    """One side of one stack: its plan, or why there is none."""

    plan: Mapping[str, Any] | None
    error: str = ""


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=check
    )


def resolve_revision(root: Path, rev: str) -> str:
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if found.returncode != 0:
        raise UsageError(f"--base {rev}: not a commit in {root}")
    return found.stdout.strip()


@contextmanager
def worktree(root: Path, commit: str, out: Path) -> Iterator[Path]:
    """A detached checkout of `commit` in a temporary dir under `out`, removed after."""
    holder = Path(tempfile.mkdtemp(prefix="base-worktree-", dir=out))
    path = holder / "src"
    _git(root, "worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        _git(root, "worktree", "remove", "--force", str(path), check=False)
        shutil.rmtree(holder, ignore_errors=True)
        _git(root, "worktree", "prune", check=False)


def _error_for(stack: str, stderr: str, returncode: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    named = [line for line in lines if stack in line]
    chosen = (named or lines or [f"tools.plan exited {returncode} and wrote no plan"])[-1]
    return chosen[:300]


def run_planner(cwd: Path, out: Path, stacks: Sequence[str]) -> dict[str, Planned]:
    """`python -m tools.plan` in `cwd`, with this interpreter; one result per stack."""
    if not stacks:
        return {}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    args = [sys.executable, "-m", "tools.plan", "--out", str(out)]
    for stack in stacks:
        args += ["--stack", stack]
    # PYTHONPATH could point at the working tree and make the base import head code.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    results = {}
    for stack in stacks:
        path = out / f"{stack}.json"
        if path.is_file():
            results[stack] = Planned(json.loads(path.read_text(encoding="utf-8")))
        else:
            results[stack] = Planned(None, _error_for(stack, done.stderr, done.returncode))
    return results


def _selected(requested: Sequence[str], head: Sequence[str], base: Sequence[str]) -> list[str]:
    known = set(head) | set(base)
    unknown = sorted(set(requested) - known)
    if unknown:
        raise UsageError(
            f"--stack {unknown[0]}: no stacks/Pulumi.{unknown[0]}.yaml at head or base"
        )
    return sorted(set(requested) if requested else known)


def _stack_diff(
    stack: str, base: Planned | None, head: Planned | None, stateful: frozenset[str]
) -> StackDiff:
    if head is not None and head.plan is None:
        return failed_plan(stack, "head", head.error, None)
    if base is not None and base.plan is None:
        return failed_plan(stack, "base", base.error, head.plan if head else None)
    return diff_plans(stack, base.plan if base else None, head.plan if head else None, stateful)


def plan_diff(
    root: Path, rev: str, requested: Sequence[str], out: Path, stateful: frozenset[str]
) -> list[StackDiff]:
    """Plan `rev` and the working tree of `root`, and compare them stack by stack."""
    commit = resolve_revision(root, rev)
    out.mkdir(parents=True, exist_ok=True)
    head_stacks = list_stacks(root / "stacks")
    with worktree(root, commit, out) as base_root:
        base_stacks = list_stacks(base_root / "stacks")
        stacks = _selected(requested, head_stacks, base_stacks)
        base = run_planner(base_root, out / "base", [s for s in stacks if s in base_stacks])
    head = run_planner(root, out / "head", [s for s in stacks if s in head_stacks])
    return [_stack_diff(s, base.get(s), head.get(s), stateful) for s in stacks]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.plandiff",
        description="Compare the plan of a base revision with the working tree's, per stack.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--base", metavar="REV", help="git revision to compare against")
    mode.add_argument("--list-stacks", action="store_true", help="print the stack matrix")
    parser.add_argument("--stack", action="append", default=[], metavar="NAME")
    parser.add_argument("--out", type=Path, default=Path("build/plan-diff"))
    parser.add_argument("--env", choices=ENVIRONMENTS, help="with --list-stacks: one env")
    return parser


def main(
    argv: Sequence[str] | None = None,
    root: Path = REPO_ROOT,
    stateful: frozenset[str] | None = None,
) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.list_stacks:
            print(json.dumps(stack_matrix(root / "stacks", args.env)))
            return 0
        out = args.out.resolve()
        types = default_stateful_types() if stateful is None else stateful
        stacks = [stack_name(s) for s in args.stack]
        diffs = plan_diff(root, args.base, stacks, out, types)
    except (UsageError, ValueError) as error:
        print(f"plandiff: {error}", file=sys.stderr)
        return 2
    report = out / "report.md"
    report.write_text(render_report(diffs, args.base), encoding="utf-8")
    for diff in diffs:
        print(summary_line(diff))
    print(f"report: {report}")
    return exit_status(diffs)


if __name__ == "__main__":
    sys.exit(main())
