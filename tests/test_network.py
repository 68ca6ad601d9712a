"""Each cloud's private network on mocks: no public address anywhere, private
paths to every platform service, flow logs, and egress only when asked for."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from conftest import (
    configuring,
    created_as,
    of_type,
    one,
    plan_with,
    planned,
    platform_base,
    policy_doc,
)

from tools import mockcloud, stackfiles
from tools.mockcloud import ACCOUNT_ID, stable_uuid
from tools.plan import plan_values

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
IGW = "aws:ec2/internetGateway:InternetGateway"
INTERFACE_SERVICES = (
    "ecr.api",
    "ecr.dkr",
    "kms",
    "logs",
    "monitoring",
    "sagemaker.api",
    "sagemaker.runtime",
    "ssm",
    "ssmmessages",
    "sts",
)


@pytest.fixture(scope="module")
def aws_dev():
    return planned("aws-dev")


def _service(endpoint) -> str:
    return endpoint.inputs["serviceName"].removeprefix("com.amazonaws.eu-west-1.")


def _endpoint(plan, service: str):
    found = [e for e in of_type(plan, ENDPOINT) if _service(e) == service]
    assert len(found) == 1, service
    return found[0]


# AWS


def test_aws_vpc_has_dns_and_one_private_subnet_per_zone(aws_dev) -> None:
    vpc = one(aws_dev, VPC)
    assert vpc.inputs["cidrBlock"] == "10.20.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True
    assert vpc.inputs["enableDnsHostnames"] is True
    subnets = of_type(aws_dev, SUBNET)
    assert [(s.inputs["cidrBlock"], s.inputs["availabilityZone"]) for s in subnets] == [
        ("10.20.0.0/20", "eu-west-1a"),
        ("10.20.16.0/20", "eu-west-1b"),
    ]
    for subnet in subnets:
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
        assert subnet.inputs["tags"]["tier"] == "private"
        assert vpc.urn in subnet.property_dependencies["vpcId"]
        association = configuring(
            aws_dev, "aws:ec2/routeTableAssociation:RouteTableAssociation", subnet, "subnetId"
        )
        # Each zone has its own route table, named like its subnet.
        assert association.inputs["routeTableId"] == subnet.name
    # No way out but the endpoints: no gateway, no NAT, no public address.
    for kind in (IGW, NAT, EIP, ROUTE):
        assert of_type(aws_dev, kind) == []
    assert aws_dev.outputs["networkZones"] == ["eu-west-1a", "eu-west-1b"]
    assert aws_dev.outputs["privateSubnetIds"] == [s.name for s in subnets]


def test_aws_default_security_group_is_stripped(aws_dev) -> None:
    default = one(aws_dev, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default.inputs["ingress"] == []
    assert default.inputs["egress"] == []


def test_aws_endpoint_security_group_admits_https_from_the_vpc_only(aws_dev) -> None:
    group = one(aws_dev, SECURITY_GROUP, "-network-endpoints")
    # Rules are resources of their own only: inline rules would overwrite them.
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    assert of_type(aws_dev, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") == [
        r
        for r in of_type(aws_dev, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs["securityGroupId"] != group.name
    ]
    # (A pool's group admits its own members: tests/test_aws_pools.py.)
    rules = [r for r in platform_base(aws_dev) if r.type == INGRESS]
    assert len(rules) == 1
    assert {k: v for k, v in rules[0].inputs.items() if k not in ("tags", "description")} == {
        "securityGroupId": group.name,
        "ipProtocol": "tcp",
        "fromPort": 443,
        "toPort": 443,
        "cidrIpv4": "10.20.0.0/16",
    }


def test_aws_flow_logs_record_all_traffic_into_an_encrypted_log_group(aws_dev) -> None:
    group, log = one(aws_dev, LOG_GROUP), one(aws_dev, FLOW_LOG)
    key = one(aws_dev, "aws:kms/key:Key")
    assert key.urn in group.property_dependencies["kmsKeyId"]
    assert group.inputs["retentionInDays"] == 90
    assert log.inputs["trafficType"] == "ALL"
    assert log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert log.inputs["logDestination"] == (
        f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:{group.name}"
    )
    assert log.inputs["maxAggregationInterval"] == 60
    assert one(aws_dev, VPC).urn in log.property_dependencies["vpcId"]
    role = one(aws_dev, "aws:iam/role:Role", "-network-flow-logs")
    trust = policy_doc(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:eu-west-1:{ACCOUNT_ID}:vpc-flow-log/*"},
    }
    writes = policy_doc(
        configuring(aws_dev, "aws:iam/rolePolicy:RolePolicy", role, "role").inputs["policy"]
    )["Statement"][0]
    assert writes["Resource"] == [log.inputs["logDestination"], log.inputs["logDestination"] + ":*"]
    assert not [a for a in writes["Action"] if "*" in a]


@functools.cache
def aws_variant():
    """aws-dev over three zones of another range, with NAT and a year of flow logs."""
    network = {
        "cidr": "10.42.0.0/16",
        "zones": 3,
        "egress": "nat",
        "flowLogs": {"retentionDays": 365},
    }
    return plan_with("aws-dev", network=network, endpoints={})


def test_aws_flow_log_retention_follows_settings() -> None:
    assert one(aws_variant(), LOG_GROUP).inputs["retentionInDays"] == 365


def test_aws_s3_gateway_reaches_only_the_stack_buckets_and_aws_service_buckets(aws_dev) -> None:
    gateway = _endpoint(aws_dev, "s3")
    assert gateway.inputs["vpcEndpointType"] == "Gateway"
    assert "privateDnsEnabled" not in gateway.inputs
    assert gateway.inputs["routeTableIds"] == [t.name for t in of_type(aws_dev, ROUTE_TABLE)]
    statements = {s["Sid"]: s for s in policy_doc(gateway.inputs["policy"])["Statement"]}
    stack = statements["StackBuckets"]
    buckets = [f"arn:aws:s3:::mlops-aws-dev-lake-{z}" for z in ("raw", "curated", "features")]
    assert stack["Resource"] == [arn for b in buckets for arn in (b, f"{b}/*")]
    assert stack["Condition"] == {"StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}}
    assert "s3:DeleteBucket" not in stack["Action"] and "s3:*" not in stack["Action"]
    service = statements["AwsServiceBuckets"]
    assert service["Action"] == "s3:GetObject"
    assert "arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*" in service["Resource"]
    assert "arn:aws:s3:::aws-ssm-eu-west-1/*" in service["Resource"]
    assert "*" not in service["Resource"]


def test_aws_interface_endpoints_have_private_dns_and_the_endpoint_group(aws_dev) -> None:
    interfaces = [e for e in of_type(aws_dev, ENDPOINT) if _service(e) != "s3"]
    assert sorted(_service(e) for e in interfaces) == sorted(INTERFACE_SERVICES)
    group = one(aws_dev, SECURITY_GROUP, "-network-endpoints")
    subnets = [s.name for s in of_type(aws_dev, SUBNET)]
    for endpoint in interfaces:
        assert endpoint.inputs["vpcEndpointType"] == "Interface"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert endpoint.inputs["securityGroupIds"] == [group.name]
        assert endpoint.inputs["subnetIds"] == subnets


def test_aws_endpoint_policies_admit_only_the_account_and_its_resources(aws_dev) -> None:
    def statements(service: str) -> dict[str, Any]:
        return {
            s["Sid"]: s
            for s in policy_doc(_endpoint(aws_dev, service).inputs["policy"])["Statement"]
        }

    kms = statements("kms")["PlatformKey"]
    key = one(aws_dev, "aws:kms/key:Key")
    assert kms["Resource"] == (
        f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/{stable_uuid('aws:kms/key:Key', created_as(key))}"
    )
    assert "kms:ScheduleKeyDeletion" not in kms["Action"]
    ecr = statements("ecr.dkr")
    assert ecr["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]
    repositories = sorted(ecr["StackRepositories"]["Resource"])
    assert repositories == [
        f"arn:aws:ecr:eu-west-1:{ACCOUNT_ID}:mlops-aws-dev-images-{r}"
        for r in ("serving", "training")
    ]
    runtime = statements("sagemaker.runtime")["AccountEndpoints"]
    assert runtime["Resource"] == f"arn:aws:sagemaker:eu-west-1:{ACCOUNT_ID}:endpoint/*"
    for service in INTERFACE_SERVICES:
        endpoint = _endpoint(aws_dev, service)
        if service in ("ssm", "ssmmessages"):
            # These take only the full-access policy; a custom one fails the deployment.
            assert "policy" not in endpoint.inputs
            continue
        for statement in policy_doc(endpoint.inputs["policy"])["Statement"]:
            assert statement["Condition"] == {
                "StringEquals": {"aws:PrincipalAccount": ACCOUNT_ID}
            }, service


def test_aws_interface_endpoints_skip_zones_their_service_does_not_run_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = mockcloud.CloudMocks.call

    def call(self, args):
        answer, failures = real(self, args)
        if args.token.endswith("getVpcEndpointService") and "runtime" in str(
            args.args.get("serviceName")
        ):
            answer = {**answer, "availabilityZones": ["eu-west-1b"]}
        return answer, failures

    monkeypatch.setattr(mockcloud.CloudMocks, "call", call)
    # Planned here, not shared: the mocks answer differently in this test.
    plan = plan_values("aws-dev", {**stackfiles.stack_values("aws-dev"), "mlops:endpoints": {}})
    assert _endpoint(plan, "sagemaker.runtime").inputs["subnetIds"] == [
        "mlops-aws-dev-network-private-1"
    ]
    assert len(_endpoint(plan, "sagemaker.api").inputs["subnetIds"]) == 2


def test_aws_zones_follow_settings() -> None:
    private = [s for s in of_type(aws_variant(), SUBNET) if s.inputs["tags"]["tier"] == "private"]
    assert [(s.inputs["cidrBlock"], s.inputs["availabilityZone"]) for s in private] == [
        ("10.42.0.0/20", "eu-west-1a"),
        ("10.42.16.0/20", "eu-west-1b"),
        ("10.42.32.0/20", "eu-west-1c"),
    ]
    # A route table per zone, private and public.
    assert len(of_type(aws_variant(), ROUTE_TABLE)) == 6


@pytest.mark.parametrize(("stack", "nats"), [("aws-dev", 1), ("aws-prod", 3)])
def test_aws_nat_egress_adds_public_subnets_holding_only_nat_gateways(
    stack: str, nats: int
) -> None:
    prod_nat = {"cidr": "10.21.0.0/16", "zones": 3, "egress": "nat"}
    plan = aws_variant() if stack == "aws-dev" else plan_with(stack, network=prod_nat, endpoints={})
    prefix = "10.42" if stack == "aws-dev" else "10.21"
    public = [s for s in of_type(plan, SUBNET) if s.inputs["tags"]["tier"] == "public"]
    assert [s.inputs["cidrBlock"] for s in public] == [
        f"{prefix}.{third}.0/20" for third in (48, 64, 80)
    ]
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in public)
    gateways = of_type(plan, NAT)
    assert len(gateways) == len(of_type(plan, EIP)) == nats
    assert {g.inputs["subnetId"] for g in gateways} <= {s.name for s in public}
    igw = one(plan, IGW)
    assert all(igw.urn in g.dependencies for g in gateways)
    routes = {r.name: r.inputs for r in of_type(plan, ROUTE)}
    # Each private zone leaves through its own zone's NAT in prod, through one in dev.
    for zone in (0, 1, 2):
        private = routes[f"mlops-{stack}-network-private-{zone}-nat"]
        assert private["destinationCidrBlock"] == "0.0.0.0/0"
        assert private["natGatewayId"] == f"mlops-{stack}-network-nat-{zone if nats > 1 else 0}"
        assert routes[f"mlops-{stack}-network-public-{zone}-internet"]["gatewayId"] == igw.name
    assert plan.mandatory == []


def test_aws_prod_keeps_its_flow_logs_and_nothing_else_of_the_network() -> None:
    prod = planned("aws-prod")
    group = one(prod, LOG_GROUP)
    assert (group.protect, group.retain_on_delete) == (True, True)
    for kind in (VPC, SUBNET, ENDPOINT, FLOW_LOG, SECURITY_GROUP):
        assert not any(r.protect for r in of_type(prod, kind)), kind


# GCP

GCP_NETWORK = "gcp:compute/network:Network"
GCP_SUBNET = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
FLOW_LOGS = {
    "aggregationInterval": "INTERVAL_1_MIN",
    "flowSampling": 1,
    "metadata": "INCLUDE_ALL_METADATA",
    "filterExpr": "true",
}


@pytest.fixture(scope="module")
def gcp_dev():
    return planned("gcp-dev")


def test_gcp_network_is_custom_mode_with_two_private_regional_subnets(gcp_dev) -> None:
    network = one(gcp_dev, GCP_NETWORK)
    assert network.inputs["autoCreateSubnetworks"] is False
    assert network.inputs["routingMode"] == "REGIONAL"
    compute = one(gcp_dev, "gcp:projects/service:Service", "-apis-compute")
    assert compute.inputs["service"] == "compute.googleapis.com"
    assert compute.urn in network.dependencies
    subnets = {s.name.rsplit("-", 1)[1]: s.inputs for s in of_type(gcp_dev, GCP_SUBNET)}
    assert {role: s["ipCidrRange"] for role, s in subnets.items()} == {
        "workload": "10.30.0.0/20",
        "endpoints": "10.30.16.0/20",
    }
    for subnet in subnets.values():
        assert subnet["region"] == "europe-west4"
        assert subnet["privateIpGoogleAccess"] is True
        assert subnet["logConfig"] == FLOW_LOGS
        assert subnet["stackType"] == "IPV4_ONLY"
    assert gcp_dev.outputs["networkZones"] == ["europe-west4-a", "europe-west4-b"]
    assert gcp_dev.outputs["sshTag"] == "mlops-gcp-dev-ssh"


def test_gcp_firewall_denies_all_ingress_and_admits_ssh_only_from_iap(gcp_dev) -> None:
    rules = {
        r.name.removeprefix("mlops-gcp-dev-network-"): r.inputs for r in of_type(gcp_dev, FIREWALL)
    }
    assert set(rules) == {"deny-ingress", "iap-ssh"}
    deny, ssh = rules["deny-ingress"], rules["iap-ssh"]
    assert deny["direction"] == "INGRESS"
    assert deny["denies"] == [{"protocol": "all"}]
    assert deny["sourceRanges"] == ["0.0.0.0/0"]
    assert deny["priority"] == 65534
    assert "allows" not in deny
    assert ssh["allows"] == [{"protocol": "tcp", "ports": ["22"]}]
    assert ssh["sourceRanges"] == ["35.235.240.0/20"]
    assert ssh["targetTags"] == ["mlops-gcp-dev-ssh"]
    assert ssh["priority"] < deny["priority"]
    for rule in rules.values():
        assert rule["logConfig"] == {"metadata": "INCLUDE_ALL_METADATA"}


def test_gcp_has_no_nat_unless_asked_and_then_nats_the_workload_subnet(gcp_dev) -> None:
    assert of_type(gcp_dev, "gcp:compute/routerNat:RouterNat") == []
    plan = plan_with("gcp-dev", network={"egress": "nat"}, endpoints={})
    router = one(plan, "gcp:compute/router:Router")
    nat = one(plan, "gcp:compute/routerNat:RouterNat").inputs
    assert router.inputs["network"] == (
        "projects/mlops-platform-dev/global/networks/mlops-gcp-dev-network-vpc"
    )
    assert one(plan, GCP_NETWORK).urn in router.property_dependencies["network"]
    assert nat["router"] == router.name
    assert nat["natIpAllocateOption"] == "AUTO_ONLY"
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetworks"] == [
        {
            "name": (
                "projects/mlops-platform-dev/regions/europe-west4/subnetworks/"
                "mlops-gcp-dev-network-workload"
            ),
            "sourceIpRangesToNats": ["ALL_IP_RANGES"],
        }
    ]
    assert nat["logConfig"] == {"enable": True, "filter": "ERRORS_ONLY"}
    assert nat["enableEndpointIndependentMapping"] is False


# Azure

AZ_SUBNET = "azure-native:network:Subnet"
NSG = "azure-native:network:NetworkSecurityGroup"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
DNS_ZONE = "azure-native:privatedns:PrivateZone"
DNS_LINK = "azure-native:privatedns:VirtualNetworkLink"
AZ_FLOW_LOG = "azure-native:network:FlowLog"
ACCOUNT = "azure-native:storage:StorageAccount"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


@pytest.fixture(scope="module")
def azure_prod():
    return planned("azure-prod")


def _azure_subnets(plan) -> dict[str, Any]:
    return {s.inputs["subnetName"]: s for s in of_type(plan, AZ_SUBNET)}


def test_azure_subnets_have_no_default_outbound_and_deny_internet_inbound(azure_prod) -> None:
    vnet = one(azure_prod, "azure-native:network:VirtualNetwork")
    assert vnet.inputs["addressSpace"] == {"addressPrefixes": ["10.41.0.0/16"]}
    subnets = _azure_subnets(azure_prod)
    assert {n: s.inputs["addressPrefix"] for n, s in subnets.items()} == {
        "workload": "10.41.0.0/20",
        "endpoints": "10.41.16.0/20",
    }
    assert subnets["workload"].inputs["privateEndpointNetworkPolicies"] == "Disabled"
    # The NSG applies to the private endpoints' own addresses too.
    assert subnets["endpoints"].inputs["privateEndpointNetworkPolicies"] == "Enabled"
    assert subnets["workload"].urn in subnets["endpoints"].dependencies
    # Rules live inline only: inline and standalone rules on one NSG churn.
    assert of_type(azure_prod, "azure-native:network:SecurityRule") == []
    for subnet in subnets.values():
        assert subnet.inputs["defaultOutboundAccess"] is False
        assert "natGateway" not in subnet.inputs
        assert vnet.urn in subnet.property_dependencies["virtualNetworkName"]
        group = next(
            g
            for g in of_type(azure_prod, NSG)
            if g.urn in subnet.property_dependencies["networkSecurityGroup"]
        )
        assert group.inputs["securityRules"] == [
            {
                "name": "deny-internet-inbound",
                "description": "Nothing from the internet, whatever a later rule allows",
                "priority": 100,
                "direction": "Inbound",
                "access": "Deny",
                "protocol": "*",
                "sourceAddressPrefix": "Internet",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "*",
            }
        ]


@pytest.mark.parametrize(
    ("stack", "services"),
    [
        ("azure-dev", {"lake-blob": "blob", "lake-dfs": "dfs", "vault": "vault"}),
        (
            "azure-prod",
            {
                "lake-blob": "blob",
                "lake-dfs": "dfs",
                "vault": "vault",
                "registry": "registry",
                "ml-workspace": "amlworkspace",
            },
        ),
    ],
)
def test_azure_private_endpoints_register_in_linked_private_zones(
    stack: str, services: dict[str, str]
) -> None:
    plan = planned(stack)
    endpoints = {
        e.name.removeprefix(f"mlops-{stack}-network-"): e for e in of_type(plan, PRIVATE_ENDPOINT)
    }
    assert {
        role: e.inputs["privateLinkServiceConnections"][0]["groupIds"]
        for role, e in endpoints.items()
    } == {role: [group] for role, group in services.items()}
    subnet = _azure_subnets(plan)["endpoints"]
    zones = {z.urn: z.inputs["privateZoneName"] for z in of_type(plan, DNS_ZONE)}
    expected_zones = {
        "blob": ("privatelink.blob.core.windows.net",),
        "dfs": ("privatelink.dfs.core.windows.net",),
        "vault": ("privatelink.vaultcore.azure.net",),
        "registry": ("privatelink.azurecr.io",),
        # The workspace's API, and the notebooks it serves under another name.
        "amlworkspace": ("privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"),
    }
    lake = one(plan, ACCOUNT, "-lake-account")
    targets = {
        "lake-blob": lake,
        "lake-dfs": lake,
        "vault": one(plan, "azure-native:keyvault:Vault", "-key-vault"),
        "registry": one(plan, "azure-native:containerregistry:Registry"),
        "ml-workspace": one(plan, "azure-native:machinelearningservices:Workspace"),
    }
    for role, endpoint in endpoints.items():
        assert subnet.urn in endpoint.property_dependencies["subnet"]
        connection = endpoint.inputs["privateLinkServiceConnections"][0]
        assert targets[role].urn in endpoint.property_dependencies["privateLinkServiceConnections"]
        assert connection["privateLinkServiceId"].endswith(
            targets[role].inputs.get("accountName")
            or targets[role].inputs.get("vaultName")
            or targets[role].inputs.get("workspaceName")
            or targets[role].inputs["registryName"]
        )
        group = configuring(plan, ZONE_GROUP, endpoint, "privateEndpointName")
        linked = group.property_dependencies["privateDnsZoneConfigs"]
        assert len(group.inputs["privateDnsZoneConfigs"]) == len(linked)
        assert tuple(zones[urn] for urn in linked) == expected_zones[services[role]]
    vnet = one(plan, "azure-native:network:VirtualNetwork")
    for link in of_type(plan, DNS_LINK):
        assert link.inputs["registrationEnabled"] is False
        assert vnet.urn in link.property_dependencies["virtualNetwork"]
    assert (
        len(of_type(plan, DNS_LINK))
        == len(zones)
        == len({z for s in services.values() for z in expected_zones[s]})
    )


def test_azure_flow_logs_go_to_a_locked_down_account_through_an_identity(azure_prod) -> None:
    log = one(azure_prod, AZ_FLOW_LOG)
    vnet = one(azure_prod, "azure-native:network:VirtualNetwork")
    account = one(azure_prod, ACCOUNT, "-network-flow-logs")
    writer = one(
        azure_prod, "azure-native:managedidentity:UserAssignedIdentity", "-network-flow-logs"
    )
    assert log.inputs["resourceGroupName"] == "NetworkWatcherRG"
    assert log.inputs["networkWatcherName"] == "NetworkWatcher_westeurope"
    assert vnet.urn in log.property_dependencies["targetResourceId"]
    assert account.urn in log.property_dependencies["storageId"]
    assert log.inputs["enabled"] is True
    assert log.inputs["retentionPolicy"] == {"enabled": True, "days": 90}
    assert log.inputs["format"] == {"type": "JSON", "version": 2}
    assert log.inputs["identity"]["type"] == "UserAssigned"
    assert writer.urn in log.property_dependencies["identity"]
    grant = one(
        azure_prod, "azure-native:authorization:RoleAssignment", "-network-flow-logs-writer"
    )
    assert grant.inputs["roleDefinitionId"].endswith(STORAGE_BLOB_DATA_CONTRIBUTOR)
    assert account.urn in grant.property_dependencies["scope"]
    assert grant.urn in log.dependencies
    # The same account rules as the lake, without a hierarchical namespace, so versioned.
    inputs = account.inputs
    assert inputs["isHnsEnabled"] is False
    assert inputs["allowSharedKeyAccess"] is False
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["encryption"]["keySource"] == "Microsoft.Keyvault"
    assert inputs["tags"]["purpose"] == "flow-logs"
    service = one(azure_prod, "azure-native:storage:BlobServiceProperties", "-network-flow-logs")
    assert service.inputs["isVersioningEnabled"] is True
    versions = one(azure_prod, "azure-native:storage:ManagementPolicy", "-network-flow-logs")
    [rule] = versions.inputs["policy"]["rules"]
    assert rule["definition"]["actions"] == {
        "version": {"delete": {"daysAfterCreationGreaterThan": 7}}
    }
    assert (account.protect, account.retain_on_delete) == (True, True)


def test_azure_nat_egress_puts_a_nat_gateway_on_the_workload_subnet_only() -> None:
    from test_azure import VARIANT, variant

    assert VARIANT["network"] == {"egress": "nat"}
    plan = variant()
    gateway = one(plan, "azure-native:network:NatGateway")
    address = one(plan, "azure-native:network:PublicIPAddress")
    assert address.inputs["sku"] == {"name": "Standard", "tier": "Regional"}
    assert address.inputs["publicIPAllocationMethod"] == "Static"
    assert gateway.inputs["sku"] == {"name": "Standard"}
    assert address.urn in gateway.property_dependencies["publicIpAddresses"]
    subnets = _azure_subnets(plan)
    assert gateway.urn in subnets["workload"].property_dependencies["natGateway"]
    assert "natGateway" not in subnets["endpoints"].inputs
    assert [f.policy for f in plan.findings if f.policy.startswith("network-")] == []


def test_every_stack_exports_its_network(aws_dev, gcp_dev, azure_prod) -> None:
    assert aws_dev.outputs["vpcId"] == "mlops-aws-dev-network-vpc"
    assert aws_dev.outputs["endpointSecurityGroupId"] == "mlops-aws-dev-network-endpoints"
    assert aws_dev.outputs["flowLogGroup"] == "mlops-aws-dev-network-flow-logs"
    assert gcp_dev.outputs["networkId"] == (
        "projects/mlops-platform-dev/global/networks/mlops-gcp-dev-network-vpc"
    )
    assert set(gcp_dev.outputs["subnetIds"]) == {"workload", "endpoints"}
    assert set(azure_prod.outputs["subnetIds"]) == {"workload", "endpoints"}
    assert set(azure_prod.outputs["privateEndpointIds"]) == {
        "lake-blob",
        "lake-dfs",
        "vault",
        "registry",
        "ml-workspace",
    }
    assert azure_prod.outputs["virtualNetworkId"].endswith(
        "/Microsoft.Network/virtualNetworks/mlops-azure-prod-network-vnet"
    )
