"""Template filters for numbers: a metric shows 4 decimals, or a dash when undefined."""
from __future__ import annotations

from typing import Any

from django import template

from evaluation.protocols import RANK_METRIC

register = template.Library()


@register.filter
def metric(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def subset_metric(per_subset: dict[str, dict[str, Any]], subset: str, name: str = RANK_METRIC) -> Any:
    return (per_subset or {}).get(subset, {}).get(name)


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return (mapping or {}).get(key)


@register.filter
def interval(intervals: dict[str, Any] | None, name: str) -> str:
    """A metric's 95 % interval as "[low, high]", or nothing when there is none."""
    bounds = (intervals or {}).get(name)
    if not bounds:
        return ""
    return f"[{metric(bounds[0])}, {metric(bounds[1])}]"


@register.filter
def subset_interval(per_subset: dict[str, dict[str, Any]], subset: str) -> str:
    """The 95 % interval of a subset's mean accuracy, for a cell's tooltip."""
    shown = interval((per_subset or {}).get(subset), RANK_METRIC)
    return f"95 % interval {shown}" if shown else ""
