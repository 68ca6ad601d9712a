"""`mlops:azure:AlertRoute`: where every metric alert of the stack goes: one action
group with an email receiver per address of `mlops:alerts` and a webhook
receiver for the webhook, all on Azure Monitor's common alert schema."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import monitor

from infra.azure.context import AzureContext
from infra.common import Baseline
from infra.settings import AlertSettings

# Azure Monitor's limit on an action group's short name (used in SMS and email subjects).
SHORT_NAME_LENGTH = 12


@dataclass(frozen=True)
class AlertRouteArgs:
    baseline: Baseline
    context: AzureContext
    settings: AlertSettings


class AlertRoute(pulumi.ComponentResource):
    """One action group per stack; `actions` is what a metric alert lists."""

    def __init__(
        self, name: str, args: AlertRouteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:AlertRoute", name, {}, opts)
        baseline, settings = args.baseline, args.settings
        self.group = monitor.ActionGroup(
            name,
            action_group_name=baseline.namer.name("alerts", kind="azure-resource"),
            resource_group_name=args.context.resource_group_name,
            # Action groups are global resources.
            location="Global",
            group_short_name=_short_name(baseline.namer.stack),
            enabled=True,
            email_receivers=[
                {
                    # Named by a digest: the name shows in the portal, the address need not.
                    "name": f"email-{hashlib.sha256(a.lower().encode()).hexdigest()[:8]}",
                    "email_address": a,
                    "use_common_alert_schema": True,
                }
                for a in settings.emails
            ],
            webhook_receivers=[
                {
                    "name": "webhook",
                    "service_uri": settings.webhook,
                    "use_common_alert_schema": True,
                }
            ]
            if settings.webhook
            else [],
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        self.actions = [{"action_group_id": self.group.id}]
        self.register_outputs({"actionGroupId": self.group.id})


def _short_name(stack: str) -> str:
    """At most 12 characters: the stack's name, shortened, with a digest when cut."""
    if len(stack) <= SHORT_NAME_LENGTH:
        return stack
    return stack[: SHORT_NAME_LENGTH - 4] + hashlib.sha256(stack.encode()).hexdigest()[:4]
