"""Cost of endpoints and accelerator pools: the arithmetic on small fixed price
tables, unknown prices, the report's Cost section, the sidecar beside the plan,
the plan diff's cost line, and the shipped price tables."""

from __future__ import annotations

import datetime
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import planned

from infra.settings import AcceleratorPoolSettings, EndpointSettings, PlatformSettings, load
from infra.settings.endpoints import EndpointAccelerator, ImageRef, ServedModel
from infra.settings.models import (
    AlertSettings,
    AuditSettings,
    LakeSettings,
    NetworkSettings,
    RegistrySettings,
)
from tools import plandiff, stackfiles
from tools.cost import PRICES_DIR, PriceTable, estimate, tpu_chips
from tools.plan import prune, write
from tools.plandiff.costs import cost_change
from tools.report import render

REGION = {"aws": "eu-west-1", "gcp": "europe-west4", "azure": "westeurope"}


def table(cloud: str, endpoint: dict[str, Any], pool: dict[str, Any]) -> PriceTable:
    """A small price table for one region: sections as in tools/prices/<cloud>.json."""
    region = REGION[cloud]
    return PriceTable.from_json(
        {
            "cloud": cloud,
            "currency": "USD",
            "taken": "2026-11-28",
            "source": "https://example.invalid/prices",
            "endpoint": {
                "service": "serving",
                "source": "https://example.invalid/serving",
                "regions": {region: endpoint},
                "missing": {region: {"ml.unpriced": "not published"}},
            },
            "pool": {
                "service": "compute",
                "source": "https://example.invalid/compute",
                "regions": {region: pool},
                "missing": {region: {"spot": "spot prices move"}},
            },
        },
        "tools/prices/test.json",
    )


def endpoint(
    instance_type: str, replicas: tuple[int, int], accelerator: tuple[str, int] | None = None
) -> EndpointSettings:
    return EndpointSettings(
        model=ServedModel(image=ImageRef(repository="serving", tag="1.0")),
        instance_type=instance_type,
        accelerator=EndpointAccelerator(type=accelerator[0], count=accelerator[1])
        if accelerator
        else None,
        min_replicas=replicas[0],
        max_replicas=replicas[1],
    )


def settings(
    cloud: str,
    endpoints: dict[str, EndpointSettings] | None = None,
    pools: dict[str, AcceleratorPoolSettings] | None = None,
) -> PlatformSettings:
    return PlatformSettings(
        stack=f"{cloud}-cost",
        stack_file=f"stacks/Pulumi.{cloud}-cost.yaml",
        cloud=cloud,
        environment="dev",
        region=REGION[cloud],
        owner="ml-platform",
        cost_center="ml-research",
        lake=LakeSettings(),
        registries=RegistrySettings(),
        network=NetworkSettings(),
        endpoints=endpoints or {},
        alerts=AlertSettings(),
        audit=AuditSettings(),
        accelerator_pools=pools or {},
    )


AWS = table(
    "aws",
    {"machines": {"ml.small": {"onDemand": 0.5}, "ml.one": {"onDemand": 1.0}}},
    {
        "machines": {
            "g.big": {"onDemand": 1.25},
            "g.spot": {"onDemand": 1.0, "spot": 0.3},
            "g.nospot": {"onDemand": 2.0},
        }
    },
)
GCP = table(
    "gcp",
    {
        "machines": {"g2-standard-8": {"onDemand": 0.8}},
        "accelerators": {"NVIDIA_L4": {"onDemand": 0.6}},
    },
    {
        "machines": {"n1-standard-8": {"onDemand": 0.4, "spot": 0.1}},
        "accelerators": {"nvidia-tesla-t4": {"onDemand": 0.35, "spot": 0.1}},
        "tpuChips": {"v5litepod": {"onDemand": 1.2, "spot": 0.5}},
    },
)


def by_name(report: Any) -> dict[str, Any]:
    return {line.name: line for line in report.lines}


# --- arithmetic ---------------------------------------------------------------------


