"""What the rules know about resource types, in one place."""

from __future__ import annotations

# Resources that hold data or identity: losing one loses data or breaks trust.
STATEFUL_TYPES: frozenset[str] = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:ecr/repository:Repository",
        "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
        # Flow logs: the record of who talked to what.
        "aws:cloudwatch/logGroup:LogGroup",
        "gcp:storage/bucket:Bucket",
        "gcp:kms/keyRing:KeyRing",
        "gcp:kms/cryptoKey:CryptoKey",
        "gcp:artifactregistry/repository:Repository",
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobContainer",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Key",
        "azure-native:containerregistry:Registry",
        "azure-native:operationalinsights:Workspace",
        "azure-native:machinelearningservices:Registry",
        "azure-native:managedidentity:UserAssignedIdentity",
        # Captured requests and responses of the Vertex AI endpoints.
        "gcp:bigquery/dataset:Dataset",
        # The audit trail.
        "gcp:logging/projectBucketConfig:ProjectBucketConfig",
        # The account's trust in GitHub Actions, one per account.
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "gcp:iam/workloadIdentityPool:WorkloadIdentityPool",
        # Its models, environments and datastores, and its encryption.
        "azure-native:machinelearningservices:Workspace",
    }
)

# The input that holds a stateful resource's name in the cloud; None where the
# cloud assigns an id. Left out of the inputs, the name is autonamed by Pulumi
# from the logical name plus a random suffix, chosen at create time.
NAME_PROPERTY: dict[str, str | None] = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:kms/key:Key": None,
    "aws:ecr/repository:Repository": "name",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "modelPackageGroupName",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "gcp:storage/bucket:Bucket": "name",
    "gcp:kms/keyRing:KeyRing": "name",
    "gcp:kms/cryptoKey:CryptoKey": "name",
    "gcp:artifactregistry/repository:Repository": "repositoryId",
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Key": "keyName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:machinelearningservices:Registry": "registryName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "gcp:bigquery/dataset:Dataset": "datasetId",
    "gcp:logging/projectBucketConfig:ProjectBucketConfig": "bucketId",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": None,
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": "workloadIdentityPoolId",
    "azure-native:machinelearningservices:Workspace": "workspaceName",
}

# Resources that take tags (AWS, Azure) or labels (GCP), and under which input.
TAG_PROPERTY: dict[str, str] = {
    "aws:s3/bucket:Bucket": "tags",
    "aws:kms/key:Key": "tags",
    "aws:ecr/repository:Repository": "tags",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "tags",
    "aws:cloudwatch/logGroup:LogGroup": "tags",
    "aws:ec2/vpc:Vpc": "tags",
    "aws:ec2/subnet:Subnet": "tags",
    "aws:ec2/routeTable:RouteTable": "tags",
    "aws:ec2/securityGroup:SecurityGroup": "tags",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "tags",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "tags",
    "aws:ec2/flowLog:FlowLog": "tags",
    "aws:ec2/internetGateway:InternetGateway": "tags",
    "aws:ec2/natGateway:NatGateway": "tags",
    "aws:ec2/eip:Eip": "tags",
    "aws:sagemaker/model:Model": "tags",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": "tags",
    "aws:sagemaker/endpoint:Endpoint": "tags",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "tags",
    "aws:appautoscaling/target:Target": "tags",
    "gcp:storage/bucket:Bucket": "labels",
    "gcp:kms/cryptoKey:CryptoKey": "labels",
    "gcp:artifactregistry/repository:Repository": "labels",
    "azure-native:resources:ResourceGroup": "tags",
    "azure-native:storage:StorageAccount": "tags",
    "azure-native:keyvault:Vault": "tags",
    "azure-native:containerregistry:Registry": "tags",
    "azure-native:operationalinsights:Workspace": "tags",
    "azure-native:machinelearningservices:Registry": "tags",
    "azure-native:keyvault:Key": "tags",
    "azure-native:managedidentity:UserAssignedIdentity": "tags",
    "azure-native:network:VirtualNetwork": "tags",
    "azure-native:network:NetworkSecurityGroup": "tags",
    "azure-native:network:PrivateEndpoint": "tags",
    "azure-native:network:NatGateway": "tags",
    "azure-native:network:PublicIPAddress": "tags",
    "azure-native:network:FlowLog": "tags",
    "azure-native:privatedns:PrivateZone": "tags",
    "azure-native:privatedns:VirtualNetworkLink": "tags",
    "gcp:bigquery/dataset:Dataset": "labels",
    "gcp:vertex/aiEndpoint:AiEndpoint": "labels",
    "gcp:monitoring/alertPolicy:AlertPolicy": "userLabels",
    "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy": "labels",
    "azure-native:machinelearningservices:Workspace": "tags",
    "azure-native:machinelearningservices:OnlineEndpoint": "tags",
    "azure-native:machinelearningservices:OnlineDeployment": "tags",
    "azure-native:applicationinsights:Component": "tags",
    "azure-native:monitor:AutoscaleSetting": "tags",
    "azure-native:monitor:MetricAlert": "tags",
}

