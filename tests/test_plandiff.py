"""Plan diff: the comparison and report on synthetic plans, then the git layer end to end."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import planned

from infra.settings import load
from tools import plandiff, stackfiles
from tools.plandiff import StackDiff, diff_plans, render_report
from tools.plandiff import report as rendering

FIXTURES = Path(__file__).parent / "fixtures" / "plandiff"
GOLDEN = Path(__file__).parent / "golden" / "plandiff_report.md"
STATEFUL = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:ecr/repository:Repository",
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobContainer",
        "azure-native:keyvault:Vault",
        "gcp:storage/bucket:Bucket",
    }
)
BUCKET = "aws:s3/bucket:Bucket"
COMPONENT = "mlops:aws:DataLake"


def urn(stack: str, type_: str, name: str, parent_type: str = "") -> str:
    chain = f"{parent_type}${type_}" if parent_type else type_
    return f"urn:pulumi:{stack}::mlops::{chain}::{name}"


def state(
    type_: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    *,
    stack: str = "aws-dev",
    protect: bool = False,
    parent: str = "lake",
) -> dict[str, Any]:
    """A resource as the offline planner writes it (newState of a create step)."""
    parent_urn = urn(stack, COMPONENT, parent) if parent else ""
    return {
        "custom": True,
        "dependencies": [],
        "inputs": inputs or {},
        "parent": parent_urn,
        "protect": protect,
        "provider": "",
        "retainOnDelete": False,
        "type": type_,
        "urn": urn(stack, type_, name, COMPONENT if parent else ""),
    }


def plan(*states: dict[str, Any], violations: list[dict[str, str]] | None = None) -> dict:
    found: dict[str, Any] = {
        "changeSummary": {"create": len(states)},
        "steps": [{"op": "create", "urn": s["urn"], "newState": s} for s in states],
    }
    if violations is not None:
        found["policyViolations"] = violations
    return found


def violation(level: str, name: str, message: str, target: str) -> dict[str, str]:
    return {"enforcementLevel": level, "message": message, "policyName": name, "urn": target}


def raw_bucket(**changes: Any) -> dict[str, Any]:
    inputs = {
        "bucket": "mlops-aws-dev-raw",
        "tags": {"env": "dev", "kubernetes.io/role": "lake", "owner": "data"},
        "lifecycleRules": [{"days": 30, "id": "tier"}, {"days": 365, "id": "expire"}],
    }
    inputs.update(changes)
    return inputs


def diff(base: dict | None, head: dict | None, stack: str = "aws-dev") -> StackDiff:
    return diff_plans(stack, base, head, STATEFUL)


def edited(source: dict, **inputs: Any) -> dict:
    """A copy of a one-resource plan with some inputs replaced."""
    result = copy.deepcopy(source)
    result["steps"][0]["newState"]["inputs"].update(inputs)
    return result


# --- comparison -----------------------------------------------------------------


def test_identical_plans_have_no_changes() -> None:
    same = plan(state(BUCKET, "raw", raw_bucket()), state("aws:iam/role:Role", "reader"))
    result = diff(same, copy.deepcopy(same))
    assert result.status == plandiff.STATUS_UNCHANGED
    assert (result.added, result.removed, result.changed, result.warnings) == ((), (), (), ())
    assert result.resources == 2


def test_added_and_removed_resources() -> None:
    role = state("aws:iam/role:Role", "reader")
    policy = state("aws:iam/policy:Policy", "read")
    result = diff(plan(role), plan(policy))
    assert [r.name for r in result.added] == ["read"]
    assert [r.name for r in result.removed] == ["reader"]
    assert result.status == plandiff.STATUS_CHANGED
    assert result.warnings == ()  # neither stateful nor protected


def test_property_changes_have_nested_paths_and_list_indexes() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket()))
    tags = {"env": "dev", "kubernetes.io/role": "serving", "owner": "ml"}
    rules = [{"days": 60, "id": "tier"}]
    result = diff(base, edited(base, tags=tags, lifecycleRules=rules))
    (change,) = result.changed
    found = {p.path: (p.old, p.new) for p in change.properties}
    assert found == {
        "lifecycleRules[0].days": (30, 60),
        "lifecycleRules[1]": ({"days": 365, "id": "expire"}, plandiff.MISSING),
        'tags["kubernetes.io/role"]': ("lake", "serving"),
        "tags.owner": ("data", "ml"),
    }
    assert not change.replaces
    assert result.warnings == ()  # a tag change on a stateful resource is harmless


def test_changing_a_replace_forcing_property_replaces_a_stateful_resource() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket()))
    result = diff(base, edited(base, bucket="mlops-aws-dev-raw-v2"))
    (change,) = result.changed
    assert change.replace_reasons == ("bucket",)
    (warning,) = result.warnings
    assert warning.name == "raw"
    assert "replaced (`bucket`)" in warning.message
    assert "data are deleted" in warning.message


def test_replacement_of_a_type_outside_the_stateful_set_is_shown_but_not_a_warning() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket()))
    result = diff_plans("aws-dev", base, edited(base, bucket="other"), frozenset())
    assert result.changed[0].replaces
    assert result.warnings == ()


def test_nested_replace_forcing_path_matches_only_its_subtree() -> None:
    key = "gcp:kms/cryptoKey:CryptoKey"
    assert plandiff.forced_replacements(key, ["versionTemplate.protectionLevel"]) == (
        "versionTemplate.protectionLevel",
    )
    assert plandiff.forced_replacements(key, ["versionTemplate.algorithm"]) == ()
    assert plandiff.forced_replacements(BUCKET, ["bucketPolicy", "tags.bucket"]) == ()
    assert plandiff.forced_replacements(BUCKET, ["bucket"]) == ("bucket",)


def test_deleting_a_stateful_resource_is_a_warning() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket()), state("aws:iam/role:Role", "reader"))
    result = diff(base, plan(state("aws:iam/role:Role", "reader")))
    (warning,) = result.warnings
    assert (warning.type, warning.name, warning.message) == (BUCKET, "raw", "deleted with its data")


def test_removed_and_added_stateful_resource_under_one_parent_is_a_likely_rename() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket()))
    result = diff(base, plan(state(BUCKET, "landing", raw_bucket())))
    (warning,) = result.warnings
    assert warning.name == "raw"
    assert "likely renamed to `landing`" in warning.message


def test_same_type_under_another_parent_is_not_a_rename() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket(), parent="lake"))
    result = diff(base, plan(state(BUCKET, "landing", raw_bucket(), parent="archive")))
    (warning,) = result.warnings
    assert warning.message == "deleted with its data"


def test_a_retained_stateful_resource_leaving_the_stack_is_kept_not_deleted() -> None:
    kept = state(BUCKET, "raw", raw_bucket())
    kept["retainOnDelete"] = True
    (warning,) = diff(plan(kept), plan()).warnings
    assert warning.message == (
        "removed from the stack but retained (retainOnDelete): it and its data stay"
    )
    (warning,) = diff(plan(kept), plan(state(BUCKET, "landing", raw_bucket()))).warnings
    assert warning.message.endswith("; `landing` (same type and parent) takes its place")


def test_any_change_to_a_protected_resource_is_a_warning() -> None:
    base = plan(state("aws:iam/role:Role", "admin", {"description": "a"}, protect=True))
    result = diff(base, edited(base, description="b"))
    (warning,) = result.warnings
    assert warning.message == "protected resource updated"


def test_unchanged_protected_resource_is_not_a_warning() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket(), protect=True))
    assert diff(base, copy.deepcopy(base)).warnings == ()


@pytest.mark.parametrize(("before", "after", "word"), [(True, False, "off"), (False, True, "on")])
def test_protect_flipping_is_a_change_and_a_warning(before: bool, after: bool, word: str) -> None:
    base = plan(state("aws:kms/key:Key", "lake", {"keyUsage": "ENCRYPT_DECRYPT"}, protect=before))
    head = copy.deepcopy(base)
    head["steps"][0]["newState"]["protect"] = after
    result = diff(base, head)
    (change,) = result.changed
    assert change.properties == ()
    assert change.protect_flip
    assert result.warnings[0].message == f"deletion protection turned {word}"


def test_removing_a_protected_resource_says_up_will_fail() -> None:
    base = plan(state("aws:iam/role:Role", "admin", protect=True))
    (warning,) = diff(base, plan()).warnings
    assert "`pulumi up` fails until protection is lifted" in warning.message


def test_replacing_a_protected_stateful_resource_reports_both() -> None:
    base = plan(state(BUCKET, "raw", raw_bucket(), protect=True))
    (warning,) = diff(base, edited(base, bucket="renamed")).warnings
    assert "replaced (`bucket`)" in warning.message
    assert "replaced, which fails while protected" in warning.message


def test_a_stack_absent_at_base_is_a_new_stack() -> None:
    result = diff(None, plan(state(BUCKET, "raw", raw_bucket(), protect=True)))
    assert result.status == plandiff.STATUS_NEW
    assert [r.name for r in result.added] == ["raw"]
    assert result.warnings == ()


def test_a_stack_absent_at_head_is_not_reported_as_deletions() -> None:
    result = diff(plan(state(BUCKET, "raw", raw_bucket())), None)
    assert result.status == plandiff.STATUS_REMOVED
    assert (result.removed, result.warnings) == ((), ())


def test_policy_violations_come_from_head_and_mandatory_fails_the_exit_status() -> None:
    target = urn("aws-dev", BUCKET, "raw", COMPONENT)
    head = plan(
        state(BUCKET, "raw", raw_bucket()),
        violations=[
            violation("advisory", "tags-present", "missing cost-center", target),
            violation("mandatory", "bucket-encrypted", "no KMS key", target),
        ],
    )
    base = plan(
        state(BUCKET, "raw", raw_bucket()), violations=[violation("mandatory", "x", "", "")]
    )
    result = diff(base, head)
    assert (result.count("mandatory"), result.count("advisory")) == (1, 1)
    assert [v.policy for v in result.violations] == ["bucket-encrypted", "tags-present"]
    assert plandiff.exit_status([result]) == 1
    assert plandiff.exit_status([diff(head, base)]) == 1
    assert plandiff.exit_status([diff(base, plan(state(BUCKET, "raw", raw_bucket())))]) == 0


def test_failed_plans_are_reported_not_raised() -> None:
    head = plan(state(BUCKET, "raw", raw_bucket()))
    base_failed = plandiff.failed_plan("aws-dev", "base", "No module named tools.plan", head)
    assert (base_failed.status, base_failed.resources) == (plandiff.STATUS_BASE_FAILED, 1)
    assert plandiff.exit_status([base_failed]) == 0
    head_failed = plandiff.failed_plan("aws-dev", "head", "stacks/Pulumi.aws-dev.yaml: bad", None)
    assert plandiff.exit_status([head_failed]) == 1
    report = render_report([base_failed, head_failed], "origin/main")
    assert "- `aws-dev`: base plan failed: No module named tools.plan" in report
    assert "| n/a | n/a | n/a |" in report


def test_default_stateful_set_comes_from_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plandiff, "default_stateful_types", lambda: frozenset({BUCKET}))
    base = plan(state(BUCKET, "raw", raw_bucket()))
    assert len(diff_plans("aws-dev", base, plan(), None).warnings) == 1
    assert diff_plans("aws-dev", base, plan(), frozenset()).warnings == ()


# --- real `pulumi preview --json` ------------------------------------------------------


def real_preview() -> dict:
    return json.loads((FIXTURES / "preview_azure_prod.json").read_text(encoding="utf-8"))


def test_real_preview_ops_drive_the_diff() -> None:
    result = diff(None, real_preview(), stack="azure-prod")
    assert result.status == plandiff.STATUS_CHANGED
    assert [r.name for r in result.removed] == ["lake-raw"]
    assert result.added == ()
    by_name = {c.after.name: c for c in result.changed}
    assert sorted(by_name) == ["lake-account", "lake-vault"]
    assert by_name["lake-account"].replace_reasons == ("location",)
    assert [p.path for p in by_name["lake-vault"].properties] == ["tags.owner"]
    assert not by_name["lake-vault"].replaces
    # Stack, component and storage account: the read-only data source is not a resource.
    assert result.resources == 4


def test_real_preview_warnings() -> None:
    result = diff(None, real_preview(), stack="azure-prod")
    messages = {w.name: w.message for w in result.warnings}
    assert messages == {
        "lake-account": "replaced (`location`); the existing resource and its data are deleted",
        "lake-raw": "deleted with its data",
        "lake-vault": "protected resource updated",
    }


def test_real_preview_engine_paths_are_kept_when_inputs_show_nothing() -> None:
    preview = real_preview()
    update = next(s for s in preview["steps"] if s["op"] == "update")
    update["newState"] = copy.deepcopy(update["oldState"])
    change = next(c for c in diff(None, preview).changed if c.after.name == "lake-vault")
    assert [(p.path, p.old, p.new) for p in change.properties] == [
        ("tags", plandiff.MISSING, plandiff.MISSING),
        ("tags.owner", plandiff.MISSING, plandiff.MISSING),
    ]


# --- values -----------------------------------------------------------------------------


def test_secrets_are_compared_whole_and_never_shown() -> None:
    secret = {plandiff.SECRET_SIG[0]: plandiff.SECRET_SIG[1], "value": "hunter2"}
    changed = {**secret, "value": "hunter3"}
    (found,) = plandiff.diff_values({"password": secret}, {"password": changed})
    assert found.path == "password"
    base = plan(state("aws:iam/user:User", "u", {"password": secret}))
    report = render_report([diff(base, edited(base, password=changed))], "main")
    assert "[secret] → [secret]" in report
    assert "hunter" not in report


def test_json_documents_in_strings_are_diffed_as_documents() -> None:
    policy = {"Statement": [{"Action": ["s3:GetObject"], "Effect": "Allow"}], "Version": "1"}
    wider = copy.deepcopy(policy)
    wider["Statement"][0]["Action"].append("s3:PutObject")
    (found,) = plandiff.diff_values({"policy": json.dumps(policy)}, {"policy": json.dumps(wider)})
    assert (found.path, found.old, found.new) == (
        "policy.Statement[0].Action[1]",
        plandiff.MISSING,
        "s3:PutObject",
    )
    (plain,) = plandiff.diff_values({"name": "{not json"}, {"name": "{not json either"})
    assert plain.path == "name"


def test_long_strings_are_shown_from_near_their_first_difference() -> None:
    prefix = "arn:aws:iam::111111111111:role/" + "x" * 100
    shown = rendering._values(prefix + "-reader", prefix + "-writer")
    assert shown == f'`...{"x" * 19}-reader"` → `...{"x" * 19}-writer"`'


def test_json_types_are_respected() -> None:
    assert plandiff.diff_values({"a": True}, {"a": 1}) != []
    assert plandiff.diff_values({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) == []


def test_free_text_cannot_mention_anyone_or_break_lines() -> None:
    head = plan(violations=[violation("advisory", "p", "ask @org/admins\nnow", "")])
    report = render_report([diff(plan(), head)], "main")
    assert "ask @\u200borg/admins now" in report
    assert "@org" not in report


def test_unknown_and_long_values_render_readably() -> None:
    assert rendering._value(plandiff.UNKNOWN) == "(known after apply)"
    assert rendering._value(plandiff.MISSING) == "(absent)"
    long = rendering._value("x" * 500)
    assert long.endswith("...`") and len(long) < 100
    assert rendering.code("a`b") == "``a`b``"


# --- report -------------------------------------------------------------------------------


def golden_diffs() -> list[StackDiff]:
    """Every kind of row and finding the report has, across six stacks."""
    bucket = state(BUCKET, "raw", raw_bucket())
    role = state("aws:iam/role:Role", "reader", {"name": "reader"})
    dev_base = plan(bucket, role, state("aws:iam/policy:Policy", "read", {"policy": "{}"}))
    dev_head_bucket = copy.deepcopy(bucket)
    dev_head_bucket["inputs"].update(bucket="mlops-aws-dev-raw-v2", tags={"env": "dev"})
    advisory = violation("advisory", "lake-tags", "missing `cost-center` tag", bucket["urn"])
    dev_head = plan(
        dev_head_bucket, role, state("aws:sqs/queue:Queue", "events"), violations=[advisory]
    )

    key = state("aws:kms/key:Key", "lake", {"keyUsage": "ENCRYPT_DECRYPT"}, stack="aws-prod")
    key_unprotected = copy.deepcopy(key)
    key["protect"] = True
    repo = state("aws:ecr/repository:Repository", "models", {"name": "models"}, stack="aws-prod")
    repo_renamed = state(
        "aws:ecr/repository:Repository", "model-images", {"name": "models"}, stack="aws-prod"
    )
    mandatory = violation("mandatory", "kms-rotation", "key rotation is off", key["urn"])
    prod = diff(
        plan(key, repo), plan(key_unprotected, repo_renamed, violations=[mandatory]), "aws-prod"
    )

    account = state("azure-native:storage:StorageAccount", "lake", stack="azure-dev")
    new_stack = diff(None, plan(account), stack="azure-dev")
    unchanged = diff(plan(bucket), plan(bucket), stack="gcp-dev")
    base_failed = plandiff.failed_plan(
        "gcp-prod", "base", "No module named tools.plan", plan(bucket, role)
    )
    preview = diff(None, real_preview(), stack="azure-prod")
    return [diff(dev_base, dev_head), prod, new_stack, unchanged, base_failed, preview]


def test_report_matches_golden_file() -> None:
    report = render_report(golden_diffs(), "origin/main")
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(report, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else ""
    assert report == expected, (
        f"{GOLDEN} is out of date; if the new report is right, regenerate it with\n"
        "    UPDATE_GOLDEN=1 python -m pytest tests/test_plandiff.py -k golden"
    )


def test_report_puts_totals_then_warnings_then_folded_details() -> None:
    report = render_report(golden_diffs(), "origin/main")
    table = report.index("| Stack |")
    warnings = report.index("### :warning: 6 warnings")
    mandatory = report.index("### Mandatory policy violations")
    details = report.index("<details>")
    assert table < warnings < mandatory < details
    rows = [line for line in report.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == sorted(
        ["aws-dev", "aws-prod", "azure-dev", "azure-prod", "gcp-dev", "gcp-prod"]
    )
    assert "| `aws-prod` | changed | 2 | +1 | -1 | ~1 | **2** | **1** / 0 |" in rows


def test_report_without_warnings_says_so() -> None:
    same = plan(state("aws:iam/role:Role", "reader"))
    report = render_report([diff(same, same)], "origin/main")
    assert "No warnings" in report
    assert "<details>" not in report


def test_summary_line() -> None:
    line = plandiff.summary_line(golden_diffs()[1])
    assert line == (
        "aws-prod: changed, 2 resources, +1 -1 ~1, 2 warning(s), policy 1 mandatory / 0 advisory"
    )


# --- stack listing (the workflow matrix) -------------------------------------------------------


def stacks_dir(tmp_path: Path, *names: str, stated: dict[str, str] | None = None) -> Path:
    """Stack files stating the cloud and env their name says (or `stated`)."""
    folder = tmp_path / "stacks"
    folder.mkdir(exist_ok=True)
    for name in names:
        stack = name.removeprefix("Pulumi.").removesuffix(".yaml")
        parts = stack.split("-")
        cloud, env = (stated or {}).get(name, f"{parts[0]} {parts[-1]}").split()
        text = f"config:\n  mlops:cloud: {cloud}\n  mlops:environment: {env}\n"
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_stack_matrix_rows_and_env_filter(tmp_path: Path) -> None:
    folder = stacks_dir(
        tmp_path,
        "Pulumi.gcp-prod.yaml",
        "Pulumi.aws-dev.yaml",
        "Pulumi.azure-eu-dev.yaml",
        "Pulumi.sandbox.yaml",
        stated={"Pulumi.sandbox.yaml": "gcp dev"},
    )
    (folder / "README.md").write_text("not a stack")
    assert plandiff.stack_matrix(folder) == [
        {"cloud": "aws", "env": "dev", "stack": "aws-dev"},
        {"cloud": "azure", "env": "dev", "stack": "azure-eu-dev"},
        {"cloud": "gcp", "env": "prod", "stack": "gcp-prod"},
        # Any name: the file says where it goes.
        {"cloud": "gcp", "env": "dev", "stack": "sandbox"},
    ]
    assert [r["stack"] for r in plandiff.stack_matrix(folder, "prod")] == ["gcp-prod"]


@pytest.mark.parametrize(
    ("name", "stated", "message"),
    [
        (
            "Pulumi.aws-x-prod.yaml",
            "gcp dev",
            "stacks/Pulumi.aws-x-prod.yaml: the name says aws/prod, but the file is "
            "mlops:cloud gcp, mlops:environment dev",
        ),
        (
            "Pulumi.team-dev.yaml",
            "aws prod",
            "stacks/Pulumi.team-dev.yaml: the name says aws/dev, but the file is "
            "mlops:cloud aws, mlops:environment prod",
        ),
        (
            "Pulumi.ibm-dev.yaml",
            "ibm dev",
            "stacks/Pulumi.ibm-dev.yaml: needs `mlops:cloud: aws|gcp|azure` and "
            "`mlops:environment: dev|staging|prod` under config: to be routed",
        ),
    ],
)
def test_stack_matrix_refuses_what_it_cannot_route(
    tmp_path: Path, name: str, stated: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        plandiff.stack_matrix(stacks_dir(tmp_path, name, stated={name: stated}))
    assert str(caught.value) == message


def test_the_listing_reads_what_the_settings_read() -> None:
    for stack in stackfiles.stack_names():
        settings = load(stack, stackfiles.as_engine_strings(stackfiles.stack_values(stack)))
        stated = stackfiles.routing(stackfiles.stacks_dir() / f"Pulumi.{stack}.yaml")
        assert stated == {"cloud": settings.cloud, "environment": settings.environment}


def test_list_stacks_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stacks_dir(tmp_path, "Pulumi.aws-dev.yaml", "Pulumi.aws-prod.yaml")
    assert plandiff.main(["--list-stacks", "--env", "dev"], root=tmp_path) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"cloud": "aws", "env": "dev", "stack": "aws-dev"}
    ]
    (tmp_path / "stacks" / "Pulumi.aws-qa.yaml").write_text("", encoding="utf-8")
    assert plandiff.main(["--list-stacks"], root=tmp_path) == 2
    error = capsys.readouterr().err
    assert error.startswith("plandiff: stacks/Pulumi.aws-qa.yaml: needs `mlops:cloud")


# --- git and the planner, end to end ----------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def write_stack(repo: Path, name: str, content: dict | str) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    (repo / "stacks" / f"Pulumi.{name}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose base commit has two stacks and the stand-in planner."""
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    (root / "stacks").mkdir()
    (root / "tools" / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(FIXTURES / "fake_plan.py", root / "tools" / "plan.py")
    (root / ".gitignore").write_text("build/\n", encoding="utf-8")
    write_stack(root, "aws-dev", plan(state(BUCKET, "raw", raw_bucket())))
    write_stack(root, "gcp-dev", plan(state("gcp:storage/bucket:Bucket", "raw", stack="gcp-dev")))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "base")
    return root