def test_endpoint_and_pool_at_min_and_max_scale() -> None:
    report = estimate(
        settings(
            "aws",
            {"churn": endpoint("ml.small", (2, 6))},
            {"train": AcceleratorPoolSettings(kind="gpu", type="g.big", min_nodes=0, max_nodes=4)},
        ),
        AWS,
    )
    churn, train = report.lines  # sorted: endpoints, then pools
    assert (churn.name, churn.kind, train.name, train.kind) == (
        "churn",
        "endpoint",
        "train",
        "pool",
    )
    # 2 x $0.50 x 730 h and 6 x $0.50 x 730 h.
    assert (churn.on_demand_hourly, churn.monthly_at_min, churn.monthly_at_max) == (
        0.5,
        730.0,
        2190.0,
    )
    # Idle at 0 nodes costs nothing; 4 x $1.25 x 730 h at max.
    assert (train.monthly_at_min, train.monthly_at_max) == (0.0, 3650.0)
    assert (report.at_min.amount, report.at_min.partial) == (730.0, False)
    assert (report.at_max.amount, report.at_max.partial) == (5840.0, False)
    assert report.missing == []


def test_gcp_nodes_are_machine_plus_accelerators() -> None:
    pool = AcceleratorPoolSettings(
        kind="gpu",
        type="n1-standard-8",
        accelerator=EndpointAccelerator(type="nvidia-tesla-t4", count=4),
        min_nodes=1,
        max_nodes=2,
    )
    report = estimate(
        settings(
            "gcp",
            {"churn": endpoint("g2-standard-8", (1, 3), ("NVIDIA_L4", 2))},
            {"batch": pool},
        ),
        GCP,
    )
    lines = by_name(report)
    # $0.80 + 2 x $0.60 = $2.00 a replica hour: 1 x 730 h and 3 x 730 h.
    churn = lines["churn"]
    assert (churn.accelerator, churn.on_demand_hourly) == ("2 x NVIDIA_L4", 2.0)
    assert (churn.monthly_at_min, churn.monthly_at_max) == (1460.0, 4380.0)
    # $0.40 + 4 x $0.35 = $1.80 a node hour.
    batch = lines["batch"]
    assert (batch.on_demand_hourly, batch.monthly_at_min, batch.monthly_at_max) == (
        1.8,
        1314.0,
        2628.0,
    )
    assert (report.at_min.amount, report.at_max.amount) == (2774.0, 7008.0)


def test_tpu_slices_are_priced_per_chip() -> None:
    pools = {
        "tpu": AcceleratorPoolSettings(kind="tpu", type="v5litepod-8", min_nodes=1, max_nodes=2),
        "tpu-small": AcceleratorPoolSettings(
            kind="tpu", type="v5litepod-8", topology="2x2", min_nodes=0, max_nodes=1
        ),
    }
    lines = by_name(estimate(settings("gcp", pools=pools), GCP))
    # v5litepod-8: 8 chips x $1.20 = $9.60 a slice hour; 1 and 2 slices x 730 h.
    tpu = lines["tpu"]
    assert (tpu.accelerator, tpu.on_demand_hourly) == ("8 TPU v5litepod chips", 9.6)
    assert (tpu.monthly_at_min, tpu.monthly_at_max) == (7008.0, 14016.0)
    # The topology names the chips: 2x2 = 4 chips x $1.20.
    assert (lines["tpu-small"].on_demand_hourly, lines["tpu-small"].monthly_at_max) == (4.8, 3504.0)


@pytest.mark.parametrize(
    ("tpu_type", "topology", "chips"),
    [
        ("v5litepod-8", None, 8),
        ("v5litepod-16", "4x4", 16),
        ("v6e-4", None, 4),
        ("v4-8", None, 4),  # v4 and v5p types count TensorCores, two a chip
        ("v5p-16", None, 8),
        ("v4-32", "2x2x4", 16),
    ],
)
def test_tpu_chips_from_type_or_topology(tpu_type: str, topology: str | None, chips: int) -> None:
    assert tpu_chips(tpu_type, topology) == chips


