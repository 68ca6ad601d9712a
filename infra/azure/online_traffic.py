"""Send all of an Azure ML managed online endpoint's traffic to one deployment,
in steps that each bake against that deployment's own metrics.

Why a dynamic resource: the endpoint's `traffic` map names deployments, which
are created after the endpoint (an azure-native `OnlineEndpoint` would need them
at creation), and ARM's PATCH of an online endpoint takes only tags, identity
and sku, never `properties.traffic`. So this resource reads the endpoint, sets
`properties.traffic` in what it read and PUTs the whole of it back, following
the long-running operation (`Online Endpoints - Create Or Update`,
api-version 2025-12-01, the one azure-native's default module uses).

What it guarantees, on create and on every update:

- The endpoint ends with `{deployment: 100}`. If it is there already nothing is
  written; if no other deployment has traffic, or the strategy is `allAtOnce`,
  it goes there in one step.
- `canary`: `deployment` first gets `canaryPercent`, the deployments that had
  traffic keep the rest in their former proportions (whole percents summing to
  100), then it bakes `waitMinutes`, then 100. `linear`: steps of
  `linearStepPercent`, a bake at each. Steps at or below the share `deployment`
  already has are skipped.
- A bake reads Azure Monitor's metrics of the endpoint, filtered to
  `deployment`, once a minute: `errorsPerMinute` bounds its 5xx responses
  (`RequestsPerMinute` where `statusCodeClass` is 5xx), `latencyP99Ms` its
  `RequestLatency_P99`; a minute above either bound is a breach, a minute
  without requests is none. Azure Monitor ingests metrics a few minutes late,
  so a bake shorter than that judges little.
- On a breach, or any failure once traffic has moved, the traffic goes back
  to the map found at the start and the deployment fails, naming the metric,
  its value and the bound.
- Deployments at 0 % are left out of the maps written: ARM asks only that the
  values sum to 100, and routes nothing to a deployment the map leaves out.

`endpoint_revision` is an opaque string the caller changes whenever it changes
the endpoint resource itself: azure-native PUTs the whole endpoint, which may
reset its traffic, and a new revision makes this resource route it again.

Deleting it changes nothing: the endpoint and its deployments go with their own
resources, and an endpoint left behind keeps routing as it last did.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi
from pulumi import dynamic
from pulumi.runtime.rpc import UNKNOWN

from infra.azure.arm import ArmProvider
from infra.engine_values import whole

STRATEGIES = ("allAtOnce", "canary", "linear")
# Each rollout key with the smallest and largest value it takes.
ROLLOUT_BOUNDS: dict[str, tuple[int, int | None]] = {
    "canaryPercent": (1, 99),
    "linearStepPercent": (1, 99),
    "waitMinutes": (0, 1440),
}
# Which rollout keys each strategy needs besides `strategy`.
ROLLOUT_NEEDS = {
    "allAtOnce": (),
    "canary": ("canaryPercent", "waitMinutes"),
    "linear": ("linearStepPercent", "waitMinutes"),
}
# Each alarm: the endpoint metric it bounds and the dimension filter that narrows
# it beyond the deployment (metric names and dimensions as Azure Monitor lists
# them for Microsoft.MachineLearningServices/workspaces/onlineEndpoints).
ALARMS = {
    "errorsPerMinute": ("RequestsPerMinute", "statusCodeClass eq '5xx'"),
    "latencyP99Ms": ("RequestLatency_P99", ""),
}
ALARM_BOUNDS: dict[str, tuple[int, int | None]] = {
    "errorsPerMinute": (0, None),
    "latencyP99Ms": (1, None),
}
# Inputs whose change routes the traffic again; only another endpoint replaces.
INPUTS = ("endpointId", "deployment", "endpointRevision", "rollout", "alarms")


def _bounded(path: str, value: Any, low: int, high: int | None = None) -> list[tuple[str, str]]:
    number = whole(value)
    if value == UNKNOWN or (
        number is not None and low <= number and (high is None or number <= high)
    ):
        return []
    upto = f" to {high}" if high is not None else " or more"
    return [(path, f"must be a whole number from {low}{upto}, not {value!r}")]


def _object_problems(
    name: str,
    value: Any,
    bounds: Mapping[str, tuple[int, int | None]],
    needs: tuple[str, ...],
    why: str,
) -> list[tuple[str, str]]:
    """An object's unknown keys, missing keys (needed `why`) and numbers out of bounds."""
    if not isinstance(value, Mapping):
        return [(name, f"must be an object, not {value!r}")]
    found = [
        (f"{name}.{key}", f"is not one of {', '.join(bounds)}")
        for key in sorted(set(value) - set(bounds))
    ]
    found += [(f"{name}.{key}", f"is required {why}") for key in needs if key not in value]
    for key, (low, high) in bounds.items():
        if key in value:
            found += _bounded(f"{name}.{key}", value[key], low, high)
    return found


