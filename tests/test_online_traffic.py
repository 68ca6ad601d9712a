"""OnlineEndpointTraffic's provider against a fake of ARM and of Azure Monitor's
metrics API, served on 127.0.0.1 by the test itself: the traffic maps it PUTs,
the metrics it reads, and how it backs out."""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import dill
import pytest
from fake_arm import TOKEN, ArmHandler, FakeArm, Received, local, serve
from pulumi.dynamic.dynamic import serialize_provider

from infra.azure.online_traffic import (
    OnlineEndpointTrafficArgs,
    OnlineTrafficProvider,
    split,
)

ENDPOINT_ID = (
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/"
    "workspaces/w/onlineEndpoints/e"
)
METRICS = f"{ENDPOINT_ID}/providers/Microsoft.Insights/metrics"
# An endpoint as ARM's GET returns it: everything a PUT must hand back unchanged.
ENDPOINT: dict[str, Any] = {
    "id": ENDPOINT_ID,
    "name": "e",
    "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
    "location": "westeurope",
    "kind": "Managed",
    "tags": {"stack": "dev", "owner": "ml"},
    "identity": {
        "type": "UserAssigned",
        "userAssignedIdentities": {
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/ep": {"clientId": "c", "principalId": "p"}
        },
    },
    "systemData": {"createdBy": "ci", "createdAt": "2025-01-01T00:00:00Z"},
    "properties": {
        "authMode": "AADToken",
        "description": "scoring",
        "properties": {"azureml.onlineendpointid": "x"},
        "publicNetworkAccess": "Disabled",
        "mirrorTraffic": {},
        "provisioningState": "Succeeded",
        "scoringUri": "https://e.westeurope.inference.ml.azure.com/score",
        "swaggerUri": "https://e.westeurope.inference.ml.azure.com/swagger.json",
        "traffic": {},
    },
}
CANARY = {"strategy": "canary", "canaryPercent": 10, "linearStepPercent": 25, "waitMinutes": 2}
ALARMS = {"errorsPerMinute": 5, "latencyP99Ms": 500}


class FakeEndpoint(FakeArm):
    """One online endpoint, its PUTs' operations, and its metrics."""

    def __init__(self, traffic: dict[str, int]) -> None:
        super().__init__()
        self.endpoint = copy.deepcopy(ENDPOINT)
        self.endpoint["properties"]["traffic"] = dict(traffic)
        # How each PUT's operation ends, in order (after one InProgress poll);
        # PUTs beyond the list succeed.
        self.outcomes: list[str] = []
        self.puts = 0
        self.polls = 0
        self.pending: dict[str, Any] | None = None
        # Statuses the next requests answer, in order, before serving them.
        self.refuse: list[int] = []
        # One-minute averages by (deployment or "*" unfiltered, metric, statusCodeClass).
        self.metrics: dict[tuple[str, str, str | None], float] = {}

    def put_traffic(self) -> list[dict[str, int]]:
        return [r.body["properties"]["traffic"] for r in self.requests if r.method == "PUT"]

    def metric_queries(self) -> list[dict[str, str]]:
        return [r.query for r in self.requests if r.route == METRICS]


def _metrics(arm: FakeEndpoint, query: dict[str, str]) -> dict[str, Any]:
    """Azure Monitor's answer (api-version 2023-10-01) for one metric."""
    where = query.get("$filter", "")
    deployment = re.search(r"deployment eq '([^']*)'", where)
    status = re.search(r"statusCodeClass eq '([^']*)'", where)
    metric = query["metricnames"]
    key = (deployment.group(1) if deployment else "*", metric, status.group(1) if status else None)
    point: dict[str, Any] = {"timeStamp": "2025-01-01T00:00:00Z"}
    if key in arm.metrics:
        point["average"] = arm.metrics[key]
    series = {"metadatavalues": [], "data": [point]}
    return {
        "timespan": query["timespan"],
        "interval": query["interval"],
        "value": [
            {
                "type": "Microsoft.Insights/metrics",
                "name": {"value": metric, "localizedValue": metric},
                "timeseries": [series],
                "errorCode": "Success",
            }
        ],
    }


