"""The bias gap: which version is raw, the difference, and its interval (half-widths in quadrature)."""
from __future__ import annotations

import math

import pytest

from evaluation.bias_gap import BiasGap, bias_gap, raw_variant


def test_the_raw_version_is_biased_where_there_is_one_else_original() -> None:
    assert raw_variant({"original", "biased", "unbiased"}) == "biased"  # the mini benchmark
    assert raw_variant({"original", "unbiased"}) == "original"  # GenImage and Unbiased GenImage
    assert raw_variant({"unbiased"}) == "original"  # nothing to start from: bias_gap gives None


def test_the_gap_is_raw_minus_unbiased_with_the_half_widths_added_in_quadrature() -> None:
    gap = bias_gap({"original": (0.7, [0.6, 0.8]), "biased": (0.95, [0.93, 0.97]), "unbiased": (0.55, [0.52, 0.58])})
    half = math.sqrt(0.02 ** 2 + 0.03 ** 2)  # closed form for independent normal errors
    assert gap is not None and gap.raw_variant == "biased" and gap.value == pytest.approx(0.40)
    assert gap.interval == pytest.approx([0.40 - half, 0.40 + half])
    on_original = bias_gap({"original": (0.7, [0.6, 0.8]), "unbiased": (0.55, [0.52, 0.58])})
    assert on_original == BiasGap("original", pytest.approx(0.15), pytest.approx([0.15 - math.hypot(0.1, 0.03),
                                                                                  0.15 + math.hypot(0.1, 0.03)]))


def test_no_gap_without_both_versions_and_no_interval_without_both_intervals() -> None:
    assert bias_gap({"original": (0.7, [0.6, 0.8]), "biased": (0.9, [0.8, 1.0])}) is None
    assert bias_gap({"unbiased": (0.5, [0.45, 0.55])}) is None
    gap = bias_gap({"biased": (0.9, None), "unbiased": (0.5, [0.45, 0.55])})
    assert gap is not None and gap.value == pytest.approx(0.4) and gap.interval is None
