"""The bias gap: how much of a detector's score its benchmark's shortcuts explain.

A benchmark with an ``unbiased`` version (JPEG format, quality and size no longer tell real from generated) has
a *raw* version it was made from: ``biased`` where the benchmark has one (the mini benchmark, whose ``original``
is all 64 px PNG and so has no shortcut to take), else ``original`` (GenImage: the original is the biased one).
The gap is the mean accuracy on the raw version minus on the unbiased one; a detector that reads pixels scores
about the same on both, one that reads the file's format or size drops on the unbiased version. Its interval
combines the two versions' 95 % intervals as independent normal errors (``difference_interval``), which is
conservative when both are measured on related images. Torch-free: the web process imports it.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from evaluation.bootstrap import difference_interval

UNBIASED_VARIANT = "unbiased"
RAW_VARIANTS = ("biased", "original")  # the first one a benchmark has is its raw version

VariantMean = tuple[float, list[float] | None]  # a row's mean accuracy on one dataset version and its 95 % interval


@dataclass(frozen=True)
class BiasGap:
    raw_variant: str
    value: float  # mean accuracy on the raw version minus on the unbiased one
    interval: list[float] | None  # 95 %; None when either version has no interval


def raw_variant(variants: Collection[str]) -> str:
    """The version the gap starts from, among the variants a row was evaluated on."""
    return next((v for v in RAW_VARIANTS if v in variants), RAW_VARIANTS[-1])


def bias_gap(by_variant: Mapping[str, VariantMean]) -> BiasGap | None:
    """The gap of one row from its mean accuracy (and interval) per dataset variant it has a mean on; None
    unless it has both the raw and the unbiased version."""
    raw = raw_variant(by_variant)
    if raw not in by_variant or UNBIASED_VARIANT not in by_variant:
        return None
    (raw_mean, raw_interval), (unbiased_mean, unbiased_interval) = by_variant[raw], by_variant[UNBIASED_VARIANT]
    interval = difference_interval(raw_mean, raw_interval, unbiased_mean, unbiased_interval)
    return BiasGap(raw_variant=raw, value=raw_mean - unbiased_mean, interval=interval)
