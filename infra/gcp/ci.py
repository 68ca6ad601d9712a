"""`mlops:gcp:CiIdentities`: the service accounts GitHub Actions acts as, through
workload identity federation (no service account key exists)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.common import Baseline
from infra.gcp.context import GcpProject
from infra.settings import CiSettings

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# A pool or provider id: 4 to 32 of [a-z0-9-]; Google reserves the `gcp-` prefix.
POOL_ID_MAX = 32
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
PREVIEW_ROLE = "roles/viewer"
DEPLOY_ROLE = "roles/owner"
PUBLISHER_ROLE = "roles/artifactregistry.writer"


@dataclass(frozen=True)
class CiIdentitiesArgs:
    baseline: Baseline
    project: GcpProject
    ci: CiSettings
    # The stack's environment: its deploy job runs in the GitHub environment of that name.
    environment: str
    # The stack's container repositories, the only ones the publisher may push to.
    repositories: Mapping[str, gcp.artifactregistry.Repository]
    # Resources the identities wait for (the IAM, IAM credentials and STS APIs).
    requires: Sequence[pulumi.Resource] = ()


def attribute_condition(repositories: Sequence[str]) -> str:
    """Admits tokens of these repositories only: GitHub signs every repository's
    tokens with one issuer, so without it any GitHub workflow could federate
    (Google refuses GitHub providers without a condition)."""
    if len(repositories) == 1:
        return f"assertion.repository == '{repositories[0]}'"
    listed = ", ".join(f"'{r}'" for r in repositories)
    return f"assertion.repository in [{listed}]"


class CiIdentities(pulumi.ComponentResource):
    """A workload identity pool with one GitHub provider that admits tokens of
    `mlops:ci`'s repositories only, and three service accounts, each
    impersonable by exactly one token subject of that pool:

    - `ci-preview`: pull requests of the platform's repository (not forks: their
      tokens name the fork). `roles/viewer` on the project: configuration only;
      it cannot change anything, read secret values or use the platform key, and
      the lake's buckets grant object reads only through IAM (uniform
      bucket-level access), where `roles/viewer` holds none.
    - `ci-deploy`: only the deploy job in the stack's GitHub environment.
      `roles/owner` on the project: a deploy creates service accounts, IAM
      bindings (project, key, bucket, repository) and keys, which no narrower
      predefined role covers together.
    - `publisher`: default-branch workflows of the platform's repository and of
      each of `ci.publishers`; pushes images to the stack's repositories only.

    Deleting the pool keeps its id reserved for 30 days (it can be undeleted
    meanwhile), so the pool is protected and retained in prod and its id is
    stable for the stack."""

    def __init__(
        self, name: str, args: CiIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:gcp:CiIdentities", name, {}, opts)
        baseline, ci = args.baseline, args.ci
        self._args = args
        self._name = name
        repositories = [ci.repository, *ci.publishers]
        self.pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            workload_identity_pool_id=pool_id(baseline),
            display_name=f"GitHub Actions {baseline.namer.stack}"[:32],
            description=f"GitHub Actions workflows acting on {baseline.namer.prefix}",
            opts=baseline.stateful(self, depends_on=list(args.requires)),
        )
        self.provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-github",
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id="github",
            display_name="GitHub Actions",
            # No allowed audiences: the default one (the provider's own name) is
            # what google-github-actions/auth asks its token for.
            oidc={"issuer_uri": GITHUB_ISSUER},
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.ref": "assertion.ref",
                "attribute.environment": "assertion.environment",
            },
            attribute_condition=attribute_condition(repositories),
            opts=baseline.child(self),
        )
        number = gcp.organizations.get_project_output(project_id=args.project.project_id).number
        self._pool_path = pulumi.Output.concat(
            "principal://iam.googleapis.com/projects/",
            number,
            "/locations/global/workloadIdentityPools/",
            self.pool.workload_identity_pool_id,
            "/subject/",
        )
        environment = ci.environment or args.environment
        self.preview = self._account(
            "ci-preview",
            "Previews the stack from pull requests",
            {
                # The first key as before the drift subject was added: never re-created.
                "federated" if i == 0 else f"federated-{i}": subject
                for i, subject in enumerate(ci.preview_subjects())
            },
        )
        self.deploy = self._account(
            "ci-deploy",
            f"Deploys the stack from the GitHub environment {environment}",
            {"federated": ci.deploy_subject(args.environment)},
        )
        # Keyed by repository, so adding a publisher never renames another's binding.
        self.publisher = self._account(
            "publisher",
            "Pushes container images from default-branch workflows",
            {
                f"federated-{r.lower().replace('/', '-')}": subject
                for r, subject in ci.publisher_subjects().items()
            },
        )
        self._project_role("ci-preview", self.preview, PREVIEW_ROLE)
        self._project_role("ci-deploy", self.deploy, DEPLOY_ROLE)
        for repo, repository in sorted(args.repositories.items()):
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-publisher-{repo}",
                project=args.project.project_id,
                location=repository.location,
                repository=repository.name,
                role=PUBLISHER_ROLE,
                member=self.publisher.member,
                opts=baseline.child(self),
            )
        self.publisher_email = self.publisher.email
        # What a publishing repository passes to .github/workflows/publish-image.yml.
        self.publish_inputs = {
            "cloud": "gcp",
            "gcp-workload-identity-provider": self.provider.name,
            "gcp-service-account": self.publisher_email,
        }
        self.variables = {
            "repository": self._variables(self.preview),
            f"environment:{environment}": self._variables(self.deploy),
        }
        self.register_outputs({"variables": self.variables, "publisherEmail": self.publisher_email})

    def _variables(self, account: gcp.serviceaccount.Account) -> dict[str, pulumi.Output[str]]:
        """What the workflows read: vars.GCP_WORKLOAD_IDENTITY_PROVIDER and
        vars.GCP_SERVICE_ACCOUNT."""
        return {
            "GCP_WORKLOAD_IDENTITY_PROVIDER": self.provider.name,
            "GCP_SERVICE_ACCOUNT": account.email,
        }

    def _account(
        self, role: str, description: str, subjects: Mapping[str, str]
    ) -> gcp.serviceaccount.Account:
        """An account only the token subjects named may impersonate (`{key: subject}`)."""
        baseline = self._args.baseline
        account = gcp.serviceaccount.Account(
            f"{self._name}-{role}",
            account_id=account_id(baseline, role),
            display_name=f"GitHub Actions {role} of {baseline.namer.prefix}"[:100],
            description=f"{description} (GitHub OIDC, no key)",
            opts=baseline.child(self, depends_on=list(self._args.requires)),
        )
        for key, subject in sorted(subjects.items()):
            gcp.serviceaccount.IAMMember(
                f"{self._name}-{role}-{key}",
                service_account_id=account.name,
                role=WORKLOAD_IDENTITY_USER,
                member=pulumi.Output.concat(self._pool_path, subject),
                opts=baseline.child(self),
            )
        return account

    def _project_role(self, role: str, account: gcp.serviceaccount.Account, grant: str) -> None:
        gcp.projects.IAMMember(
            f"{self._name}-{role}-project",
            project=self._args.project.project_id,
            role=grant,
            member=account.member,
            opts=self._args.baseline.child(self),
        )


def pool_id(baseline: Baseline) -> str:
    """`<prefix>-ci`, or within 32 characters with a digest of the stack when longer."""
    name = baseline.namer.name("ci", kind="gcp-id")
    if len(name) <= POOL_ID_MAX:
        return name
    return f"{name[: POOL_ID_MAX - 7].rstrip('-')}-{_digest(baseline)}"


def account_id(baseline: Baseline, role: str) -> str:
    """6 to 30 characters: the role, and a digest of the stack so two stacks of one
    project never share an account."""
    return f"{role[:23]}-{_digest(baseline)}"


def _digest(baseline: Baseline) -> str:
    return hashlib.sha256(baseline.namer.prefix.encode()).hexdigest()[:6]
