"""GCP accelerator pools on mocks: GPU nodes with no external IP, Shielded VMs on a
boot disk under the platform key, stopped by host maintenance, Spot or on demand
or in a named reservation, grown from zero by their job queue; TPU slices with no
external IP; each pool's own least-privileged account."""

from __future__ import annotations

import pytest
from conftest import of_type, one, plan_with, planned

from infra.gcp.pool import GPU_IMAGE
from tools.mockcloud import GCP_PROJECT_NUMBER

POOL = "mlops:gcp:AcceleratorPool"
TEMPLATE = "gcp:compute/instanceTemplate:InstanceTemplate"
GROUP = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
AUTOSCALER = "gcp:compute/regionAutoscaler:RegionAutoscaler"
TPU = "gcp:tpu/v2Vm:V2Vm"
TOPIC = "gcp:pubsub/topic:Topic"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
ACCOUNT = "gcp:serviceaccount/account:Account"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
PROJECT_GRANT = "gcp:projects/iAMMember:IAMMember"
BUCKET_GRANT = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPOSITORY_GRANT = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
SUBSCRIPTION_GRANT = "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
COMPUTE_AGENT = (
    f"serviceAccount:service-{GCP_PROJECT_NUMBER}@compute-system.iam.gserviceaccount.com"
)
PUBSUB_AGENT = f"serviceAccount:service-{GCP_PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
ENCRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
POOLS = {
    "train": {"kind": "gpu", "type": "g2-standard-8", "spot": True, "maxNodes": 3},
    "tune": {
        "kind": "gpu",
        "type": "n1-standard-8",
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": 2},
        "capacityReservation": "t4-reservation",
        "minNodes": 1,
        "maxNodes": 2,
        "diskGb": 500,
        "image": "projects/my-images/global/images/family/trainer",
    },
    "big": {"kind": "gpu", "type": "a3-ultragpu-8g", "maxNodes": 1},
    "lite": {"kind": "tpu", "type": "v5litepod-8", "topology": "2x4", "spot": True, "minNodes": 1},
    "trillium": {
        "kind": "tpu",
        "type": "v6e-8",
        "minNodes": 2,
        "maxNodes": 2,
        "image": "v2-alpha-tpuv6e-custom",
    },
    "idle": {"kind": "tpu", "type": "v4-8"},
}


@pytest.fixture(scope="module")
def plan():
    return plan_with("gcp-dev", acceleratorPools=POOLS)


def _template(plan, pool: str):
    return one(plan, TEMPLATE, f"-pool-{pool}-template")


def _slices(plan, pool: str):
    return [r for r in of_type(plan, TPU) if f"-pool-{pool}-slice-" in r.name]


def _member(plan, pool: str) -> str:
    account = one(plan, ACCOUNT, f"-pool-{pool}-nodes")
    project = plan.settings.gcp_project
    return f"serviceAccount:{account.inputs['accountId']}@{project}.iam.gserviceaccount.com"


def test_a_stack_without_pools_has_none() -> None:
    plan = plan_with("gcp-dev", acceleratorPools={}, endpoints={})
    assert of_type(plan, POOL) == []
    assert of_type(plan, "mlops:gcp:PoolAgents") == []
    assert "acceleratorPools" not in plan.outputs


def test_gpu_nodes_have_no_external_ip_and_run_in_the_workload_subnet(plan) -> None:
    for pool in ("train", "tune", "big"):
        interfaces = _template(plan, pool).inputs["networkInterfaces"]
        assert interfaces == [
            {
                "network": plan.outputs["networkId"],
                "subnetwork": plan.outputs["subnetIds"]["workload"],
            }
        ]
        assert "accessConfigs" not in interfaces[0]
    assert not [f for f in plan.findings if f.policy == "node-no-public-ip"]


def test_gpu_boot_disks_are_encrypted_with_the_platform_key(plan) -> None:
    disks = _template(plan, "train").inputs["disks"]
    assert len(disks) == 1
    boot = disks[0]
    assert boot["diskEncryptionKey"] == {"kmsKeySelfLink": plan.outputs["keyId"]}
    assert (boot["boot"], boot["autoDelete"], boot["diskSizeGb"]) == (True, True, 200)
    assert boot["diskType"] == "pd-balanced"
    assert boot["sourceImage"] == GPU_IMAGE
    tune = _template(plan, "tune").inputs["disks"][0]
    assert (tune["diskSizeGb"], tune["sourceImage"]) == (
        500,
        "projects/my-images/global/images/family/trainer",
    )
    # A3 Ultra boots from Hyperdisk only.
    assert _template(plan, "big").inputs["disks"][0]["diskType"] == "hyperdisk-balanced"
    # Compute Engine's agent may use the key before any template names it.
    grant = one(plan, KEY_GRANT, "-pools-compute-key-user")
    assert (grant.inputs["member"], grant.inputs["role"]) == (COMPUTE_AGENT, ENCRYPTER)
    assert grant.inputs["cryptoKeyId"] == plan.outputs["keyId"]
    # The agent exists once the Compute Engine API is on.
    assert [u for u in grant.dependencies if u.endswith("::mlops-gcp-dev-apis-compute")]
    for pool in ("train", "tune", "big"):
        assert grant.urn in _template(plan, pool).dependencies