def problems(rollout: Any, alarms: Any) -> list[tuple[str, str]]:
    """What is wrong with `rollout` and `alarms`, each as (key path, reason)."""
    if UNKNOWN in (rollout, alarms):
        return []
    found: list[tuple[str, str]] = []
    strategy = rollout.get("strategy") if isinstance(rollout, Mapping) else UNKNOWN
    if strategy not in (*STRATEGIES, UNKNOWN):
        choices = ", ".join(STRATEGIES)
        found.append(("rollout.strategy", f"must be one of {choices}, not {strategy!r}"))
    if isinstance(rollout, Mapping):
        rollout = {key: value for key, value in rollout.items() if key != "strategy"}
    why = f"by the {strategy} strategy"
    needs = ROLLOUT_NEEDS.get(strategy, ()) if isinstance(strategy, str) else ()
    found += _object_problems("rollout", rollout, ROLLOUT_BOUNDS, needs, why)
    baked = tuple(ALARM_BOUNDS) if strategy in ("canary", "linear") else ()
    found += _object_problems("alarms", alarms, ALARM_BOUNDS, baked, why)
    return found


def shares(rollout: Mapping[str, Any], current: int) -> list[int]:
    """The percents `deployment` goes through, from above `current` to 100."""
    strategy = rollout["strategy"]
    planned: list[int] = []
    if strategy == "canary":
        planned = [whole(rollout["canaryPercent"]) or 100]
    elif strategy == "linear":
        step = whole(rollout["linearStepPercent"]) or 100
        planned = list(range(step, 100, step))
    return [share for share in planned if share > current] + [100]


