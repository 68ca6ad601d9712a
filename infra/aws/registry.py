"""AWS registries: `mlops:aws:ContainerRegistry` (ECR) and `mlops:aws:ModelRegistry`
(a SageMaker model package group)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.context import policy_document
from infra.aws.identity import PlatformRoles
from infra.common import Baseline, EncryptionKey
from infra.settings import ContainerRegistrySettings

PULL_ACTIONS = sorted(
    ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
)
PUSH_ACTIONS = sorted(
    [
        *PULL_ACTIONS,
        "ecr:CompleteLayerUpload",
        "ecr:InitiateLayerUpload",
        "ecr:PutImage",
        "ecr:UploadLayerPart",
    ]
)


@dataclass(frozen=True)
class ContainerRegistryArgs:
    baseline: Baseline
    settings: ContainerRegistrySettings
    encryption: EncryptionKey
    roles: PlatformRoles


def lifecycle_policy(settings: ContainerRegistrySettings) -> str:
    """Untagged images expire after N days; only the newest M images are kept."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": "Expire untagged images",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": settings.untagged_retention_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": "Keep only the newest images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": settings.keep_last_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        },
        sort_keys=True,
    )


class ContainerRegistry(pulumi.ComponentResource):
    """One ECR repository per configured name, `<project>-<stack>/<name>`: tags
    immutable and images scanned on push (as settings ask; policies require
    both), encrypted with the platform KMS key, expired by a lifecycle policy,
    and readable or writable only by the platform's own roles (runtime pulls,
    publisher pushes). Repositories are protected and retained in prod."""

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:ContainerRegistry", name, {}, opts)
        self._args = args
        self.repositories = {
            repo: self._repository(name, repo) for repo in args.settings.repositories
        }
        self.repository_urls = {r: repo.repository_url for r, repo in self.repositories.items()}
        self.repository_arns = {r: repo.arn for r, repo in self.repositories.items()}
        self.register_outputs({"repositoryUrls": self.repository_urls})

    def _repository(self, name: str, repo: str) -> aws.ecr.Repository:
        args, baseline = self._args, self._args.baseline
        settings = args.settings
        repository = aws.ecr.Repository(
            f"{name}-{repo}",
            name=f"{baseline.namer.prefix}/{repo}",
            image_tag_mutability="IMMUTABLE" if settings.immutable_tags else "MUTABLE",
            image_scanning_configuration={"scan_on_push": settings.scan_on_push},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.encryption.id}],
            force_delete=False,
            tags={**baseline.tags, "repository": repo},
            opts=baseline.stateful(self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-{repo}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(settings),
            opts=baseline.child(self),
        )
        aws.ecr.RepositoryPolicy(
            f"{name}-{repo}-access",
            repository=repository.name,
            policy=policy_document(
                {
                    "Sid": "RuntimePulls",
                    "Effect": "Allow",
                    "Principal": {"AWS": args.roles.runtime.arn},
                    "Action": PULL_ACTIONS,
                },
                # Without `mlops:ci` nobody is granted pushes here (IAM may still
                # allow principals of the account).
                *(
                    [
                        {
                            "Sid": "PublisherPushes",
                            "Effect": "Allow",
                            "Principal": {"AWS": args.roles.publisher.arn},
                            "Action": PUSH_ACTIONS,
                        }
                    ]
                    if args.roles.publisher is not None
                    else []
                ),
            ),
            opts=baseline.child(self),
        )
        return repository


@dataclass(frozen=True)
class ModelRegistryArgs:
    baseline: Baseline


class ModelRegistry(pulumi.ComponentResource):
    """A SageMaker model package group: versioned, approvable model packages for
    the stack. Protected and retained in prod."""

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:aws:ModelRegistry", name, {}, opts)
        baseline = args.baseline
        self.group = aws.sagemaker.ModelPackageGroup(
            name,
            model_package_group_name=baseline.namer.name("models"),
            model_package_group_description=f"Model packages of {baseline.namer.prefix}",
            tags=dict(baseline.tags),
            # Was `<name>-models`: the alias keeps the group through the rename.
            opts=baseline.stateful(self, aliases=[pulumi.Alias(name=f"{name}-models")]),
        )
        self.register_outputs({"modelPackageGroup": self.group.model_package_group_name})