class Handler(ArmHandler):
    arm: FakeEndpoint

    def _refused(self) -> bool:
        if not self.arm.refuse:
            return False
        self.reply(
            self.arm.refuse.pop(0), {"error": {"code": "TooManyRequests"}}, {"Retry-After": "0"}
        )
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server dispatches by this name)
        arm = self.arm
        self.record()
        request = arm.requests[-1]
        if self._refused():
            return
        if request.route.startswith("/operations/"):
            outcome = arm.outcomes[arm.puts - 1] if arm.puts <= len(arm.outcomes) else "Succeeded"
            status = "InProgress" if arm.polls == 0 else outcome
            arm.polls += 1
            body: dict[str, Any] = {"status": status}
            if status == "Succeeded" and arm.pending is not None:
                arm.endpoint["properties"]["traffic"] = arm.pending["properties"]["traffic"]
                arm.pending = None
            if status == "Failed":
                body["error"] = {
                    "code": "BadArgument",
                    "message": "Deployment 'new' is not in a terminal succeeded state.",
                }
            self.reply(200, body, {"Retry-After": "0"})
        elif request.route == METRICS:
            self.reply(200, _metrics(arm, request.query))
        elif request.route == ENDPOINT_ID:
            self.reply(200, arm.endpoint)
        else:
            self.reply(404, {"error": {"code": "NotFound"}})

    def do_PUT(self) -> None:  # noqa: N802 (http.server dispatches by this name)
        body = self.record()
        if self._refused():
            return
        self.arm.puts += 1
        self.arm.polls = 0
        self.arm.pending = copy.deepcopy(body)
        answer = copy.deepcopy(body)
        answer["properties"]["provisioningState"] = "Updating"
        operation = f"{self.host}/operations/{self.arm.puts}"
        self.reply(201, answer, {"Azure-AsyncOperation": operation, "Retry-After": "0"})


@pytest.fixture
def arm() -> Iterator[tuple[FakeEndpoint, OnlineTrafficProvider]]:
    fake = FakeEndpoint({})
    with serve(fake, Handler) as url:
        # A minute lasts 10 ms: a 2-minute bake checks the alarms about twice.
        yield fake, local(OnlineTrafficProvider, url, minute_seconds=0.01, check_seconds=0.01)


def _props(deployment: str = "new", **changes: Any) -> dict[str, Any]:
    props = {
        "endpointId": ENDPOINT_ID,
        "deployment": deployment,
        "rollout": dict(CANARY),
        "alarms": dict(ALARMS),
        "endpointRevision": "r1",
    }
    return {**props, **changes}


def _endpoint_requests(fake: FakeEndpoint) -> list[Received]:
    return [r for r in fake.requests if r.route == ENDPOINT_ID]


def test_a_first_rollout_onto_an_endpoint_without_traffic_sends_it_all_at_once(arm) -> None:
    fake, provider = arm
    result = provider.create(_props())
    assert fake.put_traffic() == [{"new": 100}]
    assert fake.endpoint["properties"]["traffic"] == {"new": 100}
    assert result.id == f"{ENDPOINT_ID}/traffic"
    assert result.outs["traffic"] == {"new": 100}
    # Nothing else has traffic, so there is nothing to bake against.
    assert fake.metric_queries() == []
    put = next(r for r in fake.requests if r.method == "PUT")
    assert put.path == f"{ENDPOINT_ID}?api-version=2025-12-01"


def test_a_canary_bakes_on_the_deployments_own_metrics_then_takes_all(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"old": 100}
    # Plenty of requests and a slow old deployment: only 5xx of `new` may count.
    fake.metrics = {
        ("new", "RequestsPerMinute", None): 600.0,
        ("new", "RequestsPerMinute", "5xx"): 1.0,
        ("new", "RequestLatency_P99", None): 120.0,
        ("old", "RequestLatency_P99", None): 900.0,
        ("*", "RequestLatency_P99", None): 900.0,
    }
    result = provider.create(_props())
    assert fake.put_traffic() == [{"new": 10, "old": 90}, {"new": 100}]
    assert result.outs["traffic"] == {"new": 100}
    queries = fake.metric_queries()
    assert len(queries) >= 2
    assert {(q["metricnames"], q["$filter"]) for q in queries} == {
        ("RequestLatency_P99", "deployment eq 'new'"),
        ("RequestsPerMinute", "deployment eq 'new' and statusCodeClass eq '5xx'"),
    }
    assert {(q["api-version"], q["aggregation"], q["interval"]) for q in queries} == {
        ("2023-10-01", "Average", "PT1M")
    }
    assert all(re.fullmatch(r"\S+Z/\S+Z", q["timespan"]) for q in queries)
    # The bake sits between the canary and the full shift.
    order = [r.method if r.route != METRICS else "METRICS" for r in fake.requests]
    first_put, last_put = order.index("PUT"), len(order) - 1 - order[::-1].index("PUT")
    assert "METRICS" in order[first_put:last_put]
    assert "METRICS" not in order[last_put:]
    assert {r.auth for r in fake.requests} == {f"Bearer {TOKEN}"}


