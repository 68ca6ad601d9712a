"""The offline plan: preview-shaped, deterministic, clean for shipped stacks, and
a bad stack file is one line on stderr with nothing planned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OWN_PLAN_STACK, own_plan_dir, planned

from infra.settings import NAME_RULE
from tools import stackfiles
from tools.plan import main, write

ROOT = Path(__file__).resolve().parent.parent
STATE_KEYS = {
    "aliases",
    "custom",
    "dependencies",
    "inputs",
    "parent",
    "propertyDependencies",
    "protect",
    "provider",
    "retainOnDelete",
    "type",
    "urn",
}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_plan_has_the_shape_of_pulumi_preview_json() -> None:
    document = planned("aws-prod").preview_json()
    # The config the program read, as the engine hands it over: strings.
    assert document["config"]["aws:region"] == "us-east-1"
    assert json.loads(document["config"]["mlops:network"])["cidr"] == "10.21.0.0/16"
    steps = document["steps"]
    assert document["changeSummary"] == {"create": len(steps)}
    assert [s["urn"] for s in steps] == sorted(s["urn"] for s in steps)
    for step in steps:
        assert step["op"] == "create"
        assert set(step["newState"]) == STATE_KEYS
        assert step["newState"]["urn"] == step["urn"]
        assert step["urn"].startswith("urn:pulumi:aws-prod::mlops::")
    stack = [s for s in steps if s["newState"]["type"] == "pulumi:pulumi:Stack"]
    assert len(stack) == 1 and stack[0]["newState"]["custom"] is False
    by_urn = {s["urn"]: s["newState"] for s in steps}
    for state in by_urn.values():
        # Every parent and dependency is itself in the plan.
        assert not state["parent"] or state["parent"] in by_urn
        assert set(state["dependencies"]) <= set(by_urn)
    bucket = next(s for s in by_urn.values() if s["type"] == "aws:s3/bucket:Bucket")
    assert bucket["protect"] is True and bucket["retainOnDelete"] is True


def test_same_settings_give_the_same_bytes_across_processes(tmp_path: Path) -> None:
    """Two interpreters with different string-hash seeds write the same bytes. In
    a run with workers, two of them planned the stack at start (conftest);
    otherwise, or if the environment fixes the seed, a CLI process planned with
    another seed is compared with this process's plan."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    folders = [own_plan_dir(f"gw{index}") for index in range(2)] if workers >= 2 else []
    seeds = {(folder / "hash").read_text() for folder in folders}
    if len(seeds) < 2:
        write(planned(OWN_PLAN_STACK), tmp_path / "a")
        result = _cli(
            "--stack", OWN_PLAN_STACK, "--out", str(tmp_path / "b"),
            env={"PYTHONHASHSEED": "7" if os.environ.get("PYTHONHASHSEED") != "7" else "8"},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        folders = [tmp_path / "a", tmp_path / "b"]
    for suffix in ("json", "md", "cost.json"):
        first, second = ((f / f"{OWN_PLAN_STACK}.{suffix}").read_bytes() for f in folders)
        assert first == second, suffix


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stacks folder of this test's own, holding copies of the shipped files, so a
    test's extra stack file is never seen by a test running beside it."""
    folder = tmp_path / "stacks"
    shutil.copytree(ROOT / "stacks", folder)
    monkeypatch.setattr(stackfiles, "stacks_dir", lambda: folder)
    return folder


def test_bad_stack_file_is_one_line_and_plans_nothing(
    stacks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (stacks / "Pulumi.aws-dev.yaml").read_text()
    bad = text.replace("zones: [raw, curated, features]", "zones: [raw, Raw Data]")
    (stacks / "Pulumi.aws-tmp-badzone-dev.yaml").write_text(bad)
    out = tmp_path / "plan"
    assert main(["--stack", "aws-tmp-badzone-dev", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "stacks/Pulumi.aws-tmp-badzone-dev.yaml: mlops:lake.zones[1]: 'Raw Data' is not a valid "
        f"zone name ({NAME_RULE})"
    ]
    assert not out.exists()


def test_unknown_stack_name_is_one_line_listing_the_stacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--stack", "no-such-stack", "--out", "/nonexistent"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "stacks/Pulumi.no-such-stack.yaml: no such stack file (stacks: "
        + ", ".join(stackfiles.stack_names())
        + ")"
    ]


def test_any_stack_file_is_planned_by_its_name_or_its_path(
    stacks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stackfiles.stack_name("aws-dev") == "aws-dev"
    assert stackfiles.stack_name("Pulumi.aws-dev.yaml") == "aws-dev"
    assert stackfiles.stack_name("aws-prod.yaml") == "aws-prod"
    assert stackfiles.stack_name("stacks/Pulumi.gcp-prod.yaml") == "gcp-prod"
    shutil.copy(stacks / "Pulumi.aws-dev.yaml", stacks / "Pulumi.aws-sandbox-dev.yaml")
    assert "aws-sandbox-dev" in stackfiles.stack_names()
    out = tmp_path / "plan"
    assert main(["--stack", str(stacks / "Pulumi.aws-sandbox-dev.yaml"), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("aws-sandbox-dev: 121 resources, 0 mandatory / 0 advisory violations, ")
    assert line.endswith(" s")
    assert sorted(p.name for p in out.iterdir()) == [
        "aws-sandbox-dev.cost.json",
        "aws-sandbox-dev.json",
        "aws-sandbox-dev.md",
    ]
    preview = json.loads((out / "aws-sandbox-dev.json").read_text())
    assert preview["policyViolations"] == []
    urns = [step["urn"] for step in preview["steps"]]
    assert all(urn.startswith("urn:pulumi:aws-sandbox-dev::mlops::") for urn in urns)
    # Names come from the stack's name, so a copy never collides with its original.
    assert sum(urn.endswith("::mlops-aws-sandbox-dev-lake-raw") for urn in urns) == 1


def test_a_stack_that_fails_to_plan_leaves_no_plan_and_gone_stacks_leave_none(
    stacks: Path, tmp_path: Path
) -> None:
    out = tmp_path / "plan"
    out.mkdir()
    for stale in ("aws-dev", "deleted-stack"):
        for suffix in ("json", "md"):
            (out / f"{stale}.{suffix}").write_text("old")
    (stacks / "Pulumi.aws-dev.yaml").write_text(
        (stacks / "Pulumi.aws-dev.yaml").read_text().replace("owner: ml-platform", "owner: ML")
    )
    for name in ("aws-prod", "azure-dev", "azure-prod", "gcp-dev", "gcp-prod"):
        (stacks / f"Pulumi.{name}.yaml").unlink()
    assert main(["--out", str(out)]) == 2
    # The broken stack's old plan and the deleted stack's plan are both gone.
    assert list(out.iterdir()) == []


def test_report_lists_counts_protection_and_policy_results() -> None:
    from tools.report import render

    text = render(planned("aws-prod"))
    assert text.startswith("## Plan: `aws-prod` (aws, prod, us-east-1)")
    assert "**137 resources** to create (the stack included" in text
    assert "policies: **pass** (0 mandatory, 0 advisory violations)" in text
    assert (
        "| `mlops-aws-prod-lake-raw` | `aws:s3/bucket:Bucket` | autonamed (suffix at create) "
        "| yes | yes |"
    ) in text
    assert "| `aws:ecr/repository:Repository` | `mlops-aws-prod/serving` | yes | yes |" in text
    assert "| `aws:kms/key:Key` | assigned by the cloud | yes | yes |" in text

    # The lake's three zones, its access-log bucket and the audit bucket.
    assert "| `aws:s3/bucket:Bucket` | 5 |" in text
    assert "All policies pass." in text


def test_mandatory_violation_fails_the_plan_and_is_reported(
    stacks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (stacks / "Pulumi.aws-dev.yaml").read_text()
    (stacks / "Pulumi.aws-tmp-mutable-dev.yaml").write_text(
        text + "  mlops:registries:\n    containers:\n      immutableTags: false\n"
    )
    # In process: the CLI's own entry point, without a second import of the SDKs.
    status = main(["--stack", "aws-tmp-mutable-dev", "--out", str(tmp_path)])
    printed = capsys.readouterr()
    assert status == 1
    assert "2 mandatory / 0 advisory violations" in printed.out
    assert "mandatory registry-immutable-tags: ECR repository lets tags be overwritten" in (
        printed.err
    )
    report = (tmp_path / "aws-tmp-mutable-dev.md").read_text()
    assert "policies: **FAIL** (2 mandatory" in report
    violations = json.loads((tmp_path / "aws-tmp-mutable-dev.json").read_text())["policyViolations"]
    assert {v["policyName"] for v in violations} == {"registry-immutable-tags"}


@pytest.mark.parametrize("stack", stackfiles.stack_names())
def test_every_shipped_stack_plans_with_no_mandatory_violation(stack: str) -> None:
    plan = planned(stack)
    assert plan.mandatory == [], [f"{f.policy}: {f.message}" for f in plan.mandatory]
    assert len(plan.registrations) > 10


def test_every_stateful_type_says_where_its_name_comes_from() -> None:
    from mlops_policies.catalog import NAME_PROPERTY, STATEFUL_TYPES

    assert set(NAME_PROPERTY) == set(STATEFUL_TYPES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "config:\n  mlops:cloud: aws\n   mlops:environment: dev\n",
            "line 3, column 21: not valid YAML: mapping values are not allowed here",
        ),
        (
            "config:\n  mlops:cloud: [aws\n",
            "line 3, column 1: not valid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        ("- config\n", "(file): expected a mapping with `config:`, got list"),
    ],
    ids=["bad indentation", "unclosed list", "not a mapping"],
)
def test_a_stack_file_that_is_not_yaml_is_one_line(
    stacks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (stacks / "Pulumi.broken-dev.yaml").write_text(text)
    assert main(["--stack", "broken-dev", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"stacks/Pulumi.broken-dev.yaml: {expected}"]
