"""VertexModelDeployment's provider against a small fake of the Vertex AI and Cloud
Monitoring REST APIs, served on 127.0.0.1 by the test itself: the requests it
sends, the traffic it moves, the operations it waits for, and where it stops."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

import pytest
from fake_google import GoogleHandler, google_error
from google.auth.credentials import AnonymousCredentials
from local_http import serving
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from infra.gcp.vertex_deployment import (
    UPLOAD_LABEL,
    VertexDeploymentProvider,
    VertexModelDeploymentArgs,
    apportion,
    deployed_model_id,
    problems,
    upload_key,
)

PARENT = "projects/mlops-prod/locations/europe-west4"
ENDPOINT = f"{PARENT}/endpoints/4242"
CHURN = f"{PARENT}/models/churn"
SERVICE_ACCOUNT = "serving@mlops-prod.iam.gserviceaccount.com"
KEY = f"{PARENT}/keyRings/mlops/cryptoKeys/cmk"
IMAGE = "europe-west4-docker.pkg.dev/mlops-prod/serving/churn:1.4.0"
ERRORS = "aiplatform.googleapis.com/prediction/online/error_count"
LATENCY = "aiplatform.googleapis.com/prediction/online/prediction_latencies"
GPU_DUTY = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
CPU = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
_FILTER_LABEL = re.compile(r'^labels\.(\w+)="([^"]*)"$')


class Call(NamedTuple):
    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None


_error = google_error


class FakeVertex:
    """One endpoint, its deployed models and traffic, the registry's models and
    their versions, and long-running operations that end after `polls` polls."""

    def __init__(self) -> None:
        self.deployed: list[str] = []
        # Deployed model IDs whose deployment has started and not ended.
        self.deploying: set[str] = set()
        self.resources: dict[str, dict[str, Any]] = {}
        self.split: dict[str, int] = {}
        # Registry models by ID, and their versions: {"versionId", "labels"}.
        self.models: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[Call] = []
        # Polls an operation answers "not done" before it ends; None: it never ends.
        self.polls: int | None = 1
        # How the next operation ends, if it fails.
        self.operation_error: dict[str, Any] | None = None
        # How a deploy operation ends once it has deployed, if it fails.
        self.deploy_error: dict[str, Any] | None = None
        # A second deployment of a deployed model ID: refused by its operation, not
        # by the call.
        self.conflict_in_operation = False
        # Statuses (with headers) the next requests get instead of an answer.
        self.refuse: list[tuple[int, dict[str, str]]] = []
        # Connections closed without an answer, before answering again.
        self.drop = 0
        # Calls (by path suffix) carried out, their operation finished, and then
        # answered with this status instead; 0 closes the connection unanswered.
        self.lose: dict[str, int] = {}
        self.missing = False
        # The worst minute Cloud Monitoring reports, by metric type.
        self.metrics: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, dict[str, Any]] = {}

    def serve(self, models: dict[str, int]) -> None:
        self.deployed = list(models)
        self.split = {key: share for key, share in models.items() if share}

    def calls(self, suffix: str, method: str = "POST") -> list[Call]:
        return [c for c in self.requests if c.method == method and c.path.endswith(suffix)]

    def operation(
        self, done: Callable[[], dict[str, Any]], error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        name = f"{PARENT}/operations/{len(self.operations) + 1}"
        self.operations[name] = {"left": self.polls, "done": done, "error": error}
        return {"name": name, "done": False}

    def finish(self, name: str) -> None:
        operation = self.operations[name]
        operation["left"] = 0
        operation["response"] = operation["done"]()

    def poll(self, name: str) -> dict[str, Any]:
        operation = self.operations[name]
        if operation.get("cancelled"):
            return {"name": name, "done": True, "error": {"code": 1, "message": "Cancelled."}}
        if operation["left"] is None or operation["left"] > 0:
            operation["left"] = None if operation["left"] is None else operation["left"] - 1
            return {"name": name, "done": False}
        if self.operation_error:
            return {"name": name, "done": True, "error": self.operation_error}
        if "response" not in operation:
            operation["response"] = operation["done"]()
        if operation["error"]:
            return {"name": name, "done": True, "error": operation["error"]}
        return {"name": name, "done": True, "response": operation["response"]}

    def deploy(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = body["deployedModel"]
        deployed_id = model["id"]
        if deployed_id in self.deployed or deployed_id in self.deploying:
            message = f"Deployed model {deployed_id} already exists."
            if self.conflict_in_operation:
                return 200, self.operation(dict, {"code": 6, "message": message})
            return 409, _error(409, "ALREADY_EXISTS", message)

        self.deploying.add(deployed_id)

        def done() -> dict[str, Any]:
            self.deploying.discard(deployed_id)
            self.deployed.append(deployed_id)
            self.resources[deployed_id] = model["dedicatedResources"]
            split = body.get("trafficSplit") or {}
            if split:
                self.split = {(deployed_id if k == "0" else k): v for k, v in split.items()}
            return {"deployedModel": {"id": deployed_id}}

        return 200, self.operation(done, self.deploy_error)

    def undeploy(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        def done() -> dict[str, Any]:
            self.deployed.remove(body["deployedModelId"])
            if "trafficSplit" in body:
                self.split = dict(body["trafficSplit"])
            self.split.pop(body["deployedModelId"], None)
            return {}

        return 200, self.operation(done)

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path == ENDPOINT:
            self.split = dict(body["trafficSplit"])
            return self.endpoint()
        return {"name": path, "labels": body["labels"]}  # a model version's labels

    def upload(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model_id = body.get("modelId")
        if model_id in self.models:
            return 409, _error(409, "ALREADY_EXISTS", f"Model {model_id} already exists.")
        if parent := body.get("parentModel"):
            model_id = parent.rsplit("/", 1)[1]
            if model_id not in self.models:
                return 404, _error(404, "NOT_FOUND", f"Model {parent} not found.")
        labels = body["model"].get("labels", {})

        def done() -> dict[str, Any]:
            if not model_id:  # Vertex names it.
                return {"model": f"{PARENT}/models/77", "modelVersionId": "3"}
            versions = self.models.setdefault(model_id, [])
            versions.append({"versionId": str(len(versions) + 1), "labels": labels})
            return {"model": f"{PARENT}/models/{model_id}", "modelVersionId": str(len(versions))}

        return 200, self.operation(done)

    def registry(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A model (its latest version), or its versions carrying a label."""
        model_id, _, verb = path.removeprefix(f"{PARENT}/models/").partition(":")
        if model_id not in self.models:
            return 404, _error(404, "NOT_FOUND", f"Model {model_id} not found.")
        if verb != "listVersions":
            return 200, {"name": path, "versionId": self.models[model_id][-1]["versionId"]}
        key, value = _FILTER_LABEL.match(query["filter"]).groups()
        found = [
            {"name": f"{PARENT}/models/{model_id}", **version}
            for version in self.models[model_id]
            if version["labels"].get(key) == value
        ]
        return 200, {"models": found} if found else {}

    def endpoint(self) -> dict[str, Any]:
        models = [
            {"id": deployed_id, "dedicatedResources": self.resources.get(deployed_id, {})}
            for deployed_id in self.deployed
        ]
        return {"name": ENDPOINT, "deployedModels": models, "trafficSplit": self.split}

    def series(self, query: dict[str, str]) -> dict[str, Any]:
        metric = query["filter"].split('"')[1]
        if metric not in self.metrics:
            return {}
        return {"timeSeries": [{"points": [{"value": self.metrics[metric]}]}]}


