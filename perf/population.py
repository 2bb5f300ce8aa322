"""A realistic database population for the load test (perf/load_leaderboard.py) and the query-count test.

Benchmarks are registered by the platform's own services from synthetic manifests (no images: registration, the
bias audit and the shortcut baselines read the manifest alone), so their subsets, audits and baseline rows are
real. Users, artifacts, submissions, their evaluation runs and Result rows are written with ``bulk_create``: a
finished submission gets the Result rows the aggregate step writes for each protocol (on every version, or on the
ranked one only), per subset and condition, their numbers those of one real summary per (dataset version,
protocol) shifted per submission so that ranks differ. The last submission takes what is left of the Result
budget as a running one, so the total is exact. Needs Django set up and the database migrated.
"""
from __future__ import annotations

import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings
from django.urls import reverse

from evaluation.datasets.manifest import LABEL_GENERATED, LABEL_REAL, SPLITS, ManifestRow, read_manifest, write_manifest
from evaluation.datasets.mini import MINI_GENERATORS
from evaluation.metrics import ScoreKind
from evaluation.protocols import Protocol, get_protocol, list_analyses, list_protocols
from evaluation.summary import Summary, summary_from_scores
from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.models import Benchmark, Dataset
from spectra.benchmarks.selectors import VARIANT_ORDER, dataset_versions_evaluated, split_size
from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.core import pagecache
from spectra.leaderboards.models import BaselineResult
from spectra.leaderboards.services import baselines_build
from spectra.submissions.models import Artifact, EvaluationRun, Result, Submission, SubmissionStatus

RANKED_VARIANT = VARIANT_ORDER[0]
TEMPLATE_RESAMPLES = 50  # bootstrap resamples of the stored intervals: they only need a plausible width
BATCH = 2000  # rows per bulk_create statement


@dataclass(frozen=True)
class BenchmarkPlan:
    slug: str
    generators: tuple[str, ...]
    variants: tuple[str, ...] = VARIANT_ORDER
    shared_real: bool = True  # the mini benchmark's layout (one real pool); False: GenImage's, real images per generator
    superseded: int = 0  # older versions of the ranked variant, registered first and no longer current
    images: int = 12  # per generator, label and split


@dataclass(frozen=True)
class Plan:
    benchmarks: tuple[BenchmarkPlan, ...]
    users: int
    protocols: tuple[str, ...] = tuple(p for p in list_protocols() if p not in list_analyses())  # what every entry runs


GENIMAGE_LIKE = ("adm", "biggan", "glide", "midjourney", "sd14", "sd15", "vqdm", "wukong")
LOAD_PLAN = Plan(
    benchmarks=(BenchmarkPlan("mini-load", MINI_GENERATORS, superseded=1),
                BenchmarkPlan("genimage-load", GENIMAGE_LIKE, variants=(RANKED_VARIANT, "unbiased"), shared_real=False)),
    users=40,
)


@dataclass
class Population:
    results: int  # Result rows written
    baseline_results: int
    statuses: dict[str, int]  # submissions per status
    benchmarks: list[str]
    datasets: int
    owner: str  # the user with the most submissions: the worst case of "My submissions"
    focus_submission: int  # the finished submission with the most Result rows
    seconds: dict[str, float] = field(default_factory=dict)


# --- benchmarks ----------------------------------------------------------------------------------------------


def _row_traits(variant: str, label: int, rng: np.random.Generator) -> dict:
    """Format, size and JPEG traits in the spirit of each variant: the biased one has GenImage's shortcuts."""
    if variant == "unbiased" or (variant == "biased" and label == LABEL_REAL):
        side = int(rng.integers(56, 73)) if variant == "unbiased" else int(rng.integers(64, 89))
        quality = int(rng.choice([95, 96, 96, 97]))
        return {"width": side, "height": side, "format": "JPEG", "jpeg_quality": quality,
                "chroma_subsampling": "4:2:0", "chroma_quality": quality}
    return {"width": 64, "height": 64, "format": "PNG", "jpeg_quality": None}


