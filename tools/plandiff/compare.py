"""Base against head: property diffs, replacements and what they cascade to,
and the warnings a reviewer must not miss."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tools.plandiff.model import (
    MISSING,
    RENAMED,
    REPO_ROOT,
    STATUS_BASE_FAILED,
    STATUS_CHANGED,
    STATUS_HEAD_FAILED,
    STATUS_NEW,
    STATUS_REMOVED,
    STATUS_UNCHANGED,
    Change,
    Finding,
    PropertyDiff,
    Resource,
    StackDiff,
    _preview_facts,
    _PreviewFacts,
    code,
    is_preview,
    is_secret,
    plan_resources,
    plan_violations,
)
from tools.plandiff.replacements import forced_replacements

# --- property diff -------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _child(path: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


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
    if isinstance(old, dict) and isinstance(new, dict) and not (is_secret(old) or is_secret(new)):
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
        reasons = ", ".join(code(r) for r in change.replace_reasons)
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
            kept += f"; {code(renamed_to.name)} (same type and parent) takes its place"
        notes.append(kept)
    elif renamed_to is not None:
        notes.append(
            f"deleted, likely renamed to {code(renamed_to.name)} (same type and parent): "
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


# Where a stack's resources live. The default provider of each cloud reads them;
# a change replaces the provider, and with it every resource it manages.
LOCATION_KEYS = ("aws:region", "gcp:project", "gcp:region", "azure-native:location")
STACK_TYPE = "pulumi:pulumi:Stack"


def location_warnings(base: Mapping[str, Any], head: Mapping[str, Any]) -> list[Finding]:
    """A stack whose region, project or location changes moves everything it holds."""
    before, after = base.get("config") or {}, head.get("config") or {}
    stack = next(
        (
            s["urn"]
            for s in head.get("steps", [])
            if s.get("newState", {}).get("type") == STACK_TYPE
        ),
        "",
    )
    return [
        Finding(
            stack,
            STACK_TYPE,
            f"{code(key)} changes from {code(before[key])} to {code(after[key])}: every "
            "resource is created anew there and the old ones are deleted with their data "
            "(protected ones stop the update); move the data first, or make it a new stack",
        )
        for key in LOCATION_KEYS
        if key in before and key in after and before[key] != after[key]
    ]


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
    if base is not None and facts is None:
        # A real preview shows the provider's replacement itself.
        warnings = (*location_warnings(base, head), *warnings)
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
