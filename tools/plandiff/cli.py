"""`python -m tools.plandiff`: plan a base revision in a git worktree and the
working tree, per stack, and compare them; or list the stack matrix for CI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tools.plandiff.compare import (
    default_stateful_types,
    diff_plans,
    failed_plan,
)
from tools.plandiff.costs import cost_change
from tools.plandiff.model import (
    REPO_ROOT,
    STATUS_NEW,
    StackDiff,
)
from tools.plandiff.report import (
    exit_status,
    render_report,
    summary_line,
)
from tools.stackfiles import list_stacks, routing, stack_name

CLOUDS = ("aws", "gcp", "azure")
# In deploy order: each wave deploys only after the one before it succeeded.
ENVIRONMENTS = ("dev", "staging", "prod")


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
    # The planner's `<stack>.cost.json` beside the plan, where it wrote one.
    cost: Mapping[str, Any] | None = None


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
            plan = json.loads(path.read_text(encoding="utf-8"))
            results[stack] = Planned(plan, cost=_cost_figures(out / f"{stack}.cost.json"))
        else:
            results[stack] = Planned(None, _error_for(stack, done.stderr, done.returncode))
    return results


def _cost_figures(path: Path) -> Mapping[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


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
        found = failed_plan(stack, "base", base.error, head.plan if head else None)
    else:
        before = base.plan if base else None
        found = diff_plans(stack, before, head.plan if head else None, stateful)
    change = cost_change(
        base.cost if base else None,
        head.cost if head else None,
        new_stack=base is None and found.status == STATUS_NEW,
    )
    return replace(found, cost=change)


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
