"""`mlops:gcp:AlertRoute`: where every alert policy of the stack goes: a Cloud
Monitoring email channel per address of `mlops:alerts` and a webhook channel
for the webhook."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline
from infra.gcp.context import labels
from infra.settings import AlertSettings


@dataclass(frozen=True)
class AlertRouteArgs:
    baseline: Baseline
    settings: AlertSettings


class AlertRoute(pulumi.ComponentResource):
    """`channels` is what an alert policy lists. Each channel is named by a digest
    of its address, so the addresses stay out of URNs and removing one never
    renames another."""

    def __init__(
        self, name: str, args: AlertRouteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:AlertRoute", name, {}, opts)
        baseline, settings = args.baseline, args.settings
        channels = [
            gcp.monitoring.NotificationChannel(
                f"{name}-email-{hashlib.sha256(address.lower().encode()).hexdigest()[:8]}",
                display_name=f"{baseline.namer.prefix} alerts: {address}",
                type="email",
                labels={"email_address": address},
                user_labels=labels(baseline),
                opts=baseline.child(self),
            )
            for address in settings.emails
        ]
        if settings.webhook is not None:
            channels.append(
                gcp.monitoring.NotificationChannel(
                    f"{name}-webhook",
                    display_name=f"{baseline.namer.prefix} alerts: webhook",
                    type="webhook_tokenauth",
                    labels={"url": settings.webhook},
                    user_labels=labels(baseline),
                    opts=baseline.child(self),
                )
            )
        self.channels = [channel.id for channel in channels]
        self.register_outputs({"channels": self.channels})