def test_the_service_agents_are_granted_the_key_once_per_stack(plan) -> None:
    # Three GPU pools, one grant each: removing a pool never takes the key from the others.
    members = [g.inputs["member"] for g in of_type(plan, KEY_GRANT)]
    assert (members.count(COMPUTE_AGENT), members.count(PUBSUB_AGENT)) == (1, 1)


def test_gpu_nodes_are_shielded_vms_that_host_maintenance_stops(plan) -> None:
    for pool in ("train", "tune", "big"):
        inputs = _template(plan, pool).inputs
        assert inputs["shieldedInstanceConfig"] == {
            "enableSecureBoot": True,
            "enableVtpm": True,
            "enableIntegrityMonitoring": True,
        }
        assert inputs["scheduling"]["onHostMaintenance"] == "TERMINATE"
        assert inputs["metadata"] == {"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE"}


def test_a_spot_pool_runs_spot_nodes_and_an_on_demand_pool_restarts_its_own(plan) -> None:
    assert _template(plan, "train").inputs["scheduling"] == {
        "onHostMaintenance": "TERMINATE",
        "provisioningModel": "SPOT",
        "preemptible": True,
        "automaticRestart": False,
        "instanceTerminationAction": "DELETE",
    }
    on_demand = _template(plan, "big").inputs["scheduling"]
    assert on_demand == {
        "onHostMaintenance": "TERMINATE",
        "provisioningModel": "STANDARD",
        "preemptible": False,
        "automaticRestart": True,
    }


def test_n1_nodes_attach_their_gpus_and_accelerator_optimized_types_carry_theirs(plan) -> None:
    tune = _template(plan, "tune").inputs
    assert tune["machineType"] == "n1-standard-8"
    # Compute Engine's name for Vertex AI's NVIDIA_TESLA_T4.
    assert tune["guestAccelerators"] == [{"type": "nvidia-tesla-t4", "count": 2}]
    for pool, machine in (("train", "g2-standard-8"), ("big", "a3-ultragpu-8g")):
        inputs = _template(plan, pool).inputs
        assert inputs["machineType"] == machine
        assert "guestAccelerators" not in inputs


def test_a_reservation_pool_runs_only_in_its_reservation(plan) -> None:
    assert _template(plan, "tune").inputs["reservationAffinity"] == {
        "type": "SPECIFIC_RESERVATION",
        "specificReservation": {
            "key": "compute.googleapis.com/reservation-name",
            "values": ["t4-reservation"],
        },
    }
    assert "reservationAffinity" not in _template(plan, "train").inputs


def test_each_pool_runs_as_its_own_account_with_only_what_nodes_need(plan) -> None:
    members = {pool: _member(plan, pool) for pool in POOLS}
    assert len(set(members.values())) == len(POOLS)
    buckets = set(plan.outputs["lakeBucketNames"].values())
    repositories = {r.inputs["repositoryId"] for r in of_type(plan, REPOSITORY)}
    for pool, member in members.items():
        grants = [r for r in plan.registrations if r.inputs.get("member") == member]
        roles = sorted({(g.type, g.inputs["role"]) for g in grants})
        expected = [
            (REPOSITORY_GRANT, "roles/artifactregistry.reader"),
            (PROJECT_GRANT, "roles/logging.logWriter"),
            (PROJECT_GRANT, "roles/monitoring.metricWriter"),
            (BUCKET_GRANT, "roles/storage.objectViewer"),
        ]
        if POOLS[pool]["kind"] == "gpu":
            expected.append((SUBSCRIPTION_GRANT, "roles/pubsub.subscriber"))
        assert roles == sorted(expected), pool
        assert {g.inputs["bucket"] for g in grants if g.type == BUCKET_GRANT} == buckets
        assert {g.inputs["repository"] for g in grants if g.type == REPOSITORY_GRANT} == (
            repositories
        )
        assert not [g for g in grants if g.type == BUCKET_GRANT and g.inputs.get("condition")]
    email = members["train"].removeprefix("serviceAccount:")
    assert _template(plan, "train").inputs["serviceAccount"] == {
        "email": email,
        "scopes": [CLOUD_PLATFORM],
    }
    # Nodes start only once their account may do its work.
    template = _template(plan, "train")
    granted = [r.urn for r in plan.registrations if r.inputs.get("member") == members["train"]]
    assert set(granted) <= set(template.dependencies)


