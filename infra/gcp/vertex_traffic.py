"""A Vertex AI endpoint's traffic split during a rollout: whole percents keyed
by deployed model ID that always add up to 100."""

from __future__ import annotations

from typing import Any


def apportion(weights: dict[str, int], total: int) -> dict[str, int]:
    """`total` percent shared among `weights`' keys in proportion to their weights
    (equally when all are zero), as whole percents that add up to `total`: each
    gets its share rounded down, and the largest remainders one percent more."""
    if not weights:
        return {}
    if not any(weights.values()):
        weights = dict.fromkeys(weights, 1)
    whole_ = sum(weights.values())
    shares = {key: divmod(total * weight, whole_) for key, weight in weights.items()}
    short = total - sum(share for share, _rest in shares.values())
    lucky = sorted(shares, key=lambda key: (-shares[key][1], key))[:short]
    return {key: share + (key in lucky) for key, (share, _rest) in shares.items()}


def shifted(before: dict[str, int], newcomer: str, percent: int) -> dict[str, int]:
    """The split giving `newcomer` `percent` of the traffic while the models that
    served before keep the rest in their old proportions."""
    split = {newcomer: percent, **apportion(before, 100 - percent)}
    return {key: share for key, share in split.items() if share > 0}


def serving(endpoint: dict[str, Any]) -> dict[str, int]:
    """The deployed models that take traffic now, with their shares."""
    split = endpoint.get("trafficSplit") or {}
    return {key: int(share) for key, share in split.items() if int(share) > 0}


def deployed_ids(endpoint: dict[str, Any]) -> set[str]:
    return {str(model.get("id")) for model in endpoint.get("deployedModels", [])}


def serving_besides(endpoint: dict[str, Any], deployed_id: str) -> dict[str, int]:
    """The split among the models serving now other than `deployed_id`, made up
    to 100 in their proportions: what to go back to if `deployed_id` fails."""
    split = serving(endpoint)
    split.pop(deployed_id, None)
    return apportion(split, 100)


def stages(rollout: dict[str, Any] | None, has_traffic: bool) -> list[int]:
    """The new model's share of traffic at each step, ending at 100. An endpoint
    that serves nothing yet has nothing to compare against: all at once."""
    rollout = rollout or {}
    strategy = rollout.get("strategy", "allAtOnce")
    if not has_traffic or strategy == "allAtOnce":
        return [100]
    if strategy == "canary":
        return [int(rollout["canaryPercent"]), 100]
    step = int(rollout["linearStepPercent"])
    return [*range(step, 100, step), 100]
