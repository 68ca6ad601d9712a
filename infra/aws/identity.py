"""`mlops:aws:PlatformRoles`: the platform's own IAM roles, the only principals
the registries grant to. No role gets a wildcard action or principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, policy_document
from infra.common import Baseline


@dataclass(frozen=True)
class PlatformRolesArgs:
    baseline: Baseline
    account: AwsAccount


def _trust(principal: dict[str, Any], account: AwsAccount) -> pulumi.Output[str]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if "Service" in principal:
        # Confused-deputy guard: the service may assume the role only for this account.
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account.account_id}}
    return policy_document(statement)


class PlatformRoles(pulumi.ComponentResource):
    """Two roles: `publisher` (assumable by principals of this account that IAM
    allows to, e.g. CI) pushes images; `runtime` (assumable by SageMaker for
    this account only) pulls them. Both may fetch an ECR login token, which ECR
    only grants on `*` resources; everything else is granted by resource
    policies on the registries themselves."""

    def __init__(
        self, name: str, args: PlatformRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:PlatformRoles", name, {}, opts)
        baseline, account = args.baseline, args.account
        self.publisher = self._role(
            f"{name}-publisher",
            "Pushes container images to the platform registries",
            _trust({"AWS": account.root_principal()}, account),
            baseline,
        )
        self.runtime = self._role(
            f"{name}-runtime",
            "Runs training and inference with the platform's images and models",
            _trust({"Service": "sagemaker.amazonaws.com"}, account),
            baseline,
        )
        self.register_outputs(
            {"publisherRoleArn": self.publisher.arn, "runtimeRoleArn": self.runtime.arn}
        )

    def _role(
        self, name: str, description: str, trust: pulumi.Output[str], baseline: Baseline
    ) -> aws.iam.Role:
        return service_role(
            self,
            name,
            description=description,
            trust=trust,
            # ECR grants login tokens only on "*".
            policy=(
                f"{name}-ecr-login",
                {
                    "Sid": "EcrLogin",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                },
            ),
            baseline=baseline,
        )


def service_role(
    owner: pulumi.ComponentResource,
    name: str,
    *,
    description: str,
    trust: pulumi.Output[str],
    policy: tuple[str, dict[str, Any]],
    baseline: Baseline,
) -> aws.iam.Role:
    """A role with one-hour sessions and one inline policy `(name, statement)`."""
    role = aws.iam.Role(
        name,
        description=description,
        assume_role_policy=trust,
        max_session_duration=3600,
        tags=dict(baseline.tags),
        opts=baseline.child(owner),
    )
    policy_name, statement = policy
    aws.iam.RolePolicy(
        policy_name,
        role=role.id,
        policy=policy_document(statement),
        opts=baseline.child(owner),
    )
    return role
