"""The VPC endpoints' policies: what a principal inside the network may reach
through each endpoint.

Every statement is a perimeter, not a grant: callers still need IAM permission.
Each one admits only principals of the stack's account (`aws:PrincipalAccount`)
and, where the service has resource-level permissions, only the stack's own
resources. The one exception is ECR's layer bucket, which belongs to AWS and is
read with URLs that ECR signs, so it is limited by resource and action instead.
Services that accept only the full-access policy get none (a custom policy
would fail the deployment); IAM alone governs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.aws.context import AwsAccount, policy_document
from infra.aws.key import USAGE_ACTIONS
from infra.aws.registry import PUSH_ACTIONS


@dataclass(frozen=True)
class EndpointScope:
    """The stack's resources its network reaches privately."""

    bucket_arns: Sequence[pulumi.Output[str]]
    repository_arns: Sequence[pulumi.Output[str]]
    key_arn: pulumi.Output[str]


Policy = Callable[[EndpointScope, AwsAccount], pulumi.Output[str] | None]


def _own(sid: str, actions: Sequence[str], resources: Any, account: AwsAccount) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": sorted(actions),
        "Resource": resources,
        "Condition": {"StringEquals": {"aws:PrincipalAccount": account.account_id}},
    }


S3_OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetBucketLocation",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListBucket",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
)
# Buckets AWS itself serves to instances in the region: ECR image layers and
# what SSM Agent downloads (documents, updates, Session Manager's plugins).
AWS_OWNED_BUCKETS = (
    "prod-{region}-starport-layer-bucket",
    "aws-ssm-{region}",
    "amazon-ssm-{region}",
    "amazon-ssm-packages-{region}",
    "{region}-birdwatcher-prod",
    "aws-ssm-distributor-file-{region}",
    "aws-ssm-document-attachments-{region}",
    "patch-baseline-snapshot-{region}",
)


def s3_gateway_policy(scope: EndpointScope, account: AwsAccount) -> pulumi.Output[str]:
    own = [
        arn for bucket in scope.bucket_arns for arn in (bucket, pulumi.Output.concat(bucket, "/*"))
    ]
    owned_by_aws = [
        pulumi.Output.concat(
            "arn:", account.partition, ":s3:::", b.format(region=account.region), "/*"
        )
        for b in AWS_OWNED_BUCKETS
    ]
    return policy_document(
        _own("StackBuckets", S3_OBJECT_ACTIONS, own, account),
        {
            "Sid": "AwsServiceBuckets",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": owned_by_aws,
        },
    )


def _ecr(scope: EndpointScope, account: AwsAccount) -> pulumi.Output[str]:
    return policy_document(
        # ECR grants login tokens only on "*".
        _own("EcrLogin", ["ecr:GetAuthorizationToken"], "*", account),
        _own(
            "StackRepositories",
            [*PUSH_ACTIONS, "ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:ListImages"],
            list(scope.repository_arns),
            account,
        ),
    )


def _scoped(sid: str, actions: Sequence[str], service: str, resource: str) -> Policy:
    def policy(_scope: EndpointScope, account: AwsAccount) -> pulumi.Output[str]:
        target = "*" if not service else account.arn(service, resource)
        return policy_document(_own(sid, actions, target, account))

    return policy


def _kms(scope: EndpointScope, account: AwsAccount) -> pulumi.Output[str]:
    return policy_document(_own("PlatformKey", USAGE_ACTIONS, scope.key_arn, account))


def _full_access(_scope: EndpointScope, _account: AwsAccount) -> None:
    return None


# Interface endpoint per service (the suffix of com.amazonaws.<region>.<service>).
INTERFACE_ENDPOINTS: Mapping[str, Policy] = {
    "ecr.api": _ecr,
    "ecr.dkr": _ecr,
    "kms": _kms,
    "logs": _scoped(
        "AccountLogGroups",
        [
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:DescribeLogGroups",
            "logs:DescribeLogStreams",
            "logs:PutLogEvents",
        ],
        "logs",
        "log-group:*",
    ),
    # PutMetricData has no resource-level permissions.
    "monitoring": _scoped("AccountMetrics", ["cloudwatch:PutMetricData"], "", ""),
    # SageMaker has hundreds of actions, some (List*, Search) without resource-level
    # permissions, so no resource pattern: the account condition scopes them.
    "sagemaker.api": _scoped("AccountSageMaker", ["sagemaker:*"], "", ""),
    "sagemaker.runtime": _scoped(
        "AccountEndpoints",
        [
            "sagemaker:InvokeEndpoint",
            "sagemaker:InvokeEndpointAsync",
            "sagemaker:InvokeEndpointWithResponseStream",
        ],
        "sagemaker",
        "endpoint/*",
    ),
    # Session Manager: the agent (3.3.40.0 and later) needs ssm and ssmmessages only.
    "ssm": _full_access,
    "ssmmessages": _full_access,
    "sts": _scoped(
        "AccountSessions",
        ["sts:AssumeRole", "sts:GetCallerIdentity", "sts:SetSourceIdentity", "sts:TagSession"],
        "",
        "",
    ),
}
