"""CI without stored secrets on Azure: three user-assigned identities, each
federated with exactly the GitHub token subjects it serves and holding one role."""

from __future__ import annotations

import functools

from conftest import of_type, one, plan_with

from infra.azure import rbac
from tools.mockcloud import AZURE_SUBSCRIPTION, AZURE_TENANT, stable_uuid
from tools.plan import StackPlan

IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
ASSIGNMENT = "azure-native:authorization:RoleAssignment"
REGISTRY = "azure-native:containerregistry:Registry"
REPOSITORY = "acme/mlops-platform"


@functools.cache
def plan() -> StackPlan:
    return plan_with("azure-dev", ci={"repository": REPOSITORY, "publishers": ["acme/churn-model"]})


def test_each_ci_identity_trusts_exactly_its_github_subjects() -> None:
    expected = {
        # Pull requests, and main for the nightly drift check.
        "-ci-preview": [
            f"repo:{REPOSITORY}:pull_request",
            f"repo:{REPOSITORY}:ref:refs/heads/main",
        ],
        "-ci-deploy": [f"repo:{REPOSITORY}:environment:dev"],
        "-publisher": [
            f"repo:{REPOSITORY}:ref:refs/heads/main",
            "repo:acme/churn-model:ref:refs/heads/main",
        ],
    }
    for suffix, subjects in expected.items():
        identity = one(plan(), IDENTITY, suffix)
        assert identity.protect is False  # dev; prod protects (Baseline.stateful)
        credentials = [
            c
            for c in of_type(plan(), CREDENTIAL)
            if identity.urn in c.property_dependencies.get("resourceName", [])
        ]
        assert sorted(c.inputs["subject"] for c in credentials) == sorted(subjects), suffix
        for credential in credentials:
            assert credential.inputs["issuer"] == "https://token.actions.githubusercontent.com"
            assert credential.inputs["audiences"] == ["api://AzureADTokenExchange"]


def test_an_identitys_credentials_are_created_one_at_a_time() -> None:
    """ARM refuses concurrent writes of federated credentials on one identity (409)."""
    publisher = one(plan(), IDENTITY, "-publisher")
    first, second = sorted(
        (
            c
            for c in of_type(plan(), CREDENTIAL)
            if publisher.urn in c.property_dependencies.get("resourceName", [])
        ),
        key=lambda c: len(c.dependencies),
    )
    assert first.urn in second.dependencies
    assert second.urn not in first.dependencies


def test_ci_identities_hold_exactly_reader_owner_and_acr_push() -> None:
    group = f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/mlops-azure-dev"
    registry = one(plan(), REGISTRY)
    expected = {
        "-ci-preview": (rbac.READER, group),
        "-ci-deploy": (rbac.OWNER, group),
        "-publisher": (rbac.ACR_PUSH, None),
    }
    for suffix, (role_id, scope) in expected.items():
        identity = one(plan(), IDENTITY, suffix)
        assignments = [
            a
            for a in of_type(plan(), ASSIGNMENT)
            if identity.urn in a.property_dependencies.get("principalId", [])
        ]
        assert len(assignments) == 1, (suffix, [a.name for a in assignments])
        (assignment,) = assignments
        assert assignment.inputs["roleDefinitionId"] == (
            f"/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/"
            f"roleDefinitions/{role_id}"
        )
        assert assignment.inputs["principalType"] == "ServicePrincipal"
        if scope is None:
            assert registry.urn in assignment.property_dependencies["scope"]
            assert assignment.inputs["scope"].endswith(
                f"/providers/Microsoft.ContainerRegistry/registries/{registry.inputs['registryName']}"
            )
        else:
            assert assignment.inputs["scope"] == scope


def test_the_workflows_variables_name_the_preview_and_deploy_identities() -> None:
    login = {"AZURE_TENANT_ID": AZURE_TENANT, "AZURE_SUBSCRIPTION_ID": AZURE_SUBSCRIPTION}
    variables = plan().outputs["ciVariables"]
    assert set(variables) == {"repository", "environment:dev"}
    for key, suffix in (("repository", "-ci-preview"), ("environment:dev", "-ci-deploy")):
        client_id = variables[key].pop("AZURE_CLIENT_ID")
        assert variables[key] == login
        assert client_id == _client_id(suffix)
    assert plan().outputs["publisherClientId"] == _client_id("-publisher")
    assert len({_client_id(s) for s in ("-ci-preview", "-ci-deploy", "-publisher")}) == 3


def _client_id(suffix: str) -> str:
    """The mock's client id of the identity named *suffix (tools/mockcloud.py)."""
    return stable_uuid(IDENTITY, one(plan(), IDENTITY, suffix).name)
