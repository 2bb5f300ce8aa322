"""What every registering command does after registration: archives (optional), shortcut baselines, and the copy
into the object store."""
from __future__ import annotations

from collections.abc import Callable

from evaluation.datasets.archives import archive_is_current
from evaluation.protocols import MEAN_SUBSET, RANK_METRIC
from spectra.benchmarks.models import Dataset
from spectra.benchmarks.services import dataset_archives_build
from spectra.benchmarks.store import dataset_store
from spectra.leaderboards.services import baselines_build


def dataset_publish(dataset: Dataset, say: Callable[[str], None], *, archives: bool = True) -> None:
    """Write what is missing; a dataset that has it all is left as it is, so re-running is quick."""
    if archives and not (dataset.archives and all(archive_is_current(a) for a in dataset.archives)):
        say(f"  {dataset.variant}: writing download archives and SHA256SUMS")
        dataset_archives_build(dataset=dataset)
    if not dataset.baseline_results.exists():
        say(f"  {dataset.variant}: scoring the shortcut baselines (manifest only)")
        baselines_build(dataset=dataset)
    for result in dataset.baseline_results.filter(subset=MEAN_SUBSET):
        say(f"  {dataset.variant}: baseline {result.baseline}: mean accuracy {result.metrics.get(RANK_METRIC) or 0:.3f}")
    dataset_store(dataset=dataset, say=say)  # SPECTRA_STORAGE=s3: into the object store, resuming a broken copy
