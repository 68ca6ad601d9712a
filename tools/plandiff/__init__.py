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
everything that touches git or subprocesses sits in `cli.py`.
"""

from tools.plandiff.cli import CLOUDS, ENVIRONMENTS, UsageError, main, stack_matrix
from tools.plandiff.compare import default_stateful_types, diff_plans, diff_values, failed_plan
from tools.plandiff.model import (
    MISSING,
    SECRET_SIG,
    STATUS_BASE_FAILED,
    STATUS_CHANGED,
    STATUS_HEAD_FAILED,
    STATUS_NEW,
    STATUS_REMOVED,
    STATUS_UNCHANGED,
    UNKNOWN,
    StackDiff,
)
from tools.plandiff.replacements import REPLACE_ON_CHANGE, forced_replacements
from tools.plandiff.report import exit_status, render_report, summary_line

__all__ = [
    "CLOUDS",
    "ENVIRONMENTS",
    "MISSING",
    "REPLACE_ON_CHANGE",
    "SECRET_SIG",
    "STATUS_BASE_FAILED",
    "STATUS_CHANGED",
    "STATUS_HEAD_FAILED",
    "STATUS_NEW",
    "STATUS_REMOVED",
    "STATUS_UNCHANGED",
    "UNKNOWN",
    "StackDiff",
    "UsageError",
    "default_stateful_types",
    "diff_plans",
    "diff_values",
    "exit_status",
    "failed_plan",
    "forced_replacements",
    "main",
    "render_report",
    "stack_matrix",
    "summary_line",
]