def run_main(repo: Path, *args: str, base: str = "main") -> int:
    out = repo / "build" / "plan-diff"
    return plandiff.main(["--base", base, "--out", str(out), *args], root=repo, stateful=STATEFUL)


def test_end_to_end_against_a_base_revision(repo: Path, capsys: pytest.CaptureFixture) -> None:
    write_stack(repo, "aws-dev", plan(state(BUCKET, "raw", raw_bucket(bucket="renamed"))))
    account = state("azure-native:storage:StorageAccount", "lake", stack="azure-dev")
    write_stack(repo, "azure-dev", plan(account))
    assert run_main(repo) == 0
    out = repo / "build" / "plan-diff"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| `aws-dev` | changed | 1 | +0 | -0 | ~1 | **1** | 0 / 0 |" in report
    assert "| `azure-dev` | new stack | 1 | +1 | -0 | ~0 | 0 | 0 / 0 |" in report
    assert "| `gcp-dev` | no changes |" in report
    assert sorted(p.name for p in (out / "base").iterdir()) == ["aws-dev.json", "gcp-dev.json"]
    assert len(list((out / "head").iterdir())) == 3
    stdout = capsys.readouterr().out
    assert "aws-dev: changed, 1 resources, +0 -0 ~1, 1 warning(s)" in stdout
    # The base worktree is gone, from disk and from git's list.
    assert [p.name for p in out.iterdir() if p.name.startswith("base-worktree")] == []
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_end_to_end_selected_stack_and_mandatory_violation(repo: Path) -> None:
    bad = plan(
        state(BUCKET, "raw", raw_bucket()), violations=[violation("mandatory", "p", "m", "")]
    )
    write_stack(repo, "aws-dev", bad)
    assert run_main(repo, "--stack", "aws-dev") == 1
    out = repo / "build" / "plan-diff"
    assert [p.name for p in (out / "head").iterdir()] == ["aws-dev.json"]
    assert "gcp-dev" not in (out / "report.md").read_text(encoding="utf-8")


