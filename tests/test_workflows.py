"""The GitHub workflows: pinned actions, least privilege, stack routing, and the comment script.

Schema validity is `make lint`'s job (check-jsonschema); these tests check what
a schema cannot: the project's own rules for the workflows.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import plandiff, stackfiles

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
HARNESS = Path(__file__).parent / "fixtures" / "plandiff" / "github_script_harness.js"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
LIST_OUTPUT = re.compile(r"^\$\{\{ fromJSON\(needs\.stacks\.outputs\.(\w+)\) \}\}$")
LOGIN_ACTIONS = ("aws-actions/", "google-github-actions/auth", "azure/login")
MARKER = "<!-- mlops-plan-report -->"


def load(name: str) -> dict[str, Any]:
    # libyaml's safe loader: the same YAML 1.1 reading, a tenth of the time.
    return yaml.load((WORKFLOWS / name).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return workflow.get("on", workflow.get(True)) or {}


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def pulumi_steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, step in steps(workflow):
        if step.get("uses", "").startswith("pulumi/actions@"):
            yield job_id, step


def command_jobs(workflow: dict[str, Any], command: str) -> list[str]:
    return sorted({j for j, s in pulumi_steps(workflow) if s["with"]["command"] == command})


def matrix_listing(job: dict[str, Any]) -> str | None:
    """Which `stacks` output a job's matrix comes from, if it is generated."""
    include = job.get("strategy", {}).get("matrix", {}).get("include")
    match = LIST_OUTPUT.match(include) if isinstance(include, str) else None
    return match.group(1) if match else None


def literal_matrix_stacks(job: dict[str, Any]) -> list[str]:
    matrix = job.get("strategy", {}).get("matrix", {})
    names = list(matrix.get("stack", [])) if isinstance(matrix.get("stack"), list) else []
    include = matrix.get("include")
    if isinstance(include, list):
        names += [row["stack"] for row in include if "stack" in row]
    return names


def test_the_expected_workflows_exist() -> None:
    assert sorted(all_workflows()) == [
        "ci.yml",
        "deploy.yml",
        "plan-comment.yml",
        "preview.yml",
        "publish-image.yml",
    ]


# --- supply chain and privilege --------------------------------------------------------


def test_every_action_is_pinned_to_a_full_version_and_consistently() -> None:
    versions: dict[str, set[str]] = {}
    for name, workflow in all_workflows().items():
        for job_id, step in steps(workflow):
            uses = step.get("uses")
            if uses is None:
                continue
            assert PINNED.match(uses), f"{name}: {job_id}: {uses} is not pinned to a commit SHA"
            action, version = uses.split("@")
            versions.setdefault(action, set()).add(version)
    assert {a: v for a, v in versions.items() if len(v) > 1} == {}
    assert "actions/checkout" in versions


def test_every_workflow_and_job_declares_least_privilege() -> None:
    for name, workflow in all_workflows().items():
        assert workflow.get("permissions") in ({}, {"contents": "read"}), name
        for job_id, job in workflow["jobs"].items():
            grants = job.get("permissions")
            assert isinstance(grants, dict), f"{name}: {job_id} has no permissions block"
            assert "write-all" not in str(grants)
            writes = {scope for scope, level in grants.items() if level == "write"}
            # Only the publisher signs attestations of what it built.
            allowed = {"id-token", "pull-requests"} | (
                {"attestations"} if name == "publish-image.yml" else set()
            )
            assert writes <= allowed, f"{name}: {job_id}: {writes}"


def test_only_jobs_that_log_in_to_a_cloud_get_an_oidc_token() -> None:
    for name, workflow in all_workflows().items():
        for job_id, job in workflow["jobs"].items():
            uses = [s.get("uses", "") for s in job.get("steps", [])]
            logs_in = any(u.startswith(LOGIN_ACTIONS) for u in uses)
            has_token = job["permissions"].get("id-token") == "write"
            assert logs_in == has_token, f"{name}: {job_id}"


def test_no_long_lived_cloud_keys() -> None:
    forbidden = (
        "aws-access-key-id",
        "aws-secret-access-key",
        "credentials_json",
        "creds",
        "client-secret",
    )
    for name, workflow in all_workflows().items():
        for job_id, step in steps(workflow):
            used = set(step.get("with", {})) & set(forbidden)
            assert not used, f"{name}: {job_id}: {used}"