def test_a_put_hands_back_every_other_property_as_get_returned_it(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"old": 100}
    provider.create(_props())
    gets = _endpoint_requests(fake)
    for index, request in enumerate(gets):
        if request.method != "PUT":
            continue
        assert gets[index - 1].method == "GET"
        expected = copy.deepcopy(ENDPOINT)
        expected["properties"]["traffic"] = request.body["properties"]["traffic"]
        assert request.body == expected
    assert len(fake.put_traffic()) == 2


@pytest.mark.parametrize(
    ("metric", "value", "message"),
    [
        (
            ("new", "RequestLatency_P99", None),
            900.0,
            r"latencyP99Ms: RequestLatency_P99 \(deployment eq 'new'\) reached 900, above 500",
        ),
        (
            ("new", "RequestsPerMinute", "5xx"),
            12.0,
            r"errorsPerMinute: RequestsPerMinute \(.*5xx'\) reached 12, above 5",
        ),
    ],
    ids=["latency", "errors"],
)
def test_a_breach_during_the_bake_restores_the_traffic_and_names_the_metric(
    arm, metric: tuple[str, str, str | None], value: float, message: str
) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"old": 100}
    fake.metrics = {metric: value}
    with pytest.raises(RuntimeError, match=message) as failure:
        provider.create(_props())
    assert "traffic restored to {'old': 100}" in str(failure.value)
    assert fake.put_traffic() == [{"new": 10, "old": 90}, {"old": 100}]
    assert fake.endpoint["properties"]["traffic"] == {"old": 100}


def test_a_linear_rollout_keeps_the_others_in_proportion_in_whole_percents(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"a": 50, "b": 25, "c": 25, "idle": 0}
    rollout = {"strategy": "linear", "linearStepPercent": 30, "waitMinutes": 1}
    provider.create(_props(rollout=rollout))
    assert fake.put_traffic() == [
        {"new": 30, "a": 35, "b": 18, "c": 17},
        {"new": 60, "a": 20, "b": 10, "c": 10},
        {"new": 90, "a": 5, "b": 3, "c": 2},
        {"new": 100},
    ]
    assert all(sum(traffic.values()) == 100 for traffic in fake.put_traffic())


def test_all_at_once_moves_the_traffic_in_one_step_without_baking(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"old": 100}
    provider.create(_props(rollout={"strategy": "allAtOnce"}))
    assert fake.put_traffic() == [{"new": 100}]
    assert fake.metric_queries() == []


def test_an_endpoint_already_on_the_deployment_is_only_read(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"new": 100, "old": 0}
    result = provider.update("id", _props(), _props(endpointRevision="r2"))
    assert fake.methods() == ["GET"]
    assert result.outs["traffic"] == {"new": 100, "old": 0}


def test_a_failed_operation_surfaces_the_arm_message(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"old": 100}
    fake.outcomes = ["Failed"]
    with pytest.raises(RuntimeError, match=r"ARM operation failed: .*not in a terminal succeeded"):
        provider.create(_props())
    # The failed PUT left the traffic as it was: nothing to put back.
    assert fake.put_traffic() == [{"new": 10, "old": 90}]
    assert fake.endpoint["properties"]["traffic"] == {"old": 100}


def test_throttling_is_retried(arm) -> None:
    fake, provider = arm
    fake.refuse = [429]
    provider.create(_props())
    assert fake.methods()[:2] == ["GET", "GET"]
    assert fake.endpoint["properties"]["traffic"] == {"new": 100}


@pytest.mark.parametrize(
    ("changes", "replaces"),
    [
        ({"deployment": "next"}, []),
        ({"endpointRevision": "r2"}, []),
        ({"rollout": {**CANARY, "waitMinutes": 10}}, []),
        ({"alarms": {**ALARMS, "latencyP99Ms": 300}}, []),
        ({"endpointId": ENDPOINT_ID + "2"}, ["endpointId"]),
    ],
    ids=["deployment", "endpoint revision", "rollout", "alarms", "endpoint"],
)
def test_a_changed_input_updates_and_only_another_endpoint_replaces(
    changes: dict[str, Any], replaces: list[str]
) -> None:
    old = {**_props(), "traffic": {"new": 100}}
    diff = OnlineTrafficProvider().diff("id", old, {**_props(), **changes, "traffic": None})
    assert (diff.changes, diff.replaces) == (True, replaces)


