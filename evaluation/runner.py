"""Running one shard: fetch and verify the artifact and manifest, load the detector, run the protocol.

``run_shard`` never raises: every outcome becomes a ``ShardDone`` message, failures in plain words
with their kind (the submitter's fault or ours), so the platform can always show what happened.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from evaluation.datasets.images import condition_batches, count_split, image_batches, rows_of_split
from evaluation.datasets.manifest import centre_crops, file_sha256, manifest_sha256, verified_copy
from evaluation.detectors.formats import ArtifactFormat, artifact_architecture, sniff_artifact
from evaluation.detectors.loading import Detector, load_detector, pick_device, probe_detector
from evaluation.errors import DatasetError, EvaluationError, NotApplicable, PlatformFault, UserFault
from evaluation.messages import NOT_APPLICABLE, ShardDone, ShardProgress, ShardRequest
from evaluation.protocols import EVALUATED_SPLIT, RANKED_PROTOCOL, get_protocol
from evaluation.protocols.base import Protocol, ProtocolResult, ShardData, sample_positions
from evaluation.version import EVALUATOR_VERSION

log = logging.getLogger(__name__)
ProgressSink = Callable[[ShardProgress], None]
PROGRESS_EVERY_SECONDS = 2.0


class _Throttle:
    """Sends progress at most every few seconds, and always the final state of a stage."""

    def __init__(self, request: ShardRequest, sink: ProgressSink, total: int) -> None:
        self.request, self.sink, self.total, self.last = request, sink, total, 0.0

    def __call__(self, done: int, stage: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or done >= self.total or now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            self.sink(ShardProgress(run_id=self.request.run_id, attempt=self.request.attempt, done=done,
                                    total=self.total, stage=stage))


class DetectorSource:
    """Where a shard's detector comes from: loaded into this process (the local CLI, the user's own model), or a
    sandboxed scorer child (the evaluation worker: ``evaluation.sandbox.ScorerCache``)."""

    def open(self, request: ShardRequest, model: Path) -> Detector:
        """The loaded detector of ``request``'s artifact at ``model``, after its probe batch."""
        detector = load_detector(
            model, ArtifactFormat(request.artifact_format), input_size=request.input_size,
            device=pick_device(request.device_hint), architecture=request.artifact_architecture,
        )
        probe_detector(detector)
        return detector

    def failed(self, request: ShardRequest, fault: UserFault) -> None:
        """A shard of ``request``'s detector failed by the detector's fault (nothing to remember in process)."""


def _rows(manifest: Path, request: ShardRequest, protocol: Protocol, config: dict) -> list:
    """The shard's rows; an analysis's evenly spaced sample of them, streamed (memory holds the sample only)."""
    rows = rows_of_split(str(manifest), request.split, request.first_row, request.last_row)
    if not protocol.analysis:
        return list(rows)
    keep = sample_positions(request.last_row - request.first_row, int(config["images"]))
    return [row for position, row in enumerate(rows) if position in keep]


def _check_capabilities(protocol: Protocol, detector: Detector) -> None:
    missing = sorted(protocol.needs - detector.capabilities)
    if missing:
        raise NotApplicable(f"{protocol.title} needs {' and '.join(missing)}, which this {detector.format} detector "
                            f"does not give (it gives {', '.join(sorted(detector.capabilities))}). Upload it as "
                            "TorchScript for this analysis.")