def _handler(fakes: dict[str, FakeVertex]) -> type[GoogleHandler]:
    """Answers as the fake in `fakes["fake"]` (a fresh one per test) would."""

    def read(fake: FakeVertex, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if "/operations/" in path:
            return 200, fake.poll(path)
        if path.endswith("/timeSeries"):
            return 200, fake.series(query)
        if path.startswith(f"{PARENT}/models/"):
            return fake.registry(path, query)
        if fake.missing:
            return 404, _error(404, "NOT_FOUND", "Endpoint not found.")
        return 200, fake.endpoint()

    def write(
        fake: FakeVertex, method: str, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if method == "PATCH":
            return 200, fake.patch(path, body)
        if path.endswith(":cancel"):
            fake.operations[path.removesuffix(":cancel")]["cancelled"] = True
            return 200, {}
        actions = {
            "/models:upload": fake.upload,
            ":deployModel": fake.deploy,
            ":undeployModel": fake.undeploy,
        }
        act = next((act for suffix, act in actions.items() if path.endswith(suffix)), None)
        return act(body) if act else (200, fake.operation(dict))  # mutateDeployedModel

    def answer(fake: FakeVertex, call: Call) -> tuple[int, dict[str, Any]]:
        path = call.path.removeprefix("/v1/").removeprefix("/v3/")
        if call.method == "GET":
            return read(fake, path, call.query)
        return write(fake, call.method, path, call.body or {})

    def lost(fake: FakeVertex, call: Call, reply: dict[str, Any]) -> int | None:
        """The status a carried-out call is answered with instead, if it is lost."""
        suffix = next((s for s in fake.lose if call.path.endswith(s)), None)
        if suffix is None:
            return None
        if reply.get("name") in fake.operations:
            fake.finish(reply["name"])
        return fake.lose.pop(suffix)

    class Handler(GoogleHandler):
        def serve(self) -> None:
            path, query, body = self.received()
            call = Call(self.command, path, query, body)
            fake = fakes["fake"]
            fake.requests.append(call)
            if fake.drop:
                fake.drop -= 1
                self.close_connection = True
                return
            if fake.refuse:
                code, headers = fake.refuse.pop(0)
                self.reply(code, _error(code, "REFUSED", f"refused with {code}"), headers)
                return
            code, reply = answer(fake, call)
            status = lost(fake, call, reply)
            if status == 0:
                self.close_connection = True
                return
            if status:
                reply = _error(status, "UNAVAILABLE", "The service is unavailable.")
            self.reply(status or code, reply)

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[dict[str, FakeVertex], str]]:
    """One local server for the file, answering as each test's own fake."""
    fakes: dict[str, FakeVertex] = {}
    with serving(_handler(fakes)) as root:
        yield fakes, root


@pytest.fixture
def vertex(server) -> tuple[FakeVertex, VertexDeploymentProvider]:
    fakes, root = server
    fake = fakes["fake"] = FakeVertex()

    class Local(VertexDeploymentProvider):
        api_root = f"{root}/v1"
        monitoring_root = f"{root}/v3"
        timeout_seconds = 2.0
        retry_seconds = 1.0
        request_seconds = 2.0
        poll_seconds = 0.001
        min_retry_seconds = 0.001
        minute_seconds = 0.005
        bake_poll_seconds = 0.002

        def credentials(self) -> AnonymousCredentials:
            return AnonymousCredentials()

    return fake, Local()


def _props(**changes: Any) -> dict[str, Any]:
    """The provider's inputs for a GPU deployment of an uploaded model, as the
    endpoint component gives them, with `changes` to VertexModelDeploymentArgs'
    fields."""
    fields: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "display_name": "churn-1-4-0",
        "model": {
            "upload": {
                "imageUri": IMAGE,
                "artifactUri": "gs://mlops-prod-models/churn/1.4.0",
                "kmsKeyName": KEY,
                "predictRoute": "/invocations",
                "healthRoute": "/ping",
                "port": 8080,
                "modelId": "churn",
            }
        },
        "machine_type": "g2-standard-8",
        "accelerator_type": "NVIDIA_L4",
        "accelerator_count": 1,
        "min_replicas": 1,
        "max_replicas": 4,
        "autoscaling": {"metric": "gpuUtilization", "target": 70},
        "service_account": SERVICE_ACCOUNT,
        "labels": {"stack": "prod"},
    }
    return VertexModelDeploymentArgs(**{**fields, **changes}).props()


