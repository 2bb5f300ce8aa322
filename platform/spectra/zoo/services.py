"""Writes of the zoo's experiment results."""
from __future__ import annotations

from spectra.benchmarks.models import Dataset
from spectra.zoo.models import ZooExperiment


def zoo_experiment_store(*, entry: str, name: str, dataset: Dataset, data: dict, evaluator_version: str) -> ZooExperiment:
    experiment, _ = ZooExperiment.objects.update_or_create(
        entry=entry, name=name, dataset=dataset, defaults={"data": data, "evaluator_version": evaluator_version})
    return experiment
