"""Build the synthetic mini benchmark and register it: `python manage.py build_mini_benchmark`."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from spectra.benchmarks.models import Dataset
from spectra.benchmarks.services import benchmark_upsert, dataset_archives_build, dataset_register

SLUG = "mini"


class Command(BaseCommand):
    help = "Build the synthetic mini benchmark (real tiles from package photos + generated subsets) and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="Rebuild even if a current version exists.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, force: bool, seed: int, **options: Any) -> None:
        current = Dataset.objects.filter(benchmark__slug=SLUG, variant="original", is_current=True).first()
        if current and Path(current.root, "manifest.jsonl").is_file() and not force:
            self.stdout.write(f"The mini benchmark is up to date ({current.manifest_sha256[:12]}); --force rebuilds it.")
            self._archives(current)
            return
        # torch is imported here, not at module level: the web process loads every command's module.
        from evaluation.datasets.mini import MINI_DESCRIPTION, MINI_LICENCE, build_mini_benchmark

        base = Path(settings.SPECTRA_DATA_ROOT) / SLUG
        staging = base / "_building"
        shutil.rmtree(staging, ignore_errors=True)
        summary = build_mini_benchmark(staging, seed=seed, progress=lambda line: self.stdout.write(f"  {line}"))
        final = base / summary.manifest_sha256[:16]
        if final.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(final)
        benchmark = benchmark_upsert(
            slug=SLUG, name="Mini (synthetic)", description=MINI_DESCRIPTION, is_synthetic=True
        )
        dataset = dataset_register(benchmark=benchmark, root=final, licence=MINI_LICENCE)
        self._archives(dataset)
        self._summarise(dataset, summary.seconds)

    def _archives(self, dataset: Dataset) -> None:
        if not dataset.archives:
            self.stdout.write("  writing download archives and SHA256SUMS")
            dataset_archives_build(dataset=dataset)

    def _summarise(self, dataset: Dataset, seconds: float) -> None:
        self.stdout.write(self.style.SUCCESS(f"Built the mini benchmark in {seconds:.0f} s: {dataset.root}"))
        self.stdout.write(f"manifest sha256 {dataset.manifest_sha256}")
        for subset in dataset.subsets.all():
            label = subset.generator or "real (shared)"
            self.stdout.write(f"  {subset.split:<5} {label:<16} real {subset.n_real:>4}  generated {subset.n_generated:>4}")