def test_unchanged_inputs_change_nothing_and_new_alarms_move_no_traffic(arm) -> None:
    fake, provider = arm
    old = {**_props(), "traffic": {"new": 100}}
    assert provider.diff("id", old, {**_props(), "traffic": None}).changes is False
    fake.endpoint["properties"]["traffic"] = {"new": 100}
    provider.update("id", old, _props(alarms={**ALARMS, "latencyP99Ms": 300}))
    assert fake.methods() == ["GET"]


@pytest.mark.parametrize(
    ("rollout", "alarms", "failure"),
    [
        ({"strategy": "blue-green"}, ALARMS, "rollout.strategy"),
        ({**CANARY, "canaryPercent": 100}, ALARMS, "rollout.canaryPercent"),
        ({**CANARY, "canaryPercent": 12.5}, ALARMS, "rollout.canaryPercent"),
        ({"strategy": "linear", "waitMinutes": 5}, ALARMS, "rollout.linearStepPercent"),
        ({"strategy": "canary", "canaryPercent": 10}, ALARMS, "rollout.waitMinutes"),
        ({**CANARY, "waitMinute": 5}, ALARMS, "rollout.waitMinute"),
        (CANARY, {"errorsPerMinute": 5}, "alarms.latencyP99Ms"),
        (CANARY, {**ALARMS, "latencyP99Ms": 0}, "alarms.latencyP99Ms"),
        (CANARY, {**ALARMS, "errorsPerMinute": -1}, "alarms.errorsPerMinute"),
    ],
    ids=[
        "unknown strategy",
        "canary of 100",
        "fractional percent",
        "linear without step",
        "canary without wait",
        "misspelt key",
        "canary without latency alarm",
        "latency bound 0",
        "negative error bound",
    ],
)
def test_a_bad_rollout_or_alarm_is_refused_naming_its_key(
    rollout: dict[str, Any], alarms: dict[str, Any], failure: str
) -> None:
    result = OnlineTrafficProvider().check({}, _props(rollout=rollout, alarms=alarms))
    assert [f.property for f in result.failures] == [failure]


def test_numbers_as_the_engine_sends_them_pass_the_check() -> None:
    rollout = {"strategy": "canary", "canaryPercent": 10.0, "waitMinutes": 0.0}
    alarms = {"errorsPerMinute": 0.0, "latencyP99Ms": 250.0}
    assert OnlineTrafficProvider().check({}, _props(rollout=rollout, alarms=alarms)).failures == []
    assert (
        OnlineTrafficProvider().check({}, _props(rollout={"strategy": "allAtOnce"})).failures == []
    )


def test_the_rest_of_the_traffic_is_split_in_whole_percents_summing_to_100() -> None:
    assert split("new", 10, {"old": 100}) == {"new": 10, "old": 90}
    assert split("new", 50, {"a": 99, "b": 1}) == {"new": 50, "a": 50}
    assert split("new", 1, {"a": 1, "b": 1, "c": 1}) == {"new": 1, "a": 33, "b": 33, "c": 33}
    assert sum(split("new", 1, {"a": 1, "b": 1, "c": 1}).values()) == 100


def test_deleting_changes_nothing(arm) -> None:
    fake, provider = arm
    provider.delete("id", _props())
    assert fake.requests == []


def test_the_args_and_the_serialized_provider_are_what_callers_and_pulumi_expect() -> None:
    fields = [field.name for field in dataclasses.fields(OnlineEndpointTrafficArgs)]
    assert fields == ["endpoint_id", "deployment", "rollout", "alarms", "endpoint_revision"]
    blob = base64.b64decode(serialize_provider(OnlineTrafficProvider()))
    assert b"infra.azure.online_traffic" in blob
    assert dill.loads(blob).api_version == "2025-12-01"


def test_steps_at_or_below_the_share_the_deployment_has_are_skipped(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"new": 30, "old": 70}
    rollout = {"strategy": "linear", "linearStepPercent": 25, "waitMinutes": 1}
    provider.create(_props(rollout=rollout))
    assert fake.put_traffic() == [{"new": 50, "old": 50}, {"new": 75, "old": 25}, {"new": 100}]


def test_a_rollout_signs_in_once_per_token_lifetime(arm) -> None:
    fake, provider = arm
    fake.endpoint["properties"]["traffic"] = {"old": 100}
    signed: list[str] = []

    def token() -> str:
        signed.append(TOKEN)
        return TOKEN

    provider.token = token
    provider.create(_props(rollout={"strategy": "allAtOnce"}))
    assert len(signed) == 1
    # A token older than its lifetime is replaced before the next request.
    provider.token_seconds = 0.0
    fake.requests.clear()
    provider.update("id", _props(), _props(deployment="next", rollout={"strategy": "allAtOnce"}))
    assert len(signed) == 1 + len(fake.requests)
