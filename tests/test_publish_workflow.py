"""The reusable image-publishing workflow: what it takes, what the stacks give it,
how it refuses bad inputs (its check script is run here), and what it pushes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import planned

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "publish-image.yml"
SHA = "0123456789abcdef0123456789abcdef01234567"
CLOUDS = ("aws", "gcp", "azure")


def workflow() -> dict[str, Any]:
    # libyaml's safe loader: the same YAML 1.1 reading, a tenth of the time.
    return yaml.load(WORKFLOW.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def inputs() -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    return workflow()[True]["workflow_call"]["inputs"]


def job() -> dict[str, Any]:
    (only,) = workflow()["jobs"].values()
    return only


def step(key: str, value: str) -> dict[str, Any]:
    (found,) = [s for s in job()["steps"] if s.get(key) == value]
    return found


def run_check(
    tmp_path: Path, ref: str = "refs/heads/main", **given: str
) -> tuple[int, list[str], str]:
    """Runs the workflow's input check as the runner does (`bash -e`), with the
    inputs by name; returns its status, its error lines and what it outputs."""
    check = step("id", "check")
    variables = {}  # input name -> the environment variable the script reads it from
    for variable, expression in check["env"].items():
        match = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", expression)
        if match:
            variables[match.group(1)] = variable
    env = {
        "PATH": os.environ["PATH"],
        "REF": ref,
        "GITHUB_SHA": SHA,
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "PLATFORM": inputs()["platform"]["default"],
    }
    for name, value in given.items():
        env[variables[name]] = value
    script = tmp_path / "check.sh"
    script.write_text(check["run"], encoding="utf-8")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = tmp_path / "output"
    errors = [
        line.removeprefix("::error title=publish-image::")
        for line in done.stdout.splitlines()
        if line.startswith("::error")
    ]
    return done.returncode, errors, output.read_text() if output.exists() else ""


# --- the stacks give the caller exactly what the workflow takes -----------------------


@pytest.mark.parametrize("stack", ["aws-prod", "gcp-prod", "azure-prod", "azure-dev"])
def test_each_stacks_publish_inputs_pass_the_workflows_check(stack: str, tmp_path: Path) -> None:
    plan = planned(stack)
    given = dict(plan.outputs["publishInputs"])
    cloud = given["cloud"]
    assert cloud == stack.split("-", maxsplit=1)[0]
    # Exactly the identity inputs of that cloud, no more, no fewer.
    assert set(given) == {"cloud"} | {n for n in inputs() if n.startswith(f"{cloud}-")}
    serving = plan.outputs["containerRepositoryUrls"]["serving"]
    # An Artifact Registry repository holds many images: the caller names one.
    image = f"{serving}/churn" if cloud == "gcp" else serving
    status, errors, output = run_check(tmp_path, image=image, **given)
    assert (status, errors) == (0, [])
    assert output.splitlines() == [f"registry={image.split('/')[0]}", f"tag={image}:{SHA}"]


def test_the_publisher_identities_are_the_ones_the_stacks_trust() -> None:
    aws = planned("aws-prod").outputs
    assert aws["publishInputs"]["aws-role-arn"] == aws["publisherRoleArn"]
    gcp = planned("gcp-prod").outputs
    assert gcp["publishInputs"]["gcp-service-account"] == gcp["publisherEmail"]
    azure = planned("azure-prod").outputs
    assert azure["publishInputs"]["azure-client-id"] == azure["publisherClientId"]


# --- bad inputs: one line each, before anything is built -------------------------------


def test_the_check_names_every_bad_input_and_stops(tmp_path: Path) -> None:
    status, errors, output = run_check(
        tmp_path,
        ref="refs/heads/feature",
        cloud="gcp",
        image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/x",
        **{"gcp-service-account": "someone@gmail.com"},
    )
    assert status == 1
    assert errors == [
        "github.ref: refs/heads/feature is not refs/heads/main, the only ref the stack's "
        "publisher trusts",
        "inputs.image: '111111111111.dkr.ecr.eu-west-1.amazonaws.com/x' is not an Artifact "
        "Registry image (<location>-docker.pkg.dev/<project>/<repository>/<image>)",
        "inputs.gcp-workload-identity-provider: required when cloud is gcp",
        "inputs.gcp-service-account: 'someone@gmail.com' is not a service account's email",
        "4 problem(s) in the inputs; nothing was built or pushed",
    ]
    assert output == ""


def test_the_check_refuses_an_aws_region_other_than_the_images(tmp_path: Path) -> None:
    status, errors, _ = run_check(
        tmp_path,
        cloud="aws",
        image="111111111111.dkr.ecr.eu-west-1.amazonaws.com/mlops-aws-prod/serving",
        **{"aws-role-arn": "arn:aws:iam::111111111111:user/me", "aws-region": "us-east-1"},
    )
    assert status == 1
    assert errors[:2] == [
        "inputs.aws-region: us-east-1 is not the image's region eu-west-1",
        "inputs.aws-role-arn: 'arn:aws:iam::111111111111:user/me' is not an IAM role ARN",
    ]


def test_the_check_refuses_azure_ids_that_are_not_guids_and_unknown_clouds(
    tmp_path: Path,
) -> None:
    status, errors, _ = run_check(
        tmp_path,
        cloud="azure",
        image="registry.example.com/serving",
        **{
            "azure-client-id": "publisher",
            "azure-tenant-id": "00000000-0000-0000-0000-000000000002",
        },
    )
    assert status == 1
    assert errors == [
        "inputs.image: 'registry.example.com/serving' is not an ACR repository "
        "(<registry>.azurecr.io/<repository>)",
        "inputs.azure-subscription-id: required when cloud is azure",
        "inputs.azure-client-id: 'publisher' is not a GUID",
        "3 problem(s) in the inputs; nothing was built or pushed",
    ]
    status, errors, _ = run_check(tmp_path, cloud="AWS", image="x")
    assert (status, errors[0]) == (1, "inputs.cloud: 'AWS' is not aws, gcp or azure")


# --- what runs ------------------------------------------------------------------------


def test_it_is_only_callable_and_holds_only_what_publishing_needs() -> None:
    assert set(workflow()[True]) == {"workflow_call"}
    assert workflow()["permissions"] == {}
    assert job()["permissions"] == {
        "contents": "read",
        "id-token": "write",
        "attestations": "write",
    }
    outputs = workflow()[True]["workflow_call"]["outputs"]
    assert set(outputs) == {"image", "digest"}
    # Nothing a caller could mistake for a secret: identities are not secrets.
    assert "secrets" not in workflow()[True]["workflow_call"]


def test_each_cloud_logs_in_as_its_publisher_from_the_inputs_only() -> None:
    logins = {
        "aws": "aws-actions/configure-aws-credentials@",
        "gcp": "google-github-actions/auth@",
        "azure": "azure/login@",
    }
    for cloud, action in logins.items():
        (login,) = [s for s in job()["steps"] if s.get("uses", "").startswith(action)]
        assert login["if"] == f"inputs.cloud == '{cloud}'"
        from_inputs = {k: v for k, v in login["with"].items() if "inputs." in v}
        assert all(re.fullmatch(r"\$\{\{ inputs\.[a-z-]+ \}\}", v) for v in from_inputs.values())
        others = {k: v for k, v in login["with"].items() if k not in from_inputs}
        assert others in ({}, {"token_format": "access_token", "access_token_lifetime": "3600s"})
    # Every registry login comes after the check and is gated to its cloud.
    names = [s.get("name", s.get("uses", "")) for s in job()["steps"]]
    assert names[0] == "Check the inputs"
    for name in ("Log in to ECR", "Log in to Artifact Registry", "Log in to ACR"):
        assert step("name", name)["if"].startswith("inputs.cloud == ")


def test_the_image_is_one_docker_manifest_tagged_by_commit_without_a_shared_cache() -> None:
    build = step("id", "build")["with"]
    # SageMaker refuses OCI media types and image indexes (BuildKit attestations
    # turn an image into an index), so neither is pushed.
    assert build["provenance"] is False
    assert build["sbom"] is False
    assert build["outputs"] == "type=registry,oci-mediatypes=false"
    assert "push" not in build  # `push` would add a second, OCI, exporter
    assert build["tags"] == "${{ steps.check.outputs.tag }}"
    assert not {"cache-from", "cache-to"} & set(build)
    assert step("id", "build")["if"] == "steps.existing.outputs.digest == ''"


def test_provenance_and_the_sbom_are_attested_on_the_pushed_digest() -> None:
    sbom = step("name", "SBOM")["with"]
    assert sbom["image"] == "${{ inputs.image }}@${{ steps.build.outputs.digest }}"
    assert sbom["format"] == "spdx-json"
    attestations = [s for s in job()["steps"] if s.get("uses", "").startswith("actions/attest@")]
    assert len(attestations) == 2
    for attestation in attestations:
        given = attestation["with"]
        assert given["subject-name"] == "${{ inputs.image }}"
        assert given["subject-digest"] == "${{ steps.build.outputs.digest }}"
        # Not into the registry, whose lifecycle rules would expire them.
        assert given["push-to-registry"] is False
        assert attestation["if"] == "steps.build.outcome == 'success'"
    assert [a["with"].get("sbom-path") for a in attestations] == [None, sbom["output-file"]]


def readme_caller() -> dict[str, Any]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    (caller,) = [b for b in blocks if "publish-image.yml@" in b]
    return yaml.safe_load(caller)


def test_the_readmes_caller_is_one_the_workflow_accepts(tmp_path: Path) -> None:
    caller = readme_caller()
    assert set(caller[True]["push"]["branches"]) == {"main"}
    (called,) = caller["jobs"].values()
    path, ref = called["uses"].split("@")
    assert path.endswith("/.github/workflows/publish-image.yml")
    # A commit, never a branch or a tag that can move under the caller.
    assert re.fullmatch(r"<commit-sha>|[0-9a-f]{40}", ref), ref
    # A called workflow gets no more than its caller grants.
    assert called["permissions"] == job()["permissions"]
    assert set(called["with"]) <= set(inputs())
    required = {n for n, spec in inputs().items() if spec.get("required")}
    assert required <= set(called["with"])
    assert run_check(tmp_path, **called["with"])[:2] == (0, [])
