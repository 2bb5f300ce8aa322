"""Scan a local Faces-HQ copy and register it: `python manage.py import_faceshq <root> [--workers N]`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.datasets.faceshq import FACESHQ_CITATION, FACESHQ_DESCRIPTION, FACESHQ_LICENCE, scan_faceshq
from evaluation.errors import DatasetError
from spectra.benchmarks.management.publish import dataset_publish
from spectra.benchmarks.services import benchmark_upsert, dataset_register
from spectra.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Scan a Faces-HQ copy (four source folders), write manifest.jsonl beside the images and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("root", type=Path, help="The folder holding the four Faces-HQ source folders.")
        parser.add_argument("--workers", type=int, default=2, help="Processes decoding images (default 2).")

    def handle(self, *args: Any, root: Path, workers: int, **options: Any) -> None:
        root = root.resolve()
        self.stdout.write(f"Scanning {root} with {workers} worker(s).")
        try:
            summary = scan_faceshq(root, root, workers=workers, progress=options.get("verbosity", 1) > 0)
        except DatasetError as error:
            raise CommandError(error.message) from None
        benchmark = benchmark_upsert(slug="faces-hq", name="Faces-HQ", description=FACESHQ_DESCRIPTION,
                                     is_synthetic=False)
        try:
            dataset = dataset_register(benchmark=benchmark, root=root, licence=FACESHQ_LICENCE,
                                       citation=FACESHQ_CITATION)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        for (source, split), counts in sorted(summary.counts.items(), key=lambda item: (item[0][1], item[0][0] or "")):
            self.stdout.write(f"  {split:<5} {source:<12} real {counts.get(0, 0):>6}  generated {counts.get(1, 0):>6}")
        dataset_publish(dataset, self.stdout.write, archives=False)
        self.stdout.write(f"known-bad files: {summary.n_known_bad} (listed in {summary.known_bad_path})")
        self.stdout.write(self.style.SUCCESS(f"Registered {dataset}; manifest sha256 {dataset.manifest_sha256}"))
