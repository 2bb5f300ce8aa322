"""Leaderboard rows: queries over Result, ranked by mean accuracy."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import F

from evaluation.baselines import SHORTCUTS
from evaluation.bootstrap import difference_interval
from spectra.benchmarks.models import Benchmark
from spectra.benchmarks.selectors import VARIANT_ORDER
from spectra.leaderboards.models import BaselineResult
from spectra.submissions.models import Result, SubmissionStatus

RANK_METRIC = "acc_mean"
MEAN_SUBSET = "mean"


@dataclass
class LeaderboardRow:
    rank: int  # 0 for a baseline: baselines are shown in place but take no rank
    submission_id: int | None
    name: str
    owner: str
    mean: dict[str, float | None]
    mean_intervals: dict[str, list[float] | None] = field(default_factory=dict)
    tie_group: int = 0  # rows whose 95 % intervals of the rank metric overlap the group's first row share it
    per_generator: dict[str, dict[str, float | None]] = field(default_factory=dict)
    per_generator_intervals: dict[str, dict[str, list[float] | None]] = field(default_factory=dict)
    evaluator_version: str = ""
    manifest_sha256: str = ""
    artifact_sha256: str = ""
    protocol_version: int = 0
    zoo_entry: str = ""  # a models_zoo entry submitted through the upload path
    is_baseline: bool = False
    baseline: str = ""  # the shortcut's name (evaluation.baselines) on a baseline row
    barely_beats_baseline: bool = False  # its interval reaches down to the best shortcut baseline's
    by_version: dict[str, float | None] = field(default_factory=dict)  # dataset variant -> mean accuracy
    bias_gap: float | None = None  # mean accuracy on the raw version minus on the unbiased one
    bias_gap_interval: list[float] | None = None  # 95 %, the versions' intervals combined as independent errors


def _rows_from_results(results: list[Result]) -> list[LeaderboardRow]:
    rows: dict[int, LeaderboardRow] = {}
    for result in results:
        submission = result.submission
        row = rows.setdefault(
            submission.pk,
            LeaderboardRow(rank=0, submission_id=submission.pk, name=submission.name,
                           owner=submission.owner.username, mean={}, zoo_entry=submission.zoo_entry),
        )
        _absorb(row, result)
        if result.subset == MEAN_SUBSET:
            row.evaluator_version, row.protocol_version = result.evaluator_version, result.protocol_version
            row.manifest_sha256, row.artifact_sha256 = result.manifest_sha256, result.artifact_sha256
    return list(rows.values())


def _absorb(row: LeaderboardRow, result: Result | BaselineResult) -> None:
    """Put one subset's numbers (a submission's or a baseline's) into its leaderboard row."""
    if result.subset == MEAN_SUBSET:
        row.mean, row.mean_intervals = result.metrics, result.intervals or {}
    else:
        row.per_generator[result.subset] = result.metrics
        row.per_generator_intervals[result.subset] = result.intervals or {}


def _baseline_rows(benchmark: Benchmark, protocol: str) -> list[LeaderboardRow]:
    rows: dict[str, LeaderboardRow] = {}
    results = BaselineResult.objects.filter(
        dataset__benchmark=benchmark, dataset__variant="original", dataset__is_current=True, protocol=protocol)
    titles = {s.name: s.title for s in SHORTCUTS}
    for result in results:
        row = rows.setdefault(result.baseline, LeaderboardRow(
            rank=0, submission_id=None, name=titles.get(result.baseline, result.baseline), owner="Spectra",
            mean={}, is_baseline=True, baseline=result.baseline, manifest_sha256=result.manifest_sha256,
            evaluator_version=result.evaluator_version, protocol_version=result.protocol_version))
        _absorb(row, result)
    return list(rows.values())


def raw_variant(variants: set[str]) -> str:
    """The version the bias gap starts from: "biased" where a benchmark has one (the mini benchmark), else
    "original" (GenImage: the original is the biased one)."""
    return "biased" if "biased" in variants else "original"