def _execute(request: ShardRequest, sink: ProgressSink, source: DetectorSource) -> tuple[ProtocolResult, dict, Detector]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    protocol = get_protocol(request.protocol)
    if protocol.version != request.protocol_version:
        raise PlatformFault(
            f"this worker runs {protocol.name} v{protocol.version}, the run asks for v{request.protocol_version}"
        )
    config = {**protocol.default_config, **request.config}
    with verified_copy(request.manifest_url, request.manifest_sha256, "manifest") as manifest:
        rows = _rows(manifest, request, protocol, config)
    throttle = _Throttle(request, sink, len(rows))
    throttle(0, "loading", force=True)
    with verified_copy(request.artifact_url, request.artifact_sha256, "artifact") as path:
        detector = source.open(request, path)
    _check_capabilities(protocol, detector)
    timings["load_s"] = time.perf_counter() - started
    loading = dict(root_url=request.dataset_root_url, size=request.input_size, batch_size=int(config["batch_size"]),
                   crops=centre_crops(request.dataset_root_url), pin_memory=detector.device.type == "cuda")
    data = ShardData(
        rows=rows,
        batches=lambda: image_batches(rows=iter(rows), **loading),
        condition_batches=lambda conditions: condition_batches(rows=iter(rows), conditions=conditions, **loading),
    )
    result = protocol.run(detector, data, config, throttle)
    timings["total_s"] = time.perf_counter() - started
    return result, timings, detector


def run_shard(request: ShardRequest, sink: ProgressSink, source: DetectorSource | None = None) -> ShardDone:
    """Evaluate one shard and describe the outcome; progress goes to ``sink`` along the way. ``source`` gives
    the detector (default: loaded into this process)."""
    source = source or DetectorSource()
    try:
        result, timings, detector = _execute(request, sink, source)
    except NotApplicable as error:
        return shard_done(request, status=NOT_APPLICABLE, error=error.message)
    except UserFault as error:
        source.failed(request, error)
        return shard_done(request, status="failed", error=error.message, error_kind="user")
    except EvaluationError as error:
        log.warning("shard of run %s failed: %s", request.run_id, error.message)
        return shard_done(request, status="failed", error=error.message, error_kind="platform",
                          retryable=error.retryable)
    return shard_done(request, status="done", row_ids=result.row_ids, scores=result.scores,
                      conditions=result.conditions, timings=timings, isolation={**detector.isolation, "device": detector.device.type},
                      analysis=result.analysis)


def shard_done(request: ShardRequest, **outcome: object) -> ShardDone:
    """The outcome message of ``request``: its run, attempt and provenance, with ``outcome``'s fields."""
    return ShardDone(run_id=request.run_id, attempt=request.attempt, evaluator_version=EVALUATOR_VERSION,
                     artifact_sha256=request.artifact_sha256, manifest_sha256=request.manifest_sha256,
                     protocol=request.protocol, protocol_version=request.protocol_version, **outcome)


def local_shard_request(detector: Path, dataset: Path, *, input_size: int, protocol: str = RANKED_PROTOCOL,
                        split: str = EVALUATED_SPLIT, config: dict | None = None, declared_format: str | None = None,
                        device: str = "auto", limit: int | None = None, architecture: str = "") -> ShardRequest:
    """A request over a local dataset version's ``split`` (its first ``limit`` rows, or all), as the platform
    would send it: the artifact's format is read from its bytes and both files are hashed. A safetensors file
    names its architecture with ``architecture`` or in its own metadata."""
    manifest = dataset / "manifest.jsonl"
    if not manifest.is_file():
        raise DatasetError(f"{dataset} holds no manifest.jsonl; expected a dataset version folder")
    with detector.open("rb") as handle:
        fmt = sniff_artifact(handle, declared=declared_format)
        if fmt is ArtifactFormat.SAFETENSORS:
            architecture = artifact_architecture(handle, architecture)
    spec = get_protocol(protocol)
    rows = count_split(str(manifest), split)
    return ShardRequest(
        run_id=0, artifact_url=str(detector), artifact_sha256=file_sha256(detector), artifact_format=fmt.value,
        input_size=input_size, dataset_root_url=str(dataset), manifest_url=str(manifest),
        manifest_sha256=manifest_sha256(manifest), protocol=spec.name, protocol_version=spec.version,
        config=config or {}, split=split, first_row=0, last_row=rows if limit is None else min(limit, rows),
        device_hint=device, artifact_architecture=architecture,
    )