def test_checkouts_do_not_keep_the_token() -> None:
    for name, workflow in all_workflows().items():
        for job_id, step in steps(workflow):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{name}: {job_id}"


# --- ci.yml ----------------------------------------------------------------------------------


def test_ci_lints_and_tests_on_three_pythons_with_pip_cache() -> None:
    ci = load("ci.yml")
    assert set(triggers(ci)) == {"pull_request", "push"}
    assert triggers(ci)["push"]["branches"] == ["main"]
    job = ci["jobs"]["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"] == {
        "python-version": "${{ matrix.python }}",
        "cache": "pip",
        "cache-dependency-path": "requirements.txt",
    }
    assert [s["run"] for s in job["steps"] if "run" in s] == ["make lint", "make test"]


def test_ci_plans_diffs_and_uploads_everything_the_comment_needs() -> None:
    job = load("ci.yml")["jobs"]["plan"]
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0
    runs = [s.get("run", "") for s in job["steps"]]
    assert "make plan" in runs
    assert any(r.startswith("make plan-diff BASE=") for r in runs)
    assert any("build/pr.json" in r for r in runs)
    upload = next(
        s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["name"] == "plan"
    paths = upload["with"]["path"].split()
    assert {"build/pr.json", "build/plan/", "build/plan-diff/report.md"} <= set(paths)
    # The upload must happen after a failed plan too, or a violation never reaches the PR.
    assert "!cancelled()" in upload["if"]


def test_ci_never_interpolates_pull_request_text_into_scripts() -> None:
    for _, step in steps(load("ci.yml")):
        assert "${{" not in step.get("run", ""), step.get("name")


# --- plan-comment.yml --------------------------------------------------------------------------


def test_plan_comment_runs_after_ci_and_never_touches_code() -> None:
    workflow = load("plan-comment.yml")
    assert triggers(workflow) == {"workflow_run": {"workflows": ["ci"], "types": ["completed"]}}
    assert load("ci.yml")["name"] == "ci"
    for job_id, step in steps(workflow):
        assert "run" not in step, f"{job_id}: a shell step"
        assert not step["uses"].startswith("actions/checkout@"), job_id
    download = next(s for _, s in steps(workflow) if "download-artifact" in s["uses"])
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert download["with"]["github-token"] == "${{ github.token }}"
    assert "github.event.workflow_run.event == 'pull_request'" in workflow["jobs"]["comment"]["if"]


def comment_script() -> str:
    step = next(
        s for _, s in steps(load("plan-comment.yml")) if "github-script" in s.get("uses", "")
    )
    return step["with"]["script"]


def run_comment(tmp_path: Path, scenario: dict[str, Any], files: dict[str, str]) -> list:
    """Run the github-script step under node with recording fakes; return its calls."""
    artifact = tmp_path / "artifact"
    for relative, text in files.items():
        (artifact / relative).parent.mkdir(parents=True, exist_ok=True)
        (artifact / relative).write_text(text, encoding="utf-8")
    script, scenario_file = tmp_path / "script.js", tmp_path / "scenario.json"
    script.write_text(comment_script(), encoding="utf-8")
    scenario_file.write_text(json.dumps(scenario), encoding="utf-8")
    env = {
        "ARTIFACT_DIR": str(artifact),
        "RUN_HEAD_SHA": "abc123",
        "RUN_URL": "https://example.invalid/run/1",
        "PATH": "/usr/bin:/bin",
    }
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(HARNESS), str(script), str(scenario_file)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def writes(calls: list) -> list:
    return [c for c in calls if c[0] in ("issues.createComment", "issues.updateComment")]


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node runs the script")
REPORT = {"plan-diff/report.md": "## Plan diff\n\nok\n", "pr.json": json.dumps({"number": 12})}


@needs_node
def test_comment_is_created_once_with_the_marker(tmp_path: Path) -> None:
    calls = run_comment(tmp_path, {"pullHeadSha": "abc123", "comments": []}, REPORT)
    ((name, args),) = writes(calls)
    assert name == "issues.createComment"
    assert args["issue_number"] == 12
    assert args["body"].startswith(MARKER + "\n## Plan diff")
    assert "https://example.invalid/run/1" in args["body"]


@needs_node
def test_comment_updates_its_own_comment_only(tmp_path: Path) -> None:
    comments = [
        {"id": 1, "user": {"login": "someone"}, "body": f"quoting {MARKER}"},
        {"id": 2, "user": {"login": "github-actions[bot]"}, "body": f"{MARKER}\nold"},
    ]
    calls = run_comment(tmp_path, {"pullHeadSha": "abc123", "comments": comments}, REPORT)
    ((name, args),) = writes(calls)
    assert (name, args["comment_id"]) == ("issues.updateComment", 2)


@needs_node
@pytest.mark.parametrize("number", ["12", 1.5, -3, None, "12; rm -rf /"])
def test_comment_refuses_a_pull_request_number_that_is_not_an_integer(
    tmp_path: Path, number: object
) -> None:
    files = {**REPORT, "pr.json": json.dumps({"number": number})}
    calls = run_comment(tmp_path, {"pullHeadSha": "abc123"}, files)
    assert [c[0] for c in calls] == ["core.setFailed"]


@needs_node
def test_comment_skips_a_pull_request_whose_head_is_another_commit(tmp_path: Path) -> None:
    calls = run_comment(tmp_path, {"pullHeadSha": "fff999"}, REPORT)
    assert writes(calls) == []
    assert calls[-1][0] == "core.notice"


@needs_node
def test_comment_is_capped_and_cannot_fake_the_marker(tmp_path: Path) -> None:
    huge = MARKER + "\n" + "\n".join(f"- line {i} " + "x" * 60 for i in range(5000))
    files = {**REPORT, "plan-diff/report.md": huge}
    calls = run_comment(tmp_path, {"pullHeadSha": "abc123"}, files)
    body = writes(calls)[0][1]["body"]
    assert len(body) <= 65000
    assert body.count(MARKER) == 1
    assert "**Report truncated**" in body


@needs_node
def test_comment_without_a_report_points_to_the_run(tmp_path: Path) -> None:
    calls = run_comment(tmp_path, {"pullHeadSha": "abc123"}, {"pr.json": '{"number": 12}'})
    assert "No plan diff report" in writes(calls)[0][1]["body"]


# --- stacks: matrices, preview, deploy, drift ------------------------------------------


def test_generated_matrices_come_from_the_stack_listing() -> None:
    env_flag = {"all": "--list-stacks)", **{env: f"--env {env})" for env in plandiff.ENVIRONMENTS}}
    for name, workflow in all_workflows().items():
        jobs = workflow["jobs"]
        for job_id, job in jobs.items():
            listing = matrix_listing(job)
            if listing is None:
                continue
            assert "stacks" in job["needs"], f"{name}: {job_id}"
            assert jobs["stacks"]["outputs"][listing] == f"${{{{ steps.list.outputs.{listing} }}}}"
            script = [li.strip() for li in jobs["stacks"]["steps"][-1]["run"].splitlines()]
            listed = f"{listing}=$(python -m tools.plandiff --list-stacks"
            line = next(li for li in script if li.startswith(listed))
            assert line.endswith(env_flag[listing]), line
            assert any(li.startswith(f'echo "{listing}=${{{listing}}}"') for li in script)
            # An empty listing would make an invalid matrix: such jobs are skipped.
            assert f"needs.stacks.outputs.{listing} != '[]'" in job["if"], f"{name}: {job_id}"


def test_every_stack_named_in_a_matrix_has_a_stack_file() -> None:
    for name, workflow in all_workflows().items():
        for job_id, job in workflow["jobs"].items():
            for stack in literal_matrix_stacks(job):
                path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
                assert path.is_file(), f"{name}: {job_id}: no {path.relative_to(ROOT)}"


def test_the_stack_listing_needs_only_the_standard_library() -> None:
    # The `stacks` jobs install nothing before listing.
    done = subprocess.run(
        [sys.executable, "-S", "-m", "tools.plandiff", "--list-stacks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == plandiff.stack_matrix(ROOT / "stacks")


def test_the_repository_stacks_all_route_to_a_cloud_and_env() -> None:
    rows = plandiff.stack_matrix(ROOT / "stacks")
    assert [r["stack"] for r in rows] == stackfiles.list_stacks(ROOT / "stacks")
    by_env = [
        r["stack"]
        for env in plandiff.ENVIRONMENTS
        for r in plandiff.stack_matrix(ROOT / "stacks", env)
    ]
    assert sorted(by_env) == [r["stack"] for r in rows]


def test_every_environment_has_a_policy_pack_config() -> None:
    for env in plandiff.ENVIRONMENTS:
        assert (ROOT / "policies" / "config" / f"{env}.json").is_file(), env


def pinned_pulumi() -> str:
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    match = re.search(r"^pulumi==(\S+)$", pins, re.MULTILINE)
    assert match, "requirements.txt pins no pulumi version"
    return match.group(1)


def test_every_pulumi_step_is_configured_the_same_way() -> None:
    for name, workflow in all_workflows().items():
        for job_id, step in pulumi_steps(workflow):
            given = step["with"]
            where = f"{name}: {job_id}"
            assert given["stack-name"] == "${{ matrix.stack }}", where
            assert given["pulumi-version"] == pinned_pulumi(), where
            assert "vars.PULUMI_BACKEND_URL" in given["cloud-url"], where
            assert given["secrets-provider"] == "passphrase", where
            passphrase = step["env"]["PULUMI_CONFIG_PASSPHRASE"]
            assert passphrase == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}", where
            if given["command"] in ("preview", "up") and job_id != "drift":
                assert given["policyPacks"] == "policies", where
                assert given["policyPackConfigs"] == "policies/config/${{ matrix.env }}.json"


def test_every_cloud_login_matches_its_matrix_cloud_and_is_configured_alike() -> None:
    seen: dict[str, list[dict[str, str]]] = {}
    for name, workflow in all_workflows().items():
        if "workflow_call" in triggers(workflow):
            continue  # logs in from its caller's inputs (tests/test_publish_workflow.py)
        for job_id, step in steps(workflow):
            uses = step.get("uses", "")
            for cloud, action in zip(plandiff.CLOUDS, LOGIN_ACTIONS, strict=True):
                if uses.startswith(action):
                    assert step["if"] == f"matrix.cloud == '{cloud}'", f"{name}: {job_id}"
                    seen.setdefault(cloud, []).append(step["with"])
    assert sorted(seen) == sorted(plandiff.CLOUDS)
    for cloud, configs in seen.items():
        assert all(c == configs[0] for c in configs), cloud
        assert all(v.startswith("${{ vars.") for v in configs[0].values()), cloud


def stack_config(stack: str) -> dict[str, Any]:
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")).get("config", {})


def test_stack_names_agree_with_their_cloud_and_environment_settings() -> None:
    # The workflows route by name; the program by settings. They must not disagree.
    for row in plandiff.stack_matrix(ROOT / "stacks"):
        config = stack_config(row["stack"])
        assert config.get("mlops:cloud") == row["cloud"], row["stack"]
        assert config.get("mlops:environment") == row["env"], row["stack"]


def test_preview_runs_only_for_pull_requests_from_this_repository() -> None:
    preview = load("preview.yml")
    assert set(triggers(preview)) == {"pull_request"}
    jobs = preview["jobs"]
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    for job_id, job in jobs.items():
        needs = job.get("needs", [])
        guarded = same_repo in job.get("if", "") or any(
            same_repo in jobs[n].get("if", "")
            for n in ([needs] if isinstance(needs, str) else needs)
        )
        assert guarded, job_id
    (step,) = [s for _, s in pulumi_steps(preview)]
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True


def test_deploy_triggers() -> None:
    on = triggers(load("deploy.yml"))
    # Not on push: only once `ci` has finished on main.
    assert "push" not in on
    assert on["workflow_run"] == {"workflows": ["ci"], "types": ["completed"], "branches": ["main"]}
    assert load("ci.yml")["name"] == "ci"
    assert "workflow_dispatch" in on
    assert len(on["schedule"]) == 1


def test_deploy_takes_only_commits_ci_passed_and_deploys_exactly_that_commit() -> None:
    deploy = load("deploy.yml")
    gate = deploy["jobs"]["stacks"]["if"]
    assert "github.event.workflow_run.conclusion == 'success'" in gate
    assert "github.event.workflow_run.event == 'push'" in gate
    # A push to a fork's main never deploys here.
    assert "github.event.workflow_run.head_repository.full_name == github.repository" in gate
    # Every later job needs the listing, so a failed CI run deploys nothing.
    for job_id in command_jobs(deploy, "up"):
        assert "stacks" in deploy["jobs"][job_id]["needs"]
    # A manual deploy checks CI's verdict on the commit first.
    check = deploy["jobs"]["stacks"]["steps"][0]
    assert "gh run list" in check["run"] and "--status success" in check["run"]
    assert "exit 1" in check["run"]
    assert deploy["jobs"]["stacks"]["permissions"] == {"contents": "read", "actions": "read"}
    for job_id, step in steps(deploy):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert (
                step["with"]["ref"] == "${{ github.event.workflow_run.head_sha || github.sha }}"
            ), job_id


def test_deploy_runs_dev_then_staging_then_prod_behind_the_prod_environment() -> None:
    jobs = load("deploy.yml")["jobs"]
    up_jobs = command_jobs(load("deploy.yml"), "up")
    assert up_jobs == ["up-dev", "up-prod", "up-staging"]
    waves = [f"up-{env}" for env in plandiff.ENVIRONMENTS]
    for before, job_id in itertools.pairwise(waves):
        assert before in jobs[job_id]["needs"], f"{job_id} does not wait for {before}"
    for env in plandiff.ENVIRONMENTS:
        job = jobs[f"up-{env}"]
        assert matrix_listing(job) == env
        # Every deploying job has an environment: prod's reviewers gate prod.
        assert job["environment"] == env
        assert "schedule" not in job["if"]
        assert "github.ref == 'refs/heads/main'" in job["if"]
    assert set(jobs["up-prod"]["needs"]) >= {"up-dev", "up-staging"}


def test_deploy_never_runs_two_updates_of_one_stack() -> None:
    jobs = load("deploy.yml")["jobs"]
    for job_id in command_jobs(load("deploy.yml"), "up"):
        assert jobs[job_id]["concurrency"] == {
            "group": "deploy-${{ matrix.stack }}",
            "cancel-in-progress": False,
        }, job_id


def test_nightly_drift_check_names_the_stack() -> None:
    deploy = load("deploy.yml")
    job = deploy["jobs"]["drift"]
    assert matrix_listing(job) == "all"
    assert "github.event_name == 'schedule'" in job["if"]
    assert job["concurrency"]["group"] != "deploy-${{ matrix.stack }}"
    (step,) = [s for j, s in pulumi_steps(deploy) if j == "drift"]
    assert step["with"]["command"] == "preview"
    assert step["with"]["expect-no-changes"] is True
    assert step["with"]["refresh"] is True
    report = job["steps"][-1]
    assert report["if"] == "failure() && steps.preview.outcome == 'failure'"
    assert report["env"]["STACK"] == "${{ matrix.stack }}"
    assert "::error" in report["run"]
    assert "GITHUB_STEP_SUMMARY" in report["run"]


# --- docs ----------------------------------------------------------------------------------------


def test_docs_name_every_variable_and_secret_the_workflows_read() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(WORKFLOWS.glob("*.yml")))
    names = set(re.findall(r"\b(?:vars|secrets)\.([A-Z][A-Z0-9_]+)", text))
    if "PULUMI_BACKEND_URL_{0}" in text:
        names |= {f"PULUMI_BACKEND_URL_{cloud.upper()}" for cloud in plandiff.CLOUDS}
    docs = (ROOT / "README.md").read_text(encoding="utf-8")
    assert names, "no variables found"
    assert sorted(n for n in names if f"`{n}`" not in docs) == []


def test_the_pin_audit_names_every_unpinned_action(tmp_path: Path) -> None:
    from tools import pinned_actions

    workflow = tmp_path / "w.yml"
    sha = "de0fac2e4500dabe0009e67214ff5f5447ce83dd"
    workflow.write_text(
        "jobs:\n  a:\n    steps:\n"
        "      - uses: actions/checkout@v6.0.2\n"
        f"      - uses: actions/checkout@{sha}\n"
        f"      - uses: actions/checkout@{sha} # v6.0.2\n"
        "      - uses: ./local-action\n"
        "        with: {uses: x}\n"
    )
    assert list(pinned_actions.problems(workflow)) == [
        f"{workflow}:4: actions/checkout@v6.0.2: pin the full commit SHA of the release "
        "(`@<sha> # vX.Y.Z`)",
        f"{workflow}:5: actions/checkout@{sha}: name the release the SHA is in (`# vX.Y.Z`)",
    ]
    assert pinned_actions.main([str(workflow)]) == 1
    assert pinned_actions.main() == 0  # the repository's own workflows


def test_dependabot_updates_the_actions_and_every_requirements_file() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    pinned = {
        "/" + p.parent.relative_to(ROOT).as_posix().removeprefix(".")
        for p in [ROOT / "requirements.txt", *ROOT.glob("*/requirements.txt")]
    }
    assert set(updates["pip"]["directories"]) == pinned == {"/", "/policies"}
    # One pull request moves the program's and the policy pack's pins together.
    assert updates["pip"]["groups"]["python"]["patterns"] == ["*"]
