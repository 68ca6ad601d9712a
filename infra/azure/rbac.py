"""Role assignments: one built-in role, one principal, one scope, a deterministic id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization

from infra.azure.context import AzureContext

# Built-in role definition ids (the same in every tenant).
KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"

_ASSIGNMENT_NAMESPACE = uuid.UUID("3b0b1f5e-6d1c-4f0e-9a57-6d6c6f70733a")


def assignment_name(scope: str, principal_id: str, role_id: str) -> str:
    """A role assignment's name must be a GUID; deriving it from what it grants (as
    Bicep's `guid()` does) keeps plans deterministic and makes a second, identical
    assignment a conflict instead of a silent duplicate."""
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, "/".join((scope.lower(), principal_id, role_id))))


@dataclass(frozen=True)
class Grant:
    principal_id: pulumi.Output[str]
    role_id: str
    scope: pulumi.Output[str]
    description: str


def assign(
    name: str, grant: Grant, context: AzureContext, opts: pulumi.ResourceOptions
) -> authorization.RoleAssignment:
    return authorization.RoleAssignment(
        name,
        role_assignment_name=pulumi.Output.all(grant.scope, grant.principal_id).apply(
            lambda values: assignment_name(values[0], values[1], grant.role_id)
        ),
        principal_id=grant.principal_id,
        # A new managed identity may not have replicated yet; naming its type lets
        # ARM skip the directory lookup that would otherwise fail the assignment.
        principal_type="ServicePrincipal",
        role_definition_id=context.role_definition_id(grant.role_id),
        scope=grant.scope,
        description=grant.description,
        opts=opts,
    )