def _upload(**changes: Any) -> dict[str, Any]:
    """`_props()`'s model, its upload changed."""
    return {"upload": {**_props()["model"]["upload"], **changes}}


def _engine(props: dict[str, Any]) -> dict[str, Any]:
    """`props` as a dynamic provider receives them: through the engine's
    serialisation, which turns every number into a float."""
    # A loop of its own, left in place: asyncio.run would leave none behind, and
    # the Pulumi SDK (the plans other tests of this process make) needs one.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    struct = loop.run_until_complete(rpc.serialize_properties(props, {}))
    return rpc.deserialize_properties(struct)


def _recorded(props: dict[str, Any], version: str = "1") -> dict[str, Any]:
    return {**props, "deployed_model_id": DID, "model_name": f"{CHURN}@{version}"}


DID = deployed_model_id(_props())
CANARY = {"strategy": "canary", "canaryPercent": 10, "waitMinutes": 2}
ALARMS = {"errorsPerMinute": 5, "latencyP99Ms": 800}


def test_create_uploads_the_model_and_deploys_it_onto_an_empty_endpoint(vertex) -> None:
    fake, provider = vertex
    result = provider.create(_props())

    (upload,) = fake.calls("/models:upload")
    assert upload.path == f"/v1/{PARENT}/models:upload"
    assert upload.body == {
        # No model named churn yet: the upload is its first version.
        "modelId": "churn",
        "model": {
            "displayName": "churn-1-4-0",
            "containerSpec": {
                "imageUri": IMAGE,
                "predictRoute": "/invocations",
                "healthRoute": "/ping",
                "ports": [{"containerPort": 8080}],
            },
            "artifactUri": "gs://mlops-prod-models/churn/1.4.0",
            "encryptionSpec": {"kmsKeyName": KEY},
            "labels": {"stack": "prod", UPLOAD_LABEL: upload_key(_props())},
        },
    }
    (deploy,) = fake.calls(":deployModel")
    assert deploy.path == f"/v1/{ENDPOINT}:deployModel"
    assert deploy.body == {
        "deployedModel": {
            "id": DID,
            "model": f"{CHURN}@1",
            "displayName": "churn-1-4-0",
            "serviceAccount": SERVICE_ACCOUNT,
            "dedicatedResources": {
                "machineSpec": {
                    "machineType": "g2-standard-8",
                    "acceleratorType": "NVIDIA_L4",
                    "acceleratorCount": 1,
                },
                "minReplicaCount": 1,
                "maxReplicaCount": 4,
                "autoscalingMetricSpecs": [{"metricName": GPU_DUTY, "target": 70}],
            },
            "enableAccessLogging": True,
        },
        "trafficSplit": {"0": 100},
    }
    assert re.fullmatch(r"[1-9][0-9]{9}", DID)
    assert result.outs["deployed_model_id"] == DID
    assert result.outs["model_name"] == f"{CHURN}@1"
    assert result.id == f"{ENDPOINT}/deployedModels/{DID}"
    assert fake.split == {DID: 100}
    # Nothing served before, so nothing to bake against: no traffic moves, no metrics.
    assert fake.calls(ENDPOINT, "PATCH") == []
    assert fake.calls("/timeSeries", "GET") == []