def test_end_to_end_head_settings_error(repo: Path) -> None:
    write_stack(repo, "gcp-dev", "not: [a plan")
    assert run_main(repo) == 1
    report = (repo / "build" / "plan-diff" / "report.md").read_text(encoding="utf-8")
    assert "- `gcp-dev`: plan failed: stacks/Pulumi.gcp-dev.yaml: plan: not a valid plan" in report


def test_end_to_end_base_without_planner(repo: Path) -> None:
    git(repo, "rm", "--quiet", "tools/plan.py")
    git(repo, "commit", "--quiet", "-m", "before the planner")
    git(repo, "tag", "old")
    git(repo, "checkout", "--quiet", "HEAD~1", "--", "tools/plan.py")
    out = repo / "build" / "plan-diff"
    status = plandiff.main(["--base", "old", "--out", str(out)], root=repo, stateful=STATEFUL)
    assert status == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| `aws-dev` | base plan failed | 1 | n/a | n/a | n/a |" in report
    assert "No module named tools.plan" in report


def test_end_to_end_usage_errors(repo: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_main(repo, base="no-such-rev") == 2
    assert capsys.readouterr().err.startswith("plandiff: --base no-such-rev: not a commit")
    assert run_main(repo, "--stack", "aws-qa") == 2
    assert "Pulumi.aws-qa.yaml" in capsys.readouterr().err
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.plandiff", "--help"],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--base REV" in done.stdout


def test_every_stateful_type_has_its_replace_forcing_properties() -> None:
    from mlops_policies.catalog import STATEFUL_TYPES

    from tools.plandiff import REPLACE_ON_CHANGE

    assert sorted(STATEFUL_TYPES - set(REPLACE_ON_CHANGE)) == []


# --- key generations on Azure ----------------------------------------------------

KEY = "azure-native:keyvault:Key"


def _generation_plans(
    monkeypatch: pytest.MonkeyPatch, stack: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    from infra.azure import key
    from tools.plan import plan_values

    values = stackfiles.stack_values(stack)
    head = planned(stack).preview_json()
    monkeypatch.setattr(key, "GENERATIONS", key.GENERATIONS[:1])
    base = plan_values(stack, values).preview_json()
    return base, head


def test_a_new_key_generation_is_a_new_key_never_a_replacement_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = "azure-prod"
    base, head = _generation_plans(monkeypatch, stack)
    result = diff_plans(stack, base, head)
    keys = [f"mlops-{stack}-key", f"mlops-{stack}-images-bootstrap"]
    assert sorted(r.name for r in result.removed if r.type == KEY) == sorted(keys)
    assert sorted(r.name for r in result.added if r.type == KEY) == sorted(f"{k}-g2" for k in keys)
    # Nothing stateful is replaced: the lake moves to the new key in place.
    assert [c.after.name for c in result.changed if c.replaces and c.after.type in STATEFUL] == []
    lake = next(c for c in result.changed if c.after.name == f"mlops-{stack}-lake-account")
    assert [p.path for p in lake.properties] == ["encryption.keyVaultProperties.keyName"]
    assert not lake.replaces
    warning = next(w for w in result.warnings if w.name == f"mlops-{stack}-key")
    # Kept in the vault, and not protected, so the update that retires it can run.
    assert warning.message == (
        "removed from the stack but retained (retainOnDelete): it and its data stay; "
        "`mlops-azure-prod-key-g2` (same type and parent) takes its place"
    )
    # The registry follows through RegistryKeyRotation, not a change to the registry.
    assert not [c for c in result.changed if c.after.type.endswith(":Registry") and c.replaces]


def test_a_rename_by_alias_is_the_same_resource_not_a_delete_and_create() -> None:
    old = state("aws:kms/key:Key", "key-key", {"keyUsage": "ENCRYPT_DECRYPT"}, protect=True)
    new = state("aws:kms/key:Key", "key", {"keyUsage": "ENCRYPT_DECRYPT"}, protect=True)
    new["aliases"] = [old["urn"]]
    result = diff(plan(old), plan(new))
    assert (result.added, result.removed, result.warnings) == ((), (), ())
    (change,) = result.changed
    assert [(p.path, p.old, p.new) for p in change.properties] == [
        ("(name, by alias)", "key-key", "key")
    ]
    assert not change.replaces
    # Without the alias it would be a delete and a create, and say so.
    del new["aliases"]
    assert "likely renamed" in diff(plan(old), plan(new)).warnings[0].message


def test_the_shipped_renames_carry_their_aliases() -> None:
    """The key and model group once named `<component>-key` and `<component>-models`."""
    from conftest import one

    prod = planned("aws-prod")
    key = one(prod, "aws:kms/key:Key")
    assert key.name == "mlops-aws-prod-key"
    assert key.aliases == [key.urn.replace("::mlops-aws-prod-key", "::mlops-aws-prod-key-key")]
    group = one(prod, "aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert group.aliases == [group.urn + "-models"]
    gcp = one(planned("gcp-prod"), "gcp:kms/cryptoKey:CryptoKey")
    assert gcp.aliases == [gcp.urn + "-key"]


def test_a_replacement_reaches_a_consumer_that_was_renamed_by_alias() -> None:
    model = state("aws:sagemaker/model:Model", "model", {"primaryContainer": {"image": "a:1"}})
    config_old = state("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "cfg-old")
    config_new = state("aws:sagemaker/endpointConfiguration:EndpointConfiguration", "cfg")
    for config in (config_old, config_new):
        config["inputs"] = {"productionVariants": [{"modelName": "model"}]}
        config["propertyDependencies"] = {"productionVariants": [model["urn"]]}
    config_new["aliases"] = [config_old["urn"]]
    new_model = copy.deepcopy(model)
    new_model["inputs"]["primaryContainer"]["image"] = "a:2"
    result = diff(plan(model, config_old), plan(new_model, config_new))
    changes = {c.after.name: c for c in result.changed}
    assert changes["model"].replace_reasons == ("primaryContainer",)
    assert changes["cfg"].replace_reasons == ("productionVariants",)


def test_a_stack_that_changes_region_is_warned_that_everything_moves() -> None:
    from tools.plan import plan_values

    base = planned("aws-dev").preview_json()
    values = stackfiles.stack_values("aws-dev")
    values["aws:region"] = "us-east-1"
    head = plan_values("aws-dev", values).preview_json()
    diff = diff_plans("aws-dev", base, head)
    (moved,) = [w for w in diff.warnings if w.type == "pulumi:pulumi:Stack"]
    assert moved.urn == "urn:pulumi:aws-dev::mlops::pulumi:pulumi:Stack::mlops-aws-dev"
    assert moved.message.startswith(
        "`aws:region` changes from `eu-west-1` to `us-east-1`: every resource is created anew"
    )
    # The same region, or a base planned before plans carried their config: no such warning.
    assert diff_plans("aws-dev", base, base).warnings == ()
    old = {k: v for k, v in base.items() if k != "config"}
    assert [w.type for w in diff_plans("aws-dev", old, head).warnings].count(
        "pulumi:pulumi:Stack"
    ) == 0
