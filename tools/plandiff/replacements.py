"""Which property changes make a resource replace: offline plans carry no
provider diff, so this table stands in for it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_AZURE_ML_ASSET = ("name", "properties", "resourceGroupName", "version", "workspaceName")

# Properties whose change makes the provider delete and recreate the resource.
# Offline plans carry no provider diff, so this table stands in for it. Sources:
# ForceNew in the upstream Terraform schemas (pulumi-aws and pulumi-gcp are built
# on them); for azure-native, the ARM URL path segments plus properties ARM
# refuses to update. `kind` on a storage account only upgrades in place from
# Storage to StorageV2; any other change needs a new account, so every change is
# flagged. Paths may be nested (`versionTemplate.protectionLevel`).
REPLACE_ON_CHANGE: Mapping[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:kms/key:Key": (
        "customKeyStoreId",
        "customerMasterKeySpec",
        "keyUsage",
        "multiRegion",
        "xksKeyId",
    ),
    "aws:ecr/repository:Repository": ("encryptionConfigurations", "name"),
    # Not stateful, but a model version ships as their replacement; listed so
    # the plan diff shows it. A SageMaker model and endpoint configuration are
    # immutable (every input forces a new one); an endpoint only updates.
    "aws:sagemaker/model:Model": (
        "containers",
        "enableNetworkIsolation",
        "executionRoleArn",
        "inferenceExecutionConfig",
        "name",
        "primaryContainer",
        "vpcConfig",
    ),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
        "asyncInferenceConfig",
        "dataCaptureConfig",
        "kmsKeyArn",
        "name",
        "namePrefix",
        "productionVariants",
        "shadowProductionVariants",
    ),
    "aws:sagemaker/endpoint:Endpoint": ("name",),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url",),
    "gcp:storage/bucket:Bucket": ("location", "name", "project"),
    "gcp:kms/keyRing:KeyRing": ("location", "name", "project"),
    "gcp:kms/cryptoKey:CryptoKey": (
        "importOnly",
        "keyRing",
        "name",
        "purpose",
        "skipInitialVersionCreation",
        "versionTemplate.protectionLevel",
    ),
    "gcp:artifactregistry/repository:Repository": (
        "format",
        "kmsKeyName",
        "location",
        "mode",
        "project",
        "repositoryId",
    ),
    # A deleted pool's id stays reserved for 30 days: a replacement cannot reuse it.
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool": ("project", "workloadIdentityPoolId"),
    "azure-native:storage:StorageAccount": (
        "accountName",
        "isHnsEnabled",
        "kind",
        "location",
        "resourceGroupName",
    ),
    "azure-native:storage:BlobContainer": ("accountName", "containerName", "resourceGroupName"),
    "azure-native:containerregistry:Registry": ("location", "registryName", "resourceGroupName"),
    "azure-native:keyvault:Vault": ("location", "resourceGroupName", "vaultName"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName",),
    "azure-native:resources:ResourceGroup": ("location", "resourceGroupName"),
    "azure-native:keyvault:Key": ("keyName", "resourceGroupName", "vaultName"),
    "azure-native:operationalinsights:Workspace": (
        "location",
        "resourceGroupName",
        "workspaceName",
    ),
    "azure-native:machinelearningservices:Registry": (
        "location",
        "registryName",
        "resourceGroupName",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "location",
        "resourceGroupName",
        "resourceName",
    ),
    "azure-native:machinelearningservices:Workspace": (
        "keyVault",
        "location",
        "resourceGroupName",
        "storageAccount",
        "workspaceName",
    ),
    # Serving. A Vertex AI endpoint and an Azure ML online endpoint only update
    # when a model version ships; what serves the model is replaced, made first.
    "gcp:vertex/aiEndpoint:AiEndpoint": (
        "encryptionSpec",
        "location",
        "name",
        "network",
        "privateServiceConnectConfig",
        "project",
        "region",
    ),
    "gcp:bigquery/dataset:Dataset": ("datasetId", "location", "project"),
    "gcp:logging/projectBucketConfig:ProjectBucketConfig": ("bucketId", "location", "project"),
    # IAM members: every input names the binding, so any change is a new one.
    "gcp:storage/bucketIAMMember:BucketIAMMember": ("bucket", "condition", "member", "role"),
    "gcp:projects/iAMMember:IAMMember": ("condition", "member", "project", "role"),
    # The provider's own diff (infra/gcp/vertex_deployment_inputs.py REPLACING; a test
    # keeps the two equal: the plan diff needs only the standard library).
    "pulumi-python:dynamic/gcp:VertexModelDeployment": (
        "acceleratorCount",
        "acceleratorType",
        "displayName",
        "endpoint",
        "machineType",
        "model",
        "serviceAccount",
    ),
    "azure-native:machinelearningservices:OnlineEndpoint": (
        "endpointName",
        "location",
        "resourceGroupName",
        "workspaceName",
    ),
    "azure-native:machinelearningservices:OnlineDeployment": (
        "deploymentName",
        "endpointName",
        "location",
        "properties.instanceType",
        "resourceGroupName",
        "workspaceName",
    ),
    # Asset versions are immutable: any change is a new version.
    "azure-native:machinelearningservices:ModelVersion": _AZURE_ML_ASSET,
    "azure-native:machinelearningservices:EnvironmentVersion": _AZURE_ML_ASSET,
    "azure-native:machinelearningservices:DataVersion": _AZURE_ML_ASSET,
    "azure-native:machinelearningservices:Datastore": (
        "name",
        "resourceGroupName",
        "workspaceName",
    ),
    "pulumi-python:dynamic/azure:OnlineEndpointTraffic": ("endpointId",),
    # The platform asks for it (replaceOnChanges): a setting follows one deployment.
    "azure-native:monitor:AutoscaleSetting": ("targetResourceUri",),
    # Accelerator pools (AWS). A template change is a new version of the same
    # template; the group takes it in place.
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", "namePrefix"),
    "aws:autoscaling/group:Group": ("initialLifecycleHooks", "name", "namePrefix"),
    "aws:ec2/placementGroup:PlacementGroup": ("name", "partitionCount", "spreadLevel", "strategy"),
    "aws:iam/instanceProfile:InstanceProfile": ("name", "namePrefix", "path"),
    # Accelerator pools (GCP; ForceNew in terraform-provider-google-beta 7.45). A
    # template is immutable (its labels too, through effective_labels); a new one
    # reaches the group in place. A group replaced loses its nodes and their jobs.
    "gcp:compute/instanceTemplate:InstanceTemplate": (
        "description",
        "disks",
        "guestAccelerators",
        "labels",
        "machineType",
        "metadata",
        "name",
        "namePrefix",
        "networkInterfaces",
        "project",
        "reservationAffinity",
        "scheduling",
        "serviceAccount",
        "shieldedInstanceConfig",
        "tags",
    ),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": (
        "baseInstanceName",
        "description",
        "distributionPolicyZones",
        "name",
        "project",
        "region",
    ),
    "gcp:compute/regionAutoscaler:RegionAutoscaler": ("name", "project", "region"),
    "gcp:tpu/v2Vm:V2Vm": (
        "acceleratorConfig",
        "acceleratorType",
        "cidrBlock",
        "name",
        "networkConfig",
        "networkConfigs",
        "project",
        "runtimeVersion",
        "schedulingConfig",
        "serviceAccount",
        "shieldedInstanceConfig",
        "zone",
    ),
    "gcp:pubsub/topic:Topic": ("name", "project"),
    "gcp:pubsub/subscription:Subscription": (
        "enableMessageOrdering",
        "filter",
        "name",
        "project",
        "topic",
    ),
}


def forced_replacements(type_: str, paths: Sequence[str]) -> tuple[str, ...]:
    """The changed paths that make `type_` replace, per REPLACE_ON_CHANGE."""
    keys = REPLACE_ON_CHANGE.get(type_, ())
    hits = {
        key
        for key in keys
        for path in paths
        if path == key or path.startswith((f"{key}.", f"{key}["))
    }
    return tuple(sorted(hits))