def test_a_deployed_model_id_is_derived_from_what_replaces_it() -> None:
    assert deployed_model_id(_props()) == DID
    relabelled = _props(labels={"team": "risk"}, model=_upload(labels={"team": "risk"}))
    rescaled = _props(min_replicas=2, max_replicas=8, rollout=CANARY, alarms=ALARMS)
    assert {deployed_model_id(relabelled), deployed_model_id(rescaled)} == {DID}
    others = [
        _props(model=_upload(imageUri=f"{IMAGE}-rc1")),
        _props(machine_type="g2-standard-12"),
        _props(service_account="other@mlops-prod.iam.gserviceaccount.com"),
        _props(display_name="churn-1-5-0"),
        _props(endpoint=f"{PARENT}/endpoints/4243"),
    ]
    assert len({deployed_model_id(props) for props in others} | {DID}) == 6


def test_uploads_are_versions_of_the_model_named_by_its_model_id(vertex) -> None:
    fake, provider = vertex
    first = provider.create(_props())
    newer = _props(model=_upload(imageUri=f"{IMAGE}-rc1"), display_name="churn-1-5-0")
    second = provider.create(newer)

    uploads = fake.calls("/models:upload")
    assert [(c.body.get("modelId"), c.body.get("parentModel")) for c in uploads] == [
        ("churn", None),
        (None, CHURN),
    ]
    assert (first.outs["model_name"], second.outs["model_name"]) == (f"{CHURN}@1", f"{CHURN}@2")
    assert fake.calls(":deployModel")[1].body["deployedModel"]["model"] == f"{CHURN}@2"


@pytest.mark.parametrize("how", ["answer lost", "earlier run"])
def test_an_upload_already_made_is_found_not_made_again(vertex, how: str) -> None:
    fake, provider = vertex
    if how == "answer lost":
        fake.lose = {"/models:upload": 0}
    else:
        labels = {UPLOAD_LABEL: upload_key(_props())}
        fake.models = {
            "churn": [{"versionId": "1", "labels": {}}, {"versionId": "2", "labels": labels}]
        }
    result = provider.create(_props())
    assert len(fake.calls("/models:upload")) == (1 if how == "answer lost" else 0)
    expected = "1" if how == "answer lost" else "2"
    assert result.outs["model_name"] == f"{CHURN}@{expected}"
    assert len(fake.models["churn"]) == int(expected)


def test_an_upload_without_a_model_id_is_not_sent_twice(vertex) -> None:
    fake, provider = vertex
    upload = {key: value for key, value in _props()["model"]["upload"].items() if key != "modelId"}
    fake.lose = {"/models:upload": 503}
    with pytest.raises(RuntimeError, match=r"models:upload: HTTP 503"):
        provider.create(_props(model={"upload": upload}))
    assert len(fake.calls("/models:upload")) == 1
    assert fake.calls(":deployModel") == []
    # Throttling is refused before anything is done: that is retried.
    fake.lose, fake.refuse = {}, [(429, {"Retry-After": "0"})]
    result = provider.create(_props(model={"upload": upload}))
    assert len(fake.calls("/models:upload")) == 3
    assert result.outs["model_name"] == f"{PARENT}/models/77@3"


def test_a_registry_model_given_by_name_is_deployed_without_an_upload(vertex) -> None:
    fake, provider = vertex
    name = f"{PARENT}/models/12@7"
    props = _props(model={"name": name}, labels={}, autoscaling=None)
    result = provider.create(props)
    assert fake.calls("/models:upload") == []
    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["deployedModel"]["model"] == name
    assert "autoscalingMetricSpecs" not in deploy.body["deployedModel"]["dedicatedResources"]
    assert result.outs["model_name"] == name


