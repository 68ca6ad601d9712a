"""The monthly cost change of a stack, from the `<stack>.cost.json` files that
`tools.plan` writes beside each plan (see tools/cost.py).

Only the sidecar's `total` is read, so a base planned by an older planner still
compares as long as it wrote one; a base planned without one is "cost of base
unknown", never $0. A stack new at head starts from nothing: its base is $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tools.cost import money, signed


@dataclass(frozen=True)
class Scale:
    """The month at one scale; `amount` None: no running line has a price."""

    amount: float | None
    partial: bool

    def text(self, currency: str) -> str:
        if self.amount is None:
            return "price unknown"
        shown = money(self.amount, currency)
        return f"at least {shown}" if self.partial else shown


@dataclass(frozen=True)
class CostSide:
    currency: str
    at_min: Scale
    at_max: Scale


@dataclass(frozen=True)
class CostChange:
    head: CostSide
    # None: the base was planned without a cost sidecar.
    base: CostSide | None

    def scale(self, which: str) -> tuple[Scale | None, Scale]:
        head = self.head.at_min if which == "min" else self.head.at_max
        if self.base is None:
            return None, head
        return (self.base.at_min if which == "min" else self.base.at_max), head


NOTHING = Scale(0.0, False)


def read_cost(figures: Mapping[str, Any] | None) -> CostSide | None:
    """The totals of a cost sidecar, or None when there is none or it is unreadable."""
    if not isinstance(figures, Mapping) or not isinstance(figures.get("total"), Mapping):
        return None
    total = figures["total"]

    def scale(amount: str, partial: str) -> Scale:
        value = total.get(amount)
        known = isinstance(value, int | float) and not isinstance(value, bool)
        return Scale(float(value) if known else None, bool(total.get(partial)) or not known)

    return CostSide(
        currency=str(figures.get("currency") or "USD"),
        at_min=scale("monthlyAtMin", "partialAtMin"),
        at_max=scale("monthlyAtMax", "partialAtMax"),
    )


def cost_change(
    base: Mapping[str, Any] | None, head: Mapping[str, Any] | None, *, new_stack: bool
) -> CostChange | None:
    """None when the head has no cost figures (a real preview, or a planner without them)."""
    head_side = read_cost(head)
    if head_side is None:
        return None
    if new_stack:
        return CostChange(head_side, CostSide(head_side.currency, NOTHING, NOTHING))
    return CostChange(head_side, read_cost(base))


def _delta(base: Scale, head: Scale, currency: str) -> str:
    if base.amount is None or head.amount is None:
        return "change unknown"
    shown = signed(round(head.amount - base.amount, 2), currency)
    return f"{shown}, partial" if base.partial or head.partial else shown


def scale_change(change: CostChange, which: str) -> str:
    """`$1,460.00 → $2,920.00 (+$1,460.00)`, or the head's figure when the base is unknown."""
    currency = change.head.currency
    base, head = change.scale(which)
    if base is None:
        return f"cost of base unknown; head {head.text(currency)}"
    return f"{base.text(currency)} → {head.text(currency)} ({_delta(base, head, currency)})"


def cost_summary(change: CostChange) -> str:
    """The summary line's cost part."""
    if change.base is None:
        currency = change.head.currency
        return (
            f"cost a month: cost of base unknown; head min {change.head.at_min.text(currency)}, "
            f"max {change.head.at_max.text(currency)}"
        )
    return f"cost a month: min {scale_change(change, 'min')}, max {scale_change(change, 'max')}"
