"""Operating the models: every alarm reaches someone, every prod endpoint that
captures traffic is watched for drift, and the stack keeps an encrypted audit
trail. One check per cloud under each name."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from mlops_policies.model import Resource, as_list, by_type, section

Findings = Iterator[tuple[str, str]]

AWS_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
GCP_ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
AZURE_ALERT = "azure-native:monitor:MetricAlert"

SM_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SM_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
VERTEX_ENDPOINT = "gcp:vertex/aiEndpoint:AiEndpoint"
VERTEX_MONITOR = "pulumi-python:dynamic/gcp:VertexModelMonitor"
AML_DEPLOYMENT = "azure-native:machinelearningservices:OnlineDeployment"
AML_SCHEDULE = "azure-native:machinelearningservices:Schedule"

TRAIL = "aws:cloudtrail/trail:Trail"
GCP_SINK = "gcp:logging/projectSink:ProjectSink"
GCP_LOG_BUCKET = "gcp:logging/projectBucketConfig:ProjectBucketConfig"
GCP_AUDIT_CONFIG = "gcp:projects/iAMAuditConfig:IAMAuditConfig"
AZURE_DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"
AZURE_VAULT = "azure-native:keyvault:Vault"
AZURE_REGISTRY = "azure-native:containerregistry:Registry"
STACK = "pulumi:pulumi:Stack"


# alerts-routed


def routed(resource: Resource) -> Iterator[str]:
    if resource.type == AWS_ALARM and not as_list(resource.props.get("alarmActions")):
        yield "alarm notifies nobody (alarmActions is empty)"
    elif resource.type == GCP_ALERT and not as_list(resource.props.get("notificationChannels")):
        yield "alert policy notifies nobody (notificationChannels is empty)"
    elif resource.type == AZURE_ALERT and not as_list(resource.props.get("actions")):
        yield "metric alert notifies nobody (no action group in actions)"


# serving-drift-monitor


def _tag(resource: Resource, *path: str) -> str:
    props: Mapping = resource.props
    for key in path[:-1]:
        props = section(props, key)
    tags = props.get(path[-1]) or {}
    return str(tags.get("endpoint", "")) if isinstance(tags, Mapping) else ""


def _prod(resource: Resource, *path: str) -> bool:
    props: Mapping = resource.props
    for key in path[:-1]:
        props = section(props, key)
    tags = props.get(path[-1]) or {}
    return isinstance(tags, Mapping) and tags.get("environment") == "prod"


def _captures(resource: Resource) -> bool:
    if resource.type == SM_CONFIG:
        capture = section(resource.props, "dataCaptureConfig")
        return bool(capture.get("enableCapture") and capture.get("initialSamplingPercentage"))
    if resource.type == VERTEX_ENDPOINT:
        logging = section(resource.props, "predictRequestResponseLoggingConfig")
        return bool(logging.get("enabled") and logging.get("samplingRate"))
    collections = section(section(resource.props, "properties"), "dataCollector").get("collections")
    return isinstance(collections, Mapping) and bool(collections)


# What serves an endpoint, where its tags are, and what watches it for drift.
_WATCHED = (
    (SM_CONFIG, ("tags",), SM_SCHEDULE, ("tags",)),
    (VERTEX_ENDPOINT, ("labels",), VERTEX_MONITOR, ("labels",)),
    (AML_DEPLOYMENT, ("tags",), AML_SCHEDULE, ("properties", "tags")),
)


def drift_monitored(resources: Sequence[Resource]) -> Findings:
    for serving, tags, monitor, monitor_tags in _WATCHED:
        watched = {_tag(m, *monitor_tags) for m in by_type(resources, monitor)}
        for resource in by_type(resources, serving):
            if _prod(resource, *tags) and _captures(resource):
                endpoint = _tag(resource, *tags)
                if endpoint not in watched:
                    yield (
                        resource.urn,
                        f"prod endpoint {endpoint or '?'} captures traffic but nothing "
                        "checks it for drift",
                    )


# audit-trail


def _stack_urn(resources: Sequence[Resource]) -> str:
    """Where a missing trail is reported: the stack, or its first resource."""
    return next((r.urn for r in resources if r.type == STACK), resources[0].urn)


def _aws_trail(resources: Sequence[Resource]) -> Findings:
    trails = by_type(resources, TRAIL)
    if not trails:
        yield (
            _stack_urn(resources),
            "no CloudTrail trail records who read or changed the stack's resources",
        )
    for trail in trails:
        if not trail.props.get("kmsKeyId"):
            yield trail.urn, "the audit trail is not encrypted with the platform key (kmsKeyId)"
        if not trail.props.get("enableLogFileValidation"):
            yield trail.urn, "the audit trail's log files are not validated"


def _gcp_trail(resources: Sequence[Resource]) -> Findings:
    buckets = [b for b in by_type(resources, GCP_LOG_BUCKET) if section(b.props, "cmekSettings")]
    sinks = [
        s
        for s in by_type(resources, GCP_SINK)
        if "cloudaudit.googleapis.com" in str(s.props.get("filter", ""))
        and any(s.depends_on("destination", b) for b in buckets)
    ]
    if not sinks:
        yield (
            _stack_urn(resources),
            "no sink keeps the audit logs in a log bucket under the platform key",
        )
    audited = {
        c.props.get("service")
        for c in by_type(resources, GCP_AUDIT_CONFIG)
        if "DATA_READ"
        in {
            x.get("logType")
            for x in as_list(c.props.get("auditLogConfigs"))
            if isinstance(x, Mapping)
        }
    }
    if "storage.googleapis.com" not in audited:
        yield (
            _stack_urn(resources),
            "reads of the lake are not audited (Data Access logs for Cloud Storage)",
        )


def _azure_trail(resources: Sequence[Resource]) -> Findings:
    settings = [
        d
        for d in by_type(resources, AZURE_DIAGNOSTIC)
        if d.props.get("workspaceId")
        and any(
            isinstance(log, Mapping)
            and log.get("enabled")
            and log.get("categoryGroup") in ("audit", "allLogs")
            for log in as_list(d.props.get("logs"))
        )
    ]
    for kind, label in ((AZURE_VAULT, "Key Vault"), (AZURE_REGISTRY, "container registry")):
        for resource in by_type(resources, kind):
            if not any(d.depends_on("resourceUri", resource) for d in settings):
                yield resource.urn, f"the {label} keeps no audit log (no audit diagnostic setting)"


def audit_trail(resources: Sequence[Resource]) -> Findings:
    if not resources:
        return
    types = {r.type.split(":", 1)[0] for r in resources}
    if "aws" in types:
        yield from _aws_trail(resources)
    if "gcp" in types:
        yield from _gcp_trail(resources)
    if "azure-native" in types:
        yield from _azure_trail(resources)


RESOURCE_CHECKS = {"alerts-routed": (routed,)}
STACK_CHECKS = {
    "serving-drift-monitor": (drift_monitored,),
    "audit-trail": (audit_trail,),
}