def test_numbers_the_engine_hands_over_as_floats_count_as_whole_numbers(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    props = _engine(_props(rollout=CANARY, alarms={**ALARMS, "evaluationMinutes": 5}))
    assert isinstance(props["rollout"]["canaryPercent"], float)
    assert isinstance(props["acceleratorCount"], float)
    assert provider.check({}, props).failures == []
    result = provider.create(props)

    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["trafficSplit"] == {"0": 10, "7": 90}
    resources = deploy.body["deployedModel"]["dedicatedResources"]
    counts = [
        resources["minReplicaCount"],
        resources["maxReplicaCount"],
        resources["machineSpec"]["acceleratorCount"],
        resources["autoscalingMetricSpecs"][0]["target"],
        fake.calls("/models:upload")[0].body["model"]["containerSpec"]["ports"][0]["containerPort"],
    ]
    assert counts == [1, 4, 1, 70, 8080]
    assert all(type(count) is int for count in counts)
    assert result.outs["deployed_model_id"] == DID
    # The checks the floats used to slip past refuse what they should.
    inverted = provider.check({}, _engine(_props(min_replicas=5, max_replicas=2))).failures
    assert [f.property for f in inverted] == ["minReplicas"]
    no_gpu = provider.check({}, _engine(_props(accelerator_count=2, accelerator_type=None)))
    assert [f.property for f in no_gpu.failures] == ["acceleratorCount", "autoscaling.metric"]


def test_a_canary_bakes_on_its_share_of_traffic_then_takes_it_all(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    fake.metrics = {ERRORS: {"int64Value": "2"}, LATENCY: {"doubleValue": 310.5}}
    # Long enough a bake for several reads however busy the machine.
    result = provider.create(_props(rollout={**CANARY, "waitMinutes": 8}, alarms=ALARMS))

    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["trafficSplit"] == {"0": 10, "7": 90}
    assert [c.body for c in fake.calls(ENDPOINT, "PATCH")] == [{"trafficSplit": {DID: 100}}]
    assert fake.calls(ENDPOINT, "PATCH")[0].query == {"updateMask": "trafficSplit"}
    assert fake.split == {DID: 100}
    assert result.outs["deployed_model_id"] == DID
    # The bake read both alarms, for the new deployed model alone, more than once.
    reads = fake.calls("/projects/mlops-prod/timeSeries", "GET")
    assert {c.query["filter"].split('"')[1] for c in reads} == {ERRORS, LATENCY}
    assert len(reads) >= 4
    for read in reads:
        assert 'resource.labels.endpoint_id="4242"' in read.query["filter"]
        assert f'metric.labels.deployed_model_id="{DID}"' in read.query["filter"]
    latency = next(c for c in reads if LATENCY in c.query["filter"])
    assert 'metric.labels.latency_type="total"' in latency.query["filter"]
    assert latency.query["aggregation.crossSeriesReducer"] == "REDUCE_PERCENTILE_99"


@pytest.mark.parametrize(("minutes", "seconds"), [(None, 180), (5, 300)])
def test_the_bake_reads_the_alert_policies_window(
    vertex, minutes: int | None, seconds: int
) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    alarms = ALARMS if minutes is None else {**ALARMS, "evaluationMinutes": minutes}
    provider.create(_props(rollout={**CANARY, "waitMinutes": 0}, alarms=alarms))
    reads = fake.calls("/projects/mlops-prod/timeSeries", "GET")
    assert reads
    for read in reads:
        start, end = (
            datetime.fromisoformat(read.query[f"interval.{edge}Time"]) for edge in ("start", "end")
        )
        assert ((end - start).total_seconds(), read.query["aggregation.alignmentPeriod"]) == (
            seconds,
            "60s",
        )


def test_a_linear_rollout_moves_traffic_in_steps_keeping_the_old_proportions(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 60, "8": 40, "9": 0})
    rollout = {"strategy": "linear", "linearStepPercent": 40, "waitMinutes": 1}
    provider.create(_props(rollout=rollout))
    (deploy,) = fake.calls(":deployModel")
    assert deploy.body["trafficSplit"] == {"0": 40, "7": 36, "8": 24}
    assert [c.body["trafficSplit"] for c in fake.calls(ENDPOINT, "PATCH")] == [
        {DID: 80, "7": 12, "8": 8},
        {DID: 100},
    ]


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        (ERRORS, {"int64Value": "12"}, rf"error_count for deployed model {DID} was 12 .*of 5"),
        (LATENCY, {"doubleValue": 950.0}, r"prediction_latencies .* was 950 ms at p99.* of 800"),
    ],
    ids=["errors", "latency"],
)
def test_a_canary_that_breaches_an_alarm_is_rolled_back(
    vertex, metric: str, value: dict[str, Any], message: str
) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    fake.metrics = {metric: value}
    with pytest.raises(RuntimeError, match=message) as raised:
        provider.create(_props(rollout=CANARY, alarms=ALARMS))
    assert "traffic restored to {'7': 100}" in str(raised.value)
    # Traffic back first, then the canary undeployed; it never took everything.
    assert [c.body for c in fake.calls(ENDPOINT, "PATCH")] == [{"trafficSplit": {"7": 100}}]
    (undeploy,) = fake.calls(":undeployModel")
    assert undeploy.body == {"deployedModelId": DID}
    assert fake.requests.index(undeploy) > fake.requests.index(fake.calls(ENDPOINT, "PATCH")[0])
    assert (fake.deployed, fake.split) == (["7"], {"7": 100})


def test_metrics_that_cannot_be_read_roll_the_canary_back_too(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})

    def refuse_metrics(*_args: Any) -> None:
        raise RuntimeError("GET timeSeries: HTTP 403 PERMISSION_DENIED: monitoring.timeSeries.list")

    provider.worst = refuse_metrics
    with pytest.raises(RuntimeError, match=r"PERMISSION_DENIED.*rolled back"):
        provider.create(_props(rollout=CANARY, alarms=ALARMS))
    assert (fake.deployed, fake.split) == (["7"], {"7": 100})