def test_a_tpu_type_without_its_size_is_refused() -> None:
    with pytest.raises(ValueError, match="'v5litepod' does not end in its size"):
        tpu_chips("v5litepod", None)


def test_spot_pools_are_priced_at_the_spot_rate() -> None:
    pools = {
        "cheap": AcceleratorPoolSettings(
            kind="gpu", type="g.spot", spot=True, min_nodes=2, max_nodes=5
        ),
        "full": AcceleratorPoolSettings(kind="gpu", type="g.spot", min_nodes=2, max_nodes=5),
    }
    lines = by_name(estimate(settings("aws", pools=pools), AWS))
    cheap = lines["cheap"]
    # 2 x $0.30 x 730 h and 5 x $0.30 x 730 h; on-demand is still shown.
    assert (cheap.on_demand_hourly, cheap.spot_hourly, cheap.hourly) == (1.0, 0.3, 0.3)
    assert (cheap.monthly_at_min, cheap.monthly_at_max) == (438.0, 1095.0)
    assert cheap.spot_discount == pytest.approx(0.7)
    assert cheap.as_json()["spotDiscount"] == 0.7
    # The same type on-demand: 2 x $1.00 x 730 h.
    assert (lines["full"].hourly, lines["full"].monthly_at_min) == (1.0, 1460.0)
    # GCP: machine and accelerators at their spot rates: 8 chips x $0.50.
    tpu = AcceleratorPoolSettings(kind="tpu", type="v5litepod-8", spot=True, max_nodes=1)
    (line,) = estimate(settings("gcp", pools={"tpu": tpu}), GCP).lines
    assert (line.spot_hourly, line.monthly_at_max) == (4.0, 2920.0)


# --- unknown prices -------------------------------------------------------------------


def test_an_unknown_price_is_unknown_never_zero_and_totals_are_partial() -> None:
    pools = {
        "idle": AcceleratorPoolSettings(kind="gpu", type="g.unlisted", min_nodes=0, max_nodes=3),
        "spotless": AcceleratorPoolSettings(
            kind="gpu", type="g.nospot", spot=True, min_nodes=1, max_nodes=1
        ),
    }
    report = estimate(
        settings(
            "aws",
            {"known": endpoint("ml.one", (1, 2)), "unpriced": endpoint("ml.unpriced", (1, 2))},
            pools,
        ),
        AWS,
    )
    lines = by_name(report)
    unpriced = lines["unpriced"]
    assert (unpriced.on_demand_hourly, unpriced.monthly_at_min, unpriced.monthly_at_max) == (
        None,
        None,
        None,
    )
    assert unpriced.as_json()["monthlyAtMin"] is None
    # A pool of unknown price costs nothing idle, and is unknown once it runs.
    assert (lines["idle"].monthly_at_min, lines["idle"].monthly_at_max) == (0.0, None)
    # A spot pool without a spot price is unknown, though its on-demand price is known.
    spotless = lines["spotless"]
    assert (spotless.on_demand_hourly, spotless.spot_hourly, spotless.monthly_at_max) == (
        2.0,
        None,
        None,
    )
    # Totals add what is known (1 x $1.00 x 730 h, 2 x $1.00 x 730 h) and say they are partial.
    assert (report.at_min.amount, report.at_min.partial) == (730.0, True)
    assert (report.at_max.amount, report.at_max.partial) == (1460.0, True)
    assert report.missing == [
        "`g.nospot` (pool prices) in eu-west-1, spot: spot prices move",
        "`g.unlisted` (pool prices) in eu-west-1: not in the price table",
        "`ml.unpriced` (endpoint prices) in eu-west-1: not published",
    ]
    total = report.as_json()["total"]
    assert total == {
        "missing": report.missing,
        "monthlyAtMax": 1460.0,
        "monthlyAtMin": 730.0,
        "partialAtMax": True,
        "partialAtMin": True,
    }


