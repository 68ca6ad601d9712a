"""The monthly compute cost of a stack's endpoints and accelerator pools.

    estimate(settings) -> CostReport

Each endpoint replica and pool node is priced at its hourly rate from the
cloud's price table in `tools/prices/<cloud>.json`, times 730 hours a month, at
the stack's minimum and maximum scale. A spot pool is priced at its spot rate.
A GCP node is its machine plus its accelerators (each priced per accelerator);
a TPU slice is its per-chip price times its chips. A price the table lacks is
never taken as zero: the line says "price unknown" and the totals say they are
partial and name what is missing.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from infra.settings import AcceleratorPoolSettings, EndpointSettings, PlatformSettings

HOURS_PER_MONTH = 730
PRICES_DIR = Path(__file__).resolve().parent / "prices"
SECTIONS = ("machines", "accelerators", "tpuChips")
# TPU generations whose type names count TensorCores (v4-8 is 4 chips); the
# others (v5litepod-8, v6e-8) count chips.
TPU_CORES_PER_CHIP = {"v2": 2, "v3": 2, "v4": 2, "v5p": 2}

Kind = Literal["endpoint", "pool"]


# --- price tables -----------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """Hourly price of one unit (a machine, an accelerator, a TPU chip)."""

    on_demand: float | None
    spot: float | None = None


@dataclass(frozen=True)
class Catalog:
    """The prices of one service: what endpoints run on, or what pools run on."""

    service: str
    source: str
    as_of: str | None
    copied_from: str | None
    # region -> section (machines, accelerators, tpuChips) -> type -> rate
    regions: Mapping[str, Mapping[str, Mapping[str, Rate]]]
    # region -> type (or "spot") -> why the table has no price for it
    missing: Mapping[str, Mapping[str, str]]

    def rate(self, region: str, section: str, key: str) -> Rate | None:
        return self.regions.get(region, {}).get(section, {}).get(key)

    def why_missing(self, region: str, key: str) -> str:
        reasons = self.missing.get(region, {})
        return reasons.get(key) or "not in the price table"

    def describe(self) -> dict[str, Any]:
        found = {"service": self.service, "source": self.source}
        if self.as_of:
            found["asOf"] = self.as_of
        if self.copied_from:
            found["copiedFrom"] = self.copied_from
        return found


@dataclass(frozen=True)
class PriceTable:
    cloud: str
    currency: str
    taken: str
    source: str
    endpoint: Catalog
    pool: Catalog
    file: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any], file: str = "") -> PriceTable:
        where = file or "price table"
        for key in ("cloud", "currency", "taken", "source"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ValueError(f"{where}: `{key}` must be a non-empty string")
        return cls(
            cloud=data["cloud"],
            currency=data["currency"],
            taken=data["taken"],
            source=data["source"],
            endpoint=_catalog(data.get("endpoint"), f"{where}: endpoint"),
            pool=_catalog(data.get("pool"), f"{where}: pool"),
            file=file,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "endpoint": self.endpoint.describe(),
            "file": self.file,
            "pool": self.pool.describe(),
            "source": self.source,
            "taken": self.taken,
        }


def _price(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: must be a finite price of 0 or more, got {value!r}")
    return float(value)


def _rate(value: Any, where: str) -> Rate:
    if not isinstance(value, Mapping) or not set(value) <= {"onDemand", "spot"}:
        raise ValueError(f"{where}: must be an object with onDemand and/or spot")
    prices = {k: _price(v, f"{where}.{k}") for k, v in value.items()}
    return Rate(prices.get("onDemand"), prices.get("spot"))


def _catalog(data: Any, where: str) -> Catalog:
    if not isinstance(data, Mapping) or not isinstance(data.get("source"), str):
        raise ValueError(f"{where}: must be an object with a `source` URL")
    regions: dict[str, dict[str, dict[str, Rate]]] = {}
    for region, sections in (data.get("regions") or {}).items():
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"{where}.regions.{region}: unknown section {sorted(unknown)[0]!r}")
        regions[region] = {
            section: {
                key: _rate(value, f"{where}.regions.{region}.{section}.{key}")
                for key, value in types.items()
            }
            for section, types in sections.items()
        }
    return Catalog(
        service=str(data.get("service", "")),
        source=data["source"],
        as_of=data.get("asOf"),
        copied_from=data.get("copiedFrom"),
        regions=regions,
        missing={r: dict(reasons) for r, reasons in (data.get("missing") or {}).items()},
    )


@functools.cache
def load_table(cloud: str, folder: Path = PRICES_DIR) -> PriceTable:
    path = folder / f"{cloud}.json"
    try:
        shown = str(path.relative_to(PRICES_DIR.parent.parent))
    except ValueError:
        shown = str(path)
    return PriceTable.from_json(json.loads(path.read_text(encoding="utf-8")), shown)


# --- the estimate -------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One priced part of a replica or node: `units` of `key` from `section`."""

    section: str
    key: str
    units: int


