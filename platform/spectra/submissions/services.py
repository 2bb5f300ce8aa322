"""Writes of artifacts, submissions, runs and results.

The web process only inspects an upload's bytes (evaluation.detectors.formats never deserialises); the
detector is loaded and probed on the evaluation worker, whose verdict comes back through shard_done.
"""
from __future__ import annotations

import hashlib
import logging
import zlib
from typing import IO

import numpy as np
from celery import current_app, group
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from evaluation.detectors.formats import ArtifactFormat as SniffedFormat
from evaluation.detectors.formats import artifact_architecture, sniff_artifact
from evaluation.errors import ArtifactRejected, DatasetError
from evaluation.messages import MessageError, ShardDone, ShardProgress, ShardRequest
from evaluation.protocols import get_protocol
from evaluation.version import EVALUATOR_VERSION
from evalworker.broker import TASK_EVALUATE_SHARD, evaluation_queue
from models_zoo.registry import UnknownModelError, get_card, uploadable_names
from spectra.benchmarks.models import Benchmark, Dataset
from spectra.benchmarks.selectors import dataset_current, dataset_versions_evaluated, split_size
from spectra.core.errors import ApplicationError
from spectra.core.storage import storage_url
from spectra.submissions.models import (
    Artifact,
    EvaluationRun,
    ImageScores,
    Result,
    Submission,
    SubmissionStatus,
)
from spectra.submissions.selectors import image_scores_get
from spectra.submissions.summaries import summary_from_scores

log = logging.getLogger(__name__)
CROSS_GENERATOR = "cross-generator"
EVALUATION_SPLIT = "test"
VALIDATION_SPLIT = "val"
INPUT_SIZE_RANGE = (16, 1024)


def _stream_sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def artifact_check(*, upload: UploadedFile, declared_format: str, input_size: int,
                   architecture: str = "") -> tuple[SniffedFormat, str]:
    """The upload's format from its bytes, and the zoo architecture of a safetensors file; ApplicationError
    says what to do when it is refused."""
    limit = settings.SPECTRA_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ApplicationError(
            f"The file is {upload.size / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB. "
            "Export a smaller model (e.g. fp16 ONNX) or ask a maintainer to raise SPECTRA_MAX_UPLOAD_MB."
        )
    low, high = INPUT_SIZE_RANGE
    if not low <= input_size <= high:
        raise ApplicationError(f"The input size must be between {low} and {high} pixels; got {input_size}.")
    try:
        fmt = sniff_artifact(upload.file, declared=SniffedFormat(declared_format))
    except ValueError:
        raise ApplicationError(f"Unknown format {declared_format!r}; choose one of "
                               f"{', '.join(f.value for f in SniffedFormat)}.") from None
    except ArtifactRejected as error:
        raise ApplicationError(error.message) from None
    return fmt, _architecture_check(upload, fmt, architecture.strip())


def _architecture_check(upload: UploadedFile, fmt: SniffedFormat, architecture: str) -> str:
    if fmt is not SniffedFormat.SAFETENSORS:
        if architecture:
            raise ApplicationError(f"An architecture is named only with a safetensors upload; a {fmt.value} file "
                                   "carries its own. Leave the architecture blank.")
        return ""
    try:
        name = artifact_architecture(upload.file, architecture)
        card = get_card(name)
    except ArtifactRejected as error:
        raise ApplicationError(error.message) from None
    except UnknownModelError as error:
        raise ApplicationError(f"{error} Architectures: {', '.join(uploadable_names())}.") from None
    if not card.uploadable:
        raise ApplicationError(f"The zoo entry {name!r} is not a detector architecture; choose one of "
                               f"{', '.join(uploadable_names())}.")
    return name


def artifact_store(*, owner, upload: UploadedFile, declared_format: str, input_size: int,
                   architecture: str = "") -> Artifact:
    """Store the upload under its sha256 (once per owner) after checking its bytes."""
    fmt, architecture = artifact_check(upload=upload, declared_format=declared_format, input_size=input_size,
                                       architecture=architecture)
    sha = _stream_sha256(upload.file)
    existing = Artifact.objects.filter(owner=owner, sha256=sha, input_size=input_size, architecture=architecture).first()
    if existing is not None:
        return existing
    artifact = Artifact(owner=owner, format=fmt.value, sha256=sha, size=upload.size or 0, input_size=input_size,
                        architecture=architecture, original_name=(upload.name or "")[:255])
    name = f"artifacts/{sha}.{artifact.extension}"
    if not default_storage.exists(name):
        upload.file.seek(0)
        name = default_storage.save(name, upload)
    artifact.file.name = name
    artifact.save()
    return artifact


