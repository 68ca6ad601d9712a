"""`mlops:azure:AuditLogs`: who read or changed the keys, the registry, the models
and (already, see the lake) the lake, in the stack's Log Analytics workspace.

Diagnostic settings send the audit category group of the Key Vault (every key
use), the container registry (logins and repository events) and the Azure ML
workspace to Log Analytics, which keeps them for `audit.retentionDays`. The
subscription's activity log (who changed which resource) goes there too when
`audit.activityLog` is on: it is a subscription-level setting, which the
deploying identity may not be allowed to write; turn it off where the
organization already collects the activity log centrally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import monitor, operationalinsights

from infra.azure.context import AzureContext
from infra.common import Baseline
from infra.settings import AuditSettings

ACTIVITY_LOG_CATEGORIES = ("Administrative", "Security", "Policy", "Alert")


@dataclass(frozen=True)
class AuditLogsArgs:
    baseline: Baseline
    context: AzureContext
    settings: AuditSettings
    # What is audited: role -> resource id (vault, registry, ML workspace).
    resources: Mapping[str, pulumi.Input[str]]


class AuditLogs(pulumi.ComponentResource):
    """A Log Analytics workspace for the audit trail (Entra ID access only,
    `retentionDays`), the resources' audit logs and the subscription's activity log."""

    def __init__(
        self, name: str, args: AuditLogsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:AuditLogs", name, {}, opts)
        baseline, context = args.baseline, args.context
        self.workspace = operationalinsights.Workspace(
            name,
            workspace_name=baseline.namer.name("audit", kind="azure-resource"),
            resource_group_name=context.resource_group_name,
            location=context.location,
            sku={"name": "PerGB2018"},
            retention_in_days=args.settings.retention_days,
            features={
                "disable_local_auth": True,
                "enable_log_access_using_only_resource_permissions": True,
            },
            tags=dict(baseline.tags),
            opts=baseline.stateful(self),
        )
        for role, resource_id in sorted(args.resources.items()):
            monitor.DiagnosticSetting(
                f"{name}-{role}",
                name="audit",
                resource_uri=resource_id,
                workspace_id=self.workspace.id,
                logs=[{"category_group": "audit", "enabled": True}],
                opts=baseline.child(self),
            )
        if args.settings.activity_log:
            monitor.SubscriptionDiagnosticSetting(
                f"{name}-activity",
                name=baseline.namer.name("activity", kind="azure-resource"),
                workspace_id=self.workspace.id,
                logs=[{"category": c, "enabled": True} for c in ACTIVITY_LOG_CATEGORIES],
                opts=baseline.child(self),
            )
        self.register_outputs({"workspaceId": self.workspace.id})