REQUIRED_TAGS: tuple[str, ...] = (
    "project",
    "stack",
    "environment",
    "owner",
    "cost-center",
    "managed-by",
)

# Inputs that carry an IAM policy document, per type.
POLICY_DOCUMENT_PROPERTY: dict[str, str] = {
    "aws:kms/key:Key": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
}


# Nitro instance families with local NVMe instance storage, which SageMaker
# encrypts in hardware and for which it refuses an endpoint configuration's
# KmsKeyId. From the EC2 instance store tables (instance store volumes,
# checked 2026-11): the `d` families, and these GPU and Trainium families.
LOCAL_STORAGE_FAMILIES = frozenset(
    {"g4ad", "g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "trn1", "trn1n"}
)


def instance_family(instance_type: str) -> str:
    """`g5` from `ml.g5.xlarge` (SageMaker) or `g5.xlarge` (EC2)."""
    parts = instance_type.split(".")
    return parts[-2] if len(parts) >= 2 else ""


def has_local_storage(instance_type: str) -> bool:
    """True when the instance type has local NVMe storage (no KMS key for it then)."""
    family = instance_family(instance_type)
    if family in LOCAL_STORAGE_FAMILIES:
        return True
    # c5d, m5d, r5d, m6id, c6id, r6id, ...: a `d` after the generation digit.
    generation = next((i for i, c in enumerate(family) if c.isdigit()), -1)
    return generation >= 0 and "d" in family[generation + 1 :]


# Instance families by the accelerator they carry, where the family name says it.
ACCELERATOR_FAMILY_PREFIXES: dict[str, str] = {"inf": "inferentia", "trn": "trainium"}


def accelerator_kind(instance_type: str) -> str | None:
    """The accelerator an AWS instance type carries, if any: GPU families start
    with g or p and a generation digit (g5, g6e, p4d, p5), Inferentia with inf,
    Trainium with trn."""
    family = instance_family(instance_type)
    for prefix, kind in ACCELERATOR_FAMILY_PREFIXES.items():
        if family.startswith(prefix):
            return kind
    if family[:1] in ("g", "p") and family[1:2].isdigit():
        return "gpu"
    return None


# What accelerator an instance or machine type carries, as one name per
# accelerator model on every cloud, so a rule can forbid a class (h100 in dev)
# whatever the cloud calls the type. None is a CPU-only type.
ACCELERATOR_CLASSES: frozenset[str] = frozenset(
    {
        "k80", "p4", "p100", "v100", "t4", "a10", "a10g", "l4", "l40s",
        "rtx-pro-4500", "rtx-pro-6000", "a100", "h100", "h200", "b200", "b300", "gb200",
        "gaudi", "inferentia", "trainium", "tpu",
    }
)  # fmt: skip

# AWS, by instance family (`ml.<family>.<size>` on SageMaker, `<family>.<size>`
# on EC2): every accelerated family of botocore's SageMaker inference instance
# types, from the EC2 accelerated computing instance pages, checked 2026-11.
AWS_FAMILY_ACCELERATORS: dict[str, str] = {
    "p2": "k80",
    "p3": "v100",
    "g4dn": "t4",
    "g5": "a10g",
    "g6": "l4",
    "g6e": "l40s",
    "g7": "rtx-pro-4500",
    "g7e": "rtx-pro-6000",
    "p4d": "a100",
    "p4de": "a100",
    "p5": "h100",
    "p5e": "h200",
    "p5en": "h200",
    "p6-b200": "b200",
    "p6-b300": "b300",
    "p6e-gb200": "gb200",
    "dl1": "gaudi",
    "inf1": "inferentia",
    "inf2": "inferentia",
    "trn1": "trainium",
    "trn1n": "trainium",
    "trn2": "trainium",
}

# GCP, by accelerator type: Vertex AI's AcceleratorType enum (aiplatform v1),
# which Compute Engine names in lowercase with hyphens (nvidia-tesla-t4).
GCP_ACCELERATOR_TYPES: dict[str, str] = {
    "NVIDIA_TESLA_K80": "k80",
    "NVIDIA_TESLA_P4": "p4",
    "NVIDIA_TESLA_P100": "p100",
    "NVIDIA_TESLA_V100": "v100",
    "NVIDIA_TESLA_T4": "t4",
    "NVIDIA_TESLA_A100": "a100",
    "NVIDIA_A100_80GB": "a100",
    "NVIDIA_L4": "l4",
    "NVIDIA_H100_80GB": "h100",
    "NVIDIA_H100_MEGA_80GB": "h100",
    "NVIDIA_H200_141GB": "h200",
    "NVIDIA_B200": "b200",
    "NVIDIA_GB200": "gb200",
    "NVIDIA_RTX_PRO_6000": "rtx-pro-6000",
    "TPU_V2": "tpu",
    "TPU_V3": "tpu",
    "TPU_V4_POD": "tpu",
    "TPU_V5_LITEPOD": "tpu",
}

# GCP machine series that carry their accelerators (the type is the series and
# a size: a2-highgpu-1g, g2-standard-8, ct5lp-hightpu-4t), from Compute Engine's
# accelerator-optimized and TPU machine types, checked 2026-11. N1 types carry
# none: GPUs are attached to them, and named by accelerator type.
GCP_SERIES_ACCELERATORS: dict[str, str] = {
    "a2-highgpu": "a100",
    "a2-megagpu": "a100",
    "a2-ultragpu": "a100",
    "a3-highgpu": "h100",
    "a3-edgegpu": "h100",
    "a3-megagpu": "h100",
    "a3-ultragpu": "h200",
    "a4-highgpu": "b200",
    "a4x-highgpu": "gb200",
    "g2-standard": "l4",
    "g4-standard": "rtx-pro-6000",
    "ct4p-hightpu": "tpu",
    "ct5lp-hightpu": "tpu",
    "ct5p-hightpu": "tpu",
    "ct6e-standard": "tpu",
    "tpu7x-standard": "tpu",
}

# Azure, by VM series: the size without `Standard_` and its vCPU count, in
# lowercase (Standard_NC4as_T4_v3 -> ncas_t4_v3), as Azure ML's managed online
# endpoint SKU list and the Azure VM size pages name them, checked 2026-11.
AZURE_SERIES_ACCELERATORS: dict[str, str] = {
    "ncas_t4_v3": "t4",
    "ncs_v2": "p100",
    "ncs_v3": "v100",
    "ndrs_v2": "v100",
    "nvads_a10_v5": "a10",
    "nvadms_a10_v5": "a10",
    "ncads_a100_v4": "a100",
    "ndasr_v4": "a100",
    "ndamsr_a100_v4": "a100",
    "ncads_h100_v5": "h100",
    "ncadis_h100_v5": "h100",
    "ndis_h100_v5": "h100",
    "ndisr_h100_v5": "h100",
}


def gcp_machine_series(machine_type: str) -> str:
    """`g2-standard` from `g2-standard-8`: the machine type without its size."""
    return machine_type.rpartition("-")[0]


def azure_vm_series(vm_size: str) -> str:
    """`ncas_t4_v3` from `Standard_NC4as_T4_v3`: Azure names sizes case-insensitively."""
    name = vm_size.lower().removeprefix("standard_")
    start = next((i for i, c in enumerate(name) if c.isdigit()), len(name))
    end = next((i for i in range(start, len(name)) if not name[i].isdigit()), len(name))
    return name[:start] + name[end:]


def accelerator_class(
    cloud: str, instance_type: str, accelerator_type: str | None = None
) -> str | None:
    """The class of accelerator (one of ACCELERATOR_CLASSES) an instance type
    carries on `cloud` (aws, gcp, azure), or None for a CPU-only type. On GCP an
    attached accelerator (Vertex AI's or Compute Engine's name) decides."""
    if cloud == "aws":
        return AWS_FAMILY_ACCELERATORS.get(instance_family(instance_type))
    if cloud == "gcp":
        if accelerator_type:
            return GCP_ACCELERATOR_TYPES.get(accelerator_type.upper().replace("-", "_"))
        return GCP_SERIES_ACCELERATORS.get(gcp_machine_series(instance_type))
    if cloud == "azure":
        return AZURE_SERIES_ACCELERATORS.get(azure_vm_series(instance_type))
    return None