@pytest.mark.parametrize("fault", ["fails after deploying", "times out"])
def test_a_deployment_that_fails_or_outlasts_its_timeout_is_rolled_back(vertex, fault: str) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    props = _props(model={"name": f"{PARENT}/models/12@7"}, labels={}, rollout=CANARY)
    deployed_id = deployed_model_id(props)
    if fault == "times out":
        fake.polls, provider.timeout_seconds = None, 0.02
        message = r"deploying .* still running after 0\.02 s.*not on the endpoint"
    else:
        fake.deploy_error = {"code": 13, "message": "Replicas never became healthy."}
        message = rf"failed \(code 13\): Replicas never.*deployed model {deployed_id} undeployed"
    with pytest.raises(RuntimeError, match=message):
        provider.create(props)
    assert (fake.deployed, fake.split) == (["7"], {"7": 100})
    assert [c.body for c in fake.calls(ENDPOINT, "PATCH")] == [{"trafficSplit": {"7": 100}}]
    if fault == "times out":
        # Left running, it would deploy after the rollback with nothing to track it.
        (cancel,) = fake.calls(":cancel")
        assert cancel.path == f"/v1/{PARENT}/operations/1:cancel"
        assert fake.calls(":undeployModel") == []
    else:
        (undeploy,) = fake.calls(":undeployModel")
        assert undeploy.body == {"deployedModelId": deployed_id}


@pytest.mark.parametrize("lost", ["connection dropped", "server error", "refused by the operation"])
def test_a_retried_deploy_that_got_through_the_first_time_is_not_deployed_twice(
    vertex, lost: str
) -> None:
    fake, provider = vertex
    fake.serve({"7": 100})
    fake.lose = {":deployModel": 0 if lost == "connection dropped" else 503}
    fake.conflict_in_operation = lost == "refused by the operation"
    result = provider.create(_props())
    deploys = fake.calls(":deployModel")
    assert len(deploys) == 2
    assert {c.body["deployedModel"]["id"] for c in deploys} == {DID}
    assert (fake.deployed, fake.split) == (["7", DID], {DID: 100})
    assert result.outs["deployed_model_id"] == DID
    assert fake.calls(":undeployModel") == []


def test_a_deployment_left_by_an_interrupted_run_is_adopted_and_rolled_out(vertex) -> None:
    fake, provider = vertex
    # A run that deployed the canary and then lost its process: Pulumi has no record.
    fake.serve({"7": 90, DID: 10})
    result = provider.create(_props(rollout=CANARY))
    assert fake.calls(":deployModel") == []
    assert [c.body for c in fake.calls(ENDPOINT, "PATCH")] == [{"trafficSplit": {DID: 100}}]
    assert result.outs["deployed_model_id"] == DID
    assert result.id == f"{ENDPOINT}/deployedModels/{DID}"


def test_an_operation_that_fails_fails_with_the_apis_message(vertex) -> None:
    fake, provider = vertex
    fake.operation_error = {
        "code": 9,
        "message": "Model server never became ready. Please validate the container.",
    }
    with pytest.raises(RuntimeError, match=r"model upload failed \(code 9\): Model server never"):
        provider.create(_props())
    assert fake.calls(":deployModel") == []


@pytest.mark.parametrize(
    "fault",
    [
        {"refuse": [(429, {"Retry-After": "0"})]},
        {"refuse": [(503, {}), (500, {"Retry-After": "0"})]},
        {"drop": 2},
    ],
    ids=["throttled", "server errors", "dropped connections"],
)
def test_transient_faults_are_retried(vertex, fault: dict[str, Any]) -> None:
    fake, provider = vertex
    fake.refuse = list(fault.get("refuse", []))
    fake.drop = fault.get("drop", 0)
    retried = 1 + len(fake.refuse) + fake.drop
    result = provider.create(_props())
    assert result.outs["deployed_model_id"] == DID
    assert [c.path for c in fake.requests[:retried]] == [f"/v1/{CHURN}:listVersions"] * retried
    assert len(fake.calls(":listVersions", "GET")) == retried
    assert len(fake.calls("/models:upload")) == 1


def test_a_bad_request_fails_at_once_with_the_apis_message(vertex) -> None:
    fake, provider = vertex
    fake.refuse = [(400, {}), (400, {})]
    with pytest.raises(RuntimeError, match=r"listVersions: HTTP 400 REFUSED: refused with 400"):
        provider.create(_props())
    assert len(fake.requests) == 1


def test_throttling_that_outlasts_the_deadline_names_the_status(vertex) -> None:
    fake, provider = vertex
    fake.refuse = [(429, {"Retry-After": "0"})] * 1000
    provider.retry_seconds = 0.06
    provider.min_retry_seconds = 0.02
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"HTTP 429"):
        provider.create(_props())
    assert time.monotonic() - started < 0.3
    # Retry-After: 0 on every reply, yet no more often than min_retry_seconds.
    assert 2 <= len(fake.requests) <= 6


def test_an_operation_that_never_ends_times_out(vertex) -> None:
    fake, provider = vertex
    fake.polls = None
    provider.timeout_seconds = 0.02
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"model upload still running after 0\.02 s"):
        provider.create(_props())
    assert time.monotonic() - started < 0.5
    assert len(fake.calls("/operations/1", "GET")) >= 3