def manifest_rows(plan: BenchmarkPlan, variant: str, version: int) -> Iterator[ManifestRow]:
    """A version's rows: per split, the real images (one shared pool, or each generator's own), then each
    generator's generated images."""
    rng = np.random.default_rng([version, len(plan.generators), len(variant)])
    real_groups = [None] if plan.shared_real else list(plan.generators)
    for split in SPLITS:
        for label, groups in ((LABEL_REAL, real_groups), (LABEL_GENERATED, list(plan.generators))):
            for generator, i in itertools.product(groups, range(plan.images)):
                traits = _row_traits(variant, label, rng)
                stem = f"{split}/{generator or 'real'}/{label}-{version}-{i:04d}"
                yield ManifestRow(path=f"{stem}.{'jpg' if traits['format'] == 'JPEG' else 'png'}", label=label,
                                  generator=generator, split=split, sha256=hashlib.sha256(stem.encode()).hexdigest(),
                                  **traits)


def benchmark_register(plan: BenchmarkPlan, folder: Path) -> Benchmark:
    """Every version of the benchmark, superseded ones first, and their shortcut baselines, by the platform's
    services."""
    benchmark = benchmark_upsert(slug=plan.slug, name=f"{plan.slug} (synthetic load)", is_synthetic=True,
                                 description="A synthetic benchmark of the load test: manifests without images.")
    versions = [(RANKED_VARIANT, v) for v in range(plan.superseded)] + [(v, plan.superseded) for v in plan.variants]
    for variant, version in versions:
        root = folder / plan.slug / f"{variant}-{version}"
        root.mkdir(parents=True, exist_ok=True)
        write_manifest(manifest_rows(plan, variant, version), root / "manifest.jsonl")
        dataset = dataset_register(benchmark=benchmark, root=root, variant=variant,
                                   description=f"The load test's {variant} version {version}.")
        with override_settings(SPECTRA_BOOTSTRAP_RESAMPLES=TEMPLATE_RESAMPLES):  # the service's 1000 take seconds
            baselines_build(dataset=dataset)
    return benchmark


# --- results ---------------------------------------------------------------------------------------------------


def _conditions(spec: Protocol) -> int | None:
    """How many copies of each image the protocol scores; None: one clean score per image."""
    return None if spec.conditions is None else len(spec.conditions(spec.default_config))


def _template(dataset: Dataset, spec: Protocol, rng: np.random.Generator) -> Summary:
    """A real summary of random, informative logits on the protocol's splits of the version."""
    rows = [(i, row) for i, row in enumerate(read_manifest(Path(dataset.manifest_url))) if row.split in spec.splits]
    labels = np.array([row.label for _, row in rows], dtype=np.float64)
    logits = rng.normal(0.0, 1.0, (_conditions(spec) or 1, len(rows))) + 1.5 * (labels - 0.5)
    return summary_from_scores(protocol=spec.name, config={}, manifest_url=dataset.manifest_url,
                               split=set(spec.splits), row_ids=[i for i, _ in rows],
                               scores=logits if _conditions(spec) else logits[0], score_kind=ScoreKind.LOGIT,
                               resamples=TEMPLATE_RESAMPLES)


def _shifted(values: dict, delta: float) -> dict:
    """Scores in [0, 1] moved by ``delta`` (a better or worse detector); thresholds are logits and stay."""
    def move(name: str, value):
        if value is None or name.startswith("threshold"):
            return value
        return [move(name, v) for v in value] if isinstance(value, list) else min(max(value + delta, 0.0), 1.0)
    return {name: move(name, value) for name, value in values.items()}


@dataclass
class _Board:
    """What one benchmark's submissions are evaluated on: (dataset, protocol, template) per evaluated pair."""
    current: list[Dataset]
    superseded: list[Dataset]
    groups: dict[int, list[tuple[Dataset, Protocol, Summary]]]  # ranked dataset pk -> evaluated pairs

    def rows_per_submission(self, ranked: Dataset) -> int:
        return sum(len(summary.metrics) for _, _, summary in self.groups[ranked.pk])


