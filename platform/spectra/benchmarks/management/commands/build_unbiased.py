"""Build the unbiased version of a benchmark's dataset: `python manage.py build_unbiased genimage`.

It follows the Unbiased GenImage recipe (evaluation.datasets.unbiased, the authors' get_data.py): QF-96
natural images from every generator folder inside each generator's size window, generated images
JPEG-compressed at QF 96, balanced per ImageNet class with a fixed seed, natural files hard-linked (once per
generator that uses them) rather than copied. The result is registered as the benchmark's "unbiased" variant.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.errors import DatasetError
from spectra.benchmarks.management.publish import dataset_publish
from spectra.benchmarks.selectors import benchmark_get, dataset_current
from spectra.benchmarks.services import dataset_register
from spectra.benchmarks.store import dataset_local_root
from spectra.core.errors import ApplicationError


class Command(BaseCommand):
    help = "Build and register the unbiased (JPEG- and size-matched) version of a benchmark's original dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("benchmark", help="benchmark slug, e.g. genimage")
        parser.add_argument("--source-variant", default="original")
        parser.add_argument("--qf", type=int, default=96, help="JPEG quality of the kept natural images (default 96)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--out", type=Path, help="output folder (default: SPECTRA_DATA_ROOT/<benchmark>/unbiased-…)")

    def handle(self, *args: Any, benchmark: str, source_variant: str, qf: int, seed: int, out: Path | None,
               **options: Any) -> None:
        from evaluation.datasets.unbiased import build_unbiased

        try:
            source = dataset_current(benchmark=benchmark_get(slug=benchmark), variant=source_variant)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        target = out or Path(settings.SPECTRA_DATA_ROOT) / benchmark / f"unbiased-{source.manifest_sha256[:12]}-qf{qf}"
        try:
            summary = build_unbiased(dataset_local_root(source), target, qf=qf, seed=seed,
                                     progress=lambda line: self.stdout.write(f"  {line}"))
        except DatasetError as error:
            raise CommandError(error.message) from None
        try:
            dataset = dataset_register(benchmark=source.benchmark, root=target, variant="unbiased",
                                       licence=source.licence, citation=source.citation)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"Registered {dataset} ({summary.linked} natural files linked, "
                                             f"{summary.copied} copied)"))
        for reason, count in sorted(summary.dropped.items()):
            self.stdout.write(f"  dropped {count:>8}  {reason}")
        for (generator, split, label), count in sorted(summary.counts.items()):
            self.stdout.write(f"  kept {split:<5} {generator:<28} {'generated' if label else 'real':<9} {count}")
        dataset_publish(dataset, self.stdout.write, archives=False)
        self.stdout.write(f"bias audit: {dataset.audit.get('verdict')}")
