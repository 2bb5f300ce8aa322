"""Writes of submissions: creation with one evaluation run per shard of every evaluated dataset version."""
from __future__ import annotations

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from evaluation.protocols import Protocol, get_protocol, list_analyses
from evaluation.protocols.base import sample_positions, shard_ranges
from spectra.benchmarks.models import Benchmark, Dataset
from spectra.benchmarks.selectors import dataset_current, dataset_versions_evaluated, split_size
from spectra.core import pagecache
from spectra.core.errors import ApplicationError
from spectra.submissions.models import EvaluationRun, Submission
from spectra.submissions.services import runs as run_services
from spectra.submissions.services.analyses import analysis_run_config
from spectra.submissions.services.artifacts import artifact_store


def _plan(submission: Submission, datasets: list[Dataset]) -> list[tuple[Protocol, Dataset]]:
    """(protocol, dataset version) pairs: each protocol on every version, or on the ranked one only when it
    says so (the robustness sweeps multiply the work by their number of conditions), and the analyses asked for."""
    protocols = [get_protocol(name) for name in [*settings.SPECTRA_PROTOCOLS, *submission.analyses]]
    return [(protocol, dataset) for protocol in protocols for dataset in datasets
            if protocol.every_version or dataset.pk == submission.dataset_id]


def _splits(protocol: Protocol, dataset: Dataset) -> list[tuple[str, int]]:
    """(split, rows) the protocol scores on this version: its evaluated split, and its fitting splits (the
    carried threshold's validation split) unless SPECTRA_CARRY_THRESHOLD is off or the version has none."""
    evaluated, *fitting = protocol.splits
    splits = [(evaluated, split_size(dataset=dataset, split=evaluated))]
    if settings.SPECTRA_CARRY_THRESHOLD:
        splits += [(split, rows) for split in fitting if (rows := split_size(dataset=dataset, split=split))]
    return splits


def _ranges(protocol: Protocol, config: dict, total: int) -> list[tuple[int, int, int]]:
    """(first, last, images scored) of each shard: an analysis is one shard over its sample of the split."""
    if protocol.analysis:
        return [(0, total, len(sample_positions(total, int({**protocol.default_config, **config}["images"]))))]
    return [(first, last, last - first) for first, last in shard_ranges(total, settings.SPECTRA_SHARD_IMAGES)]


def _runs_create(submission: Submission, datasets: list[Dataset]) -> list[EvaluationRun]:
    """One run per shard of each (protocol, dataset version, split); shards are numbered per (submission,
    protocol)."""
    runs: list[EvaluationRun] = []
    shards: dict[str, int] = {}
    for protocol, dataset in _plan(submission, datasets):
        config = analysis_run_config(protocol=protocol, submission=submission) if protocol.analysis else {}
        for split, total in _splits(protocol, dataset):
            for first, last, scored in _ranges(protocol, config, total):
                runs.append(EvaluationRun(
                    submission=submission, dataset=dataset, protocol=protocol.name, protocol_version=protocol.version,
                    shard=shards.setdefault(protocol.name, 0), split=split, first_row=first, last_row=last,
                    total=scored, config=config,
                ))
                shards[protocol.name] += 1
    created = EvaluationRun.objects.bulk_create(runs)
    pagecache.bump(pagecache.Scope.PROGRESS)  # bulk_create sends no signal
    return created


def _check_source(source: str, dataset: Dataset) -> str:
    generators = sorted({s.generator for s in dataset.subsets.all() if s.generator and s.n_generated})
    if source and source not in generators:
        raise ApplicationError(f"Unknown training generator {source!r}; {dataset.benchmark.slug} has: "
                               f"{', '.join(generators)}. Leave it blank to fix the threshold on every validation image.")
    return source


def _check_analyses(analyses: list[str]) -> list[str]:
    valid = list_analyses()
    unknown = [name for name in analyses if name not in valid]
    if unknown:
        raise ApplicationError(f"Unknown analysis {unknown[0]!r}; the analyses are: {', '.join(valid)}.")
    return sorted(set(analyses))


def submission_create(
    *, owner, name: str, benchmark: Benchmark, upload: UploadedFile, declared_format: str, input_size: int,
    source: str = "", zoo_entry: str = "", zoo_trained_on: str = "", architecture: str = "", private: bool = False,
    analyses: list[str] | None = None,
) -> Submission:
    """Create a queued submission, ranked on the benchmark's original version and evaluated on every current
    version (original, biased, unbiased…) in shards, plus the ``analyses`` asked for on the ranked version;
    the shards are sent once the transaction commits."""
    dataset = dataset_current(benchmark=benchmark)
    source = _check_source(source.strip(), dataset)
    analyses = _check_analyses(list(analyses or []))
    with transaction.atomic():
        artifact = artifact_store(owner=owner, upload=upload, declared_format=declared_format, input_size=input_size,
                                  architecture=architecture)
        submission = Submission.objects.create(
            name=name.strip() or artifact.original_name or f"detector {artifact.sha256[:8]}",
            owner=owner, artifact=artifact, benchmark=benchmark, dataset=dataset, source=source, zoo_entry=zoo_entry,
            zoo_trained_on=zoo_trained_on, private=private, analyses=analyses,
        )
        runs = _runs_create(submission, dataset_versions_evaluated(benchmark=benchmark))
        transaction.on_commit(lambda: run_services.evaluation_runs_send(runs=runs))
    return submission
