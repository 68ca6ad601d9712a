"""Pulumi mocks that stand in for the engine and the clouds, deterministically.

`RecordingMonitor` sees every RegisterResource request, options included
(protect, retainOnDelete, parent, provider, dependencies), which
`Mocks.new_resource` alone does not. `CloudMocks` answers with stable ids and
the computed outputs programs read (ARNs, names, ids); nothing random.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks, rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _ensure_event_loop

ACCOUNT_ID = "111111111111"
GCP_PROJECT_NUMBER = "222222222222"
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
AZURE_TENANT = "00000000-0000-0000-0000-000000000002"
AZURE_OBJECT = "00000000-0000-0000-0000-000000000003"
_NET = "{base}/providers/Microsoft.Network/"
_ML = "{base}/providers/Microsoft.MachineLearningServices/workspaces/"
_GCP_API = "https://www.googleapis.com/compute/v1/"
# Compute resources the platform references by id, as the API shapes the ids.
_GCP_COMPUTE_PATHS = {
    "gcp:compute/network:Network": "projects/{project}/global/networks/{n}",
    "gcp:compute/subnetwork:Subnetwork": "projects/{project}/regions/{region}/subnetworks/{n}",
    "gcp:compute/instanceTemplate:InstanceTemplate": (
        "projects/{project}/global/instanceTemplates/{n}"
    ),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": (
        "projects/{project}/regions/{region}/instanceGroupManagers/{n}"
    ),
}
# Other resources the platform references by id, shaped as the provider shapes them.
_GCP_PATHS = {
    "gcp:kms/keyRing:KeyRing": "projects/{project}/locations/{region}/keyRings/{n}",
    "gcp:kms/cryptoKey:CryptoKey": "{keyRing}/cryptoKeys/{n}",
    "gcp:vertex/aiEndpoint:AiEndpoint": "projects/{project}/locations/{region}/endpoints/{n}",
    "gcp:bigquery/dataset:Dataset": "projects/{project}/datasets/{datasetId}",
    "gcp:logging/projectBucketConfig:ProjectBucketConfig": (
        "projects/{project}/locations/{location}/buckets/{bucketId}"
    ),
    "gcp:pubsub/topic:Topic": "projects/{project}/topics/{n}",
    "gcp:serviceaccount/account:Account": (
        "projects/{project}/serviceAccounts/{accountId}@{project}.iam.gserviceaccount.com"
    ),
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": (
        "projects/{project}/locations/global/workloadIdentityPools/{workloadIdentityPoolId}"
    ),
    "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider": (
        "projects/{project}/locations/global/workloadIdentityPools/{workloadIdentityPoolId}"
        "/providers/{workloadIdentityPoolProviderId}"
    ),
}
_NAMESPACE = uuid.UUID("6f6c6f67-6d6c-6f70-7370-6c6174666f72")


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    custom: bool
    parent: str
    protect: bool
    retain_on_delete: bool
    provider: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    inputs: dict[str, Any]
    # URNs this resource was known by before (`aliases`): the same resource, renamed.
    aliases: list[str] = field(default_factory=list)


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        _ensure_event_loop()
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=self.make_urn(request.parent, request.type, request.name),
                custom=bool(request.custom),
                parent=request.parent,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                provider=request.provider,
                dependencies=sorted(set(request.dependencies)),
                property_dependencies={
                    key: sorted(set(deps.urns))
                    for key, deps in request.propertyDependencies.items()
                    if deps.urns
                },
                inputs=rpc.deserialize_properties(request.object) or {},
                aliases=self._aliases(request),
            )
        )
        # A resource renamed with an alias keeps its cloud name and id, as the engine
        # keeps them: the mocks derive both from the name it was created under.
        names = [a.spec.name for a in request.aliases if not a.urn and a.spec.name]
        self.mocks.created_as = names[0] if names else None
        try:
            return super().RegisterResource(request)
        finally:
            self.mocks.created_as = None

    def _aliases(self, request: Any) -> list[str]:
        """Alias specs as the URNs they stand for: a name-only alias keeps type and parent."""
        found = []
        for alias in request.aliases:
            if alias.urn:
                found.append(alias.urn)
            else:
                spec = alias.spec
                parent = "" if spec.noParent else (spec.parentUrn or request.parent)
                found.append(
                    self.make_urn(parent, spec.type or request.type, spec.name or request.name)
                )
        return sorted(set(found))


class CloudMocks(Mocks):
    """Stable ids and computed outputs for the three clouds' resources."""

    def __init__(self, region: str, gcp_project: str | None = None) -> None:
        self.region = region
        self.gcp_project = gcp_project or "offline-project"
        # The logical name a resource being registered was created under, if renamed.
        self.created_as: str | None = None

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        provider = args.typ.split(":", 1)[0]
        computed = {
            "aws": self._aws,
            "gcp": self._gcp,
            "azure-native": self._azure,
        }.get(provider)
        name = self.created_as or args.name
        resource_id = f"{name}-id"
        if computed is not None:
            resource_id, extra = computed(args.typ, name, state)
            for key, value in extra.items():
                state.setdefault(key, value)
        return resource_id, state

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                "userId": "offline",
                "id": ACCOUNT_ID,
            },
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:index/getRegion:getRegion": {"name": self.region, "region": self.region},
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": [f"{self.region}{z}" for z in "abc"],
                "zoneIds": [f"{self.region[:2]}{self.region[-1]}-az{i}" for i in (1, 2, 3)],
                "id": self.region,
            },
            "aws:ec2/getPrefixList:getPrefixList": {
                "id": "pl-6da54004",
                "name": args.args.get("name"),
                "cidrBlocks": ["52.218.0.0/17"],
            },
            "aws:ec2/getVpcEndpointService:getVpcEndpointService": {
                "availabilityZones": [f"{self.region}{z}" for z in "abc"],
                "serviceName": args.args.get("serviceName"),
                "serviceType": "Interface",
                "vpcEndpointPolicySupported": True,
                "id": args.args.get("serviceName"),
            },
            "gcp:organizations/getProject:getProject": {
                "number": GCP_PROJECT_NUMBER,
                "projectId": self.gcp_project,
                "name": self.gcp_project,
            },
            "gcp:storage/getProjectServiceAccount:getProjectServiceAccount": {
                "emailAddress": (
                    f"service-{GCP_PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
                ),
                "project": self.gcp_project,
            },
            "gcp:bigquery/getDefaultServiceAccount:getDefaultServiceAccount": {
                "email": f"bq-{GCP_PROJECT_NUMBER}@bigquery-encryption.iam.gserviceaccount.com",
                "member": (
                    f"serviceAccount:bq-{GCP_PROJECT_NUMBER}"
                    "@bigquery-encryption.iam.gserviceaccount.com"
                ),
                "project": self.gcp_project,
                "id": self.gcp_project,
            },
            "gcp:logging/getProjectCmekSettings:getProjectCmekSettings": {
                "serviceAccountId": (
                    f"service-{GCP_PROJECT_NUMBER}@gcp-sa-logging.iam.gserviceaccount.com"
                ),
                "project": self.gcp_project,
                "id": f"projects/{self.gcp_project}/cmekSettings",
            },
            "gcp:compute/getZones:getZones": {
                "names": [f"{self.region}-{z}" for z in "abc"],
                "project": self.gcp_project,
                "region": self.region,
                "id": f"projects/{self.gcp_project}/regions/{self.region}",
            },
            "azure-native:authorization:getClientConfig": {
                "subscriptionId": AZURE_SUBSCRIPTION,
                "tenantId": AZURE_TENANT,
                "objectId": AZURE_OBJECT,
                "clientId": AZURE_OBJECT,
            },
        }
        if args.token not in answers:
            raise KeyError(f"the offline plan has no answer for invoke {args.token}")
        return answers[args.token], []

    def _aws(self, typ: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        service = typ.split(":")[1].split("/", maxsplit=1)[0]
        if typ == "aws:s3/bucket:Bucket":
            bucket = state.get("bucket") or name
            return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        if typ == "aws:kms/key:Key":
            key_id = stable_uuid(typ, name)
            arn = f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{key_id}"
            return key_id, {"keyId": key_id, "arn": arn}
        if typ == "aws:iam/role:Role":
            role = state.get("name") or name
            return role, {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}", "name": role}
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            group = state.get("name") or name
            arn = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{group}"
            return group, {"arn": arn, "name": group}
        arn = f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{name}"
        # Autonamed resources get their logical name (the engine would add a suffix).
        extra: dict[str, Any] = {"arn": arn, "name": state.get("name") or name}
        if typ == "aws:ec2/eip:Eip":
            extra["allocationId"] = f"eipalloc-{stable_uuid(typ, name)[:17].replace('-', '')}"
        if typ == "aws:ecr/repository:Repository":
            repo = state.get("name", name)
            extra["repositoryUrl"] = f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{repo}"
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            # A new template's first version.
            extra["latestVersion"] = 1
        if typ == "aws:iam/instanceProfile:InstanceProfile":
            extra["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{extra['name']}"
        return name, extra

    def _gcp(self, typ: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        resource_name = state.get("name") or name
        if typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            # service-<number>@gcp-sa-<service>.iam.gserviceaccount.com, as the API names agents.
            agent = str(state.get("service", name)).split(".", 1)[0]
            email = f"service-{GCP_PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
            return f"projects/{self.gcp_project}/services/{agent}", {
                "email": email,
                "member": f"serviceAccount:{email}",
            }
        if typ == "gcp:artifactregistry/repository:Repository":
            repo = state.get("repositoryId", name)
            location = state.get("location", self.region)
            repo_id = f"projects/{self.gcp_project}/locations/{location}/repositories/{repo}"
            return repo_id, {
                "name": repo,
                "registryUri": f"{location}-docker.pkg.dev/{self.gcp_project}/{repo}",
            }
        if typ in _GCP_COMPUTE_PATHS:
            path = _GCP_COMPUTE_PATHS[typ].format(
                project=self.gcp_project, region=state.get("region", self.region), n=resource_name
            )
            return path, {"name": resource_name, "selfLink": _GCP_API + path}
        if typ in _GCP_PATHS:
            return self._gcp_path(typ, resource_name, state)
        extra: dict[str, Any] = {"name": resource_name}
        if typ == "gcp:storage/bucket:Bucket":
            extra["url"] = f"gs://{resource_name}"
            extra["selfLink"] = f"https://www.googleapis.com/storage/v1/b/{resource_name}"
        return resource_name, extra

    def _gcp_path(
        self, typ: str, resource_name: str, state: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        fields = {k: v for k, v in state.items() if isinstance(v, str)}
        fields |= {"project": self.gcp_project, "region": self.region, "n": resource_name}
        extra: dict[str, Any] = {"name": resource_name}
        if typ == "gcp:serviceaccount/account:Account":
            email = f"{state.get('accountId')}@{self.gcp_project}.iam.gserviceaccount.com"
            extra |= {"email": email, "member": f"serviceAccount:{email}"}
        path = _GCP_PATHS[typ].format(**fields)
        if typ.startswith("gcp:iam/workloadIdentityPool"):
            # The API names pools and providers by project number, not id.
            extra["name"] = path.replace(
                f"projects/{self.gcp_project}/", f"projects/{GCP_PROJECT_NUMBER}/", 1
            )
        return path, extra

    def _azure(self, typ: str, name: str, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """ARM ids shaped as Azure shapes them, and the outputs programs read (names,
        vault and key URIs, identity principals, login servers)."""
        account = "{base}/providers/Microsoft.Storage/storageAccounts/{accountName}"
        # type -> (input holding the resource's own name, ARM id template)
        arm: dict[str, tuple[str, str]] = {
            "resources:ResourceGroup": ("resourceGroupName", "{base}"),
            "storage:StorageAccount": ("accountName", account),
            "storage:BlobServiceProperties": ("blobServicesName", account + "/blobServices/{n}"),
            "storage:BlobContainer": (
                "containerName",
                account + "/blobServices/default/containers/{n}",
            ),
            "storage:ManagementPolicy": (
                "managementPolicyName",
                account + "/managementPolicies/{n}",
            ),
            "keyvault:Vault": ("vaultName", "{base}/providers/Microsoft.KeyVault/vaults/{n}"),
            "keyvault:Key": (
                "keyName",
                "{base}/providers/Microsoft.KeyVault/vaults/{vaultName}/keys/{n}",
            ),
            "managedidentity:UserAssignedIdentity": (
                "resourceName",
                "{base}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}",
            ),
            "managedidentity:FederatedIdentityCredential": (
                "federatedIdentityCredentialResourceName",
                "{base}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                "{resourceName}/federatedIdentityCredentials/{n}",
            ),
            "authorization:RoleAssignment": (
                "roleAssignmentName",
                "{scope}/providers/Microsoft.Authorization/roleAssignments/{n}",
            ),
            "authorization:ManagementLockByScope": (
                "lockName",
                "{scope}/providers/Microsoft.Authorization/locks/{n}",
            ),
            "monitor:DiagnosticSetting": (
                "name",
                "{resourceUri}/providers/Microsoft.Insights/diagnosticSettings/{n}",
            ),
            "operationalinsights:Workspace": (
                "workspaceName",
                "{base}/providers/Microsoft.OperationalInsights/workspaces/{n}",
            ),
            "containerregistry:Registry": (
                "registryName",
                "{base}/providers/Microsoft.ContainerRegistry/registries/{n}",
            ),
            "network:VirtualNetwork": ("virtualNetworkName", _NET + "virtualNetworks/{n}"),
            "network:Subnet": (
                "subnetName",
                _NET + "virtualNetworks/{virtualNetworkName}/subnets/{n}",
            ),
            "network:NetworkSecurityGroup": (
                "networkSecurityGroupName",
                _NET + "networkSecurityGroups/{n}",
            ),
            "network:PrivateEndpoint": ("privateEndpointName", _NET + "privateEndpoints/{n}"),
            "network:PrivateDnsZoneGroup": (
                "privateDnsZoneGroupName",
                _NET + "privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{n}",
            ),
            "network:NatGateway": ("natGatewayName", _NET + "natGateways/{n}"),
            "network:PublicIPAddress": ("publicIpAddressName", _NET + "publicIPAddresses/{n}"),
            "network:FlowLog": (
                "flowLogName",
                _NET + "networkWatchers/{networkWatcherName}/flowLogs/{n}",
            ),
            "privatedns:PrivateZone": ("privateZoneName", _NET + "privateDnsZones/{n}"),
            "privatedns:VirtualNetworkLink": (
                "virtualNetworkLinkName",
                _NET + "privateDnsZones/{privateZoneName}/virtualNetworkLinks/{n}",
            ),
            "machinelearningservices:Registry": (
                "registryName",
                "{base}/providers/Microsoft.MachineLearningServices/registries/{n}",
            ),
            "machinelearningservices:Workspace": ("workspaceName", _ML + "{n}"),
            "machinelearningservices:OnlineEndpoint": (
                "endpointName",
                _ML + "{workspaceName}/onlineEndpoints/{n}",
            ),
            "machinelearningservices:OnlineDeployment": (
                "deploymentName",
                _ML + "{workspaceName}/onlineEndpoints/{endpointName}/deployments/{n}",
            ),
            "machinelearningservices:Datastore": ("name", _ML + "{workspaceName}/datastores/{n}"),
            "machinelearningservices:ModelVersion": (
                "version",
                _ML + "{workspaceName}/models/{name}/versions/{n}",
            ),
            "machinelearningservices:EnvironmentVersion": (
                "version",
                _ML + "{workspaceName}/environments/{name}/versions/{n}",
            ),
            "machinelearningservices:DataVersion": (
                "version",
                _ML + "{workspaceName}/data/{name}/versions/{n}",
            ),
            "applicationinsights:Component": (
                "resourceName",
                "{base}/providers/Microsoft.Insights/components/{n}",
            ),
        }
        module, kind = typ.split(":")[1], typ.split(":")[2]
        name_key, template = arm.get(
            f"{module}:{kind}", ("", f"{{base}}/providers/{module}/{kind}/{{n}}")
        )
        resource_name = str(state.get(name_key) or name)
        group = state.get("resourceGroupName", resource_name)
        fields = {k: v for k, v in state.items() if isinstance(v, str)}
        fields |= {
            "base": f"/subscriptions/{AZURE_SUBSCRIPTION}/resourceGroups/{group}",
            "n": resource_name,
        }
        # An input the template names but the program left out reads as "unknown".
        resource_id = re.sub(r"\{(\w+)\}", lambda m: fields.get(m[1], "unknown"), template)
        extra: dict[str, Any] = {"name": resource_name}
        if kind == "UserAssignedIdentity":
            extra |= {
                "principalId": stable_uuid(typ, name, "principal"),
                "clientId": stable_uuid(typ, name),
                "tenantId": AZURE_TENANT,
            }
        elif typ == "azure-native:keyvault:Vault":
            # vaultUri is an output nested in the inputs' `properties`.
            vault_uri = f"https://{resource_name}.vault.azure.net/"
            state["properties"] = {**(state.get("properties") or {}), "vaultUri": vault_uri}
        elif typ == "azure-native:keyvault:Key":
            key_uri = f"https://{state.get('vaultName')}.vault.azure.net/keys/{resource_name}"
            version = stable_uuid(typ, name).replace("-", "")
            extra |= {"keyUri": key_uri, "keyUriWithVersion": f"{key_uri}/{version}"}
        elif typ == "azure-native:containerregistry:Registry":
            extra["loginServer"] = f"{resource_name.lower()}.azurecr.io"
        # Inputs list user-assigned identities by id; the output maps id -> identity.
        identity = state.get("identity") or {}
        if "SystemAssigned" in str(identity.get("type", "")):
            identity = {
                **identity,
                "principalId": stable_uuid(typ, name, "system"),
                "tenantId": AZURE_TENANT,
            }
            state["identity"] = identity
        if isinstance(identity.get("userAssignedIdentities"), list):
            assigned = {i: {} for i in identity["userAssignedIdentities"]}
            state["identity"] = {**identity, "userAssignedIdentities": assigned}
        return resource_id, extra
