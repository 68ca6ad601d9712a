"""CI on GCP without stored keys: GitHub Actions federates through one workload
identity pool that admits only `mlops:ci`'s repositories, and each service
account may be impersonated by exactly one token subject."""

from __future__ import annotations

import functools

from conftest import of_type, one, plan_with

from tools.mockcloud import GCP_PROJECT_NUMBER
from tools.plan import StackPlan

ACCOUNT = "gcp:serviceaccount/account:Account"
FEDERATED = "gcp:serviceaccount/iAMMember:IAMMember"
PROJECT_GRANT = "gcp:projects/iAMMember:IAMMember"
REPOSITORY_GRANT = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
POOL = "gcp:iam/workloadIdentityPool:WorkloadIdentityPool"
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
PRINCIPAL = (
    f"principal://iam.googleapis.com/projects/{GCP_PROJECT_NUMBER}"
    "/locations/global/workloadIdentityPools/mlops-gcp-dev-ci/subject/"
)


@functools.cache
def ci_plan() -> StackPlan:
    return plan_with(
        "gcp-dev", ci={"repository": "acme/mlops-platform", "publishers": ["acme/churn-model"]}
    )


def _granted_to(plan: StackPlan, type_: str, suffix: str) -> list:
    account = one(plan, ACCOUNT, suffix)
    return [
        r for r in of_type(plan, type_) if account.urn in r.property_dependencies.get("member", [])
    ]


def test_the_github_provider_admits_only_the_ci_repositories() -> None:
    plan = ci_plan()
    pool = one(plan, POOL)
    assert pool.inputs["workloadIdentityPoolId"] == "mlops-gcp-dev-ci"
    provider = one(plan, PROVIDER)
    assert pool.urn in provider.property_dependencies["workloadIdentityPoolId"]
    assert provider.inputs["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert provider.inputs["attributeCondition"] == (
        "assertion.repository in ['acme/mlops-platform', 'acme/churn-model']"
    )
    assert provider.inputs["attributeMapping"] == {
        "google.subject": "assertion.sub",
        "attribute.repository": "assertion.repository",
        "attribute.ref": "assertion.ref",
        "attribute.environment": "assertion.environment",
    }


def test_each_account_is_impersonable_by_exactly_its_subject() -> None:
    plan = ci_plan()
    subjects = {}
    for name in ("-ci-preview", "-ci-deploy", "-publisher"):
        account = one(plan, ACCOUNT, name)
        bindings = [
            r
            for r in of_type(plan, FEDERATED)
            if account.urn in r.property_dependencies.get("serviceAccountId", [])
        ]
        assert {b.inputs["role"] for b in bindings} == {"roles/iam.workloadIdentityUser"}
        subjects[name] = sorted(b.inputs["member"] for b in bindings)
    assert subjects == {
        # Pull requests, and main for the nightly drift check.
        "-ci-preview": [
            PRINCIPAL + "repo:acme/mlops-platform:pull_request",
            PRINCIPAL + "repo:acme/mlops-platform:ref:refs/heads/main",
        ],
        "-ci-deploy": [PRINCIPAL + "repo:acme/mlops-platform:environment:dev"],
        "-publisher": [
            PRINCIPAL + "repo:acme/churn-model:ref:refs/heads/main",
            PRINCIPAL + "repo:acme/mlops-platform:ref:refs/heads/main",
        ],
    }
    # No other service account of the stack is impersonable from GitHub.
    assert len([r for r in of_type(plan, FEDERATED) if "principal://" in r.inputs["member"]]) == 5


def test_previews_only_view_the_project_and_deploys_own_it() -> None:
    plan = ci_plan()
    preview = _granted_to(plan, PROJECT_GRANT, "-ci-preview")
    assert [(g.inputs["project"], g.inputs["role"]) for g in preview] == [
        ("mlops-platform-dev", "roles/viewer")
    ]
    deploy = _granted_to(plan, PROJECT_GRANT, "-ci-deploy")
    assert [(g.inputs["project"], g.inputs["role"]) for g in deploy] == [
        ("mlops-platform-dev", "roles/owner")
    ]
    # Nothing else names the preview account as a member: no bucket, key or repository grant.
    account = one(plan, ACCOUNT, "-ci-preview")
    members = [
        r.name
        for r in plan.registrations
        if account.urn in r.property_dependencies.get("member", [])
    ]
    assert members == [preview[0].name]


def test_the_publisher_writes_only_to_the_stacks_repositories() -> None:
    plan = ci_plan()
    repositories = of_type(plan, "gcp:artifactregistry/repository:Repository")
    grants = _granted_to(plan, REPOSITORY_GRANT, "-publisher")
    assert {g.inputs["role"] for g in grants} == {"roles/artifactregistry.writer"}
    assert sorted(g.inputs["repository"] for g in grants) == sorted(
        r.inputs["repositoryId"] for r in repositories
    )
    by_urn = {r.urn: r for r in repositories}
    for grant in grants:
        (source,) = grant.property_dependencies["repository"]
        assert grant.inputs["location"] == by_urn[source].inputs["location"]
    assert _granted_to(plan, PROJECT_GRANT, "-publisher") == []


def test_the_workflows_variables_name_the_provider_and_each_jobs_account() -> None:
    plan = ci_plan()
    provider = (
        f"projects/{GCP_PROJECT_NUMBER}/locations/global/workloadIdentityPools/"
        "mlops-gcp-dev-ci/providers/github"
    )
    preview = one(plan, ACCOUNT, "-ci-preview").inputs["accountId"]
    deploy = one(plan, ACCOUNT, "-ci-deploy").inputs["accountId"]
    publisher = one(plan, ACCOUNT, "-publisher").inputs["accountId"]
    assert plan.outputs["ciVariables"] == {
        "repository": {
            "GCP_WORKLOAD_IDENTITY_PROVIDER": provider,
            "GCP_SERVICE_ACCOUNT": f"{preview}@mlops-platform-dev.iam.gserviceaccount.com",
        },
        "environment:dev": {
            "GCP_WORKLOAD_IDENTITY_PROVIDER": provider,
            "GCP_SERVICE_ACCOUNT": f"{deploy}@mlops-platform-dev.iam.gserviceaccount.com",
        },
    }
    assert plan.outputs["publisherEmail"] == (
        f"{publisher}@mlops-platform-dev.iam.gserviceaccount.com"
    )
    # 6 to 30 characters, one per stack.
    assert all(6 <= len(a) <= 30 for a in (preview, deploy, publisher))
