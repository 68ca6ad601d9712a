"""The stack's customer-managed KMS key: rotated yearly, usable only through AWS services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, policy_document
from infra.common import Baseline, EncryptionKey

# Key administration, spelled out: no wildcard actions even for the account.
ADMIN_ACTIONS = sorted(
    [
        "kms:CancelKeyDeletion",
        "kms:CreateAlias",
        "kms:DeleteAlias",
        "kms:DescribeKey",
        "kms:DisableKey",
        "kms:DisableKeyRotation",
        "kms:EnableKey",
        "kms:EnableKeyRotation",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:ListAliases",
        "kms:ListGrants",
        "kms:ListKeyRotations",
        "kms:ListResourceTags",
        "kms:PutKeyPolicy",
        "kms:RevokeGrant",
        "kms:RotateKeyOnDemand",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:UpdateAlias",
        "kms:UpdateKeyDescription",
    ]
)
USAGE_ACTIONS = sorted(
    [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    ]
)
# Services that may use the key on behalf of the account's principals.
SERVICES = ("s3", "ecr", "sagemaker", "logs", "sns")
ROTATION_DAYS = 365
DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True)
class PlatformKeyArgs:
    baseline: Baseline
    account: AwsAccount
    # Let EC2 Auto Scaling launch nodes whose volumes the key encrypts (pools).
    autoscaling: bool = False


def _autoscaling(account: AwsAccount) -> list[dict[str, Any]]:
    """EC2 Auto Scaling launches a pool's nodes as its service-linked role, which
    must use the key for their encrypted volumes. KMS refuses a policy naming a
    role that does not exist: the role exists once the account has had an auto
    scaling group (or `aws iam create-service-linked-role --aws-service-name
    autoscaling.amazonaws.com`)."""
    role = pulumi.Output.concat(
        "arn:",
        account.partition,
        ":iam::",
        account.account_id,
        ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
    )
    return [
        {
            "Sid": "AutoScalingUsesKeyForNodeVolumes",
            "Effect": "Allow",
            "Principal": {"AWS": role},
            "Action": USAGE_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "AutoScalingGrantsEc2TheKey",
            "Effect": "Allow",
            "Principal": {"AWS": role},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}},
        },
    ]


def key_policy(account: AwsAccount, autoscaling: bool = False) -> pulumi.Output[str]:
    root = account.root_principal()
    # CloudWatch Logs encrypts a log group as its own service principal, not on
    # a caller's behalf, so kms:ViaService does not cover it; the encryption
    # context limits it to this account's log groups in this region.
    logs = {
        "Sid": "CloudWatchLogsEncryptsAccountLogGroups",
        "Effect": "Allow",
        "Principal": {"Service": account.service_host("logs")},
        "Action": USAGE_ACTIONS,
        "Resource": "*",
        "Condition": {
            "ArnLike": {"kms:EncryptionContext:aws:logs:arn": account.arn("logs", "log-group:*")}
        },
    }
    # CloudWatch alarms and EventBridge publish to the encrypted alert topic as
    # their own service principals; only on behalf of this account.
    publishers = {
        "Sid": "AlarmsPublishToTheEncryptedAlertTopic",
        "Effect": "Allow",
        "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
    }
    # CloudTrail encrypts log files for this account's trails (encryption context).
    trail = {
        "Sid": "CloudTrailEncryptsAccountTrails",
        "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": ["kms:DescribeKey", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account.account_id},
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn": pulumi.Output.concat(
                    "arn:", account.partition, ":cloudtrail:*:", account.account_id, ":trail/*"
                )
            },
        },
    }
    return policy_document(
        {
            "Sid": "AccountAdministersKey",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "AccountUsesKeyThroughPlatformServices",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": [*USAGE_ACTIONS, "kms:CreateGrant"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account.account_id,
                    "kms:ViaService": [account.service_host(s) for s in SERVICES],
                }
            },
        },
        logs,
        publishers,
        trail,
        *(_autoscaling(account) if autoscaling else []),
    )


class PlatformKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly rotation, a 30-day deletion window and an
    explicit policy: the account administers it and uses it only through S3, ECR,
    SageMaker, CloudWatch Logs and SNS; CloudWatch Logs encrypts the account's log
    groups with it, CloudWatch alarms and EventBridge publish to the encrypted
    alert topic, CloudTrail encrypts the account's trails. Protected and retained in prod."""

    def __init__(
        self, name: str, args: PlatformKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:PlatformKey", name, {}, opts)
        baseline = args.baseline
        self.key = aws.kms.Key(
            name,
            description=f"Customer-managed key for {baseline.namer.prefix}",
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            rotation_period_in_days=ROTATION_DAYS,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=key_policy(args.account, autoscaling=args.autoscaling),
            tags=dict(baseline.tags),
            # Was `<name>-key`: the alias keeps the key through the rename.
            opts=baseline.stateful(self, aliases=[pulumi.Alias(name=f"{name}-key")]),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{baseline.namer.name('key', kind='kms-alias')}",
            target_key_id=self.key.key_id,
            opts=baseline.child(self),
        )
        self.encryption = EncryptionKey(id=self.key.arn, resource=self.key)
        self.register_outputs({"keyArn": self.key.arn, "alias": self.alias.name})