@dataclass(frozen=True)
class CostLine:
    name: str
    kind: Kind
    type: str
    # What each replica or node carries, as shown: "1 x NVIDIA_L4", "8 TPU v5litepod chips".
    accelerator: str | None
    spot: bool
    min_count: int
    max_count: int
    # Per replica or node, per hour.
    on_demand_hourly: float | None
    spot_hourly: float | None
    missing: tuple[str, ...] = ()

    @property
    def hourly(self) -> float | None:
        """What a replica or node is billed per hour: the spot rate for spot pools."""
        return self.spot_hourly if self.spot else self.on_demand_hourly

    @property
    def spot_discount(self) -> float | None:
        """The spot rate's discount on on-demand, 0.48 for 48 % off."""
        if not self.spot or self.spot_hourly is None or not self.on_demand_hourly:
            return None
        return 1 - self.spot_hourly / self.on_demand_hourly

    def monthly(self, count: int) -> float | None:
        """The month at `count` replicas or nodes; none running costs nothing."""
        if count == 0:
            return 0.0
        hourly = self.hourly
        return None if hourly is None else round(hourly * count * HOURS_PER_MONTH, 2)

    @property
    def monthly_at_min(self) -> float | None:
        return self.monthly(self.min_count)

    @property
    def monthly_at_max(self) -> float | None:
        return self.monthly(self.max_count)

    def as_json(self) -> dict[str, Any]:
        discount = self.spot_discount
        return {
            "accelerator": self.accelerator,
            "kind": self.kind,
            "maxCount": self.max_count,
            "minCount": self.min_count,
            "missing": list(self.missing),
            "monthlyAtMax": self.monthly_at_max,
            "monthlyAtMin": self.monthly_at_min,
            "name": self.name,
            "onDemandHourly": self.on_demand_hourly,
            "spot": self.spot,
            "spotDiscount": None if discount is None else round(discount, 4),
            "spotHourly": self.spot_hourly,
            "type": self.type,
        }


@dataclass(frozen=True)
class Total:
    """The month at one scale: the sum of the known lines, and whether any is unknown.
    `amount` is None when no line that runs at this scale has a price."""

    amount: float | None
    partial: bool


@dataclass(frozen=True)
class CostReport:
    stack: str
    cloud: str
    region: str
    prices: PriceTable
    lines: tuple[CostLine, ...]

    @property
    def currency(self) -> str:
        return self.prices.currency

    def _total(self, scale: Literal["min", "max"]) -> Total:
        running = [
            line.monthly(line.min_count if scale == "min" else line.max_count)
            for line in self.lines
            if (line.min_count if scale == "min" else line.max_count) > 0
        ]
        known = [v for v in running if v is not None]
        if running and not known:
            return Total(None, True)
        return Total(round(sum(known), 2), len(known) < len(running))

    @property
    def at_min(self) -> Total:
        return self._total("min")

    @property
    def at_max(self) -> Total:
        return self._total("max")

    @property
    def missing(self) -> list[str]:
        return sorted({m for line in self.lines for m in line.missing})

    def as_json(self) -> dict[str, Any]:
        """The sidecar `build/plan/<stack>.cost.json` (the plan diff reads `total`)."""
        at_min, at_max = self.at_min, self.at_max
        return {
            "cloud": self.cloud,
            "currency": self.currency,
            "hoursPerMonth": HOURS_PER_MONTH,
            "lines": [line.as_json() for line in self.lines],
            "prices": self.prices.describe(),
            "region": self.region,
            "stack": self.stack,
            "total": {
                "missing": self.missing,
                "monthlyAtMax": at_max.amount,
                "monthlyAtMin": at_min.amount,
                "partialAtMax": at_max.partial,
                "partialAtMin": at_min.partial,
            },
        }


