"""Leaderboard rows: queries over Result, ranked by mean accuracy."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import F, QuerySet

from evaluation.baselines import SHORTCUTS
from evaluation.bias_gap import VariantMean, bias_gap
from evaluation.protocols import MEAN_SUBSET, RANK_METRIC, RANKED_PROTOCOL
from evaluation.protocols.adversarial import TRANSFER
from spectra.benchmarks.models import Benchmark
from spectra.benchmarks.selectors import VARIANT_ORDER
from spectra.leaderboards.models import BaselineResult
from spectra.leaderboards.tabs import AnalysisTab
from spectra.submissions.models import Result, Submission, SubmissionStatus
from spectra.submissions.selectors import visible_to

RANKED_VARIANT = VARIANT_ORDER[0]  # "original": the version a submission is ranked on (submission.dataset)


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
    by_variant: dict[str, float | None] = field(default_factory=dict)  # dataset variant -> mean accuracy
    by_variant_intervals: dict[str, list[float] | None] = field(default_factory=dict)  # variant -> its 95 % interval
    bias_gap: float | None = None  # evaluation.bias_gap: mean accuracy on the raw version minus on the unbiased one
    bias_gap_interval: list[float] | None = None  # 95 %, the versions' intervals combined as independent errors


# The columns _rows_from_results reads: the rest (the owner's password hash, timestamps…) is not fetched or parsed.
ROW_FIELDS = ("submission__name", "submission__zoo_entry", "submission__owner__username", "subset", "metrics",
              "intervals", "evaluator_version", "protocol_version", "manifest_sha256", "artifact_sha256")


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


def _variant_order(variants: Iterable[str]) -> list[str]:
    seen = set(variants)
    return [v for v in VARIANT_ORDER if v in seen] + sorted(seen - set(VARIANT_ORDER))


def _in_variant_order(found: dict[str, VariantMean]) -> dict[str, VariantMean]:
    return {variant: found[variant] for variant in _variant_order(found)}


def mean_accuracy_by_variant(*, submissions: QuerySet[Submission] | Iterable[int],
                             protocol: str = RANKED_PROTOCOL) -> dict[int, dict[str, VariantMean]]:
    """Each submission's clean mean accuracy (the rank metric of subset "mean", no perturbation) with its 95 %
    interval, per dataset variant in the platform's order: one query, whatever the number of submissions."""
    found: dict[int, dict[str, VariantMean]] = {}
    results = (Result.objects.filter(submission__in=submissions, subset=MEAN_SUBSET, condition="", protocol=protocol)
               .order_by("dataset_id").values_list("submission_id", "dataset__variant", "metrics", "intervals"))
    for submission_id, variant, metrics, intervals in results:  # a newer version of a variant wins
        if metrics.get(RANK_METRIC) is not None:
            found.setdefault(submission_id, {})[variant] = (metrics[RANK_METRIC], (intervals or {}).get(RANK_METRIC))
    return {pk: _in_variant_order(by_variant) for pk, by_variant in found.items()}


def _set_variant_means(row: LeaderboardRow, by_variant: dict[str, VariantMean]) -> None:
    row.by_variant = {variant: value for variant, (value, _) in by_variant.items()}
    row.by_variant_intervals = {variant: interval for variant, (_, interval) in by_variant.items()}
    gap = bias_gap(by_variant)
    if gap is not None:
        row.bias_gap, row.bias_gap_interval = gap.value, gap.interval


def _baseline_rows(benchmark: Benchmark, protocol: str) -> list[LeaderboardRow]:
    """One row per shortcut: its numbers on the ranked version, and its mean accuracy on every current version."""
    rows: dict[str, LeaderboardRow] = {}
    by_variant: dict[str, dict[str, VariantMean]] = {}
    # The versions are prefetched, not joined: a join decodes a version's audit JSON again on every row.
    results = BaselineResult.objects.filter(dataset__benchmark=benchmark, dataset__is_current=True,
                                            protocol=protocol).prefetch_related("dataset")
    titles = {s.name: s.title for s in SHORTCUTS}
    for result in results:
        row = rows.setdefault(result.baseline, LeaderboardRow(
            rank=0, submission_id=None, name=titles.get(result.baseline, result.baseline), owner="Spectra",
            mean={}, is_baseline=True, baseline=result.baseline))
        if result.dataset.variant == RANKED_VARIANT:
            _absorb(row, result)
            row.manifest_sha256, row.evaluator_version = result.manifest_sha256, result.evaluator_version
            row.protocol_version = result.protocol_version
        if result.subset == MEAN_SUBSET and result.metrics.get(RANK_METRIC) is not None:
            interval = (result.intervals or {}).get(RANK_METRIC)
            by_variant.setdefault(result.baseline, {})[result.dataset.variant] = (result.metrics[RANK_METRIC], interval)
    for name, row in rows.items():
        _set_variant_means(row, _in_variant_order(by_variant.get(name, {})))
    return list(rows.values())


def leaderboard_variants(rows: list[LeaderboardRow]) -> list[str]:
    """The dataset variants any row was evaluated on, in the platform's order."""
    return _variant_order(v for row in rows for v in row.by_variant)


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


