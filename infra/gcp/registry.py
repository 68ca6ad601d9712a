"""`mlops:gcp:ContainerRegistry`: one private Docker repository in Artifact Registry per
`registries.containers.repositories` entry.

One repository per name, not one repository holding every image, because the
repository is Artifact Registry's unit of IAM, encryption, immutability and
cleanup, as it is ECR's: a name in the settings means the same thing on every
cloud, and access can later be granted per repository (CI pushes to
`training`, endpoints pull from `serving`) without touching the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline, EncryptionKey
from infra.gcp.bucket import SECONDS_PER_DAY
from infra.gcp.context import labels
from infra.gcp.key import grant_key_use
from infra.gcp.services import ARTIFACT_REGISTRY_API
from infra.settings import ContainerRegistrySettings


@dataclass(frozen=True)
class ContainerRegistryArgs:
    baseline: Baseline
    containers: ContainerRegistrySettings
    encryption: EncryptionKey
    # Resources the registry waits for (the Artifact Registry and scanning APIs).
    requires: Sequence[pulumi.Resource] = ()


def cleanup_policies(containers: ContainerRegistrySettings) -> list[dict[str, Any]]:
    """Untagged versions go after `untaggedRetentionDays`; the newest `keepLastImages`
    versions always stay. Artifact Registry applies KEEP before DELETE, and has no
    "delete beyond a count", so tagged (released, immutable) versions are never
    deleted by policy: a deployment pinned to a tag keeps its image."""
    return [
        {
            "id": "delete-untagged",
            "action": "DELETE",
            "condition": {
                "tag_state": "UNTAGGED",
                # A protobuf Duration: seconds, never days (the API refuses
                # "7d", and a provider that expands it reads back a diff).
                "older_than": f"{containers.untagged_retention_days * SECONDS_PER_DAY}s",
            },
        },
        {
            "id": "keep-most-recent",
            "action": "KEEP",
            "most_recent_versions": {"keep_count": containers.keep_last_images},
        },
    ]


class ContainerRegistry(pulumi.ComponentResource):
    """Docker repositories in the stack's region, encrypted with the platform key
    (CMEK; the Artifact Registry service agent may use that key and nothing else,
    granted before any repository exists), with immutable tags and vulnerability
    scanning as the settings ask, and cleanup policies that run for real (no dry
    run). Repository ids carry the stack prefix, so two stacks can share a
    project. Protected and retained in prod."""

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:ContainerRegistry", name, {}, opts)
        baseline = args.baseline
        # Creating the identity makes the agent exist before it is granted anything.
        self.agent = gcp.projects.ServiceIdentity(
            f"{name}-agent",
            service=ARTIFACT_REGISTRY_API,
            opts=baseline.child(self, depends_on=list(args.requires)),
        )
        self.key_grant = grant_key_use(
            self, f"{name}-key-user", args.encryption, self.agent.member, baseline
        )
        self.repositories = {
            repo: self._repository(name, repo, args) for repo in args.containers.repositories
        }
        self.repository_urls = {r: repo.registry_uri for r, repo in self.repositories.items()}
        self.register_outputs({"repositoryUrls": self.repository_urls})

    def _repository(
        self, name: str, repo: str, args: ContainerRegistryArgs
    ) -> gcp.artifactregistry.Repository:
        containers = args.containers
        baseline = args.baseline
        scanning = "INHERITED" if containers.scan_on_push else "DISABLED"
        return gcp.artifactregistry.Repository(
            f"{name}-{repo}",
            repository_id=baseline.namer.name(repo, kind="gcp-id"),
            location=baseline.region,
            format="DOCKER",
            mode="STANDARD_REPOSITORY",
            description=f"{repo} images of {baseline.namer.prefix}",
            kms_key_name=args.encryption.id,
            docker_config={"immutable_tags": containers.immutable_tags},
            cleanup_policies=cleanup_policies(containers),
            cleanup_policy_dry_run=False,
            vulnerability_scanning_config={"enablement_config": scanning},
            labels=labels(baseline, {"purpose": "containers", "repository": repo}),
            opts=baseline.stateful(self, depends_on=[self.key_grant, *args.requires]),
        )
