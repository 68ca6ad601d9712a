"""The plan diff as a Markdown report and one summary line per stack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tools.cost import HOURS_PER_MONTH
from tools.plandiff.costs import cost_summary, scale_change
from tools.plandiff.model import (
    MISSING,
    STATUS_HEAD_FAILED,
    UNKNOWN,
    VALUE_WIDTH,
    Change,
    StackDiff,
    code,
    is_secret,
)

# --- rendering -------------------------------------------------------------------


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
    if is_secret(value):
        return "[secret]"
    text = json.dumps(value, sort_keys=True)
    if skip:
        text = "..." + text[skip:]
    if len(text) > VALUE_WIDTH:
        text = text[: VALUE_WIDTH - 3] + "..."
    return code(text)


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
    return f"{code(type_)} {code(name)}"


def _totals(diff: StackDiff) -> str:
    if not diff.comparable:
        return "n/a | n/a | n/a"
    return f"+{len(diff.added)} | -{len(diff.removed)} | ~{len(diff.changed)}"


def _summary_row(diff: StackDiff) -> str:
    warnings = f"**{len(diff.warnings)}**" if diff.warnings else "0"
    mandatory = diff.count("mandatory")
    policy = f"{f'**{mandatory}**' if mandatory else 0} / {diff.count('advisory')}"
    cells = [
        code(diff.stack),
        diff.status,
        str(diff.resources),
        _totals(diff),
        warnings,
        policy,
    ]
    return "| " + " | ".join(cells) + " |"


def _summary_table(diffs: Sequence[StackDiff]) -> list[str]:
    return [
        "| Stack | Status | Resources | Added | Removed | Changed | Warnings "
        "| Policy: mandatory / advisory |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
        *(_summary_row(d) for d in diffs),
    ]


def _cost_lines(diffs: Sequence[StackDiff]) -> list[str]:
    """Base → head a month at min and max scale, for the stacks whose head has cost figures."""
    rows = [
        f"| {code(d.stack)} | {scale_change(d.cost, 'min')} | {scale_change(d.cost, 'max')} |"
        for d in diffs
        if d.cost is not None
    ]
    if not rows:
        return []
    return [
        "### Monthly cost",
        "",
        f"Compute of endpoints and accelerator pools, base → head, {HOURS_PER_MONTH} hours a month "
        "(from each side's `<stack>.cost.json`).",
        "",
        "| Stack | At min scale | At max scale |",
        "|---|--:|--:|",
        *rows,
    ]


def _notes(diffs: Sequence[StackDiff]) -> list[str]:
    return [f"- {code(d.stack)}: {d.status}: {_prose(d.detail)}" for d in diffs if d.detail]


def _warning_lines(diffs: Sequence[StackDiff]) -> list[str]:
    total = sum(len(d.warnings) for d in diffs)
    if not total:
        return ["No warnings: nothing stateful or protected is replaced, deleted or touched."]
    lines = [f"### :warning: {total} warning{'s' if total > 1 else ''}", ""]
    for diff in diffs:
        lines += [
            f"- **WARNING** {code(diff.stack)} {_label(w.type, w.name)}: {w.message}"
            for w in diff.warnings
        ]
    return lines


def _violation_lines(diffs: Sequence[StackDiff]) -> list[str]:
    lines = []
    for diff in diffs:
        lines += [
            f"- {code(diff.stack)} {code(v.policy)} on {code(v.urn.rsplit('::', 1)[-1])}: "
            f"{_prose(v.message)}"
            for v in diff.violations
            if v.level == "mandatory"
        ]
    return ["### Mandatory policy violations", "", *lines] if lines else []


def _change_lines(change: Change) -> list[str]:
    head = f"- {_label(change.after.type, change.after.name)}"
    if change.replaces:
        head += " **replace** (" + ", ".join(code(r) for r in change.replace_reasons) + ")"
    if change.protect_flip:
        head += (
            f" protect: {json.dumps(change.before.protect)} → {json.dumps(change.after.protect)}"
        )
    lines = [head]
    for prop in change.properties:
        if prop.old is MISSING and prop.new is MISSING:
            lines.append(f"  - {code(prop.path)}: changed")
        else:
            lines.append(f"  - {code(prop.path)}: {_values(prop.old, prop.new)}")
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
            f"- {code(v.policy)} on {code(v.urn.rsplit('::', 1)[-1])}: {_prose(v.message)}"
            for v in advisory
        ]
        lines.append("")
    return [*lines, "</details>", ""]


def render_report(diffs: Sequence[StackDiff], base_label: str) -> str:
    """The pull-request report: totals, then warnings, then folded details."""
    ordered = sorted(diffs, key=lambda d: d.stack)
    lines = [f"## Plan diff against {code(base_label)}", "", *_summary_table(ordered), ""]
    notes = _notes(ordered)
    if notes:
        lines += [*notes, ""]
    costs = _cost_lines(ordered)
    if costs:
        lines += [*costs, ""]
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
    cost = f", {cost_summary(diff.cost)}" if diff.cost is not None else ""
    return (
        f"{diff.stack}: {diff.status}{detail}, {diff.resources} resources, {counts}{policy}{cost}"
    )


def exit_status(diffs: Sequence[StackDiff]) -> int:
    failed = any(d.status == STATUS_HEAD_FAILED or d.count("mandatory") for d in diffs)
    return 1 if failed else 0
