"""The command that reproduces a group of results (one dataset version × protocol) with ``python -m evaluation``.

It names everything the numbers depend on: the protocol, its version and its whole config (seed included), how the
splits were sharded (the same shards give the detector the same batches, and so the same logits to the last bit),
the bootstrap's resamples, the source generator of the carried threshold, and the sha256 of both files and the
evaluator version, which the CLI checks before it scores anything.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from django.conf import settings

from evaluation.protocols import EVALUATED_SPLIT, get_protocol
from evaluation.protocols.adversarial import TRANSFER
from evaluation.version import EVALUATOR_VERSION
from spectra.submissions.models import EvaluationRun, Result, Submission, SubmissionStatus
from spectra.submissions.services.analyses import recorded_config

DETECTOR, DATASET = "DETECTOR", "DATASET"  # the two files, as shell variables the page explains
RESAMPLES_KEY = "bootstrap_resamples"  # Result.config: the resamples its intervals were computed with


@dataclass(frozen=True)
class Reproduction:
    protocol: str
    command: str  # with "$DETECTOR" and "$DATASET"
    artifact_sha256: str
    manifest_sha256: str
    variant: str
    hidden_split: bool  # the test split's manifest stays on the server: the command runs where the version is held


def _reproducible(runs: list[EvaluationRun], result: Result) -> bool:
    """Rows of this evaluator and protocol version, not attacked through a surrogate the CLI does not get."""
    spec = get_protocol(result.protocol)
    return (result.evaluator_version == EVALUATOR_VERSION and result.protocol_version == spec.version
            and runs[0].config.get("mode") != TRANSFER)


def _arguments(submission: Submission, runs: list[EvaluationRun], result: Result) -> list[str]:
    spec = get_protocol(result.protocol)
    config = {**spec.default_config, **recorded_config(runs[0].config)}
    artifact = submission.artifact
    words = ["--input-size", str(artifact.input_size), "--format", artifact.format, "--protocol", result.protocol,
             "--config", json.dumps(config, sort_keys=True, separators=(",", ":")),
             "--device", runs[0].isolation.get("device", "cpu")]
    if artifact.architecture:
        words += ["--architecture", artifact.architecture]
    if not spec.analysis:
        words += ["--shard-images", str(max(run.last_row - run.first_row for run in runs))]
    if spec.fitting_splits and not any(run.split in spec.fitting_splits for run in runs):
        words.append("--no-validation")
    if submission.source:
        words += ["--source", submission.source]
    resamples = result.config.get(RESAMPLES_KEY, settings.SPECTRA_BOOTSTRAP_RESAMPLES)
    return words + ["--resamples", str(resamples),
                    "--expect-artifact-sha256", result.artifact_sha256, "--expect-manifest-sha256",
                    result.manifest_sha256, "--expect-protocol-version", str(result.protocol_version),
                    "--expect-evaluator-version", result.evaluator_version, "--json"]


def reproductions(*, submission: Submission, results: list[Result]) -> dict[tuple[int, str], Reproduction]:
    """(dataset version id, protocol) -> how to reproduce its results, for every group in ``results`` that this
    evaluator can reproduce (older versions: recompute first; transfer attacks need the surrogate too)."""
    runs: dict[tuple[int, str], list[EvaluationRun]] = {}
    for run in submission.runs.filter(status=SubmissionStatus.DONE, not_applicable=""):
        runs.setdefault((run.dataset_id, run.protocol), []).append(run)
    out: dict[tuple[int, str], Reproduction] = {}
    for result in results:
        key = (result.dataset_id, result.protocol)
        if key in out or key not in runs or not _reproducible(runs[key], result):
            continue
        words = _arguments(submission, runs[key], result)
        command = f'python -m evaluation "${DETECTOR}" "${DATASET}" ' + " ".join(shlex.quote(w) for w in words)
        out[key] = Reproduction(result.protocol, command, result.artifact_sha256, result.manifest_sha256, result.dataset.variant,
                                hidden_split=EVALUATED_SPLIT in result.dataset.hidden_splits)
    return out
