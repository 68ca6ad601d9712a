"""Account facts every AWS component needs, looked up once per stack through invokes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsAccount:
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: str

    @classmethod
    def lookup(cls, region: str) -> AwsAccount:
        return cls(
            account_id=aws.get_caller_identity_output().account_id,
            partition=aws.get_partition_output().partition,
            region=region,
        )

    def root_principal(self) -> pulumi.Output[str]:
        """The account itself: key policies delegate to IAM policies through it."""
        return pulumi.Output.concat("arn:", self.partition, ":iam::", self.account_id, ":root")

    def arn(self, service: str, resource: str) -> pulumi.Output[str]:
        """`arn:<partition>:<service>:<region>:<account>:<resource>`."""
        return pulumi.Output.concat(
            "arn:", self.partition, f":{service}:{self.region}:", self.account_id, ":", resource
        )

    def service_host(self, service: str) -> str:
        return f"{service}.{self.region}.amazonaws.com"


def policy_document(*statements: Mapping[str, Any]) -> pulumi.Output[str]:
    """An IAM policy document as JSON, keys sorted so the same statements give the same bytes."""
    return pulumi.Output.json_dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True
    )


HTTPS = 443


def https_rule(
    rule: type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule],
    name: str,
    group: pulumi.Input[str],
    description: str,
    opts: pulumi.ResourceOptions,
    **peer: Any,
) -> pulumi.CustomResource:
    """One HTTPS rule of a security group, with its peer (`cidr_ipv4`,
    `prefix_list_id`, ...): the only port the platform's groups open."""
    return rule(
        name,
        security_group_id=group,
        description=description,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        opts=opts,
        **peer,
    )
