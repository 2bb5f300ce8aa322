"""Run the zoo's experiments on a benchmark and store them: `python manage.py zoo_experiments [--benchmark mini]`.

Today: the spectral detector's few-labelled-samples curve (seeds.md §8.4: accuracy against training-set size),
real images against every generated family of the version's train split, scored on its test split. Idempotent:
a version that already has the result is skipped unless --force.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.version import EVALUATOR_VERSION
from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.core.errors import ApplicationError
from spectra.zoo.models import ZooExperiment
from spectra.zoo.services import zoo_experiment_store


class Command(BaseCommand):
    help = "Run the zoo's experiments (the spectral few-shot curve) on a benchmark version and store them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--benchmark", default="mini")
        parser.add_argument("--variant", default="original")
        parser.add_argument("--repeats", type=int, default=10)
        parser.add_argument("--force", action="store_true")

    def handle(self, *args: Any, benchmark: str, variant: str, repeats: int, force: bool, **options: Any) -> None:
        try:
            dataset = dataset_current(benchmark=benchmark_get(slug=benchmark), variant=variant)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if not force and ZooExperiment.objects.filter(entry="spectral", name="few-shot", dataset=dataset).exists():
            self.stdout.write(f"The spectral few-shot curve of {dataset} is up to date; --force recomputes it.")
            return
        self.stdout.write(f"spectral profiles of {dataset} …")
        data = _few_shot(Path(dataset.root), repeats)
        zoo_experiment_store(entry="spectral", name="few-shot", dataset=dataset, data=data,
                             evaluator_version=EVALUATOR_VERSION)
        for method, curve in data["methods"].items():
            points = ", ".join(f"{n}: {m:.2f}" for n, m in zip(data["sizes"], curve["mean"], strict=True))
            self.stdout.write(f"  {method:<7} {points}")
        self.stdout.write(self.style.SUCCESS(f"Stored the spectral few-shot curve of {dataset}."))


def _few_shot(root: Path, repeats: int) -> dict:
    from models_zoo.spectral import few_shot_curve, profiles_of_split

    train, train_labels = profiles_of_split(root, "train")
    test, test_labels = profiles_of_split(root, "test")
    return few_shot_curve(train, train_labels, test, test_labels, repeats=repeats)
