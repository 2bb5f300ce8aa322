"""Reads of benchmarks and dataset versions."""
from __future__ import annotations

from django.db.models import QuerySet

from spectra.benchmarks.models import Benchmark, Dataset, Subset
from spectra.core.errors import ApplicationError, NotFoundError


def benchmark_list() -> QuerySet[Benchmark]:
    return Benchmark.objects.all()


def benchmark_get(*, slug: str) -> Benchmark:
    try:
        return Benchmark.objects.get(slug=slug)
    except Benchmark.DoesNotExist:
        valid = ", ".join(Benchmark.objects.values_list("slug", flat=True)) or "none yet"
        raise NotFoundError(f"There is no benchmark {slug!r}. Benchmarks: {valid}.") from None


def dataset_current(*, benchmark: Benchmark, variant: str = "original") -> Dataset:
    dataset = benchmark.datasets.filter(variant=variant, is_current=True).first()
    if dataset is None:
        raise ApplicationError(f"Benchmark {benchmark.slug!r} has no {variant} dataset yet; a maintainer must build it.")
    return dataset


VARIANT_ORDER = ("original", "biased", "unbiased")


def dataset_versions_evaluated(*, benchmark: Benchmark) -> list[Dataset]:
    """Every current version of ``benchmark``, the original first: a submission is evaluated on all of them."""
    current = list(benchmark.datasets.filter(is_current=True))
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    return sorted(current, key=lambda d: (order.get(d.variant, len(order)), d.variant))


def subset_list(*, dataset: Dataset, split: str | None = None) -> QuerySet[Subset]:
    subsets = dataset.subsets.all()
    return subsets.filter(split=split) if split else subsets


def split_size(*, dataset: Dataset, split: str) -> int:
    """Images in ``split``: the shared real pool is counted once."""
    return sum(s.n_real + s.n_generated for s in subset_list(dataset=dataset, split=split))


def dataset_get(*, manifest_sha256: str) -> Dataset:
    try:
        return Dataset.objects.select_related("benchmark").get(manifest_sha256=manifest_sha256)
    except Dataset.DoesNotExist:
        raise NotFoundError(f"There is no dataset version {manifest_sha256[:64]!r}.") from None