def test_totals_with_no_known_running_line_are_unknown() -> None:
    report = estimate(settings("aws", {"unpriced": endpoint("ml.unpriced", (1, 2))}), AWS)
    assert (report.at_min.amount, report.at_max.amount) == (None, None)
    assert report.as_json()["total"]["monthlyAtMin"] is None
    # Nothing to price is a complete $0.
    empty = estimate(settings("aws"), AWS)
    assert (empty.at_min.amount, empty.at_min.partial, empty.lines) == (0.0, False, ())


def test_the_cost_section_shows_unknown_prices_and_partial_totals() -> None:
    from tools.report import _cost

    report = estimate(
        settings(
            "aws",
            {"known": endpoint("ml.one", (1, 2)), "unpriced": endpoint("ml.unpriced", (1, 2))},
            {"cheap": AcceleratorPoolSettings(kind="gpu", type="g.spot", spot=True, max_nodes=2)},
        ),
        AWS,
    )
    text = "\n".join(_cost(report))
    assert "| `unpriced` | endpoint | `ml.unpriced` | 1 to 2 | price unknown | — " in text
    assert "| price unknown | price unknown |" in text
    assert "| `known` | endpoint | `ml.one` | 1 to 2 | $1.0000 | — | $730.00 | $1,460.00 |" in text
    assert (
        "| `cheap` | pool | `g.spot` | 0 to 2 | $1.0000 | $0.3000 (70% off) | $0.00 | $438.00 |"
    ) in text
    assert (
        "**Total a month: at least $730.00 (partial) at min scale, "
        "at least $1,898.00 (partial) at max scale.**"
    ) in text
    assert "- `ml.unpriced` (endpoint prices) in eu-west-1: not published" in text
    assert (
        "Prices: `tools/prices/test.json`, taken 2026-11-28, from https://example.invalid/prices."
    ) in text
    assert "- pool prices: compute, https://example.invalid/compute" in text


def test_a_bad_price_table_is_refused_with_its_key_path() -> None:
    good = json.loads((PRICES_DIR / "aws.json").read_text(encoding="utf-8"))
    bad = json.loads(json.dumps(good))
    bad["pool"]["regions"]["eu-west-1"]["machines"]["g5.xlarge"]["onDemand"] = -1
    with pytest.raises(
        ValueError, match=r"pool\.regions\.eu-west-1\.machines\.g5\.xlarge\.onDemand"
    ):
        PriceTable.from_json(bad, "aws.json")
    del bad["taken"]
    with pytest.raises(ValueError, match="`taken` must be a non-empty string"):
        PriceTable.from_json(bad, "aws.json")
    with pytest.raises(ValueError, match="is for aws, not gcp"):
        estimate(settings("gcp"), PriceTable.from_json(good, "aws.json"))


# --- the report and the sidecar -------------------------------------------------------


def test_the_report_has_a_cost_section_after_endpoints() -> None:
    plan = planned("aws-prod")
    text = render(plan)
    assert text.index("### Endpoints") < text.index("### Cost") < text.index("### Stateful")
    section = text[text.index("### Cost") : text.index("### Stateful")]
    for name, e in plan.settings.endpoints.items():
        row = (
            f"| `{name}` | endpoint | `{e.instance_type}` | {e.min_replicas} to {e.max_replicas} |"
        )
        assert row in section
    shipped = json.loads((PRICES_DIR / "aws.json").read_text(encoding="utf-8"))
    assert f"Prices: `tools/prices/aws.json`, taken {shipped['taken']}" in section
    assert shipped["pool"]["source"] in section
    assert "**Total a month: " in section