def _board(benchmark: Benchmark, protocols: tuple[str, ...], rng: np.random.Generator) -> _Board:
    current = dataset_versions_evaluated(benchmark=benchmark)  # the ranked version first
    superseded = list(benchmark.datasets.filter(is_current=False).order_by("pk"))
    templates: dict[tuple[int, str], Summary] = {}
    groups = {}
    for ranked in [current[0], *superseded]:
        pairs = []
        for spec, dataset in itertools.product(map(get_protocol, protocols), [ranked, *current[1:]]):
            if spec.every_version or dataset is ranked:
                key = (dataset.pk, spec.name)
                templates[key] = templates.get(key) or _template(dataset, spec, rng)
                pairs.append((dataset, spec, templates[key]))
        groups[ranked.pk] = pairs
    return _Board(current, superseded, groups)


def _result_rows(submission: Submission, board: _Board, delta: float) -> list[Result]:
    """The rows the aggregate step writes for the submission: per evaluated (version, protocol), each subset and
    condition (robustness summaries key them ``subset/condition``)."""
    rows = []
    for dataset, spec, summary in board.groups[submission.dataset_id]:
        for key, metrics in summary.metrics.items():
            subset, _, condition = key.partition("/")
            rows.append(Result(
                submission=submission, dataset=dataset, protocol=spec.name, protocol_version=spec.version,
                condition=condition, subset=subset, metrics=_shifted(metrics, delta),
                intervals=_shifted(summary.intervals.get(key, {}), delta),
                evaluator_version=EVALUATOR_VERSION, manifest_sha256=dataset.manifest_sha256,
                artifact_sha256=submission.artifact.sha256))
    return rows


