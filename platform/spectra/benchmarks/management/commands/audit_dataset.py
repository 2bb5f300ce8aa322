"""Recompute the bias audit of a dataset version: `python manage.py audit_dataset <benchmark> [--variant V]`."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.benchmarks.services import dataset_audit
from spectra.core.errors import ApplicationError


class Command(BaseCommand):
    help = ("Audit a dataset version for format, JPEG-quality, chroma-subsampling and size shortcuts, and store "
            "the result.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("benchmark", help="benchmark slug, e.g. mini")
        parser.add_argument("--variant", default="original")

    def handle(self, *args: Any, benchmark: str, variant: str, **options: Any) -> None:
        try:
            dataset = dataset_current(benchmark=benchmark_get(slug=benchmark), variant=variant)
            self.stdout.write(f"auditing {dataset} …")
            audit = dataset_audit(dataset=dataset)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        for feature, accuracy in audit["one_feature_accuracy"].items():
            shown = "n/a" if accuracy is None else f"{accuracy:.3f}"
            self.stdout.write(f"  balanced accuracy from {feature} alone: {shown}")
        self.stdout.write(self.style.SUCCESS(f"verdict: {audit['verdict']}"))