def test_write_puts_the_cost_beside_the_plan_and_leaves_the_plan_as_it_was(tmp_path: Path) -> None:
    plan = planned("aws-dev")
    write(plan, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "aws-dev.cost.json",
        "aws-dev.json",
        "aws-dev.md",
    ]
    figures = json.loads((tmp_path / "aws-dev.cost.json").read_text())
    assert figures == json.loads(json.dumps(estimate(plan.settings).as_json()))
    assert (figures["stack"], figures["hoursPerMonth"], figures["currency"]) == (
        "aws-dev",
        730,
        "USD",
    )
    assert set(figures["total"]) >= {"monthlyAtMin", "monthlyAtMax", "partialAtMin", "partialAtMax"}
    # The plan keeps the shape of `pulumi preview --json`.
    document = json.loads((tmp_path / "aws-dev.json").read_text())
    assert set(document) == {"changeSummary", "config", "policyViolations", "steps"}
    assert "### Cost" in (tmp_path / "aws-dev.md").read_text()
    # A gone stack's sidecar goes with its plan; a planned stack keeps its own.
    for suffix in ("json", "md", "cost.json"):
        (tmp_path / f"gone.{suffix}").write_text("{}")
    prune(tmp_path, ["aws-dev"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "aws-dev.cost.json",
        "aws-dev.json",
        "aws-dev.md",
    ]


# --- the plan diff ------------------------------------------------------------------

FAKE_PLANNER = '''
"""Stand-in for tools/plan.py: each stack file holds {"plan": ..., "cost": ...} as JSON."""
import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True, type=Path)
parser.add_argument("--stack", action="append", default=[])
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
for stack in args.stack:
    held = json.loads(Path("stacks", f"Pulumi.{stack}.yaml").read_text())
    (args.out / f"{stack}.json").write_text(json.dumps(held["plan"]))
    if "cost" in held:
        (args.out / f"{stack}.cost.json").write_text(json.dumps(held["cost"]))
'''


def one_resource_plan(stack: str) -> dict[str, Any]:
    urn = f"urn:pulumi:{stack}::mlops::aws:iam/role:Role::reader"
    state = {"type": "aws:iam/role:Role", "urn": urn, "inputs": {"name": "reader"}, "parent": ""}
    return {
        "changeSummary": {"create": 1},
        "steps": [{"op": "create", "urn": urn, "newState": state}],
    }


def cost_of(cloud: str, max_replicas: int) -> dict[str, Any]:
    if cloud == "aws":
        churn = endpoint("ml.one", (1, max_replicas))
    else:
        churn = endpoint("g2-standard-8", (1, max_replicas), ("NVIDIA_L4", 2))
    return estimate(settings(cloud, {"churn": churn}), {"aws": AWS, "gcp": GCP}[cloud]).as_json()


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=ci", "-c", "user.email=ci@example.invalid"]
    subprocess.run(["git", "-C", str(repo), *identity, *args], check=True, capture_output=True)


def hold(repo: Path, stack: str, cost: dict[str, Any] | None) -> None:
    held: dict[str, Any] = {"plan": one_resource_plan(stack)}
    if cost is not None:
        held["cost"] = cost
    (repo / "stacks" / f"Pulumi.{stack}.yaml").write_text(json.dumps(held), encoding="utf-8")


def test_the_plan_diff_shows_the_cost_change_of_more_max_replicas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    (repo / "stacks").mkdir()
    (repo / "tools" / "__init__.py").write_text("")
    (repo / "tools" / "plan.py").write_text(textwrap.dedent(FAKE_PLANNER))
    (repo / ".gitignore").write_text("build/\n")
    hold(repo, "aws-dev", cost_of("aws", max_replicas=2))
    hold(repo, "gcp-dev", None)  # planned before the planner wrote costs
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "base")
    hold(repo, "aws-dev", cost_of("aws", max_replicas=4))
    hold(repo, "gcp-dev", cost_of("gcp", max_replicas=2))
    hold(repo, "aws-new-dev", cost_of("aws", max_replicas=3))

    out = repo / "build" / "plan-diff"
    status = plandiff.main(["--base", "main", "--out", str(out)], root=repo, stateful=frozenset())
    assert status == 0
    printed = capsys.readouterr().out.splitlines()
    # $1.00 an hour: 1 x 730 h at min; 2 x 730 h at base's max, 4 x 730 h at head's.
    assert (
        "aws-dev: no changes, 1 resources, +0 -0 ~0, 0 warning(s), "
        "policy 0 mandatory / 0 advisory, cost a month: min $730.00 → $730.00 (+$0.00), "
        "max $1,460.00 → $2,920.00 (+$1,460.00)"
    ) in printed
    # A new stack starts from nothing.
    assert any(
        line.startswith("aws-new-dev: new stack")
        and line.endswith(
            "cost a month: min $0.00 → $730.00 (+$730.00), max $0.00 → $2,190.00 (+$2,190.00)"
        )
        for line in printed
    ), printed
    # ($0.80 + 2 x $0.60) = $2.00 an hour; the base wrote no cost figures.
    assert any(
        line.startswith("gcp-dev: no changes")
        and line.endswith("cost a month: cost of base unknown; head min $1,460.00, max $2,920.00")
        for line in printed
    ), printed
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "### Monthly cost" in report
    assert (
        "| `aws-dev` | $730.00 → $730.00 (+$0.00) | $1,460.00 → $2,920.00 (+$1,460.00) |"
    ) in report
    assert (
        "| `gcp-dev` | cost of base unknown; head $1,460.00 "
        "| cost of base unknown; head $2,920.00 |"
    ) in report
    assert report.index("| Stack | Status |") < report.index("### Monthly cost")


