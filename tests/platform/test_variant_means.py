"""One selector for a submission's mean accuracy per dataset version: one query for any number of submissions,
used by the leaderboard and the zoo page (whose debiasing effect used to read each row on its own)."""
from __future__ import annotations

import numpy as np
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from spectra.benchmarks.models import Benchmark, Dataset
from spectra.leaderboards.selectors import mean_accuracy_by_variant
from spectra.submissions.models import Result, Submission
from spectra.zoo.selectors import zoo_debiasing_effect, zoo_row_accuracy, zoo_submission_list
from tests.platform.test_zoo_pages import _zoo_rows

VARIANTS = ("original", "biased", "unbiased")


def _versions(slug: str = "mini") -> dict[str, Dataset]:
    benchmark = Benchmark.objects.create(slug=slug, name=slug)
    return {v: Dataset.objects.create(benchmark=benchmark, variant=v, manifest_sha256=slug + v, root=f"/data/{v}")
            for v in VARIANTS}


def _stored(seeds: range, rng: np.random.Generator) -> tuple[dict, dict]:
    keys = [(seed, t) for seed in seeds for t in ("biased", "unbiased")]
    accuracy = {k: {v: float(rng.uniform(0.5, 0.95)) for v in ("unbiased", "original", "biased")} for k in keys}
    return accuracy, {k: {v: float(rng.uniform(0.01, 0.05)) for v in VARIANTS} for k in keys}


def test_the_selector_returns_each_clean_mean_with_its_interval_in_version_order(db) -> None:
    versions = _versions()
    accuracy, halves = _stored(range(2), np.random.default_rng(1))
    _zoo_rows(versions["original"].benchmark, versions, "resnet50", accuracy, halves)
    first = Submission.objects.get(name="biased0".ljust(64, "0"))
    for noise in ({"condition": "jpeg-90"}, {"subset": "vae"}, {"protocol": "jpeg-robustness"}):  # none is the clean mean
        fields = {"condition": "", "subset": "mean", "protocol": "cross-generator", **noise}
        Result.objects.create(submission=first, dataset=versions["original"], protocol_version=1,
                              metrics={"acc_mean": 0.0}, evaluator_version="t", manifest_sha256="m",
                              artifact_sha256="a", **fields)
    with CaptureQueriesContext(connection) as queries:
        means = mean_accuracy_by_variant(submissions=Submission.objects.all())
    assert len(queries) == 1
    for (seed, trained_on), by_variant in accuracy.items():
        found = means[Submission.objects.get(name=f"{trained_on}{seed}".ljust(64, "0")).pk]
        assert list(found) == list(VARIANTS)  # the platform's order, whatever order they were stored in
        for variant, (value, interval) in found.items():
            half = halves[(seed, trained_on)][variant]
            assert value == by_variant[variant] and interval == [value - half, value + half]


def test_the_zoo_page_reads_the_same_number_of_times_for_one_seed_or_three(client, db) -> None:
    counts = {}
    for entry, seeds in (("resnet50", range(1)), ("swin-t", range(10, 13))):
        versions = _versions(slug=entry)
        _zoo_rows(versions["original"].benchmark, versions, entry, *_stored(seeds, np.random.default_rng(len(seeds))))
        with CaptureQueriesContext(connection) as queries:
            effects = zoo_debiasing_effect(entry=entry, user=None)
            accuracy = zoo_row_accuracy(rows=list(zoo_submission_list(entry=entry, user=None)))
        counts[len(seeds)] = len(queries)
        assert {e.seeds for e in effects} == {len(seeds)} and len(accuracy) == 2 * len(seeds)
        assert client.get(reverse("zoo-detail", args=[entry])).status_code == 200
    assert counts[1] == counts[3], counts
