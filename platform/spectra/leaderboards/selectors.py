"""Leaderboard rows: queries over Result, ranked by mean accuracy."""
from __future__ import annotations

from dataclasses import dataclass, field

from spectra.benchmarks.models import Benchmark
from spectra.submissions.models import Result, SubmissionStatus

RANK_METRIC = "acc_mean"
MEAN_SUBSET = "mean"


@dataclass
class LeaderboardRow:
    rank: int
    submission_id: int
    name: str
    owner: str
    mean: dict[str, float | None]
    per_generator: dict[str, dict[str, float | None]] = field(default_factory=dict)
    evaluator_version: str = ""
    manifest_sha256: str = ""
    artifact_sha256: str = ""
    protocol_version: int = 0


def _rows_from_results(results: list[Result]) -> list[LeaderboardRow]:
    rows: dict[int, LeaderboardRow] = {}
    for result in results:
        submission = result.submission
        row = rows.setdefault(
            submission.pk,
            LeaderboardRow(rank=0, submission_id=submission.pk, name=submission.name,
                           owner=submission.owner.username, mean={}),
        )
        if result.subset == MEAN_SUBSET:
            row.mean = result.metrics
            row.evaluator_version, row.protocol_version = result.evaluator_version, result.protocol_version
            row.manifest_sha256, row.artifact_sha256 = result.manifest_sha256, result.artifact_sha256
        else:
            row.per_generator[result.subset] = result.metrics
    return list(rows.values())


def leaderboard_rows(*, benchmark: Benchmark, protocol: str = "cross-generator") -> list[LeaderboardRow]:
    """Finished submissions on ``benchmark`` ranked by mean accuracy (ties share a rank)."""
    results = list(
        Result.objects.filter(
            submission__benchmark=benchmark, submission__status=SubmissionStatus.DONE, protocol=protocol
        ).select_related("submission", "submission__owner")
    )
    rows = _rows_from_results(results)
    rows.sort(key=lambda r: (-(r.mean.get(RANK_METRIC) or 0.0), r.submission_id))
    previous: float | None = None
    for position, row in enumerate(rows, start=1):
        value = row.mean.get(RANK_METRIC)
        row.rank = rows[position - 2].rank if position > 1 and value == previous else position
        previous = value
    return rows


def leaderboard_generators(rows: list[LeaderboardRow]) -> list[str]:
    return sorted({g for row in rows for g in row.per_generator})
