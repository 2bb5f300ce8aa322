"""The settings an analysis run is sent with: the deployment's SPECTRA_ANALYSIS_CONFIG, and for a detector
without gradients the zoo surrogate that transfer attacks are made on."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from evaluation.detectors.formats import DIFFERENTIABLE_FORMATS, ArtifactFormat
from evaluation.protocols import Protocol
from evaluation.protocols.adversarial import SURROGATE, TRANSFER
from spectra.benchmarks.models import Benchmark
from spectra.core.storage import storage_url
from spectra.submissions.models import Artifact, Submission, SubmissionStatus

SURROGATE_ARTIFACT = "surrogate_artifact"  # in a run's stored config: the Artifact a link is made to at send time


def transfer_surrogate(*, benchmark: Benchmark) -> Artifact | None:
    """The newest finished zoo row of SPECTRA_TRANSFER_SURROGATE on ``benchmark``: its weights are zoo code plus
    safetensors data, which the trusted worker may load."""
    row = (Submission.objects.filter(benchmark=benchmark, zoo_entry=settings.SPECTRA_TRANSFER_SURROGATE,
                                     status=SubmissionStatus.DONE, artifact__format=ArtifactFormat.SAFETENSORS)
           .select_related("artifact").order_by("-finished", "-pk").first())
    return row.artifact if row else None


def analysis_run_config(*, protocol: Protocol, submission: Submission) -> dict[str, Any]:
    """What ``protocol``'s run of ``submission`` is sent with, over the protocol's defaults (stored on the run)."""
    config = dict(settings.SPECTRA_ANALYSIS_CONFIG.get(protocol.name, {}))
    if protocol.transfer_surrogate and submission.artifact.format not in DIFFERENTIABLE_FORMATS:
        config["mode"] = TRANSFER
        surrogate = transfer_surrogate(benchmark=submission.benchmark)
        if surrogate is not None:  # the pk to link at send time; the hash and layout for the record
            config.update({SURROGATE_ARTIFACT: surrogate.pk, "surrogate_sha256": surrogate.sha256,
                           "surrogate_architecture": surrogate.architecture})
    return config


def recorded_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config as its Result rows record it (no database keys)."""
    return {k: v for k, v in config.items() if k != SURROGATE_ARTIFACT}


def request_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run's stored config as the worker gets it: the surrogate as a (fresh) link with its hash and layout."""
    out = recorded_config(config)
    if SURROGATE_ARTIFACT not in config:  # every shard but a transfer attack's: no query
        return out
    surrogate = Artifact.objects.filter(pk=config[SURROGATE_ARTIFACT]).first()
    if surrogate is not None:  # a surrogate deleted since is left out: the worker then says "not applicable"
        out[SURROGATE] = {"url": storage_url(surrogate.file.name), "sha256": surrogate.sha256,
                          "architecture": surrogate.architecture}
    return out