def _run_rows(submission: Submission, board: _Board, split_sizes: dict[tuple[int, str], int]) -> list[EvaluationRun]:
    """One shard per (protocol, version, split), its progress matching the submission's status."""
    shards: Counter[str] = Counter()
    runs = []
    for dataset, spec, _ in board.groups[submission.dataset_id]:
        for split in spec.splits:
            total = split_sizes[(dataset.pk, split)]
            done = {SubmissionStatus.DONE: total, SubmissionStatus.RUNNING: total // 2}.get(submission.status, 0)
            runs.append(EvaluationRun(
                submission=submission, dataset=dataset, protocol=spec.name, protocol_version=spec.version,
                shard=shards[spec.name], split=split, last_row=total, total=total, done=done,
                status=SubmissionStatus.DONE if done == total else submission.status, worker="load-test"))
            shards[spec.name] += 1
    return runs


# --- submissions -----------------------------------------------------------------------------------------------


def _users(count: int) -> list:
    """People who submit; a few submit most (a Zipf-like share), as on any leaderboard."""
    user_model = get_user_model()
    users = [user_model(username=f"load-user-{i:03d}", email=f"load-user-{i:03d}@example.org") for i in range(count)]
    for user in users:
        user.set_unusable_password()
    return user_model.objects.bulk_create(users)


def _status(index: int) -> str:
    """Every tenth submission failed, every fifteenth still queued (neither has results); the rest finished."""
    if index % 10 == 9:
        return SubmissionStatus.FAILED
    return SubmissionStatus.QUEUED if index % 15 == 14 else SubmissionStatus.DONE


@dataclass
class _Planned:
    submission: Submission  # unsaved, with its unsaved artifact
    board: _Board
    rows: int  # its Result rows
    delta: float  # how much better than the template it scores


def _plan_submissions(results: int, boards: list[_Board], users: list, rng: np.random.Generator) -> list[_Planned]:
    """Submissions, round robin over the benchmarks, until ``results`` Result rows are planned."""
    planned: list[_Planned] = []
    total = 0
    while total < results:
        index = len(planned)
        board = boards[index % len(boards)]
        older = board.superseded and (index // len(boards)) % 4 == 3  # some were ranked on an older version
        ranked = board.superseded[-1] if older else board.current[0]
        status = _status(index)
        rows = board.rows_per_submission(ranked) if status == SubmissionStatus.DONE else 0
        if total + rows > results:  # the last one: what is left of the budget, still running
            status, rows = SubmissionStatus.RUNNING, results - total
        owner = users[min(int(rng.zipf(1.6)) - 1, len(users) - 1)]
        sha256 = hashlib.sha256(f"load-artifact-{index}".encode()).hexdigest()
        artifact = Artifact(owner=owner, format="onnx", sha256=sha256, size=1 << 20, input_size=64,
                            file=f"artifacts/{sha256}.onnx", original_name=f"detector-{index}.onnx")
        failed = status == SubmissionStatus.FAILED
        submission = Submission(name=f"detector-{index:05d}", owner=owner, artifact=artifact,
                                benchmark=ranked.benchmark, dataset=ranked, status=status,
                                error="The detector's output has 3 columns; expected 1 or 2." if failed else "",
                                error_kind="user" if failed else "")
        planned.append(_Planned(submission, board, rows, float(rng.uniform(-0.3, 0.4))))
        total += rows
    return planned


@transaction.atomic
def populate(*, results: int, plan: Plan, folder: Path, seed: int = 0) -> Population:
    """Register ``plan``'s benchmarks (their files under ``folder``), then users and submissions with exactly
    ``results`` Result rows."""
    rng = np.random.default_rng(seed)
    slugs = [b.slug for b in plan.benchmarks]
    seconds, started = {}, time.perf_counter()
    boards = [_board(benchmark_register(b, folder), plan.protocols, rng) for b in plan.benchmarks]
    seconds["benchmarks"], started = time.perf_counter() - started, time.perf_counter()
    planned = _plan_submissions(results, boards, _users(plan.users), rng)
    submissions = [p.submission for p in planned]
    Artifact.objects.bulk_create([s.artifact for s in submissions], batch_size=BATCH)
    Submission.objects.bulk_create(submissions, batch_size=BATCH)
    split_sizes = {(d.pk, split): split_size(dataset=d, split=split)
                   for b in boards for d in b.current + b.superseded for split in SPLITS}
    EvaluationRun.objects.bulk_create([run for p in planned for run in _run_rows(p.submission, p.board, split_sizes)],
                                      batch_size=BATCH)
    rows = [row for p in planned for row in _result_rows(p.submission, p.board, p.delta)[:p.rows]]
    Result.objects.bulk_create(rows, batch_size=BATCH)
    pagecache.bump(*pagecache.EVERY_SCOPE)  # bulk_create sends no signal: retire any page cached before
    seconds["submissions"] = time.perf_counter() - started
    finished = [p for p in planned if p.submission.status == SubmissionStatus.DONE] or planned
    return Population(
        results=len(rows), baseline_results=BaselineResult.objects.filter(dataset__benchmark__slug__in=slugs).count(),
        statuses=dict(Counter(s.status for s in submissions)), benchmarks=slugs,
        datasets=sum(len(b.current) + len(b.superseded) for b in boards),
        owner=Counter(s.owner.username for s in submissions).most_common(1)[0][0],
        focus_submission=max(finished, key=lambda p: p.rows).submission.pk, seconds=seconds)


@dataclass(frozen=True)
class PageUrl:
    name: str
    path: str
    login: bool = False  # served to the population's busiest owner only


def population_urls(population: Population) -> list[PageUrl]:
    """The leaderboard, benchmark and submission-list pages and the read API's list endpoints on the population
    (the API has no list of submissions: a submission's status and its results stand for it)."""
    first, focus = population.benchmarks[0], population.focus_submission
    return [
        *(PageUrl(f"leaderboard page {slug}", reverse("leaderboard", args=[slug])) for slug in population.benchmarks),
        PageUrl(f"benchmark page {first}", reverse("benchmark-detail", args=[first])),
        PageUrl("my submissions page", reverse("my-submissions"), login=True),
        PageUrl("API benchmark list", reverse("api:benchmark-list")),
        *(PageUrl(f"API leaderboard {slug}", reverse("api:leaderboard", args=[slug])) for slug in population.benchmarks),
        PageUrl("API submission results", reverse("api:submission-results", args=[focus])),
        PageUrl("API submission", reverse("api:submission-detail", args=[focus])),
    ]
