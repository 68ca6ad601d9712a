"""The Makefile's own interface: help by default, STACK with several names."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (
    "install",
    "lint",
    "format",
    "test",
    "plan",
    "plan-diff",
    "preview",
    "up",
    "loadtest",
    "clean",
)


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_alone_prints_every_target_with_what_it_does() -> None:
    result = _make()
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    described = {line.split()[0]: line for line in lines[1:]}
    assert set(described) == {"help", *TARGETS}
    assert all(len(line.split()) > 2 for line in described.values())
    assert _make("help").stdout == result.stdout


def test_stack_takes_several_names_and_file_names() -> None:
    result = _make("-n", "plan", "STACK=aws-dev stacks/Pulumi.gcp-dev.yaml")
    assert result.returncode == 0
    plan = next(line for line in result.stdout.splitlines() if "tools.plan" in line)
    assert plan.endswith("--stack aws-dev --stack stacks/Pulumi.gcp-dev.yaml")
    diff = _make("-n", "plan-diff", "STACK=aws-dev azure-prod", "BASE=HEAD~1")
    assert "--base HEAD~1 --stack aws-dev --stack azure-prod" in diff.stdout


def test_targets_cache_the_projects_bytecode_even_where_the_environment_turns_it_off() -> None:
    done = subprocess.run(
        ["make", "-s", "--eval", 'show: ; @echo "[$${PYTHONDONTWRITEBYTECODE-unset}]"', "show"],
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == "[unset]"
