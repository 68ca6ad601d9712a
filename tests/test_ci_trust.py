"""CI without stored secrets, on AWS so far: the publisher role is assumable only
with a GitHub Actions OIDC token of the named repositories' default branch, and
no role in any stack trusts an account's root or every principal."""

from __future__ import annotations

import pytest
from conftest import one, plan_with, planned, policy_doc
from mlops_policies.model import Resource
from mlops_policies.rules import aws_iam

from infra.settings import SettingsError
from tools import stackfiles
from tools.mockcloud import ACCOUNT_ID
from tools.plan import plan_values

ROLE = "aws:iam/role:Role"
PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"


def test_the_publisher_trusts_only_the_named_repositories_main_branch() -> None:
    plan = planned("aws-prod")
    provider = one(plan, PROVIDER)
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert provider.protect  # one per account: kept with the stack that made it
    publisher = one(plan, ROLE, "-publisher")
    (statement,) = policy_doc(publisher.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert provider.urn in publisher.property_dependencies["assumeRolePolicy"]
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": [
                "repo:acme/churn-model:ref:refs/heads/main",
                "repo:acme/mlops-platform:ref:refs/heads/main",
            ],
        }
    }
    assert plan.outputs["publisherRoleArn"].endswith(publisher.name)


def test_no_role_of_any_stack_trusts_an_accounts_root() -> None:
    for stack in ("aws-dev", "aws-prod"):
        for role in (r for r in planned(stack).registrations if r.type == ROLE):
            for statement in policy_doc(role.inputs["assumeRolePolicy"])["Statement"]:
                principal = statement["Principal"]
                assert "AWS" not in principal, (stack, role.name, principal)


EXISTING_PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def federated():
    """aws-dev trusting a provider the account already has, with a state bucket."""
    return plan_with(
        "aws-dev",
        ci={
            "repository": "acme/mlops-platform",
            "oidcProvider": EXISTING_PROVIDER,
            "stateBucket": "acme-pulumi-state",
        },
        endpoints={},
        acceleratorPools={},
    )


def test_an_existing_provider_is_used_and_without_ci_nobody_is_granted_pushes(federated) -> None:
    arn = EXISTING_PROVIDER
    shared = federated
    assert [r for r in shared.registrations if r.type == PROVIDER] == []
    trust = policy_doc(one(shared, ROLE, "-publisher").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Federated": arn}
    values = stackfiles.stack_values("aws-dev")
    values.pop("mlops:ci")
    values["mlops:endpoints"] = {}
    without = plan_values("aws-dev", values)
    assert [r for r in without.registrations if r.name.endswith("-publisher")] == []
    assert "publisherRoleArn" not in without.outputs
    for policy in (r for r in without.registrations if r.type.endswith("repositoryPolicy")):
        sids = {s["Sid"] for s in policy_doc(policy.inputs["policy"])["Statement"]}
        assert sids == {"RuntimePulls"}


@pytest.mark.parametrize(
    ("ci", "key", "problem"),
    [
        ({"repository": "not a repo"}, "mlops:ci.repository", "is not a valid GitHub repository"),
        (
            {"repository": "acme/x", "oidcProvider": "arn:aws:iam::1:oidc-provider/other"},
            "mlops:ci.oidcProvider",
            "is not a valid OIDC provider",
        ),
    ],
)
def test_bad_ci_settings_are_one_line(ci: dict, key: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        plan_with("aws-dev", ci=ci)
    line = str(caught.value)
    assert line.startswith(f"stacks/Pulumi.aws-dev.yaml: {key}: ") and problem in line


def test_too_many_publishers_for_an_azure_identity_is_one_line() -> None:
    publishers = [f"acme/model-{n}" for n in range(20)]
    with pytest.raises(SettingsError) as caught:
        plan_with("azure-dev", ci={"repository": "acme/mlops-platform", "publishers": publishers})
    assert str(caught.value) == (
        "stacks/Pulumi.azure-dev.yaml: mlops:ci.publishers: Azure takes at most 20 federated "
        "credentials per identity: the repository and 19 publishers"
    )


def res(trust: dict) -> Resource:
    import json

    return Resource(
        ROLE,
        "urn:pulumi:t::mlops::aws:iam/role:Role::r",
        "r",
        {"assumeRolePolicy": json.dumps(trust)},
        False,
        {},
    )


def _statement(principal: dict, **extra: object) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}
        ],
    }


