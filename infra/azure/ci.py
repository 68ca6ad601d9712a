"""`mlops:azure:CiIdentities`: the identities GitHub Actions signs in as, through
OIDC (workload identity federation), with no stored secret.

Each is a user-assigned managed identity whose federated credentials name the
exact GitHub token subjects it accepts: Entra ID matches issuer, subject and
audience literally (no wildcards), so a token of any other repository, branch,
event or environment is refused.

Two Azure limits shape the credentials: an identity holds at most 20 of them,
so the publisher (the platform's repository and each of `ci.publishers`) is
refused beyond that; and ARM answers 409 Conflict when several are created on
one identity at once, so each identity's credentials are created one after
the other (each `depends_on` the previous one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_azure_native import managedidentity

from infra.azure import rbac
from infra.azure.context import AzureContext
from infra.common import Baseline
from infra.naming import unique_token
from infra.settings import CiSettings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# The audience Entra ID expects of an exchanged token (azure/login's default).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# Azure's limit of federated credentials on one user-assigned identity.
MAX_FEDERATED_CREDENTIALS = 20


@dataclass(frozen=True)
class Access:
    """What one identity may do: one built-in role on one scope."""

    role: str  # the assignment's name suffix
    role_id: str
    scope: pulumi.Input[str]
    description: str


@dataclass(frozen=True)
class CiIdentitiesArgs:
    baseline: Baseline
    context: AzureContext
    # Who may preview, deploy and publish: the GitHub repositories of `mlops:ci`.
    ci: CiSettings
    # The stack's environment: its deploy job runs in the GitHub environment of
    # that name unless `ci.environment` names another.
    environment: str
    # The container registry the publisher pushes to.
    registry_id: pulumi.Input[str]


def credential_name(subject: str) -> str:
    """A federated credential's name (3-120 characters, letters, digits, `-` and
    `_`, immutable): readable, and a digest of the subject keeps two subjects
    that read alike (`a/b.c`, `a/b-c`) apart."""
    readable = re.sub(r"[^A-Za-z0-9-]", "-", subject.removeprefix("repo:"))
    return f"{readable[:100].strip('-')}-{unique_token(subject)}"


class CiIdentities(pulumi.ComponentResource):
    """`ci-preview`: pull requests of the platform's repository (not forks: their
    tokens name the fork) read the stack's resource group (Reader: no data-plane
    reads, no secrets). `ci-deploy`: only jobs in the stack's GitHub environment
    change it, as Owner of the group, because a deployment creates role
    assignments (Contributor may not). `publisher`: the default branch of the
    platform's repository and of each publishing repository push images to the
    stack's registry (AcrPush there, nothing else). Identities are protected
    and retained in prod: their role assignments and the workflows' variables
    name them."""

    def __init__(
        self, name: str, args: CiIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:CiIdentities", name, {}, opts)
        ci, context = args.ci, args.context
        environment = ci.environment or args.environment
        # The platform's repository publishes too; listed again, it is one subject.
        if len(ci.publisher_subjects()) > MAX_FEDERATED_CREDENTIALS:
            raise ValueError(
                f"mlops:ci.publishers: Azure federates at most {MAX_FEDERATED_CREDENTIALS} "
                "subjects with one identity, and the platform's repository takes one"
            )
        group = pulumi.Output.concat(
            "/subscriptions/",
            context.subscription_id,
            "/resourceGroups/",
            context.resource_group_name,
        )
        self.preview = self._identity(
            f"{name}-ci-preview",
            args,
            ci.preview_subjects(),
            Access(
                role="reader",
                role_id=rbac.READER,
                scope=group,
                description="Preview the stack from pull requests (GitHub OIDC)",
            ),
        )
        self.deploy = self._identity(
            f"{name}-ci-deploy",
            args,
            [ci.deploy_subject(args.environment)],
            Access(
                role="owner",
                role_id=rbac.OWNER,
                scope=group,
                description=f"Deploy the stack from the GitHub environment {environment} "
                "(OIDC); Owner because a deployment creates role assignments",
            ),
        )
        self.publisher = self._identity(
            f"{name}-publisher",
            args,
            list(ci.publisher_subjects().values()),
            Access(
                role="acr-push",
                role_id=rbac.ACR_PUSH,
                scope=args.registry_id,
                description="Push images from the default branch of the publishing "
                "repositories (GitHub OIDC)",
            ),
        )
        login = {
            "AZURE_TENANT_ID": context.tenant_id,
            "AZURE_SUBSCRIPTION_ID": context.subscription_id,
        }
        # The workflows' variables: the repository's for previews, the stack's
        # GitHub environment's for deploys (an environment's value wins there).
        self.variables: dict[str, dict[str, Any]] = {
            "repository": {"AZURE_CLIENT_ID": self.preview.client_id, **login},
            f"environment:{environment}": {"AZURE_CLIENT_ID": self.deploy.client_id, **login},
        }
        self.publisher_client_id = self.publisher.client_id
        # What a publishing repository passes to .github/workflows/publish-image.yml.
        self.publish_inputs = {
            "cloud": "azure",
            "azure-client-id": self.publisher_client_id,
            "azure-tenant-id": context.tenant_id,
            "azure-subscription-id": context.subscription_id,
        }
        self.register_outputs(
            {"variables": self.variables, "publisherClientId": self.publisher_client_id}
        )

    def _identity(
        self, name: str, args: CiIdentitiesArgs, subjects: list[str], access: Access
    ) -> managedidentity.UserAssignedIdentity:
        """An identity that accepts GitHub tokens of exactly these subjects and holds
        `access`, nothing else."""
        baseline, context = args.baseline, args.context
        identity = managedidentity.UserAssignedIdentity(
            name,
            resource_group_name=context.resource_group_name,
            location=context.location,
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        previous: list[pulumi.Resource] = []
        for subject in subjects:
            credential = credential_name(subject)
            previous = [
                managedidentity.FederatedIdentityCredential(
                    f"{name}-{credential}",
                    resource_group_name=context.resource_group_name,
                    resource_name_=identity.name,
                    federated_identity_credential_resource_name=credential,
                    issuer=GITHUB_ISSUER,
                    subject=subject,
                    audiences=[TOKEN_EXCHANGE_AUDIENCE],
                    # One at a time: concurrent writes on one identity fail with 409.
                    opts=baseline.child(self, depends_on=previous),
                )
            ]
        rbac.assign(
            f"{name}-{access.role}",
            rbac.Grant(
                principal_id=identity.principal_id,
                role_id=access.role_id,
                scope=pulumi.Output.from_input(access.scope),
                description=access.description,
            ),
            context,
            baseline.child(self),
        )
        return identity