def shard_ranges(total: int, size: int) -> list[tuple[int, int]]:
    """[first, last) row ranges of at most ``size`` rows covering ``total`` rows (at least one range)."""
    size = max(size, 1)
    return [(first, min(first + size, total)) for first in range(0, total, size)] or [(0, 0)]


def _plan(submission: Submission, datasets: list[Dataset]) -> list[tuple[str, Dataset]]:
    """(protocol, dataset version) pairs: cross-generator on every version, the robustness sweeps on the
    ranked one only (they multiply the work by their number of conditions)."""
    names = [get_protocol(name).name for name in settings.SPECTRA_PROTOCOLS]
    return [(name, dataset) for name in names for dataset in datasets
            if name == CROSS_GENERATOR or dataset.pk == submission.dataset_id]


def _runs_create(submission: Submission, datasets: list[Dataset]) -> list[EvaluationRun]:
    """One run per shard of each (protocol, dataset version, split); shards are numbered per (submission,
    protocol). Cross-generator also scores the validation split, where the carried threshold is fitted."""
    runs, shards = [], dict.fromkeys(settings.SPECTRA_PROTOCOLS, 0)
    for name, dataset in _plan(submission, datasets):
        protocol = get_protocol(name)
        carry = name == CROSS_GENERATOR and settings.SPECTRA_CARRY_THRESHOLD
        for split in (EVALUATION_SPLIT, VALIDATION_SPLIT) if carry else (EVALUATION_SPLIT,):
            total = split_size(dataset=dataset, split=split)
            if split == VALIDATION_SPLIT and not total:
                continue
            for first, last in shard_ranges(total, settings.SPECTRA_SHARD_IMAGES):
                runs.append(EvaluationRun(
                    submission=submission, dataset=dataset, protocol=protocol.name, protocol_version=protocol.version,
                    shard=shards[name], split=split, first_row=first, last_row=last, total=last - first,
                ))
                shards[name] += 1
    return EvaluationRun.objects.bulk_create(runs)


def _check_source(source: str, dataset: Dataset) -> str:
    generators = sorted({s.generator for s in dataset.subsets.all() if s.generator and s.n_generated})
    if source and source not in generators:
        raise ApplicationError(f"Unknown training generator {source!r}; {dataset.benchmark.slug} has: "
                               f"{', '.join(generators)}. Leave it blank to fix the threshold on every validation image.")
    return source


def submission_create(
    *, owner, name: str, benchmark: Benchmark, upload: UploadedFile, declared_format: str, input_size: int,
    source: str = "", zoo_entry: str = "", zoo_trained_on: str = "", architecture: str = "",
) -> Submission:
    """Create a queued submission, ranked on the benchmark's original version and evaluated on every current
    version (original, biased, unbiased…) in shards; the shards are sent once the transaction commits."""
    dataset = dataset_current(benchmark=benchmark)
    source = _check_source(source.strip(), dataset)
    with transaction.atomic():
        artifact = artifact_store(owner=owner, upload=upload, declared_format=declared_format, input_size=input_size,
                                  architecture=architecture)
        submission = Submission.objects.create(
            name=name.strip() or artifact.original_name or f"detector {artifact.sha256[:8]}",
            owner=owner, artifact=artifact, benchmark=benchmark, dataset=dataset, source=source, zoo_entry=zoo_entry,
            zoo_trained_on=zoo_trained_on,
        )
        runs = _runs_create(submission, dataset_versions_evaluated(benchmark=benchmark))
        transaction.on_commit(lambda: evaluation_runs_send(runs=runs))
    return submission


def shard_request_build(*, run: EvaluationRun) -> ShardRequest:
    artifact, dataset = run.submission.artifact, run.dataset
    return ShardRequest(
        run_id=run.pk, artifact_url=storage_url(artifact.file.name), artifact_sha256=artifact.sha256,
        artifact_format=artifact.format, artifact_architecture=artifact.architecture,
        input_size=artifact.input_size, dataset_root_url=dataset.root,
        manifest_url=dataset.manifest_url, manifest_sha256=dataset.manifest_sha256, protocol=run.protocol,
        protocol_version=run.protocol_version, config={}, split=run.split, first_row=run.first_row,
        last_row=run.last_row,
    )