def test_a_partial_or_unknown_cost_is_never_shown_as_a_plain_change() -> None:
    unknown = {"currency": "USD", "total": {"monthlyAtMin": None, "monthlyAtMax": None}}
    partial = {
        "currency": "USD",
        "total": {
            "monthlyAtMin": 730.0,
            "monthlyAtMax": 1460.0,
            "partialAtMin": True,
            "partialAtMax": True,
        },
    }
    change = cost_change(partial, unknown, new_stack=False)
    assert change is not None
    line = plandiff.summary_line(
        plandiff.StackDiff("aws-dev", plandiff.STATUS_UNCHANGED, 1, cost=change)
    )
    assert line.endswith(
        "cost a month: min at least $730.00 → price unknown (change unknown), "
        "max at least $1,460.00 → price unknown (change unknown)"
    )
    change = cost_change(partial, partial, new_stack=False)
    assert change is not None
    assert plandiff.summary_line(
        plandiff.StackDiff("aws-dev", plandiff.STATUS_UNCHANGED, 1, cost=change)
    ).endswith(
        "min at least $730.00 → at least $730.00 (+$0.00, partial), "
        "max at least $1,460.00 → at least $1,460.00 (+$0.00, partial)"
    )
    # Without cost figures at head (a real preview) the line says nothing of cost.
    assert cost_change(partial, None, new_stack=False) is None


# --- the shipped price tables -----------------------------------------------------------


def numbers(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in numbers(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in numbers(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_the_shipped_price_tables_say_where_and_when_and_hold_prices(cloud: str) -> None:
    raw = json.loads((PRICES_DIR / f"{cloud}.json").read_text(encoding="utf-8"))
    assert raw["cloud"] == cloud and raw["currency"] == "USD"
    datetime.date.fromisoformat(raw["taken"])
    assert raw["source"].startswith("https://")
    for role in ("endpoint", "pool"):
        assert raw[role]["source"].startswith("https://"), role
        assert raw[role]["service"], role
        if "asOf" in raw[role]:
            datetime.date.fromisoformat(raw[role]["asOf"])
    assert raw["refresh"], "say how to refresh the table"
    for path, value in numbers(raw):
        assert value >= 0, f"{cloud}.json{path} is negative"
    table = PriceTable.from_json(raw, f"tools/prices/{cloud}.json")
    # A type is either priced or listed as missing with a reason, not both.
    for catalog in (table.endpoint, table.pool):
        for region, sections in catalog.regions.items():
            priced = {key for types in sections.values() for key in types}
            assert not priced & set(catalog.missing.get(region, {})), (cloud, region)


@pytest.mark.parametrize("stack", stackfiles.stack_names())
def test_every_shipped_stack_type_is_priced_or_said_missing(stack: str) -> None:
    found = load(stack, stackfiles.as_engine_strings(stackfiles.stack_values(stack)))
    for line in estimate(found).lines:
        for missing in line.missing:
            assert "not in the price table" not in missing, (
                f"{stack}: {missing}; add its price to tools/prices/{found.cloud}.json, or "
                "list it under `missing` with why it has none"
            )
