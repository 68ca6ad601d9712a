"""`mlops:aws:AlertRoute`: where every alarm and drift finding of the stack goes.

One SNS topic per stack, encrypted with the platform key, with an email
subscription per address of `mlops:alerts` (each address confirms once, from
the email AWS sends) and an HTTPS subscription for the webhook. Only CloudWatch
alarms and EventBridge rules of this account may publish to it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, policy_document
from infra.common import Baseline, EncryptionKey
from infra.settings import AlertSettings


@dataclass(frozen=True)
class AlertRouteArgs:
    baseline: Baseline
    account: AwsAccount
    settings: AlertSettings
    encryption: EncryptionKey
    # Route Model Monitor's findings too (the stack checks drift somewhere).
    drift: bool = False


class AlertRoute(pulumi.ComponentResource):
    """An SNS topic encrypted with the platform key, its subscribers, and a topic
    policy that lets only this account's alarms and event rules publish."""

    def __init__(
        self, name: str, args: AlertRouteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:AlertRoute", name, {}, opts)
        self._args = args
        baseline = args.baseline
        self.topic = aws.sns.Topic(
            name,
            display_name=f"Alerts of {baseline.namer.prefix}",
            kms_master_key_id=args.encryption.id,
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=self.topic.arn,
            policy=policy_document(
                {
                    "Sid": "AccountAlarmsAndRulesPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                    "Action": "sns:Publish",
                    "Resource": self.topic.arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": args.account.account_id}},
                }
            ),
            opts=baseline.child(self),
        )
        for address in args.settings.emails:
            aws.sns.TopicSubscription(
                # Named by a digest: addresses stay out of URNs, and removing one
                # never renames the others.
                f"{name}-email-{hashlib.sha256(address.lower().encode()).hexdigest()[:8]}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=address,
                opts=baseline.child(self),
            )
        if args.settings.webhook is not None:
            aws.sns.TopicSubscription(
                f"{name}-webhook",
                topic=self.topic.arn,
                protocol="https",
                endpoint=args.settings.webhook,
                # The receiver confirms by visiting the SubscribeURL SNS posts first.
                endpoint_auto_confirms=False,
                opts=baseline.child(self),
            )
        if args.drift:
            self._drift(name)
        self.actions: list[pulumi.Output[str]] = [self.topic.arn]
        self.register_outputs({"topicArn": self.topic.arn})

    def _drift(self, name: str) -> None:
        """A Model Monitor run that found violations (drift) ends its processing job
        with `CompletedWithViolations`; the event goes to the topic as it is."""
        baseline = self._args.baseline
        rule = aws.cloudwatch.EventRule(
            f"{name}-drift",
            description=f"Model Monitor found drift in an endpoint of {baseline.namer.prefix}",
            event_pattern=json.dumps(
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Processing Job State Change"],
                    "detail": {
                        "ProcessingJobStatus": ["Completed"],
                        "ExitMessage": [{"prefix": "CompletedWithViolations"}],
                    },
                },
                sort_keys=True,
            ),
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-drift",
            rule=rule.name,
            arn=self.topic.arn,
            opts=baseline.child(self),
        )
