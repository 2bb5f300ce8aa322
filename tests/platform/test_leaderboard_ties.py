"""Tie groups: rows in rank order join the group whose first row's 95 % interval theirs overlaps; checked against a
slow, literal reading of that rule on hand-made and random intervals, and end to end on stored scores."""
from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from spectra.leaderboards.selectors import tie_groups
from tests.platform.test_api import finish, make_submission
from tests.reference import scores_with_accuracy, split_rows


def _overlap(a: list[float], b: list[float]) -> bool:
    return max(a[0], b[0]) <= min(a[1], b[1])


def _slow_tie_groups(intervals: list[list[float] | None]) -> list[int]:
    """The documented rule, literally: compare each row with the first row of the current group (any two intervals
    overlap when the larger low is at most the smaller high); a row without an interval leads a group alone."""
    groups: list[int] = []
    leader: list[float] | None = None
    for interval in intervals:
        if groups and interval is not None and leader is not None and _overlap(interval, leader):
            groups.append(groups[-1])
        else:
            groups.append(len(set(groups)) + 1)
            leader = interval
    return groups


@pytest.mark.parametrize(("intervals", "expected"), [
    ([[0.80, 0.86], [0.78, 0.84]], [1, 1]),  # means differ (0.83, 0.81), the intervals overlap: one group
    ([[0.85, 0.90], [0.70, 0.80]], [1, 2]),  # apart: two groups
    ([[0.80, 0.90], [0.75, 0.82], [0.70, 0.78]], [1, 1, 2]),  # chain: A~B, B~C, A not C; C leads the next group
    ([[0.80, 0.90], [0.75, 0.82], [0.70, 0.78], [0.69, 0.76]], [1, 1, 2, 2]),
    ([[0.80, 0.90], [0.70, 0.80], [0.70, 0.7999]], [1, 1, 2]),  # touching the leader's low counts as overlapping
    ([[0.80, 0.90], None, [0.79, 0.85]], [1, 2, 3]),  # no interval: a group alone, and the next row starts anew
])
def test_hand_made_cases_follow_the_rule(intervals, expected) -> None:
    assert tie_groups(intervals) == expected == _slow_tie_groups(intervals)


def test_random_ranked_rows_match_the_slow_reading() -> None:
    rng = np.random.default_rng(10)
    for _ in range(500):
        means = np.sort(rng.uniform(0.4, 1.0, size=rng.integers(1, 12)))[::-1]  # ranked: descending means
        intervals = [None if rng.random() < 0.05 else [float(m - rng.uniform(0, 0.08)), float(m + rng.uniform(0, 0.08))]
                     for m in means]
        assert tie_groups(intervals) == _slow_tie_groups(intervals), intervals


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    from tests import detector_files

    folder = tmp_path_factory.mktemp("ties")
    return [detector_files.write_onnx(folder / f"{s}.onnx", seed=s, input_size=32).read_bytes() for s in range(3)]


def test_on_stored_scores_close_means_share_a_group_and_a_chain_splits_at_its_leader(
    client, alice, mini_dataset, mini_root, onnx_files, test_line_numbers, send,
):
    rows = split_rows(mini_root)
    for data, accuracy in zip(onnx_files, (0.80, 0.76, 0.72), strict=True):
        finish(make_submission(alice, mini_dataset, data, f"acc-{accuracy}"), test_line_numbers,
               scores_with_accuracy(rows, accuracy))
    board = client.get(reverse("api:leaderboard", args=["mini"])).json()["rows"]
    intervals = [r["mean_intervals"]["acc_mean"] for r in board]
    assert [r["mean"]["acc_mean"] for r in board] == pytest.approx([0.80, 0.76, 0.72], abs=0.003)  # 184 per group
    assert [r["rank"] for r in board] == [1, 2, 3]  # the means differ: no shared rank
    # 1104 test images give intervals about ±0.032 wide: a chain, A~B, B~C, A apart from C.
    a, b, c = intervals
    assert _overlap(a, b) and _overlap(b, c) and not _overlap(a, c), intervals
    assert [r["tie_group"] for r in board] == _slow_tie_groups(intervals) == [1, 1, 2]