def leaderboard_rows(*, benchmark: Benchmark, user, protocol: str = RANKED_PROTOCOL) -> list[LeaderboardRow]:
    """Finished submissions on ``benchmark`` that ``user`` may see (private ones: their owner and staff only) ranked
    by mean accuracy (ties share a rank), with the shortcut baselines in place (unranked) and entries that barely
    beat them flagged."""
    finished = Result.objects.filter(visible_to(user, path="submission__"), submission__benchmark=benchmark,
                                     submission__status=SubmissionStatus.DONE, protocol=protocol, condition="")
    results = list(finished.filter(dataset=F("submission__dataset")).select_related("submission", "submission__owner")
                   .only(*ROW_FIELDS))
    rows = _rows_from_results(results)
    means = mean_accuracy_by_variant(submissions=Submission.objects.filter(
        visible_to(user), benchmark=benchmark, status=SubmissionStatus.DONE), protocol=protocol)
    for row in rows:
        _set_variant_means(row, means.get(row.submission_id or 0, {}))
    rows.sort(key=lambda r: (-(r.mean.get(RANK_METRIC) or 0.0), r.submission_id))
    previous: float | None = None
    for position, row in enumerate(rows, start=1):
        value = row.mean.get(RANK_METRIC)
        row.rank = rows[position - 2].rank if position > 1 and value == previous else position
        previous = value
    for row, group in zip(rows, tie_groups([r.mean_intervals.get(RANK_METRIC) for r in rows]), strict=True):
        row.tie_group = group
    rows += _baseline_rows(benchmark, protocol)
    rows.sort(key=lambda r: (-(r.mean.get(RANK_METRIC) or 0.0), r.is_baseline, r.submission_id or 0))
    _flag_near_baselines(rows)
    return rows


@dataclass
class AnalysisRow:
    rank: int
    tie_group: int
    submission_id: int
    name: str
    owner: str
    value: float | None
    interval: list[float] | None
    evaluator_version: str
    protocol_version: int
    manifest_sha256: str
    artifact_sha256: str
    transfer: bool = False  # an adversarial number from a zoo surrogate's attacks (the detector gave no gradients)
    companion: float | None = None  # the tab's second number (AnalysisTab.companion), with its interval
    companion_interval: list[float] | None = None


def _tab_results(benchmark: Benchmark, user, protocol: str, condition: str) -> QuerySet[Result]:
    """Subset "mean" rows of one protocol and condition on each visible finished submission's ranked version."""
    return Result.objects.filter(visible_to(user, path="submission__"), submission__benchmark=benchmark,
                                 submission__status=SubmissionStatus.DONE, protocol=protocol, condition=condition,
                                 subset=MEAN_SUBSET, dataset=F("submission__dataset"))


def _add_companions(rows: list[AnalysisRow], benchmark: Benchmark, user, tab: AnalysisTab) -> None:
    if tab.companion is None:
        return
    condition, metric, _ = tab.companion
    found = {r.submission_id: r for r in _tab_results(benchmark, user, tab.protocol, condition)}
    for row in rows:
        if (result := found.get(row.submission_id)) is not None:
            row.companion, row.companion_interval = result.metrics.get(metric), (result.intervals or {}).get(metric)


def analysis_rows(*, benchmark: Benchmark, user, tab: AnalysisTab) -> list[AnalysisRow]:
    """Finished, visible submissions with ``tab``'s number on their ranked version, best first (highest or lowest
    as the tab says; ties share a rank; rows without the number last). Tie groups from the intervals, where the
    number has them."""
    results = _tab_results(benchmark, user, tab.protocol, tab.condition).select_related("submission", "submission__owner")
    rows = [AnalysisRow(rank=0, tie_group=0, submission_id=r.submission_id, name=r.submission.name,
                        owner=r.submission.owner.username, value=r.metrics.get(tab.metric),
                        interval=(r.intervals or {}).get(tab.metric), evaluator_version=r.evaluator_version,
                        protocol_version=r.protocol_version, manifest_sha256=r.manifest_sha256,
                        artifact_sha256=r.artifact_sha256, transfer=bool(r.metrics.get(TRANSFER))) for r in results]
    sign = -1.0 if tab.higher_is_better else 1.0
    rows.sort(key=lambda r: (r.value is None, sign * (r.value or 0.0), r.submission_id))
    for position, row in enumerate(rows, start=1):
        same = position > 1 and row.value == rows[position - 2].value
        row.rank = rows[position - 2].rank if same else position
    # tie_groups reads rows in descending order: a lower-is-better number is mirrored first.
    mirrored = [r.interval if tab.higher_is_better or not r.interval else [-r.interval[1], -r.interval[0]]
                for r in rows]
    for row, group in zip(rows, tie_groups(mirrored), strict=True):
        row.tie_group = group
    _add_companions(rows, benchmark, user, tab)
    return rows


def tie_groups(intervals: Sequence[Sequence[float] | None]) -> list[int]:
    """Tie groups (1, 2, …) of rows in rank order from their 95 % intervals of the rank metric: a row joins the
    current group when its interval overlaps the group's first row's, else it starts the next group (so A~B and
    B~C with A, C apart gives A, B in one group and C leading the next). A row without an interval is a group of its
    own, and the row after it starts a new one."""
    groups, group, leader_low = [], 0, None
    for interval in intervals:  # ranked rows have descending means: overlap with the leader is high >= its low
        if leader_low is None or interval is None or interval[1] < leader_low:
            group += 1
            leader_low = interval[0] if interval else None
        groups.append(group)
    return groups


def leaderboard_generators(rows: list[LeaderboardRow]) -> list[str]:
    """The generator subsets that appear in any row (a baseline's real-source subsets included)."""
    return sorted({g for row in rows for g in row.per_generator})