def test_only_a_new_deployment_replaces(vertex) -> None:
    _fake, provider = vertex
    old = _props()
    other_model = provider.diff("id", old, _props(model={"name": f"{PARENT}/models/12@8"}))
    assert (other_model.changes, other_model.replaces) == (True, ["model"])
    assert other_model.delete_before_replace is False
    other_image = provider.diff("id", old, _props(model=_upload(imageUri=f"{IMAGE}-rc1")))
    assert other_image.replaces == ["model"]
    other_machine = provider.diff("id", old, _props(machine_type="g2-standard-12"))
    assert other_machine.replaces == ["machineType"]
    rescaled = provider.diff("id", old, _props(min_replicas=2, max_replicas=6))
    assert (rescaled.changes, rescaled.replaces) == (True, [])
    rerolled = provider.diff("id", old, _props(rollout=CANARY, alarms=ALARMS))
    assert (rerolled.changes, rerolled.replaces) == (True, [])
    assert provider.diff("id", _recorded(old), _props()).changes is False
    # What the engine hands over (floats) is no change from what was recorded.
    assert provider.diff("id", _engine(_recorded(old)), _engine(_props())).changes is False


@pytest.mark.parametrize("where", ["labels", "model.upload.labels"])
def test_a_label_change_is_made_in_place_never_a_replace(vertex, where: str) -> None:
    fake, provider = vertex
    if where == "labels":
        olds, news = _props(), _props(labels={"stack": "prod", "team": "risk"})
    else:
        olds = _props(model=_upload(labels={"model": "churn"}))
        news = _props(model=_upload(labels={"model": "churn", "team": "risk"}))
    diff = provider.diff("id", _recorded(olds), news)
    assert (diff.changes, diff.replaces) == (True, [])

    result = provider.update("id", _recorded(olds), news)
    (relabel,) = fake.requests
    assert (relabel.method, relabel.path, relabel.query) == (
        "PATCH",
        f"/v1/{CHURN}@1",
        {"updateMask": "labels"},
    )
    labels = {"stack": "prod", "team": "risk"} if where == "labels" else {}
    model = {"model": "churn", "team": "risk"} if where != "labels" else {}
    assert relabel.body == {
        "labels": {"stack": "prod", **labels, **model, UPLOAD_LABEL: upload_key(olds)}
    }
    assert (result.outs["deployed_model_id"], result.outs["model_name"]) == (DID, f"{CHURN}@1")


def test_update_rescales_the_deployed_model_in_place(vertex) -> None:
    fake, provider = vertex
    news = _props(
        min_replicas=2, max_replicas=6, autoscaling={"metric": "cpuUtilization", "target": 55}
    )
    result = provider.update("id", _recorded(_props()), news)
    (mutate,) = fake.calls(":mutateDeployedModel")
    assert mutate.path == f"/v1/{ENDPOINT}:mutateDeployedModel"
    assert mutate.body == {
        "deployedModel": {
            "id": DID,
            "dedicatedResources": {
                "minReplicaCount": 2,
                "maxReplicaCount": 6,
                "autoscalingMetricSpecs": [{"metricName": CPU, "target": 55}],
            },
        },
        "updateMask": "dedicatedResources.minReplicaCount,dedicatedResources.maxReplicaCount,"
        "dedicatedResources.autoscalingMetricSpecs",
    }
    assert fake.calls("/operations/1", "GET")  # waited for
    assert (result.outs["deployed_model_id"], result.outs["minReplicas"]) == (DID, 2)


def test_a_rollout_or_alarm_change_calls_nothing(vertex) -> None:
    fake, provider = vertex
    provider.update("id", _recorded(_props()), _props(rollout=CANARY, alarms=ALARMS))
    assert fake.requests == []


def test_refresh_reads_the_replica_counts_and_drops_a_deployed_model_that_is_gone(
    vertex,
) -> None:
    fake, provider = vertex
    fake.serve({"7": 0, DID: 100})
    fake.resources[DID] = {"minReplicaCount": 2, "maxReplicaCount": 5}
    recorded = _engine(_recorded(_props()))
    found = provider.read(f"{ENDPOINT}/deployedModels/{DID}", recorded)
    assert found.id == f"{ENDPOINT}/deployedModels/{DID}"
    assert {
        key: found.outs[key] for key in ("minReplicas", "maxReplicas", "deployed_model_id")
    } == {
        "minReplicas": 2,
        "maxReplicas": 5,
        "deployed_model_id": DID,
    }
    assert found.outs["model_name"] == f"{CHURN}@1"
    fake.serve({"7": 100})
    gone = provider.read(f"{ENDPOINT}/deployedModels/{DID}", recorded)
    assert (gone.id, gone.outs) == (None, {})
    fake.missing = True
    assert provider.read(f"{ENDPOINT}/deployedModels/{DID}", recorded).id is None


def test_delete_undeploys_and_hands_its_traffic_to_the_models_that_stay(vertex) -> None:
    fake, provider = vertex
    fake.serve({"7": 0, "8": 0, DID: 100})
    provider.delete("id", _recorded(_props()))
    (undeploy,) = fake.calls(":undeployModel")
    assert undeploy.body == {"deployedModelId": DID, "trafficSplit": {"7": 50, "8": 50}}
    assert (fake.deployed, fake.split) == (["7", "8"], {"7": 50, "8": 50})
    # The uploaded model stays in the registry.
    assert [c for c in fake.requests if c.method == "DELETE"] == []


