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

from evaluation.protocols import get_protocol
from spectra.submissions.models import EvaluationRun, Result, Submission, SubmissionStatus
from spectra.submissions.services.analyses import recorded_config

DETECTOR, DATASET = "DETECTOR", "DATASET"  # the two files, as shell variables the page explains


@dataclass(frozen=True)
class Reproduction:
    command: str  # with "$DETECTOR" and "$DATASET"
    artifact_sha256: str
    manifest_sha256: str
    variant: str

    def argv(self, detector: str, dataset: str) -> list[str]:
        """The command's arguments after ``python -m evaluation``, with the two files filled in."""
        words = shlex.split(self.command.replace(f'"${DETECTOR}"', shlex.quote(detector))
                            .replace(f'"${DATASET}"', shlex.quote(dataset)))
        return words[3:]


def _arguments(submission: Submission, runs: list[EvaluationRun], result: Result) -> list[str]:
    spec = get_protocol(result.protocol)
    config = {**spec.default_config, **recorded_config(runs[0].config)}
    artifact = submission.artifact
    words = ["--input-size", str(artifact.input_size), "--format", artifact.format, "--protocol", result.protocol,
             "--config", json.dumps(config, sort_keys=True, separators=(",", ":"))]
    if artifact.architecture:
        words += ["--architecture", artifact.architecture]
    if not spec.analysis:
        words += ["--shard-images", str(max(run.last_row - run.first_row for run in runs))]
    if spec.fitting_splits and not any(run.split in spec.fitting_splits for run in runs):
        words.append("--no-validation")
    if submission.source:
        words += ["--source", submission.source]
    return words + ["--resamples", str(settings.SPECTRA_BOOTSTRAP_RESAMPLES),
                    "--expect-artifact-sha256", result.artifact_sha256, "--expect-manifest-sha256",
                    result.manifest_sha256, "--expect-protocol-version", str(result.protocol_version),
                    "--expect-evaluator-version", result.evaluator_version, "--json"]


def reproductions(*, submission: Submission, results: list[Result]) -> dict[tuple[int, str], Reproduction]:
    """(dataset version id, protocol) -> how to reproduce its results, for every group in ``results``."""
    runs: dict[tuple[int, str], list[EvaluationRun]] = {}
    for run in submission.runs.filter(status=SubmissionStatus.DONE, not_applicable=""):
        runs.setdefault((run.dataset_id, run.protocol), []).append(run)
    out: dict[tuple[int, str], Reproduction] = {}
    for result in results:
        key = (result.dataset_id, result.protocol)
        if key in out or key not in runs:
            continue
        words = _arguments(submission, runs[key], result)
        command = f'python -m evaluation "${DETECTOR}" "${DATASET}" ' + " ".join(shlex.quote(w) for w in words)
        out[key] = Reproduction(command, result.artifact_sha256, result.manifest_sha256, result.dataset.variant)
    return out
