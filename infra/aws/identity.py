"""`mlops:aws:PlatformRoles`: the platform's own IAM roles, the only principals
the registries grant to. No role gets a wildcard action or principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.context import AwsAccount, policy_document
from infra.common import Baseline
from infra.settings import CiSettings

GITHUB_ISSUER = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"


READ_ONLY = "arn:{partition}:iam::aws:policy/ReadOnlyAccess"
ADMINISTRATOR = "arn:{partition}:iam::aws:policy/AdministratorAccess"


@dataclass(frozen=True)
class PlatformRolesArgs:
    baseline: Baseline
    account: AwsAccount
    # Who may publish, preview and deploy: the GitHub repositories of `mlops:ci`.
    ci: CiSettings | None = None
    # The stack's environment: its deploy job runs in the GitHub environment of that name.
    environment: str = "dev"
    # What previews must not read although ReadOnlyAccess allows it: the objects
    # of the stack's buckets (`<prefix>-*`) and anything the platform key decrypts.
    bucket_prefix: str = ""
    key_arn: pulumi.Input[str] | None = None


def github_trust(provider_arn: pulumi.Input[str], subjects: list[str]) -> pulumi.Output[str]:
    """Assumable with a GitHub Actions OIDC token for this audience and one of
    these subjects only (`repo:<owner>/<name>:ref:refs/heads/main`, ...)."""
    return policy_document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_ISSUER}:aud": STS_AUDIENCE,
                    f"{GITHUB_ISSUER}:sub": sorted(subjects),
                }
            },
        }
    )


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
    """`runtime` (assumable by SageMaker for this account only) pulls images;
    with `mlops:ci`, `publisher` pushes them, assumable only with a GitHub
    Actions OIDC token from the default branch of the platform's repository or
    of a publishing repository (no stored key, and no trust in the account's
    root). Both may fetch an ECR login token, which ECR only grants on `*`;
    everything else is granted by resource policies on the registries. The
    account's GitHub OIDC provider is created here, or an existing one named."""

    def __init__(
        self, name: str, args: PlatformRolesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:PlatformRoles", name, {}, opts)
        baseline, account = args.baseline, args.account
        self._baseline = baseline
        self.publisher: aws.iam.Role | None = None
        self.preview: aws.iam.Role | None = None
        self.deploy: aws.iam.Role | None = None
        self.oidc_provider: pulumi.Output[str] | None = None
        if args.ci is not None:
            self.oidc_provider = self._oidc_provider(name, args.ci)
            self.publisher = self._role(
                f"{name}-publisher",
                "Pushes container images to the platform registries from GitHub Actions",
                github_trust(self.oidc_provider, list(args.ci.publisher_subjects().values())),
                baseline,
            )
            self.preview, self.deploy = self._ci_roles(name, args)
        self.runtime = self._role(
            f"{name}-runtime",
            "Runs training and inference with the platform's images and models",
            _trust({"Service": "sagemaker.amazonaws.com"}, account),
            baseline,
        )
        self.register_outputs({"runtimeRoleArn": self.runtime.arn})

    def _ci_roles(self, name: str, args: PlatformRolesArgs) -> tuple[aws.iam.Role, aws.iam.Role]:
        """`preview`: pull requests of the platform's repository (not forks: their
        tokens name the fork) may read the account's configuration, never the
        lake's objects nor what the key decrypts, and take the backend's locks.
        `deploy`: only the deploy job in the stack's GitHub environment may
        change the account (administrator: it creates roles, keys and policies)."""
        ci, baseline, account = args.ci, args.baseline, args.account
        assert ci is not None and self.oidc_provider is not None
        partition = account.partition
        preview = aws.iam.Role(
            f"{name}-ci-preview",
            description="Previews the stack from pull requests (GitHub OIDC)",
            assume_role_policy=github_trust(self.oidc_provider, ci.preview_subjects()),
            max_session_duration=3600,
            managed_policy_arns=[partition.apply(lambda p: READ_ONLY.format(partition=p))],
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        statements: list[dict[str, Any]] = [
            {
                "Sid": "NoStackData",
                "Effect": "Deny",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": pulumi.Output.concat(
                    "arn:", partition, f":s3:::{args.bucket_prefix}-*/*"
                ),
            }
        ]
        if args.key_arn is not None:
            statements.append(
                {
                    "Sid": "NoDecryption",
                    "Effect": "Deny",
                    "Action": "kms:Decrypt",
                    "Resource": args.key_arn,
                }
            )
        if ci.state_bucket is not None:
            locks = pulumi.Output.concat(
                "arn:", partition, f":s3:::{ci.state_bucket}/.pulumi/locks/*"
            )
            statements.append(
                {
                    "Sid": "BackendLocks",
                    "Effect": "Allow",
                    "Action": ["s3:DeleteObject", "s3:PutObject"],
                    "Resource": locks,
                }
            )
        aws.iam.RolePolicy(
            f"{name}-ci-preview",
            role=preview.id,
            policy=policy_document(*statements),
            opts=baseline.child(self),
        )
        environment = ci.environment or args.environment
        deploy = aws.iam.Role(
            f"{name}-ci-deploy",
            description=f"Deploys the stack from the GitHub environment {environment} (OIDC)",
            assume_role_policy=github_trust(
                self.oidc_provider, [ci.deploy_subject(args.environment)]
            ),
            max_session_duration=3600,
            managed_policy_arns=[partition.apply(lambda p: ADMINISTRATOR.format(partition=p))],
            tags=dict(baseline.tags),
            opts=baseline.child(self),
        )
        return preview, deploy

    def _oidc_provider(self, name: str, ci: CiSettings) -> pulumi.Output[str]:
        if ci.oidc_provider != "create":
            return pulumi.Output.from_input(ci.oidc_provider)
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-github",
            url=f"https://{GITHUB_ISSUER}",
            client_id_lists=[STS_AUDIENCE],
            tags=dict(self._baseline.tags),
            # One per account: the stack that made it keeps it.
            opts=self._baseline.stateful(self),
        )
        return provider.arn

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