def evaluation_runs_send(*, runs: list[EvaluationRun]) -> None:
    """All shards as one Celery group on queue ``eval`` (a zoo row's on ``eval-zoo``, read only when ``eval`` is
    empty): any number of evaluation workers share them. The aggregate step is the platform worker's
    (shard_done_record), so no result backend is needed."""
    queue = evaluation_queue(zoo=bool(runs and runs[0].submission.zoo_entry))
    signatures = [current_app.signature(TASK_EVALUATE_SHARD, args=[shard_request_build(run=run).to_dict()], queue=queue)
                  for run in runs]
    group(signatures).apply_async()


def shard_progress_record(*, progress: ShardProgress) -> None:
    now = timezone.now()
    # `total` is the platform's own count, set when the run was made; a worker's message never changes it.
    updated = EvaluationRun.objects.filter(pk=progress.run_id).exclude(status__in=["done", "failed"]).update(
        done=min(progress.done, progress.total), stage=progress.stage, heartbeat=now, status=SubmissionStatus.RUNNING
    )
    if not updated:
        log.info("dropped progress for run %s: no such run, or it has finished", progress.run_id)
        return
    Submission.objects.filter(runs__pk=progress.run_id, status=SubmissionStatus.QUEUED).update(
        status=SubmissionStatus.RUNNING, started=now
    )


def _check_outcome(run: EvaluationRun, outcome: ShardDone) -> None:
    """Re-check what the worker sent before anything is written."""
    outcome.check()
    expected = {
        "artifact_sha256": run.submission.artifact.sha256, "manifest_sha256": run.dataset.manifest_sha256,
        "protocol": run.protocol, "protocol_version": run.protocol_version,
    }
    for key, value in expected.items():
        if getattr(outcome, key) != value:
            raise MessageError(f"{key} {getattr(outcome, key)!r} does not match the run's {value!r}")
    expected_rows = run.last_row - run.first_row  # fixed when the run was made; progress cannot change it
    if outcome.status == "done" and (len(outcome.row_ids) != expected_rows or len(set(outcome.row_ids)) != expected_rows):
        raise MessageError(f"expected {expected_rows} distinct scored rows, got {len(outcome.row_ids)}")


def _scores_store(run: EvaluationRun, outcome: ShardDone) -> None:
    ImageScores.objects.update_or_create(
        run=run,
        defaults={
            "count": len(outcome.row_ids), "conditions": outcome.conditions,
            "row_ids": zlib.compress(np.asarray(outcome.row_ids, dtype="<i8").tobytes()),
            "scores": zlib.compress(np.asarray(outcome.scores, dtype="<f4").tobytes()),
        },
    )


def _merged_scores(runs: list[EvaluationRun]) -> tuple[list[int], np.ndarray]:
    """The scores of every shard of one (dataset version, protocol) in row order: K conditions × N rows."""
    row_ids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for run in sorted(runs, key=lambda r: (r.split, r.first_row)):
        ids, values = image_scores_get(scores=run.scores)
        row_ids.append(ids)
        scores.append(values.reshape(max(len(run.scores.conditions), 1), len(ids)))
    return np.concatenate(row_ids).tolist(), np.concatenate(scores, axis=1).astype(np.float64)


def _aggregate(submission: Submission, runs: list[EvaluationRun], evaluator_version: str) -> None:
    """The aggregate step: every number of one (dataset version, protocol) from all its shards' scores."""
    dataset, protocol = runs[0].dataset, runs[0].protocol
    row_ids, matrix = _merged_scores(runs)
    scores = matrix if runs[0].scores.conditions else matrix[0]  # a clean-only protocol takes N scores
    try:
        summary = summary_from_scores(protocol=protocol, config={"source": submission.source or None},
                                      manifest_url=dataset.manifest_url, split={r.split for r in runs},
                                      row_ids=row_ids, scores=scores)
    except DatasetError as error:
        raise MessageError(error.message) from None
    for key, metrics in summary.metrics.items():
        subset, _, condition = key.partition("/")  # robustness protocols key their numbers subset/condition
        Result.objects.update_or_create(
            submission=submission, dataset=dataset, protocol=protocol, condition=condition, subset=subset,
            defaults={
                "protocol_version": runs[0].protocol_version, "metrics": metrics,
                "intervals": summary.intervals.get(key, {}), "evaluator_version": evaluator_version,
                "manifest_sha256": dataset.manifest_sha256, "artifact_sha256": submission.artifact.sha256,
                "schema_version": Result.SCHEMA_VERSION,
            },
        )