def test_delete_of_the_last_model_undeploys_without_a_split(vertex) -> None:
    fake, provider = vertex
    fake.serve({DID: 100})
    provider.delete("id", _recorded(_props()))
    (undeploy,) = fake.calls(":undeployModel")
    assert undeploy.body == {"deployedModelId": DID}
    assert (fake.deployed, fake.split) == ([], {})


@pytest.mark.parametrize(
    "gone",
    ["endpoint", "deployed model", "undeploy operation"],
)
def test_deleting_what_is_already_gone_succeeds(vertex, gone: str) -> None:
    fake, provider = vertex
    fake.serve({"7": 100, DID: 0})
    if gone == "endpoint":
        fake.missing = True
    elif gone == "deployed model":
        fake.serve({"7": 100})
    else:
        fake.operation_error = {"code": 5, "message": f"Deployed model {DID} not found."}
    provider.delete("id", _recorded(_props()))
    expected = 1 if gone == "undeploy operation" else 0
    assert len(fake.calls(":undeployModel")) == expected


@pytest.mark.parametrize(
    ("weights", "total", "shares"),
    [
        ({"a": 70, "b": 30}, 85, {"a": 60, "b": 25}),
        ({"a": 1, "b": 1, "c": 1}, 100, {"a": 34, "b": 33, "c": 33}),
        ({"a": 0, "b": 0}, 100, {"a": 50, "b": 50}),
        ({}, 90, {}),
    ],
)
def test_traffic_is_shared_in_whole_percents_that_add_up(
    weights: dict[str, int], total: int, shares: dict[str, int]
) -> None:
    assert apportion(weights, total) == shares


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"autoscaling": {"metric": "queueDepth", "target": 5}}, "autoscaling.metric", "none of"),
        (
            {"accelerator_type": None, "accelerator_count": 0},
            "autoscaling.metric",
            "gpuUtilization needs an accelerator",
        ),
        (
            {"autoscaling": {"metric": "cpuUtilization", "target": 120}},
            "autoscaling.target",
            "1 to 100",
        ),
        ({"min_replicas": 5, "max_replicas": 2}, "minReplicas", "1 <= minReplicas"),
        ({"min_replicas": 1.5}, "minReplicas", "whole number"),
        ({"rollout": {"strategy": "canary", "waitMinutes": 5}}, "rollout.canaryPercent", "1 to 99"),
        (
            {"rollout": {"strategy": "canary", "canaryPercent": 10.5}},
            "rollout.canaryPercent",
            "whole percent",
        ),
        ({"rollout": {"strategy": "blueGreen"}}, "rollout.strategy", "none of"),
        ({"alarms": {"evaluationMinutes": 0}}, "alarms.evaluationMinutes", "1 to 60"),
        ({"model": {"name": f"{PARENT}/models/12@1"}}, "labels", "where it is uploaded"),
        ({"model": _upload(modelId="1churn")}, "model.upload.modelId", "starting with a letter"),
        (
            {"model": {"upload": {"imageUri": IMAGE, "model_id": "churn"}}},
            "model.upload",
            "none of",
        ),
        ({"endpoint": "4242"}, "endpoint", "projects/P/locations/R/endpoints/ID"),
    ],
    ids=[
        "unknown metric",
        "gpu metric without gpu",
        "percent over 100",
        "min over max",
        "fractional replicas",
        "canary without percent",
        "fractional canary percent",
        "unknown strategy",
        "no evaluation window",
        "labels on a named model",
        "model id starting with a digit",
        "upload key not in the provider's casing",
        "bare endpoint id",
    ],
)
def test_bad_inputs_are_refused_naming_the_input(
    vertex, changes: dict[str, Any], path: str, reason: str
) -> None:
    fake, provider = vertex
    props = _props(**changes)
    failures = provider.check({}, props).failures
    assert [(f.property, reason in f.reason) for f in failures] == [(path, True)]
    with pytest.raises(ValueError, match=path):
        provider.create(props)
    assert fake.requests == []


def test_unknown_values_in_a_preview_are_not_refused() -> None:
    props = _props(
        endpoint=rpc.UNKNOWN,
        model=_upload(imageUri=rpc.UNKNOWN, modelId=rpc.UNKNOWN),
        min_replicas=rpc.UNKNOWN,
        rollout={"strategy": "canary", "canaryPercent": rpc.UNKNOWN},
        alarms={"evaluationMinutes": rpc.UNKNOWN},
    )
    assert problems(props) == []


def test_requests_per_replica_scale_on_the_request_count_metric() -> None:
    from infra.gcp.vertex_deployment import autoscaling_specs

    specs = autoscaling_specs({"metric": "invocationsPerReplica", "target": 600})
    assert specs == [
        {"metricName": "aiplatform.googleapis.com/prediction/online/request_count", "target": 600}
    ]


def test_the_provider_is_stored_by_reference_without_credentials() -> None:
    blob = base64.b64decode(serialize_provider(VertexDeploymentProvider()))
    assert b"infra.gcp.vertex_deployment" in blob
    assert b"AuthorizedSession" not in blob