def _versions_and_gap(rows: list[LeaderboardRow], means: Iterable[tuple[int, str, dict, dict]]) -> None:
    by_submission: dict[int, dict[str, tuple[float | None, list[float] | None]]] = {}
    for submission_id, variant, metrics, intervals in means:
        by_submission.setdefault(submission_id, {})[variant] = (metrics.get(RANK_METRIC), (intervals or {}).get(RANK_METRIC))
    for row in rows:
        versions = by_submission.get(row.submission_id or 0, {})
        row.by_version = {variant: value for variant, (value, _) in versions.items()}
        raw, unbiased = versions.get(raw_variant(set(versions)), (None, None)), versions.get("unbiased", (None, None))
        if raw[0] is None or unbiased[0] is None:
            continue
        row.bias_gap = raw[0] - unbiased[0]
        row.bias_gap_interval = difference_interval(raw[0], raw[1], unbiased[0], unbiased[1])  # independent samples


def leaderboard_versions(rows: list[LeaderboardRow]) -> list[str]:
    """The dataset variants any row was evaluated on, in the platform's order."""
    seen = {v for row in rows for v in row.by_version}
    return [v for v in VARIANT_ORDER if v in seen] + sorted(seen - set(VARIANT_ORDER))


def _flag_near_baselines(rows: list[LeaderboardRow]) -> None:
    """Mark entries whose interval of the rank metric reaches the best baseline's: they barely beat a shortcut."""
    baselines = [r for r in rows if r.is_baseline and r.mean.get(RANK_METRIC) is not None]
    if not baselines:
        return
    best = max(baselines, key=lambda r: r.mean[RANK_METRIC])
    best_high = (best.mean_intervals.get(RANK_METRIC) or [best.mean[RANK_METRIC]] * 2)[1]
    for row in rows:
        value = row.mean.get(RANK_METRIC)
        if row.is_baseline or value is None:
            continue
        low = (row.mean_intervals.get(RANK_METRIC) or [value, value])[0]
        row.barely_beats_baseline = low <= best_high


def leaderboard_rows(*, benchmark: Benchmark, protocol: str = "cross-generator") -> list[LeaderboardRow]:
    """Finished submissions on ``benchmark`` ranked by mean accuracy (ties share a rank), with the shortcut
    baselines in place (unranked) and entries that barely beat them flagged."""
    finished = Result.objects.filter(
        submission__benchmark=benchmark, submission__status=SubmissionStatus.DONE, protocol=protocol, condition="")
    results = list(finished.filter(dataset=F("submission__dataset")).select_related("submission", "submission__owner"))
    rows = _rows_from_results(results)
    _versions_and_gap(rows, finished.filter(subset=MEAN_SUBSET).values_list(
        "submission_id", "dataset__variant", "metrics", "intervals"))
    rows.sort(key=lambda r: (-(r.mean.get(RANK_METRIC) or 0.0), r.submission_id))
    previous: float | None = None
    for position, row in enumerate(rows, start=1):
        value = row.mean.get(RANK_METRIC)
        row.rank = rows[position - 2].rank if position > 1 and value == previous else position
        previous = value
    _tie_groups(rows)
    rows += _baseline_rows(benchmark, protocol)
    rows.sort(key=lambda r: (-(r.mean.get(RANK_METRIC) or 0.0), r.is_baseline, r.submission_id or 0))
    _flag_near_baselines(rows)
    return rows


def _tie_groups(rows: list[LeaderboardRow]) -> None:
    """Group ranked rows whose 95 % intervals of the rank metric overlap the interval of the group's first row."""
    group, leader_low = 0, None
    for row in rows:  # submissions only, already ranked
        interval = row.mean_intervals.get(RANK_METRIC)
        if leader_low is None or interval is None or interval[1] < leader_low:
            group += 1
            leader_low = interval[0] if interval else None
        row.tie_group = group


def leaderboard_generators(rows: list[LeaderboardRow]) -> list[str]:
    """The generator subsets that appear in any row (a baseline's real-source subsets included)."""
    return sorted({g for row in rows for g in row.per_generator})