def test_role_trust_refuses_root_wildcards_and_unpinned_github() -> None:
    root = _statement({"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"})
    assert list(aws_iam.role_trust(res(root))) == [
        "statement 0 trusts an account's root: any principal IAM allows there may assume it"
    ]
    assert len(list(aws_iam.role_trust(res(_statement({"AWS": ACCOUNT_ID}))))) == 1
    assert list(aws_iam.role_trust(res(_statement({"AWS": "*"})))) == [
        "statement 0 trusts every principal ('*')"
    ]
    github = {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"}
    loose = _statement(
        github,
        Condition={
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
        },
    )
    assert list(aws_iam.role_trust(res(loose))) == [
        "statement 0 trusts GitHub Actions without pinning the token's subject"
    ]
    pinned = _statement(
        github,
        Condition={
            "StringEquals": {
                "token.actions.githubusercontent.com:sub": "repo:a/b:ref:refs/heads/main"
            }
        },
    )
    assert list(aws_iam.role_trust(res(pinned))) == []
    service = _statement({"Service": "sagemaker.amazonaws.com"})
    assert list(aws_iam.role_trust(res(service))) == []


def test_previews_come_from_pull_requests_and_deploys_from_the_stacks_environment() -> None:
    for stack, environment, region in (
        ("aws-dev", "dev", "eu-west-1"),
        ("aws-prod", "prod", "us-east-1"),
    ):
        plan = planned(stack)
        subjects = {}
        for name in ("preview", "deploy"):
            role = one(plan, ROLE, f"-ci-{name}")
            (statement,) = policy_doc(role.inputs["assumeRolePolicy"])["Statement"]
            subjects[name] = statement["Condition"]["StringEquals"][
                "token.actions.githubusercontent.com:sub"
            ]
        assert subjects == {
            # Pull requests, and main for the nightly drift check.
            "preview": [
                "repo:acme/mlops-platform:pull_request",
                "repo:acme/mlops-platform:ref:refs/heads/main",
            ],
            "deploy": [f"repo:acme/mlops-platform:environment:{environment}"],
        }
        preview = one(plan, ROLE, "-ci-preview")
        assert preview.inputs["managedPolicyArns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
        denials = {
            s["Sid"]: s
            for s in policy_doc(
                one(plan, "aws:iam/rolePolicy:RolePolicy", "-ci-preview").inputs["policy"]
            )["Statement"]
        }
        # A preview reads configuration, never the stack's data nor what its key decrypts.
        assert denials["NoStackData"]["Effect"] == "Deny"
        assert denials["NoStackData"]["Resource"] == f"arn:aws:s3:::mlops-{stack}-*/*"
        assert denials["NoDecryption"]["Action"] == "kms:Decrypt"
        deploy = one(plan, ROLE, "-ci-deploy")
        variables = plan.outputs["ciVariables"]
        assert variables["repository"]["AWS_ROLE_ARN"].endswith(preview.name)
        assert variables[f"environment:{environment}"]["AWS_ROLE_ARN"].endswith(deploy.name)
        assert variables["repository"]["AWS_REGION"] == region


def test_previews_may_take_the_backends_locks_and_nothing_more_there(federated) -> None:
    plan = federated
    statements = {
        s["Sid"]: s
        for s in policy_doc(
            one(plan, "aws:iam/rolePolicy:RolePolicy", "-ci-preview").inputs["policy"]
        )["Statement"]
    }
    assert statements["BackendLocks"] == {
        "Sid": "BackendLocks",
        "Effect": "Allow",
        "Action": ["s3:DeleteObject", "s3:PutObject"],
        "Resource": "arn:aws:s3:::acme-pulumi-state/.pulumi/locks/*",
    }
