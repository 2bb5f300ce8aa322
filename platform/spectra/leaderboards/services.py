"""Writes of the shortcut baselines' rows."""
from __future__ import annotations

from django.db import transaction

from evaluation.baselines import BASELINE_VERSION, SHORTCUTS, shortcut_scores
from evaluation.datasets.manifest import centre_crops
from evaluation.metrics import ScoreKind
from evaluation.protocols import RANKED_PROTOCOL, get_protocol
from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.models import Dataset
from spectra.leaderboards.models import BaselineResult
from spectra.submissions.summaries import summary_from_scores

BASELINE_PROTOCOL = RANKED_PROTOCOL  # the baselines answer the ranked question: their shortcut alone


@transaction.atomic
def baselines_build(*, dataset: Dataset) -> list[BaselineResult]:
    """(Re)compute every shortcut baseline of ``dataset`` from its manifest alone (no images are read)."""
    protocol = get_protocol(BASELINE_PROTOCOL)
    crops = centre_crops(dataset.root)
    written = []
    for shortcut in SHORTCUTS:
        row_ids, scores = shortcut_scores(dataset.manifest_url, shortcut, crops)
        if not row_ids:
            continue
        summary = summary_from_scores(protocol=protocol.name, config={}, manifest_url=dataset.manifest_url,
                                      split="test", row_ids=row_ids, scores=scores, score_kind=ScoreKind.PROBABILITY)
        for subset, metrics in summary.metrics.items():
            if "/" in subset:  # a condition's numbers (the reliability bins): a baseline row holds the clean subsets
                continue
            result, _ = BaselineResult.objects.update_or_create(
                dataset=dataset, baseline=shortcut.name, protocol=protocol.name, subset=subset,
                defaults={"baseline_version": BASELINE_VERSION, "protocol_version": protocol.version,
                          "metrics": metrics, "intervals": summary.intervals.get(subset, {}),
                          "evaluator_version": EVALUATOR_VERSION, "manifest_sha256": dataset.manifest_sha256},
            )
            written.append(result)
    return written