def split(deployment: str, share: int, others: Mapping[str, int]) -> dict[str, int]:
    """`share` to `deployment`, the rest to `others` in proportion to their weights,
    in whole percents summing to 100 (largest remainders round up); zeros left out."""
    rest, total = 100 - share, sum(others.values())
    floors = {name: rest * weight // total for name, weight in others.items()}
    remainders = {name: rest * weight % total for name, weight in others.items()}
    left = rest - sum(floors.values())
    for name in sorted(others, key=lambda name: (-remainders[name], name))[:left]:
        floors[name] += 1
    traffic = {deployment: share, **floors}
    return {name: percent for name, percent in traffic.items() if percent > 0}


def traffic_of(endpoint: Mapping[str, Any]) -> dict[str, int]:
    routes = (endpoint.get("properties") or {}).get("traffic") or {}
    return {str(name): int(percent) for name, percent in routes.items()}


def routed(traffic: Mapping[str, int]) -> dict[str, int]:
    """The deployments that receive traffic: a 0 % entry routes nothing."""
    return {name: percent for name, percent in traffic.items() if percent}


class OnlineTrafficProvider(ArmProvider):
    """Routes an online endpoint's traffic through `ArmProvider`'s retries and
    operation polling; bakes against Azure Monitor's metrics API."""

    api_version = "2025-12-01"
    metrics_api_version = "2023-10-01"
    # A rollout waits whole minutes; tests shrink the minute.
    minute_seconds = 60.0
    # Metrics come at one-minute grain: reading them more often tells nothing new.
    check_seconds = 60.0

    def endpoint_url(self, endpoint_id: str) -> str:
        return f"{self.endpoint}{endpoint_id}?api-version={self.api_version}"

    def route(self, endpoint_id: str, traffic: Mapping[str, int]) -> dict[str, int]:
        """Make the endpoint route `traffic`, keeping everything else it has;
        returns the traffic ARM reports afterwards."""
        url = self.endpoint_url(endpoint_id)
        _code, _headers, endpoint = self.request("GET", url)
        if routed(traffic_of(endpoint)) == routed(traffic):
            return traffic_of(endpoint)
        endpoint.setdefault("properties", {})["traffic"] = dict(traffic)
        code, headers, _body = self.request("PUT", url, endpoint)
        self.wait(code, headers)
        _code, _headers, endpoint = self.request("GET", url)
        applied = traffic_of(endpoint)
        if routed(applied) != routed(traffic):
            raise RuntimeError(
                f"{endpoint_id} routes {applied} after the update to {dict(traffic)}"
            )
        return applied

    def worst(self, endpoint_id: str, metric: str, where: str, since: datetime) -> float | None:
        """The highest one-minute average of `metric` since `since`, or None
        without data."""
        start = since.replace(second=0, microsecond=0)
        end = max(datetime.now(UTC), start + timedelta(minutes=1))
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        query = {
            "api-version": self.metrics_api_version,
            "metricnames": metric,
            "aggregation": "Average",
            "interval": "PT1M",
            "timespan": f"{start.strftime(stamp)}/{end.strftime(stamp)}",
            "$filter": where,
        }
        encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="$")
        url = f"{self.endpoint}{endpoint_id}/providers/Microsoft.Insights/metrics?{encoded}"
        _code, _headers, body = self.request("GET", url)
        values = []
        for series in body.get("value") or []:
            if series.get("errorCode") not in (None, "Success"):
                raise RuntimeError(f"{metric} of {endpoint_id}: {series.get('errorMessage')}")
            for points in series.get("timeseries") or []:
                values += [
                    p["average"] for p in points.get("data") or [] if p.get("average") is not None
                ]
        return max(values, default=None)

    def check_alarms(
        self, endpoint_id: str, deployment: str, alarms: Mapping[str, Any], since: datetime
    ) -> None:
        for key, (metric, narrower) in ALARMS.items():
            where = " and ".join(filter(None, [f"deployment eq '{deployment}'", narrower]))
            bound = whole(alarms[key])
            value = self.worst(endpoint_id, metric, where, since)
            if value is not None and bound is not None and value > bound:
                raise RuntimeError(
                    f"deployment {deployment} breached alarm {key}: "
                    f"{metric} ({where}) reached {value:g}, above {bound}"
                )

    def bake(
        self, endpoint_id: str, deployment: str, minutes: int, alarms: Mapping[str, Any]
    ) -> None:
        """Wait `minutes`, checking the alarms once a check interval and at the end."""
        since = datetime.now(UTC)
        deadline = time.monotonic() + minutes * self.minute_seconds
        while True:
            time.sleep(max(0.0, min(self.check_seconds, deadline - time.monotonic())))
            self.check_alarms(endpoint_id, deployment, alarms, since)
            if time.monotonic() >= deadline:
                return

    def roll_out(self, props: Mapping[str, Any]) -> dict[str, int]:
        """Move the endpoint's traffic onto `deployment`; returns the final map."""
        endpoint_id, deployment = props["endpointId"], props["deployment"]
        rollout, alarms = props["rollout"], props["alarms"]
        _code, _headers, endpoint = self.request("GET", self.endpoint_url(endpoint_id))
        previous = traffic_of(endpoint)
        current = previous.get(deployment, 0)
        if current == 100:
            return previous
        others = {name: p for name, p in routed(previous).items() if name != deployment}
        steps = (
            [100] if rollout["strategy"] == "allAtOnce" or not others else shares(rollout, current)
        )
        applied = previous
        try:
            for share in steps:
                applied = self.route(endpoint_id, split(deployment, share, others))
                if share < 100:
                    self.bake(endpoint_id, deployment, whole(rollout["waitMinutes"]) or 0, alarms)
        except Exception as error:
            try:
                self.route(endpoint_id, previous)
            except Exception as undo:
                raise RuntimeError(
                    f"{error}; restoring the traffic {previous} failed: {undo}"
                ) from error
            raise RuntimeError(f"{error}; traffic restored to {previous}") from error
        return applied

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        failures = [
            dynamic.CheckFailure(path, reason)
            for path, reason in problems(news.get("rollout"), news.get("alarms"))
        ]
        return dynamic.CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        traffic = self.roll_out(props)
        return dynamic.CreateResult(
            id_=f"{props['endpointId']}/traffic", outs={**props, "traffic": traffic}
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        changed = [key for key in INPUTS if olds.get(key) != news.get(key)]
        return dynamic.DiffResult(
            changes=bool(changed),
            replaces=[key for key in changed if key == "endpointId"],
            delete_before_replace=False,
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        return dynamic.UpdateResult(outs={**news, "traffic": self.roll_out(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The endpoint and its deployments go with their own resources; an
        endpoint left behind keeps its last traffic. Nothing to undo."""


@dataclass(frozen=True)
class OnlineEndpointTrafficArgs:
    """Where the traffic goes and how it gets there.

    `rollout`: `{"strategy": "allAtOnce" | "canary" | "linear", "canaryPercent",
    "linearStepPercent", "waitMinutes"}`; `alarms`: `{"errorsPerMinute",
    "latencyP99Ms"}`, the bounds a bake holds `deployment` to.
    `endpoint_revision`: change it whenever the endpoint resource changes, so the
    traffic an endpoint PUT may have reset is routed again.
    """

    endpoint_id: pulumi.Input[str]
    deployment: pulumi.Input[str]
    rollout: pulumi.Input[Mapping[str, Any]]
    alarms: pulumi.Input[Mapping[str, Any]]
    endpoint_revision: pulumi.Input[str]


class OnlineEndpointTraffic(dynamic.Resource, module="azure", name="OnlineEndpointTraffic"):
    """The online endpoint `endpoint_id` sends all its traffic to `deployment`,
    rolled out as `rollout` says and rolled back when `alarms` go off."""

    traffic: pulumi.Output[dict[str, int]]

    def __init__(
        self,
        name: str,
        args: OnlineEndpointTrafficArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "endpointId": args.endpoint_id,
            "deployment": args.deployment,
            "rollout": args.rollout,
            "alarms": args.alarms,
            "endpointRevision": args.endpoint_revision,
            "traffic": None,
        }
        super().__init__(OnlineTrafficProvider(), name, props, opts)