def test_the_autoscaler_keeps_the_group_between_min_and_max_on_its_job_queue(plan) -> None:
    for pool, (low, high) in {"train": (0, 3), "tune": (1, 2), "big": (0, 1)}.items():
        group = one(plan, GROUP, f"-pool-{pool}-group")
        autoscaler = one(plan, AUTOSCALER, f"-pool-{pool}-autoscaler")
        subscription = one(plan, SUBSCRIPTION, f"-pool-{pool}-workers")
        policy = autoscaler.inputs["autoscalingPolicy"]
        assert (policy["minReplicas"], policy["maxReplicas"], policy["mode"]) == (low, high, "ON")
        assert policy["metrics"] == [
            {
                "name": "pubsub.googleapis.com/subscription/num_undelivered_messages",
                "filter": "resource.type = pubsub_subscription AND "
                f'resource.labels.subscription_id = "{subscription.inputs["name"]}"',
                "singleInstanceAssignment": 1,
            }
        ]
        assert "cpuUtilization" not in policy
        assert group.urn in autoscaler.property_dependencies["target"]
        # The autoscaler owns the size; the group spreads over the network's zones.
        assert "targetSize" not in group.inputs
        assert group.inputs["distributionPolicyZones"] == plan.outputs["networkZones"]
        assert group.inputs["region"] == "europe-west4"
        assert group.inputs["updatePolicy"] == {"type": "OPPORTUNISTIC", "minimalAction": "REPLACE"}
        template = _template(plan, pool)
        assert template.urn in group.property_dependencies["versions"]


def test_the_job_queue_is_kept_in_the_region_under_the_platform_key(plan) -> None:
    topic = one(plan, TOPIC, "-pool-train-jobs")
    assert topic.inputs["kmsKeyName"] == plan.outputs["keyId"]
    assert topic.inputs["messageStoragePolicy"] == {"allowedPersistenceRegions": ["europe-west4"]}
    grant = one(plan, KEY_GRANT, "-pools-pubsub-key-user")
    assert grant.inputs["member"] == PUBSUB_AGENT
    assert grant.urn in topic.dependencies
    subscription = one(plan, SUBSCRIPTION, "-pool-train-workers")
    assert topic.urn in subscription.property_dependencies["topic"]
    # An idle pool's queue never expires; a job waits up to a week.
    assert subscription.inputs["expirationPolicy"] == {"ttl": ""}
    assert subscription.inputs["messageRetentionDuration"] == "604800s"
    assert subscription.inputs["ackDeadlineSeconds"] == 600
    outputs = plan.outputs["acceleratorPools"]["train"]
    assert outputs["jobTopic"] == f"projects/mlops-platform-dev/topics/{topic.inputs['name']}"
    # Autonamed: offline, the logical name.
    assert outputs["instanceGroup"] == one(plan, GROUP, "-pool-train-group").name


def test_a_tpu_slice_is_private_spot_and_takes_its_topology_and_runtime(plan) -> None:
    (lite,) = _slices(plan, "lite")
    inputs = lite.inputs
    assert inputs["acceleratorConfig"] == {"type": "V5LITE_POD", "topology": "2x4"}
    assert "acceleratorType" not in inputs
    assert inputs["runtimeVersion"] == "v2-alpha-tpuv5-lite"
    assert inputs["networkConfig"] == {
        "network": plan.outputs["networkId"],
        "subnetwork": plan.outputs["subnetIds"]["workload"],
        "enableExternalIps": False,
        "canIpForward": False,
    }
    assert inputs["schedulingConfig"] == {"spot": True}
    assert inputs["shieldedInstanceConfig"] == {"enableSecureBoot": True}
    assert inputs["serviceAccount"] == {
        "email": _member(plan, "lite").removeprefix("serviceAccount:"),
        "scopes": [CLOUD_PLATFORM],
    }
    assert inputs["zone"] == plan.outputs["networkZones"][0]


def test_a_tpu_pool_is_min_nodes_slices_of_its_type(plan) -> None:
    trillium = _slices(plan, "trillium")
    assert len(trillium) == 2
    for node in trillium:
        assert node.inputs["acceleratorType"] == "v6e-8"
        assert "acceleratorConfig" not in node.inputs
        assert node.inputs["runtimeVersion"] == "v2-alpha-tpuv6e-custom"
        assert "schedulingConfig" not in node.inputs
    assert _slices(plan, "idle") == []
    assert plan.outputs["acceleratorPools"]["idle"]["tpuNodes"] == []
    # No template, group or queue for a TPU pool.
    for pool in ("lite", "trillium", "idle"):
        for type_ in (TEMPLATE, GROUP, AUTOSCALER, TOPIC):
            assert not [r for r in of_type(plan, type_) if f"-pool-{pool}-" in r.name]


# Zones https://cloud.google.com/tpu/docs/regions-zones lists for the generation
# the shipped stacks use (read 2026-11-28). Another generation: read its zones
# there and add them here.
TPU_ZONES = {
    "v6e": {"europe-west4-a", "us-central1-b", "us-east1-d", "us-east5-a", "us-east5-b"},
}


def test_the_shipped_tpu_slice_is_a_generation_its_zone_offers() -> None:
    plan = planned("gcp-prod")
    (node,) = of_type(plan, TPU)
    (pool,) = [p for p in plan.settings.accelerator_pools.values() if p.kind == "tpu"]
    generation = pool.type.rsplit("-", 1)[0]
    assert node.inputs["zone"] in TPU_ZONES.get(generation, set()), (
        generation,
        node.inputs["zone"],
    )
