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