def tpu_chips(tpu_type: str, topology: str | None) -> int:
    """Chips in one TPU slice: from its topology (2x4 = 8), else from its type's
    name (v5litepod-8 = 8 chips; v4-8 and v5p-8 count TensorCores, 2 a chip)."""
    if topology:
        return math.prod(int(d) for d in topology.split("x"))
    generation, _, size = tpu_type.rpartition("-")
    if not size.isdigit():
        raise ValueError(f"TPU type {tpu_type!r} does not end in its size (like v5litepod-8)")
    return max(1, int(size) // TPU_CORES_PER_CHIP.get(generation, 1))


def _endpoint_parts(endpoint: EndpointSettings) -> tuple[list[Part], str | None]:
    parts = [Part("machines", endpoint.instance_type, 1)]
    shown = None
    if endpoint.accelerator is not None:
        acc = endpoint.accelerator
        parts.append(Part("accelerators", acc.type, acc.count))
        shown = f"{acc.count} x {acc.type}"
    return parts, shown


def _pool_parts(pool: AcceleratorPoolSettings) -> tuple[list[Part], str | None]:
    if pool.kind == "tpu":
        generation = pool.type.rpartition("-")[0] or pool.type
        chips = tpu_chips(pool.type, pool.topology)
        return [Part("tpuChips", generation, chips)], f"{chips} TPU {generation} chips"
    parts = [Part("machines", pool.type, 1)]
    shown = None
    if pool.accelerator is not None:
        parts.append(Part("accelerators", pool.accelerator.type, pool.accelerator.count))
        shown = f"{pool.accelerator.count} x {pool.accelerator.type}"
    return parts, shown


def _price_parts(
    catalog: Catalog, kind: Kind, region: str, parts: list[Part], spot: bool
) -> tuple[float | None, float | None, tuple[str, ...]]:
    """(on-demand hourly, spot hourly or None, what is missing) of one replica or node."""
    on_demand: float | None = 0.0
    spot_hourly: float | None = 0.0 if spot else None
    missing = []
    for part in parts:
        rate = catalog.rate(region, part.section, part.key)
        where = f"`{part.key}` ({kind} prices) in {region}"
        if rate is None or rate.on_demand is None:
            missing.append(f"{where}: {catalog.why_missing(region, part.key)}")
            on_demand = None
        elif on_demand is not None:
            on_demand += rate.on_demand * part.units
        if not spot:
            continue
        if rate is None or rate.spot is None:
            if rate is not None:
                reason = catalog.missing.get(region, {}).get("spot") or "no spot price"
                missing.append(f"{where}, spot: {reason}")
            spot_hourly = None
        elif spot_hourly is not None:
            spot_hourly += rate.spot * part.units
    return on_demand, spot_hourly, tuple(missing)


def _priced(line: CostLine, parts: list[Part], catalog: Catalog, region: str) -> CostLine:
    on_demand, spot_hourly, missing = _price_parts(catalog, line.kind, region, parts, line.spot)
    return replace(
        line,
        on_demand_hourly=None if on_demand is None else round(on_demand, 6),
        spot_hourly=None if spot_hourly is None else round(spot_hourly, 6),
        missing=missing,
    )


def _endpoint_line(
    name: str, endpoint: EndpointSettings, catalog: Catalog, region: str
) -> CostLine:
    parts, shown = _endpoint_parts(endpoint)
    line = CostLine(
        name=name,
        kind="endpoint",
        type=endpoint.instance_type,
        accelerator=shown,
        spot=False,
        min_count=endpoint.min_replicas,
        max_count=endpoint.max_replicas,
        on_demand_hourly=None,
        spot_hourly=None,
    )
    return _priced(line, parts, catalog, region)


def _pool_line(name: str, pool: AcceleratorPoolSettings, catalog: Catalog, region: str) -> CostLine:
    parts, shown = _pool_parts(pool)
    line = CostLine(
        name=name,
        kind="pool",
        type=pool.type,
        accelerator=shown,
        spot=pool.spot,
        min_count=pool.min_nodes,
        max_count=pool.max_nodes,
        on_demand_hourly=None,
        spot_hourly=None,
    )
    return _priced(line, parts, catalog, region)


def estimate(settings: PlatformSettings, table: PriceTable | None = None) -> CostReport:
    """One line per endpoint and pool, sorted by kind then name."""
    prices = table or load_table(settings.cloud)
    if prices.cloud != settings.cloud:
        raise ValueError(f"price table {prices.file} is for {prices.cloud}, not {settings.cloud}")
    region = settings.region
    lines = [
        *(_endpoint_line(n, e, prices.endpoint, region) for n, e in settings.endpoints.items()),
        *(_pool_line(n, p, prices.pool, region) for n, p in settings.accelerator_pools.items()),
    ]
    ordered = tuple(sorted(lines, key=lambda line: (line.kind, line.name)))
    return CostReport(settings.stack, settings.cloud, region, prices, ordered)


# --- formatting -----------------------------------------------------------------------


def money(amount: float, currency: str = "USD", places: int = 2) -> str:
    sign = "-" if amount < 0 else ""
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{sign}{symbol}{abs(amount):,.{places}f}"


def signed(amount: float, currency: str = "USD") -> str:
    """A change of cost: +$10.00, -$5.00, +$0.00."""
    return ("-" if amount < 0 else "+") + money(abs(amount), currency)