def _submission_finish(submission: Submission) -> None:
    runs = list(submission.runs.all())
    failed = [r for r in runs if r.status == SubmissionStatus.FAILED]
    if not failed and any(r.status != SubmissionStatus.DONE for r in runs):
        return
    submission.status = SubmissionStatus.FAILED if failed else SubmissionStatus.DONE
    submission.finished = timezone.now()
    submission.save(update_fields=["status", "finished", "error", "error_kind"])


def _as_platform_failure(outcome: ShardDone, error: MessageError) -> ShardDone:
    return ShardDone.from_dict({
        **outcome.to_dict(), "status": "failed", "error_kind": "platform", "metrics": {}, "row_ids": [],
        "scores": [], "error": f"The evaluation worker sent a result that failed the platform's checks ({error}); "
        "no numbers were recorded.",
    })


def _record(run: EvaluationRun, submission: Submission, outcome: ShardDone) -> ShardDone:
    """Store the shard; when it is the last of its (dataset version, protocol), aggregate. Returns the outcome
    as recorded (a platform failure when the checks fail)."""
    try:
        _check_outcome(run, outcome)
        if outcome.status == "done":
            _scores_store(run, outcome)
            run.status = SubmissionStatus.DONE
            run.save(update_fields=["status"])
            siblings = list(submission.runs.filter(dataset=run.dataset, protocol=run.protocol).select_related("scores"))
            if all(r.status == SubmissionStatus.DONE for r in siblings):
                _aggregate(submission, siblings, outcome.evaluator_version)
    except MessageError as error:
        log.error("run %s: the worker's result failed the checks: %s", run.pk, error)
        return _as_platform_failure(outcome, error)
    return outcome


@transaction.atomic
def shard_done_record(*, outcome: ShardDone) -> None:
    """Write a shard's outcome after re-checking it; a message for a vanished run is dropped. The submission
    row is locked, so shards finishing at once on several workers aggregate exactly once."""
    run = EvaluationRun.objects.select_for_update().select_related("dataset").filter(pk=outcome.run_id).first()
    if run is None:
        log.warning("dropped shard_done for run %s: the run no longer exists", outcome.run_id)
        return
    submission = Submission.objects.select_for_update().select_related("artifact").get(pk=run.submission_id)
    run.submission = submission
    with transaction.atomic():  # a savepoint: a failed check or aggregate leaves no partial rows
        recorded = _record(run, submission, outcome)
        if recorded.status == "failed":
            transaction.set_rollback(True)
    run.heartbeat, run.timings, run.worker = timezone.now(), outcome.timings, outcome.worker[:200]
    if recorded.status == "failed":
        run.status = SubmissionStatus.FAILED
        submission.error, submission.error_kind = recorded.error, recorded.error_kind
    else:
        run.status, run.done, run.stage = SubmissionStatus.DONE, run.total, "done"
    run.save(update_fields=["status", "done", "stage", "heartbeat", "timings", "worker"])
    _submission_finish(submission)


@transaction.atomic
def submission_results_recompute(*, submission: Submission) -> int:
    """Recompute every Result of a finished submission from its stored scores (after a protocol's ``summarise``
    gains a metric, or to check the stored numbers): no detector runs. Returns the number of groups redone."""
    submission = Submission.objects.select_for_update().select_related("artifact").get(pk=submission.pk)
    groups: dict[tuple[int, str], list[EvaluationRun]] = {}
    for run in submission.runs.filter(status=SubmissionStatus.DONE).select_related("dataset", "scores"):
        groups.setdefault((run.dataset_id, run.protocol), []).append(run)
    for runs in groups.values():
        try:
            _aggregate(submission, runs, EVALUATOR_VERSION)
        except MessageError as error:
            raise ApplicationError(f"Submission #{submission.pk}: {error}") from None
    return len(groups)
